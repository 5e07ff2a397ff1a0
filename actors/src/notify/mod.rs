//! The notification runtime, as two tokio tasks (they need no actix mailbox: one reads the
//! bus, the other reads the store):
//! - [`dispatcher`]: turns bus events into typed events, queues them for the workspace's
//!   webhooks, and dispatches them to matching notification rules.
//! - [`deliveries`]: the durable webhook sender: attempts whatever the store says is due,
//!   records each outcome, and so resumes pending deliveries after a restart.
//!
//! [`NotifyHandle::shutdown`] stops both and waits for in-flight work to end.

pub mod deliveries;
pub mod dispatcher;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vitasync_engine::bus::Bus;
use vitasync_engine::services::notifications::NotifyEnv;

#[derive(Clone)]
pub struct NotifyHandle {
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl NotifyHandle {
    /// Subscribes to `bus` now (so nothing published after this returns is missed) and
    /// starts both tasks.
    pub fn start(env: NotifyEnv, bus: &Bus) -> Self {
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let rx = bus.subscribe();
        tasks.spawn(dispatcher::run(
            env.clone(),
            rx,
            cancel.clone(),
            tasks.clone(),
        ));
        tasks.spawn(deliveries::run(env, cancel.clone(), tasks.clone()));
        NotifyHandle { cancel, tasks }
    }

    /// Stops reading the bus and the queue; attempts cut short stay pending in the store.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
