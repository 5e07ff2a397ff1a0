//! Domain types: what the store keeps and the services hand around. Serializable shapes here are
//! also the API's response shapes (they derive `ToSchema` for the OpenAPI document).

pub mod api_key;
pub mod connection;
pub mod event;
pub mod sample;
pub mod user;
pub mod workspace;

pub use api_key::{ApiKey, NewApiKey, Scope, Scopes};
pub use connection::{
    BatchOutcome, Connection, ConnectionId, ConnectionStatus, ConnectionView, JobStatus,
    NewConnection, OAuthState, SyncJob, SyncJobId, SyncTrigger,
};
pub use event::{Event, EventQuery, EventType, NewEvent};
pub use sample::{
    ChangedValue, DailyValue, MetricSummary, NewSample, Sample, SampleChange, SampleQuery,
    WriteOutcome,
};
pub use user::{NewUser, User, UserPatch};
pub use workspace::Workspace;

pub type WorkspaceId = uuid::Uuid;
pub type UserId = uuid::Uuid;
pub type ApiKeyId = uuid::Uuid;
pub type SampleId = uuid::Uuid;

/// A new time-ordered id (UUIDv7): ids sort by creation, which keeps cursor order and index
/// locality stable.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}
