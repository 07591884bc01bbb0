//! Anthropic's streaming events → OpenAI `chat.completion.chunk`s.
//!
//! `message_start` gives the id, model and input usage and opens the choice with its role;
//! each `tool_use` block becomes one tool call whose `id` and `name` appear only in its first
//! delta; `message_delta` carries the stop reason and the (cumulative) output usage;
//! `message_stop` ends the stream with the usage chunk (if asked for) and `[DONE]`.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;

use super::request::PROVIDER;
use super::response::{AnthropicUsage, ErrorDetail, error_status, finish_reason, openai_error_type};
use crate::providers::ProviderError;
use crate::providers::translate::invalid_response;
use crate::providers::translate::response::{ChunkWriter, FinishReason, ToolCallOut};
use crate::providers::translate::stream::{Flow, SseEvent, Translate, upstream_error};

// One struct per event type, parsed after dispatching on the SSE `event:` name (which
// Anthropic always sends, equal to the data's `type`): an internally tagged enum would buffer
// every event before parsing it, and these are parsed once per token.

#[derive(Deserialize)]
struct MessageStart {
    message: StartMessage,
}

#[derive(Deserialize)]
struct StartMessage {
    id: String,
    model: String,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
struct BlockStart {
    index: u64,
    content_block: super::response::Block,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    index: u64,
    #[serde(borrow)]
    delta: Delta<'a>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageDeltaEvent {
    delta: MessageDelta,
    #[serde(default)]
    usage: AnthropicUsage,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorDetail,
}

/// For events that arrive without an `event:` name.
#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

fn parse<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, ProviderError> {
    serde_json::from_str(data).map_err(|e| invalid_response(PROVIDER, e))
}

/// What an Anthropic content block turned into.
enum BlockKind {
    Text,
    /// A tool call, with its OpenAI `tool_calls` index.
    Tool(u32),
    /// The `response_format` tool: its input is streamed as content.
    JsonAnswer,
    /// Thinking and anything newer: not shown.
    Hidden,
}

/// The translation state of one stream.
pub(super) struct AnthropicStream {
    json_tool: Option<String>,
    blocks: HashMap<u64, BlockKind>,
    next_tool: u32,
    usage: AnthropicUsage,
    finish: Option<FinishReason>,
}

impl AnthropicStream {
    pub(super) fn new(json_tool: Option<String>) -> Self {
        Self {
            json_tool,
            blocks: HashMap::new(),
            next_tool: 0,
            usage: AnthropicUsage::default(),
            finish: None,
        }
    }
}

impl Translate for AnthropicStream {
    fn event(&mut self, event: &SseEvent, out: &mut ChunkWriter) -> Result<Flow, ProviderError> {
        let kind = match event.event.as_str() {
            "" => Cow::Owned(parse::<TypeOnly>(&event.data)?.kind),
            name => Cow::Borrowed(name),
        };
        if !out.identified() && !matches!(&*kind, "message_start" | "ping" | "error") {
            return Err(ProviderError::InvalidResponse(format!(
                "the {PROVIDER} stream did not begin with message_start"
            )));
        }
        match &*kind {
            "message_start" => {
                let MessageStart { message } = parse(&event.data)?;
                out.identify(&message.id, &message.model);
                self.usage.update(message.usage);
                out.role(0);
            }
            "content_block_start" => {
                let BlockStart { index, content_block } = parse(&event.data)?;
                let kind = match content_block.kind.as_str() {
                    "text" => {
                        out.content(0, content_block.text.as_deref().unwrap_or(""));
                        BlockKind::Text
                    }
                    "tool_use" if self.json_tool.is_some() && content_block.name == self.json_tool => {
                        BlockKind::JsonAnswer
                    }
                    "tool_use" => {
                        let tool = self.next_tool;
                        self.next_tool += 1;
                        let call = ToolCallOut {
                            id: content_block.id.unwrap_or_default(),
                            name: content_block.name.unwrap_or_default(),
                            ..ToolCallOut::default()
                        };
                        out.tool_call_start(0, tool, &call);
                        BlockKind::Tool(tool)
                    }
                    _ => BlockKind::Hidden,
                };
                self.blocks.insert(index, kind);
            }
            "content_block_delta" => {
                let BlockDelta { index, delta } = parse(&event.data)?;
                match (self.blocks.get(&index), &*delta.kind) {
                    (Some(BlockKind::Text), "text_delta") => {
                        out.content(0, delta.text.as_deref().unwrap_or(""))
                    }
                    (Some(BlockKind::Tool(tool)), "input_json_delta") => {
                        out.tool_arguments(0, *tool, delta.partial_json.as_deref().unwrap_or(""));
                    }
                    (Some(BlockKind::JsonAnswer), "input_json_delta") => {
                        out.content(0, delta.partial_json.as_deref().unwrap_or(""))
                    }
                    // Thinking, signatures, citations: nothing a chat completion can carry.
                    _ => {}
                }
            }
            "message_delta" => {
                let MessageDeltaEvent { delta, usage } = parse(&event.data)?;
                self.usage.update(usage);
                let mut reason = finish_reason(delta.stop_reason.as_deref());
                if reason == FinishReason::ToolCalls && self.next_tool == 0 {
                    // Only the `response_format` tool was called: a plain answer.
                    reason = FinishReason::Stop;
                }
                self.finish = Some(reason);
                out.finish(0, reason);
            }
            "message_stop" => {
                if self.finish.is_none() {
                    out.finish(0, FinishReason::Stop);
                }
                out.usage(self.usage.to_openai());
                out.done();
                return Ok(Flow::End);
            }
            "ping" => out.ping(),
            "error" => {
                let ErrorEvent { error } = parse(&event.data)?;
                let message = format!("{PROVIDER} stream error ({}): {}", error.kind, error.message);
                return upstream_error(
                    out,
                    error_status(&error.kind),
                    &message,
                    openai_error_type(&error.kind),
                );
            }
            // content_block_stop, and event types added after this was written.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    fn end(&mut self, _out: &mut ChunkWriter) -> Result<(), ProviderError> {
        Err(ProviderError::InvalidResponse(format!("the {PROVIDER} stream ended before message_stop")))
    }

    fn usage(&self) -> Option<crate::usage::Usage> {
        let seen = self.usage.input_tokens.is_some() || self.usage.output_tokens.is_some();
        seen.then(|| self.usage.to_openai())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::translate::stream::run_translator;
    use serde_json::{Value, json};

    fn run(
        events: &[Value],
        json_tool: Option<&str>,
        include_usage: bool,
    ) -> (Vec<Value>, bool, Result<(), ProviderError>) {
        let mut translator = AnthropicStream::new(json_tool.map(str::to_string));
        let events: Vec<SseEvent> = events.iter().map(data).collect();
        run_translator(&mut translator, &events, include_usage)
    }

    /// An event as Anthropic frames it: named after its `type`.
    fn data(value: &Value) -> SseEvent {
        SseEvent { event: value["type"].as_str().unwrap_or("").to_string(), data: value.to_string() }
    }

    fn tool_stream() -> Vec<Value> {
        vec![
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                   "model": "claude-x", "stop_reason": null, "usage": {"input_tokens": 11, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "future_event_type", "whatever": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
            json!({"type": "message_stop"}),
        ]
    }

    #[test]
    fn tool_calls_stream_with_index_and_ids_once() {
        let (chunks, done, end) = run(&tool_stream(), None, true);
        assert!(done && end.is_ok());
        assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant"}), "no empty text part");
        assert!(chunks.iter().all(|c| c["id"] == "msg_1" && c["model"] == "claude-x"));
        let deltas: Vec<&Value> =
            chunks.iter().filter_map(|c| c["choices"].get(0)).map(|c| &c["delta"]).collect();
        assert_eq!(deltas.iter().filter(|d| d.get("role").is_some()).count(), 1);
        // Reassemble like the SDK does.
        let mut calls: Vec<(String, String, String)> = Vec::new();
        for d in &deltas {
            for call in d["tool_calls"].as_array().into_iter().flatten() {
                let i = call["index"].as_u64().unwrap() as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                calls[i].0 += call["id"].as_str().unwrap_or("");
                calls[i].1 += call["function"]["name"].as_str().unwrap_or("");
                calls[i].2 += call["function"]["arguments"].as_str().unwrap_or("");
            }
        }
        assert_eq!(calls[0], ("toolu_1".into(), "weather".into(), "{\"city\": \"Paris\"}".into()));
        assert_eq!(calls[1], ("toolu_2".into(), "time".into(), "{}".into()));
        let finish: Vec<_> =
            chunks.iter().filter_map(|c| c["choices"][0]["finish_reason"].as_str()).collect();
        assert_eq!(finish, ["tool_calls"]);
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["prompt_tokens"], 11);
        assert_eq!(usage["usage"]["completion_tokens"], 30);
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let events = tool_stream();
        let (_, done, end) = run(&events[..8], None, false);
        assert!(!done);
        assert!(matches!(end, Err(ProviderError::InvalidResponse(_))));
    }

    #[test]
    fn an_error_first_fails_over_and_midway_becomes_an_error_chunk() {
        let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let (_, _, end) = run(std::slice::from_ref(&error), None, false);
        assert!(matches!(end, Err(ProviderError::Status { status, .. }) if status.as_u16() == 529));
        let mut events = tool_stream()[..4].to_vec();
        events.push(error);
        let (chunks, done, end) = run(&events, None, false);
        assert!(end.is_ok() && !done);
        assert_eq!(chunks.last().unwrap()["error"]["type"], "server_error");
        assert!(chunks.last().unwrap()["error"]["message"].as_str().unwrap().contains("Overloaded"));
    }

    #[test]
    fn the_json_tool_streams_as_content_and_malformed_events_fail() {
        let events = vec![
            json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "answer", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"ok\":"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "true}"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
            json!({"type": "message_stop"}),
        ];
        let (chunks, done, _) = run(&events, Some("answer"), false);
        assert!(done);
        let text: String =
            chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "{\"ok\":true}");
        assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "stop");

        let (_, _, end) = run(&[json!({"type": "content_block_delta", "index": 0})], None, false);
        assert!(matches!(end, Err(ProviderError::InvalidResponse(_))));
        let nameless = SseEvent { event: String::new(), data: tool_stream()[0].to_string() };
        let mut out = ChunkWriter::new(false);
        assert!(AnthropicStream::new(None).event(&nameless, &mut out).is_ok(), "the type is read from data");
        let (_, _, end) = run(&[json!({"type": "content_block_stop", "index": 0})], None, false);
        assert!(matches!(end, Err(ProviderError::InvalidResponse(_))), "no message_start first");
    }
}
