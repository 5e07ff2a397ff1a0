//! One sync run of one connection: refresh the tokens if they are about to expire, stream the
//! provider's batches from the connection's cursors, and commit each batch (samples, events,
//! cursors, job counters) in its own transaction. The run is the unit the connection actors
//! schedule and supervise; it decides nothing about retries itself, it only reports how it
//! ended.
//!
//! Crash safety follows from the commit unit: a batch and the cursors it completes are written
//! together, so a process killed at any instant resumes from the last committed cursors, and
//! re-reading the overlap is harmless because identical writes change nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusEvent, Subject};
use crate::crypto::KeyRing;
use crate::domain::{Connection, ConnectionStatus, JobStatus, SyncJob, User};
use crate::error::{Error, Result};
use crate::providers::{
    Provider, ProviderError, ProviderHttp, Registry, SyncRequest, SyncUser, TokenSet, oauth,
};
use crate::store::DynStore;

/// Everything a sync needs. Cheap to clone.
#[derive(Clone)]
pub struct SyncEnv {
    pub store: DynStore,
    pub registry: Registry,
    pub keys: Arc<KeyRing>,
    pub bus: Bus,
    pub http: ProviderHttp,
    /// Where committed sample changes go for the analytics.
    pub analytics: crate::analytics::DynSink,
    /// Base of the OAuth callback URL (refresh requests must repeat the redirect URI for some
    /// providers).
    pub public_url: String,
}

impl SyncEnv {
    pub fn callback_url(&self, provider: &str) -> String {
        format!("{}/v1/oauth/{provider}/callback", self.public_url)
    }

    pub fn subject(conn: &Connection) -> Subject {
        Subject {
            workspace_id: conn.workspace_id,
            user_id: conn.user_id,
            connection_id: conn.id,
            provider: conn.provider.clone(),
        }
    }

    /// Announces changes a transaction committed: to the analytics (returning their epoch) and
    /// on the bus. Every writer of samples calls this after its commit.
    pub fn committed(
        &self,
        user: &User,
        changes: Vec<crate::domain::SampleChange>,
        at: chrono::DateTime<Utc>,
    ) -> crate::analytics::Epoch {
        if changes.is_empty() {
            return 0;
        }
        let epoch = self.analytics.apply(user.workspace_id, &changes);
        self.bus.publish(BusEvent::SamplesChanged {
            workspace_id: user.workspace_id,
            user_id: user.id,
            changes: Arc::new(changes),
            at,
        });
        epoch
    }

    /// Tells the analytics that `user`'s workouts changed (a batch with events committed, or
    /// events deleted): re-reads them from the store and hands them over. Refreshes are
    /// serialised so a later read is never applied before an earlier one; each is one indexed
    /// query of one user's workouts.
    pub async fn workouts_changed(&self, user: &User) -> Result<crate::analytics::Epoch> {
        static REFRESH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _turn = REFRESH.lock().await;
        let workouts = crate::analytics::workout_events(self.store.as_ref(), user).await?;
        Ok(self.analytics.workouts(user.id, &workouts))
    }

    pub fn seal_tokens(&self, t: &TokenSet) -> Result<String> {
        let json = serde_json::to_string(t).map_err(|e| Error::internal(e.to_string()))?;
        self.keys.encrypt_str(&json)
    }

    pub fn open_tokens(&self, conn: &Connection) -> Result<Option<TokenSet>> {
        conn.sealed_tokens
            .as_deref()
            .map(|s| {
                let json = self.keys.decrypt_str(s)?;
                serde_json::from_str(&json)
                    .map_err(|e| Error::internal(format!("stored token set is invalid: {e}")))
            })
            .transpose()
    }
}

/// How a run ended, and so what the connection's actor does next.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Succeeded,
    /// Stopped between batches because the process is shutting down; committed batches stay.
    Interrupted,
    /// The provider's budget is exhausted; run again after this long (not a failure).
    RateLimited(Duration),
    /// The grant is no longer valid even after a refresh: the user must reconnect.
    ReauthRequired(String),
    /// A permission problem refreshing cannot fix: the connection goes to `error`.
    Forbidden(String),
    /// Worth retrying with backoff (provider 5xx after retries, unreadable data, store trouble).
    Failed(String),
    /// The connection no longer exists or is not active: nothing to do.
    Gone,
}

/// A run's input besides the job itself.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Only these data types (a webhook's targeted sync); empty = all.
    pub data_types: Vec<String>,
}

/// Runs `job` for its connection to the end (or until `cancel`), recording the result on the
/// job and publishing it on the bus.
pub async fn run_job(
    env: &SyncEnv,
    job: &SyncJob,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> RunOutcome {
    let conn = match env.store.connection_by_id(job.connection_id).await {
        Ok(Some(c)) if c.status == ConnectionStatus::Active => c,
        Ok(_) => {
            let _ = env
                .store
                .finish_sync_job(
                    job.id,
                    JobStatus::Failed,
                    Some("connection is not active"),
                    Utc::now(),
                )
                .await;
            return RunOutcome::Gone;
        }
        Err(e) => return RunOutcome::Failed(e.to_string()),
    };
    let subject = SyncEnv::subject(&conn);
    let span = tracing::info_span!(
        "sync",
        workspace_id = %conn.workspace_id,
        user_id = %conn.user_id,
        connection_id = %conn.id,
        provider = %conn.provider,
        job_id = %job.id,
    );

    if let Err(e) = env.store.start_sync_job(job.id, Utc::now()).await {
        return RunOutcome::Failed(e.to_string());
    }
    env.bus.publish(BusEvent::SyncStarted {
        subject: subject.clone(),
        job_id: job.id,
    });
    let outcome = {
        use tracing::Instrument as _;
        execute(env, conn, job, opts, cancel)
            .instrument(span.clone())
            .await
    };
    let now = Utc::now();
    let (status, error) = match &outcome {
        RunOutcome::Succeeded => (JobStatus::Succeeded, None),
        RunOutcome::Interrupted => (
            JobStatus::Failed,
            Some("interrupted by shutdown".to_string()),
        ),
        RunOutcome::RateLimited(d) => (
            JobStatus::Failed,
            Some(format!(
                "rate limited by the provider; resumes in {} s",
                d.as_secs()
            )),
        ),
        RunOutcome::ReauthRequired(m) | RunOutcome::Forbidden(m) | RunOutcome::Failed(m) => {
            (JobStatus::Failed, Some(m.clone()))
        }
        RunOutcome::Gone => (
            JobStatus::Failed,
            Some("connection is not active".to_string()),
        ),
    };
    if let Err(e) = env
        .store
        .finish_sync_job(job.id, status, error.as_deref(), now)
        .await
    {
        tracing::warn!(parent: &span, error = %e, "could not record the end of a sync job");
    }
    match env.store.sync_job(subject.workspace_id, job.id).await {
        Ok(Some(done)) if status == JobStatus::Succeeded => {
            env.bus.publish(BusEvent::SyncCompleted {
                subject,
                job_id: job.id,
                inserted: done.inserted as u64,
                updated: done.updated as u64,
                unchanged: done.unchanged as u64,
                events_written: done.events_written as u64,
            });
        }
        _ if status == JobStatus::Failed => env.bus.publish(BusEvent::SyncFailed {
            subject,
            job_id: job.id,
            error: error.unwrap_or_default(),
        }),
        _ => {}
    }
    outcome
}

async fn execute(
    env: &SyncEnv,
    mut conn: Connection,
    job: &SyncJob,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> RunOutcome {
    let Some(provider) = env.registry.get(&conn.provider) else {
        return RunOutcome::Forbidden(format!("provider '{}' is not available", conn.provider));
    };
    let user = match env.store.user(conn.workspace_id, conn.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return RunOutcome::Gone,
        Err(e) => return RunOutcome::Failed(e.to_string()),
    };
    let mut tokens = match env.open_tokens(&conn) {
        Ok(t) => t,
        Err(e) => return RunOutcome::Failed(e.to_string()),
    };
    if provider.oauth_spec().is_some() && tokens.is_none() {
        return RunOutcome::ReauthRequired("the connection has no tokens".into());
    }
    let mut refreshed = false;
    if let (Some(spec), Some(t)) = (provider.oauth_spec(), tokens.as_ref())
        && t.needs_refresh(Utc::now(), spec.refresh_margin)
    {
        match refresh(env, provider.as_ref(), &conn, t).await {
            Ok(t) => {
                tokens = Some(t);
                refreshed = true;
            }
            Err(o) => return o,
        }
    }
    loop {
        let req = SyncRequest {
            user: SyncUser {
                external_id: user.external_id.clone(),
                timezone: user.timezone.as_deref().and_then(|z| z.parse().ok()),
            },
            access_token: tokens.as_ref().map(|t| t.access_token.clone()),
            provider_user_id: conn.provider_user_id.clone(),
            data_types: opts.data_types.clone(),
            cursors: conn.cursors.clone(),
            range: job.range_from.zip(job.range_to),
            backfill_days: conn.backfill_days,
            connected_at: conn.created_at,
            now: Utc::now(),
        };
        match stream_batches(env, provider.as_ref(), &user, &conn, job, req, cancel).await {
            Ok(o) => return o,
            Err(ProviderError::Unauthorized(m)) => {
                // One refresh per run: a token the provider rejects right after a refresh
                // means the grant itself is gone.
                let Some(t) = tokens
                    .as_ref()
                    .filter(|t| t.refresh_token.is_some() && !refreshed)
                else {
                    return RunOutcome::ReauthRequired(m);
                };
                match refresh(env, provider.as_ref(), &conn, t).await {
                    Ok(t) => {
                        tokens = Some(t);
                        refreshed = true;
                    }
                    Err(o) => return o,
                }
                // Resume from what the batches before the 401 committed.
                conn = match env.store.connection_by_id(conn.id).await {
                    Ok(Some(c)) => c,
                    Ok(None) => return RunOutcome::Gone,
                    Err(e) => return RunOutcome::Failed(e.to_string()),
                };
            }
            Err(e) => return classify(e),
        }
    }
}

fn classify(e: ProviderError) -> RunOutcome {
    match e {
        ProviderError::RateLimited { retry_after_secs } => {
            RunOutcome::RateLimited(Duration::from_secs(retry_after_secs))
        }
        ProviderError::Unauthorized(m) => RunOutcome::ReauthRequired(m),
        ProviderError::Forbidden(m) => RunOutcome::Forbidden(m),
        ProviderError::NotConfigured(p) => {
            RunOutcome::Forbidden(format!("provider '{p}' is not configured on this server"))
        }
        e @ (ProviderError::Transient(_)
        | ProviderError::Malformed(_)
        | ProviderError::NotFound(_)
        | ProviderError::Rejected(_)) => RunOutcome::Failed(e.to_string()),
    }
}

/// Streams and commits until the provider is done; provider errors are returned for the caller
/// to classify (a 401 may still be saved by a refresh).
async fn stream_batches(
    env: &SyncEnv,
    provider: &dyn Provider,
    user: &User,
    conn: &Connection,
    job: &SyncJob,
    req: SyncRequest,
    cancel: &CancellationToken,
) -> std::result::Result<RunOutcome, ProviderError> {
    let mut stream = provider.sync(req);
    loop {
        // Cancellation is only observed while waiting for the provider, never during a commit:
        // a batch is written whole or not at all.
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(RunOutcome::Interrupted),
            next = stream.next() => next,
        };
        let batch = match next {
            None => return Ok(RunOutcome::Succeeded),
            Some(Ok(b)) => b,
            Some(Err(e)) => return Err(e),
        };
        let at = Utc::now();
        match env
            .store
            .commit_sync_batch(user, conn, Some(job.id), &batch, at)
            .await
        {
            Ok(out) => {
                env.committed(user, out.samples.changes, at);
                if !batch.events.is_empty()
                    && let Err(e) = env.workouts_changed(user).await
                {
                    tracing::warn!(error = %e, "refreshing the workout records failed");
                }
            }
            Err(e) => return Ok(RunOutcome::Failed(e.to_string())),
        }
    }
}

/// Refreshes the tokens and persists the new set (a rotated refresh token is stored before the
/// new access token is used, so a crash cannot strand the connection with a spent token).
async fn refresh(
    env: &SyncEnv,
    provider: &dyn Provider,
    conn: &Connection,
    tokens: &TokenSet,
) -> std::result::Result<TokenSet, RunOutcome> {
    let (Some(spec), Some(app)) = (
        provider.oauth_spec(),
        provider.oauth_app(&env.callback_url(&conn.provider)),
    ) else {
        return Err(RunOutcome::Forbidden(format!(
            "provider '{}' is not configured on this server",
            conn.provider
        )));
    };
    let Some(rt) = tokens.refresh_token.as_deref() else {
        return Err(RunOutcome::ReauthRequired(
            "the access token expired and there is no refresh token".into(),
        ));
    };
    let fresh = match oauth::refresh(&env.http, spec, &app, rt, Utc::now()).await {
        Ok(t) => t,
        Err(e) => {
            return Err(match e {
                ProviderError::Unauthorized(m) => RunOutcome::ReauthRequired(m),
                other => classify(other),
            });
        }
    };
    let sealed = env
        .seal_tokens(&fresh)
        .map_err(|e| RunOutcome::Failed(e.to_string()))?;
    env.store
        .update_connection_tokens(conn.id, &sealed, fresh.expires_at, Utc::now())
        .await
        .map_err(|e| RunOutcome::Failed(e.to_string()))?;
    tracing::info!(connection_id = %conn.id, "tokens refreshed");
    Ok(fresh)
}
