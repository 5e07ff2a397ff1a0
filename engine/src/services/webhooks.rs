//! Provider webhooks: verification is the provider's (signature schemes differ); this maps what
//! it asks for onto connections. Notifications for accounts nobody here has connected are
//! logged and acknowledged, so the provider does not retry them forever.

use chrono::Utc;

use crate::bus::BusEvent;
use crate::domain::{ConnectionStatus, SyncJob, SyncTrigger};
use crate::error::{Error, Result};
use crate::providers::{WebhookError, WebhookReply, WebhookRequest, WebhookTarget};
use crate::services::sync::{RunOptions, SyncEnv};

/// What the transport answers, and the jobs it hands to the actors.
#[derive(Debug)]
pub struct WebhookResult {
    pub reply: WebhookReply,
    pub jobs: Vec<(SyncJob, RunOptions)>,
    /// Connections the provider says were revoked: their actors must stop.
    pub stopped: Vec<crate::domain::ConnectionId>,
    /// Some target could not be applied: answer so that the provider delivers again.
    pub incomplete: bool,
}

/// Verifies and applies one webhook call. `Err(WebhookError)` is answered as the provider's
/// contract says (401 bad signature, 404 wrong verification code …).
pub async fn handle(
    env: &SyncEnv,
    provider_id: &str,
    req: &WebhookRequest,
) -> Result<std::result::Result<WebhookResult, WebhookError>> {
    let provider = env
        .registry
        .get(provider_id)
        .ok_or(Error::NotFound("provider"))?;
    let reply = match provider.webhook(req) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(provider = provider_id, error = %e, "webhook refused");
            return Ok(Err(e));
        }
    };
    let mut result = WebhookResult {
        reply: reply.clone(),
        jobs: Vec::new(),
        stopped: Vec::new(),
        incomplete: false,
    };
    let WebhookReply::Accepted { targets, .. } = reply else {
        return Ok(Ok(result));
    };
    for target in targets {
        // One target failing (a store hiccup) must not strand the jobs already created for
        // the others: they are still handed to the actors, and the provider is asked to retry.
        if let Err(e) = apply(env, provider_id, &target, &mut result).await {
            tracing::error!(provider = provider_id, error = %e, "could not apply a webhook target");
            result.incomplete = true;
        }
    }
    Ok(Ok(result))
}

async fn apply(
    env: &SyncEnv,
    provider_id: &str,
    target: &WebhookTarget,
    result: &mut WebhookResult,
) -> Result<()> {
    let account = match &target {
        WebhookTarget::Sync {
            provider_user_id, ..
        }
        | WebhookTarget::Data {
            provider_user_id, ..
        }
        | WebhookTarget::Deauthorized { provider_user_id } => provider_user_id.clone(),
    };
    let conns = env
        .store
        .connections_for_account(provider_id, &account)
        .await?;
    // A revocation ends every connection to the account that is not already ended (one
    // waiting for re-authorization or in error too); data and syncs only reach active ones.
    let revoked = matches!(target, WebhookTarget::Deauthorized { .. });
    let affected: Vec<_> = conns
        .into_iter()
        .filter(|c| {
            if revoked {
                c.status != ConnectionStatus::Disconnected
            } else {
                c.status == ConnectionStatus::Active
            }
        })
        .collect();
    if affected.is_empty() {
        tracing::info!(provider = provider_id, account = %account, "webhook for an account with no active connection; ignored");
        return Ok(());
    }
    let now = Utc::now();
    for conn in affected {
        match &target {
            WebhookTarget::Sync {
                data_types, range, ..
            } => {
                let job = env
                    .store
                    .create_sync_job(&conn, SyncTrigger::Webhook, *range, now)
                    .await?;
                result.jobs.push((
                    job,
                    RunOptions {
                        data_types: data_types.clone(),
                    },
                ));
            }
            WebhookTarget::Data { batch, .. } => {
                let user = env
                    .store
                    .user(conn.workspace_id, conn.user_id)
                    .await?
                    .ok_or(Error::NotFound("user"))?;
                // Pushed data carries no cursor meaning for pulls: keep the connection's.
                let mut batch = batch.clone();
                batch.cursors.clear();
                let out = env
                    .store
                    .commit_sync_batch(&user, &conn, None, &batch, now)
                    .await?;
                env.committed(&user, out.samples.changes, now);
                if !batch.events.is_empty() {
                    env.workouts_changed(&user).await?;
                }
            }
            WebhookTarget::Deauthorized { .. } => {
                let user = env
                    .store
                    .user(conn.workspace_id, conn.user_id)
                    .await?
                    .ok_or(Error::NotFound("user"))?;
                // The grant is gone: forget its tokens as a disconnect through the API
                // does, then record why.
                env.store
                    .disconnect_connection(&user, conn.id, false, now)
                    .await?;
                env.store
                    .set_connection_status(
                        conn.id,
                        ConnectionStatus::Disconnected,
                        Some("access was revoked at the provider"),
                        now,
                    )
                    .await?;
                result.stopped.push(conn.id);
                env.bus.publish(BusEvent::ConnectionDisconnected {
                    subject: SyncEnv::subject(&conn),
                });
            }
        }
    }
    Ok(())
}
