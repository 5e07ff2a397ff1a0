//! The notification half of the store port: channels, rules, at-most-once dispatch claims,
//! attempt logs, outbound webhooks and their durable delivery queue.
//!
//! The SQL is the same text on both backends (SQLite accepts `$N` placeholders, `RETURNING`,
//! `ON CONFLICT` and row-value comparisons), so one macro body implements the trait for each
//! store; only how an instant is bound and read differs, and each store passes its own pair.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::cursor::{Cursor, Limit, Page};
use crate::domain::{UserId, WorkspaceId};
use crate::error::Result;
use crate::notify::model::{Channel, Delivery, LogEntry, Rule, Webhook};

/// Filters of the attempt log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub channel_id: Option<Uuid>,
    pub status: Option<String>,
}

#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// The workspace a user belongs to (analytics events only name the user).
    async fn user_workspace(&self, user: UserId) -> Result<Option<WorkspaceId>>;

    async fn insert_channel(&self, c: &Channel) -> Result<()>;
    async fn channel(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<Option<Channel>>;
    async fn list_channels(&self, ws: WorkspaceId, user: UserId) -> Result<Vec<Channel>>;
    /// Saves name, config and enabled.
    async fn update_channel(&self, c: &Channel) -> Result<()>;
    async fn delete_channel(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<bool>;

    async fn insert_rule(&self, r: &Rule) -> Result<()>;
    async fn rule(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<Option<Rule>>;
    async fn list_rules(&self, ws: WorkspaceId, user: UserId) -> Result<Vec<Rule>>;
    /// Every enabled rule of a workspace (workspace-level events reach all its users' rules).
    async fn workspace_rules(&self, ws: WorkspaceId) -> Result<Vec<Rule>>;
    async fn update_rule(&self, r: &Rule) -> Result<()>;
    async fn delete_rule(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<bool>;

    /// Claims (rule, channel, event); false when it was claimed before, so a notification is
    /// sent at most once whatever redelivers the event.
    async fn claim_dispatch(
        &self,
        rule: Uuid,
        channel: Uuid,
        event: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Distinct events other than `except` that `rule` claimed since `since` (its hourly cap
    /// counts events, whatever the number of channels).
    async fn events_dispatched_since(
        &self,
        rule: Uuid,
        since: DateTime<Utc>,
        except: Uuid,
    ) -> Result<u32>;
    async fn insert_log(&self, l: &LogEntry) -> Result<()>;
    async fn list_logs(
        &self,
        ws: WorkspaceId,
        user: UserId,
        q: &LogQuery,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<LogEntry>>;

    async fn insert_webhook(&self, w: &Webhook) -> Result<()>;
    async fn webhook(&self, ws: WorkspaceId, id: Uuid) -> Result<Option<Webhook>>;
    /// Any workspace's webhook: for the delivery actor, which runs below tenancy.
    async fn webhook_by_id(&self, id: Uuid) -> Result<Option<Webhook>>;
    async fn list_webhooks(&self, ws: WorkspaceId) -> Result<Vec<Webhook>>;
    /// Saves url, events, description, secret, enabled, failing_since and disabled_reason.
    async fn update_webhook(&self, w: &Webhook) -> Result<()>;
    async fn delete_webhook(&self, ws: WorkspaceId, id: Uuid) -> Result<bool>;

    /// Queues a delivery; false when this webhook already has this event.
    async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Delivery>>;
    /// Takes a due delivery for one attempt by moving its `next_attempt_at` from `due` to
    /// `until` (compare-and-set): false when someone else took it first. Should the process
    /// die mid-attempt, the delivery becomes due again at `until`.
    async fn lease_delivery(
        &self,
        id: Uuid,
        due: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// When the earliest pending delivery is due.
    async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>>;
    /// Saves status, attempts, next_attempt_at, response_code, error and delivered_at.
    async fn update_delivery(&self, d: &Delivery) -> Result<()>;
    async fn delivery(&self, ws: WorkspaceId, webhook: Uuid, id: Uuid) -> Result<Option<Delivery>>;
    async fn list_deliveries(
        &self,
        ws: WorkspaceId,
        webhook: Uuid,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Delivery>>;
    /// Fails every pending delivery of a webhook (it was disabled).
    async fn fail_pending_deliveries(
        &self,
        webhook: Uuid,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<u64>;
}

/// The start of a list: before any row (no row predates the epoch).
pub(crate) fn cursor_or_start(after: Option<Cursor>) -> (DateTime<Utc>, Uuid) {
    after.map_or((DateTime::UNIX_EPOCH, Uuid::nil()), |c| (c.at, c.id))
}

pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

pub(crate) fn from_json_text<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s)
        .map_err(|e| crate::Error::internal(format!("stored notification JSON is invalid: {e}")))
}

/// Implements [`NotifyStore`] for a store with a `pool` field. `$enc` turns an instant into the
/// column value, `$dec` reads one back, `$ts` is the column's Rust type.
#[macro_export]
#[doc(hidden)]
macro_rules! impl_notify_store {
    ($store:ty, $row:ty, $ts:ty, $enc:path, $dec:path) => {
        const _: () = {
            use ::chrono::{DateTime, Utc};
            use ::sqlx::Row as _;
            use ::uuid::Uuid;
            use $crate::cursor::{Cursor, Limit, Page};
            use $crate::domain::{UserId, WorkspaceId};
            use $crate::error::Result;
            use $crate::notify::model::{
                Channel, Delivery, DeliveryStatus, LogEntry, QuietHours, Rule, Webhook,
            };
            use $crate::store::notify::{
                LogQuery, NotifyStore, cursor_or_start, from_json_text, json_text,
            };

            fn ts(row: &$row, col: &str) -> Result<DateTime<Utc>> {
                $dec(row.try_get::<$ts, _>(col)?)
            }
            fn opt_ts(row: &$row, col: &str) -> Result<Option<DateTime<Utc>>> {
                row.try_get::<Option<$ts>, _>(col)?.map($dec).transpose()
            }
            fn opt_u16(row: &$row, col: &str) -> Result<Option<u16>> {
                Ok(row
                    .try_get::<Option<i32>, _>(col)?
                    .map(|v| v.clamp(0, u16::MAX as i32) as u16))
            }

            const CHANNEL_COLS: &str = "id, workspace_id, user_id, kind, name, config_sealed, config_public, enabled, created_at, updated_at";
            fn channel_row(r: &$row) -> Result<Channel> {
                Ok(Channel {
                    id: r.try_get("id")?,
                    workspace_id: r.try_get("workspace_id")?,
                    user_id: r.try_get("user_id")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    config_sealed: r.try_get("config_sealed")?,
                    config_public: from_json_text(&r.try_get::<String, _>("config_public")?)?,
                    enabled: r.try_get("enabled")?,
                    created_at: ts(r, "created_at")?,
                    updated_at: ts(r, "updated_at")?,
                })
            }

            const RULE_COLS: &str = "id, workspace_id, user_id, channel_ids, categories, min_severity, enabled, quiet_start, quiet_end, hourly_cap, created_at, updated_at";
            fn rule_row(r: &$row) -> Result<Rule> {
                let quiet_start: Option<String> = r.try_get("quiet_start")?;
                let quiet_end: Option<String> = r.try_get("quiet_end")?;
                Ok(Rule {
                    id: r.try_get("id")?,
                    workspace_id: r.try_get("workspace_id")?,
                    user_id: r.try_get("user_id")?,
                    channel_ids: from_json_text(&r.try_get::<String, _>("channel_ids")?)?,
                    categories: from_json_text(&r.try_get::<String, _>("categories")?)?,
                    min_severity: from_json_text(&format!(
                        "\"{}\"",
                        r.try_get::<String, _>("min_severity")?
                    ))?,
                    enabled: r.try_get("enabled")?,
                    quiet_hours: quiet_start
                        .zip(quiet_end)
                        .map(|(start, end)| QuietHours { start, end }),
                    hourly_cap: r
                        .try_get::<Option<i32>, _>("hourly_cap")?
                        .map(|v| v.max(0) as u32),
                    created_at: ts(r, "created_at")?,
                    updated_at: ts(r, "updated_at")?,
                })
            }

            const LOG_COLS: &str = "id, workspace_id, user_id, channel_id, rule_id, event_id, event_type, status, response_code, error, latency_ms, attempt, created_at";
            fn log_row(r: &$row) -> Result<LogEntry> {
                Ok(LogEntry {
                    id: r.try_get("id")?,
                    workspace_id: r.try_get("workspace_id")?,
                    user_id: r.try_get("user_id")?,
                    channel_id: r.try_get("channel_id")?,
                    rule_id: r.try_get("rule_id")?,
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    status: r.try_get("status")?,
                    response_code: opt_u16(r, "response_code")?,
                    error: r.try_get("error")?,
                    latency_ms: r.try_get::<i64, _>("latency_ms")?.max(0) as u64,
                    attempt: r.try_get::<i32, _>("attempt")?.max(0) as u32,
                    created_at: ts(r, "created_at")?,
                })
            }

            const WEBHOOK_COLS: &str = "id, workspace_id, url, events, description, secret_sealed, enabled, failing_since, disabled_reason, created_at, updated_at";
            fn webhook_row(r: &$row) -> Result<Webhook> {
                Ok(Webhook {
                    id: r.try_get("id")?,
                    workspace_id: r.try_get("workspace_id")?,
                    url: r.try_get("url")?,
                    events: from_json_text(&r.try_get::<String, _>("events")?)?,
                    description: r.try_get("description")?,
                    secret_sealed: r.try_get("secret_sealed")?,
                    enabled: r.try_get("enabled")?,
                    failing_since: opt_ts(r, "failing_since")?,
                    disabled_reason: r.try_get("disabled_reason")?,
                    created_at: ts(r, "created_at")?,
                    updated_at: ts(r, "updated_at")?,
                })
            }

            const DELIVERY_COLS: &str = "id, webhook_id, workspace_id, event_id, event_type, payload, status, attempts, next_attempt_at, response_code, error, created_at, updated_at, delivered_at";
            fn delivery_row(r: &$row) -> Result<Delivery> {
                let status: String = r.try_get("status")?;
                Ok(Delivery {
                    id: r.try_get("id")?,
                    webhook_id: r.try_get("webhook_id")?,
                    workspace_id: r.try_get("workspace_id")?,
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    payload: r.try_get("payload")?,
                    status: DeliveryStatus::parse(&status).ok_or_else(|| {
                        $crate::Error::internal(format!("stored delivery status '{status}'"))
                    })?,
                    attempts: r.try_get::<i32, _>("attempts")?.max(0) as u32,
                    next_attempt_at: opt_ts(r, "next_attempt_at")?,
                    response_code: opt_u16(r, "response_code")?,
                    error: r.try_get("error")?,
                    created_at: ts(r, "created_at")?,
                    updated_at: ts(r, "updated_at")?,
                    delivered_at: opt_ts(r, "delivered_at")?,
                })
            }

            #[::async_trait::async_trait]
            impl NotifyStore for $store {
                async fn user_workspace(&self, user: UserId) -> Result<Option<WorkspaceId>> {
                    Ok(sqlx::query_scalar("SELECT workspace_id FROM users WHERE id = $1")
                        .bind(user)
                        .fetch_optional(&self.pool)
                        .await?)
                }

                async fn insert_channel(&self, c: &Channel) -> Result<()> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO notification_channels ({CHANNEL_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    )))
                    .bind(c.id)
                    .bind(c.workspace_id)
                    .bind(c.user_id)
                    .bind(&c.kind)
                    .bind(&c.name)
                    .bind(&c.config_sealed)
                    .bind(json_text(&c.config_public))
                    .bind(c.enabled)
                    .bind($enc(c.created_at))
                    .bind($enc(c.updated_at))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn channel(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<Option<Channel>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {CHANNEL_COLS} FROM notification_channels WHERE workspace_id = $1 AND user_id = $2 AND id = $3"
                    )))
                    .bind(ws)
                    .bind(user)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(channel_row)
                    .transpose()
                }

                async fn list_channels(&self, ws: WorkspaceId, user: UserId) -> Result<Vec<Channel>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {CHANNEL_COLS} FROM notification_channels WHERE workspace_id = $1 AND user_id = $2 ORDER BY created_at, id"
                    )))
                    .bind(ws)
                    .bind(user)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(channel_row)
                    .collect()
                }

                async fn update_channel(&self, c: &Channel) -> Result<()> {
                    sqlx::query(
                        "UPDATE notification_channels SET name = $1, config_sealed = $2, config_public = $3, enabled = $4, updated_at = $5 WHERE id = $6 AND workspace_id = $7",
                    )
                    .bind(&c.name)
                    .bind(&c.config_sealed)
                    .bind(json_text(&c.config_public))
                    .bind(c.enabled)
                    .bind($enc(c.updated_at))
                    .bind(c.id)
                    .bind(c.workspace_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn delete_channel(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<bool> {
                    let mut tx = self.pool.begin().await?;
                    // Logs and claims of the channel go with it (explicitly, like every
                    // user-owned table), and rules stop naming it.
                    sqlx::query("DELETE FROM notification_logs WHERE channel_id = $1 AND workspace_id = $2")
                        .bind(id)
                        .bind(ws)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM notification_dispatches WHERE channel_id = $1 AND channel_id IN (SELECT id FROM notification_channels WHERE workspace_id = $2)")
                        .bind(id)
                        .bind(ws)
                        .execute(&mut *tx)
                        .await?;
                    let n = sqlx::query("DELETE FROM notification_channels WHERE workspace_id = $1 AND user_id = $2 AND id = $3")
                        .bind(ws)
                        .bind(user)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await?;
                    Ok(n > 0)
                }

                async fn insert_rule(&self, r: &Rule) -> Result<()> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO notification_rules ({RULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                    )))
                    .bind(r.id)
                    .bind(r.workspace_id)
                    .bind(r.user_id)
                    .bind(json_text(&r.channel_ids))
                    .bind(json_text(&r.categories))
                    .bind(r.min_severity.as_str())
                    .bind(r.enabled)
                    .bind(r.quiet_hours.as_ref().map(|q| q.start.clone()))
                    .bind(r.quiet_hours.as_ref().map(|q| q.end.clone()))
                    .bind(r.hourly_cap.map(|c| c.min(i32::MAX as u32) as i32))
                    .bind($enc(r.created_at))
                    .bind($enc(r.updated_at))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn rule(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<Option<Rule>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {RULE_COLS} FROM notification_rules WHERE workspace_id = $1 AND user_id = $2 AND id = $3"
                    )))
                    .bind(ws)
                    .bind(user)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(rule_row)
                    .transpose()
                }

                async fn list_rules(&self, ws: WorkspaceId, user: UserId) -> Result<Vec<Rule>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {RULE_COLS} FROM notification_rules WHERE workspace_id = $1 AND user_id = $2 ORDER BY created_at, id"
                    )))
                    .bind(ws)
                    .bind(user)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(rule_row)
                    .collect()
                }

                async fn workspace_rules(&self, ws: WorkspaceId) -> Result<Vec<Rule>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {RULE_COLS} FROM notification_rules WHERE workspace_id = $1 AND enabled = $2 ORDER BY created_at, id"
                    )))
                    .bind(ws)
                    .bind(true)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(rule_row)
                    .collect()
                }

                async fn update_rule(&self, r: &Rule) -> Result<()> {
                    sqlx::query(
                        "UPDATE notification_rules SET channel_ids = $1, categories = $2, min_severity = $3, enabled = $4, quiet_start = $5, quiet_end = $6, hourly_cap = $7, updated_at = $8 WHERE id = $9 AND workspace_id = $10",
                    )
                    .bind(json_text(&r.channel_ids))
                    .bind(json_text(&r.categories))
                    .bind(r.min_severity.as_str())
                    .bind(r.enabled)
                    .bind(r.quiet_hours.as_ref().map(|q| q.start.clone()))
                    .bind(r.quiet_hours.as_ref().map(|q| q.end.clone()))
                    .bind(r.hourly_cap.map(|c| c.min(i32::MAX as u32) as i32))
                    .bind($enc(r.updated_at))
                    .bind(r.id)
                    .bind(r.workspace_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn delete_rule(&self, ws: WorkspaceId, user: UserId, id: Uuid) -> Result<bool> {
                    let n = sqlx::query("DELETE FROM notification_rules WHERE workspace_id = $1 AND user_id = $2 AND id = $3")
                        .bind(ws)
                        .bind(user)
                        .bind(id)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                    Ok(n > 0)
                }

                async fn claim_dispatch(&self, rule: Uuid, channel: Uuid, event: Uuid, at: DateTime<Utc>) -> Result<bool> {
                    let n = sqlx::query(
                        "INSERT INTO notification_dispatches (rule_id, channel_id, event_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(rule)
                    .bind(channel)
                    .bind(event)
                    .bind($enc(at))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(n == 1)
                }

                async fn events_dispatched_since(&self, rule: Uuid, since: DateTime<Utc>, except: Uuid) -> Result<u32> {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COUNT(DISTINCT event_id) FROM notification_dispatches WHERE rule_id = $1 AND created_at >= $2 AND event_id <> $3",
                    )
                    .bind(rule)
                    .bind($enc(since))
                    .bind(except)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(n.max(0) as u32)
                }

                async fn insert_log(&self, l: &LogEntry) -> Result<()> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO notification_logs ({LOG_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                    )))
                    .bind(l.id)
                    .bind(l.workspace_id)
                    .bind(l.user_id)
                    .bind(l.channel_id)
                    .bind(l.rule_id)
                    .bind(l.event_id)
                    .bind(&l.event_type)
                    .bind(&l.status)
                    .bind(l.response_code.map(i32::from))
                    .bind(&l.error)
                    .bind(l.latency_ms.min(i64::MAX as u64) as i64)
                    .bind(l.attempt.min(i32::MAX as u32) as i32)
                    .bind($enc(l.created_at))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn list_logs(&self, ws: WorkspaceId, user: UserId, q: &LogQuery, limit: Limit, after: Option<Cursor>) -> Result<Page<LogEntry>> {
                    let (at, id) = cursor_or_start(after);
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {LOG_COLS} FROM notification_logs
                         WHERE workspace_id = $1 AND user_id = $2 AND (created_at, id) > ($3, $4)
                           AND ($5 = '' OR channel_id = $6) AND ($7 = '' OR status = $7)
                         ORDER BY created_at, id LIMIT $8"
                    )))
                    .bind(ws)
                    .bind(user)
                    .bind($enc(at))
                    .bind(id)
                    .bind(if q.channel_id.is_some() { "x" } else { "" })
                    .bind(q.channel_id.unwrap_or_else(Uuid::nil))
                    .bind(q.status.clone().unwrap_or_default())
                    .bind(limit.0 as i64 + 1)
                    .fetch_all(&self.pool)
                    .await?;
                    let items = rows.iter().map(log_row).collect::<Result<Vec<_>>>()?;
                    Ok(Page::from_overfetch(items, limit, |l| Cursor { at: l.created_at, id: l.id }))
                }

                async fn insert_webhook(&self, w: &Webhook) -> Result<()> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO webhooks ({WEBHOOK_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    )))
                    .bind(w.id)
                    .bind(w.workspace_id)
                    .bind(&w.url)
                    .bind(json_text(&w.events))
                    .bind(&w.description)
                    .bind(&w.secret_sealed)
                    .bind(w.enabled)
                    .bind(w.failing_since.map($enc))
                    .bind(&w.disabled_reason)
                    .bind($enc(w.created_at))
                    .bind($enc(w.updated_at))
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn webhook(&self, ws: WorkspaceId, id: Uuid) -> Result<Option<Webhook>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE workspace_id = $1 AND id = $2")))
                        .bind(ws)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(webhook_row)
                        .transpose()
                }

                async fn webhook_by_id(&self, id: Uuid) -> Result<Option<Webhook>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE id = $1")))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(webhook_row)
                        .transpose()
                }

                async fn list_webhooks(&self, ws: WorkspaceId) -> Result<Vec<Webhook>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE workspace_id = $1 ORDER BY created_at, id")))
                        .bind(ws)
                        .fetch_all(&self.pool)
                        .await?
                        .iter()
                        .map(webhook_row)
                        .collect()
                }

                async fn update_webhook(&self, w: &Webhook) -> Result<()> {
                    sqlx::query(
                        "UPDATE webhooks SET url = $1, events = $2, description = $3, secret_sealed = $4, enabled = $5, failing_since = $6, disabled_reason = $7, updated_at = $8 WHERE id = $9 AND workspace_id = $10",
                    )
                    .bind(&w.url)
                    .bind(json_text(&w.events))
                    .bind(&w.description)
                    .bind(&w.secret_sealed)
                    .bind(w.enabled)
                    .bind(w.failing_since.map($enc))
                    .bind(&w.disabled_reason)
                    .bind($enc(w.updated_at))
                    .bind(w.id)
                    .bind(w.workspace_id)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn delete_webhook(&self, ws: WorkspaceId, id: Uuid) -> Result<bool> {
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND workspace_id = $2")
                        .bind(id)
                        .bind(ws)
                        .execute(&mut *tx)
                        .await?;
                    let n = sqlx::query("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2")
                        .bind(ws)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await?;
                    Ok(n > 0)
                }

                async fn enqueue_delivery(&self, d: &Delivery) -> Result<bool> {
                    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO webhook_deliveries ({DELIVERY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                         ON CONFLICT (webhook_id, event_id) DO NOTHING"
                    )))
                    .bind(d.id)
                    .bind(d.webhook_id)
                    .bind(d.workspace_id)
                    .bind(d.event_id)
                    .bind(&d.event_type)
                    .bind(&d.payload)
                    .bind(d.status.as_str())
                    .bind(d.attempts.min(i32::MAX as u32) as i32)
                    .bind(d.next_attempt_at.map($enc))
                    .bind(d.response_code.map(i32::from))
                    .bind(&d.error)
                    .bind($enc(d.created_at))
                    .bind($enc(d.updated_at))
                    .bind(d.delivered_at.map($enc))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(n == 1)
                }

                async fn due_deliveries(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Delivery>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1
                         ORDER BY next_attempt_at, id LIMIT $2"
                    )))
                    .bind($enc(now))
                    .bind(limit as i64)
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(delivery_row)
                    .collect()
                }

                async fn lease_delivery(&self, id: Uuid, due: DateTime<Utc>, until: DateTime<Utc>) -> Result<bool> {
                    let n = sqlx::query(
                        "UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3",
                    )
                    .bind($enc(until))
                    .bind(id)
                    .bind($enc(due))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    Ok(n == 1)
                }

                async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>> {
                    let v: Option<Option<$ts>> = sqlx::query_scalar(
                        "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'",
                    )
                    .fetch_optional(&self.pool)
                    .await?;
                    v.flatten().map($dec).transpose()
                }

                async fn update_delivery(&self, d: &Delivery) -> Result<()> {
                    sqlx::query(
                        "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, response_code = $4, error = $5, updated_at = $6, delivered_at = $7 WHERE id = $8",
                    )
                    .bind(d.status.as_str())
                    .bind(d.attempts.min(i32::MAX as u32) as i32)
                    .bind(d.next_attempt_at.map($enc))
                    .bind(d.response_code.map(i32::from))
                    .bind(&d.error)
                    .bind($enc(d.updated_at))
                    .bind(d.delivered_at.map($enc))
                    .bind(d.id)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn delivery(&self, ws: WorkspaceId, webhook: Uuid, id: Uuid) -> Result<Option<Delivery>> {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE workspace_id = $1 AND webhook_id = $2 AND id = $3"
                    )))
                    .bind(ws)
                    .bind(webhook)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(delivery_row)
                    .transpose()
                }

                async fn list_deliveries(&self, ws: WorkspaceId, webhook: Uuid, limit: Limit, after: Option<Cursor>) -> Result<Page<Delivery>> {
                    let (at, id) = cursor_or_start(after);
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {DELIVERY_COLS} FROM webhook_deliveries
                         WHERE workspace_id = $1 AND webhook_id = $2 AND (created_at, id) > ($3, $4)
                         ORDER BY created_at, id LIMIT $5"
                    )))
                    .bind(ws)
                    .bind(webhook)
                    .bind($enc(at))
                    .bind(id)
                    .bind(limit.0 as i64 + 1)
                    .fetch_all(&self.pool)
                    .await?;
                    let items = rows.iter().map(delivery_row).collect::<Result<Vec<_>>>()?;
                    Ok(Page::from_overfetch(items, limit, |d| Cursor { at: d.created_at, id: d.id }))
                }

                async fn fail_pending_deliveries(&self, webhook: Uuid, reason: &str, at: DateTime<Utc>) -> Result<u64> {
                    Ok(sqlx::query(
                        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, error = $1, updated_at = $2 WHERE webhook_id = $3 AND status = 'pending'",
                    )
                    .bind(reason)
                    .bind($enc(at))
                    .bind(webhook)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
                }
            }
        };
    };
}
