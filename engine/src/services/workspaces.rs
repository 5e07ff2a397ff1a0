//! Workspace creation: a workspace is born with an admin key, so it is usable at once.

use crate::domain::workspace::validate_slug;
use crate::domain::{Scope, Workspace};
use crate::error::{Error, Result};
use crate::services::keys::{self, IssuedKey};
use crate::store::Store;

pub async fn create_with_admin_key(
    store: &dyn Store,
    slug: &str,
    name: Option<&str>,
) -> Result<(Workspace, IssuedKey)> {
    validate_slug(slug)?;
    let ws = store.create_workspace(slug, name.unwrap_or(slug)).await?;
    let key = keys::create(
        store,
        ws.id,
        "admin",
        vec![Scope::Read, Scope::Write, Scope::Admin],
        None,
    )
    .await?;
    Ok((ws, key))
}

/// Returns the workspace with `slug`, creating it when absent (safe under concurrent callers).
pub async fn ensure(store: &dyn Store, slug: &str, name: &str) -> Result<Workspace> {
    validate_slug(slug)?;
    if let Some(ws) = store.workspace_by_slug(slug).await? {
        return Ok(ws);
    }
    match store.create_workspace(slug, name).await {
        Ok(ws) => Ok(ws),
        Err(Error::Conflict(_)) => store
            .workspace_by_slug(slug)
            .await?
            .ok_or(Error::NotFound("workspace")),
        Err(e) => Err(e),
    }
}
