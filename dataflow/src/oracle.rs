//! The batch oracle: the same analytics computed from scratch over a set of sample rows, with
//! the same arithmetic (`stats`). The pipeline is correct when, after every epoch, the rows it
//! has produced (deltas accumulated) equal what this computes from the store's current
//! contents.

use std::collections::BTreeMap;

use crate::model::{
    ANOMALY_WINDOW, Anomaly, Baseline, CORRELATION_WINDOW, Correlation, Daily, Day, Fixed,
    HRV_REFERENCE_WINDOW, MetricKey, Record, SampleRow, ScoreInput, Scores, UserKey, WINDOWS,
    metric_key,
};
use crate::model::{WorkoutKind, WorkoutRow};
use crate::stats;
use vitasync_engine::catalogue::ProviderPriority;

/// Every output row of the pipeline, keyed as the pipeline keys them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analytics {
    pub daily: BTreeMap<(UserKey, MetricKey, Day), Daily>,
    pub baselines: BTreeMap<(UserKey, MetricKey, u32), Baseline>,
    pub records: BTreeMap<(UserKey, MetricKey), Record>,
    pub correlations: BTreeMap<(UserKey, MetricKey, MetricKey, u8), Correlation>,
    pub scores: BTreeMap<(UserKey, Day), Scores>,
    /// Every finding per (user, metric, date), sorted.
    pub anomalies: BTreeMap<(UserKey, MetricKey, Day), Vec<Anomaly>>,
    /// The longest workout per (user, activity type, kind).
    pub workout_records: BTreeMap<(UserKey, String, WorkoutKind), Record>,
}

/// Computes every analytic from the current sample rows, every user with the default provider
/// priority.
pub fn compute(rows: &[SampleRow]) -> Analytics {
    compute_with(rows, &BTreeMap::new())
}

/// Adds the per-activity workout records of `workouts` to `out`.
pub fn add_workouts(out: &mut Analytics, workouts: &[(UserKey, WorkoutRow)]) {
    let mut by_activity: BTreeMap<(UserKey, String), Vec<&WorkoutRow>> = BTreeMap::new();
    for (u, w) in workouts {
        by_activity
            .entry((*u, w.activity.clone()))
            .or_default()
            .push(w);
    }
    for ((u, activity), rows) in by_activity {
        let mut longest: BTreeMap<WorkoutKind, Record> = BTreeMap::new();
        for w in rows {
            for (kind, v) in [
                (WorkoutKind::LongestDistance, w.distance),
                (WorkoutKind::LongestDuration, w.duration),
            ] {
                let Some(v) = v else { continue };
                let better = longest
                    .get(&kind)
                    .is_none_or(|r| v > r.value || (v == r.value && w.day < r.day));
                if better {
                    longest.insert(
                        kind,
                        Record {
                            value: v,
                            day: w.day,
                        },
                    );
                }
            }
        }
        for (kind, r) in longest {
            out.workout_records.insert((u, activity.clone(), kind), r);
        }
    }
}

/// The daily value of every (user, metric, date) of `rows`, each user's days sourced by their
/// workspace's provider priority (the default where `priorities` has none).
pub fn dailies(
    rows: &[SampleRow],
    priorities: &BTreeMap<UserKey, ProviderPriority>,
) -> BTreeMap<(UserKey, MetricKey, Day), Daily> {
    let default = ProviderPriority::default();
    let mut groups: BTreeMap<(UserKey, MetricKey, Day), Vec<(stats::DayEntry<'_>, isize)>> =
        BTreeMap::new();
    for r in rows {
        groups
            .entry((r.user, r.metric, r.day))
            .or_default()
            .push(((r.provider.as_str(), r.recorded_at, r.value), 1));
    }
    groups
        .iter()
        .filter_map(|(key, entries)| {
            let priority = priorities.get(&key.0).unwrap_or(&default);
            Some((*key, stats::daily_value(key.1, priority, entries)?))
        })
        .collect()
}

/// Computes every analytic from the current sample rows, each user's days sourced by their
/// workspace's provider priority (the default where `priorities` has none).
pub fn compute_with(
    rows: &[SampleRow],
    priorities: &BTreeMap<UserKey, ProviderPriority>,
) -> Analytics {
    let mut out = Analytics {
        daily: dailies(rows, priorities),
        ..Analytics::default()
    };
    let mut series: BTreeMap<(UserKey, MetricKey), Vec<(Day, Fixed)>> = BTreeMap::new();
    for ((u, m, d), daily) in &out.daily {
        series.entry((*u, *m)).or_default().push((*d, daily.value));
    }
    // Correlations: per user, the 90 dates ending at their latest date.
    let mut by_user: BTreeMap<UserKey, BTreeMap<(MetricKey, Day), Fixed>> = BTreeMap::new();
    for ((u, m, d), daily) in &out.daily {
        by_user.entry(*u).or_default().insert((*m, *d), daily.value);
    }
    for (u, vals) in &by_user {
        let last = vals
            .keys()
            .map(|(_, d)| *d)
            .max()
            .expect("a user has a value");
        let first = last - CORRELATION_WINDOW + 1;
        let metrics: std::collections::BTreeSet<MetricKey> = vals.keys().map(|(m, _)| *m).collect();
        for &a in &metrics {
            for &b in &metrics {
                for lag in [0u8, 1] {
                    if (lag == 0 && a >= b) || (lag == 1 && a == b) {
                        continue;
                    }
                    let pairs: Vec<(Fixed, Fixed)> = (first..=last - Day::from(lag))
                        .filter_map(|d| {
                            Some((*vals.get(&(a, d))?, *vals.get(&(b, d + Day::from(lag)))?))
                        })
                        .collect();
                    if let Some(c) = stats::correlation(&pairs) {
                        out.correlations.insert((*u, a, b, lag), c);
                    }
                }
            }
        }
    }

    // Scores per (user, date) from the day's values and the references before it.
    let rhr_key = metric_key("resting_heart_rate").expect("catalogue");
    let hrv_key = metric_key("hrv_rmssd").expect("catalogue");
    let score_keys: Vec<MetricKey> = stats::SCORE_METRICS
        .iter()
        .map(|n| metric_key(n).expect("catalogue"))
        .collect();
    let mut inputs: BTreeMap<(UserKey, Day), Vec<ScoreInput>> = BTreeMap::new();
    for ((u, m), days) in &series {
        if !score_keys.contains(m) {
            continue;
        }
        let by_day: BTreeMap<Day, Fixed> = days.iter().copied().collect();
        for (d, v) in days {
            let entry = inputs.entry((*u, *d)).or_default();
            entry.push(ScoreInput::Value(*m, *v));
            let before =
                |w: Day| -> Vec<Fixed> { by_day.range(d - w..*d).map(|(_, v)| *v).collect() };
            if *m == rhr_key
                && let Some(ws) = stats::window_stats(&before(ANOMALY_WINDOW))
            {
                entry.push(ScoreInput::RhrMedian(ws.median));
            }
            if *m == hrv_key
                && let Some((mean, sd)) = stats::hrv_reference(&before(HRV_REFERENCE_WINDOW))
            {
                entry.push(ScoreInput::HrvReference(mean, sd));
            }
        }
    }
    for (key, ins) in inputs {
        if let Some(s) = stats::scores(&ins) {
            out.scores.insert(key, s);
        }
    }

    let rhr = metric_key("resting_heart_rate").expect("catalogue");
    for ((u, m), days) in &series {
        let by_day: BTreeMap<Day, Fixed> = days.iter().copied().collect();
        let window_of = |d: Day| {
            let vals: Vec<Fixed> = by_day
                .range(d - ANOMALY_WINDOW..d)
                .map(|(_, v)| *v)
                .collect();
            stats::window_stats(&vals)
        };
        let elevated = |d: Day| {
            *m == rhr
                && by_day
                    .get(&d)
                    .zip(window_of(d))
                    .is_some_and(|(v, w)| stats::rhr_elevated(*v, &w))
        };
        if let Some(r) = stats::record(*m, days) {
            out.records.insert((*u, *m), r);
        }
        for (d, v) in days {
            let window = window_of(*d);
            let mut found: Vec<Anomaly> = stats::detect_clinical(*m, *v).into_iter().collect();
            if let Some(w) = &window {
                found.extend(stats::detect_window(*v, w));
                if elevated(*d) && elevated(*d - 1) {
                    found.push(stats::rhr_anomaly(*v, w));
                }
            }
            if !found.is_empty() {
                found.sort();
                out.anomalies.insert((*u, *m, *d), found);
            }
        }
    }
    for ((u, m), days) in series {
        let last = days.last().expect("a series has a day").0;
        for w in WINDOWS {
            let window: Vec<(Day, Fixed)> = days
                .iter()
                .filter(|(d, _)| *d > last - w as Day)
                .copied()
                .collect();
            out.baselines
                .insert((u, m, w), stats::baseline(last, &window));
        }
    }
    out
}
