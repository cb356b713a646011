//! Per-caller token buckets, so one integrator cannot starve the others.
//! Each replica keeps its own buckets: with N replicas behind a balancer a
//! caller gets up to N times the rate, which is what a fleet-wide budget
//! split evenly would give anyway.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// A steady rate and a burst allowance, per caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// When a caller has used up its bucket: when it may try again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhausted {
    pub retry_after: Duration,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// Buckets beyond this many are pruned of full (idle) ones: public callers
/// come and go; a full bucket carries no state worth keeping.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `caller`'s bucket, or says how long until one is there.
    pub fn take(&self, caller: &str, now: Instant) -> Result<(), Exhausted> {
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, bucket| {
                let refilled = bucket.tokens
                    + now.duration_since(bucket.refilled_at).as_secs_f64() * per_second;
                refilled < burst
            });
        }
        let bucket = buckets.entry(caller.to_string()).or_insert(Bucket {
            tokens: burst,
            refilled_at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled_at);
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() * per_second).min(burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let missing = 1.0 - bucket.tokens;
            Err(Exhausted {
                retry_after: Duration::from_secs_f64(missing / per_second)
                    .max(Duration::from_millis(1)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_burst_then_the_steady_rate_and_others_are_unaffected() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 5.0,
        });
        let start = Instant::now();
        for _ in 0..5 {
            limiter.take("greedy", start).unwrap();
        }
        let refused = limiter.take("greedy", start).unwrap_err();
        assert!(refused.retry_after <= Duration::from_millis(100));
        assert!(refused.retry_after >= Duration::from_millis(90));
        // another integrator still has its whole burst
        for _ in 0..5 {
            limiter.take("polite", start).unwrap();
        }
        // 100 ms later one more token has come back, and only one
        let later = start + Duration::from_millis(100);
        limiter.take("greedy", later).unwrap();
        assert!(limiter.take("greedy", later).is_err());
    }
}
