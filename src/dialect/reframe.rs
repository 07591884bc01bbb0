//! A Chat Completions stream rewritten event by event into a client dialect's stream by a
//! [`FromChat`] writer. Each frame keeps its flags: whether the stream may commit is decided
//! on the Chat side.

use bytes::BytesMut;
use futures_util::StreamExt;

use super::FromChat;
use crate::providers::translate::stream::{SseDecoder, SseEvent};
use crate::providers::{Frame, Frames};

/// `frames` (Chat events) as `writer`'s dialect. An upstream error event becomes the writer's
/// error event in a failed frame; a broken connection passes on as the error it is, before the
/// commit for the router to fail over, after it for the relay to end the stream with its own
/// error event in the client's dialect.
pub(crate) fn reframe(frames: Frames, writer: Box<dyn FromChat>) -> Frames {
    let state = State { frames, writer, decoder: SseDecoder::default(), events: Vec::new(), over: false };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.over {
            return None;
        }
        let frame = match state.frames.next().await {
            None => return None,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                state.over = true;
                return Some((Err(error), state));
            }
        };
        let mut out = BytesMut::with_capacity(frame.bytes.len() * 2);
        if let Err(error) = state.decoder.push(&frame.bytes, &mut state.events) {
            state.over = true;
            return Some((Err(error), state));
        }
        for SseEvent { data, .. } in state.events.drain(..) {
            if data == "[DONE]" {
                state.writer.finish(frame.usage.as_ref(), &mut out);
            } else if frame.failed && is_error(&data) {
                state.writer.error(&data, &mut out);
            } else {
                state.writer.chunk(&data, &mut out);
            }
        }
        state.over = frame.done || frame.failed;
        Some((Ok(Frame { bytes: out.freeze(), ..frame }), state))
    })
    .boxed()
}

struct State {
    frames: Frames,
    writer: Box<dyn FromChat>,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    over: bool,
}

/// An OpenAI error event: `{"error": …}` at the top level.
fn is_error(data: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        error: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_str::<Probe>(data).is_ok_and(|probe| probe.error.is_some())
}
