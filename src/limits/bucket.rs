//! A token bucket: `capacity` at most, refilled continuously at `capacity` per minute. A key's
//! `rpm` and `tpm` are one each. Unlike fixed windows it never lets twice the limit through
//! across a window's edge, and its balance may go below zero: tokens are reserved from an
//! estimate and settled with the real count, so a request that used more than it reserved is
//! paid for by the next ones.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Units per token of the bucket's integer level: refill is exact to a millionth.
const SCALE: i128 = 1_000_000;
const MINUTE_NANOS: i128 = 60_000_000_000;

/// One bucket. The lock is the subject's own, held for a few arithmetic operations; no two
/// subjects share one.
#[derive(Debug)]
pub struct Bucket {
    capacity: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Tokens × [`SCALE`]; negative after an overdraft.
    level: i128,
    refilled: Instant,
}

/// What a bucket says about itself, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Its capacity.
    pub limit: u64,
    /// Whole tokens left (0 when overdrawn).
    pub remaining: u64,
    /// Until it is full again.
    pub reset: Duration,
}

impl Bucket {
    /// A full bucket of `capacity` (at least 1).
    pub fn new(capacity: u64) -> Self {
        let capacity = capacity.max(1);
        let state = State { level: i128::from(capacity) * SCALE, refilled: Instant::now() };
        Self { capacity, state: Mutex::new(state) }
    }

    /// Its capacity.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it leaves plain numbers behind: still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refill(&self, state: &mut State, now: Instant) {
        let elapsed = now.saturating_duration_since(state.refilled).as_nanos() as i128;
        let full = i128::from(self.capacity) * SCALE;
        let added = elapsed * full / MINUTE_NANOS;
        if added > 0 {
            state.level = (state.level + added).min(full);
            // Only the time that bought whole units is spent, so slow trickles add up.
            state.refilled = now;
        }
    }

    fn reading(&self, state: &State) -> Reading {
        let full = i128::from(self.capacity) * SCALE;
        Reading {
            limit: self.capacity,
            remaining: (state.level.max(0) / SCALE) as u64,
            reset: self.time_to(state, full),
        }
    }

    fn time_to(&self, state: &State, level: i128) -> Duration {
        let missing = (level - state.level).max(0);
        let full = i128::from(self.capacity) * SCALE;
        let nanos = (missing * MINUTE_NANOS + full - 1) / full;
        Duration::from_nanos(nanos.min(i128::from(u64::MAX)) as u64)
    }

    /// Takes `amount` if the bucket holds it (or, for an amount larger than the whole bucket,
    /// if the bucket is full: it could never be sent otherwise); else says how long until it
    /// would.
    pub fn take(&self, amount: u64) -> Result<Reading, Duration> {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        let needed = i128::from(amount.min(self.capacity)) * SCALE;
        if state.level < needed {
            return Err(self.time_to(&state, needed));
        }
        state.level -= i128::from(amount) * SCALE;
        Ok(self.reading(&state))
    }

    /// Gives back `amount` (a refused request's share, or an estimate above the real count);
    /// a negative amount takes more (the real count was above the estimate).
    pub fn give_back(&self, amount: i64) {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        let full = i128::from(self.capacity) * SCALE;
        state.level = (state.level + i128::from(amount) * SCALE).min(full);
    }

    /// The bucket now.
    pub fn read(&self) -> Reading {
        let mut state = self.lock();
        self.refill(&mut state, Instant::now());
        self.reading(&state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_gives_its_capacity_then_refills_continuously() {
        let bucket = Bucket::new(10);
        for left in (0..10).rev() {
            assert_eq!(bucket.take(1).unwrap().remaining, left);
        }
        assert_eq!(bucket.take(1), Err(Duration::from_secs(6)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(bucket.take(1).is_ok());
        assert!(bucket.take(1).is_err());
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(bucket.read().remaining, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overdraft_is_paid_by_later_requests() {
        let bucket = Bucket::new(1000);
        bucket.take(100).unwrap();
        // It used 1,500, not the 100 reserved.
        bucket.give_back(-1400);
        assert_eq!(bucket.read().remaining, 0);
        assert_eq!(bucket.take(1), Err(Duration::from_millis(30_060)));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(bucket.read().remaining, 500);
    }

    #[tokio::test(start_paused = true)]
    async fn an_amount_above_capacity_passes_only_a_full_bucket() {
        let bucket = Bucket::new(100);
        bucket.take(1).unwrap();
        assert!(bucket.take(500).is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(bucket.take(500).is_ok());
        assert_eq!(bucket.read().remaining, 0);
    }
}
