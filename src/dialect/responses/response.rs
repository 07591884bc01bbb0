//! A `chat.completion` → the Responses `response` object, and the parts of that object the
//! stream writer shares: what the request echoes, output items, usage.
//!
//! The object carries every key the official SDKs require (checked against
//! `openai.types.responses.Response`); what the request said is echoed, what it left out is
//! answered with OpenAI's default.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::dialect::chat::{Completion, text};
use crate::providers::ProviderError;
use crate::providers::translate::response::now_secs;
use crate::providers::translate::{invalid_response, to_bytes};
use crate::usage::Usage;

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    InProgress,
    Completed,
    /// Cut short: `max_output_tokens` or `content_filter`.
    Incomplete(&'static str),
    Failed,
}

impl Status {
    /// From Chat's `finish_reason`.
    pub fn from_finish(reason: Option<&str>) -> Self {
        match reason {
            Some("length") => Self::Incomplete("max_output_tokens"),
            Some("content_filter") => Self::Incomplete("content_filter"),
            _ => Self::Completed,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete(_) => "incomplete",
            Self::Failed => "failed",
        }
    }

    /// The status of a message item in a response that ended so.
    pub fn item(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Incomplete(_) | Self::Failed => "incomplete",
        }
    }
}

/// The request's fields a response echoes, with OpenAI's defaults for those it left out;
/// read leniently (the request was already translated, and a writer cannot fail).
pub(super) struct Echo {
    fields: Map<String, Value>,
    /// The request's `model`, for an answer that does not name its own.
    pub model: String,
    /// The names of the request's tool namespaces, whose functions Chat knows as
    /// `{namespace}__{name}` (see [`NAMESPACE_SEPARATOR`]).
    namespaces: Vec<String>,
}

/// Between a namespace and a function name in the flat name Chat gets: Chat names allow only
/// letters, digits, `_` and `-`.
pub(super) const NAMESPACE_SEPARATOR: &str = "__";

impl Echo {
    /// Reads the echoed fields of a Responses request.
    pub fn new(request: &[u8]) -> Self {
        let request: Map<String, Value> = serde_json::from_slice(request).unwrap_or_default();
        let take = |key: &str| request.get(key).filter(|v| !v.is_null()).cloned();
        let string = |key: &str| take(key).filter(Value::is_string);
        let number = |key: &str, default: Value| take(key).filter(Value::is_number).unwrap_or(default);
        let reasoning = request.get("reasoning").and_then(Value::as_object);
        let effort = reasoning.and_then(|r| r.get("effort")).filter(|v| v.is_string());
        let summary = reasoning.and_then(|r| r.get("summary")).filter(|v| v.is_string());
        let text = request.get("text").and_then(Value::as_object);
        let format = text.and_then(|t| t.get("format")).filter(|f| f.is_object());
        let verbosity = text.and_then(|t| t.get("verbosity")).filter(|v| v.is_string());
        let mut fields = Map::new();
        let mut set = |key: &str, value: Value| {
            fields.insert(key.to_string(), value);
        };
        set("background", json!(false));
        set("instructions", string("instructions").unwrap_or(Value::Null));
        set("max_output_tokens", take("max_output_tokens").filter(Value::is_u64).unwrap_or(Value::Null));
        set("metadata", take("metadata").filter(Value::is_object).unwrap_or_else(|| json!({})));
        set(
            "parallel_tool_calls",
            take("parallel_tool_calls").filter(Value::is_boolean).unwrap_or(json!(true)),
        );
        set("previous_response_id", string("previous_response_id").unwrap_or(Value::Null));
        set("prompt_cache_key", string("prompt_cache_key").unwrap_or(Value::Null));
        set("reasoning", json!({"effort": effort, "summary": summary}));
        set("safety_identifier", string("safety_identifier").unwrap_or(Value::Null));
        set("store", take("store").filter(Value::is_boolean).unwrap_or(json!(true)));
        set("temperature", number("temperature", json!(1.0)));
        set(
            "text",
            json!({"format": format.cloned().unwrap_or_else(|| json!({"type": "text"})),
                   "verbosity": verbosity.cloned().unwrap_or_else(|| json!("medium"))}),
        );
        set("tool_choice", take("tool_choice").unwrap_or_else(|| json!("auto")));
        set("tools", take("tools").filter(Value::is_array).unwrap_or_else(|| json!([])));
        set("top_logprobs", number("top_logprobs", json!(0)));
        set("top_p", number("top_p", json!(1.0)));
        set("truncation", string("truncation").unwrap_or_else(|| json!("disabled")));
        set("user", string("user").unwrap_or(Value::Null));
        let model = request.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
        let namespaces = request
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|tool| tool.get("type").and_then(Value::as_str) == Some("namespace"))
            .filter_map(|tool| tool.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        Self { fields, model, namespaces }
    }

    /// A `function_call` item; a call of a namespaced function gets its namespace back.
    pub fn call_item(&self, id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
        let namespaced =
            name.split_once(NAMESPACE_SEPARATOR).filter(|(ns, _)| self.namespaces.iter().any(|n| n == ns));
        match namespaced {
            Some((namespace, function)) => {
                let mut item = call_item(id, call_id, function, arguments, status);
                item["namespace"] = json!(namespace);
                item
            }
            None => call_item(id, call_id, name, arguments, status),
        }
    }

    /// The `response` object: these echoed fields and what the answer says.
    pub fn response(&self, id: &str, created_at: u64, model: &str, end: &End<'_>) -> Value {
        let mut body = self.fields.clone();
        let mut set = |key: &str, value: Value| {
            body.insert(key.to_string(), value);
        };
        set("id", json!(id));
        set("object", json!("response"));
        set("created_at", json!(created_at));
        set("model", json!(model));
        set("status", json!(end.status.name()));
        set(
            "incomplete_details",
            match end.status {
                Status::Incomplete(reason) => json!({"reason": reason}),
                _ => Value::Null,
            },
        );
        set("error", end.error.clone().unwrap_or(Value::Null));
        set("output", Value::Array(end.output.to_vec()));
        set(
            "usage",
            match (end.status, end.usage) {
                (Status::InProgress, _) => Value::Null,
                (_, usage) => usage_json(usage.unwrap_or_default()),
            },
        );
        if matches!(end.status, Status::Completed | Status::Incomplete(_)) {
            set("completed_at", json!(now_secs()));
        }
        Value::Object(body)
    }
}

/// What a response says beyond the echoed fields.
pub(super) struct End<'a> {
    pub status: Status,
    pub output: &'a [Value],
    pub usage: Option<Usage>,
    /// `{code, message}` of a failed response.
    pub error: Option<Value>,
}

/// The Responses `usage` object; zeros for what the upstream did not report (every SDK
/// requires the details).
pub(super) fn usage_json(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens.unwrap_or(0),
            "cache_write_tokens": usage.cache_write_tokens.unwrap_or(0),
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens.unwrap_or(0)},
        "total_tokens": usage.total(),
    })
}

/// An output item's id: its kind's prefix, the response id's tail and its index, so that
/// ids are unique and the same for a stream and its final response.
pub(super) fn item_id(prefix: &str, response_id: &str, index: usize) -> String {
    let tail = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{tail}_{index}")
}

/// A `reasoning` item carrying the upstream's reasoning text as its one summary.
pub(super) fn reasoning_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}], "status": status})
}

/// An `output_text` content part.
pub(super) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `refusal` content part.
pub(super) fn refusal_part(refusal: &str) -> Value {
    json!({"type": "refusal", "refusal": refusal})
}

/// An assistant `message` item.
pub(super) fn message_item(id: &str, content: Vec<Value>, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

/// A `function_call` item; `call_id` is the Chat tool call's id, which the client sends back
/// with the output.
pub(super) fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments,
           "status": status})
}

/// See [`super::answer`].
pub(super) fn answer(request: &[u8], id: &str, chat: &[u8]) -> Result<Bytes, ProviderError> {
    let completion: Completion<'_> =
        serde_json::from_slice(chat).map_err(|err| invalid_response("chat.completion", err))?;
    let created_at = completion.created().unwrap_or_else(now_secs);
    let usage = Usage::from_openai(chat);
    let echo = Echo::new(request);
    let choice = completion.choices.into_iter().next();
    let status = Status::from_finish(choice.as_ref().and_then(|c| c.finish_reason.as_deref()));
    let mut output = Vec::new();
    if let Some(message) = choice.and_then(|c| c.message) {
        let reasoning = text(message.reasoning_content)
            .filter(|r| !r.is_empty())
            .or_else(|| text(message.reasoning).filter(|r| !r.is_empty()));
        if let Some(reasoning) = reasoning {
            output.push(reasoning_item(&item_id("rs", id, output.len()), &reasoning, "completed"));
        }
        let mut content = Vec::new();
        if let Some(text) = message.content.filter(|t| !t.is_empty()) {
            content.push(text_part(&text));
        }
        if let Some(refusal) = message.refusal.filter(|r| !r.is_empty()) {
            content.push(refusal_part(&refusal));
        }
        if !content.is_empty() {
            output.push(message_item(&item_id("msg", id, output.len()), content, status.item()));
        }
        for call in message.tool_calls {
            let item = echo.call_item(
                &item_id("fc", id, output.len()),
                call.id.as_deref().unwrap_or_default(),
                call.function.name.as_deref().unwrap_or_default(),
                call.function.arguments.as_deref().unwrap_or_default(),
                "completed",
            );
            output.push(item);
        }
    }
    let model = completion.model.filter(|m| !m.is_empty()).unwrap_or(Cow::Borrowed(&echo.model));
    let end = End { status, output: &output, usage, error: None };
    Ok(to_bytes(&echo.response(id, created_at, &model, &end)))
}
