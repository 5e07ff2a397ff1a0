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
use vitasync_engine::analytics::AnalyticsTable;
use vitasync_engine::cursor::{Cursor, Limit, Page};
use vitasync_engine::domain::User;
use vitasync_engine::services::analytics::{
    self as reads, AnomalyFilter, BaselineFilter, CorrelationFilter, ScoreFilter,
};

use crate::auth::{Authed, Read, Write};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidQuery, path_id};
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
    let filter = BaselineFilter::check(q.metric, q.window)?;
    let epoch = fresh_or_return!(state, q.min_epoch);
    let data = filter.rows(state.store.as_ref(), &user).await?;
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
    let filter = AnomalyFilter::check(
        q.metric,
        q.method,
        q.severity,
        q.status,
        q.from.as_deref(),
        q.to.as_deref(),
    )?;
    let limit = Limit::parse(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()?
        .map(|c| (c.at.date_naive(), c.id));
    let epoch = fresh_or_return!(state, q.min_epoch);
    let rows = filter
        .page(state.store.as_ref(), &user, after, limit.0 + 1)
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
    let filter = CorrelationFilter::check(q.min_strength.as_deref(), "lag", q.lag, q.metric)?;
    let epoch = fresh_or_return!(state, q.min_epoch);
    let data = filter.rows(state.store.as_ref(), &user).await?;
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
    let filter = ScoreFilter::check(q.from.as_deref(), q.to.as_deref())?;
    let epoch = fresh_or_return!(state, q.min_epoch);
    let data = filter.rows(state.store.as_ref(), &user).await?;
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
    let data = reads::records(state.store.as_ref(), &user, None).await?;
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
    let data = reads::context(state.store.as_ref(), &user).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": data, "epoch": epoch})))
}
