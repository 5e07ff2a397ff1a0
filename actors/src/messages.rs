//! Messages of the sync supervision tree.

use actix::prelude::*;
use vitasync_engine::domain::{ConnectionId, SyncJob};
use vitasync_engine::services::sync::{RunOptions, RunOutcome};

/// Run `job` on its connection's actor (starting the actor when needed).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Enqueue {
    pub job: SyncJob,
    pub opts: RunOptions,
}

/// The connection was disconnected (or deleted): stop its actor.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Stop {
    pub connection_id: ConnectionId,
}

/// Stop every actor at a batch boundary and wait (up to the grace period) for them.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;

/// How many connection actors run, and how many runs are in flight.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Status")]
pub struct GetStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    pub actors: usize,
    pub running: usize,
}

/// From a connection actor to the supervisor: a run ended.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub(crate) struct RunEnded {
    pub connection_id: ConnectionId,
    pub outcome: RunOutcome,
}

/// From the supervisor to a connection actor.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub(crate) struct Job {
    pub job: SyncJob,
    pub opts: RunOptions,
}

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub(crate) struct Halt;

#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "bool")]
pub(crate) struct IsBusy;
