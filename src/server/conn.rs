//! Serving client connections: our own accept loop over hyper-util's auto builder
//! (HTTP/1.1 with keep-alive, and h2c), so the edge bounds what a client may hold.
//!
//! Per connection, one task runs the connection and a watchdog side by side:
//! 1. From the accept, the first request's header must arrive within
//!    `server.header_read_timeout_seconds`.
//! 2. While a request is in flight nothing is timed here (bodies are timed by the handler:
//!    408; streams may run as long as the upstream does).
//! 3. Once idle, the connection may stay so for `server.keep_alive_timeout_seconds`; the first
//!    byte of a next HTTP/1 request starts the header timeout again (slowloris; checked as
//!    bytes arrive, so a partial header followed by silence ends at the keep-alive timeout).
//! 4. When the watchdog fires the connection is dropped, which closes the socket.
//!
//! hyper's own `header_read_timeout` is off: it also times the idle wait between keep-alive
//! requests, which would make the keep-alive timeout the header timeout.
//!
//! Connections across all cores are capped by one shared atomic (`llm_proxy_open_connections`):
//! over `server.max_connections` a connection is accepted, answered 503 and closed, so the
//! kernel's accept queue never fills silently.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router as HttpRouter;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower_service::Service;

use super::AppState;
use crate::config::ServerConfig;
use crate::metrics::Refused;

/// After the grace, how long cut streams get to flush their final error event.
const CUT_FLUSH: Duration = Duration::from_secs(1);
/// Pause after an accept error (e.g. out of file descriptors), so the loop never spins.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The connection settings, fixed at startup (a reload does not change them).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_delay: Duration,
    pub grace: Duration,
}

impl Settings {
    pub(crate) fn new(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: server.header_read_timeout_seconds,
            keep_alive_timeout: server.keep_alive_timeout_seconds,
            max_connections: server.max_connections,
            shutdown_delay: server.shutdown_delay_seconds,
            grace: server.shutdown_grace_seconds,
        }
    }
}

/// At most one log line per second about refused connections, with how many there were.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog(std::sync::Mutex<(Option<Instant>, u64)>);

impl RefusalLog {
    fn refused(&self, why: Refused, error: Option<&std::io::Error>, max: usize) {
        // Only ever taken on a refusal, never on the request path.
        let mut guard = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (last, count) = &mut *guard;
        *count += 1;
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(Instant::now());
        let refused = std::mem::take(count);
        match (why, error) {
            (Refused::Limit, _) => tracing::warn!(
                refused,
                max_connections = max,
                "connection limit reached: refusing new connections (server.max_connections)"
            ),
            (Refused::AcceptError, error) => tracing::error!(
                refused,
                error = %error.map(ToString::to_string).unwrap_or_default(),
                "cannot accept connections (out of file descriptors?): backing off"
            ),
        }
    }
}

/// Serves `state`'s app on `listener` until `shutdown` resolves, then drains (see
/// [`super::drain`]): readiness fails at once, new connections are still served for
/// `server.shutdown_delay_seconds`, then the listener closes and in-flight work may finish for
/// `server.shutdown_grace_seconds`; streams still open are then cut with an error event.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settings = state.settings().clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let mut server = Server {
        app: super::app(state.clone()),
        state,
        builder,
        graceful: GracefulShutdown::new(),
        tasks: JoinSet::new(),
        settings,
    };
    server.accept_until(&listener, shutdown).await;
    let drain = server.state.drain();
    if drain.begin() {
        tracing::info!(
            delay_s = server.settings.shutdown_delay.as_secs_f64(),
            "shutting down: /health/ready now answers 503; still serving new connections for the delay"
        );
    }
    server.accept_until(&listener, tokio::time::sleep(server.settings.shutdown_delay)).await;
    drop(listener);
    let grace = server.settings.grace;
    tracing::info!(grace_s = grace.as_secs_f64(), "no new connections: draining in-flight requests");
    let Server { graceful, state, tasks, .. } = server;
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    if tokio::time::timeout(grace, &mut drained).await.is_err() {
        if state.drain().cut_streams() {
            tracing::warn!("grace period over: cutting the streams still open (error event `shutting_down`)");
        }
        if tokio::time::timeout(CUT_FLUSH, &mut drained).await.is_err() {
            tracing::warn!("closing the remaining connections");
        }
    }
    // Dropping the set aborts what is left.
    drop(tasks);
    Ok(())
}

struct Server {
    app: HttpRouter,
    state: AppState,
    builder: auto::Builder<TokioExecutor>,
    graceful: GracefulShutdown,
    tasks: JoinSet<()>,
    settings: Settings,
}

impl Server {
    async fn accept_until(&mut self, listener: &TcpListener, until: impl Future<Output = ()>) {
        tokio::pin!(until);
        loop {
            tokio::select! {
                biased;
                () = &mut until => return,
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => self.connection(stream),
                    // The peer gave up before we accepted: nothing to count or wait for.
                    Err(err) if is_connection_error(&err) => {}
                    Err(err) => {
                        self.state.metrics().connection_refused(Refused::AcceptError);
                        self.state.refusal_log().refused(Refused::AcceptError, Some(&err), 0);
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
    }

    fn connection(&mut self, stream: TcpStream) {
        let Some(slot) = Slot::take(&self.state.metrics().open_connections, self.settings.max_connections)
        else {
            self.state.metrics().connection_refused(Refused::Limit);
            self.state.refusal_log().refused(Refused::Limit, None, self.settings.max_connections);
            // Best effort, never waiting: a full socket buffer just gets the close.
            let _ = stream.try_write(OVER_CAPACITY);
            return;
        };
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched { inner: stream, activity: Arc::clone(&activity) });
        let app = self.app.clone();
        let tracked = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let guard = InFlight::start(&tracked, request.version());
            let response = app.clone().call(request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _guard: guard }))
            }
        });
        let connection = self.builder.serve_connection(io, service).into_owned();
        let connection = self.graceful.watch(connection);
        let watchdog = Watchdog::new(activity, &self.settings);
        self.tasks.spawn(async move {
            tokio::select! {
                // The connection first: the watchdog then sees what this poll read or finished.
                biased;
                _ = connection => {}
                () = watchdog => {}
            }
            drop(slot);
        });
    }
}

const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\ncontent-length: 123\r\n\r\n\
{\"error\":{\"message\":\"Too many connections; retry later.\",\"type\":\"server_error\",\"param\":null,\"code\":\"too_many_connections\"}}";

fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// One open connection in the shared count; released when dropped.
struct Slot(Gauge);

impl Slot {
    fn take(open: &Gauge, max: usize) -> Option<Self> {
        let before = open.inc();
        if usize::try_from(before).unwrap_or(0) >= max {
            open.dec();
            return None;
        }
        Some(Self(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What the watchdog needs to know about one connection. Times are nanoseconds since the
/// accept; only this connection's task touches it, so the atomics are uncontended.
struct Activity {
    accepted: Instant,
    in_flight: AtomicU32,
    /// When the connection last became idle (the accept, or the end of a response).
    idle_since: AtomicU64,
    /// When the first byte arrived since it became idle; `u64::MAX`: none yet.
    first_byte: AtomicU64,
    /// A request was served: later idle time is keep-alive time.
    served: AtomicBool,
    /// HTTP/2: bytes between requests are pings and settings, not a slow header.
    h2: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(u64::MAX),
            served: AtomicBool::new(false),
            h2: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.first_byte.load(Ordering::Relaxed) == u64::MAX
        {
            self.first_byte.store(self.now(), Ordering::Relaxed);
        }
    }

    fn at(&self, nanos: u64, plus: Duration) -> Instant {
        self.accepted + Duration::from_nanos(nanos) + plus
    }
}

/// Resolves when its connection has been idle, or slow to send a header, for too long.
///
/// Nothing here runs per request: the timer is moved later lazily, when it fires early (the
/// deadline moved since it was set), and earlier only when a keep-alive timeout shorter than
/// the header timeout requires it. It is polled right after the connection, in
/// the same task, so it sees every byte read; a header trickling in after the keep-alive wait
/// is caught on the first byte past `header_read_timeout` (a partial header followed by
/// silence, by the keep-alive timer).
struct Watchdog {
    activity: Arc<Activity>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    header: Duration,
    keep_alive: Duration,
}

impl Watchdog {
    fn new(activity: Arc<Activity>, settings: &Settings) -> Self {
        let sleep = Box::pin(tokio::time::sleep_until(activity.accepted + settings.header_read_timeout));
        Self {
            activity,
            sleep,
            header: settings.header_read_timeout,
            keep_alive: settings.keep_alive_timeout,
        }
    }

    /// When the idle (or first-request) wait ends; `None` while a request runs.
    fn deadline(&self) -> Option<Instant> {
        let activity = &self.activity;
        if activity.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let idle_since = activity.idle_since.load(Ordering::Relaxed);
        Some(match activity.served.load(Ordering::Relaxed) {
            false => activity.at(idle_since, self.header),
            true => activity.at(idle_since, self.keep_alive),
        })
    }

    /// A next request's header started arriving too long ago.
    fn slow_header(&self) -> bool {
        let activity = &self.activity;
        let first_byte = activity.first_byte.load(Ordering::Relaxed);
        first_byte != u64::MAX
            && activity.served.load(Ordering::Relaxed)
            && !activity.h2.load(Ordering::Relaxed)
            && activity.in_flight.load(Ordering::Relaxed) == 0
            && Instant::now() >= activity.at(first_byte, self.header)
    }
}

impl Future for Watchdog {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.slow_header() {
            return Poll::Ready(());
        }
        // Moved earlier only when the keep-alive timeout is the shorter one.
        if let Some(deadline) = self.deadline()
            && deadline < self.sleep.deadline()
        {
            self.sleep.as_mut().reset(deadline);
        }
        while self.sleep.as_mut().poll(cx).is_ready() {
            let next = match self.deadline() {
                Some(deadline) if deadline <= Instant::now() => return Poll::Ready(()),
                Some(deadline) => deadline,
                // A request is running: look again later (its end moves the deadline anyway).
                None => Instant::now() + self.header.min(self.keep_alive),
            };
            self.sleep.as_mut().reset(next);
        }
        Poll::Pending
    }
}

/// Marks a request in flight on its connection until its response body is done.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>, version: http::Version) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        if version == http::Version::HTTP_2 {
            activity.h2.store(true, Ordering::Relaxed);
        }
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            activity.idle_since.store(activity.now(), Ordering::Relaxed);
            activity.first_byte.store(u64::MAX, Ordering::Relaxed);
            activity.served.store(true, Ordering::Relaxed);
        }
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The client's socket, noting when bytes arrive between requests.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_over_capacity_answer_is_a_well_formed_openai_error() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(body["error"]["code"], "too_many_connections");
    }
}
