//! `type: gemini` settings: the Google AI Gemini API.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use crate::providers::settings::{check_api_key, check_base_url, check_forward_headers, check_headers};
use crate::validate::Problems;

/// Settings of a Gemini API key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiConfig {
    /// Sent as the `x-goog-api-key` header, never in the URL.
    pub api_key: Option<SecretString>,
    /// Defaults to `https://generativelanguage.googleapis.com`; the adapter appends
    /// `/v1beta/models/{model_id}:…`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Extra headers sent on every request; treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// Client headers sent on to this provider, beyond the default allow-list
    /// (`anthropic-beta`, `openai-beta`, `openai-organization`, `openai-project`,
    /// `traceparent`, `tracestate`).
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

fn default_base_url() -> String {
    "https://generativelanguage.googleapis.com".to_string()
}

impl GeminiConfig {
    /// Records every problem under `path`; true when there is none.
    pub fn validate(&mut self, path: &str, problems: &mut Problems) -> bool {
        let mut ok = check_base_url(&self.base_url, path, problems);
        ok &= check_api_key(self.api_key.as_ref(), true, path, problems);
        ok & (check_headers(&self.headers, path, problems)
            & check_forward_headers(&self.forward_headers, path, problems))
    }
}
