//! The in-process event bus: every state change of the data-in side (connections, sync jobs,
//! committed sample changes, users created and deleted) and of the materialised analytics (findings appearing and
//! resolving, scores, records) is published here, and later stages (notifications, webhooks,
//! MCP subscriptions, metrics) subscribe. Publishing never blocks and never fails: with no
//! subscriber the event is dropped, and a subscriber that falls behind by more than the
//! channel's capacity is told how many it missed (`RecvError::Lagged`) rather than slowing the
//! publisher.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use chrono::NaiveDate;
use serde_json::Value;
use uuid::Uuid;

use crate::analytics::Epoch;
use crate::domain::{ConnectionId, SampleChange, SyncJobId, UserId, WorkspaceId};

/// Events per subscriber kept before the slowest one starts missing some.
pub const CAPACITY: usize = 16_384;

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
    /// A user was created through the API (not returned again for an existing external id).
    UserCreated {
        workspace_id: WorkspaceId,
        user_id: UserId,
    },
    /// A user and everything they owned were deleted.
    UserDeleted {
        workspace_id: WorkspaceId,
        user_id: UserId,
    },
    /// A change of one user's analytics, published once the materializer has stored it (so a
    /// subscriber that reads the tables sees it). Epoch = the analytics epoch that produced it.
    AnalyticsChanged {
        user_id: UserId,
        epoch: Epoch,
        change: AnalyticsChange,
    },
    /// The analytics tables now reflect `epoch`; `users` are those whose rows changed.
    AnalyticsMaterialized {
        epoch: Epoch,
        users: Arc<Vec<UserId>>,
    },
}

/// What changed in a user's analytics. Bodies are the rows as the API returns them.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalyticsChange {
    /// A finding that did not exist before (for this metric, date and method).
    AnomalyDetected { anomaly: AnomalyFact },
    /// A finding later data removed; `anomaly` is the last state it had.
    AnomalyResolved { anomaly: AnomalyFact },
    /// A day's scores are new or changed; `previous` is what they were.
    ScoreUpdated {
        date: NaiveDate,
        body: Value,
        previous: Option<Value>,
    },
    /// A significant correlation appeared.
    CorrelationDiscovered {
        metric_a: String,
        metric_b: String,
        lag_days: u8,
        body: Value,
    },
    /// A significant correlation is no longer significant (or lost its data).
    CorrelationDisappeared {
        metric_a: String,
        metric_b: String,
        lag_days: u8,
        body: Value,
    },
    /// A better best-daily value than the previous record (the first value of a metric sets a
    /// record without breaking one).
    RecordBroken {
        metric: String,
        body: Value,
        previous: Value,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyFact {
    /// The anomaly's stable id (the same id the API serves).
    pub id: Uuid,
    pub metric: String,
    pub date: NaiveDate,
    pub method: String,
    pub severity: String,
    pub body: Value,
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

    /// Events published that some subscriber has not received yet. A publisher of many events
    /// at once (the analytics' first flush) waits for this to drop, so subscribers keep up
    /// instead of missing events.
    pub fn backlog(&self) -> usize {
        self.tx.len()
    }
}
