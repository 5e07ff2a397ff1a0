//! Provider webhooks: the request as received, and what a provider makes of it. Providers
//! verify their own signature schemes and parse their own payloads; the API maps the
//! resulting targets to connections and the actors act on them.

use chrono::{DateTime, Utc};

use super::SyncBatch;

/// An incoming webhook call, transport-neutral.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: String,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

impl WebhookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer and what to do.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookReply {
    /// A subscription handshake: answer with this status, content type and body.
    Handshake {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// A verified notification: answer with this status (2xx), then act on the targets.
    Accepted {
        status: u16,
        targets: Vec<WebhookTarget>,
    },
}

/// One thing a notification asks for, addressed by the provider's account id.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookTarget {
    /// Fetch these data types (empty = all) for the account, optionally for a window.
    Sync {
        provider_user_id: String,
        data_types: Vec<String>,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    },
    /// The payload carried the data itself (push delivery): write it directly.
    Data {
        provider_user_id: String,
        batch: SyncBatch,
    },
    /// The user revoked access at the provider.
    Deauthorized { provider_user_id: String },
}

/// Why a webhook call was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    /// Missing or wrong signature, or a stale timestamp → 401.
    #[error("invalid webhook signature: {0}")]
    BadSignature(String),
    /// The handshake's verification code is wrong → 404 (Fitbit's contract) or 403.
    #[error("wrong verification code")]
    BadVerification { status: u16 },
    /// The body cannot be read → 400.
    #[error("malformed webhook payload: {0}")]
    Malformed(String),
    /// The provider has no webhooks or no webhook secret is configured → 404.
    #[error("webhooks are not set up for this provider")]
    Unsupported,
}
