//! Errors in Anthropic's shape: `{"type":"error","error":{"type":…,"message":…}}`, from an
//! HTTP status and whatever body the upstream sent (OpenAI's envelope, Anthropic's own, or
//! anything else), and the error types of a stream's `error` event.

use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Anthropic's error type for `status`.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    crate::api::anthropic_error_type(status.as_u16())
}

/// The error types Anthropic defines; a type outside them is replaced by the status's.
const KNOWN_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
];

/// The body Anthropic's SDKs read as an error.
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// Serializes the envelope; plain strings cannot fail to serialize.
fn envelope(kind: &str, message: &str) -> Bytes {
    let body = Envelope { kind: "error", error: Detail { kind, message } };
    serde_json::to_vec(&body).map(Bytes::from).unwrap_or_default()
}

/// What an error body says, however it is shaped.
#[derive(Deserialize)]
struct AnyError {
    #[serde(default, rename = "type")]
    kind: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
}

/// (message, type words) of an error body: OpenAI's `{"error":{"message","type","code"}}`,
/// Anthropic's `{"type":"error","error":{"type","message"}}`, `{"error":"text"}` or
/// `{"message":"text"}`.
fn read(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(any) = serde_json::from_slice::<AnyError>(body) else { return (None, None) };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
    match any.error {
        Some(Value::Object(detail)) => {
            let kind = text(detail.get("type")).or_else(|| text(detail.get("code")));
            (text(detail.get("message")), kind)
        }
        Some(Value::String(message)) => (Some(message), text(any.kind.as_ref())),
        _ => (text(any.message.as_ref()), None),
    }
}

/// An upstream's error body with `status` → Anthropic's error body. The message is the
/// upstream's when it has one; the type is the upstream's when it is one of Anthropic's
/// types, else the one for `status`.
pub(crate) fn error_body(status: StatusCode, body: &[u8]) -> Bytes {
    let (message, kind) = read(body);
    let kind = kind
        .as_deref()
        .and_then(|k| KNOWN_TYPES.iter().find(|known| **known == k).copied())
        .unwrap_or_else(|| error_type(status));
    let message = message.unwrap_or_else(|| format!("The upstream answered HTTP {}", status.as_u16()));
    envelope(kind, &message)
}

/// A stream's error event data (`{"error":{…}}` as the Chat stream or the proxy wrote it) →
/// the Anthropic `error` event's data. Rate limits stay rate limits, overload and
/// unavailability become `overloaded_error` (both retried by Anthropic's SDKs), the rest
/// `api_error`.
pub(super) fn stream_error(data: &str) -> Bytes {
    let (message, kind) = read(data.as_bytes());
    let words = kind.unwrap_or_default();
    let kind = if words.contains("rate_limit") {
        "rate_limit_error"
    } else if words.contains("overloaded") || words.contains("unavailable") || words.contains("capacity") {
        "overloaded_error"
    } else {
        "api_error"
    };
    envelope(kind, message.as_deref().unwrap_or("The upstream stream failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn statuses_map_to_anthropics_types() {
        for (code, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(error_type(status(code)), kind, "{code}");
        }
    }

    // Each expected body validated with anthropic 2.16.0 (`BetaErrorResponse.model_validate`).
    #[test]
    fn bodies_of_any_shape_become_anthropic_errors() {
        let cases: [(u16, &[u8], &str); 6] = [
            (
                429,
                br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}"#,
            ),
            (
                400,
                br#"{"error":{"message":"bad field","type":"invalid_request_error","param":"x","code":null}}"#,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad field"}}"#,
            ),
            (
                529,
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
            (
                500,
                b"<html>oops</html>",
                r#"{"type":"error","error":{"type":"api_error","message":"The upstream answered HTTP 500"}}"#,
            ),
            (
                404,
                br#"{"error":"no such model"}"#,
                r#"{"type":"error","error":{"type":"not_found_error","message":"no such model"}}"#,
            ),
            (
                503,
                br#"{"message":"try later"}"#,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"try later"}}"#,
            ),
        ];
        for (code, body, expected) in cases {
            assert_eq!(std::str::from_utf8(&error_body(status(code), body)).unwrap(), expected);
        }
    }

    #[test]
    fn stream_errors_keep_rate_limits_and_overload() {
        let kind = |data: &str| {
            let v: Value = serde_json::from_slice(&stream_error(data)).unwrap();
            v["error"]["type"].as_str().unwrap().to_string()
        };
        assert_eq!(kind(r#"{"error":{"type":"rate_limit_error","message":"m"}}"#), "rate_limit_error");
        assert_eq!(kind(r#"{"error":{"code":"rate_limit_exceeded","message":"m"}}"#), "rate_limit_error");
        assert_eq!(kind(r#"{"error":{"type":"service_unavailable"}}"#), "overloaded_error");
        assert_eq!(kind(r#"{"error":{"type":"server_error","message":"m"}}"#), "api_error");
        assert_eq!(kind("garbage"), "api_error");
    }
}
