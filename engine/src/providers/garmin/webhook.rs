//! Garmin notifications. Garmin signs nothing: a notification is genuine when its
//! `garmin-client-id` header carries this deployment's consumer key, and its data is only
//! used for user ids that belong to a connection. One POST body holds lists keyed by summary
//! type; each list is either pushed summaries (the full data) or pings (a `callbackURL` with
//! the upload window to pull). Garmin wants exactly 200, fast, and never a held request.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::GarminProvider;
use super::api;
use super::mapping::MapContext;
use super::summaries::{self, SummaryType};
use crate::providers::{SyncBatch, WebhookError, WebhookReply, WebhookRequest, WebhookTarget};

/// Compares in time independent of where the inputs differ (and of their lengths, by comparing
/// digests).
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

fn malformed(key: &str, e: impl std::fmt::Display) -> WebhookError {
    WebhookError::Malformed(format!("{key}: {e}"))
}

/// The upload window a ping's callback URL names; None when it names none (the sync then
/// runs from the cursors).
fn upload_window(callback: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let url = url::Url::parse(callback).ok()?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.trim().parse::<i64>().ok())
            .and_then(|s| DateTime::from_timestamp(s, 0))
    };
    let (from, to) = (
        param("uploadStartTimeInSeconds")?,
        param("uploadEndTimeInSeconds")?,
    );
    (from <= to).then_some((from, to))
}

fn pings(ty: &SummaryType, items: serde_json::Value) -> Result<Vec<WebhookTarget>, WebhookError> {
    let pings: Vec<api::Ping> =
        serde_json::from_value(items).map_err(|e| malformed(ty.notification_key, e))?;
    Ok(pings
        .into_iter()
        .map(|p| WebhookTarget::Sync {
            provider_user_id: p.user_id,
            data_types: vec![ty.name.to_string()],
            range: upload_window(&p.callback_url),
        })
        .collect())
}

fn pushes(
    p: &GarminProvider,
    ty: &SummaryType,
    items: serde_json::Value,
) -> Result<Vec<WebhookTarget>, WebhookError> {
    // The receiving side does not know whose data it is before reading it, so there is no
    // user zone here; every pushed type carries its own offset except user metrics, whose
    // calendar date stays right either way.
    let cx = MapContext {
        provider: p.info.id,
        user_tz: None,
    };
    let per_user = summaries::map_pushed(ty.kind, items, &cx)
        .map_err(|e| malformed(ty.notification_key, e))?;
    Ok(per_user
        .into_iter()
        .map(|(user, mapped)| WebhookTarget::Data {
            provider_user_id: user,
            // Pushed data moves no cursor: the pull cursors are upload-time positions, and a
            // push says nothing about which uploads are complete.
            batch: SyncBatch {
                samples: mapped.samples,
                events: mapped.events,
                cursors: Default::default(),
            },
        })
        .collect())
}

pub fn handle(p: &GarminProvider, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
    let Some(expected) = p.settings.client_id.as_deref() else {
        return Err(WebhookError::Unsupported);
    };
    let got = req
        .header("garmin-client-id")
        .ok_or_else(|| WebhookError::BadSignature("missing garmin-client-id header".into()))?;
    if !same_secret(got.trim(), expected) {
        return Err(WebhookError::BadSignature(
            "garmin-client-id is not this application's".into(),
        ));
    }
    let body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&req.body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let mut targets = Vec::new();
    for (key, items) in body {
        match key.as_str() {
            "deregistrations" => {
                let notes: Vec<api::UserNotice> =
                    serde_json::from_value(items).map_err(|e| malformed(&key, e))?;
                targets.extend(notes.into_iter().map(|n| WebhookTarget::Deauthorized {
                    provider_user_id: n.user_id,
                }));
            }
            _ => {
                // Types VitaSync does not read (epochs, activity details and files, health
                // snapshots, permission changes — which surface as 412s on the next sync) are
                // acknowledged so Garmin does not retry them.
                let Some(ty) = summaries::by_notification_key(&key) else {
                    continue;
                };
                let list = items
                    .as_array()
                    .ok_or_else(|| malformed(&key, "expected a list"))?;
                let is_ping = list.iter().any(|i| i.get("callbackURL").is_some());
                targets.extend(if is_ping {
                    pings(ty, items)?
                } else {
                    pushes(p, ty, items)?
                });
            }
        }
    }
    Ok(WebhookReply::Accepted {
        status: 200,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_window_from_the_callback_url() {
        let w = upload_window(
            "https://apis.garmin.com/wellness-api/rest/epochs?uploadStartTimeInSeconds=1444937651&uploadEndTimeInSeconds=1444937902&token=XXX",
        )
        .unwrap();
        assert_eq!(
            (w.0.timestamp(), w.1.timestamp()),
            (1_444_937_651, 1_444_937_902)
        );
        assert!(upload_window("https://apis.garmin.com/x?token=1").is_none());
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
