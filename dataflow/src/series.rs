//! One metric's daily values of one user, as (date, value) sorted by date: the lookups the
//! per-user operator and its windows share.

use crate::model::{Day, Fixed};

/// Where `day` is or would be in `vals`: the number of dates before it. A metric reported
/// every day has its dates at `len − 1 − (last − day)`, so that place is checked first: one
/// memory access where a binary search over a series no thread has touched lately costs
/// several cache misses (these lookups were most of the windows' upkeep).
pub(crate) fn position(vals: &[(Day, Fixed)], day: Day) -> usize {
    if let Some(&(last, _)) = vals.last() {
        if day > last {
            return vals.len();
        }
        let back = i64::from(last) - i64::from(day);
        if (0..vals.len() as i64).contains(&back) {
            let guess = vals.len() - 1 - back as usize;
            if vals[guess].0 == day {
                return guess;
            }
        }
    }
    vals.partition_point(|(d, _)| *d < day)
}

/// The dates in `vals` within `[from, to]`.
pub(crate) fn within(vals: &[(Day, Fixed)], from: Day, to: Day) -> &[(Day, Fixed)] {
    if from > to {
        return &[];
    }
    let lo = position(vals, from);
    let at = position(vals, to);
    let hi = if vals.get(at).is_some_and(|(d, _)| *d == to) {
        at + 1
    } else {
        at
    };
    &vals[lo..hi.max(lo)]
}

/// Where `day` is in `vals` (`Ok`), or where it would go (`Err`).
pub(crate) fn find(vals: &[(Day, Fixed)], day: Day) -> Result<usize, usize> {
    let at = position(vals, day);
    match vals.get(at) {
        Some((d, _)) if *d == day => Ok(at),
        _ => Err(at),
    }
}

/// The value on `day`, if there is one.
pub(crate) fn value_on(vals: &[(Day, Fixed)], day: Day) -> Option<Fixed> {
    find(vals, day).ok().map(|i| vals[i].1)
}

/// The dates of a window that moves from `[old_from, old_to]` to `[new_from, new_to]` (both
/// of the same length) that are in one of them and not the other.
pub(crate) fn moved(
    (old_from, old_to): (Day, Day),
    (new_from, new_to): (Day, Day),
) -> impl Iterator<Item = Day> {
    let (leaving, entering) = if new_to >= old_to {
        (
            old_from..new_from.min(old_to + 1),
            (old_to + 1).max(new_from)..new_to + 1,
        )
    } else {
        (
            (new_to + 1).max(old_from)..old_to + 1,
            new_from..old_from.min(new_to + 1),
        )
    };
    leaving.chain(entering)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The guessed places agree with a search, on dense series and ones with gaps.
        #[test]
        fn lookups_equal_a_scan(
            days in prop::collection::btree_set(-5 as Day..60, 0..50),
            from in -10 as Day..70,
            len in 0 as Day..40,
        ) {
            let vals: Vec<(Day, Fixed)> = days.iter().map(|d| (*d, i64::from(*d) * 3)).collect();
            let to = from + len;
            let scan: Vec<(Day, Fixed)> =
                vals.iter().filter(|(d, _)| (from..=to).contains(d)).copied().collect();
            prop_assert_eq!(within(&vals, from, to), &scan[..]);
            prop_assert_eq!(within(&vals, to, from - 1), &[][..]);
            prop_assert_eq!(find(&vals, from), vals.binary_search_by_key(&from, |(d, _)| *d));
            prop_assert_eq!(
                value_on(&vals, from),
                vals.iter().find(|(d, _)| *d == from).map(|(_, v)| *v)
            );
        }
    }
}
