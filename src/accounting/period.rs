//! UTC calendar arithmetic for budget periods and daily aggregates, without a date crate:
//! days since the Unix epoch ↔ (year, month, day), after Howard Hinnant's `days_from_civil`.

use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// Unix seconds now.
pub fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_secs() as i64
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

/// `YYYY-MM-DD` of a Unix time in seconds (UTC).
pub fn day_of(unix_secs: i64) -> String {
    let (y, m, d) = civil_from_days(unix_secs.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Unix seconds at the start (00:00 UTC) of a `YYYY-MM-DD` day; `None` if it is not one.
pub fn parse_day(day: &str) -> Option<i64> {
    let mut parts = day.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let dom: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&dom) || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, dom);
    // 2026-02-31 is not a day: it would come back as March.
    (civil_from_days(days) == (year, month, dom)).then_some(days * DAY)
}

/// The hour a Unix time falls in, as the Unix seconds of its start.
pub fn hour_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(HOUR) * HOUR
}

/// How long a budget's spend accumulates before it starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Period {
    /// Calendar day, from 00:00 UTC.
    Daily,
    /// Calendar week, from Monday 00:00 UTC.
    Weekly,
    /// Calendar month, from the 1st 00:00 UTC.
    Monthly,
    /// Forever: the budget is a lifetime total.
    Total,
    /// The last so many hours, sliding (written `24h`, `7d`, `30d`).
    Rolling {
        /// The window, in whole hours.
        hours: u32,
    },
}

impl Period {
    /// The Unix seconds from which spend counts, at `now`. Rolling windows start at an hour
    /// boundary (spend is kept per hour), so they cover up to one hour more than written.
    pub fn start(self, now: i64) -> i64 {
        let days = now.div_euclid(DAY);
        match self {
            Period::Daily => days * DAY,
            // 1970-01-01 was a Thursday: Monday is three days later in the cycle.
            Period::Weekly => (days - (days + 3).rem_euclid(7)) * DAY,
            Period::Monthly => {
                let (y, m, _) = civil_from_days(days);
                days_from_civil(y, m, 1) * DAY
            }
            Period::Total => 0,
            Period::Rolling { hours } => hour_of(now) - i64::from(hours.saturating_sub(1)) * HOUR,
        }
    }

    /// When the current period ends (the spend resets), for calendar periods; a rolling
    /// window frees spend hour by hour, a total never.
    pub fn end(self, now: i64) -> Option<i64> {
        let start = self.start(now);
        match self {
            Period::Daily => Some(start + DAY),
            Period::Weekly => Some(start + 7 * DAY),
            Period::Monthly => {
                let (y, m, _) = civil_from_days(start / DAY);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Some(days_from_civil(y, m, 1) * DAY)
            }
            Period::Rolling { .. } => Some(hour_of(now) + HOUR),
            Period::Total => None,
        }
    }
}

impl TryFrom<String> for Period {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let rolling = |digits: &str, per: u32| {
            digits
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0 && *n <= 24 * 366)
                .map(|n| Period::Rolling { hours: n * per })
        };
        let parsed = match text.as_str() {
            "daily" => Some(Period::Daily),
            "weekly" => Some(Period::Weekly),
            "monthly" => Some(Period::Monthly),
            "total" => Some(Period::Total),
            t if t.ends_with('h') => rolling(&t[..t.len() - 1], 1),
            t if t.ends_with('d') => rolling(&t[..t.len() - 1], 24),
            _ => None,
        };
        parsed.ok_or_else(|| {
            format!("{text:?} is not a budget period: use daily, weekly, monthly, total, or a rolling window such as 24h or 30d")
        })
    }
}

impl From<Period> for String {
    fn from(period: Period) -> String {
        match period {
            Period::Daily => "daily".into(),
            Period::Weekly => "weekly".into(),
            Period::Monthly => "monthly".into(),
            Period::Total => "total".into(),
            Period::Rolling { hours } if hours % 24 == 0 => format!("{}d", hours / 24),
            Period::Rolling { hours } => format!("{hours}h"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for days in [-1, 0, 59, 365, 10_957, 20_000, 20_790, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_796_256_000), "2026-12-03");
        assert_eq!(parse_day("2026-12-03"), Some(1_796_256_000));
        assert_eq!(parse_day("2026-02-31"), None);
        assert_eq!(parse_day("yesterday"), None);
    }

    #[test]
    fn calendar_periods_start_on_utc_boundaries() {
        let now = 1_796_256_000 + 13 * 3600 + 42; // Thu 2026-12-03 13:00:42 UTC
        assert_eq!(Period::Daily.start(now), 1_796_256_000);
        assert_eq!(day_of(Period::Weekly.start(now)), "2026-11-30"); // a Monday
        assert_eq!(day_of(Period::Monthly.start(now)), "2026-12-01");
        assert_eq!(day_of(Period::Monthly.end(now).unwrap()), "2027-01-01");
        assert_eq!(Period::Rolling { hours: 24 }.start(now), 1_796_256_000 + 13 * 3600 - 23 * 3600);
        assert_eq!(Period::Total.end(now), None);
    }

    #[test]
    fn periods_read_as_written() {
        for text in ["daily", "weekly", "monthly", "total", "36h", "30d", "5h"] {
            let period = Period::try_from(text.to_string()).unwrap();
            assert_eq!(String::from(period), text);
        }
        assert!(Period::try_from("fortnightly".to_string()).is_err());
        assert!(Period::try_from("0d".to_string()).is_err());
        assert_eq!(Period::try_from("24h".to_string()), Ok(Period::Rolling { hours: 24 }));
    }
}
