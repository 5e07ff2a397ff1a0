//! The durable webhook sender. It has no queue of its own: each round it asks the store which
//! deliveries are due, attempts them concurrently, and records every outcome, so a restart
//! (or a crash mid-attempt, which leaves the row pending) simply resumes. Between rounds it
//! sleeps until the next delivery is due or a new one is queued.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vitasync_engine::services::notifications::NotifyEnv;
use vitasync_engine::services::outbound_webhooks::disabled_event;

use super::dispatcher::publish;

/// Deliveries attempted per round.
const BATCH: u32 = 64;
/// Longest sleep without looking at the store (another replica may have queued work).
const IDLE: Duration = Duration::from_secs(5);

pub async fn run(env: NotifyEnv, cancel: CancellationToken, tasks: TaskTracker) {
    while !cancel.is_cancelled() {
        match env.store.due_deliveries(Utc::now(), BATCH).await {
            Ok(due) if !due.is_empty() => {
                let round =
                    futures::future::join_all(due.into_iter().map(|d| env.attempt_delivery(d)));
                let results = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = round => r,
                };
                for r in results {
                    match r {
                        Ok(Some(disabled)) => {
                            publish(&env, disabled_event(&disabled), &cancel, &tasks).await;
                        }
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "recording a webhook delivery"),
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading due webhook deliveries"),
        }
        let wait = match env.store.next_delivery_due().await {
            Ok(Some(at)) => (at - Utc::now()).to_std().unwrap_or_default().min(IDLE),
            _ => IDLE,
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = env.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
