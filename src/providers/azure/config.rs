//! `type: azure` settings: an Azure OpenAI resource.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use crate::providers::settings::{check_api_key, check_base_url, check_forward_headers, check_headers};
use crate::validate::Problems;

/// Settings of an Azure OpenAI resource. A model's `model_id` is the Azure *deployment* name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// Sent as the `api-key` header.
    pub api_key: Option<SecretString>,
    /// The resource endpoint, e.g. `https://my-resource.openai.azure.com`.
    pub base_url: String,
    /// The `api-version` query parameter.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Extra headers sent upstream on every request; treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretString>,
    /// Client headers sent on to this provider, beyond the default allow-list
    /// (`anthropic-beta`, `openai-beta`, `openai-organization`, `openai-project`,
    /// `traceparent`, `tracestate`).
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Ask for usage on every stream (`stream_options.include_usage`), so tokens are counted
    /// even when the client did not ask; the usage chunk is then removed for that client.
    /// Turn off for a host that refuses `stream_options`.
    #[serde(default = "crate::providers::settings::yes")]
    pub stream_usage: bool,
    /// Relay `/v1/responses` calls to the resource's Responses API (the v1 path,
    /// `/openai/v1/responses`) untouched; false translates them to Chat Completions.
    #[serde(default = "crate::providers::settings::yes")]
    pub responses_api: bool,
}

/// The latest GA data-plane version when this was written.
fn default_api_version() -> String {
    "2024-10-21".to_string()
}

impl AzureConfig {
    /// Records every problem under `path`; true when there is none.
    pub fn validate(&mut self, path: &str, problems: &mut Problems) -> bool {
        let mut ok = check_base_url(&self.base_url, path, problems);
        ok &= check_api_key(self.api_key.as_ref(), true, path, problems);
        ok &= check_headers(&self.headers, path, problems);
        ok &= check_forward_headers(&self.forward_headers, path, problems);
        if self.api_version.is_empty()
            || !self.api_version.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            problems.push(format!("{path}.api_version"), "must look like `2024-10-21`");
            ok = false;
        }
        ok
    }
}
