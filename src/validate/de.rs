//! Deserializers for scalar settings that may arrive as text.
//!
//! `timeout_seconds: ${TIMEOUT:-60}` is a string after env expansion; these helpers accept a
//! number written either way, so env references work for every numeric setting.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A number, or a string holding one (`"60"` after `${VAR}` expansion).
pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct NumberVisitor<T>(PhantomData<T>);

    impl<T> NumberVisitor<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        fn parse<E: de::Error>(text: &str) -> Result<T, E> {
            text.trim().parse().map_err(|e| E::custom(format_args!("invalid number {text:?}: {e}")))
        }
    }

    impl<T> Visitor<'_> for NumberVisitor<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            Self::parse(&v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            Self::parse(&v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            Self::parse(&v.to_string())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            Self::parse(v)
        }
    }

    deserializer.deserialize_any(NumberVisitor(PhantomData))
}

/// Seconds (integer or fractional, e.g. `0.25`) as a `Duration`; must be finite and ≥ 0.
pub fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let secs: f64 = number(deserializer)?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| de::Error::custom(format_args!("invalid duration {secs}: expected seconds ≥ 0")))
}

/// Like [`number`], for an optional setting (`null` or absent means unset).
pub fn optional_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    #[derive(serde::Deserialize)]
    struct Wrapper<T>(#[serde(deserialize_with = "number")] T)
    where
        T: FromStr,
        T::Err: fmt::Display;

    Ok(Option::<Wrapper<T>>::deserialize(deserializer)?.map(|Wrapper(value)| value))
}

/// A whole number of milliseconds (or a numeric string from the environment).
pub fn milliseconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let ms: u64 = number(deserializer)?;
    Ok(Duration::from_millis(ms))
}

/// Like [`seconds`], optional.
pub fn optional_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let secs: Option<f64> = optional_number(deserializer)?;
    secs.map(|secs| {
        Duration::try_from_secs_f64(secs)
            .map_err(|_| de::Error::custom(format_args!("invalid duration {secs}: expected seconds ≥ 0")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "number")]
        count: u32,
        #[serde(deserialize_with = "seconds")]
        wait: Duration,
        #[serde(default, deserialize_with = "optional_number")]
        status: Option<u16>,
    }

    #[test]
    fn accepts_numbers_written_as_numbers_or_text() {
        let s: Sample = serde_yaml_ng::from_str("{count: 3, wait: 0.25, status: '503'}").unwrap();
        assert_eq!((s.count, s.wait, s.status), (3, Duration::from_millis(250), Some(503)));
        let s: Sample = serde_yaml_ng::from_str("{count: ' 7 ', wait: '60'}").unwrap();
        assert_eq!((s.count, s.wait, s.status), (7, Duration::from_secs(60), None));
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        let err = serde_yaml_ng::from_str::<Sample>("{count: many, wait: 1}").unwrap_err();
        assert!(err.to_string().contains("invalid number \"many\""), "{err}");
        let err = serde_yaml_ng::from_str::<Sample>("{count: 1, wait: -1}").unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
        assert!(serde_yaml_ng::from_str::<Sample>("{count: -1, wait: 1}").is_err());
    }
}
