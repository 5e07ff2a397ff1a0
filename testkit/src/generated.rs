//! Generated wearable data for benchmarks: one value per user, metric and date (days since
//! 1970-01-01) for fifteen catalogue metrics, deterministic in its arguments, with per-user
//! levels and day-to-day structure the analytics react to (activity metrics move together,
//! strain raises resting heart rate and lowers HRV, ~1 % "sick" dates trip the detectors).

/// The generated metrics (catalogue names); values are in each one's canonical unit.
pub const METRICS: [&str; 15] = [
    "steps",
    "distance",
    "active_energy",
    "active_minutes",
    "heart_rate",
    "resting_heart_rate",
    "hrv_rmssd",
    "spo2",
    "respiratory_rate",
    "sleep_duration",
    "sleep_efficiency",
    "sleep_deep",
    "sleep_rem",
    "sleep_awake",
    "weight",
];

/// A well-mixed 64-bit hash of `x` (splitmix64's finaliser), for deterministic draws.
pub fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: every input bit reaches every output bit.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn unit(seed: u64) -> f64 {
    ((mix(seed) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A standard normal draw that depends only on the seed (Box–Muller).
fn normal(seed: u64) -> f64 {
    let (a, b) = (unit(seed), unit(seed ^ 0x5555_5555_5555_5555));
    (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
}

fn seed(user: u64, stream: u64, day: i32) -> u64 {
    mix(user.wrapping_mul(0x1000_0001) ^ (stream << 40) ^ (day as u64 & 0xFF_FFFF))
}

/// The value of one metric on one date for one user, in the metric's canonical unit. Each user
/// has their own levels; each date a shared activity, sleep and strain state, so activity
/// metrics move together, strain raises resting heart rate and lowers HRV, and a rare sick
/// date gives the anomaly detectors real work.
pub fn value(user: u64, metric: usize, day: i32) -> f64 {
    let level = |k: u64| unit(mix(user) ^ k);
    let activity = normal(seed(user, 100, day))
        + if (day + 3).rem_euclid(7) >= 5 {
            0.4
        } else {
            0.0
        };
    let sleep = normal(seed(user, 101, day));
    let strain = normal(seed(user, 102, day));
    let sick = unit(seed(user, 103, day)) < 0.01;
    let noise = normal(seed(user, metric as u64, day));
    let steps = (5_000.0 + 7_000.0 * level(1)) * (1.0 + 0.3 * activity + 0.1 * noise).max(0.05);
    let sleep_minutes = (390.0 + 60.0 * level(2) + 35.0 * sleep).max(120.0);
    let v = match METRICS[metric] {
        "steps" => steps.round(),
        "distance" => (steps * (0.68 + 0.12 * level(3)) * (1.0 + 0.03 * noise)).round(),
        "active_energy" => (steps * (0.035 + 0.015 * level(4)) + 40.0 * noise).max(0.0),
        "active_minutes" => (steps / 160.0 + 8.0 * noise).max(0.0).round(),
        "heart_rate" => 64.0 + 14.0 * level(5) + 3.0 * activity + 2.0 * noise,
        "resting_heart_rate" => {
            52.0 + 16.0 * level(6) + 1.5 * strain + noise + if sick { 9.0 } else { 0.0 }
        }
        "hrv_rmssd" => {
            (25.0 + 60.0 * level(7))
                * (-0.12 * strain - 0.1 * noise - if sick { 0.4 } else { 0.0 }).exp()
        }
        "spo2" => (96.5 + 0.8 * noise - if sick { 3.5 } else { 0.0 }).min(100.0),
        "respiratory_rate" => 13.0 + 3.0 * level(8) + 0.6 * noise + if sick { 2.5 } else { 0.0 },
        "sleep_duration" => sleep_minutes.round(),
        "sleep_efficiency" => (86.0 + 6.0 * level(9) + 3.0 * noise).min(99.0),
        "sleep_deep" => (sleep_minutes * (0.15 + 0.02 * noise)).round(),
        "sleep_rem" => (sleep_minutes * (0.21 + 0.03 * noise)).round(),
        "sleep_awake" => (25.0 + 10.0 * noise - 5.0 * sleep).max(2.0).round(),
        "weight" => 55.0 + 40.0 * level(10) + 0.8 * (f64::from(day) / 58.0).sin() + 0.3 * noise,
        other => unreachable!("{other}"),
    };
    // Devices report to a tenth at most.
    (v * 10.0).round() / 10.0
}
