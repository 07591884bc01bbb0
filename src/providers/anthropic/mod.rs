//! Anthropic's Messages API: Chat Completions requests, answers, streams and errors
//! translated both ways, and Messages requests relayed untouched. What maps to what, and what
//! is refused, is listed in docs/providers.md.

mod config;
pub(crate) mod passthrough;
mod request;
mod response;
mod stream;

pub use config::AnthropicConfig;

use futures_util::future::BoxFuture;
use http::Uri;
use secrecy::ExposeSecret;

use super::client::{Upstream, event_stream, extra_headers, join_uri, relayed_headers, secret_header};
use super::translate::response::{ChunkWriter, to_openai_error};
use super::translate::stream::translate;
use super::{BuildError, Call, Dialect, Limits, Provider, ProviderError, Reply};

/// An Anthropic account with its own connection pool.
pub struct Anthropic {
    upstream: Upstream,
    messages_uri: Uri,
    count_tokens_uri: Uri,
    default_max_tokens: u64,
}

/// The API version sent when the client did not name one.
const ANTHROPIC_VERSION: http::HeaderValue = http::HeaderValue::from_static("2023-06-01");

impl Anthropic {
    /// Builds the adapter and its pooled client from validated settings.
    pub fn new(config: &AnthropicConfig, limits: &Limits) -> Result<Self, BuildError> {
        let mut headers = extra_headers(&config.headers)?;
        let key = config.api_key.as_ref().map(ExposeSecret::expose_secret).unwrap_or_default();
        headers.insert("x-api-key", secret_header(key, "api_key")?);
        Ok(Self {
            upstream: Upstream::new(headers, &config.forward_headers, limits),
            messages_uri: join_uri(&config.base_url, "/v1/messages")?,
            count_tokens_uri: join_uri(&config.base_url, "/v1/messages/count_tokens")?,
            default_max_tokens: config.max_tokens,
        })
    }

    async fn send(&self, mut call: Call) -> Result<Reply, ProviderError> {
        if call.dialect == Dialect::Messages {
            // The client's own version: its request is written for it.
            call.forwarded.entry("anthropic-version").or_insert(ANTHROPIC_VERSION);
            return self.relay(self.messages_uri.clone(), call).await;
        }
        // A translated request is written for the version the translator knows.
        call.forwarded.insert("anthropic-version", ANTHROPIC_VERSION);
        let translated =
            request::translate(&call.body, &call.model_id, call.stream, self.default_max_tokens)?;
        let body = super::translate::to_bytes(&translated.body);
        let response = self
            .upstream
            .post(self.messages_uri.clone(), body, call.request_id, call.forwarded)
            .await
            .map_err(|e| to_openai_error(e, response::read_error))?;
        let headers = relayed_headers(response.headers());
        if call.stream {
            let events = event_stream(response)?;
            let translator = stream::AnthropicStream::new(translated.json_tool);
            let frames = translate(events, translator, ChunkWriter::new(translated.include_usage));
            return Ok(Reply::stream(frames).with_headers(headers));
        }
        let body = self.upstream.json_body(response).await?;
        let (body, usage) = response::translate(&body, translated.json_tool.as_deref())?;
        Ok(Reply::json(body, usage).with_headers(headers))
    }

    /// A Messages call sent as the client wrote it, and the answer relayed as Anthropic sent
    /// it: errors in Anthropic's own shape, the stream byte for byte.
    async fn relay(&self, uri: Uri, call: Call) -> Result<Reply, ProviderError> {
        let response = self.upstream.post(uri, call.body, call.request_id, call.forwarded).await?;
        let headers = relayed_headers(response.headers());
        if call.stream {
            return Ok(Reply::stream(passthrough::frames(event_stream(response)?)).with_headers(headers));
        }
        let body = self.upstream.json_body(response).await?;
        let usage = passthrough::usage(&body);
        Ok(Reply::json(body, usage).with_headers(headers))
    }
}

impl Provider for Anthropic {
    fn speaks(&self, dialect: Dialect) -> bool {
        matches!(dialect, Dialect::Chat | Dialect::Messages)
    }

    fn forward_headers(&self) -> &[http::HeaderName] {
        self.upstream.forward_headers()
    }

    fn chat(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(self.send(call))
    }

    fn count_tokens(&self, mut call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        call.forwarded.entry("anthropic-version").or_insert(ANTHROPIC_VERSION);
        Box::pin(self.relay(self.count_tokens_uri.clone(), call))
    }
}

/// The translation steps alone, without the network, for `benches/translate.rs` and the fuzz
/// targets (`crate::fuzzing`).
#[doc(hidden)]
pub mod bench {
    use super::{request, response, stream};
    use crate::providers::translate::stream::translate_recorded;

    /// OpenAI request → provider request body; its length.
    pub fn request(body: &[u8], stream: bool) -> usize {
        request::translate(body, "claude-x", stream, 4096)
            .map(|t| crate::providers::translate::to_bytes(&t.body).len())
            .unwrap_or(0)
    }

    /// Provider answer → OpenAI `chat.completion`; its length.
    pub fn response(body: &[u8]) -> usize {
        response::translate(body, None).map(|(b, _)| b.len()).unwrap_or(0)
    }

    /// A recorded provider stream → OpenAI chunks, fed in `piece`-byte chunks; bytes written.
    pub fn stream(sse: &[u8], piece: usize) -> usize {
        translate_recorded(&mut stream::AnthropicStream::new(None), sse, piece, true)
    }

    /// Provider answer → OpenAI `chat.completion`, when `json_tool` (if any) carries the answer.
    pub(crate) fn answer(body: &[u8], json_tool: Option<&str>) -> Option<bytes::Bytes> {
        response::translate(body, json_tool).ok().map(|(body, _)| body)
    }

    /// The stream translator, for `crate::fuzzing` to check what it writes.
    pub(crate) fn translator(json_tool: Option<&str>) -> impl crate::providers::translate::stream::Translate {
        stream::AnthropicStream::new(json_tool.map(str::to_string))
    }

    /// An error body → (message, OpenAI error type), if it is Anthropic's error shape.
    pub(crate) fn error(body: &[u8]) -> Option<(String, String)> {
        response::read_error(body)
    }
}
