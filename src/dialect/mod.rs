//! Client dialects in, upstream dialects out: the one translation registry.
//!
//! A request arrives in one of three dialects ([`Dialect`]). Each provider says which of them
//! it speaks natively ([`crate::providers::Provider::speaks`]); for those the client's bytes go
//! upstream untouched (the model rewritten) and the upstream's bytes come back untouched. For
//! any other pair the request goes through OpenAI Chat Completions, the one dialect every
//! adapter speaks: the client's request is translated to Chat once per request, the provider's
//! adapter translates Chat to its own format, and its Chat answer is translated back into the
//! client's dialect here.

#[doc(hidden)]
pub mod messages;
#[doc(hidden)]
pub mod responses;

use bytes::BytesMut;

pub use crate::api::dialect::Dialect;
use crate::usage::Usage;

/// Writes a client dialect's stream from a Chat Completions stream, event by event.
///
/// The caller splits the upstream's Chat stream into events and calls one method per event,
/// in order; the implementation appends whole SSE events (`event: …\ndata: …\n\n`) of its
/// dialect to `out`. Whether the stream may commit is decided on the Chat side (the caller
/// keeps each frame's `meaningful`/`done`/`failed` flags), so the writer only translates.
pub(crate) trait FromChat: Send + 'static {
    /// One `chat.completion.chunk` (the `data:` payload, JSON text, never `[DONE]`).
    fn chunk(&mut self, data: &str, out: &mut BytesMut);
    /// The upstream stream ended well (`[DONE]`), `usage` as the Chat stream reported it:
    /// write the closing events.
    fn finish(&mut self, usage: Option<&Usage>, out: &mut BytesMut);
    /// The stream failed: an error event from upstream (`data` is its JSON payload, usually
    /// `{"error":{"message":…,"type":…,"code":…}}`) or a failure the proxy saw (then `data` is
    /// the same shape, written by the proxy). Write this dialect's error event(s); nothing
    /// follows.
    fn error(&mut self, data: &str, out: &mut BytesMut);
}
