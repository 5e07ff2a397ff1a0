//! The PostgreSQL store. Native types throughout (UUID, TIMESTAMPTZ, DATE, JSONB). The sample
//! write path is one statement per batch: the batch arrives as arrays (`UNNEST`), the old values
//! are read in the same statement's snapshot, and only rows whose values differ are updated.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

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
pub struct PgStore {
    pool: PgPool,
}

/// Starts a transaction that writes samples.
///
/// Identity lookups must probe the unique index whatever the statistics say: while a table
/// grows fast (a first backfill), autovacuum has not analysed it yet, the planner believes it
/// nearly empty and picks sequential scans inside the per-row probe, turning each batch into a
/// scan of everything written so far. Disabling them for this one transaction keeps the cost
/// proportional to the batch. For the same reason the statement is always planned for its
/// actual arrays: after five executions of a prepared statement PostgreSQL may switch to a
/// generic plan, which cannot see the batch size and picked join orders costing seconds.
async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The sample write path inside a caller's transaction (see [`begin_write`]).
async fn write_samples_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    user: &User,
    batch: &[NewSample],
) -> Result<WriteOutcome> {
    let mut out = WriteOutcome::default();
    if batch.is_empty() {
        return Ok(out);
    }
    let n = batch.len();
    let (mut ids, mut providers, mut metrics, mut values, mut units) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut ats, mut dates, mut offsets, mut sources, mut datas) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for s in batch {
        ids.push(new_id());
        providers.push(s.provider.as_str());
        metrics.push(s.metric);
        values.push(s.value);
        units.push(s.unit);
        ats.push(trunc_micros(s.recorded_at));
        dates.push(s.local_date);
        offsets.push(s.utc_offset_minutes);
        sources.push(s.source.as_deref());
        datas.push(s.data.as_ref().map(|d| d.to_string()));
    }
    // `old` reads the pre-statement snapshot, so joining it to what the upsert returned gives
    // each change's previous value; rows the WHERE clause skipped are the unchanged ones.
    // `old` is a LATERAL lookup so every input row probes the unique index, whatever the
    // planner estimates: as a plain join, plans with accurate array sizes hash-joined a
    // scan of all the user's samples per batch, which made long backfills quadratic.
    let rows = sqlx::query(
            "WITH input AS (
                 SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::float8[], $6::text[],
                                      $7::timestamptz[], $8::date[], $9::int4[], $10::text[], $11::text[])
                     AS t(id, provider, metric, value, unit, recorded_at, local_date, utc_offset_minutes, source, data)
             ),
             old AS (
                 SELECT i.provider, i.metric, i.recorded_at, s.value, s.local_date
                 FROM input i
                 CROSS JOIN LATERAL (
                     SELECT value, local_date FROM samples s
                     WHERE s.user_id = $1 AND s.provider = i.provider AND s.metric = i.metric
                       AND s.recorded_at = i.recorded_at
                 ) s
             ),
             up AS (
                 INSERT INTO samples AS s (id, user_id, provider, metric, value, unit, recorded_at, local_date,
                                           utc_offset_minutes, source, data, created_at, updated_at)
                 SELECT i.id, $1, i.provider, i.metric, i.value, i.unit, i.recorded_at, i.local_date,
                        i.utc_offset_minutes, i.source, i.data::jsonb, now(), now()
                 FROM input i
                 ON CONFLICT (user_id, provider, metric, recorded_at) DO UPDATE
                    SET value = EXCLUDED.value, unit = EXCLUDED.unit, local_date = EXCLUDED.local_date,
                        utc_offset_minutes = EXCLUDED.utc_offset_minutes, source = EXCLUDED.source,
                        data = EXCLUDED.data, updated_at = now()
                  WHERE (s.value, s.local_date, s.utc_offset_minutes, s.source, s.data)
                        IS DISTINCT FROM
                        (EXCLUDED.value, EXCLUDED.local_date, EXCLUDED.utc_offset_minutes, EXCLUDED.source, EXCLUDED.data)
                 RETURNING s.provider, s.metric, s.recorded_at, s.value, s.local_date
             )
             SELECT up.provider, up.metric, up.recorded_at, up.value, up.local_date,
                    old.value AS old_value, old.local_date AS old_local_date
             FROM up LEFT JOIN old USING (provider, metric, recorded_at)",
        )
        .bind(user.id)
        .bind(&ids)
        .bind(&providers)
        .bind(&metrics)
        .bind(&values)
        .bind(&units)
        .bind(&ats)
        .bind(&dates)
        .bind(&offsets)
        .bind(&sources)
        .bind(&datas)
        .fetch_all(&mut **tx)
        .await?;
    for r in &rows {
        let old_value: Option<f64> = r.try_get("old_value")?;
        let old_date: Option<NaiveDate> = r.try_get("old_local_date")?;
        let old = match (old_value, old_date) {
            (Some(value), Some(local_date)) => Some(ChangedValue { value, local_date }),
            _ => None,
        };
        if old.is_some() {
            out.updated += 1;
        } else {
            out.inserted += 1;
        }
        out.changes.push(SampleChange {
            user_id: user.id,
            provider: r.try_get("provider")?,
            metric: r.try_get("metric")?,
            recorded_at: r.try_get("recorded_at")?,
            old,
            new: Some(ChangedValue {
                value: r.try_get("value")?,
                local_date: r.try_get("local_date")?,
            }),
        });
    }
    out.unchanged = n as u64 - rows.len() as u64;
    Ok(out)
}

/// Deletes a user's samples (optionally one provider's) and returns them as deletions.
async fn delete_returning(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    user: UserId,
    provider: Option<&str>,
) -> Result<Vec<SampleChange>> {
    let rows = sqlx::query(
        "DELETE FROM samples WHERE user_id = $1 AND ($2::text IS NULL OR provider = $2)
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
                recorded_at: r.try_get("recorded_at")?,
                old: Some(ChangedValue {
                    value: r.try_get("value")?,
                    local_date: r.try_get("local_date")?,
                }),
                new: None,
            })
        })
        .collect()
}

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

fn connection_row(r: &PgRow) -> Result<Connection> {
    let status: String = r.try_get("status")?;
    let cursors: serde_json::Value = r.try_get("cursors")?;
    let scopes: String = r.try_get("scopes")?;
    let backfill: i32 = r.try_get("backfill_days")?;
    Ok(Connection {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        status: ConnectionStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("stored connection status '{status}'")))?,
        provider_user_id: r.try_get("provider_user_id")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        sealed_tokens: r.try_get("tokens")?,
        token_expires_at: r.try_get("token_expires_at")?,
        cursors: serde_json::from_value::<Cursors>(cursors)
            .map_err(|e| Error::internal(format!("stored cursors are invalid: {e}")))?,
        backfill_days: backfill as u32,
        last_synced_at: r.try_get("last_synced_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn job_row(r: &PgRow) -> Result<SyncJob> {
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
        range_from: r.try_get("range_from")?,
        range_to: r.try_get("range_to")?,
        inserted: r.try_get("inserted")?,
        updated: r.try_get("updated")?,
        unchanged: r.try_get("unchanged")?,
        events_written: r.try_get("events_written")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn event_row(r: &PgRow) -> Result<Event> {
    let t: String = r.try_get("type")?;
    Ok(Event {
        id: r.try_get("id")?,
        event_type: EventType::parse(&t)
            .ok_or_else(|| Error::internal(format!("stored event type '{t}'")))?,
        provider: r.try_get("provider")?,
        provider_event_id: r.try_get("provider_event_id")?,
        activity_type: r.try_get("activity_type")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        local_date: r.try_get("local_date")?,
        duration_s: r.try_get("duration_s")?,
        distance_m: r.try_get("distance_m")?,
        energy_kcal: r.try_get("energy_kcal")?,
        avg_hr: r.try_get("avg_hr")?,
        max_hr: r.try_get("max_hr")?,
        data: r.try_get("data")?,
    })
}

fn oauth_state_row(r: &PgRow) -> Result<OAuthState> {
    let days: Option<i32> = r.try_get("backfill_days")?;
    Ok(OAuthState {
        state_hash: r.try_get("state_hash")?,
        workspace_id: r.try_get("workspace_id")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        sealed_pkce_verifier: r.try_get("pkce_verifier")?,
        return_url: r.try_get("return_url")?,
        backfill_days: days.map(|d| d as u32),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url)?.application_name("vitasync");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(opts)
            .await?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn workspace_row(r: &PgRow) -> Result<Workspace> {
        Ok(Workspace {
            id: r.try_get("id")?,
            slug: r.try_get("slug")?,
            name: r.try_get("name")?,
            provider_priority: r.try_get("provider_priority")?,
            created_at: r.try_get("created_at")?,
        })
    }

    fn key_row(r: &PgRow) -> Result<ApiKey> {
        Ok(ApiKey {
            id: r.try_get("id")?,
            workspace_id: r.try_get("workspace_id")?,
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            scopes: Scopes::from_db(r.try_get("scopes")?)?,
            expires_at: r.try_get("expires_at")?,
            revoked_at: r.try_get("revoked_at")?,
            last_used_at: r.try_get("last_used_at")?,
            created_at: r.try_get("created_at")?,
        })
    }

    fn user_row(r: &PgRow) -> Result<User> {
        Ok(User {
            id: r.try_get("id")?,
            workspace_id: r.try_get("workspace_id")?,
            external_id: r.try_get("external_id")?,
            email: r.try_get("email")?,
            display_name: r.try_get("display_name")?,
            timezone: r.try_get("timezone")?,
            metadata: r.try_get("metadata")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    fn sample_row(r: &PgRow) -> Result<Sample> {
        Ok(Sample {
            id: r.try_get("id")?,
            metric: r.try_get("metric")?,
            value: r.try_get("value")?,
            unit: r.try_get("unit")?,
            recorded_at: r.try_get("recorded_at")?,
            local_date: r.try_get("local_date")?,
            provider: r.try_get("provider")?,
            source: r.try_get("source")?,
        })
    }
}

/// PostgreSQL keeps microseconds; truncating here makes "same instant" mean the same thing in
/// memory and in the table (and in the change list handed downstream).
fn trunc_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<()> {
        migrations_for(Backend::Postgres).run(&self.pool).await?;
        Ok(())
    }

    async fn ready(&self) -> Result<()> {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        if applied.unwrap_or(0) < latest_version(Backend::Postgres) {
            return Err(Error::internal("migrations are not applied"));
        }
        Ok(())
    }

    async fn create_workspace(&self, slug: &str, name: &str) -> Result<Workspace> {
        let r = sqlx::query(
            "INSERT INTO workspaces (id, slug, name, created_at, updated_at) VALUES ($1, $2, $3, now(), now())
             RETURNING id, slug, name, provider_priority, created_at",
        )
        .bind(new_id())
        .bind(slug)
        .bind(name)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             RETURNING id, workspace_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at",
        )
        .bind(new_id())
        .bind(k.workspace_id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.key_hash)
        .bind(k.scopes.to_db())
        .bind(k.expires_at)
        .fetch_one(&self.pool)
        .await?;
        Self::key_row(&r)
    }

    async fn ensure_api_key(&self, k: &NewApiKey) -> Result<ApiKey> {
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, scopes, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now()) ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(new_id())
        .bind(k.workspace_id)
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(&k.key_hash)
        .bind(k.scopes.to_db())
        .bind(k.expires_at)
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
        let rows = sqlx::query(
            "SELECT id, workspace_id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at FROM api_keys
             WHERE workspace_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
             ORDER BY created_at, id LIMIT $4",
        )
        .bind(ws)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.id))
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
            .bind(at)
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
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_user(&self, ws: WorkspaceId, u: &NewUser) -> Result<(User, bool)> {
        let metadata = u.metadata.clone().unwrap_or_else(|| serde_json::json!({}));
        let inserted = sqlx::query(
            "INSERT INTO users (id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now())
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
        let rows = sqlx::query(
            "SELECT id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at FROM users
             WHERE workspace_id = $1 AND ($2::text IS NULL OR external_id = $2) AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
               AND ($6::text IS NULL OR strpos(lower(external_id), lower($6)) > 0
                    OR strpos(lower(coalesce(display_name, '')), lower($6)) > 0
                    OR strpos(lower(coalesce(email, '')), lower($6)) > 0)
             ORDER BY created_at, id LIMIT $5",
        )
        .bind(ws)
        .bind(external_id)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.id))
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
        .bind(&u.metadata)
        .bind(u.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<Vec<SampleChange>>> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM users WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(ws)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            return Ok(None);
        }
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
        let mut tx = begin_write(&self.pool).await?;
        let out = write_samples_in(&mut tx, user, batch).await?;
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
        let rows = sqlx::query(
            "SELECT id, metric, value, unit, recorded_at, local_date, provider, source FROM samples
             WHERE user_id = $1
               AND ($2::text IS NULL OR metric = $2)
               AND ($3::text IS NULL OR provider = $3)
               AND ($4::timestamptz IS NULL OR recorded_at >= $4)
               AND ($5::timestamptz IS NULL OR recorded_at < $5)
               AND ($6::timestamptz IS NULL OR (recorded_at, id) < ($6, $7))
             ORDER BY recorded_at DESC, id DESC LIMIT $8",
        )
        .bind(user.id)
        .bind(&q.metric)
        .bind(&q.provider)
        .bind(q.from)
        .bind(q.to)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.id))
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
            "SELECT local_date, metric, provider, COUNT(*) AS n, SUM(value) AS total, MIN(value) AS lo, MAX(value) AS hi,
                    (array_agg(value ORDER BY recorded_at DESC))[1] AS last_value
             FROM samples
             WHERE user_id = $1 AND ($2::text IS NULL OR metric = $2)
               AND ($3::date IS NULL OR local_date >= $3) AND ($4::date IS NULL OR local_date <= $4)
             GROUP BY metric, local_date, provider
             ORDER BY local_date, metric",
        )
        .bind(user.id)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyGroup {
                    date: r.try_get("local_date")?,
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
            "SELECT metric, MAX(unit) AS unit, COUNT(*) AS n, MIN(local_date) AS first_date, MAX(local_date) AS last_date,
                    MAX(recorded_at) AS last_at, (array_agg(value ORDER BY recorded_at DESC, id DESC))[1] AS last_value
             FROM samples WHERE user_id = $1 GROUP BY metric ORDER BY metric",
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
                    first_date: r.try_get("first_date")?,
                    last_date: r.try_get("last_date")?,
                    last_value: r.try_get("last_value")?,
                    last_recorded_at: r.try_get("last_at")?,
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
             WHERE user_id = $1 AND ($2::text IS NULL OR provider = $2) AND id > $3
             ORDER BY id LIMIT $4"
        } else {
            "SELECT id, user_id, provider, metric, recorded_at, value, local_date FROM samples
             WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR provider = $2)
               AND id > $3
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
                        recorded_at: r.try_get("recorded_at")?,
                        old: None,
                        new: Some(ChangedValue {
                            value: r.try_get("value")?,
                            local_date: r.try_get("local_date")?,
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO connections (id, user_id, provider, status, provider_user_id, scopes, tokens,
                                      token_expires_at, backfill_days, created_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $9)
             ON CONFLICT (user_id, provider) DO UPDATE SET
                status = 'active', provider_user_id = EXCLUDED.provider_user_id,
                scopes = EXCLUDED.scopes, tokens = EXCLUDED.tokens,
                token_expires_at = EXCLUDED.token_expires_at, last_error = NULL,
                updated_at = EXCLUDED.updated_at",
        )
        .bind(new_id())
        .bind(user.id)
        .bind(&new.provider)
        .bind(&new.provider_user_id)
        .bind(new.scopes.join(" "))
        .bind(&new.sealed_tokens)
        .bind(new.token_expires_at)
        .bind(new.backfill_days as i32)
        .bind(at)
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
        .bind(expires_at)
        .bind(at)
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
        .bind(at)
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
        let mut tx = self.pool.begin().await?;
        let provider: Option<String> = sqlx::query_scalar(
            "SELECT provider FROM connections WHERE user_id = $1 AND id = $2 FOR UPDATE",
        )
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
        .bind(at)
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
            sqlx::query("UPDATE connections SET cursors = '{}'::jsonb WHERE id = $1")
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
        let r = sqlx::query(
            "INSERT INTO sync_jobs (id, connection_id, user_id, provider, trigger, status, range_from,
                                    range_to, created_at)
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8)
             RETURNING id, connection_id, user_id, provider, trigger, status, range_from, range_to,
                       inserted, updated, unchanged, events_written, error, created_at, started_at,
                       finished_at",
        )
        .bind(new_id())
        .bind(conn.id)
        .bind(conn.user_id)
        .bind(&conn.provider)
        .bind(trigger.as_str())
        .bind(range.map(|r| trunc_micros(r.0)))
        .bind(range.map(|r| trunc_micros(r.1)))
        .bind(trunc_micros(at))
        .fetch_one(&self.pool)
        .await?;
        job_row(&r)
    }

    async fn start_sync_job(&self, id: SyncJobId, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sync_jobs SET status = 'running', started_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
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
        .bind(at)
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
        .bind(at)
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
        let rows = sqlx::query(job_select!(
            "WHERE j.user_id = $1
               AND ($2::timestamptz IS NULL OR (j.created_at, j.id) < ($2, $3))
             ORDER BY j.created_at DESC, j.id DESC LIMIT $4"
        ))
        .bind(user.id)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.id))
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
        let samples = super::dedupe_batch(batch.samples.clone());
        let mut tx = begin_write(&self.pool).await?;
        let written = write_samples_in(&mut tx, user, &samples).await?;
        let mut events_written = 0;
        for e in &batch.events {
            events_written += sqlx::query(
                "INSERT INTO events AS ev (id, user_id, provider, provider_event_id, type, activity_type,
                                     started_at, ended_at, local_date, duration_s, distance_m,
                                     energy_kcal, avg_hr, max_hr, data, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $16)
                 ON CONFLICT (user_id, provider, provider_event_id) DO UPDATE SET
                    type = EXCLUDED.type, activity_type = EXCLUDED.activity_type,
                    started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
                    local_date = EXCLUDED.local_date, duration_s = EXCLUDED.duration_s,
                    distance_m = EXCLUDED.distance_m, energy_kcal = EXCLUDED.energy_kcal,
                    avg_hr = EXCLUDED.avg_hr, max_hr = EXCLUDED.max_hr, data = EXCLUDED.data,
                    updated_at = EXCLUDED.updated_at
                 WHERE (ev.type, ev.activity_type, ev.started_at, ev.ended_at, ev.local_date,
                        ev.duration_s, ev.distance_m, ev.energy_kcal, ev.avg_hr, ev.max_hr, ev.data)
                       IS DISTINCT FROM
                       (EXCLUDED.type, EXCLUDED.activity_type, EXCLUDED.started_at, EXCLUDED.ended_at,
                        EXCLUDED.local_date, EXCLUDED.duration_s, EXCLUDED.distance_m,
                        EXCLUDED.energy_kcal, EXCLUDED.avg_hr, EXCLUDED.max_hr, EXCLUDED.data)",
            )
            .bind(new_id())
            .bind(user.id)
            .bind(&conn.provider)
            .bind(&e.provider_event_id)
            .bind(e.event_type.as_str())
            .bind(&e.activity_type)
            .bind(trunc_micros(e.started_at))
            .bind(e.ended_at.map(trunc_micros))
            .bind(e.local_date)
            .bind(e.duration_s)
            .bind(e.distance_m)
            .bind(e.energy_kcal)
            .bind(e.avg_hr)
            .bind(e.max_hr)
            .bind(e.data.as_ref().map(|d| d.to_string()))
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let stored: serde_json::Value =
            sqlx::query_scalar("SELECT cursors FROM connections WHERE id = $1 FOR UPDATE")
                .bind(conn.id)
                .fetch_one(&mut *tx)
                .await?;
        let mut cursors: Cursors = serde_json::from_value(stored)
            .map_err(|e| Error::internal(format!("stored cursors are invalid: {e}")))?;
        super::merge_cursors(&mut cursors, &batch.cursors);
        sqlx::query(
            "UPDATE connections SET cursors = $2, last_synced_at = $3, updated_at = $3 WHERE id = $1",
        )
        .bind(conn.id)
        .bind(serde_json::to_value(&cursors).expect("cursors serialize"))
        .bind(at)
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
        let rows = sqlx::query(
            "SELECT id, type, provider, provider_event_id, activity_type, started_at, ended_at,
                    local_date, duration_s, distance_m, energy_kcal, avg_hr, max_hr, data
             FROM events
             WHERE user_id = $1
               AND ($2::text IS NULL OR type = $2)
               AND ($3::timestamptz IS NULL OR started_at >= $3)
               AND ($4::timestamptz IS NULL OR started_at < $4)
               AND ($5::timestamptz IS NULL OR (started_at, id) < ($5, $6))
               AND ($8::text IS NULL OR lower(activity_type) = lower($8))
             ORDER BY started_at DESC, id DESC LIMIT $7",
        )
        .bind(user.id)
        .bind(q.event_type.map(EventType::as_str))
        .bind(q.from)
        .bind(q.to)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.id))
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
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
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
                    .bind(*as_of)
                    .bind(body.clone())
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
                    .bind(a.date)
                    .bind(&a.method)
                    .bind(&a.severity)
                    .bind(a.body.clone())
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
                    .bind(body.clone())
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
                    .bind(*date)
                    .bind(body.clone())
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
                        .bind(*date)
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
                    .bind(body.clone())
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
        .bind(at)
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
                let mut body = r.try_get::<serde_json::Value, _>("body")?;
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
                Ok((
                    r.try_get("id")?,
                    r.try_get("workspace_id")?,
                    r.try_get("provider_priority")?,
                ))
            })
            .collect()
    }

    async fn set_provider_priority(
        &self,
        workspace: WorkspaceId,
        priority: &[String],
    ) -> Result<()> {
        sqlx::query(
            "UPDATE workspaces SET provider_priority = $1, updated_at = now() WHERE id = $2",
        )
        .bind(priority)
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
               AND ($2::text IS NULL OR a.metric = $2) AND ($3::text IS NULL OR a.method = $3)
               AND ($4::text IS NULL OR a.severity = $4)
               AND ($5::text IS NULL OR COALESCE(s.status, 'open') = $5)
               AND ($6::date IS NULL OR a.date >= $6) AND ($7::date IS NULL OR a.date <= $7)
               AND ($8::date IS NULL OR a.date < $8 OR (a.date = $8 AND a.id > $9::uuid))
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
                let mut body = r.try_get::<serde_json::Value, _>("body")?;
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
        .bind(st.backfill_days.map(|d| d as i32))
        .bind(st.created_at)
        .bind(st.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthState>> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "DELETE FROM oauth_states WHERE state_hash = $1
             RETURNING state_hash, workspace_id, user_id, provider, pkce_verifier, return_url,
                       backfill_days, created_at, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(now - chrono::Duration::hours(1))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        r.as_ref().map(oauth_state_row).transpose()
    }
}

/// Instants are native `timestamptz` here: bound and read as they are.
fn pg_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

fn pg_read_instant(t: DateTime<Utc>) -> Result<DateTime<Utc>> {
    Ok(t)
}

crate::impl_notify_store!(PgStore, PgRow, DateTime<Utc>, pg_instant, pg_read_instant);
