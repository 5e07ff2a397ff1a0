//! The horizon: which of a user's dates the dataflow holds, and the batch archive of the rest.
//!
//! Memory and the cost of an update must follow users × metrics × a bounded number of dates,
//! not the length of the history. So each user has a *boundary* that trails their latest date
//! (by `lead` to `lead + block` dates, staggered per user so users do not all move on the same
//! day). The dataflow
//! - holds the samples of the dates from `boundary − CONTEXT` on: the dates on or after the
//!   boundary with everything any window of theirs reaches (the 90-date baselines and
//!   correlations ending at a date on or after the boundary, the 28- and 60-date windows
//!   before each such date);
//! - emits the dated rows (anomalies, scores) of the dates on or after the boundary only.
//!
//! The dates before the boundary are the *archive*, computed in batch (the daily values by
//! [`crate::oracle::dailies`] or from the held samples, the rest by the per-user operator's own
//! derivations, `user_analytics::batch_into`) when the boundary moves and whenever a change
//! reaches them:
//! - their dated rows travel once as [`ArchivedDates`], replacing the user's rows on those dates;
//! - per (user, metric), a [`Prefix`]: the best archived value (a record over the whole history
//!   is the better of it and the held values') and the baselines of the archived dates alone,
//!   which stand while no date on or after the boundary has a value;
//! - per user, the [`PrefixCorrelations`], likewise.
//!
//! A boundary only moves forward. Moving it needs nothing but the held samples: the newly
//! archived dates have all their windows among them, and dates archived before keep their
//! rows. A change before the boundary (a late backfill, a deletion of old data, a change of
//! the provider priority) needs the user's full rows, which the caller reads from the store
//! and passes in [`Batch::archive_rows`]; [`Horizon::needs_rows`] says whose.
//!
//! Both paths compute the archive with the operator's derivations over exactly the dates it
//! covers, and those use the oracle's arithmetic, so the rows are identical whichever produced
//! them (the property test drives histories across boundaries and compares with the oracle
//! after every epoch).

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;

use crate::handle::Batch;
use crate::model::{
    ArchivedDates, Day, Fixed, MetricKey, Prefix, PrefixCorrelations, SampleDelta, SampleRow,
    UserKey, WINDOWS,
};
use crate::oracle;
use crate::providers::{self, ProviderId};
use vitasync_engine::catalogue::ProviderPriority;

/// How many dates before the boundary the dataflow holds: the longest any window of a date on
/// or after the boundary reaches back (the 90-date baseline and correlation windows).
pub const CONTEXT: Day = 90;

/// The first date the dataflow holds for a user with this boundary.
pub(crate) fn first_held(boundary: Day) -> Day {
    boundary.saturating_sub(CONTEXT)
}

/// Where the boundary trails the user's latest date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HorizonConfig {
    /// The fewest dates on or after the boundary (the latest date included).
    pub lead: Day,
    /// The boundary moves in steps of this many dates (fewer, larger archive steps).
    pub block: Day,
}

impl Default for HorizonConfig {
    /// 16 + 32: the dataflow holds 106 to 137 dates per user and metric (121 on average), and
    /// a user's boundary moves once every 32 dates.
    fn default() -> Self {
        HorizonConfig {
            lead: 16,
            block: 32,
        }
    }
}

/// A held sample: (metric, date, provider, recorded_at, value).
type HeldKey = (MetricKey, Day, ProviderId, i64, Fixed);

#[derive(Default)]
struct UserState {
    /// None until the user's first sample.
    boundary: Option<Day>,
    /// The latest date any sample of the user has had.
    high: Option<Day>,
    /// The samples the dataflow holds, with their multiplicities.
    held: BTreeMap<HeldKey, isize>,
    prefixes: BTreeMap<MetricKey, Prefix>,
    correlations: Option<PrefixCorrelations>,
}

pub struct Horizon {
    config: HorizonConfig,
    users: HashMap<UserKey, UserState>,
    priorities: HashMap<UserKey, ProviderPriority>,
}

impl Horizon {
    pub fn new(config: HorizonConfig) -> Self {
        assert!(config.block > 0 && config.lead >= 0, "a usable horizon");
        Horizon {
            config,
            users: HashMap::default(),
            priorities: HashMap::default(),
        }
    }

    /// The first date whose samples the dataflow holds for `user` (None: all of them).
    pub fn held_from(&self, user: UserKey) -> Option<Day> {
        self.users.get(&user)?.boundary.map(first_held)
    }

    /// The user's boundary (None before their first sample).
    pub fn boundary(&self, user: UserKey) -> Option<Day> {
        self.users.get(&user)?.boundary
    }

    /// How many samples the dataflow holds (all users).
    pub fn held_samples(&self) -> usize {
        self.users.values().map(|s| s.held.len()).sum()
    }

    /// The users whose archived dates `batch` changes: their full rows must come with it.
    pub fn needs_rows(&self, batch: &Batch) -> Vec<UserKey> {
        let mut out = BTreeSet::new();
        for d in &batch.samples {
            if let Some(b) = self.boundary(d.row.user)
                && d.row.day < b
            {
                out.insert(d.row.user);
            }
        }
        for (u, _, _) in &batch.priorities {
            if self.boundary(*u).is_some() {
                out.insert(*u);
            }
        }
        out.into_iter().collect()
    }

    /// The boundary `high` calls for: `lead` to `lead + block` dates back, on a per-user grid.
    fn target(&self, user: UserKey, high: Day) -> Day {
        let block = self.config.block;
        let shift = ((user ^ (user >> 64)) % block as u128) as Day;
        (high - self.config.lead + shift).div_euclid(block) * block - shift
    }

    /// Turns a batch of sample changes into what the dataflow receives: the changes of held
    /// dates, and for every user whose boundary moves or whose archived dates changed, the
    /// boundary, prefixes, correlations and archived rows that change, and the days whose
    /// samples leave the held dates (`Batch::evictions`). `batch.archive_rows` must hold the
    /// rows of every user [`Self::needs_rows`] named; a user missing there keeps their archive
    /// as it was.
    pub fn route(&mut self, mut batch: Batch) -> Batch {
        let rows = std::mem::take(&mut batch.archive_rows);
        // Decided before anything moves, by the same rule the caller used to read the rows.
        let rearchive: BTreeSet<UserKey> = self.needs_rows(&batch).into_iter().collect();
        let mut touched: BTreeSet<UserKey> = BTreeSet::new();
        // Retractions first, so a (−old, +new) pair leaves the new priority.
        let mut priorities = batch.priorities.clone();
        priorities.sort_by_key(|(_, _, diff)| *diff);
        for (u, p, diff) in priorities {
            if diff > 0 {
                self.priorities.insert(u, p);
            } else if self.priorities.get(&u) == Some(&p) {
                self.priorities.remove(&u);
            }
            touched.insert(u);
        }
        let mut forward: Vec<SampleDelta> = Vec::with_capacity(batch.samples.len());
        for d in std::mem::take(&mut batch.samples) {
            let u = d.row.user;
            let boundary = self.boundary(u);
            touched.insert(u);
            if d.diff > 0 {
                let st = self.users.entry(u).or_default();
                st.high = Some(st.high.map_or(d.row.day, |h| h.max(d.row.day)));
            }
            if boundary.is_none_or(|b| d.row.day >= first_held(b)) {
                let key = (
                    d.row.metric,
                    d.row.day,
                    providers::id(&d.row.provider),
                    d.row.recorded_at,
                    d.row.value,
                );
                let st = self.users.entry(u).or_default();
                let n = st.held.entry(key).or_default();
                *n += d.diff;
                if *n == 0 {
                    st.held.remove(&key);
                }
                forward.push(d);
            }
        }
        let mut jobs = Vec::new();
        for u in touched {
            let full = if rearchive.contains(&u) {
                match rows.get(&u) {
                    Some(r) => Some(r.as_slice()),
                    None => {
                        tracing::warn!(
                            user = %uuid::Uuid::from_u128(u),
                            "changes before the analytics horizon arrived without the user's rows; \
                             their archived dates are kept as they were"
                        );
                        None
                    }
                }
            } else {
                None
            };
            jobs.extend(self.plan(u, full));
        }
        for (job, archive) in jobs.iter().zip(compute_all(&jobs)) {
            self.apply(job, archive, &mut batch);
        }
        // A sample inserted in the batch that evicts its day is sent, and the day's eviction
        // after it (`Batch::evictions`): the operators drop both.
        batch.samples = forward;
        batch
    }

    /// What `user`'s archive needs computing from, if anything: all their rows when `full`
    /// is given, else the held samples before the new boundary when the boundary moves.
    fn plan(&self, user: UserKey, full: Option<&[SampleRow]>) -> Option<Job> {
        let st = self.users.get(&user)?;
        let high = st.high?;
        let old = st.boundary;
        let new = old.map_or(self.target(user, high), |b| b.max(self.target(user, high)));
        if full.is_none() && old == Some(new) {
            return None;
        }
        let priorities: BTreeMap<UserKey, ProviderPriority> = self
            .priorities
            .get(&user)
            .map(|p| (user, p.clone()))
            .into_iter()
            .collect();
        Some(match full {
            Some(rows) => Job {
                user,
                old,
                new,
                source: Source::Rows(rows.iter().filter(|r| r.day < new).cloned().collect()),
                priorities,
                from: Day::MIN,
                earlier: None,
            },
            // Everything before `new` that is not archived yet is held (with its windows).
            None => Job {
                user,
                old,
                new,
                source: Source::Held(
                    st.held
                        .iter()
                        .filter(|(k, _)| k.1 < new)
                        .map(|(k, n)| (*k, *n))
                        .collect(),
                ),
                priorities,
                from: old.unwrap_or(Day::MIN),
                earlier: Some((st.prefixes.clone(), st.correlations.clone())),
            },
        })
    }

    /// Moves the job's user to the new boundary with its computed archive: evicts the held
    /// samples no window reaches any more (naming their days in `out.evictions`, once each)
    /// and records what the pipeline must change.
    fn apply(&mut self, job: &Job, archive: Archive, out: &mut Batch) {
        let (user, old, new) = (job.user, job.old, job.new);
        let (dates, prefixes, correlations) = archive;
        // The held samples that no window of a date on or after the new boundary reaches.
        let evict_below = first_held(new);
        let st = self.users.get_mut(&user).expect("the user is known");
        st.held.retain(|k, _| {
            let keep = k.1 >= evict_below;
            // Sorted by (metric, date, …): a day's samples are adjacent.
            if !keep && out.evictions.last() != Some(&(user, k.0, k.1)) {
                out.evictions.push((user, k.0, k.1));
            }
            keep
        });
        if old != Some(new) {
            if let Some(b) = old {
                out.boundaries.push((user, b, -1));
            }
            out.boundaries.push((user, new, 1));
            st.boundary = Some(new);
        }
        let metrics: BTreeSet<MetricKey> =
            st.prefixes.keys().chain(prefixes.keys()).copied().collect();
        for m in metrics {
            let (was, now) = (st.prefixes.get(&m), prefixes.get(&m));
            if was == now {
                continue;
            }
            if let Some(p) = was {
                out.prefixes.push(((user, m), p.clone(), -1));
            }
            if let Some(p) = now {
                out.prefixes.push(((user, m), p.clone(), 1));
            }
        }
        st.prefixes = prefixes;
        if st.correlations != correlations {
            if let Some(c) = st.correlations.take() {
                out.prefix_correlations.push((user, c, -1));
            }
            if let Some(c) = &correlations {
                out.prefix_correlations.push((user, c.clone(), 1));
            }
            st.correlations = correlations;
        }
        out.archived.push(dates);
    }
}

/// One user's archive to compute from `source` (their rows before the new boundary, or the
/// held ones), then what it means for the dates in `[from, new)`.
struct Job {
    user: UserKey,
    old: Option<Day>,
    new: Day,
    source: Source,
    priorities: BTreeMap<UserKey, ProviderPriority>,
    from: Day,
    earlier: Option<(BTreeMap<MetricKey, Prefix>, Option<PrefixCorrelations>)>,
}

/// Where a job's samples come from.
enum Source {
    /// The user's stored rows (a change before the boundary).
    Rows(Vec<SampleRow>),
    /// The held samples, sorted by (metric, date, …).
    Held(Vec<(HeldKey, isize)>),
}

impl Job {
    fn compute(&self) -> Archive {
        let mut series: BTreeMap<MetricKey, Vec<(Day, Fixed)>> = BTreeMap::new();
        match &self.source {
            Source::Rows(rows) => {
                for ((_, m, d), daily) in oracle::dailies(rows, &self.priorities) {
                    series.entry(m).or_default().push((d, daily.value));
                }
            }
            Source::Held(samples) => {
                let default = ProviderPriority::default();
                let priority = self.priorities.get(&self.user).unwrap_or(&default);
                // The names of the few providers, looked up once.
                let mut ids: Vec<ProviderId> = samples.iter().map(|(k, _)| k.2).collect();
                ids.sort_unstable();
                ids.dedup();
                let names: BTreeMap<ProviderId, std::sync::Arc<str>> =
                    ids.into_iter().map(|p| (p, providers::name(p))).collect();
                // Sorted by (metric, date): each day's samples are one run.
                let mut entries = Vec::new();
                for run in samples.chunk_by(|(a, _), (b, _)| (a.0, a.1) == (b.0, b.1)) {
                    let (m, d) = (run[0].0.0, run[0].0.1);
                    entries.clear();
                    entries.extend(run.iter().map(|(k, n)| ((&*names[&k.2], k.3, k.4), *n)));
                    if let Some(daily) = crate::stats::daily_value(m, priority, &entries) {
                        series.entry(m).or_default().push((d, daily.value));
                    }
                }
            }
        }
        // Only the dates being archived need their dated rows.
        let fresh: BTreeSet<MetricKey> = series
            .iter()
            .filter(|(_, vals)| vals.iter().any(|(d, _)| self.from <= *d && *d < self.new))
            .map(|(m, _)| *m)
            .collect();
        let mut part = oracle::Analytics::default();
        crate::user_analytics::batch_into(self.user, series, self.from..self.new, &mut part);
        let earlier = self.earlier.as_ref().map(|(p, c)| (p, c.as_ref()));
        archive_of(self.user, &part, &fresh, self.from, self.new, earlier)
    }
}

/// Computes the jobs' archives on the machine's cores (each is a batch computation over one
/// user's rows: hydration and a day when many boundaries move have thousands).
fn compute_all(jobs: &[Job]) -> Vec<Archive> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    if threads <= 1 {
        return jobs.iter().map(Job::compute).collect();
    }
    let per = jobs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = jobs
            .chunks(per)
            .map(|chunk| scope.spawn(|| chunk.iter().map(Job::compute).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("an archive computation panicked"))
            .collect()
    })
}

type Archive = (
    ArchivedDates,
    BTreeMap<MetricKey, Prefix>,
    Option<PrefixCorrelations>,
);

/// The archive of `user` below `below` from `part`, the batch analytics of their dates before
/// `below` (`fresh`: the metrics with a value in `[from, below)`).
/// With `earlier` (the prefixes and correlations archived below `from`), `part` covers only the
/// held dates: a metric (or the user) without values in `[from, below)` keeps what it had, and
/// records take the better of both.
fn archive_of(
    user: UserKey,
    part: &oracle::Analytics,
    fresh: &BTreeSet<MetricKey>,
    from: Day,
    below: Day,
    earlier: Option<(&BTreeMap<MetricKey, Prefix>, Option<&PrefixCorrelations>)>,
) -> Archive {
    let in_range = |d: Day| from <= d && d < below;
    let dates = ArchivedDates {
        user,
        from,
        below,
        anomalies: part
            .anomalies
            .iter()
            .filter(|((_, _, d), _)| in_range(*d))
            .map(|((_, m, d), a)| ((*m, *d), a.clone()))
            .collect(),
        scores: part
            .scores
            .iter()
            .filter(|((_, d), _)| in_range(*d))
            .map(|((_, d), s)| (*d, s.clone()))
            .collect(),
    };
    let none = BTreeMap::new();
    let (old_prefixes, old_correlations) = earlier.unwrap_or((&none, None));
    let metrics: BTreeSet<MetricKey> = old_prefixes.keys().chain(fresh.iter()).copied().collect();
    let mut prefixes = BTreeMap::new();
    for m in metrics {
        let old = old_prefixes.get(&m);
        let baselines = if fresh.contains(&m) {
            WINDOWS
                .iter()
                .filter_map(|w| Some((*w, part.baselines.get(&(user, m, *w))?.clone())))
                .collect()
        } else {
            old.map(|p| p.baselines.clone()).unwrap_or_default()
        };
        let candidates: Vec<(Day, Fixed)> = old
            .and_then(|p| p.record.as_ref())
            .into_iter()
            .chain(part.records.get(&(user, m)))
            .map(|r| (r.day, r.value))
            .collect();
        prefixes.insert(
            m,
            Prefix {
                below,
                record: crate::stats::record(m, &candidates),
                baselines,
            },
        );
    }
    let correlations = if fresh.is_empty() {
        old_correlations.map(|c| PrefixCorrelations {
            below,
            rows: c.rows.clone(),
        })
    } else {
        Some(PrefixCorrelations {
            below,
            rows: part
                .correlations
                .iter()
                .map(|((_, a, b, lag), c)| (*a, *b, *lag, c.clone()))
                .collect(),
        })
    };
    (dates, prefixes, correlations)
}
