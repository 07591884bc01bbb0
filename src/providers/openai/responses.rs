//! A native Responses API stream as [`Frame`]s (placeholder until the scanner lands).

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::providers::{Frame, Frames, ProviderError};
use crate::usage::Usage;

/// Frames of a raw Responses SSE stream, bytes untouched.
pub(crate) fn frames(raw: BoxStream<'static, Result<Bytes, ProviderError>>) -> Frames {
    raw.map(|chunk| chunk.map(|bytes| Frame { bytes, meaningful: true, ..Frame::default() })).boxed()
}

/// The usage of a complete `response` JSON object.
pub(crate) fn usage(json: &[u8]) -> Option<Usage> {
    let _ = json;
    None
}
