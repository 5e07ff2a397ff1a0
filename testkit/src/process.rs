//! This process's resident memory, for benchmarks that report it.

/// (VmRSS, VmHWM) of this process in bytes (0 where `/proc` does not say).
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts VmHWM afresh from the current VmRSS (Linux: `5` written to `clear_refs`), so a bench
/// can report the peak of one phase; false where that is not possible.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
