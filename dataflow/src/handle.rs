//! The pipeline's handle: timely workers on their own threads, driven by typed commands, with
//! a stream of typed output deltas. Nothing here blocks an async runtime: callers send
//! commands and read outputs from channels.
//!
//! Protocol: every `apply` is one epoch. Worker 0 receives the epoch's sample deltas (the
//! dataflow exchanges them by key), then every worker advances its input past the epoch and
//! steps until the probe shows the epoch complete everywhere; worker 0 then announces
//! `Output::Done(epoch)`. Deltas of an epoch always precede its `Done`, so a consumer that
//! applies deltas until `Done(e)` holds exactly the state as of epoch `e`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::horizon::{Horizon, HorizonConfig};
use crate::model::{
    ArchiveSummary, ArchivedDates, Day, MetricKey, OutputDelta, SampleDelta, SampleRow, UserKey,
    WorkoutRow,
};
use crate::pipeline::{self, Epoch, Output};
use vitasync_engine::catalogue::ProviderPriority;

/// A user's provider priority entering (+1) or leaving (−1) the pipeline.
pub type PriorityDelta = (UserKey, ProviderPriority, isize);

/// A user's workout entering (+1) or leaving (−1) the pipeline.
pub type WorkoutDelta = (UserKey, WorkoutRow, isize);

/// Everything one epoch changes. Callers set the samples, priorities and workouts (and the
/// rows of the users [`Dataflow::needs_rows`] names); the horizon fills in the rest.
#[derive(Debug, Default)]
pub struct Batch {
    pub samples: Vec<SampleDelta>,
    pub priorities: Vec<PriorityDelta>,
    pub workouts: Vec<WorkoutDelta>,
    /// Every current row of each user whose archived dates this batch changes.
    pub archive_rows: HashMap<UserKey, Vec<SampleRow>>,
    /// Users' boundaries entering (+1) or leaving (−1).
    pub boundaries: Vec<(UserKey, Day, isize)>,
    /// The (user, metric, date) keys whose samples leave the held dates (the horizon moved
    /// past them): the operators drop them, retracting only contested providers' values (the
    /// choice among providers holds those), not one sample at a time.
    pub evictions: Vec<(UserKey, MetricKey, Day)>,
    /// Per user archived in batch: the archive's summary, replacing the operator's.
    pub summaries: Vec<(UserKey, ArchiveSummary)>,
    /// Dated rows computed in batch, replacing the user's rows on their dates.
    pub archived: Vec<ArchivedDates>,
}

enum Command {
    Apply { epoch: Epoch, batch: Box<Batch> },
    Advance(Epoch),
    Shutdown,
}

/// The next epoch and the horizon, changed together so batches are routed in epoch order.
struct Clock {
    next: Epoch,
    horizon: Option<Horizon>,
}

pub struct Dataflow {
    commands: Vec<Sender<Command>>,
    outputs: Receiver<Output>,
    clock: Mutex<Clock>,
    runner: Option<JoinHandle<()>>,
}

impl Dataflow {
    /// Starts `workers` timely workers (at least one); the first epoch is 1.
    pub fn start(workers: usize) -> Result<Self, String> {
        Self::start_at(workers, 1)
    }

    /// Starts `workers` timely workers whose first epoch is `first` (at least 1), with the
    /// default horizon.
    pub fn start_at(workers: usize, first: Epoch) -> Result<Self, String> {
        Self::start_with(workers, first, Some(HorizonConfig::default()))
    }

    /// Starts the workers with `horizon` (None: the dataflow holds every date).
    pub fn start_with(
        workers: usize,
        first: Epoch,
        horizon: Option<HorizonConfig>,
    ) -> Result<Self, String> {
        let first = first.max(1);
        let workers = workers.max(1);
        let (out_tx, out_rx) = crossbeam_channel::unbounded::<Output>();
        let mut commands = Vec::with_capacity(workers);
        let mut receivers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = crossbeam_channel::unbounded::<Command>();
            commands.push(tx);
            receivers.push(Some(rx));
        }
        let receivers = Arc::new(Mutex::new(receivers));
        let guards = timely::execute(timely::Config::process(workers), move |worker| {
            let index = worker.index();
            let rx = receivers.lock().expect("receivers")[index]
                .take()
                .expect("each worker takes its own command channel");
            let sink = out_tx.clone();
            let mut inputs = worker.dataflow::<Epoch, _, _>(|scope| pipeline::build(scope, sink));
            inputs.advance_to(first);
            let probe = inputs.probe.clone();
            loop {
                match rx.recv_timeout(Duration::from_millis(5)) {
                    Ok(Command::Apply { epoch, batch }) => {
                        let batch = *batch;
                        // Worker 0 alone receives commands, so its archive outputs follow the
                        // previous epoch's `Done` and precede this one's.
                        if !batch.archived.is_empty() {
                            let archived = batch
                                .archived
                                .into_iter()
                                .map(OutputDelta::Archived)
                                .collect();
                            let _ = out_tx.send(Output::Deltas(epoch, archived));
                        }
                        for d in batch.samples {
                            inputs.samples.update_at(d.row, epoch, d.diff);
                        }
                        for (user, priority, diff) in batch.priorities {
                            inputs.priorities.update_at((user, priority), epoch, diff);
                        }
                        for (user, workout, diff) in batch.workouts {
                            inputs.workouts.update_at((user, workout), epoch, diff);
                        }
                        for (user, day, diff) in batch.boundaries {
                            inputs.boundaries.update_at((user, day), epoch, diff);
                        }
                        for key in batch.evictions {
                            inputs.evictions.update_at(key, epoch, 1);
                        }
                        for (user, summary) in batch.summaries {
                            inputs.summaries.update_at((user, summary), epoch, 1);
                        }
                    }
                    Ok(Command::Advance(next)) => {
                        inputs.advance_to(next);
                        worker.step_or_park_while(Some(Duration::from_millis(1)), || {
                            probe.less_than(&next)
                        });
                        if index == 0 {
                            // Every worker's deltas for the epoch were sent before the probe
                            // could pass it, so the marker lands behind them.
                            let _ = out_tx.send(Output::Done(next - 1));
                        }
                    }
                    Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        worker.step();
                    }
                }
            }
        })?;
        let runner = std::thread::Builder::new()
            .name("dataflow-join".into())
            .spawn(move || drop(guards))
            .map_err(|e| e.to_string())?;
        Ok(Dataflow {
            commands,
            outputs: out_rx,
            clock: Mutex::new(Clock {
                next: first,
                horizon: horizon.map(Horizon::new),
            }),
            runner: Some(runner),
        })
    }

    /// Applies one batch of sample changes as the next epoch and returns that epoch.
    pub fn apply(&self, deltas: Vec<SampleDelta>) -> Epoch {
        self.apply_with(deltas, Vec::new())
    }

    /// Applies sample changes and changes of users' provider priorities as one epoch.
    pub fn apply_with(&self, deltas: Vec<SampleDelta>, priorities: Vec<PriorityDelta>) -> Epoch {
        self.apply_batch(Batch {
            samples: deltas,
            priorities,
            ..Batch::default()
        })
    }

    /// Applies everything in `batch` as one epoch and returns that epoch.
    pub fn apply_batch(&self, batch: Batch) -> Epoch {
        let mut clock = self.clock.lock().expect("epoch lock");
        let epoch = clock.next;
        clock.next += 1;
        let batch = match clock.horizon.as_mut() {
            Some(h) => h.route(batch),
            None => batch,
        };
        let _ = self.commands[0].send(Command::Apply {
            epoch,
            batch: Box::new(batch),
        });
        for c in &self.commands {
            let _ = c.send(Command::Advance(epoch + 1));
        }
        epoch
    }

    /// The users whose archived dates `batch` would change: pass their full rows in
    /// [`Batch::archive_rows`].
    pub fn needs_rows(&self, batch: &Batch) -> Vec<UserKey> {
        let clock = self.clock.lock().expect("epoch lock");
        clock
            .horizon
            .as_ref()
            .map(|h| h.needs_rows(batch))
            .unwrap_or_default()
    }

    /// The first date of `user` whose samples the dataflow holds (None: all of them).
    pub fn held_from(&self, user: UserKey) -> Option<Day> {
        let clock = self.clock.lock().expect("epoch lock");
        clock.horizon.as_ref()?.held_from(user)
    }

    /// How many (user, metric, date) keys the dataflow holds samples of.
    pub fn held_days(&self) -> Option<usize> {
        let clock = self.clock.lock().expect("epoch lock");
        clock.horizon.as_ref().map(|h| h.held_days())
    }

    /// The epoch the next batch will get.
    pub fn next_epoch(&self) -> Epoch {
        self.clock.lock().expect("epoch lock").next
    }

    /// The output stream (deltas, then the epoch's `Done`).
    pub fn outputs(&self) -> &Receiver<Output> {
        &self.outputs
    }

    /// Stops the workers and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    /// Tells the workers to stop once they have worked through the commands already sent (so
    /// every epoch handed over before still reaches the outputs); later batches are dropped.
    pub fn halt(&self) {
        for c in &self.commands {
            let _ = c.send(Command::Shutdown);
        }
    }

    fn stop(&mut self) {
        self.halt();
        if let Some(r) = self.runner.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Dataflow {
    fn drop(&mut self) {
        self.stop();
    }
}
