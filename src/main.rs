//! The `llm-proxy` binary: parse arguments, load the config, serve.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use llm_proxy::telemetry::{self, LogFormat};
use llm_proxy::{AppState, Config};

// glibc malloc showed up as ~15% of the proxy's CPU under load; mimalloc's thread-local
// free lists cut that (see BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An OpenAI-compatible LLM gateway with priority failover across providers.
///
/// Clients use any OpenAI SDK against http://HOST:PORT/v1. Each model in the config lists
/// providers by priority; a failing provider is skipped, disabled after repeated failures,
/// and probed again after a cooldown. Log verbosity: LLM_PROXY_LOG (e.g. debug).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The YAML config file.
    #[arg(long, short, global = true, default_value = "config/config.yaml", env = "LLM_PROXY_CONFIG")]
    config: PathBuf,
    /// Listen on HOST:PORT instead of the config's `server.listen` (port 0 picks a free one).
    #[arg(long)]
    listen: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Reload the config when its file changes (checked every second). SIGHUP and
    /// `POST /admin/reload` reload it too; an invalid file is refused and the old one stays.
    #[arg(long)]
    watch: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
// Parsed once at startup: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Validate the config file, print every problem found, and exit (0 when valid).
    Check,
    /// Apply the store's migrations (`store.url`) and exit: for deployment jobs. The proxy
    /// also applies them when it starts.
    Migrate,
    #[command(flatten)]
    Admin(llm_proxy::cli::Admin),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: invalid config {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Check) = cli.command {
        println!(
            "{}: ok ({} providers, {} models)",
            cli.config.display(),
            config.providers.len(),
            config.models.len()
        );
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Admin(admin)) = cli.command {
        // No log setup: stdout is the command's JSON answer.
        return run_admin(admin, &config);
    }
    let _log_guard = telemetry::init(cli.log_format);
    // The store lives on a runtime of its own (the proxy serves on one per core); so does the
    // ledger writer.
    let store_runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("llm-proxy-store")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the store's runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let store = match open_store(&config, &store_runtime) {
        Ok(store) => store,
        Err(error) => {
            tracing::error!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Migrate) = cli.command {
        return ExitCode::SUCCESS;
    }
    let listen = cli.listen.clone().unwrap_or_else(|| config.server.listen.clone());
    let (state, writer) = match store {
        None => (AppState::from_file(&config, &cli.config), None),
        Some((store, unpinned)) => match AppState::with_stores(&config, Some(&cli.config), store, unpinned) {
            Ok((state, writer)) => (Ok(state), Some(store_runtime.spawn(writer))),
            Err(err) => (Err(err), None),
        },
    };
    let state = match state {
        Ok(state) => state,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let on_listening = |addr: std::net::SocketAddr, cores: usize| {
        tracing::info!(
            %addr,
            cores,
            models = config.models.len(),
            providers = config.providers.len(),
            auth = config.server.master_key().is_some(),
            "listening"
        );
    };
    let signals = until_shutdown(state.clone(), cli.watch.then(|| cli.config.clone()));
    let served = llm_proxy::server::serve_per_core(state.clone(), &listen, on_listening, signals);
    if let Some(writer) = writer {
        // Every request has ended: what the ledger still holds is written before exiting.
        state.close_ledger();
        drop(state);
        let flush = async { tokio::time::timeout(std::time::Duration::from_secs(10), writer).await };
        let flushed = store_runtime.block_on(flush);
        if flushed.is_err() {
            tracing::warn!("the ledger could not be flushed within 10 s; its last records are lost");
        }
    }
    match served {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs an admin command (`keys`, `teams`, `spend`, `requests`) against the configured
/// store and prints its JSON answer.
fn run_admin(admin: llm_proxy::cli::Admin, config: &Config) -> ExitCode {
    use llm_proxy::cli::{Admin, KeysCommand};
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let needs_store = !matches!(admin, Admin::Keys { command: KeysCommand::Generate { .. } });
    let store = match needs_store.then(|| open_store(config, &runtime)).transpose() {
        // The command runs on that runtime: the store as is.
        Ok(stores) => stores.flatten().map(|(_, store)| store),
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = llm_proxy::keys::ring::CodeKeys::new(&config.keys, &config.teams);
    match runtime.block_on(llm_proxy::cli::run_with(admin, store, &code)) {
        Ok(answer) => {
            println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the store `store.url` names (applying its migrations), pinned to `runtime`;
/// `None` when no store is configured.
/// The store twice: pinned to `runtime` (for the request path, on other runtimes), and as is
/// (for what runs on `runtime` itself).
type Stores = (Arc<dyn llm_proxy::store::Store>, Arc<dyn llm_proxy::store::Store>);

fn open_store(config: &Config, runtime: &tokio::runtime::Runtime) -> Result<Option<Stores>, String> {
    let url = config.store.url.trim();
    if url.is_empty() {
        tracing::info!("no store configured (store.url): keys as code and the master key only; no ledger");
        return Ok(None);
    }
    let shown = llm_proxy::store::redact_url(url);
    match runtime.block_on(llm_proxy::store::open(url)) {
        Ok(store) => {
            tracing::info!(backend = store.backend(), url = %shown, "store ready, migrations applied");
            Ok(Some((llm_proxy::store::on_runtime(Arc::clone(&store), runtime.handle().clone()), store)))
        }
        Err(err) => Err(format!("cannot open the store {shown}: {err}")),
    }
}

/// Reloads the config on SIGHUP (and, with `watch`, when that file changes) until SIGTERM
/// or SIGINT, then resolves.
async fn until_shutdown(state: AppState, watch: Option<PathBuf>) {
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut last_seen = watch.as_deref().and_then(file_stamp);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            () = &mut shutdown => return,
            _ = hup => {
                tracing::info!("SIGHUP: reloading the config");
                let _ = state.reload();
            }
            _ = tick.tick(), if watch.is_some() => {
                let stamp = watch.as_deref().and_then(file_stamp);
                if stamp != last_seen {
                    last_seen = stamp;
                    tracing::info!("the config file changed: reloading");
                    let _ = state.reload();
                }
            }
        }
    }
}

/// When and how big a file was last written: a change of either means "reload".
fn file_stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
