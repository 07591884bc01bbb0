//! Anthropic Messages ↔ Chat Completions, for upstreams that do not speak Messages: the
//! request ([`to_chat`]), the whole answer ([`answer`]), the stream ([`writer`]), errors
//! ([`error_body`]) and a token estimate for `count_tokens`
//! ([`estimate_input_tokens`]). Each file below has one of these jobs and says what maps to
//! what.

mod error;
mod request;
mod response;
mod stream;
mod tokens;

use bytes::Bytes;

use super::FromChat;
use crate::providers::ProviderError;

pub(crate) use error::error_body;

/// A Messages request → the Chat Completions request that asks the same (JSON bytes).
/// What Chat cannot express is [`ProviderError::Unsupported`], naming the field.
pub(crate) fn to_chat(body: &[u8]) -> Result<Bytes, ProviderError> {
    request::to_chat(body)
}

/// A `chat.completion` body → the Anthropic `message` answering `request`.
pub(crate) fn answer(request: &[u8], chat: &[u8]) -> Result<Bytes, ProviderError> {
    response::answer(request, chat)
}

/// The stream writer answering `request`: Chat chunks in, Anthropic's events out.
pub(crate) fn writer(request: &[u8]) -> Box<dyn FromChat> {
    Box::new(stream::MessagesWriter::new(request))
}

/// An estimate of the input tokens of a Messages request, for `count_tokens` on upstreams
/// without a counting endpoint (see [`tokens`] for how it is made).
pub(crate) fn estimate_input_tokens(body: &[u8]) -> Result<u64, ProviderError> {
    tokens::estimate(body)
}

/// The translation steps alone, for `benches/translate.rs`: each returns the bytes written.
#[doc(hidden)]
pub mod bench {
    use bytes::BytesMut;

    use crate::providers::translate::stream::SseDecoder;

    /// The request of a Messages stream answered here (its model and nothing else matters).
    const REQUEST: &[u8] = br#"{"model":"m","max_tokens":1,"messages":[],"stream":true}"#;

    /// Messages request → Chat request; its length (0 if refused).
    pub fn request(body: &[u8]) -> usize {
        super::to_chat(body).map_or(0, |b| b.len())
    }

    /// `chat.completion` → Anthropic `message`; its length (0 if unreadable).
    pub fn response(body: &[u8]) -> usize {
        super::answer(REQUEST, body).map_or(0, |b| b.len())
    }

    /// A recorded Chat stream → Anthropic events; the bytes written.
    pub fn stream(chat_sse: &[u8]) -> usize {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        if decoder.push(chat_sse, &mut events).is_err() {
            return 0;
        }
        let mut writer = super::writer(REQUEST);
        let mut out = BytesMut::new();
        for event in &events {
            if event.data.trim() == "[DONE]" {
                writer.finish(None, &mut out);
                return out.len();
            }
            if event.event == "error" || event.data.trim_start().starts_with("{\"error\"") {
                writer.error(&event.data, &mut out);
                return out.len();
            }
            writer.chunk(&event.data, &mut out);
        }
        out.len()
    }
}
#[cfg(test)]
mod tests;
