//! What the translating adapters (Anthropic, Gemini) share: the OpenAI request as typed data,
//! the OpenAI response and stream chunks they write, and the loop that turns an upstream event
//! stream into OpenAI chunks.
//!
//! Pass-through adapters never come here: they relay bytes untouched.

pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

use crate::providers::ProviderError;

/// An image the client sent as a `data:` URL: its media type and base64 payload.
pub(crate) struct DataUrl<'a> {
    /// e.g. `image/png`.
    pub media_type: &'a str,
    /// The base64 text, not decoded: both providers take base64.
    pub data: &'a str,
}

/// Splits `data:<media type>;base64,<data>`; `None` for anything else (including data URLs
/// that are not base64, which no provider accepts).
pub(crate) fn parse_data_url(url: &str) -> Option<DataUrl<'_>> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty()).then_some(DataUrl { media_type, data })
}

/// A JSON value as bytes, without going through `Display`.
pub(crate) fn to_bytes(value: &serde_json::Value) -> bytes::Bytes {
    // Serializing a `Value` into memory cannot fail.
    serde_json::to_vec(value).map(bytes::Bytes::from).unwrap_or_default()
}

/// A JSON value an upstream answered that could not be read: the provider broke its promise.
pub(crate) fn invalid_response(provider: &str, err: impl std::fmt::Display) -> ProviderError {
    ProviderError::InvalidResponse(format!("unreadable {provider} response: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_type_and_payload() {
        let url = parse_data_url("data:image/png;base64,iVBORw0K").unwrap();
        assert_eq!((url.media_type, url.data), ("image/png", "iVBORw0K"));
        assert!(parse_data_url("data:text/plain,hello").is_none());
        assert!(parse_data_url("https://example.com/cat.png").is_none());
        assert!(parse_data_url("data:;base64,xx").is_none());
    }
}
