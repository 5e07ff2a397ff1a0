//! Users of the caller's workspace.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use vitasync_engine::bus::BusEvent;
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::domain::{NewUser, User, UserPatch};
use vitasync_engine::services::users;

use crate::auth::{Admin, Authed, Read, Write};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ValidJson, ValidQuery, path_id};
use crate::routes::{List, path_user};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Only the user with this external id.
    pub external_id: Option<String>,
    /// Page size, 1-1000 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Creates a user, or returns the existing one with the same `external_id` (200).
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])), request_body = NewUser, responses(
    (status = 201, body = User, description = "created"),
    (status = 200, body = User, description = "a user with this external_id already exists"),
    (status = 422, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
))]
#[post("/v1/users")]
pub async fn create(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    body: ValidJson<NewUser>,
) -> ApiResult<HttpResponse> {
    let (user, created) = users::create(state.store.as_ref(), auth.workspace_id, body.0).await?;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    if created {
        state.sync.bus.publish(BusEvent::UserCreated {
            workspace_id: auth.workspace_id,
            user_id: user.id,
        });
    }
    Ok(if created {
        HttpResponse::Created().json(user)
    } else {
        HttpResponse::Ok().json(user)
    })
}

/// Lists users, oldest first.
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])), params(UserListQuery), responses(
    (status = 200, body = List<User>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
))]
#[get("/v1/users")]
pub async fn list(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    q: ValidQuery<UserListQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.0;
    let limit = Limit::parse(q.limit)?;
    let after = q.cursor.as_deref().map(Cursor::decode).transpose()?;
    let page = state
        .store
        .list_users(
            auth.workspace_id,
            q.external_id.as_deref(),
            None,
            limit,
            after,
        )
        .await?;
    Ok(HttpResponse::Ok().json(List::from_page(page)))
}

/// One user.
#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
#[get("/v1/users/{user_id}")]
pub async fn get(
    auth: Authed<Read>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(path_user(&state, &auth, &path).await?))
}

/// Updates a user: absent fields are kept, `null` clears.
#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/v1/users/{user_id}")]
pub async fn patch(
    auth: Authed<Write>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ValidJson<UserPatch>,
) -> ApiResult<HttpResponse> {
    let id = path_id("user", &path)?;
    Ok(HttpResponse::Ok()
        .json(users::update(state.store.as_ref(), auth.workspace_id, id, body.0).await?))
}

/// Deletes a user and all of their data (admin scope).
#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)))]
#[delete("/v1/users/{user_id}")]
pub async fn delete(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id("user", &path)?;
    let user = users::get(state.store.as_ref(), auth.workspace_id, id).await?;
    let removal = users::delete(state.store.as_ref(), auth.workspace_id, id).await?;
    let removed = removal.len();
    state.sync.committed(&user, removal, chrono::Utc::now());
    state.sync.workouts_changed(&user).await?;
    state.sync.bus.publish(BusEvent::UserDeleted {
        workspace_id: auth.workspace_id,
        user_id: id,
    });
    tracing::info!(user_id = %id, samples = removed, "user deleted");
    Ok(HttpResponse::NoContent().finish())
}
