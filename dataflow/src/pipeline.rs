//! The differential dataflow graph: sample rows in, analytics deltas out.
//!
//! Logical time is the ingestion epoch (a `u64` the handle assigns per write), not the event
//! date: backfills, corrections and deletions arrive out of date order, and each epoch's output
//! is exactly what that write changed. Windows are computed from the local date carried in the
//! data.
//!
//! Shape:
//! - samples keyed by (user, metric, day) → `crate::provider_days` (an operator holding each
//!   day's samples) → each provider's value of the day (the catalogue's rule) → joined with
//!   the user's provider priority (only days several providers report) → `reduce` → the daily
//!   value (one provider, never a sum across devices);
//! - daily values, the horizon's boundaries and archive summaries, all keyed by user → one
//!   operator (`crate::user_analytics`) that keeps each user's held values and re-derives the
//!   baselines, records, anomalies, scores and correlations a change can reach;
//! - workouts keyed by (user, activity type) → `reduce` → the longest by distance and duration.
//!
//! The samples are only those of the dates the horizon holds (`crate::horizon`): for a user
//! with a boundary, 90 dates before it and every date after. Dated rows (anomalies, scores)
//! of dates before the boundary come from the archive; the operator keeps the archive's
//! summary (a `Prefix` per metric, `PrefixCorrelations` per user) for the record over the
//! whole history and for the windows that end before the boundary. It derives that summary
//! itself when a boundary moves forward, and takes the horizon's (`ArchiveSummary`) when the
//! horizon archives in batch.

use crossbeam_channel::Sender;
use differential_dataflow::AsCollection;
use differential_dataflow::input::{Input, InputSession};
use timely::dataflow::operators::Probe;
use timely::dataflow::{ProbeHandle, Scope};

use crate::model::{
    ArchiveSummary, Daily, Day, Fixed, MetricKey, OutputDelta, SampleRow, UserKey, WorkoutRow,
};
use crate::provider_days::{DayChange, provider_days};
use crate::providers::{self, ProviderId};
use crate::stats;
use crate::user_analytics::{UserEvent, user_analytics};
use vitasync_engine::catalogue::ProviderPriority;

pub type Epoch = u64;

/// What the pipeline emits.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Deltas of one epoch (sent in batches: one channel message per operator invocation,
    /// not per row).
    Deltas(Epoch, Vec<OutputDelta>),
    /// Every delta of this epoch (and all earlier ones) has been emitted.
    Done(Epoch),
}

/// Where the pipeline's outputs go; completion markers travel on the same channel, behind the
/// deltas they complete.
pub type OutputSink = Sender<Output>;

/// A contested day's value of one provider: (its rank in the user's priority, its name, its
/// id, the value, the sample count); the least wins.
type Ranked = (usize, String, ProviderId, Fixed, u32);

/// Sends a batch of updates to the sink as one message per epoch in it.
fn send_by_epoch<D>(
    sink: &OutputSink,
    updates: &[(D, Epoch, isize)],
    delta: impl Fn(&D, isize) -> OutputDelta,
) {
    let mut by_epoch: std::collections::BTreeMap<Epoch, Vec<OutputDelta>> = Default::default();
    for (d, t, diff) in updates {
        by_epoch.entry(*t).or_default().push(delta(d, *diff));
    }
    for (t, deltas) in by_epoch {
        // The receiver only goes away at shutdown.
        let _ = sink.send(Output::Deltas(t, deltas));
    }
}

/// The pipeline's inputs and a probe on every output.
pub struct Inputs {
    pub samples: InputSession<Epoch, SampleRow, isize>,
    /// The days whose samples leave the held dates (`Batch::evictions`).
    pub evictions: InputSession<Epoch, (UserKey, MetricKey, Day), isize>,
    /// Each user's provider priority (their workspace's); a day several providers report is
    /// only sourced once the user's priority is here.
    pub priorities: InputSession<Epoch, (UserKey, ProviderPriority), isize>,
    /// Each user's workouts (from the stored events).
    pub workouts: InputSession<Epoch, (UserKey, WorkoutRow), isize>,
    /// Each archived user's boundary: dates before it are the archive's (see `horizon`).
    pub boundaries: InputSession<Epoch, (UserKey, Day), isize>,
    /// Per user archived in batch: what the archived dates contribute (only ever inserted;
    /// each replaces the user's summary).
    pub summaries: InputSession<Epoch, (UserKey, ArchiveSummary), isize>,
    pub probe: ProbeHandle<Epoch>,
}

impl Inputs {
    /// Advances every input to `epoch` and sends what they hold.
    pub fn advance_to(&mut self, epoch: Epoch) {
        self.samples.advance_to(epoch);
        self.samples.flush();
        self.evictions.advance_to(epoch);
        self.evictions.flush();
        self.priorities.advance_to(epoch);
        self.priorities.flush();
        self.workouts.advance_to(epoch);
        self.workouts.flush();
        self.boundaries.advance_to(epoch);
        self.boundaries.flush();
        self.summaries.advance_to(epoch);
        self.summaries.flush();
    }
}

/// Builds the pipeline in `scope`.
pub fn build(scope: Scope<'_, Epoch>, sink: OutputSink) -> Inputs {
    let (input, samples) = scope.new_collection::<SampleRow, isize>();
    let (eviction_input, evictions) = scope.new_collection::<(UserKey, MetricKey, Day), isize>();
    let (priority_input, priorities) = scope.new_collection::<(UserKey, ProviderPriority), isize>();
    let (workout_input, workouts) = scope.new_collection::<(UserKey, WorkoutRow), isize>();
    let (boundary_input, boundaries) = scope.new_collection::<(UserKey, Day), isize>();
    let (summary_input, summaries) = scope.new_collection::<(UserKey, ArchiveSummary), isize>();
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
        .inspect_batch(move |_, updates| {
            send_by_epoch(&workout_out, updates, |((u, activity), (kind, r)), diff| {
                OutputDelta::WorkoutRecord {
                    user: *u,
                    activity: activity.clone(),
                    kind: *kind,
                    record: r.clone(),
                    diff,
                }
            })
        })
        .probe_with(&probe);

    // Each provider's value of the day, then the one the user's workspace ranks first. The
    // priority is its own (tiny) input, so changing a workspace's order re-sources exactly the
    // days where its users have several providers. Days with one provider (nearly all) need no
    // choice and skip the join, so they are held once more, not three times.
    // Providers travel as interned ids (`crate::providers`): the operator holds every held
    // sample. A day's value is (provider, value, sample count).
    let per_provider = provider_days(
        samples
            .map(|r: SampleRow| {
                (
                    (r.user, r.metric, r.day),
                    DayChange::Sample((providers::id(&r.provider), r.recorded_at, r.value)),
                )
            })
            .concat(evictions.map(|key| (key, DayChange::Evict)))
            .inner,
    )
    .as_collection();
    let uncontested = per_provider
        .clone()
        .filter(|(_, (contested, ..))| !*contested)
        .map(|(k, (_, p, value, count))| (k, (p, value, count)));
    let chosen = per_provider
        .filter(|(_, (contested, ..))| *contested)
        .map(|((u, m, d), (_, p, value, count))| (u, (m, d, p, value, count)))
        .join_map(priorities, |u, (m, d, p, value, count), priority| {
            let name = providers::name(*p);
            (
                (*u, *m, *d),
                (priority.rank(&name), name.to_string(), *p, *value, *count),
            )
        })
        .reduce(
            |_key: &(UserKey, MetricKey, Day), input: &[(&Ranked, isize)], output| {
                // Lowest rank wins; equal ranks (providers the order does not know) by name.
                let best = input.iter().filter(|(_, n)| *n > 0).map(|(c, _)| *c).min();
                if let Some((_, _, p, value, count)) = best {
                    output.push(((*p, *value, *count), 1isize));
                }
            },
        );
    let daily = uncontested.concat(chosen);

    let daily_out = sink.clone();
    let daily = daily.inspect_batch(move |_, updates| {
        send_by_epoch(&daily_out, updates, |(key, (p, value, count)), diff| {
            OutputDelta::Daily {
                user: key.0,
                metric: key.1,
                day: key.2,
                daily: Daily {
                    value: *value,
                    count: *count,
                    provider: providers::name(*p),
                },
                diff,
            }
        })
    });

    let values = daily
        .probe_with(&probe)
        .map(|((u, m, d), (_, value, _))| (u, UserEvent::Value(m, d, value)));
    let events = values
        .concat(boundaries.map(|(u, b)| (u, UserEvent::Boundary(b))))
        .concat(summaries.map(|(u, s)| (u, UserEvent::Summary(s))));
    user_analytics(events.inner, sink).probe_with(&probe);

    Inputs {
        samples: input,
        evictions: eviction_input,
        priorities: priority_input,
        workouts: workout_input,
        boundaries: boundary_input,
        summaries: summary_input,
        probe,
    }
}
