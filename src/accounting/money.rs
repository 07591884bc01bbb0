//! Money as an integer count of nano-dollars: sums of millions of requests stay exact, which
//! floats do not. Prices are finer (femto-dollars per token, see `price`): a request's cost is
//! summed exactly there and rounded once to the nano-dollar.

use std::fmt;

/// An amount of US dollars, in nano-dollars (1 USD = 1_000_000_000). Signed, because a
/// settlement corrects a reservation in either direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

/// Nano-dollars in one dollar.
pub const NANOS_PER_USD: i64 = 1_000_000_000;

impl Money {
    /// Nothing.
    pub const ZERO: Money = Money(0);

    /// Nano-dollars.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// From a dollar amount as people write it (`12.5`), rounded to the nano-dollar; `None`
    /// for a negative, non-finite or absurd (over $9 billion) amount.
    pub fn from_usd(usd: f64) -> Option<Money> {
        let nanos = (usd * NANOS_PER_USD as f64).round();
        (usd.is_finite() && usd >= 0.0 && nanos < i64::MAX as f64).then_some(Money(nanos as i64))
    }

    /// Adds, saturating at the bounds.
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// Subtracts, saturating at the bounds.
    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }

    /// Dollars, for display and JSON only (never summed as a float).
    pub fn usd(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }
}

impl fmt::Display for Money {
    /// Exact decimal dollars with nine places, trailing zeros trimmed: `0.000123`, `12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, frac) = (abs / NANOS_PER_USD as u64, abs % NANOS_PER_USD as u64);
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let frac = format!("{frac:09}");
        write!(f, "{sign}{whole}.{}", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_trip_exactly() {
        assert_eq!(Money::from_usd(12.5), Some(Money(12_500_000_000)));
        assert_eq!(Money::from_usd(0.000_000_001), Some(Money(1)));
        assert_eq!(Money::from_usd(-1.0), None);
        assert_eq!(Money::from_usd(f64::NAN), None);
        assert_eq!(Money(12_500_000_000).to_string(), "12.5");
        assert_eq!(Money(123).to_string(), "0.000000123");
        assert_eq!(Money(-5_000_000_000).to_string(), "-5");
        assert_eq!(Money(0).to_string(), "0");
    }
}
