//! Retries that do not storm: a budget (retries may be at most a share of recent requests,
//! plus a small floor, as in Envoy and Finagle) and exponential backoff with full jitter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Seconds of history the budget looks at.
const WINDOW_SECS: u64 = 10;
/// Retries always allowed per second, so a quiet service can still retry.
const MIN_PER_SEC: u64 = 3;
/// Longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Recent requests and retries in one-second slots: `(second << 32) | count` per slot.
#[derive(Debug)]
pub struct RetryBudget {
    percent: f64,
    epoch: Instant,
    requests: [AtomicU64; WINDOW_SECS as usize],
    retries: [AtomicU64; WINDOW_SECS as usize],
}

impl RetryBudget {
    /// A budget allowing retries up to `percent` of recent requests.
    pub fn new(percent: f64) -> Self {
        Self {
            percent,
            epoch: Instant::now(),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            retries: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn second(&self) -> u64 {
        self.epoch.elapsed().as_secs()
    }

    /// Counts a request.
    pub fn deposit(&self) {
        bump(&self.requests, self.second());
    }

    /// Takes one retry from the budget, or says there is none left.
    pub fn withdraw(&self) -> bool {
        let now = self.second();
        let requests = total(&self.requests, now);
        let retries = total(&self.retries, now);
        let allowed = (requests as f64 * self.percent / 100.0) as u64 + MIN_PER_SEC * WINDOW_SECS;
        if retries >= allowed {
            return false;
        }
        bump(&self.retries, now);
        true
    }
}

fn bump(slots: &[AtomicU64], second: u64) {
    let slot = &slots[(second % WINDOW_SECS) as usize];
    let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
        Some(if packed >> 32 == second { packed + 1 } else { (second << 32) | 1 })
    });
}

fn total(slots: &[AtomicU64], now: u64) -> u64 {
    slots
        .iter()
        .map(|slot| slot.load(Ordering::Acquire))
        .filter(|packed| now.saturating_sub(packed >> 32) < WINDOW_SECS)
        .map(|packed| packed & 0xffff_ffff)
        .sum()
}

/// The wait before retry number `n` (1-based): uniformly random up to `base × 2^(n-1)`,
/// capped at 2 s ("full jitter", so retrying clients spread out instead of moving in step).
pub fn backoff(base: Duration, n: u32) -> Duration {
    let ceiling = base.saturating_mul(1u32 << n.saturating_sub(1).min(20)).min(MAX_BACKOFF);
    ceiling.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_budget_is_a_share_of_recent_requests_plus_a_floor() {
        let budget = RetryBudget::new(20.0);
        for _ in 0..1_000 {
            budget.deposit();
        }
        let granted = (0..1_000).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 200 + 30);
        // Ten seconds later the window is empty again: only the floor.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!((0..100).filter(|_| budget.withdraw()).count(), 30);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(50);
        for n in 1..=12 {
            let ceiling = (base * (1 << (n - 1))).min(MAX_BACKOFF);
            for _ in 0..50 {
                assert!(backoff(base, n) <= ceiling);
            }
        }
        let samples: Vec<_> = (0..200).map(|_| backoff(base, 3)).collect();
        assert!(
            samples.iter().any(|d| *d < Duration::from_millis(100))
                && samples.iter().any(|d| *d > Duration::from_millis(100))
        );
    }
}
