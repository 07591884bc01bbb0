//! Gemini `GenerateContentResponse` (whole or one stream event), embeddings and errors →
//! OpenAI.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::request::PROVIDER;
use crate::providers::ProviderError;
use crate::providers::translate::invalid_response;
use crate::providers::translate::response::{
    ChoiceOut, FinishReason, ToolCallOut, Usage, completion, encode_vector,
};

/// A response, or one event of a stream (which has the same shape).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Response {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
    #[serde(default)]
    pub response_id: Option<String>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    #[serde(default)]
    pub content: Option<CandidateContent>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CandidateContent {
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Part {
    #[serde(default)]
    pub text: Option<String>,
    /// A thought summary, not part of the answer.
    #[serde(default)]
    pub thought: Option<bool>,
    #[serde(default)]
    pub function_call: Option<FunctionCall>,
    /// Gemini 3's signature of the thinking behind this part: it must be sent back with the
    /// function call in the next turn, or the model refuses the conversation.
    #[serde(default)]
    pub thought_signature: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionCall {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub args: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
}

impl UsageMetadata {
    /// Thinking tokens are billed as output, so they count as completion tokens.
    pub fn to_openai(self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_token_count,
            completion_tokens: self.candidates_token_count.saturating_add(self.thoughts_token_count),
            cached_tokens: self.cached_content_token_count,
            cache_write_tokens: None,
            reasoning_tokens: (self.thoughts_token_count > 0).then_some(self.thoughts_token_count),
        }
    }
}

/// `finishReason` → `finish_reason`; a stop with function calls is `tool_calls`, as OpenAI
/// reports it.
pub(super) fn finish_reason(reason: &str, has_tool_calls: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        _ if has_tool_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// A fresh tool-call id: Gemini's calls usually have none, and OpenAI clients need one to
/// send the result back.
pub(super) fn tool_call_id() -> String {
    let mut id = String::from("call_");
    id.extend(std::iter::repeat_with(fastrand::alphanumeric).take(24));
    id
}

impl Candidate {
    /// The answer's text (thoughts left out) and tool calls.
    pub fn split(self) -> (String, Vec<ToolCallOut>) {
        let mut text = String::new();
        let mut calls = Vec::new();
        for part in self.content.unwrap_or_default().parts {
            if let Some(call) = part.function_call {
                let arguments = call.args.unwrap_or_else(|| json!({})).to_string();
                calls.push(ToolCallOut {
                    id: call.id.unwrap_or_else(tool_call_id),
                    name: call.name,
                    arguments,
                    signature: part.thought_signature,
                });
            } else if part.thought != Some(true) {
                text.push_str(part.text.as_deref().unwrap_or(""));
            }
        }
        (text, calls)
    }
}

/// A whole response as an OpenAI `chat.completion`.
pub(super) fn translate(body: &[u8], model: &str) -> Result<(Bytes, Option<Usage>), ProviderError> {
    let response: Response = serde_json::from_slice(body).map_err(|e| invalid_response(PROVIDER, e))?;
    let id = response.response_id.clone().unwrap_or_else(|| format!("chatcmpl-{}", tool_call_id()));
    let model = response.model_version.as_deref().unwrap_or(model);
    let mut choices: Vec<ChoiceOut> = Vec::with_capacity(response.candidates.len().max(1));
    if response.candidates.is_empty() {
        // The prompt itself was blocked: no candidate at all.
        let blocked = response.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_ref()).is_some();
        if !blocked {
            return Err(ProviderError::InvalidResponse(format!("the {PROVIDER} response has no candidates")));
        }
        choices.push(ChoiceOut {
            content: Some(String::new()),
            tool_calls: Vec::new(),
            finish_reason: Some(FinishReason::ContentFilter),
        });
    }
    let mut candidates = response.candidates;
    candidates.sort_by_key(|c| c.index.unwrap_or(0));
    for candidate in candidates {
        let reason = candidate.finish_reason.clone().unwrap_or_default();
        let (text, tool_calls) = candidate.split();
        let finish = finish_reason(&reason, !tool_calls.is_empty());
        let content = (!text.is_empty() || tool_calls.is_empty()).then_some(text);
        choices.push(ChoiceOut { content, tool_calls, finish_reason: Some(finish) });
    }
    let usage = response.usage_metadata.map(UsageMetadata::to_openai);
    Ok((completion(&id, model, choices, usage), usage))
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    values: Vec<f32>,
}

/// A `batchEmbedContents` answer as OpenAI's embeddings list, as floats or base64 (the
/// little-endian `f32` bytes, which is what the OpenAI SDKs decode).
pub(super) fn embeddings(body: &[u8], model: &str, base64: bool) -> Result<Bytes, ProviderError> {
    let response: EmbedResponse = serde_json::from_slice(body).map_err(|e| invalid_response(PROVIDER, e))?;
    let data: Vec<Value> = response
        .embeddings
        .into_iter()
        .enumerate()
        .map(|(index, e)| json!({"object": "embedding", "index": index, "embedding": encode_vector(&e.values, base64)}))
        .collect();
    // Gemini does not count embedding tokens; zero says "unknown" in the shape clients expect.
    let body = json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": 0, "total_tokens": 0}});
    Ok(Bytes::from(body.to_string()))
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

/// google.rpc.Status, as Gemini sends it in error bodies and in-stream errors.
#[derive(Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: String,
}

/// Gemini's `{"error":{"code","message","status"}}`, as (message, OpenAI type).
pub(super) fn read_error(body: &[u8]) -> Option<(String, String)> {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    Some((envelope.error.message, openai_error_type(&envelope.error.status).to_string()))
}

/// google.rpc status name → the OpenAI type the SDKs know.
pub(super) fn openai_error_type(status: &str) -> &'static str {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" | "NOT_FOUND" => "invalid_request_error",
        "UNAUTHENTICATED" => "authentication_error",
        "PERMISSION_DENIED" => "permission_error",
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(body: Value) -> Value {
        serde_json::from_slice(&translate(body.to_string().as_bytes(), "gemini-x").unwrap().0).unwrap()
    }

    #[test]
    fn thought_signatures_ride_on_the_tool_call_and_come_back() {
        // Gemini 3: the signature of the thinking behind a call, on the call's part.
        let answer = json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
            {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2lnLTE="}]}}]});
        let (body, _) = translate(answer.to_string().as_bytes(), "gemini-x").unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let call = v["choices"][0]["message"]["tool_calls"][0].clone();
        assert_eq!(call["extra_content"], json!({"google": {"thought_signature": "c2lnLTE="}}));
        // The client replays the assistant message as it got it; the signature goes back.
        let next = json!({"model": "m", "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": v["choices"][0]["message"]["tool_calls"][0]["id"], "content": "{\"temp\": 3}"}]});
        let sent = super::super::request::translate(next.to_string().as_bytes(), false).unwrap().body;
        assert_eq!(
            sent["contents"][1]["parts"][0],
            json!({"functionCall": {"name": "weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2lnLTE="})
        );
        // Without one (older models, other providers' history), nothing is invented.
        let plain = json!({"model": "m", "messages": [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"}]});
        let sent = super::super::request::translate(plain.to_string().as_bytes(), false).unwrap().body;
        assert!(sent["contents"][1]["parts"][0].get("thoughtSignature").is_none());
    }

    #[test]
    fn candidates_calls_and_usage_translate() {
        let v = out(json!({
            "candidates": [
                {"index": 1, "content": {"role": "model", "parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS"},
                {"index": 0, "content": {"role": "model", "parts": [{"text": "thinking...", "thought": true}, {"text": "Sure. "},
                    {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}]}, "finishReason": "STOP"},
            ],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 2, "totalTokenCount": 15,
                              "cachedContentTokenCount": 3},
            "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"
        }));
        assert_eq!((&v["id"], &v["model"]), (&json!("resp-1"), &json!("gemini-2.5-flash")));
        let c0 = &v["choices"][0];
        assert_eq!(c0["message"]["content"], "Sure. ");
        assert_eq!(c0["finish_reason"], "tool_calls");
        let call = &c0["message"]["tool_calls"][0];
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["function"]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(
            (&v["choices"][1]["message"]["content"], &v["choices"][1]["finish_reason"]),
            (&json!("B"), &json!("length"))
        );
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15,
                   "prompt_tokens_details": {"cached_tokens": 3},
                   "completion_tokens_details": {"reasoning_tokens": 2}})
        );
    }

    #[test]
    fn finish_reasons_map() {
        for (reason, tools, expected) in [
            ("STOP", false, FinishReason::Stop),
            ("STOP", true, FinishReason::ToolCalls),
            ("MAX_TOKENS", false, FinishReason::Length),
            ("SAFETY", false, FinishReason::ContentFilter),
            ("RECITATION", false, FinishReason::ContentFilter),
            ("BLOCKLIST", false, FinishReason::ContentFilter),
            ("OTHER", false, FinishReason::Stop),
            ("", false, FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(reason, tools), expected, "{reason}");
        }
    }

    #[test]
    fn blocked_prompts_and_malformed_bodies() {
        let v = out(json!({"promptFeedback": {"blockReason": "SAFETY"}}));
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        for body in [json!({}), json!({"candidates": "x"}), json!([1])] {
            assert!(
                matches!(translate(body.to_string().as_bytes(), "m"), Err(ProviderError::InvalidResponse(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn embeddings_as_floats_or_base64() {
        use base64::Engine;
        let body = br#"{"embeddings":[{"values":[1.0,-2.5]},{"values":[0.5]}]}"#;
        let v: Value = serde_json::from_slice(&embeddings(body, "e", false).unwrap()).unwrap();
        assert_eq!(v["data"][0]["embedding"], json!([1.0, -2.5]));
        assert_eq!(v["data"][1]["index"], 1);
        let v: Value = serde_json::from_slice(&embeddings(body, "e", true).unwrap()).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw, [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat());
        assert!(embeddings(b"{}", "e", false).is_err());
    }

    #[test]
    fn errors_map() {
        let body = br#"{"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(read_error(body), Some(("API key not valid".into(), "invalid_request_error".into())));
        assert_eq!(openai_error_type("RESOURCE_EXHAUSTED"), "rate_limit_error");
    }
}
