use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of session an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Workout,
    Sleep,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Workout => "workout",
            EventType::Sleep => "sleep",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "workout" => Some(EventType::Workout),
            "sleep" => Some(EventType::Sleep),
            _ => None,
        }
    }
}

/// A session (workout, sleep) as a provider reports it, normalised. Identity is
/// (user, provider, provider_event_id): the provider's own id, so re-syncs update in place.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub provider_event_id: String,
    pub event_type: EventType,
    /// Canonical activity name (`running`, `cycling`, …) for workouts.
    pub activity_type: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The local date the event belongs to (sleep: the date it ends).
    pub local_date: NaiveDate,
    pub duration_s: Option<f64>,
    pub distance_m: Option<f64>,
    pub energy_kcal: Option<f64>,
    pub avg_hr: Option<f64>,
    pub max_hr: Option<f64>,
    pub data: Option<serde_json::Value>,
}

/// A stored event as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Event {
    pub id: uuid::Uuid,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub provider: String,
    pub provider_event_id: String,
    pub activity_type: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub local_date: NaiveDate,
    pub duration_s: Option<f64>,
    pub distance_m: Option<f64>,
    pub energy_kcal: Option<f64>,
    pub avg_hr: Option<f64>,
    pub max_hr: Option<f64>,
    pub data: Option<serde_json::Value>,
}

/// Filters for listing events (newest first by start).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_type: Option<EventType>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub to: Option<DateTime<Utc>>,
    /// Only this activity (case-insensitive), e.g. `running`.
    pub activity_type: Option<String>,
}
