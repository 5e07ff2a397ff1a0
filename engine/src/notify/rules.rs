//! Which rules an event reaches, quiet hours in the user's timezone, and the retry schedules.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};

use super::event::Event;
use super::model::{QuietHours, Rule};

/// True when `rule` subscribes to the event's category at its severity.
pub fn matches(rule: &Rule, event: &Event) -> bool {
    rule.enabled
        && rule.categories.contains(&event.category())
        && event.severity >= rule.min_severity
}

pub fn parse_hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// True when `now`, in `timezone` (UTC when unset or unknown), falls in the quiet hours.
/// `start > end` spans midnight (22:00–07:00); `start == end` is never quiet.
pub fn is_quiet(q: &QuietHours, timezone: Option<&str>, now: DateTime<Utc>) -> bool {
    let (Some(start), Some(end)) = (parse_hhmm(&q.start), parse_hhmm(&q.end)) else {
        return false;
    };
    let local = match timezone.and_then(|t| t.parse::<chrono_tz::Tz>().ok()) {
        Some(tz) => now.with_timezone(&tz).time(),
        None => now.time(),
    };
    if start <= end {
        start <= local && local < end
    } else {
        local >= start || local < end
    }
}

/// When attempt `attempts + 1` is due after `attempts` failures, or None when the schedule
/// (pauses before each retry) is exhausted.
pub fn next_retry(schedule: &[Duration], attempts: u32) -> Option<Duration> {
    schedule.get(attempts.saturating_sub(1) as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2024, 6, 1)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
            .and_utc()
    }

    #[test]
    fn quiet_hours_span_midnight_in_the_users_zone() {
        let q = QuietHours {
            start: "22:00".into(),
            end: "07:00".into(),
        };
        assert!(is_quiet(&q, None, at(23, 0)));
        assert!(is_quiet(&q, None, at(6, 59)));
        assert!(!is_quiet(&q, None, at(7, 0)));
        // 20:30 UTC is 22:30 in Berlin (summer time).
        assert!(is_quiet(&q, Some("Europe/Berlin"), at(20, 30)));
        assert!(!is_quiet(&q, Some("Europe/Berlin"), at(19, 30)));
    }

    #[test]
    fn retry_schedule_runs_out() {
        let s = [Duration::from_secs(1), Duration::from_secs(5)];
        assert_eq!(next_retry(&s, 1), Some(Duration::from_secs(1)));
        assert_eq!(next_retry(&s, 2), Some(Duration::from_secs(5)));
        assert_eq!(next_retry(&s, 3), None);
    }
}
