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
use crate::cursor::{Cursor, Limit, Page};
use crate::domain::{
    ApiKey, ApiKeyId, ChangedValue, MetricSummary, NewApiKey, NewSample, NewUser, Sample,
    SampleChange, SampleQuery, Scopes, User, UserId, Workspace, WorkspaceId, WriteOutcome, new_id,
};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
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
             RETURNING id, slug, name, created_at",
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
        let r = sqlx::query("SELECT id, slug, name, created_at FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(Self::workspace_row).transpose()
    }

    async fn workspace_by_slug(&self, slug: &str) -> Result<Option<Workspace>> {
        let r = sqlx::query("SELECT id, slug, name, created_at FROM workspaces WHERE slug = $1")
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
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<User>> {
        let rows = sqlx::query(
            "SELECT id, workspace_id, external_id, email, display_name, timezone, metadata, created_at, updated_at FROM users
             WHERE workspace_id = $1 AND ($2::text IS NULL OR external_id = $2) AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
             ORDER BY created_at, id LIMIT $5",
        )
        .bind(ws)
        .bind(external_id)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.id))
        .bind(limit.0 as i64 + 1)
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

    async fn delete_user(&self, ws: WorkspaceId, id: UserId) -> Result<Option<u64>> {
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
        let samples = sqlx::query("DELETE FROM samples WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for table in [
            "DELETE FROM events WHERE user_id = $1",
            "DELETE FROM sync_jobs WHERE user_id = $1",
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
        // Identity lookups must probe the unique index whatever the statistics say: while a
        // table grows fast (a first backfill), autovacuum has not analysed it yet, the planner
        // believes it nearly empty and picks sequential scans inside the per-row probe, turning
        // each batch into a scan of everything written so far. Disabling them for this one
        // transaction keeps the cost proportional to the batch.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await?;
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
        .fetch_all(&mut *tx)
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
        tx.commit().await?;
        out.unchanged = n as u64 - rows.len() as u64;
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
}
