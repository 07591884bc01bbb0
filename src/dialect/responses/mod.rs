//! OpenAI Responses ↔ Chat Completions, for upstreams that do not speak Responses.
//!
//! `request` turns a Responses request into Chat, `response` a `chat.completion` into the
//! `response` object, `stream` Chat chunks into typed Responses events. What Chat cannot ask
//! (built-in tools, stored state, file ids) is refused by name, so the router can try an
//! upstream that speaks Responses itself.

mod request;
mod response;
mod stream;

use bytes::{Bytes, BytesMut};

use super::FromChat;
use crate::providers::ProviderError;

/// A Responses request → the Chat Completions request that asks the same (JSON bytes).
/// `model` and `stream` are kept; a stream asks for usage (`stream_options.include_usage`).
/// What Chat cannot express is [`ProviderError::Unsupported`], naming the field.
pub(crate) fn to_chat(body: &[u8]) -> Result<Bytes, ProviderError> {
    request::to_chat(body)
}

/// A `chat.completion` body → the `response` object answering `request` (the Responses
/// request as sent upstream, for the fields a response echoes); `id` is the proxy's `resp_…`.
pub(crate) fn answer(request: &[u8], id: &str, chat: &[u8]) -> Result<Bytes, ProviderError> {
    response::answer(request, id, chat)
}

/// The stream writer answering `request` with the response id `id`.
pub(crate) fn writer(request: &[u8], id: &str) -> Box<dyn FromChat> {
    Box::new(stream::Writer::new(request, id))
}

/// Entry points for `benches/translate.rs`: each returns the bytes it wrote (0 on an error).
#[doc(hidden)]
pub mod bench {
    use super::*;

    /// A Responses request → Chat.
    pub fn request(body: &[u8]) -> usize {
        to_chat(body).map_or(0, |b| b.len())
    }

    /// A `chat.completion` → the `response` object (for an empty request).
    pub fn response(body: &[u8]) -> usize {
        answer(b"{}", "resp_bench", body).map_or(0, |b| b.len())
    }

    /// A recorded Chat stream (`data:` events, `[DONE]` last) → Responses events.
    pub fn stream(chat_sse: &[u8]) -> usize {
        let mut writer = writer(b"{\"stream\":true}", "resp_bench");
        let mut out = BytesMut::new();
        let mut written = 0;
        let text = String::from_utf8_lossy(chat_sse);
        for event in text.split("\n\n") {
            let Some(data) = event.lines().find_map(|line| line.strip_prefix("data:")) else { continue };
            let data = data.trim_start();
            if data == "[DONE]" {
                writer.finish(None, &mut out);
                break;
            }
            writer.chunk(data, &mut out);
            written += out.split().len();
        }
        written + out.len()
    }
}

#[cfg(test)]
mod tests;
