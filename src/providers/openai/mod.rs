//! OpenAI and every OpenAI-compatible host: pass-through, no translation.
//!
//! The request body is sent as the client wrote it (only `model` rewritten, by the router);
//! the response body and stream bytes come back untouched.

mod config;
pub(crate) mod responses;
pub(crate) mod stream;

pub use config::{OpenAiConfig, PRESETS, Preset};

use futures_util::future::BoxFuture;
use http::Uri;
use http::header::{self, HeaderMap};
use secrecy::ExposeSecret;

use super::client::{Upstream, event_stream, extra_headers, join_uri, relayed_headers, secret_header};
use super::{BuildError, Call, Limits, Provider, ProviderError, Reply};

/// An OpenAI-compatible upstream with its own connection pool.
pub struct OpenAi {
    upstream: Upstream,
    chat_uri: Uri,
    embeddings_uri: Uri,
    stream_usage: bool,
}

impl OpenAi {
    /// Builds the adapter and its pooled client from validated settings.
    pub fn new(config: &OpenAiConfig, limits: &Limits) -> Result<Self, BuildError> {
        let mut headers: HeaderMap = extra_headers(&config.headers)?;
        if let Some(key) = config.api_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            headers.insert(
                header::AUTHORIZATION,
                secret_header(&format!("Bearer {}", key.expose_secret()), "api_key")?,
            );
        }
        Ok(Self {
            upstream: Upstream::new(headers, &config.forward_headers, limits),
            chat_uri: join_uri(&config.base_url, "/chat/completions")?,
            embeddings_uri: join_uri(&config.base_url, "/embeddings")?,
            stream_usage: config.stream_usage,
        })
    }
}

/// Sends an OpenAI-format call to `uri` and relays the answer as it is.
/// The usage chunk is left out of a stream when the proxy, not the client, asked for it.
pub(crate) async fn pass_through(upstream: &Upstream, uri: Uri, call: Call) -> Result<Reply, ProviderError> {
    let response = upstream.post(uri, call.body, call.request_id, call.forwarded).await?;
    let headers = relayed_headers(response.headers());
    if call.stream {
        let frames = stream::frames(event_stream(response)?, !call.client_wants_usage);
        return Ok(Reply::stream(frames).with_headers(headers));
    }
    Ok(Reply::openai_json(upstream.json_body(response).await?).with_headers(headers))
}

impl Provider for OpenAi {
    fn forward_headers(&self) -> &[http::HeaderName] {
        self.upstream.forward_headers()
    }

    fn asks_for_stream_usage(&self) -> bool {
        self.stream_usage
    }

    fn chat(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(pass_through(&self.upstream, self.chat_uri.clone(), call))
    }

    fn embeddings(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(pass_through(&self.upstream, self.embeddings_uri.clone(), call))
    }
}
