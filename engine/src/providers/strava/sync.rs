//! The Strava sync stream. Activities are listed by start time in windows of
//! [`WINDOW_DAYS`], oldest window first, paged with `page`/`per_page`; each activity is one
//! batch (its detail for `calories`, its heart-rate stream, its samples and event).
//!
//! The list's order is not part of the documented contract, so the cursor only passes an
//! activity once everything before it is known to be stored: per activity when the window's
//! list fits one page (it is sorted locally), else at the window's end. The application budget
//! (100 reads per 15 minutes) can stop a backfill part-way; the next run resumes from there.

use async_stream::try_stream;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt as _;

use super::api::{Activity, Streams};
use super::{ACTIVITIES, StravaProvider, mapping};
use crate::providers::{BatchStream, Cursors, ProviderError, SyncBatch, SyncRequest};

/// Re-listed on every incremental run: uploads arrive after the activity (a long ride is
/// uploaded hours after it started), so the last day is looked at again.
pub const OVERLAP: Duration = Duration::days(1);

/// Width of one listing window.
pub const WINDOW_DAYS: i64 = 30;

fn advance(cursors: &mut Cursors, to: DateTime<Utc>) {
    let e = cursors.entry(ACTIVITIES.to_string()).or_insert(to);
    if *e < to {
        *e = to;
    }
}

pub fn activities(p: &StravaProvider, req: SyncRequest) -> BatchStream<'_> {
    try_stream! {
        if !req.wants(ACTIVITIES) {
            return;
        }
        let token = req
            .access_token
            .clone()
            .ok_or_else(|| ProviderError::Unauthorized("no access token".into()))?;
        let http = &p.ctx.http;
        let budget = p.budget();
        let api = &p.endpoints.api_url;
        let list_url = format!("{api}/athlete/activities");
        let from = req.start_for(ACTIVITIES, OVERLAP);
        let to = req.end();
        let mut cursors = req.cursors.clone();
        let mut w_start = from;
        while w_start < to {
            let w_end = (w_start + Duration::days(WINDOW_DAYS)).min(to);
            let mut page = 1u32;
            loop {
                let query = [
                    // `after` is exclusive; one second earlier keeps an activity starting
                    // exactly on the boundary.
                    ("after", (w_start.timestamp() - 1).to_string()),
                    ("before", w_end.timestamp().to_string()),
                    ("page", page.to_string()),
                    ("per_page", p.page_size.to_string()),
                ];
                let mut list: Vec<Activity> =
                    http.get_json(&budget, &list_url, &token, &query).await?;
                let full = list.len() >= p.page_size as usize;
                let whole_window = page == 1 && !full;
                list.sort_by_key(|a| (a.start_date, a.id));
                for summary in list {
                    let Some(detail) = fetch_detail(p, &token, summary.id).await? else {
                        continue;
                    };
                    let streams = if detail.has_heartrate {
                        fetch_streams(p, &token, detail.id).await?
                    } else {
                        None
                    };
                    if whole_window {
                        advance(&mut cursors, summary.start_date.min(w_end));
                    }
                    yield SyncBatch {
                        samples: mapping::samples(&detail, streams.as_ref()),
                        events: vec![mapping::event(&detail)],
                        cursors: cursors.clone(),
                    };
                }
                if !full {
                    break;
                }
                page += 1;
            }
            advance(&mut cursors, w_end);
            yield SyncBatch {
                cursors: cursors.clone(),
                ..SyncBatch::default()
            };
            w_start = w_end;
        }
    }
    .boxed()
}

/// The detailed activity, or None when it was deleted since it was listed.
async fn fetch_detail(
    p: &StravaProvider,
    token: &str,
    id: u64,
) -> Result<Option<Activity>, ProviderError> {
    let url = format!("{}/activities/{id}", p.endpoints.api_url);
    let query = [("include_all_efforts", "false".to_string())];
    match p.ctx.http.get_json(&p.budget(), &url, token, &query).await {
        Ok(a) => Ok(Some(a)),
        Err(ProviderError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The time and heart-rate streams; None when the activity has none.
async fn fetch_streams(
    p: &StravaProvider,
    token: &str,
    id: u64,
) -> Result<Option<Streams>, ProviderError> {
    let url = format!("{}/activities/{id}/streams", p.endpoints.api_url);
    let query = [
        ("keys", "time,heartrate".to_string()),
        ("key_by_type", "true".to_string()),
    ];
    match p.ctx.http.get_json(&p.budget(), &url, token, &query).await {
        Ok(s) => Ok(Some(s)),
        Err(ProviderError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
