//! A subject's spend over its budget period, in memory: what the store said it had spent
//! when the subject was first seen, plus what was settled since, plus what requests in
//! flight have reserved. Spend is kept per hour so rolling windows slide hour by hour and
//! calendar periods start again at their UTC boundary.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::accounting::Money;
use crate::accounting::period::{Period, hour_of};
use crate::store::Budget;

/// Why a budget refused a request, or warned about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// The limit reached.
    pub limit: Money,
    /// Spent (and reserved) in the period.
    pub spent: Money,
    /// Unix seconds when the period ends and spend starts again from zero (`None`: never).
    pub resets_at: Option<i64>,
}

/// One subject's spend.
#[derive(Debug)]
pub struct Spend {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Settled spend per hour (Unix seconds of its start); one entry at 0 for a total.
    hours: BTreeMap<i64, i64>,
    /// Settled spend inside the period as of `start`.
    settled: i64,
    /// The period's start when `settled` was summed.
    start: i64,
    /// Reserved by requests in flight.
    reserved: i64,
    /// The period start of the last soft-limit warning logged (one line per period).
    warned: Option<i64>,
}

/// What a reservation holds, to settle it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation(pub Money);

/// What admitting a request said about the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Under every limit.
    Within,
    /// Past the soft limit; `first` is true once per period (for the one log line).
    Warn {
        /// The soft limit and the spend.
        exceeded: Exceeded,
        /// The first warning this period.
        first: bool,
    },
}

impl Spend {
    /// Spend as the store reported it for the current period, at `now` (Unix seconds).
    pub fn new(period: Period, loaded: Money, now: i64) -> Self {
        let start = period.start(now);
        let at = if period == Period::Total { 0 } else { hour_of(now).max(start) };
        let hours = BTreeMap::from([(at, loaded.nanos())]);
        Self { state: Mutex::new(State { hours, settled: loaded.nanos(), start, reserved: 0, warned: None }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the period forward to `now`: hours before its start no longer count.
    fn roll(state: &mut State, period: Period, now: i64) {
        let start = period.start(now);
        if start != state.start {
            state.hours = state.hours.split_off(&start);
            state.settled = state.hours.values().sum();
            state.start = start;
        }
    }

    /// Reserves `estimate` unless the hard limit is already reached; says whether the soft
    /// one is.
    pub fn reserve(
        &self,
        budget: &Budget,
        estimate: Money,
        now: i64,
    ) -> Result<(Reservation, Verdict), Exceeded> {
        let mut state = self.lock();
        Self::roll(&mut state, budget.period, now);
        let spent = Money(state.settled.saturating_add(state.reserved));
        let resets_at = budget.period.end(now);
        if let Some(limit) = budget.hard_usd
            && spent >= limit
        {
            return Err(Exceeded { limit, spent, resets_at });
        }
        state.reserved = state.reserved.saturating_add(estimate.nanos());
        let verdict = match budget.soft_usd {
            Some(limit) if spent >= limit => {
                let first = state.warned != Some(state.start);
                state.warned = Some(state.start);
                Verdict::Warn { exceeded: Exceeded { limit, spent, resets_at }, first }
            }
            _ => Verdict::Within,
        };
        Ok((Reservation(estimate), verdict))
    }

    /// Replaces a reservation with what the request really cost.
    pub fn settle(&self, budget: &Budget, reservation: Reservation, cost: Money, now: i64) {
        let mut state = self.lock();
        Self::roll(&mut state, budget.period, now);
        state.reserved = state.reserved.saturating_sub(reservation.0.nanos()).max(0);
        let hour = if budget.period == Period::Total { 0 } else { hour_of(now) };
        *state.hours.entry(hour).or_default() += cost.nanos();
        state.settled = state.settled.saturating_add(cost.nanos());
    }

    /// Drops a reservation without spending anything: the request was refused.
    pub fn release(&self, reservation: Reservation) {
        let mut state = self.lock();
        state.reserved = state.reserved.saturating_sub(reservation.0.nanos()).max(0);
    }

    /// Spent and reserved in the current period.
    pub fn spent(&self, period: Period, now: i64) -> Money {
        let mut state = self.lock();
        Self::roll(&mut state, period, now);
        Money(state.settled.saturating_add(state.reserved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_256_000 + 13 * 3600; // 2026-12-03 13:00 UTC

    fn budget(hard: i64, soft: Option<i64>, period: Period) -> Budget {
        Budget { hard_usd: Some(Money(hard)), soft_usd: soft.map(Money), period }
    }

    #[test]
    fn a_hard_budget_refuses_once_spent_and_reserved_reach_it() {
        let b = budget(100, None, Period::Daily);
        let spend = Spend::new(Period::Daily, Money(60), NOW);
        let (first, _) = spend.reserve(&b, Money(30), NOW).unwrap();
        let (second, _) = spend.reserve(&b, Money(30), NOW).unwrap();
        // 60 spent + 60 reserved: the next is refused, the two in flight finish.
        let refused = spend.reserve(&b, Money(30), NOW).unwrap_err();
        assert_eq!(refused.spent, Money(120));
        assert_eq!(refused.resets_at, Some(1_796_256_000 + 86_400));
        spend.settle(&b, first, Money(10), NOW);
        spend.settle(&b, second, Money(10), NOW);
        assert_eq!(spend.spent(Period::Daily, NOW), Money(80));
        assert!(spend.reserve(&b, Money(30), NOW).is_ok());
    }

    #[test]
    fn a_soft_budget_warns_once_per_period() {
        let b = Budget { hard_usd: None, soft_usd: Some(Money(10)), period: Period::Daily };
        let spend = Spend::new(Period::Daily, Money(10), NOW);
        let (_, first) = spend.reserve(&b, Money(1), NOW).unwrap();
        let (_, second) = spend.reserve(&b, Money(1), NOW).unwrap();
        assert!(matches!(first, Verdict::Warn { first: true, .. }));
        assert!(matches!(second, Verdict::Warn { first: false, .. }));
    }

    #[test]
    fn calendar_periods_start_again_and_rolling_windows_slide() {
        let b = budget(100, None, Period::Daily);
        let spend = Spend::new(Period::Daily, Money(100), NOW);
        assert!(spend.reserve(&b, Money(1), NOW).is_err());
        assert!(spend.reserve(&b, Money(1), NOW + 11 * 3600).is_ok(), "a new UTC day");

        let rolling = budget(100, None, Period::Rolling { hours: 2 });
        let spend = Spend::new(rolling.period, Money(0), NOW);
        let (r, _) = spend.reserve(&rolling, Money(0), NOW).unwrap();
        spend.settle(&rolling, r, Money(100), NOW);
        assert!(spend.reserve(&rolling, Money(1), NOW + 3600).is_err(), "still inside two hours");
        assert!(spend.reserve(&rolling, Money(1), NOW + 2 * 3600).is_ok(), "slid out");
    }
}
