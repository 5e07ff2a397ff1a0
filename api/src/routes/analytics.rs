//! A user's analytics, read from the materialised tables (nothing is computed per request).
//! Every response says the epoch it reflects; `min_epoch` waits (up to a few seconds, then
//! 503 with `Retry-After`) until the tables include a given write, so a client can read its
//! own writes.

use std::time::Duration;

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use vitasync_engine::Error;
use vitasync_engine::analytics::{AnalyticsTable, AnomalyFilter};
use vitasync_engine::cursor::{Cursor, Limit, Page};
use vitasync_engine::domain::User;

use crate::auth::{Authed, Read, Write};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidQuery, path_id};
use crate::routes::health_data::{check_metric, check_order, date_bounds};
use crate::routes::path_user;
use crate::state::AppState;

/// How long a read waits for `min_epoch` before answering 503.
const FRESHNESS_WAIT: Duration = Duration::from_secs(5);

/// `{"data": [...], "epoch": N}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsList {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    /// The analytics epoch these rows reflect.
    pub epoch: u64,
    /// Where the next page starts (`cursor=`); null on the last page.
    pub next_cursor: Option<String>,
}

impl AnalyticsList {
    fn all(data: Vec<Value>, epoch: u64) -> Self {
        AnalyticsList {
            data,
            epoch,
            next_cursor: None,
        }
    }
}

/// Waits until the tables reflect `min_epoch`; returns the epoch they reflect.
async fn fresh(state: &AppState, min_epoch: Option<u64>) -> Result<u64, ApiResponse> {
    let mut rx = state.analytics.materialized();
    let Some(min) = min_epoch else {
        return Ok(*rx.borrow());
    };
    match tokio::time::timeout(FRESHNESS_WAIT, rx.wait_for(|e| *e >= min)).await {
        Ok(Ok(e)) => Ok(*e),
        _ => Err(ApiResponse(
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(ErrorBody::new(
                    "not_ready",
                    format!("the analytics have not reached epoch {min} yet; retry shortly"),
                )),
        )),
    }
}

/// A finished response that short-circuits a handler.
pub struct ApiResponse(HttpResponse);

async fn rows(state: &AppState, user: &User, table: AnalyticsTable) -> Result<Vec<Value>, Error> {
    state.store.analytics_rows(user, table).await
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_default()
}

macro_rules! fresh_or_return {
    ($state:expr, $min:expr) => {
        match fresh(&$state, $min).await {
            Ok(e) => e,
            Err(ApiResponse(r)) => return Ok(r),
        }
    };
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BaselineQuery {
    pub metric: Option<String>,
    /// 28 or 90.
    pub window: Option<u32>,
    /// Wait until the analytics include this epoch (from a write's response).
    pub min_epoch: Option<u64>,
}

/// Baselines per metric over the 28 and 90 dates ending at the latest date with data.
#[utoipa::path(get, path = "/v1/users/{user_id}/analytics/baselines", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), BaselineQuery),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/v1/users/{user_id}/analytics/baselines")]
pub async fn baselines(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<BaselineQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    check_metric("metric", q.metric.as_deref())?;
    if let Some(w) = q.window
        && w != 28
        && w != 90
    {
        return Err(Error::invalid("window", "must be 28 or 90").into());
    }
    let epoch = fresh_or_return!(state, q.min_epoch);
    let data = rows(&state, &user, AnalyticsTable::Baselines)
        .await?
        .into_iter()
        .filter(|b| q.metric.as_deref().is_none_or(|m| text(b, "metric") == m))
        .filter(|b| q.window.is_none_or(|w| b["window_days"] == w))
        .collect();
    Ok(HttpResponse::Ok().json(AnalyticsList::all(data, epoch)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnomalyQuery {
    pub metric: Option<String>,
    /// zscore, iqr, clinical or rhr_elevation.
    pub method: Option<String>,
    /// info, warning or critical.
    pub severity: Option<String>,
    /// open, acknowledged or dismissed.
    pub status: Option<String>,
    /// First date (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Last date (YYYY-MM-DD), inclusive.
    pub to: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub min_epoch: Option<u64>,
}

fn one_of(field: &'static str, v: Option<&str>, allowed: &[&str]) -> Result<(), Error> {
    match v {
        Some(x) if !allowed.contains(&x) => Err(Error::invalid(
            field,
            format!("must be one of {}", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

/// Anomalies, newest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/analytics/anomalies", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), AnomalyQuery),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/v1/users/{user_id}/analytics/anomalies")]
pub async fn anomalies(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<AnomalyQuery>,
) -> ApiResult<HttpResponse> {
    list_anomalies(auth, state, path, q).await
}

async fn list_anomalies(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<AnomalyQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    check_metric("metric", q.metric.as_deref())?;
    one_of(
        "method",
        q.method.as_deref(),
        &["zscore", "iqr", "clinical", "rhr_elevation"],
    )?;
    one_of(
        "severity",
        q.severity.as_deref(),
        &["info", "warning", "critical"],
    )?;
    one_of(
        "status",
        q.status.as_deref(),
        &["open", "acknowledged", "dismissed"],
    )?;
    let (from, to) = date_bounds(q.from.as_deref(), q.to.as_deref())?;
    let limit = Limit::parse(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()?
        .map(|c| (c.at.date_naive(), c.id));
    let epoch = fresh_or_return!(state, q.min_epoch);
    let filter = AnomalyFilter {
        metric: q.metric,
        method: q.method,
        severity: q.severity,
        status: q.status,
        from,
        to,
    };
    let rows = state
        .store
        .anomalies_page(&user, &filter, after, limit.0 + 1)
        .await?;
    // A cursor is the (date, id) of the page's last row; the date travels as its midnight.
    let page = Page::from_overfetch(rows, limit, |(date, id, _)| Cursor {
        at: date.and_time(chrono::NaiveTime::MIN).and_utc(),
        id: *id,
    });
    Ok(HttpResponse::Ok().json(AnalyticsList {
        data: page.items.into_iter().map(|(_, _, body)| body).collect(),
        epoch,
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

async fn set_status(
    state: &AppState,
    auth: &Authed<Write>,
    path: &(String, String),
    status: &str,
) -> ApiResult<HttpResponse> {
    let user = path_user(state, auth, &path.0).await?;
    let id = path_id("anomaly", &path.1)?;
    if !state
        .store
        .set_anomaly_status(&user, id, status, chrono::Utc::now())
        .await?
    {
        return Err(Error::NotFound("anomaly").into());
    }
    let found = rows(state, &user, AnalyticsTable::Anomalies)
        .await?
        .into_iter()
        .find(|a| text(a, "id") == id.to_string())
        .ok_or(Error::NotFound("anomaly"))?;
    Ok(HttpResponse::Ok().json(found))
}

/// Marks an anomaly acknowledged (kept across recomputation).
#[utoipa::path(post, path = "/v1/users/{user_id}/analytics/anomalies/{anomaly_id}/acknowledge", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("anomaly_id" = uuid::Uuid, Path)),
    request_body(content = Object, description = "empty"),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/analytics/anomalies/{anomaly_id}/acknowledge")]
pub async fn acknowledge(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    set_status(&state, &auth, &path, "acknowledged").await
}

/// Marks an anomaly dismissed (kept across recomputation).
#[utoipa::path(post, path = "/v1/users/{user_id}/analytics/anomalies/{anomaly_id}/dismiss", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("anomaly_id" = uuid::Uuid, Path)),
    request_body(content = Object, description = "empty"),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/analytics/anomalies/{anomaly_id}/dismiss")]
pub async fn dismiss(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    set_status(&state, &auth, &path, "dismissed").await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CorrelationQuery {
    /// weak, moderate, strong or very_strong: that strength or stronger.
    pub min_strength: Option<String>,
    /// 0 or 1.
    pub lag: Option<u8>,
    /// Only pairs involving this metric.
    pub metric: Option<String>,
    pub min_epoch: Option<u64>,
}

const STRENGTHS: [&str; 4] = ["weak", "moderate", "strong", "very_strong"];

/// Significant correlations, strongest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/analytics/correlations", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), CorrelationQuery),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/v1/users/{user_id}/analytics/correlations")]
pub async fn correlations(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<CorrelationQuery>,
) -> ApiResult<HttpResponse> {
    list_correlations(auth, state, path, q).await
}

async fn list_correlations(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<CorrelationQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    check_metric("metric", q.metric.as_deref())?;
    one_of("min_strength", q.min_strength.as_deref(), &STRENGTHS)?;
    if let Some(l) = q.lag
        && l > 1
    {
        return Err(Error::invalid("lag", "must be 0 or 1").into());
    }
    let rank = |s: &str| STRENGTHS.iter().position(|x| *x == s).unwrap_or(0);
    let min = q.min_strength.as_deref().map(rank).unwrap_or(0);
    let epoch = fresh_or_return!(state, q.min_epoch);
    let data = rows(&state, &user, AnalyticsTable::Correlations)
        .await?
        .into_iter()
        .filter(|c| rank(text(c, "strength")) >= min)
        .filter(|c| q.lag.is_none_or(|l| c["lag_days"] == l))
        .filter(|c| {
            q.metric
                .as_deref()
                .is_none_or(|m| text(c, "metric_a") == m || text(c, "metric_b") == m)
        })
        .collect();
    Ok(HttpResponse::Ok().json(AnalyticsList::all(data, epoch)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScoreQuery {
    /// First date (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Last date (YYYY-MM-DD), inclusive.
    pub to: Option<String>,
    pub min_epoch: Option<u64>,
}

/// Daily health scores, oldest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/analytics/scores", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ScoreQuery),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/v1/users/{user_id}/analytics/scores")]
pub async fn scores(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<ScoreQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    let (from, to) = date_bounds(q.from.as_deref(), q.to.as_deref())?;
    check_order(from, to)?;
    let epoch = fresh_or_return!(state, q.min_epoch);
    let data = rows(&state, &user, AnalyticsTable::Scores)
        .await?
        .into_iter()
        .filter(|s| from.is_none_or(|f| text(s, "date") >= f.to_string().as_str()))
        .filter(|s| to.is_none_or(|t| text(s, "date") <= t.to_string().as_str()))
        .collect();
    Ok(HttpResponse::Ok().json(AnalyticsList::all(data, epoch)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FreshQuery {
    pub min_epoch: Option<u64>,
}

/// The latest day's scores (an empty list when there are none).
#[utoipa::path(get, path = "/v1/users/{user_id}/analytics/scores/latest", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), FreshQuery),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/v1/users/{user_id}/analytics/scores/latest")]
pub async fn latest_scores(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<FreshQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let epoch = fresh_or_return!(state, q.0.min_epoch);
    let data = rows(&state, &user, AnalyticsTable::Scores)
        .await?
        .into_iter()
        .last()
        .into_iter()
        .collect();
    Ok(HttpResponse::Ok().json(AnalyticsList::all(data, epoch)))
}

/// Personal records: each metric's best daily value.
#[utoipa::path(get, path = "/v1/users/{user_id}/analytics/records", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), FreshQuery),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/v1/users/{user_id}/analytics/records")]
pub async fn records(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<FreshQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let epoch = fresh_or_return!(state, q.0.min_epoch);
    let data = rows(&state, &user, AnalyticsTable::Records).await?;
    Ok(HttpResponse::Ok().json(AnalyticsList::all(data, epoch)))
}

/// The seed's `POST analytics/anomalies`: the materialised anomalies (filters in the query).
#[utoipa::path(post, path = "/v1/users/{user_id}/analytics/anomalies", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), AnomalyQuery),
    request_body(content = Object, description = "ignored; kept for compatibility"),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/analytics/anomalies")]
pub async fn anomalies_alias(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<AnomalyQuery>,
) -> ApiResult<HttpResponse> {
    list_anomalies(auth, state, path, q).await
}

/// The seed's `POST analytics/correlations`: the materialised correlations.
#[utoipa::path(post, path = "/v1/users/{user_id}/analytics/correlations", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), CorrelationQuery),
    request_body(content = Object, description = "ignored; kept for compatibility"),
    responses((status = 200, body = AnalyticsList), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/analytics/correlations")]
pub async fn correlations_alias(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<CorrelationQuery>,
) -> ApiResult<HttpResponse> {
    list_correlations(auth, state, path, q).await
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
/// plain-English summary built deterministically from those facts.
#[utoipa::path(get, path = "/v1/users/{user_id}/analytics/context", tag = "analytics", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), FreshQuery),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/v1/users/{user_id}/analytics/context")]
pub async fn context(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<FreshQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let epoch = fresh_or_return!(state, q.0.min_epoch);
    let windows: Vec<Value> = rows(&state, &user, AnalyticsTable::Baselines)
        .await?
        .into_iter()
        .filter(|b| b["window_days"] == 28)
        .collect();
    let mut active: Vec<Value> = rows(&state, &user, AnalyticsTable::Anomalies)
        .await?
        .into_iter()
        .filter(|a| text(a, "status") != "dismissed")
        .collect();
    // Newest first, then most severe (a stable sort keeps the date order within a severity).
    active.sort_by(|a, b| text(b, "date").cmp(text(a, "date")));
    active.sort_by_key(|a| severity_rank(text(a, "severity")));
    let open_count = active.len();
    active.truncate(20);
    let mut top = rows(&state, &user, AnalyticsTable::Correlations).await?;
    top.truncate(10);
    let latest = rows(&state, &user, AnalyticsTable::Scores).await?.pop();
    let bests = rows(&state, &user, AnalyticsTable::Records).await?;
    let sources = state.store.metric_summaries(&user).await?;
    let trends: Vec<Value> = windows
        .iter()
        .filter_map(|b| {
            let pct = b["change_7d_pct"].as_f64()?;
            (pct.abs() >= 5.0).then(|| {
                serde_json::json!({"metric": b["metric"], "change_7d_pct": pct,
                    "direction": if pct > 0.0 { "up" } else { "down" }})
            })
        })
        .collect();
    let summary = summarize(
        &user,
        &windows,
        (open_count, &active),
        &top,
        latest.as_ref(),
        &trends,
    );
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "data": {
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
        },
        "epoch": epoch,
    })))
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
