//! Bus → events → webhook queue and notification rules. Webhook deliveries are queued (a store
//! write) before anything is attempted; channel dispatch runs in its own task so one slow or
//! retrying channel never holds up the bus.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vitasync_engine::bus::BusEvent;
use vitasync_engine::notify::event::{self, Event};
use vitasync_engine::services::notifications::NotifyEnv;

pub async fn run(
    env: NotifyEnv,
    mut rx: broadcast::Receiver<Arc<BusEvent>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return drain(&env, &mut rx).await,
            r = rx.recv() => r,
        };
        match received {
            Ok(bus_event) => {
                if let Some(event) = to_event(&env, &bus_event).await {
                    publish(&env, event, &cancel, &tasks).await;
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::error!(
                    missed,
                    "notification dispatcher fell behind the bus; events were missed"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// At shutdown: queues the webhooks of the events already on the bus (published before the
/// stop, e.g. by the analytics' last flush), so they are delivered after the restart; the
/// next start would not announce them again. Channel messages need a live sender and are
/// skipped.
async fn drain(env: &NotifyEnv, rx: &mut broadcast::Receiver<Arc<BusEvent>>) {
    let mut queued = 0usize;
    loop {
        match rx.try_recv() {
            Ok(bus_event) => {
                if let Some(event) = to_event(env, &bus_event).await {
                    queued += queue_webhooks(env, &event).await;
                }
            }
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                tracing::error!(missed, "events were missed at shutdown");
            }
            Err(_) => break,
        }
    }
    if queued > 0 {
        tracing::info!(
            deliveries = queued,
            "queued the webhooks of the events received before shutdown; their channel messages are skipped"
        );
    }
}

async fn to_event(env: &NotifyEnv, bus_event: &BusEvent) -> Option<Event> {
    let workspace = match bus_event {
        BusEvent::AnalyticsChanged { user_id, .. } => {
            match env.store.user_workspace(*user_id).await {
                Ok(ws) => ws,
                Err(e) => {
                    tracing::error!(error = %e, "looking up a user's workspace for an event");
                    return None;
                }
            }
        }
        _ => None,
    };
    event::from_bus(bus_event, workspace, Utc::now())
}

/// Queues `event` for the workspace's webhooks (a store write, so they survive a restart);
/// returns how many deliveries were queued, 0 when that failed (logged).
async fn queue_webhooks(env: &NotifyEnv, event: &Event) -> usize {
    env.enqueue_webhooks(event).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, event = %event.id, kind = %event.kind, "queueing webhook deliveries");
        0
    })
}

/// Queues `event` for webhooks, then dispatches it to rules in a tracked task.
pub async fn publish(
    env: &NotifyEnv,
    event: Event,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) {
    queue_webhooks(env, &event).await;
    let env = env.clone();
    let cancel = cancel.clone();
    tasks.spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            r = env.dispatch(&event) => {
                if let Err(e) = r {
                    tracing::error!(error = %e, event = %event.id, kind = %event.kind, "dispatching notifications");
                }
            }
        }
    });
}
