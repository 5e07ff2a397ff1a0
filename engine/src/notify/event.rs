//! The typed event model notifications and outbound webhooks speak: stable names, a category
//! and severity for rule matching, and an id that is the event's idempotency key. Ids are
//! derived (UUIDv5) from what the event is about, so building the same event twice gives the
//! same id and every downstream claim or queue row deduplicates on it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::bus::{AnalyticsChange, BusEvent, Subject};
use crate::domain::{ConnectionStatus, UserId, WorkspaceId};

/// Namespace of every derived event id.
const EVENT_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_61a2_7d1e_4b8f_9a3c_2e6b_d4f1_0a97);

macro_rules! event_types {
    ($($variant:ident = $name:literal => $category:ident),* $(,)?) => {
        /// Every event name, as webhooks subscribe to it and receivers see it in `type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum EventType {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            pub fn category(self) -> Category {
                match self { $(EventType::$variant => Category::$category,)* }
            }
        }

        impl FromStr for EventType {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($name => Ok(EventType::$variant),)* _ => Err(()) }
            }
        }
    };
}

event_types! {
    AnomalyDetected = "anomaly.detected" => Anomaly,
    AnomalyResolved = "anomaly.resolved" => Anomaly,
    ScoreUpdated = "score.updated" => Report,
    CorrelationDiscovered = "correlation.discovered" => Insight,
    RecordBroken = "record.broken" => Achievement,
    SyncCompleted = "sync.completed" => Sync,
    SyncFailed = "sync.failed" => Sync,
    ConnectionCreated = "connection.created" => Sync,
    ConnectionDisconnected = "connection.disconnected" => Sync,
    ConnectionReauthRequired = "connection.reauth_required" => Sync,
    UserCreated = "user.created" => System,
    UserDeleted = "user.deleted" => System,
    WebhookDisabled = "webhook.disabled" => System,
    Test = "test" => System,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of news an event is; rules subscribe to categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Anomaly,
    Goal,
    Achievement,
    Sync,
    Report,
    System,
    Insight,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Anomaly => "anomaly",
            Category::Goal => "goal",
            Category::Achievement => "achievement",
            Category::Sync => "sync",
            Category::Report => "report",
            Category::System => "system",
            Category::Insight => "insight",
        }
    }
}

/// Ordered: a rule's `min_severity` admits its level and everything above.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The analytics grade their findings `info`/`warning`/`critical` (anything else is info).
    pub fn parse_lenient(s: &str) -> Severity {
        match s {
            "critical" => Severity::Critical,
            "warning" => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

impl FromStr for Severity {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(()),
        }
    }
}

/// One event, ready for rules, channels and webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Idempotency key: the same fact gives the same id.
    pub id: Uuid,
    pub kind: EventType,
    pub severity: Severity,
    pub workspace_id: WorkspaceId,
    /// The user it is about (None for workspace-level events).
    pub user_id: Option<UserId>,
    pub created_at: DateTime<Utc>,
    /// A short human headline.
    pub title: String,
    /// One or two sentences for people.
    pub message: String,
    /// The machine-readable details (the webhook payload's `data`).
    pub data: Value,
}

impl Event {
    pub fn category(&self) -> Category {
        self.kind.category()
    }

    /// The id for `kind` about `key` (what the event concerns, including whatever makes two
    /// occurrences different, e.g. the analytics epoch).
    pub fn derive_id(kind: EventType, key: &str) -> Uuid {
        Uuid::new_v5(&EVENT_NAMESPACE, format!("{kind}|{key}").as_bytes())
    }

    /// The JSON a webhook receives.
    pub fn envelope(&self) -> Value {
        json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "created_at": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "workspace_id": self.workspace_id,
            "data": self.data,
        })
    }
}

fn subject_data(s: &Subject) -> Value {
    json!({
        "user_id": s.user_id,
        "connection_id": s.connection_id,
        "provider": s.provider,
    })
}

/// The event a bus event is news of, if any. Analytics events name only the user, so the
/// caller supplies the workspace it looked up (`workspace_of`); `now` stamps the event.
pub fn from_bus(
    event: &BusEvent,
    workspace_of_user: Option<WorkspaceId>,
    now: DateTime<Utc>,
) -> Option<Event> {
    let at_subject = |kind: EventType,
                      s: &Subject,
                      key: String,
                      severity,
                      title: String,
                      message: String,
                      data: Value| Event {
        id: Event::derive_id(kind, &key),
        kind,
        severity,
        workspace_id: s.workspace_id,
        user_id: Some(s.user_id),
        created_at: now,
        title,
        message,
        data,
    };
    match event {
        BusEvent::ConnectionCreated { subject } => Some(at_subject(
            EventType::ConnectionCreated,
            subject,
            format!("{}|{}", subject.connection_id, now.timestamp_micros()),
            Severity::Info,
            format!("{} connected", subject.provider),
            format!("A {} connection was created.", subject.provider),
            subject_data(subject),
        )),
        BusEvent::ConnectionDisconnected { subject } => Some(at_subject(
            EventType::ConnectionDisconnected,
            subject,
            format!("{}|{}", subject.connection_id, now.timestamp_micros()),
            Severity::Warning,
            format!("{} disconnected", subject.provider),
            format!("The {} connection was disconnected.", subject.provider),
            subject_data(subject),
        )),
        BusEvent::ConnectionErrored {
            subject,
            status: ConnectionStatus::ReauthRequired,
            reason,
        } => {
            let mut data = subject_data(subject);
            data["reason"] = json!(reason);
            Some(at_subject(
                EventType::ConnectionReauthRequired,
                subject,
                format!("{}|{}", subject.connection_id, now.timestamp_micros()),
                Severity::Critical,
                format!("{} needs re-authorisation", subject.provider),
                format!(
                    "The {} connection can no longer sync until it is authorised again: {reason}",
                    subject.provider
                ),
                data,
            ))
        }
        BusEvent::SyncCompleted {
            subject,
            job_id,
            inserted,
            updated,
            unchanged,
            events_written,
        } => {
            let mut data = subject_data(subject);
            data["job_id"] = json!(job_id);
            data["inserted"] = json!(inserted);
            data["updated"] = json!(updated);
            data["unchanged"] = json!(unchanged);
            data["events_written"] = json!(events_written);
            Some(at_subject(
                EventType::SyncCompleted,
                subject,
                job_id.to_string(),
                Severity::Info,
                format!("{} sync completed", subject.provider),
                format!(
                    "{inserted} new and {updated} updated samples from {}.",
                    subject.provider
                ),
                data,
            ))
        }
        BusEvent::SyncFailed {
            subject,
            job_id,
            error,
        } => {
            let mut data = subject_data(subject);
            data["job_id"] = json!(job_id);
            data["error"] = json!(error);
            Some(at_subject(
                EventType::SyncFailed,
                subject,
                job_id.to_string(),
                Severity::Warning,
                format!("{} sync failed", subject.provider),
                format!("Syncing {} failed: {error}", subject.provider),
                data,
            ))
        }
        BusEvent::UserCreated {
            workspace_id,
            user_id,
        }
        | BusEvent::UserDeleted {
            workspace_id,
            user_id,
        } => {
            let (kind, title) = if matches!(event, BusEvent::UserCreated { .. }) {
                (EventType::UserCreated, "User created")
            } else {
                (EventType::UserDeleted, "User deleted")
            };
            Some(Event {
                id: Event::derive_id(kind, &user_id.to_string()),
                kind,
                severity: Severity::Info,
                workspace_id: *workspace_id,
                // The user is the subject, not an audience: a deleted user has no channels.
                user_id: None,
                created_at: now,
                title: title.into(),
                message: format!("{title}: {user_id}."),
                data: json!({ "user_id": user_id }),
            })
        }
        BusEvent::AnalyticsChanged {
            user_id,
            epoch,
            change,
        } => {
            let workspace_id = workspace_of_user?;
            let (kind, key, severity, title, message, mut data) = analytics(change)?;
            data["user_id"] = json!(user_id);
            Some(Event {
                id: Event::derive_id(kind, &format!("{user_id}|{key}|{epoch}")),
                kind,
                severity,
                workspace_id,
                user_id: Some(*user_id),
                created_at: now,
                title,
                message,
                data,
            })
        }
        BusEvent::ConnectionErrored { .. }
        | BusEvent::SyncStarted { .. }
        | BusEvent::SamplesChanged { .. }
        | BusEvent::AnalyticsMaterialized { .. } => None,
    }
}

type Parts = (EventType, String, Severity, String, String, Value);

fn analytics(change: &AnalyticsChange) -> Option<Parts> {
    Some(match change {
        AnalyticsChange::AnomalyDetected { anomaly } => (
            EventType::AnomalyDetected,
            anomaly.id.to_string(),
            Severity::parse_lenient(&anomaly.severity),
            format!("Unusual {} on {}", anomaly.metric, anomaly.date),
            format!(
                "{} on {} looks unusual ({}).",
                anomaly.metric, anomaly.date, anomaly.method
            ),
            json!({ "anomaly": anomaly.body }),
        ),
        AnalyticsChange::AnomalyResolved { anomaly } => (
            EventType::AnomalyResolved,
            anomaly.id.to_string(),
            Severity::Info,
            format!("{} on {} is back to normal", anomaly.metric, anomaly.date),
            format!(
                "The unusual {} on {} ({}) no longer stands after newer data.",
                anomaly.metric, anomaly.date, anomaly.method
            ),
            json!({ "anomaly": anomaly.body }),
        ),
        AnalyticsChange::ScoreUpdated {
            date,
            body,
            previous,
        } => (
            EventType::ScoreUpdated,
            date.to_string(),
            Severity::Info,
            format!("Scores for {date} updated"),
            format!("The daily scores for {date} changed."),
            json!({ "score": body, "previous": previous }),
        ),
        AnalyticsChange::CorrelationDiscovered {
            metric_a,
            metric_b,
            lag_days,
            body,
        } => (
            EventType::CorrelationDiscovered,
            format!("{metric_a}|{metric_b}|{lag_days}"),
            Severity::Info,
            format!("{metric_a} and {metric_b} move together"),
            format!(
                "A significant correlation between {metric_a} and {metric_b} (lag {lag_days} days) appeared."
            ),
            json!({ "correlation": body }),
        ),
        AnalyticsChange::RecordBroken {
            metric,
            body,
            previous,
        } => (
            EventType::RecordBroken,
            metric.clone(),
            Severity::Info,
            format!("New {metric} record"),
            format!("A new personal best for {metric}."),
            json!({ "record": body, "previous": previous }),
        ),
        // Losing a correlation is not news anyone asked to be told about.
        AnalyticsChange::CorrelationDisappeared { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ids_are_stable() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(*t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                Value::String(t.as_str().into())
            );
        }
        let a = Event::derive_id(EventType::AnomalyDetected, "x|1");
        assert_eq!(a, Event::derive_id(EventType::AnomalyDetected, "x|1"));
        assert_ne!(a, Event::derive_id(EventType::AnomalyResolved, "x|1"));
        assert_ne!(a, Event::derive_id(EventType::AnomalyDetected, "x|2"));
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
    }
}
