//! The one place that decides what an upstream outcome means.

use std::time::Duration;

use http::StatusCode;

use crate::providers::ProviderError;

/// What a failed attempt means for the request and for the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The request itself is bad (400, 413, 422): relay the upstream's answer to the client,
    /// try nothing else, count nothing against the deployment.
    ClientError,
    /// The provider is rate limiting (429, or 503/529 with `Retry-After` or a rate-limit reset
    /// header): pause this deployment, try the next one, count nothing toward ejection.
    RateLimited {
        /// How long the provider asked to be left alone, if it said.
        retry_after: Option<Duration>,
    },
    /// The provider failed (connect error, timeout, 5xx without `Retry-After`, 401/403, 404,
    /// any other status, a 2xx that is not what it should be): count it and try the next
    /// deployment.
    ProviderFailure,
    /// This provider cannot serve this request (a field or endpoint it lacks); nothing was
    /// sent. Pass to the next deployment without counting anything against this one.
    Unsupported,
}

/// Classifies a failed attempt.
///
/// 401/403 mean *this provider's* key is bad and 404 that *this deployment* lacks the model,
/// so another deployment may well succeed: they are provider failures, not client errors.
pub fn classify(error: &ProviderError) -> Verdict {
    match error {
        ProviderError::Status { status, retry_after, body, .. } => match *status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY => {
                Verdict::ClientError
            }
            // OpenAI's "You exceeded your current quota" is a 429 that no wait will fix.
            StatusCode::TOO_MANY_REQUESTS if quota_exhausted(body) => Verdict::ProviderFailure,
            StatusCode::TOO_MANY_REQUESTS => Verdict::RateLimited { retry_after: *retry_after },
            // Anthropic's 529 "overloaded" and a 503 are capacity, not sickness, when the
            // provider says when to come back; without that they are failures.
            status if matches!(status.as_u16(), 503 | 529) && retry_after.is_some() => {
                Verdict::RateLimited { retry_after: *retry_after }
            }
            _ => Verdict::ProviderFailure,
        },
        ProviderError::Unsupported { .. } => Verdict::Unsupported,
        ProviderError::Connect(_)
        | ProviderError::Transport(_)
        | ProviderError::Timeout(_)
        | ProviderError::InvalidResponse(_) => Verdict::ProviderFailure,
    }
}

/// Whether a 429 says the account's quota or credit is gone (billing, not a rate limit).
fn quota_exhausted(body: &[u8]) -> bool {
    let head = &body[..body.len().min(64 * 1024)];
    ["insufficient_quota", "billing_hard_limit_reached"]
        .iter()
        .any(|code| memchr::memmem::find(head, code.as_bytes()).is_some())
}

/// Whether a client error says the request does not fit the model's context window, in the
/// words OpenAI (`context_length_exceeded`), Anthropic ("prompt is too long"), Gemini ("exceeds
/// the maximum number of tokens") and the compatible hosts use.
pub fn context_window_exceeded(status: StatusCode, body: &[u8]) -> bool {
    const PHRASES: &[&str] = &[
        "context_length_exceeded",
        "maximum context length",
        "context window",
        "prompt is too long",
        "exceeds the maximum number of tokens",
        "too many tokens",
    ];
    if !matches!(status.as_u16(), 400 | 413 | 422) {
        return false;
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).to_lowercase();
    PHRASES.iter().any(|phrase| text.contains(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn status(code: u16, retry_after: Option<Duration>) -> ProviderError {
        ProviderError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after,
            content_type: None,
            body: Bytes::new(),
        }
    }

    #[test]
    fn only_400_413_422_are_the_clients_fault() {
        for code in [400, 413, 422] {
            assert_eq!(classify(&status(code, None)), Verdict::ClientError, "{code}");
        }
        for code in [401, 403, 404, 405, 408, 409, 500, 502, 503, 504, 529, 302] {
            assert_eq!(classify(&status(code, None)), Verdict::ProviderFailure, "{code}");
        }
        let timeout = ProviderError::Timeout(Duration::from_secs(1));
        assert_eq!(classify(&timeout), Verdict::ProviderFailure);
        let garbage = ProviderError::InvalidResponse("not JSON".into());
        assert_eq!(classify(&garbage), Verdict::ProviderFailure);
    }

    #[test]
    fn rate_limits_are_429s_and_busy_answers_that_say_when() {
        let wait = Some(Duration::from_secs(9));
        assert_eq!(classify(&status(429, None)), Verdict::RateLimited { retry_after: None });
        assert_eq!(classify(&status(429, wait)), Verdict::RateLimited { retry_after: wait });
        assert_eq!(classify(&status(503, wait)), Verdict::RateLimited { retry_after: wait });
        assert_eq!(classify(&status(529, wait)), Verdict::RateLimited { retry_after: wait });
        assert_eq!(
            classify(&status(500, wait)),
            Verdict::ProviderFailure,
            "a 500 is a failure whatever it says"
        );
        let quota = ProviderError::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: None,
            content_type: None,
            body: Bytes::from_static(br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#),
        };
        assert_eq!(classify(&quota), Verdict::ProviderFailure, "no wait fixes an empty account");
    }

    #[test]
    fn context_window_errors_are_recognised_in_every_providers_words() {
        for body in [
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","code":"context_length_exceeded"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
        ] {
            assert!(context_window_exceeded(StatusCode::BAD_REQUEST, body.as_bytes()), "{body}");
        }
        assert!(!context_window_exceeded(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"message":"bad temperature"}}"#
        ));
        assert!(!context_window_exceeded(StatusCode::INTERNAL_SERVER_ERROR, b"maximum context length"));
    }
}
