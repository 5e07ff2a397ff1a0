//! One user's days per metric, in date order, with a value each: what the horizon counts of the
//! days it lets through and what the per-provider operator holds of each day.
//!
//! Why not a map keyed by (metric, day): a new date lands at the end of each metric's days, and
//! the horizon's evictions leave from the front, so a queue per metric takes both in one or two
//! cache lines of the user's, where a map probes a random slot per day.

use std::collections::VecDeque;

use crate::model::{Day, MetricKey};

#[derive(Debug)]
pub(crate) struct MetricDays<T> {
    metrics: Vec<(MetricKey, VecDeque<(Day, T)>)>,
}

impl<T> Default for MetricDays<T> {
    fn default() -> Self {
        MetricDays {
            metrics: Vec::new(),
        }
    }
}

impl<T> MetricDays<T> {
    /// The value of `day`, if it has one.
    pub(crate) fn get_mut(&mut self, metric: MetricKey, day: Day) -> Option<&mut T> {
        let days = self.days_mut(metric)?;
        let i = place(days, day).ok()?;
        Some(&mut days[i].1)
    }

    /// Sets the value of `day`.
    pub(crate) fn insert(&mut self, metric: MetricKey, day: Day, value: T) {
        let at = match self.metrics.iter().position(|(m, _)| *m == metric) {
            Some(at) => at,
            None => {
                self.metrics.push((metric, VecDeque::new()));
                self.metrics.len() - 1
            }
        };
        let days = &mut self.metrics[at].1;
        match place(days, day) {
            Ok(i) => days[i].1 = value,
            Err(i) => days.insert(i, (day, value)),
        }
    }

    /// Removes `day` (and its metric, when it was the last day).
    pub(crate) fn remove(&mut self, metric: MetricKey, day: Day) -> Option<T> {
        let at = self.metrics.iter().position(|(m, _)| *m == metric)?;
        let days = &mut self.metrics[at].1;
        let (_, value) = days.remove(place(days, day).ok()?)?;
        if days.is_empty() {
            self.metrics.swap_remove(at);
        }
        Some(value)
    }

    /// Removes every day before `first`, calling `f` with each.
    pub(crate) fn remove_before(&mut self, first: Day, mut f: impl FnMut(MetricKey, Day)) {
        for (m, days) in &mut self.metrics {
            let n = days.partition_point(|(d, _)| *d < first);
            days.drain(..n).for_each(|(d, _)| f(*m, d));
        }
        self.metrics.retain(|(_, days)| !days.is_empty());
    }

    /// How many days there are, over all metrics.
    pub(crate) fn len(&self) -> usize {
        self.metrics.iter().map(|(_, days)| days.len()).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Asks for the lines a new date lands in (`crate::prefetch`): the last days of each metric.
    pub(crate) fn prefetch_ends(&self) {
        crate::prefetch::slice(&self.metrics);
        for (_, days) in &self.metrics {
            let (front, back) = days.as_slices();
            let tail = if back.is_empty() { front } else { back };
            crate::prefetch::slice(&tail[tail.len().saturating_sub(2)..]);
        }
    }

    fn days_mut(&mut self, metric: MetricKey) -> Option<&mut VecDeque<(Day, T)>> {
        self.metrics
            .iter_mut()
            .find(|(m, _)| *m == metric)
            .map(|(_, days)| days)
    }
}

/// Where `day` is (`Ok`) or would go (`Err`): after the last day without a search, as new dates
/// nearly always are.
fn place<T>(days: &VecDeque<(Day, T)>, day: Day) -> Result<usize, usize> {
    match days.back() {
        Some((last, _)) if *last < day => Err(days.len()),
        _ => days.binary_search_by_key(&day, |(d, _)| *d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_stay_in_order_and_metrics_go_with_their_last_day() {
        let mut days = MetricDays::default();
        for d in [3, 1, 2, 5] {
            days.insert(7, d, d * 10);
        }
        days.insert(9, 4, 0);
        assert_eq!(days.len(), 5);
        *days.get_mut(7, 2).expect("held") += 1;
        assert_eq!(days.get_mut(7, 2).copied(), Some(21));
        assert_eq!(days.get_mut(7, 4), None);
        assert_eq!(days.remove(9, 4), Some(0));
        assert_eq!(days.remove(9, 4), None);
        let mut gone = Vec::new();
        days.remove_before(3, |m, d| gone.push((m, d)));
        assert_eq!(gone, vec![(7, 1), (7, 2)]);
        assert_eq!(days.len(), 2);
        days.remove_before(6, |_, _| {});
        assert!(days.is_empty());
    }
}
