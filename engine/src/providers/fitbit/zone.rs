//! The zone Fitbit's offset-less local times are read in: the user's IANA zone when VitaSync
//! knows it, else the Fitbit profile's zone, else the profile's current fixed offset.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::time;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Named(chrono_tz::Tz),
    /// Minutes east of UTC. Only the profile's *current* offset is known, so historic DST
    /// changes are lost; a named zone is always preferred.
    Fixed(i32),
}

impl Zone {
    /// From the Fitbit profile: its IANA `timezone`, else `offsetFromUTCMillis`, else UTC.
    pub fn from_profile(timezone: Option<&str>, offset_millis: Option<i64>) -> Zone {
        if let Some(tz) = timezone.and_then(|t| t.parse::<chrono_tz::Tz>().ok()) {
            return Zone::Named(tz);
        }
        let minutes = offset_millis.map(|m| m / 60_000).unwrap_or(0);
        Zone::Fixed(i32::try_from(minutes).unwrap_or(0).clamp(-14 * 60, 14 * 60))
    }

    /// Minutes east of UTC at `at`.
    pub fn offset_at(&self, at: DateTime<Utc>) -> i32 {
        match self {
            Zone::Named(tz) => time::tz_offset_minutes(*tz, at),
            Zone::Fixed(m) => *m,
        }
    }

    pub fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        time::local_date(at, self.offset_at(at))
    }

    /// The instant a local wall-clock time happened, with the offset in force then. A time
    /// repeated by a DST fall-back is read as its first occurrence; a time skipped by a
    /// spring-forward (which a device clock cannot show, but a manual log can) is moved past
    /// the gap.
    pub fn resolve(&self, local: NaiveDateTime) -> (DateTime<Utc>, i32) {
        match self {
            Zone::Fixed(m) => {
                let at = (local - Duration::minutes(i64::from(*m))).and_utc();
                (at, *m)
            }
            Zone::Named(tz) => {
                let at = match tz.from_local_datetime(&local) {
                    LocalResult::Single(t) => t.with_timezone(&Utc),
                    LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
                    LocalResult::None => {
                        // The offset just before the gap shifts the time forward by the
                        // gap's length, which lands after it.
                        let before = (local - Duration::hours(3)).and_utc();
                        let off = time::tz_offset_minutes(*tz, before);
                        (local - Duration::minutes(i64::from(off))).and_utc()
                    }
                };
                (at, time::tz_offset_minutes(*tz, at))
            }
        }
    }

    /// The instant local `date` begins.
    pub fn start_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        self.resolve(date.and_time(chrono::NaiveTime::MIN)).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }

    #[test]
    fn named_zone_follows_dst() {
        let la = Zone::Named("America/Los_Angeles".parse().unwrap());
        let (at, off) = la.resolve(local("2024-03-09T23:30:00"));
        assert_eq!(
            (at.to_rfc3339(), off),
            ("2024-03-10T07:30:00+00:00".into(), -480)
        );
        let (at, off) = la.resolve(local("2024-03-10T23:30:00"));
        assert_eq!(
            (at.to_rfc3339(), off),
            ("2024-03-11T06:30:00+00:00".into(), -420)
        );
        // 02:30 does not exist on 2024-03-10 in Los Angeles.
        let (at, off) = la.resolve(local("2024-03-10T02:30:00"));
        assert_eq!(
            (at.to_rfc3339(), off),
            ("2024-03-10T10:30:00+00:00".into(), -420)
        );
        // 01:30 happens twice on 2024-11-03: the first (PDT) is taken.
        let (at, _) = la.resolve(local("2024-11-03T01:30:00"));
        assert_eq!(at.to_rfc3339(), "2024-11-03T08:30:00+00:00");
    }

    #[test]
    fn profile_fallbacks() {
        assert_eq!(
            Zone::from_profile(Some("Europe/Berlin"), Some(3_600_000)),
            Zone::Named("Europe/Berlin".parse().unwrap())
        );
        assert_eq!(
            Zone::from_profile(Some("Nowhere/Land"), Some(-18_000_000)),
            Zone::Fixed(-300)
        );
        assert_eq!(Zone::from_profile(None, None), Zone::Fixed(0));
        let (at, off) = Zone::Fixed(330).resolve(local("2024-03-11T00:10:00"));
        assert_eq!(
            (at.to_rfc3339(), off),
            ("2024-03-10T18:40:00+00:00".into(), 330)
        );
    }
}
