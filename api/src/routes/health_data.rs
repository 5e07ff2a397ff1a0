//! A user's health samples: push (idempotent upsert), list, daily aggregates, summary.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::domain::{DailyValue, MetricSummary, Sample, SampleQuery};
use vitasync_engine::services::ingest::{self as ingest_svc, RawSample};
use vitasync_engine::services::query::{check_metric, check_order, date_bounds, instant_or_date};
use vitasync_engine::store;

use crate::auth::{Authed, Read, Write};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidJson, ValidQuery};
use crate::routes::{Data, List, path_user};
use crate::state::AppState;

/// Provider name recorded for samples pushed through the API.
pub const PUSH_PROVIDER: &str = "api";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// 1 to 10,000 samples. One invalid sample rejects the whole request.
    pub samples: Vec<RawSample>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// The analytics epoch this write was assigned (0 when it changed nothing); analytics
    /// reads with `min_epoch` at or above it include its effect.
    pub epoch: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SampleListQuery {
    /// Only this metric.
    pub metric: Option<String>,
    /// Only this provider (`api` for pushed data).
    pub provider: Option<String>,
    /// From this instant (RFC 3339) or UTC date (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Up to this instant (RFC 3339, exclusive) or UTC date (YYYY-MM-DD, inclusive).
    pub to: Option<String>,
    /// Page size, 1-1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// Only this metric.
    pub metric: Option<String>,
    /// First local date (YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    /// Last local date (YYYY-MM-DD), inclusive.
    pub to: Option<String>,
}

/// Pushes samples (provider `api`). Idempotent: re-sending a sample changes nothing; a new
/// value for the same (metric, recorded_at) updates it.
#[utoipa::path(post, path = "/v1/users/{user_id}/health", tag = "health", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)), request_body = IngestBody,
    responses((status = 200, body = IngestResult), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/health")]
pub async fn ingest(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ValidJson<IngestBody>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    let samples = ingest_svc::prepare_all(&user, PUSH_PROVIDER, body.0.samples)?;
    let outcome = ingest_svc::write(state.store.as_ref(), &user, samples).await?;
    state
        .metrics
        .record_write(outcome.inserted, outcome.updated, outcome.unchanged);
    let epoch = state
        .sync
        .committed(&user, outcome.changes, chrono::Utc::now());
    Ok(HttpResponse::Ok().json(IngestResult {
        inserted: outcome.inserted,
        updated: outcome.updated,
        unchanged: outcome.unchanged,
        epoch,
    }))
}

/// Lists samples, newest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/health", tag = "health", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), SampleListQuery),
    responses((status = 200, body = List<Sample>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/health")]
pub async fn list(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<SampleListQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    check_metric("metric", q.metric.as_deref())?;
    let limit = Limit::parse(q.limit)?;
    let after = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let query = SampleQuery {
        metric: q.metric,
        provider: q.provider,
        from: q
            .from
            .as_deref()
            .map(|s| instant_or_date("from", s, false))
            .transpose()?,
        to: q
            .to
            .as_deref()
            .map(|s| instant_or_date("to", s, true))
            .transpose()?,
    };
    check_order(query.from, query.to)?;
    let page = state
        .store
        .list_samples(&user, &query, limit, after)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page)))
}

/// Daily values per local date, using each metric's aggregation rule. When several providers
/// report a metric on the same date, the highest-priority provider's samples are used.
#[utoipa::path(get, path = "/v1/users/{user_id}/health/daily", tag = "health", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), DailyQuery),
    responses((status = 200, body = Data<Vec<DailyValue>>), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/health/daily")]
pub async fn daily(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<DailyQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    check_metric("metric", q.metric.as_deref())?;
    let (from, to) = date_bounds(q.from.as_deref(), q.to.as_deref())?;
    check_order(from, to)?;
    let groups = state
        .store
        .daily_groups(&user, q.metric.as_deref(), from, to)
        .await?;
    let priority =
        vitasync_engine::services::analytics::provider_priority(state.store.as_ref(), &user)
            .await?;
    Ok(HttpResponse::Ok().json(Data {
        data: store::daily_values(groups, &priority),
    }))
}

/// Per metric: how many samples, first and last date, latest value.
#[utoipa::path(get, path = "/v1/users/{user_id}/health/summary", tag = "health", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Data<Vec<MetricSummary>>), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/health/summary")]
pub async fn summary(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: state.store.metric_summaries(&user).await?,
    }))
}
