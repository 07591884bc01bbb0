//! A Responses API event stream from OpenAI or Azure as [`Frame`]s: whole events, bytes
//! untouched, read (through [`SseDecoder`]) for meaning, the terminal event, errors and usage.
//!
//! The same commit rule as Chat streams: the preamble (`response.created`,
//! `response.in_progress`, `response.queued`, comments, an empty message or reasoning item
//! opening) is held; any other event — a delta of text, reasoning or any tool's input, a tool
//! call item, a terminal event — makes the stream meaningful. An `error` event or
//! `response.failed` before that fails the attempt with the status its code stands for, so
//! the router can fail over.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::StatusCode;
use http::header::HeaderValue;
use serde::Deserialize;

use crate::api::{ErrorBody, ErrorEnvelope};
use crate::providers::translate::stream::{SseDecoder, SseEvent};
use crate::providers::{Frame, Frames, ProviderError};
use crate::sse::MAX_EVENT_BYTES;
use crate::usage::Usage;

/// Frames of a raw Responses SSE stream, bytes untouched; read for meaning/terminal/error/usage.
pub(crate) fn frames(raw: BoxStream<'static, Result<Bytes, ProviderError>>) -> Frames {
    futures_util::stream::unfold((raw, Reader::default()), |(mut raw, mut reader)| async move {
        if reader.over {
            return None;
        }
        loop {
            let chunk = match raw.next().await? {
                Ok(chunk) => chunk,
                Err(error) => {
                    reader.over = true;
                    return Some((Err(error), (raw, reader)));
                }
            };
            match reader.push(chunk) {
                Ok(Some(frame)) => return Some((Ok(frame), (raw, reader))),
                Ok(None) => {}
                Err(error) => {
                    reader.over = true;
                    return Some((Err(error), (raw, reader)));
                }
            }
        }
    })
    .boxed()
}

/// The usage of a complete `response` JSON object (input_tokens, output_tokens,
/// input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens).
pub(crate) fn usage(json: &[u8]) -> Option<Usage> {
    #[derive(Deserialize)]
    struct WithUsage {
        #[serde(default)]
        usage: Option<ResponsesUsage>,
    }
    serde_json::from_slice::<WithUsage>(json).ok()?.usage.map(ResponsesUsage::into_usage)
}

#[derive(Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl ResponsesUsage {
    fn into_usage(self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens,
            completion_tokens: self.output_tokens,
            cached_tokens: self.input_tokens_details.as_ref().and_then(|d| d.cached_tokens),
            cache_write_tokens: self
                .input_tokens_details
                .and_then(|d| d.cache_write_tokens)
                .filter(|n| *n > 0),
            reasoning_tokens: self.output_tokens_details.and_then(|d| d.reasoning_tokens),
        }
    }
}

/// The stream read so far.
#[derive(Default)]
struct Reader {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    /// Bytes after the last whole event, held until their event ends.
    pending: BytesMut,
    meaningful: bool,
    done: bool,
    over: bool,
    usage: Option<Usage>,
}

impl Reader {
    /// Takes a chunk; returns a frame when it completed at least one event.
    fn push(&mut self, chunk: Bytes) -> Result<Option<Frame>, ProviderError> {
        self.decoder.push(&chunk, &mut self.events)?;
        let mut failed = false;
        for event in std::mem::take(&mut self.events) {
            match self.read(&event)? {
                Seen::Nothing => {}
                Seen::End => {
                    self.done = true;
                    break;
                }
                Seen::Failed => {
                    failed = true;
                    break;
                }
            }
        }
        let Some(boundary) = self.decoder.last_boundary() else {
            if self.pending.len() + chunk.len() > MAX_EVENT_BYTES {
                return Err(ProviderError::InvalidResponse(format!(
                    "an event exceeded {MAX_EVENT_BYTES} bytes"
                )));
            }
            self.pending.extend_from_slice(&chunk);
            return Ok(None);
        };
        // Whole events only: the client never sees half an event, even if the stream dies.
        let bytes = if self.pending.is_empty() {
            chunk.slice(..boundary)
        } else {
            self.pending.extend_from_slice(&chunk[..boundary]);
            self.pending.split().freeze()
        };
        self.pending.extend_from_slice(&chunk[boundary..]);
        self.over = self.done || failed;
        Ok(Some(Frame { bytes, meaningful: self.meaningful, done: self.done, failed, usage: self.usage }))
    }

    fn read(&mut self, event: &SseEvent) -> Result<Seen, ProviderError> {
        // The `event:` name is the type on OpenAI's and Azure's streams, so the per-token
        // deltas are known without parsing their JSON.
        let parsed;
        let kind = if event.event.is_empty() {
            parsed = serde_json::from_str::<Head<'_>>(&event.data).ok();
            parsed.as_ref().and_then(|h| h.kind.as_deref()).unwrap_or("")
        } else {
            event.event.as_str()
        };
        match kind {
            // The preamble, and the opening of an item that has said nothing yet.
            "response.created"
            | "response.in_progress"
            | "response.queued"
            | "response.content_part.added" => {}
            "response.output_item.added" if !self.meaningful => {
                let added = serde_json::from_str::<ItemAdded<'_>>(&event.data).ok();
                let kind = added.and_then(|a| a.item).and_then(|i| i.kind);
                // Any other item (a function, custom tool, MCP or hosted tool call) is the
                // answer under way.
                if !matches!(kind.as_deref(), Some("message" | "reasoning")) {
                    self.meaningful = true;
                }
            }
            "response.completed" | "response.incomplete" => {
                self.meaningful = true;
                self.usage = usage_of_event(&event.data).or(self.usage);
                return Ok(Seen::End);
            }
            "response.failed" | "error" => {
                self.usage = usage_of_event(&event.data).or(self.usage);
                if !self.meaningful {
                    return Err(early_failure(&event.data));
                }
                return Ok(Seen::Failed);
            }
            // Every other event is output under way: text, refusal, reasoning and tool-input
            // deltas of any tool kind, partial images, an item done. A model may think for
            // minutes before its first word; that stream is alive and answering.
            _ => self.meaningful = true,
        }
        Ok(Seen::Nothing)
    }
}

enum Seen {
    Nothing,
    End,
    Failed,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ItemAdded<'a> {
    #[serde(default, borrow)]
    item: Option<Head<'a>>,
}

fn usage_of_event(data: &str) -> Option<Usage> {
    #[derive(Deserialize)]
    struct Terminal {
        #[serde(default)]
        response: Option<WithUsage>,
    }
    #[derive(Deserialize)]
    struct WithUsage {
        #[serde(default)]
        usage: Option<ResponsesUsage>,
    }
    serde_json::from_str::<Terminal>(data).ok()?.response?.usage.map(ResponsesUsage::into_usage)
}

/// An `error` event (`{type, code, message, param}`, or the same nested under `error`) or a
/// `response.failed` (`response.error.{code, message}`).
#[derive(Deserialize, Default)]
struct Failure<'a> {
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    param: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<Box<Failure<'a>>>,
    #[serde(default, borrow)]
    response: Option<Box<Failure<'a>>>,
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
}

impl<'a> Failure<'a> {
    /// The innermost object that says what failed.
    fn detail(mut self) -> Failure<'a> {
        match (self.response.take(), self.error.take()) {
            (Some(response), _) => response.detail(),
            (None, Some(error)) => error.detail(),
            (None, None) => self,
        }
    }
}

/// A failure before anything meaningful, as the status its code stands for and OpenAI's
/// error envelope as the body (relayed if it is the client's fault; `insufficient_quota`
/// kept in it, which the router reads as a failure, not a pause).
fn early_failure(data: &str) -> ProviderError {
    let failure = serde_json::from_str::<Failure<'_>>(data).unwrap_or_default().detail();
    let code = failure.code.as_deref().unwrap_or("");
    let kind = failure.kind.as_deref().filter(|k| *k != "error").unwrap_or("");
    let (status, default_kind) = match (code, kind) {
        ("rate_limit_exceeded", _) | (_, "rate_limit_exceeded" | "rate_limit_error") => {
            (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded")
        }
        ("insufficient_quota", _) | (_, "insufficient_quota") => {
            (StatusCode::TOO_MANY_REQUESTS, "insufficient_quota")
        }
        ("invalid_request_error" | "invalid_prompt", _) | (_, "invalid_request_error" | "invalid_prompt") => {
            (StatusCode::BAD_REQUEST, "invalid_request_error")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    let message =
        failure.message.as_deref().filter(|m| !m.is_empty()).unwrap_or("The upstream response failed");
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            message,
            kind: if kind.is_empty() { default_kind } else { kind },
            param: failure.param.as_deref(),
            code: Some(if code.is_empty() { default_kind } else { code }),
        },
    };
    ProviderError::Status {
        status,
        retry_after: None,
        content_type: Some(HeaderValue::from_static("application/json")),
        body: envelope.to_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(chunks: &[&str]) -> Vec<Result<Frame, ProviderError>> {
        let chunks: Vec<Result<Bytes, ProviderError>> =
            chunks.iter().map(|c| Ok(Bytes::copy_from_slice(c.as_bytes()))).collect();
        let raw = futures_util::stream::iter(chunks).boxed();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(frames(raw).collect())
    }

    const CREATED: &str = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}\n\n";
    const DELTA: &str = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\",\"logprobs\":[]}\n\n";
    const COMPLETED: &str = "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"usage\":{\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":4},\"output_tokens\":7,\"output_tokens_details\":{\"reasoning_tokens\":2},\"total_tokens\":19}}}\n\n";

    #[test]
    fn the_preamble_is_held_and_the_bytes_pass_untouched_however_they_are_cut() {
        let stream = format!(": keep-alive\n\n{CREATED}{DELTA}{COMPLETED}");
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..200 {
            let mut chunks = Vec::new();
            let mut rest = stream.as_str();
            while !rest.is_empty() {
                let mut at = rng.usize(1..=rest.len().min(40));
                while !rest.is_char_boundary(at) {
                    at += 1;
                }
                chunks.push(&rest[..at]);
                rest = &rest[at..];
            }
            let frames: Vec<Frame> = frames_of(&chunks).into_iter().map(Result::unwrap).collect();
            let bytes: Vec<u8> = frames.iter().flat_map(|f| f.bytes.to_vec()).collect();
            assert_eq!(String::from_utf8(bytes).unwrap(), stream);
            for frame in &frames {
                let text = std::str::from_utf8(&frame.bytes).unwrap();
                assert!(text.ends_with("\n\n"), "whole events only: {text:?}");
            }
            let first_meaningful = frames.iter().position(|f| f.meaningful).unwrap();
            let held: String =
                frames[..first_meaningful].iter().map(|f| std::str::from_utf8(&f.bytes).unwrap()).collect();
            assert!(!held.contains("output_text.delta"));
            let last = frames.last().unwrap();
            assert!(last.done && !last.failed);
            let usage = last.usage.unwrap();
            assert_eq!((usage.prompt_tokens, usage.completion_tokens), (12, 7));
            assert_eq!((usage.cached_tokens, usage.reasoning_tokens), (Some(4), Some(2)));
        }
    }

    #[test]
    fn a_function_call_item_is_meaningful_a_message_item_is_not() {
        let message = "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"message\"}}\n\n";
        let call =
            "data: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"function_call\"}}\n\n";
        let frames = frames_of(&[CREATED, message, call]);
        let flags: Vec<bool> = frames.iter().map(|f| f.as_ref().unwrap().meaningful).collect();
        assert_eq!(flags, [false, false, true]);
    }

    #[test]
    fn a_custom_tool_call_or_its_input_commits_the_stream() {
        // Codex's apply_patch is a custom tool: its input streams as its own deltas.
        for event in [
            "data: {\"type\":\"response.output_item.added\",\"item\":{\"type\":\"custom_tool_call\"}}\n\n",
            "event: response.custom_tool_call_input.delta\ndata: {\"type\":\"response.custom_tool_call_input.delta\",\"delta\":\"*** Begin\"}\n\n",
        ] {
            let frames = frames_of(&[CREATED, event]);
            let flags: Vec<bool> = frames.iter().map(|f| f.as_ref().unwrap().meaningful).collect();
            assert_eq!(flags, [false, true], "{event}");
        }
    }

    fn status_and_body(data: &str) -> (u16, serde_json::Value) {
        let event = format!("event: error\ndata: {data}\n\n");
        let frames = frames_of(&[CREATED, &event]);
        assert_eq!(frames.len(), 2);
        assert!(!frames[0].as_ref().unwrap().meaningful, "the preamble is held");
        match &frames[1] {
            Err(ProviderError::Status { status, body, .. }) => {
                (status.as_u16(), serde_json::from_slice(body).unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_early_error_fails_the_attempt_with_its_status() {
        let (status, body) = status_and_body(
            r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null}"#,
        );
        assert_eq!(status, 429);
        assert_eq!(
            body,
            serde_json::json!({"error":{"message":"slow down","type":"rate_limit_exceeded","code":"rate_limit_exceeded","param":null}})
        );
        let (status, body) = status_and_body(
            r#"{"type":"error","error":{"type":"insufficient_quota","code":"insufficient_quota","message":"no money"}}"#,
        );
        assert_eq!((status, body["error"]["code"].as_str()), (429, Some("insufficient_quota")));
        let (status, _) = status_and_body(r#"{"type":"error","code":"invalid_prompt","message":"no"}"#);
        assert_eq!(status, 400);
        let (status, body) = status_and_body(
            r#"{"type":"response.failed","response":{"id":"r","status":"failed","error":{"code":"server_error","message":"boom"}}}"#,
        );
        assert_eq!((status, body["error"]["message"].as_str()), (500, Some("boom")));
        let (status, body) = status_and_body("not json");
        assert_eq!((status, body["error"]["type"].as_str()), (500, Some("server_error")));
    }

    #[test]
    fn an_error_after_content_ends_the_stream_as_failed() {
        let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\",\"message\":\"x\"}}}\n\n";
        let frames = frames_of(&[CREATED, DELTA, failed, COMPLETED]);
        let frames: Vec<Frame> = frames.into_iter().map(Result::unwrap).collect();
        assert_eq!(frames.len(), 3, "nothing is read after the failure");
        assert!(frames[2].failed && !frames[2].done && frames[2].meaningful);
    }

    #[test]
    fn usage_of_a_whole_response() {
        let body = br#"{"id":"resp_1","object":"response","usage":{"input_tokens":3,"input_tokens_details":{"cached_tokens":1},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":8}}"#;
        let got = usage(body).unwrap();
        assert_eq!((got.prompt_tokens, got.completion_tokens, got.cached_tokens), (3, 5, Some(1)));
        assert!(usage(br#"{"usage":null}"#).is_none());
        assert!(usage(b"[").is_none());
    }

    #[test]
    fn an_endless_event_is_refused() {
        let big = "x".repeat(MAX_EVENT_BYTES / 2 + 1);
        let frames = frames_of(&[": ", &big, &big]);
        assert!(matches!(frames.last(), Some(Err(ProviderError::InvalidResponse(_)))));
    }
}
