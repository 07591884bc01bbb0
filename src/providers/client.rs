//! The HTTP plumbing every network adapter shares: the pooled client, sending one request,
//! and turning what comes back into a body, a byte stream or a [`ProviderError`].

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};

use super::{BuildError, Limits, PerCore, ProviderError, retry_after};

/// Bodies of error responses are small; a larger one is cut, never buffered whole.
const MAX_ERROR_BODY_BYTES: usize = 1024 * 1024;

/// The pooled HTTP/1.1 + HTTP/2 (by ALPN) client every HTTP adapter uses.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds one pooled client: TLS with the Mozilla roots, HTTP/2 where the upstream offers it,
/// `TCP_NODELAY`, a connect timeout. Redirects are never followed (hyper does not): a
/// redirected POST would silently become a GET, so a 3xx is the failure it is.
fn http_client(limits: &Limits) -> HttpClient {
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

/// One upstream host: a connection pool per core and the headers every request carries
/// (content type, user agent, credentials marked sensitive so they never reach a log).
pub(crate) struct Upstream {
    clients: PerCore<HttpClient>,
    headers: HeaderMap,
    forward: Vec<HeaderName>,
    max_response_bytes: usize,
}

impl Upstream {
    /// A client for one provider; `headers` are its credentials and configured extras,
    /// `forward` the client headers it receives beyond the default allow-list.
    pub(crate) fn new(headers: HeaderMap, forward: &[String], limits: &Limits) -> Self {
        let mut all = HeaderMap::with_capacity(headers.len() + 2);
        all.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        all.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("llm-proxy/", env!("CARGO_PKG_VERSION"))),
        );
        all.extend(headers);
        Self {
            clients: PerCore::new(|_| http_client(limits)),
            headers: all,
            // Validated at config load: every name parses.
            forward: forward.iter().filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok()).collect(),
            max_response_bytes: limits.max_response_bytes,
        }
    }

    /// The client headers this provider receives beyond the default allow-list.
    pub(crate) fn forward_headers(&self) -> &[HeaderName] {
        &self.forward
    }

    /// POSTs `body` to `uri` with the client's `forwarded` headers (never overriding the
    /// provider's own). A non-success status becomes [`ProviderError::Status`].
    pub(crate) async fn post(
        &self,
        uri: Uri,
        body: Bytes,
        request_id: HeaderValue,
        forwarded: HeaderMap,
    ) -> Result<http::Response<hyper::body::Incoming>, ProviderError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri;
        let mut headers = self.headers.clone();
        // The provider's own headers win: a client must not replace credentials or versions.
        for (name, value) in &forwarded {
            if !self.headers.contains_key(name) {
                headers.append(name, value.clone());
            }
        }
        *request.headers_mut() = headers;
        request.headers_mut().insert("x-request-id", request_id);
        let response = self.clients.get().request(request).await.map_err(ProviderError::from_client)?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        Ok(response)
    }

    /// Reads a whole success body, bounded, checked to be JSON.
    pub(crate) async fn json_body(
        &self,
        response: http::Response<hyper::body::Incoming>,
    ) -> Result<Bytes, ProviderError> {
        let status = response.status();
        let body = read_body(response.into_body(), self.max_response_bytes).await?;
        if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
            return Err(ProviderError::InvalidResponse(format!("{status} body is not valid JSON")));
        }
        Ok(body)
    }
}

/// The upstream response headers the client sees, renamed under
/// [`super::UPSTREAM_HEADER_PREFIX`].
pub(crate) fn relayed_headers(headers: &HeaderMap) -> HeaderMap {
    let mut relayed = HeaderMap::new();
    for (name, value) in headers {
        if let Some(renamed) = relayed_name(name.as_str()) {
            relayed.append(renamed, value.clone());
        }
    }
    relayed
}

/// The relayed name of an upstream header, if it is relayed: the ones OpenAI and Anthropic
/// send on every answer are spelled out, so renaming them allocates nothing.
fn relayed_name(name: &str) -> Option<HeaderName> {
    macro_rules! known {
        ($($name:literal),* $(,)?) => {
            match name {
                $($name => return Some(HeaderName::from_static(concat!("x-llm-proxy-upstream-", $name))),)*
                _ => {}
            }
        };
    }
    known!(
        "x-request-id",
        "request-id",
        "openai-processing-ms",
        "retry-after",
        "x-ratelimit-limit-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    );
    if !super::relays_upstream_header(name) {
        return None;
    }
    HeaderName::from_bytes(format!("{}{name}", super::UPSTREAM_HEADER_PREFIX).as_bytes()).ok()
}

/// The body of a response that must be `text/event-stream`, as it arrives.
pub(crate) fn event_stream(
    response: http::Response<hyper::body::Incoming>,
) -> Result<BoxStream<'static, Result<Bytes, ProviderError>>, ProviderError> {
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("text/event-stream") {
        return Err(ProviderError::InvalidResponse(format!(
            "asked for a stream, got content-type {content_type:?}"
        )));
    }
    Ok(response.into_body().into_data_stream().map_err(ProviderError::from_body).boxed())
}

/// Turns a non-success response into [`ProviderError::Status`], keeping what the router and
/// the client may need (retry-after, content-type, a bounded body).
async fn status_error(response: http::Response<hyper::body::Incoming>) -> ProviderError {
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

/// Reads a response body into memory, refusing more than `limit` bytes.
async fn read_body(body: hyper::body::Incoming, limit: usize) -> Result<Bytes, ProviderError> {
    let too_large = || ProviderError::InvalidResponse(format!("body larger than {limit} bytes"));
    if http_body::Body::size_hint(&body).lower() > limit as u64 {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => match err.downcast::<hyper::Error>() {
            Ok(err) => Err(ProviderError::from_body(*err)),
            Err(_) => Err(too_large()),
        },
    }
}

/// A credential or configured header, marked sensitive; the error names the setting, never
/// the value.
pub(crate) fn secret_header(value: &str, setting: &str) -> Result<HeaderValue, BuildError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| BuildError::new(format!("{setting}: invalid header value")))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The configured `headers:` of a provider, as sensitive header values.
pub(crate) fn extra_headers(
    headers: &std::collections::BTreeMap<String, SecretString>,
) -> Result<HeaderMap, BuildError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| BuildError::new(e.to_string()))?;
        map.insert(name.clone(), secret_header(value.expose_secret(), &format!("headers.{name}"))?);
    }
    Ok(map)
}

/// Percent-encodes everything but unreserved characters, so that a model or deployment name
/// placed in a URL path stays one segment whatever it contains.
pub(crate) fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    // `.` and `..` would be read as path steps.
    let dots_ok = !matches!(segment, "." | "..");
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') || (byte == b'.' && dots_ok) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `base` (trailing `/` ignored) joined with `path`, as a URI.
pub(crate) fn join_uri(base: &str, path: &str) -> Result<Uri, BuildError> {
    format!("{}{path}", base.trim_end_matches('/')).parse::<Uri>().map_err(|e| BuildError::new(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_headers_are_relayed_by_name_only() {
        let mut upstream = HeaderMap::new();
        for (name, value) in [
            ("x-request-id", "req_1"),
            ("x-ratelimit-remaining-tokens", "99"),
            ("x-ratelimit-limit-project-tokens", "7"),
            ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:00Z"),
            ("set-cookie", "s=1"),
            ("server", "cloudflare"),
        ] {
            upstream.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        let relayed = relayed_headers(&upstream);
        let names: Vec<&str> = relayed.keys().map(HeaderName::as_str).collect();
        assert_eq!(relayed.len(), 4, "{names:?}");
        assert_eq!(relayed["x-llm-proxy-upstream-x-request-id"], "req_1");
        assert_eq!(
            relayed["x-llm-proxy-upstream-x-ratelimit-limit-project-tokens"], "7",
            "unlisted x-ratelimit-* too"
        );
        assert!(relayed.get("x-llm-proxy-upstream-set-cookie").is_none());
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(encode_path_segment("gpt-4o_mini.v1~x"), "gpt-4o_mini.v1~x");
        assert_eq!(encode_path_segment("../a/b?c#d e"), "..%2Fa%2Fb%3Fc%23d%20e");
        assert_eq!(encode_path_segment(".."), "%2E%2E");
    }
}
