//! Model name → deployments by priority, and the failover loop over them.
//!
//! The router never looks inside a provider's wire format: it hands each deployment the
//! client's body (with `model` rewritten), classifies what comes back, keeps health and
//! pauses, and stops at the first success, the first client error, or when no deployment is
//! left. The order, for one request:
//!
//! 1. the model's tiers by priority; within a tier, its strategy picks among the admissible
//!    deployments (not paused, not ejected, under their caps), each once, plus budgeted
//!    retries;
//! 2. its `context_window_fallbacks` (when an upstream said the context is too long) or its
//!    `fallbacks` (when everything else failed), the same way;
//! 3. panic mode: a model whose every deployment is ejected is tried anyway, soonest to
//!    recover first (unless `router.panic_routing` is off);
//! 4. nothing served: 429 with `retry-after` if some deployment is only rate limited (paused
//!    or at its cap) and frees soon, else 503.

mod attempt;
pub mod balance;
pub mod classify;
pub mod health;
pub mod limits;
mod outcome;
pub mod retry;
mod table;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::{HeaderMap, HeaderValue};

use crate::api::request::ApiRequest;
use crate::config::{Strategy, Timeouts};
use crate::metrics::{DeploymentMetrics, ModelMetrics};
use crate::providers::Provider;

pub use attempt::{Committed, Ticket};
pub use balance::{InFlight, Load};
pub use classify::{Verdict, classify, context_window_exceeded};
pub use health::{Health, Permit, Refusal, Snapshot, State};
pub use limits::{Caps, OverCap};
pub use outcome::{AttemptOutcome, AttemptRecord, RouteError};
use retry::RetryBudget;

/// The routing table, built from a config (and, on reload, from the previous table, whose
/// per-deployment state it keeps; see `table.rs`).
pub struct Router {
    models: Vec<Arc<ModelRoute>>,
    /// Names and aliases → index in `models`.
    by_name: HashMap<Arc<str>, usize>,
    /// Every provider by name, with what it was built from (reused by the next reload).
    providers: HashMap<String, table::BuiltProvider>,
    retries: u32,
    retry_backoff: Duration,
    panic_routing: bool,
    max_stream_bytes: u64,
}

/// A model clients can ask for, and where it can be served.
pub struct ModelRoute {
    /// The name clients send.
    pub name: Arc<str>,
    /// Other names for it.
    pub aliases: Vec<Arc<str>>,
    /// Sorted by ascending priority (ties keep file order).
    pub deployments: Vec<Deployment>,
    /// Index ranges of `deployments` sharing a priority, lowest first.
    tiers: Vec<Range<usize>>,
    strategy: Strategy,
    /// Models tried, in order, when all of this one's deployments failed.
    pub fallbacks: Vec<Arc<str>>,
    /// Models tried when an upstream says the context window is exceeded.
    pub context_window_fallbacks: Vec<Arc<str>>,
    budget: RetryBudget,
    /// This model's metric handles.
    pub metrics: ModelMetrics,
}

impl ModelRoute {
    /// Whether some deployment's provider takes requests in `dialect` as they are.
    pub fn speaks(&self, dialect: crate::api::dialect::Dialect) -> bool {
        self.deployments.iter().any(|d| d.provider.speaks(dialect))
    }
}

/// One (model, provider) pair: a routable target with its own health, load and caps.
pub struct Deployment {
    /// The provider's name under `providers:`.
    pub provider_name: Arc<str>,
    /// The provider's settings' fingerprint: part of this deployment's identity on reload.
    fingerprint: u64,
    /// Lower is tried first; equal priorities form a tier that shares traffic.
    pub priority: u32,
    /// Share of its tier under the `weighted` strategy.
    pub weight: u32,
    /// The model name sent upstream.
    pub model_id: Arc<str>,
    /// `model_id` JSON-encoded once, spliced into request bodies.
    model_id_json: String,
    /// Its timeouts, `router:`'s with its own overrides.
    pub timeouts: Timeouts,
    /// What its tokens cost (`None`: no price known).
    pub price: Option<crate::accounting::Price>,
    provider: Arc<dyn Provider>,
    /// Failure accounting and pauses for this deployment alone; kept across reloads.
    pub health: Arc<Health>,
    /// In flight and latency; kept across reloads.
    pub load: Arc<Load>,
    /// The provider account's per-minute caps; kept across reloads while unchanged.
    pub caps: Arc<Caps>,
    metrics: DeploymentMetrics,
}

impl Deployment {
    /// Its metric handles.
    pub fn metrics(&self) -> &DeploymentMetrics {
        &self.metrics
    }
}

impl balance::Candidate for Deployment {
    fn weight(&self) -> u32 {
        self.weight
    }
    fn load(&self) -> &Load {
        &self.load
    }
}

/// The result of routing one request.
pub struct Dispatch {
    /// Attempts actually sent upstream.
    pub attempts: u32,
    /// The provider whose answer is returned (success or relayed client error).
    pub provider: Option<Arc<str>>,
    /// The model that served it (differs from the requested one after a fallback).
    pub served_model: Option<Arc<str>>,
    /// The requested model's metric handles (`None` for an unknown model).
    pub metrics: Option<ModelMetrics>,
    /// Time spent waiting on upstreams and backoffs: the rest is the proxy's own.
    pub upstream_time: Duration,
    /// The serving upstream's headers worth relaying (already renamed).
    pub upstream_headers: HeaderMap,
    /// The usage a complete answer reported (a stream's comes at its end, from the relay).
    pub usage: Option<crate::usage::Usage>,
    /// What to send the client.
    pub result: Result<Served, RouteError>,
}

/// An upstream answer to hand to the client.
pub enum Served {
    /// A complete OpenAI `chat.completion` body.
    Json(Bytes),
    /// A stream that has said something: from here on there is no failover.
    Stream(Committed),
    /// The upstream judged the request bad (400/413/422): its status and body, relayed.
    ClientError {
        /// Upstream status.
        status: StatusCode,
        /// Upstream content type.
        content_type: Option<HeaderValue>,
        /// Upstream body.
        body: Bytes,
    },
}

/// One request's input to the router.
pub struct Inbound<'a> {
    /// What the client sent.
    pub request: &'a ApiRequest,
    /// The request's id, sent upstream.
    pub request_id: &'a HeaderValue,
    /// The client's headers (only [`crate::providers::FORWARDED_HEADERS`] go upstream).
    pub headers: &'a HeaderMap,
}

/// Why routing a model stopped without a success.
enum Stop {
    /// An upstream judged the request bad: relay its answer.
    ClientError { provider: Arc<str>, status: StatusCode, content_type: Option<HeaderValue>, body: Bytes },
    /// Every deployment failed, was skipped, or could not serve the request.
    Exhausted,
}

/// How deployments are admitted during one pass over a model.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Health decides: paused and ejected deployments are skipped (an ejected one past its
    /// cooldown admits one probe).
    Normal,
    /// Every deployment of the model is ejected: try them anyway.
    Panic,
}

/// What one request's routing accumulates across models, tiers and attempts.
#[derive(Default)]
struct Run {
    attempts: u32,
    /// Some attempt failed: the next deployment chosen is a failover.
    failed: bool,
    records: Vec<AttemptRecord>,
    unsupported: Option<RouteError>,
    upstream_time: Duration,
    upstream_headers: HeaderMap,
    usage: Option<crate::usage::Usage>,
    /// Deployments already sent this request (by address): panic mode does not send it twice.
    sent_to: Vec<usize>,
}

impl Router {
    /// Every model, in config order.
    pub fn models(&self) -> &[Arc<ModelRoute>] {
        &self.models
    }

    /// The model named `name` (or aliased so), if configured.
    pub fn model(&self, name: &str) -> Option<&Arc<ModelRoute>> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// Routes one request (see the module doc for the order).
    ///
    /// A deployment whose provider cannot serve the request (a field or an endpoint it
    /// lacks) is passed over without penalty; when no deployment could even try, the client
    /// gets that reason as a 400.
    pub async fn route(&self, inbound: &Inbound<'_>) -> Dispatch {
        let Some(route) = self.model(inbound.request.model()) else {
            return Dispatch {
                attempts: 0,
                provider: None,
                served_model: None,
                metrics: None,
                upstream_time: Duration::ZERO,
                upstream_headers: HeaderMap::new(),
                usage: None,
                result: Err(RouteError::ModelNotFound { model: inbound.request.model().to_string() }),
            };
        };
        route.budget.deposit();
        let mut run = Run::default();
        let done = |mut run: Run, model: &ModelRoute, provider, result| Dispatch {
            attempts: run.attempts,
            provider,
            served_model: Some(Arc::clone(&model.name)),
            metrics: Some(route.metrics.clone()),
            upstream_time: run.upstream_time,
            upstream_headers: std::mem::take(&mut run.upstream_headers),
            usage: run.usage,
            result,
        };
        let mut stop = match self.serve_model(route, inbound, Pass::Normal, &mut run).await {
            Ok((provider, served)) => return done(run, route, Some(provider), Ok(served)),
            Err(stop) => stop,
        };
        let fallbacks = match &stop {
            Stop::ClientError { body, status, .. } if context_window_exceeded(*status, body) => {
                &route.context_window_fallbacks
            }
            Stop::ClientError { .. } => &Vec::new(),
            Stop::Exhausted => &route.fallbacks,
        };
        let fallbacks: Vec<&Arc<ModelRoute>> = fallbacks.iter().filter_map(|f| self.model(f)).collect();
        for model in &fallbacks {
            tracing::info!(model = %route.name, fallback = %model.name, "trying a fallback model");
            match self.serve_model(model, inbound, Pass::Normal, &mut run).await {
                Ok((provider, served)) => return done(run, model, Some(provider), Ok(served)),
                // A client error from the fallback is its final word; an earlier one is kept
                // only if every fallback is exhausted.
                Err(next @ Stop::ClientError { .. }) => {
                    stop = next;
                    break;
                }
                Err(Stop::Exhausted) => {}
            }
        }
        if matches!(stop, Stop::Exhausted) && self.panic_routing {
            for model in std::iter::once(&route).chain(&fallbacks) {
                if !all_ejected(model) {
                    continue;
                }
                tracing::warn!(model = %model.name, "every deployment is ejected: trying them anyway (panic mode)");
                match self.serve_model(model, inbound, Pass::Panic, &mut run).await {
                    Ok((provider, served)) => return done(run, model, Some(provider), Ok(served)),
                    Err(next @ Stop::ClientError { .. }) => {
                        stop = next;
                        break;
                    }
                    Err(Stop::Exhausted) => {}
                }
            }
        }
        match stop {
            Stop::ClientError { provider, status, content_type, body } => {
                done(run, route, Some(provider), Ok(Served::ClientError { status, content_type, body }))
            }
            Stop::Exhausted => {
                let error = exhausted(route, &mut run);
                done(run, route, None, Err(error))
            }
        }
    }

    /// One pass over a model's tiers in order.
    async fn serve_model(
        &self,
        route: &ModelRoute,
        inbound: &Inbound<'_>,
        pass: Pass,
        run: &mut Run,
    ) -> Result<(Arc<str>, Served), Stop> {
        if pass == Pass::Panic {
            return self.serve_panic(route, inbound, run).await;
        }
        for tier in &route.tiers {
            let tier = &route.deployments[tier.clone()];
            let mut tried = vec![false; tier.len()];
            let mut last_failed: Option<usize> = None;
            let mut retries = 0;
            loop {
                let fresh: Vec<&Deployment> = tier
                    .iter()
                    .zip(&tried)
                    .filter(|(d, tried)| !**tried && d.health.is_available())
                    .map(|(d, _)| d)
                    .collect();
                let chosen = match balance::pick(route.strategy, &fresh) {
                    Some(chosen) => chosen,
                    None if last_failed.is_some() && retries < self.retries => {
                        // Every deployment of the tier was tried: retry, preferring one that
                        // did not fail last, if the budget allows.
                        if !route.budget.withdraw() {
                            route.metrics.budget_exhausted();
                            let provider = Arc::clone(&tier[last_failed.unwrap_or(0)].provider_name);
                            run.records.push(AttemptRecord {
                                provider,
                                outcome: AttemptOutcome::RetryBudgetExhausted,
                            });
                            break;
                        }
                        retries += 1;
                        let all: Vec<&Deployment> = tier.iter().filter(|d| d.health.is_available()).collect();
                        let others: Vec<&Deployment> = all
                            .iter()
                            .copied()
                            .filter(|d| last_failed.is_none_or(|i| !std::ptr::eq(*d, &tier[i])))
                            .collect();
                        let Some(chosen) =
                            balance::pick(route.strategy, if others.is_empty() { &all } else { &others })
                        else {
                            break;
                        };
                        let wait = retry::backoff(self.retry_backoff, retries);
                        route.metrics.retry();
                        tracing::debug!(model = %route.name, provider = %chosen.provider_name, retry = retries, wait_ms = wait.as_millis() as u64, "retrying");
                        tokio::time::sleep(wait).await;
                        run.upstream_time += wait;
                        chosen
                    }
                    None => break,
                };
                let index = tier.iter().position(|d| std::ptr::eq(d, chosen)).unwrap_or(0);
                tried[index] = true;
                if run.failed && last_failed != Some(index) {
                    route.metrics.failover();
                }
                match self.try_deployment(route, chosen, inbound, Pass::Normal, run).await {
                    attempt::Tried::Served(served) => return Ok((Arc::clone(&chosen.provider_name), served)),
                    attempt::Tried::ClientError(stop) => return Err(stop),
                    attempt::Tried::Failed => {
                        run.failed = true;
                        last_failed = Some(index);
                    }
                    attempt::Tried::Skipped => {}
                }
            }
            // Say why the deployments never tried were left out.
            for (deployment, _) in tier.iter().zip(&tried).filter(|(_, tried)| !**tried) {
                run.records.push(AttemptRecord {
                    provider: Arc::clone(&deployment.provider_name),
                    outcome: unavailable_reason(deployment),
                });
            }
        }
        Err(Stop::Exhausted)
    }

    /// Panic mode: every deployment of the model is ejected; try each (but those taken out by
    /// an operator), soonest to recover first, until one serves.
    async fn serve_panic(
        &self,
        route: &ModelRoute,
        inbound: &Inbound<'_>,
        run: &mut Run,
    ) -> Result<(Arc<str>, Served), Stop> {
        let mut order: Vec<(Duration, &Deployment)> = route
            .deployments
            .iter()
            .filter(|d| !d.health.manually_disabled() && !run.sent_to.contains(&address(d)))
            .map(|d| (d.health.snapshot().retry_in, d))
            .collect();
        order.sort_by_key(|(retry_in, _)| *retry_in);
        for (_, deployment) in order {
            if run.failed {
                route.metrics.failover();
            }
            match self.try_deployment(route, deployment, inbound, Pass::Panic, run).await {
                attempt::Tried::Served(served) => return Ok((Arc::clone(&deployment.provider_name), served)),
                attempt::Tried::ClientError(stop) => return Err(stop),
                attempt::Tried::Failed => run.failed = true,
                attempt::Tried::Skipped => {}
            }
        }
        Err(Stop::Exhausted)
    }
}

/// Every deployment of `model` not taken out by hand is ejected (and at least one is).
fn all_ejected(model: &ModelRoute) -> bool {
    let mut ejected = 0;
    for deployment in &model.deployments {
        match deployment.health.snapshot().state {
            State::CoolingDown | State::Probing => ejected += 1,
            State::DisabledByOperator => {}
            State::Available | State::Paused => return false,
        }
    }
    ejected > 0
}

/// The error for a request nothing served: the providers' refusal when none could even try;
/// 429 when some deployment is only rate limited and frees soon (an SDK's own retry then
/// succeeds); else 503.
fn exhausted(route: &ModelRoute, run: &mut Run) -> RouteError {
    let all_unsupported = run.records.iter().all(|r| matches!(r.outcome, AttemptOutcome::Unsupported(_)));
    if let Some(unsupported) = run.unsupported.take()
        && all_unsupported
    {
        return unsupported;
    }
    let attempts = std::mem::take(&mut run.records);
    match attempts.iter().filter_map(|r| r.outcome.frees_in()).min() {
        Some(soonest) => RouteError::RateLimited {
            model: route.name.to_string(),
            retry_after: soonest.max(Duration::from_secs(1)),
            attempts,
        },
        None => RouteError::AllFailed { model: route.name.to_string(), attempts },
    }
}

/// Why a deployment is not being tried.
fn unavailable_reason(deployment: &Deployment) -> AttemptOutcome {
    let snapshot = deployment.health.snapshot();
    let refusal = match snapshot.state {
        State::DisabledByOperator => Refusal::Operator,
        State::Paused => Refusal::Paused(snapshot.paused_for),
        State::Probing => Refusal::Probing,
        State::CoolingDown | State::Available => Refusal::CoolingDown(snapshot.retry_in),
    };
    refusal.into()
}

/// A deployment's identity within one routing table.
fn address(deployment: &Deployment) -> usize {
    std::ptr::from_ref(deployment) as usize
}

/// Seconds, rounded up, for humans and `retry_in_seconds` fields.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests;
