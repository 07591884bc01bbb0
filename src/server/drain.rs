//! Readiness and drain: what SIGTERM changes, and the end of streams still open when the
//! shutdown grace runs out.
//!
//! The sequence (driven by [`super::serve`]):
//! 1. SIGTERM: [`Drain::begin`]; `/health/ready` answers 503 from then on, so a load balancer
//!    stops sending new clients, while the listener still accepts for
//!    `server.shutdown_delay_seconds` (clients that have not noticed yet are still served).
//! 2. The listener closes; in-flight requests and streams may finish for
//!    `server.shutdown_grace_seconds`.
//! 3. Grace over: [`Drain::cut_streams`]; every stream still open gets one final OpenAI error
//!    event (`code: shutting_down`, no `[DONE]`) and ends, so clients see why it stopped
//!    instead of a silently truncated stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};
use tokio::sync::watch;

/// The process's drain state, shared by every core.
#[derive(Debug)]
pub struct Drain {
    draining: AtomicBool,
    cut: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        Self { draining: AtomicBool::new(false), cut: watch::Sender::new(false) }
    }
}

impl Drain {
    /// Whether shutdown has begun (readiness then fails).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Starts draining; true the first time only.
    pub(crate) fn begin(&self) -> bool {
        !self.draining.swap(true, Ordering::Relaxed)
    }

    /// Ends every stream still open with a `shutting_down` error event; true the first time.
    pub(crate) fn cut_streams(&self) -> bool {
        !self.cut.send_replace(true)
    }

    /// `stream`, ended early by [`Drain::cut_streams`]: the inner stream is dropped (which
    /// settles it as abandoned and cancels its upstream request), `was_cut` is set first so
    /// its end can be told apart from a client leaving, and one error event is sent instead.
    /// The relay yields whole SSE events, so the cut falls on an event boundary.
    pub(crate) fn cut_on_shutdown<S>(
        &self,
        stream: S,
        was_cut: Arc<AtomicBool>,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
    where
        S: Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
    {
        let state = Some((Box::pin(stream), self.cut.subscribe()));
        futures_util::stream::unfold(state, move |state| {
            let was_cut = Arc::clone(&was_cut);
            async move {
                let (mut stream, mut cut) = state?;
                let next = tokio::select! {
                    biased;
                    // An error means the sender is gone: no cut can come any more.
                    Ok(_) = cut.wait_for(|&cut| cut) => None,
                    item = stream.next() => Some(item),
                };
                match next {
                    Some(item) => item.map(|item| (item, Some((stream, cut)))),
                    None => {
                        was_cut.store(true, Ordering::Relaxed);
                        drop(stream);
                        Some((Ok(shutdown_event()), None))
                    }
                }
            }
        })
    }
}

/// `data: {"error":{…,"code":"shutting_down"}}`: the OpenAI SDKs raise it as an `APIError`.
fn shutdown_event() -> Bytes {
    crate::sse::error_event(
        "The proxy is shutting down: this stream was cut before it finished. Retry the request.",
        "server_error",
        "shutting_down",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cut_ends_the_stream_with_one_error_event_and_no_done() {
        let drain = Drain::default();
        let was_cut = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let inner = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
        });
        let mut stream = Box::pin(drain.cut_on_shutdown(inner, Arc::clone(&was_cut)));
        tx.send(Bytes::from_static(b"data: {}\n\n")).unwrap_or_default();
        assert_eq!(stream.next().await.and_then(Result::ok), Some(Bytes::from_static(b"data: {}\n\n")));
        assert!(drain.cut_streams());
        assert!(!drain.cut_streams(), "only the first cut counts");
        let last = stream.next().await.and_then(Result::ok).unwrap_or_default();
        let text = std::str::from_utf8(&last).unwrap_or_default();
        assert!(
            text.starts_with("data: {\"error\":") && text.contains("\"code\":\"shutting_down\""),
            "{text}"
        );
        assert!(stream.next().await.is_none());
        assert!(was_cut.load(Ordering::Relaxed));
        assert!(tx.is_closed(), "the inner stream was dropped");
    }
}
