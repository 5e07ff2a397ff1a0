//! The pipeline's handle: timely workers on their own threads, driven by typed commands, with
//! a stream of typed output deltas. Nothing here blocks an async runtime: callers send
//! commands and read outputs from channels.
//!
//! Protocol: every `apply` is one epoch. Worker 0 receives the epoch's sample deltas (the
//! dataflow exchanges them by key), then every worker advances its input past the epoch and
//! steps until the probe shows the epoch complete everywhere; worker 0 then announces
//! `Output::Done(epoch)`. Deltas of an epoch always precede its `Done`, so a consumer that
//! applies deltas until `Done(e)` holds exactly the state as of epoch `e`.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::model::{SampleDelta, UserKey, WorkoutRow};
use vitasync_engine::catalogue::ProviderPriority;

/// A user's provider priority entering (+1) or leaving (−1) the pipeline.
pub type PriorityDelta = (UserKey, ProviderPriority, isize);

/// A user's workout entering (+1) or leaving (−1) the pipeline.
pub type WorkoutDelta = (UserKey, WorkoutRow, isize);

/// Everything one epoch changes.
#[derive(Debug, Default)]
pub struct Batch {
    pub samples: Vec<SampleDelta>,
    pub priorities: Vec<PriorityDelta>,
    pub workouts: Vec<WorkoutDelta>,
}
use crate::pipeline::{self, Epoch, Output};

enum Command {
    Apply { epoch: Epoch, batch: Batch },
    Advance(Epoch),
    Shutdown,
}

pub struct Dataflow {
    commands: Vec<Sender<Command>>,
    outputs: Receiver<Output>,
    next_epoch: Mutex<Epoch>,
    runner: Option<JoinHandle<()>>,
}

impl Dataflow {
    /// Starts `workers` timely workers (at least one); the first epoch is 1.
    pub fn start(workers: usize) -> Result<Self, String> {
        Self::start_at(workers, 1)
    }

    /// Starts `workers` timely workers whose first epoch is `first` (at least 1).
    pub fn start_at(workers: usize, first: Epoch) -> Result<Self, String> {
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
            let pipeline::Inputs {
                samples: mut input,
                priorities: mut priority_input,
                workouts: mut workout_input,
                probe,
            } = worker.dataflow::<Epoch, _, _>(|scope| pipeline::build(scope, sink));
            input.advance_to(first);
            input.flush();
            priority_input.advance_to(first);
            priority_input.flush();
            workout_input.advance_to(first);
            workout_input.flush();
            loop {
                match rx.recv_timeout(Duration::from_millis(5)) {
                    Ok(Command::Apply { epoch, batch }) => {
                        for d in batch.samples {
                            input.update_at(d.row, epoch, d.diff);
                        }
                        for (user, priority, diff) in batch.priorities {
                            priority_input.update_at((user, priority), epoch, diff);
                        }
                        for (user, workout, diff) in batch.workouts {
                            workout_input.update_at((user, workout), epoch, diff);
                        }
                    }
                    Ok(Command::Advance(next)) => {
                        input.advance_to(next);
                        input.flush();
                        priority_input.advance_to(next);
                        priority_input.flush();
                        workout_input.advance_to(next);
                        workout_input.flush();
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
            next_epoch: Mutex::new(first),
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
            workouts: Vec::new(),
        })
    }

    /// Applies everything in `batch` as one epoch and returns that epoch.
    pub fn apply_batch(&self, batch: Batch) -> Epoch {
        let mut next = self.next_epoch.lock().expect("epoch lock");
        let epoch = *next;
        *next += 1;
        let _ = self.commands[0].send(Command::Apply { epoch, batch });
        for c in &self.commands {
            let _ = c.send(Command::Advance(epoch + 1));
        }
        epoch
    }

    /// The output stream (deltas, then the epoch's `Done`).
    pub fn outputs(&self) -> &Receiver<Output> {
        &self.outputs
    }

    /// Stops the workers and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for c in &self.commands {
            let _ = c.send(Command::Shutdown);
        }
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
