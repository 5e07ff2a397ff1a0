//! The sync supervisor: owns one [`ConnectionActor`] per active connection, spread over a few
//! arbiters (threads), restarts an actor whose run failed with exponential backoff, gives up
//! past the restart limit (the connection goes to `error` with the reason), and on shutdown
//! cancels every run at its next batch boundary and waits for them.

use std::collections::HashMap;

use actix::prelude::*;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vitasync_engine::bus::BusEvent;
use vitasync_engine::domain::{ConnectionId, ConnectionStatus};
use vitasync_engine::services::sync::{RunOptions, RunOutcome, SyncEnv};

use crate::connection::{ConnectionActor, Shared};
use crate::messages::{Enqueue, GetStatus, Halt, IsBusy, Job, RunEnded, Shutdown, Status, Stop};
use crate::schedule::SyncSettings;

struct Child {
    addr: Addr<ConnectionActor>,
    /// Consecutive failed runs.
    failures: u32,
}

pub struct SyncSupervisor {
    env: SyncEnv,
    settings: SyncSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    children: HashMap<ConnectionId, Child>,
    /// Connections waiting out a restart delay.
    restarting: HashMap<ConnectionId, SpawnHandle>,
    /// When this process's supervisor was made, before the server takes requests: unfinished
    /// jobs created up to then are a previous process's.
    started: chrono::DateTime<Utc>,
}

impl SyncSupervisor {
    pub fn new(env: SyncEnv, settings: SyncSettings) -> Self {
        let arbiters = (0..settings.workers.max(1))
            .map(|_| Arbiter::new())
            .collect();
        SyncSupervisor {
            env,
            settings,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            arbiters,
            next_arbiter: 0,
            children: HashMap::new(),
            restarting: HashMap::new(),
            started: Utc::now(),
        }
    }

    fn spawn_child(
        &mut self,
        id: ConnectionId,
        initial: Option<(vitasync_engine::domain::SyncJob, RunOptions)>,
        catch_up: bool,
        failures: u32,
        ctx: &mut Context<Self>,
    ) {
        if self.cancel.is_cancelled() {
            return;
        }
        let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
        self.next_arbiter += 1;
        let shared = Shared {
            env: self.env.clone(),
            settings: self.settings.clone(),
            cancel: self.cancel.clone(),
            tracker: self.tracker.clone(),
            supervisor: ctx.address(),
        };
        let addr = ConnectionActor::start_in_arbiter(&arbiter.handle(), move |_| {
            ConnectionActor::new(id, shared, initial, catch_up)
        });
        self.children.insert(id, Child { addr, failures });
    }

    /// Loads every active connection and starts its actor; each catches up at once if its
    /// last sync is older than the interval or was interrupted, else waits for its next slot.
    fn start_all(&mut self, ctx: &mut Context<Self>) {
        let store = self.env.store.clone();
        let started = self.started;
        let load = async move {
            // Work a previous process left unfinished (a crash mid-backfill) resumes at once,
            // from the cursors its committed batches left.
            let interrupted = store.fail_unfinished_jobs(started).await?;
            Ok::<_, vitasync_engine::Error>((interrupted, store.runnable_connections().await?))
        };
        ctx.wait(load.into_actor(self).map(|res, act, ctx| match res {
            Ok((interrupted, conns)) => {
                let now = Utc::now();
                let interval = chrono::Duration::from_std(act.settings.interval)
                    .unwrap_or(chrono::Duration::minutes(15));
                for c in conns {
                    let due = interrupted.contains(&c.id)
                        || c.last_synced_at.is_none_or(|t| t + interval <= now);
                    act.spawn_child(c.id, None, due, 0, ctx);
                }
                tracing::info!(connections = act.children.len(), "sync supervisor started");
            }
            Err(e) => tracing::error!(error = %e, "could not load connections; no syncs will run"),
        }));
    }

    fn on_failure(&mut self, id: ConnectionId, reason: String, ctx: &mut Context<Self>) {
        let failures = self.children.remove(&id).map_or(1, |c| c.failures + 1);
        match self.settings.restart_delay(failures) {
            Some(delay) => {
                tracing::warn!(connection_id = %id, failures, delay_s = delay.as_secs_f64(), error = %reason, "sync failed; restarting the connection actor");
                let handle = ctx.run_later(delay, move |act, ctx| {
                    act.restarting.remove(&id);
                    act.spawn_child(id, None, true, failures, ctx);
                });
                self.restarting.insert(id, handle);
            }
            None => {
                let reason = format!("gave up after {} failed syncs: {reason}", failures);
                tracing::error!(connection_id = %id, error = %reason, "sync keeps failing; connection set to error");
                self.set_status(id, ConnectionStatus::Error, reason);
            }
        }
    }

    fn set_status(&self, id: ConnectionId, status: ConnectionStatus, reason: String) {
        let env = self.env.clone();
        actix::spawn(async move {
            let now = Utc::now();
            if let Err(e) = env
                .store
                .set_connection_status(id, status, Some(&reason), now)
                .await
            {
                tracing::error!(connection_id = %id, error = %e, "could not record the connection's status");
            }
            if let Ok(Some(conn)) = env.store.connection_by_id(id).await {
                env.bus.publish(BusEvent::ConnectionErrored {
                    subject: SyncEnv::subject(&conn),
                    status,
                    reason,
                });
            }
        });
    }
}

impl Actor for SyncSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_all(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

impl Handler<Enqueue> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        let id = msg.job.connection_id;
        // An explicit request ends a restart wait: the user asked for a sync now.
        if let Some(h) = self.restarting.remove(&id) {
            ctx.cancel_future(h);
        }
        match self.children.get(&id) {
            Some(child) if child.addr.connected() => child.addr.do_send(Job {
                job: msg.job,
                opts: msg.opts,
            }),
            _ => self.spawn_child(id, Some((msg.job, msg.opts)), false, 0, ctx),
        }
    }
}

impl Handler<Stop> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) {
        if let Some(h) = self.restarting.remove(&msg.connection_id) {
            ctx.cancel_future(h);
        }
        if let Some(child) = self.children.remove(&msg.connection_id) {
            child.addr.do_send(Halt);
        }
    }
}

impl Handler<RunEnded> for SyncSupervisor {
    type Result = ();

    fn handle(&mut self, msg: RunEnded, ctx: &mut Context<Self>) {
        let id = msg.connection_id;
        match msg.outcome {
            RunOutcome::Succeeded | RunOutcome::RateLimited(_) => {
                if let Some(c) = self.children.get_mut(&id) {
                    c.failures = 0;
                }
            }
            RunOutcome::Failed(reason) => self.on_failure(id, reason, ctx),
            RunOutcome::ReauthRequired(reason) => {
                self.children.remove(&id);
                self.set_status(id, ConnectionStatus::ReauthRequired, reason);
            }
            RunOutcome::Forbidden(reason) => {
                self.children.remove(&id);
                self.set_status(id, ConnectionStatus::Error, reason);
            }
            RunOutcome::Interrupted | RunOutcome::Gone => {
                self.children.remove(&id);
            }
        }
    }
}

impl Handler<Shutdown> for SyncSupervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        self.cancel.cancel();
        for (_, h) in self.restarting.drain() {
            ctx.cancel_future(h);
        }
        self.tracker.close();
        let tracker = self.tracker.clone();
        let grace = self.settings.shutdown_grace;
        Box::pin(
            async move {
                if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
                    tracing::warn!("some syncs did not reach a batch boundary in time; their open transactions roll back");
                }
            }
            .into_actor(self)
            .map(|_, act, _| {
                act.children.clear();
                tracing::info!("sync supervisor stopped");
            }),
        )
    }
}

impl Handler<GetStatus> for SyncSupervisor {
    type Result = ResponseFuture<Status>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let addrs: Vec<_> = self.children.values().map(|c| c.addr.clone()).collect();
        Box::pin(async move {
            let mut running = 0;
            for a in &addrs {
                if a.send(IsBusy).await.unwrap_or(false) {
                    running += 1;
                }
            }
            Status {
                actors: addrs.len(),
                running,
            }
        })
    }
}
