//! Anthropic Messages ↔ Chat Completions, for upstreams that do not speak Messages.

use bytes::Bytes;
use http::StatusCode;

use super::FromChat;
use crate::providers::ProviderError;

/// A Messages request → the Chat Completions request that asks the same (JSON bytes).
pub(crate) fn to_chat(body: &[u8]) -> Result<Bytes, ProviderError> {
    let _ = body;
    Err(ProviderError::unsupported("the Messages API is not translated yet", None))
}

/// A `chat.completion` body → the Anthropic `message` answering `request`.
pub(crate) fn answer(request: &[u8], chat: &[u8]) -> Result<Bytes, ProviderError> {
    let _ = (request, chat);
    Err(ProviderError::InvalidResponse("the Messages API is not translated yet".to_string()))
}

/// The stream writer answering `request`.
pub(crate) fn writer(request: &[u8]) -> Box<dyn FromChat> {
    let _ = request;
    unimplemented!("helper")
}

/// An upstream's error body (OpenAI's envelope, or anything) with `status` → Anthropic's
/// error body `{"type":"error","error":{"type":…,"message":…}}`.
pub(crate) fn error_body(status: StatusCode, body: &[u8]) -> Bytes {
    let _ = (status, body);
    Bytes::new()
}

/// An estimate of a Messages request's input tokens, for upstreams that cannot count them.
pub(crate) fn estimate_input_tokens(body: &[u8]) -> Result<u64, ProviderError> {
    Ok((body.len() / 4) as u64)
}
