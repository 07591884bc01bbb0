//! OpenAI Responses ↔ Chat Completions, for upstreams that do not speak Responses.

use bytes::Bytes;

use super::FromChat;
use crate::providers::ProviderError;

/// A Responses request → the Chat Completions request that asks the same (JSON bytes).
/// `model` and `stream` are kept; a stream asks for usage (`stream_options.include_usage`).
/// What Chat cannot express is [`ProviderError::Unsupported`], naming the field.
pub(crate) fn to_chat(body: &[u8]) -> Result<Bytes, ProviderError> {
    let _ = body;
    Err(ProviderError::unsupported("the Responses API is not translated yet", None))
}

/// A `chat.completion` body → the `response` object answering `request` (the Responses
/// request as sent upstream, for the fields a response echoes); `id` is the proxy's `resp_…`.
pub(crate) fn answer(request: &[u8], id: &str, chat: &[u8]) -> Result<Bytes, ProviderError> {
    let _ = (request, id, chat);
    Err(ProviderError::InvalidResponse("the Responses API is not translated yet".to_string()))
}

/// The stream writer answering `request` with the response id `id`.
pub(crate) fn writer(request: &[u8], id: &str) -> Box<dyn FromChat> {
    let _ = (request, id);
    unimplemented!("helper")
}
