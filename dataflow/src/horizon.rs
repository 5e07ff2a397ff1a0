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
//! The dates before the boundary are the *archive*:
//! - their dated rows, which stay as they were last emitted and are replaced when the archive
//!   is recomputed in batch ([`ArchivedDates`]);
//! - per (user, metric), a [`Prefix`]: the best archived value (a record over the whole history
//!   is the better of it and the held values') and the baselines of the archived dates alone,
//!   which stand while no date on or after the boundary has a value;
//! - per user, the [`PrefixCorrelations`], likewise.
//!
//! A boundary only moves forward, and moving it is the per-user operator's work: it holds
//! every window of the dates the boundary passes, so it derives their rows with the epoch's
//! changes, keeps them as the archive's, and derives the new prefixes from its values and the
//! old prefixes. Here a move is just the new boundary and the days it evicts; this module keeps
//! no samples, only which days it has let through.
//!
//! The archive is computed here, in batch from rows (the daily values by
//! [`crate::oracle::dailies`], the rest by the operator's own derivations,
//! `user_analytics::batch_into`), when the dataflow cannot have what it needs:
//! - a user's first samples (the batch holds all of them);
//! - a change before the boundary (a late backfill, a deletion of old data), a change of the
//!   provider priority, or a batch that moves the boundary past dates it changes itself (their
//!   samples are evicted in the epoch they arrive, before the operator sees them): these need
//!   the user's stored rows, which the caller reads and passes in [`Batch::archive_rows`];
//!   [`Horizon::needs_rows`] says whose.
//!
//! Then the dated rows travel as [`ArchivedDates`] and the rest as an [`ArchiveSummary`] that
//! replaces the operator's. Both paths use the operator's derivations over exactly the dates
//! the archive covers, and those use the oracle's arithmetic, so the rows are identical
//! whichever produced them (the property test drives histories across boundaries and compares
//! with the oracle after every epoch).

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;

use crate::handle::Batch;
use crate::metric_days::MetricDays;
use crate::model::{
    ArchiveSummary, ArchivedDates, Day, Fixed, MetricKey, Prefix, PrefixCorrelations, SampleDelta,
    SampleRow, UserKey, WINDOWS,
};
use crate::oracle;
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

#[derive(Default)]
struct UserState {
    /// None until the user's first sample.
    boundary: Option<Day>,
    /// The latest date any sample of the user has had.
    high: Option<Day>,
    /// Per metric, the dates the dataflow holds samples of, with how many: what a boundary
    /// that moves evicts. The samples themselves are the operators'.
    held: MetricDays<i32>,
}

impl UserState {
    fn hold(&mut self, m: MetricKey, d: Day, diff: isize) {
        let diff = i32::try_from(diff).unwrap_or(if diff > 0 { i32::MAX } else { i32::MIN });
        match self.held.get_mut(m, d) {
            Some(n) => {
                *n = n.saturating_add(diff);
                if *n == 0 {
                    self.held.remove(m, d);
                }
            }
            None => self.held.insert(m, d, diff),
        }
    }
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

    /// How many (user, metric, date) keys the dataflow holds samples of.
    pub fn held_days(&self) -> usize {
        self.users.values().map(|s| s.held.len()).sum()
    }

    /// The users whose batch archive `batch` calls for from their stored rows: those it
    /// changes a date before their boundary for, and those whose boundary it moves past a
    /// date it changes (the dataflow never sees such a change, so it cannot derive the rows
    /// of the dates the boundary passes), and those whose provider priority it changes.
    pub fn needs_rows(&self, batch: &Batch) -> Vec<UserKey> {
        // Per user: the earliest date the batch changes and the latest it inserts.
        let mut span: BTreeMap<UserKey, (Day, Option<Day>)> = BTreeMap::new();
        for run in batch.samples.chunk_by(|a, b| a.row.user == b.row.user) {
            let earliest = run.iter().map(|d| d.row.day).min().unwrap_or(Day::MAX);
            let inserted = run.iter().filter(|d| d.diff > 0).map(|d| d.row.day).max();
            let e = span.entry(run[0].row.user).or_insert((earliest, inserted));
            e.0 = e.0.min(earliest);
            e.1 = e.1.max(inserted);
        }
        let mut out = BTreeSet::new();
        for (u, (earliest, inserted)) in span {
            let Some(st) = self.users.get(&u) else {
                continue;
            };
            let Some(b) = st.boundary else {
                continue;
            };
            let high = st.high.max(inserted).unwrap_or(b);
            let new = b.max(self.target(u, high));
            if earliest < b || earliest < first_held(new) {
                out.insert(u);
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
    /// dates; for every user whose boundary moves, the new boundary and the days whose samples
    /// leave the held dates (`Batch::evictions`); and for every user archived in batch (their
    /// first samples, or [`Self::needs_rows`]), the archive's summary and dated rows.
    /// `batch.archive_rows` must hold the rows of every user [`Self::needs_rows`] named; a user
    /// missing there keeps their archive as it was.
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
        // A user without a boundary has no samples before this batch: the batch's are all of
        // them, and their first archive is computed from those.
        let mut first: HashMap<UserKey, Vec<SampleDelta>> = HashMap::default();
        let mut forward: Vec<SampleDelta> = Vec::with_capacity(batch.samples.len());
        let mut samples = std::mem::take(&mut batch.samples).into_iter().peekable();
        while let Some(d) = samples.next() {
            // A user's samples usually come together: their state is looked up once per run.
            let u = d.row.user;
            touched.insert(u);
            let st = self.users.entry(u).or_default();
            let boundary = st.boundary;
            let mut next = Some(d);
            while let Some(d) = next.take().or_else(|| samples.next_if(|n| n.row.user == u)) {
                if d.diff > 0 {
                    st.high = Some(st.high.map_or(d.row.day, |h| h.max(d.row.day)));
                }
                match boundary {
                    Some(b) if d.row.day < first_held(b) => continue,
                    Some(_) => {}
                    None => first.entry(u).or_default().push(d.clone()),
                }
                st.hold(d.row.metric, d.row.day, d.diff);
                forward.push(d);
            }
        }
        let mut jobs = Vec::new();
        for u in touched {
            let Some(st) = self.users.get(&u) else {
                continue;
            };
            let Some(high) = st.high else {
                continue;
            };
            let old = st.boundary;
            let new = old.map_or(self.target(u, high), |b| b.max(self.target(u, high)));
            let full = if let Some(deltas) = first.remove(&u) {
                Some(consolidated(deltas))
            } else if rearchive.contains(&u) {
                match rows.get(&u) {
                    Some(r) => Some(r.clone()),
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
            match full {
                Some(mut rows) => {
                    rows.retain(|r| r.day < new);
                    let priorities = self
                        .priorities
                        .get(&u)
                        .map(|p| (u, p.clone()))
                        .into_iter()
                        .collect();
                    jobs.push(Job {
                        user: u,
                        new,
                        rows,
                        priorities,
                    });
                }
                // The operator archives the dates the boundary passes from the values it holds.
                None if old != Some(new) => self.settle(u, new, &mut batch),
                None => {}
            }
        }
        for (job, (dates, prefixes, correlations)) in jobs.iter().zip(compute_all(&jobs)) {
            self.settle(job.user, job.new, &mut batch);
            batch.archived.push(dates);
            batch.summaries.push((
                job.user,
                ArchiveSummary {
                    prefixes: prefixes.into_iter().collect(),
                    correlations,
                },
            ));
        }
        // A sample inserted in the batch that evicts its day is sent, and the day's eviction
        // after it (`Batch::evictions`): the operators drop both.
        batch.samples = forward;
        batch
    }

    /// Sets `user`'s boundary to `new` and evicts the held dates no window of a date on or
    /// after it reaches (naming them in `out.evictions`).
    fn settle(&mut self, user: UserKey, new: Day, out: &mut Batch) {
        let st = self.users.get_mut(&user).expect("the user is known");
        st.held
            .remove_before(first_held(new), |m, d| out.evictions.push((user, m, d)));
        if st.boundary != Some(new) {
            if let Some(b) = st.boundary {
                out.boundaries.push((user, b, -1));
            }
            out.boundaries.push((user, new, 1));
            st.boundary = Some(new);
        }
    }
}

/// The rows a batch leaves (an insertion and a retraction of the same row cancel).
fn consolidated(mut deltas: Vec<SampleDelta>) -> Vec<SampleRow> {
    deltas.sort_by(|a, b| a.row.cmp(&b.row));
    let mut rows = Vec::with_capacity(deltas.len());
    for run in deltas.chunk_by(|a, b| a.row == b.row) {
        let n: isize = run.iter().map(|d| d.diff).sum();
        for _ in 0..n.max(0) {
            rows.push(run[0].row.clone());
        }
    }
    rows
}

/// One user's archive below `new`, computed in batch from their rows before it.
struct Job {
    user: UserKey,
    new: Day,
    rows: Vec<SampleRow>,
    priorities: BTreeMap<UserKey, ProviderPriority>,
}

impl Job {
    fn compute(&self) -> Archive {
        let mut series: BTreeMap<MetricKey, Vec<(Day, Fixed)>> = BTreeMap::new();
        for ((_, m, d), daily) in oracle::dailies(&self.rows, &self.priorities) {
            series.entry(m).or_default().push((d, daily.value));
        }
        let fresh: BTreeSet<MetricKey> = series.keys().copied().collect();
        let mut part = oracle::Analytics::default();
        crate::user_analytics::batch_into(self.user, series, Day::MIN..self.new, true, &mut part);
        archive_of(self.user, &part, &fresh, Day::MIN, self.new, None)
    }
}

/// Computes the jobs' archives on the machine's cores (each is a batch computation over one
/// user's rows: hydration has thousands).
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
pub(crate) fn archive_of(
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
