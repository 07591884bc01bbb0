//! The state every request shares: the config in force (swapped whole on reload), metrics,
//! drain and connection bookkeeping; and the reload itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use secrecy::SecretString;

use super::{conn, cors, drain};
use crate::accounting::ledger::{Ledger, WriterSettings};
use crate::config::Config;
use crate::conversations::Conversations;
use crate::keys::ring::{CodeKeys, Keyring};
use crate::limits::Subject;
use crate::metrics::Metrics;
use crate::providers::BuildError;
use crate::router::Router;
use crate::store::Store;

/// Everything a request handler needs, shared by all requests and every core.
#[derive(Clone)]
pub struct AppState(pub(super) Arc<Shared>);

pub(super) struct Shared {
    /// The config in force, swapped whole on reload: a request loads it once (an atomic
    /// increment, no lock) and finishes on it, whatever reloads happen meanwhile.
    pub(super) live: ArcSwap<Live>,
    pub(super) metrics: Metrics,
    /// Where reloads read from; `None` when built from a config in memory.
    pub(super) source: Option<PathBuf>,
    /// Reloads one at a time (never taken on the request path).
    pub(super) reloading: std::sync::Mutex<()>,
    /// Connection settings, fixed at startup.
    pub(super) settings: conn::Settings,
    pub(super) drain: drain::Drain,
    pub(super) refusals: conn::RefusalLog,
    /// Responses API answers kept for `previous_response_id`; survives reloads.
    pub(super) conversations: Conversations,
    /// The store's keys and teams, cached; survives reloads.
    pub(super) keyring: Keyring,
    /// Limit and budget state per key and team; survives reloads.
    pub(super) subjects: moka::future::Cache<Arc<str>, Arc<Subject>>,
    /// Where each request's record goes.
    pub(super) ledger: Ledger,
    /// How long a request may wait on the store for a key or a budget not in memory.
    pub(super) store_timeout: Duration,
}

/// One loaded config: the routing table and the edge's settings.
pub struct Live {
    /// The routing table.
    pub router: Router,
    pub(super) master_key: Option<SecretString>,
    pub(super) max_body_bytes: usize,
    /// Unix seconds when this config was loaded: the `created` of every model.
    pub(super) created: u64,
    pub(super) listen: String,
    /// Startup-only settings as this file has them (to warn when a reload changes them).
    pub(super) settings: conn::Settings,
    pub(super) body_read_timeout: Duration,
    pub(super) cors: Option<cors::Cors>,
    /// Keys and teams declared in the config.
    pub(super) code_keys: CodeKeys,
    /// `pricing.unknown_model: reject`.
    pub(super) reject_unpriced: bool,
    /// `ledger.bodies`: keep bodies, redacted, in the ledger.
    pub(super) ledger_bodies: bool,
}

impl Live {
    fn new(config: &Config, metrics: &Metrics, previous: Option<&Live>) -> Result<Self, BuildError> {
        Ok(Self {
            router: Router::new(config, metrics, previous.map(|p| &p.router))?,
            master_key: config.server.master_key().map(|key| SecretString::from(key.to_string())),
            max_body_bytes: config.server.max_body_bytes,
            created: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
            listen: config.server.listen.clone(),
            settings: conn::Settings::new(&config.server),
            body_read_timeout: config.server.body_read_timeout_seconds,
            cors: cors::Cors::new(&config.server.cors),
            code_keys: CodeKeys::new(&config.keys, &config.teams),
            ledger_bodies: config.ledger.bodies,
            reject_unpriced: config.pricing.unknown_model == crate::accounting::UnknownPrice::Reject,
        })
    }
}

/// What a successful reload changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reloaded {
    /// Models now configured.
    pub models: usize,
    /// Deployments now configured.
    pub deployments: usize,
}

/// Why a reload was refused; the config in force stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new file is invalid (every problem listed).
    #[error("{0}")]
    Invalid(#[from] crate::config::ConfigError),
    /// A provider client could not be built.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// The proxy was started from a config in memory.
    #[error("there is no config file to reload")]
    NoSource,
}

impl AppState {
    /// Builds providers and the routing table from a validated config, with no store (keys
    /// as code and the master key work; nothing is recorded).
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        Self::build(config, None, None).map(|(state, _)| state)
    }

    /// Like [`AppState::new`], remembering `file` so [`AppState::reload`] can read it again.
    pub fn from_file(config: &Config, file: &Path) -> Result<Self, BuildError> {
        Self::build(config, Some(file.to_path_buf()), None).map(|(state, _)| state)
    }

    /// Like [`AppState::new`] (remembering `file` when given), keeping keys, spend and the
    /// ledger in `store`; also returns the ledger writer, for the caller to run (it ends once
    /// the state is dropped or [`AppState::close_ledger`] is called, and the queue is drained).
    pub fn with_store(
        config: &Config,
        file: Option<&Path>,
        store: Arc<dyn Store>,
    ) -> Result<(Self, impl std::future::Future<Output = ()> + Send + 'static), BuildError> {
        let ledger_store = Arc::clone(&store);
        Self::with_stores(config, file, store, ledger_store)
    }

    /// Like [`AppState::with_store`], with the ledger writer on `ledger_store`: the same
    /// database, unwrapped for the runtime the writer runs on (the binary pins the request
    /// path's handle to the store's runtime; the writer already runs there).
    pub fn with_stores(
        config: &Config,
        file: Option<&Path>,
        store: Arc<dyn Store>,
        ledger_store: Arc<dyn Store>,
    ) -> Result<(Self, impl std::future::Future<Output = ()> + Send + 'static), BuildError> {
        let (state, writer) = Self::build(config, file.map(Path::to_path_buf), Some((store, ledger_store)))?;
        Ok((state, async move {
            if let Some(writer) = writer {
                writer.await;
            }
        }))
    }

    #[allow(clippy::type_complexity)]
    fn build(
        config: &Config,
        source: Option<PathBuf>,
        stores: Option<(Arc<dyn Store>, Arc<dyn Store>)>,
    ) -> Result<(Self, Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>), BuildError>
    {
        let (store, ledger_store) = stores.unzip();
        let metrics = Metrics::new();
        let live = Live::new(config, &metrics, None)?;
        let (ledger, writer) = match ledger_store {
            Some(ledger_store) => {
                metrics.governance.store_up.set(1);
                let ledger = &config.ledger;
                let days = |n: u32| (n > 0).then(|| Duration::from_secs(u64::from(n) * 86_400));
                let settings = WriterSettings {
                    batch_size: ledger.batch_size,
                    flush_interval: ledger.flush_interval_seconds,
                    retention: days(ledger.retention_days),
                    aggregate_retention: days(ledger.aggregate_retention_days),
                };
                let (ledger, writer) =
                    Ledger::new(ledger_store, ledger.queue_capacity, settings, metrics.governance.clone());
                (
                    ledger,
                    Some(Box::pin(writer) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
                )
            }
            None => (Ledger::disabled(metrics.governance.clone()), None),
        };
        let keyring = Keyring::new(store, config.store.key_cache_seconds, config.store.timeout_seconds);
        let subjects = moka::future::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_idle(Duration::from_secs(3600))
            .build();
        let state = Self(Arc::new(Shared {
            keyring,
            subjects,
            ledger,
            store_timeout: config.store.timeout_seconds,
            live: ArcSwap::from_pointee(live),
            metrics,
            source,
            reloading: std::sync::Mutex::new(()),
            settings: conn::Settings::new(&config.server),
            drain: drain::Drain::default(),
            refusals: conn::RefusalLog::default(),
            conversations: Conversations::new(
                config.server.responses_ttl_seconds,
                config.server.responses_max_bytes,
            ),
        }));
        Ok((state, writer))
    }

    /// The store's keys and teams, cached.
    pub fn keyring(&self) -> &Keyring {
        &self.0.keyring
    }

    /// The store, if one is configured.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.0.keyring.store()
    }

    /// Limit and budget state per key and team.
    pub fn subjects(&self) -> &moka::future::Cache<Arc<str>, Arc<Subject>> {
        &self.0.subjects
    }

    /// Where request records go.
    pub fn ledger(&self) -> &Ledger {
        &self.0.ledger
    }

    /// Stops recording (at shutdown): the ledger writer drains its queue and ends.
    pub fn close_ledger(&self) {
        self.0.ledger.close();
    }

    pub(super) fn store_timeout(&self) -> Duration {
        self.0.store_timeout
    }

    /// The config in force.
    pub fn live(&self) -> Arc<Live> {
        self.0.live.load_full()
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The Responses API answers the proxy keeps.
    pub fn conversations(&self) -> &Conversations {
        &self.0.conversations
    }

    /// Shutdown state: readiness fails once draining has begun.
    pub fn drain(&self) -> &drain::Drain {
        &self.0.drain
    }

    pub(super) fn settings(&self) -> &conn::Settings {
        &self.0.settings
    }

    pub(super) fn refusal_log(&self) -> &conn::RefusalLog {
        &self.0.refusals
    }

    /// Reads the config file again and, if it is valid, puts it in force atomically:
    /// requests in flight finish on the old one; deployments that still exist keep their
    /// health, load and caps. If it is invalid, the old config stays and the error says why.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let _one_at_a_time = self.0.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = self.try_reload();
        self.0.metrics.reloaded(result.is_ok());
        match &result {
            Ok(done) => {
                tracing::info!(models = done.models, deployments = done.deployments, "config reloaded")
            }
            Err(err) => tracing::error!("config reload refused, the previous config stays in force: {err}"),
        }
        result
    }

    fn try_reload(&self) -> Result<Reloaded, ReloadError> {
        let file = self.0.source.as_deref().ok_or(ReloadError::NoSource)?;
        let config = Config::load(file)?;
        let previous = self.0.live.load_full();
        let live = Live::new(&config, &self.0.metrics, Some(&previous))?;
        let (new, old) = (&live.settings, &previous.settings);
        if live.listen != previous.listen
            || new.grace != old.grace
            || new.shutdown_delay != old.shutdown_delay
            || new.header_read_timeout != old.header_read_timeout
            || new.keep_alive_timeout != old.keep_alive_timeout
            || new.max_connections != old.max_connections
        {
            tracing::warn!(
                "server.listen, shutdown_grace_seconds, shutdown_delay_seconds, header_read_timeout_seconds, \
                 keep_alive_timeout_seconds and max_connections take effect only after a restart"
            );
        }
        let done = Reloaded {
            models: live.router.models().len(),
            deployments: live.router.models().iter().map(|m| m.deployments.len()).sum(),
        };
        let kept = live
            .router
            .models()
            .iter()
            .flat_map(|m| m.deployments.iter().map(move |d| (&*m.name, &*d.provider_name)));
        self.0.metrics.retain_deployments(kept);
        self.0.live.store(Arc::new(live));
        Ok(done)
    }
}
