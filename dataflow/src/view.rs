//! The pipeline's output, accumulated: every delta applied in epoch order, consolidated, and
//! the epoch it reflects. It is what the analytics look like right now, kept beside the
//! pipeline so a reader can wait for its own write (`wait_for`) and compare with the oracle.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::model::OutputDelta;
use crate::oracle::Analytics;
use crate::pipeline::Epoch;

/// Row multiplicities per key; consolidated when read.
type Acc<K, V> = BTreeMap<K, BTreeMap<V, isize>>;

#[derive(Default)]
struct Rows {
    daily: Acc<(u128, u16, i32), crate::model::Daily>,
    baselines: Acc<(u128, u16, u32), crate::model::Baseline>,
    anomalies: Acc<(u128, u16, i32), crate::model::Anomaly>,
    correlations: Acc<(u128, u16, u16, u8), crate::model::Correlation>,
    scores: Acc<(u128, i32), crate::model::Scores>,
    records: Acc<(u128, u16), crate::model::Record>,
}

fn add<K: Ord, V: Ord>(acc: &mut Acc<K, V>, k: K, v: V, diff: isize) {
    let vs = acc.entry(k).or_default();
    let n = vs.entry(v).or_default();
    *n += diff;
    // Drop what cancelled so memory follows the live rows, not the history of changes.
    vs.retain(|_, n| *n != 0);
}

fn tidy<K: Ord, V>(acc: &mut Acc<K, V>) {
    acc.retain(|_, vs| !vs.is_empty());
}

/// One live row per key (what every output but anomalies has).
fn single<K: Ord + Clone, V: Clone>(acc: &Acc<K, V>) -> BTreeMap<K, V> {
    acc.iter()
        .filter_map(|(k, vs)| {
            vs.iter()
                .find(|(_, n)| **n > 0)
                .map(|(v, _)| (k.clone(), v.clone()))
        })
        .collect()
}

#[derive(Default)]
struct State {
    rows: Rows,
    epoch: Epoch,
}

#[derive(Default)]
pub struct View {
    state: Mutex<State>,
    advanced: Condvar,
}

impl View {
    pub fn apply(&self, d: OutputDelta) {
        let mut s = self.state.lock().expect("view lock");
        let r = &mut s.rows;
        match d {
            OutputDelta::Daily {
                user,
                metric,
                day,
                daily,
                diff,
            } => add(&mut r.daily, (user, metric, day), daily, diff),
            OutputDelta::Baseline {
                user,
                metric,
                window,
                baseline,
                diff,
            } => add(&mut r.baselines, (user, metric, window), baseline, diff),
            OutputDelta::Anomaly {
                user,
                metric,
                day,
                anomaly,
                diff,
            } => add(&mut r.anomalies, (user, metric, day), anomaly, diff),
            OutputDelta::Correlation {
                user,
                a,
                b,
                lag,
                correlation,
                diff,
            } => add(&mut r.correlations, (user, a, b, lag), correlation, diff),
            OutputDelta::Scores {
                user,
                day,
                scores,
                diff,
            } => add(&mut r.scores, (user, day), scores, diff),
            OutputDelta::Record {
                user,
                metric,
                record,
                diff,
            } => add(&mut r.records, (user, metric), record, diff),
        }
    }

    /// Every delta up to `epoch` has been applied.
    pub fn done(&self, epoch: Epoch) {
        let mut s = self.state.lock().expect("view lock");
        let r = &mut s.rows;
        tidy(&mut r.daily);
        tidy(&mut r.baselines);
        tidy(&mut r.anomalies);
        tidy(&mut r.correlations);
        tidy(&mut r.scores);
        tidy(&mut r.records);
        s.epoch = s.epoch.max(epoch);
        self.advanced.notify_all();
    }

    /// The latest epoch fully reflected.
    pub fn epoch(&self) -> Epoch {
        self.state.lock().expect("view lock").epoch
    }

    /// Blocks until the view reflects `epoch` or `timeout` passes; true when it does.
    pub fn wait_for(&self, epoch: Epoch, timeout: Duration) -> bool {
        let s = self.state.lock().expect("view lock");
        let (s, _) = self
            .advanced
            .wait_timeout_while(s, timeout, |s| s.epoch < epoch)
            .expect("view lock");
        s.epoch >= epoch
    }

    /// The analytics as of the current epoch, in the oracle's shape.
    pub fn snapshot(&self) -> (Epoch, Analytics) {
        let s = self.state.lock().expect("view lock");
        let r = &s.rows;
        let anomalies = r
            .anomalies
            .iter()
            .filter_map(|(k, vs)| {
                let live: Vec<_> = vs
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(v, _)| v.clone())
                    .collect();
                (!live.is_empty()).then_some((*k, live))
            })
            .collect();
        (
            s.epoch,
            Analytics {
                daily: single(&r.daily),
                baselines: single(&r.baselines),
                anomalies,
                correlations: single(&r.correlations),
                scores: single(&r.scores),
                records: single(&r.records),
            },
        )
    }
}
