//! Per-deployment health: a breaker for failures and a separate pause for rate limits, on
//! atomics, read lock-free on every request.
//!
//! Two things can keep a deployment out, and they are kept apart because they mean different
//! things (see ARCHITECTURE.md for the diagram):
//!
//! * A **pause** is the provider saying "not now": a 429, or a 503/529 carrying `Retry-After`
//!   or a rate-limit reset header. The deployment is left alone for what the provider asked,
//!   capped by `max_pause` (default 60 s), or a short default pause when it did not say. A pause
//!   is not sickness: it never counts toward the failure threshold, never turns into a
//!   cooldown, ends by itself without a probe, and ends early when a request succeeds or a
//!   stream commits (the provider is serving: a random 429 under load must not take a
//!   deployment out for everyone); a long stream that ends long after the limit hit does not
//!   end it.
//! * The **breaker** counts real failures (5xx without `Retry-After`, timeouts, connect errors,
//!   bad bodies, 401/403, 404):
//!   1. **Enabled**: every request is admitted. Each failure bumps a consecutive-failure
//!      count; a success resets it to zero.
//!   2. **Ejected**: once the count reaches `failure_threshold`, the deployment is out for a
//!      cooldown that grows with ejections in a row (cooldown × ejections, capped by
//!      `cooldown_max`). Nothing is admitted, except in panic mode (below).
//!   3. **Probation**: when the cooldown has passed, exactly one request is admitted as a
//!      probe (a compare-and-swap decides which). Its success enables the deployment and
//!      resets the ejection count; its failure ejects it again for a longer cooldown; a rate
//!      limit (or a probe whose caller gave up) settles nothing and frees the slot.
//!
//! **Panic mode**: when every deployment of a model is ejected, the router still tries them
//! ([`Health::admit_panic`]) rather than refuse every request for a whole cooldown, the way
//! Envoy's panic threshold does. A panic attempt that succeeds ends the ejection; one that
//! fails changes nothing more (the deployment is already out).
//!
//! A request admitted while enabled that finishes after the deployment was ejected still
//! counts (a success resets the count) but never lifts an ejection: only a probe or a panic
//! attempt does. Transitions are detected with compare-and-swap, so each is logged once. An
//! operator may also take a deployment out by hand ([`Health::set_manual_off`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The pause after a rate limit that did not say how long to wait.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// Health of one deployment (one model on one provider).
#[derive(Debug)]
pub struct Health {
    model: Arc<str>,
    provider: Arc<str>,
    /// The policy; atomics so a config reload can change it without replacing the state.
    threshold: AtomicU32,
    cooldown_ms: AtomicU64,
    cooldown_max_ms: AtomicU64,
    max_pause_ms: AtomicU64,
    epoch: Instant,
    failures: AtomicU32,
    /// Ejections in a row (0 while enabled): the next cooldown is this many cooldowns.
    ejections: AtomicU32,
    /// Taken out by an operator: nothing is admitted until put back.
    manual_off: AtomicBool,
    /// Milliseconds since `epoch` (plus one) until which the deployment is ejected; 0 = not.
    disabled_until: AtomicU64,
    probing: AtomicBool,
    /// Milliseconds since `epoch` (plus one) until which the deployment is paused; 0 = not.
    paused_until: AtomicU64,
}

/// Where a deployment stands, as admin views and metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Admitting requests.
    Available,
    /// Paused after a rate limit; admits again by itself.
    Paused,
    /// Ejected after failures; admits one probe when its cooldown ends.
    CoolingDown,
    /// Ejected, its probe in flight.
    Probing,
    /// Taken out by an operator.
    DisabledByOperator,
}

impl State {
    /// Every state, for metrics.
    pub const ALL: [State; 5] =
        [State::Available, State::Paused, State::CoolingDown, State::Probing, State::DisabledByOperator];

    /// Its name in metrics and JSON (one of `metrics::DEPLOYMENT_STATES`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Paused => "paused",
            Self::CoolingDown => "cooling_down",
            Self::Probing => "probing",
            Self::DisabledByOperator => "disabled_by_operator",
        }
    }
}

/// A point-in-time view of a deployment's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// Where it stands.
    pub state: State,
    /// [`Health::admit`] would let a request through now.
    pub available: bool,
    /// Ejected (including during its probe) or taken out by hand.
    pub disabled: bool,
    /// Consecutive failures so far.
    pub consecutive_failures: u32,
    /// Time left before a probe may be admitted; zero when none is pending.
    pub retry_in: Duration,
    /// Time left in a rate-limit pause; zero when not paused.
    pub paused_for: Duration,
    /// A probe request is in flight.
    pub probing: bool,
    /// Ejections in a row; the current cooldown is this many `cooldown_seconds`.
    pub ejections: u32,
    /// Taken out by an operator (`/admin/deployments/…/disable`).
    pub manually_disabled: bool,
}

/// Why [`Health::admit`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Taken out by an operator.
    Operator,
    /// Paused by a rate limit for this long still.
    Paused(Duration),
    /// Ejected; a probe may be let through after this long.
    CoolingDown(Duration),
    /// Ejected, and another request is probing it.
    Probing,
}

/// What kind of attempt a [`Permit`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Probe,
    Panic,
}

/// The right to make one attempt. Settle it with [`Permit::success`], [`Permit::failure`] or
/// [`Permit::rate_limited`]; dropping it unsettled (a cancelled attempt, a client error)
/// counts nothing.
#[derive(Debug)]
#[must_use = "a permit must be settled with success(), failure() or rate_limited()"]
pub struct Permit {
    health: Arc<Health>,
    kind: Kind,
}

impl Health {
    /// Fresh, enabled health for `provider` serving `model`, with a fixed cooldown.
    pub fn new(model: Arc<str>, provider: Arc<str>, threshold: u32, cooldown: Duration) -> Self {
        Self::with_policy(model, provider, threshold, cooldown, cooldown)
    }

    /// Fresh, enabled health whose cooldown grows with ejections in a row up to `cooldown_max`;
    /// pauses are capped at 60 s until [`Health::set_max_pause`] says otherwise.
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
            max_pause_ms: AtomicU64::new(60_000),
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            manual_off: AtomicBool::new(false),
            disabled_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            paused_until: AtomicU64::new(0),
        }
    }

    /// Changes the policy (a config reload), keeping the state.
    pub fn set_policy(&self, threshold: u32, cooldown: Duration, cooldown_max: Duration) {
        self.threshold.store(threshold.max(1), Ordering::Release);
        self.cooldown_ms.store(millis(cooldown), Ordering::Release);
        self.cooldown_max_ms.store(millis(cooldown_max.max(cooldown)), Ordering::Release);
    }

    /// Caps how long one rate limit may pause the deployment (`router.max_pause_seconds`).
    pub fn set_max_pause(&self, max_pause: Duration) {
        self.max_pause_ms.store(millis(max_pause), Ordering::Release);
    }

    /// Takes the deployment out by hand (`true`) or puts it back (`false`, which also clears
    /// any cooldown and pause: the operator has decided). Returns whether anything changed.
    pub fn set_manual_off(&self, off: bool) -> bool {
        let changed = self.manual_off.swap(off, Ordering::AcqRel) != off;
        if changed && !off {
            self.failures.store(0, Ordering::Release);
            self.ejections.store(0, Ordering::Release);
            self.disabled_until.store(0, Ordering::Release);
            self.paused_until.store(0, Ordering::Release);
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

    /// Asks to make an attempt.
    pub fn admit(self: &Arc<Self>) -> Result<Permit, Refusal> {
        if self.manual_off.load(Ordering::Acquire) {
            return Err(Refusal::Operator);
        }
        let paused = self.paused_until.load(Ordering::Acquire);
        let until = self.disabled_until.load(Ordering::Acquire);
        if paused == 0 && until == 0 {
            return Ok(self.permit(Kind::Normal));
        }
        let now = self.now_ms();
        if now < paused {
            return Err(Refusal::Paused(Duration::from_millis(paused - now)));
        }
        if paused != 0 {
            // Over: forget it, so the next requests read no clock (a newer pause stays).
            let _ = self.paused_until.compare_exchange(paused, 0, Ordering::AcqRel, Ordering::Acquire);
        }
        if until == 0 {
            return Ok(self.permit(Kind::Normal));
        }
        if now < until {
            return Err(Refusal::CoolingDown(Duration::from_millis(until - now)));
        }
        if self.probing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(Refusal::Probing);
        }
        // Another probe may have settled between our read and our CAS: look again, so a
        // request never probes a deployment that is already enabled or freshly ejected.
        let until = self.disabled_until.load(Ordering::Acquire);
        let now = self.now_ms();
        if until == 0 || now < until {
            self.probing.store(false, Ordering::Release);
            return match until {
                0 => Ok(self.permit(Kind::Normal)),
                _ => Err(Refusal::CoolingDown(Duration::from_millis(until - now))),
            };
        }
        Ok(self.permit(Kind::Probe))
    }

    /// Admits an attempt on an ejected deployment when every deployment of its model is
    /// ejected (panic mode). Refuses one taken out by an operator or paused.
    pub fn admit_panic(self: &Arc<Self>) -> Result<Permit, Refusal> {
        match self.admit() {
            Err(Refusal::CoolingDown(_) | Refusal::Probing) => Ok(self.permit(Kind::Panic)),
            other => other,
        }
    }

    fn permit(self: &Arc<Self>, kind: Kind) -> Permit {
        Permit { health: Arc::clone(self), kind }
    }

    /// Whether [`Health::admit`] would let a request through now; no clock read while the
    /// deployment is neither paused nor ejected, the common case on the request path.
    pub fn is_available(&self) -> bool {
        if self.manual_off.load(Ordering::Acquire) {
            return false;
        }
        let paused = self.paused_until.load(Ordering::Acquire);
        let until = self.disabled_until.load(Ordering::Acquire);
        if paused == 0 && until == 0 {
            return true;
        }
        let now = self.now_ms();
        now >= paused && (until == 0 || (now >= until && !self.probing.load(Ordering::Acquire)))
    }

    /// The current state, for routing decisions, readiness and admin views.
    pub fn snapshot(&self) -> Snapshot {
        let until = self.disabled_until.load(Ordering::Acquire);
        let paused = self.paused_until.load(Ordering::Acquire);
        let probing = self.probing.load(Ordering::Acquire);
        let now = self.now_ms();
        let retry_in =
            if until == 0 { Duration::ZERO } else { Duration::from_millis(until.saturating_sub(now)) };
        let paused_for = Duration::from_millis(paused.saturating_sub(now));
        let manually_disabled = self.manual_off.load(Ordering::Acquire);
        let state = if manually_disabled {
            State::DisabledByOperator
        } else if until != 0 && probing {
            State::Probing
        } else if until != 0 && !retry_in.is_zero() {
            State::CoolingDown
        } else if !paused_for.is_zero() {
            State::Paused
        } else {
            State::Available
        };
        Snapshot {
            state,
            available: state == State::Available,
            disabled: until != 0 || manually_disabled,
            consecutive_failures: self.failures.load(Ordering::Acquire),
            retry_in,
            paused_for,
            probing,
            ejections: self.ejections.load(Ordering::Acquire),
            manually_disabled,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// The provider is serving: a pause ends early. Compare-and-swap, so a newer pause set
    /// meanwhile stays.
    fn serving(&self) {
        let paused = self.paused_until.load(Ordering::Acquire);
        if paused != 0 {
            let _ = self.paused_until.compare_exchange(paused, 0, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn succeeded(&self, kind: Kind, ends_pause: bool) {
        self.failures.store(0, Ordering::Release);
        if ends_pause {
            self.serving();
        }
        if kind != Kind::Normal && self.disabled_until.load(Ordering::Acquire) != 0 {
            self.ejections.store(0, Ordering::Release);
            // Enable before freeing the probe slot, so no request sees "expired, no probe".
            self.disabled_until.store(0, Ordering::Release);
            let how =
                if kind == Kind::Probe { "probe succeeded" } else { "a request succeeded in panic mode" };
            tracing::info!(model = %self.model, provider = %self.provider, "deployment restored: {how}");
        }
        if kind == Kind::Probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    fn failed(&self, kind: Kind) {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        let now = self.now_ms();
        match kind {
            // Already out: panic traffic must not stretch the cooldown request by request.
            Kind::Panic => {}
            Kind::Probe => {
                let ejections = self.ejections.fetch_add(1, Ordering::AcqRel).saturating_add(1);
                let cooldown = self.cooldown_for(ejections);
                self.disabled_until.store(now.saturating_add(millis(cooldown)), Ordering::Release);
                self.probing.store(false, Ordering::Release);
                tracing::warn!(
                    model = %self.model, provider = %self.provider, consecutive_failures = failures,
                    ejections, cooldown_s = cooldown.as_secs_f64(),
                    "deployment ejected again: probe failed"
                );
            }
            Kind::Normal if failures >= self.threshold.load(Ordering::Acquire) => {
                let cooldown = self.cooldown_for(1);
                let until = now.saturating_add(millis(cooldown));
                if self.disabled_until.compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire).is_ok()
                {
                    self.ejections.store(1, Ordering::Release);
                    tracing::warn!(
                        model = %self.model, provider = %self.provider, consecutive_failures = failures,
                        cooldown_s = cooldown.as_secs_f64(),
                        "deployment ejected"
                    );
                }
            }
            Kind::Normal => {}
        }
    }

    /// Pauses for what the provider asked (or [`DEFAULT_PAUSE`]), capped by `max_pause`;
    /// returns the pause applied.
    fn rate_limited(&self, kind: Kind, asked: Option<Duration>) -> Duration {
        let max = Duration::from_millis(self.max_pause_ms.load(Ordering::Acquire));
        let pause = asked.unwrap_or(DEFAULT_PAUSE).min(max);
        let now = self.now_ms();
        let previous = self.paused_until.fetch_max(now.saturating_add(millis(pause)), Ordering::AcqRel);
        if previous < now && !pause.is_zero() {
            tracing::info!(
                model = %self.model, provider = %self.provider, pause_s = pause.as_secs_f64(),
                asked_s = asked.map(|a| a.as_secs_f64()),
                "deployment paused: rate limited by the provider"
            );
        }
        if kind == Kind::Probe {
            // Not a verdict on health: let the next request probe once the pause is over.
            self.probing.store(false, Ordering::Release);
        }
        pause
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Permit {
    /// Whether this attempt is the probe of an ejected deployment.
    pub fn is_probe(&self) -> bool {
        self.kind == Kind::Probe
    }

    /// Whether this attempt was let through in panic mode.
    pub fn is_panic(&self) -> bool {
        self.kind == Kind::Panic
    }

    /// The attempt succeeded: the provider serves, so a pause ends early.
    pub fn success(self) {
        self.health.succeeded(self.kind, true);
        self.forget();
    }

    /// A stream committed (its first content arrived): the provider serves now, so a pause
    /// ends early. Health is settled at the stream's end ([`Permit::stream_success`]).
    pub fn serving(&self) {
        self.health.serving();
    }

    /// A stream ended well. Unlike [`Permit::success`] it leaves a pause alone: a stream can
    /// end long after a rate limit hit, and says nothing about the limit now (its commit, when
    /// it was timely, already did).
    pub fn stream_success(self) {
        self.health.succeeded(self.kind, false);
        self.forget();
    }

    /// The attempt failed through the provider's fault.
    pub fn failure(self) {
        self.health.failed(self.kind);
        self.forget();
    }

    /// The provider is rate limiting: pause for `asked` (its `Retry-After`), capped. Returns
    /// the pause applied.
    pub fn rate_limited(self, asked: Option<Duration>) -> Duration {
        let pause = self.health.rate_limited(self.kind, asked);
        self.forget();
        pause
    }

    fn forget(mut self) {
        self.kind = Kind::Normal;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.kind == Kind::Probe {
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

    #[test]
    fn every_state_has_its_metric_label() {
        let labels: Vec<_> = State::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels, crate::metrics::DEPLOYMENT_STATES);
    }

    fn cooling(d: u64) -> Refusal {
        Refusal::CoolingDown(Duration::from_secs(d))
    }

    #[tokio::test(start_paused = true)]
    async fn threshold_failures_eject_for_the_cooldown_then_one_probe() {
        let h = health(3, 600);
        h.admit().unwrap().failure();
        h.admit().unwrap().failure();
        assert!(h.snapshot().available);
        h.admit().unwrap().failure();
        let s = h.snapshot();
        assert!(!s.available && s.disabled);
        assert_eq!((s.state, s.consecutive_failures), (State::CoolingDown, 3));
        assert_eq!(h.admit().unwrap_err(), cooling(600));

        tokio::time::advance(Duration::from_secs(599)).await;
        assert!(h.admit().is_err());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(h.snapshot().available);
        let probe = h.admit().unwrap();
        assert!(probe.is_probe());
        assert_eq!(h.admit().unwrap_err(), Refusal::Probing, "only one probe at a time");
        assert_eq!(h.snapshot().state, State::Probing);
        probe.success();
        let s = h.snapshot();
        assert!(s.available && !s.disabled);
        assert_eq!(s.consecutive_failures, 0);
        assert!(!h.admit().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_ejects_again_and_a_success_resets_the_count() {
        let h = health(2, 10);
        h.admit().unwrap().failure();
        h.admit().unwrap().success();
        assert_eq!(h.snapshot().consecutive_failures, 0);
        h.admit().unwrap().failure();
        h.admit().unwrap().failure();
        tokio::time::advance(Duration::from_secs(10)).await;
        h.admit().unwrap().failure();
        assert_eq!(
            h.admit().unwrap_err(),
            cooling(10),
            "a fixed cooldown unless cooldown_max says otherwise"
        );
        assert_eq!(h.snapshot().ejections, 2);
        assert_eq!(h.snapshot().consecutive_failures, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_the_slot() {
        let h = health(1, 5);
        h.admit().unwrap().failure();
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(h.admit().unwrap());
        let probe = h.admit().unwrap();
        assert!(probe.is_probe());
        probe.success();
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_pauses_without_counting_and_ends_by_itself() {
        let h = health(3, 600);
        // Rate limits in a row, well past the threshold: paused each time, never ejected.
        for _ in 0..5 {
            let pause = h.admit().unwrap().rate_limited(Some(Duration::from_secs(2)));
            assert_eq!(pause, Duration::from_secs(2));
            let s = h.snapshot();
            assert_eq!((s.state, s.consecutive_failures, s.ejections), (State::Paused, 0, 0));
            assert_eq!(h.admit().unwrap_err(), Refusal::Paused(Duration::from_secs(2)));
            assert!(!h.is_available());
            tokio::time::advance(Duration::from_secs(2)).await;
            // Over by itself: every request is admitted again, none of them a probe.
            assert!(h.is_available());
            let (a, b) = (h.admit().unwrap(), h.admit().unwrap());
            assert!(!a.is_probe() && !b.is_probe());
            drop((a, b));
        }
        // Failures still count as before, and a pause does not reset them.
        h.admit().unwrap().failure();
        h.admit().unwrap().rate_limited(None);
        assert_eq!(h.snapshot().consecutive_failures, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_are_capped_and_a_success_ends_one_early() {
        let h = health(3, 600);
        h.set_max_pause(Duration::from_secs(60));
        let stream = h.admit().unwrap();
        let request = h.admit().unwrap();
        // Retry-After: 1000000 (11 days) is capped.
        let limited = h.admit().unwrap();
        assert_eq!(limited.rate_limited(Some(Duration::from_secs(1_000_000))), Duration::from_secs(60));
        assert_eq!(h.admit().unwrap_err(), Refusal::Paused(Duration::from_secs(60)));
        // A stream admitted long before, ending now, says nothing about the limit.
        stream.stream_success();
        assert_eq!(h.admit().unwrap_err(), Refusal::Paused(Duration::from_secs(60)));
        // A request served now does: the provider serves, the pause is over.
        request.success();
        assert_eq!(h.snapshot().state, State::Available);
        // So does a stream's commit.
        let committed = h.admit().unwrap();
        h.admit().unwrap().rate_limited(None);
        assert!(h.admit().is_err());
        committed.serving();
        assert!(h.admit().is_ok());
        committed.stream_success();
        assert_eq!(h.admit().unwrap().rate_limited(None), DEFAULT_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_probe_settles_nothing() {
        let h = health(1, 10);
        h.admit().unwrap().failure();
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = h.admit().unwrap();
        assert!(probe.is_probe());
        probe.rate_limited(Some(Duration::from_secs(3)));
        let s = h.snapshot();
        assert_eq!((s.state, s.ejections), (State::Paused, 1), "not ejected again, not restored");
        tokio::time::advance(Duration::from_secs(3)).await;
        let probe = h.admit().unwrap();
        assert!(probe.is_probe(), "the next request probes once the pause is over");
        probe.success();
        assert_eq!(h.snapshot().state, State::Available);
    }

    #[tokio::test(start_paused = true)]
    async fn panic_attempts_reach_an_ejected_deployment_and_a_success_restores_it() {
        let h = health(1, 600);
        assert!(!h.admit_panic().unwrap().is_panic(), "an available deployment is admitted normally");
        h.admit().unwrap().failure();
        let panic = h.admit_panic().unwrap();
        assert!(panic.is_panic());
        panic.failure();
        assert_eq!(h.admit().unwrap_err(), cooling(600), "a panic failure does not stretch the cooldown");
        assert_eq!(h.snapshot().ejections, 1);
        h.admit_panic().unwrap().success();
        assert_eq!(h.snapshot().state, State::Available);
        h.set_manual_off(true);
        assert_eq!(h.admit_panic().unwrap_err(), Refusal::Operator, "an operator's word holds in panic");
    }

    #[tokio::test(start_paused = true)]
    async fn stale_success_does_not_lift_an_ejection() {
        let h = health(1, 60);
        let slow = h.admit().unwrap();
        h.admit().unwrap().failure();
        slow.success();
        let s = h.snapshot();
        assert!(s.disabled && !s.available);
        assert_eq!(s.consecutive_failures, 0);
    }

    #[test]
    fn concurrent_failures_count_exactly_and_eject_once() {
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
                    batch.into_iter().for_each(Permit::failure);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.consecutive_failures, 200);
        assert!(s.disabled && !s.available);
        let Err(Refusal::CoolingDown(retry_in)) = h.admit() else { panic!("ejected") };
        assert!(retry_in > Duration::from_secs(590) && retry_in <= Duration::from_secs(600), "{retry_in:?}");
    }

    #[test]
    fn exactly_one_probe_among_concurrent_admits() {
        let h = Arc::new(Health::new("m".into(), "p".into(), 1, Duration::ZERO));
        h.admit().unwrap().failure();
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
        h.admit().unwrap().failure();
        assert_eq!(h.admit().unwrap_err(), cooling(10));
        for expected in [20, 25, 25] {
            tokio::time::advance(Duration::from_secs(30)).await;
            h.admit().unwrap().failure();
            assert_eq!(h.admit().unwrap_err(), cooling(expected));
        }
        assert_eq!(h.snapshot().ejections, 4);
        tokio::time::advance(Duration::from_secs(30)).await;
        h.admit().unwrap().success();
        assert_eq!(h.snapshot().ejections, 0);
        h.admit().unwrap().failure();
        assert_eq!(h.admit().unwrap_err(), cooling(10), "a success starts over");
    }

    #[tokio::test(start_paused = true)]
    async fn an_operator_takes_a_deployment_out_and_back() {
        let h = Arc::new(Health::new("m".into(), "p".into(), 1, Duration::from_secs(600)));
        assert!(h.set_manual_off(true));
        assert!(!h.set_manual_off(true), "no change, no log");
        assert_eq!(h.admit().unwrap_err(), Refusal::Operator);
        let s = h.snapshot();
        assert!(s.manually_disabled && s.disabled && !s.available && !h.is_available());
        assert!(h.set_manual_off(false));
        h.admit().unwrap().failure();
        assert!(h.admit().is_err());
        h.set_manual_off(true);
        h.set_manual_off(false);
        assert!(h.admit().is_ok(), "putting it back clears the cooldown");
    }
}
