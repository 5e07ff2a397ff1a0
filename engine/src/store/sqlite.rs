//! The embedded SQLite store (WAL mode). Instants are stored as INTEGER microseconds, dates as
//! 'YYYY-MM-DD' text, JSON as text. Write transactions start with `BEGIN IMMEDIATE` so that two
//! writers queue on the busy timeout instead of failing when a read lock would need upgrading.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::migrations::latest_version;
use super::{Backend, DailyGroup, Store, migrations_for};
use crate::analytics::{AnalyticsTable, AnalyticsWrite};
use crate::cursor::{Cursor, Limit, Page};
use crate::domain::{
    ApiKey, ApiKeyId, BatchOutcome, ChangedValue, Connection, ConnectionId, ConnectionStatus,
    Event, EventQuery, EventType, JobStatus, MetricSummary, NewApiKey, NewConnection, NewSample,
    NewUser, OAuthState, Sample, SampleChange, SampleQuery, Scopes, SyncJob, SyncJobId,
    SyncTrigger, User, UserId, Workspace, WorkspaceId, WriteOutcome, new_id,
};
use crate::error::{Error, Result};
use crate::providers::{Cursors, SyncBatch};

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn instant(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| Error::internal(format!("stored instant {v} out of range")))
}

fn opt_instant(v: Option<i64>) -> Result<Option<DateTime<Utc>>> {
    v.map(instant).transpose()
}

fn date(s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::internal(format!("stored date '{s}' is invalid")))
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn json(s: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| Error::internal(format!("stored JSON is invalid: {e}")))
}

/// Rows per multi-row INSERT: 13 parameters each, well under SQLite's 32,766-parameter limit.
const ROWS_PER_INSERT: usize = 1_000;

/// The columns of a stored sample that decide whether a write changes it.
struct StoredSample {
    value: f64,
    local_date: NaiveDate,
    utc_offset_minutes: i32,
    source: Option<String>,
    data: Option<serde_json::Value>,
}

impl StoredSample {
    fn same_as(&self, s: &NewSample) -> bool {
        self.value.to_bits() == s.value.to_bits()
            && self.local_date == s.local_date
            && self.utc_offset_minutes == s.utc_offset_minutes
            && self.source == s.source
            && self.data == s.data
    }
}

/// Updates one changed sample in place. Corrections are rare next to new data, so one
/// statement per changed row is cheap enough.
async fn update_one(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    user: &User,
    s: &NewSample,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE samples SET value = $5, unit = $6, local_date = $7, utc_offset_minutes = $8, source = $9,
                data = $10, updated_at = $11
         WHERE user_id = $1 AND provider = $2 AND metric = $3 AND recorded_at = $4",
    )
    .bind(user.id)
    .bind(&s.provider)
    .bind(s.metric)
    .bind(micros(s.recorded_at))
    .bind(s.value)
    .bind(s.unit)
    .bind(date_text(s.local_date))
    .bind(s.utc_offset_minutes)
    .bind(&s.source)
    .bind(s.data.as_ref().map(|d| d.to_string()))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The sample write path inside a caller's transaction (a plain write or a sync batch).
async fn write_samples_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    user: &User,
    batch: &[NewSample],
    now: i64,
) -> Result<WriteOutcome> {
    let mut out = WriteOutcome::default();
    if batch.is_empty() {
        return Ok(out);
    }

    // 1. Read the existing rows for the whole batch in one statement: the keys travel as
    //    one JSON array (text and integers only, so nothing is lost in parsing) and each is
    //    looked up through the unique index (CROSS JOIN pins json_each as the outer loop;
    //    left to itself the planner scans the user's samples instead).
    let keys = serde_json::Value::Array(
        batch
            .iter()
            .map(|s| serde_json::json!([s.provider, s.metric, micros(s.recorded_at)]))
            .collect(),
    );
    let existing = sqlx::query(
        "SELECT s.provider, s.metric, s.recorded_at, s.value, s.local_date, s.utc_offset_minutes,
                    s.source, s.data
             FROM json_each($2) AS j
             CROSS JOIN samples s
               ON s.user_id = $1
              AND s.provider = json_extract(j.value, '$[0]')
              AND s.metric = json_extract(j.value, '$[1]')
              AND s.recorded_at = json_extract(j.value, '$[2]')",
    )
    .bind(user.id)
    .bind(keys.to_string())
    .fetch_all(&mut **tx)
    .await?;
    let mut old: HashMap<(String, String, i64), StoredSample> =
        HashMap::with_capacity(existing.len());
    for r in &existing {
        let data: Option<String> = r.try_get("data")?;
        old.insert(
            (
                r.try_get("provider")?,
                r.try_get("metric")?,
                r.try_get("recorded_at")?,
            ),
            StoredSample {
                value: r.try_get("value")?,
                local_date: date(r.try_get("local_date")?)?,
                utc_offset_minutes: r.try_get("utc_offset_minutes")?,
                source: r.try_get("source")?,
                data: data.as_deref().map(json).transpose()?,
            },
        );
    }

    // 2. Classify every sample against what is stored.
    let mut fresh: Vec<&NewSample> = Vec::new();
    for s in batch {
        let new = ChangedValue {
            value: s.value,
            local_date: s.local_date,
        };
        let change = |old: Option<ChangedValue>| SampleChange {
            user_id: user.id,
            provider: s.provider.clone(),
            metric: s.metric.to_string(),
            recorded_at: s.recorded_at,
            old,
            new: Some(new),
        };
        match old.get(&(
            s.provider.clone(),
            s.metric.to_string(),
            micros(s.recorded_at),
        )) {
            None => {
                fresh.push(s);
                out.inserted += 1;
                out.changes.push(change(None));
            }
            Some(o) if o.same_as(s) => out.unchanged += 1,
            Some(o) => {
                update_one(&mut *tx, user, s, now).await?;
                out.updated += 1;
                out.changes.push(change(Some(ChangedValue {
                    value: o.value,
                    local_date: o.local_date,
                })));
            }
        }
    }

    // 3. Insert the new rows with multi-row statements (values are bound, never formatted,
    //    so floats are stored bit for bit).
    for chunk in fresh.chunks(ROWS_PER_INSERT) {
        let mut sql = String::with_capacity(140 + chunk.len() * 44);
        sql.push_str(
                "INSERT INTO samples (id, user_id, provider, metric, value, unit, recorded_at, local_date,
                                      utc_offset_minutes, source, data, created_at, updated_at) VALUES ",
            );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 {
                "(?,?,?,?,?,?,?,?,?,?,?,?,?)"
            } else {
                ",(?,?,?,?,?,?,?,?,?,?,?,?,?)"
            });
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            q = q
                .bind(new_id())
                .bind(user.id)
                .bind(s.provider.as_str())
                .bind(s.metric)
                .bind(s.value)
                .bind(s.unit)
                .bind(micros(s.recorded_at))
                .bind(date_text(s.local_date))
                .bind(s.utc_offset_minutes)
                .bind(s.source.as_deref())
                .bind(s.data.as_ref().map(|d| d.to_string()))
                .bind(now)
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(out)
}

/// Deletes a user's samples (optionally one provider's) and returns them as deletions.
async fn delete_returning(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    user: UserId,
    provider: Option<&str>,
) -> Result<Vec<SampleChange>> {
    let rows = sqlx::query(
        "DELETE FROM samples WHERE user_id = $1 AND ($2 IS NULL OR provider = $2)
         RETURNING provider, metric, recorded_at, value, local_date",
    )
    .bind(user)
    .bind(provider)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SampleChange {
                user_id: user,
                provider: r.try_get("provider")?,
                metric: r.try_get("metric")?,
                recorded_at: instant(r.try_get("recorded_at")?)?,
                old: Some(ChangedValue {
                    value: r.try_get("value")?,
                    local_date: date(r.try_get("local_date")?)?,
                }),
                new: None,
            })
        })
        .collect()
}

/// `SELECT` of a connection with its workspace (through the user), followed by `$tail`.
macro_rules! conn_select {
    ($tail:literal) => {
        concat!(
            "SELECT c.id, u.workspace_id, c.user_id, c.provider, c.status, c.provider_user_id, c.scopes,
                    c.tokens, c.token_expires_at, c.cursors, c.backfill_days, c.last_synced_at,
                    c.last_error, c.created_at, c.updated_at
             FROM connections c JOIN users u ON u.id = c.user_id ",
            $tail
        )
    };
}

macro_rules! job_select {
    ($tail:literal) => {
        concat!(
            "SELECT j.id, j.connection_id, j.user_id, j.provider, j.trigger, j.status, j.range_from,
                    j.range_to, j.inserted, j.updated, j.unchanged, j.events_written, j.error,
                    j.created_at, j.started_at, j.finished_at
             FROM sync_jobs j ",
            $tail
        )
    };
}

fn scopes_text(scopes: &[String]) -> String {
    scopes.join(" ")
}

fn scopes_from(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn connection_row(r: &SqliteRow) -> Result<Connection> {
    let status: String = r.try_get("status")?;
    let cursors: String = r.try_get("cursors")?;
    let backfill: i64 = r.try_get("backfill_days")?;
    Ok(Connection {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        status: ConnectionStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("stored connection status '{status}'")))?,
        provider_user_id: r.try_get("provider_user_id")?,
        scopes: scopes_from(r.try_get("scopes")?),
        sealed_tokens: r.try_get("tokens")?,
        token_expires_at: opt_instant(r.try_get("token_expires_at")?)?,
        cursors: serde_json::from_str::<Cursors>(&cursors)
            .map_err(|e| Error::internal(format!("stored cursors are invalid: {e}")))?,
        backfill_days: backfill as u32,
        last_synced_at: opt_instant(r.try_get("last_synced_at")?)?,
        last_error: r.try_get("last_error")?,
        created_at: instant(r.try_get("created_at")?)?,
        updated_at: instant(r.try_get("updated_at")?)?,
    })
}

fn job_row(r: &SqliteRow) -> Result<SyncJob> {
    let trigger: String = r.try_get("trigger")?;
    let status: String = r.try_get("status")?;
    Ok(SyncJob {
        id: r.try_get("id")?,
        connection_id: r.try_get("connection_id")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        trigger: SyncTrigger::parse(&trigger)
            .ok_or_else(|| Error::internal(format!("stored job trigger '{trigger}'")))?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("stored job status '{status}'")))?,
        range_from: opt_instant(r.try_get("range_from")?)?,
        range_to: opt_instant(r.try_get("range_to")?)?,
        inserted: r.try_get("inserted")?,
        updated: r.try_get("updated")?,
        unchanged: r.try_get("unchanged")?,
        events_written: r.try_get("events_written")?,
        error: r.try_get("error")?,
        created_at: instant(r.try_get("created_at")?)?,
        started_at: opt_instant(r.try_get("started_at")?)?,
        finished_at: opt_instant(r.try_get("finished_at")?)?,
    })
}

fn event_row(r: &SqliteRow) -> Result<Event> {
    let t: String = r.try_get("type")?;
    let data: Option<String> = r.try_get("data")?;
    Ok(Event {
        id: r.try_get("id")?,
        event_type: EventType::parse(&t)
            .ok_or_else(|| Error::internal(format!("stored event type '{t}'")))?,
        provider: r.try_get("provider")?,
        provider_event_id: r.try_get("provider_event_id")?,
        activity_type: r.try_get("activity_type")?,
        started_at: instant(r.try_get("started_at")?)?,
        ended_at: opt_instant(r.try_get("ended_at")?)?,
        local_date: date(r.try_get("local_date")?)?,
        duration_s: r.try_get("duration_s")?,
        distance_m: r.try_get("distance_m")?,
        energy_kcal: r.try_get("energy_kcal")?,
        avg_hr: r.try_get("avg_hr")?,
        max_hr: r.try_get("max_hr")?,
        data: data.as_deref().map(json).transpose()?,
    })
}

fn oauth_state_row(r: &SqliteRow) -> Result<OAuthState> {
    let days: Option<i64> = r.try_get("backfill_days")?;
    Ok(OAuthState {
        state_hash: r.try_get("state_hash")?,
        workspace_id: r.try_get("workspace_id")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        sealed_pkce_verifier: r.try_get("pkce_verifier")?,
        return_url: r.try_get("return_url")?,
        backfill_days: days.map(|d| d as u32),
        created_at: instant(r.try_get("created_at")?)?,
        expires_at: instant(r.try_get("expires_at")?)?,
    })
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL keeps the database consistent after a power loss; only the
            // last transactions may be lost, never half of one.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(opts)
            .await?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn workspace_row(r: &SqliteRow) -> Result<Workspace> {
        Ok(Workspace {
            id: r.try_get("id")?,
            slug: r.try_get("slug")?,
            name: r.try_get("name")?,
            provider_priority: serde_json::from_str(r.try_get("provider_priority")?)
                .map_err(|e| crate::error::Error::internal(format!("provider_priority: {e}")))?,
            created_at: instant(r.try_get("created_at")?)?,
        })
    }

    fn key_row(r: &SqliteRow) -> Result<ApiKey> {
        Ok(ApiKey {
            id: r.try_get("id")?,
            workspace_id: r.try_get("workspace_id")?,
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            scopes: Scopes::from_db(r.try_get("scopes")?)?,
            expires_at: opt_instant(r.try_get("expires_at")?)?,
            revoked_at: opt_instant(r.try_get("revoked_at")?)?,
            last_used_at: opt_instant(r.try_get("last_used_at")?)?,
            created_at: instant(r.try_get("created_at")?)?,
        })
    }

    fn user_row(r: &SqliteRow) -> Result<User> {
        Ok(User {
            id: r.try_get("id")?,
            workspace_id: r.try_get("workspace_id")?,
            external_id: r.try_get("external_id")?,
            email: r.try_get("email")?,
            display_name: r.try_get("display_name")?,
            timezone: r.try_get("timezone")?,
            metadata: json(r.try_get("metadata")?)?,
            created_at: instant(r.try_get("created_at")?)?,
            updated_at: instant(r.try_get("updated_at")?)?,
        })
    }

    fn sample_row(r: &SqliteRow) -> Result<Sample> {
        Ok(Sample {
            id: r.try_get("id")?,
            metric: r.try_get("metric")?,
            value: r.try_get("value")?,
            unit: r.try_get("unit")?,
            recorded_at: instant(r.try_get("recorded_at")?)?,
            local_date: date(r.try_get("local_date")?)?,
            provider: r.try_get("provider")?,
            source: r.try_get("source")?,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<()> {
        migrations_for(Backend::Sqlite).run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<()> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?;
        if applied.unwrap_or(0) < latest_version(Backend::Sqlite) {
            return Err(Error::internal("migrations are not applied"));
        }
        Ok(())
    }

    async fn create_workspace(&self, slug: &str, name: &str) -> Result<Workspace> {
        let now = Utc::now();
        let r = sqlx::query(
            "INSERT INTO workspaces (id, slug, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             RETURNING id, slug, name, provider_priority, created_at",
        )
        .bind(new_id())
        .bind(slug)
        .bind(name)
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await
        .map_err(Error::from)
        .map_err(|e| if e.is_unique_violation() { Error::Conflict(format!("workspace '{slug}' already exists")) } else { e })?;
        Self::workspace_row(&r)
    }

    async fn workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>> {
        let r = sqlx::query(
            "SELECT id, slug, name, provider_priority, created_at FROM workspaces WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(Self::workspace_row).transpose()
    }

    async fn workspace_by_slug(&self, slug: &str) -> Result<Option<Workspace>> {
        let r = sqlx::query(
            "SELECT id, slug, name, provider_priority, created_at FROM workspaces WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(Self::workspace_row).transpose()
    }

    async fn insert_api_key(&self, k: &NewApiKey) -> Result<ApiKey> {
        let r = sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, scopes, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id, workspace_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at",
        )
        .bind(new_id())
        .bind(k.workspace_id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.key_hash)
        .bind(k.scopes.to_db())
        .bind(k.expires_at.map(micros))
        .bind(micros(Utc::now()))
        .fetch_one(&self.pool)
        .await?;
        Self::key_row(&r)
    }

    async fn ensure_api_key(&self, k: &NewApiKey) -> Result<ApiKey> {
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, scopes, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(new_id())
        .bind(k.workspace_id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.key_hash)
        .bind(k.scopes.to_db())
        .bind(k.expires_at.map(micros))
        .bind(micros(Utc::now()))
        .execute(&self.pool)
        .await?;
        self.api_key_by_hash(&k.key_hash)
            .await?
            .ok_or_else(|| Error::internal("bootstrap key vanished"))
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let r = sqlx::query("SELECT id, workspace_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at FROM api_keys WHERE key_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(Self::key_row).transpose()
    }

    async fn api_key(&self, ws: WorkspaceId, id: ApiKeyId) -> Result<Option<ApiKey>> {
        let r = sqlx::query("SELECT id, workspace_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at FROM api_keys WHERE workspace_id = $1 AND id = $2")
            .bind(ws)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(Self::key_row).transpose()
    }

    async fn list_api_keys(
        &self,
        ws: WorkspaceId,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<ApiKey>> {
        let (at, id) = after
            .map(|c| (micros(c.at), c.id))
            .unwrap_or((i64::MIN, uuid::Uuid::nil()));
        let rows = sqlx::query(
            "SELECT id, workspace_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at FROM api_keys
             WHERE workspace_id = $1 AND (created_at, id) > ($2, $3)
             ORDER BY created_at, id LIMIT $4",
        )
        .bind(ws)
        .bind(at)
        .bind(id)
        .bind(limit.0 as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(Self::key_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |k| Cursor {
            at: k.created_at,
            id: k.id,
        }))
    }

    async fn revoke_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let r = sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL")
            .bind(ws)
            .bind(id)
            .bind(micros(at))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn rotate_api_key(
        &self,
        ws: WorkspaceId,
        id: ApiKeyId,
        hash: &str,
        prefix: &str,
    ) -> Result<Option<ApiKey>> {
        let r = sqlx::query(
            "UPDATE api_keys SET key_hash = $3, prefix = $4 WHERE workspace_id = $1 AND id = $2 AND revoked_at IS NULL
             RETURNING id, workspace_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at",
        )
        .bind(ws)
        .bind(id)
        .bind(hash)
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(Self::key_row).transpose()
    }

    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(micros(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_user(&self, ws: WorkspaceId, u: &NewUser) -> Result<(User, bool)> {
        let now = micros(Utc::now());
        let metadata = u
            .metadata
            .clone()
            .unwrap_or_else(|| serde_json::json!({}))
            .to_string();
        let inserted = sqlx::query(
            "INSERT INTO users (id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (workspace_id, external_id) DO NOTHING
             RETURNING id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at",
        )
        .bind(new_id())
        .bind(ws)
        .bind(&u.external_id)
        .bind(&u.email)
        .bind(&u.display_name)
        .bind(&u.timezone)
        .bind(metadata)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = inserted {
            return Ok((Self::user_row(&r)?, true));
        }
        let r = sqlx::query("SELECT id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at FROM users WHERE workspace_id = $1 AND external_id = $2")
            .bind(ws)
            .bind(&u.external_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((Self::user_row(&r)?, false))
    }

    async fn user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<User>> {
        let r = sqlx::query("SELECT id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at FROM users WHERE workspace_id = $1 AND id = $2")
            .bind(ws)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(Self::user_row).transpose()
    }

    async fn list_users(
        &self,
        ws: WorkspaceId,
        external_id: Option<&str>,
        search: Option<&str>,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<User>> {
        let (at, id) = after
            .map(|c| (micros(c.at), c.id))
            .unwrap_or((i64::MIN, uuid::Uuid::nil()));
        let rows = sqlx::query(
            "SELECT id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at FROM users
             WHERE workspace_id = $1 AND ($2 IS NULL OR external_id = $2) AND (created_at, id) > ($3, $4)
               AND ($6 IS NULL OR instr(lower(external_id), lower($6)) > 0
                    OR instr(lower(coalesce(display_name, '')), lower($6)) > 0
                    OR instr(lower(coalesce(email, '')), lower($6)) > 0)
             ORDER BY created_at, id LIMIT $5",
        )
        .bind(ws)
        .bind(external_id)
        .bind(at)
        .bind(id)
        .bind(limit.0 as i64 + 1)
        .bind(search)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(Self::user_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |u| Cursor {
            at: u.created_at,
            id: u.id,
        }))
    }

    async fn update_user(&self, u: &User) -> Result<()> {
        sqlx::query(
            "UPDATE users SET email = $3, display_name = $4, timezone = $5, metadata = $6, updated_at = $7
             WHERE workspace_id = $1 AND id = $2",
        )
        .bind(u.workspace_id)
        .bind(u.id)
        .bind(&u.email)
        .bind(&u.display_name)
        .bind(&u.timezone)
        .bind(u.metadata.to_string())
        .bind(micros(u.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<Vec<SampleChange>>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let exists: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM users WHERE workspace_id = $1 AND id = $2")
                .bind(ws)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        // Explicit deletes (not only ON DELETE CASCADE) keep the count exact and make the
        // intent visible; every user-owned table is listed here.
        let samples = delete_returning(&mut tx, id, None).await?;
        for table in [
            "DELETE FROM events WHERE user_id = $1",
            "DELETE FROM analytics_baselines WHERE user_id = $1",
            "DELETE FROM analytics_anomalies WHERE user_id = $1",
            "DELETE FROM anomaly_status WHERE user_id = $1",
            "DELETE FROM analytics_correlations WHERE user_id = $1",
            "DELETE FROM health_scores WHERE user_id = $1",
            "DELETE FROM personal_records WHERE user_id = $1",
            "DELETE FROM sync_jobs WHERE user_id = $1",
            "DELETE FROM notification_logs WHERE user_id = $1",
            "DELETE FROM notification_dispatches WHERE rule_id IN (SELECT id FROM notification_rules WHERE user_id = $1)",
            "DELETE FROM notification_rules WHERE user_id = $1",
            "DELETE FROM notification_channels WHERE user_id = $1",
            "DELETE FROM connections WHERE user_id = $1",
        ] {
            sqlx::query(table).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(samples))
    }

    async fn write_samples(&self, user: &User, batch: &[NewSample]) -> Result<WriteOutcome> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let out = write_samples_in(&mut tx, user, batch, micros(Utc::now())).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_samples(
        &self,
        user: &User,
        q: &SampleQuery,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Sample>> {
        let (c_at, c_id) = after
            .map(|c| (micros(c.at), c.id))
            .unwrap_or((i64::MAX, uuid::Uuid::max()));
        let rows = sqlx::query(
            "SELECT id, metric, value, unit, recorded_at, local_date, provider, source FROM samples
             WHERE user_id = $1
               AND ($2 IS NULL OR metric = $2)
               AND ($3 IS NULL OR provider = $3)
               AND ($4 IS NULL OR recorded_at >= $4)
               AND ($5 IS NULL OR recorded_at < $5)
               AND (recorded_at, id) < ($6, $7)
             ORDER BY recorded_at DESC, id DESC LIMIT $8",
        )
        .bind(user.id)
        .bind(&q.metric)
        .bind(&q.provider)
        .bind(q.from.map(micros))
        .bind(q.to.map(micros))
        .bind(c_at)
        .bind(c_id)
        .bind(limit.0 as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(Self::sample_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |s| Cursor {
            at: s.recorded_at,
            id: s.id,
        }))
    }

    async fn daily_groups(
        &self,
        user: &User,
        metric: Option<&str>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Vec<DailyGroup>> {
        let rows = sqlx::query(
            "SELECT local_date, metric, provider, COUNT(*) AS n, SUM(value) AS total, MIN(value) AS lo,
                    MAX(value) AS hi,
                    (SELECT l.value FROM samples l
                      WHERE l.user_id = s.user_id AND l.metric = s.metric AND l.local_date = s.local_date
                        AND l.provider = s.provider
                      ORDER BY l.recorded_at DESC LIMIT 1) AS last_value
             FROM samples s
             WHERE user_id = $1 AND ($2 IS NULL OR metric = $2)
               AND ($3 IS NULL OR local_date >= $3) AND ($4 IS NULL OR local_date <= $4)
             GROUP BY metric, local_date, provider
             ORDER BY local_date, metric",
        )
        .bind(user.id)
        .bind(metric)
        .bind(from.map(date_text))
        .bind(to.map(date_text))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyGroup {
                    date: date(r.try_get("local_date")?)?,
                    metric: r.try_get("metric")?,
                    provider: r.try_get("provider")?,
                    count: r.try_get("n")?,
                    sum: r.try_get("total")?,
                    min: r.try_get("lo")?,
                    max: r.try_get("hi")?,
                    last: r.try_get("last_value")?,
                })
            })
            .collect()
    }

    async fn metric_summaries(&self, user: &User) -> Result<Vec<MetricSummary>> {
        let rows = sqlx::query(
            "SELECT metric, MAX(unit) AS unit, COUNT(*) AS n, MIN(local_date) AS first_date,
                    MAX(local_date) AS last_date, MAX(recorded_at) AS last_at,
                    (SELECT l.value FROM samples l WHERE l.user_id = s.user_id AND l.metric = s.metric
                      ORDER BY l.recorded_at DESC, l.id DESC LIMIT 1) AS last_value
             FROM samples s WHERE user_id = $1 GROUP BY metric ORDER BY metric",
        )
        .bind(user.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MetricSummary {
                    metric: r.try_get("metric")?,
                    unit: r.try_get("unit")?,
                    count: r.try_get("n")?,
                    first_date: date(r.try_get("first_date")?)?,
                    last_date: date(r.try_get("last_date")?)?,
                    last_value: r.try_get("last_value")?,
                    last_recorded_at: instant(r.try_get("last_at")?)?,
                })
            })
            .collect()
    }

    async fn scan_samples(
        &self,
        user: Option<UserId>,
        provider: Option<&str>,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<(uuid::Uuid, SampleChange)>> {
        // A user's scan filters on the user's index; "user IS NULL OR …" would read the
        // whole table in id order for every user.
        let sql = if user.is_some() {
            "SELECT id, user_id, provider, metric, recorded_at, value, local_date FROM samples
             WHERE user_id = $1 AND ($2 IS NULL OR provider = $2) AND id > $3
             ORDER BY id LIMIT $4"
        } else {
            "SELECT id, user_id, provider, metric, recorded_at, value, local_date FROM samples
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR provider = $2) AND id > $3
             ORDER BY id LIMIT $4"
        };
        let rows = sqlx::query(sql)
            .bind(user)
            .bind(provider)
            .bind(after.unwrap_or(uuid::Uuid::nil()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    SampleChange {
                        user_id: r.try_get("user_id")?,
                        provider: r.try_get("provider")?,
                        metric: r.try_get("metric")?,
                        recorded_at: instant(r.try_get("recorded_at")?)?,
                        old: None,
                        new: Some(ChangedValue {
                            value: r.try_get("value")?,
                            local_date: date(r.try_get("local_date")?)?,
                        }),
                    },
                ))
            })
            .collect()
    }

    async fn upsert_connection(
        &self,
        user: &User,
        new: &NewConnection,
        at: DateTime<Utc>,
    ) -> Result<Connection> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO connections (id, user_id, provider, status, provider_user_id, scopes, tokens,
                                      token_expires_at, backfill_days, created_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (user_id, provider) DO UPDATE SET
                status = 'active', provider_user_id = excluded.provider_user_id,
                scopes = excluded.scopes, tokens = excluded.tokens,
                token_expires_at = excluded.token_expires_at, last_error = NULL,
                updated_at = excluded.updated_at",
        )
        .bind(new_id())
        .bind(user.id)
        .bind(&new.provider)
        .bind(&new.provider_user_id)
        .bind(scopes_text(&new.scopes))
        .bind(&new.sealed_tokens)
        .bind(new.token_expires_at.map(micros))
        .bind(i64::from(new.backfill_days))
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query(conn_select!("WHERE c.user_id = $1 AND c.provider = $2"))
            .bind(user.id)
            .bind(&new.provider)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        connection_row(&r)
    }

    async fn connection(&self, user: &User, id: ConnectionId) -> Result<Option<Connection>> {
        let r = sqlx::query(conn_select!("WHERE c.user_id = $1 AND c.id = $2"))
            .bind(user.id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(connection_row).transpose()
    }

    async fn connection_by_id(&self, id: ConnectionId) -> Result<Option<Connection>> {
        let r = sqlx::query(conn_select!("WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(connection_row).transpose()
    }

    async fn list_connections(&self, user: &User) -> Result<Vec<Connection>> {
        let rows = sqlx::query(conn_select!(
            "WHERE c.user_id = $1 ORDER BY c.created_at, c.id"
        ))
        .bind(user.id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connection_row).collect()
    }

    async fn workspace_connections(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<Connection>> {
        let rows = sqlx::query(conn_select!(
            "WHERE u.workspace_id = $1 ORDER BY c.created_at, c.id LIMIT $2"
        ))
        .bind(ws)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connection_row).collect()
    }

    async fn runnable_connections(&self) -> Result<Vec<Connection>> {
        let rows = sqlx::query(conn_select!(
            "WHERE c.status = 'active' ORDER BY c.created_at, c.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connection_row).collect()
    }

    async fn connections_for_account(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Vec<Connection>> {
        let rows = sqlx::query(conn_select!(
            "WHERE c.provider = $1 AND c.provider_user_id = $2 ORDER BY c.created_at, c.id"
        ))
        .bind(provider)
        .bind(provider_user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connection_row).collect()
    }

    async fn update_connection_tokens(
        &self,
        id: ConnectionId,
        sealed_tokens: &str,
        expires_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET tokens = $2, token_expires_at = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(sealed_tokens)
        .bind(expires_at.map(micros))
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_connection_status(
        &self,
        id: ConnectionId,
        status: ConnectionStatus,
        last_error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE connections SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(last_error)
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn disconnect_connection(
        &self,
        user: &User,
        id: ConnectionId,
        delete_data: bool,
        at: DateTime<Utc>,
    ) -> Result<Option<Vec<SampleChange>>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let provider: Option<String> =
            sqlx::query_scalar("SELECT provider FROM connections WHERE user_id = $1 AND id = $2")
                .bind(user.id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(provider) = provider else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE connections SET status = 'disconnected', tokens = NULL, token_expires_at = NULL,
                    updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
        let mut removed = Vec::new();
        if delete_data {
            removed = delete_returning(&mut tx, user.id, Some(&provider)).await?;
            sqlx::query("DELETE FROM events WHERE user_id = $1 AND provider = $2")
                .bind(user.id)
                .bind(&provider)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE connections SET cursors = '{}' WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(removed))
    }

    async fn create_sync_job(
        &self,
        conn: &Connection,
        trigger: SyncTrigger,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
        at: DateTime<Utc>,
    ) -> Result<SyncJob> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO sync_jobs (id, connection_id, user_id, provider, trigger, status, range_from,
                                    range_to, created_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8)",
        )
        .bind(id)
        .bind(conn.id)
        .bind(conn.user_id)
        .bind(&conn.provider)
        .bind(trigger.as_str())
        .bind(range.map(|r| micros(r.0)))
        .bind(range.map(|r| micros(r.1)))
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        let r = sqlx::query(job_select!("WHERE j.id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        job_row(&r)
    }

    async fn start_sync_job(&self, id: SyncJobId, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sync_jobs SET status = 'running', started_at = $2 WHERE id = $1")
            .bind(id)
            .bind(micros(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_sync_job(
        &self,
        id: SyncJobId,
        status: JobStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE sync_jobs SET status = $2, error = $3, finished_at = $4,
                    started_at = COALESCE(started_at, $4) WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(error)
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_unfinished_jobs(&self, at: DateTime<Utc>) -> Result<Vec<ConnectionId>> {
        let mut ids: Vec<ConnectionId> = sqlx::query_scalar(
            "UPDATE sync_jobs SET status = 'failed', error = 'interrupted by a restart',
                    finished_at = $1 WHERE status IN ('queued', 'running') AND created_at <= $1
             RETURNING connection_id",
        )
        .bind(micros(at))
        .fetch_all(&self.pool)
        .await?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn sync_job(&self, ws: WorkspaceId, id: SyncJobId) -> Result<Option<SyncJob>> {
        let r = sqlx::query(job_select!(
            "JOIN users u ON u.id = j.user_id WHERE u.workspace_id = $1 AND j.id = $2"
        ))
        .bind(ws)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(job_row).transpose()
    }

    async fn list_sync_jobs(
        &self,
        user: &User,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<SyncJob>> {
        let (at, id) = after
            .map(|c| (micros(c.at), c.id))
            .unwrap_or((i64::MAX, uuid::Uuid::max()));
        let rows = sqlx::query(job_select!(
            "WHERE j.user_id = $1 AND (j.created_at, j.id) < ($2, $3)
             ORDER BY j.created_at DESC, j.id DESC LIMIT $4"
        ))
        .bind(user.id)
        .bind(at)
        .bind(id)
        .bind(limit.0 as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(job_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |j| Cursor {
            at: j.created_at,
            id: j.id,
        }))
    }

    async fn commit_sync_batch(
        &self,
        user: &User,
        conn: &Connection,
        job: Option<SyncJobId>,
        batch: &SyncBatch,
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome> {
        let now = micros(at);
        let samples = super::dedupe_batch(batch.samples.clone());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let written = write_samples_in(&mut tx, user, &samples, now).await?;
        let mut events_written = 0;
        for e in &batch.events {
            events_written += sqlx::query(
                "INSERT INTO events (id, user_id, provider, provider_event_id, type, activity_type,
                                     started_at, ended_at, local_date, duration_s, distance_m,
                                     energy_kcal, avg_hr, max_hr, data, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
                 ON CONFLICT (user_id, provider, provider_event_id) DO UPDATE SET
                    type = excluded.type, activity_type = excluded.activity_type,
                    started_at = excluded.started_at, ended_at = excluded.ended_at,
                    local_date = excluded.local_date, duration_s = excluded.duration_s,
                    distance_m = excluded.distance_m, energy_kcal = excluded.energy_kcal,
                    avg_hr = excluded.avg_hr, max_hr = excluded.max_hr, data = excluded.data,
                    updated_at = excluded.updated_at
                 WHERE events.type IS NOT excluded.type
                    OR events.activity_type IS NOT excluded.activity_type
                    OR events.started_at IS NOT excluded.started_at
                    OR events.ended_at IS NOT excluded.ended_at
                    OR events.local_date IS NOT excluded.local_date
                    OR events.duration_s IS NOT excluded.duration_s
                    OR events.distance_m IS NOT excluded.distance_m
                    OR events.energy_kcal IS NOT excluded.energy_kcal
                    OR events.avg_hr IS NOT excluded.avg_hr
                    OR events.max_hr IS NOT excluded.max_hr
                    OR events.data IS NOT excluded.data",
            )
            .bind(new_id())
            .bind(user.id)
            .bind(&conn.provider)
            .bind(&e.provider_event_id)
            .bind(e.event_type.as_str())
            .bind(&e.activity_type)
            .bind(micros(e.started_at))
            .bind(e.ended_at.map(micros))
            .bind(date_text(e.local_date))
            .bind(e.duration_s)
            .bind(e.distance_m)
            .bind(e.energy_kcal)
            .bind(e.avg_hr)
            .bind(e.max_hr)
            .bind(e.data.as_ref().map(|d| d.to_string()))
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let stored: String = sqlx::query_scalar("SELECT cursors FROM connections WHERE id = $1")
            .bind(conn.id)
            .fetch_one(&mut *tx)
            .await?;
        let mut cursors: Cursors = serde_json::from_str(&stored)
            .map_err(|e| Error::internal(format!("stored cursors are invalid: {e}")))?;
        super::merge_cursors(&mut cursors, &batch.cursors);
        sqlx::query(
            "UPDATE connections SET cursors = $2, last_synced_at = $3, updated_at = $3 WHERE id = $1",
        )
        .bind(conn.id)
        .bind(serde_json::to_string(&cursors).expect("cursors serialize"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(job) = job {
            sqlx::query(
                "UPDATE sync_jobs SET inserted = inserted + $2, updated = updated + $3,
                        unchanged = unchanged + $4, events_written = events_written + $5
                 WHERE id = $1",
            )
            .bind(job)
            .bind(written.inserted as i64)
            .bind(written.updated as i64)
            .bind(written.unchanged as i64)
            .bind(events_written as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(BatchOutcome {
            samples: written,
            events_written,
        })
    }

    async fn list_events(
        &self,
        user: &User,
        q: &EventQuery,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Event>> {
        let (c_at, c_id) = after
            .map(|c| (micros(c.at), c.id))
            .unwrap_or((i64::MAX, uuid::Uuid::max()));
        let rows = sqlx::query(
            "SELECT id, type, provider, provider_event_id, activity_type, started_at, ended_at,
                    local_date, duration_s, distance_m, energy_kcal, avg_hr, max_hr, data
             FROM events
             WHERE user_id = $1
               AND ($2 IS NULL OR type = $2)
               AND ($3 IS NULL OR started_at >= $3)
               AND ($4 IS NULL OR started_at < $4)
               AND (started_at, id) < ($5, $6)
               AND ($8 IS NULL OR lower(activity_type) = lower($8))
             ORDER BY started_at DESC, id DESC LIMIT $7",
        )
        .bind(user.id)
        .bind(q.event_type.map(EventType::as_str))
        .bind(q.from.map(micros))
        .bind(q.to.map(micros))
        .bind(c_at)
        .bind(c_id)
        .bind(limit.0 as i64 + 1)
        .bind(q.activity_type.as_deref())
        .fetch_all(&self.pool)
        .await?;
        let items = rows.iter().map(event_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |e| Cursor {
            at: e.started_at,
            id: e.id,
        }))
    }

    async fn apply_analytics(&self, writes: &[AnalyticsWrite], replace_all: bool) -> Result<()> {
        let now = micros(Utc::now());
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if replace_all {
            for table in [
                "DELETE FROM analytics_baselines",
                "DELETE FROM analytics_anomalies",
                "DELETE FROM analytics_correlations",
                "DELETE FROM health_scores",
                "DELETE FROM personal_records",
            ] {
                sqlx::query(table).execute(&mut *tx).await?;
            }
        }
        for w in writes {
            match w {
                AnalyticsWrite::Baseline {
                    user_id,
                    metric,
                    window_days,
                    put: Some((as_of, body)),
                } => {
                    sqlx::query(
                        "INSERT INTO analytics_baselines (user_id, metric, window_days, as_of_date, body, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (user_id, metric, window_days) DO UPDATE SET
                            as_of_date = excluded.as_of_date, body = excluded.body, updated_at = excluded.updated_at",
                    )
                    .bind(user_id)
                    .bind(metric)
                    .bind(*window_days as i32)
                    .bind(date_text(*as_of))
                    .bind(body.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                AnalyticsWrite::Baseline {
                    user_id,
                    metric,
                    window_days,
                    put: None,
                } => {
                    sqlx::query(
                        "DELETE FROM analytics_baselines WHERE user_id = $1 AND metric = $2 AND window_days = $3",
                    )
                    .bind(user_id)
                    .bind(metric)
                    .bind(*window_days as i32)
                    .execute(&mut *tx)
                    .await?;
                }
                AnalyticsWrite::Anomaly {
                    id,
                    user_id,
                    put: Some(a),
                } => {
                    sqlx::query(
                        "INSERT INTO analytics_anomalies (id, user_id, metric, date, method, severity, body, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (id) DO UPDATE SET
                            severity = excluded.severity, body = excluded.body, updated_at = excluded.updated_at",
                    )
                    .bind(id)
                    .bind(user_id)
                    .bind(&a.metric)
                    .bind(date_text(a.date))
                    .bind(&a.method)
                    .bind(&a.severity)
                    .bind(a.body.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                AnalyticsWrite::Anomaly { id, put: None, .. } => {
                    sqlx::query("DELETE FROM analytics_anomalies WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                AnalyticsWrite::Correlation {
                    user_id,
                    metric_a,
                    metric_b,
                    lag_days,
                    put: Some((abs_r, body)),
                } => {
                    sqlx::query(
                        "INSERT INTO analytics_correlations (user_id, metric_a, metric_b, lag_days, abs_r, body, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (user_id, metric_a, metric_b, lag_days) DO UPDATE SET
                            abs_r = excluded.abs_r, body = excluded.body, updated_at = excluded.updated_at",
                    )
                    .bind(user_id)
                    .bind(metric_a)
                    .bind(metric_b)
                    .bind(i32::from(*lag_days))
                    .bind(*abs_r)
                    .bind(body.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                AnalyticsWrite::Correlation {
                    user_id,
                    metric_a,
                    metric_b,
                    lag_days,
                    put: None,
                } => {
                    sqlx::query(
                        "DELETE FROM analytics_correlations
                         WHERE user_id = $1 AND metric_a = $2 AND metric_b = $3 AND lag_days = $4",
                    )
                    .bind(user_id)
                    .bind(metric_a)
                    .bind(metric_b)
                    .bind(i32::from(*lag_days))
                    .execute(&mut *tx)
                    .await?;
                }
                AnalyticsWrite::Score {
                    user_id,
                    date,
                    put: Some(body),
                } => {
                    sqlx::query(
                        "INSERT INTO health_scores (user_id, date, body, updated_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (user_id, date) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                    )
                    .bind(user_id)
                    .bind(date_text(*date))
                    .bind(body.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                AnalyticsWrite::Score {
                    user_id,
                    date,
                    put: None,
                } => {
                    sqlx::query("DELETE FROM health_scores WHERE user_id = $1 AND date = $2")
                        .bind(user_id)
                        .bind(date_text(*date))
                        .execute(&mut *tx)
                        .await?;
                }
                AnalyticsWrite::Record {
                    user_id,
                    metric,
                    kind,
                    put: Some(body),
                } => {
                    sqlx::query(
                        "INSERT INTO personal_records (user_id, metric, kind, body, updated_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (user_id, metric, kind) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                    )
                    .bind(user_id)
                    .bind(metric)
                    .bind(kind)
                    .bind(body.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                AnalyticsWrite::Record {
                    user_id,
                    metric,
                    kind,
                    put: None,
                } => {
                    sqlx::query(
                        "DELETE FROM personal_records WHERE user_id = $1 AND metric = $2 AND kind = $3",
                    )
                    .bind(user_id)
                    .bind(metric)
                    .bind(kind)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_anomaly_status(
        &self,
        user: &User,
        anomaly_id: uuid::Uuid,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let exists: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT id FROM analytics_anomalies WHERE id = $1 AND user_id = $2")
                .bind(anomaly_id)
                .bind(user.id)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO anomaly_status (anomaly_id, user_id, status, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (anomaly_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
        )
        .bind(anomaly_id)
        .bind(user.id)
        .bind(status)
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    async fn analytics_rows(
        &self,
        user: &User,
        table: AnalyticsTable,
    ) -> Result<Vec<serde_json::Value>> {
        let rows = sqlx::query(table.select())
            .bind(user.id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let mut body = json(r.try_get::<&str, _>("body")?)?;
                if table == AnalyticsTable::Anomalies {
                    let status: Option<String> = r.try_get("status")?;
                    body["status"] =
                        serde_json::Value::String(status.unwrap_or_else(|| "open".into()));
                }
                Ok(body)
            })
            .collect()
    }

    async fn user_priorities(&self) -> Result<Vec<(UserId, WorkspaceId, Vec<String>)>> {
        let rows = sqlx::query(
            "SELECT u.id, u.workspace_id, w.provider_priority
             FROM users u JOIN workspaces w ON w.id = u.workspace_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let priority: Vec<String> = serde_json::from_str(r.try_get("provider_priority")?)
                    .map_err(|e| {
                    crate::error::Error::internal(format!("provider_priority: {e}"))
                })?;
                Ok((r.try_get("id")?, r.try_get("workspace_id")?, priority))
            })
            .collect()
    }

    async fn set_provider_priority(
        &self,
        workspace: WorkspaceId,
        priority: &[String],
    ) -> Result<()> {
        let json = serde_json::to_string(priority)
            .map_err(|e| crate::error::Error::internal(e.to_string()))?;
        sqlx::query("UPDATE workspaces SET provider_priority = $1, updated_at = $2 WHERE id = $3")
            .bind(json)
            .bind(micros(Utc::now()))
            .bind(workspace)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn anomalies_page(
        &self,
        user: &User,
        filter: &crate::services::analytics::AnomalyFilter,
        after: Option<(chrono::NaiveDate, uuid::Uuid)>,
        limit: u32,
    ) -> Result<Vec<(chrono::NaiveDate, uuid::Uuid, serde_json::Value)>> {
        let rows = sqlx::query(
            "SELECT a.id, a.date, a.body, COALESCE(s.status, 'open') AS status
             FROM analytics_anomalies a LEFT JOIN anomaly_status s ON s.anomaly_id = a.id
             WHERE a.user_id = $1
               AND ($2 IS NULL OR a.metric = $2) AND ($3 IS NULL OR a.method = $3)
               AND ($4 IS NULL OR a.severity = $4) AND ($5 IS NULL OR COALESCE(s.status, 'open') = $5)
               AND ($6 IS NULL OR a.date >= $6) AND ($7 IS NULL OR a.date <= $7)
               AND ($8 IS NULL OR a.date < $8 OR (a.date = $8 AND a.id > $9))
             ORDER BY a.date DESC, a.id LIMIT $10",
        )
        .bind(user.id)
        .bind(&filter.metric)
        .bind(&filter.method)
        .bind(&filter.severity)
        .bind(&filter.status)
        .bind(filter.from)
        .bind(filter.to)
        .bind(after.map(|(d, _)| d))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let mut body = json(r.try_get::<&str, _>("body")?)?;
                body["status"] = serde_json::Value::String(r.try_get("status")?);
                Ok((r.try_get("date")?, r.try_get("id")?, body))
            })
            .collect()
    }

    async fn insert_oauth_state(&self, st: &OAuthState) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, workspace_id, user_id, provider, pkce_verifier,
                                       return_url, backfill_days, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&st.state_hash)
        .bind(st.workspace_id)
        .bind(st.user_id)
        .bind(&st.provider)
        .bind(&st.sealed_pkce_verifier)
        .bind(&st.return_url)
        .bind(st.backfill_days.map(i64::from))
        .bind(micros(st.created_at))
        .bind(micros(st.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthState>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let r = sqlx::query(
            "DELETE FROM oauth_states WHERE state_hash = $1
             RETURNING state_hash, workspace_id, user_id, provider, pkce_verifier, return_url,
                       backfill_days, created_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        // Abandoned flows are swept here rather than by a timer.
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(micros(now - chrono::Duration::hours(1)))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        r.as_ref().map(oauth_state_row).transpose()
    }
}

crate::impl_notify_store!(SqliteStore, SqliteRow, i64, micros, instant);
