//! CORS for browser clients, from `server.cors` (none when `allowed_origins` is empty).
//!
//! 1. A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//!    here, before the master key check (browsers never send credentials on a preflight):
//!    204, with the allow headers only when the origin is allowed.
//! 2. Any other request from an allowed origin gets `Access-Control-Allow-Origin` and
//!    `Access-Control-Expose-Headers` (our `x-llm-proxy-*`, `x-request-id`, rate-limit
//!    headers) on its response.
//! 3. Responses that depend on the origin say `Vary: Origin`, so caches keep them apart.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::CorsConfig;

const METHODS: HeaderValue = HeaderValue::from_static("GET, POST, OPTIONS");
const EXPOSED: HeaderValue = HeaderValue::from_static(
    "x-request-id, x-llm-proxy-provider, x-llm-proxy-model, x-llm-proxy-attempts, x-should-retry, \
     retry-after, x-ratelimit-limit-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-requests, \
     x-ratelimit-remaining-tokens, x-ratelimit-reset-requests, x-ratelimit-reset-tokens",
);

/// The CORS policy of one loaded config.
#[derive(Debug)]
pub(crate) struct Cors {
    any: bool,
    origins: Vec<HeaderValue>,
    /// `None`: echo what the preflight asks for.
    headers: Option<HeaderValue>,
    max_age: HeaderValue,
}

impl Cors {
    /// `None` when no origin is configured: no CORS headers at all.
    pub(crate) fn new(config: &CorsConfig) -> Option<Self> {
        if config.allowed_origins.is_empty() {
            return None;
        }
        let headers = config
            .allowed_headers
            .as_ref()
            .map(|list| HeaderValue::from_str(&list.join(", ")).unwrap_or(HeaderValue::from_static("")));
        Some(Self {
            any: config.allowed_origins.iter().any(|o| o == "*"),
            // Validated when the config was loaded.
            origins: config.allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect(),
            headers,
            max_age: HeaderValue::from(config.max_age_seconds),
        })
    }

    /// The value of `Access-Control-Allow-Origin` for `origin`, if it is allowed.
    fn allow(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any {
            Some(HeaderValue::from_static("*"))
        } else {
            self.origins
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
                .then(|| origin.clone())
        }
    }

    /// The answer to a preflight, if `method`/`headers` are one.
    pub(crate) fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        if method != Method::OPTIONS || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?;
        let mut response = StatusCode::NO_CONTENT.into_response();
        let out = response.headers_mut();
        out.insert(header::VARY, HeaderValue::from_static("Origin, Access-Control-Request-Headers"));
        if let Some(allowed) = self.allow(origin) {
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
            out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, METHODS);
            let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
            if let Some(allowed) = self.headers.clone().or_else(|| requested.cloned()) {
                out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
            }
            out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        }
        Some(response)
    }

    /// Adds the headers an actual (non-preflight) response from `origin` needs.
    pub(crate) fn decorate(&self, origin: Option<&HeaderValue>, response: &mut HeaderMap) {
        if !self.any {
            response.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(allowed) = origin.and_then(|origin| self.allow(origin)) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
        }
    }
}
