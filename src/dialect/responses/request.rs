//! A Responses request → the Chat Completions request that asks the same.
//!
//! Read with borrowed strings and raw JSON (schemas, parameters and numbers are copied as
//! written, never rebuilt); each input item and tool is read on its own, so a malformed one
//! is reported with its path (`input[3].content[0]`).

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::providers::ProviderError;

/// Why a built-in tool (or its call) cannot be served here.
const BUILT_IN: &str = "only upstreams that speak the Responses API run OpenAI's built-in tools; this one speaks Chat Completions";

// === the Responses request, as far as Chat can ask it ===

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    /// A string or an array of items; read by hand because raw JSON cannot sit in an
    /// untagged enum.
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    instructions: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tools: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    tool_choice: Option<&'a RawValue>,
    #[serde(default, borrow)]
    text: Option<TextConfig<'a>>,
    #[serde(default, borrow)]
    reasoning: Option<ReasoningConfig<'a>>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default, borrow)]
    temperature: Option<&'a RawValue>,
    #[serde(default, borrow)]
    top_p: Option<&'a RawValue>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default, borrow)]
    user: Option<&'a RawValue>,
    #[serde(default, borrow)]
    safety_identifier: Option<&'a RawValue>,
    #[serde(default, borrow)]
    prompt_cache_key: Option<&'a RawValue>,
    #[serde(default, borrow)]
    service_tier: Option<&'a RawValue>,
    #[serde(default)]
    top_logprobs: Option<u32>,
    #[serde(default, borrow)]
    include: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    background: Option<bool>,
    #[serde(default, borrow)]
    conversation: Option<&'a RawValue>,
    #[serde(default, borrow)]
    prompt: Option<&'a RawValue>,
    #[serde(default, borrow)]
    previous_response_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TextConfig<'a> {
    #[serde(default, borrow)]
    format: Option<Format<'a>>,
    #[serde(default, borrow)]
    verbosity: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Format<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
    #[serde(default)]
    strict: Option<bool>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ReasoningConfig<'a> {
    #[serde(default, borrow)]
    effort: Option<&'a RawValue>,
}

/// One input item: a message (typed `message` or not typed at all), a function call or its
/// output, a reasoning item, or something Chat has no place for.
#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    content: Option<Parts<'a>>,
    #[serde(default, borrow)]
    call_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    output: Option<Parts<'a>>,
    /// A call of a function inside a tool namespace.
    #[serde(default, borrow)]
    namespace: Option<Cow<'a, str>>,
}

/// A message's `content` or a call output's `output`: a string or content parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Parts<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    List(#[serde(borrow)] Vec<Part<'a>>),
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    image_url: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    detail: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    file_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    file_data: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    filename: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    file_url: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FunctionTool<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    parameters: Option<&'a RawValue>,
    #[serde(default)]
    strict: Option<bool>,
    /// A `namespace` tool's functions.
    #[serde(default, borrow)]
    tools: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ToolChoiceIn<'a> {
    Mode(#[serde(borrow)] Cow<'a, str>),
    Object {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(default, borrow)]
        name: Option<Cow<'a, str>>,
    },
}

// === the Chat request written ===

#[derive(Serialize)]
struct ChatRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a RawValue>,
    messages: Vec<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verbosity: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_identifier: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_cache_key: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    /// `null` only for an assistant message that is tool calls alone, as OpenAI writes it.
    content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<Cow<'a, str>>,
}

impl<'a> Message<'a> {
    fn new(role: &'static str, content: Content<'a>) -> Self {
        Self { role, content: Some(content), tool_calls: Vec::new(), tool_call_id: None }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ChatPart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatPart<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: ImageUrl<'a> },
    File { file: File<'a> },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct File<'a> {
    file_data: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CallFunction<'a>,
}

#[derive(Serialize)]
struct CallFunction<'a> {
    name: Cow<'a, str>,
    arguments: Cow<'a, str>,
}

#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunction<'a>,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ToolChoiceOut<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Serialize)]
struct Named<'a> {
    name: Cow<'a, str>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat<'a> {
    JsonObject,
    JsonSchema { json_schema: JsonSchema<'a> },
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

// === the translation ===

/// See [`super::to_chat`].
pub(super) fn to_chat(body: &[u8]) -> Result<Bytes, ProviderError> {
    let request: Request<'_> = read(body, "")?;
    refuse_stateful(&request)?;
    let mut messages = Vec::new();
    if let Some(instructions) = request.instructions {
        // `system`, not `developer`: every Chat host reads it (Groq, Ollama, vLLM and others
        // refuse `developer`), and OpenAI treats the two alike.
        messages.push(Message::new("system", Content::Text(instructions)));
    }
    match request.input.map(RawValue::get) {
        None | Some("null") => {}
        Some(text) if text.starts_with('"') => {
            messages.push(Message::new("user", Content::Text(read(text.as_bytes(), "input")?)));
        }
        Some(items) => {
            let items: Vec<&RawValue> = read(items.as_bytes(), "input")?;
            for (i, raw) in items.into_iter().enumerate() {
                item(raw, &format!("input[{i}]"), &mut messages)?;
            }
        }
    }
    let tools = request
        .tools
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, raw)| tools_of(raw, &format!("tools[{i}]")))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    let tool_choice = request.tool_choice.map(tool_choice).transpose()?;
    let (response_format, verbosity) = match request.text {
        None => (None, None),
        Some(text) => (text.format.map(response_format).transpose()?.flatten(), text.verbosity),
    };
    let stream = request.stream.unwrap_or(false);
    // Logprobs only when asked for in `include`, as the Responses API gives them; Chat
    // refuses `top_logprobs` without `logprobs: true`.
    let wants_logprobs =
        request.include.iter().flatten().any(|entry| entry == "message.output_text.logprobs");
    let chat = ChatRequest {
        model: request.model,
        messages,
        stream: stream.then_some(true),
        stream_options: stream.then_some(StreamOptions { include_usage: true }),
        // `max_tokens`, not `max_completion_tokens`: OpenAI and Azure speak Responses and
        // never get here; the Chat-only hosts (Mistral, DeepSeek, Ollama, Together, …) all
        // read `max_tokens`, and some of them no other name.
        max_tokens: request.max_output_tokens,
        temperature: request.temperature.filter(|v| !is_null(v)),
        top_p: request.top_p.filter(|v| !is_null(v)),
        tools,
        tool_choice,
        parallel_tool_calls: request.parallel_tool_calls,
        response_format,
        verbosity: verbosity.filter(|v| !is_null(v)),
        reasoning_effort: request.reasoning.and_then(|r| r.effort).filter(|v| !is_null(v)),
        logprobs: wants_logprobs.then_some(true),
        top_logprobs: request.top_logprobs.filter(|n| wants_logprobs && *n > 0),
        user: request.user.filter(|v| !is_null(v)),
        safety_identifier: request.safety_identifier.filter(|v| !is_null(v)),
        prompt_cache_key: request.prompt_cache_key.filter(|v| !is_null(v)),
        service_tier: request.service_tier.filter(|v| !is_null(v)),
    };
    // Serializing borrowed strings and raw JSON into memory cannot fail.
    Ok(serde_json::to_vec(&chat).map(Bytes::from).unwrap_or_default())
}

/// Reads `raw` as `T`, a shape error naming the path under `at`.
fn read<'a, T: Deserialize<'a>>(raw: &'a [u8], at: &str) -> Result<T, ProviderError> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.path().to_string();
        let path = match (at.is_empty(), inner == ".") {
            (true, true) => None,
            (true, false) => Some(inner),
            (false, true) => Some(at.to_string()),
            (false, false) => Some(format!("{at}.{inner}")),
        };
        let shown = path.as_deref().unwrap_or("the body");
        ProviderError::unsupported(
            format!("cannot translate the Responses request: {} at `{shown}`", err.inner()),
            path,
        )
    })
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

fn unsupported(message: impl Into<String>, param: &str) -> ProviderError {
    ProviderError::unsupported(message, Some(param.to_string()))
}

/// What needs server-side state or a background job: the proxy resolves a stored
/// `previous_response_id` before translating, so one still here is unknown to it.
fn refuse_stateful(request: &Request<'_>) -> Result<(), ProviderError> {
    if request.background == Some(true) {
        return Err(unsupported("`background` responses are not supported for this upstream", "background"));
    }
    for (field, value) in [
        ("conversation", request.conversation),
        ("prompt", request.prompt),
        ("previous_response_id", request.previous_response_id),
    ] {
        if value.is_some_and(|v| !is_null(v)) {
            return Err(unsupported(
                format!(
                    "`{field}` is not supported: only upstreams that speak the Responses API keep that state"
                ),
                field,
            ));
        }
    }
    Ok(())
}

/// Appends the Chat message(s) one input item stands for.
fn item<'a>(raw: &'a RawValue, param: &str, messages: &mut Vec<Message<'a>>) -> Result<(), ProviderError> {
    let item: Item<'a> = read(raw.get().as_bytes(), param)?;
    match item.kind.as_deref().unwrap_or("message") {
        "message" => {
            let role = item.role.as_deref().ok_or_else(|| {
                unsupported("a message input item needs a `role`", &format!("{param}.role"))
            })?;
            let content = item.content.unwrap_or(Parts::Text(Cow::Borrowed("")));
            let message = match role {
                "user" => Message::new("user", user_content(content, param)?),
                "assistant" => Message::new("assistant", Content::Text(text_only(content, param)?)),
                // Both as `system`: see the instructions in `to_chat`.
                "system" | "developer" => Message::new("system", Content::Text(text_only(content, param)?)),
                other => {
                    return Err(unsupported(
                        format!("message role `{other}` is not one of user, assistant, system, developer"),
                        &format!("{param}.role"),
                    ));
                }
            };
            messages.push(message);
        }
        "function_call" => {
            let field = |name: &str| {
                unsupported(format!("a function_call needs `{name}`"), &format!("{param}.{name}"))
            };
            let call = ToolCall {
                id: item.call_id.ok_or_else(|| field("call_id"))?,
                kind: "function",
                function: CallFunction {
                    name: match (item.name, item.namespace) {
                        (Some(name), Some(namespace)) => Cow::Owned(namespaced(&namespace, &name)),
                        (name, _) => name.ok_or_else(|| field("name"))?,
                    },
                    arguments: item.arguments.unwrap_or(Cow::Borrowed("")),
                },
            };
            // Chat puts a turn's calls, and the text before them, in one assistant message.
            match messages.last_mut() {
                Some(last) if last.role == "assistant" => last.tool_calls.push(call),
                _ => messages.push(Message {
                    role: "assistant",
                    content: None,
                    tool_calls: vec![call],
                    tool_call_id: None,
                }),
            }
        }
        "function_call_output" => {
            let call_id = item.call_id.ok_or_else(|| {
                unsupported("a function_call_output needs `call_id`", &format!("{param}.call_id"))
            })?;
            let output = item.output.unwrap_or(Parts::Text(Cow::Borrowed("")));
            messages.push(Message {
                role: "tool",
                content: Some(Content::Text(tool_output(output, param)?)),
                tool_calls: Vec::new(),
                tool_call_id: Some(call_id),
            });
        }
        // Reasoning is the upstream's own (often encrypted) state; Chat has no place for it.
        "reasoning" => {}
        "item_reference" => {
            return Err(unsupported(
                "`item_reference` input items are not supported: only upstreams that speak the Responses API keep items",
                param,
            ));
        }
        other => {
            return Err(unsupported(
                format!("input item type `{other}` is not supported: {BUILT_IN}"),
                param,
            ));
        }
    }
    Ok(())
}

/// A user message's content: text, images (by URL or data URL) and inline files.
fn user_content<'a>(content: Parts<'a>, param: &str) -> Result<Content<'a>, ProviderError> {
    let parts = match content {
        Parts::Text(text) => return Ok(Content::Text(text)),
        Parts::List(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        out.push(match part.kind.as_ref() {
            "input_text" | "output_text" => ChatPart::Text { text: part.text.unwrap_or_default() },
            "input_image" => match (part.image_url, part.file_id) {
                (Some(url), _) => ChatPart::ImageUrl { image_url: ImageUrl { url, detail: part.detail } },
                (None, Some(_)) => return Err(unsupported(file_id_refused("images"), &at)),
                (None, None) => return Err(unsupported("an input_image needs `image_url`", &at)),
            },
            "input_file" => match (part.file_data, part.file_id, part.file_url) {
                (Some(file_data), _, _) => {
                    ChatPart::File { file: File { file_data, filename: part.filename } }
                }
                (None, Some(_), _) => return Err(unsupported(file_id_refused("files"), &at)),
                (None, None, Some(_)) => {
                    return Err(unsupported(
                        "files by `file_url` are not supported for this upstream; send `file_data`",
                        &at,
                    ));
                }
                (None, None, None) => return Err(unsupported("an input_file needs `file_data`", &at)),
            },
            other => {
                return Err(unsupported(
                    format!("content part `{other}` is not supported in a user message"),
                    &at,
                ));
            }
        });
    }
    Ok(Content::Parts(out))
}

fn file_id_refused(what: &str) -> String {
    format!("{what} by `file_id` are not supported: only OpenAI's own API has its uploaded files")
}

/// The text of an assistant, system or developer message (text and refusal parts), joined.
fn text_only<'a>(content: Parts<'a>, param: &str) -> Result<Cow<'a, str>, ProviderError> {
    let parts = match content {
        Parts::Text(text) => return Ok(text),
        Parts::List(parts) => parts,
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        match (part.kind.as_ref(), part.text, part.refusal) {
            ("input_text" | "output_text" | "text", Some(text), _) | ("refusal", _, Some(text)) => {
                texts.push(text)
            }
            (kind, _, _) => {
                return Err(unsupported(
                    format!("content part `{kind}` is not supported here: only text"),
                    &format!("{param}.content[{j}]"),
                ));
            }
        }
    }
    Ok(join(texts))
}

/// A function call's output as Chat's tool message text; Chat tool messages take text only.
fn tool_output<'a>(output: Parts<'a>, param: &str) -> Result<Cow<'a, str>, ProviderError> {
    let parts = match output {
        Parts::Text(text) => return Ok(text),
        Parts::List(parts) => parts,
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        match (part.kind.as_ref(), part.text) {
            ("input_text" | "output_text", Some(text)) => texts.push(text),
            (kind, _) => {
                return Err(unsupported(
                    format!(
                        "`{kind}` in a function call output is not supported: Chat tool results are text"
                    ),
                    &format!("{param}.output[{j}]"),
                ));
            }
        }
    }
    Ok(join(texts))
}

fn join(mut texts: Vec<Cow<'_, str>>) -> Cow<'_, str> {
    if texts.len() == 1 {
        return texts.pop().unwrap_or_default();
    }
    Cow::Owned(texts.join("\n\n"))
}

/// A tool as Chat function tools: a function tool is one; a `namespace` (a group of functions,
/// as Codex sends its sub-agent tools) is its functions, each named
/// `{namespace}__{name}`, which the answer splits back.
fn tools_of<'a>(raw: &'a RawValue, param: &str) -> Result<Vec<Tool<'a>>, ProviderError> {
    let group: FunctionTool<'a> = read(raw.get().as_bytes(), param)?;
    if group.kind != "namespace" {
        return Ok(vec![tool(raw, param)?]);
    }
    let namespace =
        group.name.ok_or_else(|| unsupported("a namespace tool needs a `name`", &format!("{param}.name")))?;
    let mut tools = Vec::new();
    for (j, inner) in group.tools.into_iter().flatten().enumerate() {
        let mut function = tool(inner, &format!("{param}.tools[{j}]"))?;
        function.function.name = Cow::Owned(namespaced(&namespace, &function.function.name));
        tools.push(function);
    }
    Ok(tools)
}

/// The flat name Chat knows a namespaced function by.
fn namespaced(namespace: &str, name: &str) -> String {
    format!("{namespace}{}{name}", super::response::NAMESPACE_SEPARATOR)
}

fn tool<'a>(raw: &'a RawValue, param: &str) -> Result<Tool<'a>, ProviderError> {
    let tool: FunctionTool<'a> = read(raw.get().as_bytes(), param)?;
    if tool.kind != "function" {
        return Err(unsupported(format!("tool type `{}` is not supported: {BUILT_IN}", tool.kind), param));
    }
    let name =
        tool.name.ok_or_else(|| unsupported("a function tool needs a `name`", &format!("{param}.name")))?;
    Ok(Tool {
        kind: "function",
        function: ToolFunction {
            name,
            description: tool.description,
            parameters: tool.parameters.filter(|v| !is_null(v)),
            strict: tool.strict,
        },
    })
}

fn tool_choice(raw: &RawValue) -> Result<ToolChoiceOut<'_>, ProviderError> {
    let choice: ToolChoiceIn<'_> = read(raw.get().as_bytes(), "tool_choice")?;
    match choice {
        ToolChoiceIn::Mode(mode) => match mode.as_ref() {
            "auto" => Ok(ToolChoiceOut::Mode("auto")),
            "none" => Ok(ToolChoiceOut::Mode("none")),
            "required" => Ok(ToolChoiceOut::Mode("required")),
            other => Err(unsupported(
                format!("`tool_choice` `{other}` is not one of none, auto, required"),
                "tool_choice",
            )),
        },
        ToolChoiceIn::Object { kind, name: Some(name) } if kind == "function" => {
            Ok(ToolChoiceOut::Named { kind: "function", function: Named { name } })
        }
        ToolChoiceIn::Object { kind, .. } => Err(unsupported(
            format!("`tool_choice` of type `{kind}` is not supported: {BUILT_IN}"),
            "tool_choice",
        )),
    }
}

/// `text.format` → `response_format` (`None` for plain text, Chat's default).
fn response_format(format: Format<'_>) -> Result<Option<ResponseFormat<'_>>, ProviderError> {
    match format.kind.as_ref() {
        "text" => Ok(None),
        "json_object" => Ok(Some(ResponseFormat::JsonObject)),
        "json_schema" => {
            let name = format
                .name
                .ok_or_else(|| unsupported("a json_schema format needs a `name`", "text.format.name"))?;
            Ok(Some(ResponseFormat::JsonSchema {
                json_schema: JsonSchema {
                    name,
                    description: format.description,
                    schema: format.schema,
                    strict: format.strict,
                },
            }))
        }
        other => {
            Err(unsupported(format!("`text.format` type `{other}` is not supported"), "text.format.type"))
        }
    }
}
