//! User use cases. `get` is the tenancy gate for everything user-owned: it loads the user under
//! the caller's workspace, and a foreign id is simply "not found".

use chrono::Utc;

use crate::domain::{NewUser, User, UserId, UserPatch, WorkspaceId};
use crate::error::{Error, Result};
use crate::store::Store;

pub async fn get(store: &dyn Store, ws: WorkspaceId, id: UserId) -> Result<User> {
    store.user(ws, id).await?.ok_or(Error::NotFound("user"))
}

pub async fn create(store: &dyn Store, ws: WorkspaceId, new: NewUser) -> Result<(User, bool)> {
    new.validate()?;
    let new = NewUser {
        external_id: new.external_id.trim().to_string(),
        ..new
    };
    store.create_user(ws, &new).await
}

pub async fn update(
    store: &dyn Store,
    ws: WorkspaceId,
    id: UserId,
    patch: UserPatch,
) -> Result<User> {
    patch.validate()?;
    let mut user = get(store, ws, id).await?;
    patch.apply(&mut user);
    user.updated_at = crate::services::ingest::truncate_to_micros(Utc::now());
    store.update_user(&user).await?;
    Ok(user)
}

/// Deletes the user; returns the samples removed (as deletions, for the analytics).
pub async fn delete(
    store: &dyn Store,
    ws: WorkspaceId,
    id: UserId,
) -> Result<Vec<crate::domain::SampleChange>> {
    store
        .delete_user(ws, id)
        .await?
        .ok_or(Error::NotFound("user"))
}
