//! Sample ingest: validation and conversion to the catalogue at the edge, then batched,
//! idempotent writes.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::catalogue;
use crate::domain::{NewSample, User, WriteOutcome};
use crate::error::{Error, Result};
use crate::store::{Store, dedupe_batch};
use crate::time;

/// Most samples one request may carry.
pub const MAX_SAMPLES_PER_REQUEST: usize = 10_000;
/// Rows per store transaction.
pub const WRITE_CHUNK: usize = 10_000;

/// One sample as a client pushes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSample {
    /// Canonical metric name (see `GET /v1/metric-types`).
    pub metric: String,
    pub value: f64,
    /// Unit of `value`; the metric's canonical unit when absent. Accepted alternatives are
    /// converted (lbs→kg, °F→°C, km/mi→m, kJ→kcal, mmol/L→mg/dL, s/h→min).
    pub unit: Option<String>,
    /// RFC 3339 instant. For sleep metrics, the instant the sleep ended: sleep belongs to the
    /// local date on which it ends.
    pub recorded_at: String,
    /// The user's calendar date (YYYY-MM-DD); derived when absent.
    pub local_date: Option<String>,
    /// Offset from UTC at `recorded_at`, e.g. "+02:00".
    pub utc_offset: Option<String>,
    /// Device or app name.
    pub source: Option<String>,
    /// Free-form JSON kept with the sample.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// Validates and converts one pushed sample. `index` locates it in error messages.
pub fn prepare(user: &User, provider: &str, index: usize, raw: RawSample) -> Result<NewSample> {
    let field = |name: &str| format!("samples[{index}].{name}");
    let def = catalogue::metric(&raw.metric).ok_or_else(|| {
        Error::invalid(field("metric"), format!("unknown metric '{}'", raw.metric))
    })?;
    if !raw.value.is_finite() {
        return Err(Error::invalid(field("value"), "must be a finite number"));
    }
    let value = def.convert(raw.value, raw.unit.as_deref()).ok_or_else(|| {
        Error::invalid(
            field("unit"),
            format!(
                "'{}' is not accepted for {} (accepted: {})",
                raw.unit.as_deref().unwrap_or_default(),
                def.name,
                def.accepted_units().join(", ")
            ),
        )
    })?;
    let recorded_at = truncate_to_micros(time::parse_instant(
        &field("recorded_at"),
        &raw.recorded_at,
    )?);
    let explicit_offset = match raw.utc_offset.as_deref() {
        None => None,
        Some(s) => Some(time::parse_offset(s).ok_or_else(|| {
            Error::invalid(
                field("utc_offset"),
                format!("'{s}' is not an offset like +02:00"),
            )
        })?),
    };
    let offset = time::resolve_offset(recorded_at, explicit_offset, user.tz());
    let local_date = match raw.local_date.as_deref() {
        Some(d) => time::parse_date(&field("local_date"), d)?,
        None => time::local_date(recorded_at, offset),
    };
    if let Some(s) = &raw.source
        && s.len() > 255
    {
        return Err(Error::invalid(
            field("source"),
            "must be at most 255 characters",
        ));
    }
    if let Some(d) = &raw.data
        && d.to_string().len() > 64 * 1024
    {
        return Err(Error::invalid(
            field("data"),
            "must be at most 64 KiB of JSON",
        ));
    }
    Ok(NewSample {
        provider: provider.to_string(),
        metric: def.name,
        value,
        unit: def.unit,
        recorded_at,
        local_date,
        utc_offset_minutes: offset,
        source: raw.source,
        data: raw.data,
    })
}

/// Both stores keep microseconds; truncating at the edge keeps identities stable.
pub fn truncate_to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// Validates a whole request: one bad sample rejects all of it, before anything is written.
pub fn prepare_all(user: &User, provider: &str, raw: Vec<RawSample>) -> Result<Vec<NewSample>> {
    if raw.is_empty() {
        return Err(Error::invalid(
            "samples",
            "must contain at least one sample",
        ));
    }
    if raw.len() > MAX_SAMPLES_PER_REQUEST {
        return Err(Error::invalid(
            "samples",
            format!("at most {MAX_SAMPLES_PER_REQUEST} samples per request"),
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| prepare(user, provider, i, r))
        .collect()
}

/// Writes prepared samples in chunks of [`WRITE_CHUNK`], each chunk one transaction.
pub async fn write(
    store: &dyn Store,
    user: &User,
    samples: Vec<NewSample>,
) -> Result<WriteOutcome> {
    let samples = dedupe_batch(samples);
    let mut total = WriteOutcome::default();
    for chunk in samples.chunks(WRITE_CHUNK) {
        total.merge(store.write_samples(user, chunk).await?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tz: Option<&str>) -> User {
        User {
            id: uuid::Uuid::now_v7(),
            workspace_id: uuid::Uuid::now_v7(),
            external_id: "u".into(),
            email: None,
            display_name: None,
            timezone: tz.map(Into::into),
            metadata: serde_json::json!({}),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn raw(metric: &str, value: f64, unit: Option<&str>, at: &str) -> RawSample {
        RawSample {
            metric: metric.into(),
            value,
            unit: unit.map(Into::into),
            recorded_at: at.into(),
            local_date: None,
            utc_offset: None,
            source: None,
            data: None,
        }
    }

    #[test]
    fn errors_name_index_and_field() {
        let u = user(None);
        let e = prepare_all(
            &u,
            "api",
            vec![
                raw("steps", 1.0, None, "2024-01-01T00:00:00Z"),
                raw("stepz", 1.0, None, "x"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("samples[1].metric"), "{e}");
        let e = prepare(
            &u,
            "api",
            0,
            raw("weight", 1.0, Some("stone"), "2024-01-01T00:00:00Z"),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("samples[0].unit"), "{e}");
        let e = prepare(&u, "api", 2, raw("weight", 1.0, None, "yesterday")).unwrap_err();
        assert!(e.to_string().starts_with("samples[2].recorded_at"), "{e}");
    }

    #[test]
    fn local_date_from_offset_then_timezone_then_utc() {
        let at = "2024-06-01T22:30:00Z";
        let mut r = raw("steps", 1.0, None, at);
        r.utc_offset = Some("+02:00".into());
        assert_eq!(
            prepare(&user(None), "api", 0, r)
                .unwrap()
                .local_date
                .to_string(),
            "2024-06-02"
        );
        assert_eq!(
            prepare(
                &user(Some("Asia/Tokyo")),
                "api",
                0,
                raw("steps", 1.0, None, at)
            )
            .unwrap()
            .local_date
            .to_string(),
            "2024-06-02"
        );
        assert_eq!(
            prepare(&user(None), "api", 0, raw("steps", 1.0, None, at))
                .unwrap()
                .local_date
                .to_string(),
            "2024-06-01"
        );
    }
}
