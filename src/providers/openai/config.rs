//! `type: openai` settings (OpenAI itself or any OpenAI-compatible host), and the presets
//! that name a known compatible host (`type: groq`, `type: ollama`, …).

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;

use crate::providers::settings::{check_api_key, check_base_url, check_forward_headers, check_headers};
use crate::validate::Problems;

/// Settings of an OpenAI-compatible provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Sent as `Authorization: Bearer …`; hosts that need no key (a local vLLM) omit it.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Up to and including the version segment, e.g. `https://api.openai.com/v1`. Defaults to
    /// OpenAI's, or to the preset's.
    #[serde(default)]
    pub base_url: String,
    /// Extra headers sent upstream on every request (e.g. `OpenAI-Organization`). Their
    /// values are treated as secrets: never logged, never shown.
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
    /// Whether the host serves OpenAI's Responses API (`POST …/responses`): `/v1/responses`
    /// calls are then relayed to it untouched, else translated to Chat Completions. Defaults
    /// to true for OpenAI itself and false for the presets (most compatible hosts lack it).
    #[serde(default)]
    pub responses_api: Option<bool>,
}

/// A known OpenAI-compatible host: its `type:` name, default base URL, and whether it needs
/// a key. Each is the `openai` adapter underneath.
#[derive(Debug)]
pub struct Preset {
    /// The `type:` value.
    pub name: &'static str,
    /// Used when `base_url` is not set.
    pub base_url: &'static str,
    /// Hosted services need a key; local servers do not.
    pub needs_key: bool,
}

/// Every preset, as listed in docs/providers.md.
pub const PRESETS: &[Preset] = &[
    Preset { name: "groq", base_url: "https://api.groq.com/openai/v1", needs_key: true },
    Preset { name: "mistral", base_url: "https://api.mistral.ai/v1", needs_key: true },
    Preset { name: "deepseek", base_url: "https://api.deepseek.com/v1", needs_key: true },
    Preset { name: "together", base_url: "https://api.together.xyz/v1", needs_key: true },
    Preset { name: "fireworks", base_url: "https://api.fireworks.ai/inference/v1", needs_key: true },
    Preset { name: "openrouter", base_url: "https://openrouter.ai/api/v1", needs_key: true },
    Preset { name: "xai", base_url: "https://api.x.ai/v1", needs_key: true },
    Preset { name: "perplexity", base_url: "https://api.perplexity.ai", needs_key: true },
    Preset { name: "ollama", base_url: "http://localhost:11434/v1", needs_key: false },
    Preset { name: "vllm", base_url: "http://localhost:8000/v1", needs_key: false },
    Preset { name: "lmstudio", base_url: "http://localhost:1234/v1", needs_key: false },
];

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

impl OpenAiConfig {
    /// Fills in the base URL (OpenAI's, or the preset's) and records every problem under
    /// `path`; true when there is none.
    pub fn resolve(&mut self, preset: Option<&Preset>, path: &str, problems: &mut Problems) -> bool {
        self.responses_api.get_or_insert(preset.is_none());
        if self.base_url.is_empty() {
            self.base_url = preset.map_or(OPENAI_BASE_URL, |p| p.base_url).to_string();
        }
        let needs_key = preset.is_some_and(|p| p.needs_key);
        let url_ok = check_base_url(&self.base_url, path, problems);
        let key_ok = check_api_key(self.api_key.as_ref(), needs_key, path, problems);
        (check_headers(&self.headers, path, problems)
            & check_forward_headers(&self.forward_headers, path, problems))
            && url_ok
            && key_ok
    }
}
