//! The SSE codec for OpenAI-framed event streams: finds event boundaries across chunks and
//! says what each event means — content (the stream may commit), `[DONE]`, an error, usage —
//! and encodes the error event the proxy itself sends. A leaf: it knows bytes and OpenAI's
//! chunk shape, nothing of routing or HTTP. The relay to the client is `server::relay`.
//!
//! Bytes are forwarded as they arrive, cut only at event boundaries, never re-encoded.
//! Cutting at boundaries matters when a stream dies: the client has then seen only whole
//! events, so the error event the proxy appends parses cleanly.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::api::dialect::Dialect;
use crate::api::{AnthropicError, ErrorBody, ErrorEnvelope};
use crate::usage::Usage;

/// Largest single event held while waiting for its end.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// `data: {"error":{…}}\n\n`, the mid-stream error the official SDKs raise as `APIError`;
/// `kind` is its OpenAI `type` (`upstream_error`, `server_error`).
pub fn error_event(message: &str, kind: &str, code: &str) -> Bytes {
    error_event_in(Dialect::Chat, message, kind, code)
}

/// The proxy's own error event in a client dialect: OpenAI's `data: {"error":…}`, the
/// Responses API's `error` event, or Anthropic's `event: error`.
pub fn error_event_in(dialect: Dialect, message: &str, kind: &str, code: &str) -> Bytes {
    let (name, body) = match dialect {
        Dialect::Chat => (
            None,
            ErrorEnvelope { error: ErrorBody { message, kind, param: None, code: Some(code) } }.to_bytes(),
        ),
        Dialect::Responses => {
            let body = serde_json::json!({"type": "error", "code": code, "message": message, "param": null});
            (Some("error"), serde_json::to_vec(&body).map(Bytes::from).unwrap_or_default())
        }
        Dialect::Messages => (Some("error"), AnthropicError::new("api_error", message).to_bytes()),
    };
    let mut event = BytesMut::with_capacity(body.len() + 24);
    if let Some(name) = name {
        event.extend_from_slice(b"event: ");
        event.extend_from_slice(name.as_bytes());
        event.extend_from_slice(b"\n");
    }
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(&body);
    event.extend_from_slice(b"\n\n");
    event.freeze()
}
/// What one call to [`EventScanner::push`] found.
#[derive(Debug, Default)]
pub struct Scanned {
    /// The complete events now available (possibly empty), minus any dropped usage chunk.
    pub events: Bytes,
    /// The data of an error event among them, if there was one.
    pub error: Option<Bytes>,
}

/// Finds event boundaries (a blank line, with `\n`, `\r\n` or `\r` line ends, per WHATWG)
/// across chunks of an OpenAI-framed stream, and reads each event on the way.
#[derive(Debug, Default)]
pub struct EventScanner {
    /// Bytes of an event whose end has not arrived yet.
    pending: BytesMut,
    /// The last byte seen ended a line (or nothing was seen yet in this event).
    at_line_start: bool,
    /// The last byte seen was `\r` (a following `\n` belongs to the same line end).
    after_cr: bool,
    /// Leave out the usage-only chunk (`choices: []`): the proxy asked for usage on the
    /// client's behalf, and the client did not.
    drop_usage_only: bool,
    /// Seen an event with content, a tool call or a finish reason (or one that could not be
    /// read, which is passed on rather than held): the stream may commit.
    pub meaningful: bool,
    /// Seen an error event before any meaningful one: the attempt failed, and may fail over.
    pub early_error: Option<Bytes>,
    /// Seen `data: [DONE]`.
    pub done: bool,
    /// Seen an error event.
    pub saw_error: bool,
    /// The last usage the stream reported.
    pub usage: Option<Usage>,
}

/// What an event is, for the scanner's bookkeeping.
enum Kind {
    Keep,
    Drop,
}

impl EventScanner {
    /// A scanner; with `drop_usage_only`, the usage-only chunk is read and left out.
    pub fn new(drop_usage_only: bool) -> Self {
        Self { drop_usage_only, ..Self::default() }
    }

    /// Takes the next chunk; returns the complete events now available, keeping an unfinished
    /// one back. Zero-copy when the chunk holds whole events only and none is dropped.
    pub fn push(&mut self, chunk: Bytes) -> Result<Scanned, String> {
        let mut error = None;
        let mut dropped = Vec::new();
        let events = if self.pending.is_empty() {
            let end = self.scan(&chunk, 0, &mut dropped, &mut error);
            let mut chunk = chunk;
            let events = chunk.split_to(end);
            self.hold(&chunk)?;
            events
        } else {
            let from = self.pending.len();
            self.hold(&chunk)?;
            let mut pending = std::mem::take(&mut self.pending);
            let end = self.scan(&pending, from, &mut dropped, &mut error);
            let events = pending.split_to(end).freeze();
            self.pending = pending;
            events
        };
        let events = if dropped.is_empty() { events } else { without(&events, &dropped) };
        Ok(Scanned { events, error })
    }

    fn hold(&mut self, bytes: &[u8]) -> Result<(), String> {
        if self.pending.len() + bytes.len() > MAX_EVENT_BYTES {
            return Err(format!("an event exceeded {MAX_EVENT_BYTES} bytes"));
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    /// Scans `buf[from..]`; returns the end of the last complete event in `buf`, noting the
    /// ranges of events to leave out. Only line ends matter, so it jumps between them with
    /// `memchr`.
    fn scan(
        &mut self,
        buf: &[u8],
        from: usize,
        dropped: &mut Vec<std::ops::Range<usize>>,
        error: &mut Option<Bytes>,
    ) -> usize {
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
                // Keep a CRLF whole when its LF is already here; one split across chunks
                // leaves a stray LF, which clients read as an empty line.
                complete = if byte == b'\r' && buf.get(i + 1) == Some(&b'\n') { i + 2 } else { i + 1 };
                if let Kind::Drop = self.inspect(&buf[event_start..i], error) {
                    dropped.push(event_start..complete);
                }
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

    fn inspect(&mut self, event: &[u8], error: &mut Option<Bytes>) -> Kind {
        let mut named_error = false;
        let mut data: Option<&[u8]> = None;
        for line in event.trim_ascii_start().split(|&b| b == b'\n' || b == b'\r') {
            if let Some(name) = line.strip_prefix(b"event:") {
                named_error = name.trim_ascii() == b"error";
            } else if let Some(value) = line.strip_prefix(b"data:") {
                // Multi-line data is rare in OpenAI streams; the first line decides.
                data.get_or_insert(value.strip_prefix(b" ").unwrap_or(value));
            }
        }
        let Some(data) = data else { return Kind::Keep };
        let trimmed = data.trim_ascii();
        if trimmed.starts_with(b"[DONE]") {
            self.done = true;
            return Kind::Keep;
        }
        if named_error || is_error_object(trimmed) {
            self.saw_error = true;
            let data = Bytes::copy_from_slice(trimmed);
            if !self.meaningful && self.early_error.is_none() {
                self.early_error = Some(data.clone());
            }
            error.get_or_insert(data);
            return Kind::Keep;
        }
        let mut usage_only = false;
        if memchr::memmem::rfind(trimmed, b"\"usage\"").is_some()
            && let Some(usage) = Usage::from_openai(trimmed)
        {
            self.usage = Some(usage);
            usage_only = has_no_choices(trimmed);
        }
        if usage_only {
            return if self.drop_usage_only { Kind::Drop } else { Kind::Keep };
        }
        if !self.meaningful && carries_meaning(trimmed) {
            self.meaningful = true;
        }
        Kind::Keep
    }
}

/// `{"error": …}`, allowing whitespace.
fn is_error_object(data: &[u8]) -> bool {
    data.strip_prefix(b"{").is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"error\""))
}

/// A chunk whose `choices` is empty (the usage chunk).
fn has_no_choices(data: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Choices {
        #[serde(default)]
        choices: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Choices>(data).is_ok_and(|c| c.choices.is_empty())
}

/// Whether a chunk says something: a finish reason, or a delta field other than `role` that
/// is neither null nor empty (content, tool calls, a refusal, reasoning, whatever comes next).
/// Read only until the first such chunk, so the parse costs nothing once a stream flows. A
/// chunk that cannot be read is passed on rather than held.
fn carries_meaning(data: &[u8]) -> bool {
    let Ok(chunk) = serde_json::from_slice::<Value>(data) else { return true };
    // An object without choices (a keep-alive `{}`) says nothing.
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else { return !chunk.is_object() };
    choices.iter().any(|choice| {
        let finished = choice.get("finish_reason").is_some_and(|r| !r.is_null());
        let said = choice
            .get("delta")
            .and_then(Value::as_object)
            .is_some_and(|delta| delta.iter().any(|(key, value)| key != "role" && !is_empty(value)));
        finished || said
    })
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// `events` without the byte ranges `dropped` (sorted, disjoint).
fn without(events: &Bytes, dropped: &[std::ops::Range<usize>]) -> Bytes {
    let mut out = BytesMut::with_capacity(events.len());
    let mut at = 0;
    for range in dropped {
        out.extend_from_slice(&events[at..range.start.min(events.len())]);
        at = range.end.min(events.len());
    }
    out.extend_from_slice(&events[at..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(scanner: &mut EventScanner, chunks: &[&str]) -> Vec<String> {
        chunks
            .iter()
            .map(|c| {
                let scanned = scanner.push(Bytes::copy_from_slice(c.as_bytes())).unwrap();
                String::from_utf8(scanned.events.to_vec()).unwrap()
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
                out.extend_from_slice(&scanner.push(Bytes::copy_from_slice(chunk)).unwrap().events);
                rest = tail;
            }
            // Whatever the chunking: every byte once, in order, and [DONE] noticed.
            assert_eq!(String::from_utf8(out).unwrap(), stream);
            assert!(scanner.done);
        }
    }

    #[test]
    fn reads_usage_however_it_is_spaced_and_drops_the_usage_chunk_when_asked() {
        let stream = [
            "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
            "data: {\"choices\": [], \"usage\": {\"prompt_tokens\": 9, \"completion_tokens\": 2, \"total_tokens\": 11}}\n\ndata: [DONE]\n\n",
        ];
        let mut kept = EventScanner::new(false);
        assert_eq!(feed(&mut kept, &stream).concat(), stream.concat());
        assert_eq!(kept.usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((9, 2)));
        let mut dropped = EventScanner::new(true);
        let out = feed(&mut dropped, &stream);
        assert_eq!(out[1], "data: [DONE]\n\n", "the usage chunk is left out, [DONE] kept");
        assert_eq!(dropped.usage.map(|u| u.completion_tokens), Some(2));
    }

    #[test]
    fn only_content_tool_calls_and_finish_reasons_are_meaningful() {
        for held in [
            ": OPENROUTER PROCESSING\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"finish_reason\":null}]}\n\n",
            "event: ping\ndata: {}\n\n",
        ] {
            let mut s = EventScanner::default();
            feed(&mut s, &[held]);
            assert!(!s.meaningful, "{held}");
        }
        for meaningful in [
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\"}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n",
            "data: not json\n\n",
        ] {
            let mut s = EventScanner::default();
            feed(&mut s, &[meaningful]);
            assert!(s.meaningful, "{meaningful}");
        }
    }

    #[test]
    fn an_error_before_any_content_is_early() {
        let mut s = EventScanner::default();
        feed(
            &mut s,
            &[
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\ndata: { \"error\": {\"message\":\"boom\"}}\n\n",
            ],
        );
        assert!(s.saw_error && !s.done);
        assert!(s.early_error.is_some());
        let mut late = EventScanner::default();
        let scanned = late
            .push(Bytes::from_static(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\nevent: error\ndata: {\"message\":\"x\"}\n\n"))
            .unwrap();
        assert!(late.saw_error && late.early_error.is_none() && scanned.error.is_some());
    }

    #[test]
    fn refuses_an_endless_event() {
        let mut s = EventScanner::default();
        let big = Bytes::from(vec![b'x'; MAX_EVENT_BYTES]);
        assert!(s.push(big).unwrap().events.is_empty());
        assert!(s.push(Bytes::from_static(b"y")).is_err());
    }

    #[test]
    fn error_event_is_an_openai_error_chunk() {
        let event = error_event("it broke", "upstream_error", "stream_interrupted");
        let text = std::str::from_utf8(&event).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(text.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        assert_eq!(json["error"]["message"], "it broke");
        assert_eq!(json["error"]["param"], serde_json::Value::Null);
        assert!(text.ends_with("\n\n"));
    }
}
