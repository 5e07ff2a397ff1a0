//! A series' baseline window kept from one epoch to the next: the exact sums and the values in
//! ascending order over the `len` dates ending at the series' latest date.
//!
//! Why: a new date moves every baseline window by one date. Summing and sorting the window
//! again costs O(window) per series and date; moving it costs the dates that enter and leave
//! (one each, usually) and the changed dates inside it — a binary search and a short move in
//! the ordered values each. The statistics come from `stats::baseline_of`, as the batch
//! `stats::baseline` does, over exact integer sums, so both give the same bits.

use crate::model::{Baseline, Day, Fixed};
use crate::series::{moved, value_on, within};
use crate::stats::{self, WindowSums};

/// A window moved by more dates than this, or with more changed dates than this, is built
/// afresh: past that, walking the differences is no cheaper than summing and sorting.
const fn rebuild_past(len: Day) -> Day {
    len / 2
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaselineWindow {
    len: Day,
    /// The window's last date: the series' latest.
    to: Day,
    sums: WindowSums,
    sorted: Vec<Fixed>,
}

impl BaselineWindow {
    /// The window of `len` dates ending at the latest of `vals` (sorted by date); None for an
    /// empty series.
    pub(crate) fn new(len: Day, vals: &[(Day, Fixed)]) -> Option<BaselineWindow> {
        let to = vals.last()?.0;
        let window = within(vals, to - len + 1, to);
        let mut sorted: Vec<Fixed> = window.iter().map(|(_, v)| *v).collect();
        sorted.sort_unstable();
        Some(BaselineWindow {
            len,
            to,
            sums: WindowSums::of(window),
            sorted,
        })
    }

    /// Follows the series to `vals` (as it is now, not empty), given the dates that changed
    /// since the window last followed it, each with the value it held then (sorted by date).
    pub(crate) fn update(&mut self, vals: &[(Day, Fixed)], changed: &[(Day, Option<Fixed>)]) {
        let Some(&(to, _)) = vals.last() else {
            return;
        };
        let limit = rebuild_past(self.len);
        // Only changes inside either window count: the horizon evicts a month of old dates at
        // once, and those reach no window.
        let reach = (self.to.min(to) - self.len + 1)..=self.to.max(to);
        let inside = changed.iter().filter(|(d, _)| reach.contains(d)).count();
        if (to - self.to).abs() > limit || inside > limit as usize {
            *self = BaselineWindow::new(self.len, vals).expect("the series is not empty");
            return;
        }
        let (old_from, old_to) = (self.to - self.len + 1, self.to);
        let (new_from, new_to) = (to - self.len + 1, to);
        let before = |d: Day| match changed.binary_search_by_key(&d, |(c, _)| *c) {
            Ok(i) => changed[i].1,
            Err(_) => value_on(vals, d),
        };
        let mut visit = |d: Day| {
            let was = (old_from..=old_to)
                .contains(&d)
                .then(|| before(d))
                .flatten();
            let now = (new_from..=new_to)
                .contains(&d)
                .then(|| value_on(vals, d))
                .flatten();
            if was != now {
                if let Some(v) = was {
                    self.remove(d, v);
                }
                if let Some(v) = now {
                    self.insert(d, v);
                }
            }
        };
        // The dates in one window and not the other, then the changed dates in both.
        moved((old_from, old_to), (new_from, new_to)).for_each(&mut visit);
        for (d, _) in changed {
            if (old_from..=old_to).contains(d) && (new_from..=new_to).contains(d) {
                visit(*d);
            }
        }
        self.to = to;
    }

    fn remove(&mut self, day: Day, value: Fixed) {
        self.sums.remove(day, value);
        if let Ok(i) = self.sorted.binary_search(&value) {
            self.sorted.remove(i);
        }
    }

    fn insert(&mut self, day: Day, value: Fixed) {
        self.sums.add(day, value);
        let i = self.sorted.partition_point(|v| *v < value);
        self.sorted.insert(i, value);
    }

    /// Asks for the window's lines ahead of an update (`crate::prefetch`).
    pub(crate) fn prefetch(&self) {
        crate::prefetch::slice(&self.sorted);
    }

    /// The window's statistics; `vals` is the series the window follows.
    pub(crate) fn baseline(&self, vals: &[(Day, Fixed)]) -> Baseline {
        stats::baseline_of(
            self.to,
            &self.sums,
            &self.sorted,
            stats::recent(self.to, within(vals, self.to - 6, self.to)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

        /// A window that follows a series through random batches of insertions, changes and
        /// deletions holds what a window built afresh holds, and gives the batch baseline.
        #[test]
        fn a_followed_window_equals_a_fresh_one(
            len in prop::sample::select(vec![7 as Day, 28, 90]),
            start in prop::collection::btree_map(0..150 as Day, 0..20i64, 1..120),
            batches in prop::collection::vec(
                prop::collection::vec((0..200 as Day, prop::option::of(0..20i64)), 1..6),
                1..30,
            ),
        ) {
            let mut series: Vec<(Day, Fixed)> = start.into_iter().collect();
            let mut window = BaselineWindow::new(len, &series).unwrap();
            for batch in batches {
                let mut changed: Vec<(Day, Option<Fixed>)> = Vec::new();
                for (d, v) in batch {
                    changed.push((d, value_on(&series, d)));
                    match (series.binary_search_by_key(&d, |(x, _)| *x), v) {
                        (Ok(i), Some(v)) => series[i].1 = v,
                        (Ok(i), None) => { series.remove(i); }
                        (Err(i), Some(v)) => series.insert(i, (d, v)),
                        (Err(_), None) => {}
                    }
                }
                // The first value each date held: the one before the batch.
                changed.sort_by_key(|(d, _)| *d);
                changed.dedup_by_key(|(d, _)| *d);
                if series.is_empty() {
                    break;
                }
                window.update(&series, &changed);
                let fresh = BaselineWindow::new(len, &series).unwrap();
                prop_assert_eq!(&window, &fresh);
                let to = series.last().unwrap().0;
                prop_assert_eq!(
                    window.baseline(&series),
                    stats::baseline(to, within(&series, to - len + 1, to))
                );
            }
        }
    }
}
