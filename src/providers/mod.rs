//! Provider adapters: one folder per wire format, all behind [`Provider`].
//!
//! An adapter takes a request in a client dialect it speaks ([`Provider::speaks`]; every
//! adapter speaks OpenAI Chat Completions, translating it to its provider's format where that
//! differs), sends it with the provider's pooled client, and hands back either a complete body
//! in that dialect or a stream of [`Frame`]s: whole SSE events, each saying whether the stream
//! has said anything yet (the router commits on meaning, not on bytes), whether it is complete,
//! and the usage reported so far. Requests in a dialect an adapter does not speak are
//! translated to Chat Completions first, by `crate::dialect`. It reports what went wrong as a [`ProviderError`]; deciding what that
//! means (fail over, pause, or not) is the router's job (`router::classify`).

pub mod anthropic;
pub mod azure;
pub(crate) mod client;
pub mod gemini;
pub mod mock;
pub mod openai;
pub(crate) mod settings;
pub(crate) mod translate;

pub use crate::usage::Usage;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use http::StatusCode;
use http::header::{HeaderMap, HeaderValue};
use serde_yaml_ng::Value;

pub use crate::api::dialect::Dialect;
use crate::validate::Problems;

/// One upstream provider, as configured under `providers:`.
///
/// Implementations hold their own pooled HTTP client and must not block. The returned future
/// resolves once the outcome is known: for a stream, when response headers arrived; otherwise
/// when the whole body is read. The router bounds it with the configured timeout and may drop
/// it at any point (the client went away), which must cancel the upstream request.
pub trait Provider: Send + Sync + 'static {
    /// Whether this provider takes requests in `dialect` as they are, and answers in it:
    /// Chat Completions always; Anthropic Messages for Anthropic, OpenAI Responses for OpenAI
    /// and Azure (where enabled). The client's bytes are then relayed both ways untouched.
    fn speaks(&self, dialect: Dialect) -> bool {
        dialect == Dialect::Chat
    }

    /// Whether this provider streams OpenAI's format itself and should be asked for usage
    /// (`stream_options.include_usage`) on every stream, so that tokens are counted even
    /// when the client did not ask; [`Call::client_wants_usage`] then says whether to keep
    /// the usage chunk.
    fn asks_for_stream_usage(&self) -> bool {
        false
    }

    /// Client headers this provider receives beyond [`FORWARDED_HEADERS`] (its
    /// `forward_headers:` setting).
    fn forward_headers(&self) -> &[http::HeaderName] {
        &[]
    }

    /// Sends one generative attempt, in [`Call::dialect`] (one this provider speaks).
    fn chat(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>>;

    /// Counts the input tokens of an Anthropic Messages request (`POST
    /// /v1/messages/count_tokens`), for providers that speak Messages; answers
    /// `{"input_tokens": N}`.
    fn count_tokens(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        drop(call);
        Box::pin(std::future::ready(Err(ProviderError::unsupported("token counting is not supported", None))))
    }

    /// Sends one embeddings attempt; answers [`Reply::Json`] in OpenAI's format. Providers
    /// without embeddings keep this default, and the router passes them over.
    fn embeddings(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        drop(call);
        Box::pin(std::future::ready(Err(ProviderError::unsupported("embeddings are not supported", None))))
    }
}

/// One attempt's input, already rewritten for this deployment (`model` is its `model_id`).
pub struct Call {
    /// The dialect of `body`, and of the answer expected.
    pub dialect: Dialect,
    /// The request body to send, in `dialect`.
    pub body: Bytes,
    /// Whether the client asked for `stream: true`.
    pub stream: bool,
    /// The deployment's `model_id` (also in `body`); adapters that put the model in the URL
    /// (Azure, Gemini) take it from here.
    pub model_id: Arc<str>,
    /// Sent upstream as `x-request-id` so both sides' logs can be joined.
    pub request_id: HeaderValue,
    /// The client's headers that are meant for the upstream (`anthropic-beta`,
    /// `OpenAI-Beta`, `traceparent`, …; see [`FORWARDED_HEADERS`]).
    pub forwarded: HeaderMap,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub client_wants_usage: bool,
}

/// Client headers sent on to every upstream: what the provider's own SDKs use to opt into
/// betas, pick an organisation or carry a trace. Anything else the client sends stays here
/// (its credentials above all). A provider's `forward_headers:` adds names.
pub const FORWARDED_HEADERS: &[&str] = &[
    "anthropic-beta",
    "anthropic-version",
    "openai-beta",
    "openai-organization",
    "openai-project",
    "traceparent",
    "tracestate",
];

/// Upstream response headers the client sees, renamed with this prefix so that the gateway's
/// own rate-limit headers can use the plain names: the provider's request id (to quote to
/// its support), its rate-limit state and its processing time.
pub const UPSTREAM_HEADER_PREFIX: &str = "x-llm-proxy-upstream-";

/// Whether an upstream response header is relayed (under [`UPSTREAM_HEADER_PREFIX`]).
pub fn relays_upstream_header(name: &str) -> bool {
    matches!(name, "x-request-id" | "request-id" | "openai-processing-ms" | "retry-after")
        || name.starts_with("x-ratelimit-")
        || name.starts_with("anthropic-ratelimit-")
}

/// A successful upstream answer, in the call's dialect.
pub struct Reply {
    /// The answer.
    pub payload: Payload,
    /// The upstream's headers worth relaying, already renamed (see [`UPSTREAM_HEADER_PREFIX`]).
    pub headers: HeaderMap,
    /// A complete answer's token usage, as the adapter read it (a stream's travels in its
    /// frames).
    pub usage: Option<Usage>,
}

impl Reply {
    /// A complete JSON answer and its usage.
    pub fn json(body: Bytes, usage: Option<Usage>) -> Self {
        Self { payload: Payload::Json(body), headers: HeaderMap::new(), usage }
    }

    /// A complete OpenAI-format answer, its usage read from it.
    pub fn openai_json(body: Bytes) -> Self {
        let usage = Usage::from_openai(&body);
        Self::json(body, usage)
    }

    /// A streamed answer.
    pub fn stream(frames: Frames) -> Self {
        Self { payload: Payload::Stream(frames), headers: HeaderMap::new(), usage: None }
    }

    /// The same answer, relaying `headers`.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }
}

/// The body of a [`Reply`].
pub enum Payload {
    /// A complete JSON body (`chat.completion`, embeddings, `response`, `message`), checked to
    /// be valid JSON.
    Json(Bytes),
    /// The stream, as it arrives.
    Stream(Frames),
}

/// A stream's frames, as they arrive.
pub type Frames = BoxStream<'static, Result<Frame, ProviderError>>;

/// Part of a stream: whole SSE events of the call's dialect, and what the stream has said so
/// far.
#[derive(Debug, Default)]
pub struct Frame {
    /// Whole SSE events to send the client, in order (may be empty).
    pub bytes: Bytes,
    /// The stream has carried content, a tool call or a finish reason by the end of this
    /// frame: it may commit. Keep-alives, comments and preambles (a role-only chunk,
    /// Anthropic's `message_start` and `ping`) do not count.
    pub meaningful: bool,
    /// The stream is complete: its terminal event (`[DONE]`, `message_stop`,
    /// `response.completed`) is in `bytes`.
    pub done: bool,
    /// `bytes` hold an error event the upstream sent: the stream is over and failed, even if
    /// a `[DONE]` follows it.
    pub failed: bool,
    /// The usage reported so far, if any (the last one wins).
    pub usage: Option<Usage>,
}

/// What went wrong talking to a provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with a non-success status.
    #[error("HTTP {}", status.as_u16())]
    Status {
        /// The upstream status.
        status: StatusCode,
        /// How long the provider asked us to stay away (`retry-after`, `retry-after-ms`).
        retry_after: Option<Duration>,
        /// The upstream `content-type`, relayed with client errors.
        content_type: Option<HeaderValue>,
        /// The upstream body (bounded), relayed only for client errors.
        body: Bytes,
    },
    /// No connection could be made; the text is the whole cause chain.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The connection broke while sending or receiving; the text is the whole cause chain.
    #[error("transport error: {0}")]
    Transport(String),
    /// The attempt or the stream went silent for longer than the timeout.
    #[error("timed out after {}", humanize(*.0))]
    Timeout(Duration),
    /// The provider answered 2xx with something that is not what it promised.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The request asks for something this provider cannot do (a field, a content type, an
    /// endpoint). Nothing was sent; another deployment may still serve it.
    #[error("{message}")]
    Unsupported {
        /// What cannot be done, naming the field: "`logprobs` is not supported by Anthropic".
        message: String,
        /// The request field at fault, e.g. `messages[2].content[0]`.
        param: Option<String>,
    },
}

impl ProviderError {
    /// A request this provider cannot serve, with the field at fault.
    pub fn unsupported(message: impl Into<String>, param: Option<String>) -> Self {
        Self::Unsupported { message: message.into(), param }
    }

    /// Wraps an HTTP client error. The text is the whole cause chain, because the top-level
    /// message ("client error (Connect)") hides what an on-call engineer needs ("Connection
    /// refused"); no URL or header is part of it, so nothing secret can reach a log.
    pub fn from_client(err: hyper_util::client::legacy::Error) -> Self {
        let text = cause_chain(&err);
        if err.is_connect() { Self::Connect(text) } else { Self::Transport(text) }
    }

    /// Wraps an error while reading a response body.
    pub fn from_body(err: hyper::Error) -> Self {
        Self::Transport(cause_chain(&err))
    }
}

fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Formats a duration for humans: `60s`, `250ms`.
pub fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// How long a response asks the client to wait: `retry-after-ms`, else `retry-after` in
/// seconds (fractions allowed) or as an HTTP date, else the rate-limit reset headers
/// (OpenAI's `x-ratelimit-reset-requests`/`-tokens` as `6m0s`, Anthropic's
/// `anthropic-ratelimit-*-reset` as RFC 3339 times), taking the longest. A reset header counts
/// only for a limit that is exhausted (its `…-remaining` header is `0`, or absent): providers
/// send them on every answer, and a 503 that says "4,999 requests left" is not a rate limit.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    if let Some(value) = text("retry-after") {
        if let Ok(secs) = value.parse::<f64>() {
            return Duration::try_from_secs_f64(secs).ok();
        }
        if let Ok(when) = httpdate::parse_http_date(value) {
            return Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default());
        }
    }
    let exhausted =
        |remaining: &str| text(remaining).is_none_or(|left| left.parse::<f64>().is_ok_and(|n| n <= 0.0));
    let openai = [
        ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"),
        ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
    ]
    .into_iter()
    .filter(|(_, remaining)| exhausted(remaining))
    .filter_map(|(name, _)| text(name).and_then(parse_go_duration));
    let anthropic = [
        ("anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining"),
        ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining"),
        ("anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining"),
        ("anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining"),
    ]
    .into_iter()
    .filter(|(_, remaining)| exhausted(remaining))
    .filter_map(|(name, _)| text(name).and_then(until_rfc3339));
    openai.chain(anthropic).max()
}

/// `1h2m3.5s`, `6m0s`, `20ms`: the duration format of OpenAI's reset headers.
fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        total += value
            * match &rest[..unit_end] {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                "us" | "µs" => 0.000_001,
                "ns" => 0.000_000_001,
                _ => return None,
            };
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Time from now until an RFC 3339 UTC timestamp (`2026-11-27T18:40:05Z`, fractions and a
/// `+00:00` offset allowed); zero if it has passed.
fn until_rfc3339(text: &str) -> Option<Duration> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let time = time.trim_end_matches(['Z', 'z']).trim_end_matches("+00:00");
    let mut hms = time.splitn(3, ':');
    let (hour, minute) = (hms.next()?.parse::<i64>().ok()?, hms.next()?.parse::<i64>().ok()?);
    let second = hms.next()?.parse::<f64>().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || !(0.0..61.0).contains(&second)
    {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let at = (days * 86_400 + hour * 3600 + minute * 60) as f64 + second;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
    Some(Duration::try_from_secs_f64((at - now).max(0.0)).unwrap_or_default())
}

/// The settings of one entry under `providers:`, by type.
#[derive(Debug)]
pub enum ProviderConfig {
    /// `type: openai` or one of the OpenAI-compatible presets (`groq`, `ollama`, …).
    OpenAi(openai::OpenAiConfig),
    /// `type: azure`.
    Azure(azure::AzureConfig),
    /// `type: anthropic`.
    Anthropic(anthropic::AnthropicConfig),
    /// `type: gemini`.
    Gemini(gemini::GeminiConfig),
    /// `type: mock`.
    Mock(mock::MockConfig),
}

impl ProviderConfig {
    /// Every accepted `type:` value.
    pub fn type_names() -> impl Iterator<Item = &'static str> {
        ["openai", "azure", "anthropic", "gemini", "mock"]
            .into_iter()
            .chain(openai::PRESETS.iter().map(|preset| preset.name))
    }

    /// Decodes and validates the settings of a provider of type `kind` (the `type` key
    /// already removed), recording problems under `path`.
    pub fn decode(kind: &str, settings: Value, path: &str, problems: &mut Problems) -> Option<Self> {
        // Validation may fill in defaults (a preset's base URL), hence `&mut`.
        fn decode<T: serde::de::DeserializeOwned>(
            settings: Value,
            path: &str,
            problems: &mut Problems,
            validate: impl FnOnce(&mut T, &mut Problems) -> bool,
        ) -> Option<T> {
            let mut config = problems.decode::<T>(path, settings)?;
            validate(&mut config, problems).then_some(config)
        }
        match kind {
            "openai" => {
                decode(settings, path, problems, |c: &mut openai::OpenAiConfig, p| c.resolve(None, path, p))
                    .map(Self::OpenAi)
            }
            "azure" => decode(settings, path, problems, |c: &mut azure::AzureConfig, p| c.validate(path, p))
                .map(Self::Azure),
            "anthropic" => {
                decode(settings, path, problems, |c: &mut anthropic::AnthropicConfig, p| c.validate(path, p))
                    .map(Self::Anthropic)
            }
            "gemini" => {
                decode(settings, path, problems, |c: &mut gemini::GeminiConfig, p| c.validate(path, p))
                    .map(Self::Gemini)
            }
            "mock" => decode(settings, path, problems, |c: &mut mock::MockConfig, p| c.validate(path, p))
                .map(Self::Mock),
            other => match openai::PRESETS.iter().find(|preset| preset.name == other) {
                Some(preset) => decode(settings, path, problems, |c: &mut openai::OpenAiConfig, p| {
                    c.resolve(Some(preset), path, p)
                })
                .map(Self::OpenAi),
                None => {
                    let names: Vec<_> = Self::type_names().collect();
                    problems.push(
                        format!("{path}.type"),
                        format!("unknown provider type `{other}`; one of: {}", names.join(", ")),
                    );
                    None
                }
            },
        }
    }

    /// Builds the runtime adapter, with its own connection pool.
    pub fn build(&self, limits: &Limits) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(match self {
            Self::OpenAi(config) => Arc::new(openai::OpenAi::new(config, limits)?),
            Self::Azure(config) => Arc::new(azure::Azure::new(config, limits)?),
            Self::Anthropic(config) => Arc::new(anthropic::Anthropic::new(config, limits)?),
            Self::Gemini(config) => Arc::new(gemini::Gemini::new(config, limits)?),
            Self::Mock(config) => Arc::new(mock::Mock::new(config)),
        })
    }
}

std::thread_local! {
    static CORE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the current thread as serving core `index` (see `server::serve_per_core`), so that
/// adapters use that core's connection pool and a request never hops threads to reach its
/// upstream connection.
pub fn set_core(index: usize) {
    CORE.with(|core| core.set(index));
}

/// One value per core, picked by the calling thread's core (0 outside `serve_per_core`).
pub(crate) struct PerCore<T>(Box<[T]>);

impl<T> PerCore<T> {
    pub(crate) fn new(make: impl FnMut(usize) -> T) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self((0..cores).map(make).collect())
    }

    pub(crate) fn get(&self) -> &T {
        &self.0[CORE.with(std::cell::Cell::get) % self.0.len()]
    }
}

/// Bounds every adapter applies to what it reads from upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest non-streaming upstream body read into memory.
    pub max_response_bytes: usize,
    /// Connect timeout for new upstream connections.
    pub connect_timeout: Duration,
}

/// An adapter could not be built from a (validated) config.
#[derive(Debug, thiserror::Error)]
#[error("cannot build provider client: {0}")]
pub struct BuildError(String);

impl BuildError {
    /// A build error explained by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_headers_count_only_for_an_exhausted_limit() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset-requests", HeaderValue::from_static("20ms"));
        h.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("4999"));
        assert_eq!(retry_after(&h), None, "plenty left: an outage, not a rate limit");
        h.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("0"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(20)));
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after", HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.remove("retry-after-ms");
        let soon = std::time::SystemTime::now() + Duration::from_secs(120);
        let date = httpdate::fmt_http_date(soon);
        h.insert("retry-after", HeaderValue::from_str(&date).unwrap());
        let got = retry_after(&h).unwrap();
        assert!(got > Duration::from_secs(110) && got <= Duration::from_secs(120), "{got:?}");
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn rate_limit_reset_headers_count_when_retry_after_is_absent() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset-requests", HeaderValue::from_static("1m30.5s"));
        h.insert("x-ratelimit-reset-tokens", HeaderValue::from_static("250ms"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(90_500)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_go_duration("1h2m"), Some(Duration::from_secs(3720)));
        assert_eq!(parse_go_duration("soon"), None);
        let mut h = HeaderMap::new();
        let in_a_minute = std::time::SystemTime::now() + Duration::from_secs(60);
        let secs = in_a_minute.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        // Format by hand through httpdate's parser in reverse: build RFC 3339 from the epoch.
        let days = secs / 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        let rem = secs % 86_400;
        let stamp = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
        h.insert("anthropic-ratelimit-tokens-reset", HeaderValue::from_str(&stamp).unwrap());
        let got = retry_after(&h).unwrap();
        assert!(got > Duration::from_secs(55) && got <= Duration::from_secs(60), "{stamp}: {got:?}");
        assert_eq!(until_rfc3339("2000-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(until_rfc3339("not a date"), None);
    }

    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    #[test]
    fn humanize_picks_a_readable_unit() {
        assert_eq!(humanize(Duration::from_secs(60)), "60s");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_millis(1500)), "1500ms");
    }
}
