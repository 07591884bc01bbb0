//! Per-deployment health: a three-state breaker on atomics, read lock-free on every request.
//!
//! The algorithm:
//! 1. **Enabled**: every request is admitted. Each failure bumps a consecutive-failure count;
//!    a success resets it to zero.
//! 2. **Disabled**: once the count reaches `failure_threshold`, the deployment is out for
//!    `cooldown` (a `Retry-After` from the provider keeps it out at least that long, whatever
//!    the count). Nothing is admitted.
//! 3. **Probation**: when the cooldown has passed, exactly one request is admitted as a probe
//!    (a compare-and-swap decides which). Its success enables the deployment again; its
//!    failure disables it for another cooldown. A probe whose caller gave up (client
//!    disconnected) settles nothing and frees the slot for the next request.
//!
//! Ejection learns: each consecutive ejection (a probe failing right after one) multiplies the
//! cooldown (cooldown × ejections in a row, capped by `cooldown_max`); a successful probe
//! resets it. An operator may also take a deployment out by hand ([`Health::set_manual_off`]).
//!
//! A request admitted while enabled that finishes after the deployment was disabled still
//! counts (a success resets the count) but never lifts a cooldown: only a probe does that.
//! Transitions are detected with compare-and-swap, so each is logged exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Health of one deployment (one model on one provider).
#[derive(Debug)]
pub struct Health {
    model: Arc<str>,
    provider: Arc<str>,
    /// The policy; atomics so a config reload can change it without replacing the state.
    threshold: AtomicU32,
    cooldown_ms: AtomicU64,
    cooldown_max_ms: AtomicU64,
    epoch: Instant,
    failures: AtomicU32,
    /// Ejections in a row (0 while enabled): the next cooldown is this many cooldowns.
    ejections: AtomicU32,
    /// Taken out by an operator: nothing is admitted until put back.
    manual_off: AtomicBool,
    /// Milliseconds since `epoch` (plus one) until which the deployment is out; 0 = enabled.
    disabled_until: AtomicU64,
    probing: AtomicBool,
}

/// A point-in-time view of a deployment's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Not disabled (or disabled but its cooldown has passed and no probe is in flight).
    pub available: bool,
    /// Whether the deployment is currently disabled (including during its probe).
    pub disabled: bool,
    /// Consecutive failures so far.
    pub consecutive_failures: u32,
    /// Time left before a probe may be admitted; zero when none is pending.
    pub retry_in: Duration,
    /// A probe request is in flight.
    pub probing: bool,
    /// Ejections in a row; the current cooldown is this many `cooldown_seconds`.
    pub ejections: u32,
    /// Taken out by an operator (`/admin/deployments/…/disable`).
    pub manually_disabled: bool,
}

/// The right to make one attempt. Settle it with [`Permit::success`] or [`Permit::failure`];
/// dropping it unsettled (a cancelled attempt, a client error) counts nothing.
#[derive(Debug)]
#[must_use = "a permit must be settled with success() or failure()"]
pub struct Permit {
    health: Arc<Health>,
    probe: bool,
}

impl Health {
    /// Fresh, enabled health for `provider` serving `model`, with a fixed cooldown.
    pub fn new(model: Arc<str>, provider: Arc<str>, threshold: u32, cooldown: Duration) -> Self {
        Self::with_policy(model, provider, threshold, cooldown, cooldown)
    }

    /// Fresh, enabled health whose cooldown grows with ejections in a row up to `cooldown_max`.
    pub fn with_policy(
        model: Arc<str>,
        provider: Arc<str>,
        threshold: u32,
        cooldown: Duration,
        cooldown_max: Duration,
    ) -> Self {
        Self {
            model,
            provider,
            threshold: AtomicU32::new(threshold.max(1)),
            cooldown_ms: AtomicU64::new(millis(cooldown)),
            cooldown_max_ms: AtomicU64::new(millis(cooldown_max.max(cooldown))),
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            manual_off: AtomicBool::new(false),
            disabled_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// Changes the policy (a config reload), keeping the state.
    pub fn set_policy(&self, threshold: u32, cooldown: Duration, cooldown_max: Duration) {
        self.threshold.store(threshold.max(1), Ordering::Release);
        self.cooldown_ms.store(millis(cooldown), Ordering::Release);
        self.cooldown_max_ms.store(millis(cooldown_max.max(cooldown)), Ordering::Release);
    }

    /// Takes the deployment out by hand (`true`) or puts it back (`false`, which also clears
    /// any cooldown: the operator has decided). Returns whether anything changed.
    pub fn set_manual_off(&self, off: bool) -> bool {
        let changed = self.manual_off.swap(off, Ordering::AcqRel) != off;
        if changed && !off {
            self.failures.store(0, Ordering::Release);
            self.ejections.store(0, Ordering::Release);
            self.disabled_until.store(0, Ordering::Release);
        }
        if changed {
            tracing::warn!(model = %self.model, provider = %self.provider, disabled = off, "deployment state set by an operator");
        }
        changed
    }

    /// Whether an operator took the deployment out.
    pub fn manually_disabled(&self) -> bool {
        self.manual_off.load(Ordering::Acquire)
    }

    /// The cooldown for the `ejections`-th ejection in a row.
    fn cooldown_for(&self, ejections: u32) -> Duration {
        let base = self.cooldown_ms.load(Ordering::Acquire);
        let max = self.cooldown_max_ms.load(Ordering::Acquire);
        Duration::from_millis(base.saturating_mul(u64::from(ejections.max(1))).min(max.max(base)))
    }

    /// Asks to make an attempt. `Err` carries how long until a probe may be admitted
    /// (zero when a probe is already in flight; `Duration::MAX` when taken out by hand).
    pub fn admit(self: &Arc<Self>) -> Result<Permit, Duration> {
        if self.manual_off.load(Ordering::Acquire) {
            return Err(Duration::MAX);
        }
        let until = self.disabled_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(Permit { health: Arc::clone(self), probe: false });
        }
        let now = self.now_ms();
        if now < until {
            return Err(Duration::from_millis(until - now));
        }
        if self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(Duration::ZERO);
        }
        // Another probe may have settled between our read and our CAS: look again, so a
        // request never probes a deployment that is already enabled or freshly disabled.
        let until = self.disabled_until.load(Ordering::Acquire);
        let now = self.now_ms();
        if until == 0 || now < until {
            self.probing.store(false, Ordering::Release);
            return match until {
                0 => Ok(Permit { health: Arc::clone(self), probe: false }),
                _ => Err(Duration::from_millis(until - now)),
            };
        }
        Ok(Permit { health: Arc::clone(self), probe: true })
    }

    /// Whether [`Health::admit`] would let a request through now; no clock read while the
    /// deployment is enabled, the common case on the request path.
    pub fn is_available(&self) -> bool {
        if self.manual_off.load(Ordering::Acquire) {
            return false;
        }
        match self.disabled_until.load(Ordering::Acquire) {
            0 => true,
            until => self.now_ms() >= until && !self.probing.load(Ordering::Acquire),
        }
    }

    /// The current state, for readiness and admin views.
    pub fn snapshot(&self) -> Snapshot {
        let until = self.disabled_until.load(Ordering::Acquire);
        let probing = self.probing.load(Ordering::Acquire);
        let now = self.now_ms();
        let retry_in = Duration::from_millis(until.saturating_sub(now));
        let manually_disabled = self.manual_off.load(Ordering::Acquire);
        Snapshot {
            available: !manually_disabled && (until == 0 || (retry_in.is_zero() && !probing)),
            disabled: until != 0 || manually_disabled,
            consecutive_failures: self.failures.load(Ordering::Acquire),
            retry_in: if until == 0 { Duration::ZERO } else { retry_in },
            probing,
            ejections: self.ejections.load(Ordering::Acquire),
            manually_disabled,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn succeeded(&self, probe: bool) {
        self.failures.store(0, Ordering::Release);
        if probe {
            self.ejections.store(0, Ordering::Release);
            // Enable before freeing the probe slot, so no request sees "expired, no probe".
            self.disabled_until.store(0, Ordering::Release);
            self.probing.store(false, Ordering::Release);
            tracing::info!(model = %self.model, provider = %self.provider, "deployment restored: probe succeeded");
        }
    }

    fn failed(&self, probe: bool, retry_after: Option<Duration>) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        let now = self.now_ms();
        let hold = retry_after.unwrap_or_default();
        if probe {
            let ejections = self.ejections.fetch_add(1, Ordering::AcqRel).saturating_add(1);
            let cooldown = self.cooldown_for(ejections).max(hold);
            let until = now.saturating_add(millis(cooldown));
            self.disabled_until.store(until, Ordering::Release);
            self.probing.store(false, Ordering::Release);
            tracing::warn!(
                model = %self.model, provider = %self.provider, consecutive_failures = failures,
                ejections, cooldown_s = cooldown.as_secs_f64(),
                "deployment disabled again: probe failed"
            );
            return;
        }
        if failures >= self.threshold.load(Ordering::Acquire) {
            let cooldown = self.cooldown_for(1).max(hold);
            let until = now.saturating_add(millis(cooldown));
            if self.disabled_until.compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                self.ejections.store(1, Ordering::Release);
                tracing::warn!(
                    model = %self.model, provider = %self.provider, consecutive_failures = failures,
                    cooldown_s = cooldown.as_secs_f64(),
                    "deployment disabled"
                );
            }
        }
        if retry_after.is_some() {
            let until = now.saturating_add(millis(hold));
            let previous = self.disabled_until.fetch_max(until, Ordering::AcqRel);
            if previous == 0 {
                tracing::warn!(
                    model = %self.model, provider = %self.provider,
                    retry_after_s = hold.as_secs_f64(),
                    "deployment paused: provider asked to retry later"
                );
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Permit {
    /// Whether this attempt is the probe of a disabled deployment.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The attempt succeeded.
    pub fn success(self) {
        self.health.succeeded(self.probe);
        self.forget();
    }

    /// The attempt failed through the provider's fault; `retry_after` is the provider's
    /// request to stay away (429/503 `Retry-After`).
    pub fn failure(self, retry_after: Option<Duration>) {
        self.health.failed(self.probe, retry_after);
        self.forget();
    }

    fn forget(mut self) {
        self.probe = false;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe {
            // Unsettled probe: let the next request probe instead.
            self.health.probing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(threshold: u32, cooldown_s: u64) -> Arc<Health> {
        Arc::new(Health::new("m".into(), "p".into(), threshold, Duration::from_secs(cooldown_s)))
    }

    #[tokio::test(start_paused = true)]
    async fn threshold_failures_disable_for_the_cooldown_then_one_probe() {
        let h = health(3, 600);
        h.admit().unwrap().failure(None);
        h.admit().unwrap().failure(None);
        assert!(h.snapshot().available);
        h.admit().unwrap().failure(None);
        let s = h.snapshot();
        assert!(!s.available && s.disabled);
        assert_eq!(s.consecutive_failures, 3);
        assert_eq!(h.admit().unwrap_err(), Duration::from_secs(600));

        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(h.admit().is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(h.snapshot().available);
        let probe = h.admit().unwrap();
        assert!(probe.is_probe());
        assert_eq!(h.admit().unwrap_err(), Duration::ZERO, "only one probe at a time");
        probe.success();
        let s = h.snapshot();
        assert!(s.available && !s.disabled);
        assert_eq!(s.consecutive_failures, 0);
        assert!(!h.admit().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_disables_again_and_a_success_resets_the_count() {
        let h = health(2, 10);
        h.admit().unwrap().failure(None);
        h.admit().unwrap().success();
        assert_eq!(h.snapshot().consecutive_failures, 0);
        h.admit().unwrap().failure(None);
        h.admit().unwrap().failure(None);
        tokio::time::advance(Duration::from_secs(10)).await;
        h.admit().unwrap().failure(None);
        assert_eq!(h.admit().unwrap_err(), Duration::from_secs(10));
        assert_eq!(h.snapshot().consecutive_failures, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_the_slot() {
        let h = health(1, 5);
        h.admit().unwrap().failure(None);
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(h.admit().unwrap());
        let probe = h.admit().unwrap();
        assert!(probe.is_probe());
        probe.success();
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_keeps_the_deployment_out_at_least_that_long() {
        let h = health(3, 2);
        // One 429 with Retry-After: 30 is enough, below the threshold.
        h.admit().unwrap().failure(Some(Duration::from_secs(30)));
        assert_eq!(h.admit().unwrap_err(), Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(30)).await;
        let probe = h.admit().unwrap();
        assert!(probe.is_probe());
        // A Retry-After longer than the cooldown wins over it.
        probe.failure(Some(Duration::from_secs(45)));
        assert_eq!(h.admit().unwrap_err(), Duration::from_secs(45));
    }

    #[tokio::test(start_paused = true)]
    async fn stale_success_does_not_lift_a_cooldown() {
        let h = health(1, 60);
        let slow = h.admit().unwrap();
        h.admit().unwrap().failure(None);
        slow.success();
        let s = h.snapshot();
        assert!(s.disabled && !s.available);
        assert_eq!(s.consecutive_failures, 0);
    }

    #[test]
    fn concurrent_failures_count_exactly_and_disable_once() {
        let h = Arc::new(Health::new("m".into(), "p".into(), 50, Duration::from_secs(600)));
        // 200 requests admitted while healthy, all failing at once on 8 threads.
        let mut permits: Vec<_> = (0..200).map(|_| h.admit().unwrap()).collect();
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let batch: Vec<_> = permits.drain(..25).collect();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    batch.into_iter().for_each(|p| p.failure(None));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.consecutive_failures, 200);
        assert!(s.disabled && !s.available);
        let retry_in = h.admit().unwrap_err();
        assert!(retry_in > Duration::from_secs(590) && retry_in <= Duration::from_secs(600), "{retry_in:?}");
    }

    #[test]
    fn exactly_one_probe_among_concurrent_admits() {
        let h = Arc::new(Health::new("m".into(), "p".into(), 1, Duration::ZERO));
        h.admit().unwrap().failure(None);
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (h, barrier) = (Arc::clone(&h), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let got: Vec<_> = (0..100).filter_map(|_| h.admit().ok()).collect();
                    let n = got.len();
                    std::mem::forget(got); // hold every probe: nobody may settle yet
                    n
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(admitted, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn cooldowns_grow_with_ejections_in_a_row_up_to_the_cap() {
        let h = Arc::new(Health::with_policy(
            "m".into(),
            "p".into(),
            1,
            Duration::from_secs(10),
            Duration::from_secs(25),
        ));
        h.admit().unwrap().failure(None);
        assert_eq!(h.admit().unwrap_err(), Duration::from_secs(10));
        for expected in [20, 25, 25] {
            tokio::time::advance(Duration::from_secs(30)).await;
            h.admit().unwrap().failure(None);
            assert_eq!(h.admit().unwrap_err(), Duration::from_secs(expected));
        }
        assert_eq!(h.snapshot().ejections, 4);
        tokio::time::advance(Duration::from_secs(30)).await;
        h.admit().unwrap().success();
        assert_eq!(h.snapshot().ejections, 0);
        h.admit().unwrap().failure(None);
        assert_eq!(h.admit().unwrap_err(), Duration::from_secs(10), "a success starts over");
    }

    #[tokio::test(start_paused = true)]
    async fn an_operator_takes_a_deployment_out_and_back() {
        let h = Arc::new(Health::new("m".into(), "p".into(), 1, Duration::from_secs(600)));
        assert!(h.set_manual_off(true));
        assert!(!h.set_manual_off(true), "no change, no log");
        assert_eq!(h.admit().unwrap_err(), Duration::MAX);
        let s = h.snapshot();
        assert!(s.manually_disabled && s.disabled && !s.available && !h.is_available());
        assert!(h.set_manual_off(false));
        h.admit().unwrap().failure(None);
        assert!(h.admit().is_err());
        h.set_manual_off(true);
        h.set_manual_off(false);
        assert!(h.admit().is_ok(), "putting it back clears the cooldown");
    }
}
