//! `type: anthropic` settings.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use crate::providers::settings::{check_api_key, check_base_url, check_forward_headers, check_headers};
use crate::validate::{Problems, de};

/// Settings of an Anthropic account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig {
    /// Sent as the `x-api-key` header.
    pub api_key: Option<SecretString>,
    /// Defaults to `https://api.anthropic.com`; the adapter appends `/v1/messages`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// `max_tokens` sent when the client gives neither `max_completion_tokens` nor
    /// `max_tokens` (Anthropic requires one).
    #[serde(default = "default_max_tokens", deserialize_with = "de::number")]
    pub max_tokens: u64,
    /// Extra headers sent on every request, e.g. `anthropic-beta`; treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// Client headers sent on to this provider, beyond the default allow-list
    /// (`anthropic-beta`, `openai-beta`, `openai-organization`, `openai-project`,
    /// `traceparent`, `tracestate`).
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

fn default_base_url() -> String {
    "https://api.anthropic.com".to_string()
}

fn default_max_tokens() -> u64 {
    4096
}

impl AnthropicConfig {
    /// Records every problem under `path`; true when there is none.
    pub fn validate(&mut self, path: &str, problems: &mut Problems) -> bool {
        let mut ok = check_base_url(&self.base_url, path, problems);
        ok &= check_api_key(self.api_key.as_ref(), true, path, problems);
        ok &= check_headers(&self.headers, path, problems);
        ok &= check_forward_headers(&self.forward_headers, path, problems);
        if self.max_tokens == 0 {
            problems.push(format!("{path}.max_tokens"), "must be at least 1");
            ok = false;
        }
        ok
    }
}
