//! The durable webhook sender. It has no queue of its own: each round it asks the store which
//! deliveries are due, leases each (a compare-and-set on its due time, so two senders never
//! attempt the same one and a crash mid-attempt makes it due again when the lease ends), and
//! attempts it in its own task, so one slow endpoint holds up nothing else. Between rounds it
//! sleeps until the next delivery is due or a new one is queued.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vitasync_engine::notify::model::Delivery;
use vitasync_engine::services::notifications::NotifyEnv;
use vitasync_engine::services::outbound_webhooks::disabled_event;

use super::dispatcher::publish;

/// Deliveries read per round.
const BATCH: u32 = 64;
/// Longest sleep without looking at the store (another replica may have queued work).
const IDLE: Duration = Duration::from_secs(5);
/// How long past its timeout an attempt's lease lasts.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

pub async fn run(env: NotifyEnv, cancel: CancellationToken, tasks: TaskTracker) {
    let lease = chrono::Duration::from_std(env.settings.webhook_timeout + LEASE_MARGIN)
        .unwrap_or(chrono::Duration::MAX);
    while !cancel.is_cancelled() {
        match env.store.due_deliveries(Utc::now(), BATCH).await {
            Ok(due) => {
                for d in due {
                    let Some(due_at) = d.next_attempt_at else {
                        continue;
                    };
                    let until = Utc::now() + lease;
                    match env.store.lease_delivery(d.id, due_at, until).await {
                        Ok(true) => {
                            tasks.spawn(attempt(
                                env.clone(),
                                d,
                                until,
                                cancel.clone(),
                                tasks.clone(),
                            ));
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "leasing a webhook delivery"),
                    }
                }
            }
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

/// One attempt under a lease until `leased_until`. A shutdown cuts it short and hands the
/// lease back, so the next start attempts the delivery at once rather than when the lease
/// ends (the receiver may then see it twice, which its `VitaSync-Delivery` id tells apart).
async fn attempt(
    env: NotifyEnv,
    d: Delivery,
    leased_until: chrono::DateTime<Utc>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let (id, due) = (d.id, d.next_attempt_at);
    let outcome = tokio::select! {
        _ = cancel.cancelled() => {
            if let Some(due) = due
                && let Err(e) = env.store.lease_delivery(id, leased_until, due).await
            {
                tracing::warn!(error = %e, delivery = %id, "handing back a webhook delivery's lease");
            }
            return;
        }
        r = env.attempt_delivery(d) => r,
    };
    match outcome {
        Ok(Some(disabled)) => publish(&env, disabled_event(&disabled), &cancel, &tasks).await,
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "recording a webhook delivery"),
    }
    // A retry may now be due sooner than the sender's current sleep.
    env.wake.notify_one();
}
