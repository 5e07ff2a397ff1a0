//! The differential dataflow graph: sample rows in, analytics deltas out.
//!
//! Logical time is the ingestion epoch (a `u64` the handle assigns per write), not the event
//! date: backfills, corrections and deletions arrive out of date order, and each epoch's output
//! is exactly what that write changed. Windows are computed from the local date carried in the
//! data.
//!
//! Shape (memory is what arrangements hold, so each value is held a small, fixed number of
//! times, and an update re-evaluates a bounded neighbourhood of what changed):
//! - samples keyed by (user, metric, day) → `reduce` → each provider's value of the day (the
//!   catalogue's rule) → joined with the user's provider priority → `reduce` → the daily value
//!   (one provider, never a sum across devices);
//! - daily values keyed by (user, metric) → one `reduce` → the 28- and 90-date baselines ending
//!   at the latest date, and the personal record;
//! - daily values in blocks of dates (`trailing`) → each date's value with the statistics of the
//!   dates before it → anomalies, and the score references (RHR median, ln rMSSD normal range);
//! - daily values keyed by user → one `reduce` → correlations over the user's last 90 dates;
//! - the day's values and references keyed by (user, day) → `reduce` → health scores.
//!
//! The samples are only those of the dates the horizon holds (`crate::horizon`): for a user
//! with a boundary, 90 dates before it and every date after. Dated rows (anomalies, scores) of
//! dates before the boundary are filtered out (`on_or_after_boundary`); the archive supplies
//! them. The series and correlation `reduce`s also read the archive's summaries (a `Prefix` per
//! metric, `PrefixCorrelations` per user) for the record over the whole history and for the
//! windows that end before the boundary.

use crossbeam_channel::Sender;
use differential_dataflow::VecCollection;
use differential_dataflow::input::{Input, InputSession};
use timely::dataflow::{ProbeHandle, Scope};

use crate::model::{
    ANOMALY_WINDOW, CORRELATION_WINDOW, Daily, Day, Fixed, HRV_REFERENCE_WINDOW, MetricKey,
    OutputDelta, Prefix, PrefixCorrelations, SampleRow, ScoreInput, UserKey, WINDOWS, WorkoutRow,
    metric_key,
};
use crate::stats;
use vitasync_engine::catalogue::ProviderPriority;

pub type Epoch = u64;

/// What the pipeline emits.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Delta(Epoch, OutputDelta),
    /// Every delta of this epoch (and all earlier ones) has been emitted.
    Done(Epoch),
}

/// Where the pipeline's outputs go; completion markers travel on the same channel, behind the
/// deltas they complete.
pub type OutputSink = Sender<Output>;

/// What the per-series reduce reads: the held daily values, and the batch-computed prefix
/// when the user has archived dates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
enum SeriesIn {
    Value(Day, Fixed),
    Prefix(Prefix),
}

/// What the per-user correlation reduce reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
enum UserIn {
    Value(Day, MetricKey, Fixed),
    Prefix(PrefixCorrelations),
}

/// Keeps the dated rows of each user on or after the user's boundary. With a horizon every
/// user with samples has a boundary from their first epoch on (`crate::horizon`), so the join
/// alone filters; without one there is nothing to filter. (An antijoin for users without a
/// boundary would pass every row through three times, retracted once.)
fn on_or_after_boundary<'s, V>(
    rows: VecCollection<'s, Epoch, (UserKey, (Day, V))>,
    boundaries: &VecCollection<'s, Epoch, (UserKey, Day)>,
    bounded: bool,
) -> VecCollection<'s, Epoch, (UserKey, (Day, V))>
where
    V: differential_dataflow::ExchangeData + Clone,
{
    if !bounded {
        return rows;
    }
    rows.join_map(boundaries.clone(), |u, (d, v), b| (*u, *d, *b, v.clone()))
        .filter(|(_, d, b, _)| d >= b)
        .map(|(u, d, _, v)| (u, (d, v)))
}

/// What the per-series reduce produces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
enum SeriesOut {
    Baseline(u32, crate::model::Baseline),
    Record(crate::model::Record),
}

/// For each date with a value, the value and `stat` over the values of the `window` dates before it (the date
/// itself excluded). One arrangement per window would copy every value `window` times; instead
/// dates are grouped in blocks of `2^k ≥ window` dates and each value goes to its own block (as a
/// date to evaluate and a window member) and to the next block (as a window member only), so a
/// value is held twice and a change re-evaluates at most two blocks, however long the history.
#[allow(clippy::type_complexity)]
fn trailing<'s, S>(
    values: VecCollection<'s, Epoch, ((UserKey, MetricKey, Day), Fixed)>,
    window: Day,
    stat: fn(&[Fixed]) -> Option<S>,
) -> VecCollection<'s, Epoch, ((UserKey, MetricKey, Day), (Fixed, S))>
where
    S: differential_dataflow::ExchangeData + Ord + Clone,
{
    let block = (window as u32).next_power_of_two() as Day;
    values
        .flat_map(move |((u, m, d), v): ((UserKey, MetricKey, Day), Fixed)| {
            let b = d.div_euclid(block);
            [((u, m, b), (d, v)), ((u, m, b + 1), (d, v))]
        })
        .reduce(
            move |key: &(UserKey, MetricKey, Day),
                  input: &[(&(Day, Fixed), isize)],
                  output: &mut Vec<((Day, Fixed, S), isize)>| {
                // Sorted by date: the previous block's values, then this block's.
                let vals: Vec<(Day, Fixed)> = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(dv, _)| **dv)
                    .collect();
                let mut from = 0;
                let mut members: Vec<Fixed> = Vec::with_capacity(window as usize);
                for (i, (d, v)) in vals.iter().enumerate() {
                    if d.div_euclid(block) != key.2 {
                        continue;
                    }
                    while vals[from].0 < d - window {
                        from += 1;
                    }
                    members.clear();
                    members.extend(vals[from..i].iter().map(|(_, v)| *v));
                    if let Some(s) = stat(&members) {
                        output.push(((*d, *v, s), 1));
                    }
                }
            },
        )
        .map(|((u, m, _), (d, v, s))| ((u, m, d), (v, s)))
}

/// Every significant correlation of one user (a on d against b on d for a < b, and against b on
/// d + 1 for a ≠ b) over the 90 dates ending at the user's latest date; `vals` sorted by date.
#[allow(clippy::type_complexity)]
fn user_correlations(
    vals: &[(Day, MetricKey, Fixed)],
    output: &mut Vec<((MetricKey, MetricKey, u8, crate::model::Correlation), isize)>,
) {
    let Some(last) = vals.last().map(|(d, _, _)| *d) else {
        return;
    };
    let start = vals.partition_point(|(d, _, _)| *d <= last - CORRELATION_WINDOW);
    let mut series: std::collections::BTreeMap<MetricKey, Vec<(Day, Fixed)>> =
        std::collections::BTreeMap::new();
    for (d, m, v) in &vals[start..] {
        series.entry(*m).or_default().push((*d, *v));
    }
    let mut pairs = Vec::with_capacity(CORRELATION_WINDOW as usize);
    for (a, xs) in &series {
        for (b, ys) in &series {
            for lag in [0u8, 1] {
                if (lag == 0 && a >= b) || (lag == 1 && a == b) {
                    continue;
                }
                pairs.clear();
                let mut j = 0;
                for (d, x) in xs {
                    let want = d + Day::from(lag);
                    while j < ys.len() && ys[j].0 < want {
                        j += 1;
                    }
                    if j < ys.len() && ys[j].0 == want {
                        pairs.push((*x, ys[j].1));
                    }
                }
                if let Some(c) = stats::correlation(&pairs) {
                    output.push(((*a, *b, lag, c), 1));
                }
            }
        }
    }
}

/// The pipeline's inputs and a probe on every output.
pub struct Inputs {
    pub samples: InputSession<Epoch, SampleRow, isize>,
    /// Each user's provider priority (their workspace's); a day several providers report is
    /// only sourced once the user's priority is here.
    pub priorities: InputSession<Epoch, (UserKey, ProviderPriority), isize>,
    /// Each user's workouts (from the stored events).
    pub workouts: InputSession<Epoch, (UserKey, WorkoutRow), isize>,
    /// Each archived user's boundary: dates before it are the archive's (see `horizon`).
    pub boundaries: InputSession<Epoch, (UserKey, Day), isize>,
    /// Per (user, metric) with archived values: what they contribute to the series.
    pub prefixes: InputSession<Epoch, ((UserKey, MetricKey), Prefix), isize>,
    /// Per user with archived values: the correlations of the archived dates.
    pub prefix_correlations: InputSession<Epoch, (UserKey, PrefixCorrelations), isize>,
    pub probe: ProbeHandle<Epoch>,
}

impl Inputs {
    /// Advances every input to `epoch` and sends what they hold.
    pub fn advance_to(&mut self, epoch: Epoch) {
        self.samples.advance_to(epoch);
        self.samples.flush();
        self.priorities.advance_to(epoch);
        self.priorities.flush();
        self.workouts.advance_to(epoch);
        self.workouts.flush();
        self.boundaries.advance_to(epoch);
        self.boundaries.flush();
        self.prefixes.advance_to(epoch);
        self.prefixes.flush();
        self.prefix_correlations.advance_to(epoch);
        self.prefix_correlations.flush();
    }
}

/// Builds the pipeline in `scope`; `bounded`: a horizon gives every user a boundary.
pub fn build(scope: Scope<'_, Epoch>, sink: OutputSink, bounded: bool) -> Inputs {
    let (input, samples) = scope.new_collection::<SampleRow, isize>();
    let (priority_input, priorities) = scope.new_collection::<(UserKey, ProviderPriority), isize>();
    let (workout_input, workouts) = scope.new_collection::<(UserKey, WorkoutRow), isize>();
    let (boundary_input, boundaries) = scope.new_collection::<(UserKey, Day), isize>();
    let (prefix_input, prefixes) = scope.new_collection::<((UserKey, MetricKey), Prefix), isize>();
    let (prefix_corr_input, prefix_correlations) =
        scope.new_collection::<(UserKey, PrefixCorrelations), isize>();
    let probe = ProbeHandle::new();

    // Per (user, activity type): the longest workout by distance and by duration.
    let workout_out = sink.clone();
    workouts
        .map(|(u, w): (UserKey, WorkoutRow)| ((u, w.activity.clone()), w))
        .reduce(
            |_key: &(UserKey, String), input: &[(&WorkoutRow, isize)], output| {
                let rows: Vec<&WorkoutRow> = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(w, _)| *w)
                    .collect();
                for found in stats::workout_records(&rows) {
                    output.push((found, 1isize));
                }
            },
        )
        .inspect(move |(((u, activity), (kind, r)), t, diff)| {
            let _ = workout_out.send(Output::Delta(
                *t,
                OutputDelta::WorkoutRecord {
                    user: *u,
                    activity: activity.clone(),
                    kind: *kind,
                    record: r.clone(),
                    diff: *diff,
                },
            ));
        })
        .probe_with(&probe);

    // Each provider's value of the day, then the one the user's workspace ranks first. The
    // priority is its own (tiny) input, so changing a workspace's order re-sources exactly the
    // days where its users have several providers. Days with one provider (nearly all) need no
    // choice and skip the join, so they are held once more, not three times.
    let per_provider = samples
        .map(|r: SampleRow| {
            (
                (r.user, r.metric, r.day),
                (r.provider, r.recorded_at, r.value),
            )
        })
        .reduce(|key: &(UserKey, MetricKey, Day), input, output| {
            let entries: Vec<_> = input
                .iter()
                .map(|((p, at, v), n)| ((p.as_str(), *at, *v), *n))
                .collect();
            let dailies = stats::provider_dailies(key.1, &entries);
            let contested = dailies.len() > 1;
            for d in dailies {
                output.push(((contested, d), 1isize));
            }
        });
    let uncontested = per_provider
        .clone()
        .filter(|(_, (contested, _))| !*contested)
        .map(|(k, (_, d))| (k, d));
    let chosen = per_provider
        .filter(|(_, (contested, _))| *contested)
        .map(|((u, m, d), (_, daily))| (u, (m, d, daily)))
        .join_map(priorities, |u, (m, d, daily), priority| {
            (
                (*u, *m, *d),
                (priority.rank(&daily.provider), daily.clone()),
            )
        })
        .reduce(
            |_key: &(UserKey, MetricKey, Day), input: &[(&(usize, Daily), isize)], output| {
                // Lowest rank wins; equal ranks (providers the order does not know) by name.
                let best = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|((rank, d), _)| (*rank, d.provider.as_str(), d))
                    .min();
                if let Some((_, _, d)) = best {
                    output.push((d.clone(), 1isize));
                }
            },
        );
    let daily = uncontested.concat(chosen);

    let daily_out = sink.clone();
    let daily = daily.inspect(move |((key, d), t, diff)| {
        let _ = daily_out.send(Output::Delta(
            *t,
            OutputDelta::Daily {
                user: key.0,
                metric: key.1,
                day: key.2,
                daily: d.clone(),
                diff: *diff,
            },
        ));
    });

    let values = daily
        .probe_with(&probe)
        .map(|((u, m, d), daily)| ((u, m, d), daily.value));

    // Correlations over the 90 dates ending at the user's latest date (any metric), one reduce
    // per user: the user's values are held once, where pairing them by joins held every pair.
    let correlation_out = sink.clone();
    // A user with archived dates has their window inside the held dates as long as some date
    // on or after the boundary has a value; otherwise the archive's correlations stand.
    values
        .clone()
        .map(|((u, m, d), v)| (u, UserIn::Value(d, m, v)))
        .concat(prefix_correlations.map(|(u, p)| (u, UserIn::Prefix(p))))
        .reduce(|_u: &UserKey, input: &[(&UserIn, isize)], output| {
            let mut vals: Vec<(Day, MetricKey, Fixed)> = Vec::with_capacity(input.len());
            let mut prefix = None;
            for (x, n) in input {
                if *n <= 0 {
                    continue;
                }
                match x {
                    UserIn::Value(d, m, v) => vals.push((*d, *m, *v)),
                    UserIn::Prefix(p) => prefix = Some(p),
                }
            }
            match prefix {
                Some(p) if vals.last().is_none_or(|(d, _, _)| *d < p.below) => {
                    for (a, b, lag, c) in &p.rows {
                        output.push(((*a, *b, *lag, c.clone()), 1));
                    }
                }
                _ => user_correlations(&vals, output),
            }
        })
        .map(|(u, (a, b, lag, c))| ((u, a, b, lag), c))
        .inspect(move |(((u, a, b, lag), c), t, diff)| {
            let _ = correlation_out.send(Output::Delta(
                *t,
                OutputDelta::Correlation {
                    user: *u,
                    a: *a,
                    b: *b,
                    lag: *lag,
                    correlation: c.clone(),
                    diff: *diff,
                },
            ));
        })
        .probe_with(&probe);

    // Per (user, metric) series: the baselines of the windows ending at the latest date and the
    // personal record, from one arrangement of the series.
    let series = values
        .clone()
        .map(|((u, m, d), v)| ((u, m), SeriesIn::Value(d, v)))
        .concat(prefixes.map(|(k, p)| (k, SeriesIn::Prefix(p))))
        .reduce(
            |key: &(UserKey, MetricKey), input: &[(&SeriesIn, isize)], output| {
                let mut vals: Vec<(Day, Fixed)> = Vec::with_capacity(input.len());
                let mut prefix = None;
                for (x, n) in input {
                    if *n <= 0 {
                        continue;
                    }
                    match x {
                        SeriesIn::Value(d, v) => vals.push((*d, *v)),
                        SeriesIn::Prefix(p) => prefix = Some(p),
                    }
                }
                // The windows end at the latest date; when it is on or after the boundary they
                // lie within the held dates, otherwise the archive computed them.
                let held_last = vals
                    .last()
                    .map(|(d, _)| *d)
                    .filter(|last| prefix.is_none_or(|p| *last >= p.below));
                if let Some(last) = held_last {
                    for w in WINDOWS {
                        let from = vals.partition_point(|(d, _)| *d <= last - w as Day);
                        let b = stats::baseline(last, &vals[from..]);
                        output.push((SeriesOut::Baseline(w, b), 1isize));
                    }
                } else if let Some(p) = prefix {
                    for (w, b) in &p.baselines {
                        output.push((SeriesOut::Baseline(*w, b.clone()), 1isize));
                    }
                } else {
                    return;
                }
                // The best archived value competes with the held ones (dates both hold count
                // once either way: the best is the same).
                if let Some(r) = prefix.and_then(|p| p.record.clone()) {
                    vals.push((r.day, r.value));
                }
                if let Some(r) = stats::record(key.1, &vals) {
                    output.push((SeriesOut::Record(r), 1isize));
                }
            },
        );
    let record_out = sink.clone();
    series
        .clone()
        .flat_map(|(k, o)| match o {
            SeriesOut::Record(r) => Some((k, r)),
            SeriesOut::Baseline(..) => None,
        })
        .inspect(move |(((u, m), r), t, diff)| {
            let _ = record_out.send(Output::Delta(
                *t,
                OutputDelta::Record {
                    user: *u,
                    metric: *m,
                    record: r.clone(),
                    diff: *diff,
                },
            ));
        })
        .probe_with(&probe);

    // Anomalies: each dated value against the window of the 28 dates before it.
    let checked = trailing(values.clone(), ANOMALY_WINDOW, stats::window_stats);
    let rhr = metric_key("resting_heart_rate").expect("the catalogue has resting_heart_rate");
    let windowed = checked.clone().flat_map(|(k, (v, ws))| {
        stats::detect_window(v, &ws)
            .into_iter()
            .map(move |a| (k, a))
    });
    let clinical = values
        .clone()
        .flat_map(|((u, m, d), v)| stats::detect_clinical(m, v).map(|a| ((u, m, d), a)));
    let elevated = checked
        .clone()
        .filter(move |((_, m, _), (v, ws))| *m == rhr && stats::rhr_elevated(*v, ws));
    let elevated_next = elevated.clone().map(|((u, m, d), _)| (u, m, d + 1));
    let sustained = elevated
        .semijoin(elevated_next)
        .map(|(k, (v, ws))| (k, stats::rhr_anomaly(v, &ws)));
    // Health scores per (user, date): the day's values of the metrics the scores use, the
    // resting-heart-rate median of the 28 dates before, and the ln(rMSSD) reference of the 60
    // dates before.
    let score_metrics: Vec<MetricKey> = stats::SCORE_METRICS
        .iter()
        .map(|n| metric_key(n).expect("score metrics are in the catalogue"))
        .collect();
    let hrv = metric_key("hrv_rmssd").expect("the catalogue has hrv_rmssd");
    let day_inputs = values
        .clone()
        .filter(move |((_, m, _), _)| score_metrics.contains(m))
        .map(|((u, m, d), v)| ((u, d), ScoreInput::Value(m, v)));
    let rhr_refs = checked
        .clone()
        .filter(move |((_, m, _), _)| *m == rhr)
        .map(|((u, _, d), (_, ws))| ((u, d), ScoreInput::RhrMedian(ws.median)));
    let hrv_values = values.clone().filter(move |((_, m, _), _)| *m == hrv);
    let hrv_refs = trailing(hrv_values, HRV_REFERENCE_WINDOW, stats::hrv_reference)
        .map(|((u, _, d), (_, (mean, sd)))| ((u, d), ScoreInput::HrvReference(mean, sd)));
    let scores_out = sink.clone();
    let scores = day_inputs
        .concat(rhr_refs)
        .concat(hrv_refs)
        .reduce(
            |_key: &(UserKey, Day), input: &[(&ScoreInput, isize)], output| {
                let inputs: Vec<ScoreInput> = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(i, _)| (*i).clone())
                    .collect();
                if let Some(s) = stats::scores(&inputs) {
                    output.push((s, 1isize));
                }
            },
        )
        .map(|((u, d), s)| (u, (d, s)));
    on_or_after_boundary(scores, &boundaries, bounded)
        .inspect(move |((u, (d, s)), t, diff)| {
            let _ = scores_out.send(Output::Delta(
                *t,
                OutputDelta::Scores {
                    user: *u,
                    day: *d,
                    scores: s.clone(),
                    diff: *diff,
                },
            ));
        })
        .probe_with(&probe);

    let anomaly_out = sink.clone();
    let anomalies = windowed
        .concat(clinical)
        .concat(sustained)
        .map(|((u, m, d), a)| (u, (d, (m, a))));
    on_or_after_boundary(anomalies, &boundaries, bounded)
        .inspect(move |((u, (d, (m, a))), t, diff)| {
            let _ = anomaly_out.send(Output::Delta(
                *t,
                OutputDelta::Anomaly {
                    user: *u,
                    metric: *m,
                    day: *d,
                    anomaly: a.clone(),
                    diff: *diff,
                },
            ));
        })
        .probe_with(&probe);
    let baseline_out = sink;
    series
        .flat_map(|((u, m), o)| match o {
            SeriesOut::Baseline(w, b) => Some(((u, m, w), b)),
            SeriesOut::Record(_) => None,
        })
        .inspect(move |(((u, m, w), b), t, diff)| {
            let _ = baseline_out.send(Output::Delta(
                *t,
                OutputDelta::Baseline {
                    user: *u,
                    metric: *m,
                    window: *w,
                    baseline: b.clone(),
                    diff: *diff,
                },
            ));
        })
        .probe_with(&probe);
    Inputs {
        samples: input,
        priorities: priority_input,
        workouts: workout_input,
        boundaries: boundary_input,
        prefixes: prefix_input,
        prefix_correlations: prefix_corr_input,
        probe,
    }
}
