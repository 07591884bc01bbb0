//! Logging setup: human-readable or JSON lines on stdout, filtered by `LLM_PROXY_LOG`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_appender::non_blocking::ErrorCounter;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event, for log pipelines.
    Json,
}

/// Keeps the background log writer alive; dropping it flushes what is queued.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the global subscriber. The filter comes from `LLM_PROXY_LOG` (e.g.
/// `info`, `llm_proxy=debug`); the default is `info`.
///
/// Lines are written to stdout by a background thread, so a request never waits on a
/// `write` syscall or on the stdout lock (worth ~10% of throughput in `bench/run`). The queue
/// is lossy: if stdout stalls (a full pipe, a stuck log shipper) for long enough to fill it,
/// new lines are dropped rather than requests waiting, and counted in
/// `llm_proxy_log_lines_dropped_total` (see [`dropped_lines`]). Keep the returned guard until
/// exit, so the queue is flushed.
pub fn init(format: LogFormat) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // The default queue (128k lines) is preallocated: ~5 MB of idle RSS for bursts that a
        // healthy stdout drains long before 16k lines pile up.
        .buffered_lines_limit(16 * 1024)
        .lossy(true)
        .thread_name("llm-proxy-log")
        .finish(std::io::stdout());
    let _ = DROPPED.set(writer.error_counter());
    let filter = std::env::var("LLM_PROXY_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_target(false)
                    .with_ansi(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init(),
    };
    guard
}

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Log lines dropped so far because the writer's queue was full (0 before [`init`]).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |counter| counter.dropped_lines() as u64)
}
