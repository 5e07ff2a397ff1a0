//! Updates held until their epoch is complete, then handed over oldest epoch first, each
//! epoch's consolidated. The operators that keep their own state (`crate::provider_days`,
//! `crate::user_analytics`) process epochs in this order, so their state is simply the
//! current one: no history to replay, no output trace to compare with.

use std::collections::BTreeMap;

use timely::dataflow::operators::Capability;

use crate::pipeline::Epoch;

/// An epoch's updates with their multiplicities.
pub(crate) type Updates<D> = Vec<(D, isize)>;

pub(crate) struct InOrder<D> {
    pending: BTreeMap<Epoch, (Capability<Epoch>, Updates<D>)>,
}

impl<D: Ord> InOrder<D> {
    pub(crate) fn new() -> Self {
        InOrder {
            pending: BTreeMap::new(),
        }
    }

    /// Holds `update` of `epoch`; `capability` makes the capability the epoch's output is sent
    /// with, the first time the epoch is seen.
    pub(crate) fn hold(
        &mut self,
        epoch: Epoch,
        capability: impl FnOnce() -> Capability<Epoch>,
        update: (D, isize),
    ) {
        self.pending
            .entry(epoch)
            .or_insert_with(|| (capability(), Vec::new()))
            .1
            .push(update);
    }

    /// The oldest held epoch if `complete` says no more of its updates can arrive, with its
    /// capability and its updates consolidated (sorted, equal ones summed, zeros dropped).
    pub(crate) fn next_complete(
        &mut self,
        complete: impl Fn(&Epoch) -> bool,
    ) -> Option<(Epoch, Capability<Epoch>, Updates<D>)> {
        let epoch = self.pending.keys().next().copied().filter(complete)?;
        let (capability, mut updates) = self.pending.remove(&epoch).expect("present");
        differential_dataflow::consolidation::consolidate(&mut updates);
        Some((epoch, capability, updates))
    }
}
