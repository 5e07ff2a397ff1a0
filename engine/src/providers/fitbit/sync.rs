//! The Fitbit sync stream. Each data type has its own cursor and is fetched in the windows its
//! endpoint allows (one date for the daily summary and intraday heart rate, 30 days for the
//! nightly series and body logs, 100 days for sleep, `pagination.next` pages for the activity
//! log); every window is one batch whose cursors are valid once it is committed.
//!
//! An incremental sync starts a day before the data type's cursor: the day the cursor is in
//! was partial when it was fetched, and a tracker can upload yesterday's data hours late.
//! A data type whose scope the user did not grant (403) is skipped without failing the others.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::FitbitProvider;
use super::client::{self, Client};
use super::mapping;
use super::zone::Zone;
use crate::domain::{NewEvent, NewSample};
use crate::providers::{BatchStream, Cursors, ProviderError, SyncBatch, SyncRequest};

pub const ACTIVITY: &str = "activity";
pub const HEART_RATE: &str = "heart_rate";
pub const HRV: &str = "hrv";
pub const SPO2: &str = "spo2";
pub const BREATHING_RATE: &str = "breathing_rate";
pub const TEMPERATURE: &str = "temperature";
pub const SLEEP: &str = "sleep";
pub const BODY: &str = "body";
pub const WORKOUTS: &str = "workouts";

/// Sync order. The range endpoints cost one call per month or more and come first; the
/// one-call-per-date types come last, so when a long backfill runs into the hourly budget
/// everything cheap is already stored and the rest resumes from its cursors.
pub const DATA_TYPES: &[&str] = &[
    SLEEP,
    HRV,
    SPO2,
    BREATHING_RATE,
    TEMPERATURE,
    BODY,
    WORKOUTS,
    ACTIVITY,
    HEART_RATE,
];

const OVERLAP: Duration = Duration::days(1);

/// Days per request for the range endpoints (Fitbit's documented caps).
fn span_days(data_type: &str) -> i64 {
    match data_type {
        SLEEP => 100,
        HRV | SPO2 | BREATHING_RATE | TEMPERATURE | BODY => 30,
        // The daily heart summary accepts a year.
        HEART_RATE => 365,
        _ => 1,
    }
}

/// `[first, last]` cut into consecutive windows of at most `span` dates.
pub fn windows(first: NaiveDate, last: NaiveDate, span: i64) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut a = first;
    while a <= last {
        let b = (a + Duration::days(span - 1)).min(last);
        out.push((a, b));
        a = b + Duration::days(1);
    }
    out
}

fn advance(cursors: &mut Cursors, data_type: &str, to: DateTime<Utc>) {
    let c = cursors.entry(data_type.to_string()).or_insert(to);
    if *c < to {
        *c = to;
    }
}

/// 403 means the grant lacks the data type's scope: `None`, so the caller skips the type.
fn permitted<T>(r: Result<T, ProviderError>, data_type: &str) -> Result<Option<T>, ProviderError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ProviderError::Forbidden(m)) => {
            tracing::warn!(provider = super::ID, data_type, error = %m, "data type not permitted; skipped");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[derive(Default)]
struct Fetched {
    samples: Vec<NewSample>,
    events: Vec<NewEvent>,
}

/// One range window of a range-endpoint data type.
async fn fetch_window(
    c: &Client<'_>,
    zone: &Zone,
    data_type: &str,
    a: NaiveDate,
    b: NaiveDate,
) -> Result<Fetched, ProviderError> {
    let mut f = Fetched::default();
    match data_type {
        ACTIVITY => {
            let d = c.daily_activity(a).await?;
            f.samples = mapping::daily_activity(zone, a, &d.summary);
        }
        HRV => f.samples = mapping::hrv(zone, &c.hrv(a, b).await?.hrv),
        SPO2 => f.samples = mapping::spo2(zone, &c.spo2(a, b).await?.into_days()),
        BREATHING_RATE => {
            f.samples = mapping::breathing_rate(zone, &c.breathing_rate(a, b).await?.br)
        }
        TEMPERATURE => {
            f.samples = mapping::skin_temperature(zone, &c.skin_temperature(a, b).await?.temp_skin)
        }
        SLEEP => {
            for log in c.sleep(a, b).await?.sleep {
                let (event, samples) = mapping::sleep(zone, &log);
                f.events.push(event);
                f.samples.extend(samples);
            }
        }
        BODY => {
            for log in c.weight(a, b).await?.weight {
                f.samples.extend(mapping::weight(zone, &log));
            }
            for log in c.body_fat(a, b).await?.fat {
                f.samples.push(mapping::body_fat(zone, &log));
            }
        }
        other => unreachable!("{other} is not a range data type"),
    }
    Ok(f)
}

/// The zone Fitbit's local times are in: the user's, else the Fitbit profile's.
async fn zone_of(c: &Client<'_>, req: &SyncRequest) -> Result<Zone, ProviderError> {
    if let Some(tz) = req.user.timezone {
        return Ok(Zone::Named(tz));
    }
    Ok(match permitted(c.profile().await, "profile")? {
        Some(p) => Zone::from_profile(p.user.timezone.as_deref(), p.user.offset_from_utc_millis),
        None => Zone::Fixed(0),
    })
}

pub fn run(p: &FitbitProvider, req: SyncRequest) -> BatchStream<'_> {
    Box::pin(async_stream::try_stream! {
        let token = req
            .access_token
            .clone()
            .ok_or_else(|| ProviderError::Unauthorized("no Fitbit access token".into()))?;
        let c = Client {
            http: &p.http,
            api: &p.endpoints.api_url,
            token: &token,
            budget: client::budget(req.provider_user_id.as_deref()),
        };
        let zone = zone_of(&c, &req).await?;
        let end = req.end();
        let mut cursors = req.cursors.clone();

        for &dt in DATA_TYPES {
            if !req.wants(dt) {
                continue;
            }
            let start = req.start_for(dt, OVERLAP);
            if start >= end {
                continue;
            }
            // An explicit window (manual re-sync, webhook) moves a cursor only when it joins
            // what is already stored; a cursor never jumps over dates that were not fetched.
            let contiguous = match req.range {
                None => true,
                Some((from, _)) => req.cursors.get(dt).is_some_and(|c| *c >= from),
            };
            let first = zone.local_date(start);
            let last = zone.local_date(end);
            // Where a window ending on local date `b` leaves the cursor.
            let reached = |b: NaiveDate| {
                if b >= last {
                    end
                } else {
                    zone.start_of_day(b + Duration::days(1)).min(end)
                }
            };

            match dt {
                WORKOUTS => {
                    let Some(mut page) = permitted(c.activity_list(first).await, dt)? else {
                        continue;
                    };
                    loop {
                        let past_end = page
                            .activities
                            .last()
                            .is_some_and(|a| a.start_time.with_timezone(&Utc) > end);
                        let done = page.pagination.next.is_empty() || past_end;
                        let events: Vec<NewEvent> = page
                            .activities
                            .iter()
                            .filter(|a| a.start_time.with_timezone(&Utc) <= end)
                            .map(mapping::workout)
                            .collect();
                        let to = if done {
                            Some(end)
                        } else {
                            events.last().map(|e| e.started_at)
                        };
                        if let (true, Some(to)) = (contiguous, to) {
                            advance(&mut cursors, dt, to);
                        }
                        yield SyncBatch { samples: Vec::new(), events, cursors: cursors.clone() };
                        if done {
                            break;
                        }
                        match permitted(c.follow(&page.pagination.next).await, dt)? {
                            Some(next) => page = next,
                            None => break,
                        }
                    }
                }
                HEART_RATE => {
                    // Intraday heart rate needs an app Fitbit has granted intraday access; without
                    // it the intraday call is refused and the daily range still gives resting HR.
                    let mut intraday = true;
                    let mut a = first;
                    while a <= last {
                        let (b, samples) = if intraday {
                            match permitted(c.heart_intraday(a).await, "heart_rate intraday")? {
                                Some(r) => {
                                    let mut s = mapping::resting_heart_rate(&zone, &r.days);
                                    if let Some(i) = &r.intraday {
                                        s.extend(mapping::intraday_heart_rate(&zone, a, i));
                                    }
                                    (a, s)
                                }
                                None => {
                                    intraday = false;
                                    continue;
                                }
                            }
                        } else {
                            let b = (a + Duration::days(span_days(dt) - 1)).min(last);
                            match permitted(c.heart_range(a, b).await, dt)? {
                                Some(r) => (b, mapping::resting_heart_rate(&zone, &r.days)),
                                None => break,
                            }
                        };
                        if contiguous {
                            advance(&mut cursors, dt, reached(b));
                        }
                        yield SyncBatch { samples, events: Vec::new(), cursors: cursors.clone() };
                        a = b + Duration::days(1);
                    }
                }
                _ => {
                    for (a, b) in windows(first, last, span_days(dt)) {
                        let Some(f) = permitted(fetch_window(&c, &zone, dt, a, b).await, dt)? else {
                            break;
                        };
                        if contiguous {
                            advance(&mut cursors, dt, reached(b));
                        }
                        yield SyncBatch { samples: f.samples, events: f.events, cursors: cursors.clone() };
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_range_without_overlap() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            windows(d("2024-01-01"), d("2024-02-15"), 30),
            vec![
                (d("2024-01-01"), d("2024-01-30")),
                (d("2024-01-31"), d("2024-02-15"))
            ]
        );
        assert_eq!(windows(d("2024-01-01"), d("2024-01-01"), 1).len(), 1);
        assert!(windows(d("2024-01-02"), d("2024-01-01"), 1).is_empty());
    }

    #[test]
    fn every_data_type_has_a_span() {
        for dt in DATA_TYPES {
            assert!(span_days(dt) >= 1);
        }
    }
}
