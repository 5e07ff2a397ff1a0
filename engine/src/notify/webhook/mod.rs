//! A user's own webhook: the same signed envelope and headers as the workspace's outbound
//! webhooks, with the channel's generated secret.

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::signing;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub url: String,
    /// Generated on create; never accepted from the caller.
    #[serde(default, skip_deserializing)]
    pub secret: String,
}

/// The headers every signed delivery carries, for `body` signed now.
pub fn signed_headers(
    secret: &str,
    event_type: &str,
    event_id: uuid::Uuid,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let t = chrono::Utc::now().timestamp();
    vec![
        ("Content-Type", "application/json".to_string()),
        ("VitaSync-Event", event_type.to_string()),
        ("VitaSync-Delivery", event_id.to_string()),
        ("VitaSync-Signature", signing::signature_header(secret, t, body)),
    ]
}

pub fn request(config: &Config, event: &Event) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = event.envelope().to_string().into_bytes();
    (
        signed_headers(&config.secret, event.kind.as_str(), event.id, &body),
        body,
    )
}
