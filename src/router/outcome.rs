//! What routing one request ends with: each deployment's story ([`AttemptRecord`]) and, when
//! nothing served it, the router's own error ([`RouteError`]), which `server::error` maps to
//! HTTP in one place.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::health::Refusal;
use super::limits::OverCap;

/// What one deployment saw during a request, for the error message and logs.
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
    /// Tried and failed; the text is the provider error's, never an upstream body.
    Failed {
        /// e.g. `HTTP 500`, `timed out after 60s`.
        error: String,
        /// Time spent on the attempt.
        elapsed: Duration,
    },
    /// Tried: the provider is rate limiting, and the deployment is now paused.
    RateLimited {
        /// How long it is paused.
        pause: Duration,
        /// Time spent on the attempt.
        elapsed: Duration,
    },
    /// Skipped: paused by an earlier rate limit for this long still.
    Paused {
        /// Time left in the pause.
        remaining: Duration,
    },
    /// Skipped: ejected; `retry_in` left (zero while another request probes it).
    CoolingDown {
        /// Time until a probe may be let through.
        retry_in: Duration,
    },
    /// Skipped: this provider cannot serve the request; the text says why.
    Unsupported(String),
    /// Skipped: the provider account's per-minute cap is reached.
    OverCap {
        /// Which cap.
        cap: OverCap,
        /// About when a request fits again.
        frees_in: Duration,
    },
    /// Skipped: taken out by an operator.
    DisabledByOperator,
    /// A retry was not made: the retry budget is spent.
    RetryBudgetExhausted,
}

impl From<Refusal> for AttemptOutcome {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Operator => Self::DisabledByOperator,
            Refusal::Paused(remaining) => Self::Paused { remaining },
            Refusal::CoolingDown(retry_in) => Self::CoolingDown { retry_in },
            Refusal::Probing => Self::CoolingDown { retry_in: Duration::ZERO },
        }
    }
}

impl AttemptOutcome {
    /// For a deployment that is only rate limited (paused or at its cap): when it frees.
    pub fn frees_in(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { pause, .. } => Some(*pause),
            Self::Paused { remaining } => Some(*remaining),
            Self::OverCap { frees_in, .. } => Some(*frees_in),
            _ => None,
        }
    }
}

impl fmt::Display for AttemptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let provider = &self.provider;
        match &self.outcome {
            AttemptOutcome::Failed { error, elapsed } => {
                write!(f, "{provider}: {error} after {}ms", elapsed.as_millis())
            }
            AttemptOutcome::RateLimited { pause, elapsed } => write!(
                f,
                "{provider}: rate limited after {}ms, paused for {}s",
                elapsed.as_millis(),
                super::ceil_secs(*pause)
            ),
            AttemptOutcome::Paused { remaining } => {
                write!(f, "{provider}: paused by a rate limit for {}s more", super::ceil_secs(*remaining))
            }
            AttemptOutcome::CoolingDown { retry_in } if retry_in.is_zero() => {
                write!(f, "{provider}: cooling down, probe in flight")
            }
            AttemptOutcome::CoolingDown { retry_in } => {
                write!(f, "{provider}: cooling down, retry in {}s", super::ceil_secs(*retry_in))
            }
            AttemptOutcome::Unsupported(reason) => write!(f, "{provider}: {reason}"),
            AttemptOutcome::OverCap { cap: OverCap::Rpm, .. } => write!(f, "{provider}: at its rpm cap"),
            AttemptOutcome::OverCap { cap: OverCap::Tpm, .. } => write!(f, "{provider}: at its tpm cap"),
            AttemptOutcome::DisabledByOperator => write!(f, "{provider}: disabled by an operator"),
            AttemptOutcome::RetryBudgetExhausted => {
                write!(f, "{provider}: not retried, the retry budget is spent")
            }
        }
    }
}

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// No model of that name (or alias) is configured.
    #[error("The model `{model}` does not exist or you do not have access to it.")]
    ModelNotFound {
        /// The name the client asked for.
        model: String,
    },
    /// No deployment's provider can do what the request asks; nothing was sent.
    #[error("{message}")]
    Unsupported {
        /// Names the field and the provider.
        message: String,
        /// The request field at fault.
        param: Option<String>,
    },
    /// Every deployment that could serve the request is rate limited (paused or at its cap):
    /// the client should retry after `retry_after`.
    #[error("{}", describe("is rate limited", model, attempts))]
    RateLimited {
        /// The model the client asked for.
        model: String,
        /// When the soonest deployment frees.
        retry_after: Duration,
        /// What each deployment saw.
        attempts: Vec<AttemptRecord>,
    },
    /// Every deployment failed or is ejected.
    #[error("{}", describe("failed", model, attempts))]
    AllFailed {
        /// The model the client asked for.
        model: String,
        /// What each deployment saw, in the order tried.
        attempts: Vec<AttemptRecord>,
    },
}

fn describe(what: &str, model: &str, attempts: &[AttemptRecord]) -> String {
    let mut text = format!("All deployments of model `{model}` {what}:");
    for (i, attempt) in attempts.iter().enumerate() {
        text.push_str(if i == 0 { " " } else { "; " });
        text.push_str(&attempt.to_string());
    }
    text
}
