//! The OpenAI wire types clients see. Requests are parsed only as far as routing needs
//! (`chat`); responses the proxy writes itself are defined here.

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
