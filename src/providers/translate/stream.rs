//! Upstream event streams in, OpenAI chunks out: an SSE decoder (WHATWG rules, any chunking)
//! and the loop that feeds its events to a provider's [`Translate`] implementation.

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::response::ChunkWriter;
use crate::providers::{Frame, Frames, ProviderError};
use crate::sse::MAX_EVENT_BYTES;
use crate::usage::Usage;

/// One server-sent event: its `event:` name (empty when absent) and its `data:` lines joined.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Splits bytes into events, holding back an unfinished line across chunks.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a leading `\n` belongs to that line end.
    skip_lf: bool,
    current: SseEvent,
    has_data: bool,
    /// Where the last event boundary (a blank line) of the last chunk pushed ends in it.
    boundary: Option<usize>,
    /// The last line ended was blank, so a `\n` held back by `skip_lf` belongs to a boundary.
    blank: bool,
}

impl SseDecoder {
    /// Feeds one chunk, appending every event it completes to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        let len = chunk.len();
        self.boundary = None;
        if self.skip_lf && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
            if self.blank {
                self.boundary = Some(1);
            }
        }
        self.skip_lf = false;
        while let Some(end) = memchr::memchr2(b'\n', b'\r', chunk) {
            self.line.extend_from_slice(&chunk[..end]);
            let crlf = chunk[end] == b'\r';
            chunk = &chunk[end + 1..];
            if crlf {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            self.blank = line.is_empty();
            if self.blank {
                self.boundary = Some(len - chunk.len());
            }
            self.line_done(&line, out)?;
            self.line = line;
            self.line.clear();
        }
        self.line.extend_from_slice(chunk);
        if self.line.len() + self.current.data.len() > MAX_EVENT_BYTES {
            return Err(ProviderError::InvalidResponse(format!("an event exceeded {MAX_EVENT_BYTES} bytes")));
        }
        Ok(())
    }

    /// How many bytes of the chunk last pushed end with its last event boundary (a blank
    /// line, its line end included), if it had one: for relays that forward whole events
    /// exactly as received while reading them through this decoder.
    pub fn last_boundary(&self) -> Option<usize> {
        self.boundary
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), ProviderError> {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.current));
            }
            self.current = SseEvent::default();
            self.has_data = false;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => (&line[..i], line[i + 1..].strip_prefix(b" ").unwrap_or(&line[i + 1..])),
            None => (line, &b""[..]),
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| ProviderError::InvalidResponse("the event stream is not UTF-8".to_string()))?;
        match field {
            b"event" => value.clone_into(&mut self.current.event),
            b"data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
                if self.current.data.len() > MAX_EVENT_BYTES {
                    return Err(ProviderError::InvalidResponse(format!(
                        "an event exceeded {MAX_EVENT_BYTES} bytes"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// What a translator wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep reading.
    Continue,
    /// The stream is complete (or ended with an error event); stop reading upstream.
    End,
}

/// A provider's stream translation: upstream events in, OpenAI chunks written to `out`.
pub(crate) trait Translate: Send + 'static {
    /// Handles one upstream event. An `Err` before anything was written lets the router fail
    /// over; after that, the caller turns it into the stream's error event.
    fn event(&mut self, event: &SseEvent, out: &mut ChunkWriter) -> Result<Flow, ProviderError>;

    /// The upstream closed the stream. Writes the end (`[DONE]`) if the stream was complete,
    /// else says why it is not.
    fn end(&mut self, out: &mut ChunkWriter) -> Result<(), ProviderError>;

    /// The usage the upstream has reported so far, whether or not the client sees it.
    fn usage(&self) -> Option<Usage>;
}

/// An error event from the upstream. Before the stream said anything the attempt fails with
/// `status` (the provider's own for that error), so the router can fail over, and with the
/// error in OpenAI's envelope as its body, relayed if it is the client's fault; after that,
/// one OpenAI error chunk ends the stream.
pub(crate) fn upstream_error(
    out: &mut ChunkWriter,
    status: u16,
    message: &str,
    openai_type: &str,
) -> Result<Flow, ProviderError> {
    if !out.meaningful {
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let envelope = crate::api::ErrorEnvelope {
            error: crate::api::ErrorBody { message, kind: openai_type, param: None, code: None },
        };
        return Err(ProviderError::Status {
            status,
            retry_after: None,
            content_type: Some(http::HeaderValue::from_static("application/json")),
            body: envelope.to_bytes(),
        });
    }
    out.error(message, openai_type);
    Ok(Flow::End)
}

struct Pump<T> {
    upstream: BoxStream<'static, Result<Bytes, ProviderError>>,
    decoder: SseDecoder,
    translator: T,
    out: ChunkWriter,
    events: Vec<SseEvent>,
    /// To report after the bytes already written are delivered.
    failure: Option<ProviderError>,
    finished: bool,
}

/// Translates an upstream event stream into OpenAI-framed frames, one per upstream chunk
/// that produced anything. Upstream failures pass through as errors; the relay
/// (`server::relay`) turns those into the client's error event.
pub(crate) fn translate<T: Translate>(
    upstream: BoxStream<'static, Result<Bytes, ProviderError>>,
    translator: T,
    out: ChunkWriter,
) -> Frames {
    let pump = Pump {
        upstream,
        decoder: SseDecoder::default(),
        translator,
        out,
        events: Vec::new(),
        failure: None,
        finished: false,
    };
    futures_util::stream::unfold(pump, |mut pump| async move {
        let item = pump.next().await?;
        Some((item, pump))
    })
    .boxed()
}

impl<T: Translate> Pump<T> {
    async fn next(&mut self) -> Option<Result<Frame, ProviderError>> {
        loop {
            if let Some(failure) = self.failure.take() {
                self.finished = true;
                return Some(Err(failure));
            }
            if self.finished {
                return None;
            }
            match self.upstream.next().await {
                Some(Ok(chunk)) => {
                    if let Err(error) = self.feed(&chunk) {
                        self.failure = Some(error);
                    }
                }
                Some(Err(error)) => self.failure = Some(error),
                None => {
                    self.finished = true;
                    if let Err(error) = self.translator.end(&mut self.out) {
                        self.failure = Some(error);
                    }
                }
            }
            let bytes = self.out.take();
            if !bytes.is_empty() {
                return Some(Ok(Frame {
                    bytes,
                    meaningful: self.out.meaningful,
                    done: self.out.finished,
                    failed: self.out.errored && !self.out.finished,
                    usage: self.translator.usage(),
                }));
            }
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<(), ProviderError> {
        self.decoder.push(chunk, &mut self.events)?;
        for event in self.events.drain(..) {
            if self.translator.event(&event, &mut self.out)? == Flow::End {
                self.finished = true;
                break;
            }
        }
        Ok(())
    }
}

/// Decodes and translates a whole recorded stream fed in `piece`-byte chunks; returns the
/// bytes written. For benchmarks (`benches/translate.rs`), through each adapter's `bench`.
pub(crate) fn translate_recorded(
    translator: &mut impl Translate,
    sse: &[u8],
    piece: usize,
    include_usage: bool,
) -> usize {
    let mut decoder = SseDecoder::default();
    let mut out = ChunkWriter::new(include_usage);
    let mut events = Vec::new();
    let mut written = 0;
    for chunk in sse.chunks(piece.max(1)) {
        if decoder.push(chunk, &mut events).is_err() {
            return written;
        }
        for event in events.drain(..) {
            if !matches!(translator.event(&event, &mut out), Ok(Flow::Continue)) {
                return written + out.take().len();
            }
        }
        written += out.take().len();
    }
    let _ = translator.end(&mut out);
    written + out.take().len()
}

/// Drives a translator the way the pump does, for the adapters' unit tests.
#[cfg(test)]
pub(crate) fn run_translator(
    translator: &mut impl Translate,
    events: &[SseEvent],
    include_usage: bool,
) -> (Vec<serde_json::Value>, bool, Result<(), ProviderError>) {
    let mut out = ChunkWriter::new(include_usage);
    let mut end = None;
    for event in events {
        match translator.event(event, &mut out) {
            Ok(Flow::Continue) => {}
            Ok(Flow::End) => {
                end = Some(Ok(()));
                break;
            }
            Err(err) => return (Vec::new(), false, Err(err)),
        }
    }
    let end = end.unwrap_or_else(|| translator.end(&mut out));
    let bytes = out.take();
    let text = std::str::from_utf8(&bytes).unwrap_or_default();
    let chunks = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("every chunk the writer wrote is JSON"))
        .collect();
    (chunks, text.ends_with("data: [DONE]\n\n"), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn decodes_names_data_and_comments_across_any_chunking() {
        let text = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: ping\n\nevent: x\ndata: line1\ndata:line2\n\ndata: {}\r\r";
        let expected = vec![
            SseEvent { event: "message_start".into(), data: "{\"a\":1}".into() },
            SseEvent { event: "x".into(), data: "line1\nline2".into() },
            SseEvent { event: String::new(), data: "{}".into() },
        ];
        assert_eq!(decode_all(&[text]), expected);
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let mut chunks = Vec::new();
            let mut rest = &text[..];
            while !rest.is_empty() {
                let (head, tail) = rest.split_at(rng.usize(1..=rest.len().min(7)));
                chunks.push(head);
                rest = tail;
            }
            assert_eq!(decode_all(&chunks), expected);
        }
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_emitted() {
        assert!(decode_all(&[b"data: {\"partial\":true}\n"]).is_empty());
    }

    /// Every fixture (and OpenAI requests), cut short and with bytes flipped, through both
    /// adapters' request, answer and stream translation: errors are fine, panics are not.
    #[test]
    fn mangled_upstream_payloads_never_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut rng = fastrand::Rng::with_seed(11);
        for provider in ["anthropic", "gemini", "openai"] {
            for entry in std::fs::read_dir(format!("{dir}/{provider}")).unwrap() {
                let original = std::fs::read(entry.unwrap().path()).unwrap();
                if provider == "openai" {
                    assert!(crate::providers::anthropic::bench::request(&original, true) > 0);
                    assert!(crate::providers::gemini::bench::request(&original, true) > 0);
                }
                for round in 0..200 {
                    let mut bytes = original.clone();
                    bytes.truncate(rng.usize(0..=bytes.len()));
                    for _ in 0..round % 4 {
                        if !bytes.is_empty() {
                            let at = rng.usize(..bytes.len());
                            let noise = b"{}[]\":,0a\n";
                            bytes[at] = noise[rng.usize(..noise.len())];
                        }
                    }
                    let piece = rng.usize(1..40);
                    crate::providers::anthropic::bench::request(&bytes, round % 2 == 0);
                    crate::providers::gemini::bench::request(&bytes, round % 2 == 0);
                    match provider {
                        "anthropic" => {
                            crate::providers::anthropic::bench::response(&bytes);
                            crate::providers::anthropic::bench::stream(&bytes, piece);
                        }
                        _ => {
                            crate::providers::gemini::bench::response(&bytes);
                            crate::providers::gemini::bench::stream(&bytes, piece);
                        }
                    }
                }
            }
        }
    }
}
