//! Listening: binding with a deep accept queue, and one single-threaded runtime per core.

use std::future::Future;

use tokio::net::TcpListener;

use super::{AppState, serve};

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
