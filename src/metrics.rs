//! Prometheus metrics: the registry, and handles created when a config is loaded so that the
//! request path only touches atomics (no label lookup, no lock).
//!
//! Labels are bounded: model and provider names come from the config, statuses from a fixed
//! list, outcomes and states from enums. Every metric is documented in README ("Metrics").

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// A deployment's states, as `llm_proxy_deployment_state{state=…}` shows them
/// (`router::health::State::label`).
pub const DEPLOYMENT_STATES: [&str; 5] =
    ["available", "paused", "cooling_down", "probing", "disabled_by_operator"];

/// Upper bounds (seconds) for request, upstream and first-token latencies.
const LATENCY_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];
/// Upper bounds (seconds) for the proxy's own overhead: microseconds matter here.
const OVERHEAD_BUCKETS: &[f64] =
    &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

/// The statuses `llm_proxy_requests_total` counts separately; any other is `other`.
const STATUSES: &[u16] = &[200, 400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 502, 503, 504];

/// How an upstream attempt ended: `llm_proxy_upstream_attempts_total{outcome=…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx (a stream: its first content arrived).
    Success,
    /// 400/413/422: the request's fault, relayed.
    ClientError,
    /// 429, or a busy answer saying when to come back: the deployment paused.
    RateLimited,
    /// A 5xx (or 529) without `Retry-After`.
    ServerError,
    /// 401/403: this provider's key is refused.
    AuthError,
    /// Any other status (404, 3xx, …).
    OtherStatus,
    /// Connect, first-token, idle or total timeout.
    Timeout,
    /// No connection could be made.
    ConnectError,
    /// The connection broke.
    TransportError,
    /// A 2xx that was not what it promised.
    InvalidResponse,
}

impl Outcome {
    const ALL: [Outcome; 10] = [
        Outcome::Success,
        Outcome::ClientError,
        Outcome::RateLimited,
        Outcome::ServerError,
        Outcome::AuthError,
        Outcome::OtherStatus,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::TransportError,
        Outcome::InvalidResponse,
    ];

    /// Its label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ClientError => "client_error",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::AuthError => "auth_error",
            Self::OtherStatus => "other_status",
            Self::Timeout => "timeout",
            Self::ConnectError => "connect_error",
            Self::TransportError => "transport_error",
            Self::InvalidResponse => "invalid_response",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    model: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    model: String,
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    model: String,
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    provider: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    model: String,
    provider: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// How a stream that started (status 200 sent) ended, as `llm_proxy_requests_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// `[DONE]` reached the client: `status="200"`.
    Completed,
    /// The upstream failed after the stream started: `status="stream_failed"`.
    Failed,
    /// The client went away first: `status="stream_client_gone"`.
    ClientGone,
    /// Still open when the shutdown grace ran out: `status="stream_shutdown"`.
    CutByShutdown,
}

impl StreamStatus {
    const CUT: [StreamStatus; 3] =
        [StreamStatus::Failed, StreamStatus::ClientGone, StreamStatus::CutByShutdown];

    fn label(self) -> &'static str {
        match self {
            Self::Completed => "200",
            Self::Failed => "stream_failed",
            Self::ClientGone => "stream_client_gone",
            Self::CutByShutdown => "stream_shutdown",
        }
    }
}

/// Why a client connection was refused, as `llm_proxy_connections_refused_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `server.max_connections` were already open.
    Limit,
    /// `accept` failed (e.g. out of file descriptors).
    AcceptError,
}

/// A counter read at scrape time from a function (e.g. a count kept by another library).
struct FnCounter(fn() -> u64);

impl fmt::Debug for FnCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnCounter")
    }
}

impl TypedMetric for FnCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for FnCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&(self.0)(), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The process's metrics. Created once; survives config reloads.
pub struct Metrics {
    registry: Registry,
    requests: Family<StatusLabels, Counter>,
    request_duration: HistogramFamily<ModelLabels>,
    failovers: Family<ModelLabels, Counter>,
    retries: Family<ModelLabels, Counter>,
    retry_budget_exhausted: Family<ModelLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    streams_broken: Family<DeploymentLabels, Counter>,
    upstream_duration: HistogramFamily<DeploymentLabels>,
    first_token: HistogramFamily<DeploymentLabels>,
    tokens: Family<TokenLabels, Counter>,
    deployment_state: Family<StateLabels, Gauge>,
    /// Deployments whose state gauges exist, so a reload can drop the ones removed (touched
    /// only at config load, never on the request path or by a scrape).
    stated: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    reloads: Family<ResultLabels, Counter>,
    /// Requests being served right now.
    pub in_flight: Gauge,
    /// Client connections open right now, across all cores (the connection cap counts on it).
    pub open_connections: Gauge,
    refused: Family<ReasonLabels, Counter>,
    /// Request time minus time spent waiting on upstreams.
    pub overhead: Histogram,
    /// Keys, limits, budgets, the ledger and the store.
    pub governance: Governance,
}

/// Reasons a virtual key is refused: `llm_proxy_key_refusals_total{reason=…}`.
pub const KEY_REFUSALS: [&str; 6] =
    ["unknown", "expired", "blocked", "team_blocked", "store_unavailable", "model_not_allowed"];
/// Limits that refuse requests: `llm_proxy_limit_refusals_total{limit=…}`.
pub const LIMIT_REFUSALS: [&str; 4] = ["requests", "tokens", "parallel", "budget"];

/// Governance metrics; every handle made at startup, so the request path touches atomics.
#[derive(Clone, Default)]
pub struct Governance {
    key_refusals: [Counter; KEY_REFUSALS.len()],
    limit_refusals: [Counter; LIMIT_REFUSALS.len()],
    /// Requests served past a soft budget.
    pub soft_budget_exceeded: Counter,
    /// Ledger records written to the store.
    pub ledger_written: Counter,
    /// Ledger records dropped because the queue was full.
    pub ledger_dropped: Counter,
    /// Ledger records waiting to be written.
    pub ledger_queue: Gauge,
    /// 1 while the store answers, 0 after a failed write or read until one succeeds.
    pub store_up: Gauge,
    /// Failed store operations (writes retried, reads refused or served from cache).
    pub store_errors: Counter,
    /// Nano-dollars spent, as priced.
    pub spend_nanos: Counter,
    /// Requests served by a deployment with no known price (costed at zero).
    pub unpriced: Counter,
}

impl Governance {
    /// Counts a refused key (`reason` one of [`KEY_REFUSALS`]).
    pub fn key_refused(&self, reason: &str) {
        if let Some(i) = KEY_REFUSALS.iter().position(|r| *r == reason) {
            self.key_refusals[i].inc();
        }
    }

    /// Counts a request refused by a limit (`limit` one of [`LIMIT_REFUSALS`]).
    pub fn limit_refused(&self, limit: &str) {
        if let Some(i) = LIMIT_REFUSALS.iter().position(|r| *r == limit) {
            self.limit_refusals[i].inc();
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "key_refusals",
            "Requests refused at authentication, by reason",
            KeyedCounters(KEY_REFUSALS.to_vec(), self.key_refusals.to_vec(), "reason"),
        );
        registry.register(
            "limit_refusals",
            "Requests refused by a key's or team's limit, by limit",
            KeyedCounters(LIMIT_REFUSALS.to_vec(), self.limit_refusals.to_vec(), "limit"),
        );
        registry.register(
            "soft_budget_exceeded",
            "Requests served past a soft budget",
            self.soft_budget_exceeded.clone(),
        );
        registry.register(
            "ledger_written",
            "Ledger records written to the store",
            self.ledger_written.clone(),
        );
        registry.register(
            "ledger_dropped",
            "Ledger records dropped because the write queue was full (requests are never held)",
            self.ledger_dropped.clone(),
        );
        registry.register(
            "ledger_queue_depth",
            "Ledger records waiting to be written",
            self.ledger_queue.clone(),
        );
        registry.register(
            "store_up",
            "1 while the store answers; 0 after a failure until an operation succeeds",
            self.store_up.clone(),
        );
        registry.register("store_errors", "Failed store operations", self.store_errors.clone());
        registry.register(
            "spend_nanodollars",
            "Spend priced from the price table, in nano-dollars",
            self.spend_nanos.clone(),
        );
    }
}

/// Counters kept in an array (so the request path indexes, not looks up), shown as one
/// labelled family.
#[derive(Debug)]
struct KeyedCounters(Vec<&'static str>, Vec<Counter>, &'static str);

impl TypedMetric for KeyedCounters {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for KeyedCounters {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        for (value, counter) in self.0.iter().zip(&self.1) {
            let labels = [(self.2, *value)];
            counter.encode(encoder.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("llm_proxy");
        let m = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            failovers: Family::default(),
            retries: Family::default(),
            retry_budget_exhausted: Family::default(),
            attempts: Family::default(),
            streams_broken: Family::default(),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            first_token: Family::new_with_constructor(latency_histogram),
            tokens: Family::default(),
            deployment_state: Family::default(),
            stated: std::sync::Mutex::default(),
            reloads: Family::default(),
            in_flight: Gauge::default(),
            open_connections: Gauge::default(),
            refused: Family::default(),
            overhead: Histogram::new(OVERHEAD_BUCKETS),
            governance: Governance::default(),
            registry: Registry::default(),
        };
        registry.register("requests", "Requests answered, by model and HTTP status", m.requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to complete answer (streams: to their end)",
            m.request_duration.clone(),
        );
        registry.register(
            "failovers",
            "Moves to another deployment after a failed attempt",
            m.failovers.clone(),
        );
        registry.register(
            "retries",
            "Extra tries beyond one per deployment (router.retries)",
            m.retries.clone(),
        );
        registry.register(
            "retry_budget_exhausted",
            "Retries not made because the retry budget was spent",
            m.retry_budget_exhausted.clone(),
        );
        registry.register(
            "upstream_attempts",
            "Upstream attempts by outcome (success, client_error, rate_limited, server_error, auth_error, other_status, timeout, connect_error, transport_error, invalid_response)",
            m.attempts.clone(),
        );
        registry.register(
            "upstream_streams_broken",
            "Streams that broke after they committed (their attempt counted a success)",
            m.streams_broken.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Time per upstream attempt, to the whole body (streams: to first bytes)",
            m.upstream_duration.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Streams: time from request to the first content (the commit)",
            m.first_token.clone(),
        );
        registry.register(
            "tokens",
            "Tokens reported by upstreams, in (prompt) and out (completion)",
            m.tokens.clone(),
        );
        registry.register(
            "deployment_state",
            "1 for each deployment's current state (available, paused, cooling_down, probing, disabled_by_operator)",
            m.deployment_state.clone(),
        );
        registry.register("config_reloads", "Config reloads by result", m.reloads.clone());
        registry.register("in_flight_requests", "Requests being served", m.in_flight.clone());
        registry.register(
            "open_connections",
            "Client connections open (all cores)",
            m.open_connections.clone(),
        );
        for reason in ["limit", "accept_error"] {
            // Shown at 0 from the start, so alerts can use rate() before the first refusal.
            let _ = get(&m.refused, &ReasonLabels { reason });
        }
        registry.register(
            "connections_refused",
            "Client connections refused: reason=limit (server.max_connections) or accept_error",
            m.refused.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log writer fell behind (logging never blocks a request)",
            FnCounter(crate::telemetry::dropped_lines),
        );
        registry.register(
            "overhead_seconds",
            "The proxy's own time per request: total minus time waiting on upstreams",
            m.overhead.clone(),
        );
        m.governance.register(&mut registry);
        Self { registry, ..m }
    }

    /// The handles of one model, created once per config load.
    pub fn model(&self, model: &str) -> ModelMetrics {
        let label = ModelLabels { model: model.to_string() };
        let status = |status: &str| StatusLabels { model: model.to_string(), status: status.to_string() };
        ModelMetrics(Arc::new(ModelHandles {
            requests: STATUSES.iter().map(|s| get(&self.requests, &status(&s.to_string()))).collect(),
            other_status: get(&self.requests, &status("other")),
            stream_cut: StreamStatus::CUT.map(|s| get(&self.requests, &status(s.label()))),
            duration: get(&self.request_duration, &label),
            failovers: get(&self.failovers, &label),
            retries: get(&self.retries, &label),
            budget_exhausted: get(&self.retry_budget_exhausted, &label),
        }))
    }

    /// The handles of one deployment, created once per config load.
    pub fn deployment(&self, model: &str, provider: &str) -> DeploymentMetrics {
        let labels = DeploymentLabels { model: model.to_string(), provider: provider.to_string() };
        let attempt = |outcome: Outcome| AttemptLabels {
            model: model.to_string(),
            provider: provider.to_string(),
            outcome: outcome.label(),
        };
        let tokens =
            |direction| TokenLabels { model: model.to_string(), provider: provider.to_string(), direction };
        let state = |state: &'static str| StateLabels {
            model: model.to_string(),
            provider: provider.to_string(),
            state,
        };
        self.stated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((model.to_string(), provider.to_string()));
        DeploymentMetrics(Arc::new(DeploymentHandles {
            attempts: Outcome::ALL.map(|o| get(&self.attempts, &attempt(o))),
            states: DEPLOYMENT_STATES.map(|s| get(&self.deployment_state, &state(s))),
            streams_broken: get(&self.streams_broken, &labels),
            duration: get(&self.upstream_duration, &labels),
            first_token: get(&self.first_token, &labels),
            tokens_in: get(&self.tokens, &tokens("in")),
            tokens_out: get(&self.tokens, &tokens("out")),
        }))
    }

    /// After a reload: drops the state gauges of deployments no longer configured, so they
    /// disappear from `/metrics` (scrapes only set values, so concurrent ones cannot race).
    pub fn retain_deployments<'a>(&self, kept: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let kept: std::collections::HashSet<(&str, &str)> = kept.into_iter().collect();
        let mut stated = self.stated.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        stated.retain(|(model, provider)| {
            let keep = kept.contains(&(model.as_str(), provider.as_str()));
            if !keep {
                for state in DEPLOYMENT_STATES {
                    let labels = StateLabels { model: model.clone(), provider: provider.clone(), state };
                    self.deployment_state.remove(&labels);
                }
            }
            keep
        });
    }

    /// Counts a refused client connection (a rare path: the family's lock is fine here).
    pub fn connection_refused(&self, why: Refused) {
        let reason = match why {
            Refused::Limit => "limit",
            Refused::AcceptError => "accept_error",
        };
        get(&self.refused, &ReasonLabels { reason }).inc();
    }

    /// Counts a config reload.
    pub fn reloaded(&self, ok: bool) {
        self.reloads.get_or_create(&ResultLabels { result: if ok { "success" } else { "failure" } }).inc();
    }

    /// Counts a request for a model that is not configured (label `model=""`).
    pub fn unknown_model(&self, status: u16) {
        self.requests
            .get_or_create(&StatusLabels { model: String::new(), status: status_label(status) })
            .inc();
    }

    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The handle for `labels`, the family's lock released before returning: a guard kept alive
/// to the end of a larger expression would deadlock the next `get_or_create` on the family.
fn get<L, M, C>(family: &Family<L, M, C>, labels: &L) -> M
where
    L: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    let guard = family.get_or_create(labels);
    guard.clone()
}

fn status_label(status: u16) -> String {
    if STATUSES.contains(&status) { status.to_string() } else { "other".to_string() }
}

/// One model's handles; cheap to clone.
#[derive(Clone, Debug)]
pub struct ModelMetrics(Arc<ModelHandles>);

#[derive(Debug)]
struct ModelHandles {
    requests: Vec<Counter>,
    other_status: Counter,
    /// Streams that started but did not complete, in [`StreamStatus::CUT`] order.
    stream_cut: [Counter; 3],
    duration: Histogram,
    failovers: Counter,
    retries: Counter,
    budget_exhausted: Counter,
}

impl ModelMetrics {
    /// A request answered with `status` after `elapsed`.
    pub fn request(&self, status: u16, elapsed: Duration) {
        match STATUSES.iter().position(|&s| s == status) {
            Some(i) => self.0.requests[i].inc(),
            None => self.0.other_status.inc(),
        };
        self.0.duration.observe(elapsed);
    }

    /// A stream that started (200 sent) ended as `status` after `elapsed`.
    pub fn stream_ended(&self, status: StreamStatus, elapsed: Duration) {
        match StreamStatus::CUT.iter().position(|&s| s == status) {
            Some(i) => {
                self.0.stream_cut[i].inc();
                self.0.duration.observe(elapsed);
            }
            None => self.request(200, elapsed),
        }
    }

    /// A move to another deployment after a failure.
    pub fn failover(&self) {
        self.0.failovers.inc();
    }

    /// A retry made.
    pub fn retry(&self) {
        self.0.retries.inc();
    }

    /// A retry not made: the budget was spent.
    pub fn budget_exhausted(&self) {
        self.0.budget_exhausted.inc();
    }
}

#[derive(Debug)]
struct DeploymentHandles {
    attempts: [Counter; Outcome::ALL.len()],
    states: [Gauge; DEPLOYMENT_STATES.len()],
    streams_broken: Counter,
    duration: Histogram,
    first_token: Histogram,
    tokens_in: Counter,
    tokens_out: Counter,
}

/// One deployment's handles; cheap to clone.
#[derive(Clone, Debug)]
pub struct DeploymentMetrics(Arc<DeploymentHandles>);

impl DeploymentMetrics {
    /// An attempt ended with `outcome` after `elapsed` (streams: to first bytes, which is also
    /// their time to first token).
    pub fn attempt(&self, outcome: Outcome, elapsed: Duration, stream: bool) {
        let index = Outcome::ALL.iter().position(|&o| o == outcome).unwrap_or(0);
        self.0.attempts[index].inc();
        self.0.duration.observe(elapsed);
        if stream && outcome == Outcome::Success {
            self.0.first_token.observe(elapsed);
        }
    }

    /// A committed stream broke (its attempt was counted a success at its first content).
    pub fn stream_failed(&self) {
        self.0.streams_broken.inc();
    }

    /// Sets the deployment's state gauges (at scrape time), `state` one of
    /// [`DEPLOYMENT_STATES`].
    pub fn set_state(&self, state: &str) {
        for (gauge, candidate) in self.0.states.iter().zip(DEPLOYMENT_STATES) {
            gauge.set(i64::from(candidate == state));
        }
    }

    /// Tokens the upstream reported.
    pub fn tokens(&self, prompt: u64, completion: u64) {
        self.0.tokens_in.inc_by(prompt);
        self.0.tokens_out.inc_by(completion);
    }
}

/// A histogram whose observations are lock-free (the crate's own takes a mutex per
/// observation): per-bucket atomic counts, the sum kept in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramInner>);

#[derive(Debug)]
struct HistogramInner {
    bounds: &'static [f64],
    /// Non-cumulative counts; one more than `bounds` for `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self(Arc::new(HistogramInner {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }))
    }

    /// Records one duration.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let bucket = self.0.bounds.iter().position(|&b| secs <= b).unwrap_or(self.0.bounds.len());
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.0.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        // The encoder takes per-bucket counts and accumulates them itself.
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.0.counts.len());
        for (i, count) in self.0.counts.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            total += count;
            buckets.push((self.0.bounds.get(i).copied().unwrap_or(f64::INFINITY), count));
        }
        let sum = self.0.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, total, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_documented_names_and_values() {
        let metrics = Metrics::new();
        let model = metrics.model("gpt-4o");
        model.request(200, Duration::from_millis(30));
        model.request(200, Duration::from_millis(70));
        model.request(418, Duration::from_millis(1));
        model.failover();
        let deployment = metrics.deployment("gpt-4o", "openai");
        deployment.attempt(Outcome::Success, Duration::from_millis(20), true);
        deployment.tokens(11, 7);
        metrics.overhead.observe(Duration::from_micros(40));
        deployment.set_state("available");
        metrics.reloaded(true);
        model.stream_ended(StreamStatus::Failed, Duration::from_millis(5));
        model.stream_ended(StreamStatus::CutByShutdown, Duration::from_millis(5));
        model.stream_ended(StreamStatus::Completed, Duration::from_millis(5));
        metrics.connection_refused(Refused::Limit);
        metrics.open_connections.inc();
        let text = metrics.encode();
        for line in [
            "llm_proxy_requests_total{model=\"gpt-4o\",status=\"200\"} 3",
            "llm_proxy_requests_total{model=\"gpt-4o\",status=\"stream_failed\"} 1",
            "llm_proxy_requests_total{model=\"gpt-4o\",status=\"stream_shutdown\"} 1",
            "llm_proxy_requests_total{model=\"gpt-4o\",status=\"stream_client_gone\"} 0",
            "llm_proxy_connections_refused_total{reason=\"limit\"} 1",
            "llm_proxy_connections_refused_total{reason=\"accept_error\"} 0",
            "llm_proxy_open_connections 1",
            "llm_proxy_log_lines_dropped_total 0",
            "llm_proxy_requests_total{model=\"gpt-4o\",status=\"other\"} 1",
            "llm_proxy_failovers_total{model=\"gpt-4o\"} 1",
            "llm_proxy_upstream_attempts_total{model=\"gpt-4o\",provider=\"openai\",outcome=\"success\"} 1",
            "llm_proxy_time_to_first_token_seconds_count{model=\"gpt-4o\",provider=\"openai\"} 1",
            "llm_proxy_tokens_total{model=\"gpt-4o\",provider=\"openai\",direction=\"in\"} 11",
            "llm_proxy_deployment_state{model=\"gpt-4o\",provider=\"openai\",state=\"available\"} 1",
            "llm_proxy_deployment_state{model=\"gpt-4o\",provider=\"openai\",state=\"probing\"} 0",
            "llm_proxy_config_reloads_total{result=\"success\"} 1",
            "llm_proxy_request_duration_seconds_bucket{le=\"0.05\",model=\"gpt-4o\"} 5",
            "llm_proxy_request_duration_seconds_count{model=\"gpt-4o\"} 6",
            "llm_proxy_request_duration_seconds_bucket{le=\"+Inf\",model=\"gpt-4o\"} 6",
            "llm_proxy_overhead_seconds_bucket{le=\"0.00005\"} 1",
            "llm_proxy_in_flight_requests 0",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}
