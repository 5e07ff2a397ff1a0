//! A user's correlation window kept from one epoch to the next: per metric, the values of the
//! 90 dates ending at the user's latest date, their exact sums and their order by value; per
//! pair of metrics and lag, the exact sum of products.
//!
//! Why: a new date moves the window of every pair. Summing the products of 315 pairs
//! (15 metrics, lag 0 and 1) over 90 dates and sorting every metric for its ranks costs
//! O(window) per pair and date; moving the window costs, per metric, the dates that enter and
//! leave plus the changed ones, each touching the sums of the pairs it belongs to once. What
//! stays O(window) is Spearman's ranks, computed only for the pairs Pearson already found
//! significant, from the kept order (no sort).
//!
//! Dates are slots of a ring of 128 (`day mod 128`), wide enough for the old and the new
//! window at once while the window moves (90 + `MAX_SHIFT` + a neighbour on each side), so a
//! slot names one date throughout. A pair's dates are a bit mask: lag 1 pairs a on d with b on
//! d + 1, which is b's mask rotated by one slot.

use std::collections::BTreeMap;

use crate::corr::{Moments, Spread};
use crate::model::{CORRELATION_MIN_PAIRS, CORRELATION_WINDOW, Correlation, Day, Fixed, MetricKey};
use crate::series::{moved, value_on, within};
use crate::stats;

const RING: usize = 128;

/// A window that moves by more dates than this is built afresh.
const MAX_SHIFT: Day = 32;
const _: () = assert!(CORRELATION_WINDOW + MAX_SHIFT + 2 < RING as Day);

/// A (metric a, metric b, lag) key and its significant correlation.
pub(crate) type Found = BTreeMap<(MetricKey, MetricKey, u8), Correlation>;

fn slot(day: Day) -> usize {
    day.rem_euclid(RING as Day) as usize
}

/// One metric's values in the window.
#[derive(Debug, Clone)]
struct MetricWindow {
    metric: MetricKey,
    /// By slot; meaningful where `mask` has the slot's bit.
    values: Box<[Fixed; RING]>,
    mask: u128,
    sum: i128,
    squares: i128,
    /// The occupied slots, ordered by (value, slot).
    order: Vec<u8>,
}

impl MetricWindow {
    fn new(metric: MetricKey) -> MetricWindow {
        MetricWindow {
            metric,
            values: Box::new([0; RING]),
            mask: 0,
            sum: 0,
            squares: 0,
            order: Vec::new(),
        }
    }

    /// The window holding `vals` (dates within one window).
    fn filled(metric: MetricKey, vals: &[(Day, Fixed)]) -> MetricWindow {
        let mut w = MetricWindow::new(metric);
        for (d, v) in vals {
            let s = slot(*d);
            w.values[s] = *v;
            w.mask |= 1u128 << s;
            w.sum += i128::from(*v);
            w.squares += i128::from(*v) * i128::from(*v);
        }
        // (value, slot) packed in one integer: sorting primitives is several times faster
        // than sorting by a key that indexes the values.
        let mut keyed: Vec<i128> = vals
            .iter()
            .map(|(d, v)| i128::from(*v) << 8 | slot(*d) as i128)
            .collect();
        keyed.sort_unstable();
        w.order = keyed.iter().map(|k| (k & 0xff) as u8).collect();
        w
    }

    /// The value on `day`, 0 if none: products with a missing date vanish.
    fn get(&self, day: Day) -> i128 {
        self.held(day).map_or(0, i128::from)
    }

    fn held(&self, day: Day) -> Option<Fixed> {
        let s = slot(day);
        (self.mask >> s & 1 == 1).then(|| self.values[s])
    }

    fn position(&self, value: Fixed, s: u8) -> usize {
        self.order
            .partition_point(|o| (self.values[*o as usize], *o) < (value, s))
    }

    fn set(&mut self, day: Day, was: Option<Fixed>, now: Option<Fixed>) {
        let s = slot(day);
        if let Some(v) = was {
            let at = self.position(v, s as u8);
            self.order.remove(at);
            self.mask &= !(1u128 << s);
            self.sum -= i128::from(v);
            self.squares -= i128::from(v) * i128::from(v);
        }
        if let Some(v) = now {
            let at = self.position(v, s as u8);
            self.order.insert(at, s as u8);
            self.values[s] = v;
            self.mask |= 1u128 << s;
            self.sum += i128::from(v);
            self.squares += i128::from(v) * i128::from(v);
        }
    }

    /// Σx and Σx² over the slots in `subset` (a subset of `mask`): from the totals when only a
    /// few slots are missing (the common case: lag 1 drops one end), else summed.
    fn sums(&self, subset: u128) -> (i128, i128) {
        let over = |mut bits: u128| {
            let (mut sum, mut squares) = (0i128, 0i128);
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let v = i128::from(self.values[i]);
                sum += v;
                squares += v * v;
            }
            (sum, squares)
        };
        let missing = self.mask & !subset;
        if missing.count_ones() <= 8 {
            let (sum, squares) = over(missing);
            (self.sum - sum, self.squares - squares)
        } else {
            over(subset)
        }
    }

    /// Doubled average ranks of the values in the slots of `subset`, by slot: the kept order
    /// serves every subset (equal values stay adjacent in any subset of it).
    fn ranks(&self, subset: u128, ranks: &mut [u16; RING]) {
        // One pass: each member gets its position's rank, and a run of equal values (rare in
        // measurements) is given its average when it ends.
        let mut members = [0u8; RING];
        let mut n = 0;
        let mut run = 0;
        let mut previous = None;
        for s in &self.order {
            if subset >> s & 1 == 0 {
                continue;
            }
            let v = self.values[*s as usize];
            if previous != Some(v) {
                Self::share(&members[run..n], run, n, ranks);
                run = n;
                previous = Some(v);
            }
            members[n] = *s;
            ranks[*s as usize] = (2 * n + 2) as u16;
            n += 1;
        }
        Self::share(&members[run..n], run, n, ranks);
    }

    /// Gives the members at positions `from..to` (0-based, equal values) their doubled average
    /// rank, (from + 1) + to.
    fn share(run: &[u8], from: usize, to: usize, ranks: &mut [u16; RING]) {
        if run.len() > 1 {
            for s in run {
                ranks[*s as usize] = (from + to + 1) as u16;
            }
        }
    }
}

/// The doubled ranks of the last few (metric, subset) asked for: a metric is ranked over its own
/// dates, without the first or without the last (lag 1), in nearly every pair. Entries are
/// overwritten in turn, never the one a pair is still reading (`keep`).
#[derive(Default)]
struct Ranked {
    /// (metric, subset) of each entry, apart from the ranks so a lookup reads one cache line.
    keys: Vec<(usize, u128)>,
    /// Doubled ranks are at most 2·128: 16 bits keep an entry in four cache lines.
    ranks: Vec<[u16; RING]>,
    next: usize,
}

impl Ranked {
    const CAPACITY: usize = 8;

    /// The index of the entry holding metric `i`'s ranks over `subset`.
    fn of(&mut self, metrics: &[MetricWindow], i: usize, subset: u128, keep: usize) -> usize {
        if let Some(at) = self.keys.iter().position(|k| *k == (i, subset)) {
            return at;
        }
        let at = if self.keys.len() < Self::CAPACITY {
            if self.keys.is_empty() {
                self.keys.reserve_exact(Self::CAPACITY);
                self.ranks.reserve_exact(Self::CAPACITY);
            }
            self.keys.push((i, subset));
            self.ranks.push([0; RING]);
            self.keys.len() - 1
        } else {
            if self.next == keep {
                self.next = (self.next + 1) % Self::CAPACITY;
            }
            let at = self.next;
            self.next = (self.next + 1) % Self::CAPACITY;
            self.keys[at] = (i, subset);
            at
        };
        metrics[i].ranks(subset, &mut self.ranks[at]);
        at
    }
}

/// The window of one user.
#[derive(Debug, Clone)]
pub(crate) struct CorrelationWindow {
    latest: Day,
    /// Sorted by metric; a metric stays (with an empty mask) when its dates leave the window.
    metrics: Vec<MetricWindow>,
    /// By lag, at i·k + j: Σ_d x_i(d)·x_j(d + lag) over the window, a missing date as 0.
    products: [Vec<i128>; 2],
}

impl CorrelationWindow {
    /// The window of the 90 dates ending at `latest` over `series` (per metric, by date).
    pub(crate) fn build(
        series: &BTreeMap<MetricKey, Vec<(Day, Fixed)>>,
        latest: Day,
    ) -> CorrelationWindow {
        let from = latest - CORRELATION_WINDOW + 1;
        let present: Vec<(MetricKey, &[(Day, Fixed)])> = series
            .iter()
            .map(|(m, vals)| (*m, within(vals, from, latest)))
            .filter(|(_, vals)| !vals.is_empty())
            .collect();
        let k = present.len();
        let mut window = CorrelationWindow {
            latest,
            metrics: present
                .iter()
                .map(|(m, vals)| MetricWindow::filled(*m, vals))
                .collect(),
            products: [vec![0; k * k], vec![0; k * k]],
        };
        // Summed pair by pair: one pass over each pair's dates, not one update per value.
        for i in 0..k {
            for j in 0..k {
                for lag in [0u32, 1] {
                    if (lag == 0 && i >= j) || (lag == 1 && i == j) {
                        continue;
                    }
                    let (a, b) = (&window.metrics[i], &window.metrics[j]);
                    let mut bits = a.mask & b.mask.rotate_right(lag);
                    let mut sum = 0i128;
                    while bits != 0 {
                        let s = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        sum += i128::from(a.values[s])
                            * i128::from(b.values[(s + lag as usize) % RING]);
                    }
                    window.products[lag as usize][i * k + j] = sum;
                    if lag == 0 {
                        window.products[0][j * k + i] = sum;
                    }
                }
            }
        }
        window
    }

    /// Moves the window to the 90 dates ending at `latest` over `series` as it is now, given
    /// the dates that changed since it last moved (per metric; values not needed, the window
    /// holds the ones it had). False when it must be built afresh instead: it moved too far,
    /// or a metric it has no place for has dates in it.
    pub(crate) fn update<T>(
        &mut self,
        series: &BTreeMap<MetricKey, Vec<(Day, Fixed)>>,
        latest: Day,
        changed: &BTreeMap<MetricKey, Vec<(Day, T)>>,
    ) -> bool {
        if (latest - self.latest).abs() > MAX_SHIFT {
            return false;
        }
        let old = (self.latest - CORRELATION_WINDOW + 1, self.latest);
        let new = (latest - CORRELATION_WINDOW + 1, latest);
        let placed = |m: &MetricKey| self.metrics.binary_search_by_key(m, |w| w.metric).is_ok();
        if series
            .iter()
            .any(|(m, vals)| !placed(m) && !within(vals, new.0, new.1).is_empty())
        {
            return false;
        }
        let inside = |(from, to): (Day, Day), d: Day| (from..=to).contains(&d);
        for i in 0..self.metrics.len() {
            let m = self.metrics[i].metric;
            let vals = series.get(&m).map_or(&[][..], Vec::as_slice);
            let visit = |window: &mut CorrelationWindow, d: Day| {
                let was = if inside(old, d) {
                    window.metrics[i].held(d)
                } else {
                    None
                };
                let now = if inside(new, d) {
                    value_on(vals, d)
                } else {
                    None
                };
                if was != now {
                    window.set(i, d, was, now);
                }
            };
            for d in moved(old, new) {
                visit(self, d);
            }
            for (d, _) in changed.get(&m).map_or(&[][..], Vec::as_slice) {
                if inside(old, *d) && inside(new, *d) {
                    visit(self, *d);
                }
            }
        }
        self.latest = latest;
        true
    }

    /// Asks for the window's lines ahead of an update (`crate::prefetch`): the pairs' products
    /// and every metric's values and order.
    pub(crate) fn prefetch(&self) {
        crate::prefetch::slice(&self.products[0]);
        crate::prefetch::slice(&self.products[1]);
        crate::prefetch::slice(&self.metrics);
        for m in &self.metrics {
            crate::prefetch::value(&*m.values);
            crate::prefetch::slice(&m.order);
        }
    }

    /// Sets metric `i`'s value on `day` (`was` its value now), keeping every pair's products.
    fn set(&mut self, i: usize, day: Day, was: Option<Fixed>, now: Option<Fixed>) {
        let delta = i128::from(now.unwrap_or(0)) - i128::from(was.unwrap_or(0));
        if delta != 0 {
            let k = self.metrics.len();
            let [same, next] = &mut self.products;
            for (j, other) in self.metrics.iter().enumerate() {
                if j == i {
                    continue;
                }
                let on = other.get(day);
                same[i * k + j] += delta * on;
                same[j * k + i] += delta * on;
                // i on d with j on d + 1, and j on d − 1 with i on d.
                next[i * k + j] += delta * other.get(day + 1);
                next[j * k + i] += delta * other.get(day - 1);
            }
        }
        self.metrics[i].set(day, was, now);
    }

    /// Calls `f` with every pair's exact moments over the dates both have (a on d, b on
    /// d + lag) and both sides' spreads: metric a against b at lag 0 (a < b) and
    /// lag 1 (a ≠ b), for pairs with at least one date. Plain loops: this runs for 315 pairs
    /// per user and date.
    fn for_each_pair(&self, mut f: impl FnMut(usize, usize, u8, u128, Moments, Roots)) {
        let k = self.metrics.len();
        let mut sides = Sides::new(k);
        for (ia, a) in self.metrics.iter().enumerate() {
            for (ib, b) in self.metrics.iter().enumerate() {
                for lag in [0u8, 1] {
                    if (lag == 0 && ia >= ib) || (lag == 1 && ia == ib) {
                        continue;
                    }
                    let xs = a.mask & b.mask.rotate_right(u32::from(lag));
                    if xs == 0 {
                        continue;
                    }
                    let x = sides.of(a, ia, xs);
                    let y = sides.of(b, ib, xs.rotate_left(u32::from(lag)));
                    let moments = Moments {
                        n: i64::from(xs.count_ones()),
                        sx: x.sum,
                        sy: y.sum,
                        sxx: x.squares,
                        syy: y.squares,
                        sxy: self.products[usize::from(lag)][ia * k + ib],
                    };
                    f(ia, ib, lag, xs, moments, (x.spread, y.spread));
                }
            }
        }
    }

    /// The significant correlations: equal to `stats::correlation` over each pair's dates
    /// (the moments are exact integers, and the ranks those of the paired values).
    pub(crate) fn correlations(&self) -> Found {
        let mut found = BTreeMap::new();
        let mut ranked = Ranked::default();
        self.for_each_pair(|ia, ib, lag, xs, moments, roots| {
            let n = moments.n as usize;
            let (Some(x), Some(y)) = roots else {
                return;
            };
            if n < CORRELATION_MIN_PAIRS {
                return;
            }
            let r = moments.r_with(&x, &y);
            let significant = stats::significant_r(r, n, || {
                let at = ranked.of(&self.metrics, ia, xs, usize::MAX);
                let bt = ranked.of(&self.metrics, ib, xs.rotate_left(u32::from(lag)), at);
                let (rx, ry) = (&ranked.ranks[at], &ranked.ranks[bt]);
                // Sums of at most 128 doubled ranks (≤ 256) and their products fit 64 bits.
                let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0i64, 0i64, 0i64, 0i64, 0i64);
                let mut bits = xs;
                while bits != 0 {
                    let s = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let (x, y) = (
                        i64::from(rx[s]),
                        i64::from(ry[(s + usize::from(lag)) % RING]),
                    );
                    sx += x;
                    sy += y;
                    sxx += x * x;
                    syy += y * y;
                    sxy += x * y;
                }
                Moments {
                    n: moments.n,
                    sx: sx.into(),
                    sy: sy.into(),
                    sxx: sxx.into(),
                    syy: syy.into(),
                    sxy: sxy.into(),
                }
            });
            if let Some(c) = significant {
                found.insert((self.metrics[ia].metric, self.metrics[ib].metric, lag), c);
            }
        });
        found
    }
}

/// The spreads of a pair's two sides.
type Roots = (Option<Spread>, Option<Spread>);

/// A metric's sums over some of its dates and their spread.
#[derive(Debug, Clone, Copy)]
struct Side {
    sum: i128,
    squares: i128,
    spread: Option<Spread>,
}

/// The sides computed so far in one evaluation, a few per metric: a metric meets nearly every
/// partner over the same subsets of its dates (all of them, or without the last or the first
/// date for lag 1), so each is summed and its root taken once rather than once per pair.
struct Sides {
    by_metric: Vec<smallvec::SmallVec<[(u128, Side); 3]>>,
}

impl Sides {
    fn new(metrics: usize) -> Sides {
        Sides {
            by_metric: vec![smallvec::SmallVec::new(); metrics],
        }
    }

    fn of(&mut self, metric: &MetricWindow, i: usize, subset: u128) -> Side {
        let kept = &mut self.by_metric[i];
        if let Some((_, side)) = kept.iter().find(|(s, _)| *s == subset) {
            return *side;
        }
        let (sum, squares) = metric.sums(subset);
        let n = i128::from(subset.count_ones());
        let side = Side {
            sum,
            squares,
            spread: Spread::of(n, sum, squares),
        };
        // Sparse metrics meet their partners over many subsets; past a few, none are kept.
        if kept.len() < kept.inline_size() {
            kept.push((subset, side));
        }
        side
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the oracle does: assemble each pair's dates and call `stats::correlation`.
    fn by_pairs(series: &BTreeMap<MetricKey, Vec<(Day, Fixed)>>, latest: Day) -> Found {
        let first = latest - CORRELATION_WINDOW + 1;
        let mut found = BTreeMap::new();
        for (a, xs) in series {
            for (b, ys) in series {
                for lag in [0u8, 1] {
                    if (lag == 0 && a >= b) || (lag == 1 && a == b) {
                        continue;
                    }
                    let pairs: Vec<(Fixed, Fixed)> = (first..=latest - Day::from(lag))
                        .filter_map(|d| Some((value_on(xs, d)?, value_on(ys, d + Day::from(lag))?)))
                        .collect();
                    if let Some(c) = stats::correlation(&pairs) {
                        found.insert((*a, *b, lag), c);
                    }
                }
            }
        }
        found
    }

    /// Every pair's moments by metric keys.
    fn moments(w: &CorrelationWindow) -> BTreeMap<(MetricKey, MetricKey, u8), Moments> {
        let mut all = BTreeMap::new();
        w.for_each_pair(|ia, ib, lag, _, m, _| {
            all.insert((w.metrics[ia].metric, w.metrics[ib].metric, lag), m);
        });
        all
    }

    /// Related metrics with few distinct values (ties), dense or sparse.
    fn generated(
        seed: u64,
        density: f64,
        levels: i64,
        days: std::ops::Range<Day>,
    ) -> BTreeMap<MetricKey, Vec<(Day, Fixed)>> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut series: BTreeMap<MetricKey, Vec<(Day, Fixed)>> = BTreeMap::new();
        for d in days {
            let common = (next() % levels as u64) as i64;
            for m in 0..5u16 {
                if (next() % 1000) as f64 / 1000.0 < density {
                    let noise = (next() % levels as u64) as i64;
                    let v = match m % 3 {
                        0 => common * 1_000_000 + noise,
                        1 => -common * 250_000 + noise * 7,
                        _ => noise * 1_000_000,
                    };
                    series.entry(m).or_default().push((d, v));
                }
            }
        }
        series
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// The masks and exact sums give the pairwise result exactly.
        #[test]
        fn a_built_window_equals_the_pairwise_computation(
            seed in any::<u64>(),
            density in 0.2f64..1.0,
            levels in 2i64..60,
            days in 20i32..140,
        ) {
            let series = generated(seed, density, levels, 0..days);
            let latest = days - 1 - (seed % 3) as Day;
            let got = CorrelationWindow::build(&series, latest).correlations();
            prop_assert_eq!(&got, &by_pairs(&series, latest));
        }

        /// A window moved through new dates, corrections, deletions and a latest date that
        /// goes back holds the moments of one built afresh, and finds the same correlations.
        #[test]
        fn a_moved_window_equals_a_fresh_one(
            seed in any::<u64>(),
            density in 0.3f64..1.0,
            levels in 2i64..40,
            steps in prop::collection::vec(
                (-3i32..40, prop::collection::vec((0u16..6, 0i32..100, prop::option::of(0i64..30)), 0..8)),
                1..12,
            ),
        ) {
            let mut series = generated(seed, density, levels, 0..100);
            let mut latest = 99;
            let mut window = CorrelationWindow::build(&series, latest);
            for (advance, edits) in steps {
                // New dates up to the advanced latest (or none, when it goes back).
                let fresh = generated(seed ^ latest as u64, density, levels, latest + 1..latest + 1 + advance.max(0));
                let mut changed: BTreeMap<MetricKey, Vec<(Day, ())>> = BTreeMap::new();
                for (m, vals) in fresh {
                    changed.entry(m).or_default().extend(vals.iter().map(|(d, _)| (*d, ())));
                    series.entry(m).or_default().extend(vals);
                }
                // Going back: the latest dates deleted.
                for (m, vals) in series.iter_mut() {
                    let keep = vals.partition_point(|(d, _)| *d <= latest + advance.min(0));
                    changed.entry(*m).or_default().extend(vals.drain(keep..).map(|(d, _)| (d, ())));
                }
                for (m, back, v) in edits {
                    let d = latest + advance.min(0) - back;
                    let vals = series.entry(m).or_default();
                    match (vals.binary_search_by_key(&d, |(x, _)| *x), v) {
                        (Ok(i), Some(v)) => vals[i].1 = v * 100_000,
                        (Ok(i), None) => { vals.remove(i); }
                        (Err(i), Some(v)) => vals.insert(i, (d, v * 100_000)),
                        (Err(_), None) => {}
                    }
                    changed.entry(m).or_default().push((d, ()));
                }
                series.retain(|_, vals| !vals.is_empty());
                for days in changed.values_mut() {
                    days.sort_unstable();
                    days.dedup();
                }
                let Some(now) = series.values().filter_map(|v| v.last()).map(|(d, _)| *d).max() else {
                    break;
                };
                latest = now;
                if !window.update(&series, latest, &changed) {
                    window = CorrelationWindow::build(&series, latest);
                }
                let fresh = CorrelationWindow::build(&series, latest);
                prop_assert_eq!(moments(&window), moments(&fresh));
                prop_assert_eq!(window.correlations(), by_pairs(&series, latest));
            }
        }
    }
}
