//! The WHOOP sync stream. Each collection is read in windows of [`WINDOW_DAYS`] (oldest
//! window first), each window paged with `nextToken` at 25 records a page; a batch per page.
//!
//! Pages come newest first, so a data type's cursor only moves when a window's last page is
//! in, and never past a record that can still change: the current cycle (no `end`) and anything
//! `PENDING_SCORE` hold the cursor at their start, so the next run fetches them again until
//! they are final. Sleep and recovery are read together: a recovery is placed at the end of
//! the sleep it was computed from, found among the same window's sleeps.

use std::collections::HashMap;

use async_stream::try_stream;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::StreamExt as _;
use serde::de::DeserializeOwned;

use super::api::{Body, Cycle, PENDING, Page, Recovery, Sleep, Workout};
use super::{WhoopProvider, mapping};
use crate::providers::{BatchStream, Cursors, ProviderError, SyncBatch, SyncRequest};

pub const CYCLES: &str = "cycles";
pub const RECOVERY: &str = "recovery";
pub const SLEEP: &str = "sleep";
pub const WORKOUTS: &str = "workouts";
pub const BODY: &str = "body";

/// Records are re-read this far back on every incremental run: scores and late uploads from a
/// strap that was offline land on records that already started.
pub const OVERLAP: Duration = Duration::days(1);
pub const WINDOW_DAYS: i64 = 30;
/// WHOOP's maximum page size.
pub const PAGE_LIMIT: u32 = 25;

fn advance(cursors: &mut Cursors, key: &str, to: DateTime<Utc>) {
    let e = cursors.entry(key.to_string()).or_insert(to);
    if *e < to {
        *e = to;
    }
}

fn hold_at(hold: &mut Option<DateTime<Utc>>, at: DateTime<Utc>) {
    *hold = Some(hold.map_or(at, |h| h.min(at)));
}

fn complete_to(window_end: DateTime<Utc>, hold: Option<DateTime<Utc>>) -> DateTime<Utc> {
    hold.map_or(window_end, |h| h.min(window_end))
}

fn windows(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut s = from;
    while s < to {
        let e = (s + Duration::days(WINDOW_DAYS)).min(to);
        out.push((s, e));
        s = e;
    }
    out
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn page<T: DeserializeOwned>(
    p: &WhoopProvider,
    token: &str,
    path: &str,
    window: (DateTime<Utc>, DateTime<Utc>),
    next: Option<&str>,
) -> Result<Page<T>, ProviderError> {
    let url = format!("{}{path}", p.endpoints.api_url);
    let mut query = vec![
        ("limit", PAGE_LIMIT.to_string()),
        ("start", iso(window.0)),
        ("end", iso(window.1)),
    ];
    if let Some(t) = next {
        query.push(("nextToken", t.to_string()));
    }
    p.ctx.http.get_json(&p.budget(), &url, token, &query).await
}

fn next_of(token: Option<String>) -> Option<String> {
    token.filter(|t| !t.is_empty())
}

pub fn stream(p: &WhoopProvider, req: SyncRequest) -> BatchStream<'_> {
    try_stream! {
        let token = req
            .access_token
            .clone()
            .ok_or_else(|| ProviderError::Unauthorized("no access token".into()))?;
        let tz = req.user.timezone;
        let to = req.end();
        let mut cursors = req.cursors.clone();

        if req.wants(CYCLES) {
            let mut hold = None;
            for w in windows(req.start_for(CYCLES, OVERLAP), to) {
                let mut next: Option<String> = None;
                loop {
                    let pg: Page<Cycle> = page(p, &token, "/v2/cycle", w, next.as_deref()).await?;
                    let mut samples = Vec::new();
                    for c in &pg.records {
                        if c.end.is_none() || c.score_state == PENDING {
                            hold_at(&mut hold, c.start);
                        }
                        samples.extend(mapping::cycle_samples(c, tz));
                    }
                    next = next_of(pg.next_token);
                    if next.is_none() {
                        advance(&mut cursors, CYCLES, complete_to(w.1, hold));
                    }
                    yield SyncBatch { samples, events: Vec::new(), cursors: cursors.clone() };
                    if next.is_none() {
                        break;
                    }
                }
            }
        }

        let want_sleep = req.wants(SLEEP);
        let want_recovery = req.wants(RECOVERY);
        if want_sleep || want_recovery {
            let from = [(SLEEP, want_sleep), (RECOVERY, want_recovery)]
                .into_iter()
                .filter(|(_, w)| *w)
                .map(|(t, _)| req.start_for(t, OVERLAP))
                .min()
                .unwrap_or(to);
            let mut sleep_hold = None;
            let mut recovery_hold = None;
            for w in windows(from, to) {
                let mut anchors = HashMap::new();
                let mut next: Option<String> = None;
                loop {
                    let pg: Page<Sleep> =
                        page(p, &token, "/v2/activity/sleep", w, next.as_deref()).await?;
                    let mut batch = SyncBatch::default();
                    for s in &pg.records {
                        anchors.insert(s.id.clone(), mapping::sleep_anchor(s, tz));
                        if !want_sleep {
                            continue;
                        }
                        if s.score_state == PENDING {
                            hold_at(&mut sleep_hold, s.start);
                        }
                        batch.events.push(mapping::sleep_event(s, tz));
                        batch.samples.extend(mapping::sleep_samples(s, tz));
                    }
                    next = next_of(pg.next_token);
                    if next.is_none() && want_sleep {
                        advance(&mut cursors, SLEEP, complete_to(w.1, sleep_hold));
                    }
                    if want_sleep {
                        batch.cursors = cursors.clone();
                        yield batch;
                    }
                    if next.is_none() {
                        break;
                    }
                }
                if !want_recovery {
                    continue;
                }
                next = None;
                loop {
                    let pg: Page<Recovery> =
                        page(p, &token, "/v2/recovery", w, next.as_deref()).await?;
                    let mut samples = Vec::new();
                    for r in &pg.records {
                        let anchor = r.sleep_id.as_ref().and_then(|id| anchors.get(id)).copied();
                        if r.score_state == PENDING {
                            hold_at(&mut recovery_hold, anchor.map_or(r.created_at, |a| a.start));
                        }
                        samples.extend(mapping::recovery_samples(r, anchor, tz));
                    }
                    next = next_of(pg.next_token);
                    if next.is_none() {
                        advance(&mut cursors, RECOVERY, complete_to(w.1, recovery_hold));
                    }
                    yield SyncBatch { samples, events: Vec::new(), cursors: cursors.clone() };
                    if next.is_none() {
                        break;
                    }
                }
            }
        }

        if req.wants(WORKOUTS) {
            let mut hold = None;
            for w in windows(req.start_for(WORKOUTS, OVERLAP), to) {
                let mut next: Option<String> = None;
                loop {
                    let pg: Page<Workout> =
                        page(p, &token, "/v2/activity/workout", w, next.as_deref()).await?;
                    let mut batch = SyncBatch::default();
                    for wo in &pg.records {
                        if wo.score_state == PENDING {
                            hold_at(&mut hold, wo.start);
                        }
                        batch.events.push(mapping::workout_event(wo, tz));
                        batch.samples.extend(mapping::workout_samples(wo, tz));
                    }
                    next = next_of(pg.next_token);
                    if next.is_none() {
                        advance(&mut cursors, WORKOUTS, complete_to(w.1, hold));
                    }
                    batch.cursors = cursors.clone();
                    yield batch;
                    if next.is_none() {
                        break;
                    }
                }
            }
        }

        if req.wants(BODY) && body_due(&req) {
            let url = format!("{}/v2/user/measurement/body", p.endpoints.api_url);
            let body: Option<Body> = match p.ctx.http.get_json(&p.budget(), &url, &token, &[]).await {
                Ok(b) => Some(b),
                Err(ProviderError::NotFound(_)) => None,
                Err(e) => Err(e)?,
            };
            let samples = body
                .map(|b| mapping::body_samples(&b, local_day_start(req.now, tz), tz))
                .unwrap_or_default();
            advance(&mut cursors, BODY, req.now);
            yield SyncBatch { samples, events: Vec::new(), cursors: cursors.clone() };
        }
    }
    .boxed()
}

/// The body endpoint has no history, only the current values: read it at most daily unless
/// asked for explicitly.
fn body_due(req: &SyncRequest) -> bool {
    req.range.is_some()
        || !req.data_types.is_empty()
        || req
            .cursors
            .get(BODY)
            .is_none_or(|c| *c <= req.now - Duration::days(1))
}

fn local_day_start(now: DateTime<Utc>, tz: Option<chrono_tz::Tz>) -> DateTime<Utc> {
    let off = crate::time::resolve_offset(now, None, tz);
    let date = crate::time::local_date(now, off);
    let midnight = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    midnight - Duration::minutes(i64::from(off))
}
