//! Software prefetch of the state the next user's update will read.
//!
//! Why: a new date touches every user's state once, and by then it is cold — the update of
//! one user is mostly waiting on memory (series tails, window values, pair products), one
//! dependent load after another. The per-user operator knows which user comes next, so it asks
//! for that user's lines while it computes the current one, and the loads overlap the work.
//! A prefetch is only a hint: it changes no result and never faults.

/// The bytes of a cache line on the machines this runs on.
const LINE: usize = 64;

/// Asks for the cache lines of `items`, without waiting for them.
pub(crate) fn slice<T>(items: &[T]) {
    let start = items.as_ptr().cast::<u8>();
    let len = std::mem::size_of_val(items);
    let mut offset = 0;
    while offset < len {
        line(start.wrapping_add(offset));
        offset += LINE;
    }
}

/// Asks for the cache lines of `value`.
pub(crate) fn value<T>(value: &T) {
    slice(std::slice::from_ref(value));
}

#[inline(always)]
fn line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program observes and does not fault, whatever the
    // address; `at` lies within (or one line past the start of) a live allocation anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
