//! OpenAI and every OpenAI-compatible host: pass-through, no translation.
//!
//! The request body is sent as the client wrote it (only `model` rewritten, by the router);
//! the response body and stream bytes come back untouched.

mod config;

pub use config::OpenAiConfig;

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::ExposeSecret;
use serde::de::IgnoredAny;

use super::{BuildError, ChatCall, Limits, PerCore, Provider, ProviderError, Reply, read_body, retry_after};

/// Bodies of error responses are small; a larger one is cut, never buffered whole.
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

/// The pooled HTTP/1.1 + HTTP/2 (by ALPN) client every HTTP adapter uses.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds one pooled client: TLS with the Mozilla roots, HTTP/2 where the upstream offers it,
/// `TCP_NODELAY`, a connect timeout. Redirects are never followed (hyper does not): a
/// redirected POST would silently become a GET, so a 3xx is the failure it is.
pub(crate) fn http_client(limits: &Limits) -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(limits.connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(https)
}

/// An OpenAI-compatible upstream with its own connection pool.
pub struct OpenAi {
    /// A pool per core: connections stay on the thread that uses them.
    clients: PerCore<HttpClient>,
    chat_uri: Uri,
    headers: HeaderMap,
    max_response_bytes: usize,
}

impl OpenAi {
    /// Builds the adapter and its pooled client from validated settings.
    pub fn new(config: &OpenAiConfig, limits: &Limits) -> Result<Self, BuildError> {
        let chat_uri = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let chat_uri = chat_uri.parse::<Uri>().map_err(|e| BuildError::new(e.to_string()))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("llm-proxy/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| BuildError::new(e.to_string()))?;
            let mut value = HeaderValue::from_str(value.expose_secret())
                .map_err(|_| BuildError::new(format!("header {name}: invalid value")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let Some(key) = config.api_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| BuildError::new("api_key: invalid header value"))?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        Ok(Self {
            clients: PerCore::new(|_| http_client(limits)),
            chat_uri,
            headers,
            max_response_bytes: limits.max_response_bytes,
        })
    }

    async fn send(&self, call: ChatCall) -> Result<Reply, ProviderError> {
        let mut request = Request::new(Full::new(call.body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.chat_uri.clone();
        *request.headers_mut() = self.headers.clone();
        request.headers_mut().insert("x-request-id", call.request_id);
        let response = self.clients.get().request(request).await.map_err(ProviderError::from_client)?;
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
            let events = response.into_body().into_data_stream().map_err(ProviderError::from_body);
            return Ok(Reply::Stream(events.boxed()));
        }
        let body = read_body(response.into_body(), self.max_response_bytes).await?;
        if serde_json::from_slice::<IgnoredAny>(&body).is_err() {
            return Err(ProviderError::InvalidResponse(format!("{status} body is not valid JSON")));
        }
        Ok(Reply::Json(body))
    }
}

/// Turns a non-success response into [`ProviderError::Status`], keeping what the router and
/// the client may need (retry-after, content-type, a bounded body).
pub(crate) async fn status_error(response: http::Response<hyper::body::Incoming>) -> ProviderError {
    let (parts, body) = response.into_parts();
    // A body we cannot read in full still leaves a useful status.
    let body = read_body(body, MAX_ERROR_BODY_BYTES).await.unwrap_or_else(|_| Bytes::new());
    ProviderError::Status {
        status: parts.status,
        retry_after: retry_after(&parts.headers),
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
        body,
    }
}

impl Provider for OpenAi {
    fn chat(&self, call: ChatCall) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(self.send(call))
    }
}
