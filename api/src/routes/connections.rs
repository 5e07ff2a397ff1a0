//! A user's provider connections, their sync jobs and the events they bring.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vitasync_engine::Error;
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::domain::{ConnectionView, Event, EventQuery, EventType, SyncJob};
use vitasync_engine::services::connections as svc;

use crate::auth::{Authed, Read, Write};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{OptionalJson, ValidJson, ValidQuery, path_id};
use crate::routes::{Data, List, path_user};
use crate::state::AppState;
use vitasync_engine::services::query::{check_order, instant_or_date};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectBody {
    /// A provider that needs no OAuth (`demo`); OAuth providers connect through
    /// `GET /v1/oauth/{provider}/authorize`.
    pub provider: String,
    /// Days of history to backfill (1-3650; the provider's default when absent).
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Connected {
    pub connection: ConnectionView,
    /// The backfill job that fills the connection.
    pub job_id: uuid::Uuid,
}

/// Connects a provider that needs no OAuth and starts its backfill.
#[utoipa::path(post, path = "/v1/users/{user_id}/connections", tag = "connections", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)), request_body = ConnectBody,
    responses((status = 201, body = Connected), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/v1/users/{user_id}/connections")]
pub async fn create(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ValidJson<ConnectBody>,
) -> ApiResult<HttpResponse> {
    let user_id = path_id("user", &path)?;
    let done = svc::connect_direct(
        &state.sync,
        auth.workspace_id,
        user_id,
        &body.0.provider,
        body.0.days,
    )
    .await?;
    state.actors.enqueue(done.job.clone());
    Ok(HttpResponse::Created().json(Connected {
        connection: ConnectionView::from(&done.connection),
        job_id: done.job.id,
    }))
}

/// The user's connections, oldest first (disconnected ones included).
#[utoipa::path(get, path = "/v1/users/{user_id}/connections", tag = "connections", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Data<Vec<ConnectionView>>), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/connections")]
pub async fn list(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let data: Vec<ConnectionView> = state
        .store
        .list_connections(&user)
        .await?
        .iter()
        .map(ConnectionView::from)
        .collect();
    Ok(HttpResponse::Ok().json(Data { data }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisconnectQuery {
    /// Also delete the samples and events this connection brought.
    pub delete_data: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Disconnected {
    pub samples_deleted: u64,
}

/// Disconnects: revokes at the provider where possible, deletes the tokens, and optionally the
/// data.
#[utoipa::path(delete, path = "/v1/users/{user_id}/connections/{connection_id}", tag = "connections", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("connection_id" = uuid::Uuid, Path), DisconnectQuery),
    responses((status = 200, body = Disconnected), (status = 404, body = ErrorBody)))]
#[delete("/v1/users/{user_id}/connections/{connection_id}")]
pub async fn delete(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: ValidQuery<DisconnectQuery>,
) -> ApiResult<HttpResponse> {
    let user_id = path_id("user", &path.0)?;
    let id = path_id("connection", &path.1)?;
    // Stop the actor first so no batch commits after the tokens are gone.
    state.actors.stop(id);
    let removed = svc::disconnect(
        &state.sync,
        auth.workspace_id,
        user_id,
        id,
        q.0.delete_data.unwrap_or(false),
    )
    .await?;
    Ok(HttpResponse::Ok().json(Disconnected {
        samples_deleted: removed,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// Re-sync from this instant (RFC 3339) or UTC date; with `to`.
    pub from: Option<String>,
    /// Up to this instant (exclusive) or UTC date (inclusive); with `from`.
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: uuid::Uuid,
}

/// Asks for a sync now: from the cursors, or of an explicit window.
#[utoipa::path(post, path = "/v1/users/{user_id}/connections/{connection_id}/sync", tag = "connections", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("connection_id" = uuid::Uuid, Path)), request_body(content = SyncBody, description = "optional"),
    responses((status = 202, body = JobAccepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[post("/v1/users/{user_id}/connections/{connection_id}/sync")]
pub async fn sync(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: OptionalJson<SyncBody>,
) -> ApiResult<HttpResponse> {
    let user_id = path_id("user", &path.0)?;
    let id = path_id("connection", &path.1)?;
    let body = body.0.unwrap_or_default();
    let range = match (body.from.as_deref(), body.to.as_deref()) {
        (None, None) => None,
        (Some(f), Some(t)) => {
            let (from, to) = (
                instant_or_date("from", f, false)?,
                instant_or_date("to", t, true)?,
            );
            check_order(Some(from), Some(to))?;
            Some((from, to))
        }
        (None, Some(_)) => return Err(Error::invalid("from", "is required with `to`").into()),
        (Some(_), None) => return Err(Error::invalid("to", "is required with `from`").into()),
    };
    let queued = svc::request_sync(&state.sync, auth.workspace_id, user_id, id, range).await?;
    let job_id = queued.id;
    state.actors.enqueue(queued);
    Ok(HttpResponse::Accepted().json(JobAccepted { job_id }))
}

/// One sync job.
#[utoipa::path(get, path = "/v1/sync-jobs/{job_id}", tag = "connections", security(("bearer" = [])),
    params(("job_id" = uuid::Uuid, Path)),
    responses((status = 200, body = SyncJob), (status = 404, body = ErrorBody)))]
#[get("/v1/sync-jobs/{job_id}")]
pub async fn job(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id("job", &path)?;
    let found = state
        .store
        .sync_job(auth.workspace_id, id)
        .await?
        .ok_or(Error::NotFound("job"))?;
    Ok(HttpResponse::Ok().json(found))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1-1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The user's sync jobs, newest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/sync-jobs", tag = "connections", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = List<SyncJob>), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/sync-jobs")]
pub async fn jobs(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<PageQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let limit = Limit::parse(q.0.limit)?;
    let after = q.0.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = state.store.list_sync_jobs(&user, limit, after).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventListQuery {
    /// `workout` or `sleep`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only this activity (case-insensitive), e.g. `running`.
    pub activity_type: Option<String>,
    /// Events starting at or after this instant (RFC 3339) or UTC date.
    pub from: Option<String>,
    /// Events starting before this instant (exclusive) or UTC date (inclusive).
    pub to: Option<String>,
    /// Page size, 1-1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The user's workouts and sleep sessions, newest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/events", tag = "connections", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), EventListQuery),
    responses((status = 200, body = List<Event>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/v1/users/{user_id}/events")]
pub async fn events(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<EventListQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    let event_type = q
        .event_type
        .as_deref()
        .map(|t| {
            EventType::parse(t).ok_or_else(|| Error::invalid("type", "must be workout or sleep"))
        })
        .transpose()?;
    let query = EventQuery {
        event_type,
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
        activity_type: q.activity_type,
    };
    check_order(query.from, query.to)?;
    let limit = Limit::parse(q.limit)?;
    let after = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = state.store.list_events(&user, &query, limit, after).await?;
    Ok(HttpResponse::Ok().json(List::from_page(page)))
}
