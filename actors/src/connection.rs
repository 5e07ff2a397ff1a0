//! One actor per active connection. It owns that connection's syncs: it runs one job at a time
//! (so token refreshes and cursor updates never race), queues requests that arrive meanwhile,
//! and schedules the next incremental sync with jitter. It reports every run's outcome to the
//! supervisor, which decides about restarts; the actor stops itself on any outcome that ends
//! its life (failure, re-auth, shutdown, disconnection).

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vitasync_engine::domain::{ConnectionId, JobStatus, SyncJob, SyncTrigger};
use vitasync_engine::services::sync::{self, RunOptions, RunOutcome, SyncEnv};

use crate::messages::{Halt, IsBusy, Job, RunEnded};
use crate::schedule::SyncSettings;
use crate::supervisor::SyncSupervisor;

/// What every connection actor shares with its supervisor.
#[derive(Clone)]
pub(crate) struct Shared {
    pub env: SyncEnv,
    pub settings: SyncSettings,
    /// Cancelled at shutdown: runs stop at their next batch boundary.
    pub cancel: CancellationToken,
    /// Tracks in-flight runs so shutdown can wait for them.
    pub tracker: TaskTracker,
    pub supervisor: Addr<SyncSupervisor>,
}

pub(crate) struct ConnectionActor {
    connection_id: ConnectionId,
    env: SyncEnv,
    settings: SyncSettings,
    cancel: CancellationToken,
    tracker: TaskTracker,
    supervisor: Addr<SyncSupervisor>,
    /// Run a catch-up sync as soon as the actor starts (first start after a restart or after
    /// the process started), unless a job is already queued.
    catch_up: bool,
    queue: VecDeque<(SyncJob, RunOptions)>,
    busy: bool,
    /// The job being run, so a halt can close it.
    current: Option<vitasync_engine::domain::SyncJobId>,
    timer: Option<SpawnHandle>,
}

impl ConnectionActor {
    pub fn new(
        connection_id: ConnectionId,
        shared: Shared,
        initial: Option<(SyncJob, RunOptions)>,
        catch_up: bool,
    ) -> Self {
        ConnectionActor {
            connection_id,
            env: shared.env,
            settings: shared.settings,
            cancel: shared.cancel,
            tracker: shared.tracker,
            supervisor: shared.supervisor,
            catch_up,
            queue: initial.into_iter().collect(),
            busy: false,
            current: None,
            timer: None,
        }
    }

    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.cancel.is_cancelled() {
            return;
        }
        let Some((job, opts)) = self.queue.pop_front() else {
            return;
        };
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        self.busy = true;
        self.current = Some(job.id);
        let env = self.env.clone();
        let cancel = self.cancel.clone();
        let run = self
            .tracker
            .track_future(async move { sync::run_job(&env, &job, &opts, &cancel).await });
        ctx.spawn(run.into_actor(self).map(|outcome, act, ctx| {
            act.busy = false;
            act.current = None;
            act.after_run(outcome, ctx);
        }));
    }

    fn after_run(&mut self, outcome: RunOutcome, ctx: &mut Context<Self>) {
        self.supervisor.do_send(RunEnded {
            connection_id: self.connection_id,
            outcome: outcome.clone(),
        });
        match outcome {
            RunOutcome::Succeeded => {
                if self.queue.is_empty() {
                    self.schedule(self.settings.next_interval(), ctx);
                } else {
                    self.pump(ctx);
                }
            }
            RunOutcome::RateLimited(wait) => {
                // Queued requests would hit the same exhausted budget; the scheduled run after
                // the pause covers them (it syncs everything from the cursors).
                self.fail_queued("rate limited by the provider");
                self.schedule(wait + Duration::from_secs(1), ctx);
            }
            RunOutcome::Interrupted
            | RunOutcome::ReauthRequired(_)
            | RunOutcome::Forbidden(_)
            | RunOutcome::Failed(_)
            | RunOutcome::Gone => {
                self.fail_queued("the connection's sync actor stopped");
                ctx.stop();
            }
        }
    }

    /// Marks queued jobs failed so nobody waits on them forever.
    fn fail_queued(&mut self, why: &'static str) {
        let store = self.env.store.clone();
        let ids: Vec<_> = self.queue.drain(..).map(|(j, _)| j.id).collect();
        if ids.is_empty() {
            return;
        }
        actix::spawn(async move {
            for id in ids {
                let _ = store
                    .finish_sync_job(id, JobStatus::Failed, Some(why), Utc::now())
                    .await;
            }
        });
    }

    fn schedule(&mut self, after: Duration, ctx: &mut Context<Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        self.timer = Some(ctx.run_later(after, |act, ctx| {
            act.timer = None;
            act.start_scheduled(ctx);
        }));
    }

    /// Creates a `schedule` job and runs it.
    fn start_scheduled(&mut self, ctx: &mut Context<Self>) {
        if self.busy || !self.queue.is_empty() {
            return self.pump(ctx);
        }
        let store = self.env.store.clone();
        let id = self.connection_id;
        let create = async move {
            let conn = store.connection_by_id(id).await?;
            match conn {
                Some(c) => store
                    .create_sync_job(&c, SyncTrigger::Schedule, None, Utc::now())
                    .await
                    .map(Some),
                None => Ok(None),
            }
        };
        ctx.spawn(create.into_actor(self).map(|res, act, ctx| match res {
            Ok(Some(job)) => {
                act.queue.push_back((job, RunOptions::default()));
                act.pump(ctx);
            }
            Ok(None) => ctx.stop(),
            Err(e) => {
                tracing::warn!(connection_id = %act.connection_id, error = %e, "could not create a scheduled sync job");
                act.after_run(RunOutcome::Failed(e.to_string()), ctx);
            }
        }));
    }
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.queue.is_empty() {
            self.pump(ctx);
        } else if self.catch_up {
            self.start_scheduled(ctx);
        } else {
            self.schedule(self.settings.next_interval(), ctx);
        }
    }
}

impl Handler<Job> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, msg: Job, ctx: &mut Context<Self>) {
        self.queue.push_back((msg.job, msg.opts));
        self.pump(ctx);
    }
}

impl Handler<Halt> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, _: Halt, ctx: &mut Context<Self>) {
        // Stopping drops an in-flight run: its open transaction rolls back, so nothing of the
        // current batch is written after the disconnection.
        if let Some(id) = self.current.take() {
            let store = self.env.store.clone();
            actix::spawn(async move {
                let _ = store
                    .finish_sync_job(
                        id,
                        JobStatus::Failed,
                        Some("the connection was disconnected"),
                        Utc::now(),
                    )
                    .await;
            });
        }
        self.fail_queued("the connection was disconnected");
        ctx.stop();
    }
}

impl Handler<IsBusy> for ConnectionActor {
    type Result = bool;

    fn handle(&mut self, _: IsBusy, _: &mut Context<Self>) -> bool {
        self.busy
    }
}
