//! The pipeline against the batch oracle: random histories of insertions, corrections (value
//! and date) and deletions across users, metrics, providers and dates go through the dataflow
//! epoch by epoch; after every epoch the rows accumulated from its output deltas must equal a
//! from-scratch computation over the current samples. Equal, always.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use vitasync_dataflow::model::{
    Baseline, Daily, Day, MetricKey, OutputDelta, SampleDelta, SampleRow, UserKey, metric_key,
    to_fixed,
};
use vitasync_dataflow::{Dataflow, Output, oracle};

const METRICS: [&str; 3] = ["steps", "heart_rate", "weight"];
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
    /// Deletes the n-th stored sample (modulo the count).
    Delete(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2u8, 0..3u8, 0..2u8, 0..120u8, 0..2u8, 0..400u16).prop_map(
            |(user, metric, provider, slot, day_shift, value)| Op::Upsert {
                user, metric, provider, slot, day_shift, value
            }
        ),
        1 => any::<u16>().prop_map(Op::Delete),
    ]
}

type Identity = (UserKey, MetricKey, String, i64);

/// Accumulated output rows: every key must end with exactly one row of diff +1.
#[derive(Default)]
struct Materialised {
    daily: BTreeMap<(UserKey, MetricKey, Day), BTreeMap<Daily, isize>>,
    baselines: BTreeMap<(UserKey, MetricKey, u32), BTreeMap<Baseline, isize>>,
}

impl Materialised {
    fn apply(&mut self, d: OutputDelta) {
        match d {
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
        }
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

fn run(batches: Vec<Vec<Op>>, workers: usize) {
    let flow = Dataflow::start(workers).expect("dataflow starts");
    let mut stored: BTreeMap<Identity, SampleRow> = BTreeMap::new();
    let mut state = Materialised::default();
    for batch in batches {
        let mut deltas = Vec::new();
        for op in batch {
            match op {
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
                        value: to_fixed(f64::from(value) / 4.0),
                    };
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
        let epoch = flow.apply(deltas);
        loop {
            match flow
                .outputs()
                .recv_timeout(Duration::from_secs(30))
                .expect("the epoch completes")
            {
                Output::Delta(e, d) => {
                    assert!(e <= epoch, "a delta from the future: {e} > {epoch}");
                    state.apply(d);
                }
                Output::Done(e) if e == epoch => break,
                Output::Done(_) => {}
            }
        }
        let rows: Vec<SampleRow> = stored.values().cloned().collect();
        let expected = oracle::compute(&rows);
        assert_eq!(
            Materialised::rows(&state.daily),
            expected.daily,
            "daily values after epoch {epoch}"
        );
        assert_eq!(
            Materialised::rows(&state.baselines),
            expected.baselines,
            "baselines after epoch {epoch}"
        );
    }
    flow.shutdown();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn pipeline_equals_batch_recomputation(
        batches in prop::collection::vec(prop::collection::vec(op(), 1..12), 1..12),
        workers in 1..3usize,
    ) {
        run(batches, workers);
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
    run(batches, 2);
}
