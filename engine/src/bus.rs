//! The in-process event bus: every state change of the data-in side (connections, sync jobs,
//! committed sample changes) is published here, and later stages (analytics, notifications,
//! webhooks, MCP subscriptions) subscribe. Publishing never blocks and never fails: with no
//! subscriber the event is dropped, and a subscriber that falls behind by more than the
//! channel's capacity is told how many it missed (`RecvError::Lagged`) rather than slowing the
//! publisher.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::domain::{ConnectionId, SampleChange, SyncJobId, UserId, WorkspaceId};

/// Events per subscriber kept before the slowest one starts missing some.
const CAPACITY: usize = 16_384;

/// Who an event is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub connection_id: ConnectionId,
    pub provider: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    ConnectionCreated {
        subject: Subject,
    },
    ConnectionDisconnected {
        subject: Subject,
    },
    /// The connection went to `error` or `reauth_required`.
    ConnectionErrored {
        subject: Subject,
        status: crate::domain::ConnectionStatus,
        reason: String,
    },
    SyncStarted {
        subject: Subject,
        job_id: SyncJobId,
    },
    SyncCompleted {
        subject: Subject,
        job_id: SyncJobId,
        inserted: u64,
        updated: u64,
        unchanged: u64,
        events_written: u64,
    },
    SyncFailed {
        subject: Subject,
        job_id: SyncJobId,
        error: String,
    },
    /// Samples committed by one transaction (a sync batch or an API write), with old values.
    SamplesChanged {
        workspace_id: WorkspaceId,
        user_id: UserId,
        changes: Arc<Vec<SampleChange>>,
        at: DateTime<Utc>,
    },
}

/// Cheap to clone; all clones publish to the same subscribers.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<BusEvent>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    pub fn new() -> Self {
        Bus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    pub fn publish(&self, event: BusEvent) {
        // An error only means nobody is subscribed right now.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.tx.subscribe()
    }
}
