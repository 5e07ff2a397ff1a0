//! One metric's daily values of one user, as (date, value) sorted by date: the lookups the
//! per-user operator and its windows share.

use crate::model::{Day, Fixed};

/// The dates in `vals` within `[from, to]`.
pub(crate) fn within(vals: &[(Day, Fixed)], from: Day, to: Day) -> &[(Day, Fixed)] {
    let lo = vals.partition_point(|(d, _)| *d < from);
    let hi = vals.partition_point(|(d, _)| *d <= to);
    &vals[lo..hi.max(lo)]
}

/// The value on `day`, if there is one.
pub(crate) fn value_on(vals: &[(Day, Fixed)], day: Day) -> Option<Fixed> {
    vals.binary_search_by_key(&day, |(d, _)| *d)
        .ok()
        .map(|i| vals[i].1)
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
