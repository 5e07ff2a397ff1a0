//! API key management (admin scope). The key itself is returned only by create and rotate.

use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::domain::{ApiKey, Scope};
use vitasync_engine::services::keys::{self, IssuedKey};

use crate::auth::{Admin, Authed};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidJson, ValidQuery, path_id};
use crate::routes::List;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key with its secret — shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyBody {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The API key. It is not stored and cannot be shown again.
    #[serde(rename = "key")]
    pub secret: String,
}

impl From<IssuedKey> for IssuedKeyBody {
    fn from(k: IssuedKey) -> Self {
        IssuedKeyBody {
            key: k.key,
            secret: k.secret,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// Page size, 1-1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Creates a key.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = CreateKey,
    responses((status = 201, body = IssuedKeyBody), (status = 422, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[post("/v1/api-keys")]
pub async fn create(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    body: ValidJson<CreateKey>,
) -> ApiResult<HttpResponse> {
    let b = body.0;
    let issued = keys::create(
        state.store.as_ref(),
        auth.workspace_id,
        &b.name,
        b.scopes,
        b.expires_at,
    )
    .await?;
    Ok(HttpResponse::Created().json(IssuedKeyBody::from(issued)))
}

/// Lists the workspace's keys (never the secrets).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = [])), params(KeyListQuery),
    responses((status = 200, body = List<ApiKey>), (status = 403, body = ErrorBody)))]
#[get("/v1/api-keys")]
pub async fn list(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    q: ValidQuery<KeyListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = Limit::parse(q.0.limit)?;
    let after = q.0.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = state
        .store
        .list_api_keys(auth.workspace_id, limit, after)
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page)))
}

/// Revokes a key; it stops working at once.
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "api-keys", security(("bearer" = [])),
    params(("key_id" = uuid::Uuid, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
#[delete("/v1/api-keys/{key_id}")]
pub async fn revoke(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id("API key", &path)?;
    keys::revoke(state.store.as_ref(), auth.workspace_id, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replaces a key's secret; the old secret stops working at once.
#[utoipa::path(post, path = "/v1/api-keys/{key_id}/rotate", tag = "api-keys", security(("bearer" = [])),
    params(("key_id" = uuid::Uuid, Path)), responses((status = 200, body = IssuedKeyBody), (status = 404, body = ErrorBody)))]
#[post("/v1/api-keys/{key_id}/rotate")]
pub async fn rotate(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id("API key", &path)?;
    let issued = keys::rotate(state.store.as_ref(), auth.workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(IssuedKeyBody::from(issued)))
}
