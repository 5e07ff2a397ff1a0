//! Bus → events → webhook queue and notification rules. Webhook deliveries are queued (a store
//! write) before anything is attempted; channel dispatch runs in its own task so one slow or
//! retrying channel never holds up the bus.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vitasync_engine::bus::BusEvent;
use vitasync_engine::domain::{UserId, WorkspaceId};
use vitasync_engine::notify::event::{self, Event};
use vitasync_engine::notify::model::{Rule, Webhook};
use vitasync_engine::notify::rules;
use vitasync_engine::services::notifications::NotifyEnv;

/// Events taken from the bus per step, at most. A step reads each user's workspace, each
/// workspace's webhooks and each user's rules once for all its events: a flush that announces
/// thousands of changes of a few users (the first after a bulk load) costs a few reads per
/// user, not three per event.
const STEP: usize = 1024;

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
                let mut step = vec![bus_event];
                while step.len() < STEP {
                    match rx.try_recv() {
                        Ok(e) => step.push(e),
                        Err(broadcast::error::TryRecvError::Lagged(missed)) => lagged(missed),
                        Err(_) => break,
                    }
                }
                let mut lookups = Lookups::default();
                for bus_event in step {
                    if let Some(event) = lookups.event(&env, &bus_event).await {
                        lookups.publish(&env, event, &cancel, &tasks).await;
                    }
                }
            }
            Err(RecvError::Lagged(missed)) => lagged(missed),
            Err(RecvError::Closed) => return,
        }
    }
}

fn lagged(missed: u64) {
    tracing::error!(
        missed,
        "notification dispatcher fell behind the bus; events were missed"
    );
}

/// What one step has read from the store, by whom it is about. A lookup that fails is logged
/// and not kept, so the next event asks again.
#[derive(Default)]
struct Lookups {
    workspaces: HashMap<UserId, Option<WorkspaceId>>,
    webhooks: HashMap<WorkspaceId, Vec<Webhook>>,
    rules: HashMap<(WorkspaceId, Option<UserId>), Vec<Rule>>,
}

impl Lookups {
    async fn event(&mut self, env: &NotifyEnv, bus_event: &BusEvent) -> Option<Event> {
        let workspace = match bus_event {
            BusEvent::AnalyticsChanged { user_id, .. } => match self.workspaces.get(user_id) {
                Some(ws) => *ws,
                None => match env.store.user_workspace(*user_id).await {
                    Ok(ws) => *self.workspaces.entry(*user_id).or_insert(ws),
                    Err(e) => {
                        tracing::error!(error = %e, "looking up a user's workspace for an event");
                        return None;
                    }
                },
            },
            _ => None,
        };
        event::from_bus(bus_event, workspace, Utc::now())
    }

    /// Queues `event` for its workspace's webhooks (a store write, so they survive a restart);
    /// returns how many deliveries were queued, 0 when that failed (logged).
    async fn queue_webhooks(&mut self, env: &NotifyEnv, event: &Event) -> usize {
        let hooks = match self.webhooks.entry(event.workspace_id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match env.store.list_webhooks(event.workspace_id).await {
                Ok(hooks) => e.insert(hooks),
                Err(e) => {
                    tracing::error!(error = %e, event = %event.id, kind = %event.kind, "queueing webhook deliveries");
                    return 0;
                }
            },
        };
        env.enqueue_to(hooks, event).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, event = %event.id, kind = %event.kind, "queueing webhook deliveries");
            0
        })
    }

    /// Queues `event` for webhooks, then, if one of the rules it is checked against matches,
    /// dispatches it to them in a tracked task.
    async fn publish(
        &mut self,
        env: &NotifyEnv,
        event: Event,
        cancel: &CancellationToken,
        tasks: &TaskTracker,
    ) {
        self.queue_webhooks(env, &event).await;
        let candidates = match self.rules.entry((event.workspace_id, event.user_id)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match env.rules_for(&event).await {
                Ok(rules) => e.insert(rules),
                Err(e) => {
                    tracing::error!(error = %e, event = %event.id, kind = %event.kind, "dispatching notifications");
                    return;
                }
            },
        };
        if candidates.iter().any(|r| rules::matches(r, &event)) {
            spawn_dispatch(env, event, candidates.clone(), cancel, tasks);
        }
    }
}

/// Sends `event` to the channels of the matching rules among `candidates`, in a tracked task so
/// a slow or retrying channel never holds up the bus.
fn spawn_dispatch(
    env: &NotifyEnv,
    event: Event,
    candidates: Vec<Rule>,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) {
    let env = env.clone();
    let cancel = cancel.clone();
    tasks.spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            r = env.dispatch_to(&event, &candidates) => {
                if let Err(e) = r {
                    tracing::error!(error = %e, event = %event.id, kind = %event.kind, "dispatching notifications");
                }
            }
        }
    });
}

/// At shutdown: queues the webhooks of the events already on the bus (published before the
/// stop, e.g. by the analytics' last flush), so they are delivered after the restart; the
/// next start would not announce them again. Channel messages need a live sender and are
/// skipped.
async fn drain(env: &NotifyEnv, rx: &mut broadcast::Receiver<Arc<BusEvent>>) {
    let mut queued = 0usize;
    let mut lookups = Lookups::default();
    loop {
        match rx.try_recv() {
            Ok(bus_event) => {
                if let Some(event) = lookups.event(env, &bus_event).await {
                    queued += lookups.queue_webhooks(env, &event).await;
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

/// Queues `event` for webhooks, then dispatches it to rules in a tracked task (an event that
/// does not come from the bus: a webhook disabled by the delivery loop).
pub async fn publish(
    env: &NotifyEnv,
    event: Event,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) {
    Lookups::default().publish(env, event, cancel, tasks).await;
}
