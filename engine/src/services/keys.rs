//! API key lifecycle: create (the key is shown once), rotate, revoke, authenticate, bootstrap.

use chrono::{DateTime, Utc};

use crate::domain::api_key::{self, generate_key, hash_key, key_prefix};
use crate::domain::{ApiKey, ApiKeyId, NewApiKey, Scope, Scopes, WorkspaceId};
use crate::error::{Error, Result};
use crate::services::workspaces;
use crate::store::Store;

/// A key together with its secret, returned only at creation and rotation.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: String,
}

pub fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(Error::invalid("name", "must be 1-100 characters"));
    }
    Ok(())
}

pub async fn create(
    store: &dyn Store,
    ws: WorkspaceId,
    name: &str,
    scopes: Vec<Scope>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<IssuedKey> {
    validate_name(name)?;
    let scopes = Scopes::new(scopes)?;
    if expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(Error::invalid("expires_at", "must be in the future"));
    }
    let generated = generate_key();
    let key = store
        .insert_api_key(&NewApiKey {
            workspace_id: ws,
            name: name.trim().to_string(),
            prefix: generated.prefix,
            key_hash: generated.hash,
            scopes,
            expires_at,
        })
        .await?;
    Ok(IssuedKey {
        key,
        secret: generated.key,
    })
}

pub async fn rotate(store: &dyn Store, ws: WorkspaceId, id: ApiKeyId) -> Result<IssuedKey> {
    let generated = generate_key();
    let key = store
        .rotate_api_key(ws, id, &generated.hash, &generated.prefix)
        .await?
        .ok_or(Error::NotFound("API key"))?;
    Ok(IssuedKey {
        key,
        secret: generated.key,
    })
}

pub async fn revoke(store: &dyn Store, ws: WorkspaceId, id: ApiKeyId) -> Result<()> {
    if store.revoke_api_key(ws, id, Utc::now()).await? {
        Ok(())
    } else {
        Err(Error::NotFound("API key"))
    }
}

/// Resolves a presented key to a usable stored key, or says why not.
pub async fn authenticate(store: &dyn Store, presented: &str) -> Result<ApiKey> {
    if presented.is_empty() {
        return Err(Error::Unauthenticated("empty API key"));
    }
    let key = store
        .api_key_by_hash(&hash_key(presented))
        .await?
        .ok_or(Error::Unauthenticated("invalid API key"))?;
    if let Some(reason) = key.unusable_reason(Utc::now()) {
        return Err(Error::Unauthenticated(reason));
    }
    Ok(key)
}

/// Makes sure workspace `default` exists and `secret` is one of its admin keys. Idempotent.
pub async fn ensure_bootstrap_key(store: &dyn Store, secret: &str) -> Result<ApiKey> {
    api_key::validate_external_key(secret)?;
    let ws = workspaces::ensure(store, "default", "Default").await?;
    let key = store
        .ensure_api_key(&NewApiKey {
            workspace_id: ws.id,
            name: "bootstrap".into(),
            prefix: key_prefix(secret),
            key_hash: hash_key(secret),
            scopes: Scopes::all(),
            expires_at: None,
        })
        .await?;
    if key.workspace_id != ws.id || !key.scopes.allows(Scope::Admin) || key.revoked_at.is_some() {
        return Err(Error::Config(
            "VITASYNC_BOOTSTRAP_API_KEY is already stored as a key that is not an active admin key of 'default'".into(),
        ));
    }
    Ok(key)
}
