use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::UserId;

/// A canonical sample ready to be written: metric and unit are catalogue values, `local_date` is
/// resolved. Identity is (user, provider, metric, recorded_at).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSample {
    pub provider: String,
    pub metric: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub recorded_at: DateTime<Utc>,
    pub local_date: NaiveDate,
    pub utc_offset_minutes: i32,
    pub source: Option<String>,
    pub data: Option<serde_json::Value>,
}

/// A stored sample as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Sample {
    pub id: uuid::Uuid,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    pub recorded_at: DateTime<Utc>,
    pub local_date: NaiveDate,
    pub provider: String,
    pub source: Option<String>,
}

/// The part of a sample that analytics depend on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangedValue {
    pub value: f64,
    pub local_date: NaiveDate,
}

/// One committed change to the samples table: `old` is retracted, `new` inserted.
/// Insert: old = None. Update: both. Delete: new = None.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleChange {
    pub user_id: UserId,
    pub provider: String,
    pub metric: String,
    pub recorded_at: DateTime<Utc>,
    pub old: Option<ChangedValue>,
    pub new: Option<ChangedValue>,
}

/// What one batched write did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Every insert and update, with old and new values, in no particular order.
    pub changes: Vec<SampleChange>,
}

impl WriteOutcome {
    pub fn merge(&mut self, other: WriteOutcome) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.changes.extend(other.changes);
    }
}

/// Filters for listing samples (newest first).
#[derive(Debug, Clone, Default)]
pub struct SampleQuery {
    pub metric: Option<String>,
    pub provider: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub to: Option<DateTime<Utc>>,
}

/// One local date's value of one metric, aggregated with the catalogue's rule over the samples
/// of the winning provider for that date.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyValue {
    pub date: NaiveDate,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    /// Samples that went into `value`.
    pub count: i64,
    pub min: f64,
    pub max: f64,
    /// The provider whose samples were used.
    pub provider: String,
}

/// Per-metric overview of a user's data.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MetricSummary {
    pub metric: String,
    pub unit: String,
    pub count: i64,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    pub last_value: f64,
    pub last_recorded_at: DateTime<Utc>,
}
