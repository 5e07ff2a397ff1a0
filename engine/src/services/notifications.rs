//! Notification use cases: a user's channels (validated per type, SSRF-checked, sealed,
//! returned masked) and rules, the attempt log, and dispatching one event to every matching
//! rule's channels — at most once per (rule, channel, event), in parallel, with a timeout and
//! retries with backoff for transient failures, every attempt logged.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::crypto::KeyRing;
use crate::domain::{User, new_id};
use crate::error::{Error, Result};
use crate::notify::channel::ChannelConfig;
use crate::notify::event::{Category, Event, EventType, Severity};
use crate::notify::http::Attempt;
use crate::notify::model::{Channel, LogEntry, QuietHours, Rule};
use crate::notify::rules;
use crate::notify::settings::NotifySettings;
use crate::services::ingest::truncate_to_micros;
use crate::store::DynStore;

/// What the notification machinery needs, shared by the API and the actors.
#[derive(Clone)]
pub struct NotifyEnv {
    pub store: DynStore,
    pub keys: Arc<KeyRing>,
    pub settings: Arc<NotifySettings>,
    /// Woken whenever a webhook delivery is queued, so the delivery actor need not poll.
    pub wake: Arc<tokio::sync::Notify>,
    /// Makes a rule's cap check and its claims one step, so events dispatched concurrently
    /// cannot both slip under the cap.
    pub claims: Arc<tokio::sync::Mutex<()>>,
}

impl NotifyEnv {
    pub fn new(store: DynStore, keys: Arc<KeyRing>, settings: NotifySettings) -> Self {
        NotifyEnv {
            store,
            keys,
            settings: Arc::new(settings),
            wake: Arc::new(tokio::sync::Notify::new()),
            claims: Arc::new(tokio::sync::Mutex::new(())),
        }
    }
}

fn now() -> DateTime<Utc> {
    truncate_to_micros(Utc::now())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// discord, slack, teams, email, push, ntfy or webhook.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// Per type: discord/slack/teams `{webhook_url}`, email `{to}`, push `{endpoint, p256dh,
    /// auth}`, ntfy `{topic_url, token?, priority?}`, webhook `{url}`.
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    pub name: Option<String>,
    /// Replaces the whole config (validated like on create; a webhook keeps its secret).
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    pub enabled: Option<bool>,
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("name", "must be 1 to 100 characters"));
    }
    Ok(name.to_string())
}

impl NotifyEnv {
    async fn prepare(
        &self,
        kind: &str,
        config: Value,
        keep: Option<&str>,
    ) -> Result<ChannelConfig> {
        let parsed = ChannelConfig::parse(kind, config, keep)?;
        parsed
            .check_targets(self.settings.allow_private_targets)
            .await?;
        Ok(parsed)
    }

    /// Creates a channel; for a webhook channel, also returns its signing secret (shown once).
    pub async fn create_channel(
        &self,
        user: &User,
        new: NewChannel,
    ) -> Result<(Channel, Option<String>)> {
        let name = check_name(&new.name)?;
        let config = self.prepare(&new.kind, new.config, None).await?;
        let secret = match &config {
            ChannelConfig::Webhook(c) => Some(c.secret.clone()),
            _ => None,
        };
        let at = now();
        let channel = Channel {
            id: new_id(),
            workspace_id: user.workspace_id,
            user_id: user.id,
            kind: config.kind().to_string(),
            name,
            config_sealed: config.seal(&self.keys)?,
            config_public: config.masked(),
            enabled: new.enabled,
            created_at: at,
            updated_at: at,
        };
        self.store.insert_channel(&channel).await?;
        Ok((channel, secret))
    }

    pub async fn channel(&self, user: &User, id: Uuid) -> Result<Channel> {
        self.store
            .channel(user.workspace_id, user.id, id)
            .await?
            .ok_or(Error::NotFound("channel"))
    }

    pub async fn update_channel(
        &self,
        user: &User,
        id: Uuid,
        patch: ChannelPatch,
    ) -> Result<Channel> {
        let mut channel = self.channel(user, id).await?;
        if let Some(name) = patch.name {
            channel.name = check_name(&name)?;
        }
        if let Some(config) = patch.config {
            let old = ChannelConfig::unseal(&channel.config_sealed, &self.keys)?;
            let keep = match &old {
                ChannelConfig::Webhook(c) => Some(c.secret.as_str()),
                _ => None,
            };
            let config = self.prepare(&channel.kind, config, keep).await?;
            channel.config_sealed = config.seal(&self.keys)?;
            channel.config_public = config.masked();
        }
        if let Some(enabled) = patch.enabled {
            channel.enabled = enabled;
        }
        channel.updated_at = now();
        self.store.update_channel(&channel).await?;
        Ok(channel)
    }

    pub async fn delete_channel(&self, user: &User, id: Uuid) -> Result<()> {
        if !self
            .store
            .delete_channel(user.workspace_id, user.id, id)
            .await?
        {
            return Err(Error::NotFound("channel"));
        }
        // Rules keep working with their other channels.
        for mut rule in self.store.list_rules(user.workspace_id, user.id).await? {
            if rule.channel_ids.contains(&id) {
                rule.channel_ids.retain(|c| *c != id);
                rule.updated_at = now();
                self.store.update_rule(&rule).await?;
            }
        }
        Ok(())
    }

    /// Sends a test message through the channel now (once, no retries) and logs it.
    pub async fn test_channel(&self, user: &User, id: Uuid) -> Result<LogEntry> {
        let channel = self.channel(user, id).await?;
        let at = now();
        let event = Event {
            id: new_id(),
            kind: EventType::Test,
            severity: Severity::Info,
            workspace_id: user.workspace_id,
            user_id: Some(user.id),
            created_at: at,
            title: "VitaSync test notification".into(),
            message: format!("This is a test of the channel '{}'.", channel.name),
            data: json!({ "channel_id": channel.id }),
        };
        let config = ChannelConfig::unseal(&channel.config_sealed, &self.keys)?;
        let attempt = config.send(&self.settings, &event).await;
        let log = log_entry(&channel, None, &event, &attempt, 1);
        self.store.insert_log(&log).await?;
        Ok(log)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub channel_ids: Vec<Uuid>,
    pub categories: Vec<Category>,
    pub min_severity: Severity,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub quiet_hours: Option<QuietHours>,
    pub hourly_cap: Option<u32>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    pub channel_ids: Option<Vec<Uuid>>,
    pub categories: Option<Vec<Category>>,
    pub min_severity: Option<Severity>,
    pub enabled: Option<bool>,
    /// null removes the quiet hours.
    #[serde(default, deserialize_with = "crate::domain::user::double_option")]
    #[schema(value_type = Option<QuietHours>)]
    pub quiet_hours: Option<Option<QuietHours>>,
    /// null removes the cap.
    #[serde(default, deserialize_with = "crate::domain::user::double_option")]
    #[schema(value_type = Option<u32>)]
    pub hourly_cap: Option<Option<u32>>,
}

impl NotifyEnv {
    async fn check_rule(&self, user: &User, rule: &Rule) -> Result<()> {
        if rule.channel_ids.is_empty() {
            return Err(Error::invalid(
                "channel_ids",
                "must name at least one channel",
            ));
        }
        let owned: Vec<Uuid> = self
            .store
            .list_channels(user.workspace_id, user.id)
            .await?
            .iter()
            .map(|c| c.id)
            .collect();
        if let Some((i, _)) = rule
            .channel_ids
            .iter()
            .enumerate()
            .find(|(_, c)| !owned.contains(c))
        {
            return Err(Error::invalid(
                format!("channel_ids[{i}]"),
                "is not one of this user's channels",
            ));
        }
        if rule.categories.is_empty() {
            return Err(Error::invalid(
                "categories",
                "must name at least one category",
            ));
        }
        if let Some(q) = &rule.quiet_hours {
            for (field, v) in [("quiet_hours.start", &q.start), ("quiet_hours.end", &q.end)] {
                if rules::parse_hhmm(v).is_none() {
                    return Err(Error::invalid(field, "must be a local time HH:MM"));
                }
            }
        }
        if rule.hourly_cap == Some(0) {
            return Err(Error::invalid(
                "hourly_cap",
                "must be at least 1 (or null for no cap)",
            ));
        }
        Ok(())
    }

    pub async fn create_rule(&self, user: &User, new: NewRule) -> Result<Rule> {
        let at = now();
        let mut channel_ids = new.channel_ids;
        channel_ids.dedup();
        let rule = Rule {
            id: new_id(),
            workspace_id: user.workspace_id,
            user_id: user.id,
            channel_ids,
            categories: new.categories,
            min_severity: new.min_severity,
            enabled: new.enabled,
            quiet_hours: new.quiet_hours,
            hourly_cap: new.hourly_cap,
            created_at: at,
            updated_at: at,
        };
        self.check_rule(user, &rule).await?;
        self.store.insert_rule(&rule).await?;
        Ok(rule)
    }

    pub async fn update_rule(&self, user: &User, id: Uuid, patch: RulePatch) -> Result<Rule> {
        let mut rule = self
            .store
            .rule(user.workspace_id, user.id, id)
            .await?
            .ok_or(Error::NotFound("rule"))?;
        if let Some(v) = patch.channel_ids {
            rule.channel_ids = v;
        }
        if let Some(v) = patch.categories {
            rule.categories = v;
        }
        if let Some(v) = patch.min_severity {
            rule.min_severity = v;
        }
        if let Some(v) = patch.enabled {
            rule.enabled = v;
        }
        if let Some(v) = patch.quiet_hours {
            rule.quiet_hours = v;
        }
        if let Some(v) = patch.hourly_cap {
            rule.hourly_cap = v;
        }
        self.check_rule(user, &rule).await?;
        rule.updated_at = now();
        self.store.update_rule(&rule).await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, user: &User, id: Uuid) -> Result<()> {
        if !self
            .store
            .delete_rule(user.workspace_id, user.id, id)
            .await?
        {
            return Err(Error::NotFound("rule"));
        }
        Ok(())
    }

    /// The rules an event is checked against: its user's, or every rule of the workspace for a
    /// workspace-level event (the caller reads them once for many events).
    pub async fn rules_for(&self, event: &Event) -> Result<Vec<Rule>> {
        match event.user_id {
            Some(user) => self.store.list_rules(event.workspace_id, user).await,
            None => self.store.workspace_rules(event.workspace_id).await,
        }
    }

    /// Sends `event` to the channels of every rule among `candidates` (from
    /// [`NotifyEnv::rules_for`]) that matches it. Returns the attempts logged.
    pub async fn dispatch_to(&self, event: &Event, candidates: &[Rule]) -> Result<usize> {
        let mut sends = Vec::new();
        for rule in candidates.iter().filter(|r| rules::matches(r, event)) {
            let user = match self.store.user(event.workspace_id, rule.user_id).await? {
                Some(u) => u,
                None => continue,
            };
            let at = now();
            if let Some(q) = &rule.quiet_hours
                && rules::is_quiet(q, user.timezone.as_deref(), at)
            {
                tracing::debug!(rule = %rule.id, event = %event.id, "quiet hours: not sent");
                continue;
            }
            let channels: Vec<Channel> = self
                .store
                .list_channels(event.workspace_id, user.id)
                .await?
                .into_iter()
                .filter(|c| c.enabled && rule.channel_ids.contains(&c.id))
                .collect();
            let guard = self.claims.lock().await;
            if let Some(cap) = rule.hourly_cap
                && self
                    .store
                    .events_dispatched_since(rule.id, at - chrono::Duration::hours(1), event.id)
                    .await?
                    >= cap
            {
                tracing::info!(rule = %rule.id, event = %event.id, "hourly cap reached: not sent");
                continue;
            }
            for channel in channels {
                if self
                    .store
                    .claim_dispatch(rule.id, channel.id, event.id, at)
                    .await?
                {
                    sends.push(self.deliver(rule.id, channel, event));
                }
            }
            drop(guard);
        }
        let results = futures::future::join_all(sends).await;
        let mut logged = 0;
        for r in results {
            logged += r?;
        }
        Ok(logged)
    }

    /// Attempts one channel until success, a permanent failure or the end of the retry
    /// schedule; logs each attempt. Returns the number of attempts.
    async fn deliver(&self, rule: Uuid, channel: Channel, event: &Event) -> Result<usize> {
        let config = match ChannelConfig::unseal(&channel.config_sealed, &self.keys) {
            Ok(c) => c,
            Err(e) => {
                let log = log_entry(
                    &channel,
                    Some(rule),
                    event,
                    &Attempt::refused(e.to_string()),
                    1,
                );
                self.store.insert_log(&log).await?;
                return Ok(1);
            }
        };
        let mut attempt_no = 1u32;
        loop {
            let attempt = config.send(&self.settings, event).await;
            self.store
                .insert_log(&log_entry(
                    &channel,
                    Some(rule),
                    event,
                    &attempt,
                    attempt_no,
                ))
                .await?;
            if attempt.succeeded() || !attempt.transient {
                return Ok(attempt_no as usize);
            }
            match rules::next_retry(&self.settings.notify_retries, attempt_no) {
                Some(pause) => tokio::time::sleep(pause).await,
                None => return Ok(attempt_no as usize),
            }
            attempt_no += 1;
        }
    }
}

fn log_entry(
    channel: &Channel,
    rule: Option<Uuid>,
    event: &Event,
    attempt: &Attempt,
    attempt_no: u32,
) -> LogEntry {
    LogEntry {
        id: new_id(),
        workspace_id: channel.workspace_id,
        user_id: channel.user_id,
        channel_id: channel.id,
        rule_id: rule,
        event_id: event.id,
        event_type: event.kind.as_str().to_string(),
        status: if attempt.succeeded() {
            "delivered"
        } else {
            "failed"
        }
        .to_string(),
        response_code: attempt.status,
        error: attempt.error.clone(),
        latency_ms: attempt.latency.as_millis() as u64,
        attempt: attempt_no,
        created_at: now(),
    }
}
