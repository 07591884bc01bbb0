//! `type: mock` settings: how the built-in provider misbehaves, for demos and tests.

use serde::Deserialize;

use crate::validate::{Problems, de};

/// Settings of the built-in mock provider. All optional: by default it answers at once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    /// Delay before answering (before response headers), in milliseconds.
    #[serde(default, deserialize_with = "de::number")]
    pub latency_ms: u64,
    /// Delay between two stream chunks, in milliseconds.
    #[serde(default, deserialize_with = "de::number")]
    pub chunk_delay_ms: u64,
    /// Fail with this HTTP status (an OpenAI error body). Alone, every request fails;
    /// with `failure_rate`, that share of requests does.
    #[serde(default, deserialize_with = "de::optional_number")]
    pub fail_status: Option<u16>,
    /// Share of requests (0 to 1) that fail, with `fail_status` or 500.
    #[serde(default, deserialize_with = "de::optional_number")]
    pub failure_rate: Option<f64>,
}

impl MockConfig {
    /// Records every problem under `path`; true when there is none.
    pub fn validate(&self, path: &str, problems: &mut Problems) -> bool {
        let mut ok = true;
        if let Some(status) = self.fail_status
            && !(400..=599).contains(&status)
        {
            problems.push(format!("{path}.fail_status"), "must be an HTTP error status (400-599)");
            ok = false;
        }
        if let Some(rate) = self.failure_rate
            && !(0.0..=1.0).contains(&rate)
        {
            problems.push(format!("{path}.failure_rate"), "must be between 0 and 1");
            ok = false;
        }
        ok
    }

    /// The probability that one request fails.
    pub fn failure_probability(&self) -> f64 {
        match (self.failure_rate, self.fail_status) {
            (Some(rate), _) => rate,
            (None, Some(_)) => 1.0,
            (None, None) => 0.0,
        }
    }
}
