//! Per-client limits: each virtual key and each team is a subject with its own requests per
//! minute and tokens per minute ([`bucket`]), requests in flight, and budget ([`budget`]).
//! A request is admitted only when every subject it belongs to (its key and its team) admits
//! it, so a key is held to the stricter of its own limits and its team's.
//!
//! State lives in this process (shared through Redis is the next issue's); subjects idle for
//! an hour are forgotten, which loses nothing: a bucket left alone that long is full again,
//! and spend is read back from the store.

pub mod bucket;
pub mod budget;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bucket::{Bucket, Reading};
use budget::{Exceeded, Reservation, Spend, Verdict};

use crate::accounting::Money;
use crate::store::Limits;

/// A subject's limits and their state.
#[derive(Debug)]
pub struct Subject {
    /// `key:ID` or `team:ID`.
    pub name: Arc<str>,
    /// The limits this state was built for: a changed key gets a fresh state.
    pub limits: Limits,
    rpm: Option<Bucket>,
    tpm: Option<Bucket>,
    in_flight: AtomicU32,
    spend: Option<Spend>,
}

impl Subject {
    /// State for `limits`, with `spent` already spent in the budget's current period.
    pub fn new(name: Arc<str>, limits: Limits, spent: Money, now: i64) -> Self {
        Self {
            rpm: limits.rpm.map(|n| Bucket::new(n.into())),
            tpm: limits.tpm.map(Bucket::new),
            in_flight: AtomicU32::new(0),
            spend: limits.budget.map(|b| Spend::new(b.period, spent, now)),
            name,
            limits,
        }
    }

    /// Spent and reserved in the budget's current period (zero without a budget).
    pub fn spent(&self, now: i64) -> Money {
        match (&self.spend, &self.limits.budget) {
            (Some(spend), Some(budget)) => spend.spent(budget.period, now),
            _ => Money::ZERO,
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// Which limit refused a request, and of whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Requests per minute: retry after the wait.
    Requests {
        /// `key:ID` or `team:ID`.
        subject: Arc<str>,
        /// The limit.
        limit: u64,
        /// Until one request's worth is back.
        retry_after: Duration,
    },
    /// Tokens per minute.
    Tokens {
        /// `key:ID` or `team:ID`.
        subject: Arc<str>,
        /// The limit.
        limit: u64,
        /// Until the estimate fits.
        retry_after: Duration,
    },
    /// Requests in flight.
    Parallel {
        /// `key:ID` or `team:ID`.
        subject: Arc<str>,
        /// The limit.
        limit: u32,
    },
    /// A hard budget is spent.
    Budget {
        /// `key:ID` or `team:ID`.
        subject: Arc<str>,
        /// Limit, spend, when it resets.
        exceeded: Exceeded,
    },
}

impl Refusal {
    /// Which limit: `requests`, `tokens`, `parallel` or `budget` (logs and metrics).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Requests { .. } => "requests",
            Self::Tokens { .. } => "tokens",
            Self::Parallel { .. } => "parallel",
            Self::Budget { .. } => "budget",
        }
    }
}

/// What a request asks of its subjects at admission.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    /// Estimated tokens, input and output.
    pub tokens: u64,
    /// Estimated cost.
    pub cost: Money,
    /// Unix seconds.
    pub now: i64,
}

/// The admitted request's hold on each subject, settled once with the real usage and cost;
/// dropped unsettled (a panic, a cancelled task), it frees the in-flight slots and keeps the
/// estimates as spent.
#[derive(Debug, Default)]
pub struct Admission {
    holds: Vec<Hold>,
    /// Per subject whose soft budget is passed: the exceeded limit, and whether it is the
    /// first warning this period.
    pub warnings: Vec<(Arc<str>, Exceeded, bool)>,
}

#[derive(Debug)]
struct Hold {
    subject: Arc<Subject>,
    /// Whether a request was taken from `rpm`.
    request: bool,
    /// Tokens taken from `tpm`.
    tokens: u64,
    reservation: Option<Reservation>,
    /// Whether an in-flight slot is held.
    parallel: bool,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.parallel {
            self.subject.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        // Never settled (a panic, a cancelled task): the estimate counts as spent, so
        // nothing stays reserved for ever and nothing is spent unaccounted.
        if let (Some(spend), Some(budget), Some(reservation)) =
            (&self.subject.spend, &self.subject.limits.budget, self.reservation.take())
        {
            spend.settle(budget, reservation, reservation.0, crate::accounting::period::now());
        }
    }
}

impl Hold {
    /// Gives back what this hold took: the request was refused by a later limit.
    fn undo(mut self) {
        let subject = &self.subject;
        if let (true, Some(rpm)) = (self.request, &subject.rpm) {
            rpm.give_back(1);
        }
        if let Some(tpm) = &subject.tpm {
            tpm.give_back(self.tokens as i64);
        }
        if let (Some(spend), Some(reservation)) = (&subject.spend, self.reservation.take()) {
            spend.release(reservation);
        }
    }
}

/// Admits a request against every subject, or refuses it taking nothing from any.
pub fn admit(subjects: &[Arc<Subject>], ask: Ask) -> Result<Admission, Refusal> {
    let mut admission = Admission::default();
    for subject in subjects {
        let mut hold = Hold {
            subject: Arc::clone(subject),
            request: false,
            tokens: 0,
            reservation: None,
            parallel: false,
        };
        match take(&mut hold, ask) {
            Ok(warning) => {
                admission.holds.push(hold);
                admission.warnings.extend(warning.map(|(e, first)| (Arc::clone(&subject.name), e, first)));
            }
            Err(refusal) => {
                hold.undo();
                admission.holds.drain(..).for_each(Hold::undo);
                return Err(refusal);
            }
        }
    }
    Ok(admission)
}

/// Takes from each of a subject's limits in turn, recording in `hold` what it took.
fn take(hold: &mut Hold, ask: Ask) -> Result<Option<(Exceeded, bool)>, Refusal> {
    let subject = Arc::clone(&hold.subject);
    let name = || Arc::clone(&subject.name);
    let mut warning = None;
    if let (Some(spend), Some(budget)) = (&subject.spend, &subject.limits.budget) {
        let (held, verdict) = spend
            .reserve(budget, ask.cost, ask.now)
            .map_err(|exceeded| Refusal::Budget { subject: name(), exceeded })?;
        hold.reservation = Some(held);
        if let Verdict::Warn { exceeded, first } = verdict {
            warning = Some((exceeded, first));
        }
    }
    if let Some(limit) = subject.limits.max_parallel {
        let admitted = subject
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .is_ok();
        if !admitted {
            return Err(Refusal::Parallel { subject: name(), limit });
        }
        hold.parallel = true;
    }
    if let Some(rpm) = &subject.rpm {
        rpm.take(1).map_err(|retry_after| Refusal::Requests {
            subject: name(),
            limit: rpm.capacity(),
            retry_after,
        })?;
        hold.request = true;
    }
    if let Some(tpm) = &subject.tpm {
        tpm.take(ask.tokens).map_err(|retry_after| Refusal::Tokens {
            subject: name(),
            limit: tpm.capacity(),
            retry_after,
        })?;
        hold.tokens = ask.tokens;
    }
    Ok(warning)
}

impl Admission {
    /// Settles every hold with what the request really used and cost.
    pub fn settle(mut self, tokens: u64, cost: Money, now: i64) {
        for mut hold in self.holds.drain(..) {
            if let Some(tpm) = &hold.subject.tpm {
                tpm.give_back(hold.tokens as i64 - tokens as i64);
            }
            if let (Some(spend), Some(budget), Some(reservation)) =
                (&hold.subject.spend, &hold.subject.limits.budget, hold.reservation.take())
            {
                spend.settle(budget, reservation, cost, now);
            }
        }
    }

    /// The tightest requests and tokens buckets among the subjects (lowest remaining), for
    /// the `x-ratelimit-*` headers; `None` when no subject has that limit.
    pub fn readings(&self) -> (Option<Reading>, Option<Reading>) {
        let tightest = |pick: fn(&Subject) -> Option<&Bucket>| {
            self.holds.iter().filter_map(|h| pick(&h.subject).map(Bucket::read)).min_by_key(|r| r.remaining)
        };
        (tightest(|s| s.rpm.as_ref()), tightest(|s| s.tpm.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::period::Period;
    use crate::store::Budget;

    fn subject(name: &str, limits: Limits) -> Arc<Subject> {
        Arc::new(Subject::new(Arc::from(name), limits, Money::ZERO, 1_796_256_000))
    }

    fn ask(tokens: u64, cost: i64) -> Ask {
        Ask { tokens, cost: Money(cost), now: 1_796_256_000 }
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_held_to_the_stricter_of_its_limits_and_its_teams() {
        let key = subject("key:k", Limits { rpm: Some(5), ..Limits::default() });
        let team = subject("team:t", Limits { rpm: Some(2), ..Limits::default() });
        let both = [Arc::clone(&key), Arc::clone(&team)];
        let first = admit(&both, ask(0, 0)).unwrap();
        assert_eq!(first.readings().0.unwrap().remaining, 1, "the team's bucket is the tighter");
        admit(&both, ask(0, 0)).unwrap();
        let refused = admit(&both, ask(0, 0)).unwrap_err();
        assert!(matches!(refused, Refusal::Requests { ref subject, limit: 2, .. } if &**subject == "team:t"));
        // The key gave back what the team refused.
        assert_eq!(key.rpm.as_ref().unwrap().read().remaining, 3);
    }

    #[test]
    fn parallel_slots_are_held_until_the_request_ends() {
        let key = subject("key:k", Limits { max_parallel: Some(1), ..Limits::default() });
        let held = admit(&[Arc::clone(&key)], ask(0, 0)).unwrap();
        assert!(matches!(admit(&[Arc::clone(&key)], ask(0, 0)), Err(Refusal::Parallel { limit: 1, .. })));
        held.settle(0, Money::ZERO, 1_796_256_000);
        assert_eq!(key.in_flight(), 0);
        let dropped = admit(&[Arc::clone(&key)], ask(0, 0)).unwrap();
        drop(dropped);
        assert_eq!(key.in_flight(), 0);
    }

    #[test]
    fn tokens_and_spend_settle_to_the_real_figures() {
        let budget = Budget { hard_usd: Some(Money(1_000)), soft_usd: None, period: Period::Total };
        let key = subject("key:k", Limits { tpm: Some(1_000), budget: Some(budget), ..Limits::default() });
        let admitted = admit(&[Arc::clone(&key)], ask(300, 400)).unwrap();
        assert_eq!(key.spent(1_796_256_000), Money(400), "reserved");
        admitted.settle(50, Money(120), 1_796_256_000);
        assert_eq!(key.spent(1_796_256_000), Money(120));
        assert_eq!(key.tpm.as_ref().unwrap().read().remaining, 950);
    }

    #[test]
    fn a_refused_request_takes_nothing() {
        let budget = Budget { hard_usd: Some(Money(100)), soft_usd: None, period: Period::Daily };
        let key = subject("key:k", Limits { rpm: Some(10), budget: Some(budget), ..Limits::default() });
        let team = subject("team:t", Limits { max_parallel: Some(0), ..Limits::default() });
        assert!(admit(&[Arc::clone(&key), team], ask(0, 50)).is_err());
        assert_eq!(key.spent(1_796_256_000), Money::ZERO);
        assert_eq!(key.rpm.as_ref().unwrap().read().remaining, 10);
    }
}
