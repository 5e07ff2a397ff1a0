//! The time model: every sample has `recorded_at` (a UTC instant) and `local_date`, the user's
//! calendar date at that instant. The date comes from the sample's own offset when the source
//! gives one, else the user's IANA time zone, else UTC — so a trip across time zones neither
//! splits nor merges days.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeZone, Utc};

use crate::error::{Error, Result};

/// Parses "+02:00", "-0530", "Z" or "+00:00" into minutes east of UTC.
pub fn parse_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// Formats minutes east of UTC as "+HH:MM".
pub fn format_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Offset in minutes of `tz` at the instant `at`.
pub fn tz_offset_minutes(tz: chrono_tz::Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
        / 60
}

/// The calendar date at `at` shifted by `offset_minutes`.
pub fn local_date(at: DateTime<Utc>, offset_minutes: i32) -> NaiveDate {
    let off = FixedOffset::east_opt(offset_minutes * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero"));
    at.with_timezone(&off).date_naive()
}

/// Resolves the offset of a sample: explicit offset, else the user's zone at that instant, else UTC.
pub fn resolve_offset(
    at: DateTime<Utc>,
    explicit: Option<i32>,
    user_tz: Option<chrono_tz::Tz>,
) -> i32 {
    explicit
        .or_else(|| user_tz.map(|tz| tz_offset_minutes(tz, at)))
        .unwrap_or(0)
}

/// Parses an RFC 3339 instant for `field`.
pub fn parse_instant(field: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            Error::invalid(
                field.to_string(),
                format!("'{s}' is not an RFC 3339 timestamp"),
            )
        })
}

/// Parses a YYYY-MM-DD date for `field`.
pub fn parse_date(field: &str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::invalid(field.to_string(), format!("'{s}' is not a YYYY-MM-DD date")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00"), Some(120));
        assert_eq!(parse_offset("-0530"), Some(-330));
        assert_eq!(parse_offset("Z"), Some(0));
        assert_eq!(parse_offset("+25:00"), None);
        assert_eq!(parse_offset("02:00"), None);
        assert_eq!(format_offset(-330), "-05:30");
    }

    #[test]
    fn local_dates_follow_the_offset() {
        let at = parse_instant("t", "2024-03-10T23:30:00Z").unwrap();
        assert_eq!(local_date(at, 0).to_string(), "2024-03-10");
        assert_eq!(local_date(at, 60).to_string(), "2024-03-11");
        assert_eq!(local_date(at, -300).to_string(), "2024-03-10");
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        // DST starts 2024-03-10 07:00 UTC in New York: -05:00 before, -04:00 after.
        assert_eq!(
            resolve_offset(
                parse_instant("t", "2024-03-10T06:00:00Z").unwrap(),
                None,
                Some(ny)
            ),
            -300
        );
        assert_eq!(
            resolve_offset(
                parse_instant("t", "2024-03-10T08:00:00Z").unwrap(),
                None,
                Some(ny)
            ),
            -240
        );
        assert_eq!(resolve_offset(at, Some(120), Some(ny)), 120);
    }
}
