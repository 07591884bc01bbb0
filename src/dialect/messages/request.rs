//! Anthropic Messages request → Chat Completions request.
//!
//! What maps to what:
//! - `system` → a leading system message; `messages` → user/assistant messages (a
//!   mid-conversation `system` turn → a system message there), a user
//!   turn's `tool_result` blocks → `tool` messages placed before the rest of that turn.
//! - `tools` (custom ones) → function tools; `tool_choice` → `tool_choice` and
//!   `parallel_tool_calls`.
//! - `max_tokens` → `max_completion_tokens` (what OpenAI's reasoning models require and the
//!   other adapters read), `stop_sequences` → `stop`, `metadata.user_id` → `user`,
//!   `thinking.budget_tokens` and `output_config.effort` → `reasoning_effort`,
//!   `output_config.format` → `response_format`.
//!
//! Dropped, because they cannot change the answer or mean nothing off Anthropic:
//! `cache_control` anywhere, `service_tier`, `inference_geo`, `speed`, `diagnostics`,
//! `workspace_id`, `user_profile_id`, `context_management` (server-side context editing; the
//! whole context is sent instead), `thinking` blocks in history (their signatures only
//! Anthropic can verify), and `top_k` (a sampling cut-off OpenAI has no field for; the
//! answer is still an answer, so refusing it would only refuse failover).
//! Refused ([`ProviderError::Unsupported`], naming the field): server tools and their
//! blocks, `container`, `mcp_servers`, more than 4 stop sequences,
//! and any field not named here.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::providers::ProviderError;

/// The dialect's name in error messages.
const WHO: &str = "the Messages API translation";

/// Chat Completions accepts at most this many stop sequences.
const MAX_STOP: usize = 4;

// === the Messages request, as read ===

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    model: &'a RawValue,
    #[serde(borrow)]
    messages: Vec<InMessage<'a>>,
    #[serde(default, borrow)]
    system: Option<System<'a>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default, borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(default, borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(default, borrow)]
    stop_sequences: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    metadata: Option<Metadata<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default, borrow)]
    tools: Option<Vec<InTool<'a>>>,
    #[serde(default, borrow)]
    tool_choice: Option<InToolChoice<'a>>,
    #[serde(default, borrow)]
    thinking: Option<Thinking<'a>>,
    #[serde(default, borrow)]
    output_config: Option<OutputConfig<'a>>,
}

/// Every top-level field, read apart for [`judge_rest`] (`serde(flatten)` would buffer the
/// request, which raw JSON values cannot go through).
type Fields<'a> = std::collections::BTreeMap<Cow<'a, str>, &'a RawValue>;

/// The fields [`Request`] reads.
const READ: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "stop_sequences",
    "metadata",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
];

/// `system`: a string or text blocks.
type System<'a> = TextOr<'a, TextOnly<'a>>;

#[derive(Deserialize)]
struct TextOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(default, borrow)]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: InContent<'a>,
}

/// A message's (or tool result's) `content`: a string or blocks.
type InContent<'a> = TextOr<'a, Block<'a>>;

/// A string or an array of `T`, read without buffering (an untagged enum would buffer, and
/// raw JSON values inside cannot go through a buffer).
enum TextOr<'a, T> {
    Text(Cow<'a, str>),
    Blocks(Vec<T>),
}

impl<'de: 'a, 'a, T: Deserialize<'de>> Deserialize<'de> for TextOr<'a, T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a, T>(std::marker::PhantomData<(&'a (), T)>);
        impl<'de: 'a, 'a, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<'a, T> {
            type Value = TextOr<'a, T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of blocks")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(TextOr::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(block) = seq.next_element()? {
                    blocks.push(block);
                }
                Ok(TextOr::Blocks(blocks))
            }
        }
        deserializer.deserialize_any(Visit(std::marker::PhantomData))
    }
}

/// A content block, loose: a `type` and the payloads of the kinds translated, so an unknown
/// kind is refused by name rather than failing the parse.
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    source: Option<Source<'a>>,
    #[serde(default, borrow)]
    title: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_use_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<InContent<'a>>,
    #[serde(default)]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    media_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InTool<'a> {
    #[serde(default, rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input_schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InToolChoice<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct Thinking<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputConfig<'a> {
    #[serde(default, borrow)]
    effort: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    format: Option<OutputFormat<'a>>,
}

#[derive(Deserialize)]
struct OutputFormat<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
}

// === the Chat request, as written ===

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a RawValue,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<Cow<'a, str>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ChatTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ChatToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum ChatMessage<'a> {
    System {
        content: String,
    },
    User {
        content: UserContent<'a>,
    },
    Assistant {
        /// `null` when the turn is tool calls alone, as OpenAI writes it.
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ChatToolCall<'a>>,
    },
    Tool {
        tool_call_id: Cow<'a, str>,
        content: String,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum UserContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: ImageUrl<'a> },
    File { file: File },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: Cow<'a, str>,
}

#[derive(Serialize)]
struct File {
    filename: String,
    file_data: String,
}

#[derive(Serialize)]
struct ChatToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunctionCall<'a>,
}

#[derive(Serialize)]
struct ChatFunctionCall<'a> {
    name: Cow<'a, str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ChatTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ChatFunction<'a>,
}

#[derive(Serialize)]
struct ChatFunction<'a> {
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Cow<'a, str>>,
    parameters: &'a RawValue,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatToolChoice<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        function: NamedFunction<'a>,
    },
}

#[derive(Serialize)]
struct NamedFunction<'a> {
    name: Cow<'a, str>,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchema<'a>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'static str,
    schema: &'a RawValue,
}

// === the translation ===

/// Top-level fields that cannot change the answer or mean nothing off Anthropic.
const DROPPED: &[&str] = &[
    // Server-side context editing: off Anthropic the whole context is sent, which is what
    // editing would only have shortened. Claude Code sends it on every call.
    "context_management",
    "top_k",
    "service_tier",
    "inference_geo",
    "speed",
    "diagnostics",
    "cache_control",
    "workspace_id",
    "user_profile_id",
];

fn unsupported(message: impl Into<String>, param: impl Into<String>) -> ProviderError {
    ProviderError::unsupported(message, Some(param.into()))
}

/// A Messages request → the Chat Completions request asking the same. `model` is kept as
/// sent; a stream asks for usage (`stream_options.include_usage`).
pub(crate) fn to_chat(body: &[u8]) -> Result<Bytes, ProviderError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request: Request<'_> = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        ProviderError::unsupported(
            format!("cannot translate the Messages request: {} at `{path}`", err.inner()),
            (path != ".").then_some(path),
        )
    })?;
    let fields: Fields<'_> = serde_json::from_slice(body)
        .map_err(|e| ProviderError::unsupported(format!("cannot read the Messages request: {e}"), None))?;
    judge_rest(&fields)?;
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(ChatMessage::System { content: text });
        }
    }
    for (i, message) in request.messages.iter().enumerate() {
        translate_message(message, i, &mut messages)?;
    }
    let stop = match request.stop_sequences {
        Some(stop) if stop.len() > MAX_STOP => {
            return Err(unsupported(
                format!("Chat Completions allows at most {MAX_STOP} `stop_sequences`"),
                "stop_sequences",
            ));
        }
        Some(stop) if !stop.is_empty() => Some(stop),
        _ => None,
    };
    let tools = tools(request.tools.as_deref().unwrap_or_default())?;
    let (tool_choice, parallel_tool_calls) = match (&request.tool_choice, tools.is_empty()) {
        // OpenAI refuses `tool_choice` without `tools`: it means nothing then.
        (None, _) | (_, true) => (None, None),
        (Some(choice), false) => tool_choice(choice)?,
    };
    let effort = reasoning_effort(request.thinking.as_ref(), request.output_config.as_ref())?;
    let response_format = match request.output_config.as_ref().and_then(|c| c.format.as_ref()) {
        None => None,
        Some(OutputFormat { kind, schema: Some(schema) }) if kind == "json_schema" => {
            Some(ResponseFormat { kind: "json_schema", json_schema: JsonSchema { name: "output", schema } })
        }
        Some(_) => {
            return Err(unsupported("only `json_schema` output formats translate", "output_config.format"));
        }
    };
    let stream = request.stream == Some(true);
    let chat = ChatRequest {
        model: request.model,
        messages,
        max_completion_tokens: request.max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop,
        user: request.metadata.and_then(|m| m.user_id),
        reasoning_effort: effort,
        response_format,
        tools,
        tool_choice,
        parallel_tool_calls,
        stream,
        stream_options: stream.then_some(StreamOptions { include_usage: true }),
    };
    // Serializing borrowed strings and raw JSON into memory cannot fail.
    Ok(serde_json::to_vec(&chat).map(Bytes::from).unwrap_or_default())
}

/// Refuses the fields not [`READ`] unless they are null or [`DROPPED`].
fn judge_rest(fields: &Fields<'_>) -> Result<(), ProviderError> {
    for (key, value) in fields {
        if READ.contains(&key.as_ref()) || DROPPED.contains(&key.as_ref()) || value.get() == "null" {
            continue;
        }
        return Err(unsupported(format!("`{key}` is not supported by {WHO}"), key.as_ref()));
    }
    Ok(())
}

fn system_text(system: &System<'_>) -> Result<String, ProviderError> {
    match system {
        System::Text(text) => Ok(text.to_string()),
        System::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, block) in blocks.iter().enumerate() {
                match (block.kind.as_ref(), &block.text) {
                    ("text", Some(text)) => texts.push(text.as_ref()),
                    (kind, _) => {
                        return Err(unsupported(
                            format!("system block `{kind}` is not text"),
                            format!("system[{i}]"),
                        ));
                    }
                }
            }
            Ok(texts.join("\n\n"))
        }
    }
}

/// Server tool blocks: results of tools Anthropic ran, which no other upstream can replay.
fn is_server_block(kind: &str) -> bool {
    kind == "server_tool_use"
        || kind == "container_upload"
        || kind.starts_with("mcp_")
        || kind.ends_with("_tool_result")
}

fn translate_message<'a>(
    message: &'a InMessage<'a>,
    i: usize,
    out: &mut Vec<ChatMessage<'a>>,
) -> Result<(), ProviderError> {
    let assistant = match message.role.as_ref() {
        "user" => false,
        "assistant" => true,
        // Mid-conversation system turns (Claude Code sends them) are Chat's system messages.
        "system" => {
            let content = match &message.content {
                InContent::Text(text) => text.to_string(),
                InContent::Blocks(blocks) => {
                    let texts = blocks.iter().filter(|b| b.kind == "text").filter_map(|b| b.text.as_deref());
                    texts.collect::<Vec<_>>().join("\n\n")
                }
            };
            out.push(ChatMessage::System { content });
            return Ok(());
        }
        other => {
            return Err(unsupported(
                format!("role `{other}` is not user or assistant"),
                format!("messages[{i}].role"),
            ));
        }
    };
    let blocks = match &message.content {
        InContent::Text(text) => {
            out.push(if assistant {
                ChatMessage::Assistant { content: Some(text.to_string()), tool_calls: Vec::new() }
            } else {
                ChatMessage::User { content: UserContent::Text(Cow::Borrowed(text.as_ref())) }
            });
            return Ok(());
        }
        InContent::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let param = || format!("messages[{i}].content[{j}]");
        match (block.kind.as_ref(), assistant) {
            ("text", _) => {
                let text = block.text.as_deref().unwrap_or("");
                if assistant {
                    texts.push(text);
                } else {
                    parts.push(Part::Text { text: Cow::Borrowed(text) });
                }
            }
            // A non-Anthropic upstream cannot verify thinking signatures; the reasoning
            // itself stays with the turn that produced it.
            ("thinking" | "redacted_thinking", _) => {}
            ("image", false) => parts.push(image(block, &param)?),
            ("document", false) => parts.push(document(block, &param)?),
            ("tool_use", true) => {
                let (Some(id), Some(name)) = (&block.id, &block.name) else {
                    return Err(unsupported("a `tool_use` block needs `id` and `name`", param()));
                };
                let arguments = block.input.map_or("{}", RawValue::get);
                calls.push(ChatToolCall {
                    id: Cow::Borrowed(id.as_ref()),
                    kind: "function",
                    function: ChatFunctionCall { name: Cow::Borrowed(name.as_ref()), arguments },
                });
            }
            ("tool_result", false) => {
                // Tool results answer the previous assistant turn, so they come first.
                let (content, images) = tool_result(block, &param)?;
                let Some(id) = &block.tool_use_id else {
                    return Err(unsupported("a `tool_result` block needs `tool_use_id`", param()));
                };
                out.push(ChatMessage::Tool { tool_call_id: Cow::Borrowed(id.as_ref()), content });
                parts.extend(images);
            }
            (kind, _) if is_server_block(kind) => {
                return Err(unsupported(
                    format!("server tool block `{kind}` is not supported by {WHO}"),
                    param(),
                ));
            }
            (kind, _) => {
                let role = if assistant { "an assistant" } else { "a user" };
                return Err(unsupported(
                    format!("`{kind}` blocks in {role} message are not supported by {WHO}"),
                    param(),
                ));
            }
        }
    }
    if assistant {
        if !texts.is_empty() || !calls.is_empty() {
            let content = (!texts.is_empty()).then(|| texts.join("\n\n"));
            out.push(ChatMessage::Assistant { content, tool_calls: calls });
        }
    } else if !parts.is_empty() {
        let content = match <[Part<'_>; 1]>::try_from(parts) {
            Ok([Part::Text { text }]) => UserContent::Text(text),
            Ok([other]) => UserContent::Parts(vec![other]),
            Err(parts) => UserContent::Parts(parts),
        };
        out.push(ChatMessage::User { content });
    }
    Ok(())
}

fn image<'a>(block: &'a Block<'a>, param: &dyn Fn() -> String) -> Result<Part<'a>, ProviderError> {
    let url = match &block.source {
        Some(Source { kind, media_type: Some(media_type), data: Some(data), .. }) if kind == "base64" => {
            Cow::Owned(format!("data:{media_type};base64,{data}"))
        }
        Some(Source { kind, url: Some(url), .. }) if kind == "url" => Cow::Borrowed(url.as_ref()),
        _ => {
            return Err(unsupported(
                "an image source must be `base64` or `url`",
                format!("{}.source", param()),
            ));
        }
    };
    Ok(Part::ImageUrl { image_url: ImageUrl { url } })
}

fn document<'a>(block: &'a Block<'a>, param: &dyn Fn() -> String) -> Result<Part<'a>, ProviderError> {
    match &block.source {
        Some(Source { kind, media_type: Some(media_type), data: Some(data), .. })
            if kind == "base64" && media_type == "application/pdf" =>
        {
            let filename = block.title.as_deref().filter(|t| !t.is_empty()).unwrap_or("document");
            let filename =
                if filename.ends_with(".pdf") { filename.to_string() } else { format!("{filename}.pdf") };
            Ok(Part::File { file: File { filename, file_data: format!("data:{media_type};base64,{data}") } })
        }
        Some(Source { kind, data: Some(data), .. }) if kind == "text" => {
            Ok(Part::Text { text: Cow::Borrowed(data) })
        }
        _ => Err(unsupported(
            format!("only base64 PDF and text documents are supported by {WHO}"),
            format!("{}.source", param()),
        )),
    }
}

/// A tool result's text (Chat's `tool` messages carry text only) and its images, which go
/// into the user message that follows. `is_error` has no Chat field: the text says it.
fn tool_result<'a>(
    block: &'a Block<'a>,
    param: &dyn Fn() -> String,
) -> Result<(String, Vec<Part<'a>>), ProviderError> {
    let mut text = String::new();
    let mut images = Vec::new();
    match &block.content {
        None => {}
        Some(InContent::Text(t)) => text.push_str(t),
        Some(InContent::Blocks(blocks)) => {
            for (k, inner) in blocks.iter().enumerate() {
                let param = || format!("{}.content[{k}]", param());
                match inner.kind.as_ref() {
                    "text" => {
                        if !text.is_empty() {
                            text.push_str("\n\n");
                        }
                        text.push_str(inner.text.as_deref().unwrap_or(""));
                    }
                    "image" => images.push(image(inner, &param)?),
                    "document" => match document(inner, &param)? {
                        Part::Text { text: t } => {
                            if !text.is_empty() {
                                text.push_str("\n\n");
                            }
                            text.push_str(&t);
                        }
                        other => images.push(other),
                    },
                    kind => {
                        return Err(unsupported(
                            format!("`{kind}` blocks in a tool result are not supported by {WHO}"),
                            param(),
                        ));
                    }
                }
            }
        }
    }
    if block.is_error == Some(true) {
        text = if text.is_empty() { "Error".to_string() } else { format!("Error: {text}") };
    }
    Ok((text, images))
}

/// Anthropic's server tools (`web_search_*`, `bash_*`, `text_editor_*`, `computer_*`,
/// `code_execution_*`, …) run on Anthropic's side; only custom tools translate.
fn tools<'a>(tools: &'a [InTool<'a>]) -> Result<Vec<ChatTool<'a>>, ProviderError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        match tool.kind.as_deref() {
            None | Some("custom") => {}
            Some(kind) => {
                return Err(unsupported(
                    format!("server tool `{kind}` is not supported by {WHO}"),
                    format!("tools[{i}]"),
                ));
            }
        }
        let (Some(name), Some(schema)) = (&tool.name, tool.input_schema) else {
            return Err(unsupported("a custom tool needs `name` and `input_schema`", format!("tools[{i}]")));
        };
        out.push(ChatTool {
            kind: "function",
            function: ChatFunction {
                name: Cow::Borrowed(name.as_ref()),
                description: tool.description.as_deref().map(Cow::Borrowed),
                parameters: schema,
            },
        });
    }
    Ok(out)
}

fn tool_choice<'a>(
    choice: &'a InToolChoice<'a>,
) -> Result<(Option<ChatToolChoice<'a>>, Option<bool>), ProviderError> {
    let mode = match choice.kind.as_ref() {
        "auto" => ChatToolChoice::Mode("auto"),
        "any" => ChatToolChoice::Mode("required"),
        "none" => ChatToolChoice::Mode("none"),
        "tool" => {
            let Some(name) = &choice.name else {
                return Err(unsupported("`tool_choice` of type `tool` needs `name`", "tool_choice.name"));
            };
            ChatToolChoice::Named {
                kind: "function",
                function: NamedFunction { name: Cow::Borrowed(name.as_ref()) },
            }
        }
        other => {
            return Err(unsupported(
                format!("`tool_choice` `{other}` is not one of auto, any, tool, none"),
                "tool_choice",
            ));
        }
    };
    let parallel = (choice.disable_parallel_tool_use == Some(true)).then_some(false);
    Ok((Some(mode), parallel))
}

/// `thinking: {type: enabled, budget_tokens}` → `reasoning_effort`: below 4096 tokens
/// `low`, below 16384 `medium`, else `high`. `output_config.effort` wins when present
/// (`xhigh` and `max` become `high`, the most Chat has). `disabled`, `adaptive` and
/// `between_tools` thinking ask for nothing Chat can express: the upstream's default.
fn reasoning_effort(
    thinking: Option<&Thinking<'_>>,
    output: Option<&OutputConfig<'_>>,
) -> Result<Option<&'static str>, ProviderError> {
    if let Some(effort) = output.and_then(|o| o.effort.as_deref()) {
        return match effort {
            "low" => Ok(Some("low")),
            "medium" => Ok(Some("medium")),
            "high" | "xhigh" | "max" => Ok(Some("high")),
            other => Err(unsupported(format!("effort `{other}` is not known"), "output_config.effort")),
        };
    }
    let Some(thinking) = thinking else { return Ok(None) };
    match (thinking.kind.as_ref(), thinking.budget_tokens) {
        ("enabled", Some(budget)) if budget < 4096 => Ok(Some("low")),
        ("enabled", Some(budget)) if budget < 16384 => Ok(Some("medium")),
        ("enabled", _) => Ok(Some("high")),
        ("disabled" | "adaptive" | "between_tools", _) => Ok(None),
        (other, _) => Err(unsupported(format!("thinking type `{other}` is not known"), "thinking.type")),
    }
}
