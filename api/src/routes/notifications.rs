//! A user's notification channels, rules and attempt log. Channel configs are returned masked;
//! a webhook channel's signing secret is returned by create only.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vitasync_engine::Error;
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::notify::model::{Channel, LogEntry, Rule};
use vitasync_engine::services::notifications::{ChannelPatch, NewChannel, NewRule, RulePatch};
use vitasync_engine::store::LogQuery;

use crate::auth::{Authed, Read, Write};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidJson, ValidQuery, path_id};
use crate::routes::{List, path_user};
use crate::state::AppState;

/// A channel as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelBody {
    pub id: Uuid,
    pub user_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// The config with URLs and secrets masked.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A webhook channel's signing secret: returned by create only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl ChannelBody {
    fn new(c: Channel, secret: Option<String>) -> Self {
        ChannelBody {
            id: c.id,
            user_id: c.user_id,
            kind: c.kind,
            name: c.name,
            config: c.config_public,
            enabled: c.enabled,
            created_at: c.created_at,
            updated_at: c.updated_at,
            secret,
        }
    }
}

fn two_ids(path: &(String, String), what: &'static str) -> Result<Uuid, Error> {
    path_id(what, &path.1)
}

/// Creates a channel (config validated per type; URLs must pass the SSRF guard).
#[utoipa::path(post, path = "/v1/users/{user_id}/notifications/channels", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)), request_body = NewChannel,
    responses((status = 201, body = ChannelBody), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/notifications/channels")]
pub async fn create_channel(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ValidJson<NewChannel>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let (channel, secret) = state.notify.create_channel(&user, body.0).await?;
    Ok(HttpResponse::Created().json(ChannelBody::new(channel, secret)))
}

/// Lists the user's channels.
#[utoipa::path(get, path = "/v1/users/{user_id}/notifications/channels", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = List<ChannelBody>), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/notifications/channels")]
pub async fn list_channels(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let data = state
        .store
        .list_channels(user.workspace_id, user.id)
        .await?
        .into_iter()
        .map(|c| ChannelBody::new(c, None))
        .collect();
    Ok(HttpResponse::Ok().json(List::all(data)))
}

#[utoipa::path(get, path = "/v1/users/{user_id}/notifications/channels/{channel_id}", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("channel_id" = uuid::Uuid, Path)),
    responses((status = 200, body = ChannelBody), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/notifications/channels/{channel_id}")]
pub async fn get_channel(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path.0).await?;
    let channel = state
        .notify
        .channel(&user, two_ids(&path, "channel")?)
        .await?;
    Ok(HttpResponse::Ok().json(ChannelBody::new(channel, None)))
}

/// Renames, re-configures, enables or disables a channel.
#[utoipa::path(patch, path = "/v1/users/{user_id}/notifications/channels/{channel_id}", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("channel_id" = uuid::Uuid, Path)), request_body = ChannelPatch,
    responses((status = 200, body = ChannelBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/v1/users/{user_id}/notifications/channels/{channel_id}")]
pub async fn patch_channel(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: ValidJson<ChannelPatch>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path.0).await?;
    let channel = state
        .notify
        .update_channel(&user, two_ids(&path, "channel")?, body.0)
        .await?;
    Ok(HttpResponse::Ok().json(ChannelBody::new(channel, None)))
}

/// Deletes a channel with its log; rules stop naming it.
#[utoipa::path(delete, path = "/v1/users/{user_id}/notifications/channels/{channel_id}", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("channel_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[delete("/v1/users/{user_id}/notifications/channels/{channel_id}")]
pub async fn delete_channel(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path.0).await?;
    state
        .notify
        .delete_channel(&user, two_ids(&path, "channel")?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sends a test message now and returns the logged attempt.
#[utoipa::path(post, path = "/v1/users/{user_id}/notifications/channels/{channel_id}/test", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("channel_id" = uuid::Uuid, Path)),
    request_body(content = Object, description = "empty"),
    responses((status = 200, body = LogEntry), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/notifications/channels/{channel_id}/test")]
pub async fn test_channel(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path.0).await?;
    let log = state
        .notify
        .test_channel(&user, two_ids(&path, "channel")?)
        .await?;
    Ok(HttpResponse::Ok().json(log))
}

/// Creates a rule: events of `categories` at `min_severity` or above go to `channel_ids`.
#[utoipa::path(post, path = "/v1/users/{user_id}/notifications/rules", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)), request_body = NewRule,
    responses((status = 201, body = Rule), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)))]
#[post("/v1/users/{user_id}/notifications/rules")]
pub async fn create_rule(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ValidJson<NewRule>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let rule = state.notify.create_rule(&user, body.0).await?;
    Ok(HttpResponse::Created().json(rule))
}

#[utoipa::path(get, path = "/v1/users/{user_id}/notifications/rules", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = List<Rule>), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}/notifications/rules")]
pub async fn list_rules(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let rules = state.store.list_rules(user.workspace_id, user.id).await?;
    Ok(HttpResponse::Ok().json(List::all(rules)))
}

#[utoipa::path(patch, path = "/v1/users/{user_id}/notifications/rules/{rule_id}", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("rule_id" = uuid::Uuid, Path)), request_body = RulePatch,
    responses((status = 200, body = Rule), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/v1/users/{user_id}/notifications/rules/{rule_id}")]
pub async fn patch_rule(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: ValidJson<RulePatch>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path.0).await?;
    let rule = state
        .notify
        .update_rule(&user, two_ids(&path, "rule")?, body.0)
        .await?;
    Ok(HttpResponse::Ok().json(rule))
}

#[utoipa::path(delete, path = "/v1/users/{user_id}/notifications/rules/{rule_id}", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), ("rule_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[delete("/v1/users/{user_id}/notifications/rules/{rule_id}")]
pub async fn delete_rule(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path.0).await?;
    state
        .notify
        .delete_rule(&user, two_ids(&path, "rule")?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogListQuery {
    pub channel_id: Option<Uuid>,
    /// delivered or failed.
    pub status: Option<String>,
    /// Page size, 1-1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Every delivery attempt, oldest first.
#[utoipa::path(get, path = "/v1/users/{user_id}/notifications/logs", tag = "notifications", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path), LogListQuery),
    responses((status = 200, body = List<LogEntry>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[get("/v1/users/{user_id}/notifications/logs")]
pub async fn logs(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<LogListQuery>,
) -> ApiResult<HttpResponse> {
    let user = path_user(&state, &auth, &path).await?;
    let q = q.0;
    if let Some(s) = q.status.as_deref()
        && !matches!(s, "delivered" | "failed")
    {
        return Err(Error::invalid("status", "must be delivered or failed").into());
    }
    let limit = Limit::parse(q.limit)?;
    let after = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = state
        .store
        .list_logs(
            user.workspace_id,
            user.id,
            &LogQuery {
                channel_id: q.channel_id,
                status: q.status,
            },
            limit,
            after,
        )
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page)))
}
