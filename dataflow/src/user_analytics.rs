//! Everything derived from one user's daily values — baselines, records, anomalies, scores and
//! correlations — in one timely operator that keeps, per user, the held daily values, the
//! horizon's boundary and summaries, and the rows it last emitted.
//!
//! Why an operator of its own rather than differential `reduce`s: a new date moves every
//! window that ends at the user's latest date, and a `reduce` answers that by replaying each
//! key's input history and comparing output traces, which cost several times the statistics
//! themselves. Here epochs are processed in order once complete (the input frontier has
//! passed them), so the state is just the current values, and each epoch re-derives only the
//! rows its changes can reach, with the same `stats` functions the oracle calls, and emits
//! the difference to what it emitted before. The property test compares the result with the
//! oracle after every epoch.
//!
//! What a change of metric m at date c reaches:
//! - the series of m: the baselines of the windows ending at its latest date, and the record;
//! - anomalies of m on c … c + 28 (c + 29 for resting heart rate, whose rule needs the day
//!   before too);
//! - scores on c (a score metric's value), c … c + 28 (the resting-heart-rate median),
//!   c … c + 60 (the ln rMSSD reference);
//! - the user's correlations, when c lies in the 90-date window or the latest date moved.
//!
//! Dated rows (anomalies, scores) are produced only on or after the user's boundary. When the
//! boundary moves forward, the rows of the dates it passes are derived with the epoch's changes
//! and then left as they are: they become the archive's (see `crate::horizon`), as does the
//! summary of the dates before the new boundary, which the operator derives from the values it
//! holds unless the horizon archived the user in batch that epoch.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;

use crate::in_order::InOrder;
use differential_dataflow::hashable::Hashable;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;
use timely::dataflow::{Stream, StreamVec};

use crate::baseline_window::BaselineWindow;
use crate::correlation_window::CorrelationWindow;
use crate::model::{
    ANOMALY_WINDOW, Anomaly, ArchiveSummary, Baseline, CORRELATION_WINDOW, Correlation, Day, Fixed,
    HRV_REFERENCE_WINDOW, MetricKey, OutputDelta, Prefix, PrefixCorrelations, Record, ScoreInput,
    Scores, UserKey, WINDOWS, metric_key,
};
use crate::pipeline::{Epoch, Output, OutputSink};
use crate::series::{value_on, within};
use crate::stats;

/// What the operator reads, keyed by user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) enum UserEvent {
    /// The daily value of a metric on a date.
    Value(MetricKey, Day, Fixed),
    /// The user's horizon boundary (`crate::horizon`).
    Boundary(Day),
    /// The summary of an archive computed in batch, replacing the one held.
    Summary(ArchiveSummary),
}

/// The metrics with rules of their own.
struct Keys {
    rhr: MetricKey,
    hrv: MetricKey,
    /// By metric: whether it feeds the scores.
    score_metrics: Vec<bool>,
}

impl Keys {
    /// The keys, looked up in the catalogue once per process.
    fn get() -> &'static Keys {
        static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
        KEYS.get_or_init(Keys::new)
    }

    fn new() -> Keys {
        let key = |name: &str| metric_key(name).expect("the catalogue has the metric");
        Keys {
            rhr: key("resting_heart_rate"),
            hrv: key("hrv_rmssd"),
            score_metrics: (0..vitasync_engine::catalogue::CATALOGUE.len())
                .map(|m| {
                    stats::SCORE_METRICS
                        .iter()
                        .any(|name| key(name) as usize == m)
                })
                .collect(),
        }
    }

    fn scores(&self, m: MetricKey) -> bool {
        self.score_metrics
            .get(usize::from(m))
            .copied()
            .unwrap_or(false)
    }

    /// How many dates after a change of `m` its anomalies can differ.
    fn anomaly_reach(&self, m: MetricKey) -> Day {
        if m == self.rhr {
            ANOMALY_WINDOW + 1
        } else {
            ANOMALY_WINDOW
        }
    }

    /// How many dates after a change of `m` the scores can differ; None if they cannot.
    fn score_reach(&self, m: MetricKey) -> Option<Day> {
        if m == self.hrv {
            Some(HRV_REFERENCE_WINDOW)
        } else if m == self.rhr {
            Some(ANOMALY_WINDOW)
        } else {
            self.scores(m).then_some(0)
        }
    }
}

/// The rows of one series: its baselines and record.
#[derive(Debug, Clone, Default, PartialEq)]
struct SeriesRows {
    baselines: Vec<(u32, Baseline)>,
    record: Option<Record>,
}

/// The rows last emitted for a user.
#[derive(Debug, Default)]
struct Emitted {
    series: BTreeMap<MetricKey, SeriesRows>,
    correlations: BTreeMap<(MetricKey, MetricKey, u8), Correlation>,
    /// Sorted findings per (metric, date).
    anomalies: BTreeMap<(MetricKey, Day), Vec<Anomaly>>,
    scores: BTreeMap<Day, Scores>,
}

/// One user's inputs as of the last processed epoch, and what was emitted from them.
#[derive(Debug, Default)]
struct UserState {
    /// Per metric, (date, daily value) sorted by date.
    series: BTreeMap<MetricKey, Vec<(Day, Fixed)>>,
    boundary: Option<Day>,
    prefixes: BTreeMap<MetricKey, Prefix>,
    prefix_correlations: Option<PrefixCorrelations>,
    /// Set instead of `prefix_correlations` when the operator archived the dates before this
    /// boundary itself and every date their correlations read is still held: they are computed
    /// from the held values only if ever needed (when no date from the boundary on has a
    /// value), or before the next move evicts what they read.
    deferred_correlations: Option<Day>,
    emitted: Emitted,
    /// Per metric, what is kept over `series` and moved as it changes.
    kept: BTreeMap<MetricKey, Kept>,
    /// The correlation window over `series`, while the correlations come from it.
    correlation_window: Option<CorrelationWindow>,
}

/// What is kept of one metric's series from one epoch to the next.
#[derive(Debug)]
struct Kept {
    /// The baseline windows (`WINDOWS`).
    windows: Vec<BaselineWindow>,
    /// The best held value.
    record: Option<Record>,
}

impl Kept {
    fn new(m: MetricKey, vals: &[(Day, Fixed)]) -> Kept {
        Kept {
            windows: WINDOWS
                .iter()
                .filter_map(|w| BaselineWindow::new(*w as Day, vals))
                .collect(),
            record: stats::record(m, vals),
        }
    }

    /// Follows the series to `vals` (not empty), given the dates that changed with their
    /// values before.
    fn update(&mut self, m: MetricKey, vals: &[(Day, Fixed)], changed: &[(Day, Option<Fixed>)]) {
        for w in &mut self.windows {
            w.update(vals, changed);
        }
        // The record stands among the unchanged dates, so the best of it and the changed
        // dates' new values is the new record, unless its own date changed.
        self.record = match &self.record {
            Some(r) if changed.iter().all(|(d, _)| *d != r.day) => {
                let mut candidates: smallvec::SmallVec<[(Day, Fixed); 4]> =
                    smallvec::smallvec![(r.day, r.value)];
                candidates.extend(
                    changed
                        .iter()
                        .filter_map(|(d, _)| value_on(vals, *d).map(|v| (*d, v))),
                );
                stats::record(m, &candidates)
            }
            _ => stats::record(m, vals),
        };
    }
}

/// What one epoch changed for one user.
#[derive(Debug, Default)]
struct Changes {
    /// Per metric, the dates whose value changed (sorted), each with its value before.
    days: BTreeMap<MetricKey, Vec<(Day, Option<Fixed>)>>,
    /// The boundary before the epoch, if the epoch changed it.
    boundary: Option<Option<Day>>,
    /// The metrics whose archive summary changed.
    prefixes: BTreeSet<MetricKey>,
    prefix_correlations: bool,
    /// Whether the horizon archived the user in batch this epoch.
    summary: bool,
}

/// Where one user's changed rows go: the epoch's deltas, sent to the sink in one message.
struct Emit<'a> {
    deltas: &'a std::cell::RefCell<Vec<OutputDelta>>,
    user: UserKey,
    /// Where full chunks go as they fill (None: all stay in `deltas`).
    sink: Option<(&'a OutputSink, Epoch)>,
}

/// Deltas per message: a new date brings about a hundred per user, and one vector for all
/// users of an epoch would be copied over and over as it grows.
const CHUNK: usize = 4096;

impl Emit<'_> {
    fn send(&self, delta: OutputDelta) {
        let mut deltas = self.deltas.borrow_mut();
        deltas.push(delta);
        if let Some((sink, epoch)) = self.sink
            && deltas.len() >= CHUNK
        {
            let full = std::mem::replace(&mut *deltas, Vec::with_capacity(CHUNK));
            // The receiver only goes away at shutdown.
            let _ = sink.send(Output::Deltas(epoch, full));
        }
    }

    fn baseline(&self, metric: MetricKey, window: u32, baseline: &Baseline, diff: isize) {
        self.send(OutputDelta::Baseline {
            user: self.user,
            metric,
            window,
            baseline: baseline.clone(),
            diff,
        });
    }

    fn record(&self, metric: MetricKey, record: &Record, diff: isize) {
        self.send(OutputDelta::Record {
            user: self.user,
            metric,
            record: record.clone(),
            diff,
        });
    }

    fn anomaly(&self, metric: MetricKey, day: Day, anomaly: &Anomaly, diff: isize) {
        self.send(OutputDelta::Anomaly {
            user: self.user,
            metric,
            day,
            anomaly: anomaly.clone(),
            diff,
        });
    }

    fn scores(&self, day: Day, scores: &Scores, diff: isize) {
        self.send(OutputDelta::Scores {
            user: self.user,
            day,
            scores: scores.clone(),
            diff,
        });
    }

    fn correlation(&self, key: (MetricKey, MetricKey, u8), c: &Correlation, diff: isize) {
        self.send(OutputDelta::Correlation {
            user: self.user,
            a: key.0,
            b: key.1,
            lag: key.2,
            correlation: c.clone(),
            diff,
        });
    }
}

/// The values of the `window` dates before `day` (the day itself excluded).
fn before(vals: &[(Day, Fixed)], day: Day, window: Day, buf: &mut Vec<Fixed>) {
    buf.clear();
    buf.extend(within(vals, day - window, day - 1).iter().map(|(_, v)| *v));
}

impl UserState {
    fn latest(&self) -> Option<Day> {
        self.series
            .values()
            .filter_map(|vals| vals.last().map(|(d, _)| *d))
            .max()
    }

    fn is_empty(&self) -> bool {
        self.series.is_empty()
            && self.boundary.is_none()
            && self.prefixes.is_empty()
            && self.prefix_correlations.is_none()
            && self.deferred_correlations.is_none()
            && self.emitted.series.is_empty()
            && self.emitted.correlations.is_empty()
            && self.emitted.anomalies.is_empty()
            && self.emitted.scores.is_empty()
    }

    /// Asks for the lines an update of this user reads (`crate::prefetch`): the recent end of
    /// each series (where new dates land and every window of the latest date reaches), the
    /// kept windows and the correlation window.
    fn prefetch(&self) {
        // The last 64 dates of a series hold every window a new date moves but the 90-date
        // ones, whose leaving end is one line more.
        const RECENT: usize = 64;
        for vals in self.series.values() {
            crate::prefetch::slice(&vals[vals.len().saturating_sub(RECENT)..]);
        }
        for kept in self.kept.values() {
            for w in &kept.windows {
                w.prefetch();
            }
        }
        if let Some(w) = &self.correlation_window {
            w.prefetch();
        }
        for rows in self.emitted.series.values() {
            crate::prefetch::slice(&rows.baselines);
        }
    }

    /// Applies one epoch's consolidated events, retractions first (a changed value arrives
    /// as the old one retracted and the new one inserted).
    fn apply(&mut self, events: &mut [(UserEvent, isize)]) -> Changes {
        events.sort_by_key(|(_, diff)| *diff > 0);
        let mut changes = Changes::default();
        for (event, diff) in events.iter() {
            let insert = *diff > 0;
            match event {
                UserEvent::Value(m, d, v) => {
                    let vals = self.series.entry(*m).or_default();
                    let changed = match (crate::series::find(vals, *d), insert) {
                        (Ok(i), true) => Some(Some(std::mem::replace(&mut vals[i].1, *v))),
                        (Err(i), true) => {
                            vals.insert(i, (*d, *v));
                            Some(None)
                        }
                        (Ok(i), false) if vals[i].1 == *v => Some(Some(vals.remove(i).1)),
                        // A retraction of a value not held: the daily values are a set per
                        // key, so this does not happen; nothing changes if it does.
                        _ => None,
                    };
                    if vals.is_empty() {
                        self.series.remove(m);
                    }
                    if let Some(was) = changed {
                        changes.days.entry(*m).or_default().push((*d, was));
                    }
                }
                UserEvent::Boundary(b) => {
                    let before = self.boundary;
                    if insert {
                        self.boundary = Some(*b);
                    } else if self.boundary == Some(*b) {
                        self.boundary = None;
                    }
                    changes.boundary.get_or_insert(before);
                }
                // Only ever inserted: each replaces the summary held.
                UserEvent::Summary(summary) if insert => {
                    let prefixes = summary.prefixes.iter().cloned().collect();
                    self.replace_summary(prefixes, summary.correlations.clone(), &mut changes);
                    changes.summary = true;
                }
                UserEvent::Summary(_) => {}
            }
        }
        // The first value recorded for a date is the one it held before the epoch.
        for days in changes.days.values_mut() {
            days.sort_by_key(|(d, _)| *d);
            days.dedup_by_key(|(d, _)| *d);
        }
        changes
    }

    fn replace_summary(
        &mut self,
        prefixes: BTreeMap<MetricKey, Prefix>,
        correlations: Option<PrefixCorrelations>,
        changes: &mut Changes,
    ) {
        changes
            .prefixes
            .extend(self.prefixes.keys().chain(prefixes.keys()));
        changes.prefix_correlations = true;
        self.prefixes = prefixes;
        self.prefix_correlations = correlations;
        self.deferred_correlations = None;
    }

    /// The first date after the archive: the boundary its summary was taken at.
    fn archive_below(&self) -> Option<Day> {
        self.deferred_correlations
            .or(self.prefix_correlations.as_ref().map(|c| c.below))
    }

    /// Computes deferred archive correlations from the held values, as the batch archive
    /// computes them: over the 90 dates ending at the latest date before the boundary.
    fn materialize_correlations(&mut self) {
        if let Some(below) = self.deferred_correlations.take() {
            self.prefix_correlations = self.archived_correlations(below);
        }
    }

    /// The correlations of the held values before `below`: over the 90 dates ending at the
    /// latest of them (all held, for the callers).
    fn archived_correlations(&self, below: Day) -> Option<PrefixCorrelations> {
        let latest = self
            .series
            .values()
            .filter_map(|vals| vals[..crate::series::position(vals, below)].last())
            .map(|(d, _)| *d)
            .max()?;
        Some(PrefixCorrelations {
            below,
            rows: CorrelationWindow::build(&self.series, latest)
                .correlations()
                .into_iter()
                .map(|((a, b, lag), c)| (a, b, lag, c))
                .collect(),
        })
    }

    /// Archives the dates in `[old, new)` as the boundary moves past them: the summary of the
    /// dates before `new`, from the values held (every window that ends at one of those dates
    /// lies among them) and the summary of the dates before `old`. The horizon's batch archive
    /// computes the same with the same functions.
    fn archive_move(&mut self, user: UserKey, old: Day, new: Day, changes: &mut Changes) {
        let before: BTreeMap<MetricKey, Vec<(Day, Fixed)>> = self
            .series
            .iter()
            .filter_map(|(m, vals)| {
                let n = crate::series::position(vals, new);
                (n > 0).then(|| (*m, vals[..n].to_vec()))
            })
            .collect();
        let fresh: BTreeSet<MetricKey> = before
            .iter()
            .filter(|(_, vals)| vals.last().is_some_and(|(d, _)| *d >= old))
            .map(|(m, _)| *m)
            .collect();
        // The latest archived date: the archive's correlations end there.
        let latest = before
            .values()
            .filter_map(|vals| vals.last())
            .map(|(d, _)| *d)
            .max();
        let mut part = crate::oracle::Analytics::default();
        // No dated rows (the operator emitted those of [old, new) itself) and no correlations
        // (below).
        batch_into(user, before, new..new, false, &mut part);
        if fresh.is_empty() {
            // The earlier archive's correlations stand: computed now if deferred, while what
            // they read is held.
            self.materialize_correlations();
        }
        let earlier = (&self.prefixes, self.prefix_correlations.as_ref());
        let (_, prefixes, carried) =
            crate::horizon::archive_of(user, &part, &fresh, old, new, Some(earlier));
        self.replace_summary(prefixes, None, changes);
        match latest {
            _ if fresh.is_empty() => self.prefix_correlations = carried,
            // Their 90 dates end the day before the boundary: all held until the next move.
            Some(l) if l == new - 1 => self.deferred_correlations = Some(new),
            Some(_) => self.prefix_correlations = self.archived_correlations(new),
            None => {}
        }
    }

    /// Drops the values of the dates before `first`, which the horizon has evicted (it sends
    /// no retractions for them: `Batch::evictions`), as changes like any other. They lie
    /// outside every window of a date the operator still derives rows for.
    fn evict(&mut self, first: Day, changes: &mut Changes) {
        self.series.retain(|m, vals| {
            let keep = crate::series::position(vals, first);
            if keep > 0 {
                let days = changes.days.entry(*m).or_default();
                let changed = days.len();
                days.extend(vals.drain(..keep).map(|(d, v)| (d, Some(v))));
                if changed > 0 {
                    // Sorted, one entry per date: a date the epoch changed keeps the value it
                    // had before (the stable sort leaves that entry first).
                    days.sort_by_key(|(d, _)| *d);
                    days.dedup_by_key(|(d, _)| *d);
                }
            }
            !vals.is_empty()
        });
    }

    /// Re-derives every row `changes` can reach and emits the differences. A boundary that
    /// moved forward is settled in between: the dated rows of the dates it passes are derived
    /// first, with the values of the epoch and every window still held; then, unless the
    /// horizon archived the user in batch, the operator archives those dates itself; then the
    /// values no window reaches any more are dropped.
    fn refresh(
        &mut self,
        user: UserKey,
        keys: &Keys,
        mut changes: Changes,
        latest_before: Option<Day>,
        out: &Emit,
    ) {
        self.refresh_dated(keys, &changes, out);
        if let Some(before) = changes.boundary
            && let Some(new) = self.boundary
        {
            if let Some(old) = before
                && old < new
                && !changes.summary
            {
                self.archive_move(user, old, new, &mut changes);
            }
            self.evict(crate::horizon::first_held(new), &mut changes);
        }
        let changes = &changes;
        let mut metrics: smallvec::SmallVec<[MetricKey; 16]> = changes
            .days
            .keys()
            .chain(&changes.prefixes)
            .copied()
            .collect();
        metrics.sort_unstable();
        metrics.dedup();
        for m in metrics {
            let changed = changes.days.get(&m).map_or(&[][..], Vec::as_slice);
            self.follow_series(m, changed);
            self.refresh_series(m, out);
        }
        let latest = self.latest();
        let window_start = latest.map(|l| l - CORRELATION_WINDOW + 1);
        let in_window = changes
            .days
            .values()
            .any(|days| window_start.is_none_or(|s| days.last().is_some_and(|(d, _)| *d >= s)));
        if changes.prefix_correlations || latest != latest_before || in_window {
            self.refresh_correlations(latest, changes, out);
        }
    }

    /// The series' rows: with a held date on or after the boundary, the baselines of the
    /// windows ending at the latest one; otherwise the archive's; and the best value of both.
    fn series_rows(&self, m: MetricKey) -> Option<SeriesRows> {
        let vals = self.series.get(&m).map_or(&[][..], Vec::as_slice);
        let prefix = self.prefixes.get(&m);
        let held_last = vals
            .last()
            .map(|(d, _)| *d)
            .filter(|last| prefix.is_none_or(|p| *last >= p.below));
        let kept = self.kept.get(&m);
        let windows = kept.map_or(&[][..], |k| k.windows.as_slice());
        let baselines = match (held_last, prefix) {
            (Some(_), _) => WINDOWS
                .iter()
                .zip(windows)
                .map(|(w, window)| (*w, window.baseline(vals)))
                .collect(),
            (None, Some(p)) => p.baselines.clone(),
            (None, None) => return None,
        };
        let held = kept.and_then(|k| k.record.clone());
        let archived = prefix.and_then(|p| p.record.clone());
        let record = match (held, archived) {
            (Some(h), Some(a)) => stats::record(m, &[(h.day, h.value), (a.day, a.value)]),
            (h, a) => h.or(a),
        };
        Some(SeriesRows { baselines, record })
    }

    /// Moves what is kept of `m` to its series as it is now, given the dates that changed
    /// (with their values before).
    fn follow_series(&mut self, m: MetricKey, changed: &[(Day, Option<Fixed>)]) {
        let Some(vals) = self.series.get(&m) else {
            self.kept.remove(&m);
            return;
        };
        match self.kept.get_mut(&m) {
            Some(kept) => kept.update(m, vals, changed),
            None => {
                self.kept.insert(m, Kept::new(m, vals));
            }
        }
    }

    fn refresh_series(&mut self, m: MetricKey, out: &Emit) {
        let new = self.series_rows(m).unwrap_or_default();
        let empty = SeriesRows::default();
        let old = self.emitted.series.get(&m).unwrap_or(&empty);
        if *old == new {
            return;
        }
        for (w, b) in &old.baselines {
            if !new.baselines.iter().any(|(nw, nb)| nw == w && nb == b) {
                out.baseline(m, *w, b, -1);
            }
        }
        for (w, b) in &new.baselines {
            if !old.baselines.iter().any(|(ow, ob)| ow == w && ob == b) {
                out.baseline(m, *w, b, 1);
            }
        }
        if old.record != new.record {
            if let Some(r) = &old.record {
                out.record(m, r, -1);
            }
            if let Some(r) = &new.record {
                out.record(m, r, 1);
            }
        }
        // Replaced in place: a new date changes every series' rows, and a removal and
        // insertion per series would rebalance the map each time.
        match self.emitted.series.get_mut(&m) {
            _ if new == empty => {
                self.emitted.series.remove(&m);
            }
            Some(old) => *old = new,
            None => {
                self.emitted.series.insert(m, new);
            }
        }
    }

    fn refresh_correlations(&mut self, latest: Option<Day>, changes: &Changes, out: &Emit) {
        let window = self.correlation_window.take();
        let archived = self
            .archive_below()
            .is_some_and(|below| latest.is_none_or(|l| l < below));
        if archived {
            self.materialize_correlations();
        }
        let new: BTreeMap<(MetricKey, MetricKey, u8), Correlation> =
            match (&self.prefix_correlations, latest) {
                (Some(p), _) if archived => p
                    .rows
                    .iter()
                    .map(|(a, b, lag, c)| ((*a, *b, *lag), c.clone()))
                    .collect(),
                (_, Some(l)) => {
                    let window = window
                        .and_then(|mut w| w.update(&self.series, l, &changes.days).then_some(w))
                        .unwrap_or_else(|| CorrelationWindow::build(&self.series, l));
                    let found = window.correlations();
                    self.correlation_window = Some(window);
                    found
                }
                (_, None) => BTreeMap::new(),
            };
        let old = std::mem::take(&mut self.emitted.correlations);
        for (k, c) in &old {
            if new.get(k) != Some(c) {
                out.correlation(*k, c, -1);
            }
        }
        for (k, c) in &new {
            if old.get(k) != Some(c) {
                out.correlation(*k, c, 1);
            }
        }
        self.emitted.correlations = new;
    }

    /// The findings of metric `m` on `day` (sorted), none before the boundary.
    fn anomalies_on(
        &self,
        keys: &Keys,
        m: MetricKey,
        day: Day,
        buf: &mut Vec<Fixed>,
    ) -> Vec<Anomaly> {
        let Some(vals) = self.series.get(&m) else {
            return Vec::new();
        };
        let Some(v) = value_on(vals, day) else {
            return Vec::new();
        };
        let mut found: Vec<Anomaly> = stats::detect_clinical(m, v).into_iter().collect();
        before(vals, day, ANOMALY_WINDOW, buf);
        if let Some(w) = stats::window_stats(buf) {
            found.extend(stats::detect_window(v, &w));
            if m == keys.rhr && stats::rhr_elevated(v, &w) {
                let previous = value_on(vals, day - 1).and_then(|pv| {
                    before(vals, day - 1, ANOMALY_WINDOW, buf);
                    stats::window_stats(buf).map(|pw| stats::rhr_elevated(pv, &pw))
                });
                if previous == Some(true) {
                    found.push(stats::rhr_anomaly(v, &w));
                }
            }
        }
        found.sort();
        found
    }

    /// The day's scores, from the day's values and the references before it.
    fn scores_on(&self, keys: &Keys, day: Day, buf: &mut Vec<Fixed>) -> Option<Scores> {
        let mut inputs: smallvec::SmallVec<[ScoreInput; 12]> = smallvec::SmallVec::new();
        for (m, vals) in &self.series {
            if !keys.scores(*m) {
                continue;
            }
            let Some(v) = value_on(vals, day) else {
                continue;
            };
            inputs.push(ScoreInput::Value(*m, v));
            if *m == keys.rhr {
                before(vals, day, ANOMALY_WINDOW, buf);
                if let Some(ws) = stats::window_stats(buf) {
                    inputs.push(ScoreInput::RhrMedian(ws.median));
                }
            }
            if *m == keys.hrv {
                before(vals, day, HRV_REFERENCE_WINDOW, buf);
                if let Some((mean, sd)) = stats::hrv_reference(buf) {
                    inputs.push(ScoreInput::HrvReference(mean, sd));
                }
            }
        }
        stats::scores(&inputs)
    }

    fn refresh_dated(&mut self, keys: &Keys, changes: &Changes, out: &Emit) {
        let boundary = self.boundary.unwrap_or(Day::MIN);
        // A boundary that moved forward hands the rows before it to the archive: those of the
        // dates it passes are derived once more with the epoch's changes (unless the horizon
        // archived the user in batch, whose rows replace them), then forgotten, not retracted.
        // One that moved back (or went away) exposes held dates whose rows were filtered, so
        // all are re-derived.
        let mut everything = false;
        let mut lo = boundary;
        if let Some(before) = changes.boundary {
            match (before, self.boundary) {
                (Some(b0), Some(b1)) if b1 >= b0 => {
                    if !changes.summary {
                        lo = b0;
                    }
                }
                (None, Some(_)) => {}
                _ => everything = true,
            }
        }

        // The (metric, date) and score dates to re-derive: dates in reach of a change that
        // have a value now or had rows before.
        // Collected with repeats, then sorted: a new date reaches one date per metric.
        let mut anomaly_keys: smallvec::SmallVec<[(MetricKey, Day); 32]> =
            smallvec::SmallVec::new();
        let mut score_days: smallvec::SmallVec<[Day; 8]> = smallvec::SmallVec::new();
        let mut score_ranges: smallvec::SmallVec<[(Day, Day); 8]> = smallvec::SmallVec::new();
        let mut add_anomaly_range = |state: &UserState, m: MetricKey, from: Day, to: Day| {
            let from = from.max(lo);
            if from > to {
                return;
            }
            if let Some(vals) = state.series.get(&m) {
                anomaly_keys.extend(within(vals, from, to).iter().map(|(d, _)| (m, *d)));
            }
            anomaly_keys.extend(
                state
                    .emitted
                    .anomalies
                    .range((m, from)..=(m, to))
                    .map(|(k, _)| *k),
            );
        };
        if everything {
            for m in self.series.keys() {
                add_anomaly_range(self, *m, lo, Day::MAX);
            }
            score_ranges.push((lo, Day::MAX));
        } else {
            for (m, days) in &changes.days {
                let reach = keys.anomaly_reach(*m);
                for (d, _) in days {
                    add_anomaly_range(self, *m, *d, d.saturating_add(reach));
                }
                if let Some(reach) = keys.score_reach(*m) {
                    score_ranges.extend(days.iter().map(|(d, _)| (*d, d.saturating_add(reach))));
                }
            }
        }
        for (from, to) in score_ranges {
            let from = from.max(lo);
            if from > to {
                continue;
            }
            for (m, vals) in &self.series {
                if keys.scores(*m) {
                    score_days.extend(within(vals, from, to).iter().map(|(d, _)| *d));
                }
            }
            score_days.extend(self.emitted.scores.range(from..=to).map(|(d, _)| *d));
        }

        let mut buf = Vec::with_capacity(HRV_REFERENCE_WINDOW as usize);
        anomaly_keys.sort_unstable();
        anomaly_keys.dedup();
        score_days.sort_unstable();
        score_days.dedup();
        for (m, d) in anomaly_keys {
            let new = self.anomalies_on(keys, m, d, &mut buf);
            let old = self.emitted.anomalies.remove(&(m, d)).unwrap_or_default();
            if new == old {
                if !new.is_empty() {
                    self.emitted.anomalies.insert((m, d), new);
                }
                continue;
            }
            for a in old.iter().filter(|a| !new.contains(a)) {
                out.anomaly(m, d, a, -1);
            }
            for a in new.iter().filter(|a| !old.contains(a)) {
                out.anomaly(m, d, a, 1);
            }
            if !new.is_empty() {
                self.emitted.anomalies.insert((m, d), new);
            }
        }
        for d in score_days {
            let new = self.scores_on(keys, d, &mut buf);
            let old = self.emitted.scores.remove(&d);
            if new != old {
                if let Some(s) = &old {
                    out.scores(d, s, -1);
                }
                if let Some(s) = &new {
                    out.scores(d, s, 1);
                }
            }
            if let Some(s) = new {
                self.emitted.scores.insert(d, s);
            }
        }
        if changes.boundary.is_some() {
            self.emitted.anomalies.retain(|(_, d), _| *d >= boundary);
            self.emitted.scores = self.emitted.scores.split_off(&boundary);
        }
    }
}

/// One user's analytics in batch, as the operator derives them from `series` (the user's
/// daily values per metric, by date) with no boundary or archive, into `out`: the series rows
/// and correlations, and the dated rows of the dates in `dated` only. The horizon archives
/// with it.
pub(crate) fn batch_into(
    user: UserKey,
    series: BTreeMap<MetricKey, Vec<(Day, Fixed)>>,
    dated: std::ops::Range<Day>,
    correlations: bool,
    out: &mut crate::oracle::Analytics,
) {
    let keys = Keys::get();
    let state = UserState {
        kept: series
            .iter()
            .map(|(m, vals)| (*m, Kept::new(*m, vals)))
            .collect(),
        series,
        ..UserState::default()
    };
    for m in state.series.keys() {
        let Some(rows) = state.series_rows(*m) else {
            continue;
        };
        for (w, b) in rows.baselines {
            out.baselines.insert((user, *m, w), b);
        }
        if let Some(r) = rows.record {
            out.records.insert((user, *m), r);
        }
    }
    if let Some(latest) = state.latest().filter(|_| correlations) {
        for ((a, b, lag), c) in CorrelationWindow::build(&state.series, latest).correlations() {
            out.correlations.insert((user, a, b, lag), c);
        }
    }
    let mut buf = Vec::with_capacity(HRV_REFERENCE_WINDOW as usize);
    let mut score_days = BTreeSet::new();
    for (m, vals) in &state.series {
        for (d, _) in within(vals, dated.start, dated.end - 1) {
            let found = state.anomalies_on(keys, *m, *d, &mut buf);
            if !found.is_empty() {
                out.anomalies.insert((user, *m, *d), found);
            }
            if keys.scores(*m) {
                score_days.insert(*d);
            }
        }
    }
    for d in score_days {
        if let Some(s) = state.scores_on(keys, d, &mut buf) {
            out.scores.insert((user, d), s);
        }
    }
}

/// The operator: `events` keyed by user in, analytics deltas to `sink`; the returned stream
/// carries no data, only the operator's progress (a probe on it passes an epoch once every
/// delta of that epoch is sent).
pub(crate) fn user_analytics<'s>(
    events: StreamVec<'s, Epoch, ((UserKey, UserEvent), Epoch, isize)>,
    sink: OutputSink,
) -> Stream<'s, Epoch, Vec<()>> {
    let exchange =
        Exchange::new(|((u, _), _, _): &((UserKey, UserEvent), Epoch, isize)| u.hashed());
    events.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        exchange,
        "UserAnalytics",
        move |_capability, _info| {
            let keys = Keys::get();
            let mut users: HashMap<UserKey, UserState> = HashMap::default();
            let mut pending = InOrder::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    for (event, time, diff) in data.drain(..) {
                        let port = output.output_index();
                        pending.hold(time, || cap.delayed(&time, port), (event, diff));
                    }
                });
                // Sorted by user (then event) as well.
                while let Some((epoch, _capability, events)) =
                    pending.next_complete(|e| !frontier.less_equal(e))
                {
                    let deltas = std::cell::RefCell::new(Vec::new());
                    let mut events = events.into_iter().peekable();
                    let mut mine: Vec<(UserEvent, isize)> = Vec::new();
                    while let Some(((user, event), diff)) = events.next() {
                        mine.clear();
                        mine.push((event, diff));
                        while let Some(((_, event), diff)) =
                            events.next_if(|((u, _), _)| *u == user)
                        {
                            mine.push((event, diff));
                        }
                        // The next user's state is cold: ask for it now, so it arrives while this
                        // user's update computes.
                        if let Some(((next, _), _)) = events.peek()
                            && let Some(state) = users.get(next)
                        {
                            state.prefetch();
                        }
                        let state = users.entry(user).or_default();
                        let latest_before = state.latest();
                        let changes = state.apply(&mut mine);
                        let out = Emit {
                            deltas: &deltas,
                            user,
                            sink: Some((&sink, epoch)),
                        };
                        state.refresh(user, keys, changes, latest_before, &out);
                        if state.is_empty() {
                            users.remove(&user);
                        }
                    }
                    let deltas = deltas.into_inner();
                    if !deltas.is_empty() {
                        // The receiver only goes away at shutdown.
                        let _ = sink.send(Output::Deltas(epoch, deltas));
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The horizon sends no retractions for the dates it evicts: a boundary drops them, as
    /// changes with the values they had, and keeps the rest.
    #[test]
    fn a_boundary_drops_the_evicted_dates() {
        let mut state = UserState::default();
        let mut events: Vec<(UserEvent, isize)> = (0..200)
            .flat_map(|d| {
                [
                    (UserEvent::Value(1, d, i64::from(d)), 1),
                    (UserEvent::Value(2, d * 2, 7), 1),
                ]
            })
            .collect();
        state.apply(&mut events);
        let boundary = 150;
        let mut changes = state.apply(&mut [(UserEvent::Boundary(boundary), 1)]);
        let first = crate::horizon::first_held(boundary);
        state.evict(first, &mut changes);
        for (m, vals) in &state.series {
            assert!(vals.first().is_some_and(|(d, _)| *d >= first), "metric {m}");
        }
        assert_eq!(state.series[&1].len(), 200 - first as usize);
        let evicted: Vec<(Day, Option<Fixed>)> =
            (0..first).map(|d| (d, Some(i64::from(d)))).collect();
        assert_eq!(changes.days[&1], evicted);
        assert_eq!(changes.days[&2].len(), (first as usize).div_ceil(2));
        assert_eq!(changes.boundary, Some(None));
    }

    /// A boundary that moves forward hands the rows of the dates it passes to the archive:
    /// none are retracted, the operator stops tracking them, and its summary moves with it.
    #[test]
    fn a_forward_boundary_keeps_the_rows_it_passes() {
        let keys = Keys::get();
        let user: UserKey = 7;
        let rhr = keys.rhr;
        let steps = metric_key("steps").expect("steps");
        let deltas = std::cell::RefCell::new(Vec::new());
        let out = Emit {
            deltas: &deltas,
            user,
            sink: None,
        };
        let mut state = UserState::default();
        // Resting heart rate with spikes (anomalies) and steps, on dates 0..=200.
        let mut events: Vec<(UserEvent, isize)> = (0..=200)
            .flat_map(|d| {
                let spike = if d % 17 == 0 { 30 } else { 0 };
                [
                    (
                        UserEvent::Value(
                            rhr,
                            d,
                            crate::model::to_fixed(f64::from(55 + spike + d % 3)),
                        ),
                        1,
                    ),
                    (
                        UserEvent::Value(
                            steps,
                            d,
                            crate::model::to_fixed(f64::from(8_000 + 37 * (d % 11))),
                        ),
                        1,
                    ),
                ]
            })
            .collect();
        events.push((UserEvent::Boundary(100), 1));
        let changes = state.apply(&mut events);
        state.refresh(user, keys, changes, None, &out);
        assert!(
            state
                .emitted
                .anomalies
                .keys()
                .any(|(_, d)| (100..132).contains(d))
        );
        assert!(state.emitted.scores.contains_key(&100));
        deltas.borrow_mut().clear();

        let latest = state.latest();
        let changes = state.apply(&mut [
            (UserEvent::Boundary(100), -1),
            (UserEvent::Boundary(132), 1),
        ]);
        state.refresh(user, keys, changes, latest, &out);
        let dated_retractions = deltas
            .borrow()
            .iter()
            .filter(|d| {
                matches!(
                    d,
                    OutputDelta::Anomaly { diff: -1, .. } | OutputDelta::Scores { diff: -1, .. }
                )
            })
            .count();
        assert_eq!(dated_retractions, 0, "{:?}", deltas.borrow());
        assert!(state.emitted.anomalies.keys().all(|(_, d)| *d >= 132));
        assert!(state.emitted.scores.keys().all(|d| *d >= 132));
        assert!(state.prefixes.values().all(|p| p.below == 132));
        assert_eq!(state.prefixes.len(), 2);
        assert_eq!(state.archive_below(), Some(132));
        // Its 90 dates are held: the archive's correlations wait until they are needed.
        assert_eq!(state.deferred_correlations, Some(132));
        state.materialize_correlations();
        assert_eq!(
            state.prefix_correlations.as_ref().map(|c| c.below),
            Some(132)
        );
        let first = crate::horizon::first_held(132);
        assert!(state.series.values().all(|v| v[0].0 == first));
    }
}
