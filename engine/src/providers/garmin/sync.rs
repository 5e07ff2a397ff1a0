//! The Garmin pull sync. Garmin indexes pulls by *upload* time (when the device synced), in
//! windows of at most 24 h, and answers each window with a JSON array — there is no paging
//! inside a window. So each data type walks its own upload-time cursor in 24 h windows and
//! yields one batch per (type, window), carrying the cursors that window completes.
//!
//! History from before the connection is not served by the pull endpoints; on a first
//! connection the sync asks Garmin for a backfill instead, which Garmin delivers later through
//! the push/ping notifications.

use async_stream::try_stream;
use chrono::{DateTime, Duration, Utc};

use super::GarminProvider;
use super::mapping::MapContext;
use super::summaries::{self, SummaryType, TYPES};
use crate::providers::{BatchStream, ProviderError, SyncBatch, SyncRequest};

/// Garmin's longest pull window.
pub const PULL_WINDOW: Duration = Duration::hours(24);

/// Re-read of the last hour of uploads on every incremental sync. Windows are by upload time,
/// so a partial day that grows arrives again in a later upload anyway; the overlap only covers
/// summaries that became visible a little after their upload time.
pub const OVERLAP: Duration = Duration::hours(1);

/// The status of a request the provider refused (ProviderHttp keeps it at the start of the
/// message), for the statuses Garmin gives their own meaning.
fn rejected_status(e: &ProviderError) -> Option<u16> {
    match e {
        ProviderError::Rejected(detail) => detail.get(..3)?.parse().ok(),
        _ => None,
    }
}

/// 412: the user has not shared this summary type. Not an error of the connection: the type
/// is skipped and the others are synced.
const PERMISSION_MISSING: u16 = 412;
/// 409: this backfill was requested before (a retried first sync).
const DUPLICATE_BACKFILL: u16 = 409;

enum Backfill {
    Requested,
    NotPermitted,
}

/// Asks Garmin to deliver `[from, to)` of `ty` by notification, in the windows it accepts.
async fn request_backfill(
    p: &GarminProvider,
    token: &str,
    ty: &SummaryType,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Backfill, ProviderError> {
    let Some((path, max_days)) = ty.backfill else {
        return Ok(Backfill::Requested);
    };
    let url = format!("{}/backfill/{path}", p.endpoints.api_url);
    let mut a = from;
    while a < to {
        let b = (a + Duration::days(max_days)).min(to);
        let query = [
            ("summaryStartTimeInSeconds", a.timestamp()),
            ("summaryEndTimeInSeconds", b.timestamp()),
        ];
        let sent = p
            .http
            .send(&p.budget(), |c| {
                c.get(&url).bearer_auth(token).query(&query)
            })
            .await;
        match sent {
            Ok(_) => {}
            Err(e) if rejected_status(&e) == Some(DUPLICATE_BACKFILL) => {}
            Err(e) if rejected_status(&e) == Some(PERMISSION_MISSING) => {
                return Ok(Backfill::NotPermitted);
            }
            Err(e) => return Err(e),
        }
        a = b;
    }
    Ok(Backfill::Requested)
}

pub fn stream(p: &GarminProvider, req: SyncRequest) -> BatchStream<'_> {
    let s = try_stream! {
        let token = req
            .access_token
            .clone()
            .ok_or_else(|| ProviderError::Unauthorized("no access token".into()))?;
        let cx = MapContext {
            provider: p.info.id,
            user_tz: req.user.timezone,
        };
        let end = req.end();
        let mut cursors = req.cursors.clone();
        'types: for ty in TYPES {
            if !req.wants(ty.name) {
                continue;
            }
            let existing = cursors.get(ty.name).copied();
            let first = existing.is_none() && req.range.is_none();
            let mut start = req.start_for(ty.name, OVERLAP);
            if first {
                let from = req.now - Duration::days(i64::from(req.backfill_days));
                if let Backfill::NotPermitted = request_backfill(p, &token, ty, from, req.now).await? {
                    continue 'types;
                }
                // Uploads from before the connection are not pullable; history comes through
                // the backfill just requested.
                start = start.max(req.connected_at - OVERLAP);
            }
            // How far this type is complete. A manual or notified window only extends it when
            // it joins onto it: a window further ahead says nothing about the gap before it.
            let mut reached = if req.range.is_none() {
                Some(existing.unwrap_or(start))
            } else {
                existing
            };
            let url = format!("{}/{}", p.endpoints.api_url, ty.name);
            let mut a = start;
            while a < end {
                let b = (a + PULL_WINDOW).min(end);
                let query = [
                    ("uploadStartTimeInSeconds", a.timestamp()),
                    ("uploadEndTimeInSeconds", b.timestamp()),
                ];
                let sent = p
                    .http
                    .send(&p.budget(), |c| c.get(&url).bearer_auth(&token).query(&query))
                    .await;
                let resp = match sent {
                    Err(e) if rejected_status(&e) == Some(PERMISSION_MISSING) => {
                        tracing::debug!(data_type = ty.name, "summary type not shared by the user");
                        continue 'types;
                    }
                    other => other?,
                };
                let mapped = summaries::map_pulled(ty.kind, &resp.body, &cx)?;
                if let Some(r) = reached.filter(|r| a <= *r) {
                    let r = r.max(b);
                    reached = Some(r);
                    cursors.insert(ty.name.to_string(), r);
                }
                yield SyncBatch {
                    samples: mapped.samples,
                    events: mapped.events,
                    cursors: cursors.clone(),
                };
                a = b;
            }
            if first && !cursors.contains_key(ty.name) {
                // Nothing to pull yet: still record the connection's start so the backfill is
                // not requested again.
                if let Some(r) = reached {
                    cursors.insert(ty.name.to_string(), r);
                    yield SyncBatch {
                        cursors: cursors.clone(),
                        ..SyncBatch::default()
                    };
                }
            }
        }
    };
    Box::pin(s)
}
