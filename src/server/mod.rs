//! The HTTP edge: the axum app, its middleware stack, and serving with graceful shutdown.

mod admin;
mod conn;
pub mod context;
mod cors;
pub mod drain;
pub mod error;
pub mod relay;
mod routes;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use axum::Router as HttpRouter;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::providers::BuildError;
use crate::router::Router;
pub use conn::serve;
use context::LoggedAtStreamEnd;
pub use context::RequestCtx;
use error::{ErrorKind, ProxyError};

/// Who served a response: the provider's name, or `none` when the proxy answered itself.
pub const PROVIDER_HEADER: &str = "x-llm-proxy-provider";
/// The model that served a response, when a fallback served it instead of the one asked for.
pub const MODEL_HEADER: &str = "x-llm-proxy-model";
/// How many upstream attempts a response took.
pub const ATTEMPTS_HEADER: &str = "x-llm-proxy-attempts";
/// Taken from the client or generated; echoed back and sent upstream.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Everything a request handler needs, shared by all requests and every core.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    /// The config in force, swapped whole on reload: a request loads it once (an atomic
    /// increment, no lock) and finishes on it, whatever reloads happen meanwhile.
    live: ArcSwap<Live>,
    metrics: Metrics,
    /// Where reloads read from; `None` when built from a config in memory.
    source: Option<PathBuf>,
    /// Reloads one at a time (never taken on the request path).
    reloading: std::sync::Mutex<()>,
    /// Connection settings, fixed at startup.
    settings: conn::Settings,
    drain: drain::Drain,
    refusals: conn::RefusalLog,
}

/// One loaded config: the routing table and the edge's settings.
pub struct Live {
    /// The routing table.
    pub router: Router,
    master_key: Option<SecretString>,
    max_body_bytes: usize,
    /// Unix seconds when this config was loaded: the `created` of every model.
    created: u64,
    listen: String,
    /// Startup-only settings as this file has them (to warn when a reload changes them).
    settings: conn::Settings,
    body_read_timeout: Duration,
    cors: Option<cors::Cors>,
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
    /// Builds providers and the routing table from a validated config.
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        Self::build(config, None)
    }

    /// Like [`AppState::new`], remembering `file` so [`AppState::reload`] can read it again.
    pub fn from_file(config: &Config, file: &Path) -> Result<Self, BuildError> {
        Self::build(config, Some(file.to_path_buf()))
    }

    fn build(config: &Config, source: Option<PathBuf>) -> Result<Self, BuildError> {
        let metrics = Metrics::new();
        let live = Live::new(config, &metrics, None)?;
        Ok(Self(Arc::new(Shared {
            live: ArcSwap::from_pointee(live),
            metrics,
            source,
            reloading: std::sync::Mutex::new(()),
            settings: conn::Settings::new(&config.server),
            drain: drain::Drain::default(),
            refusals: conn::RefusalLog::default(),
        })))
    }

    /// The config in force.
    pub fn live(&self) -> Arc<Live> {
        self.0.live.load_full()
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Shutdown state: readiness fails once draining has begun.
    pub fn drain(&self) -> &drain::Drain {
        &self.0.drain
    }

    fn settings(&self) -> &conn::Settings {
        &self.0.settings
    }

    fn refusal_log(&self) -> &conn::RefusalLog {
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

/// The whole HTTP app.
///
/// Layers, outermost first: [`edge`] (request id, CORS, master key on `/v1`, who-served-it
/// headers, access log), then panic recovery (a bug answers 500 in OpenAI's envelope, never a dropped
/// connection), then the routes.
pub fn app(state: AppState) -> HttpRouter {
    HttpRouter::new()
        .route("/v1/chat/completions", post(routes::chat_completions))
        .route("/v1/embeddings", post(routes::embeddings))
        .route("/v1/models", get(routes::list_models))
        .route("/v1/models/{*id}", get(routes::get_model))
        .route("/health", get(routes::health))
        .route("/health/ready", get(routes::ready))
        .route("/metrics", get(admin::metrics))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/deployments", get(admin::deployments))
        .route("/admin/deployments/{*target}", post(admin::set_deployment))
        .fallback(routes::unknown_endpoint)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(CatchPanicLayer::custom(|_| ProxyError::Internal.into_response()))
        .layer(middleware::from_fn_with_state(state.clone(), edge))
        .with_state(state)
}

/// A UUIDv4 from a fast thread-local generator: request ids must be unique, not
/// unpredictable, and a `getrandom` syscall per request showed up in profiles.
fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).unwrap_or(HeaderValue::from_static(""))
}

/// Longest client `x-request-id` kept; longer ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// A client's `x-request-id` is kept when it is 1 to 128 bytes of `A-Za-z0-9` and `-_.:/+=`
/// (UUIDs, ULIDs, base64, W3C trace ids, `service:123` all fit); anything else (spaces,
/// control bytes, quotes, non-ASCII) could break log lines or upstream headers, so it is
/// replaced by a generated id.
fn acceptable_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

/// `/v1` requests must carry the master key, when `server.master_key` is set.
fn check_master_key(live: &Live, headers: &HeaderMap) -> Result<(), ProxyError> {
    let Some(expected) = &live.master_key else {
        return Ok(());
    };
    match presented_key(headers) {
        None => Err(ProxyError::Unauthorized("Missing API key: send `Authorization: Bearer <key>`.")),
        // Constant-time, so response timing does not reveal how much of a guess was right.
        Some(key) if bool::from(key.as_bytes().ct_eq(expected.expose_secret().as_bytes())) => Ok(()),
        Some(_) => Err(ProxyError::Unauthorized("Incorrect API key provided.")),
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// The edge, as one middleware (four separate layers cost ~4 µs more per request in
/// `bench/run`): the request id (the client's `x-request-id` if [`acceptable_request_id`],
/// else a new one; echoed back and sent upstream), CORS (preflights answered before the key
/// check), the master key on `/v1`, the headers saying who served the response, and one log
/// line per request (streams log theirs when they end).
async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let request_id = match request.headers().get(REQUEST_ID_HEADER) {
        Some(id) if acceptable_request_id(id) => id.clone(),
        _ => {
            let id = new_request_id();
            request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
            id
        }
    };
    let ctx = RequestCtx::new(request_id.clone(), request.method().clone(), request.uri().clone());
    let method = &ctx.method;
    let path = ctx.uri.path();
    // Loaded once here: CORS, the key and the route all see the same config.
    let live = state.live();
    let origin = live.cors.as_ref().and_then(|_| request.headers().get(header::ORIGIN).cloned());
    let preflight = live.cors.as_ref().and_then(|cors| cors.preflight(method, request.headers()));
    let answered_preflight = preflight.is_some();
    let mut response = match (preflight, path.starts_with("/v1/")) {
        (Some(preflight), _) => preflight,
        (None, true) => match check_master_key(&live, request.headers()) {
            Ok(()) => {
                request.extensions_mut().insert(Arc::clone(&live));
                request.extensions_mut().insert(ctx.clone());
                next.run(request).await
            }
            Err(error) => error.into_response(),
        },
        (None, false) => next.run(request).await,
    };
    if let Some(cors) = &live.cors
        && !answered_preflight
    {
        cors.decorate(origin.as_ref(), response.headers_mut());
    }
    drop(live);
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID_HEADER, request_id.clone());
    headers.entry(PROVIDER_HEADER).or_insert(HeaderValue::from_static("none"));
    headers.entry(ATTEMPTS_HEADER).or_insert(HeaderValue::from_static("0"));
    if response.extensions().get::<LoggedAtStreamEnd>().is_some() {
        return response;
    }
    // The handler's copy, filled by routing, if it ran; else the edge's own.
    let mut ctx = response.extensions_mut().remove::<RequestCtx>().unwrap_or(ctx);
    if let Some(error) = response.extensions().get::<ErrorKind>() {
        ctx.error = Some(error.0);
    }
    ctx.log(response.status().as_u16(), None);
    response
}

/// Binds `addr` (`host:port`) with a deep accept queue: a burst of new connections (a client
/// pool warming up, a load balancer failing over) otherwise overflows the default backlog and
/// the dropped SYNs cost those clients a one-second retransmit.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    bind_shared(addr, false).await
}

/// Like [`bind`]; with `reuse_port`, several listeners (one per core) share the address and
/// the kernel spreads connections among them.
pub async fn bind_shared(addr: &str, reuse_port: bool) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket =
            if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        socket.set_reuseport(reuse_port)?;
        match socket.bind(addr).and_then(|()| socket.listen(4096)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("the address resolved to nothing")))
}

/// Serves the app on one single-threaded runtime per core, each with its own listener on the
/// shared address (`SO_REUSEPORT`) and its own upstream connection pools, so that a request
/// is parsed, routed, proxied and answered on one thread. Against tokio's work-stealing
/// runtime this measured −14% CPU per request and +18% throughput (BENCHMARKS.md).
///
/// Blocks until `shutdown` resolves and every core has drained (see [`serve`]: each core
/// drains its own connections; readiness and the stream cut are shared).
pub fn serve_per_core(
    state: AppState,
    listen: &str,
    on_listening: impl FnOnce(std::net::SocketAddr, usize),
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // Poll `shutdown` once before serving, so that its signal handlers are installed before
    // the first connection: a SIGTERM during startup then means "drain", not "die".
    let signals =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut shutdown = std::pin::pin!(shutdown);
    let early =
        signals.block_on(std::future::poll_fn(|cx| std::task::Poll::Ready(shutdown.as_mut().poll(cx))));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (bound_tx, bound_rx) = std::sync::mpsc::channel::<Result<std::net::SocketAddr, String>>();
    let mut threads = Vec::with_capacity(cores);
    let mut addr = listen.to_string();
    let mut on_listening = Some(on_listening);
    for core in 0..cores {
        let (state, mut stop, bound_tx, bind_to) =
            (state.clone(), stop_rx.clone(), bound_tx.clone(), addr.clone());
        let thread = std::thread::Builder::new().name(format!("llm-proxy-core-{core}")).spawn(move || {
            crate::providers::set_core(core);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(err) => return drop(bound_tx.send(Err(format!("cannot start a runtime: {err}")))),
            };
            runtime.block_on(async move {
                let listener = match bind_shared(&bind_to, true).await {
                    Ok(listener) => listener,
                    Err(err) => {
                        return drop(bound_tx.send(Err(format!("cannot listen on {bind_to}: {err}"))));
                    }
                };
                let _ = bound_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                let shutdown = async move {
                    let _ = stop.changed().await;
                };
                if let Err(err) = serve(listener, state, shutdown).await {
                    tracing::error!(core, "server error: {err}");
                }
            });
        });
        threads.push(thread.map_err(|e| format!("cannot start a core thread: {e}"))?);
        let bound = bound_rx.recv().map_err(|e| e.to_string())??;
        if let Some(on_listening) = on_listening.take() {
            // Port 0 picks a free port once; the other cores share that one.
            addr = bound.to_string();
            on_listening(bound, cores);
        }
    }
    if early.is_pending() {
        signals.block_on(shutdown);
    }
    let _ = stop_tx.send(true);
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}
