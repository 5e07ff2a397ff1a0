//! Fitbit wire records → canonical samples and events. Pure functions: no I/O, no clock.
//!
//! Units: VitaSync never sends `Accept-Language`, so Fitbit answers in metric (km, kg, °C).
//! Daily values are stamped at the start of their local date (re-syncing a growing day then
//! updates one sample instead of adding another); nightly values (HRV, SpO2, breathing rate,
//! skin temperature) carry Fitbit's date, which is the date the sleep ended; sleep metrics are
//! stamped at the sleep's end, on `dateOfSleep`.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use super::api::{
    ActivityLog, ActivitySummary, BreathingDay, FatLog, HeartDay, HrvDay, Intraday, SkinTempDay,
    SleepLog, Spo2Day, WeightLog,
};
use super::zone::Zone;
use crate::catalogue;
use crate::domain::{EventType, NewEvent, NewSample};

pub const PROVIDER: &str = "fitbit";

/// Every catalogue metric this provider writes.
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
    "sleep_duration",
    "sleep_efficiency",
    "sleep_deep",
    "sleep_light",
    "sleep_rem",
    "sleep_awake",
    "weight",
    "body_fat",
    "bmi",
];

const KM_TO_M: f64 = 1000.0;
const MI_TO_M: f64 = 1_609.344;

fn sample(
    metric: &'static str,
    value: f64,
    at: DateTime<Utc>,
    local_date: NaiveDate,
    offset: i32,
) -> NewSample {
    let def = catalogue::metric(metric).expect("Fitbit metrics are catalogue names");
    NewSample {
        provider: PROVIDER.to_string(),
        metric: def.name,
        value,
        unit: def.unit,
        recorded_at: at,
        local_date,
        utc_offset_minutes: offset,
        source: None,
        data: None,
    }
}

/// A value for the whole local `date`, stamped at the date's start.
fn daily(zone: &Zone, date: NaiveDate, metric: &'static str, value: f64) -> NewSample {
    let at = zone.start_of_day(date);
    sample(metric, value, at, date, zone.offset_at(at))
}

/// The daily activity summary of `date`. A day on which the tracker recorded nothing (no
/// steps, no distance, no activity calories — Fitbit still reports BMR calories for it) yields
/// nothing: such zeros mean "not worn", and writing them would drag averages down.
pub fn daily_activity(zone: &Zone, date: NaiveDate, s: &ActivitySummary) -> Vec<NewSample> {
    let distance_km = s
        .distances
        .iter()
        .find(|d| d.activity == "total")
        .map(|d| d.distance);
    let worn = s.steps.unwrap_or(0.0) > 0.0
        || distance_km.unwrap_or(0.0) > 0.0
        || s.activity_calories.unwrap_or(0.0) > 0.0;
    if !worn {
        return Vec::new();
    }
    let active_minutes = match (s.fairly_active_minutes, s.very_active_minutes) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    };
    [
        ("steps", s.steps),
        ("distance", distance_km.map(|km| km * KM_TO_M)),
        ("active_energy", s.activity_calories),
        ("total_energy", s.calories_out),
        ("active_minutes", active_minutes),
        ("floors", s.floors),
    ]
    .into_iter()
    .filter_map(|(m, v)| v.map(|v| daily(zone, date, m, v)))
    .collect()
}

/// Resting heart rate of each day in a heart response.
pub fn resting_heart_rate(zone: &Zone, days: &[HeartDay]) -> Vec<NewSample> {
    days.iter()
        .filter_map(|d| {
            d.value
                .resting_heart_rate
                .filter(|v| *v > 0.0)
                .map(|v| daily(zone, d.date_time, "resting_heart_rate", v))
        })
        .collect()
}

/// One heart-rate sample per intraday point of local `date`.
pub fn intraday_heart_rate(zone: &Zone, date: NaiveDate, intraday: &Intraday) -> Vec<NewSample> {
    intraday
        .dataset
        .iter()
        .filter(|p| p.value > 0.0)
        .map(|p| {
            let (at, off) = zone.resolve(date.and_time(p.time));
            sample("heart_rate", p.value, at, date, off)
        })
        .collect()
}

pub fn hrv(zone: &Zone, days: &[HrvDay]) -> Vec<NewSample> {
    days.iter()
        .filter_map(|d| {
            d.value.daily_rmssd.map(|v| {
                let mut s = daily(zone, d.date_time, "hrv_rmssd", v);
                // Fitbit's figure is the whole main sleep; deep-sleep RMSSD is kept alongside
                // so the measurement window stays visible.
                s.data = Some(json!({"window": "main_sleep", "deep_rmssd": d.value.deep_rmssd}));
                s
            })
        })
        .collect()
}

pub fn spo2(zone: &Zone, days: &[Spo2Day]) -> Vec<NewSample> {
    days.iter()
        .filter_map(|d| {
            d.value.as_ref().map(|v| {
                let mut s = daily(zone, d.date_time, "spo2", v.avg);
                s.data = Some(json!({"min": v.min, "max": v.max}));
                s
            })
        })
        .collect()
}

pub fn breathing_rate(zone: &Zone, days: &[BreathingDay]) -> Vec<NewSample> {
    days.iter()
        .filter_map(|d| {
            d.value
                .breathing_rate
                .filter(|v| *v > 0.0)
                .map(|v| daily(zone, d.date_time, "respiratory_rate", v))
        })
        .collect()
}

/// Nightly skin temperature relative to the personal baseline (°C in metric units).
pub fn skin_temperature(zone: &Zone, days: &[SkinTempDay]) -> Vec<NewSample> {
    days.iter()
        .filter_map(|d| {
            d.value.nightly_relative.map(|v| {
                let mut s = daily(zone, d.date_time, "skin_temperature_deviation", v);
                s.data = d.log_type.as_ref().map(|t| json!({"log_type": t}));
                s
            })
        })
        .collect()
}

/// A sleep log as a sleep event plus its metrics on the date it ended.
pub fn sleep(zone: &Zone, log: &SleepLog) -> (NewEvent, Vec<NewSample>) {
    let (start, _) = zone.resolve(log.start_time);
    let (end, end_offset) = zone.resolve(log.end_time);
    let date = log.date_of_sleep;
    let stage = |name: &str| {
        log.levels
            .as_ref()
            .and_then(|l| l.summary.get(name))
            .map(|s| s.minutes)
    };
    let stages = log.kind.as_deref() == Some("stages");
    let mut samples = Vec::new();
    let mut push = |metric: &'static str, v: Option<f64>| {
        if let Some(v) = v {
            samples.push(sample(metric, v, end, date, end_offset));
        }
    };
    push("sleep_duration", log.minutes_asleep);
    // Naps are short and restless by nature; their efficiency would drag the night's down
    // under the catalogue's mean, so only the main sleep reports one.
    push(
        "sleep_efficiency",
        log.efficiency.filter(|_| log.is_main_sleep),
    );
    if stages {
        push("sleep_deep", stage("deep"));
        push("sleep_light", stage("light"));
        push("sleep_rem", stage("rem"));
    }
    push(
        "sleep_awake",
        log.minutes_awake
            .or_else(|| stage(if stages { "wake" } else { "awake" })),
    );
    let summary: serde_json::Map<String, serde_json::Value> = log
        .levels
        .as_ref()
        .map(|l| {
            l.summary
                .iter()
                .map(|(k, v)| (k.clone(), json!(v.minutes)))
                .collect()
        })
        .unwrap_or_default();
    let event = NewEvent {
        provider_event_id: log.log_id.to_string(),
        event_type: EventType::Sleep,
        activity_type: None,
        started_at: start,
        ended_at: Some(end),
        local_date: date,
        duration_s: Some(log.duration as f64 / 1000.0),
        distance_m: None,
        energy_kcal: None,
        avg_hr: None,
        max_hr: None,
        data: Some(json!({
            "is_main_sleep": log.is_main_sleep,
            "type": log.kind,
            "log_type": log.log_type,
            "info_code": log.info_code,
            "efficiency": log.efficiency,
            "minutes_asleep": log.minutes_asleep,
            "minutes_awake": log.minutes_awake,
            "minutes_to_fall_asleep": log.minutes_to_fall_asleep,
            "time_in_bed": log.time_in_bed,
            "stages": summary,
        })),
    };
    (event, samples)
}

/// A canonical activity name for a Fitbit activity name (`Run`, `Outdoor Bike`, …); unknown
/// names become their snake_case form so nothing is lost.
pub fn activity_type(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let known = match lower.as_str() {
        "run" | "running" | "treadmill" | "treadmill run" | "trail run" => "running",
        "walk" | "walking" | "treadmill walk" => "walking",
        "hike" | "hiking" => "hiking",
        "bike" | "biking" | "outdoor bike" | "cycling" | "mountain biking" | "road biking" => {
            "cycling"
        }
        "spinning" | "indoor bike" | "stationary bike" => "indoor_cycling",
        "swim" | "swimming" => "swimming",
        "weights" | "weight lifting" | "strength training" => "strength_training",
        "yoga" => "yoga",
        "elliptical" => "elliptical",
        "interval workout" | "hiit" => "hiit",
        "workout" | "aerobic workout" | "sport" => "workout",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let mut out = String::with_capacity(lower.len());
    for c in lower.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() { "other".into() } else { out }
}

/// Metres for a logged distance in `unit` (metric accounts report kilometres).
fn distance_m(distance: f64, unit: Option<&str>) -> f64 {
    match unit.map(str::to_ascii_lowercase).as_deref() {
        Some("mile") | Some("miles") => distance * MI_TO_M,
        Some("meter") | Some("meters") => distance,
        _ => distance * KM_TO_M,
    }
}

/// A logged activity as a workout event. Fitbit's log has no maximum heart rate.
pub fn workout(log: &ActivityLog) -> NewEvent {
    let start = log.start_time.with_timezone(&Utc);
    let total_ms = log.duration.or(log.active_duration);
    let active_ms = log.active_duration.or(log.duration);
    NewEvent {
        provider_event_id: log.log_id.to_string(),
        event_type: EventType::Workout,
        activity_type: Some(activity_type(&log.activity_name)),
        started_at: start,
        ended_at: total_ms.map(|ms| start + Duration::milliseconds(ms as i64)),
        local_date: log.start_time.date_naive(),
        duration_s: active_ms.map(|ms| ms as f64 / 1000.0),
        distance_m: log
            .distance
            .filter(|d| *d > 0.0)
            .map(|d| distance_m(d, log.distance_unit.as_deref())),
        energy_kcal: log.calories,
        avg_hr: log.average_heart_rate,
        max_hr: None,
        data: Some(json!({
            "name": log.activity_name,
            "activity_type_id": log.activity_type_id,
            "log_type": log.log_type,
            "steps": log.steps,
            "elevation_gain_m": log.elevation_gain,
            "last_modified": log.last_modified,
        })),
    }
}

/// Weight (kg) and BMI of a weight log entry. Its `fat` is read from the fat log instead,
/// which also holds body fat logged without a weight.
pub fn weight(zone: &Zone, log: &WeightLog) -> Vec<NewSample> {
    let (at, off) = zone.resolve(log.date.and_time(log.time));
    let mut out = vec![sample("weight", log.weight, at, log.date, off)];
    if let Some(bmi) = log.bmi.filter(|b| *b > 0.0) {
        out.push(sample("bmi", bmi, at, log.date, off));
    }
    for s in &mut out {
        s.source = log.source.clone();
    }
    out
}

pub fn body_fat(zone: &Zone, log: &FatLog) -> NewSample {
    let (at, off) = zone.resolve(log.date.and_time(log.time));
    let mut s = sample("body_fat", log.fat, at, log.date, off);
    s.source = log.source.clone();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_in_the_catalogue() {
        for m in METRICS {
            assert!(catalogue::metric(m).is_some(), "{m}");
        }
    }

    #[test]
    fn activity_names() {
        assert_eq!(activity_type("Run"), "running");
        assert_eq!(activity_type("Outdoor Bike"), "cycling");
        assert_eq!(activity_type("Weights"), "strength_training");
        assert_eq!(activity_type("Stand Up Paddling!"), "stand_up_paddling");
        assert_eq!(activity_type("  "), "other");
    }

    #[test]
    fn unworn_day_yields_nothing() {
        let zone = Zone::Fixed(0);
        let date = NaiveDate::from_ymd_opt(2024, 3, 11).unwrap();
        let idle = ActivitySummary {
            steps: Some(0.0),
            calories_out: Some(1500.0),
            calories_bmr: Some(1500.0),
            activity_calories: Some(0.0),
            ..Default::default()
        };
        assert!(daily_activity(&zone, date, &idle).is_empty());
        let moving = ActivitySummary {
            steps: Some(12.0),
            ..idle
        };
        assert_eq!(daily_activity(&zone, date, &moving).len(), 3);
    }

    #[test]
    fn distance_units() {
        assert_eq!(distance_m(2.0, Some("Kilometer")), 2000.0);
        assert_eq!(distance_m(1.0, Some("Mile")), MI_TO_M);
        assert_eq!(distance_m(5.0, None), 5000.0);
    }
}
