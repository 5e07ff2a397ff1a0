//! VitaSync's actix supervision tree for the data-in side.
//!
//! What lives where:
//! - [`supervisor`]: `SyncSupervisor`, one per process: owns a connection actor per active
//!   connection, restarts failed ones with exponential backoff up to a limit, and shuts down
//!   at batch boundaries.
//! - [`connection`]: the per-connection actor — one run at a time, a queue of requested jobs,
//!   the jittered incremental schedule.
//! - [`schedule`]: timing policy (interval, jitter, restart backoff) as pure functions.
//! - [`messages`]: what the tree's actors say to each other.
//! - [`SyncHandle`]: what the transports hold to hand jobs to the tree.
//! - [`notify`]: the notification dispatcher and the durable webhook sender (tokio tasks).
//!
//! A run itself (`vitasync_engine::services::sync::run_job`) lives in the engine so it can be
//! tested without actors; actors decide only when runs happen and what follows them.

mod connection;
pub mod messages;
pub mod notify;
pub mod schedule;
pub mod supervisor;

use actix::prelude::*;
use vitasync_engine::domain::{ConnectionId, SyncJob};
use vitasync_engine::services::sync::{RunOptions, SyncEnv};

pub use messages::Status;
pub use notify::NotifyHandle;
pub use schedule::SyncSettings;
pub use supervisor::SyncSupervisor;

/// A cloneable, thread-safe handle on the supervision tree.
#[derive(Clone)]
pub struct SyncHandle {
    addr: Addr<SyncSupervisor>,
}

impl SyncHandle {
    /// Starts the supervisor (inside the running actix system), which starts an actor for
    /// every active connection.
    pub fn start(env: SyncEnv, settings: SyncSettings) -> Self {
        SyncHandle {
            addr: SyncSupervisor::new(env, settings).start(),
        }
    }

    /// Runs `job` on its connection's actor.
    pub fn enqueue(&self, job: SyncJob) {
        self.enqueue_with(job, RunOptions::default());
    }

    pub fn enqueue_with(&self, job: SyncJob, opts: RunOptions) {
        self.addr.do_send(messages::Enqueue { job, opts });
    }

    /// Stops the connection's actor (after a disconnect).
    pub fn stop(&self, connection_id: ConnectionId) {
        self.addr.do_send(messages::Stop { connection_id });
    }

    pub async fn status(&self) -> Status {
        self.addr
            .send(messages::GetStatus)
            .await
            .unwrap_or_default()
    }

    /// Stops every run at its next batch boundary and waits for them (bounded by the grace
    /// period).
    pub async fn shutdown(&self) {
        let _ = self.addr.send(messages::Shutdown).await;
    }
}
