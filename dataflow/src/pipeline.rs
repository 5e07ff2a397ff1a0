//! The differential dataflow graph: sample rows in, analytics deltas out.
//!
//! Logical time is the ingestion epoch (a `u64` the handle assigns per write), not the event
//! date: backfills, corrections and deletions arrive out of date order, and each epoch's output
//! is exactly what that write changed. Windows are computed from the local date carried in the
//! data.
//!
//! Shape:
//! - samples keyed by (user, metric, day) → `reduce` → the daily value (one provider, the
//!   catalogue's rule);
//! - daily values keyed by (user, metric) → `reduce` → the latest day with data;
//! - each latest day fans out to the dates of its 28- and 90-day windows, which are joined with
//!   the daily values by (user, metric, day) — when the latest day moves by one, only the dates
//!   entering and leaving a window change, so the cost follows the change, not the history;
//! - window members keyed by (user, metric, window) → `reduce` → the baseline statistics.

use crossbeam_channel::Sender;
use differential_dataflow::input::{Input, InputSession};
use timely::dataflow::{ProbeHandle, Scope};

use crate::model::{
    ANOMALY_WINDOW, CORRELATION_WINDOW, Day, Fixed, HRV_REFERENCE_WINDOW, MetricKey, OutputDelta,
    SampleRow, ScoreInput, UserKey, WINDOWS, metric_key,
};
use crate::stats;

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

/// The latest day of a reduce's input: it arrives sorted by value, so the last entry.
fn last_day(input: &[(&Day, isize)], output: &mut Vec<(Day, isize)>) {
    if let Some((d, _)) = input.last() {
        output.push((**d, 1));
    }
}

/// Builds the pipeline in `scope`; returns the sample input and a probe on every output.
pub fn build(
    scope: Scope<'_, Epoch>,
    sink: OutputSink,
) -> (InputSession<Epoch, SampleRow, isize>, ProbeHandle<Epoch>) {
    let (input, samples) = scope.new_collection::<SampleRow, isize>();
    let probe = ProbeHandle::new();

    let daily = samples
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
            if let Some(d) = stats::daily_value(key.1, &entries) {
                output.push((d, 1isize));
            }
        });

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

    let latest = daily.clone().map(|((u, m, d), _)| ((u, m), d)).reduce(
        |_key: &(UserKey, MetricKey), input: &[(&Day, isize)], output| last_day(input, output),
    );

    // Every (user, metric, day, window) a baseline window covers, tagged with its end.
    let members = latest.flat_map(|((u, m), last): ((UserKey, MetricKey), Day)| {
        WINDOWS
            .into_iter()
            .flat_map(move |w| (0..w as Day).map(move |back| ((u, m, last - back), (w, last))))
    });
    let values = daily
        .probe_with(&probe)
        .map(|((u, m, d), daily)| ((u, m, d), daily.value));

    // Correlations over the 90 dates ending at the user's latest date (any metric): a on d
    // against b on d (lag 0, a < b) and against b on d + 1 (lag 1).
    let user_latest = values
        .clone()
        .map(|((u, _, d), _)| (u, d))
        .reduce(|_u: &UserKey, input: &[(&Day, isize)], output| last_day(input, output));
    let span = user_latest.flat_map(|(u, last): (UserKey, Day)| {
        (0..CORRELATION_WINDOW).map(move |back| (u, last - back))
    });
    let in_window = values
        .clone()
        .map(|((u, m, d), v)| ((u, d), (m, v)))
        .semijoin(span);
    let same_day = in_window
        .clone()
        .join(in_window.clone())
        .filter(|(_, ((a, _), (b, _)))| a < b)
        .map(|((u, d), ((a, x), (b, y)))| ((u, a, b, 0u8), (d, x, y)));
    let next_day = in_window
        .clone()
        .map(|((u, d), av)| ((u, d + 1), av))
        .join(in_window)
        .filter(|(_, ((a, _), (b, _)))| a != b)
        .map(|((u, d), ((a, x), (b, y)))| ((u, a, b, 1u8), (d - 1, x, y)));
    let correlation_out = sink.clone();
    same_day
        .concat(next_day)
        .reduce(
            |_key: &(UserKey, MetricKey, MetricKey, u8),
             input: &[(&(Day, Fixed, Fixed), isize)],
             output| {
                // Sorted by date.
                let pairs: Vec<(Fixed, Fixed)> = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|((_, x, y), _)| (*x, *y))
                    .collect();
                if let Some(c) = stats::correlation(&pairs) {
                    output.push((c, 1isize));
                }
            },
        )
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

    // Personal records: the best daily value per (user, metric).
    let record_out = sink.clone();
    values
        .clone()
        .map(|((u, m, d), v)| ((u, m), (d, v)))
        .reduce(
            |key: &(UserKey, MetricKey), input: &[(&(Day, Fixed), isize)], output| {
                let vals: Vec<(Day, Fixed)> = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(dv, _)| **dv)
                    .collect();
                if let Some(r) = stats::record(key.1, &vals) {
                    output.push((r, 1isize));
                }
            },
        )
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

    // Anomalies. Each daily value belongs to the windows of the 28 dates after it; only dates
    // that have a value are checked, so the windows of empty future dates are never built.
    let targets = values.clone().map(|(k, _)| k);
    let windows = values
        .clone()
        .flat_map(|((u, m, d), v): ((UserKey, MetricKey, Day), Fixed)| {
            (1..=ANOMALY_WINDOW).map(move |k| ((u, m, d + k), (d, v)))
        })
        .semijoin(targets)
        .reduce(
            |_key: &(UserKey, MetricKey, Day), input: &[(&(Day, Fixed), isize)], output| {
                // Sorted by date, so the window's values arrive in date order.
                let vals: Vec<Fixed> = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|((_, v), _)| *v)
                    .collect();
                if let Some(ws) = stats::window_stats(&vals) {
                    output.push((ws, 1isize));
                }
            },
        );
    let rhr = metric_key("resting_heart_rate").expect("the catalogue has resting_heart_rate");
    let checked = values
        .clone()
        .join_map(windows.clone(), |k, v, ws| (*k, (*v, ws.clone())));
    let windowed = checked.clone().flat_map(|(k, (v, ws))| {
        stats::detect_window(v, &ws)
            .into_iter()
            .map(move |a| (k, a))
    });
    let clinical = values
        .clone()
        .flat_map(|((u, m, d), v)| stats::detect_clinical(m, v).map(|a| ((u, m, d), a)));
    let elevated =
        checked.filter(move |((_, m, _), (v, ws))| *m == rhr && stats::rhr_elevated(*v, ws));
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
    let rhr_refs = windows
        .filter(move |((_, m, _), _)| *m == rhr)
        .map(|((u, _, d), ws)| ((u, d), ScoreInput::RhrMedian(ws.median)));
    let hrv_values = values.clone().filter(move |((_, m, _), _)| *m == hrv);
    let hrv_refs = hrv_values
        .clone()
        .flat_map(|((u, m, d), v): ((UserKey, MetricKey, Day), Fixed)| {
            (1..=HRV_REFERENCE_WINDOW).map(move |k| ((u, m, d + k), (d, v)))
        })
        .semijoin(hrv_values.map(|(k, _)| k))
        .reduce(
            |_key: &(UserKey, MetricKey, Day), input: &[(&(Day, Fixed), isize)], output| {
                let vals: Vec<Fixed> = input
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|((_, v), _)| *v)
                    .collect();
                if let Some((mean, sd)) = stats::hrv_reference(&vals) {
                    output.push(((mean, sd), 1isize));
                }
            },
        )
        .map(|((u, _, d), (mean, sd))| ((u, d), ScoreInput::HrvReference(mean, sd)));
    let scores_out = sink.clone();
    day_inputs
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
        .inspect(move |(((u, d), s), t, diff)| {
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
    windowed
        .concat(clinical)
        .concat(sustained)
        .inspect(move |(((u, m, d), a), t, diff)| {
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
    let windowed = members.join_map(values, |(u, m, d), (w, last), v: &Fixed| {
        ((*u, *m, *w), (*last, *d, *v))
    });

    let baseline_out = sink;
    windowed
        .reduce(|_key: &(UserKey, MetricKey, u32), input, output| {
            // Sorted by (window end, day): every entry shares the end (one latest per key).
            let as_of = input
                .first()
                .map(|((last, _, _), _)| *last)
                .unwrap_or_default();
            let values: Vec<(Day, Fixed)> = input
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|((_, d, v), _)| (*d, *v))
                .collect();
            if !values.is_empty() {
                output.push((stats::baseline(as_of, &values), 1isize));
            }
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
    (input, probe)
}
