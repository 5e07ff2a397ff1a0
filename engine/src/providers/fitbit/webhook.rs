//! Fitbit subscriptions: the subscriber verification handshake and signed notifications.
//!
//! Verification: Fitbit calls `GET <url>?verify=<code>` twice, once with the subscriber's
//! verification code (answer 204) and once with a wrong one (answer 404).
//! Notifications: a JSON array, signed with `X-Fitbit-Signature` = Base64(HMAC-SHA1(key =
//! client secret + "&", raw body)). They only point at a collection and a date; the data is
//! fetched by a targeted sync.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::api::Notification;
use super::sync::{
    ACTIVITY, BODY, BREATHING_RATE, HEART_RATE, HRV, SLEEP, SPO2, TEMPERATURE, WORKOUTS,
};
use crate::providers::http::parse_json;
use crate::providers::{WebhookError, WebhookReply, WebhookRequest, WebhookTarget};

/// The data types a collection's notification makes stale. Fitbit has no collection for the
/// nightly series; they are computed from the night's sleep and change with it.
fn data_types(collection: &str) -> Option<&'static [&'static str]> {
    match collection {
        "activities" => Some(&[ACTIVITY, HEART_RATE, WORKOUTS]),
        "sleep" => Some(&[SLEEP, HRV, SPO2, BREATHING_RATE, TEMPERATURE]),
        "body" => Some(&[BODY]),
        _ => None,
    }
}

/// The UTC window that holds local `date` in any time zone (UTC−12 to UTC+14); the sync cuts
/// it to the user's local dates.
fn window(date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = date.and_time(chrono::NaiveTime::MIN).and_utc();
    (
        midnight - Duration::hours(14),
        midnight + Duration::days(1) + Duration::hours(12),
    )
}

/// Constant-time check of a verification code.
fn same_code(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn verify_signature(req: &WebhookRequest, client_secret: &str) -> Result<(), WebhookError> {
    let header = req
        .header("x-fitbit-signature")
        .ok_or_else(|| WebhookError::BadSignature("missing X-Fitbit-Signature".into()))?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| WebhookError::BadSignature("X-Fitbit-Signature is not Base64".into()))?;
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{client_secret}&").as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(&req.body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| WebhookError::BadSignature("X-Fitbit-Signature does not match".into()))
}

/// Reads one webhook call. `verify_code` is the subscriber's verification code and
/// `client_secret` the application's secret (the signing key).
pub fn handle(
    req: &WebhookRequest,
    verify_code: Option<&str>,
    client_secret: Option<&str>,
) -> Result<WebhookReply, WebhookError> {
    if req.method.eq_ignore_ascii_case("GET") {
        let expected = verify_code.ok_or(WebhookError::Unsupported)?;
        return match req.query("verify") {
            Some(code) if same_code(code, expected) => Ok(WebhookReply::Handshake {
                status: 204,
                content_type: "text/plain",
                body: String::new(),
            }),
            _ => Err(WebhookError::BadVerification { status: 404 }),
        };
    }
    if !req.method.eq_ignore_ascii_case("POST") {
        return Err(WebhookError::Malformed(format!(
            "method {} is not used by Fitbit subscriptions",
            req.method
        )));
    }
    let secret = client_secret.ok_or(WebhookError::Unsupported)?;
    verify_signature(req, secret)?;
    let notes: Vec<Notification> =
        parse_json(&req.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    Ok(WebhookReply::Accepted {
        status: 204,
        targets: targets(&notes),
    })
}

/// Notifications → targets, one per (user, date) with the union of the stale data types, and
/// one `Deauthorized` per user who revoked access. Collections VitaSync does not read (foods,
/// meals) are dropped.
pub fn targets(notes: &[Notification]) -> Vec<WebhookTarget> {
    let mut syncs: BTreeMap<(String, Option<NaiveDate>), Vec<String>> = BTreeMap::new();
    let mut revoked: Vec<String> = Vec::new();
    for n in notes {
        if n.owner_type.as_deref().is_some_and(|t| t != "user") {
            continue;
        }
        if n.collection_type == "userRevokedAccess" {
            if !revoked.contains(&n.owner_id) {
                revoked.push(n.owner_id.clone());
            }
            continue;
        }
        let Some(types) = data_types(&n.collection_type) else {
            continue;
        };
        let entry = syncs.entry((n.owner_id.clone(), n.date)).or_default();
        for t in types {
            if !entry.iter().any(|e| e == t) {
                entry.push((*t).to_string());
            }
        }
    }
    let mut out: Vec<WebhookTarget> = syncs
        .into_iter()
        .filter(|((owner, _), _)| !revoked.contains(owner))
        .map(|((owner, date), data_types)| WebhookTarget::Sync {
            provider_user_id: owner,
            data_types,
            range: date.map(window),
        })
        .collect();
    out.extend(
        revoked
            .into_iter()
            .map(|provider_user_id| WebhookTarget::Deauthorized { provider_user_id }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_holds_the_date_everywhere() {
        let d: NaiveDate = "2024-03-11".parse().unwrap();
        let (from, to) = window(d);
        for offset_h in -12..=14 {
            let off = offset_h * 60;
            assert!(crate::time::local_date(from, off) <= d);
            assert!(crate::time::local_date(to, off) >= d);
        }
    }

    #[test]
    fn codes_compare_exactly() {
        assert!(same_code("abc", "abc"));
        assert!(!same_code("abd", "abc"));
        assert!(!same_code("ab", "abc"));
    }
}
