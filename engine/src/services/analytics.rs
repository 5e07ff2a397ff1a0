//! Reads of the materialised analytics shared by the REST API and the MCP server: the filters
//! each list accepts (checked up front, errors name the field) and the LLM-ready context
//! document. Nothing here computes analytics; everything comes from the stored tables.

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::analytics::AnalyticsTable;
use crate::domain::User;
use crate::error::{Error, Result};
use crate::services::query::{check_metric, check_order, date_bounds, one_of};
use crate::store::Store;

pub const METHODS: [&str; 4] = ["zscore", "iqr", "clinical", "rhr_elevation"];
pub const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];
pub const STATUSES: [&str; 3] = ["open", "acknowledged", "dismissed"];
/// Correlation strengths, weakest first.
pub const STRENGTHS: [&str; 4] = ["weak", "moderate", "strong", "very_strong"];

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

fn in_dates(v: &Value, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    let d = text(v, "date");
    from.is_none_or(|f| d >= f.to_string().as_str())
        && to.is_none_or(|t| d <= t.to_string().as_str())
}

/// Baseline filter: metric and window (28 or 90).
#[derive(Debug, Clone, Default)]
pub struct BaselineFilter {
    pub metric: Option<String>,
    pub window: Option<u32>,
}

impl BaselineFilter {
    pub fn check(metric: Option<String>, window: Option<u32>) -> Result<Self> {
        check_metric("metric", metric.as_deref())?;
        if let Some(w) = window
            && w != 28
            && w != 90
        {
            return Err(Error::invalid("window", "must be 28 or 90"));
        }
        Ok(BaselineFilter { metric, window })
    }

    pub async fn rows(&self, store: &dyn Store, user: &User) -> Result<Vec<Value>> {
        Ok(store
            .analytics_rows(user, AnalyticsTable::Baselines)
            .await?
            .into_iter()
            .filter(|b| {
                self.metric
                    .as_deref()
                    .is_none_or(|m| text(b, "metric") == m)
            })
            .filter(|b| self.window.is_none_or(|w| b["window_days"] == w))
            .collect())
    }
}

/// Anomaly filter; the raw strings as the caller gave them.
#[derive(Debug, Clone, Default)]
pub struct AnomalyFilter {
    pub metric: Option<String>,
    pub method: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl AnomalyFilter {
    pub fn check(
        metric: Option<String>,
        method: Option<String>,
        severity: Option<String>,
        status: Option<String>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self> {
        check_metric("metric", metric.as_deref())?;
        one_of("method", method.as_deref(), &METHODS)?;
        one_of("severity", severity.as_deref(), &SEVERITIES)?;
        one_of("status", status.as_deref(), &STATUSES)?;
        let (from, to) = date_bounds(from, to)?;
        Ok(AnomalyFilter {
            metric,
            method,
            severity,
            status,
            from,
            to,
        })
    }

    /// Matching anomalies, newest first (then by id).
    pub async fn rows(&self, store: &dyn Store, user: &User) -> Result<Vec<Value>> {
        Ok(self
            .page(store, user, None, u32::MAX)
            .await?
            .into_iter()
            .map(|(_, _, body)| body)
            .collect())
    }

    /// Up to `limit` matching anomalies after the (date, id) position `after`, newest first,
    /// each with its position; filtered and cut in the store's query.
    pub async fn page(
        &self,
        store: &dyn Store,
        user: &User,
        after: Option<(NaiveDate, uuid::Uuid)>,
        limit: u32,
    ) -> Result<Vec<(NaiveDate, uuid::Uuid, Value)>> {
        store.anomalies_page(user, self, after, limit).await
    }
}

/// Correlation filter.
#[derive(Debug, Clone, Default)]
pub struct CorrelationFilter {
    /// Index into [`STRENGTHS`]: that strength or stronger.
    pub min_strength: usize,
    pub lag_days: Option<u8>,
    pub metric: Option<String>,
}

fn strength_rank(s: &str) -> usize {
    STRENGTHS.iter().position(|x| *x == s).unwrap_or(0)
}

impl CorrelationFilter {
    /// `lag_field` is the caller's name for the lag (`lag` in REST, `lag_days` in MCP).
    pub fn check(
        min_strength: Option<&str>,
        lag_field: &'static str,
        lag_days: Option<u8>,
        metric: Option<String>,
    ) -> Result<Self> {
        check_metric("metric", metric.as_deref())?;
        one_of("min_strength", min_strength, &STRENGTHS)?;
        if let Some(l) = lag_days
            && l > 1
        {
            return Err(Error::invalid(lag_field, "must be 0 or 1"));
        }
        Ok(CorrelationFilter {
            min_strength: min_strength.map(strength_rank).unwrap_or(0),
            lag_days,
            metric,
        })
    }

    /// Matching significant correlations, strongest first.
    pub async fn rows(&self, store: &dyn Store, user: &User) -> Result<Vec<Value>> {
        Ok(store
            .analytics_rows(user, AnalyticsTable::Correlations)
            .await?
            .into_iter()
            .filter(|c| strength_rank(text(c, "strength")) >= self.min_strength)
            .filter(|c| self.lag_days.is_none_or(|l| c["lag_days"] == l))
            .filter(|c| {
                self.metric
                    .as_deref()
                    .is_none_or(|m| text(c, "metric_a") == m || text(c, "metric_b") == m)
            })
            .collect())
    }
}

/// Score filter: an inclusive date range.
#[derive(Debug, Clone, Default)]
pub struct ScoreFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl ScoreFilter {
    pub fn check(from: Option<&str>, to: Option<&str>) -> Result<Self> {
        let (from, to) = date_bounds(from, to)?;
        check_order(from, to)?;
        Ok(ScoreFilter { from, to })
    }

    /// Daily scores in the range, oldest first.
    pub async fn rows(&self, store: &dyn Store, user: &User) -> Result<Vec<Value>> {
        Ok(store
            .analytics_rows(user, AnalyticsTable::Scores)
            .await?
            .into_iter()
            .filter(|s| in_dates(s, self.from, self.to))
            .collect())
    }
}

/// Personal records, optionally of one metric.
pub async fn records(store: &dyn Store, user: &User, metric: Option<&str>) -> Result<Vec<Value>> {
    check_metric("metric", metric)?;
    Ok(store
        .analytics_rows(user, AnalyticsTable::Records)
        .await?
        .into_iter()
        .filter(|r| metric.is_none_or(|m| text(r, "metric") == m))
        .collect())
}

/// Severity order for the context: most severe first.
fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 0,
        "warning" => 1,
        _ => 2,
    }
}

/// The LLM-ready context: everything known about the user's analytics in one document, with a
/// plain-English summary built deterministically from those facts. This is the `data` of the
/// REST response; callers add the epoch they know.
pub async fn context(store: &dyn Store, user: &User) -> Result<Value> {
    let windows: Vec<Value> = store
        .analytics_rows(user, AnalyticsTable::Baselines)
        .await?
        .into_iter()
        .filter(|b| b["window_days"] == 28)
        .collect();
    let mut active: Vec<Value> = store
        .analytics_rows(user, AnalyticsTable::Anomalies)
        .await?
        .into_iter()
        .filter(|a| text(a, "status") != "dismissed")
        .collect();
    // Newest first, then most severe (a stable sort keeps the date order within a severity).
    active.sort_by(|a, b| text(b, "date").cmp(text(a, "date")));
    active.sort_by_key(|a| severity_rank(text(a, "severity")));
    let open_count = active.len();
    active.truncate(20);
    let mut top = store
        .analytics_rows(user, AnalyticsTable::Correlations)
        .await?;
    top.truncate(10);
    let latest = store
        .analytics_rows(user, AnalyticsTable::Scores)
        .await?
        .pop();
    let bests = store.analytics_rows(user, AnalyticsTable::Records).await?;
    let sources = store.metric_summaries(user).await?;
    let trends: Vec<Value> = windows
        .iter()
        .filter_map(|b| {
            let pct = b["change_7d_pct"].as_f64()?;
            (pct.abs() >= 5.0).then(|| {
                json!({"metric": b["metric"], "change_7d_pct": pct,
                    "direction": if pct > 0.0 { "up" } else { "down" }})
            })
        })
        .collect();
    let summary = summarize(
        user,
        &windows,
        (open_count, &active),
        &top,
        latest.as_ref(),
        &trends,
    );
    Ok(json!({
        "user": {"id": user.id, "external_id": user.external_id, "timezone": user.timezone},
        "baselines": windows,
        "trends": trends,
        "active_anomalies": active,
        "active_anomaly_count": open_count,
        "top_correlations": top,
        "latest_scores": latest,
        "records": bests,
        "freshness": sources,
        "summary": summary,
    }))
}

/// A paragraph built only from the facts above (no model involved), so it is reproducible.
fn summarize(
    user: &User,
    window_rows: &[Value],
    (open_count, open_rows): (usize, &[Value]),
    pairs: &[Value],
    day: Option<&Value>,
    moves: &[Value],
) -> String {
    let mut parts = Vec::new();
    let name = user.display_name.as_deref().unwrap_or(&user.external_id);
    if window_rows.is_empty() {
        return format!("No analytics are available for {name} yet.");
    }
    parts.push(format!(
        "{name} has 28-day baselines for {} metrics.",
        window_rows.len()
    ));
    if let Some(s) = day {
        parts.push(format!(
            "The latest health score ({}) is {:.0}/100.",
            text(s, "date"),
            s["overall"].as_f64().unwrap_or_default()
        ));
    }
    match open_rows.first() {
        None => parts.push("There are no open anomalies.".to_string()),
        Some(a) => parts.push(format!(
            "{} anomal{} need attention; the most important: {} ({}).",
            open_count,
            if open_count == 1 { "y" } else { "ies" },
            text(a, "title"),
            text(a, "date")
        )),
    }
    for t in moves.iter().take(3) {
        parts.push(format!(
            "{} is {} {:.0} % this week against its 28-day mean.",
            text(t, "metric").replace('_', " "),
            text(t, "direction"),
            t["change_7d_pct"].as_f64().unwrap_or_default().abs()
        ));
    }
    if let Some(c) = pairs.first() {
        parts.push(format!(
            "The strongest relationship is a {} {} correlation between {} and {} (r = {:.2}, n = {}).",
            text(c, "strength").replace('_', " "),
            text(c, "direction"),
            text(c, "metric_a").replace('_', " "),
            text(c, "metric_b").replace('_', " "),
            c["pearson_r"].as_f64().unwrap_or_default(),
            c["n"]
        ));
    }
    parts.join(" ")
}

/// The provider order of `user`'s workspace (the default where it has none).
pub async fn provider_priority(
    store: &dyn Store,
    user: &User,
) -> Result<crate::catalogue::ProviderPriority> {
    Ok(store
        .workspace(user.workspace_id)
        .await?
        .map(|w| crate::catalogue::ProviderPriority(w.provider_priority))
        .unwrap_or_default())
}
