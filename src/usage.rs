//! Token usage as typed data: what every adapter reports at the end of each attempt, plain or
//! streamed, whether or not the client asked to see it. Metrics, `tpm` caps and (next) spend
//! read it; nothing re-reads it from the bytes sent to the client.

use serde::Deserialize;
use serde_json::{Value, json};

/// Token counts of one attempt, in OpenAI's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cached or not.
    pub prompt_tokens: u64,
    /// Every output token, reasoning included.
    pub completion_tokens: u64,
    /// Input tokens read from the provider's prompt cache (part of `prompt_tokens`).
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the provider's prompt cache (part of `prompt_tokens`).
    pub cache_write_tokens: Option<u64>,
    /// Output tokens spent thinking (part of `completion_tokens`).
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Input and output together.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// OpenAI's `usage` object.
    pub fn to_json(self) -> Value {
        let mut usage = json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total(),
        });
        if let Some(cached) = self.cached_tokens {
            usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
        }
        if let Some(reasoning) = self.reasoning_tokens {
            usage["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
        }
        usage
    }

    /// The usage an OpenAI body or stream chunk reports, if it has a `usage` object.
    ///
    /// The `usage` object comes last in OpenAI's bodies, and an embeddings body before it can
    /// be megabytes of floats: so the last `"usage"` key is found by a byte search (inside a
    /// JSON string the quote before the colon would be escaped, so those bytes cannot occur
    /// there) and only the value after it is parsed. Bodies where that fails are parsed whole.
    pub fn from_openai(json: &[u8]) -> Option<Usage> {
        let from_key = memchr::memmem::rfind(json, b"\"usage\"").and_then(|at| {
            let rest = json[at + 7..].trim_ascii_start().strip_prefix(b":")?;
            let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Option<OpenAiUsage>>();
            values.next()?.ok()
        });
        let usage = match from_key {
            Some(usage) => usage?,
            None => serde_json::from_slice::<WithUsage>(json).ok()?.usage?,
        };
        Some(Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cached_tokens: usage.prompt_tokens_details.and_then(|d| d.cached_tokens),
            cache_write_tokens: None,
            reasoning_tokens: usage.completion_tokens_details.and_then(|d| d.reasoning_tokens),
        })
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(json: &[u8]) -> Option<(u64, u64)> {
        Usage::from_openai(json).map(|u| (u.prompt_tokens, u.completion_tokens))
    }

    #[test]
    fn usage_is_read_when_reported() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#;
        assert_eq!(counts(body), Some((5, 3)));
        assert_eq!(counts(br#"{"choices":[],"usage":null}"#), None);
        assert_eq!(counts(b"not json"), None);
        let embeddings = br#"{"data":[],"usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        assert_eq!(counts(embeddings), Some((4, 0)));
        // A "usage" inside a string is escaped, so it cannot be mistaken for the key.
        let tricky = br#"{"choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 99}"}}],"usage" : {"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(counts(tricky), Some((1, 2)));
        assert_eq!(counts(br#"{"usage": {"prompt_tokens": "x"}}"#), None);
    }

    #[test]
    fn cached_and_reasoning_tokens_are_kept() {
        let body = br#"{"usage": {"prompt_tokens": 10, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 5}}}"#;
        let usage = Usage::from_openai(body).unwrap();
        assert_eq!((usage.cached_tokens, usage.reasoning_tokens), (Some(4), Some(5)));
        assert_eq!(usage.to_json()["completion_tokens_details"]["reasoning_tokens"], 5);
        assert_eq!(usage.total(), 17);
    }
}
