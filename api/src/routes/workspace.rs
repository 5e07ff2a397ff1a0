//! The caller's workspace: reading it, and its settings (the provider priority).

use std::collections::BTreeSet;

use actix_web::{HttpResponse, get, patch, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vitasync_engine::Error;
use vitasync_engine::catalogue::{self, ProviderPriority};
use vitasync_engine::domain::Workspace;

use crate::auth::{Admin, Authed, Read};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ValidJson;
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

/// The workspace settings a caller may change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspacePatch {
    /// Providers in the order their data wins when several report the same metric for the same
    /// user and date (never summed); providers not listed follow in the default order. `[]`
    /// restores the default.
    pub provider_priority: Option<Vec<String>>,
}

/// The workspace after a change, and the analytics epoch that applies it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceChanged {
    #[serde(flatten)]
    pub workspace: Workspace,
    /// Analytics reads with `min_epoch` at least this see the change.
    pub epoch: u64,
}

/// Changes workspace settings (admin scope). A new provider priority re-sources every day on
/// which a user has data from several providers; the analytics follow in one epoch.
#[utoipa::path(patch, path = "/v1/workspace", tag = "workspace", security(("bearer" = [])),
    request_body = WorkspacePatch,
    responses((status = 200, body = WorkspaceChanged), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[patch("/v1/workspace")]
pub async fn patch_workspace(
    auth: Authed<Admin>,
    state: web::Data<AppState>,
    body: ValidJson<WorkspacePatch>,
) -> ApiResult<HttpResponse> {
    let mut epoch = 0;
    if let Some(priority) = body.0.provider_priority {
        let known: BTreeSet<String> = catalogue::DEFAULT_PROVIDER_PRIORITY
            .iter()
            .map(|p| p.to_string())
            .chain(
                state
                    .sync
                    .registry
                    .all()
                    .iter()
                    .map(|p| p.info().id.to_string()),
            )
            .collect();
        let mut seen = BTreeSet::new();
        for (i, p) in priority.iter().enumerate() {
            let field = format!("provider_priority[{i}]");
            if !known.contains(p) {
                let list = known.iter().cloned().collect::<Vec<_>>().join(", ");
                return Err(Error::invalid(
                    field,
                    format!("unknown provider '{p}'; known: {list}"),
                )
                .into());
            }
            if !seen.insert(p) {
                return Err(Error::invalid(field, format!("'{p}' is listed twice")).into());
            }
        }
        // The store first: a restart hydrates from it, so the analytics can never keep an
        // order the store does not have.
        state
            .store
            .set_provider_priority(auth.workspace_id, &priority)
            .await?;
        epoch = state
            .analytics
            .set_priority(auth.workspace_id, ProviderPriority(priority));
    }
    let workspace = state
        .store
        .workspace(auth.workspace_id)
        .await?
        .ok_or(Error::NotFound("workspace"))?;
    Ok(HttpResponse::Ok().json(WorkspaceChanged { workspace, epoch }))
}
