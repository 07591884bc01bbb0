//! Relaying a committed upstream event stream to the client.
//!
//! Bytes are forwarded as they arrive, cut only at event boundaries, never re-encoded. Cutting
//! at boundaries matters when a stream dies: the client has then seen only whole events, so
//! the error event the proxy appends parses cleanly (and a truncated stream is never silent:
//! OpenAI's SDKs treat a missing `[DONE]` as a normal end).
//!
//! Once the first byte is sent there is no failover; an upstream failure (broken connection,
//! silence longer than the timeout, end without `[DONE]`) ends the stream with
//! `data: {"error":{…}}` and no `[DONE]`. A client that disconnects drops the relay, which
//! drops the upstream response and so cancels the upstream request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use tokio::time::timeout;

use crate::api::{ErrorBody, ErrorEnvelope};
use crate::providers::ProviderError;
use crate::router::{Committed, Ticket};

/// Largest single event held while waiting for its end.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

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
    on_end: impl FnOnce(&StreamEnd) + Send + 'static,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = Relay {
        first: Some(committed.first),
        rest: committed.rest,
        scanner: EventScanner::default(),
        idle_timeout: committed.idle_timeout,
        provider: committed.provider,
        finish: Some(Finish { ticket: committed.ticket, on_end: Box::new(on_end) }),
    };
    futures_util::stream::unfold(state, |mut state| async move {
        let bytes = state.next().await?;
        Some((Ok(bytes), state))
    })
}

struct Relay {
    first: Option<Bytes>,
    rest: BoxStream<'static, Result<Bytes, ProviderError>>,
    scanner: EventScanner,
    idle_timeout: Duration,
    provider: Arc<str>,
    finish: Option<Finish>,
}

struct Finish {
    ticket: Ticket,
    on_end: Box<dyn FnOnce(&StreamEnd) + Send>,
}

impl Relay {
    async fn next(&mut self) -> Option<Bytes> {
        self.finish.as_ref()?;
        loop {
            let chunk = match self.first.take() {
                Some(first) => Ok(Some(first)),
                None => match timeout(self.idle_timeout, self.rest.next()).await {
                    Err(_) => Err(ProviderError::Timeout(self.idle_timeout)),
                    Ok(None) => Ok(None),
                    Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
                    Ok(Some(Err(error))) => Err(error),
                },
            };
            match chunk {
                Ok(Some(chunk)) => match self.scanner.push(chunk) {
                    Ok(events) => {
                        if self.scanner.done {
                            // Do not wait for the upstream to close after [DONE].
                            self.end(StreamEnd::Completed);
                        }
                        if events.is_empty() {
                            self.finish.as_ref()?;
                            continue;
                        }
                        return Some(events);
                    }
                    Err(too_large) => return self.fail(too_large),
                },
                Ok(None) if self.scanner.saw_error => {
                    self.end(StreamEnd::Failed("the upstream sent an error event".to_string()));
                    return None;
                }
                Ok(None) => {
                    return self.fail("the upstream closed the stream before [DONE]".to_string());
                }
                Err(error) => return self.fail(error.to_string()),
            }
        }
    }

    /// Ends the stream with an error event (unless the upstream already sent one).
    fn fail(&mut self, reason: String) -> Option<Bytes> {
        let event = (!self.scanner.saw_error).then(|| {
            let message = format!("The stream from provider `{}` was interrupted: {reason}", self.provider);
            error_event(&message, "stream_interrupted")
        });
        self.end(StreamEnd::Failed(reason));
        event
    }

    fn end(&mut self, end: StreamEnd) {
        if let Some(Finish { ticket, on_end }) = self.finish.take() {
            match end {
                StreamEnd::Completed => ticket.success(self.scanner.usage),
                StreamEnd::Failed(_) => ticket.failure(None),
                StreamEnd::ClientGone => ticket.abandon(),
            }
            on_end(&end);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.end(StreamEnd::ClientGone);
    }
}

/// `data: {"error":{…}}\n\n`, the mid-stream error the official SDKs raise as `APIError`.
pub fn error_event(message: &str, code: &str) -> Bytes {
    let body =
        ErrorEnvelope { error: ErrorBody { message, kind: "upstream_error", param: None, code: Some(code) } }
            .to_bytes();
    let mut event = BytesMut::with_capacity(body.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(&body);
    event.extend_from_slice(b"\n\n");
    event.freeze()
}

/// Finds event boundaries (a blank line, with `\n`, `\r\n` or `\r` line ends, per WHATWG)
/// across chunks, and notices `[DONE]` and error events on the way.
#[derive(Debug, Default)]
pub struct EventScanner {
    /// Bytes of an event whose end has not arrived yet.
    pending: BytesMut,
    /// The last byte seen ended a line (or nothing was seen yet in this event).
    at_line_start: bool,
    /// The last byte seen was `\r` (a following `\n` belongs to the same line end).
    after_cr: bool,
    /// Seen `data: [DONE]`.
    pub done: bool,
    /// Seen an event whose data is an `{"error": …}` object.
    pub saw_error: bool,
    /// (prompt, completion) tokens from the usage chunk, if the stream had one.
    pub usage: Option<(u64, u64)>,
}

impl EventScanner {
    /// Takes the next chunk; returns the complete events now available (possibly empty),
    /// keeping an unfinished one back. Zero-copy when the chunk holds whole events only.
    pub fn push(&mut self, chunk: Bytes) -> Result<Bytes, String> {
        if self.pending.is_empty() {
            let end = self.scan(&chunk, 0);
            let mut chunk = chunk;
            let events = chunk.split_to(end);
            self.hold(&chunk)?;
            Ok(events)
        } else {
            let from = self.pending.len();
            self.hold(&chunk)?;
            let pending = std::mem::take(&mut self.pending);
            let end = self.scan(&pending, from);
            let mut pending = pending;
            let events = pending.split_to(end).freeze();
            self.pending = pending;
            Ok(events)
        }
    }

    fn hold(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.pending.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(format!("an event exceeded {MAX_EVENT_BYTES} bytes"));
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    /// Scans `buf[from..]`; returns the end of the last complete event in `buf`.
    /// Only line ends matter, so it jumps between them with `memchr`.
    fn scan(&mut self, buf: &[u8], from: usize) -> usize {
        let mut event_start = 0;
        let mut complete = 0;
        let mut pos = from;
        for i in memchr::memchr2_iter(b'\n', b'\r', &buf[from..]).map(|i| i + from) {
            if i > pos {
                // Ordinary bytes since the last line end: we are inside a line.
                self.at_line_start = false;
                self.after_cr = false;
            }
            let byte = buf[i];
            pos = i + 1;
            if byte == b'\n' && self.after_cr {
                // The LF of a CRLF: the line already ended at the CR.
                self.after_cr = false;
                continue;
            }
            self.after_cr = byte == b'\r';
            if self.at_line_start {
                self.inspect(&buf[event_start..i]);
                // Keep a CRLF whole when its LF is already here; one split across chunks
                // leaves a stray LF, which clients read as an empty line.
                complete = if byte == b'\r' && buf.get(i + 1) == Some(&b'\n') { i + 2 } else { i + 1 };
                event_start = complete;
            }
            self.at_line_start = true;
        }
        if pos < buf.len() {
            self.at_line_start = false;
            self.after_cr = false;
        }
        complete
    }

    fn inspect(&mut self, event: &[u8]) {
        let event = event.trim_ascii_start();
        for line in event.split(|&b| b == b'\n' || b == b'\r') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data.starts_with(b"[DONE]") {
                self.done = true;
            } else if data.starts_with(b"{\"error\"") {
                self.saw_error = true;
            } else if memchr::memmem::find(data, b"\"usage\":{").is_some() {
                // Only the usage chunk has a usage object; other chunks have none or null.
                self.usage = crate::api::usage_of(data).or(self.usage);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(scanner: &mut EventScanner, chunks: &[&str]) -> Vec<String> {
        chunks
            .iter()
            .map(|c| {
                String::from_utf8(scanner.push(Bytes::copy_from_slice(c.as_bytes())).unwrap().to_vec())
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn forwards_whole_events_and_holds_partial_ones() {
        let mut s = EventScanner::default();
        let out = feed(&mut s, &["data: {\"a\":1}\n\ndata: {\"b\"", ":2}\n", "\n", "data: [DONE]\n\n"]);
        assert_eq!(out, ["data: {\"a\":1}\n\n", "", "data: {\"b\":2}\n\n", "data: [DONE]\n\n"]);
        assert!(s.done);
        assert!(!s.saw_error);
    }

    #[test]
    fn understands_crlf_cr_and_comments() {
        let mut s = EventScanner::default();
        let out = feed(&mut s, &[": ping\r\n\r\ndata: {\"x\":1}\r", "\n\r\ndata:[DONE]\r\r"]);
        assert_eq!(out, [": ping\r\n\r\n", "data: {\"x\":1}\r\n\r\ndata:[DONE]\r\r"]);
        assert!(s.done);
    }

    #[test]
    fn any_chunking_yields_the_same_whole_events() {
        let stream =
            "data: {\"a\":1}\n\n: ping\r\n\r\nevent: x\ndata: {\"b\":\n data: 2}\r\rdata: [DONE]\n\n";
        let mut rng = fastrand::Rng::with_seed(42);
        for _ in 0..500 {
            let mut scanner = EventScanner::default();
            let mut out = Vec::new();
            let mut rest = stream.as_bytes();
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rng.usize(1..=rest.len().min(9)));
                out.extend_from_slice(&scanner.push(Bytes::copy_from_slice(chunk)).unwrap());
                rest = tail;
            }
            // Whatever the chunking: every byte once, in order, and [DONE] noticed.
            assert_eq!(String::from_utf8(out).unwrap(), stream);
            assert!(scanner.done);
        }
    }

    #[test]
    fn picks_up_the_usage_chunk() {
        let mut s = EventScanner::default();
        feed(
            &mut s,
            &[
                "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\ndata: [DONE]\n\n",
            ],
        );
        assert_eq!(s.usage, Some((9, 2)));
    }

    #[test]
    fn notices_error_events() {
        let mut s = EventScanner::default();
        feed(&mut s, &["data: {\"error\":{\"message\":\"boom\"}}\n\n"]);
        assert!(s.saw_error && !s.done);
    }

    #[test]
    fn refuses_an_endless_event() {
        let mut s = EventScanner::default();
        let big = Bytes::from(vec![b'x'; MAX_EVENT_BYTES]);
        assert!(s.push(big).unwrap().is_empty());
        assert!(s.push(Bytes::from_static(b"y")).is_err());
    }

    #[test]
    fn error_event_is_an_openai_error_chunk() {
        let event = error_event("it broke", "stream_interrupted");
        let text = std::str::from_utf8(&event).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(text.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        assert_eq!(json["error"]["message"], "it broke");
        assert_eq!(json["error"]["param"], serde_json::Value::Null);
        assert!(text.ends_with("\n\n"));
    }
}
