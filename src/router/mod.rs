//! Model name → deployments by priority, and the failover loop over them.
//!
//! The router never looks inside a provider's wire format: it hands each deployment the
//! client's body (with `model` rewritten), classifies what comes back, keeps health, and
//! stops at the first success, the first client error, or when no deployment is left.

pub mod balance;
pub mod classify;
pub mod health;
pub mod limits;
pub mod retry;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::StatusCode;
use http::header::HeaderValue;
use tokio::time::{Instant, timeout};

use crate::api::request::{ApiRequest, Operation};
use crate::config::{Config, Strategy};
use crate::metrics::{DeploymentMetrics, Metrics, ModelMetrics, Outcome};
use crate::providers::{BuildError, Call, Limits, Provider, ProviderError, Reply};
use crate::server::error::ProxyError;

pub use balance::{InFlight, Load};
pub use classify::{Verdict, classify, context_window_exceeded};
pub use health::{Health, Permit, Snapshot};
pub use limits::{Caps, OverCap};
use retry::RetryBudget;

/// The routing table, built from a config (and, on reload, from the previous table, whose
/// per-deployment state it keeps).
pub struct Router {
    models: Vec<Arc<ModelRoute>>,
    /// Names and aliases → index in `models`.
    by_name: HashMap<Arc<str>, usize>,
    timeout: Duration,
    retries: u32,
    retry_backoff: Duration,
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

/// One (model, provider) pair: a routable target with its own health, load and caps.
pub struct Deployment {
    /// The provider's name under `providers:`.
    pub provider_name: Arc<str>,
    /// Lower is tried first; equal priorities form a tier that shares traffic.
    pub priority: u32,
    /// Share of its tier under the `weighted` strategy.
    pub weight: u32,
    /// The model name sent upstream.
    pub model_id: Arc<str>,
    /// `model_id` JSON-encoded once, spliced into request bodies.
    model_id_json: String,
    provider: Arc<dyn Provider>,
    /// Failure accounting for this deployment alone; kept across reloads.
    pub health: Arc<Health>,
    /// In flight and latency; kept across reloads.
    pub load: Arc<Load>,
    /// The provider account's per-minute caps; kept across reloads while unchanged.
    pub caps: Arc<Caps>,
    metrics: DeploymentMetrics,
}

impl balance::Candidate for Deployment {
    fn weight(&self) -> u32 {
        self.weight
    }
    fn load(&self) -> &Load {
        &self.load
    }
}

/// What one deployment saw during a request, for the 503 message and logs.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The provider's name.
    pub provider: Arc<str>,
    /// What happened.
    pub outcome: AttemptOutcome,
}

/// How an attempt ended (or why it was not made).
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    /// Tried and failed; the text is the [`ProviderError`]'s, never an upstream body.
    Failed {
        /// e.g. `HTTP 500`, `timed out after 60s`.
        error: String,
        /// Time spent on the attempt.
        elapsed: Duration,
    },
    /// Skipped: disabled, `retry_in` left (zero while another request probes it).
    CoolingDown {
        /// Time until a probe may be let through.
        retry_in: Duration,
    },
    /// Skipped: this provider cannot serve the request; the text says why.
    Unsupported(String),
    /// Skipped: the provider account's per-minute cap is reached.
    OverCap(OverCap),
    /// Skipped: taken out by an operator.
    DisabledByOperator,
    /// A retry was not made: the retry budget is spent.
    RetryBudgetExhausted,
}

impl fmt::Display for AttemptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            AttemptOutcome::Failed { error, elapsed } => {
                write!(f, "{}: {error} after {}ms", self.provider, elapsed.as_millis())
            }
            AttemptOutcome::CoolingDown { retry_in } if retry_in.is_zero() => {
                write!(f, "{}: cooling down, probe in flight", self.provider)
            }
            AttemptOutcome::CoolingDown { retry_in } => {
                write!(f, "{}: cooling down, retry in {}s", self.provider, ceil_secs(*retry_in))
            }
            AttemptOutcome::Unsupported(reason) => write!(f, "{}: {reason}", self.provider),
            AttemptOutcome::OverCap(OverCap::Rpm) => write!(f, "{}: at its rpm cap", self.provider),
            AttemptOutcome::OverCap(OverCap::Tpm) => write!(f, "{}: at its tpm cap", self.provider),
            AttemptOutcome::DisabledByOperator => write!(f, "{}: disabled by an operator", self.provider),
            AttemptOutcome::RetryBudgetExhausted => {
                write!(f, "{}: not retried, the retry budget is spent", self.provider)
            }
        }
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
    /// What to send the client.
    pub result: Result<Served, ProxyError>,
}

/// An upstream answer to hand to the client.
pub enum Served {
    /// A complete OpenAI `chat.completion` body.
    Json(Bytes),
    /// A stream whose first bytes have arrived: from here on there is no failover.
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

/// A stream that has produced its first bytes; see [`crate::sse::relay`].
pub struct Committed {
    /// The first bytes received.
    pub first: Bytes,
    /// The rest of the upstream stream.
    pub rest: BoxStream<'static, Result<Bytes, ProviderError>>,
    /// Settled when the stream ends.
    pub ticket: Ticket,
    /// Longest silence allowed between chunks.
    pub idle_timeout: Duration,
    /// Who is streaming, for the error event if it breaks.
    pub provider: Arc<str>,
}

/// One admitted attempt's obligations: settle health, stop counting it in flight, correct
/// the token estimate and count tokens. Streams carry it to their end.
pub struct Ticket {
    permit: Permit,
    _in_flight: InFlight,
    caps: Arc<Caps>,
    estimated_tokens: u64,
    metrics: DeploymentMetrics,
}

impl Ticket {
    /// The attempt (or stream) succeeded; `usage` is (prompt, completion) tokens if reported.
    pub fn success(self, usage: Option<(u64, u64)>) {
        self.permit.success();
        if let Some((prompt, completion)) = usage {
            self.metrics.tokens(prompt, completion);
            self.caps.settle_tokens(self.estimated_tokens, prompt.saturating_add(completion));
        }
    }

    /// The attempt (or stream) failed through the provider's fault.
    pub fn failure(self, retry_after: Option<Duration>) {
        self.permit.failure(retry_after);
    }

    /// Neither: a client error or a client that went away. Counts nothing.
    pub fn abandon(self) {
        drop(self.permit);
    }

    /// Whether this attempt probes a disabled deployment.
    pub fn is_probe(&self) -> bool {
        self.permit.is_probe()
    }
}

/// Why routing a model stopped without a success.
enum Stop {
    /// An upstream judged the request bad: relay its answer.
    ClientError { provider: Arc<str>, status: StatusCode, content_type: Option<HeaderValue>, body: Bytes },
    /// Every deployment failed, was skipped, or could not serve the request.
    Exhausted,
}

/// What one request's routing accumulates across models, tiers and attempts.
#[derive(Default)]
struct Run {
    attempts: u32,
    /// Some attempt failed: the next deployment chosen is a failover.
    failed: bool,
    records: Vec<AttemptRecord>,
    unsupported: Option<ProxyError>,
    upstream_time: Duration,
}

impl Router {
    /// Builds every provider's client and the routing table from a validated config. With
    /// `previous` (a reload), deployments that still exist keep their health, load and caps.
    pub fn new(config: &Config, metrics: &Metrics, previous: Option<&Router>) -> Result<Self, BuildError> {
        let limits = Limits {
            max_response_bytes: 64 * 1024 * 1024,
            connect_timeout: config.router.timeout_seconds.min(Duration::from_secs(10)),
        };
        let mut providers: HashMap<&str, Arc<dyn Provider>> = HashMap::new();
        for named in &config.providers {
            providers.insert(&named.name, named.config.build(&limits)?);
        }
        let router = &config.router;
        let mut models = Vec::with_capacity(config.models.len());
        let mut by_name = HashMap::with_capacity(config.models.len());
        for model in &config.models {
            let name: Arc<str> = Arc::from(model.name.as_str());
            let old = previous.and_then(|p| p.model(&model.name)).filter(|m| m.name == name);
            let mut deployments = Vec::with_capacity(model.deployments.len());
            for dep in &model.deployments {
                let provider = providers
                    .get(dep.provider.as_str())
                    .ok_or_else(|| BuildError::new(format!("undeclared provider `{}`", dep.provider)))?;
                let provider_name: Arc<str> = Arc::from(dep.provider.as_str());
                let kept = old.and_then(|m| m.deployments.iter().find(|d| *d.provider_name == *dep.provider));
                let health = match kept {
                    Some(kept) => {
                        kept.health.set_policy(
                            router.failure_threshold,
                            router.cooldown_seconds,
                            router.cooldown_max(),
                        );
                        Arc::clone(&kept.health)
                    }
                    None => Arc::new(Health::with_policy(
                        Arc::clone(&name),
                        Arc::clone(&provider_name),
                        router.failure_threshold,
                        router.cooldown_seconds,
                        router.cooldown_max(),
                    )),
                };
                let caps = match kept {
                    Some(kept) if kept.caps.rpm == dep.rpm && kept.caps.tpm == dep.tpm => {
                        Arc::clone(&kept.caps)
                    }
                    _ => Arc::new(Caps::new(dep.rpm, dep.tpm)),
                };
                deployments.push(Deployment {
                    health,
                    load: kept.map(|k| Arc::clone(&k.load)).unwrap_or_default(),
                    caps,
                    metrics: metrics.deployment(&model.name, &dep.provider),
                    provider_name,
                    priority: dep.priority,
                    weight: dep.weight,
                    model_id_json: serde_json::Value::from(dep.model_id.as_str()).to_string(),
                    model_id: Arc::from(dep.model_id.as_str()),
                    provider: Arc::clone(provider),
                });
            }
            deployments.sort_by_key(|d| d.priority);
            let mut tiers: Vec<Range<usize>> = Vec::new();
            for (i, d) in deployments.iter().enumerate() {
                match tiers.last_mut() {
                    Some(tier) if deployments[tier.start].priority == d.priority => tier.end = i + 1,
                    _ => tiers.push(i..i + 1),
                }
            }
            let index = models.len();
            by_name.insert(Arc::clone(&name), index);
            let aliases: Vec<Arc<str>> = model.aliases.iter().map(|a| Arc::from(a.as_str())).collect();
            for alias in &aliases {
                by_name.insert(Arc::clone(alias), index);
            }
            models.push(Arc::new(ModelRoute {
                metrics: metrics.model(&model.name),
                name,
                aliases,
                deployments,
                tiers,
                strategy: model.strategy.unwrap_or(router.strategy),
                fallbacks: model.fallbacks.iter().map(|f| Arc::from(f.as_str())).collect(),
                context_window_fallbacks: model
                    .context_window_fallbacks
                    .iter()
                    .map(|f| Arc::from(f.as_str()))
                    .collect(),
                budget: RetryBudget::new(router.retry_budget_percent),
            }));
        }
        Ok(Self {
            models,
            by_name,
            timeout: router.timeout_seconds,
            retries: router.retries,
            retry_backoff: router.retry_backoff_ms,
        })
    }

    /// Every model, in config order.
    pub fn models(&self) -> &[Arc<ModelRoute>] {
        &self.models
    }

    /// The model named `name` (or aliased so), if configured.
    pub fn model(&self, name: &str) -> Option<&Arc<ModelRoute>> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// Routes one request: the model's tiers in priority order (within a tier, by its
    /// strategy, each deployment once, plus `router.retries` budgeted retries), then its
    /// `context_window_fallbacks` (when an upstream said the context is too long) or its
    /// `fallbacks` (when everything failed).
    ///
    /// A deployment whose provider cannot serve the request (a field or an endpoint it
    /// lacks) is passed over without penalty; when no deployment could even try, the client
    /// gets that reason as a 400.
    pub async fn route(&self, request: &ApiRequest, request_id: &HeaderValue) -> Dispatch {
        let Some(route) = self.model(request.model()) else {
            return Dispatch {
                attempts: 0,
                provider: None,
                served_model: None,
                metrics: None,
                upstream_time: Duration::ZERO,
                result: Err(ProxyError::ModelNotFound { model: request.model().to_string() }),
            };
        };
        route.budget.deposit();
        let mut run = Run::default();
        let done = |run: Run, model: &ModelRoute, provider, result| Dispatch {
            attempts: run.attempts,
            provider,
            served_model: Some(Arc::clone(&model.name)),
            metrics: Some(route.metrics.clone()),
            upstream_time: run.upstream_time,
            result,
        };
        let mut stop = match self.serve_model(route, request, request_id, &mut run).await {
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
        for fallback in fallbacks {
            let Some(model) = self.model(fallback) else { continue };
            tracing::info!(model = %route.name, fallback = %model.name, "trying a fallback model");
            match self.serve_model(model, request, request_id, &mut run).await {
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
        match stop {
            Stop::ClientError { provider, status, content_type, body } => {
                done(run, route, Some(provider), Ok(Served::ClientError { status, content_type, body }))
            }
            Stop::Exhausted => {
                let all_unsupported =
                    run.records.iter().all(|r| matches!(r.outcome, AttemptOutcome::Unsupported(_)));
                let error = match run.unsupported.take() {
                    Some(unsupported) if all_unsupported => unsupported,
                    _ => ProxyError::AllDeploymentsFailed {
                        model: route.name.to_string(),
                        attempts: std::mem::take(&mut run.records),
                    },
                };
                done(run, route, None, Err(error))
            }
        }
    }

    /// Tries one model's tiers in order.
    async fn serve_model(
        &self,
        route: &ModelRoute,
        request: &ApiRequest,
        request_id: &HeaderValue,
        run: &mut Run,
    ) -> Result<(Arc<str>, Served), Stop> {
        // Tokens a request may use, for `tpm` caps: ~4 bytes a token, corrected from usage.
        let estimated_tokens = (request.body().len() / 4) as u64;
        for tier in &route.tiers {
            let tier = &route.deployments[tier.clone()];
            let mut tried = vec![false; tier.len()];
            let mut last_failed: Option<usize> = None;
            let mut retries = 0;
            loop {
                let fresh: Vec<&Deployment> = tier
                    .iter()
                    .zip(&tried)
                    .filter(|(d, tried)| !**tried && admissible(d))
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
                        let all: Vec<&Deployment> = tier.iter().filter(|d| admissible(d)).collect();
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
                match self.try_deployment(route, chosen, request, request_id, estimated_tokens, run).await {
                    Tried::Served(served) => return Ok((Arc::clone(&chosen.provider_name), served)),
                    Tried::ClientError { status, content_type, body } => {
                        return Err(Stop::ClientError {
                            provider: Arc::clone(&chosen.provider_name),
                            status,
                            content_type,
                            body,
                        });
                    }
                    Tried::Failed => {
                        run.failed = true;
                        last_failed = Some(index);
                    }
                    Tried::Skipped => {}
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

    /// One deployment: admission (health, caps), the attempt, and its accounting.
    async fn try_deployment(
        &self,
        route: &ModelRoute,
        deployment: &Deployment,
        request: &ApiRequest,
        request_id: &HeaderValue,
        estimated_tokens: u64,
        run: &mut Run,
    ) -> Tried {
        let record = |outcome| AttemptRecord { provider: Arc::clone(&deployment.provider_name), outcome };
        let permit = match deployment.health.admit() {
            Ok(permit) => permit,
            Err(_) => {
                run.records.push(record(unavailable_reason(deployment)));
                return Tried::Skipped;
            }
        };
        if deployment.caps.any()
            && let Err(cap) = deployment.caps.reserve(estimated_tokens)
        {
            drop(permit);
            run.records.push(record(AttemptOutcome::OverCap(cap)));
            return Tried::Skipped;
        }
        let ticket = Ticket {
            permit,
            _in_flight: deployment.load.start(),
            caps: Arc::clone(&deployment.caps),
            estimated_tokens,
            metrics: deployment.metrics.clone(),
        };
        let started = Instant::now();
        let result = self.attempt(deployment, request, request_id).await;
        let elapsed = started.elapsed();
        // A request the provider refused to translate never left the proxy: not an attempt.
        if !matches!(result, Err(ProviderError::Unsupported { .. })) {
            run.attempts += 1;
        }
        let error = match result {
            Ok(answer) => {
                run.upstream_time += elapsed;
                deployment.load.observe(elapsed);
                deployment.metrics.attempt(
                    Outcome::Success,
                    elapsed,
                    matches!(answer, Answer::Stream { .. }),
                );
                return Tried::Served(match answer {
                    Answer::Json(body) => {
                        ticket.success(crate::api::usage_of(&body));
                        Served::Json(body)
                    }
                    Answer::Stream { first, rest } => Served::Stream(Committed {
                        first,
                        rest,
                        ticket,
                        idle_timeout: self.timeout,
                        provider: Arc::clone(&deployment.provider_name),
                    }),
                });
            }
            Err(error) => error,
        };
        match (classify(&error), error) {
            (Verdict::Unsupported, ProviderError::Unsupported { message, param }) => {
                // Refused before anything was sent: nothing to count.
                ticket.abandon();
                let reason = format!("{message} (provider `{}`)", deployment.provider_name);
                run.records.push(record(AttemptOutcome::Unsupported(message)));
                run.unsupported.get_or_insert(ProxyError::Unsupported { message: reason, param });
                Tried::Skipped
            }
            (Verdict::ClientError, ProviderError::Status { status, content_type, body, .. }) => {
                // The request is at fault, not the provider: relay as is, count nothing.
                run.upstream_time += elapsed;
                ticket.abandon();
                deployment.metrics.attempt(Outcome::ClientError, elapsed, request.stream());
                Tried::ClientError { status, content_type, body }
            }
            (verdict, error) => {
                run.upstream_time += elapsed;
                let retry_after = match verdict {
                    Verdict::ProviderFailure { retry_after } => retry_after,
                    Verdict::ClientError | Verdict::Unsupported => None,
                };
                tracing::warn!(
                    model = %route.name,
                    provider = %deployment.provider_name,
                    error = %error,
                    elapsed_ms = elapsed.as_millis() as u64,
                    probe = ticket.is_probe(),
                    "attempt failed"
                );
                deployment.metrics.attempt(Outcome::Failure, elapsed, request.stream());
                ticket.failure(retry_after);
                run.records.push(record(AttemptOutcome::Failed { error: error.to_string(), elapsed }));
                Tried::Failed
            }
        }
    }

    /// One attempt, bounded by the timeout: up to headers (and the whole body when not
    /// streaming), then up to the first stream bytes, since failover is still possible
    /// until those reach the client.
    async fn attempt(
        &self,
        deployment: &Deployment,
        request: &ApiRequest,
        request_id: &HeaderValue,
    ) -> Result<Answer, ProviderError> {
        let call = Call {
            body: request.body_with_model(&deployment.model_id_json),
            stream: request.stream(),
            model_id: Arc::clone(&deployment.model_id),
            request_id: request_id.clone(),
        };
        let sent = match request.operation() {
            Operation::Chat => deployment.provider.chat(call),
            Operation::Embeddings => deployment.provider.embeddings(call),
        };
        let reply = timeout(self.timeout, sent).await.map_err(|_| ProviderError::Timeout(self.timeout))??;
        match reply {
            Reply::Json(body) => Ok(Answer::Json(body)),
            Reply::Stream(mut rest) => loop {
                match timeout(self.timeout, rest.next()).await {
                    Err(_) => return Err(ProviderError::Timeout(self.timeout)),
                    Ok(None) => {
                        return Err(ProviderError::InvalidResponse(
                            "stream ended before any event".to_string(),
                        ));
                    }
                    Ok(Some(Err(error))) => return Err(error),
                    Ok(Some(Ok(first))) if first.is_empty() => continue,
                    Ok(Some(Ok(first))) => return Ok(Answer::Stream { first, rest }),
                }
            },
        }
    }
}

/// How trying one deployment ended.
enum Tried {
    Served(Served),
    ClientError {
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
    },
    Failed,
    /// Not attempted: cooling down, over a cap, or the provider cannot serve the request.
    Skipped,
}

/// Whether a deployment may be chosen now (health alone: caps are checked when reserving).
fn admissible(deployment: &Deployment) -> bool {
    deployment.health.is_available()
}

/// Why a deployment is not being tried.
fn unavailable_reason(deployment: &Deployment) -> AttemptOutcome {
    let snapshot = deployment.health.snapshot();
    if snapshot.manually_disabled {
        AttemptOutcome::DisabledByOperator
    } else {
        AttemptOutcome::CoolingDown { retry_in: snapshot.retry_in }
    }
}

enum Answer {
    Json(Bytes),
    Stream { first: Bytes, rest: BoxStream<'static, Result<Bytes, ProviderError>> },
}

/// Seconds, rounded up, for humans and `retry_in_seconds` fields.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests;
