//! What the notification side stores: channels, rules, attempt logs, outbound webhooks and
//! their deliveries. Secrets are only ever held sealed (key ring ciphertext) in these types.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::event::{Category, EventType, Severity};
use crate::domain::WorkspaceId;

/// A user's notification channel. `config_public` is the masked config the API returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub user_id: Uuid,
    pub kind: String,
    pub name: String,
    pub config_sealed: String,
    pub config_public: Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Quiet hours as local `HH:MM` times in the user's timezone; `start > end` spans midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rule {
    pub id: Uuid,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub user_id: Uuid,
    pub channel_ids: Vec<Uuid>,
    pub categories: Vec<Category>,
    pub min_severity: Severity,
    pub enabled: bool,
    pub quiet_hours: Option<QuietHours>,
    /// Most notifications this rule sends in any hour (null = no cap).
    pub hourly_cap: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One delivery attempt to a channel.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LogEntry {
    pub id: Uuid,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub user_id: Uuid,
    pub channel_id: Uuid,
    /// Null for a channel's test message.
    pub rule_id: Option<Uuid>,
    pub event_id: Uuid,
    pub event_type: String,
    /// `delivered` or `failed`.
    pub status: String,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: u64,
    pub attempt: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub secret_sealed: String,
    pub enabled: bool,
    /// When the current run of failures began (None while deliveries succeed).
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// True when this webhook is enabled and subscribed to `kind`.
    pub fn wants(&self, kind: EventType) -> bool {
        self.enabled && self.events.contains(&kind)
    }
}

/// The state of one queued event for one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (`next_attempt_at`).
    Pending,
    Succeeded,
    /// Out of attempts, or its webhook was disabled or deleted.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    /// The event's id, sent as `VitaSync-Delivery`: a receiver deduplicates on it.
    pub event_id: Uuid,
    pub event_type: String,
    /// The exact body sent.
    #[serde(skip)]
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}
