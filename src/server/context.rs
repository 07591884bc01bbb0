//! One request's context: created at the edge, filled by auth, routing and the relay, read by
//! the access log. It is where what a request carries from edge to log lives (keys,
//! reservations and spans will join it), so no layer needs a side channel to the next.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Method, Uri};
use tokio::time::Instant;

use crate::accounting::ledger::Ledger;
use crate::store::LedgerRow;
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
    /// The virtual key that called, once let in.
    pub key_id: Option<Arc<str>>,
    /// That key's team.
    pub team_id: Option<Arc<str>>,
    /// The endpoint (`chat`, `responses`, …), for the ledger; `None` outside the generative
    /// endpoints, which leave no ledger record.
    pub endpoint: Option<&'static str>,
    /// The client asked for a stream.
    pub stream: bool,
    /// The model that served, when a fallback changed it.
    pub served_model: Option<Arc<str>>,
    /// What the request cost, once known.
    pub cost: Option<crate::accounting::Money>,
    /// Time to the first content of a stream.
    pub ttft: Option<Duration>,
    /// The proxy's own time: all but the wait on upstreams.
    pub overhead: Duration,
    /// Unix milliseconds when the request arrived (the ledger's time).
    pub arrived_ms: i64,
    /// The request and response bodies, redacted, when `ledger.bodies` is on.
    pub bodies: Option<Arc<str>>,
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
            key_id: None,
            team_id: None,
            endpoint: None,
            stream: false,
            served_model: None,
            cost: None,
            ttft: None,
            overhead: Duration::ZERO,
            bodies: None,
            arrived_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// Time since the edge saw the request.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the request: its access-log line and, for a generative endpoint, its ledger
    /// record (`stream` is how a stream ended; `None` for a complete answer).
    pub fn finish(&self, ledger: &Ledger, status: u16, stream: Option<&str>) {
        self.log(status, stream);
        if let Some(endpoint) = self.endpoint
            && ledger.enabled()
        {
            ledger.record(self.ledger_row(endpoint, status, stream));
        }
    }

    fn ledger_row(&self, endpoint: &str, status: u16, stream: Option<&str>) -> LedgerRow {
        let usage = self.usage.unwrap_or_default();
        let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let outcome = match (stream, status) {
            (Some(end), _) => end,
            (None, 200..=299) => "ok",
            (None, 401 | 403 | 429) if self.attempts == 0 => "refused",
            (None, 400..=499) => "client_error",
            (None, _) => "failed",
        };
        LedgerRow {
            id: 0,
            ts_ms: self.arrived_ms,
            request_id: self.request_id.to_str().unwrap_or("").to_string(),
            key_id: self.key_id.as_deref().map(str::to_string),
            team_id: self.team_id.as_deref().map(str::to_string),
            endpoint: endpoint.to_string(),
            model: self.model.as_deref().unwrap_or("").to_string(),
            served_model: self
                .served_model
                .as_deref()
                .or(self.model.as_deref())
                .filter(|_| self.provider.is_some())
                .map(str::to_string),
            provider: self.provider.as_deref().map(str::to_string),
            status,
            outcome: outcome.to_string(),
            attempts: self.attempts,
            stream: self.stream,
            prompt_tokens: tokens(usage.prompt_tokens),
            completion_tokens: tokens(usage.completion_tokens),
            cached_tokens: tokens(usage.cached_tokens.unwrap_or(0)),
            cache_write_tokens: tokens(usage.cache_write_tokens.unwrap_or(0)),
            reasoning_tokens: tokens(usage.reasoning_tokens.unwrap_or(0)),
            cost_nanos: self.cost.map_or(0, |c| c.nanos()),
            latency_ms: self.elapsed().as_millis() as i64,
            ttft_ms: self.ttft.map(|t| t.as_millis() as i64),
            overhead_us: self.overhead.as_micros() as i64,
            error: self.error.map(str::to_string),
            bodies: self.bodies.as_deref().map(str::to_string),
        }
    }

    /// Writes the request's one access-log line: `warn` for a 5xx or a stream that did not
    /// complete, `debug` for a successful health check, else `info`. Never a key or a body.
    fn log(&self, status: u16, stream: Option<&str>) {
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
                    key = self.key_id.as_deref(),
                    attempts = self.attempts,
                    latency_ms,
                    prompt_tokens,
                    completion_tokens,
                    cost_usd = self.cost.map(|c| c.usd()),
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
