//! Per-API-key token buckets, in process. A key may burst up to `burst` requests and then
//! `rps` per second; an empty bucket answers 429 with the seconds until a token is back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

struct Bucket {
    tokens: f64,
    refilled: Instant,
    /// When `last_used_at` was last written for this key, to write it at most once a minute.
    touched: Option<Instant>,
}

pub struct RateLimiter {
    rps: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

/// How often a key's `last_used_at` is persisted at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

impl RateLimiter {
    pub fn new(rps: f64, burst: u32) -> Self {
        RateLimiter {
            rps,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`. Err carries the whole seconds to wait.
    pub fn check(&self, key: Uuid, now: Instant) -> Result<(), u64> {
        if self.rps <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
            touched: None,
        });
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rps).min(self.burst);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rps).ceil().max(1.0) as u64)
        }
    }

    /// True when the key's last-use time should be written now.
    pub fn should_touch(&self, key: Uuid, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
            touched: None,
        });
        if b.touched
            .is_some_and(|t| now.saturating_duration_since(t) < TOUCH_EVERY)
        {
            return false;
        }
        b.touched = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_limits_then_refills() {
        let rl = RateLimiter::new(2.0, 3);
        let k = Uuid::now_v7();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.check(k, t0).is_ok());
        }
        assert_eq!(rl.check(k, t0), Err(1));
        assert!(rl.check(Uuid::now_v7(), t0).is_ok(), "buckets are per key");
        assert!(rl.check(k, t0 + Duration::from_millis(500)).is_ok());
        assert!(rl.check(k, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn zero_disables() {
        let rl = RateLimiter::new(0.0, 1);
        let k = Uuid::now_v7();
        for _ in 0..100 {
            assert!(rl.check(k, Instant::now()).is_ok());
        }
    }
}
