//! Relaying a committed stream to the client.
//!
//! Frames are whole events and are forwarded as they arrive, never re-encoded. Once the stream
//! committed there is no failover: an upstream failure (broken connection, silence past the
//! idle timeout, the total timeout or byte bound reached, an end without `[DONE]`) ends the
//! stream with one `data: {"error":{…}}` event and no `[DONE]` (unless the upstream sent its
//! own error event), so the official SDKs raise `APIError` instead of returning a truncated
//! answer. A client that disconnects drops the relay, which drops the upstream response and
//! so cancels the upstream request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt};
use tokio::time::{Instant, timeout_at};

use crate::api::dialect::Dialect;
use crate::providers::{Frames, ProviderError};
use crate::router::{Committed, Ticket};
use crate::sse::error_event_in;
use crate::usage::Usage;

/// How a relayed stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The upstream sent `[DONE]`.
    Completed,
    /// The upstream failed after the stream was committed; the reason was sent to the client.
    Failed(String),
    /// The client went away first; the upstream request was cancelled.
    ClientGone,
}

/// Turns a committed stream into the client's response body, settling the deployment's
/// health when it ends and then calling `on_end` (the request log).
pub fn relay(
    committed: Committed,
    dialect: Dialect,
    on_end: impl FnOnce(&StreamEnd, Option<Usage>, u64) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = Relay {
        sent: committed.first.len() as u64,
        first: Some(committed.first),
        rest: committed.rest,
        done_at_commit: committed.done,
        failed_at_commit: committed.failed,
        usage: committed.usage,
        content_frames: 1,
        idle_timeout: committed.idle_timeout,
        deadline: committed.deadline,
        max_bytes: committed.max_bytes,
        provider: committed.provider,
        dialect,
        finish: Some(Finish { ticket: committed.ticket, on_end: Box::new(on_end) }),
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let bytes = state.next().await?;
        Some((Ok(bytes), state))
    })
}

struct Relay {
    /// The client's dialect, for the error event.
    dialect: Dialect,
    first: Option<Bytes>,
    rest: Frames,
    /// The stream was complete at its commit (`[DONE]` among the first bytes).
    done_at_commit: bool,
    /// The stream ended on an upstream error event among the first bytes.
    failed_at_commit: bool,
    usage: Option<Usage>,
    /// Frames with content relayed after the commit.
    content_frames: u64,
    idle_timeout: Duration,
    deadline: Instant,
    max_bytes: u64,
    sent: u64,
    provider: Arc<str>,
    finish: Option<Finish>,
}

/// Called once when the stream ends, with how, the usage it reported, and how many frames
/// with content were relayed (about one token each in OpenAI-framed streams: what a stream
/// that ended before its usage arrived is billed on).
type OnEnd = Box<dyn FnOnce(&StreamEnd, Option<Usage>, u64) + Send>;

struct Finish {
    ticket: Ticket,
    on_end: OnEnd,
}

impl Relay {
    async fn next(&mut self) -> Option<Bytes> {
        self.finish.as_ref()?;
        if let Some(first) = self.first.take() {
            if self.failed_at_commit {
                self.end(StreamEnd::Failed("the upstream sent an error event".to_string()));
            } else if self.done_at_commit {
                self.end(StreamEnd::Completed);
            }
            return Some(first);
        }
        let wait_until = self.deadline.min(Instant::now() + self.idle_timeout);
        let frame = match timeout_at(wait_until, self.rest.next()).await {
            Err(_) if Instant::now() >= self.deadline => {
                return self.fail("the attempt's total timeout was reached".to_string());
            }
            Err(_) => return self.fail(ProviderError::Timeout(self.idle_timeout).to_string()),
            Ok(None) => return self.fail("the upstream closed the stream before its end".to_string()),
            Ok(Some(Err(error))) => return self.fail(error.to_string()),
            Ok(Some(Ok(frame))) => frame,
        };
        self.usage = frame.usage.or(self.usage);
        self.content_frames += u64::from(frame.meaningful && !frame.done);
        self.sent += frame.bytes.len() as u64;
        if self.sent > self.max_bytes {
            return self.fail(format!("the stream exceeded {} bytes", self.max_bytes));
        }
        if frame.failed {
            // The upstream's own error event ends the stream (whatever follows it): relay it,
            // add none.
            self.end(StreamEnd::Failed("the upstream sent an error event".to_string()));
        } else if frame.done {
            // Do not wait for the upstream to close after [DONE].
            self.end(StreamEnd::Completed);
        }
        Some(frame.bytes)
    }

    /// Ends the stream with an error event.
    fn fail(&mut self, reason: String) -> Option<Bytes> {
        let message = format!("The stream from provider `{}` was interrupted: {reason}", self.provider);
        self.end(StreamEnd::Failed(reason));
        Some(error_event_in(self.dialect, &message, "upstream_error", "stream_interrupted"))
    }

    fn end(&mut self, end: StreamEnd) {
        if let Some(Finish { ticket, on_end }) = self.finish.take() {
            match end {
                StreamEnd::Completed => ticket.success(self.usage),
                StreamEnd::Failed(_) => ticket.failure(self.usage),
                StreamEnd::ClientGone => ticket.abandon(self.usage),
            }
            on_end(&end, self.usage, self.content_frames);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.end(StreamEnd::ClientGone);
    }
}
