//! A user's own webhook: the same signed envelope and headers as the workspace's outbound
//! webhooks, with the channel's generated secret.

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::http::Headers;
use super::signing;

/// What a caller may set: the secret is always generated.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requested {
    pub url: String,
}

/// The stored config, with its generated secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub url: String,
    pub secret: String,
}

/// The headers every signed delivery carries, for `body` signed now.
pub fn signed_headers(
    secret: &str,
    event_type: &str,
    event_id: uuid::Uuid,
    body: &[u8],
) -> Headers {
    let t = chrono::Utc::now().timestamp();
    vec![
        ("Content-Type", "application/json".to_string()),
        ("VitaSync-Event", event_type.to_string()),
        ("VitaSync-Delivery", event_id.to_string()),
        (
            "VitaSync-Signature",
            signing::signature_header(secret, t, body),
        ),
    ]
}

pub fn request(config: &Config, event: &Event) -> (Headers, Vec<u8>) {
    let body = event.envelope().to_string().into_bytes();
    (
        signed_headers(&config.secret, event.kind.as_str(), event.id, &body),
        body,
    )
}
