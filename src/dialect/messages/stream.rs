//! `chat.completion.chunk` stream → Anthropic's stream events.
//!
//! The first chunk opens the message (`message_start` with empty content, then one `ping`).
//! Reasoning deltas fill a `thinking` block, text deltas a `text` block, each tool call (by
//! its Chat `index`) a `tool_use` block whose `input_json_delta`s are the argument
//! fragments. Blocks are numbered from 0 in the order they open, and one is closed
//! (`content_block_stop`) before the next opens, as Anthropic streams them and as the SDKs'
//! accumulators (which index blocks by position) require. The finish reason is held until the
//! end, where `message_delta` carries it with the usage (Chat sends usage after the finish
//! reason), then `message_stop`.

use std::borrow::Cow;

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use super::response::{MessageUsage, message_id, stop_reason};
use crate::dialect::FromChat;
use crate::dialect::chat::{Chunk, ToolCallDelta, text};
use crate::usage::Usage;

// === events written ===

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: StartMessage<'a>,
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: (),
    stop_sequence: (),
    usage: MessageUsage,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: StartBlock<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock<'a> {
    Text { text: &'static str },
    Thinking { thinking: &'static str, signature: &'static str },
    ToolUse { id: &'a str, name: &'a str, input: Empty },
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaOut<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

#[derive(Serialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: MessageUsage,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

/// `event: <name>\ndata: <json>\n\n`.
fn event(out: &mut BytesMut, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Serializing plain structs and borrowed strings into memory cannot fail.
    let _ = serde_json::to_writer(out.writer(), data);
    out.extend_from_slice(b"\n\n");
}

/// The block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    /// A tool call, by its Chat `index`.
    Tool(u32),
}

/// Writes one Messages stream from a Chat stream.
pub(super) struct MessagesWriter {
    /// The model the client asked for, until a chunk names the upstream's.
    model: String,
    started: bool,
    open: Open,
    /// The index the next block gets.
    next_block: u32,
    /// Chat tool indices whose block has been opened (and maybe closed).
    tools_seen: Vec<u32>,
    finish: Option<String>,
    usage: Option<Usage>,
    ended: bool,
}

#[derive(Deserialize)]
struct RequestModel<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
}

impl MessagesWriter {
    /// A writer for the answer to `request` (read for its `model` only).
    pub(super) fn new(request: &[u8]) -> Self {
        let model = serde_json::from_slice::<RequestModel<'_>>(request)
            .ok()
            .and_then(|r| r.model)
            .map(Cow::into_owned)
            .unwrap_or_default();
        Self {
            model,
            started: false,
            open: Open::None,
            next_block: 0,
            tools_seen: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn start(&mut self, id: Option<&str>, model: Option<&str>, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        if let Some(model) = model.filter(|m| !m.is_empty()) {
            model.clone_into(&mut self.model);
        }
        let id = match id.filter(|i| !i.is_empty()) {
            Some(id) => message_id(id).into_owned(),
            None => format!("msg_{}", uuid::Uuid::new_v4().simple()),
        };
        let usage = self.usage.as_ref().map(MessageUsage::from_chat).unwrap_or_default();
        let message = StartMessage {
            id: &id,
            kind: "message",
            role: "assistant",
            model: &self.model,
            content: [],
            stop_reason: (),
            stop_sequence: (),
            usage: MessageUsage { output_tokens: 0, ..usage },
        };
        event(out, "message_start", &MessageStart { kind: "message_start", message });
        out.extend_from_slice(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
    }

    /// Closes the open block, if any.
    fn close(&mut self, out: &mut BytesMut) {
        if self.open == Open::None {
            return;
        }
        if self.open == Open::Thinking {
            // Anthropic ends every thinking block with its signature; there is none here.
            let delta = DeltaOut::Signature { signature: "" };
            event(
                out,
                "content_block_delta",
                &BlockDelta { kind: "content_block_delta", index: self.current(), delta },
            );
        }
        event(out, "content_block_stop", &BlockStop { kind: "content_block_stop", index: self.current() });
        self.open = Open::None;
    }

    /// The index of the open block (the last one opened).
    fn current(&self) -> u32 {
        self.next_block.saturating_sub(1)
    }

    fn open(&mut self, kind: Open, block: StartBlock<'_>, out: &mut BytesMut) {
        self.close(out);
        let index = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        event(
            out,
            "content_block_start",
            &BlockStart { kind: "content_block_start", index, content_block: block },
        );
        self.open = kind;
    }

    fn delta(&mut self, want: Open, delta: DeltaOut<'_>, out: &mut BytesMut) {
        if self.open != want {
            let block = match want {
                Open::Thinking => StartBlock::Thinking { thinking: "", signature: "" },
                _ => StartBlock::Text { text: "" },
            };
            self.open(want, block, out);
        }
        event(
            out,
            "content_block_delta",
            &BlockDelta { kind: "content_block_delta", index: self.current(), delta },
        );
    }

    fn tool(&mut self, call: &ToolCallDelta<'_>, position: usize, out: &mut BytesMut) {
        let index = call.index.unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
        let function = call.function.as_ref();
        if !self.tools_seen.contains(&index) {
            self.tools_seen.push(index);
            let id = match call.id.as_deref().filter(|i| !i.is_empty()) {
                Some(id) => Cow::Borrowed(id),
                None => Cow::Owned(format!("toolu_{}", uuid::Uuid::new_v4().simple())),
            };
            let name = function.and_then(|f| f.name.as_deref()).unwrap_or("");
            self.open(Open::Tool(index), StartBlock::ToolUse { id: &id, name, input: Empty {} }, out);
        }
        let arguments = function.and_then(|f| f.arguments.as_deref()).unwrap_or("");
        // A fragment for a call whose block is already closed (a server interleaving
        // parallel calls) cannot be placed in Anthropic's sequential blocks: it is dropped.
        if !arguments.is_empty() && self.open == Open::Tool(index) {
            let delta = DeltaOut::InputJson { partial_json: arguments };
            event(
                out,
                "content_block_delta",
                &BlockDelta { kind: "content_block_delta", index: self.current(), delta },
            );
        }
    }
}

impl FromChat for MessagesWriter {
    fn chunk(&mut self, data: &str, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        // A chunk that cannot be read carries nothing this dialect can say.
        let Ok(chunk) = serde_json::from_str::<Chunk<'_>>(data) else { return };
        if memchr::memmem::rfind(data.as_bytes(), b"\"usage\"").is_some()
            && let Some(usage) = Usage::from_openai(data.as_bytes())
        {
            self.usage = Some(usage);
        }
        self.start(text(chunk.id).as_deref(), chunk.model.as_deref(), out);
        // Messages has one answer: choices other than the first are not shown.
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(delta) = &choice.delta {
                // The first reasoning field present is the one read, text or not.
                let reasoning = delta.reasoning_content.or(delta.reasoning);
                if let Some(thinking) = text(reasoning)
                    && !thinking.is_empty()
                {
                    self.delta(Open::Thinking, DeltaOut::Thinking { thinking: &thinking }, out);
                }
                for text in [&delta.content, &delta.refusal].into_iter().flatten() {
                    if !text.is_empty() {
                        self.delta(Open::Text, DeltaOut::Text { text }, out);
                    }
                }
                for (position, call) in delta.tool_calls.iter().flatten().enumerate() {
                    self.tool(call, position, out);
                }
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish = Some(reason.to_string());
            }
        }
    }

    fn finish(&mut self, usage: Option<&Usage>, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if let Some(usage) = usage {
            self.usage = Some(*usage);
        }
        self.start(None, None, out);
        self.close(out);
        self.ended = true;
        let reason = stop_reason(self.finish.as_deref(), !self.tools_seen.is_empty());
        let usage = self.usage.as_ref().map(MessageUsage::from_chat).unwrap_or_default();
        let delta = StopDelta { stop_reason: reason, stop_sequence: () };
        event(out, "message_delta", &MessageDelta { kind: "message_delta", delta, usage });
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    }

    fn error(&mut self, data: &str, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ended = true;
        out.extend_from_slice(b"event: error\ndata: ");
        out.extend_from_slice(&super::error::stream_error(data));
        out.extend_from_slice(b"\n\n");
    }
}
