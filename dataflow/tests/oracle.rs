//! The pipeline against the batch oracle: random histories of insertions, corrections (value
//! and date) and deletions across users, metrics, providers and dates go through the dataflow
//! epoch by epoch; after every epoch the rows accumulated from its output deltas must equal a
//! from-scratch computation over the current samples. Equal, always.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use vitasync_dataflow::handle::Batch;
use vitasync_dataflow::horizon::HorizonConfig;
use vitasync_dataflow::model::{
    Anomaly, ArchivedDates, Baseline, Correlation, Daily, Day, MetricKey, OutputDelta, Record,
    SampleDelta, SampleRow, Scores, UserKey, WorkoutKind, WorkoutRow, metric_key, to_fixed,
};
use vitasync_dataflow::{Dataflow, Output, oracle};
use vitasync_engine::catalogue::ProviderPriority;

const METRICS: [&str; 7] = [
    "steps",
    "heart_rate",
    "weight",
    "resting_heart_rate",
    "spo2",
    "hrv_rmssd",
    "sleep_duration",
];

/// Maps a generated integer to a plausible value of the metric (ranges cross the clinical
/// thresholds of resting heart rate and SpO2).
fn value_of(metric: usize, v: u16) -> f64 {
    let v = f64::from(v);
    match metric {
        0 => v * 10.0,
        1 => 50.0 + v / 4.0,
        2 => 60.0 + v / 40.0,
        3 => 50.0 + v / 5.0,
        4 => 85.0 + v / 25.0,
        5 => 15.0 + v / 4.0,
        _ => 240.0 + v,
    }
}
const PROVIDERS: [&str; 2] = ["api", "fitbit"];

#[derive(Debug, Clone)]
enum Op {
    /// Writes the sample with this identity (insert or correct).
    Upsert {
        user: u8,
        metric: u8,
        provider: u8,
        slot: u8,
        day_shift: u8,
        value: u16,
    },
    /// Writes consecutive days of one metric (dense enough for anomaly windows).
    Series {
        user: u8,
        metric: u8,
        provider: u8,
        start: u8,
        values: Vec<u16>,
    },
    /// Writes two metrics over the same consecutive days, the second following the first
    /// (directly or inversely) with some noise: correlations appear, and later writes and
    /// deletions break them again.
    Paired {
        user: u8,
        a: u8,
        b: u8,
        start: u8,
        inverse: bool,
        values: Vec<(u16, u16)>,
    },
    /// Deletes the n-th stored sample (modulo the count).
    Delete(u16),
    /// Changes the user's provider priority: manual entries ("api") first, or the default.
    Prefer { user: u8, api_first: bool },
    /// Writes (or, with `remove`, deletes) the workout with this id.
    Workout {
        user: u8,
        id: u8,
        activity: u8,
        day: u8,
        distance: Option<u16>,
        duration: Option<u16>,
        remove: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2u8, 0..3u8, 0..2u8, 0..120u8, 0..2u8, 0..400u16).prop_map(
            |(user, metric, provider, slot, day_shift, value)| Op::Upsert {
                user, metric, provider, slot, day_shift, value
            }
        ),
        1 => (0..2u8, 0..7u8, 0..2u8, 0..100u8, prop::collection::vec(0..400u16, 5..20)).prop_map(
            |(user, metric, provider, start, values)| Op::Series {
                user, metric, provider, start, values
            }
        ),
        1 => (0..2u8, 0..7u8, 0..7u8, 0..100u8, any::<bool>(),
              prop::collection::vec((0..400u16, 0..60u16), 14..30)).prop_map(
            |(user, a, b, start, inverse, values)| Op::Paired { user, a, b, start, inverse, values }
        ),
        1 => any::<u16>().prop_map(Op::Delete),
        1 => (0..2u8, any::<bool>()).prop_map(|(user, api_first)| Op::Prefer { user, api_first }),
        2 => (0..2u8, 0..12u8, 0..2u8, 0..60u8, prop::option::of(0..50u16),
              prop::option::of(0..50u16), prop::bool::weighted(0.2)).prop_map(
            |(user, id, activity, day, distance, duration, remove)| Op::Workout {
                user, id, activity, day, distance, duration, remove
            }
        ),
    ]
}

type Identity = (UserKey, MetricKey, String, i64);

/// Accumulated output rows: every key must end with exactly one row of diff +1.
#[derive(Default)]
struct Materialised {
    /// Archived rows of the epoch in progress: applied after its other deltas.
    archived: Vec<ArchivedDates>,
    daily: BTreeMap<(UserKey, MetricKey, Day), BTreeMap<Daily, isize>>,
    baselines: BTreeMap<(UserKey, MetricKey, u32), BTreeMap<Baseline, isize>>,
    anomalies: BTreeMap<(UserKey, MetricKey, Day), BTreeMap<Anomaly, isize>>,
    records: BTreeMap<(UserKey, MetricKey), BTreeMap<Record, isize>>,
    correlations: BTreeMap<(UserKey, MetricKey, MetricKey, u8), BTreeMap<Correlation, isize>>,
    scores: BTreeMap<(UserKey, Day), BTreeMap<Scores, isize>>,
    workout_records: BTreeMap<(UserKey, String, WorkoutKind), BTreeMap<Record, isize>>,
}

impl Materialised {
    /// The epoch is complete: archives replace the rows of their dates.
    fn done(&mut self) {
        for a in std::mem::take(&mut self.archived) {
            let u = a.user;
            let range = a.from..a.below;
            self.anomalies
                .retain(|(user, _, d), _| *user != u || !range.contains(d));
            self.scores
                .retain(|(user, d), _| *user != u || !range.contains(d));
            for ((m, d), found) in a.anomalies {
                assert!(range.contains(&d), "an archived anomaly outside its range");
                self.anomalies
                    .insert((u, m, d), found.into_iter().map(|x| (x, 1)).collect());
            }
            for (d, s) in a.scores {
                assert!(range.contains(&d), "an archived score outside its range");
                self.scores.insert((u, d), [(s, 1)].into_iter().collect());
            }
        }
    }

    fn apply(&mut self, d: OutputDelta) {
        match d {
            OutputDelta::Archived(a) => self.archived.push(a),
            OutputDelta::WorkoutRecord {
                user,
                activity,
                kind,
                record,
                diff,
            } => {
                *self
                    .workout_records
                    .entry((user, activity, kind))
                    .or_default()
                    .entry(record)
                    .or_default() += diff
            }
            OutputDelta::Daily {
                user,
                metric,
                day,
                daily,
                diff,
            } => {
                *self
                    .daily
                    .entry((user, metric, day))
                    .or_default()
                    .entry(daily)
                    .or_default() += diff
            }
            OutputDelta::Baseline {
                user,
                metric,
                window,
                baseline,
                diff,
            } => {
                *self
                    .baselines
                    .entry((user, metric, window))
                    .or_default()
                    .entry(baseline)
                    .or_default() += diff
            }
            OutputDelta::Anomaly {
                user,
                metric,
                day,
                anomaly,
                diff,
            } => {
                *self
                    .anomalies
                    .entry((user, metric, day))
                    .or_default()
                    .entry(anomaly)
                    .or_default() += diff
            }
            OutputDelta::Record {
                user,
                metric,
                record,
                diff,
            } => {
                *self
                    .records
                    .entry((user, metric))
                    .or_default()
                    .entry(record)
                    .or_default() += diff
            }
            OutputDelta::Scores {
                user,
                day,
                scores,
                diff,
            } => {
                *self
                    .scores
                    .entry((user, day))
                    .or_default()
                    .entry(scores)
                    .or_default() += diff
            }
            OutputDelta::Correlation {
                user,
                a,
                b,
                lag,
                correlation,
                diff,
            } => {
                *self
                    .correlations
                    .entry((user, a, b, lag))
                    .or_default()
                    .entry(correlation)
                    .or_default() += diff
            }
        }
    }

    /// Keys with several live rows (anomalies: one per method), each with diff exactly 1.
    fn sets<K: Ord + Clone + std::fmt::Debug, V: Ord + Clone + std::fmt::Debug>(
        m: &BTreeMap<K, BTreeMap<V, isize>>,
    ) -> BTreeMap<K, Vec<V>> {
        let mut out = BTreeMap::new();
        for (k, vs) in m {
            let mut live = Vec::new();
            for (v, n) in vs {
                match n {
                    0 => {}
                    1 => live.push(v.clone()),
                    other => panic!("key {k:?} row {v:?} accumulated {other}"),
                }
            }
            if !live.is_empty() {
                out.insert(k.clone(), live);
            }
        }
        out
    }

    fn rows<K: Ord + Clone + std::fmt::Debug, V: Clone + std::fmt::Debug>(
        m: &BTreeMap<K, BTreeMap<V, isize>>,
    ) -> BTreeMap<K, V> {
        let mut out = BTreeMap::new();
        for (k, vs) in m {
            let live: Vec<_> = vs.iter().filter(|(_, n)| **n != 0).collect();
            match live.as_slice() {
                [] => {}
                [(v, 1)] => {
                    out.insert(k.clone(), (*v).clone());
                }
                other => panic!("key {k:?} accumulated {other:?}"),
            }
        }
        out
    }
}

/// Stores `row` (insert or correction) and records the deltas that makes.
fn write(
    stored: &mut BTreeMap<Identity, SampleRow>,
    row: SampleRow,
    deltas: &mut Vec<SampleDelta>,
) {
    let id = (row.user, row.metric, row.provider.clone(), row.recorded_at);
    match stored.insert(id, row.clone()) {
        Some(old) if old == row => {}
        Some(old) => {
            deltas.push(SampleDelta { row: old, diff: -1 });
            deltas.push(SampleDelta { row, diff: 1 });
        }
        None => deltas.push(SampleDelta { row, diff: 1 }),
    }
}

/// A horizon that moves often over the generated dates (19,000 to ~19,140): boundaries from
/// about 19,004 on, samples leaving the dataflow from about 19,094.
const SHORT_HORIZON: HorizonConfig = HorizonConfig { lead: 4, block: 8 };

fn run(batches: Vec<Vec<Op>>, workers: usize, horizon: Option<HorizonConfig>) -> usize {
    let flow = Dataflow::start_with(workers, 1, horizon).expect("dataflow starts");
    let mut stored: BTreeMap<Identity, SampleRow> = BTreeMap::new();
    let mut state = Materialised::default();
    let mut anomalies_seen = 0;
    let mut correlations_seen = 0;
    let (mut rearchived, mut archived_rows, mut evicting) = (0, 0, 0);
    // Every user the pipeline may see is announced with the default priority up front, as the
    // server does at hydration.
    let mut priorities: BTreeMap<UserKey, ProviderPriority> = (1..=2u128)
        .map(|u| (u, ProviderPriority::default()))
        .collect();
    let announce: Vec<(UserKey, ProviderPriority, isize)> =
        priorities.iter().map(|(u, p)| (*u, p.clone(), 1)).collect();
    let mut first = Some(announce);
    let mut workouts: BTreeMap<(UserKey, u8), WorkoutRow> = BTreeMap::new();
    for batch in batches {
        let mut deltas = Vec::new();
        let mut reranks = first.take().unwrap_or_default();
        let mut workout_deltas = Vec::new();
        for op in batch {
            match op {
                Op::Workout {
                    user,
                    id,
                    activity,
                    day,
                    distance,
                    duration,
                    remove,
                } => {
                    let u = u128::from(user) + 1;
                    if let Some(old) = workouts.remove(&(u, id)) {
                        workout_deltas.push((u, old, -1));
                    }
                    if !remove {
                        // Equal measures on different workouts are common, so ties matter.
                        let row = WorkoutRow {
                            activity: ["running", "cycling"][activity as usize].to_string(),
                            day: 19_000 + Day::from(day),
                            id: u128::from(id),
                            distance: distance.map(|d| to_fixed(f64::from(d) * 100.0)),
                            duration: duration.map(|d| to_fixed(f64::from(d) * 60.0)),
                        };
                        workouts.insert((u, id), row.clone());
                        workout_deltas.push((u, row, 1));
                    }
                }
                Op::Prefer { user, api_first } => {
                    let u = u128::from(user) + 1;
                    let new = if api_first {
                        ProviderPriority(vec!["api".into()])
                    } else {
                        ProviderPriority::default()
                    };
                    let old = priorities.insert(u, new.clone()).unwrap();
                    reranks.push((u, old, -1));
                    reranks.push((u, new, 1));
                }
                Op::Upsert {
                    user,
                    metric,
                    provider,
                    slot,
                    day_shift,
                    value,
                } => {
                    let row = SampleRow {
                        user: u128::from(user) + 1,
                        metric: metric_key(METRICS[metric as usize]).unwrap(),
                        day: 19_000 + Day::from(slot) + Day::from(day_shift),
                        provider: PROVIDERS[provider as usize].to_string(),
                        recorded_at: i64::from(slot) * 3_600_000_000,
                        value: to_fixed(value_of(metric as usize, value)),
                    };
                    write(&mut stored, row, &mut deltas);
                }
                Op::Series {
                    user,
                    metric,
                    provider,
                    start,
                    values,
                } => {
                    for (i, value) in values.into_iter().enumerate() {
                        let slot = i64::from(start) + i as i64;
                        let row = SampleRow {
                            user: u128::from(user) + 1,
                            metric: metric_key(METRICS[metric as usize]).unwrap(),
                            day: 19_000 + slot as Day,
                            provider: PROVIDERS[provider as usize].to_string(),
                            recorded_at: slot * 3_600_000_000,
                            value: to_fixed(value_of(metric as usize, value)),
                        };
                        write(&mut stored, row, &mut deltas);
                    }
                }
                Op::Paired {
                    user,
                    a,
                    b,
                    start,
                    inverse,
                    values,
                } => {
                    for (i, (x, noise)) in values.into_iter().enumerate() {
                        let slot = i64::from(start) + i as i64;
                        let y = if inverse { 400 - x } else { x };
                        for (metric, v) in [(a, x), (b, (y + noise).min(400))] {
                            let row = SampleRow {
                                user: u128::from(user) + 1,
                                metric: metric_key(METRICS[metric as usize]).unwrap(),
                                day: 19_000 + slot as Day,
                                provider: PROVIDERS[1].to_string(),
                                recorded_at: slot * 3_600_000_000,
                                value: to_fixed(value_of(metric as usize, v)),
                            };
                            write(&mut stored, row, &mut deltas);
                        }
                    }
                }
                Op::Delete(n) => {
                    if stored.is_empty() {
                        continue;
                    }
                    let id = stored
                        .keys()
                        .nth(n as usize % stored.len())
                        .unwrap()
                        .clone();
                    let old = stored.remove(&id).unwrap();
                    deltas.push(SampleDelta { row: old, diff: -1 });
                }
            }
        }
        let mut batch = Batch {
            samples: deltas,
            priorities: reranks,
            workouts: workout_deltas,
            ..Batch::default()
        };
        for u in flow.needs_rows(&batch) {
            rearchived += 1;
            let rows = stored.values().filter(|r| r.user == u).cloned().collect();
            batch.archive_rows.insert(u, rows);
        }
        let epoch = flow.apply_batch(batch);
        loop {
            match flow
                .outputs()
                .recv_timeout(Duration::from_secs(30))
                .expect("the epoch completes")
            {
                Output::Deltas(e, ds) => {
                    assert!(e <= epoch, "a delta from the future: {e} > {epoch}");
                    for d in ds {
                        if let OutputDelta::Archived(a) = &d {
                            archived_rows += a.anomalies.len() + a.scores.len();
                        }
                        state.apply(d);
                    }
                }
                Output::Done(e) if e == epoch => {
                    state.done();
                    break;
                }
                Output::Done(_) => state.done(),
            }
        }
        let rows: Vec<SampleRow> = stored.values().cloned().collect();
        let mut expected = oracle::compute_with(&rows, &priorities);
        let all_workouts: Vec<(UserKey, WorkoutRow)> =
            workouts.iter().map(|((u, _), w)| (*u, w.clone())).collect();
        oracle::add_workouts(&mut expected, &all_workouts);
        assert_eq!(
            Materialised::rows(&state.workout_records),
            expected.workout_records,
            "workout records after epoch {epoch}"
        );
        // The dataflow holds the daily values of the dates from each user's horizon on.
        evicting += (1..=2u128)
            .filter(|u| flow.held_from(*u).is_some_and(|h| h > 19_000))
            .count();
        let held =
            |(u, _, d): &(UserKey, MetricKey, Day)| flow.held_from(*u).is_none_or(|h| *d >= h);
        let expected_daily: BTreeMap<_, _> = expected
            .daily
            .iter()
            .filter(|(k, _)| held(k))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        // Evicted dates' values are not retracted (`Batch::evictions`): they are compared on
        // the held dates only, as the expected ones are.
        let held_daily: BTreeMap<_, _> = Materialised::rows(&state.daily)
            .into_iter()
            .filter(|(k, _)| held(k))
            .collect();
        assert_eq!(
            held_daily, expected_daily,
            "daily values after epoch {epoch}"
        );
        assert_eq!(
            Materialised::rows(&state.baselines),
            expected.baselines,
            "baselines after epoch {epoch}"
        );
        assert_eq!(
            Materialised::rows(&state.scores),
            expected.scores,
            "scores after epoch {epoch}"
        );
        assert_eq!(
            Materialised::rows(&state.correlations),
            expected.correlations,
            "correlations after epoch {epoch}"
        );
        correlations_seen += expected.correlations.len();
        assert_eq!(
            Materialised::rows(&state.records),
            expected.records,
            "records after epoch {epoch}"
        );
        assert_eq!(
            Materialised::sets(&state.anomalies),
            expected.anomalies,
            "anomalies after epoch {epoch}"
        );
        anomalies_seen += expected.anomalies.len();
    }
    flow.shutdown();
    if std::env::var_os("ORACLE_VERBOSE").is_some() {
        eprintln!(
            "anomalies {anomalies_seen}, correlations {correlations_seen}, re-archived {rearchived}, \
             archived rows {archived_rows}, user-epochs with evicted dates {evicting}"
        );
    }
    anomalies_seen
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn pipeline_equals_batch_recomputation(
        batches in prop::collection::vec(prop::collection::vec(op(), 1..12), 1..12),
        workers in 1..3usize,
    ) {
        run(batches, workers, None);
    }

    #[test]
    fn pipeline_with_a_moving_horizon_equals_batch_recomputation(
        batches in prop::collection::vec(prop::collection::vec(op(), 1..12), 1..12),
        workers in 1..3usize,
    ) {
        run(batches, workers, Some(SHORT_HORIZON));
    }
}

#[test]
fn a_long_history_then_deletions() {
    // 150 days of one metric, then the newest days deleted one by one: windows slide back.
    let mut batches = vec![
        (0..150u8)
            .map(|slot| Op::Upsert {
                user: 0,
                metric: 1,
                provider: 1,
                slot: slot % 120,
                day_shift: u8::from(slot >= 120),
                value: u16::from(slot) * 2,
            })
            .collect::<Vec<_>>(),
    ];
    batches.extend((0..10).map(|i| vec![Op::Delete(1000 - i)]));
    run(batches.clone(), 2, None);
    run(batches, 2, Some(SHORT_HORIZON));
}

#[test]
fn an_illness_episode_is_found_and_retracted() {
    // 20 calm days of resting heart rate (user 0 = key 1), then two days 10 bpm higher, a
    // clinical SpO2 reading, and finally the second high day is corrected back to normal.
    let rhr = 3u8;
    let spo2 = 4u8;
    let calm: Vec<u16> = (0..20).map(|i| 50 + (i % 3)).collect(); // 60.0–60.4 bpm
    let series = |start: u8, values: Vec<u16>| Op::Series {
        user: 0,
        metric: rhr,
        provider: 1,
        start,
        values,
    };
    let batches = vec![
        vec![series(0, calm)],
        vec![series(20, vec![100, 100])], // 70 bpm on days 20 and 21
        vec![Op::Upsert {
            user: 0,
            metric: spo2,
            provider: 1,
            slot: 21,
            day_shift: 0,
            value: 100, // 89 %
        }],
        vec![series(21, vec![51])],
    ];
    let seen = run(batches.clone(), 2, None);
    assert_eq!(run(batches, 2, Some(SHORT_HORIZON)), seen);
    assert!(
        seen >= 3,
        "z-score/IQR on day 20 and 21, rhr_elevation on 21, clinical SpO2: {seen}"
    );
}

#[test]
fn archived_findings_stand_when_every_newer_date_is_deleted() {
    // A month of correlated heart rate and steps, then one heart-rate value 120 days later: the
    // month is archived and its correlation leaves the 90-date window. Deleting the late value
    // brings the month back as the latest data, so its correlation and baselines (computed in
    // batch before the boundary) are the user's again.
    let (a, b) = (1u8, 0u8); // heart_rate, steps
    let values: Vec<(u16, u16)> = (0..30).map(|i| ((i * 37 % 300) as u16, 0)).collect();
    let late = Op::Upsert {
        user: 0,
        metric: a,
        provider: 1,
        slot: 120,
        day_shift: 0,
        value: 200,
    };
    // Identities sort by (user, metric, provider, recorded_at): the late value follows the
    // month's values of its own metric, and comes before or after the other metric's.
    let before_it = if metric_key(METRICS[a as usize]) < metric_key(METRICS[b as usize]) {
        30
    } else {
        60
    };
    let batches = vec![
        vec![Op::Paired {
            user: 0,
            a,
            b,
            start: 0,
            inverse: false,
            values,
        }],
        vec![late],
        vec![Op::Delete(before_it)],
    ];
    for horizon in [None, Some(SHORT_HORIZON)] {
        run(batches.clone(), 2, horizon);
    }
}

/// Six weeks of correlated heart rate and steps arriving in two parts, so the boundary moves
/// forward once (the operator archives the dates it passes and defers their correlations while
/// every date they read is held). Then one batch deletes the dates from the boundary on and
/// adds a value far later, moving the boundary past all of them: the deferred correlations are
/// computed before that move evicts what they read. When that value is deleted too, the
/// archive's correlations become the user's.
#[test]
fn deferred_archive_correlations_outlive_their_dates() {
    let (a, b) = (1u8, 0u8); // heart_rate, steps
    let paired = |start: u8, n: u16| Op::Paired {
        user: 0,
        a,
        b,
        start,
        inverse: false,
        values: (0..n)
            .map(|i| ((i * 37 + u16::from(start) * 11) % 300, i % 7))
            .collect(),
    };
    // User key 1 with the short horizon: the boundary is date 23 after the first part, 39
    // after the second and 111 after date 120, which evicts dates 0..=20. The stored rows sort
    // by metric, then date, the metric with the smaller key first. With dates 0..=44 and 120
    // each, deleting at 39 six times takes the first metric's dates 39..=44, and the second's
    // are then at 79; with dates 0..=38 and 120, date 120 is at 39, then at 78.
    let batches = vec![
        vec![paired(0, 30)],
        vec![paired(30, 15)],
        std::iter::once(paired(120, 1))
            .chain(std::iter::repeat_n(Op::Delete(39), 6))
            .chain(std::iter::repeat_n(Op::Delete(79), 6))
            .collect(),
        vec![Op::Delete(39), Op::Delete(78)],
    ];
    for horizon in [None, Some(SHORT_HORIZON)] {
        run(batches.clone(), 2, horizon);
    }
}

/// A user back after a long gap: one batch brings dates from just after their boundary to
/// far beyond it, so the boundary moves past dates the batch itself changes (their samples
/// leave the held dates in the very epoch they arrive). Those dates are archived from the
/// stored rows, not from what the dataflow held.
#[test]
fn a_batch_that_moves_the_boundary_past_its_own_dates() {
    let series = |metric: u8, start: u8, n: u16| Op::Series {
        user: 0,
        metric,
        provider: 1,
        start,
        values: (0..n).map(|i| 40 + (i * 29) % 200).collect(),
    };
    // Resting heart rate and HRV (scores, anomalies) and steps.
    let batches = vec![
        vec![series(3, 0, 10), series(5, 0, 10), series(0, 0, 10)],
        vec![series(3, 12, 150), series(5, 12, 150), series(0, 12, 150)],
        vec![series(3, 170, 3)],
    ];
    run(batches.clone(), 2, None);
    run(batches, 2, Some(SHORT_HORIZON));
}
