//! Timing policy: when the next incremental sync runs, and how long a failed connection waits
//! before its actor is restarted. Pure functions, so the policy is tested without clocks.

use std::time::Duration;

use rand::Rng as _;

/// Knobs of the sync supervision tree.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Time between incremental syncs of one connection.
    pub interval: Duration,
    /// ± fraction of `interval` added at random, so connections made together do not stay in
    /// lock-step against a provider's rate limit.
    pub jitter: f64,
    /// First restart delay after a failed run; doubled per consecutive failure.
    pub restart_base: Duration,
    /// Longest restart delay.
    pub restart_max: Duration,
    /// Consecutive failures after which the connection goes to `error`.
    pub max_restarts: u32,
    /// How long shutdown waits for in-flight runs to reach a batch boundary.
    pub shutdown_grace: Duration,
    /// Arbiters (threads) that run connection actors.
    pub workers: usize,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            interval: Duration::from_secs(15 * 60),
            jitter: 0.1,
            restart_base: Duration::from_secs(5),
            restart_max: Duration::from_secs(15 * 60),
            max_restarts: 6,
            shutdown_grace: Duration::from_secs(20),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 8),
        }
    }
}

impl SyncSettings {
    /// The delay before the next scheduled sync.
    pub fn next_interval(&self) -> Duration {
        jittered(
            self.interval,
            self.jitter,
            rand::rng().random_range(-1.0..=1.0),
        )
    }

    /// The delay before restart number `attempt` (1-based), or None past the limit.
    pub fn restart_delay(&self, attempt: u32) -> Option<Duration> {
        if attempt > self.max_restarts {
            return None;
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        Some(
            self.restart_base
                .saturating_mul(factor)
                .min(self.restart_max),
        )
    }
}

/// `base` moved by `unit` (in −1..=1) times `jitter` of itself.
fn jittered(base: Duration, jitter: f64, unit: f64) -> Duration {
    let secs = base.as_secs_f64() * (1.0 + jitter.clamp(0.0, 1.0) * unit.clamp(-1.0, 1.0));
    Duration::from_secs_f64(secs.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let s = SyncSettings::default();
        for _ in 0..1000 {
            let d = s.next_interval().as_secs_f64();
            assert!((810.0..=990.0).contains(&d), "{d}");
        }
        assert_eq!(
            jittered(Duration::from_secs(100), 0.1, -1.0),
            Duration::from_secs(90)
        );
    }

    #[test]
    fn restarts_back_off_exponentially_up_to_a_limit() {
        let s = SyncSettings {
            restart_base: Duration::from_secs(5),
            restart_max: Duration::from_secs(60),
            max_restarts: 5,
            ..SyncSettings::default()
        };
        let delays: Vec<_> = (1..=6)
            .map(|a| s.restart_delay(a).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            vec![Some(5), Some(10), Some(20), Some(40), Some(60), None]
        );
    }
}
