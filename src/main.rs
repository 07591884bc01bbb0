//! The `llm-proxy` binary: parse arguments, load the config, serve.

use std::path::PathBuf;
use std::process::ExitCode;

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the config file, print every problem found, and exit (0 when valid).
    Check,
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
    let _log_guard = telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, cli.listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, listen: Option<String>) -> Result<(), String> {
    let state = AppState::new(&config).map_err(|e| e.to_string())?;
    let listen = listen.unwrap_or_else(|| config.server.listen.clone());
    let listener =
        llm_proxy::server::bind(&listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        %addr,
        models = config.models.len(),
        providers = config.providers.len(),
        auth = config.server.master_key().is_some(),
        "listening"
    );
    llm_proxy::serve(
        listener,
        llm_proxy::app(state),
        shutdown_signal(),
        config.server.shutdown_grace_seconds,
    )
    .await
    .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
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
