//! The demo data model. Pure functions of (user, date, connection time): no clock, no I/O.

use std::f64::consts::PI;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

use crate::catalogue;
use crate::domain::{EventType, NewEvent, NewSample};
use crate::providers::SyncUser;

pub const METRICS: &[&str] = &[
    "steps",
    "distance",
    "active_energy",
    "active_minutes",
    "floors",
    "heart_rate",
    "resting_heart_rate",
    "hrv_rmssd",
    "spo2",
    "respiratory_rate",
    "body_temperature",
    "skin_temperature_deviation",
    "sleep_duration",
    "sleep_efficiency",
    "sleep_deep",
    "sleep_light",
    "sleep_rem",
    "sleep_awake",
    "sleep_score",
    "weight",
];

/// One local day of generated data, cut at `until`.
pub struct DemoDay {
    pub samples: Vec<NewSample>,
    pub events: Vec<NewEvent>,
    /// The instant the local day ends.
    pub ends_at: DateTime<Utc>,
}

/// splitmix64: tiny, fast, and stable across library versions (the data must never change
/// between releases, or every re-sync would rewrite history).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// FNV-1a, for turning text into seeds.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Traits of one simulated person, fixed by their external id.
struct Person {
    rhr: f64,
    hrv: f64,
    steps: f64,
    weekend_factor: f64,
    weight: f64,
    sleep_need: f64,
    wake_minute: f64,
    workout_days: [bool; 7],
    max_hr: f64,
}

impl Person {
    fn of(external_id: &str) -> Self {
        let mut r = Rng::new(fnv(external_id));
        let mut workout_days = [false; 7];
        let n = if r.unit() < 0.5 { 3 } else { 4 };
        let mut placed = 0;
        while placed < n {
            let d = (r.unit() * 7.0) as usize % 7;
            if !workout_days[d] {
                workout_days[d] = true;
                placed += 1;
            }
        }
        let age = r.range(25.0, 60.0);
        Person {
            rhr: r.range(50.0, 66.0),
            hrv: r.range(35.0, 85.0),
            steps: r.range(6_500.0, 11_500.0),
            weekend_factor: r.range(0.7, 1.3),
            weight: r.range(58.0, 95.0),
            sleep_need: r.range(400.0, 490.0),
            wake_minute: r.range(6.0 * 60.0, 8.0 * 60.0),
            workout_days,
            max_hr: 208.0 - 0.7 * age,
        }
    }
}

/// 0 outside the illness episode, up to 1 at its peak (days 2–3 of 4).
fn illness(date: NaiveDate, connected_at: DateTime<Utc>) -> f64 {
    let start = connected_at.date_naive() - Duration::days(10);
    match (date - start).num_days() {
        0 => 0.6,
        1 | 2 => 1.0,
        3 => 0.5,
        _ => 0.0,
    }
}

struct DayBuilder {
    offset: i32,
    local_midnight: DateTime<Utc>,
    until: DateTime<Utc>,
    date: NaiveDate,
    samples: Vec<NewSample>,
}

impl DayBuilder {
    fn at(&self, minute_of_day: f64) -> DateTime<Utc> {
        self.local_midnight + Duration::seconds((minute_of_day * 60.0).round() as i64)
    }

    /// Adds a sample if it has happened by `until`; `local_date` defaults to this day.
    fn push(&mut self, metric: &'static str, value: f64, at: DateTime<Utc>) {
        if at > self.until {
            return;
        }
        let def = catalogue::metric(metric).expect("demo metrics are in the catalogue");
        self.samples.push(NewSample {
            provider: "demo".into(),
            metric: def.name,
            value: (value * 100.0).round() / 100.0,
            unit: def.unit,
            recorded_at: at,
            local_date: self.date,
            utc_offset_minutes: self.offset,
            source: Some("VitaSync Demo Band".into()),
            data: None,
        });
    }
}

/// Generates `date` (a local date of the user) as known at `until`.
pub fn generate_day(
    user: &SyncUser,
    date: NaiveDate,
    connected_at: DateTime<Utc>,
    until: DateTime<Utc>,
) -> DemoDay {
    let p = Person::of(&user.external_id);
    let noon = date.and_hms_opt(12, 0, 0).expect("valid").and_utc();
    let offset = crate::time::resolve_offset(noon, None, user.timezone);
    let local_midnight =
        date.and_hms_opt(0, 0, 0).expect("valid").and_utc() - Duration::minutes(i64::from(offset));
    let ends_at = local_midnight + Duration::days(1);
    let mut r = Rng::new(
        fnv(&user.external_id)
            ^ (date.num_days_from_ce() as u64).wrapping_mul(0x2545_F491_4F6C_DD1D),
    );
    let ill = illness(date, connected_at);
    let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
    let mut b = DayBuilder {
        offset,
        local_midnight,
        until,
        date,
        samples: Vec::with_capacity(256),
    };
    let mut events = Vec::new();

    // Overnight physiology, measured during the sleep that ends this morning.
    let rhr = p.rhr + 1.2 * r.normal() + 7.0 * ill;
    let hrv = p.hrv * (1.0 - 0.3 * ill) * (0.08 * r.normal()).exp();
    let wake = p.wake_minute + if weekend { 45.0 } else { 0.0 } + 20.0 * r.normal();
    let asleep = (p.sleep_need + 30.0 * r.normal() - 45.0 * ill).clamp(240.0, 600.0);
    let efficiency = (92.0 + 2.5 * r.normal() - 7.0 * ill).clamp(70.0, 99.0);
    let in_bed = asleep / (efficiency / 100.0);
    let deep = asleep * r.range(0.15, 0.21) * (1.0 - 0.3 * ill);
    let rem = asleep * r.range(0.19, 0.25);
    let light = asleep - deep - rem;
    let awake = in_bed - asleep;
    let score = (100.0 * (asleep / p.sleep_need).min(1.0) * 0.6
        + efficiency * 0.25
        + (deep / asleep) * 100.0 * 0.5)
        .clamp(0.0, 100.0);
    let wake_at = b.at(wake);
    let bed_at = wake_at - Duration::seconds((in_bed * 60.0) as i64);
    for (m, v) in [
        ("sleep_duration", asleep),
        ("sleep_efficiency", efficiency),
        ("sleep_deep", deep),
        ("sleep_light", light),
        ("sleep_rem", rem),
        ("sleep_awake", awake),
        ("sleep_score", score),
        ("resting_heart_rate", rhr),
        ("hrv_rmssd", hrv),
        ("spo2", (96.8 + 0.6 * r.normal() - 2.0 * ill).min(100.0)),
        ("respiratory_rate", 14.2 + 0.5 * r.normal() + 2.5 * ill),
        ("skin_temperature_deviation", 0.15 * r.normal() + 0.9 * ill),
    ] {
        b.push(m, v, wake_at);
    }
    b.push(
        "body_temperature",
        36.6 + 0.15 * r.normal() + 1.1 * ill,
        wake_at + Duration::minutes(10),
    );
    if wake_at <= until {
        events.push(NewEvent {
            provider_event_id: format!("sleep-{date}"),
            event_type: EventType::Sleep,
            activity_type: None,
            started_at: bed_at,
            ended_at: Some(wake_at),
            local_date: date,
            duration_s: Some(in_bed * 60.0),
            distance_m: None,
            energy_kcal: None,
            avg_hr: Some(((rhr - 2.0) * 10.0).round() / 10.0),
            max_hr: None,
            data: Some(serde_json::json!({
                "minutes_asleep": asleep.round(), "deep": deep.round(), "light": light.round(),
                "rem": rem.round(), "awake": awake.round(), "efficiency": efficiency.round()
            })),
        });
    }
    if date.num_days_from_ce() % 3 == 0 {
        let drift = 0.8 * ((date.num_days_from_ce() as f64) / 40.0).sin();
        b.push(
            "weight",
            p.weight + drift + 0.3 * r.normal(),
            wake_at + Duration::minutes(15),
        );
    }

    // Daytime activity.
    let factor =
        if weekend { p.weekend_factor } else { 1.0 } * (1.0 - 0.6 * ill) * (0.2 * r.normal()).exp();
    let day_steps = p.steps * factor;
    let workout = p.workout_days[date.weekday().num_days_from_monday() as usize] && ill == 0.0;
    let workout_start = 17.5 * 60.0 + 60.0 * r.normal();
    let workout_minutes = r.range(30.0, 75.0);
    let mut steps_so_far = 0.0;
    let mut floors_so_far = 0.0;
    let awake_start = (wake / 60.0).ceil() as i64;
    let weights: Vec<f64> = (0..24)
        .map(|h| {
            if (h as i64) < awake_start || h >= 23 {
                0.02
            } else {
                1.0 + 0.6 * (((h as f64) - 8.0) * PI / 12.0).sin().max(0.0)
                    + if h == 12 || h == 18 { 0.5 } else { 0.0 }
            }
        })
        .collect();
    let wsum: f64 = weights.iter().sum();
    for (h, w) in weights.iter().enumerate() {
        let end = b.at((h as f64 + 1.0) * 60.0);
        if end > until {
            break;
        }
        let steps = (day_steps * w / wsum * (0.15 * r.normal()).exp())
            .round()
            .max(0.0);
        steps_so_far += steps;
        floors_so_far += (steps / 1500.0).floor();
        // Hourly buckets are stamped with their start, as devices report them.
        b.push("steps", steps, b.at(h as f64 * 60.0));
    }

    // Heart rate every 10 minutes: circadian rhythm, plus the workout.
    for i in 0..144 {
        let minute = f64::from(i) * 10.0;
        let at = b.at(minute);
        if at > until {
            break;
        }
        let asleep_now = minute < wake || minute > wake + 16.0 * 60.0;
        let base = if asleep_now {
            rhr - 2.0 + 1.5 * r.normal()
        } else {
            rhr + 14.0 + 6.0 * (PI * (minute - wake) / 960.0).sin() + 5.0 * r.normal().abs()
        };
        let in_workout =
            workout && minute >= workout_start && minute <= workout_start + workout_minutes;
        let hr = if in_workout {
            p.max_hr * r.range(0.68, 0.82)
        } else {
            base
        };
        b.push("heart_rate", hr, at);
    }

    let mut active_minutes = (day_steps / 250.0).round() * if ill > 0.0 { 0.4 } else { 1.0 };
    let mut active_kcal = steps_so_far * 0.045;
    let mut distance = steps_so_far * 0.78;
    let workout_end = b.at(workout_start + workout_minutes);
    if workout && workout_end <= until {
        let kinds = ["running", "cycling", "walking", "strength_training"];
        let kind = kinds
            [(date.num_days_from_ce() as usize + (fnv(&user.external_id) as usize)) % kinds.len()];
        let (dist, kcal_per_min) = match kind {
            "running" => (workout_minutes * r.range(140.0, 190.0), 11.0),
            "cycling" => (workout_minutes * r.range(380.0, 480.0), 9.0),
            "walking" => (workout_minutes * r.range(80.0, 100.0), 4.5),
            _ => (0.0, 6.0),
        };
        let kcal = workout_minutes * kcal_per_min * r.range(0.9, 1.1);
        active_minutes += workout_minutes.round();
        active_kcal += kcal;
        distance += dist;
        let avg = p.max_hr * r.range(0.70, 0.80);
        events.push(NewEvent {
            provider_event_id: format!("workout-{date}"),
            event_type: EventType::Workout,
            activity_type: Some(kind.to_string()),
            started_at: b.at(workout_start),
            ended_at: Some(workout_end),
            local_date: date,
            duration_s: Some((workout_minutes * 60.0).round()),
            distance_m: (dist > 0.0).then_some(dist.round()),
            energy_kcal: Some(kcal.round()),
            avg_hr: Some(avg.round()),
            max_hr: Some((avg + r.range(10.0, 20.0)).min(p.max_hr).round()),
            data: None,
        });
    }

    // Running daily totals, stamped at the start of the local day: they grow until the day ends.
    if until > local_midnight {
        let start = b.at(0.0);
        b.push("distance", distance, start);
        b.push("active_energy", active_kcal, start);
        b.push("active_minutes", active_minutes, start);
        b.push("floors", floors_so_far, start);
    }

    DemoDay {
        samples: b.samples,
        events,
        ends_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tz: Option<&str>) -> SyncUser {
        SyncUser {
            external_id: "demo-alice".into(),
            timezone: tz.map(|t| t.parse().unwrap()),
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn value(day: &DemoDay, metric: &str) -> f64 {
        day.samples
            .iter()
            .find(|s| s.metric == metric)
            .map(|s| s.value)
            .unwrap()
    }

    #[test]
    fn deterministic_and_growing() {
        let u = user(Some("Europe/Oslo"));
        let connected = t("2024-06-30T12:00:00Z");
        let d = NaiveDate::from_ymd_opt(2024, 6, 10).unwrap();
        let a = generate_day(&u, d, connected, t("2024-06-30T00:00:00Z"));
        let b = generate_day(&u, d, connected, t("2024-06-30T00:00:00Z"));
        assert_eq!(a.samples, b.samples);
        assert!(a.samples.iter().all(|s| s.local_date == d));
        // Part of the day: fewer samples, smaller running totals.
        let partial = generate_day(&u, d, connected, t("2024-06-10T10:00:00Z"));
        assert!(partial.samples.len() < a.samples.len());
        assert!(value(&partial, "distance") < value(&a, "distance"));
        assert!(
            partial
                .samples
                .iter()
                .all(|s| s.recorded_at <= t("2024-06-10T10:00:00Z"))
        );
    }

    #[test]
    fn illness_shows_in_the_vitals() {
        let u = user(None);
        let connected = t("2024-06-30T12:00:00Z");
        let until = t("2024-07-01T00:00:00Z");
        let day = |d: u32| {
            generate_day(
                &u,
                NaiveDate::from_ymd_opt(2024, 6, d).unwrap(),
                connected,
                until,
            )
        };
        let healthy: Vec<_> = (1..=14).map(day).collect();
        let sick = day(21);
        let mean =
            |m: &str| healthy.iter().map(|d| value(d, m)).sum::<f64>() / healthy.len() as f64;
        assert!(value(&sick, "resting_heart_rate") > mean("resting_heart_rate") + 4.0);
        assert!(value(&sick, "hrv_rmssd") < mean("hrv_rmssd") * 0.85);
        let steps = |d: &DemoDay| {
            d.samples
                .iter()
                .filter(|s| s.metric == "steps")
                .map(|s| s.value)
                .sum::<f64>()
        };
        assert!(steps(&sick) < healthy.iter().map(steps).sum::<f64>() / 14.0 * 0.7);
    }

    #[test]
    fn workouts_three_or_four_times_a_week() {
        let u = user(None);
        let connected = t("2024-09-30T12:00:00Z");
        let until = t("2024-10-01T00:00:00Z");
        let workouts: usize = (1..=28)
            .map(|d| {
                generate_day(
                    &u,
                    NaiveDate::from_ymd_opt(2024, 8, d).unwrap(),
                    connected,
                    until,
                )
            })
            .map(|d| {
                d.events
                    .iter()
                    .filter(|e| e.event_type == EventType::Workout)
                    .count()
            })
            .sum();
        assert!(
            (12..=16).contains(&workouts),
            "{workouts} workouts in four weeks"
        );
    }
}
