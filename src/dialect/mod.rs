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

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::HeaderMap;
use http::header::HeaderValue;

use crate::api::request::{ApiRequest, Operation, Untranslatable};
use crate::providers::{Call, Payload, Provider, ProviderError, Reply};

mod chat;
mod reframe;

/// What one attempt needs besides the request: the deployment's model and the client's
/// headers meant for the upstream.
pub struct Attempt<'a> {
    /// The deployment's `model_id`, JSON-encoded (what `model` becomes in the body).
    pub model_id_json: &'a str,
    /// The deployment's `model_id`.
    pub model_id: Arc<str>,
    /// Sent upstream as `x-request-id`.
    pub request_id: HeaderValue,
    /// The client's headers meant for this upstream.
    pub forwarded: HeaderMap,
}

/// Sends `request` to `provider` in the client's dialect when the provider speaks it, else
/// through Chat Completions; the answer comes back in the client's dialect either way.
pub fn send<'a>(
    provider: &'a dyn Provider,
    request: &ApiRequest,
    attempt: Attempt<'_>,
) -> BoxFuture<'a, Result<Reply, ProviderError>> {
    let dialect = request.dialect();
    let native = |body: Bytes, client_wants_usage: bool| Call {
        dialect,
        body,
        stream: request.stream(),
        model_id: Arc::clone(&attempt.model_id),
        request_id: attempt.request_id.clone(),
        forwarded: attempt.forwarded.clone(),
        client_wants_usage,
    };
    match request.operation() {
        Operation::Embeddings => {
            provider.embeddings(native(request.body_with_model(attempt.model_id_json), false))
        }
        Operation::Chat => provider.chat(native(
            request.upstream_body(attempt.model_id_json, provider.asks_for_stream_usage()),
            request.include_usage(),
        )),
        Operation::CountTokens if provider.speaks(Dialect::Messages) => {
            provider.count_tokens(native(request.body_with_model(attempt.model_id_json), false))
        }
        // Passed over without a penalty: when no deployment can count, the route answers an
        // estimate itself ([`estimate_tokens`]), touching no deployment's health or caps.
        Operation::CountTokens => Box::pin(std::future::ready(Err(ProviderError::unsupported(
            "token counting needs an upstream that speaks the Messages API",
            None,
        )))),
        Operation::Responses | Operation::Messages if provider.speaks(dialect) => {
            provider.chat(native(request.body_with_model(attempt.model_id_json), true))
        }
        Operation::Responses | Operation::Messages => {
            let chat = match request.as_chat(|body| to_chat(dialect, body)) {
                Ok(chat) => chat,
                Err(Untranslatable { message, param }) => {
                    return Box::pin(std::future::ready(Err(ProviderError::Unsupported { message, param })));
                }
            };
            let call = Call {
                dialect: Dialect::Chat,
                body: chat.upstream_body(attempt.model_id_json, provider.asks_for_stream_usage()),
                // The writer needs the usage for its closing event.
                client_wants_usage: true,
                ..native(Bytes::new(), true)
            };
            let client_body = match request.continues() {
                Some(previous) => with_previous(request.body(), previous),
                None => request.body().clone(),
            };
            let sent = provider.chat(call);
            Box::pin(async move {
                let reply = sent.await.map_err(|error| error_from_chat(dialect, error))?;
                from_chat(dialect, &client_body, reply)
            })
        }
    }
}

/// `count_tokens` answered without an upstream: an estimate of the request's input tokens,
/// as `{"input_tokens": N}`.
pub fn estimate_tokens(request: &ApiRequest) -> Result<Bytes, ProviderError> {
    let tokens = messages::estimate_input_tokens(request.body())?;
    Ok(Bytes::from(format!(r#"{{"input_tokens":{tokens}}}"#)))
}

/// The request body the answer is written for, naming the response it continues (the proxy
/// took `previous_response_id` out to send the whole conversation): right after the opening
/// brace, valid whatever follows.
fn with_previous(body: &Bytes, previous: &str) -> Bytes {
    let brace = body.iter().position(|&b| b == b'{').map_or(0, |at| at + 1);
    let empty = body[brace..].trim_ascii_start().starts_with(b"}");
    let field = format!(
        r#""previous_response_id":{}{}"#,
        serde_json::Value::from(previous),
        if empty { "" } else { "," }
    );
    let mut out = Vec::with_capacity(body.len() + field.len());
    out.extend_from_slice(&body[..brace]);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&body[brace..]);
    Bytes::from(out)
}

/// A request in `dialect` as Chat Completions.
fn to_chat(dialect: Dialect, body: &[u8]) -> Result<Bytes, Untranslatable> {
    let translated = match dialect {
        Dialect::Chat => return Ok(Bytes::copy_from_slice(body)),
        Dialect::Responses => responses::to_chat(body),
        Dialect::Messages => messages::to_chat(body),
    };
    translated.map_err(|error| match error {
        ProviderError::Unsupported { message, param } => Untranslatable { message, param },
        other => Untranslatable { message: other.to_string(), param: None },
    })
}

/// A Chat answer as `dialect`'s answer to `request`.
fn from_chat(dialect: Dialect, request: &Bytes, reply: Reply) -> Result<Reply, ProviderError> {
    let Reply { payload, headers, usage } = reply;
    let payload = match payload {
        Payload::Json(chat) => Payload::Json(match dialect {
            Dialect::Chat => chat,
            Dialect::Responses => responses::answer(request, &new_id("resp_"), &chat)?,
            Dialect::Messages => messages::answer(request, &chat)?,
        }),
        Payload::Stream(frames) => Payload::Stream(match dialect {
            Dialect::Chat => frames,
            Dialect::Responses => reframe::reframe(frames, responses::writer(request, &new_id("resp_"))),
            Dialect::Messages => reframe::reframe(frames, messages::writer(request)),
        }),
    };
    Ok(Reply { payload, headers, usage })
}

/// An upstream's refusal, as the client's dialect words it (the status is kept).
fn error_from_chat(dialect: Dialect, error: ProviderError) -> ProviderError {
    match (dialect, error) {
        (Dialect::Messages, ProviderError::Status { status, retry_after, body, .. }) => {
            ProviderError::Status {
                status,
                retry_after,
                content_type: Some(HeaderValue::from_static("application/json")),
                body: messages::error_body(status, &body),
            }
        }
        (_, error) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_continued_id_goes_in_front_of_any_body() {
        let named = |body: &str| with_previous(&Bytes::copy_from_slice(body.as_bytes()), "resp_\"1");
        let out: serde_json::Value = serde_json::from_slice(&named(r#" {"input":[]}"#)).unwrap();
        assert_eq!(out, serde_json::json!({"previous_response_id": "resp_\"1", "input": []}));
        let out: serde_json::Value = serde_json::from_slice(&named("{ }")).unwrap();
        assert_eq!(out, serde_json::json!({"previous_response_id": "resp_\"1"}));
    }
}

/// A fresh id with `prefix`, in the style of the provider's own (`resp_…`, `msg_…`).
pub(crate) fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    id.push_str(&uuid::Uuid::new_v4().simple().to_string());
    id
}

/// The native pass-through scanners alone, for `benches/translate.rs`: what relaying a
/// Responses or Messages stream untouched costs.
#[doc(hidden)]
pub mod bench {
    use bytes::Bytes;
    use futures_util::{FutureExt, StreamExt};

    use super::Dialect;
    use crate::providers::{Frames, ProviderError};

    /// A recorded native stream in `dialect`, fed in `piece`-byte chunks through the scanner
    /// that reads it for commit, end and usage; the bytes relayed.
    pub fn pass_through(dialect: Dialect, sse: &[u8], piece: usize) -> usize {
        frames(dialect, sse, piece).iter().map(|f| f.bytes.len()).sum()
    }

    /// The bytes a native stream's scanner relays, up to its end or first error.
    pub fn relayed(dialect: Dialect, sse: &[u8], piece: usize) -> Vec<u8> {
        frames(dialect, sse, piece).iter().flat_map(|f| f.bytes.iter().copied()).collect()
    }

    fn frames(dialect: Dialect, sse: &[u8], piece: usize) -> Vec<crate::providers::Frame> {
        let chunks: Vec<Result<Bytes, ProviderError>> =
            sse.chunks(piece.max(1)).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let raw = futures_util::stream::iter(chunks).boxed();
        let frames: Frames = match dialect {
            Dialect::Responses => crate::providers::openai::responses::frames(raw),
            Dialect::Messages => crate::providers::anthropic::passthrough::frames(raw),
            Dialect::Chat => crate::providers::openai::stream::frames(raw, false),
        };
        // Every chunk is already there, so the stream never waits.
        let frames = frames.take_while(|f| std::future::ready(f.is_ok())).collect::<Vec<_>>().now_or_never();
        frames.into_iter().flatten().flatten().collect()
    }
}
