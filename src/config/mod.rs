//! The configuration file: read YAML, expand `${VAR}`s, decode into typed settings and
//! validate, reporting every problem at once with the path of the field at fault.
//!
//! Loading is three steps (read → decode → validate). Each provider, each model and each
//! deployment is decoded on its own, so one mistake does not hide the next one.

pub mod env;
mod governance;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

pub use crate::validate::{Problem, Problems, de};
pub use env::{Env, ProcessEnv};
pub use governance::{LedgerConfig, StoreConfig};

use crate::providers::ProviderConfig;

/// A validated configuration. Immutable once loaded.
#[derive(Debug)]
pub struct Config {
    /// The HTTP edge.
    pub server: ServerConfig,
    /// Failover policy.
    pub router: RouterConfig,
    /// Upstream providers, in file order.
    pub providers: Vec<NamedProvider>,
    /// Models clients may ask for, in file order.
    pub models: Vec<ModelConfig>,
    /// Where keys, teams, spend and the ledger are kept.
    pub store: StoreConfig,
    /// What each request leaves in the ledger.
    pub ledger: LedgerConfig,
    /// Virtual keys declared as code (`keys:`), by hash.
    pub keys: Vec<crate::store::KeyRecord>,
    /// Teams declared as code (`teams:`).
    pub teams: Vec<crate::store::TeamRecord>,
    /// What a model without a price costs.
    pub pricing: PricingConfig,
}

/// `pricing:`: how requests are priced (the table ships with the binary; deployments may
/// override it with `price:`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// A deployment with no price: `warn` (cost 0, logged at load, counted), `zero`, or
    /// `reject` (its model's requests are refused with 400).
    #[serde(default)]
    pub unknown_model: crate::accounting::UnknownPrice,
}

/// `server:`: where to listen and how to guard the door.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// When non-empty, clients must send `Authorization: Bearer <master_key>`.
    #[serde(default)]
    pub master_key: Option<SecretString>,
    /// Largest request body accepted; larger ones get 413.
    #[serde(default = "default_max_body_bytes", deserialize_with = "de::number")]
    pub max_body_bytes: usize,
    /// How long a Responses API answer stays retrievable (`previous_response_id`,
    /// `GET /v1/responses/{id}`) in the proxy's memory. Startup-only.
    #[serde(default = "default_responses_ttl", deserialize_with = "de::seconds")]
    pub responses_ttl_seconds: Duration,
    /// The memory all kept Responses answers may take, in bytes; the least recently used go
    /// first. Startup-only.
    #[serde(default = "default_responses_max_bytes", deserialize_with = "de::number")]
    pub responses_max_bytes: u64,
    /// How long in-flight requests and streams may run after SIGTERM before the process exits.
    #[serde(default = "default_shutdown_grace", deserialize_with = "de::seconds")]
    pub shutdown_grace_seconds: Duration,
    /// After SIGTERM, how long `/health/ready` answers 503 while new connections are still
    /// served (so a load balancer notices before the listener closes); 0 closes at once.
    #[serde(default = "default_shutdown_delay", deserialize_with = "de::seconds")]
    pub shutdown_delay_seconds: Duration,
    /// A client must send a request's whole header within this long (from its first byte, or
    /// from the connection's start); otherwise the connection is closed.
    #[serde(default = "default_header_read_timeout", deserialize_with = "de::seconds")]
    pub header_read_timeout_seconds: Duration,
    /// A client must send a request's whole body within this long; otherwise it gets 408.
    #[serde(default = "default_body_read_timeout", deserialize_with = "de::seconds")]
    pub body_read_timeout_seconds: Duration,
    /// An idle client connection (no request in flight, nothing sent) is closed after this long.
    #[serde(default = "default_keep_alive_timeout", deserialize_with = "de::seconds")]
    pub keep_alive_timeout_seconds: Duration,
    /// Client connections open at once, across all cores; more are answered 503 and closed.
    #[serde(default = "default_max_connections", deserialize_with = "de::number")]
    pub max_connections: usize,
    /// Cross-origin (browser) access; none by default.
    #[serde(default)]
    pub cors: CorsConfig,
}

/// `server.cors:`: which web origins may call the API from a browser.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed, e.g. `https://app.example.com`, or `"*"` for any. Empty: no CORS
    /// headers at all (browsers then refuse cross-origin calls).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Request headers a browser may send; unset: whatever the preflight asks for (the
    /// official SDKs send a changing set of `x-stainless-*` headers).
    #[serde(default)]
    pub allowed_headers: Option<Vec<String>>,
    /// How long a browser may cache a preflight answer.
    #[serde(default = "default_cors_max_age", deserialize_with = "de::number")]
    pub max_age_seconds: u64,
}

/// How traffic is shared among the deployments of one priority tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// At random, in proportion to each deployment's `weight`.
    #[default]
    Weighted,
    /// The one with the fewest requests in flight.
    LeastBusy,
    /// Power of two choices over a peak-EWMA of observed latency (time to first byte for
    /// streams), weighted by requests in flight.
    Latency,
}

/// `router:`: how deployments are chosen, when one counts as failing and for how long it is
/// left alone, and how failed requests are retried.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// Consecutive failures that disable a deployment.
    #[serde(default = "default_failure_threshold", deserialize_with = "de::number")]
    pub failure_threshold: u32,
    /// How long a disabled deployment stays out before one probe request is let through.
    #[serde(default = "default_cooldown", deserialize_with = "de::seconds")]
    pub cooldown_seconds: Duration,
    /// The seed's one timeout. When set, it is the default of `first_token_timeout_seconds`
    /// and `idle_timeout_seconds` (its old meaning: up to the first bytes, and between chunks).
    #[serde(default, deserialize_with = "de::optional_seconds")]
    pub timeout_seconds: Option<Duration>,
    /// Connecting to an upstream (TCP and TLS).
    #[serde(default = "default_connect_timeout", deserialize_with = "de::seconds")]
    pub connect_timeout_seconds: Duration,
    /// From sending a request to its first content (non-streaming: to the whole answer).
    /// Long by default: a reasoning model may think for minutes before it says anything.
    #[serde(default, deserialize_with = "de::optional_seconds")]
    pub first_token_timeout_seconds: Option<Duration>,
    /// Longest silence of the upstream between two events of a stream once it flows
    /// (upstream liveness, not output: held keep-alives count).
    #[serde(default, deserialize_with = "de::optional_seconds")]
    pub idle_timeout_seconds: Option<Duration>,
    /// Longest an attempt may take in all, a stream included: bounds an endless stream.
    #[serde(default = "default_total_timeout", deserialize_with = "de::seconds")]
    pub total_timeout_seconds: Duration,
    /// Largest non-streaming upstream body read into memory.
    #[serde(default = "default_max_response_bytes", deserialize_with = "de::number")]
    pub max_response_bytes: usize,
    /// Largest stream relayed; a longer one is ended with an error event.
    #[serde(default = "default_max_stream_bytes", deserialize_with = "de::number")]
    pub max_stream_bytes: u64,
    /// How a tier's deployments share traffic (overridable per model).
    #[serde(default)]
    pub strategy: Strategy,
    /// Extra tries of a failed request within a tier, beyond one try per deployment.
    #[serde(default, deserialize_with = "de::number")]
    pub retries: u32,
    /// Base of the exponential backoff before a retry (full jitter, capped at 2 s).
    #[serde(default = "default_retry_backoff", deserialize_with = "de::milliseconds")]
    pub retry_backoff_ms: Duration,
    /// Retries allowed, as a percentage of recent requests (plus a floor of a few per second).
    #[serde(default = "default_retry_budget", deserialize_with = "de::number")]
    pub retry_budget_percent: f64,
    /// Longest cooldown for a deployment ejected again and again (each ejection in a row adds
    /// one `cooldown_seconds`); defaults to `cooldown_seconds`, i.e. a fixed cooldown.
    #[serde(default, deserialize_with = "de::optional_seconds")]
    pub cooldown_max_seconds: Option<Duration>,
    /// Longest a rate limit (429, or 503/529 with `Retry-After`) pauses a deployment, whatever
    /// the provider asked.
    #[serde(default = "default_max_pause", deserialize_with = "de::seconds")]
    pub max_pause_seconds: Duration,
    /// When every deployment of a model is ejected, try them anyway (soonest to recover
    /// first) instead of refusing every request until a cooldown ends.
    #[serde(default = "default_true")]
    pub panic_routing: bool,
}

/// The timeouts of one attempt, every default resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the upstream.
    pub connect: Duration,
    /// To the first content (non-streaming: the whole answer).
    pub first_token: Duration,
    /// Between upstream events once a stream flows.
    pub idle: Duration,
    /// The whole attempt, stream included.
    pub total: Duration,
}

/// Per-deployment overrides of [`Timeouts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutOverrides {
    /// `first_token_timeout_seconds`.
    pub first_token: Option<Duration>,
    /// `idle_timeout_seconds`.
    pub idle: Option<Duration>,
    /// `total_timeout_seconds`.
    pub total: Option<Duration>,
}

impl Timeouts {
    /// These timeouts with a deployment's overrides.
    pub fn with(self, overrides: TimeoutOverrides) -> Self {
        Self {
            connect: self.connect,
            first_token: overrides.first_token.unwrap_or(self.first_token),
            idle: overrides.idle.unwrap_or(self.idle),
            total: overrides.total.unwrap_or(self.total),
        }
    }
}

impl RouterConfig {
    /// The timeouts, defaults resolved: `first_token` and `idle` default to `timeout_seconds`
    /// when that is set, else 300 s and 60 s.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout_seconds,
            first_token: self
                .first_token_timeout_seconds
                .or(self.timeout_seconds)
                .unwrap_or(Duration::from_secs(300)),
            idle: self.idle_timeout_seconds.or(self.timeout_seconds).unwrap_or(Duration::from_secs(60)),
            total: self.total_timeout_seconds,
        }
    }

    /// `cooldown_max_seconds`, or `cooldown_seconds` when unset.
    pub fn cooldown_max(&self) -> Duration {
        self.cooldown_max_seconds.unwrap_or(self.cooldown_seconds).max(self.cooldown_seconds)
    }
}

/// One entry of `providers:`.
#[derive(Debug)]
pub struct NamedProvider {
    /// The key under `providers:`; models refer to it.
    pub name: String,
    /// Its `type:` (`openai`, `groq`, `anthropic`, …): the price table is keyed by it.
    pub kind: String,
    /// Its type-specific settings.
    pub config: ProviderConfig,
    /// A hash of every setting as written (secrets included, after `${VAR}` expansion): a
    /// reload that changes any of them starts the provider, and its deployments, fresh.
    pub fingerprint: u64,
}

/// One entry of `models:`: the name clients send and where it can be served.
#[derive(Debug)]
pub struct ModelConfig {
    /// The name clients put in `model`.
    pub name: String,
    /// Other names clients may use for it.
    pub aliases: Vec<String>,
    /// Where it can be served, in file order (the router sorts by priority).
    pub deployments: Vec<DeploymentConfig>,
    /// Overrides `router.strategy` for this model.
    pub strategy: Option<Strategy>,
    /// Models to try, in order, when every deployment of this one failed.
    pub fallbacks: Vec<String>,
    /// Models to try when an upstream says the request exceeds the context window.
    pub context_window_fallbacks: Vec<String>,
}

/// One (model, provider) pair: `models.NAME.providers.PROVIDER`.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    /// The provider's name under `providers:`.
    pub provider: String,
    /// Lower is tried first.
    pub priority: u32,
    /// The model name sent upstream.
    pub model_id: String,
    /// Share of its tier's traffic under the `weighted` strategy.
    pub weight: u32,
    /// The provider account's requests-per-minute limit for this model, if any.
    pub rpm: Option<u64>,
    /// The provider account's tokens-per-minute limit for this model, if any.
    pub tpm: Option<u64>,
    /// This deployment's own timeouts, over `router:`'s.
    pub timeouts: TimeoutOverrides,
    /// Its price, over the shipped table's.
    pub price: Option<crate::accounting::Price>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    providers: Mapping,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    strategy: Option<Strategy>,
    #[serde(default)]
    fallbacks: Vec<String>,
    #[serde(default)]
    context_window_fallbacks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    #[serde(default, deserialize_with = "de::number")]
    priority: u32,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default = "default_weight", deserialize_with = "de::number")]
    weight: u32,
    #[serde(default, deserialize_with = "de::optional_number")]
    rpm: Option<u64>,
    #[serde(default, deserialize_with = "de::optional_number")]
    tpm: Option<u64>,
    #[serde(default, deserialize_with = "de::optional_seconds")]
    first_token_timeout_seconds: Option<Duration>,
    #[serde(default, deserialize_with = "de::optional_seconds")]
    idle_timeout_seconds: Option<Duration>,
    #[serde(default, deserialize_with = "de::optional_seconds")]
    total_timeout_seconds: Option<Duration>,
    #[serde(default)]
    price: Option<crate::accounting::PriceOverride>,
}

fn default_weight() -> u32 {
    1
}
fn default_max_pause() -> Duration {
    Duration::from_secs(60)
}
fn default_true() -> bool {
    true
}
fn default_retry_backoff() -> Duration {
    Duration::from_millis(50)
}
fn default_retry_budget() -> f64 {
    20.0
}

fn default_listen() -> String {
    "127.0.0.1:8000".to_string()
}
fn default_max_body_bytes() -> usize {
    32 * 1024 * 1024
}
fn default_responses_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_responses_max_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_shutdown_delay() -> Duration {
    Duration::from_secs(5)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_read_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_keep_alive_timeout() -> Duration {
    Duration::from_secs(75)
}
fn default_max_connections() -> usize {
    10_000
}
fn default_cors_max_age() -> u64 {
    600
}
fn default_failure_threshold() -> u32 {
    3
}
fn default_cooldown() -> Duration {
    Duration::from_secs(600)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_total_timeout() -> Duration {
    Duration::from_secs(1800)
}
fn default_max_response_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_max_stream_bytes() -> u64 {
    1024 * 1024 * 1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            master_key: None,
            max_body_bytes: default_max_body_bytes(),
            responses_ttl_seconds: default_responses_ttl(),
            responses_max_bytes: default_responses_max_bytes(),
            shutdown_grace_seconds: default_shutdown_grace(),
            shutdown_delay_seconds: default_shutdown_delay(),
            header_read_timeout_seconds: default_header_read_timeout(),
            body_read_timeout_seconds: default_body_read_timeout(),
            keep_alive_timeout_seconds: default_keep_alive_timeout(),
            max_connections: default_max_connections(),
            cors: CorsConfig::default(),
        }
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self { allowed_origins: Vec::new(), allowed_headers: None, max_age_seconds: default_cors_max_age() }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            failure_threshold: default_failure_threshold(),
            cooldown_seconds: default_cooldown(),
            timeout_seconds: None,
            connect_timeout_seconds: default_connect_timeout(),
            first_token_timeout_seconds: None,
            idle_timeout_seconds: None,
            total_timeout_seconds: default_total_timeout(),
            max_response_bytes: default_max_response_bytes(),
            max_stream_bytes: default_max_stream_bytes(),
            strategy: Strategy::default(),
            retries: 0,
            retry_backoff_ms: default_retry_backoff(),
            retry_budget_percent: default_retry_budget(),
            cooldown_max_seconds: None,
            max_pause_seconds: default_max_pause(),
            panic_routing: true,
        }
    }
}

impl ServerConfig {
    /// The master key, if one is set (an empty one means "no key").
    pub fn master_key(&self) -> Option<&str> {
        self.master_key.as_ref().map(|key| key.expose_secret()).filter(|key| !key.is_empty())
    }
}

/// Every problem found in a config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file that was read.
    pub file: PathBuf,
    /// All problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(f, "{}: {count} problem{}", self.file.display(), if count == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            if problem.path.is_empty() {
                write!(f, "\n  - {}", problem.message)?;
            } else {
                write!(f, "\n  - {}: {}", problem.path, problem.message)?;
            }
        }
        Ok(())
    }
}

impl Config {
    /// Reads and validates `file`, expanding `${VAR}` from the process environment.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|err| ConfigError {
            file: file.to_path_buf(),
            problems: vec![Problem { path: String::new(), message: format!("cannot read file: {err}") }],
        })?;
        Self::parse(&text, file, &ProcessEnv)
    }

    /// Parses and validates YAML `text`; `file` only names the source in errors.
    pub fn parse(text: &str, file: &Path, env: &dyn Env) -> Result<Self, ConfigError> {
        let mut problems = Problems::default();
        let config = parse_document(text, env, &mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { file: file.to_path_buf(), problems: problems.into_vec() }),
        }
    }
}

fn parse_document(text: &str, env: &dyn Env, problems: &mut Problems) -> Option<Config> {
    let mut root: Value = match serde_yaml_ng::from_str(text) {
        Ok(Value::Null) => Value::Mapping(Mapping::new()),
        Ok(value) => value,
        Err(err) => {
            problems.push("", format!("invalid YAML: {err}"));
            return None;
        }
    };
    expand_env(&mut root, "", env, problems);
    let Value::Mapping(mut root) = root else {
        problems.push("", "the top level must be a mapping of sections");
        return None;
    };

    let server = take(&mut root, "server").and_then(|v| problems.decode("server", v)).unwrap_or_default();
    let router = take(&mut root, "router").and_then(|v| problems.decode("router", v)).unwrap_or_default();
    let (providers, declared) = parse_providers(take(&mut root, "providers"), problems);
    let models = parse_models(take(&mut root, "models"), &declared, problems);
    let store = take(&mut root, "store").and_then(|v| problems.decode("store", v)).unwrap_or_default();
    let ledger = take(&mut root, "ledger").and_then(|v| problems.decode("ledger", v)).unwrap_or_default();
    let pricing = take(&mut root, "pricing").and_then(|v| problems.decode("pricing", v)).unwrap_or_default();
    let (keys, teams) =
        governance::parse_principals(take(&mut root, "keys"), take(&mut root, "teams"), problems);
    governance::validate_principals(&keys, &teams, problems);
    governance::validate_store(&store, &ledger, problems);
    for (key, _) in root {
        problems.push(
            key_text(&key),
            "unknown section (expected server, router, providers, models, store, ledger, pricing, keys or teams)",
        );
    }

    validate_server(&server, problems);
    validate_router(&router, problems);
    Some(Config { server, router, providers, models, store, ledger, keys, teams, pricing })
}

fn take(map: &mut Mapping, key: &str) -> Option<Value> {
    map.remove(key).filter(|v| !v.is_null())
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).map(|s| s.trim().to_string()).unwrap_or_default(),
    }
}

/// Walks a section that must be a mapping of names to mappings, yielding (name, path, entry).
fn named_entries(
    section: Option<Value>,
    section_name: &str,
    problems: &mut Problems,
) -> Vec<(String, String, Mapping)> {
    let entries = match section {
        None => return Vec::new(),
        Some(Value::Mapping(map)) => map,
        Some(_) => {
            problems.push(section_name, "must be a mapping of names to settings");
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Value::String(name) = key else {
            problems.push(format!("{section_name}.{}", key_text(&key)), "names must be strings");
            continue;
        };
        let path = format!("{section_name}.{name}");
        match value {
            Value::Mapping(map) => out.push((name, path, map)),
            _ => problems.push(path, "must be a mapping of settings"),
        }
    }
    out
}

fn parse_providers(section: Option<Value>, problems: &mut Problems) -> (Vec<NamedProvider>, HashSet<String>) {
    let mut providers = Vec::new();
    let mut declared = HashSet::new();
    for (name, path, mut entry) in named_entries(section, "providers", problems) {
        declared.insert(name.clone());
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            entry.hash(&mut hasher);
            hasher.finish()
        };
        let kind = match entry.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => {
                problems.push(format!("{path}.type"), "must be a string");
                continue;
            }
            None => {
                problems.push(
                    format!("{path}.type"),
                    format!(
                        "missing; one of: {}",
                        crate::providers::ProviderConfig::type_names().collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            }
        };
        if let Some(config) = ProviderConfig::decode(&kind, Value::Mapping(entry), &path, problems) {
            providers.push(NamedProvider { name, kind, config, fingerprint });
        }
    }
    (providers, declared)
}

fn parse_models(
    section: Option<Value>,
    declared: &HashSet<String>,
    problems: &mut Problems,
) -> Vec<ModelConfig> {
    if section.is_none() {
        problems.push("models", "no models are defined; clients would have nothing to call");
    }
    let mut models = Vec::new();
    for (name, path, entry) in named_entries(section, "models", problems) {
        let Some(raw) = problems.decode::<RawModel>(&path, Value::Mapping(entry)) else {
            continue;
        };
        let deployments_path = format!("{path}.providers");
        let mut deployments = Vec::new();
        for (provider, dep_path, settings) in
            named_entries(Some(Value::Mapping(raw.providers)), &deployments_path, problems)
        {
            if !declared.contains(&provider) {
                problems.push(
                    dep_path.clone(),
                    format!("provider `{provider}` is not declared under `providers:`"),
                );
            }
            let Some(dep) = problems.decode::<RawDeployment>(&dep_path, Value::Mapping(settings)) else {
                continue;
            };
            let model_id = dep.model_id.unwrap_or_else(|| name.clone());
            if model_id.is_empty() {
                problems.push(format!("{dep_path}.model_id"), "must not be empty");
            }
            if dep.weight == 0 {
                problems.push(format!("{dep_path}.weight"), "must be at least 1");
            }
            for (field, cap) in [("rpm", dep.rpm), ("tpm", dep.tpm)] {
                if cap == Some(0) {
                    problems.push(
                        format!("{dep_path}.{field}"),
                        "must be at least 1 (leave it out for no limit)",
                    );
                }
            }
            for (field, value) in [
                ("first_token_timeout_seconds", dep.first_token_timeout_seconds),
                ("idle_timeout_seconds", dep.idle_timeout_seconds),
                ("total_timeout_seconds", dep.total_timeout_seconds),
            ] {
                if value.is_some_and(|v| v.is_zero()) {
                    problems.push(format!("{dep_path}.{field}"), "must be greater than 0");
                }
            }
            let price = dep.price.and_then(|price| match price.to_price() {
                Ok(price) => Some(price),
                Err(message) => {
                    problems.push(format!("{dep_path}.price"), message);
                    None
                }
            });
            deployments.push(DeploymentConfig {
                price,
                provider,
                priority: dep.priority,
                model_id,
                weight: dep.weight,
                rpm: dep.rpm,
                tpm: dep.tpm,
                timeouts: TimeoutOverrides {
                    first_token: dep.first_token_timeout_seconds,
                    idle: dep.idle_timeout_seconds,
                    total: dep.total_timeout_seconds,
                },
            });
        }
        if deployments.is_empty() {
            problems.push(deployments_path, "a model needs at least one provider");
        }
        models.push(ModelConfig {
            name,
            aliases: raw.aliases,
            deployments,
            strategy: raw.strategy,
            fallbacks: raw.fallbacks,
            context_window_fallbacks: raw.context_window_fallbacks,
        });
    }
    validate_model_names(&models, problems);
    models
}

/// Aliases must not clash with each other or with model names; fallbacks must name models.
fn validate_model_names(models: &[ModelConfig], problems: &mut Problems) {
    let mut names: HashSet<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let models_only = names.clone();
    for model in models {
        for (i, alias) in model.aliases.iter().enumerate() {
            if alias.is_empty() || !names.insert(alias) {
                problems.push(
                    format!("models.{}.aliases[{i}]", model.name),
                    format!("`{alias}` is empty or already names a model or alias"),
                );
            }
        }
        for (field, list) in
            [("fallbacks", &model.fallbacks), ("context_window_fallbacks", &model.context_window_fallbacks)]
        {
            for (i, target) in list.iter().enumerate() {
                let path = format!("models.{}.{field}[{i}]", model.name);
                if target == &model.name {
                    problems.push(path, "a model cannot fall back to itself");
                } else if !models_only.contains(target.as_str()) {
                    problems.push(path, format!("`{target}` is not a model under `models:`"));
                }
            }
        }
    }
}

fn validate_server(server: &ServerConfig, problems: &mut Problems) {
    let port_ok = server
        .listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        problems.push("server.listen", format!("expected HOST:PORT, got {:?}", server.listen));
    }
    if server.max_body_bytes == 0 {
        problems.push("server.max_body_bytes", "must be at least 1");
    }
    for (field, value) in [
        ("header_read_timeout_seconds", server.header_read_timeout_seconds),
        ("body_read_timeout_seconds", server.body_read_timeout_seconds),
        ("keep_alive_timeout_seconds", server.keep_alive_timeout_seconds),
    ] {
        if value.is_zero() {
            problems.push(format!("server.{field}"), "must be greater than 0");
        }
    }
    if server.max_connections == 0 {
        problems.push("server.max_connections", "must be at least 1");
    }
    for (i, origin) in server.cors.allowed_origins.iter().enumerate() {
        let valid = origin == "*"
            || (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && axum::http::HeaderValue::from_str(origin).is_ok();
        if !valid {
            problems.push(
                format!("server.cors.allowed_origins[{i}]"),
                format!(
                    "expected \"*\" or an origin such as https://app.example.com (no path), got {origin:?}"
                ),
            );
        }
    }
    for (i, name) in server.cors.allowed_headers.iter().flatten().enumerate() {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems
                .push(format!("server.cors.allowed_headers[{i}]"), format!("not a header name: {name:?}"));
        }
    }
}

fn validate_router(router: &RouterConfig, problems: &mut Problems) {
    if router.failure_threshold == 0 {
        problems.push("router.failure_threshold", "must be at least 1");
    }
    for (field, value) in [
        ("timeout_seconds", router.timeout_seconds),
        ("connect_timeout_seconds", Some(router.connect_timeout_seconds)),
        ("first_token_timeout_seconds", router.first_token_timeout_seconds),
        ("idle_timeout_seconds", router.idle_timeout_seconds),
        ("total_timeout_seconds", Some(router.total_timeout_seconds)),
    ] {
        if value.is_some_and(|v| v.is_zero()) {
            problems.push(format!("router.{field}"), "must be greater than 0");
        }
    }
    if router.max_response_bytes == 0 || router.max_stream_bytes == 0 {
        problems.push("router.max_response_bytes", "limits must be at least 1");
    }
    if !(0.0..=1000.0).contains(&router.retry_budget_percent) {
        problems.push("router.retry_budget_percent", "must be between 0 and 1000");
    }
    if router.cooldown_max_seconds.is_some_and(|max| max < router.cooldown_seconds) {
        problems.push("router.cooldown_max_seconds", "must be at least cooldown_seconds");
    }
}

/// Expands `${VAR}` in every string value (never in keys), recording unset variables.
fn expand_env(value: &mut Value, path: &str, env: &dyn Env, problems: &mut Problems) {
    match value {
        Value::String(text) => match env::expand(text, env) {
            Ok(std::borrow::Cow::Owned(expanded)) => *text = expanded,
            Ok(std::borrow::Cow::Borrowed(_)) => {}
            Err(message) => problems.push(path, message),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(item, &format!("{path}[{i}]"), env, problems);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let child = if path.is_empty() { key_text(key) } else { format!("{path}.{}", key_text(key)) };
                expand_env(item, &child, env, problems);
            }
        }
        Value::Tagged(tagged) => expand_env(&mut tagged.value, path, env, problems),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests;
