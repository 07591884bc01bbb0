//! Gemini's `streamGenerateContent?alt=sse` events → OpenAI chunks.
//!
//! Each event is a partial `GenerateContentResponse`. Gemini sends no `[DONE]`: the stream
//! is complete when every candidate has a `finishReason` and the upstream closes; only then
//! does the client get the usage chunk (if asked for) and `[DONE]`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::request::PROVIDER;
use super::response::{ErrorDetail, Response, UsageMetadata, finish_reason, openai_error_type};
use crate::providers::ProviderError;
use crate::providers::translate::invalid_response;
use crate::providers::translate::response::{ChunkWriter, FinishReason};
use crate::providers::translate::stream::{Flow, SseEvent, Translate, upstream_error};

#[derive(Deserialize)]
struct MaybeError {
    #[serde(default)]
    error: Option<ErrorDetail>,
}

#[derive(Default)]
struct CandidateState {
    tool_calls: u32,
    finished: bool,
}

/// The translation state of one stream.
pub(super) struct GeminiStream {
    model: String,
    candidates: BTreeMap<u32, CandidateState>,
    usage: Option<UsageMetadata>,
}

impl GeminiStream {
    pub(super) fn new(model: &str) -> Self {
        Self { model: model.to_string(), candidates: BTreeMap::new(), usage: None }
    }
}

impl Translate for GeminiStream {
    fn event(&mut self, event: &SseEvent, out: &mut ChunkWriter) -> Result<Flow, ProviderError> {
        if let Ok(MaybeError { error: Some(error) }) = serde_json::from_str(&event.data) {
            let message = format!("{PROVIDER} stream error ({}): {}", error.status, error.message);
            return upstream_error(out, error.code, &message, openai_error_type(&error.status));
        }
        let response: Response =
            serde_json::from_str(&event.data).map_err(|e| invalid_response(PROVIDER, e))?;
        if !out.identified() {
            let id = response
                .response_id
                .clone()
                .unwrap_or_else(|| format!("chatcmpl-{}", super::response::tool_call_id()));
            out.identify(&id, response.model_version.as_deref().unwrap_or(&self.model));
        }
        if let Some(usage) = response.usage_metadata {
            self.usage = Some(usage);
        }
        if response.candidates.is_empty()
            && response.prompt_feedback.as_ref().and_then(|f| f.block_reason.as_ref()).is_some()
        {
            out.role(0);
            out.finish(0, FinishReason::ContentFilter);
            self.candidates.insert(0, CandidateState { tool_calls: 0, finished: true });
        }
        for candidate in response.candidates {
            let index = candidate.index.unwrap_or(0);
            let state = self.candidates.entry(index).or_insert_with(|| {
                out.role(index);
                CandidateState::default()
            });
            let reason = candidate.finish_reason.clone();
            let (text, calls) = candidate.split();
            out.content(index, &text);
            for call in calls {
                // Gemini sends each call whole: its first delta carries all of it.
                out.tool_call_start(index, state.tool_calls, &call);
                state.tool_calls += 1;
            }
            if let Some(reason) = reason {
                out.finish(index, finish_reason(&reason, state.tool_calls > 0));
                state.finished = true;
            }
        }
        Ok(Flow::Continue)
    }

    fn end(&mut self, out: &mut ChunkWriter) -> Result<(), ProviderError> {
        if self.candidates.is_empty() || self.candidates.values().any(|c| !c.finished) {
            return Err(ProviderError::InvalidResponse(format!(
                "the {PROVIDER} stream ended before a finishReason"
            )));
        }
        out.usage(self.usage.unwrap_or_default().to_openai());
        out.done();
        Ok(())
    }

    fn usage(&self) -> Option<crate::usage::Usage> {
        self.usage.map(UsageMetadata::to_openai)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::translate::stream::run_translator;
    use serde_json::{Value, json};

    fn run(events: &[Value], include_usage: bool) -> (Vec<Value>, bool, Result<(), ProviderError>) {
        let events: Vec<SseEvent> =
            events.iter().map(|e| SseEvent { event: String::new(), data: e.to_string() }).collect();
        run_translator(&mut GeminiStream::new("gemini-x"), &events, include_usage)
    }

    #[test]
    fn text_and_a_call_stream_then_done() {
        let (chunks, done, end) = run(
            &[
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}], "modelVersion": "gemini-2.5", "responseId": "r1"}),
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {"a": 1}}}]}, "index": 0}]}),
                json!({"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "STOP", "index": 0}],
                       "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}}),
            ],
            true,
        );
        assert!(done && end.is_ok());
        assert!(chunks.iter().all(|c| c["id"] == "r1" && c["model"] == "gemini-2.5"));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String =
            chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        let call = chunks.iter().find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0)).unwrap();
        assert_eq!((&call["index"], &call["function"]["arguments"]), (&json!(0), &json!("{\"a\":1}")));
        assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 6);
    }

    #[test]
    fn a_streamed_call_carries_its_thought_signature() {
        let (chunks, done, end) = run(
            &[
                json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}]}}]}),
            ],
            false,
        );
        assert!(done && end.is_ok());
        let call =
            chunks.iter().find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned()).unwrap();
        assert_eq!(call["extra_content"]["google"]["thought_signature"], "c2ln");
    }

    #[test]
    fn truncated_empty_and_error_streams() {
        let (_, done, end) = run(&[json!({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})], false);
        assert!(!done && matches!(end, Err(ProviderError::InvalidResponse(_))));
        let (_, _, end) = run(&[], false);
        assert!(matches!(end, Err(ProviderError::InvalidResponse(_))));
        let error = json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}});
        let (_, _, end) = run(std::slice::from_ref(&error), false);
        assert!(matches!(end, Err(ProviderError::Status { status, .. }) if status.as_u16() == 503));
        let (_, _, end) = run(&[json!({"candidates": "nope"})], false);
        assert!(matches!(end, Err(ProviderError::InvalidResponse(_))));
    }
}
