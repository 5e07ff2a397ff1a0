//! The port through which committed sample changes reach the analytics. The engine's services
//! and the actors hand every change they commit to an [`AnalyticsSink`]; the binary wires the
//! dataflow in behind it, so nothing here depends on timely or differential.

use std::sync::Arc;

use crate::cursor::Limit;
use crate::domain::{Event, EventQuery, EventType, SampleChange, User, UserId, WorkspaceId};
use crate::error::Result;

/// The analytics' logical clock: one epoch per applied batch of changes. Analytics reads can
/// wait until the materialised state includes a given epoch (read-your-writes).
pub type Epoch = u64;

pub trait AnalyticsSink: Send + Sync + 'static {
    /// Hands one committed batch of changes (of users of `workspace`) to the analytics and
    /// returns the epoch it was assigned. Never blocks on the computation itself.
    fn apply(&self, workspace: WorkspaceId, changes: &[SampleChange]) -> Epoch;

    /// Replaces what the analytics know of `user`'s workouts with `workouts` (every stored
    /// workout event of the user, read after the write that changed them) and returns the
    /// epoch that applies the difference.
    fn workouts(&self, _user: UserId, _workouts: &[Event]) -> Epoch {
        0
    }
}

/// Every stored workout of `user`, for [`AnalyticsSink::workouts`].
pub async fn workout_events(store: &dyn crate::store::Store, user: &User) -> Result<Vec<Event>> {
    let query = EventQuery {
        event_type: Some(EventType::Workout),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_events(user, &query, Limit(Limit::MAX), after)
            .await?;
        out.extend(page.items);
        match page.next {
            Some(c) => after = Some(c),
            None => return Ok(out),
        }
    }
}

pub type DynSink = Arc<dyn AnalyticsSink>;

/// For tools that write samples without running the analytics (the CLI, some tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAnalytics;

impl AnalyticsSink for NoAnalytics {
    fn apply(&self, _: WorkspaceId, _: &[SampleChange]) -> Epoch {
        0
    }
}

/// One change to the materialised analytics tables: a row put (inserted or replaced) or gone.
/// Bodies are the rows' statistics as JSON, in the shape the API returns.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalyticsWrite {
    Baseline {
        user_id: crate::domain::UserId,
        metric: String,
        window_days: u32,
        /// None = the row is gone.
        put: Option<(chrono::NaiveDate, serde_json::Value)>,
    },
    Anomaly {
        id: uuid::Uuid,
        user_id: crate::domain::UserId,
        /// (metric, date, method, severity, body); None = gone.
        put: Option<AnomalyRow>,
    },
    Correlation {
        user_id: crate::domain::UserId,
        metric_a: String,
        metric_b: String,
        lag_days: u8,
        /// (|r|, body); None = gone.
        put: Option<(f64, serde_json::Value)>,
    },
    Score {
        user_id: crate::domain::UserId,
        date: chrono::NaiveDate,
        put: Option<serde_json::Value>,
    },
    Record {
        user_id: crate::domain::UserId,
        metric: String,
        kind: String,
        put: Option<serde_json::Value>,
    },
}

/// The typed columns of a materialised anomaly.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    pub metric: String,
    pub date: chrono::NaiveDate,
    pub method: String,
    pub severity: String,
    pub body: serde_json::Value,
}

/// The materialised analytics tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalyticsTable {
    Baselines,
    Anomalies,
    Correlations,
    Scores,
    Records,
}

impl AnalyticsTable {
    /// The table's rows of one user, ordered by their natural key, as stored bodies.
    pub fn select(self) -> &'static str {
        match self {
            AnalyticsTable::Baselines => {
                "SELECT body FROM analytics_baselines WHERE user_id = $1 ORDER BY metric, window_days"
            }
            AnalyticsTable::Anomalies => {
                "SELECT a.body, s.status FROM analytics_anomalies a
                 LEFT JOIN anomaly_status s ON s.anomaly_id = a.id
                 WHERE a.user_id = $1 ORDER BY a.date DESC, a.id"
            }
            AnalyticsTable::Correlations => {
                "SELECT body FROM analytics_correlations WHERE user_id = $1
                 ORDER BY abs_r DESC, metric_a, metric_b, lag_days"
            }
            AnalyticsTable::Scores => {
                "SELECT body FROM health_scores WHERE user_id = $1 ORDER BY date"
            }
            AnalyticsTable::Records => {
                "SELECT body FROM personal_records WHERE user_id = $1 ORDER BY metric, kind"
            }
        }
    }
}
