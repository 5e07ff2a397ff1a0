//! WHOOP v2 records → canonical samples and events. Pure functions.
//!
//! Every record carries the `timezone_offset` the user had when it was made; local dates come
//! from it. A cycle belongs to the local date it starts on; a sleep (and the recovery computed
//! from it) to the local date it ends on. Recoveries carry no time of their own, so they are
//! placed at the end of their sleep, or at `created_at` in the user's zone when the sleep is
//! not at hand.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::ID;
use super::api::{Body, Cycle, Recovery, SCORED, Sleep, Workout};
use crate::catalogue::unit;
use crate::domain::{EventType, NewEvent, NewSample};
use crate::time;

const KJ_PER_KCAL: f64 = 4.184;
const MS_PER_MIN: f64 = 60_000.0;

/// When and where a sleep ended, for placing its recovery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SleepAnchor {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub offset: i32,
}

pub fn offset(raw: Option<&str>, at: DateTime<Utc>, tz: Option<chrono_tz::Tz>) -> i32 {
    time::resolve_offset(at, raw.and_then(time::parse_offset), tz)
}

fn sample(
    metric: &'static str,
    value: f64,
    unit: &'static str,
    at: DateTime<Utc>,
    offset: i32,
    local_date: NaiveDate,
) -> NewSample {
    NewSample {
        provider: ID.to_string(),
        metric,
        value,
        unit,
        recorded_at: at,
        local_date,
        utc_offset_minutes: offset,
        source: None,
        data: None,
    }
}

/// Day strain, total energy (kJ → kcal) and the day's mean heart rate, at the cycle start.
pub fn cycle_samples(c: &Cycle, tz: Option<chrono_tz::Tz>) -> Vec<NewSample> {
    let Some(score) = c.score.as_ref().filter(|_| c.score_state == SCORED) else {
        return Vec::new();
    };
    let off = offset(c.timezone_offset.as_deref(), c.start, tz);
    let date = time::local_date(c.start, off);
    let mut out = Vec::new();
    let mut push = |m, v: Option<f64>, u| {
        if let Some(v) = v {
            out.push(sample(m, v, u, c.start, off, date));
        }
    };
    push("strain", score.strain, unit::SCORE);
    push(
        "total_energy",
        score.kilojoule.map(|k| k / KJ_PER_KCAL),
        unit::KCAL,
    );
    push("heart_rate", score.average_heart_rate, unit::BPM);
    if let Some(s) = out.first_mut() {
        s.data = Some(json!({"cycle_id": c.id, "max_heart_rate": score.max_heart_rate}));
    }
    out
}

pub fn sleep_anchor(s: &Sleep, tz: Option<chrono_tz::Tz>) -> SleepAnchor {
    SleepAnchor {
        start: s.start,
        end: s.end,
        offset: offset(s.timezone_offset.as_deref(), s.end, tz),
    }
}

pub fn sleep_event(s: &Sleep, tz: Option<chrono_tz::Tz>) -> NewEvent {
    let a = sleep_anchor(s, tz);
    let score = s.score.as_ref().filter(|_| s.score_state == SCORED);
    let stages = score.map(|sc| &sc.stage_summary);
    let minutes = |ms: f64| (ms / MS_PER_MIN * 10.0).round() / 10.0;
    NewEvent {
        provider_event_id: s.id.clone(),
        event_type: EventType::Sleep,
        activity_type: None,
        started_at: s.start,
        ended_at: Some(s.end),
        local_date: time::local_date(s.end, a.offset),
        duration_s: Some((s.end - s.start).num_milliseconds() as f64 / 1000.0),
        distance_m: None,
        energy_kcal: None,
        avg_hr: None,
        max_hr: None,
        data: Some(json!({
            "nap": s.nap,
            "score_state": s.score_state,
            "asleep_min": stages.map(|st| minutes(asleep_ms(st))),
            "deep_min": stages.map(|st| minutes(st.total_slow_wave_sleep_time_milli)),
            "light_min": stages.map(|st| minutes(st.total_light_sleep_time_milli)),
            "rem_min": stages.map(|st| minutes(st.total_rem_sleep_time_milli)),
            "awake_min": stages.map(|st| minutes(st.total_awake_time_milli)),
            "sleep_cycle_count": stages.and_then(|st| st.sleep_cycle_count),
            "disturbance_count": stages.and_then(|st| st.disturbance_count),
            "efficiency": score.and_then(|sc| sc.sleep_efficiency_percentage),
            "performance": score.and_then(|sc| sc.sleep_performance_percentage),
            "consistency": score.and_then(|sc| sc.sleep_consistency_percentage),
            "respiratory_rate": score.and_then(|sc| sc.respiratory_rate),
            "sleep_needed": score.and_then(|sc| sc.sleep_needed.clone()),
        })),
    }
}

fn asleep_ms(st: &super::api::StageSummary) -> f64 {
    (st.total_in_bed_time_milli - st.total_awake_time_milli - st.total_no_data_time_milli).max(0.0)
}

/// Stage minutes, efficiency, performance (as the sleep score) and respiratory rate of a scored
/// main sleep, at the sleep's start and on the local date it ends. Naps are events only, so
/// they do not dilute the night's efficiency and score.
pub fn sleep_samples(s: &Sleep, tz: Option<chrono_tz::Tz>) -> Vec<NewSample> {
    let Some(score) = s.score.as_ref().filter(|_| s.score_state == SCORED) else {
        return Vec::new();
    };
    if s.nap {
        return Vec::new();
    }
    let a = sleep_anchor(s, tz);
    let date = time::local_date(s.end, a.offset);
    let st = &score.stage_summary;
    let mut out = Vec::new();
    let mut push = |m, v: Option<f64>, u| {
        if let Some(v) = v {
            out.push(sample(m, v, u, s.start, a.offset, date));
        }
    };
    push(
        "sleep_duration",
        Some(asleep_ms(st) / MS_PER_MIN),
        unit::MINUTE,
    );
    push(
        "sleep_deep",
        Some(st.total_slow_wave_sleep_time_milli / MS_PER_MIN),
        unit::MINUTE,
    );
    push(
        "sleep_light",
        Some(st.total_light_sleep_time_milli / MS_PER_MIN),
        unit::MINUTE,
    );
    push(
        "sleep_rem",
        Some(st.total_rem_sleep_time_milli / MS_PER_MIN),
        unit::MINUTE,
    );
    push(
        "sleep_awake",
        Some(st.total_awake_time_milli / MS_PER_MIN),
        unit::MINUTE,
    );
    push(
        "sleep_efficiency",
        score.sleep_efficiency_percentage,
        unit::PERCENT,
    );
    push(
        "sleep_score",
        score.sleep_performance_percentage,
        unit::SCORE,
    );
    push("respiratory_rate", score.respiratory_rate, unit::BRPM);
    out
}

/// Recovery score, resting heart rate, HRV (RMSSD, ms) and SpO2 at the end of the sleep the
/// recovery was computed from. The absolute skin temperature has no catalogue metric; it is
/// kept on the recovery score's sample.
pub fn recovery_samples(
    r: &Recovery,
    sleep: Option<SleepAnchor>,
    tz: Option<chrono_tz::Tz>,
) -> Vec<NewSample> {
    let Some(score) = r.score.as_ref().filter(|_| r.score_state == SCORED) else {
        return Vec::new();
    };
    let (at, off) = match sleep {
        Some(a) => (a.end, a.offset),
        None => (r.created_at, time::resolve_offset(r.created_at, None, tz)),
    };
    let date = time::local_date(at, off);
    let mut out = Vec::new();
    let mut push = |m, v: Option<f64>, u| {
        if let Some(v) = v {
            out.push(sample(m, v, u, at, off, date));
        }
    };
    push("recovery_score", score.recovery_score, unit::PERCENT);
    push("resting_heart_rate", score.resting_heart_rate, unit::BPM);
    push("hrv_rmssd", score.hrv_rmssd_milli, unit::MS);
    push("spo2", score.spo2_percentage, unit::PERCENT);
    if let Some(s) = out.first_mut() {
        s.data = Some(json!({
            "cycle_id": r.cycle_id,
            "sleep_id": r.sleep_id,
            "user_calibrating": score.user_calibrating,
            "skin_temp_celsius": score.skin_temp_celsius,
        }));
    }
    out
}

/// WHOOP `sport_name` → canonical activity name.
pub fn activity_type(sport: Option<&str>) -> String {
    let raw = sport.unwrap_or("activity").trim().to_ascii_lowercase();
    let canonical = match raw.as_str() {
        "running" | "track & field" => "running",
        "cycling" | "mountain biking" | "spin" | "spinning" => "cycling",
        "swimming" => "swimming",
        "walking" => "walking",
        "hiking/rucking" | "hiking" | "rucking" => "hiking",
        "weightlifting" | "powerlifting" | "functional fitness" | "strength trainer" => {
            "strength_training"
        }
        "rowing" => "rowing",
        "yoga" | "hot yoga" => "yoga",
        "elliptical" => "elliptical",
        _ => {
            return raw
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
                .split('_')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("_");
        }
    };
    canonical.to_string()
}

pub fn workout_event(w: &Workout, tz: Option<chrono_tz::Tz>) -> NewEvent {
    let off = offset(w.timezone_offset.as_deref(), w.start, tz);
    let score = w.score.as_ref().filter(|_| w.score_state == SCORED);
    NewEvent {
        provider_event_id: w.id.clone(),
        event_type: EventType::Workout,
        activity_type: Some(activity_type(w.sport_name.as_deref())),
        started_at: w.start,
        ended_at: Some(w.end),
        local_date: time::local_date(w.start, off),
        duration_s: Some((w.end - w.start).num_milliseconds() as f64 / 1000.0),
        distance_m: score.and_then(|s| s.distance_meter),
        energy_kcal: score.and_then(|s| s.kilojoule).map(|k| k / KJ_PER_KCAL),
        avg_hr: score.and_then(|s| s.average_heart_rate),
        max_hr: score.and_then(|s| s.max_heart_rate),
        data: Some(json!({
            "sport_name": w.sport_name,
            "sport_id": w.sport_id,
            "score_state": w.score_state,
            "strain": score.and_then(|s| s.strain),
            "kilojoule": score.and_then(|s| s.kilojoule),
            "percent_recorded": score.and_then(|s| s.percent_recorded),
            "altitude_gain_m": score.and_then(|s| s.altitude_gain_meter),
            "altitude_change_m": score.and_then(|s| s.altitude_change_meter),
            "zone_durations_ms": score.and_then(|s| s.zone_durations.clone()),
        })),
    }
}

/// A workout's distance, at its start.
pub fn workout_samples(w: &Workout, tz: Option<chrono_tz::Tz>) -> Vec<NewSample> {
    let off = offset(w.timezone_offset.as_deref(), w.start, tz);
    w.score
        .as_ref()
        .filter(|_| w.score_state == SCORED)
        .and_then(|s| s.distance_meter)
        .filter(|d| *d > 0.0)
        .map(|d| {
            vec![sample(
                "distance",
                d,
                unit::METRE,
                w.start,
                off,
                time::local_date(w.start, off),
            )]
        })
        .unwrap_or_default()
}

/// Body weight as of `at` (the start of the user's local day, so a day has one value).
pub fn body_samples(b: &Body, at: DateTime<Utc>, tz: Option<chrono_tz::Tz>) -> Vec<NewSample> {
    let off = time::resolve_offset(at, None, tz);
    b.weight_kilogram
        .filter(|w| *w > 0.0)
        .map(|w| {
            let mut s = sample("weight", w, unit::KG, at, off, time::local_date(at, off));
            s.data =
                Some(json!({"height_meter": b.height_meter, "max_heart_rate": b.max_heart_rate}));
            vec![s]
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sports_map_to_canonical_names() {
        assert_eq!(activity_type(Some("running")), "running");
        assert_eq!(
            activity_type(Some("Functional Fitness")),
            "strength_training"
        );
        assert_eq!(activity_type(Some("Ice Hockey")), "ice_hockey");
        assert_eq!(activity_type(None), "activity");
    }

    #[test]
    fn pending_records_have_no_samples() {
        let c: Cycle = serde_json::from_value(json!({
            "id": 1, "start": "2024-03-11T22:00:00Z", "timezone_offset": "+01:00",
            "score_state": "PENDING_SCORE"
        }))
        .unwrap();
        assert!(cycle_samples(&c, None).is_empty());
    }
}
