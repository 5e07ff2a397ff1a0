use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{UserId, WorkspaceId};
use crate::providers::Cursors;

pub type ConnectionId = uuid::Uuid;
pub type SyncJobId = uuid::Uuid;

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

text_enum!(
    /// Where a connection stands.
    ConnectionStatus {
        Active = "active",
        Error = "error",
        ReauthRequired = "reauth_required",
        Disconnected = "disconnected",
    }
);

text_enum!(
    /// What started a sync job.
    SyncTrigger {
        Backfill = "backfill",
        Schedule = "schedule",
        Manual = "manual",
        Webhook = "webhook",
    }
);

text_enum!(
    /// A sync job's progress.
    JobStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
);

/// A user's link to one provider account. The token set is kept sealed (see
/// [`crate::crypto::KeyRing`]) and never leaves the engine in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: ConnectionId,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub provider: String,
    pub status: ConnectionStatus,
    pub provider_user_id: Option<String>,
    pub scopes: Vec<String>,
    pub sealed_tokens: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub cursors: Cursors,
    pub backfill_days: u32,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A connection being made (or re-made: connecting the same provider again re-activates the
/// existing connection and keeps its cursors).
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub provider: String,
    pub provider_user_id: Option<String>,
    pub scopes: Vec<String>,
    pub sealed_tokens: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub backfill_days: u32,
}

/// The API view of a connection (no tokens, no cursors).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub provider: String,
    pub status: ConnectionStatus,
    pub provider_user_id: Option<String>,
    pub scopes: Vec<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Connection> for ConnectionView {
    fn from(c: &Connection) -> Self {
        ConnectionView {
            id: c.id,
            user_id: c.user_id,
            provider: c.provider.clone(),
            status: c.status,
            provider_user_id: c.provider_user_id.clone(),
            scopes: c.scopes.clone(),
            last_synced_at: c.last_synced_at,
            last_error: c.last_error.clone(),
            created_at: c.created_at,
        }
    }
}

/// One sync run of one connection. Its counters are written in the same transaction as each
/// batch, so they are exact after a crash too.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SyncJob {
    pub id: uuid::Uuid,
    pub connection_id: uuid::Uuid,
    #[serde(skip)]
    pub user_id: UserId,
    pub provider: String,
    pub trigger: SyncTrigger,
    pub status: JobStatus,
    pub range_from: Option<DateTime<Utc>>,
    pub range_to: Option<DateTime<Utc>>,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub events_written: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What committing one sync batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub samples: super::WriteOutcome,
    pub events_written: u64,
}

/// A pending OAuth authorization. Only a hash of the state travels to the database, so a
/// database reader cannot complete someone else's flow; the PKCE verifier is sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthState {
    pub state_hash: String,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub provider: String,
    pub sealed_pkce_verifier: Option<String>,
    pub return_url: Option<String>,
    pub backfill_days: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
