//! Every error the proxy itself answers with, and its one mapping to HTTP.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::dialect::Dialect;
use crate::api::request::InvalidRequest;
use crate::api::{AnthropicError, ErrorBody, ErrorEnvelope, anthropic_error_type};
use crate::router::RouteError;

/// What the client is told when the proxy, not an upstream, answers.
///
/// Messages never contain a key or an upstream body: an upstream error body can echo
/// credentials, so only its status reaches [`ProxyError::AllDeploymentsFailed`].
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request body is malformed (400).
    #[error("{0}")]
    InvalidRequest(#[from] InvalidRequest),
    /// No deployment's provider can do what the request asks (a field, a content type or an
    /// endpoint it lacks) (400).
    #[error("{message}")]
    Unsupported {
        /// Names the field and the provider.
        message: String,
        /// The request field at fault.
        param: Option<String>,
    },
    /// Missing or wrong key while `server.master_key` is set (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A virtual key was refused: unknown, expired, blocked, or its team blocked (401); or it
    /// could not be checked because the store is down and the key is not cached (503).
    #[error("{0}")]
    Key(#[from] crate::keys::ring::KeyError),
    /// The key (or its team) may not call this model (403).
    #[error("This API key may not use the model `{model}`.")]
    ModelNotAllowed {
        /// The model asked for.
        model: String,
    },
    /// A key's or team's limit refused the request (429).
    #[error("{}", refusal_message(.0))]
    Limited(crate::limits::Refusal),
    /// `pricing.unknown_model: reject` and a deployment of this model has no price (400).
    #[error("No price is known for the model `{model}`, and `pricing.unknown_model` is `reject`.")]
    PriceUnknown {
        /// The model asked for.
        model: String,
    },
    /// No model of that name is configured (404).
    #[error("The model `{model}` does not exist or you do not have access to it.")]
    ModelNotFound {
        /// The name the client asked for.
        model: String,
    },
    /// The body is larger than `server.max_body_bytes` (413).
    #[error("Request body is larger than the limit of {limit} bytes.")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// A JSON endpoint got a body that does not say it is `application/json` (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client did not send the whole body within `server.body_read_timeout_seconds` (408).
    #[error("The request body was not received within {0} seconds.")]
    BodyTimeout(f64),
    /// Nothing served the request: every deployment failed or is ejected (503), or some are
    /// only rate limited (429 with `retry-after`).
    #[error("{0}")]
    Exhausted(RouteError),
    /// No stored Responses answer has this id (404).
    #[error("Response with id '{0}' not found.")]
    ResponseNotFound(String),
    /// A WebSocket upgrade where the proxy speaks HTTP only (426).
    #[error("WebSocket transport is not supported; use HTTP (POST /v1/responses).")]
    UpgradeRequired,
    /// No such endpoint (404).
    #[error("Unknown endpoint: {0}")]
    UnknownEndpoint(String),
    /// The endpoint exists but not with this method (405).
    #[error("Method not allowed for this endpoint.")]
    MethodNotAllowed,
    /// A bug: a handler panicked (500). Details go to the log, not to the client.
    #[error("Internal error in the proxy.")]
    Internal,
    /// An admin operation on keys, teams, spend or the request log was refused: unknown id
    /// (404), invalid field (400), conflict, read-only or no store (409), store down (503).
    #[error("{0}")]
    Manage(#[from] crate::manage::ManageError),
}

/// What a limit refusal tells the client: whose limit, which, and when to come back.
fn refusal_message(refusal: &crate::limits::Refusal) -> String {
    use crate::limits::Refusal;
    let whose = |subject: &str| match subject.split_once(':') {
        Some(("team", id)) => format!("team `{id}`"),
        Some((_, id)) => format!("key `{id}`"),
        None => subject.to_string(),
    };
    match refusal {
        Refusal::Requests { subject, limit, retry_after } => format!(
            "Rate limit reached for {}: {limit} requests per minute. Please try again in {}.",
            whose(subject),
            openai_duration(*retry_after)
        ),
        Refusal::Tokens { subject, limit, retry_after } => format!(
            "Rate limit reached for {}: {limit} tokens per minute. Please try again in {}.",
            whose(subject),
            openai_duration(*retry_after)
        ),
        Refusal::Parallel { subject, limit } => {
            format!("Too many requests in flight for {}: at most {limit} at once.", whose(subject))
        }
        Refusal::Budget { subject, exceeded } => {
            let resets = match exceeded.resets_at {
                Some(at) => format!("; it resets at {} UTC", httpdate::fmt_http_date(unix_time(at))),
                None => String::new(),
            };
            format!(
                "You exceeded your current quota: the budget of {} is ${} and ${} is spent{resets}.",
                whose(subject),
                exceeded.limit,
                exceeded.spent
            )
        }
    }
}

/// The `code` of an admin refusal, also its label in logs.
fn manage_code(error: &crate::manage::ManageError) -> &'static str {
    use crate::manage::ManageError as E;
    match error {
        E::NotFound { .. } => "not_found",
        E::Invalid { .. } => "invalid_value",
        E::Conflict(_) => "conflict",
        E::ReadOnly { .. } => "declared_in_config",
        E::NoStore => "store_not_configured",
        E::Store(crate::store::StoreError::Unavailable(_)) => "store_unavailable",
        E::Store(_) => "store_error",
        E::Entropy => "entropy_unavailable",
    }
}

fn unix_time(secs: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64)
}

/// A duration the way OpenAI's rate-limit headers and messages write it: `6s`, `1m30s`,
/// `250ms`.
pub fn openai_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{}ms", ms.max(1));
    }
    let secs = d.as_secs_f64();
    let (minutes, rest) = ((secs / 60.0).floor() as u64, secs % 60.0);
    let rest = format!("{rest:.3}");
    let rest = rest.trim_end_matches('0').trim_end_matches('.');
    match minutes {
        0 => format!("{rest}s"),
        m => format!("{m}m{rest}s"),
    }
}

impl From<RouteError> for ProxyError {
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::ModelNotFound { model } => Self::ModelNotFound { model },
            RouteError::Unsupported { message, param } => Self::Unsupported { message, param },
            exhausted @ (RouteError::AllFailed { .. } | RouteError::RateLimited { .. }) => {
                Self::Exhausted(exhausted)
            }
        }
    }
}

impl ProxyError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::Unsupported { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Key(crate::keys::ring::KeyError::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Key(_) => StatusCode::UNAUTHORIZED,
            Self::ModelNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::PriceUnknown { .. } => StatusCode::BAD_REQUEST,
            Self::ModelNotFound { .. } | Self::UnknownEndpoint(_) | Self::ResponseNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Exhausted(RouteError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            Self::Exhausted(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Manage(error) => {
                use crate::manage::ManageError as E;
                match error {
                    E::NotFound { .. } => StatusCode::NOT_FOUND,
                    E::Invalid { .. } => StatusCode::BAD_REQUEST,
                    E::Conflict(_) | E::ReadOnly { .. } | E::NoStore => StatusCode::CONFLICT,
                    E::Store(crate::store::StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
                    E::Store(_) | E::Entropy => StatusCode::INTERNAL_SERVER_ERROR,
                }
            }
        }
    }

    /// A short stable name, for logs and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::Unsupported { .. } => "unsupported",
            Self::Unauthorized(_) => "unauthorized",
            Self::Key(error) => error.label(),
            Self::ModelNotAllowed { .. } => "model_not_allowed",
            Self::Limited(refusal) => refusal.label(),
            Self::PriceUnknown { .. } => "price_unknown",
            Self::ModelNotFound { .. } => "model_not_found",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Exhausted(RouteError::RateLimited { .. }) => "rate_limited",
            Self::Exhausted(_) => "all_deployments_failed",
            Self::UnknownEndpoint(_) => "unknown_endpoint",
            Self::ResponseNotFound(_) => "response_not_found",
            Self::UpgradeRequired => "upgrade_required",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal",
            Self::Manage(error) => manage_code(error),
        }
    }

    fn openai_type(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "authentication_error",
            Self::Key(crate::keys::ring::KeyError::Unavailable) => "server_error",
            Self::Key(_) => "invalid_request_error",
            Self::ModelNotAllowed { .. } => "invalid_request_error",
            Self::Limited(crate::limits::Refusal::Budget { .. }) => "insufficient_quota",
            Self::Limited(crate::limits::Refusal::Tokens { .. }) => "tokens",
            Self::Limited(_) => "requests",
            // OpenAI's own 429s say which limit: `requests` or `tokens`.
            Self::Exhausted(RouteError::RateLimited { .. }) => "requests",
            Self::Exhausted(_) => "upstream_error",
            Self::Internal => "server_error",
            Self::Manage(crate::manage::ManageError::Store(_) | crate::manage::ManageError::Entropy) => {
                "server_error"
            }
            _ => "invalid_request_error",
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(_)
            | Self::UnknownEndpoint(_)
            | Self::MethodNotAllowed
            | Self::Internal
            | Self::ResponseNotFound(_) => None,
            Self::UpgradeRequired => Some("websocket_not_supported"),
            Self::Unauthorized(_) => Some("invalid_api_key"),
            Self::Key(crate::keys::ring::KeyError::Unavailable) => Some("key_store_unavailable"),
            Self::Key(_) => Some("invalid_api_key"),
            Self::ModelNotAllowed { .. } => Some("model_not_allowed"),
            Self::Limited(crate::limits::Refusal::Budget { .. }) => Some("insufficient_quota"),
            Self::Limited(_) => Some("rate_limit_exceeded"),
            Self::PriceUnknown { .. } => Some("price_unknown"),
            Self::Unsupported { .. } => Some("unsupported_parameter"),
            Self::ModelNotFound { .. } => Some("model_not_found"),
            Self::PayloadTooLarge { .. } => Some("request_too_large"),
            Self::UnsupportedMediaType(_) => Some("unsupported_media_type"),
            Self::BodyTimeout(_) => Some("request_timeout"),
            Self::Exhausted(RouteError::RateLimited { .. }) => Some("rate_limit_exceeded"),
            Self::Exhausted(_) => Some("all_deployments_failed"),
            Self::Manage(error) => Some(manage_code(error)),
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest(invalid) => invalid.param,
            Self::Unsupported { param, .. } => param.as_deref(),
            Self::ModelNotFound { .. } | Self::ModelNotAllowed { .. } | Self::PriceUnknown { .. } => {
                Some("model")
            }
            Self::Manage(crate::manage::ManageError::Invalid { param, .. }) => Some(param),
            _ => None,
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        self.respond(Dialect::Chat)
    }
}

impl ProxyError {
    /// The status this error has in `dialect`: Anthropic's clients are told an exhausted
    /// model is overloaded (529), the status their SDKs know for it.
    fn status_in(&self, dialect: Dialect) -> StatusCode {
        match (dialect, self) {
            (Dialect::Messages, Self::Exhausted(RouteError::AllFailed { .. })) => {
                StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            }
            _ => self.status(),
        }
    }

    /// The response in the client's dialect: OpenAI's envelope (Chat Completions and
    /// Responses) or Anthropic's error body (Messages), with the status and headers the
    /// client's SDK acts on.
    pub fn respond(self, dialect: Dialect) -> Response {
        let message = self.to_string();
        let status = self.status_in(dialect);
        let body = match dialect {
            Dialect::Chat | Dialect::Responses => ErrorEnvelope {
                error: ErrorBody {
                    message: &message,
                    kind: self.openai_type(),
                    param: self.param(),
                    code: self.code(),
                },
            }
            .to_bytes(),
            Dialect::Messages => {
                AnthropicError::new(anthropic_error_type(status.as_u16()), &message).to_bytes()
            }
        };
        let mut response =
            (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
        match &self {
            Self::Exhausted(RouteError::RateLimited { retry_after, .. }) => {
                // The SDKs honour these (the `-ms` one first) and retry then: by that time
                // the soonest deployment is free again.
                let headers = response.headers_mut();
                headers.insert("retry-after", HeaderValue::from(crate::router::ceil_secs(*retry_after)));
                let millis = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                headers.insert("retry-after-ms", HeaderValue::from(millis));
            }
            Self::Exhausted(_) => {
                // Every deployment was already tried: an SDK retrying would only multiply load.
                response.headers_mut().insert("x-should-retry", HeaderValue::from_static("false"));
            }
            Self::Limited(refusal) => {
                use crate::limits::Refusal;
                let headers = response.headers_mut();
                match refusal {
                    // Retrying before the period ends cannot succeed.
                    Refusal::Budget { .. } => {
                        headers.insert("x-should-retry", HeaderValue::from_static("false"));
                    }
                    Refusal::Requests { retry_after, .. } | Refusal::Tokens { retry_after, .. } => {
                        headers
                            .insert("retry-after", HeaderValue::from(crate::router::ceil_secs(*retry_after)));
                        let millis = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                        headers.insert("retry-after-ms", HeaderValue::from(millis));
                    }
                    // A slot frees when any request of the key ends; a second is a fair guess.
                    Refusal::Parallel { .. } => {
                        headers.insert("retry-after", HeaderValue::from_static("1"));
                    }
                }
            }
            _ => {}
        }
        response.extensions_mut().insert(ErrorKind(self.kind()));
        response
    }
}

/// Set on responses the proxy answered with an error, for the request log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorKind(pub &'static str);
