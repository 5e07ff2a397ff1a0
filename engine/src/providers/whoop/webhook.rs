//! WHOOP webhooks. There is no handshake (the URL is set in the developer dashboard). Each
//! POST is signed: `X-WHOOP-Signature` = base64(HMAC-SHA256(client secret, timestamp + raw
//! body)) with the timestamp (epoch milliseconds) from `X-WHOOP-Signature-Timestamp`; stale
//! timestamps are refused so a captured delivery cannot be replayed. Notifications only point
//! at a record, so they become targeted syncs of its data type.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::api::Notification;
use super::sync::{RECOVERY, SLEEP, WORKOUTS};
use crate::providers::{WebhookError, WebhookReply, WebhookRequest, WebhookTarget};

/// How far a signature timestamp may be from the time of receipt.
pub const MAX_SKEW: Duration = Duration::minutes(5);

pub fn handle(secret: Option<&str>, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
    let secret = secret.ok_or(WebhookError::Unsupported)?;
    verify(secret, req)?;
    let n: Notification =
        serde_json::from_slice(&req.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let user = match &n.user_id {
        serde_json::Value::Number(v) => v.to_string(),
        serde_json::Value::String(s) if !s.is_empty() => s.clone(),
        _ => return Err(WebhookError::Malformed("user_id is missing".into())),
    };
    // `*.updated` also announces new records; `*.deleted` cannot be mirrored from a listing,
    // but a re-read brings the remaining records (and any re-scored recovery) up to date.
    let data_type = match n.kind.split('.').next() {
        Some("workout") => Some(WORKOUTS),
        Some("sleep") => Some(SLEEP),
        Some("recovery") => Some(RECOVERY),
        _ => None,
    };
    tracing::debug!(kind = %n.kind, trace_id = ?n.trace_id, id = ?n.id, "whoop webhook");
    let targets = data_type
        .map(|t| WebhookTarget::Sync {
            provider_user_id: user,
            data_types: vec![t.to_string()],
            range: None,
        })
        .into_iter()
        .collect();
    Ok(WebhookReply::Accepted {
        status: 200,
        targets,
    })
}

fn verify(secret: &str, req: &WebhookRequest) -> Result<(), WebhookError> {
    let bad = |m: &str| WebhookError::BadSignature(m.to_string());
    let sig = req
        .header("x-whoop-signature")
        .ok_or_else(|| bad("X-WHOOP-Signature is missing"))?;
    let ts = req
        .header("x-whoop-signature-timestamp")
        .ok_or_else(|| bad("X-WHOOP-Signature-Timestamp is missing"))?;
    let millis: i64 = ts
        .trim()
        .parse()
        .map_err(|_| bad("the signature timestamp is not a number"))?;
    let sent = DateTime::<Utc>::from_timestamp_millis(millis)
        .ok_or_else(|| bad("the signature timestamp is out of range"))?;
    if (req.received_at - sent).abs() > MAX_SKEW {
        return Err(bad("the signature timestamp is stale"));
    }
    let expected = STANDARD
        .decode(sig.trim())
        .map_err(|_| bad("the signature is not base64"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(ts.trim().as_bytes());
    mac.update(&req.body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| bad("the signature does not match"))
}
