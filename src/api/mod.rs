//! The OpenAI wire types clients see. Requests are parsed only as far as routing needs
//! (`chat`); responses the proxy writes itself are defined here.

pub mod request;

use serde::{Deserialize, Serialize};

/// OpenAI's error envelope: `{"error":{"message","type","param","code"}}`, all four keys
/// always present (`param` and `code` may be null), as the official SDKs expect.
#[derive(Debug, Serialize)]
pub struct ErrorEnvelope<'a> {
    /// The error itself.
    pub error: ErrorBody<'a>,
}

/// The inside of [`ErrorEnvelope`].
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Human-readable; never contains a secret or an upstream body.
    pub message: &'a str,
    /// The error class, e.g. `invalid_request_error`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The request field at fault, if any.
    pub param: Option<&'a str>,
    /// A stable machine-readable code, e.g. `model_not_found`.
    pub code: Option<&'a str>,
}

impl ErrorEnvelope<'_> {
    /// Serializes to JSON bytes. Serializing these plain fields cannot fail.
    pub fn to_bytes(&self) -> bytes::Bytes {
        serde_json::to_vec(self).map(bytes::Bytes::from).unwrap_or_default()
    }
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct Model<'a> {
    /// The name clients send as `model`.
    pub id: &'a str,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds; when the proxy loaded its config.
    pub created: u64,
    /// Who serves it; always `llm-proxy`, since the proxy picks the provider per request.
    pub owned_by: &'static str,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList<'a> {
    /// Always `list`.
    pub object: &'static str,
    /// Every configured model.
    pub data: Vec<Model<'a>>,
}

impl<'a> Model<'a> {
    /// A model entry named `id`.
    pub fn new(id: &'a str, created: u64) -> Self {
        Self { id, object: "model", created, owned_by: "llm-proxy" }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<UsageCounts>,
}

#[derive(Deserialize)]
struct UsageCounts {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// (prompt, completion) tokens from an OpenAI body or stream chunk that reports `usage`.
///
/// The `usage` object comes last in OpenAI's bodies, and an embeddings body before it can be
/// megabytes of floats: so the last `"usage":` key is found by a byte search (inside a JSON
/// string the quote before the colon would be escaped, so the bytes cannot occur there) and
/// only the value after it is parsed. Bodies where that fails are parsed whole.
pub fn usage_of(json: &[u8]) -> Option<(u64, u64)> {
    let from_key = memchr::memmem::rfind(json, b"\"usage\"").and_then(|at| {
        let rest = json[at + 7..].trim_ascii_start().strip_prefix(b":")?;
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Option<UsageCounts>>();
        values.next()?.ok()
    });
    let usage = match from_key {
        Some(usage) => usage?,
        None => serde_json::from_slice::<WithUsage>(json).ok()?.usage?,
    };
    Some((usage.prompt_tokens, usage.completion_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_when_reported() {
        let body = br#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#;
        assert_eq!(usage_of(body), Some((5, 3)));
        assert_eq!(usage_of(br#"{"choices":[],"usage":null}"#), None);
        assert_eq!(usage_of(b"not json"), None);
        let embeddings = br#"{"data":[],"usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        assert_eq!(usage_of(embeddings), Some((4, 0)));
        // A "usage" inside a string is escaped, so it cannot be mistaken for the key.
        let tricky = br#"{"choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 99}"}}],"usage" : {"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(usage_of(tricky), Some((1, 2)));
        assert_eq!(usage_of(br#"{"usage": {"prompt_tokens": "x"}}"#), None);
    }
}
