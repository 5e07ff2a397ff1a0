//! Strava activities → canonical samples and workout events. Pure functions.
//!
//! An activity's samples sit at its start instant. Its offset is the difference between the
//! wall-clock `start_date_local` and the UTC `start_date`, which is exactly what Strava used to
//! derive the local time (so a late-evening run in Los Angeles stays on its local date).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use super::ID;
use super::api::{Activity, Streams};
use crate::catalogue::unit;
use crate::domain::{EventType, NewEvent, NewSample};
use crate::time;

const KJ_PER_KCAL: f64 = 4.184;

/// Minutes east of UTC at the activity's start.
pub fn offset_minutes(a: &Activity) -> i32 {
    let diff = a.start_date_local - a.start_date.naive_utc();
    let mins = diff.num_minutes();
    if mins.abs() <= 18 * 60 {
        mins as i32
    } else {
        a.utc_offset.map(|s| (s / 60.0).round() as i32).unwrap_or(0)
    }
}

pub fn local_date(a: &Activity) -> NaiveDate {
    a.start_date_local.date()
}

/// Strava `sport_type` (or legacy `type`) → canonical activity name.
pub fn activity_type(a: &Activity) -> String {
    let raw = a
        .sport_type
        .as_deref()
        .or(a.legacy_type.as_deref())
        .unwrap_or("Workout");
    let canonical = match raw {
        "Run" | "TrailRun" | "VirtualRun" => "running",
        "Ride" | "MountainBikeRide" | "GravelRide" | "VirtualRide" | "EBikeRide"
        | "EMountainBikeRide" | "Velomobile" | "Handcycle" => "cycling",
        "Swim" => "swimming",
        "Walk" => "walking",
        "Hike" => "hiking",
        "WeightTraining" => "strength_training",
        "Rowing" | "VirtualRow" => "rowing",
        "Yoga" => "yoga",
        "Elliptical" => "elliptical",
        "AlpineSki" | "BackcountrySki" => "skiing",
        "NordicSki" => "cross_country_skiing",
        "Workout" | "Crossfit" | "HighIntensityIntervalTraining" => "workout",
        other => return snake_case(other),
    };
    canonical.to_string()
}

/// `StandUpPaddling` → `stand_up_paddling`.
fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Energy in kcal and where it came from: the detail's metabolic `calories` when Strava has
/// them, else the mechanical work converted as documented (kJ / 4.184), which undercounts.
pub fn energy_kcal(a: &Activity) -> Option<(f64, &'static str)> {
    if let Some(c) = a.calories.filter(|c| *c > 0.0) {
        return Some((c, "calories"));
    }
    a.kilojoules
        .filter(|k| *k > 0.0)
        .map(|k| (k / KJ_PER_KCAL, "kilojoules"))
}

pub fn event(a: &Activity) -> NewEvent {
    let energy = energy_kcal(a);
    let ended_at = a
        .elapsed_time
        .map(|s| a.start_date + Duration::milliseconds((s * 1000.0) as i64));
    NewEvent {
        provider_event_id: a.id.to_string(),
        event_type: EventType::Workout,
        activity_type: Some(activity_type(a)),
        started_at: a.start_date,
        ended_at,
        local_date: local_date(a),
        duration_s: a.elapsed_time,
        distance_m: a.distance.filter(|d| *d > 0.0),
        energy_kcal: energy.map(|(k, _)| k),
        avg_hr: a.average_heartrate,
        max_hr: a.max_heartrate,
        data: Some(json!({
            "name": a.name,
            "sport_type": a.sport_type.as_deref().or(a.legacy_type.as_deref()),
            "moving_time_s": a.moving_time,
            "elevation_gain_m": a.total_elevation_gain,
            "average_speed_mps": a.average_speed,
            "max_speed_mps": a.max_speed,
            "average_watts": a.average_watts,
            "weighted_average_watts": a.weighted_average_watts,
            "max_watts": a.max_watts,
            "device_watts": a.device_watts,
            "work_kj": a.kilojoules,
            "energy_source": energy.map(|(_, s)| s),
            "suffer_score": a.suffer_score,
            "device_name": a.device_name,
            "trainer": a.trainer,
            "manual": a.manual,
            "timezone": a.timezone,
        })),
    }
}

fn sample(
    metric: &'static str,
    value: f64,
    unit: &'static str,
    at: DateTime<Utc>,
    offset: i32,
) -> NewSample {
    NewSample {
        provider: ID.to_string(),
        metric,
        value,
        unit,
        recorded_at: at,
        local_date: time::local_date(at, offset),
        utc_offset_minutes: offset,
        source: None,
        data: None,
    }
}

/// The activity's samples: distance, energy and moving minutes at its start, and heart rate as
/// one mean per minute of the stream (the activity's average when there is no stream).
pub fn samples(a: &Activity, streams: Option<&Streams>) -> Vec<NewSample> {
    let off = offset_minutes(a);
    let at = a.start_date;
    let mut out = Vec::new();
    if let Some(d) = a.distance.filter(|d| *d > 0.0) {
        out.push(sample("distance", d, unit::METRE, at, off));
    }
    if let Some((kcal, _)) = energy_kcal(a) {
        out.push(sample("active_energy", kcal, unit::KCAL, at, off));
    }
    if let Some(m) = a.moving_time.filter(|m| *m > 0.0) {
        out.push(sample("active_minutes", m / 60.0, unit::MINUTE, at, off));
    }
    let per_minute = streams.map(heart_rate_per_minute).unwrap_or_default();
    if per_minute.is_empty() {
        if let Some(hr) = a.average_heartrate.filter(|h| *h > 0.0) {
            out.push(sample("heart_rate", hr, unit::BPM, at, off));
        }
    } else {
        for (minute, mean) in per_minute {
            let t = at + Duration::minutes(minute);
            out.push(sample("heart_rate", mean, unit::BPM, t, off));
        }
    }
    out
}

/// Mean heart rate per whole minute since the start, from the `time` and `heartrate` streams.
pub fn heart_rate_per_minute(s: &Streams) -> BTreeMap<i64, f64> {
    let mut sums: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    let (Some(time), Some(hr)) = (&s.time, &s.heartrate) else {
        return BTreeMap::new();
    };
    for (t, bpm) in time.data.iter().zip(&hr.data) {
        let (Some(t), Some(bpm)) = (t, bpm) else {
            continue;
        };
        if *bpm <= 0.0 || *t < 0.0 {
            continue;
        }
        let e = sums.entry((*t / 60.0).floor() as i64).or_default();
        e.0 += bpm;
        e.1 += 1;
    }
    sums.into_iter()
        .map(|(m, (sum, n))| (m, (sum / f64::from(n) * 10.0).round() / 10.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(json: serde_json::Value) -> Activity {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn local_time_is_not_utc_and_energy_prefers_calories() {
        let a = activity(json!({
            "id": 1, "sport_type": "MountainBikeRide", "type": "Ride",
            "start_date": "2018-05-03T05:15:09Z", "start_date_local": "2018-05-02T22:15:09Z",
            "utc_offset": -25200, "distance": 24931.4, "moving_time": 4500, "elapsed_time": 4800,
            "kilojoules": 788.7, "has_heartrate": true, "average_heartrate": 140.3
        }));
        assert_eq!(offset_minutes(&a), -420);
        assert_eq!(local_date(&a).to_string(), "2018-05-02");
        assert_eq!(activity_type(&a), "cycling");
        let (kcal, src) = energy_kcal(&a).unwrap();
        assert!((kcal - 188.503).abs() < 1e-3 && src == "kilojoules");
        let mut detailed = a.clone();
        detailed.calories = Some(870.2);
        assert_eq!(energy_kcal(&detailed), Some((870.2, "calories")));
        let s = samples(&a, None);
        assert!(s.iter().all(|s| s.local_date.to_string() == "2018-05-02"));
        assert_eq!(
            s.iter()
                .find(|s| s.metric == "active_minutes")
                .unwrap()
                .value,
            75.0
        );
        assert_eq!(
            s.iter().find(|s| s.metric == "heart_rate").unwrap().value,
            140.3
        );
        let e = event(&a);
        assert_eq!(
            e.ended_at.unwrap().to_rfc3339(),
            "2018-05-03T06:35:09+00:00"
        );
        assert_eq!(snake_case("StandUpPaddling"), "stand_up_paddling");
    }

    #[test]
    fn heart_rate_is_a_mean_per_minute() {
        let s: Streams = serde_json::from_value(json!({
            "time": {"data": [0, 30, 59, 60, 90, 125]},
            "heartrate": {"data": [90, 100, 110, 120, null, 130]}
        }))
        .unwrap();
        let m = heart_rate_per_minute(&s);
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            vec![(0, 100.0), (1, 120.0), (2, 130.0)]
        );
    }
}
