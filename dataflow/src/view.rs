//! The pipeline's output, accumulated: every delta applied in epoch order, consolidated, and
//! the epoch it reflects. It is what the analytics look like right now, kept beside the
//! pipeline so the materializer can write what changed and a test can compare with the oracle.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Mutex;

use crate::model::OutputDelta;
use crate::oracle::Analytics;
use crate::pipeline::Epoch;

/// Row multiplicities per key; consolidated when read. A key has one live row (anomalies: one
/// per method) and briefly a retracted one, so a short vector, not a map per key.
pub(crate) type Acc<K, V> = BTreeMap<K, Vec<(V, isize)>>;

#[derive(Default)]
pub struct Rows {
    pub(crate) baselines: Acc<(u128, u16, u32), crate::model::Baseline>,
    pub(crate) anomalies: Acc<(u128, u16, i32), crate::model::Anomaly>,
    pub(crate) correlations: Acc<(u128, u16, u16, u8), crate::model::Correlation>,
    pub(crate) scores: Acc<(u128, i32), crate::model::Scores>,
    pub(crate) records: Acc<(u128, u16), crate::model::Record>,
    pub(crate) workout_records: Acc<WorkoutKey, crate::model::Record>,
}

/// (user, activity type, kind) of a per-activity workout record.
pub(crate) type WorkoutKey = (u128, String, crate::model::WorkoutKind);

/// The live row of `key`, if any.
pub(crate) fn live<'a, K: Ord, V>(acc: &'a Acc<K, V>, key: &K) -> Option<&'a V> {
    acc.get(key)?.iter().find(|(_, n)| *n > 0).map(|(v, _)| v)
}

/// Every live row of `key` (anomalies: one per method).
pub(crate) fn live_all<'a, K: Ord, V>(acc: &'a Acc<K, V>, key: &K) -> Vec<&'a V> {
    acc.get(key)
        .map(|vs| vs.iter().filter(|(_, n)| *n > 0).map(|(v, _)| v).collect())
        .unwrap_or_default()
}

fn add<K: Ord, V: PartialEq>(acc: &mut Acc<K, V>, k: K, v: V, diff: isize) {
    use std::collections::btree_map::Entry;
    match acc.entry(k) {
        Entry::Occupied(mut e) => {
            let vs = e.get_mut();
            match vs.iter_mut().find(|(x, _)| *x == v) {
                Some((_, n)) => *n += diff,
                None => vs.push((v, diff)),
            }
            // Drop what cancelled, and the key once nothing is left, so memory follows the
            // live rows, not the history of changes — here, per key touched, because a sweep
            // over every row would make each epoch cost as much as all users' analytics.
            vs.retain(|(_, n)| *n != 0);
            if vs.is_empty() {
                e.remove();
            }
        }
        Entry::Vacant(e) => {
            if diff != 0 {
                e.insert(vec![(v, diff)]);
            }
        }
    }
}

/// One live row per key (what every output but anomalies has).
fn single<K: Ord + Clone, V: Clone>(acc: &Acc<K, V>) -> BTreeMap<K, V> {
    acc.iter()
        .filter_map(|(k, vs)| {
            vs.iter()
                .find(|(_, n)| *n > 0)
                .map(|(v, _)| (k.clone(), v.clone()))
        })
        .collect()
}

/// Keys whose rows changed since the materializer last took them, each with the live row(s)
/// it had when it was first touched after the last take — so the materializer can tell a new
/// finding from a changed or retracted one (the bus events) as well as write the new rows.
#[derive(Default)]
pub struct Dirty {
    pub baselines: BTreeMap<(u128, u16, u32), Option<crate::model::Baseline>>,
    pub anomalies: BTreeMap<(u128, u16, i32), Vec<crate::model::Anomaly>>,
    pub correlations: BTreeMap<(u128, u16, u16, u8), Option<crate::model::Correlation>>,
    pub scores: BTreeMap<(u128, i32), Option<crate::model::Scores>>,
    pub records: BTreeMap<(u128, u16), Option<crate::model::Record>>,
    pub workout_records: BTreeMap<WorkoutKey, Option<crate::model::Record>>,
}

/// Remembers `key`'s live row as its "before" unless the key is already dirty.
fn touch<K: Ord + Clone, V: Clone>(dirty: &mut BTreeMap<K, Option<V>>, acc: &Acc<K, V>, key: K) {
    if let std::collections::btree_map::Entry::Vacant(e) = dirty.entry(key) {
        let before = live(acc, e.key()).cloned();
        e.insert(before);
    }
}

/// Keys that lead with their user, so the keys of a range of users are one range of a map.
trait UserLed: Ord + Clone {
    fn user(&self) -> u128;
    /// The least key of `user`.
    fn first_of(user: u128) -> Self;
}

impl UserLed for (u128, u16, u32) {
    fn user(&self) -> u128 {
        self.0
    }
    fn first_of(user: u128) -> Self {
        (user, 0, 0)
    }
}

impl UserLed for (u128, u16, i32) {
    fn user(&self) -> u128 {
        self.0
    }
    fn first_of(user: u128) -> Self {
        (user, 0, i32::MIN)
    }
}

impl UserLed for (u128, u16, u16, u8) {
    fn user(&self) -> u128 {
        self.0
    }
    fn first_of(user: u128) -> Self {
        (user, 0, 0, 0)
    }
}

impl UserLed for (u128, i32) {
    fn user(&self) -> u128 {
        self.0
    }
    fn first_of(user: u128) -> Self {
        (user, i32::MIN)
    }
}

impl UserLed for (u128, u16) {
    fn user(&self) -> u128 {
        self.0
    }
    fn first_of(user: u128) -> Self {
        (user, 0)
    }
}

impl UserLed for WorkoutKey {
    fn user(&self) -> u128 {
        self.0
    }
    fn first_of(user: u128) -> Self {
        // The first variant is the least.
        (
            user,
            String::new(),
            crate::model::WorkoutKind::LongestDistance,
        )
    }
}

/// Removes and returns the entries of the users in `users`.
fn take_users<K: UserLed, V>(
    map: &mut BTreeMap<K, V>,
    users: &RangeInclusive<u128>,
) -> BTreeMap<K, V> {
    let keys: Vec<K> = map
        .range(K::first_of(*users.start())..)
        .map(|(k, _)| k)
        .take_while(|k| k.user() <= *users.end())
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| map.remove_entry(&k))
        .collect()
}

#[derive(Default)]
struct State {
    rows: Rows,
    epoch: Epoch,
    /// Deltas of the epoch in progress: applied together when it completes, so readers only
    /// ever see whole epochs.
    pending: Vec<OutputDelta>,
    dirty: Dirty,
}

#[derive(Default)]
pub struct View {
    state: Mutex<State>,
}

impl View {
    pub fn apply(&self, d: OutputDelta) {
        self.state.lock().expect("view lock").pending.push(d);
    }

    fn apply_now(s: &mut State, d: OutputDelta) {
        let r = &mut s.rows;
        let dirty = &mut s.dirty;
        match &d {
            OutputDelta::Daily { .. } | OutputDelta::Archived(_) => {}
            OutputDelta::Baseline {
                user,
                metric,
                window,
                ..
            } => touch(
                &mut dirty.baselines,
                &r.baselines,
                (*user, *metric, *window),
            ),
            OutputDelta::Anomaly {
                user, metric, day, ..
            } => {
                let key = (*user, *metric, *day);
                dirty
                    .anomalies
                    .entry(key)
                    .or_insert_with(|| live_all(&r.anomalies, &key).into_iter().cloned().collect());
            }
            OutputDelta::Correlation {
                user, a, b, lag, ..
            } => touch(
                &mut dirty.correlations,
                &r.correlations,
                (*user, *a, *b, *lag),
            ),
            OutputDelta::Scores { user, day, .. } => {
                touch(&mut dirty.scores, &r.scores, (*user, *day))
            }
            OutputDelta::Record { user, metric, .. } => {
                touch(&mut dirty.records, &r.records, (*user, *metric))
            }
            OutputDelta::WorkoutRecord {
                user,
                activity,
                kind,
                ..
            } => touch(
                &mut dirty.workout_records,
                &r.workout_records,
                (*user, activity.clone(), *kind),
            ),
        }
        match d {
            // Daily values are the pipeline's intermediate: no table holds them, and the oracle
            // test reads them from the output stream.
            OutputDelta::Daily { .. } => {}
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
            OutputDelta::WorkoutRecord {
                user,
                activity,
                kind,
                record,
                diff,
            } => add(&mut r.workout_records, (user, activity, kind), record, diff),
            OutputDelta::Archived(a) => Self::archive(s, a),
        }
    }

    /// Replaces the user's dated rows in `[from, below)` with the archive's.
    fn archive(s: &mut State, a: crate::model::ArchivedDates) {
        let r = &mut s.rows;
        let dirty = &mut s.dirty;
        let u = a.user;
        let anomaly_keys: Vec<(u128, u16, i32)> = r
            .anomalies
            .range((u, u16::MIN, i32::MIN)..=(u, u16::MAX, i32::MAX))
            .map(|(k, _)| *k)
            .filter(|(_, _, d)| (a.from..a.below).contains(d))
            .chain(a.anomalies.iter().map(|((m, d), _)| (u, *m, *d)))
            .collect();
        for key in anomaly_keys {
            dirty
                .anomalies
                .entry(key)
                .or_insert_with(|| live_all(&r.anomalies, &key).into_iter().cloned().collect());
            r.anomalies.remove(&key);
        }
        for ((m, d), found) in a.anomalies {
            if !found.is_empty() {
                r.anomalies
                    .insert((u, m, d), found.into_iter().map(|x| (x, 1)).collect());
            }
        }
        let score_keys: Vec<(u128, i32)> = r
            .scores
            .range((u, a.from)..(u, a.below))
            .map(|(k, _)| *k)
            .chain(a.scores.iter().map(|(d, _)| (u, *d)))
            .collect();
        for key in score_keys {
            touch(&mut dirty.scores, &r.scores, key);
            r.scores.remove(&key);
        }
        for (d, scores) in a.scores {
            r.scores.insert((u, d), [(scores, 1)].into_iter().collect());
        }
    }

    /// Every delta up to `epoch` has arrived: apply them as one step.
    pub fn done(&self, epoch: Epoch) {
        let mut s = self.state.lock().expect("view lock");
        // An archive replaces its dates' rows after the epoch's retractions of them.
        let (archived, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut s.pending)
            .into_iter()
            .partition(|d| matches!(d, OutputDelta::Archived(_)));
        for d in pending.into_iter().chain(archived) {
            Self::apply_now(&mut s, d);
        }
        s.epoch = s.epoch.max(epoch);
    }

    /// The latest epoch fully reflected.
    pub fn epoch(&self) -> Epoch {
        self.state.lock().expect("view lock").epoch
    }

    /// The keys changed since the last call, with the epoch the view reflects and read access
    /// to the rows (under the view's lock, so the rows match the epoch).
    pub fn take_dirty<T>(&self, f: impl FnOnce(Epoch, Dirty, &Rows) -> T) -> T {
        let mut s = self.state.lock().expect("view lock");
        let dirty = std::mem::take(&mut s.dirty);
        f(s.epoch, dirty, &s.rows)
    }

    /// Like [`View::take_dirty`], for the keys of the users in `users` only; the other keys
    /// stay dirty. The first flush after a start goes through the users a range at a time, so
    /// what it builds (bodies, stored rows, announced changes) is bounded by a range's rows,
    /// not every row of every user.
    pub fn take_dirty_of<T>(
        &self,
        users: RangeInclusive<u128>,
        f: impl FnOnce(Epoch, Dirty, &Rows) -> T,
    ) -> T {
        let mut s = self.state.lock().expect("view lock");
        let d = &mut s.dirty;
        let dirty = Dirty {
            baselines: take_users(&mut d.baselines, &users),
            anomalies: take_users(&mut d.anomalies, &users),
            correlations: take_users(&mut d.correlations, &users),
            scores: take_users(&mut d.scores, &users),
            records: take_users(&mut d.records, &users),
            workout_records: take_users(&mut d.workout_records, &users),
        };
        f(s.epoch, dirty, &s.rows)
    }

    fn analytics_of(r: &Rows) -> Analytics {
        let anomalies = r
            .anomalies
            .keys()
            .filter_map(|k| {
                let live: Vec<_> = live_all(&r.anomalies, k).into_iter().cloned().collect();
                (!live.is_empty()).then_some((*k, live))
            })
            .collect();
        Analytics {
            daily: BTreeMap::new(),
            baselines: single(&r.baselines),
            anomalies,
            correlations: single(&r.correlations),
            scores: single(&r.scores),
            records: single(&r.records),
            workout_records: single(&r.workout_records),
        }
    }

    /// The analytics as of the current epoch, in the oracle's shape.
    pub fn snapshot(&self) -> (Epoch, Analytics) {
        let s = self.state.lock().expect("view lock");
        (s.epoch, Self::analytics_of(&s.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{F64, Record, Scores};

    fn record(user: u128, metric: u16, value: i64, diff: isize) -> OutputDelta {
        OutputDelta::Record {
            user,
            metric,
            record: Record { value, day: 10 },
            diff,
        }
    }

    fn scores(user: u128, day: i32, overall: f64) -> OutputDelta {
        OutputDelta::Scores {
            user,
            day,
            scores: Scores {
                overall: F64(overall),
                sleep: None,
                activity: None,
                cardio: None,
                recovery: None,
            },
            diff: 1,
        }
    }

    fn users(dirty: &Dirty) -> Vec<u128> {
        let mut users: Vec<u128> = dirty
            .records
            .keys()
            .map(|k| k.0)
            .chain(dirty.scores.keys().map(|k| k.0))
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    #[test]
    fn a_range_of_users_is_taken_and_the_rest_stays_dirty() {
        let view = View::default();
        for user in [1, 2, 3, u128::MAX] {
            view.apply(record(user, 4, 70, 1));
            view.apply(scores(user, 9, 50.0));
        }
        view.done(1);
        let (epoch, taken) = view.take_dirty_of(2..=3, |e, d, _| (e, users(&d)));
        assert_eq!((epoch, taken), (1, vec![2, 3]));
        // A change to a user already taken is dirty again, with the row the take saw as its
        // "before", so the next flush announces only what changed since.
        view.apply(record(2, 4, 70, -1));
        view.apply(record(2, 4, 65, 1));
        view.done(2);
        let (rest, before) =
            view.take_dirty(|_, d, _| (users(&d), d.records.get(&(2, 4)).cloned()));
        assert_eq!(rest, vec![1, 2, u128::MAX]);
        assert_eq!(before, Some(Some(Record { value: 70, day: 10 })));
        assert!(
            view.take_dirty_of(0..=u128::MAX, |_, d, _| users(&d))
                .is_empty()
        );
    }
}
