//! One request's context: created at the edge, filled by auth, routing and the relay, read by
//! the access log. It is where what a request carries from edge to log lives (keys,
//! reservations and spans will join it), so no layer needs a side channel to the next.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, Uri};
use tokio::time::Instant;

use crate::usage::Usage;

/// What is known about one request, from the edge to its access-log line.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The client's (bounded) `x-request-id`, or a generated one.
    pub request_id: HeaderValue,
    /// When the edge saw the request.
    pub started: Instant,
    /// The request line.
    pub method: Method,
    /// The request line.
    pub uri: Uri,
    /// The model asked for (set once the body is read).
    pub model: Option<Arc<str>>,
    /// The provider whose answer was returned.
    pub provider: Option<Arc<str>>,
    /// Upstream attempts sent.
    pub attempts: u32,
    /// Token usage the upstream reported.
    pub usage: Option<Usage>,
    /// The error the proxy answered with, or a stream's end (`stream_interrupted`, …).
    pub error: Option<&'static str>,
}

/// Marks a streaming response: its log line is written by the relay when the stream ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoggedAtStreamEnd;

impl RequestCtx {
    /// A fresh context at the edge.
    pub fn new(request_id: HeaderValue, method: Method, uri: Uri) -> Self {
        Self {
            request_id,
            started: Instant::now(),
            method,
            uri,
            model: None,
            provider: None,
            attempts: 0,
            usage: None,
            error: None,
        }
    }

    /// Time since the edge saw the request.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Writes the request's one access-log line: `warn` for a 5xx or a stream that did not
    /// complete, `debug` for a successful health check, else `info`. Never a key or a body.
    pub fn log(&self, status: u16, stream: Option<&str>) {
        let path = self.uri.path();
        if path.starts_with("/health") && status < 500 {
            tracing::debug!(status, path, "health check");
            return;
        }
        let model = self.model.as_deref().unwrap_or("");
        let provider = self.provider.as_deref().unwrap_or("none");
        let latency_ms = self.elapsed().as_secs_f64() * 1000.0;
        let prompt_tokens = self.usage.map(|u| u.prompt_tokens);
        let completion_tokens = self.usage.map(|u| u.completion_tokens);
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    method = self.method.as_str(),
                    path,
                    request_id = self.request_id.to_str().unwrap_or(""),
                    status,
                    model,
                    provider,
                    attempts = self.attempts,
                    latency_ms,
                    prompt_tokens,
                    completion_tokens,
                    error = self.error,
                    stream,
                    "request"
                )
            };
        }
        if status >= 500 || stream.is_some_and(|s| s != "completed") {
            line!(warn);
        } else {
            line!(info);
        }
    }
}
