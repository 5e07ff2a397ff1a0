//! The running analytics: the pipeline, the view its outputs accumulate into, hydration from
//! the store at start-up, and the engine's `AnalyticsSink` port, through which every writer
//! hands over the changes it committed.

use std::sync::Arc;
use std::time::Instant;

use std::collections::{BTreeSet, HashMap};
use vitasync_engine::analytics::{AnalyticsSink, AnalyticsWrite, Epoch};
use vitasync_engine::bus::{AnalyticsChange, Bus, BusEvent};

use vitasync_engine::catalogue::ProviderPriority;
use vitasync_engine::domain::{Event, EventType, SampleChange, UserId, WorkspaceId};
use vitasync_engine::store::{DynStore, Store};

use crate::handle::{Batch, Dataflow};
use crate::model::{SampleDelta, SampleRow, UserKey, WorkoutRow, day_of, metric_key, to_fixed};
use crate::pipeline::Output;
use crate::view::View;

/// Rows read from the store per hydration step.
const HYDRATION_PAGE: u32 = 20_000;

pub struct Analytics {
    flow: Arc<Dataflow>,
    view: Arc<View>,
    /// The epoch the view reflects (advanced by the view thread).
    viewed: tokio::sync::watch::Receiver<Epoch>,
    /// The epoch the analytics tables reflect (advanced by the materializer).
    materialized: tokio::sync::watch::Sender<Epoch>,
    /// Which provider priority each user's days are sourced by, and the epochs waiting for
    /// stored rows. Held while an epoch is numbered and handed over, so the users announced to
    /// the pipeline and their priorities change in epoch order.
    sources: Arc<std::sync::Mutex<Sources>>,
    /// Where the rows of users whose archived dates change are read (set by `hydrate`).
    store: std::sync::OnceLock<DynStore>,
    /// Set once the first flush has reconciled the tables with the hydrated analytics.
    reconciled: std::sync::OnceLock<Reconciled>,
    /// The last epoch of hydration (0 before it, or when there was nothing to hydrate).
    hydrated: std::sync::atomic::AtomicU64,
    /// The first epoch of this process.
    first: Epoch,
    /// Whether a materializer writes the tables (so a shutdown waits for them, not the view).
    materializing: std::sync::atomic::AtomicBool,
}

/// What the first flush after a start did: rows written and changes announced (both 0 when
/// nothing changed while the analytics were not running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub rows: usize,
    pub changes: usize,
}

/// Rows written per transaction. A flush is normally a few rows; the first one after a start
/// can be every row of every user, and one transaction that long would hold the database's
/// write lock past other writers' patience (SQLite's busy timeout), failing their requests.
const FLUSH_CHUNK: usize = 5_000;

/// Writes `writes` in transactions of at most [`FLUSH_CHUNK`] rows, in order. Readers that
/// asked for the flush's epoch wait for all of them (the epoch advances after the last one);
/// if one fails, the whole flush is sent again, which the upserts and deletes make harmless.
async fn apply_in_chunks(
    store: &dyn Store,
    writes: &[AnalyticsWrite],
) -> vitasync_engine::Result<()> {
    for chunk in writes.chunks(FLUSH_CHUNK) {
        store.apply_analytics(chunk, false).await?;
    }
    Ok(())
}

/// The first pause after a failed store call, doubled after each further failure up to
/// [`MAX_BACKOFF`], and back to this after a success.
const MIN_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// Sleeps for `backoff`, then doubles it (up to [`MAX_BACKOFF`]).
async fn pause(backoff: &mut std::time::Duration) {
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

/// How long an announcement waits for the bus's subscribers to make room before publishing
/// anyway (a subscriber that stopped reading must not stop the analytics).
const BUS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// Publishes what `batch` changed, then which users' rows it wrote. Many changes go out in
/// slices, each once the subscribers have taken most of the earlier ones, so a flush with more
/// changes than the bus holds (the first after a bulk load) paces itself to the notifier
/// instead of making it miss events.
async fn announce(bus: &Bus, epoch: Epoch, batch: Flush) {
    const SLICE: usize = vitasync_engine::bus::CAPACITY / 4;
    let paced = batch.changes.len() > SLICE;
    for (i, (user_id, change)) in batch.changes.into_iter().enumerate() {
        if paced && i % SLICE == 0 {
            wait_for_room(bus).await;
        }
        bus.publish(BusEvent::AnalyticsChanged {
            user_id,
            epoch,
            change,
        });
    }
    let users = users_of(&batch.writes);
    if !users.is_empty() {
        bus.publish(BusEvent::AnalyticsMaterialized {
            epoch,
            users: Arc::new(users),
        });
    }
}

/// Waits until at most half the bus's capacity is unread, or [`BUS_PATIENCE`] has passed.
async fn wait_for_room(bus: &Bus) {
    let started = Instant::now();
    while bus.backlog() > vitasync_engine::bus::CAPACITY / 2 {
        if started.elapsed() >= BUS_PATIENCE {
            tracing::warn!(
                backlog = bus.backlog(),
                "a bus subscriber is not keeping up with the analytics' changes"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The users of `writes`.
fn users_of(writes: &[AnalyticsWrite]) -> Vec<uuid::Uuid> {
    let mut users: Vec<uuid::Uuid> = writes
        .iter()
        .map(|w| match w {
            AnalyticsWrite::Baseline { user_id, .. }
            | AnalyticsWrite::Anomaly { user_id, .. }
            | AnalyticsWrite::Correlation { user_id, .. }
            | AnalyticsWrite::Score { user_id, .. }
            | AnalyticsWrite::Record { user_id, .. } => *user_id,
        })
        .collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// The provider priorities the pipeline knows: per workspace, and which workspace each user
/// announced to the pipeline belongs to; and the epochs numbered but not yet handed over.
struct Sources {
    next: Epoch,
    /// Some while a task reads stored rows for an epoch that needs them: later epochs queue
    /// behind it, so the pipeline receives them in order.
    backlog: Option<std::collections::VecDeque<(Epoch, Batch)>>,
    by_workspace: HashMap<WorkspaceId, ProviderPriority>,
    users: HashMap<UserId, WorkspaceId>,
    /// The workouts handed to the pipeline, per user, so a refresh sends only the difference.
    workouts: HashMap<UserId, BTreeSet<WorkoutRow>>,
}

impl Sources {
    fn priority(&self, workspace: WorkspaceId) -> ProviderPriority {
        self.by_workspace
            .get(&workspace)
            .cloned()
            .unwrap_or_default()
    }
}

/// One materializer step: table writes, then the events they mean.
#[derive(Default)]
struct Flush {
    writes: Vec<AnalyticsWrite>,
    changes: Vec<(uuid::Uuid, AnalyticsChange)>,
}

impl Flush {
    fn extend(&mut self, next: Flush) {
        self.writes.extend(next.writes);
        self.changes.extend(next.changes);
    }
}

/// What hydration did.
#[derive(Debug, Clone, Copy)]
pub struct Hydrated {
    pub samples: usize,
    pub epoch: Epoch,
    pub seconds: f64,
}

impl Analytics {
    /// Starts the pipeline on `workers` threads and the thread that accumulates its output.
    ///
    /// Epochs continue across restarts: the first is the microseconds since 2024-01-01, so a
    /// process started later always numbers above an earlier one (unless it applied more than a
    /// million epochs a second). A client's `min_epoch` from before a restart is then already
    /// reached once hydration is materialised, and an epoch names one change for good (event
    /// ids are derived from it).
    pub fn start(workers: usize) -> Result<Arc<Self>, String> {
        let base = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .expect("a valid instant")
            .with_timezone(&chrono::Utc);
        let first = (chrono::Utc::now() - base)
            .num_microseconds()
            .unwrap_or(1)
            .max(1) as Epoch;
        let flow = Arc::new(Dataflow::start_at(workers, first)?);
        let next = flow.next_epoch();
        let view = Arc::new(View::default());
        let outputs = flow.outputs().clone();
        let sink = view.clone();
        let (viewed_tx, viewed) = tokio::sync::watch::channel(0);
        std::thread::Builder::new()
            .name("analytics-view".into())
            .spawn(move || {
                for out in outputs {
                    match out {
                        Output::Deltas(_, ds) => {
                            for d in ds {
                                sink.apply(d);
                            }
                        }
                        Output::Done(e) => {
                            sink.done(e);
                            viewed_tx.send_replace(e);
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Analytics {
            flow,
            view,
            viewed,
            materialized: tokio::sync::watch::channel(0).0,
            sources: Arc::new(std::sync::Mutex::new(Sources {
                next,
                backlog: None,
                by_workspace: HashMap::new(),
                users: HashMap::new(),
                workouts: HashMap::new(),
            })),
            store: std::sync::OnceLock::new(),
            reconciled: std::sync::OnceLock::new(),
            hydrated: std::sync::atomic::AtomicU64::new(0),
            materializing: std::sync::atomic::AtomicBool::new(false),
            first: next,
        }))
    }

    pub fn view(&self) -> &View {
        &self.view
    }

    /// Waits (without blocking the runtime) until the view reflects `epoch`; false after
    /// `timeout`.
    pub async fn viewed(&self, epoch: Epoch, timeout: std::time::Duration) -> bool {
        let mut viewed = self.viewed.clone();
        matches!(
            tokio::time::timeout(timeout, viewed.wait_for(|e| *e >= epoch)).await,
            Ok(Ok(_))
        )
    }

    /// The epoch the analytics tables reflect; readers wait on it for their own writes.
    pub fn materialized(&self) -> tokio::sync::watch::Receiver<Epoch> {
        self.materialized.subscribe()
    }

    /// Starts the materializer: whenever the view advances, the rows of the keys that changed
    /// are written to the analytics tables in one transaction, then what changed is published
    /// on `bus` and the materialised epoch advances. The first flush after a start
    /// reconciles the hydrated analytics with the stored tables ([`crate::reconcile`]),
    /// `reconcile_users` users at a time: only differing rows are written and only the
    /// differences are announced. A failed flush is retried with the view's newer state; the epoch only advances, and events are only
    /// published, once the rows are stored.
    pub fn spawn_materializer(self: &Arc<Self>, store: DynStore, bus: Bus, reconcile_users: usize) {
        self.materializing
            .store(true, std::sync::atomic::Ordering::Release);
        let me = self.clone();
        tokio::spawn(async move {
            let mut viewed = me.viewed.clone();
            // The first flush compares whole tables, so it must see all of the hydration: a
            // view still catching up would look like findings that disappeared.
            let hydrated = me.hydrated.load(std::sync::atomic::Ordering::Acquire);
            if viewed.wait_for(|e| *e >= hydrated).await.is_err() {
                return;
            }
            let Some((mut stored, reconciled)) =
                me.first_flush(store.as_ref(), &bus, reconcile_users).await
            else {
                return;
            };
            tracing::info!(
                rows = reconciled.rows,
                changes = reconciled.changes,
                "analytics tables reconciled with the store"
            );
            let _ = me.reconciled.set(reconciled);
            me.materialized.send_replace(stored);
            let mut backoff = MIN_BACKOFF;
            let mut carried = Flush::default();
            loop {
                let retrying = !carried.writes.is_empty() || !carried.changes.is_empty();
                if !retrying
                    && *viewed.borrow_and_update() <= stored
                    && viewed.changed().await.is_err()
                {
                    return;
                }
                let (epoch, flush) = me.view.take_dirty(|epoch, dirty, rows| {
                    let desired = crate::materialize::writes(&dirty, rows);
                    let before = crate::reconcile::keyed(&crate::materialize::previous(&dirty));
                    let (writes, changes) = crate::reconcile::diff(before, &desired);
                    (epoch, Flush { writes, changes })
                });
                // Writes of a failed flush are re-sent first; newer writes for the same keys
                // come after them and win.
                let mut batch = std::mem::take(&mut carried);
                batch.extend(flush);
                if !batch.writes.is_empty() {
                    if let Err(e) = apply_in_chunks(store.as_ref(), &batch.writes).await {
                        tracing::error!(error = %e, "materializing analytics failed; retrying");
                        carried = batch;
                        pause(&mut backoff).await;
                        continue;
                    }
                    backoff = MIN_BACKOFF;
                }
                // Announced before the epoch advances, so a shutdown that waits for the epoch
                // finds its changes on the bus.
                announce(&bus, epoch, batch).await;
                me.materialized.send_replace(epoch);
                stored = epoch;
            }
        });
    }

    /// The first flush after a start: brings the tables in line with the hydrated analytics
    /// ([`crate::reconcile`]), `range_users` users at a time (100 users with a year of daily
    /// data are about 50,000 rows), so its memory and its announcements are bounded by a
    /// range's rows (a start after a bulk load has every row of every user to write). Each range is taken from the view as it is then, so
    /// the ranges reflect increasing epochs; what changes in a range after it was taken stays
    /// dirty for the next flush. Returns the epoch the tables then reflect for every user (the
    /// first range's) and what was written and announced; None if the analytics stopped.
    async fn first_flush(
        &self,
        store: &dyn Store,
        bus: &Bus,
        range_users: usize,
    ) -> Option<(Epoch, Reconciled)> {
        let mut backoff = MIN_BACKOFF;
        let mut users = loop {
            match store.user_priorities().await {
                Ok(users) => break users,
                Err(e) => {
                    tracing::error!(error = %e, "listing users to reconcile failed; retrying");
                    pause(&mut backoff).await;
                }
            }
        };
        users.sort_unstable_by_key(|(u, _, _)| u.as_u128());
        // Contiguous ranges that cover every user key: a key of a user the store no longer
        // lists (deleted while the analytics were not running) still falls in one.
        let groups: Vec<&[(UserId, WorkspaceId, Vec<String>)]> =
            users.chunks(range_users.max(1)).collect();
        let mut first_epoch = None;
        let mut total = Reconciled {
            rows: 0,
            changes: 0,
        };
        let mut lo = 0u128;
        for i in 0..groups.len().max(1) {
            let group = groups.get(i).copied().unwrap_or_default();
            let hi = match group.last() {
                Some((u, _, _)) if i + 1 < groups.len() => u.as_u128(),
                _ => u128::MAX,
            };
            if self.viewed.has_changed().is_err() {
                return None; // the pipeline stopped
            }
            let (epoch, desired) = self.view.take_dirty_of(lo..=hi, |epoch, dirty, rows| {
                (epoch, crate::materialize::writes(&dirty, rows))
            });
            let members: Vec<(UserId, WorkspaceId)> =
                group.iter().map(|(u, w, _)| (*u, *w)).collect();
            let batch = loop {
                let reconciled = crate::reconcile::reconcile(store, &members, &desired).await;
                let written = match reconciled {
                    Ok((writes, changes)) => apply_in_chunks(store, &writes)
                        .await
                        .map(|()| Flush { writes, changes }),
                    Err(e) => Err(e),
                };
                match written {
                    Ok(batch) => break batch,
                    Err(e) => {
                        tracing::error!(error = %e, "reconciling the analytics tables failed; retrying");
                        pause(&mut backoff).await;
                    }
                }
            };
            total.rows += batch.writes.len();
            total.changes += batch.changes.len();
            announce(bus, epoch, batch).await;
            first_epoch.get_or_insert(epoch);
            if hi == u128::MAX {
                break;
            }
            lo = hi + 1;
        }
        Some((first_epoch.unwrap_or_default(), total))
    }

    /// Ends the analytics for a graceful exit: waits, at most `grace`, until the tables hold
    /// every epoch numbered so far (and their changes are on the bus), then stops the pipeline;
    /// the view thread and the materializer end with it. Returns whether everything was
    /// stored in time: what was not is found by the next start's reconciliation, so nothing is
    /// lost either way, but a flushed stop leaves that start nothing to write or announce.
    pub async fn shutdown(&self, grace: std::time::Duration) -> bool {
        let last = self.sources.lock().expect("sources").next - 1;
        let flushed = if last < self.first {
            true // nothing was handed over since the start
        } else if self
            .materializing
            .load(std::sync::atomic::Ordering::Acquire)
        {
            let mut materialized = self.materialized.subscribe();
            matches!(
                tokio::time::timeout(grace, materialized.wait_for(|e| *e >= last)).await,
                Ok(Ok(_))
            )
        } else {
            self.viewed(last, grace).await
        };
        if !flushed {
            tracing::warn!(
                epoch = last,
                "analytics not stored before shutdown; the next start reconciles them"
            );
        }
        self.flow.halt();
        flushed
    }

    /// What the first flush after this start wrote and announced, once it has run.
    pub fn reconciled(&self) -> Option<Reconciled> {
        self.reconciled.get().copied()
    }

    /// Numbers `batch` as the next epoch and hands it to the pipeline. A batch that changes
    /// users' archived dates (see [`crate::horizon`]) needs their stored rows: it waits, with
    /// every later batch queued behind it, for a task that reads them.
    fn submit(&self, sources: &mut Sources, batch: Batch) -> Epoch {
        let epoch = sources.next;
        sources.next += 1;
        if let Some(backlog) = sources.backlog.as_mut() {
            backlog.push_back((epoch, batch));
            return epoch;
        }
        let runtime = tokio::runtime::Handle::try_current();
        let store = self.store.get();
        let needs_rows = !self.flow.needs_rows(&batch).is_empty();
        match (needs_rows, store, runtime) {
            (true, Some(store), Ok(runtime)) => {
                sources.backlog = Some([(epoch, batch)].into());
                runtime.spawn(drain(
                    self.flow.clone(),
                    self.sources.clone(),
                    store.clone(),
                ));
            }
            _ => {
                let applied = self.flow.apply_batch(batch);
                debug_assert_eq!(applied, epoch, "epochs reach the pipeline in order");
            }
        }
        epoch
    }

    /// Feeds every user's provider priority, samples and workouts into the pipeline (before
    /// any writer runs), user by user so each user's dates before their horizon are archived
    /// as they arrive; logs progress and returns once the pipeline holds all of it. `store` is
    /// also where later changes to archived dates read a user's rows.
    pub async fn hydrate(&self, store: DynStore) -> vitasync_engine::Result<Hydrated> {
        let started = Instant::now();
        let _ = self.store.set(store.clone());
        let known = store.user_priorities().await?;
        let mut epoch = 0;
        if !known.is_empty() {
            let mut sources = self.sources.lock().expect("sources");
            let mut announce = Vec::with_capacity(known.len());
            for (user, workspace, priority) in &known {
                let priority = ProviderPriority(priority.clone());
                sources.by_workspace.insert(*workspace, priority.clone());
                sources.users.insert(*user, *workspace);
                announce.push((user.as_u128(), priority, 1));
            }
            epoch = self.submit(
                &mut sources,
                Batch {
                    priorities: announce,
                    ..Batch::default()
                },
            );
        }
        let mut samples = 0;
        let mut pending: Vec<SampleChange> = Vec::new();
        for (i, (user, _, _)) in known.iter().enumerate() {
            let stored = user_samples(store.as_ref(), *user).await?;
            samples += stored.len();
            pending.extend(stored);
            // Whole users per epoch, about a page of samples each.
            if pending.len() >= HYDRATION_PAGE as usize || i + 1 == known.len() {
                epoch = self.feed(None, &std::mem::take(&mut pending));
                tracing::info!(
                    users = i + 1,
                    of = known.len(),
                    samples,
                    "hydrating the analytics"
                );
            }
        }
        // Workouts, user by user (one indexed query each).
        let mut workouts = 0;
        for (user_id, workspace) in self.announced() {
            let Some(user) = store.user(workspace, user_id).await? else {
                continue;
            };
            let events = vitasync_engine::analytics::workout_events(store.as_ref(), &user).await?;
            if !events.is_empty() {
                workouts += events.len();
                epoch = self.workouts(user_id, &events);
            }
        }
        self.hydrated
            .store(epoch, std::sync::atomic::Ordering::Release);
        let mut viewed = self.viewed.clone();
        let _ = viewed.wait_for(|e| *e >= epoch).await;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            samples,
            workouts,
            held_days = self.flow.held_days(),
            seconds,
            "analytics hydrated"
        );
        Ok(Hydrated {
            samples,
            epoch,
            seconds,
        })
    }

    /// The users announced to the pipeline, with their workspaces.
    fn announced(&self) -> Vec<(UserId, WorkspaceId)> {
        let sources = self.sources.lock().expect("sources");
        sources.users.iter().map(|(u, w)| (*u, *w)).collect()
    }

    /// Hands changes to the pipeline, announcing users it has not seen with their workspace's
    /// priority in the same epoch.
    fn feed(&self, workspace: Option<WorkspaceId>, changes: &[SampleChange]) -> Epoch {
        let mut sources = self.sources.lock().expect("sources");
        let mut announce = Vec::new();
        let ws = workspace.unwrap_or_default();
        let priority = sources.priority(ws);
        for c in changes {
            if let std::collections::hash_map::Entry::Vacant(e) = sources.users.entry(c.user_id) {
                e.insert(ws);
                announce.push((c.user_id.as_u128(), priority.clone(), 1));
            }
        }
        self.submit(
            &mut sources,
            Batch {
                samples: deltas(changes),
                priorities: announce,
                ..Batch::default()
            },
        )
    }

    /// An empty epoch: once it is materialised, so is everything handed over before it.
    pub fn barrier(&self) -> Epoch {
        let mut sources = self.sources.lock().expect("sources");
        self.submit(&mut sources, Batch::default())
    }

    /// The first date of `user` whose samples the pipeline holds (None: all of them); the
    /// dates before are archived (see [`crate::horizon`]).
    pub fn held_from(&self, user: UserId) -> Option<crate::model::Day> {
        self.flow.held_from(user.as_u128())
    }

    /// Sources the days of `workspace`'s users by `priority` from now on: one epoch that
    /// re-chooses, for every day with several providers, the one the new order ranks first.
    pub fn set_priority(&self, workspace: WorkspaceId, priority: ProviderPriority) -> Epoch {
        let mut sources = self.sources.lock().expect("sources");
        let old = sources
            .by_workspace
            .insert(workspace, priority.clone())
            .unwrap_or_default();
        let mut changes = Vec::new();
        if old != priority {
            for (user, ws) in &sources.users {
                if *ws == workspace {
                    changes.push((user.as_u128(), old.clone(), -1));
                    changes.push((user.as_u128(), priority.clone(), 1));
                }
            }
        }
        self.submit(
            &mut sources,
            Batch {
                priorities: changes,
                ..Batch::default()
            },
        )
    }
}

/// Hands the backlog to the pipeline in order, reading the stored rows each batch needs, until
/// it is empty; then later batches go straight to the pipeline again.
async fn drain(flow: Arc<Dataflow>, sources: Arc<std::sync::Mutex<Sources>>, store: DynStore) {
    loop {
        let (epoch, mut batch) = {
            let mut s = sources.lock().expect("sources");
            match s.backlog.as_mut().and_then(|b| b.pop_front()) {
                Some(next) => next,
                None => {
                    s.backlog = None;
                    return;
                }
            }
        };
        for user in flow.needs_rows(&batch) {
            let mut attempt = 0;
            loop {
                match user_rows(store.as_ref(), user).await {
                    Ok(rows) => {
                        batch.archive_rows.insert(user, rows);
                        break;
                    }
                    Err(e) if attempt < 3 => {
                        attempt += 1;
                        tracing::warn!(error = %e, attempt, "reading a user's samples failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                    }
                    Err(e) => {
                        tracing::error!(
                            error = %e,
                            user = %uuid::Uuid::from_u128(user),
                            "reading a user's samples for their archived analytics failed"
                        );
                        break;
                    }
                }
            }
        }
        // Routing recomputes the users' archives from their rows: batch work, off the runtime.
        let routed = flow.clone();
        match tokio::task::spawn_blocking(move || routed.apply_batch(batch)).await {
            Ok(applied) => debug_assert_eq!(applied, epoch, "epochs reach the pipeline in order"),
            Err(e) => tracing::error!(error = %e, epoch, "handing an epoch to the pipeline failed"),
        }
    }
}

/// Every stored sample of `user`, as insert-changes, read a page at a time.
async fn user_samples(
    store: &dyn Store,
    user: UserId,
) -> vitasync_engine::Result<Vec<SampleChange>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .scan_samples(Some(user), None, after, HYDRATION_PAGE)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(out);
        };
        after = Some(*last);
        out.extend(page.into_iter().map(|(_, c)| c));
    }
}

/// Every stored sample of `user`, as pipeline rows.
async fn user_rows(store: &dyn Store, user: UserKey) -> vitasync_engine::Result<Vec<SampleRow>> {
    let changes = user_samples(store, UserId::from(uuid::Uuid::from_u128(user))).await?;
    Ok(deltas(&changes).into_iter().map(|d| d.row).collect())
}

/// The pipeline rows a committed change retracts and inserts.
pub fn deltas(changes: &[SampleChange]) -> Vec<SampleDelta> {
    let mut out = Vec::with_capacity(changes.len() * 2);
    for c in changes {
        let Some(metric) = metric_key(&c.metric) else {
            continue;
        };
        let row = |v: &vitasync_engine::domain::ChangedValue| SampleRow {
            user: c.user_id.as_u128(),
            metric,
            day: day_of(v.local_date),
            provider: c.provider.clone(),
            recorded_at: c.recorded_at.timestamp_micros(),
            value: to_fixed(v.value),
        };
        if let Some(old) = &c.old {
            out.push(SampleDelta {
                row: row(old),
                diff: -1,
            });
        }
        if let Some(new) = &c.new {
            out.push(SampleDelta {
                row: row(new),
                diff: 1,
            });
        }
    }
    out
}

impl AnalyticsSink for Analytics {
    fn apply(&self, workspace: WorkspaceId, changes: &[SampleChange]) -> Epoch {
        self.feed(Some(workspace), changes)
    }

    fn workouts(&self, user: UserId, workouts: &[Event]) -> Epoch {
        let now: BTreeSet<WorkoutRow> = workouts.iter().filter_map(workout_row).collect();
        let mut sources = self.sources.lock().expect("sources");
        let before = sources.workouts.remove(&user).unwrap_or_default();
        let u = user.as_u128();
        let mut changes: Vec<(u128, WorkoutRow, isize)> = before
            .difference(&now)
            .map(|w| (u, w.clone(), -1))
            .collect();
        changes.extend(now.difference(&before).map(|w| (u, w.clone(), 1)));
        if !now.is_empty() {
            sources.workouts.insert(user, now);
        }
        self.submit(
            &mut sources,
            Batch {
                workouts: changes,
                ..Batch::default()
            },
        )
    }
}

/// A workout event as the records see it (None for other events, or without an activity type).
pub fn workout_row(e: &Event) -> Option<WorkoutRow> {
    if e.event_type != EventType::Workout {
        return None;
    }
    Some(WorkoutRow {
        activity: e.activity_type.clone()?,
        day: day_of(e.local_date),
        id: e.id.as_u128(),
        distance: e.distance_m.filter(|d| d.is_finite()).map(to_fixed),
        duration: e.duration_s.filter(|d| d.is_finite()).map(to_fixed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitasync_engine::bus::CAPACITY;

    fn score_change(day: u32) -> AnalyticsChange {
        AnalyticsChange::ScoreUpdated {
            date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
                + chrono::Days::new(u64::from(day)),
            body: serde_json::json!({ "overall": 50.0 }),
            previous: None,
        }
    }

    /// A flush with several times more changes than the bus holds, read by a subscriber that
    /// is slower than the publisher: every change arrives, none is missed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_flush_paces_itself_to_a_slow_subscriber() {
        let bus = Bus::new();
        let mut rx = bus.subscribe();
        let total = 3 * CAPACITY;
        let user = uuid::Uuid::from_u128(7);
        let batch = Flush {
            writes: Vec::new(),
            changes: (0..total as u32).map(|d| (user, score_change(d))).collect(),
        };
        let reader = tokio::spawn(async move {
            let (mut received, mut missed) = (0usize, 0u64);
            while received + (missed as usize) < total {
                match rx.recv().await {
                    Ok(_) => received += 1,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => missed += n,
                    Err(_) => break,
                }
                if received % 64 == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            (received, missed)
        });
        announce(&bus, 1, batch).await;
        let (received, missed) = reader.await.unwrap();
        assert_eq!((received, missed), (total, 0));
    }
}
