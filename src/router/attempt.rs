//! One attempt against one deployment: admission (health, caps), the call bounded by its
//! timeouts, the commit rule for streams, and settling what the outcome means.
//!
//! **The commit rule.** A stream commits at its first meaningful frame (content, a tool call,
//! a finish reason, or `[DONE]`). Until then the router holds what arrived (a role-only chunk,
//! comments, keep-alives, Anthropic's `message_start` and `ping`) and the attempt can still
//! fail over: an error event, a broken connection, or silence past the first-token timeout
//! fails it like an error status would. Once committed the held bytes go first, and there
//! is no failover. Time to first token and the latency EWMA are measured at the commit.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::HeaderMap;
use tokio::time::{Instant, timeout_at};

use super::classify::{Verdict, classify};
use super::health::Permit;
use super::limits::Caps;
use super::outcome::{AttemptOutcome, AttemptRecord, RouteError};
use super::{Deployment, Inbound, ModelRoute, Pass, Router, Run, Served, Stop};
use crate::dialect::{self, Attempt};
use crate::metrics::{DeploymentMetrics, Outcome};
use crate::providers::{FORWARDED_HEADERS, Frames, Payload, ProviderError};
use crate::sse::MAX_EVENT_BYTES;
use crate::usage::Usage;

/// How trying one deployment ended.
pub(super) enum Tried {
    Served(Served),
    /// The upstream judged the request bad: routing stops and relays its answer.
    ClientError(Stop),
    /// Tried, and failed or was rate limited.
    Failed,
    /// Not attempted: paused, ejected, over a cap, or the provider cannot serve the request.
    Skipped,
}

/// A stream that has said something; see `server::relay`.
pub struct Committed {
    /// What arrived up to and including the commit.
    pub first: Bytes,
    /// The rest of the stream.
    pub rest: Frames,
    /// The stream was already complete at its commit (`[DONE]` among the first bytes).
    pub done: bool,
    /// The stream was already over at its commit, on an upstream error event.
    pub failed: bool,
    /// The usage reported so far.
    pub usage: Option<Usage>,
    /// Settled when the stream ends.
    pub ticket: Ticket,
    /// Longest upstream silence allowed between frames.
    pub idle_timeout: Duration,
    /// When the attempt's total time runs out.
    pub deadline: Instant,
    /// Largest stream relayed.
    pub max_bytes: u64,
    /// Who is streaming, for the error event if it breaks.
    pub provider: Arc<str>,
}

/// A committed stream's obligations: settle health (unless already settled at the commit),
/// stop counting it in flight, correct the token estimate and count tokens.
pub struct Ticket {
    /// `None` once settled: a probe (or panic attempt) settles at the commit, since its
    /// first content proves the deployment serves again.
    permit: Option<Permit>,
    _in_flight: super::InFlight,
    caps: Arc<Caps>,
    estimated_tokens: u64,
    metrics: DeploymentMetrics,
}

impl Ticket {
    /// The stream ended with `[DONE]`.
    pub fn success(mut self, usage: Option<Usage>) {
        if let Some(permit) = self.permit.take() {
            permit.stream_success();
        }
        self.count(usage);
    }

    /// The stream broke after it committed: the provider's fault.
    pub fn failure(mut self, usage: Option<Usage>) {
        if let Some(permit) = self.permit.take() {
            permit.failure();
        }
        self.metrics.stream_failed();
        self.count(usage);
    }

    /// The client went away (or the proxy is shutting down): no verdict on the provider.
    pub fn abandon(mut self, usage: Option<Usage>) {
        drop(self.permit.take());
        self.count(usage);
    }

    fn count(&self, usage: Option<Usage>) {
        if let Some(usage) = usage {
            self.metrics.tokens(usage.prompt_tokens, usage.completion_tokens);
            self.caps.settle_tokens(self.estimated_tokens, usage.total());
        }
    }
}

/// What a successful attempt brought back.
enum Answer {
    Json(Bytes, Option<Usage>),
    Stream { first: Bytes, rest: Frames, done: bool, failed: bool, usage: Option<Usage> },
}

impl Router {
    /// One deployment: admission (health, caps), the attempt, and its accounting.
    pub(super) async fn try_deployment(
        &self,
        route: &ModelRoute,
        deployment: &Deployment,
        inbound: &Inbound<'_>,
        pass: Pass,
        run: &mut Run,
    ) -> Tried {
        let record = |outcome| AttemptRecord { provider: Arc::clone(&deployment.provider_name), outcome };
        let admitted = match pass {
            Pass::Normal => deployment.health.admit(),
            Pass::Panic => deployment.health.admit_panic(),
        };
        let permit = match admitted {
            Ok(permit) => permit,
            Err(refusal) => {
                run.records.push(record(refusal.into()));
                return Tried::Skipped;
            }
        };
        // Tokens a request may use, for `tpm` caps: ~4 bytes a token, corrected from usage.
        let estimated_tokens = (inbound.request.body().len() / 4) as u64;
        if deployment.caps.any()
            && let Err(cap) = deployment.caps.reserve(estimated_tokens)
        {
            drop(permit);
            let frees_in = deployment.caps.frees_in(cap);
            run.records.push(record(AttemptOutcome::OverCap { cap, frees_in }));
            return Tried::Skipped;
        }
        run.sent_to.push(super::address(deployment));
        let in_flight = deployment.load.start();
        let started = Instant::now();
        let result = self.attempt(deployment, inbound).await;
        let elapsed = started.elapsed();
        let stream = inbound.request.stream();
        let error = match result {
            Ok((answer, headers)) => {
                run.attempts += 1;
                run.upstream_time += elapsed;
                run.upstream_headers = headers;
                deployment.load.observe(elapsed);
                deployment.metrics.attempt(Outcome::Success, elapsed, stream);
                return Tried::Served(match answer {
                    Answer::Json(body, usage) => {
                        permit.success();
                        if let Some(usage) = usage {
                            deployment.metrics.tokens(usage.prompt_tokens, usage.completion_tokens);
                            deployment.caps.settle_tokens(estimated_tokens, usage.total());
                            run.usage = Some(usage);
                        }
                        Served::Json(body)
                    }
                    Answer::Stream { first, rest, done, failed, usage } => {
                        // The provider serves: a pause ends now, not at the stream's end.
                        permit.serving();
                        let permit = match permit.is_probe() || permit.is_panic() {
                            true => {
                                permit.success();
                                None
                            }
                            false => Some(permit),
                        };
                        Served::Stream(Committed {
                            first,
                            rest,
                            done,
                            failed,
                            usage,
                            ticket: Ticket {
                                permit,
                                _in_flight: in_flight,
                                caps: Arc::clone(&deployment.caps),
                                estimated_tokens,
                                metrics: deployment.metrics.clone(),
                            },
                            idle_timeout: deployment.timeouts.idle,
                            deadline: started + deployment.timeouts.total,
                            max_bytes: self.max_stream_bytes,
                            provider: Arc::clone(&deployment.provider_name),
                        })
                    }
                });
            }
            Err(error) => error,
        };
        match (classify(&error), error) {
            (Verdict::Unsupported, ProviderError::Unsupported { message, param }) => {
                // Refused before anything was sent: nothing to count, the reservation back.
                drop(permit);
                deployment.caps.release(estimated_tokens);
                let reason = format!("{message} (provider `{}`)", deployment.provider_name);
                run.records.push(record(AttemptOutcome::Unsupported(message)));
                run.unsupported.get_or_insert(RouteError::Unsupported { message: reason, param });
                Tried::Skipped
            }
            (Verdict::ClientError, ProviderError::Status { status, content_type, body, .. }) => {
                // The request is at fault, not the provider: relay as is, count nothing.
                run.attempts += 1;
                run.upstream_time += elapsed;
                drop(permit);
                deployment.metrics.attempt(Outcome::ClientError, elapsed, stream);
                Tried::ClientError(Stop::ClientError {
                    provider: Arc::clone(&deployment.provider_name),
                    status,
                    content_type,
                    body,
                })
            }
            (Verdict::RateLimited { retry_after }, error) => {
                run.attempts += 1;
                // The provider counted the request, not tokens it never generated.
                deployment.caps.settle_tokens(estimated_tokens, 0);
                run.upstream_time += elapsed;
                deployment.metrics.attempt(Outcome::RateLimited, elapsed, stream);
                let pause = permit.rate_limited(retry_after);
                tracing::info!(
                    model = %route.name,
                    provider = %deployment.provider_name,
                    error = %error,
                    elapsed_ms = elapsed.as_millis() as u64,
                    pause_ms = pause.as_millis() as u64,
                    "attempt rate limited"
                );
                run.records.push(record(AttemptOutcome::RateLimited { pause, elapsed }));
                Tried::Failed
            }
            (_, error) => {
                run.attempts += 1;
                run.upstream_time += elapsed;
                tracing::warn!(
                    model = %route.name,
                    provider = %deployment.provider_name,
                    error = %error,
                    elapsed_ms = elapsed.as_millis() as u64,
                    probe = permit.is_probe(),
                    panic = permit.is_panic(),
                    "attempt failed"
                );
                deployment.metrics.attempt(failure_outcome(&error), elapsed, stream);
                deployment.caps.settle_tokens(estimated_tokens, 0);
                permit.failure();
                run.records.push(record(AttemptOutcome::Failed { error: error.to_string(), elapsed }));
                Tried::Failed
            }
        }
    }

    /// One attempt, bounded by the first-token timeout up to the answer (non-streaming: the
    /// whole body; a stream: its commit, see the module doc).
    async fn attempt(
        &self,
        deployment: &Deployment,
        inbound: &Inbound<'_>,
    ) -> Result<(Answer, HeaderMap), ProviderError> {
        let attempt = Attempt {
            model_id_json: &deployment.model_id_json,
            model_id: Arc::clone(&deployment.model_id),
            request_id: inbound.request_id.clone(),
            forwarded: forwarded_headers(inbound.headers, deployment.provider.forward_headers()),
        };
        let limit = deployment.timeouts.first_token.min(deployment.timeouts.total);
        let deadline = Instant::now() + limit;
        let timed_out = || ProviderError::Timeout(limit);
        let sent = dialect::send(&*deployment.provider, inbound.request, attempt);
        let reply = timeout_at(deadline, sent).await.map_err(|_| timed_out())??;
        let mut frames = match reply.payload {
            Payload::Json(body) => return Ok((Answer::Json(body, reply.usage), reply.headers)),
            Payload::Stream(frames) => frames,
        };
        let mut held = BytesMut::new();
        let mut usage = None;
        loop {
            let frame = match timeout_at(deadline, frames.next()).await {
                Err(_) => return Err(timed_out()),
                Ok(None) => {
                    return Err(ProviderError::InvalidResponse(
                        "the stream ended before any content".to_string(),
                    ));
                }
                Ok(Some(frame)) => frame?,
            };
            usage = frame.usage.or(usage);
            if held.len() + frame.bytes.len() > MAX_EVENT_BYTES {
                return Err(ProviderError::InvalidResponse(format!(
                    "more than {MAX_EVENT_BYTES} bytes before any content"
                )));
            }
            held.extend_from_slice(&frame.bytes);
            if frame.meaningful || frame.done || frame.failed {
                let first = held.freeze();
                let answer =
                    Answer::Stream { first, rest: frames, done: frame.done, failed: frame.failed, usage };
                return Ok((answer, reply.headers));
            }
        }
    }
}

/// The client's headers meant for this upstream: the default allow-list and its extras.
fn forwarded_headers(headers: &HeaderMap, extra: &[http::HeaderName]) -> HeaderMap {
    let mut forwarded = HeaderMap::new();
    for name in FORWARDED_HEADERS {
        for value in headers.get_all(*name) {
            forwarded.append(*name, value.clone());
        }
    }
    for name in extra {
        for value in headers.get_all(name) {
            forwarded.append(name.clone(), value.clone());
        }
    }
    forwarded
}

/// The metric label of a failed attempt.
fn failure_outcome(error: &ProviderError) -> Outcome {
    match error {
        ProviderError::Status { status, .. } => match status.as_u16() {
            401 | 403 => Outcome::AuthError,
            500..=599 => Outcome::ServerError,
            _ => Outcome::OtherStatus,
        },
        ProviderError::Timeout(_) => Outcome::Timeout,
        ProviderError::Connect(_) => Outcome::ConnectError,
        ProviderError::Transport(_) => Outcome::TransportError,
        ProviderError::InvalidResponse(_) | ProviderError::Unsupported { .. } => Outcome::InvalidResponse,
    }
}
