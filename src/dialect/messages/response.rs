//! `chat.completion` → Anthropic `message`.
//!
//! The first choice's reasoning (`reasoning_content`, or `reasoning` as OpenRouter and vLLM
//! name it) becomes a `thinking` block with an empty signature (no one can sign it), its text
//! (or refusal) a `text` block, each tool call a `tool_use` block. `finish_reason` becomes
//! `stop_reason`; usage is split as Anthropic splits it: `input_tokens` are the uncached
//! ones.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::dialect::chat::{Completion, text};
use crate::providers::ProviderError;
use crate::usage::Usage;

#[derive(Deserialize)]
struct RequestModel<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
}

/// An Anthropic `message`, written straight from borrowed fields.
#[derive(Serialize)]
pub(super) struct Message<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: Vec<Block<'a>>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: MessageUsage,
}

/// A content block of an answer.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Thinking { thinking: Cow<'a, str>, signature: &'static str },
    Text { text: Cow<'a, str> },
    ToolUse { id: Cow<'a, str>, name: Cow<'a, str>, input: Input<'a> },
}

/// A tool call's input: the arguments object as sent, or `{}` when they are not one.
pub(super) enum Input<'a> {
    Raw(&'a RawValue),
    Owned(Box<RawValue>),
    Empty,
}

impl Serialize for Input<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Raw(raw) => raw.serialize(serializer),
            Self::Owned(raw) => raw.serialize(serializer),
            Self::Empty => serde_json::Map::new().serialize(serializer),
        }
    }
}

impl<'a> Input<'a> {
    /// Chat's `arguments` string, if it holds a JSON object; anything else is `{}`, since
    /// Anthropic's `input` must be an object.
    pub fn parse(arguments: &'a str) -> Self {
        match serde_json::from_str::<&RawValue>(arguments) {
            Ok(raw) if raw.get().trim_start().starts_with('{') => Self::Raw(raw),
            // Escaped strings cannot be borrowed; such arguments are parsed into their own.
            _ => match serde_json::from_str::<Box<RawValue>>(arguments) {
                Ok(raw) if raw.get().trim_start().starts_with('{') => Self::Owned(raw),
                _ => Self::Empty,
            },
        }
    }
}

/// `usage` of a message (and of `message_delta`).
#[derive(Serialize, Default, Clone, Copy)]
pub(super) struct MessageUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl MessageUsage {
    /// Chat's counts in Anthropic's terms: input excludes cache reads and writes.
    pub fn from_chat(usage: &Usage) -> Self {
        let read = usage.cached_tokens.unwrap_or(0);
        let written = usage.cache_write_tokens.unwrap_or(0);
        Self {
            input_tokens: usage.prompt_tokens.saturating_sub(read).saturating_sub(written),
            output_tokens: usage.completion_tokens,
            cache_creation_input_tokens: written,
            cache_read_input_tokens: read,
        }
    }
}

/// `finish_reason` → `stop_reason`. Tool calls with another finish reason (some
/// OpenAI-compatible servers say `stop`) are still `tool_use`, which tool loops wait for.
pub(super) fn stop_reason(finish: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// An Anthropic message id for a Chat id: `msg_` prefixed, unless it already is.
pub(super) fn message_id(chat_id: &str) -> Cow<'_, str> {
    if chat_id.starts_with("msg_") { Cow::Borrowed(chat_id) } else { Cow::Owned(format!("msg_{chat_id}")) }
}

/// A reasoning field's text, when it is a non-empty string.
fn reasoning_text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    text(raw).filter(|t| !t.is_empty())
}

/// A `chat.completion` body → the Anthropic `message` answering `request`.
pub(super) fn answer(request: &[u8], chat: &[u8]) -> Result<Bytes, ProviderError> {
    let completion: Completion<'_> = serde_json::from_slice(chat)
        .map_err(|e| ProviderError::InvalidResponse(format!("unreadable chat completion: {e}")))?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(ProviderError::InvalidResponse("the chat completion has no choices".to_string()));
    };
    let request_model = serde_json::from_slice::<RequestModel<'_>>(request).ok().and_then(|r| r.model);
    let model = completion.model.or(request_model).unwrap_or(Cow::Borrowed(""));
    let chat_id = text(completion.id);
    let id = message_id(chat_id.as_deref().unwrap_or("proxy"));
    let mut content = Vec::new();
    let mut has_tool_calls = false;
    if let Some(message) = choice.message {
        let reasoning =
            reasoning_text(message.reasoning_content).or_else(|| reasoning_text(message.reasoning));
        if let Some(thinking) = reasoning {
            content.push(Block::Thinking { thinking, signature: "" });
        }
        let text = message.content.filter(|t| !t.is_empty()).or(message.refusal.filter(|t| !t.is_empty()));
        if let Some(text) = text {
            content.push(Block::Text { text });
        }
        for (n, call) in message.tool_calls.into_iter().enumerate() {
            has_tool_calls = true;
            let input = match &call.function.arguments {
                // Borrowing from the body needs the arguments borrowed too; escaped ones
                // (the usual case) are parsed into their own value.
                Some(Cow::Borrowed(arguments)) => Input::parse(arguments),
                Some(Cow::Owned(arguments)) => owned(Input::parse(arguments)),
                None => Input::Empty,
            };
            content.push(Block::ToolUse {
                id: call.id.unwrap_or_else(|| Cow::Owned(format!("toolu_{n}"))),
                name: call.function.name.unwrap_or_default(),
                input,
            });
        }
    }
    let usage =
        crate::usage::Usage::from_openai(chat).map(|u| MessageUsage::from_chat(&u)).unwrap_or_default();
    let message = Message {
        id: &id,
        kind: "message",
        role: "assistant",
        model: &model,
        content,
        stop_reason: Some(stop_reason(choice.finish_reason.as_deref(), has_tool_calls)),
        stop_sequence: None,
        usage,
    };
    // Serializing borrowed strings and raw JSON into memory cannot fail.
    Ok(serde_json::to_vec(&message).map(Bytes::from).unwrap_or_default())
}

/// An input that borrows nothing (lifetime-free variants only).
fn owned<'b>(input: Input<'_>) -> Input<'b> {
    match input {
        Input::Raw(raw) => Input::Owned(raw.to_owned()),
        Input::Owned(raw) => Input::Owned(raw),
        Input::Empty => Input::Empty,
    }
}
