//! The Google AI Gemini API: chat (`generateContent`, `streamGenerateContent?alt=sse`) and
//! embeddings (`batchEmbedContents`), translated both ways. The key travels in the
//! `x-goog-api-key` header, never in the URL, so it cannot leak into URL logs.

mod config;
mod request;
mod response;
mod stream;

pub use config::GeminiConfig;

use futures_util::future::BoxFuture;
use http::Uri;
use secrecy::ExposeSecret;

use super::client::{
    Upstream, encode_path_segment, event_stream, extra_headers, relayed_headers, secret_header,
};
use super::translate::response::{ChunkWriter, to_openai_error};
use super::translate::stream::translate;
use super::{BuildError, Call, Limits, Provider, ProviderError, Reply};

/// A Gemini API key with its own connection pool.
pub struct Gemini {
    upstream: Upstream,
    base_url: String,
}

impl Gemini {
    /// Builds the adapter and its pooled client from validated settings.
    pub fn new(config: &GeminiConfig, limits: &Limits) -> Result<Self, BuildError> {
        let mut headers = extra_headers(&config.headers)?;
        let key = config.api_key.as_ref().map(ExposeSecret::expose_secret).unwrap_or_default();
        headers.insert("x-goog-api-key", secret_header(key, "api_key")?);
        Ok(Self {
            upstream: Upstream::new(headers, &config.forward_headers, limits),
            base_url: config.base_url.trim_end_matches('/').to_string(),
        })
    }

    /// `{base}/v1beta/models/{model}:{method}`, the model percent-encoded.
    fn uri(&self, model: &str, method: &str) -> Result<Uri, ProviderError> {
        format!("{}/v1beta/models/{}:{method}", self.base_url, encode_path_segment(model))
            .parse()
            .map_err(|_| ProviderError::unsupported(format!("`{model}` cannot be a Gemini model name"), None))
    }

    /// Sends a translated body; error bodies come back in OpenAI's envelope.
    async fn post(
        &self,
        uri: Uri,
        body: &serde_json::Value,
        request_id: http::HeaderValue,
        forwarded: http::HeaderMap,
    ) -> Result<http::Response<hyper::body::Incoming>, ProviderError> {
        let body = super::translate::to_bytes(body);
        self.upstream
            .post(uri, body, request_id, forwarded)
            .await
            .map_err(|e| to_openai_error(e, response::read_error))
    }

    async fn chat(&self, call: Call) -> Result<Reply, ProviderError> {
        let translated = request::translate(&call.body, call.stream)?;
        let uri = match call.stream {
            true => self.uri(&call.model_id, "streamGenerateContent?alt=sse")?,
            false => self.uri(&call.model_id, "generateContent")?,
        };
        let response = self.post(uri, &translated.body, call.request_id, call.forwarded).await?;
        let headers = relayed_headers(response.headers());
        if call.stream {
            let events = event_stream(response)?;
            let translator = stream::GeminiStream::new(&call.model_id);
            let frames = translate(events, translator, ChunkWriter::new(translated.include_usage));
            return Ok(Reply::stream(frames).with_headers(headers));
        }
        let body = self.upstream.json_body(response).await?;
        let (body, usage) = response::translate(&body, &call.model_id)?;
        Ok(Reply::json(body, usage).with_headers(headers))
    }

    async fn embed(&self, call: Call) -> Result<Reply, ProviderError> {
        let translated = request::embeddings(&call.body, &call.model_id)?;
        let uri = self.uri(&call.model_id, "batchEmbedContents")?;
        let response = self.post(uri, &translated.body, call.request_id, call.forwarded).await?;
        let headers = relayed_headers(response.headers());
        let body = self.upstream.json_body(response).await?;
        let body = response::embeddings(&body, &call.model_id, translated.base64)?;
        Ok(Reply::json(body, None).with_headers(headers))
    }
}

impl Provider for Gemini {
    fn forward_headers(&self) -> &[http::HeaderName] {
        self.upstream.forward_headers()
    }

    fn chat(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(Gemini::chat(self, call))
    }

    fn embeddings(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(self.embed(call))
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
        request::translate(body, stream)
            .map(|t| crate::providers::translate::to_bytes(&t.body).len())
            .unwrap_or(0)
    }

    /// Provider answer → OpenAI `chat.completion`; its length.
    pub fn response(body: &[u8]) -> usize {
        response::translate(body, "gemini-x").map(|(b, _)| b.len()).unwrap_or(0)
    }

    /// A recorded provider stream → OpenAI chunks, fed in `piece`-byte chunks; bytes written.
    pub fn stream(sse: &[u8], piece: usize) -> usize {
        translate_recorded(&mut stream::GeminiStream::new("gemini-x"), sse, piece, true)
    }

    /// Provider answer → OpenAI `chat.completion`.
    pub(crate) fn answer(body: &[u8]) -> Option<bytes::Bytes> {
        response::translate(body, "gemini-x").ok().map(|(body, _)| body)
    }

    /// OpenAI embeddings request → provider request body; its length.
    pub(crate) fn embeddings_request(body: &[u8]) -> usize {
        request::embeddings(body, "embed-x")
            .map(|t| crate::providers::translate::to_bytes(&t.body).len())
            .unwrap_or(0)
    }

    /// Provider embeddings answer → OpenAI embeddings list, as floats or base64.
    pub(crate) fn embeddings_answer(body: &[u8], base64: bool) -> Option<bytes::Bytes> {
        response::embeddings(body, "embed-x", base64).ok()
    }

    /// The stream translator, for `crate::fuzzing` to check what it writes.
    pub(crate) fn translator() -> impl crate::providers::translate::stream::Translate {
        stream::GeminiStream::new("gemini-x")
    }

    /// An error body → (message, OpenAI error type), if it is Gemini's error shape.
    pub(crate) fn error(body: &[u8]) -> Option<(String, String)> {
        response::read_error(body)
    }
}
