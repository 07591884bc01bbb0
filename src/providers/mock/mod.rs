//! The built-in `mock` provider: answers in OpenAI's format without any network, echoing the
//! last user message, so the proxy runs (and fails over) with no API keys at all.

mod config;

pub use config::MockConfig;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http::StatusCode;
use http::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Call, Provider, ProviderError, Reply};

/// The mock provider.
pub struct Mock {
    latency: Duration,
    chunk_delay: Duration,
    fail_status: StatusCode,
    failure_probability: f64,
}

#[derive(Deserialize)]
struct MockRequest {
    model: String,
    messages: Vec<MockMessage>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct MockMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

impl Mock {
    /// Builds the mock from its settings.
    pub fn new(config: &MockConfig) -> Self {
        Self {
            latency: Duration::from_millis(config.latency_ms),
            chunk_delay: Duration::from_millis(config.chunk_delay_ms),
            fail_status: config
                .fail_status
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            failure_probability: config.failure_probability(),
        }
    }

    async fn answer(&self, call: Call) -> Result<Reply, ProviderError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if self.failure_probability > 0.0 && fastrand::f64() < self.failure_probability {
            return Err(error(self.fail_status, "mock provider failure (configured)", "server_error"));
        }
        let request: MockRequest = serde_json::from_slice(&call.body).map_err(|e| {
            error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}"), "invalid_request_error")
        })?;
        let prompt = request.messages.iter().map(|m| text_of(&m.content)).collect::<Vec<_>>();
        let reply = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| text_of(&m.content))
            .unwrap_or_default();
        let usage = json!({
            "prompt_tokens": prompt.iter().map(|t| words(t)).sum::<usize>(),
            "completion_tokens": words(&reply),
            "total_tokens": prompt.iter().map(|t| words(t)).sum::<usize>() + words(&reply),
        });
        let id = format!("chatcmpl-mock-{}", uuid::Uuid::new_v4().simple());
        let created = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if !call.stream {
            let body = json!({
                "id": id, "object": "chat.completion", "created": created, "model": request.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": reply, "refusal": null},
                    "logprobs": null, "finish_reason": "stop"
                }],
                "usage": usage,
            });
            return Ok(Reply::openai_json(Bytes::from(body.to_string())));
        }
        // Like OpenAI: usage only when asked (the router asks on the client's behalf).
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        let chunk = |delta: Value, finish: Value| {
            let mut c = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            });
            if include_usage {
                c["usage"] = Value::Null;
            }
            sse(&c)
        };
        let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
        events.extend(pieces(&reply).map(|piece| chunk(json!({"content": piece}), Value::Null)));
        events.push(chunk(json!({}), json!("stop")));
        if include_usage {
            events.push(sse(&json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": request.model,
                "choices": [], "usage": usage,
            })));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        let delay = self.chunk_delay;
        let stream =
            futures_util::stream::iter(events.into_iter().enumerate()).then(move |(i, event)| async move {
                if i > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(event)
            });
        Ok(Reply::stream(super::openai::stream::frames(stream.boxed(), !call.client_wants_usage)))
    }
}

impl Provider for Mock {
    fn asks_for_stream_usage(&self) -> bool {
        true
    }

    fn chat(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(self.answer(call))
    }

    fn embeddings(&self, call: Call) -> BoxFuture<'_, Result<Reply, ProviderError>> {
        Box::pin(self.embed(call))
    }
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    model: String,
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

impl Mock {
    /// Deterministic unit vectors (the same text always embeds the same), so demos and
    /// tests can compare them.
    async fn embed(&self, call: Call) -> Result<Reply, ProviderError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        if self.failure_probability > 0.0 && fastrand::f64() < self.failure_probability {
            return Err(error(self.fail_status, "mock provider failure (configured)", "server_error"));
        }
        let request: EmbeddingsRequest = serde_json::from_slice(&call.body).map_err(|e| {
            error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}"), "invalid_request_error")
        })?;
        let inputs: Vec<String> = match &request.input {
            Value::Array(items) => items.iter().map(Value::to_string).collect(),
            one => vec![one.to_string()],
        };
        let dimensions = request.dimensions.unwrap_or(8).clamp(1, 4096);
        let base64 = request.encoding_format.as_deref() == Some("base64");
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let vector = unit_vector(text, dimensions);
                json!({"object": "embedding", "index": index, "embedding": crate::providers::translate::response::encode_vector(&vector, base64)})
            })
            .collect();
        let tokens: usize = inputs.iter().map(|t| words(t).max(1)).sum();
        let body = json!({"object": "list", "data": data, "model": request.model,
                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
        Ok(Reply::openai_json(Bytes::from(body.to_string())))
    }
}

/// A unit vector seeded by the text's hash.
fn unit_vector(text: &str, dimensions: usize) -> Vec<f32> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let mut rng = fastrand::Rng::with_seed(hasher.finish());
    let raw: Vec<f32> = (0..dimensions).map(|_| rng.f32() * 2.0 - 1.0).collect();
    let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::EPSILON);
    raw.into_iter().map(|v| v / norm).collect()
}

fn error(status: StatusCode, message: &str, kind: &str) -> ProviderError {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    ProviderError::Status {
        status,
        retry_after: None,
        content_type: Some(HeaderValue::from_static("application/json")),
        body: Bytes::from(body.to_string()),
    }
}

fn sse(event: &Value) -> Bytes {
    Bytes::from(format!("data: {event}\n\n"))
}

/// The text of a message's `content`: a string, or the text parts of an array.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" ")
        }
        _ => String::new(),
    }
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Splits text into word-sized pieces that concatenate back to exactly the text.
fn pieces(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(' ')
}
