//! Outbound webhooks of a workspace: registration (SSRF-checked, a secret shown once), the
//! durable queue (a delivery row exists before its first attempt), one attempt with its
//! signature and bookkeeping (backoff, give-up, disabling an endpoint that keeps failing), and
//! redelivery.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::notifications::NotifyEnv;
use crate::domain::{WorkspaceId, new_id};
use crate::error::{Error, Result};
use crate::notify::event::{Event, EventType, Severity};
use crate::notify::model::{Delivery, DeliveryStatus, Webhook};
use crate::notify::{http, rules, signing, ssrf, webhook as signed};
use crate::services::ingest::truncate_to_micros;

fn now() -> DateTime<Utc> {
    truncate_to_micros(Utc::now())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    /// Event names to receive (e.g. `anomaly.detected`).
    pub events: Vec<EventType>,
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<EventType>>,
    #[serde(default, deserialize_with = "crate::domain::user::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Re-enabling a disabled endpoint clears its failure record.
    pub enabled: Option<bool>,
}

fn check_events(events: &[EventType]) -> Result<()> {
    if events.is_empty() {
        return Err(Error::invalid("events", "must name at least one event"));
    }
    if let Some(i) = events.iter().position(|e| *e == EventType::Test) {
        return Err(Error::invalid(
            format!("events[{i}]"),
            "'test' is sent by POST /v1/webhooks/{id}/test and cannot be subscribed to",
        ));
    }
    Ok(())
}

impl NotifyEnv {
    async fn guard_url(&self, raw: &str) -> Result<String> {
        let url = ssrf::parse_url("url", raw)?;
        ssrf::check("url", &url, self.settings.allow_private_targets).await?;
        Ok(url.to_string())
    }

    /// Registers a webhook; returns it with its signing secret (shown this once).
    pub async fn create_webhook(
        &self,
        ws: WorkspaceId,
        new: NewWebhook,
    ) -> Result<(Webhook, String)> {
        check_events(&new.events)?;
        let url = self.guard_url(&new.url).await?;
        let secret = signing::generate_secret();
        let at = now();
        let mut events = new.events;
        events.dedup();
        let hook = Webhook {
            id: new_id(),
            workspace_id: ws,
            url,
            events,
            description: new.description,
            secret_sealed: self.keys.encrypt_str(&secret)?,
            enabled: true,
            failing_since: None,
            disabled_reason: None,
            created_at: at,
            updated_at: at,
        };
        self.store.insert_webhook(&hook).await?;
        Ok((hook, secret))
    }

    pub async fn webhook(&self, ws: WorkspaceId, id: Uuid) -> Result<Webhook> {
        self.store
            .webhook(ws, id)
            .await?
            .ok_or(Error::NotFound("webhook"))
    }

    pub async fn update_webhook(
        &self,
        ws: WorkspaceId,
        id: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook> {
        let mut hook = self.webhook(ws, id).await?;
        if let Some(url) = patch.url {
            hook.url = self.guard_url(&url).await?;
        }
        if let Some(events) = patch.events {
            check_events(&events)?;
            hook.events = events;
        }
        if let Some(d) = patch.description {
            hook.description = d;
        }
        if let Some(enabled) = patch.enabled {
            if enabled && !hook.enabled {
                hook.failing_since = None;
                hook.disabled_reason = None;
            }
            hook.enabled = enabled;
        }
        hook.updated_at = now();
        self.store.update_webhook(&hook).await?;
        Ok(hook)
    }

    pub async fn delete_webhook(&self, ws: WorkspaceId, id: Uuid) -> Result<()> {
        if !self.store.delete_webhook(ws, id).await? {
            return Err(Error::NotFound("webhook"));
        }
        Ok(())
    }

    /// A new secret; the old one stops signing at once.
    pub async fn rotate_webhook_secret(
        &self,
        ws: WorkspaceId,
        id: Uuid,
    ) -> Result<(Webhook, String)> {
        let mut hook = self.webhook(ws, id).await?;
        let secret = signing::generate_secret();
        hook.secret_sealed = self.keys.encrypt_str(&secret)?;
        hook.updated_at = now();
        self.store.update_webhook(&hook).await?;
        Ok((hook, secret))
    }

    fn new_delivery(hook: &Webhook, event: &Event) -> Delivery {
        let at = now();
        Delivery {
            id: new_id(),
            webhook_id: hook.id,
            workspace_id: hook.workspace_id,
            event_id: event.id,
            event_type: event.kind.as_str().to_string(),
            payload: event.envelope().to_string(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(at),
            response_code: None,
            error: None,
            created_at: at,
            updated_at: at,
            delivered_at: None,
        }
    }

    /// Queues `event` for every enabled webhook among `hooks` (its workspace's, read by the
    /// caller, which reads them once for many events) that subscribes to it, once per webhook
    /// and event however often this is called. Returns how many were queued.
    pub async fn enqueue_to(&self, hooks: &[Webhook], event: &Event) -> Result<usize> {
        let mut queued = 0;
        for hook in hooks {
            if hook.wants(event.kind) {
                queued += usize::from(
                    self.store
                        .enqueue_delivery(&Self::new_delivery(hook, event))
                        .await?,
                );
            }
        }
        if queued > 0 {
            self.wake.notify_one();
        }
        Ok(queued)
    }

    /// Queues a `test` event for one webhook.
    pub async fn test_webhook(&self, ws: WorkspaceId, id: Uuid) -> Result<Delivery> {
        let hook = self.webhook(ws, id).await?;
        let event = Event {
            id: new_id(),
            kind: EventType::Test,
            severity: Severity::Info,
            workspace_id: ws,
            user_id: None,
            created_at: now(),
            title: "VitaSync test event".into(),
            message: "A test delivery.".into(),
            data: json!({ "webhook_id": hook.id }),
        };
        let d = Self::new_delivery(&hook, &event);
        self.store.enqueue_delivery(&d).await?;
        self.wake.notify_one();
        Ok(d)
    }

    /// Sends a delivery again (the same event id, so receivers can deduplicate), from a fresh
    /// attempt count.
    pub async fn redeliver(&self, ws: WorkspaceId, webhook: Uuid, id: Uuid) -> Result<Delivery> {
        self.webhook(ws, webhook).await?;
        let mut d = self
            .store
            .delivery(ws, webhook, id)
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        d.status = DeliveryStatus::Pending;
        d.attempts = 0;
        d.next_attempt_at = Some(now());
        d.updated_at = now();
        self.store.update_delivery(&d).await?;
        self.wake.notify_one();
        Ok(d)
    }

    /// Makes one attempt of a due delivery and records the outcome. Returns the webhook when
    /// this failure disabled it (the caller tells the workspace).
    pub async fn attempt_delivery(&self, mut d: Delivery) -> Result<Option<Webhook>> {
        let at = now();
        let Some(mut hook) = self.store.webhook_by_id(d.webhook_id).await? else {
            return Ok(None);
        };
        if !hook.enabled {
            d.status = DeliveryStatus::Failed;
            d.next_attempt_at = None;
            d.error = Some("the webhook is disabled".into());
            d.updated_at = at;
            self.store.update_delivery(&d).await?;
            return Ok(None);
        }
        let attempt = match ssrf::parse_url("url", &hook.url) {
            Ok(url) => match ssrf::check("url", &url, self.settings.allow_private_targets).await {
                Ok(target) => {
                    let secret = self.keys.decrypt_str(&hook.secret_sealed)?;
                    let body = d.payload.clone().into_bytes();
                    let headers = signed::signed_headers(&secret, &d.event_type, d.event_id, &body);
                    http::post(&target, &headers, body, self.settings.webhook_timeout).await
                }
                Err(e) => http::Attempt::refused(e.to_string()),
            },
            Err(e) => http::Attempt::refused(e.to_string()),
        };
        d.attempts += 1;
        d.response_code = attempt.status;
        d.updated_at = now();
        if attempt.succeeded() {
            d.status = DeliveryStatus::Succeeded;
            d.error = None;
            d.next_attempt_at = None;
            d.delivered_at = Some(d.updated_at);
            self.store.update_delivery(&d).await?;
            if hook.failing_since.is_some() {
                hook.failing_since = None;
                hook.updated_at = d.updated_at;
                self.store.update_webhook(&hook).await?;
            }
            return Ok(None);
        }
        d.error = attempt.error;
        // Any non-2xx is retried: the receiver may be mid-deploy; the schedule bounds it.
        match rules::next_retry(&self.settings.webhook_retries, d.attempts) {
            Some(pause) => {
                d.next_attempt_at = Some(
                    d.updated_at
                        + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::MAX),
                );
            }
            None => {
                d.status = DeliveryStatus::Failed;
                d.next_attempt_at = None;
            }
        }
        self.store.update_delivery(&d).await?;
        let since = *hook.failing_since.get_or_insert(at);
        let failing_for = (d.updated_at - since).to_std().unwrap_or_default();
        if failing_for >= self.settings.webhook_disable_after {
            let reason = format!(
                "deliveries failed for {} s (last error: {})",
                failing_for.as_secs(),
                d.error.as_deref().unwrap_or("unknown")
            );
            hook.enabled = false;
            hook.disabled_reason = Some(reason.clone());
            hook.updated_at = d.updated_at;
            self.store.update_webhook(&hook).await?;
            self.store
                .fail_pending_deliveries(hook.id, "the webhook was disabled", d.updated_at)
                .await?;
            tracing::warn!(webhook = %hook.id, %reason, "webhook disabled");
            return Ok(Some(hook));
        }
        self.store.update_webhook(&hook).await?;
        Ok(None)
    }
}

/// The `system` event that tells a workspace one of its webhooks was disabled.
pub fn disabled_event(hook: &Webhook) -> Event {
    Event {
        id: Event::derive_id(
            EventType::WebhookDisabled,
            &format!("{}|{}", hook.id, hook.updated_at.timestamp_micros()),
        ),
        kind: EventType::WebhookDisabled,
        severity: Severity::Critical,
        workspace_id: hook.workspace_id,
        user_id: None,
        created_at: now(),
        title: "A webhook was disabled".into(),
        message: format!(
            "The webhook to {} was disabled: {}. Fix the endpoint and re-enable it.",
            hook.url,
            hook.disabled_reason.as_deref().unwrap_or("it kept failing")
        ),
        data: json!({ "webhook_id": hook.id, "url": hook.url, "reason": hook.disabled_reason }),
    }
}
