//! The notification side's settings, parsed once from the configuration.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike as _, ES256KeyPair};

use crate::config::{Config, parse_duration, parse_durations};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    Plain,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<(String, String)>,
    pub from: String,
}

/// The server's VAPID identity for Web Push.
#[derive(Clone)]
pub struct Vapid {
    pub key: Arc<ES256KeyPair>,
    pub subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid")
            .field("subject", &self.subject)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub allow_private_targets: bool,
    /// Pauses before each webhook retry; attempts = len + 1.
    pub webhook_retries: Vec<Duration>,
    pub webhook_timeout: Duration,
    pub webhook_disable_after: Duration,
    /// Pauses before each channel retry after a transient failure.
    pub notify_retries: Vec<Duration>,
    pub notify_timeout: Duration,
    pub smtp: Option<SmtpSettings>,
    pub vapid: Option<Vapid>,
}

fn cfg_err(name: &str) -> impl Fn(String) -> Error + '_ {
    move |e| Error::Config(format!("{name}: {e}"))
}

impl NotifySettings {
    pub fn from_config(c: &Config) -> Result<Self> {
        let security = match c.smtp_security.as_str() {
            "tls" => SmtpSecurity::Tls,
            "plain" => SmtpSecurity::Plain,
            _ => SmtpSecurity::StartTls,
        };
        let smtp = c.smtp_host.as_ref().map(|host| SmtpSettings {
            host: host.clone(),
            port: c.smtp_port.unwrap_or(match security {
                SmtpSecurity::StartTls => 587,
                SmtpSecurity::Tls => 465,
                SmtpSecurity::Plain => 25,
            }),
            security,
            credentials: c.smtp_username.clone().zip(c.smtp_password.clone()),
            from: c.smtp_from.clone(),
        });
        let vapid = c
            .vapid_private_key
            .as_deref()
            .map(|k| {
                let bytes = URL_SAFE_NO_PAD
                    .decode(k.trim().trim_end_matches('='))
                    .map_err(|_| Error::Config("vapid_private_key is not base64url".into()))?;
                let key = ES256KeyPair::from_bytes(&bytes).map_err(|_| {
                    Error::Config("vapid_private_key is not a P-256 private key".into())
                })?;
                Ok::<_, Error>(Vapid {
                    key: Arc::new(key),
                    subject: c.vapid_subject.clone(),
                })
            })
            .transpose()?;
        Ok(NotifySettings {
            allow_private_targets: c.allow_private_targets,
            webhook_retries: parse_durations(&c.webhook_retry_schedule)
                .map_err(cfg_err("webhook_retry_schedule"))?,
            webhook_timeout: parse_duration(&c.webhook_timeout)
                .map_err(cfg_err("webhook_timeout"))?,
            webhook_disable_after: parse_duration(&c.webhook_disable_after)
                .map_err(cfg_err("webhook_disable_after"))?,
            notify_retries: parse_durations(&c.notify_retry_schedule)
                .map_err(cfg_err("notify_retry_schedule"))?,
            notify_timeout: parse_duration(&c.notify_timeout).map_err(cfg_err("notify_timeout"))?,
            smtp,
            vapid,
        })
    }
}

/// A new VAPID key pair as (private, public) base64url strings; the public key is what a
/// browser's `pushManager.subscribe({applicationServerKey})` takes.
pub fn generate_vapid() -> (String, String) {
    let key = ES256KeyPair::generate();
    let public = key.public_key().public_key().to_bytes_uncompressed();
    (
        URL_SAFE_NO_PAD.encode(key.to_bytes()),
        URL_SAFE_NO_PAD.encode(public),
    )
}
