//! From the view's changed keys to rows of the analytics tables, in the shapes the API
//! returns: each dirty key becomes a put (its live row) or a gone (no live row left).
//! Anomalies get a stable id derived from their key, so re-detection after a restart or a
//! correction updates the same row and keeps its acknowledgement.

use serde_json::{Value, json};
use uuid::Uuid;
use vitasync_engine::analytics::{AnalyticsWrite, AnomalyRow};
use vitasync_engine::catalogue;

use crate::model::{
    Anomaly, Baseline, Correlation, F64, Method, Record, Scores, WorkoutKind, date_of, from_fixed,
    metric_name,
};
use crate::view::{Dirty, Rows, live, live_all};

/// Namespace of anomaly ids (a fixed random UUID).
const ANOMALY_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_4a1e_9d2b_4c3a_8e7f_1b6d_2a9c_0e41);

const METHODS: [Method; 4] = [
    Method::Zscore,
    Method::Iqr,
    Method::Clinical,
    Method::RhrElevation,
];

pub fn anomaly_id(user: u128, metric: u16, day: i32, method: Method) -> Uuid {
    let name = format!(
        "{}/{}/{}/{}",
        Uuid::from_u128(user),
        metric_name(metric),
        date_of(day),
        method.as_str()
    );
    Uuid::new_v5(&ANOMALY_NAMESPACE, name.as_bytes())
}

fn opt(v: Option<F64>) -> Value {
    v.map_or(Value::Null, |x| json!(x.0))
}

fn unit(metric: u16) -> &'static str {
    catalogue::CATALOGUE[metric as usize].unit
}

fn label(metric: u16) -> String {
    let name = metric_name(metric).replace('_', " ");
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

pub fn baseline_body(metric: u16, window: u32, b: &Baseline) -> Value {
    json!({
        "metric": metric_name(metric), "window_days": window, "n": b.n, "mean": b.mean.0,
        "sd": opt(b.sd), "median": b.median.0, "p25": b.p25.0, "p75": b.p75.0, "min": b.min.0,
        "max": b.max.0, "slope_per_day": opt(b.slope_per_day), "change_7d_pct": opt(b.change_7d_pct),
        "as_of_date": date_of(b.as_of), "unit": unit(metric),
    })
}

/// A title and a description a person can read, from the finding's facts only.
pub fn describe(metric: u16, day: i32, a: &Anomaly) -> (String, String) {
    let v = from_fixed(a.value);
    let u = unit(metric);
    let what = label(metric);
    let date = date_of(day);
    let high = v > a.expected.0;
    match a.method {
        Method::Clinical => (
            format!(
                "{what} {} the clinical threshold",
                if high { "above" } else { "below" }
            ),
            format!(
                "{what} was {v:.1} {u} on {date}, beyond the threshold of {:.1} {u}.",
                a.expected.0
            ),
        ),
        Method::RhrElevation => (
            "Resting heart rate elevated two days running".to_string(),
            format!(
                "Resting heart rate was {v:.1} {u} on {date}, at least 4 {u} above the median of the previous 28 days ({:.1} {u}) for a second consecutive day.",
                a.expected.0
            ),
        ),
        Method::Zscore => (
            format!("{what} unusually {}", if high { "high" } else { "low" }),
            format!(
                "{what} was {v:.1} {u} on {date}, {:.1} standard deviations {} the mean of the previous 28 days ({:.1} {u}).",
                a.z.map_or(0.0, |z| z.0.abs()),
                if high { "above" } else { "below" },
                a.expected.0
            ),
        ),
        Method::Iqr => (
            format!("{what} outside its usual range"),
            format!(
                "{what} was {v:.1} {u} on {date}, outside the interquartile fences of the previous 28 days (median {:.1} {u}).",
                a.expected.0
            ),
        ),
    }
}

pub fn anomaly_body(id: Uuid, metric: u16, day: i32, a: &Anomaly) -> Value {
    let (title, description) = describe(metric, day, a);
    json!({
        "id": id, "metric": metric_name(metric), "date": date_of(day), "method": a.method.as_str(),
        "severity": a.severity.as_str(), "value": from_fixed(a.value), "expected": a.expected.0,
        "z": opt(a.z), "title": title, "description": description, "unit": unit(metric),
    })
}

pub fn strength(r: f64) -> &'static str {
    match r.abs() {
        x if x >= 0.9 => "very_strong",
        x if x >= 0.7 => "strong",
        x if x >= 0.5 => "moderate",
        _ => "weak",
    }
}

pub fn correlation_body(a: u16, b: u16, lag: u8, c: &Correlation) -> Value {
    json!({
        "metric_a": metric_name(a), "metric_b": metric_name(b), "lag_days": lag, "n": c.n,
        "pearson_r": c.pearson_r.0, "pearson_p": c.pearson_p.0, "spearman_rho": opt(c.spearman_rho),
        "spearman_p": opt(c.spearman_p), "strength": strength(c.pearson_r.0),
        "direction": if c.pearson_r.0 >= 0.0 { "positive" } else { "negative" },
    })
}

pub fn score_body(day: i32, s: &Scores) -> Value {
    json!({
        "date": date_of(day), "overall": s.overall.0, "sleep": opt(s.sleep),
        "activity": opt(s.activity), "cardio": opt(s.cardio), "recovery": opt(s.recovery),
    })
}

pub fn workout_record_body(activity: &str, kind: WorkoutKind, r: &Record) -> Value {
    let (measure, unit) = kind.measure();
    json!({
        "metric": measure, "kind": kind.as_str(), "activity_type": activity,
        "value": from_fixed(r.value), "date": date_of(r.day), "unit": unit,
    })
}

/// The table key of a workout record: one row per (measure, activity type).
pub fn workout_record_metric(activity: &str, kind: WorkoutKind) -> String {
    format!("{}:{activity}", kind.measure().0)
}

pub fn record_body(metric: u16, r: &Record) -> Value {
    json!({
        "metric": metric_name(metric), "kind": "best_daily", "value": from_fixed(r.value),
        "date": date_of(r.day), "unit": unit(metric),
    })
}

/// The table writes that bring the tables in line with `rows` for every dirty key.
pub fn writes(dirty: &Dirty, rows: &Rows) -> Vec<AnalyticsWrite> {
    let mut out = Vec::new();
    for key in dirty.baselines.keys() {
        out.push(baseline_write(key, live(&rows.baselines, key)));
    }
    for key in dirty.anomalies.keys() {
        out.extend(anomaly_writes(key, &live_all(&rows.anomalies, key)));
    }
    for key in dirty.correlations.keys() {
        out.push(correlation_write(key, live(&rows.correlations, key)));
    }
    for key in dirty.scores.keys() {
        out.push(score_write(key, live(&rows.scores, key)));
    }
    for key in dirty.workout_records.keys() {
        out.push(workout_record_write(key, live(&rows.workout_records, key)));
    }
    for key in dirty.records.keys() {
        out.push(record_write(key, live(&rows.records, key)));
    }
    out
}

/// The same keys as [`writes`], as they were before the changes the dirty set records: the
/// rows the tables held, to tell what is news ([`crate::reconcile::diff`]).
pub fn previous(dirty: &Dirty) -> Vec<AnalyticsWrite> {
    let mut out = Vec::new();
    for (key, before) in &dirty.baselines {
        out.push(baseline_write(key, before.as_ref()));
    }
    for (key, before) in &dirty.anomalies {
        out.extend(anomaly_writes(key, &before.iter().collect::<Vec<_>>()));
    }
    for (key, before) in &dirty.correlations {
        out.push(correlation_write(key, before.as_ref()));
    }
    for (key, before) in &dirty.scores {
        out.push(score_write(key, before.as_ref()));
    }
    for (key, before) in &dirty.workout_records {
        out.push(workout_record_write(key, before.as_ref()));
    }
    for (key, before) in &dirty.records {
        out.push(record_write(key, before.as_ref()));
    }
    out
}

fn baseline_write(&(u, m, w): &(u128, u16, u32), b: Option<&Baseline>) -> AnalyticsWrite {
    AnalyticsWrite::Baseline {
        user_id: Uuid::from_u128(u),
        metric: metric_name(m).to_string(),
        window_days: w,
        put: b.map(|b| (date_of(b.as_of), baseline_body(m, w, b))),
    }
}

/// One write per method: the key's findings put, the methods without one gone.
fn anomaly_writes(&(u, m, d): &(u128, u16, i32), found: &[&Anomaly]) -> Vec<AnalyticsWrite> {
    METHODS
        .into_iter()
        .map(|method| {
            let id = anomaly_id(u, m, d, method);
            let put = found
                .iter()
                .find(|a| a.method == method)
                .map(|a| AnomalyRow {
                    metric: metric_name(m).to_string(),
                    date: date_of(d),
                    method: method.as_str().to_string(),
                    severity: a.severity.as_str().to_string(),
                    body: anomaly_body(id, m, d, a),
                });
            AnalyticsWrite::Anomaly {
                id,
                user_id: Uuid::from_u128(u),
                put,
            }
        })
        .collect()
}

fn correlation_write(
    &(u, a, b, lag): &(u128, u16, u16, u8),
    c: Option<&Correlation>,
) -> AnalyticsWrite {
    AnalyticsWrite::Correlation {
        user_id: Uuid::from_u128(u),
        metric_a: metric_name(a).to_string(),
        metric_b: metric_name(b).to_string(),
        lag_days: lag,
        put: c.map(|c| (c.pearson_r.0.abs(), correlation_body(a, b, lag, c))),
    }
}

fn score_write(&(u, d): &(u128, i32), s: Option<&Scores>) -> AnalyticsWrite {
    AnalyticsWrite::Score {
        user_id: Uuid::from_u128(u),
        date: date_of(d),
        put: s.map(|s| score_body(d, s)),
    }
}

fn workout_record_write(
    (u, activity, kind): &crate::view::WorkoutKey,
    r: Option<&Record>,
) -> AnalyticsWrite {
    AnalyticsWrite::Record {
        user_id: Uuid::from_u128(*u),
        metric: workout_record_metric(activity, *kind),
        kind: kind.as_str().to_string(),
        put: r.map(|r| workout_record_body(activity, *kind, r)),
    }
}

fn record_write(&(u, m): &(u128, u16), r: Option<&Record>) -> AnalyticsWrite {
    AnalyticsWrite::Record {
        user_id: Uuid::from_u128(u),
        metric: metric_name(m).to_string(),
        kind: "best_daily".to_string(),
        put: r.map(|r| record_body(m, r)),
    }
}
