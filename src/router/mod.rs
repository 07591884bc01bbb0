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
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::StatusCode;
use http::header::HeaderValue;
use tokio::time::{Instant, timeout};

use crate::api::request::{ApiRequest, Operation};
use crate::config::Config;
use crate::providers::{BuildError, Call, Limits, Provider, ProviderError, Reply};
use crate::server::error::ProxyError;

pub use classify::{Verdict, classify};
pub use health::{Health, Permit, Snapshot};

/// The routing table, built once from a config.
pub struct Router {
    models: Vec<ModelRoute>,
    by_name: HashMap<Arc<str>, usize>,
    timeout: Duration,
}

/// A model clients can ask for, and where it can be served.
pub struct ModelRoute {
    /// The name clients send.
    pub name: Arc<str>,
    /// Sorted by ascending priority (ties keep file order).
    pub deployments: Vec<Deployment>,
}

/// One (model, provider) pair: a routable target with its own health.
pub struct Deployment {
    /// The provider's name under `providers:`.
    pub provider_name: Arc<str>,
    /// Lower is tried first.
    pub priority: u32,
    /// The model name sent upstream.
    pub model_id: Arc<str>,
    /// `model_id` JSON-encoded once, spliced into request bodies.
    model_id_json: String,
    provider: Arc<dyn Provider>,
    /// Failure accounting for this deployment alone.
    pub health: Arc<Health>,
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
        }
    }
}

/// The result of routing one request.
pub struct Dispatch {
    /// Attempts actually sent upstream.
    pub attempts: u32,
    /// The provider whose answer is returned (success or relayed client error).
    pub provider: Option<Arc<str>>,
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
    pub permit: Permit,
    /// Longest silence allowed between chunks.
    pub idle_timeout: Duration,
    /// Who is streaming, for the error event if it breaks.
    pub provider: Arc<str>,
}

impl Router {
    /// Builds every provider's client and the routing table from a validated config.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        let limits = Limits {
            max_response_bytes: 64 * 1024 * 1024,
            connect_timeout: config.router.timeout_seconds.min(Duration::from_secs(10)),
        };
        let mut providers: HashMap<&str, Arc<dyn Provider>> = HashMap::new();
        for named in &config.providers {
            providers.insert(&named.name, named.config.build(&limits)?);
        }
        let mut models = Vec::with_capacity(config.models.len());
        let mut by_name = HashMap::with_capacity(config.models.len());
        for model in &config.models {
            let name: Arc<str> = Arc::from(model.name.as_str());
            let mut deployments = Vec::with_capacity(model.deployments.len());
            for dep in &model.deployments {
                let provider = providers
                    .get(dep.provider.as_str())
                    .ok_or_else(|| BuildError::new(format!("undeclared provider `{}`", dep.provider)))?;
                let provider_name: Arc<str> = Arc::from(dep.provider.as_str());
                deployments.push(Deployment {
                    health: Arc::new(Health::new(
                        Arc::clone(&name),
                        Arc::clone(&provider_name),
                        config.router.failure_threshold,
                        config.router.cooldown_seconds,
                    )),
                    provider_name,
                    priority: dep.priority,
                    model_id_json: serde_json::Value::from(dep.model_id.as_str()).to_string(),
                    model_id: Arc::from(dep.model_id.as_str()),
                    provider: Arc::clone(provider),
                });
            }
            deployments.sort_by_key(|d| d.priority);
            by_name.insert(Arc::clone(&name), models.len());
            models.push(ModelRoute { name, deployments });
        }
        Ok(Self { models, by_name, timeout: config.router.timeout_seconds })
    }

    /// Every model, in config order.
    pub fn models(&self) -> &[ModelRoute] {
        &self.models
    }

    /// The model named `name`, if configured.
    pub fn model(&self, name: &str) -> Option<&ModelRoute> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }

    /// Routes one request: tries deployments in priority order until one answers.
    ///
    /// A deployment whose provider cannot serve the request (a field or an endpoint it
    /// lacks) is passed over without penalty; when no deployment could even try, the client
    /// gets that reason as a 400.
    pub async fn route(&self, request: &ApiRequest, request_id: &HeaderValue) -> Dispatch {
        let Some(route) = self.model(request.model()) else {
            return Dispatch {
                attempts: 0,
                provider: None,
                result: Err(ProxyError::ModelNotFound { model: request.model().to_string() }),
            };
        };
        let mut records = Vec::new();
        let mut attempts = 0;
        let mut unsupported = None;
        for deployment in &route.deployments {
            let permit = match deployment.health.admit() {
                Ok(permit) => permit,
                Err(retry_in) => {
                    records.push(AttemptRecord {
                        provider: Arc::clone(&deployment.provider_name),
                        outcome: AttemptOutcome::CoolingDown { retry_in },
                    });
                    continue;
                }
            };
            attempts += 1;
            let started = Instant::now();
            let error = match self.attempt(deployment, request, request_id).await {
                Ok(answer) => {
                    let served = match answer {
                        Answer::Json(body) => {
                            permit.success();
                            Served::Json(body)
                        }
                        Answer::Stream { first, rest } => Served::Stream(Committed {
                            first,
                            rest,
                            permit,
                            idle_timeout: self.timeout,
                            provider: Arc::clone(&deployment.provider_name),
                        }),
                    };
                    return Dispatch {
                        attempts,
                        provider: Some(Arc::clone(&deployment.provider_name)),
                        result: Ok(served),
                    };
                }
                Err(error) => error,
            };
            match (classify(&error), error) {
                (Verdict::Unsupported, ProviderError::Unsupported { message, param }) => {
                    // Refused before anything was sent: not an attempt, nothing to count.
                    drop(permit);
                    attempts -= 1;
                    let reason = format!("{message} (provider `{}`)", deployment.provider_name);
                    records.push(AttemptRecord {
                        provider: Arc::clone(&deployment.provider_name),
                        outcome: AttemptOutcome::Unsupported(message),
                    });
                    unsupported.get_or_insert(ProxyError::Unsupported { message: reason, param });
                }
                (Verdict::ClientError, ProviderError::Status { status, content_type, body, .. }) => {
                    // The request is at fault, not the provider: relay as is, count nothing.
                    drop(permit);
                    return Dispatch {
                        attempts,
                        provider: Some(Arc::clone(&deployment.provider_name)),
                        result: Ok(Served::ClientError { status, content_type, body }),
                    };
                }
                (verdict, error) => {
                    let retry_after = match verdict {
                        Verdict::ProviderFailure { retry_after } => retry_after,
                        Verdict::ClientError | Verdict::Unsupported => None,
                    };
                    let elapsed = started.elapsed();
                    tracing::warn!(
                        model = %route.name,
                        provider = %deployment.provider_name,
                        error = %error,
                        elapsed_ms = elapsed.as_millis() as u64,
                        probe = permit.is_probe(),
                        "attempt failed"
                    );
                    permit.failure(retry_after);
                    records.push(AttemptRecord {
                        provider: Arc::clone(&deployment.provider_name),
                        outcome: AttemptOutcome::Failed { error: error.to_string(), elapsed },
                    });
                }
            }
        }
        let all_unsupported = records.iter().all(|r| matches!(r.outcome, AttemptOutcome::Unsupported(_)));
        let error = match unsupported {
            Some(unsupported) if all_unsupported => unsupported,
            _ => ProxyError::AllDeploymentsFailed { model: route.name.to_string(), attempts: records },
        };
        Dispatch { attempts, provider: None, result: Err(error) }
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

enum Answer {
    Json(Bytes),
    Stream { first: Bytes, rest: BoxStream<'static, Result<Bytes, ProviderError>> },
}

/// Seconds, rounded up, for humans and `retry_in_seconds` fields.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
