//! A channel's typed configuration: parsed and validated per type (errors name
//! `config.<field>`), checked by the SSRF guard, sealed whole with the key ring, shown masked,
//! and sent to.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::event::Event;
use super::http::{self, Attempt, Headers};
use super::settings::NotifySettings;
use super::text::{mask_secret, mask_url};
use super::{discord, email, ntfy, push, signing, slack, ssrf, teams, webhook};
use crate::crypto::KeyRing;
use crate::error::{Error, Result};

/// The channel types, as the API names them.
pub const KINDS: &[&str] = &[
    "discord", "slack", "teams", "email", "push", "ntfy", "webhook",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "config", rename_all = "lowercase")]
pub enum ChannelConfig {
    Discord(discord::Config),
    Slack(slack::Config),
    Teams(teams::Config),
    Email(email::Config),
    Push(push::Config),
    Ntfy(ntfy::Config),
    Webhook(webhook::Config),
}

fn typed<T: serde::de::DeserializeOwned>(config: Value) -> Result<T> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." || path.is_empty() {
            // `missing field `x`` names the field itself.
            inner
                .split('`')
                .nth(1)
                .map(|f| format!("config.{f}"))
                .unwrap_or_else(|| "config".into())
        } else {
            format!("config.{path}")
        };
        Error::invalid(field, inner)
    })
}

impl ChannelConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Discord(_) => "discord",
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::Teams(_) => "teams",
            ChannelConfig::Email(_) => "email",
            ChannelConfig::Push(_) => "push",
            ChannelConfig::Ntfy(_) => "ntfy",
            ChannelConfig::Webhook(_) => "webhook",
        }
    }

    /// Parses and validates `config` for `kind` (no network). A new webhook channel gets a
    /// fresh signing secret; `keep_secret` carries an existing one over a config change.
    pub fn parse(kind: &str, config: Value, keep_secret: Option<&str>) -> Result<Self> {
        if !config.is_object() {
            return Err(Error::invalid("config", "must be an object"));
        }
        let parsed = match kind {
            "discord" => ChannelConfig::Discord(typed(config)?),
            "slack" => ChannelConfig::Slack(typed(config)?),
            "teams" => ChannelConfig::Teams(typed(config)?),
            "email" => ChannelConfig::Email(typed(config)?),
            "push" => ChannelConfig::Push(typed(config)?),
            "ntfy" => ChannelConfig::Ntfy(typed(config)?),
            "webhook" => {
                let requested: webhook::Requested = typed(config)?;
                ChannelConfig::Webhook(webhook::Config {
                    url: requested.url,
                    secret: keep_secret
                        .map(str::to_string)
                        .unwrap_or_else(signing::generate_secret),
                })
            }
            other => {
                return Err(Error::invalid(
                    "type",
                    format!(
                        "unknown channel type '{other}' (one of {})",
                        KINDS.join(", ")
                    ),
                ));
            }
        };
        for (field, url) in parsed.urls() {
            ssrf::parse_url(field, url)?;
        }
        match &parsed {
            ChannelConfig::Email(c) => {
                email::parse_mailbox(&c.to).map_err(|m| Error::invalid("config.to", m))?;
            }
            ChannelConfig::Push(c) => {
                push::validate(c).map_err(|(f, m)| Error::invalid(f, m))?;
            }
            ChannelConfig::Ntfy(c) if c.priority.is_some_and(|p| !(1..=5).contains(&p)) => {
                return Err(Error::invalid("config.priority", "must be 1 to 5"));
            }
            _ => {}
        }
        Ok(parsed)
    }

    /// The user-supplied URLs with the field each came from.
    pub fn urls(&self) -> Vec<(&'static str, &str)> {
        match self {
            ChannelConfig::Discord(c) => vec![("config.webhook_url", &c.webhook_url)],
            ChannelConfig::Slack(c) => vec![("config.webhook_url", &c.webhook_url)],
            ChannelConfig::Teams(c) => vec![("config.webhook_url", &c.webhook_url)],
            ChannelConfig::Push(c) => vec![("config.endpoint", &c.endpoint)],
            ChannelConfig::Ntfy(c) => vec![("config.topic_url", &c.topic_url)],
            ChannelConfig::Webhook(c) => vec![("config.url", &c.url)],
            ChannelConfig::Email(_) => vec![],
        }
    }

    /// Refuses private targets (unless allowed); errors name the field.
    pub async fn check_targets(&self, allow_private: bool) -> Result<()> {
        for (field, raw) in self.urls() {
            let url = ssrf::parse_url(field, raw)?;
            ssrf::check(field, &url, allow_private).await?;
        }
        Ok(())
    }

    /// The config as the API shows it: URLs and secrets masked.
    pub fn masked(&self) -> Value {
        match self {
            ChannelConfig::Discord(c) => json!({"webhook_url": mask_url(&c.webhook_url)}),
            ChannelConfig::Slack(c) => json!({"webhook_url": mask_url(&c.webhook_url)}),
            ChannelConfig::Teams(c) => json!({"webhook_url": mask_url(&c.webhook_url)}),
            ChannelConfig::Email(c) => json!({"to": c.to}),
            ChannelConfig::Push(c) => json!({
                "endpoint": mask_url(&c.endpoint),
                "p256dh": mask_secret(&c.p256dh),
                "auth": mask_secret(&c.auth),
            }),
            ChannelConfig::Ntfy(c) => json!({
                "topic_url": mask_url(&c.topic_url),
                "token": c.token.as_deref().map(mask_secret),
                "priority": c.priority,
            }),
            ChannelConfig::Webhook(c) => json!({
                "url": mask_url(&c.url),
                "secret": mask_secret(&c.secret),
            }),
        }
    }

    pub fn seal(&self, keys: &KeyRing) -> Result<String> {
        keys.encrypt_str(&serde_json::to_string(self).expect("plain data serialises"))
    }

    pub fn unseal(sealed: &str, keys: &KeyRing) -> Result<Self> {
        serde_json::from_str(&keys.decrypt_str(sealed)?)
            .map_err(|e| Error::internal(format!("sealed channel config is invalid: {e}")))
    }

    /// One attempt to deliver `event`.
    pub async fn send(&self, settings: &NotifySettings, event: &Event) -> Attempt {
        let timeout = settings.notify_timeout;
        let (url, headers, body) = match self {
            ChannelConfig::Email(c) => {
                return email::send(settings.smtp.as_ref(), c, event, timeout).await;
            }
            ChannelConfig::Discord(c) => (&c.webhook_url, json_headers(), discord::payload(event)),
            ChannelConfig::Slack(c) => (&c.webhook_url, json_headers(), slack::payload(event)),
            ChannelConfig::Teams(c) => (&c.webhook_url, json_headers(), teams::payload(event)),
            ChannelConfig::Ntfy(c) => {
                let (h, b) = ntfy::request(c, event);
                return post_to(&c.topic_url, settings, &h, b).await;
            }
            ChannelConfig::Webhook(c) => {
                let (h, b) = webhook::request(c, event);
                return post_to(&c.url, settings, &h, b).await;
            }
            ChannelConfig::Push(c) => {
                let Some(vapid) = &settings.vapid else {
                    return Attempt::refused(
                        "no VAPID key is configured (VITASYNC_VAPID_PRIVATE_KEY)",
                    );
                };
                return match push::request(c, vapid, event) {
                    Ok((h, b)) => post_to(&c.endpoint, settings, &h, b).await,
                    Err(e) => Attempt::refused(e),
                };
            }
        };
        post_to(url, settings, &headers, body.to_string().into_bytes()).await
    }
}

fn json_headers() -> Headers {
    vec![("Content-Type", "application/json".to_string())]
}

/// Guards `raw` again at send time (DNS may have changed) and posts.
async fn post_to(
    raw: &str,
    settings: &NotifySettings,
    headers: &[(&'static str, String)],
    body: Vec<u8>,
) -> Attempt {
    let target = match ssrf::parse_url("url", raw) {
        Ok(url) => ssrf::check("url", &url, settings.allow_private_targets).await,
        Err(e) => Err(e),
    };
    match target {
        Ok(t) => http::post(&t, headers, body, settings.notify_timeout).await,
        Err(e) => Attempt::refused(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyRing, decode_key, generate_key_b64};

    #[test]
    fn sealed_configs_round_trip_with_their_secret() {
        let keys = KeyRing::new(decode_key(&generate_key_b64()).unwrap(), &[]);
        for (kind, config) in [
            (
                "discord",
                json!({"webhook_url": "https://discord.test/api/webhooks/1/tok"}),
            ),
            (
                "ntfy",
                json!({"topic_url": "https://ntfy.test/t", "token": "tk", "priority": 4}),
            ),
            ("webhook", json!({"url": "https://hooks.test/in"})),
            ("email", json!({"to": "a@b.test"})),
        ] {
            let parsed = ChannelConfig::parse(kind, config, None).unwrap();
            let back = ChannelConfig::unseal(&parsed.seal(&keys).unwrap(), &keys).unwrap();
            assert_eq!(back, parsed);
            if let ChannelConfig::Webhook(c) = &back {
                assert!(c.secret.starts_with("whsec_"));
            }
        }
        let err = ChannelConfig::parse(
            "webhook",
            json!({"url": "https://h.test", "secret": "x"}),
            None,
        );
        assert!(err.is_err(), "a caller cannot choose the secret");
    }
}
