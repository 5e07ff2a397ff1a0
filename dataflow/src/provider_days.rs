//! Each provider's value of a day, per (user, metric, day): the catalogue's rule over that
//! provider's samples of the day, and whether several providers report the day (a contested
//! day, which the user's priority then decides).
//!
//! Why a timely operator of its own rather than differential's `reduce`: every held sample
//! passes through here (a new date brings one key per user and metric, and the horizon evicts
//! as many), and a `reduce` answers each key by replaying its input and output histories and
//! merging both arrangements, which cost several times the aggregation itself. Epochs are
//! processed in order once complete, as in `crate::user_analytics`, so the state is just each
//! key's current samples; a key's output before and after an epoch's changes is computed with
//! the same `stats` function the oracle calls, and the difference emitted. The property test compares the pipeline with the oracle after every epoch.

use differential_dataflow::hashable::Hashable;
use foldhash::HashMap;
use smallvec::SmallVec;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::StreamVec;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Operator;

use crate::in_order::InOrder;
use crate::metric_days::MetricDays;
use crate::model::{Day, Fixed, MetricKey, UserKey};
use crate::pipeline::Epoch;
use crate::providers::ProviderId;
use crate::stats;

/// The key of a day's samples.
pub(crate) type DayKey = (UserKey, MetricKey, Day);
/// A sample of the day: (provider, recorded at, value).
pub(crate) type Entry = (ProviderId, i64, Fixed);
/// A provider's value of the day: (contested, provider, value, sample count).
pub(crate) type ProviderDay = (bool, ProviderId, Fixed, u32);

/// What reaches a day: a sample entering or leaving, or the day leaving the held dates with
/// the horizon. An eviction sorts after the samples, so a sample that arrives in the epoch its
/// day is evicted goes too.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum DayChange {
    Sample(Entry),
    Evict,
}

/// One key's samples with their multiplicities, sorted. Nearly every day has one sample per
/// metric and provider, so one is held inline: the map holds every held sample, and a
/// separate allocation per key would double the pipeline's memory. What was emitted for a key
/// is not kept either: it is what the samples gave before the epoch's changes.
type Entries = SmallVec<[(Entry, isize); 1]>;

/// What a key's samples give: each provider's value, marked contested when there are several.
fn rows(metric: MetricKey, entries: &[(Entry, isize)]) -> Vec<ProviderDay> {
    if entries.is_empty() {
        return Vec::new();
    }
    let dailies = stats::provider_dailies(metric, entries);
    let contested = dailies.len() > 1;
    dailies
        .into_iter()
        .map(|(p, value, count)| (contested, p, value, count))
        .collect()
}

type Update = ((DayKey, DayChange), Epoch, isize);

/// One user's held days with their samples (`crate::metric_days`): keyed by user, not by day,
/// so a new date's samples of one user land in a few cache lines of theirs.
type UserDays = MetricDays<Entries>;

/// The operator: samples keyed by day in, each provider's value of the day out (as updates of
/// a differential collection).
pub(crate) fn provider_days<'s>(
    samples: StreamVec<'s, Epoch, Update>,
) -> StreamVec<'s, Epoch, ((DayKey, ProviderDay), Epoch, isize)> {
    // By user, as the per-user operator downstream: a user's days are held together.
    let exchange = Exchange::new(|((k, _), _, _): &Update| k.0.hashed());
    samples.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(
        exchange,
        "ProviderDays",
        move |_capability, _info| {
            let mut users: HashMap<UserKey, UserDays> = HashMap::default();
            let mut pending = InOrder::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    for (update, time, diff) in data.drain(..) {
                        let port = output.output_index();
                        pending.hold(time, || cap.delayed(&time, port), (update, diff));
                    }
                });
                // Sorted by key (then sample) as well.
                while let Some((epoch, capability, updates)) =
                    pending.next_complete(|e| !frontier.less_equal(e))
                {
                    let mut out = Vec::new();
                    // The users in the epoch, in order: each one's days are asked for
                    // (`crate::prefetch`) while the one before is worked on.
                    let mut order: Vec<UserKey> = Vec::new();
                    for ((k, _), _) in &updates {
                        if order.last() != Some(&k.0) {
                            order.push(k.0);
                        }
                    }
                    let mut next = order.iter().skip(1);
                    let mut updates = updates.into_iter().peekable();
                    let mut user: Option<(UserKey, UserDays)> = None;
                    while let Some(((key, change), diff)) = updates.next() {
                        // Sorted by user first: each user's days are taken out of the map
                        // once per epoch.
                        if user.as_ref().is_none_or(|(u, _)| *u != key.0) {
                            if let Some((u, days)) = user.take()
                                && !days.is_empty()
                            {
                                users.insert(u, days);
                            }
                            user = Some((key.0, users.remove(&key.0).unwrap_or_default()));
                            if let Some(days) = next.next().and_then(|u| users.get(u)) {
                                days.prefetch_ends();
                            }
                        }
                        let days = &mut user.as_mut().expect("set above").1;
                        let mut entries = days.remove(key.1, key.2).unwrap_or_default();
                        let old = rows(key.1, &entries);
                        let mut evicted = false;
                        let mut change = Some((change, diff));
                        while let Some((change, diff)) = change.take().or_else(|| {
                            updates
                                .next_if(|((k, _), _)| *k == key)
                                .map(|((_, c), d)| (c, d))
                        }) {
                            match change {
                                DayChange::Sample(entry) => add(&mut entries, entry, diff),
                                DayChange::Evict => evicted = true,
                            }
                        }
                        if evicted {
                            // The day leaves with the horizon. Its value leaves the per-user
                            // operator by the user's boundary, and nothing holds daily values
                            // downstream of here but the choice among contested providers, so
                            // only contested rows are retracted: one eviction per sample
                            // passing through the whole dataflow cost a quarter of a new
                            // date's work.
                            for row in old.iter().filter(|(contested, ..)| *contested) {
                                out.push(((key, *row), epoch, -1));
                            }
                            continue;
                        }
                        let new = rows(key.1, &entries);
                        if !entries.is_empty() {
                            days.insert(key.1, key.2, entries);
                        }
                        for row in old.iter().filter(|o| !new.contains(o)) {
                            out.push(((key, *row), epoch, -1));
                        }
                        for row in new.iter().filter(|n| !old.contains(n)) {
                            out.push(((key, *row), epoch, 1));
                        }
                    }
                    if let Some((u, days)) = user.take()
                        && !days.is_empty()
                    {
                        users.insert(u, days);
                    }
                    if !out.is_empty() {
                        output.session(&capability).give_container(&mut out);
                    }
                }
            }
        },
    )
}

/// Adds `diff` to `entry`'s multiplicity, dropping it at zero; the entries stay sorted, as a
/// `reduce` would present them, so the aggregation sees them in the oracle's order.
fn add(entries: &mut Entries, entry: Entry, diff: isize) {
    match entries.binary_search_by(|(e, _)| e.cmp(&entry)) {
        Ok(i) => {
            entries[i].1 += diff;
            if entries[i].1 == 0 {
                entries.remove(i);
            }
        }
        Err(i) => entries.insert(i, (entry, diff)),
    }
}
