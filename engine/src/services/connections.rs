//! Connection use cases: connecting (directly for providers without OAuth, through the OAuth
//! authorization-code flow otherwise), disconnecting, and asking for a sync. They record state
//! and publish it; running syncs is the actors' job, which the transports notify with the ids
//! returned here.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::bus::BusEvent;
use crate::domain::{
    Connection, ConnectionId, ConnectionStatus, NewConnection, OAuthState, SyncJob, SyncTrigger,
    UserId, WorkspaceId,
};
use crate::error::{Error, Result};
use crate::providers::{AuthKind, Provider, oauth};
use crate::services::sync::SyncEnv;
use crate::services::users;

/// How long a user has to finish consenting at the provider.
pub const STATE_TTL: Duration = Duration::minutes(10);
/// Bounds for a connection's history window.
pub const MAX_BACKFILL_DAYS: u32 = 3650;

fn provider(env: &SyncEnv, id: &str) -> Result<std::sync::Arc<dyn Provider>> {
    env.registry.get(id).ok_or(Error::NotFound("provider"))
}

fn check_days(days: Option<u32>, field: &'static str) -> Result<()> {
    match days {
        Some(d) if d == 0 || d > MAX_BACKFILL_DAYS => Err(Error::invalid(
            field,
            format!("must be between 1 and {MAX_BACKFILL_DAYS}"),
        )),
        _ => Ok(()),
    }
}

/// A connection just made, with the backfill job that fills it.
#[derive(Debug, Clone)]
pub struct Connected {
    pub connection: Connection,
    pub job: SyncJob,
}

/// Connects a provider that needs no OAuth (the demo device).
pub async fn connect_direct(
    env: &SyncEnv,
    ws: WorkspaceId,
    user_id: UserId,
    provider_id: &str,
    days: Option<u32>,
) -> Result<Connected> {
    check_days(days, "days")?;
    let user = users::get(env.store.as_ref(), ws, user_id).await?;
    let p = provider(env, provider_id)
        .map_err(|_| Error::invalid("provider", format!("unknown provider '{provider_id}'")))?;
    if p.info().auth != AuthKind::None {
        return Err(Error::Conflict(format!(
            "provider '{provider_id}' connects through OAuth: GET /v1/oauth/{provider_id}/authorize"
        )));
    }
    if !p.configured() {
        return Err(not_configured(provider_id));
    }
    let new = NewConnection {
        provider: provider_id.to_string(),
        provider_user_id: None,
        scopes: Vec::new(),
        sealed_tokens: None,
        token_expires_at: None,
        backfill_days: days.unwrap_or(p.info().default_backfill_days),
    };
    finish_connect(env, &user, &new).await
}

async fn finish_connect(
    env: &SyncEnv,
    user: &crate::domain::User,
    new: &NewConnection,
) -> Result<Connected> {
    let now = Utc::now();
    let connection = env.store.upsert_connection(user, new, now).await?;
    let job = env
        .store
        .create_sync_job(&connection, SyncTrigger::Backfill, None, now)
        .await?;
    env.bus.publish(BusEvent::ConnectionCreated {
        subject: SyncEnv::subject(&connection),
    });
    Ok(Connected { connection, job })
}

fn not_configured(provider_id: &str) -> Error {
    Error::Conflict(format!(
        "provider '{provider_id}' is not configured on this server (set VITASYNC_{}_CLIENT_ID and _CLIENT_SECRET)",
        provider_id.to_ascii_uppercase()
    ))
}

/// Where to send the user to consent, and until when that link works.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub authorization_url: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts an OAuth flow for `user_id`: an unguessable single-use state bound to the workspace,
/// the user and the provider is stored (hashed), with the PKCE verifier sealed beside it.
pub async fn start_oauth(
    env: &SyncEnv,
    ws: WorkspaceId,
    user_id: UserId,
    provider_id: &str,
    return_url: Option<&str>,
    allowed_return_prefixes: &[String],
    days: Option<u32>,
) -> Result<Authorization> {
    check_days(days, "days")?;
    let user = users::get(env.store.as_ref(), ws, user_id).await?;
    let p = provider(env, provider_id)?;
    let Some(spec) = p.oauth_spec() else {
        return Err(Error::Conflict(format!(
            "provider '{provider_id}' needs no OAuth: POST /v1/users/{user_id}/connections"
        )));
    };
    let app = match p.oauth_app(&env.callback_url(provider_id)) {
        Some(app) if p.configured() => app,
        _ => return Err(not_configured(provider_id)),
    };
    if let Some(url) = return_url
        && !allowed_return_prefixes
            .iter()
            .any(|prefix| url.starts_with(prefix.as_str()))
    {
        return Err(Error::invalid(
            "return_url",
            "must start with one of the prefixes in VITASYNC_OAUTH_RETURN_URLS",
        ));
    }
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let start = oauth::authorize(spec, &app, &state).map_err(|e| Error::internal(e.to_string()))?;
    let now = Utc::now();
    let expires_at = now + STATE_TTL;
    env.store
        .insert_oauth_state(&OAuthState {
            state_hash: hash_state(&state),
            workspace_id: ws,
            user_id: user.id,
            provider: provider_id.to_string(),
            sealed_pkce_verifier: start
                .pkce_verifier
                .as_deref()
                .map(|v| env.keys.encrypt_str(v))
                .transpose()?,
            return_url: return_url.map(str::to_string),
            backfill_days: days,
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(Authorization {
        authorization_url: start.url,
        expires_at,
    })
}

fn hash_state(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// How a callback ended. Error codes are fixed strings, never request values.
#[derive(Debug, Clone)]
pub enum CallbackOutcome {
    Connected {
        connected: Box<Connected>,
        return_url: Option<String>,
    },
    Failed {
        code: &'static str,
        return_url: Option<String>,
    },
}

/// The query of the provider's redirect back to us.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

/// Completes an OAuth flow. The state is consumed first, so a replay finds nothing whatever
/// happens next.
pub async fn complete_oauth(
    env: &SyncEnv,
    provider_id: &str,
    params: &CallbackParams,
) -> Result<CallbackOutcome> {
    let fail = |code, return_url| Ok(CallbackOutcome::Failed { code, return_url });
    let Some(state) = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 256)
    else {
        return fail("invalid_state", None);
    };
    let now = Utc::now();
    let Some(st) = env.store.take_oauth_state(&hash_state(state), now).await? else {
        return fail("invalid_state", None);
    };
    if st.provider != provider_id {
        return fail("invalid_state", None);
    }
    let back = st.return_url.clone();
    if st.expires_at <= now {
        return fail("expired_state", back);
    }
    if let Some(err) = params.error.as_deref() {
        let code = if err == "access_denied" {
            "access_denied"
        } else {
            "provider_error"
        };
        return fail(code, back);
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return fail("missing_code", back);
    };
    let Some(user) = env.store.user(st.workspace_id, st.user_id).await? else {
        return fail("invalid_state", back);
    };
    let p = provider(env, provider_id)?;
    let (Some(spec), Some(app)) = (p.oauth_spec(), p.oauth_app(&env.callback_url(provider_id)))
    else {
        return fail("not_configured", back);
    };
    let verifier = st
        .sealed_pkce_verifier
        .as_deref()
        .map(|v| env.keys.decrypt_str(v))
        .transpose()?;
    let tokens =
        match oauth::exchange_code(&env.http, spec, &app, code, verifier.as_deref(), now).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(provider = provider_id, error = %e, "OAuth code exchange failed");
                return fail("exchange_failed", back);
            }
        };
    let account = match p.account(&tokens).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(provider = provider_id, error = %e, "could not identify the provider account");
            return fail("account_lookup_failed", back);
        }
    };
    let new = NewConnection {
        provider: provider_id.to_string(),
        provider_user_id: account.provider_user_id,
        scopes: tokens.scopes.clone(),
        sealed_tokens: Some(env.seal_tokens(&tokens)?),
        token_expires_at: tokens.expires_at,
        backfill_days: st.backfill_days.unwrap_or(p.info().default_backfill_days),
    };
    let connected = finish_connect(env, &user, &new).await?;
    if let Err(e) = p
        .on_connected(&tokens, &connected.connection.id.simple().to_string())
        .await
    {
        tracing::warn!(connection_id = %connected.connection.id, error = %e, "provider set-up after connecting failed; syncs still run on the schedule");
    }
    Ok(CallbackOutcome::Connected {
        connected: Box::new(connected),
        return_url: back,
    })
}

/// Disconnects: revokes the grant at the provider where possible (a failure there is logged,
/// not fatal: the user asked to be disconnected), forgets the tokens, and optionally deletes
/// the data the connection brought.
pub async fn disconnect(
    env: &SyncEnv,
    ws: WorkspaceId,
    user_id: UserId,
    id: ConnectionId,
    delete_data: bool,
) -> Result<u64> {
    let user = users::get(env.store.as_ref(), ws, user_id).await?;
    let conn = env
        .store
        .connection(&user, id)
        .await?
        .ok_or(Error::NotFound("connection"))?;
    if let (Some(p), Some(tokens)) = (env.registry.get(&conn.provider), env.open_tokens(&conn)?)
        && let Err(e) = p.revoke(&tokens, conn.provider_user_id.as_deref()).await
    {
        tracing::warn!(connection_id = %conn.id, error = %e, "revoking at the provider failed");
    }
    let removal = env
        .store
        .disconnect_connection(&user, id, delete_data, Utc::now())
        .await?
        .ok_or(Error::NotFound("connection"))?;
    let removed = removal.len() as u64;
    env.committed(&user, removal, Utc::now());
    if delete_data {
        env.workouts_changed(&user).await?;
    }
    env.bus.publish(BusEvent::ConnectionDisconnected {
        subject: SyncEnv::subject(&conn),
    });
    Ok(removed)
}

/// Records a manual sync request; the caller hands the job to the actors.
pub async fn request_sync(
    env: &SyncEnv,
    ws: WorkspaceId,
    user_id: UserId,
    id: ConnectionId,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<SyncJob> {
    if let Some((from, to)) = range
        && from >= to
    {
        return Err(Error::invalid("to", "must be after 'from'"));
    }
    let user = users::get(env.store.as_ref(), ws, user_id).await?;
    let conn = env
        .store
        .connection(&user, id)
        .await?
        .ok_or(Error::NotFound("connection"))?;
    if conn.status != ConnectionStatus::Active {
        return Err(Error::Conflict(format!(
            "the connection is {}; reconnect it before syncing",
            conn.status.as_str()
        )));
    }
    env.store
        .create_sync_job(&conn, SyncTrigger::Manual, range, Utc::now())
        .await
}
