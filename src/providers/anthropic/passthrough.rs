//! A Messages call passed through to an Anthropic upstream: its event stream as [`Frame`]s
//! (whole events, bytes as received) read for meaning, completion, errors and usage, and the
//! usage of a complete `message`.
//!
//! The stream is read the way `providers::openai::stream` reads OpenAI's: the event name
//! decides, and JSON is parsed only for the events that carry usage (`message_start`,
//! `message_delta`) or an error, plus each `content_block_start` until the stream has said
//! something. `message_start`, `ping` and comments are preamble: held, not meaningful.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::StatusCode;
use http::header::HeaderValue;
use serde::Deserialize;

use super::response::{AnthropicUsage, ErrorDetail, error_status};
use crate::providers::translate::stream::{SseDecoder, SseEvent};
use crate::providers::{Frame, Frames, ProviderError};
use crate::sse::EventScanner;
use crate::usage::Usage;

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct MessageStart {
    message: WithUsage,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    delta: Option<StopReason>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct StopReason {
    #[serde(default)]
    stop_reason: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    #[serde(borrow)]
    content_block: StartBlock<'a>,
}

#[derive(Deserialize)]
struct StartBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    thinking: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// The usage of a complete Anthropic `message` JSON: input, cache reads and cache writes
/// together are the prompt (cached and cache-write split out), `output_tokens` the
/// completion. `None` when the body has no `usage`.
pub(crate) fn usage(json: &[u8]) -> Option<Usage> {
    let usage = serde_json::from_slice::<WithUsage>(json).ok()?.usage?;
    Some(usage.to_openai())
}

/// What the stream has said so far.
struct Reader {
    /// Finds whole events; only its boundaries are used (see [`frames`]).
    scanner: EventScanner,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    meaningful: bool,
    done: bool,
    usage: AnthropicUsage,
    seen_usage: bool,
}

/// How one chunk's events ended.
enum Read {
    /// Keep going; `failed` when an error event after the commit ends the stream.
    Events { bytes: Bytes, failed: bool },
    /// An error event before anything meaningful: the attempt failed with this status.
    Early(ProviderError),
}

impl Reader {
    fn new() -> Self {
        let mut scanner = EventScanner::new(false);
        // The scanner reads OpenAI's chunk shape for meaning; marked meaningful from the
        // start, it skips that reading and only finds event boundaries.
        scanner.meaningful = true;
        Self {
            scanner,
            decoder: SseDecoder::default(),
            events: Vec::new(),
            meaningful: false,
            done: false,
            usage: AnthropicUsage::default(),
            seen_usage: false,
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.seen_usage.then(|| self.usage.to_openai())
    }

    fn push(&mut self, chunk: Bytes) -> Result<Read, ProviderError> {
        let scanned = self.scanner.push(chunk).map_err(ProviderError::InvalidResponse)?;
        if scanned.events.is_empty() {
            return Ok(Read::Events { bytes: scanned.events, failed: false });
        }
        // Whole events only, so the decoder never holds anything back between calls.
        self.decoder.push(&scanned.events, &mut self.events)?;
        let mut failed = false;
        for event in std::mem::take(&mut self.events) {
            if let Some(early) = self.read(&event, &mut failed) {
                return Ok(Read::Early(early));
            }
        }
        Ok(Read::Events { bytes: scanned.events, failed })
    }

    /// Notes what one event says; an early error is returned.
    fn read(&mut self, event: &SseEvent, failed: &mut bool) -> Option<ProviderError> {
        let data = event.data.as_str();
        let name = match event.event.as_str() {
            "" => serde_json::from_str::<TypeOnly<'_>>(data).map(|t| t.kind.into_owned()).unwrap_or_default(),
            name => name.to_string(),
        };
        match name.as_str() {
            "content_block_delta" => self.meaningful = true,
            "content_block_start" if !self.meaningful => {
                // An empty text or thinking block says nothing yet; any other block does
                // (and one that cannot be read is passed on rather than held).
                self.meaningful = match serde_json::from_str::<BlockStart<'_>>(data) {
                    Ok(BlockStart { content_block: block }) => match block.kind.as_ref() {
                        "text" => block.text.is_some_and(|t| !t.is_empty()),
                        "thinking" => block.thinking.is_some_and(|t| !t.is_empty()),
                        _ => true,
                    },
                    Err(_) => true,
                };
            }
            "message_start" => {
                if let Ok(MessageStart { message: WithUsage { usage: Some(usage) } }) =
                    serde_json::from_str(data)
                {
                    self.note_usage(usage);
                }
            }
            "message_delta" => {
                if let Ok(delta) = serde_json::from_str::<MessageDelta>(data) {
                    if let Some(usage) = delta.usage {
                        self.note_usage(usage);
                    }
                    if delta.delta.is_some_and(|d| d.stop_reason.is_some()) {
                        self.meaningful = true;
                    }
                }
            }
            "message_stop" => self.done = true,
            "error" => {
                if !self.meaningful {
                    return Some(early_error(data));
                }
                *failed = true;
            }
            _ => {}
        }
        None
    }

    fn note_usage(&mut self, usage: AnthropicUsage) {
        self.usage.update(usage);
        self.seen_usage = true;
    }
}

/// An error event before the stream said anything, as the status its type stands for
/// (`overloaded_error` 529, `rate_limit_error` 429, `api_error` 500, …; 502 if unreadable),
/// its body the event's JSON as sent, for the router to fail over or relay.
fn early_error(data: &str) -> ProviderError {
    let status = serde_json::from_str::<ErrorEvent>(data).map_or(502, |e| error_status(&e.error.kind));
    ProviderError::Status {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        retry_after: None,
        content_type: Some(HeaderValue::from_static("application/json")),
        body: Bytes::copy_from_slice(data.as_bytes()),
    }
}

/// Frames of a raw Anthropic SSE stream, bytes untouched; read for meaning/terminal/error/usage.
///
/// A frame is every whole event of one upstream chunk. `meaningful` once a
/// `content_block_delta`, a non-empty `content_block_start` or a `message_delta` with a
/// `stop_reason` appeared; `done` at `message_stop`; `failed` on an `error` event after that.
/// An `error` event before anything meaningful ends the frames with
/// [`ProviderError::Status`] instead. Events are bounded by `MAX_EVENT_BYTES`.
pub(crate) fn frames(raw: BoxStream<'static, Result<Bytes, ProviderError>>) -> Frames {
    let state = (raw, Reader::new(), false);
    futures_util::stream::unfold(state, |(mut raw, mut reader, over)| async move {
        if over {
            return None;
        }
        loop {
            let chunk = match raw.next().await? {
                Ok(chunk) => chunk,
                Err(error) => return Some((Err(error), (raw, reader, true))),
            };
            let (bytes, failed) = match reader.push(chunk) {
                Ok(Read::Events { bytes, failed }) => (bytes, failed),
                Ok(Read::Early(error)) | Err(error) => return Some((Err(error), (raw, reader, true))),
            };
            if bytes.is_empty() {
                continue;
            }
            let frame = Frame {
                bytes,
                meaningful: reader.meaningful,
                done: reader.done,
                failed,
                usage: reader.usage(),
            };
            let over = reader.done || failed;
            return Some((Ok(frame), (raw, reader, over)));
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/fixtures/anthropic/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    /// Runs `frames` over `bytes` cut into `piece`-byte chunks.
    async fn run(bytes: &[u8], piece: usize) -> Vec<Result<Frame, ProviderError>> {
        let chunks: Vec<Result<Bytes, ProviderError>> =
            bytes.chunks(piece).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let stream = futures_util::stream::iter(chunks).boxed();
        frames(stream).collect::<Vec<_>>().await
    }

    #[tokio::test]
    async fn a_recorded_stream_passes_byte_for_byte_and_is_read() {
        let sse = fixture("stream_tool_use.sse");
        for piece in [1, 7, 64, sse.len()] {
            let frames: Vec<Frame> = run(&sse, piece).await.into_iter().map(Result::unwrap).collect();
            let all: Vec<u8> = frames.iter().flat_map(|f| f.bytes.to_vec()).collect();
            assert_eq!(all, sse, "piece {piece}");
            let last = frames.last().unwrap();
            assert!(last.done && last.meaningful && !last.failed);
            assert!(frames.iter().take_while(|f| !f.meaningful).all(|f| {
                let text = std::str::from_utf8(&f.bytes).unwrap();
                !text.contains("content_block_delta")
            }));
            let usage = last.usage.unwrap();
            assert_eq!(usage.prompt_tokens, 472);
            assert!(usage.completion_tokens > 2, "message_delta's cumulative count wins");
        }
    }

    #[tokio::test]
    async fn preamble_is_not_meaningful_and_an_early_error_is_its_status() {
        let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n: comment\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
        let frames = run(start.as_bytes(), 4096).await;
        let frame = frames[0].as_ref().unwrap();
        assert!(!frame.meaningful && !frame.done);
        assert_eq!(frame.usage.map(|u| u.prompt_tokens), Some(3));

        let error = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let stream = format!("{start}event: error\ndata: {error}\n\n");
        let frames = run(stream.as_bytes(), 5).await;
        match frames.last().unwrap() {
            Err(ProviderError::Status { status, body, .. }) => {
                assert_eq!(status.as_u16(), 529);
                assert_eq!(&body[..], error.as_bytes(), "the error as sent");
            }
            other => panic!("{other:?}"),
        }
        let recorded = run(&fixture("stream_overloaded.sse"), 3).await;
        assert!(matches!(recorded.last(), Some(Err(ProviderError::Status { .. }))));
        for (kind, code) in [("rate_limit_error", 429), ("api_error", 500), ("invalid_request_error", 400)] {
            let stream = format!(
                "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{kind}\",\"message\":\"x\"}}}}\n\n"
            );
            let frames = run(stream.as_bytes(), 64).await;
            assert!(
                matches!(&frames[0], Err(ProviderError::Status { status, .. }) if status.as_u16() == code)
            );
        }
    }

    #[tokio::test]
    async fn a_tool_block_or_a_stop_reason_is_meaningful_and_a_late_error_fails() {
        let tool = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n";
        assert!(run(tool.as_bytes(), 4096).await[0].as_ref().unwrap().meaningful);
        let stop = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n";
        let frame = run(stop.as_bytes(), 4096).await.remove(0).unwrap();
        assert!(frame.meaningful);
        assert_eq!(frame.usage.map(|u| u.completion_tokens), Some(9));
        let late = format!(
            "{tool}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":\"x\"}}}}\n\nevent: ping\ndata: {{}}\n\n"
        );
        let frames = run(late.as_bytes(), 4096).await;
        assert_eq!(frames.len(), 1, "nothing after the failure");
        let frame = frames[0].as_ref().unwrap();
        assert!(frame.failed && !frame.done);
    }

    #[test]
    fn message_usage_adds_the_cache() {
        let usage = usage(&fixture("message_tool_use.json")).unwrap();
        assert!(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
        let body = br#"{"id":"m","usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":3,"cache_creation_input_tokens":2}}"#;
        let u = super::usage(body).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.cache_write_tokens),
            (15, 5, Some(3), Some(2))
        );
        assert!(super::usage(b"{}").is_none() && super::usage(b"nope").is_none());
    }

    #[tokio::test]
    async fn mangled_streams_never_panic() {
        let sse = fixture("stream_tool_use.sse");
        let mut rng = fastrand::Rng::with_seed(3);
        for round in 0..200 {
            let mut bytes = sse.clone();
            bytes.truncate(rng.usize(0..=bytes.len()));
            for _ in 0..round % 6 {
                if !bytes.is_empty() {
                    let at = rng.usize(..bytes.len());
                    let noise = b"{}[]\":,0a\n";
                    bytes[at] = noise[rng.usize(..noise.len())];
                }
            }
            let _ = run(&bytes, rng.usize(1..50)).await;
        }
    }
}
