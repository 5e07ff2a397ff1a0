//! The workspace's outbound webhooks (admin scope): registration, secret rotation, a test
//! event, the delivery history and redelivery. (Inbound provider webhooks are in `webhooks`.)

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::notify::event::EventType;
use vitasync_engine::notify::model::{Delivery, Webhook};
use vitasync_engine::services::outbound_webhooks::{NewWebhook, WebhookPatch};

use crate::auth::{Admin, Authed};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidJson, ValidQuery, path_id};
use crate::routes::List;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookBody {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Since when deliveries have been failing (null while they succeed).
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the webhook was disabled automatically, if it was.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The signing secret: returned by create and rotate-secret only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookBody {
    fn new(w: Webhook, secret: Option<String>) -> Self {
        WebhookBody {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            failing_since: w.failing_since,
            disabled_reason: w.disabled_reason,
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret,
        }
    }
}

/// Registers a webhook; the response carries its signing `secret`, shown this once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = [])), request_body = NewWebhook,
    responses((status = 201, body = WebhookBody), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[post("/v1/webhooks")]
pub async fn create(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    body: ValidJson<NewWebhook>,
) -> ApiResult<HttpResponse> {
    let (hook, secret) = state
        .notify
        .create_webhook(auth.workspace_id, body.0)
        .await?;
    Ok(HttpResponse::Created().json(WebhookBody::new(hook, Some(secret))))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = List<WebhookBody>), (status = 403, body = ErrorBody)))]
#[get("/v1/webhooks")]
pub async fn list(auth: Authed<Admin>, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let data = state
        .store
        .list_webhooks(auth.workspace_id)
        .await?
        .into_iter()
        .map(|w| WebhookBody::new(w, None))
        .collect();
    Ok(HttpResponse::Ok().json(List::all(data)))
}

#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", security(("bearer" = [])),
    params(("webhook_id" = uuid::Uuid, Path)),
    responses((status = 200, body = WebhookBody), (status = 404, body = ErrorBody)))]
#[get("/v1/webhooks/{webhook_id}")]
pub async fn get(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let hook = state
        .notify
        .webhook(auth.workspace_id, path_id("webhook", &path)?)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookBody::new(hook, None)))
}

/// Changes the URL, events or description, or enables/disables the webhook.
#[utoipa::path(patch, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", security(("bearer" = [])),
    params(("webhook_id" = uuid::Uuid, Path)), request_body = WebhookPatch,
    responses((status = 200, body = WebhookBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/v1/webhooks/{webhook_id}")]
pub async fn update(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ValidJson<WebhookPatch>,
) -> ApiResult<HttpResponse> {
    let hook = state
        .notify
        .update_webhook(auth.workspace_id, path_id("webhook", &path)?, body.0)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookBody::new(hook, None)))
}

/// Deletes the webhook and its delivery history.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks", security(("bearer" = [])),
    params(("webhook_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
#[delete("/v1/webhooks/{webhook_id}")]
pub async fn remove(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state
        .notify
        .delete_webhook(auth.workspace_id, path_id("webhook", &path)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces the signing secret (returned this once); the old one stops at once.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("webhook_id" = uuid::Uuid, Path)), request_body(content = Object, description = "empty"),
    responses((status = 200, body = WebhookBody), (status = 404, body = ErrorBody)))]
#[post("/v1/webhooks/{webhook_id}/rotate-secret")]
pub async fn rotate_secret(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let (hook, secret) = state
        .notify
        .rotate_webhook_secret(auth.workspace_id, path_id("webhook", &path)?)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookBody::new(hook, Some(secret))))
}

/// Queues a `test` event for this webhook; returns the delivery (202: sent in the background).
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("webhook_id" = uuid::Uuid, Path)), request_body(content = Object, description = "empty"),
    responses((status = 202, body = Delivery), (status = 404, body = ErrorBody)))]
#[post("/v1/webhooks/{webhook_id}/test")]
pub async fn test(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let d = state
        .notify
        .test_webhook(auth.workspace_id, path_id("webhook", &path)?)
        .await?;
    Ok(HttpResponse::Accepted().json(d))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// Page size, 1-1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The webhook's deliveries, oldest first.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("webhook_id" = uuid::Uuid, Path), DeliveryListQuery),
    responses((status = 200, body = List<Delivery>), (status = 404, body = ErrorBody)))]
#[get("/v1/webhooks/{webhook_id}/deliveries")]
pub async fn deliveries(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: ValidQuery<DeliveryListQuery>,
) -> ApiResult<HttpResponse> {
    let id = path_id("webhook", &path)?;
    state.notify.webhook(auth.workspace_id, id).await?;
    let limit = Limit::parse(q.0.limit)?;
    let after = q.0.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = state
        .store
        .list_deliveries(auth.workspace_id, id, limit, after)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page)))
}

/// Sends a delivery again with the same event id, from a fresh attempt count.
#[utoipa::path(post, path = "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", tag = "webhooks", security(("bearer" = [])),
    params(("webhook_id" = uuid::Uuid, Path), ("delivery_id" = uuid::Uuid, Path)), request_body(content = Object, description = "empty"),
    responses((status = 202, body = Delivery), (status = 404, body = ErrorBody)))]
#[post("/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let d = state
        .notify
        .redeliver(
            auth.workspace_id,
            path_id("webhook", &path.0)?,
            path_id("delivery", &path.1)?,
        )
        .await?;
    Ok(HttpResponse::Accepted().json(d))
}
