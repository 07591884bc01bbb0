//! `type: openai` settings: OpenAI itself or any OpenAI-compatible host.

use std::collections::BTreeMap;

use http::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::Problems;

/// Settings of an OpenAI-compatible provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Sent as `Authorization: Bearer …`; hosts that need no key (a local vLLM) omit it.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Up to and including the version segment, e.g. `https://api.openai.com/v1`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Extra headers sent upstream on every request (e.g. `OpenAI-Organization`). Their
    /// values are treated as secrets: never logged, never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
}

fn default_base_url() -> String {
    "https://api.openai.com/v1".to_string()
}

impl OpenAiConfig {
    /// Records every problem under `path`; true when there is none.
    pub fn validate(&self, path: &str, problems: &mut Problems) -> bool {
        let mut ok = true;
        match self.base_url.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            Ok(_) => {
                problems.push(format!("{path}.base_url"), "must be an http:// or https:// URL");
                ok = false;
            }
            Err(err) => {
                problems.push(format!("{path}.base_url"), format!("not a URL: {err}"));
                ok = false;
            }
        }
        if let Some(key) = &self.api_key
            && HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).is_err()
        {
            problems.push(format!("{path}.api_key"), "contains characters not allowed in a header");
            ok = false;
        }
        for (name, value) in &self.headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push(format!("{path}.headers.{name}"), "not a valid header name");
                ok = false;
            }
            if HeaderValue::from_str(value.expose_secret()).is_err() {
                problems.push(
                    format!("{path}.headers.{name}"),
                    "value contains characters not allowed in a header",
                );
                ok = false;
            }
        }
        ok
    }
}
