//! The OpenAI responses translating adapters write: `chat.completion` bodies,
//! `chat.completion.chunk` events, usage, and error envelopes.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::HeaderValue;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{ErrorBody, ErrorEnvelope};
use crate::providers::ProviderError;

/// OpenAI's `finish_reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

pub(crate) use crate::usage::Usage;

/// A tool call in an answer, arguments already a JSON string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ToolCallOut {
    pub id: String,
    pub name: String,
    pub arguments: String,
    /// Gemini's thought signature for this call, which must come back with it next turn.
    pub signature: Option<String>,
}

/// Where a Gemini thought signature rides on an OpenAI tool call, as Google's own
/// OpenAI-compatible endpoint puts it: `extra_content.google.thought_signature`. Clients that
/// replay the assistant message as they got it (every SDK's tool loop) send it back.
pub(crate) fn signature_extra(signature: &str) -> Value {
    json!({"google": {"thought_signature": signature}})
}

/// One choice of a complete answer.
#[derive(Debug, Default)]
pub(crate) struct ChoiceOut {
    /// `None` only when the answer is tool calls alone, as OpenAI does.
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCallOut>,
    pub finish_reason: Option<FinishReason>,
}

/// Unix seconds now, for `created`.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A complete `chat.completion` body, with every key the SDKs require.
pub(crate) fn completion(id: &str, model: &str, choices: Vec<ChoiceOut>, usage: Option<Usage>) -> Bytes {
    let choices: Vec<Value> = choices
        .into_iter()
        .enumerate()
        .map(|(index, choice)| {
            let mut message = json!({"role": "assistant", "content": choice.content, "refusal": null});
            if !choice.tool_calls.is_empty() {
                message["tool_calls"] = choice
                    .tool_calls
                    .iter()
                    .map(|call| {
                        let mut out = json!({"id": call.id, "type": "function",
                               "function": {"name": call.name, "arguments": call.arguments}});
                        if let Some(signature) = &call.signature {
                            out["extra_content"] = signature_extra(signature);
                        }
                        out
                    })
                    .collect();
            }
            json!({"index": index, "message": message, "logprobs": null,
                   "finish_reason": choice.finish_reason.unwrap_or(FinishReason::Stop)})
        })
        .collect();
    let mut body = json!({
        "id": id, "object": "chat.completion", "created": now_secs(), "model": model, "choices": choices,
    });
    if let Some(usage) = usage {
        body["usage"] = usage.to_json();
    }
    super::to_bytes(&body)
}

/// One `chat.completion.chunk`, serialized straight from borrowed fields: streams write one
/// per token, so no intermediate `Value` tree.
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    /// Absent unless `include_usage`; then `null` on every chunk but the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Value>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    /// Always `null`: translated providers give no log probabilities.
    logprobs: (),
    finish_reason: Option<FinishReason>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<Value>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// `data: <json>\n\n`.
fn write_event(out: &mut BytesMut, body: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    // Serializing plain structs and strings into memory cannot fail.
    let _ = serde_json::to_writer(out.writer(), body);
    out.extend_from_slice(b"\n\n");
}

/// Writes `chat.completion.chunk` events, all with the same `id`, `created` and `model`.
pub(crate) struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    out: BytesMut,
    /// Whether any event has been written.
    pub started: bool,
    /// Whether content, a tool call or a finish reason has been written: until then the
    /// stream has not committed and a failure can still fail over.
    pub meaningful: bool,
    /// `[DONE]` has been written.
    pub finished: bool,
    /// An error event has been written.
    pub errored: bool,
}

impl ChunkWriter {
    /// A writer for one stream; with `include_usage`, every chunk carries `"usage": null`
    /// and [`ChunkWriter::usage`] writes the final usage chunk.
    pub fn new(include_usage: bool) -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created: now_secs(),
            include_usage,
            out: BytesMut::new(),
            started: false,
            meaningful: false,
            finished: false,
            errored: false,
        }
    }

    /// Sets the `id` and `model` of the chunks to come (from the upstream's first event).
    pub fn identify(&mut self, id: &str, model: &str) {
        id.clone_into(&mut self.id);
        model.clone_into(&mut self.model);
    }

    /// Whether [`ChunkWriter::identify`] has been called with an id.
    pub fn identified(&self) -> bool {
        !self.id.is_empty()
    }

    fn chunk(&mut self, choice: u32, delta: Delta<'_>, finish: Option<FinishReason>) {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &[ChunkChoice { index: choice, delta, logprobs: (), finish_reason: finish }],
            usage: self.include_usage.then_some(None),
        };
        write_event(&mut self.out, &chunk);
        self.started = true;
    }

    /// The first chunk of a choice: the role alone. Not `content: ""`: whether text or tool
    /// calls follow is not known yet, and clients such as the Vercel AI SDK turn an empty
    /// string into an empty text part of a tool-call answer.
    pub fn role(&mut self, choice: u32) {
        self.chunk(choice, Delta { role: Some("assistant"), ..Delta::default() }, None);
    }

    /// A piece of text.
    pub fn content(&mut self, choice: u32, text: &str) {
        if !text.is_empty() {
            self.chunk(choice, Delta { content: Some(text), ..Delta::default() }, None);
            self.meaningful = true;
        }
    }

    /// The first delta of a tool call: the only one with its `id`, `type`, `name` and (Gemini)
    /// thought signature.
    pub fn tool_call_start(&mut self, choice: u32, index: u32, call: &ToolCallOut) {
        let call = ToolCallDelta {
            index,
            id: Some(&call.id),
            kind: Some("function"),
            function: FunctionDelta { name: Some(&call.name), arguments: &call.arguments },
            extra_content: call.signature.as_deref().map(signature_extra),
        };
        self.chunk(choice, Delta { tool_calls: Some([call]), ..Delta::default() }, None);
        self.meaningful = true;
    }

    /// More of a tool call's arguments.
    pub fn tool_arguments(&mut self, choice: u32, index: u32, fragment: &str) {
        if !fragment.is_empty() {
            let call = ToolCallDelta {
                index,
                id: None,
                kind: None,
                function: FunctionDelta { name: None, arguments: fragment },
                extra_content: None,
            };
            self.chunk(choice, Delta { tool_calls: Some([call]), ..Delta::default() }, None);
        }
    }

    /// The last chunk of a choice: an empty delta and the finish reason.
    pub fn finish(&mut self, choice: u32, reason: FinishReason) {
        self.chunk(choice, Delta::default(), Some(reason));
        self.meaningful = true;
    }

    /// The usage chunk (`choices: []`), written only when the client asked for it.
    pub fn usage(&mut self, usage: Usage) {
        if self.include_usage {
            let chunk = Chunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices: &[],
                usage: Some(Some(usage.to_json())),
            };
            write_event(&mut self.out, &chunk);
            self.started = true;
        }
    }

    /// `data: [DONE]`.
    pub fn done(&mut self) {
        self.out.extend_from_slice(b"data: [DONE]\n\n");
        self.finished = true;
    }

    /// A mid-stream error, in the shape the SDKs raise as `APIError`.
    pub fn error(&mut self, message: &str, kind: &str) {
        let envelope = ErrorEnvelope { error: ErrorBody { message, kind, param: None, code: Some(kind) } };
        self.out.extend_from_slice(b"data: ");
        self.out.extend_from_slice(&envelope.to_bytes());
        self.out.extend_from_slice(b"\n\n");
        self.started = true;
        self.errored = true;
    }

    /// `: ping`, a comment every SSE client ignores, to keep idle connections alive (the
    /// router holds it, like everything before the first content, until the stream commits).
    pub fn ping(&mut self) {
        if self.started {
            self.out.extend_from_slice(b": ping\n\n");
        }
    }

    /// Everything written since the last call.
    pub fn take(&mut self) -> Bytes {
        self.out.split().freeze()
    }
}

/// An embedding as OpenAI sends it: a float array, or base64 of little-endian `f32`s.
pub(crate) fn encode_vector(values: &[f32], base64: bool) -> Value {
    if !base64 {
        return json!(values);
    }
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Rewrites an upstream error's body into OpenAI's envelope, using `read` to find the
/// provider's message and error type; any other error passes unchanged. The client sees this
/// body only for errors relayed as the client's fault (400, 413, 422).
pub(crate) fn to_openai_error(
    error: ProviderError,
    read: impl FnOnce(&[u8]) -> Option<(String, String)>,
) -> ProviderError {
    match error {
        ProviderError::Status { status, retry_after, body, .. } => {
            let (message, kind) = read(&body).unwrap_or_else(|| {
                (format!("The provider answered HTTP {}", status.as_u16()), "upstream_error".to_string())
            });
            let envelope = ErrorEnvelope {
                error: ErrorBody { message: &message, kind: &kind, param: None, code: None },
            };
            ProviderError::Status {
                status,
                retry_after,
                content_type: Some(HeaderValue::from_static("application/json")),
                body: envelope.to_bytes(),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(bytes: &Bytes) -> Vec<Value> {
        std::str::from_utf8(bytes)
            .unwrap()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn chunks_share_id_and_carry_usage_only_when_asked() {
        let mut w = ChunkWriter::new(true);
        w.identify("msg_1", "claude");
        w.role(0);
        w.content(0, "");
        w.tool_call_start(
            0,
            0,
            &ToolCallOut { id: "call_1".into(), name: "f".into(), ..ToolCallOut::default() },
        );
        w.tool_arguments(0, 0, "{}");
        w.finish(0, FinishReason::ToolCalls);
        w.usage(Usage { prompt_tokens: 3, completion_tokens: 2, cached_tokens: Some(1), ..Usage::default() });
        w.done();
        let out = w.take();
        assert!(out.ends_with(b"data: [DONE]\n\n"));
        let chunks = events(&out);
        assert_eq!(chunks.len(), 5, "empty content writes nothing");
        assert!(chunks.iter().all(|e| e["id"] == "msg_1" && e["object"] == "chat.completion.chunk"));
        assert!(chunks[..4].iter().all(|e| e["usage"].is_null() && e.get("usage").is_some()));
        assert_eq!(chunks[1]["choices"][0]["delta"]["tool_calls"][0]["id"], "call_1");
        assert!(chunks[2]["choices"][0]["delta"]["tool_calls"][0].get("id").is_none());
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(chunks[4]["usage"]["total_tokens"], 5);
        assert_eq!(chunks[4]["usage"]["prompt_tokens_details"]["cached_tokens"], 1);

        let mut w = ChunkWriter::new(false);
        w.role(0);
        w.usage(Usage::default());
        let plain = events(&w.take());
        assert_eq!(plain.len(), 1);
        assert!(plain[0].get("usage").is_none());
    }

    #[test]
    fn completions_have_every_required_key() {
        let body = completion(
            "id1",
            "m",
            vec![ChoiceOut {
                content: None,
                tool_calls: vec![ToolCallOut {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                    ..ToolCallOut::default()
                }],
                finish_reason: Some(FinishReason::ToolCalls),
            }],
            Some(Usage { prompt_tokens: 1, completion_tokens: 2, ..Usage::default() }),
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["object"], "chat.completion");
        let choice = &v["choices"][0];
        assert!(choice["message"]["content"].is_null() && choice["message"].get("refusal").is_some());
        assert!(choice.get("logprobs").is_some());
        assert_eq!(choice["message"]["tool_calls"][0]["function"]["arguments"], "{}");
        assert_eq!(v["usage"]["total_tokens"], 3);
    }
}
