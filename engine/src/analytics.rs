//! The port through which committed sample changes reach the analytics. The engine's services
//! and the actors hand every change they commit to an [`AnalyticsSink`]; the binary wires the
//! dataflow in behind it, so nothing here depends on timely or differential.

use std::sync::Arc;

use crate::domain::SampleChange;

/// The analytics' logical clock: one epoch per applied batch of changes. Analytics reads can
/// wait until the materialised state includes a given epoch (read-your-writes).
pub type Epoch = u64;

pub trait AnalyticsSink: Send + Sync + 'static {
    /// Hands one committed batch of changes to the analytics and returns the epoch it was
    /// assigned. Never blocks on the computation itself.
    fn apply(&self, changes: &[SampleChange]) -> Epoch;
}

pub type DynSink = Arc<dyn AnalyticsSink>;

/// For tools that write samples without running the analytics (the CLI, some tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoAnalytics;

impl AnalyticsSink for NoAnalytics {
    fn apply(&self, _: &[SampleChange]) -> Epoch {
        0
    }
}
