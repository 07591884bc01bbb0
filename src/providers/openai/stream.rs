//! An OpenAI-format event stream as [`Frame`]s: whole events, read for meaning, `[DONE]`,
//! errors and usage by the SSE codec; the bytes themselves pass through untouched (but for
//! the usage chunk the proxy asked for on the client's behalf).

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::StatusCode;
use http::header::HeaderValue;
use serde::Deserialize;

use crate::providers::{Frame, Frames, ProviderError};
use crate::sse::EventScanner;

/// Frames of a raw OpenAI-format stream; with `drop_usage_only`, the usage-only chunk is
/// read and left out. An error event before anything meaningful fails the attempt (so the
/// router can fail over); after it, it is relayed and ends the stream.
pub(crate) fn frames(raw: BoxStream<'static, Result<Bytes, ProviderError>>, drop_usage_only: bool) -> Frames {
    let state = (raw, EventScanner::new(drop_usage_only), false);
    futures_util::stream::unfold(state, |(mut raw, mut scanner, mut over)| async move {
        if over {
            return None;
        }
        loop {
            let chunk = match raw.next().await? {
                Ok(chunk) => chunk,
                Err(error) => return Some((Err(error), (raw, scanner, true))),
            };
            let scanned = match scanner.push(chunk) {
                Ok(scanned) => scanned,
                Err(too_large) => {
                    return Some((Err(ProviderError::InvalidResponse(too_large)), (raw, scanner, true)));
                }
            };
            if let Some(error) = scanner.early_error.take() {
                return Some((Err(error_status(&error)), (raw, scanner, true)));
            }
            if scanned.events.is_empty() {
                continue;
            }
            over = scanner.done || scanned.error.is_some();
            let frame = Frame {
                bytes: scanned.events,
                meaningful: scanner.meaningful,
                done: scanner.done,
                failed: scanned.error.is_some(),
                usage: scanner.usage,
            };
            return Some((Ok(frame), (raw, scanner, over)));
        }
    })
    .boxed()
}

#[derive(Deserialize)]
struct ErrorEvent {
    #[serde(default)]
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// An error event sent instead of an answer, as the status it stands for: its numeric `code`
/// when it has one (OpenRouter's), else what its type says (rate limit 429, overloaded 529,
/// invalid request 400), else 502. The event is the body, relayed if it is a client error.
fn error_status(data: &Bytes) -> ProviderError {
    let detail = serde_json::from_slice::<ErrorEvent>(data).ok().and_then(|e| e.error);
    let numeric = detail
        .as_ref()
        .and_then(|d| d.code.as_ref())
        .and_then(serde_json::Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c));
    let words = detail.as_ref().map(|d| {
        let code = d.code.as_ref().and_then(serde_json::Value::as_str).unwrap_or("");
        format!("{} {code}", d.kind.as_deref().unwrap_or(""))
    });
    let words = words.as_deref().unwrap_or("");
    let status = numeric.unwrap_or(if words.contains("rate_limit") {
        429
    } else if words.contains("overloaded") {
        529
    } else if words.contains("invalid_request") {
        400
    } else {
        502
    });
    ProviderError::Status {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        retry_after: None,
        content_type: Some(HeaderValue::from_static("application/json")),
        body: data.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_event_stands_for_its_status() {
        let status = |data: &str| match error_status(&Bytes::copy_from_slice(data.as_bytes())) {
            ProviderError::Status { status, .. } => status.as_u16(),
            other => panic!("{other:?}"),
        };
        assert_eq!(status(r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#), 429);
        assert_eq!(status(r#"{"error":{"type":"rate_limit_error","message":"slow down"}}"#), 429);
        assert_eq!(status(r#"{"error":{"type":"overloaded_error"}}"#), 529);
        assert_eq!(status(r#"{"error":{"type":"invalid_request_error","code":"bad"}}"#), 400);
        assert_eq!(status(r#"{"error":{"message":"?"}}"#), 502);
        assert_eq!(status("not json"), 502);
    }
}
