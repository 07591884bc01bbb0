//! The wire types clients see, per dialect. Requests are parsed only as far as routing needs
//! (`request`); the bodies the proxy writes itself (error envelopes, the models list) are
//! defined here.

pub mod dialect;
pub mod request;

use serde::Serialize;

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

/// Anthropic's error body: `{"type":"error","error":{"type","message"}}`, which the
/// `anthropic` SDKs read to pick their exception class.
#[derive(Debug, Serialize)]
pub struct AnthropicError<'a> {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The error itself.
    pub error: AnthropicErrorBody<'a>,
}

/// The inside of [`AnthropicError`].
#[derive(Debug, Serialize)]
pub struct AnthropicErrorBody<'a> {
    /// The error class, e.g. `overloaded_error` (see [`anthropic_error_type`]).
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Human-readable; never contains a secret.
    pub message: &'a str,
}

impl<'a> AnthropicError<'a> {
    /// An error of class `kind` saying `message`.
    pub fn new(kind: &'a str, message: &'a str) -> Self {
        Self { kind: "error", error: AnthropicErrorBody { kind, message } }
    }

    /// Serializes to JSON bytes. Serializing these plain fields cannot fail.
    pub fn to_bytes(&self) -> bytes::Bytes {
        serde_json::to_vec(self).map(bytes::Bytes::from).unwrap_or_default()
    }
}

/// Anthropic's error class for an HTTP status, as its API documents them: 401
/// `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
/// `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 503 and 529
/// `overloaded_error`, 504 `timeout_error`, other 4xx `invalid_request_error`, anything else
/// `api_error`.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
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
