//! The store port and its two implementations: embedded SQLite (`sqlite`) and PostgreSQL
//! (`postgres`). Each keeps native column types and runs its own embedded migrations; the SQL is
//! written per backend rather than through sqlx's thin `Any` driver.
//!
//! Tenancy is enforced by the signatures: workspace-owned rows are addressed with a
//! `WorkspaceId`, and user-owned rows (samples) take a `&User`, which can only be obtained by
//! loading the user under its workspace. A foreign id therefore reads as "not found".

mod migrations;
pub mod notify;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::analytics::{AnalyticsTable, AnalyticsWrite};
use crate::catalogue;
use crate::config::{Config, StoreUrl};
use crate::cursor::{Cursor, Limit, Page};
use crate::domain::{
    ApiKey, ApiKeyId, BatchOutcome, Connection, ConnectionId, ConnectionStatus, DailyValue, Event,
    EventQuery, JobStatus, MetricSummary, NewApiKey, NewConnection, NewSample, NewUser, OAuthState,
    Sample, SampleChange, SampleQuery, SyncJob, SyncJobId, SyncTrigger, User, UserId, Workspace,
    WorkspaceId, WriteOutcome,
};
use crate::error::Result;
use crate::providers::{Cursors, SyncBatch};

pub use migrations::{Backend, migrations_for};
pub use notify::{LogQuery, NotifyStore};

/// Per-(date, metric, provider) statistics from which daily values are derived.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyGroup {
    pub date: NaiveDate,
    pub metric: String,
    pub provider: String,
    pub count: i64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Value of the sample with the latest `recorded_at` in the group.
    pub last: f64,
}

/// Everything the platform persists. Implementations must be safe to share across threads.
#[async_trait]
pub trait Store: notify::NotifyStore + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Ok when the database answers and every embedded migration is applied.
    async fn ready(&self) -> Result<()>;

    // Workspaces.
    async fn create_workspace(&self, slug: &str, name: &str) -> Result<Workspace>;
    async fn workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>>;
    async fn workspace_by_slug(&self, slug: &str) -> Result<Option<Workspace>>;

    // API keys.
    async fn insert_api_key(&self, key: &NewApiKey) -> Result<ApiKey>;
    /// Inserts the key unless a key with the same hash exists; returns the stored key either way.
    async fn ensure_api_key(&self, key: &NewApiKey) -> Result<ApiKey>;
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    async fn api_key(&self, ws: WorkspaceId, id: ApiKeyId) -> Result<Option<ApiKey>>;
    async fn list_api_keys(
        &self,
        ws: WorkspaceId,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<ApiKey>>;
    /// Marks the key revoked; false when it is not in `ws` or already revoked.
    async fn revoke_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Replaces the key's secret in place (name, scopes and expiry are kept).
    async fn rotate_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        hash: &str,
        prefix: &str,
    ) -> Result<Option<ApiKey>>;
    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<()>;

    // Users.
    /// Creates the user, or returns the existing one with the same `external_id` (false).
    async fn create_user(&self, ws: WorkspaceId, user: &NewUser) -> Result<(User, bool)>;
    async fn user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<User>>;
    /// The workspace's users, oldest first; `external_id` matches exactly, `search` matches
    /// users whose external id, display name or email contains it (case-insensitive).
    async fn list_users(
        &self,
        ws: WorkspaceId,
        external_id: Option<&str>,
        search: Option<&str>,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<User>>;
    async fn update_user(&self, user: &User) -> Result<()>;
    /// Deletes the user and every row that belongs to them, in one transaction. Returns the
    /// samples removed (as deletions, read by the deleting statement itself so the analytics
    /// retract exactly them), or None when the user is not in `ws`.
    async fn delete_user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<Vec<SampleChange>>>;

    // Samples.
    /// Upserts one batch in one transaction. Identical samples change nothing; changed values
    /// update the row and are reported with their old value. The batch must not contain two
    /// samples with the same identity (see [`dedupe_batch`]).
    async fn write_samples(&self, user: &User, batch: &[NewSample]) -> Result<WriteOutcome>;
    async fn list_samples(
        &self,
        user: &User,
        q: &SampleQuery,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Sample>>;
    async fn daily_groups(
        &self,
        user: &User,
        metric: Option<&str>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<DailyGroup>>;
    async fn metric_summaries(&self, user: &User) -> Result<Vec<MetricSummary>>;
    /// Every stored sample (optionally one user's, optionally one provider's) in id order, as
    /// insert-changes, a page at a time after `after`: how the analytics hydrate at start-up and
    /// learn what a deletion removes.
    async fn scan_samples(
        &self,
        user: Option<UserId>,
        provider: Option<&str>,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<(uuid::Uuid, SampleChange)>>;

    // Connections.
    /// Creates the user's connection to `new.provider`, or re-activates the existing one with
    /// the new tokens (its cursors are kept, so a reconnect resumes instead of re-fetching).
    async fn upsert_connection(
        &self,
        user: &User,
        new: &NewConnection,
        at: DateTime<Utc>,
    ) -> Result<Connection>;
    async fn connection(&self, user: &User, id: ConnectionId) -> Result<Option<Connection>>;
    /// Any workspace's connection: for the sync actors, which run below tenancy.
    async fn connection_by_id(&self, id: ConnectionId) -> Result<Option<Connection>>;
    async fn list_connections(&self, user: &User) -> Result<Vec<Connection>>;
    /// The first `limit` connections of a workspace's users, oldest first.
    async fn workspace_connections(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<Connection>>;
    /// Every connection the sync supervisor should run (active ones), across workspaces.
    async fn runnable_connections(&self) -> Result<Vec<Connection>>;
    /// Connections of one provider account (webhooks address users by their provider id).
    async fn connections_for_account(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Vec<Connection>>;
    async fn update_connection_tokens(
        &self,
        id: ConnectionId,
        sealed_tokens: &str,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn set_connection_status(
        &self,
        id: ConnectionId,
        status: ConnectionStatus,
        last_error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Marks the connection disconnected and forgets its tokens; with `delete_data`, also
    /// removes the samples and events it brought and resets its cursors, in one transaction.
    /// Returns the samples removed (as deletions), or None when the connection is not the
    /// user's.
    async fn disconnect_connection(
        &self,
        user: &User,
        id: ConnectionId,
        delete_data: bool,
        at: DateTime<Utc>,
    ) -> Result<Option<Vec<SampleChange>>>;

    // Sync jobs.
    async fn create_sync_job(
        &self,
        conn: &Connection,
        trigger: SyncTrigger,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
        at: DateTime<Utc>,
    ) -> Result<SyncJob>;
    async fn start_sync_job(&self, id: SyncJobId, at: DateTime<Utc>) -> Result<()>;
    async fn finish_sync_job(
        &self,
        id: SyncJobId,
        status: JobStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Jobs a previous process left queued or running end as failed ("interrupted"): those
    /// created up to `at`, this process's start, so a job a request queued while the start-up
    /// was still running is left to run. Their committed batches stay, and the next run
    /// resumes from the committed cursors. Returns the connections whose work was interrupted
    /// (they are due at once).
    async fn fail_unfinished_jobs(&self, at: DateTime<Utc>) -> Result<Vec<ConnectionId>>;
    async fn sync_job(&self, ws: WorkspaceId, id: SyncJobId) -> Result<Option<SyncJob>>;
    async fn list_sync_jobs(
        &self,
        user: &User,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<SyncJob>>;

    /// Commits one sync batch atomically: its samples (through the same write path as
    /// [`Store::write_samples`]), its events (upserted on the provider's id), the connection's
    /// cursors and last-synced time, and the job's counters. A crash leaves either all of it
    /// or none of it, so a resumed sync neither loses nor duplicates anything.
    async fn commit_sync_batch(
        &self,
        user: &User,
        conn: &Connection,
        job: Option<SyncJobId>,
        batch: &SyncBatch,
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome>;

    // Events.
    async fn list_events(
        &self,
        user: &User,
        q: &EventQuery,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Event>>;

    // Materialised analytics.
    /// Applies one flush of the materializer in one transaction. With `replace_all`, every
    /// existing analytics row is removed first (the first flush after a start-up, whose
    /// hydration recomputed everything).
    async fn apply_analytics(&self, writes: &[AnalyticsWrite], replace_all: bool) -> Result<()>;
    /// Records the user's verdict on one of their anomalies (`acknowledged` or `dismissed`);
    /// false when the user has no such anomaly.
    async fn set_anomaly_status(
        &self,
        user: &User,
        anomaly_id: uuid::Uuid,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// One user's rows of a materialised table (anomalies carry their `status`, `open` unless
    /// acknowledged or dismissed).
    async fn analytics_rows(
        &self,
        user: &User,
        table: AnalyticsTable,
    ) -> Result<Vec<serde_json::Value>>;

    /// Every user with their workspace and its provider priority (empty = the default order):
    /// what the analytics source days by.
    async fn user_priorities(&self) -> Result<Vec<(UserId, WorkspaceId, Vec<String>)>>;
    /// Replaces the workspace's provider priority.
    async fn set_provider_priority(
        &self,
        workspace: WorkspaceId,
        priority: &[String],
    ) -> Result<()>;

    /// One user's anomalies matching `filter`, newest date first then by id, after the
    /// (date, id) position `after`, at most `limit` (each body carries its `status`).
    async fn anomalies_page(
        &self,
        user: &User,
        filter: &crate::services::analytics::AnomalyFilter,
        after: Option<(chrono::NaiveDate, uuid::Uuid)>,
        limit: u32,
    ) -> Result<Vec<(chrono::NaiveDate, uuid::Uuid, serde_json::Value)>>;

    // OAuth states.
    async fn insert_oauth_state(&self, state: &OAuthState) -> Result<()>;
    /// Removes and returns the state (single use), expired or not; expired states of anyone
    /// are swept at the same time.
    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthState>>;
}

pub type DynStore = Arc<dyn Store>;

/// Opens (creating when needed) the store the configuration selects. Does not migrate.
pub async fn open(cfg: &Config) -> Result<DynStore> {
    match cfg.store_url()? {
        StoreUrl::Sqlite(url) => {
            if cfg.database_url.is_none() {
                std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
                    crate::Error::Config(format!(
                        "cannot create data dir {}: {e}",
                        cfg.data_dir.display()
                    ))
                })?;
            }
            Ok(Arc::new(
                sqlite::SqliteStore::connect(&url, cfg.database_max_connections).await?,
            ))
        }
        StoreUrl::Postgres(url) => Ok(Arc::new(
            postgres::PgStore::connect(&url, cfg.database_max_connections).await?,
        )),
    }
}

/// Later cursors win per data type: a batch never moves progress backwards, even when a manual
/// re-sync of an old window commits after newer data.
pub fn merge_cursors(stored: &mut Cursors, batch: &Cursors) {
    for (k, v) in batch {
        let e = stored.entry(k.clone()).or_insert(*v);
        if *e < *v {
            *e = *v;
        }
    }
}

/// Keeps the last occurrence of each sample identity, so one upsert statement never touches a
/// row twice (PostgreSQL refuses that) and "last write wins" inside a batch as across batches.
pub fn dedupe_batch(batch: Vec<NewSample>) -> Vec<NewSample> {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    let mut out: Vec<NewSample> = batch
        .into_iter()
        .rev()
        .filter(|s| seen.insert((s.provider.clone(), s.metric, s.recorded_at)))
        .collect();
    out.reverse();
    out
}

/// Collapses per-provider groups into one value per (date, metric): the provider the
/// workspace's `priority` ranks first wins (never a sum across devices), and the catalogue's
/// aggregation rule turns its statistics into the day's value.
pub fn daily_values(
    mut groups: Vec<DailyGroup>,
    priority: &catalogue::ProviderPriority,
) -> Vec<DailyValue> {
    groups.sort_by(|a, b| {
        (a.date, &a.metric, priority.rank(&a.provider), &a.provider).cmp(&(
            b.date,
            &b.metric,
            priority.rank(&b.provider),
            &b.provider,
        ))
    });
    let mut out: Vec<DailyValue> = Vec::new();
    for g in groups {
        if out
            .last()
            .is_some_and(|d| d.date == g.date && d.metric == g.metric)
        {
            continue;
        }
        let Some(def) = catalogue::metric(&g.metric) else {
            continue;
        };
        let value = match def.aggregation {
            catalogue::Aggregation::Sum => g.sum,
            catalogue::Aggregation::Mean => g.sum / g.count as f64,
            catalogue::Aggregation::Min => g.min,
            catalogue::Aggregation::Max => g.max,
            catalogue::Aggregation::Last => g.last,
        };
        out.push(DailyValue {
            date: g.date,
            metric: g.metric,
            value,
            unit: def.unit.to_string(),
            count: g.count,
            min: g.min,
            max: g.max,
            provider: g.provider,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(provider: &str, metric: &str, sum: f64, count: i64) -> DailyGroup {
        DailyGroup {
            date: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            metric: metric.into(),
            provider: provider.into(),
            count,
            sum,
            min: 1.0,
            max: 9.0,
            last: 4.0,
        }
    }

    #[test]
    fn one_provider_wins_and_rules_apply() {
        let groups = vec![
            g("api", "steps", 100.0, 2),
            g("fitbit", "steps", 5000.0, 10),
            g("fitbit", "heart_rate", 600.0, 10),
            g("x", "weight", 0.0, 3),
        ];
        let v = daily_values(groups.clone(), &Default::default());
        assert_eq!(v.len(), 3);
        let steps = v.iter().find(|d| d.metric == "steps").unwrap();
        assert_eq!((steps.value, steps.provider.as_str()), (5000.0, "fitbit"));
        assert_eq!(
            v.iter().find(|d| d.metric == "heart_rate").unwrap().value,
            60.0
        );
        assert_eq!(v.iter().find(|d| d.metric == "weight").unwrap().value, 4.0);
        let api_first = catalogue::ProviderPriority(vec!["api".into()]);
        let v = daily_values(groups, &api_first);
        let steps = v.iter().find(|d| d.metric == "steps").unwrap();
        assert_eq!((steps.value, steps.provider.as_str()), (100.0, "api"));
    }
}
