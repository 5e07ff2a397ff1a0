//! Web Push (RFC 8030) to a browser's PushSubscription: the payload is encrypted with
//! aes128gcm (RFC 8291) for the subscription's keys and the request carries a VAPID (RFC 8292)
//! authorisation signed with the server's key. Pure RustCrypto, no OpenSSL.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use web_push_native::{Auth, WebPushBuilder, p256};

use super::event::Event;
use super::http::Headers;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub endpoint: String,
    /// The subscription's P-256 public key, base64url.
    pub p256dh: String,
    /// The subscription's 16-byte authentication secret, base64url.
    pub auth: String,
}

fn b64(s: &str) -> Result<Vec<u8>, ()> {
    URL_SAFE_NO_PAD
        .decode(s.trim().trim_end_matches('='))
        .map_err(|_| ())
}

/// Checks the keys; errors name the field.
pub fn validate(c: &Config) -> Result<(), (&'static str, String)> {
    let key = b64(&c.p256dh).map_err(|_| ("config.p256dh", "is not base64url".to_string()))?;
    p256::PublicKey::from_sec1_bytes(&key)
        .map_err(|_| ("config.p256dh", "is not a P-256 public key".to_string()))?;
    let auth = b64(&c.auth).map_err(|_| ("config.auth", "is not base64url".to_string()))?;
    if auth.len() != 16 {
        return Err(("config.auth", "must decode to 16 bytes".to_string()));
    }
    Ok(())
}

/// The notification's JSON as the service worker receives it.
pub fn body(event: &Event) -> Vec<u8> {
    json!({
        "id": event.id,
        "type": event.kind.as_str(),
        "title": event.title,
        "body": event.message,
        "severity": event.severity.as_str(),
        "category": event.category().as_str(),
    })
    .to_string()
    .into_bytes()
}

/// The encrypted, VAPID-signed request as (headers, body).
pub fn request(
    c: &Config,
    vapid: &super::settings::Vapid,
    event: &Event,
) -> Result<(Headers, Vec<u8>), String> {
    let key = b64(&c.p256dh)
        .ok()
        .and_then(|k| p256::PublicKey::from_sec1_bytes(&k).ok())
        .ok_or("the subscription's p256dh key is invalid")?;
    let auth = b64(&c.auth)
        .ok()
        .filter(|a| a.len() == 16)
        .ok_or("the subscription's auth secret is invalid")?;
    let endpoint = c.endpoint.parse().map_err(|e| format!("endpoint: {e}"))?;
    let req = WebPushBuilder::new(endpoint, key, Auth::clone_from_slice(&auth))
        .with_vapid(&vapid.key, &vapid.subject)
        .build(body(event))
        .map_err(|e| format!("encrypting the push message: {e}"))?;
    let headers = req
        .headers()
        .iter()
        .filter(|(name, _)| *name != http::header::CONTENT_LENGTH)
        .filter_map(|(name, value)| {
            let name: &'static str = match name.as_str() {
                "ttl" => "TTL",
                "content-encoding" => "Content-Encoding",
                "content-type" => "Content-Type",
                "authorization" => "Authorization",
                _ => return None,
            };
            Some((name, value.to_str().ok()?.to_string()))
        })
        .collect();
    Ok((headers, req.into_body()))
}
