//! The caller's workspace.

use actix_web::{HttpResponse, get, web};
use vitasync_engine::Error;
use vitasync_engine::domain::Workspace;

use crate::auth::{Authed, Read};
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// The workspace the API key belongs to.
#[utoipa::path(get, path = "/v1/workspace", tag = "workspace", security(("bearer" = [])), responses(
    (status = 200, body = Workspace), (status = 401, body = ErrorBody),
))]
#[get("/v1/workspace")]
pub async fn get_workspace(
    auth: Authed<Read>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let ws = state
        .store
        .workspace(auth.workspace_id)
        .await?
        .ok_or(Error::NotFound("workspace"))?;
    Ok(HttpResponse::Ok().json(ws))
}
