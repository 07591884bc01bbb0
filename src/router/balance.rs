//! Sharing a priority tier's traffic: weighted random, least busy, or latency (power of two
//! choices over a peak-EWMA of observed latency, as linkerd and tower's balancer do).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Strategy;

/// How long a latency observation takes to lose most of its weight.
const DECAY: Duration = Duration::from_secs(10);

/// A deployment's live load: requests in flight and a peak-EWMA of latency.
#[derive(Debug)]
pub struct Load {
    in_flight: AtomicU32,
    /// `f64` bits: the latency estimate in nanoseconds (0 until the first observation).
    ewma_nanos: AtomicU64,
    /// Nanoseconds since `epoch` of the last observation.
    stamp: AtomicU64,
    epoch: Instant,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            in_flight: AtomicU32::new(0),
            ewma_nanos: AtomicU64::new(0),
            stamp: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

/// Counts one request in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Load>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Load {
    /// Marks a request in flight.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The latency estimate (zero before the first observation).
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(f64::from_bits(self.ewma_nanos.load(Ordering::Acquire)) as u64)
    }

    /// Folds in one observed latency: a slower one takes over at once (peak), a faster one
    /// pulls the estimate down by how long ago the last observation was.
    pub fn observe(&self, latency: Duration) {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.stamp.swap(now, Ordering::AcqRel);
        let sample = latency.as_nanos() as f64;
        let current = f64::from_bits(self.ewma_nanos.load(Ordering::Acquire));
        let next = if current == 0.0 || sample > current {
            sample
        } else {
            let elapsed = now.saturating_sub(last) as f64;
            let w = (-elapsed / DECAY.as_nanos() as f64).exp();
            current * w + sample * (1.0 - w)
        };
        // Racing observers may overwrite each other; an estimate needs no more.
        self.ewma_nanos.store(next.to_bits(), Ordering::Release);
    }

    /// Expected latency with this request added: what P2C compares.
    fn cost(&self) -> f64 {
        f64::from_bits(self.ewma_nanos.load(Ordering::Acquire)) * f64::from(self.in_flight() + 1)
    }
}

/// A choice candidate: its weight and its load.
pub trait Candidate {
    /// Share under `weighted`.
    fn weight(&self) -> u32;
    /// Live load.
    fn load(&self) -> &Load;
}

/// Picks one of `candidates` (all admissible) by `strategy`; `None` only when empty.
pub fn pick<'a, C: Candidate>(strategy: Strategy, candidates: &[&'a C]) -> Option<&'a C> {
    match candidates {
        [] => None,
        [only] => Some(only),
        _ => Some(match strategy {
            Strategy::Weighted => weighted(candidates),
            Strategy::LeastBusy => least_busy(candidates),
            Strategy::Latency => two_choices(candidates),
        }),
    }
}

fn weighted<'a, C: Candidate>(candidates: &[&'a C]) -> &'a C {
    let total: u64 = candidates.iter().map(|c| u64::from(c.weight())).sum();
    let mut ticket = fastrand::u64(..total.max(1));
    for candidate in candidates {
        let weight = u64::from(candidate.weight());
        if ticket < weight {
            return candidate;
        }
        ticket -= weight;
    }
    candidates[candidates.len() - 1]
}

/// The fewest in flight; ties broken at random so equal deployments share the load.
fn least_busy<'a, C: Candidate>(candidates: &[&'a C]) -> &'a C {
    let start = fastrand::usize(..candidates.len());
    let rotated = candidates[start..].iter().chain(&candidates[..start]);
    rotated.min_by_key(|c| c.load().in_flight()).copied().unwrap_or(candidates[0])
}

fn two_choices<'a, C: Candidate>(candidates: &[&'a C]) -> &'a C {
    let a = fastrand::usize(..candidates.len());
    let mut b = fastrand::usize(..candidates.len() - 1);
    if b >= a {
        b += 1;
    }
    let (a, b) = (candidates[a], candidates[b]);
    if b.load().cost() < a.load().cost() { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct C(u32, Arc<Load>);

    impl Candidate for C {
        fn weight(&self) -> u32 {
            self.0
        }
        fn load(&self) -> &Load {
            &self.1
        }
    }

    fn counts(strategy: Strategy, candidates: &[&C], n: usize) -> Vec<usize> {
        let mut counts = vec![0; candidates.len()];
        for _ in 0..n {
            let chosen = pick(strategy, candidates).unwrap();
            counts[candidates.iter().position(|c| std::ptr::eq(*c, chosen)).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn weighted_splits_in_proportion() {
        let (a, b) = (C(3, Arc::default()), C(1, Arc::default()));
        let counts = counts(Strategy::Weighted, &[&a, &b], 20_000);
        let share = counts[0] as f64 / 20_000.0;
        assert!((0.73..0.77).contains(&share), "{counts:?}");
    }

    #[test]
    fn least_busy_prefers_the_idle_and_shares_ties() {
        let (a, b) = (C(1, Arc::default()), C(1, Arc::default()));
        let _busy = a.1.start();
        assert_eq!(counts(Strategy::LeastBusy, &[&a, &b], 100), [0, 100]);
        let (c, d) = (C(1, Arc::default()), C(1, Arc::default()));
        let split = counts(Strategy::LeastBusy, &[&c, &d], 2_000);
        assert!(split[0] > 800 && split[1] > 800, "{split:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn latency_prefers_the_fast_and_forgets_a_spike() {
        let (fast, slow) = (C(1, Arc::default()), C(1, Arc::default()));
        fast.1.observe(Duration::from_millis(10));
        slow.1.observe(Duration::from_millis(200));
        assert_eq!(counts(Strategy::Latency, &[&fast, &slow], 200), [200, 0]);
        // Peak: one slow answer takes over at once; then fast answers pull it back down.
        fast.1.observe(Duration::from_millis(500));
        assert_eq!(fast.1.latency(), Duration::from_millis(500));
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(5)).await;
            fast.1.observe(Duration::from_millis(10));
        }
        assert!(fast.1.latency() < Duration::from_millis(15), "{:?}", fast.1.latency());
        // In flight counts: a fast deployment swamped with requests costs more.
        let guards: Vec<_> = (0..50).map(|_| fast.1.start()).collect();
        assert_eq!(counts(Strategy::Latency, &[&fast, &slow], 100), [0, 100]);
        drop(guards);
        assert_eq!(fast.1.in_flight(), 0);
    }
}
