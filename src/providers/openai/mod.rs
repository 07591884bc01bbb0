//! OpenAI and every OpenAI-compatible host: pass-through, no translation.
//!
//! The request body is sent as the client wrote it (only `model` rewritten, by the router);
//! the response body and stream bytes come back untouched.

mod config;

pub use config::OpenAiConfig;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde::de::IgnoredAny;

use super::{BuildError, ChatCall, Limits, Provider, ProviderError, Reply, read_body, retry_after};

/// Bodies of error responses are small; a larger one is cut, never buffered whole.
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

/// An OpenAI-compatible upstream with its own connection pool.
pub struct OpenAi {
    client: reqwest::Client,
    chat_url: reqwest::Url,
    headers: HeaderMap,
    max_response_bytes: usize,
}

impl OpenAi {
    /// Builds the adapter and its pooled client from validated settings.
    pub fn new(config: &OpenAiConfig, limits: &Limits) -> Result<Self, BuildError> {
        let chat_url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let chat_url = reqwest::Url::parse(&chat_url).map_err(|e| BuildError(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| BuildError(e.to_string()))?;
            let mut value = HeaderValue::from_str(value.expose_secret())
                .map_err(|_| BuildError(format!("header {name}: invalid value")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(key) = config.api_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| BuildError("api_key: invalid header value".to_string()))?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .tcp_nodelay(true)
            // A redirected POST would silently become a GET; treat 3xx as the failure it is.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("llm-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError(e.without_url().to_string()))?;
        Ok(Self { client, chat_url, headers, max_response_bytes: limits.max_response_bytes })
    }

    async fn send(&self, call: ChatCall) -> Result<Reply, ProviderError> {
        let response = self
            .client
            .post(self.chat_url.clone())
            .headers(self.headers.clone())
            .header("x-request-id", call.request_id)
            .body(call.body)
            .send()
            .await
            .map_err(ProviderError::from_reqwest)?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(response).await);
        }
        if call.stream {
            let content_type =
                response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !content_type.starts_with("text/event-stream") {
                return Err(ProviderError::InvalidResponse(format!(
                    "asked for a stream, got content-type {content_type:?}"
                )));
            }
            let events = response.bytes_stream().map_err(ProviderError::from_reqwest);
            return Ok(Reply::Stream(events.boxed()));
        }
        let body = read_body(response, self.max_response_bytes).await?;
        if serde_json::from_slice::<IgnoredAny>(&body).is_err() {
            return Err(ProviderError::InvalidResponse(format!("{status} body is not valid JSON")));
        }
        Ok(Reply::Json(body))
    }
}

/// Turns a non-success response into [`ProviderError::Status`], keeping what the router and
/// the client may need (retry-after, content-type, a bounded body).
pub(crate) async fn status_error(response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    // A body we cannot read in full still leaves a useful status.
    let body = read_body(response, MAX_ERROR_BODY_BYTES).await.unwrap_or_else(|_| Bytes::new());
    ProviderError::Status { status, retry_after, content_type, body }
}

impl Provider for OpenAi {
    fn chat(&self, call: ChatCall) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(self.send(call))
    }
}
