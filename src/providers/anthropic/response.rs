//! Anthropic Messages response (and error) → OpenAI.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::request::PROVIDER;
use crate::providers::ProviderError;
use crate::providers::translate::invalid_response;
use crate::providers::translate::response::{ChoiceOut, FinishReason, ToolCallOut, Usage, completion};

#[derive(Debug, Deserialize)]
struct Message {
    id: String,
    model: String,
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: AnthropicUsage,
}

/// A content block; only the fields of the kinds the proxy reads.
#[derive(Debug, Deserialize)]
pub(super) struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub input: Option<Value>,
}

/// Anthropic's token counts; input is split three ways when prompt caching is on.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(super) struct AnthropicUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Folds in a later report (`message_delta` counts are cumulative): set fields win.
    pub fn update(&mut self, later: AnthropicUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_creation_input_tokens =
            later.cache_creation_input_tokens.or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = later.cache_read_input_tokens.or(self.cache_read_input_tokens);
    }

    /// In OpenAI's terms: prompt tokens include cache writes and reads.
    pub fn to_openai(self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        Usage {
            // Saturating: these numbers come from the network.
            prompt_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
                .saturating_add(read),
            completion_tokens: self.output_tokens.unwrap_or(0),
            cached_tokens: self.cache_read_input_tokens,
            cache_write_tokens: self.cache_creation_input_tokens,
            reasoning_tokens: None,
        }
    }
}

/// `stop_reason` → `finish_reason`. `pause_turn` (a server tool paused a long turn) and
/// unknown reasons end the answer as it stands: `stop`.
pub(super) fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// A complete Anthropic message as an OpenAI `chat.completion`.
pub(super) fn translate(
    body: &[u8],
    json_tool: Option<&str>,
) -> Result<(Bytes, Option<Usage>), ProviderError> {
    let message: Message = serde_json::from_slice(body).map_err(|e| invalid_response(PROVIDER, e))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut json_answer = false;
    for block in message.content {
        match block.kind.as_str() {
            "text" => text.push_str(block.text.as_deref().unwrap_or("")),
            "tool_use" => {
                let input = block.input.unwrap_or(Value::Object(Default::default()));
                let name = block.name.unwrap_or_default();
                if json_tool == Some(name.as_str()) {
                    // The JSON answer asked for with `response_format` is the content.
                    text = input.to_string();
                    json_answer = true;
                } else {
                    tool_calls.push(ToolCallOut {
                        id: block.id.unwrap_or_default(),
                        name,
                        arguments: input.to_string(),
                        signature: None,
                    });
                }
            }
            // Thinking and server-tool blocks have no OpenAI equivalent in a chat answer.
            _ => {}
        }
    }
    let finish = match finish_reason(message.stop_reason.as_deref()) {
        FinishReason::ToolCalls if json_answer && tool_calls.is_empty() => FinishReason::Stop,
        other => other,
    };
    let content = (!text.is_empty() || tool_calls.is_empty()).then_some(text);
    let choice = ChoiceOut { content, tool_calls, finish_reason: Some(finish) };
    let usage = message.usage.to_openai();
    Ok((completion(&message.id, &message.model, vec![choice], Some(usage)), Some(usage)))
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// Anthropic's `{"type":"error","error":{"type","message"}}`, as (message, OpenAI type).
pub(super) fn read_error(body: &[u8]) -> Option<(String, String)> {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    Some((envelope.error.message, openai_error_type(&envelope.error.kind).to_string()))
}

/// Anthropic error type → the OpenAI type the SDKs know.
pub(super) fn openai_error_type(kind: &str) -> &'static str {
    match kind {
        "invalid_request_error" | "request_too_large" | "not_found_error" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" | "billing_error" => "permission_error",
        "rate_limit_error" => "rate_limit_error",
        _ => "server_error",
    }
}

/// The HTTP status Anthropic uses for an error type, for errors that arrive inside a stream.
pub(super) fn error_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn out(body: Value, json_tool: Option<&str>) -> Value {
        serde_json::from_slice(&translate(body.to_string().as_bytes(), json_tool).unwrap().0).unwrap()
    }

    #[test]
    fn text_tool_use_stop_reason_and_usage_translate() {
        let v = out(
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
              "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Let me check."},
                          {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
              "stop_reason": "tool_use", "stop_sequence": null,
              "usage": {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3}}),
            None,
        );
        assert_eq!(v["id"], "msg_1");
        assert_eq!(v["model"], "claude-x");
        let choice = &v["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Let me check.");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["id"], "toolu_1");
        assert_eq!(call["type"], "function");
        assert_eq!(
            serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
            json!({"city": "Paris"})
        );
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 15, "completion_tokens": 5, "total_tokens": 20,
                                      "prompt_tokens_details": {"cached_tokens": 3}})
        );
    }

    #[test]
    fn finish_reasons_stay_within_openais_enum() {
        for (reason, expected) in [
            (Some("end_turn"), FinishReason::Stop),
            (Some("stop_sequence"), FinishReason::Stop),
            (Some("max_tokens"), FinishReason::Length),
            (Some("model_context_window_exceeded"), FinishReason::Length),
            (Some("tool_use"), FinishReason::ToolCalls),
            (Some("refusal"), FinishReason::ContentFilter),
            (Some("pause_turn"), FinishReason::Stop),
            (Some("something_new"), FinishReason::Stop),
            (None, FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(reason), expected, "{reason:?}");
        }
    }

    #[test]
    fn the_json_tool_answer_becomes_content() {
        let v = out(
            json!({"id": "m", "model": "c", "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1},
                   "content": [{"type": "tool_use", "id": "t", "name": "answer", "input": {"ok": true}}]}),
            Some("answer"),
        );
        assert_eq!(v["choices"][0]["message"]["content"], "{\"ok\":true}");
        assert!(v["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        for body in
            [json!({}), json!({"id": 1}), json!({"id": "m", "model": "c", "content": "text"}), json!([1])]
        {
            assert!(matches!(
                translate(body.to_string().as_bytes(), None),
                Err(ProviderError::InvalidResponse(_))
            ));
        }
        let v = out(json!({"id": "m", "model": "c", "content": []}), None);
        assert_eq!(v["choices"][0]["message"]["content"], "");
        assert_eq!(v["usage"]["total_tokens"], 0);
    }

    #[test]
    fn errors_map_to_openai_types() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"r"}"#;
        assert_eq!(read_error(body), Some(("Overloaded".into(), "server_error".into())));
        assert_eq!(read_error(b"<html>"), None);
        assert_eq!(error_status("overloaded_error"), 529);
        assert_eq!(error_status("rate_limit_error"), 429);
        assert_eq!(openai_error_type("invalid_request_error"), "invalid_request_error");
    }
}
