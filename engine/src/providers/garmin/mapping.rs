//! Garmin summaries → catalogue samples and events. Pure functions: no clock, no I/O.
//!
//! Time: Garmin stamps everything in UTC epoch seconds with the offset the device displayed
//! (`…OffsetInSeconds`), and day-based summaries carry `calendarDate`, which is used as the
//! local date as is (Garmin's sleep `calendarDate` is the date the sleep ends on, as the
//! catalogue wants). Summary-level values are stamped at the summary's start, the instant
//! Garmin itself keys a summary by, so a re-delivered (grown, corrected, re-validated) summary
//! replaces the earlier values instead of adding to them.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::api;
use crate::catalogue;
use crate::domain::{EventType, NewEvent, NewSample};
use crate::time;

/// The metrics Garmin summaries are mapped to.
pub const METRICS: &[&str] = &[
    "steps",
    "distance",
    "active_energy",
    "total_energy",
    "active_minutes",
    "floors",
    "heart_rate",
    "resting_heart_rate",
    "hrv_rmssd",
    "spo2",
    "respiratory_rate",
    "skin_temperature_deviation",
    "stress",
    "sleep_duration",
    "sleep_efficiency",
    "sleep_deep",
    "sleep_light",
    "sleep_rem",
    "sleep_awake",
    "sleep_score",
    "weight",
    "body_fat",
    "bmi",
    "blood_pressure_systolic",
    "blood_pressure_diastolic",
    "vo2max",
];

/// What the mapping needs besides the payload.
#[derive(Debug, Clone, Copy)]
pub struct MapContext<'a> {
    pub provider: &'a str,
    /// Only for the few summaries without an offset (user metrics).
    pub user_tz: Option<chrono_tz::Tz>,
}

/// Samples and events mapped from some summaries.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Mapped {
    pub samples: Vec<NewSample>,
    pub events: Vec<NewEvent>,
}

/// A Garmin summary model.
pub trait Summary: DeserializeOwned {
    fn user_id(&self) -> Option<&str>;
    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped);
}

/// Where a summary sits in time.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    start: DateTime<Utc>,
    offset: i32,
    date: NaiveDate,
}

fn instant(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// `t` plus `secs` from a payload; None instead of a panic for absurd values.
fn shift(t: DateTime<Utc>, secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    Duration::try_seconds(secs.round() as i64).and_then(|d| t.checked_add_signed(d))
}

/// Garmin offsets are whole seconds and can be anything a user sets on the device (up to
/// ±24 h); minutes are what samples carry.
fn offset_minutes(secs: i64) -> i32 {
    (secs.clamp(-86_399, 86_399) / 60) as i32
}

fn calendar_date(s: Option<&str>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s?, "%Y-%m-%d").ok()
}

impl Anchor {
    fn new(
        cx: &MapContext<'_>,
        start: Option<i64>,
        offset: Option<i64>,
        date: Option<&str>,
    ) -> Option<Self> {
        let start = instant(start?)?;
        let offset = time::resolve_offset(start, offset.map(offset_minutes), cx.user_tz);
        let date = calendar_date(date).unwrap_or_else(|| time::local_date(start, offset));
        Some(Anchor {
            start,
            offset,
            date,
        })
    }

    /// The instant `secs` after the start, with its own local date.
    fn after(&self, secs: i64) -> Option<Anchor> {
        let at = shift(self.start, secs as f64)?;
        Some(Anchor {
            start: at,
            offset: self.offset,
            date: time::local_date(at, self.offset),
        })
    }
}

impl Mapped {
    /// Adds a sample of catalogue metric `metric`, already in its canonical unit.
    fn push(&mut self, cx: &MapContext<'_>, metric: &'static str, value: Option<f64>, at: Anchor) {
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return;
        };
        let Some(def) = catalogue::metric(metric) else {
            debug_assert!(false, "{metric} is not in the catalogue");
            return;
        };
        self.samples.push(NewSample {
            provider: cx.provider.to_string(),
            metric: def.name,
            value,
            unit: def.unit,
            recorded_at: at.start,
            local_date: at.date,
            utc_offset_minutes: at.offset,
            source: None,
            data: None,
        });
    }

    /// One sample per `"seconds-from-start": value` entry, skipping Garmin's negative status
    /// codes (off wrist, motion, not enough data …) that share the value column.
    fn push_series(
        &mut self,
        cx: &MapContext<'_>,
        metric: &'static str,
        values: Option<&api::TimeOffsetValues>,
        anchor: Anchor,
    ) {
        for (k, v) in values.into_iter().flatten() {
            let Ok(secs) = k.trim().parse::<i64>() else {
                continue;
            };
            if *v < 0.0 {
                continue;
            }
            if let Some(at) = anchor.after(secs) {
                self.push(cx, metric, Some(*v), at);
            }
        }
    }
}

fn minutes(secs: Option<f64>) -> Option<f64> {
    secs.map(|s| s / 60.0)
}

impl Summary for api::Daily {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        let Some(at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            self.calendar_date.as_deref(),
        ) else {
            return;
        };
        // Running totals of the day at the day's start: a later, grown delivery of the same
        // day overwrites them.
        out.push(cx, "steps", self.steps, at);
        out.push(cx, "distance", self.distance_in_meters, at);
        out.push(cx, "active_energy", self.active_kilocalories, at);
        // `activeKilocalories` excludes BMR; total energy is both.
        let total = match (self.active_kilocalories, self.bmr_kilocalories) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        out.push(cx, "total_energy", total, at);
        let active = match (
            self.moderate_intensity_duration_in_seconds,
            self.vigorous_intensity_duration_in_seconds,
        ) {
            (None, None) => None,
            (m, v) => Some(m.unwrap_or(0.0) + v.unwrap_or(0.0)),
        };
        out.push(cx, "active_minutes", minutes(active), at);
        out.push(cx, "floors", self.floors_climbed, at);
        out.push(
            cx,
            "resting_heart_rate",
            self.resting_heart_rate_in_beats_per_minute,
            at,
        );
        // `averageHeartRateInBeatsPerMinute` is a 7-day average, so the day's heart rate is
        // the 15-second samples themselves.
        out.push_series(
            cx,
            "heart_rate",
            self.time_offset_heart_rate_samples.as_ref(),
            at,
        );
    }
}

impl Summary for api::Sleep {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        let Some(mut at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            self.calendar_date.as_deref(),
        ) else {
            return;
        };
        let asleep = self.duration_in_seconds;
        let awake = self.awake_duration_in_seconds;
        let unmeasurable = self.unmeasurable_sleep_in_seconds;
        // `durationInSeconds` is time asleep; Garmin has no efficiency field.
        let in_bed = asleep.map(|a| a + awake.unwrap_or(0.0) + unmeasurable.unwrap_or(0.0));
        let efficiency = match (asleep, in_bed) {
            (Some(a), Some(b)) if b > 0.0 => Some(100.0 * a / b),
            _ => None,
        };
        let score = self.overall_sleep_score.as_ref().and_then(|s| s.value);
        // The stage timeline knows where the sleep really ended; the totals only bound it.
        let from_levels = self
            .sleep_levels_map
            .iter()
            .flat_map(|m| m.values().flatten())
            .map(|s| s.end_time_in_seconds.max(s.start_time_in_seconds))
            .max()
            .and_then(instant);
        let ended = from_levels.or_else(|| in_bed.and_then(|b| shift(at.start, b)));
        if calendar_date(self.calendar_date.as_deref()).is_none()
            && let Some(end) = ended
        {
            // Without Garmin's date, the sleep still belongs to the day it ends on.
            at.date = time::local_date(end, at.offset);
        }

        out.push(cx, "sleep_duration", minutes(asleep), at);
        out.push(cx, "sleep_efficiency", efficiency, at);
        out.push(
            cx,
            "sleep_deep",
            minutes(self.deep_sleep_duration_in_seconds),
            at,
        );
        out.push(
            cx,
            "sleep_light",
            minutes(self.light_sleep_duration_in_seconds),
            at,
        );
        out.push(cx, "sleep_rem", minutes(self.rem_sleep_in_seconds), at);
        out.push(cx, "sleep_awake", minutes(awake), at);
        out.push(cx, "sleep_score", score, at);

        let Some(id) = self.summary_id.clone() else {
            return;
        };
        out.events.push(NewEvent {
            provider_event_id: id,
            event_type: EventType::Sleep,
            activity_type: None,
            started_at: at.start,
            ended_at: ended,
            local_date: at.date,
            duration_s: ended.map(|e| (e - at.start).num_seconds() as f64),
            distance_m: None,
            energy_kcal: None,
            avg_hr: None,
            max_hr: None,
            data: Some(json!({
                "minutes_asleep": minutes(asleep),
                "deep": minutes(self.deep_sleep_duration_in_seconds),
                "light": minutes(self.light_sleep_duration_in_seconds),
                "rem": minutes(self.rem_sleep_in_seconds),
                "awake": minutes(awake),
                "efficiency": efficiency,
                "score": score,
                "score_qualifier": self.overall_sleep_score.as_ref().and_then(|s| s.qualifier_key.clone()),
                "validation": self.validation,
                "naps": self.naps,
            })),
        });
    }
}

impl Summary for api::Hrv {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        if let Some(at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            self.calendar_date.as_deref(),
        ) {
            out.push(cx, "hrv_rmssd", self.last_night_avg, at);
        }
    }
}

impl Summary for api::PulseOx {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        if let Some(at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            self.calendar_date.as_deref(),
        ) {
            out.push_series(cx, "spo2", self.time_offset_spo2_values.as_ref(), at);
        }
    }
}

impl Summary for api::Respiration {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        if let Some(at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            None,
        ) {
            out.push_series(
                cx,
                "respiratory_rate",
                self.time_offset_epoch_to_breaths.as_ref(),
                at,
            );
        }
    }
}

impl Summary for api::SkinTemp {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        if let Some(at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            self.calendar_date.as_deref(),
        ) {
            out.push(
                cx,
                "skin_temperature_deviation",
                self.avg_deviation_celsius,
                at,
            );
        }
    }
}

impl Summary for api::StressDetails {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        if let Some(at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            self.calendar_date.as_deref(),
        ) {
            out.push_series(
                cx,
                "stress",
                self.time_offset_stress_level_values.as_ref(),
                at,
            );
        }
    }
}

impl Summary for api::BodyComp {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        let Some(at) = Anchor::new(
            cx,
            self.measurement_time_in_seconds,
            self.measurement_time_offset_in_seconds,
            None,
        ) else {
            return;
        };
        // Garmin reports masses in grams; the catalogue converts them.
        let kg = self
            .weight_in_grams
            .and_then(|g| catalogue::metric("weight").and_then(|m| m.convert(g, Some("g"))));
        out.push(cx, "weight", kg, at);
        out.push(cx, "body_fat", self.body_fat_in_percent, at);
        out.push(cx, "bmi", self.body_mass_index, at);
    }
}

impl Summary for api::UserMetrics {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        // Only a calendar date: stamped at the start of that date in the user's zone.
        let Some(date) = calendar_date(self.calendar_date.as_deref()) else {
            return;
        };
        let noon = date.and_hms_opt(12, 0, 0).map(|d| d.and_utc());
        let Some(noon) = noon else { return };
        let offset = time::resolve_offset(noon, None, cx.user_tz);
        let start = noon - Duration::hours(12) - Duration::minutes(i64::from(offset));
        let at = Anchor {
            start,
            offset,
            date,
        };
        out.push(cx, "vo2max", self.vo2_max, at);
    }
}

impl Summary for api::BloodPressure {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        if let Some(at) = Anchor::new(
            cx,
            self.measurement_time_in_seconds,
            self.measurement_time_offset_in_seconds,
            None,
        ) {
            out.push(cx, "blood_pressure_systolic", self.systolic, at);
            out.push(cx, "blood_pressure_diastolic", self.diastolic, at);
            // The cuff's pulse is a heart-rate measurement like any other.
            out.push(cx, "heart_rate", self.pulse, at);
        }
    }
}

/// Garmin's upper-snake activity types → the canonical activity names, keeping Garmin's own
/// (lower-cased) name where there is no broader family.
pub fn activity_type(garmin: &str) -> String {
    let t = garmin.trim().to_ascii_lowercase();
    let family = if t.contains("running") || t == "run" {
        "running"
    } else if t.contains("cycling") || t.contains("biking") {
        "cycling"
    } else if t.contains("swimming") {
        "swimming"
    } else if t.contains("walking") {
        "walking"
    } else {
        return t;
    };
    family.to_string()
}

impl Summary for api::Activity {
    fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    fn map(&self, cx: &MapContext<'_>, out: &mut Mapped) {
        let Some(at) = Anchor::new(
            cx,
            self.start_time_in_seconds,
            self.start_time_offset_in_seconds,
            None,
        ) else {
            return;
        };
        let id = self.summary_id.clone().or_else(|| {
            self.activity_id.as_ref().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        });
        let Some(id) = id else { return };
        let ended = self.duration_in_seconds.and_then(|d| shift(at.start, d));
        // Workout totals stay on the event: the day's steps, distance and energy already
        // include the activity through the daily summary.
        out.events.push(NewEvent {
            provider_event_id: id,
            event_type: EventType::Workout,
            activity_type: self.activity_type.as_deref().map(activity_type),
            started_at: at.start,
            ended_at: ended,
            local_date: at.date,
            duration_s: self.duration_in_seconds,
            distance_m: self.distance_in_meters,
            energy_kcal: self.active_kilocalories,
            avg_hr: self.average_heart_rate_in_beats_per_minute,
            max_hr: self.max_heart_rate_in_beats_per_minute,
            data: Some(json!({
                "name": self.activity_name,
                "garmin_type": self.activity_type,
                "device": self.device_name,
                "avg_speed_mps": self.average_speed_in_meters_per_second,
                "elevation_gain_m": self.total_elevation_gain_in_meters,
                "elevation_loss_m": self.total_elevation_loss_in_meters,
                "avg_run_cadence_spm": self.average_run_cadence_in_steps_per_minute,
                "steps": self.steps,
                "manual": self.manual,
            })),
        });
    }
}

/// Maps every item of a decoded list.
pub fn map_all<T: Summary>(items: &[T], cx: &MapContext<'_>) -> Mapped {
    let mut out = Mapped::default();
    for item in items {
        item.map(cx, &mut out);
    }
    out
}

/// Maps pushed items per `userId`, in order of first appearance. Items without a user id are
/// dropped: pushed data is only trusted when it can be tied to a known account.
pub fn map_per_user<T: Summary>(items: &[T], cx: &MapContext<'_>) -> Vec<(String, Mapped)> {
    let mut users: Vec<(String, Mapped)> = Vec::new();
    for item in items {
        let Some(user) = item.user_id() else { continue };
        let idx = match users.iter().position(|(u, _)| u == user) {
            Some(i) => i,
            None => {
                users.push((user.to_string(), Mapped::default()));
                users.len() - 1
            }
        };
        item.map(cx, &mut users[idx].1);
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    const CX: MapContext<'static> = MapContext {
        provider: "garmin",
        user_tz: None,
    };

    fn one<T: Summary>(v: serde_json::Value) -> Mapped {
        let item: T = serde_json::from_value(v).unwrap();
        map_all(std::slice::from_ref(&item), &CX)
    }

    fn value(m: &Mapped, metric: &str) -> f64 {
        m.samples
            .iter()
            .find(|s| s.metric == metric)
            .unwrap_or_else(|| panic!("no {metric}"))
            .value
    }

    #[test]
    fn every_metric_is_in_the_catalogue() {
        for m in METRICS {
            assert!(catalogue::metric(m).is_some(), "{m}");
        }
    }

    #[test]
    fn sleep_efficiency_counts_awake_and_unmeasurable_time() {
        let m = one::<api::Sleep>(json!({
            "summaryId": "s1", "calendarDate": "2024-03-11", "startTimeInSeconds": 1710108090,
            "startTimeOffsetInSeconds": 3600, "durationInSeconds": 27000,
            "awakeDurationInSeconds": 1800, "unmeasurableSleepDurationInSeconds": 1200
        }));
        assert!((value(&m, "sleep_efficiency") - 90.0).abs() < 1e-9);
        assert_eq!(value(&m, "sleep_duration"), 450.0);
        let ev = &m.events[0];
        assert_eq!(ev.duration_s, Some(30_000.0));
        assert_eq!(ev.local_date.to_string(), "2024-03-11");
    }

    #[test]
    fn sleep_without_a_calendar_date_belongs_to_the_day_it_ends() {
        // 23:01 local on the 10th to 06:45 local on the 11th.
        let m = one::<api::Sleep>(json!({
            "summaryId": "s2", "startTimeInSeconds": 1710108090,
            "startTimeOffsetInSeconds": 3600, "durationInSeconds": 26880,
            "awakeDurationInSeconds": 960
        }));
        assert!(
            m.samples
                .iter()
                .all(|s| s.local_date.to_string() == "2024-03-11")
        );
        assert_eq!(m.events[0].local_date.to_string(), "2024-03-11");
    }

    #[test]
    fn negative_status_codes_are_not_values() {
        let m = one::<api::StressDetails>(json!({
            "startTimeInSeconds": 1710111600, "startTimeOffsetInSeconds": 3600,
            "calendarDate": "2024-03-11",
            "timeOffsetStressLevelValues": {"0": 18, "180": -1, "360": -2, "540": 30, "x": 5}
        }));
        let v: Vec<f64> = m.samples.iter().map(|s| s.value).collect();
        assert_eq!(v, vec![18.0, 30.0]);
    }

    #[test]
    fn absurd_times_are_skipped_not_panicked_on() {
        let m = one::<api::Daily>(json!({
            "startTimeInSeconds": 1710025200, "calendarDate": "2024-03-10",
            "timeOffsetHeartRateSamples": {"9223372036854775807": 70, "15": 71}
        }));
        assert_eq!(m.samples.len(), 1);
        let m = one::<api::Activity>(json!({
            "summaryId": "1", "startTimeInSeconds": 9223372036854775807i64,
            "durationInSeconds": 60
        }));
        assert!(m.events.is_empty());
        let m = one::<api::Sleep>(json!({
            "summaryId": "s", "startTimeInSeconds": 1710108090, "durationInSeconds": 1e300
        }));
        assert_eq!(m.events[0].ended_at, None);
    }

    #[test]
    fn activity_types_fold_into_families() {
        assert_eq!(activity_type("TRAIL_RUNNING"), "running");
        assert_eq!(activity_type("INDOOR_CYCLING"), "cycling");
        assert_eq!(activity_type("MOUNTAIN_BIKING"), "cycling");
        assert_eq!(activity_type("LAP_SWIMMING"), "swimming");
        assert_eq!(activity_type("STRENGTH_TRAINING"), "strength_training");
    }

    #[test]
    fn user_metrics_use_the_users_zone_for_the_day_start() {
        let item: api::UserMetrics = serde_json::from_value(json!({
            "calendarDate": "2024-03-11", "vo2Max": 48.0
        }))
        .unwrap();
        let cx = MapContext {
            provider: "garmin",
            user_tz: Some("America/New_York".parse().unwrap()),
        };
        let m = map_all(std::slice::from_ref(&item), &cx);
        let s = &m.samples[0];
        assert_eq!(s.recorded_at.to_rfc3339(), "2024-03-11T04:00:00+00:00");
        assert_eq!(s.utc_offset_minutes, -240);
        assert_eq!(s.local_date.to_string(), "2024-03-11");
    }
}
