//! Strava's rate headers: `X-RateLimit-Limit`/`-Usage` (all requests) and
//! `X-ReadRateLimit-Limit`/`-Usage` (reads), each "15-minute,daily". Every call VitaSync makes
//! is a read, so both pairs apply; the tightest window decides. 15-minute windows reset at
//! :00/:15/:30/:45 and the daily one at midnight UTC, so the reset is computed from the clock.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use reqwest::header::HeaderMap;

use crate::providers::http::RateInfo;

/// Reads the budget state from a response's headers at the current time.
pub fn parse_rate_headers(headers: &HeaderMap) -> Option<RateInfo> {
    parse_at(headers, Utc::now())
}

fn pair(headers: &HeaderMap, name: &str) -> Option<(u64, u64)> {
    let v = headers.get(name)?.to_str().ok()?;
    let mut it = v.split(',').map(|p| p.trim().parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// Budget state from the headers, as seen at `now`.
pub fn parse_at(headers: &HeaderMap, now: DateTime<Utc>) -> Option<RateInfo> {
    let mut short_left: Option<u64> = None;
    let mut daily_left: Option<u64> = None;
    for (limit, usage) in [
        ("x-ratelimit-limit", "x-ratelimit-usage"),
        ("x-readratelimit-limit", "x-readratelimit-usage"),
    ] {
        let (Some((l15, lday)), Some((u15, uday))) = (pair(headers, limit), pair(headers, usage))
        else {
            continue;
        };
        let s = l15.saturating_sub(u15);
        let d = lday.saturating_sub(uday);
        short_left = Some(short_left.map_or(s, |x| x.min(s)));
        daily_left = Some(daily_left.map_or(d, |x| x.min(d)));
    }
    if short_left.is_none() && daily_left.is_none() {
        return None;
    }
    let remaining = short_left.into_iter().chain(daily_left).min();
    let reset_after = if daily_left == Some(0) {
        Some(until_midnight(now))
    } else if short_left == Some(0) {
        Some(until_quarter(now))
    } else {
        None
    };
    Some(RateInfo {
        remaining,
        reset_after,
    })
}

fn until_quarter(now: DateTime<Utc>) -> Duration {
    let into = (now.minute() % 15) * 60 + now.second();
    Duration::from_secs(u64::from(15 * 60 - into))
}

fn until_midnight(now: DateTime<Utc>) -> Duration {
    let into = now.num_seconds_from_midnight();
    Duration::from_secs(u64::from(86_400 - into))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn tightest_window_decides() {
        let now: DateTime<Utc> = "2024-03-11T10:07:30Z".parse().unwrap();
        let h = headers(&[
            ("x-ratelimit-limit", "200,2000"),
            ("x-ratelimit-usage", "34,510"),
            ("x-readratelimit-limit", "100,1000"),
            ("x-readratelimit-usage", "21,300"),
        ]);
        let info = parse_at(&h, now).unwrap();
        assert_eq!(info.remaining, Some(79));
        assert_eq!(info.reset_after, None);

        let h = headers(&[
            ("x-readratelimit-limit", "100,1000"),
            ("x-readratelimit-usage", "100,300"),
        ]);
        let info = parse_at(&h, now).unwrap();
        assert_eq!(info.remaining, Some(0));
        assert_eq!(info.reset_after, Some(Duration::from_secs(7 * 60 + 30)));

        let h = headers(&[
            ("x-readratelimit-limit", "100,1000"),
            ("x-readratelimit-usage", "12,1000"),
        ]);
        let info = parse_at(&h, now).unwrap();
        assert_eq!(info.remaining, Some(0));
        assert_eq!(
            info.reset_after,
            Some(Duration::from_secs(13 * 3600 + 52 * 60 + 30))
        );
        assert_eq!(parse_at(&HeaderMap::new(), now), None);
    }
}
