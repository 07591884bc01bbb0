//! The Chat Completions output both client-dialect writers read, as borrowed typed data: a
//! `chat.completion` ([`Completion`]) and a `chat.completion.chunk` ([`Chunk`]).
//!
//! Strings borrow from the body unless they have escapes. Where hosts disagree on a field's
//! type (`reasoning` is text for OpenRouter and Groq, an object for some others) or where only
//! one dialect uses a field (`id`, `created`), it is kept as raw JSON and read with [`text`] or
//! [`Completion::created`]/[`Chunk::created`], so that an unexpected value is ignored rather than
//! failing the whole parse.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// A `chat.completion`.
#[derive(Deserialize)]
pub(crate) struct Completion<'a> {
    /// Text when it is a string (see [`text`]).
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    created: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub choices: Vec<Choice<'a>>,
}

impl Completion<'_> {
    /// `created`, when it is a timestamp.
    pub fn created(&self) -> Option<u64> {
        number(self.created)
    }
}

/// A choice of a `chat.completion`.
#[derive(Deserialize)]
pub(crate) struct Choice<'a> {
    #[serde(default, borrow)]
    pub message: Option<Message<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// The assistant message of a choice.
#[derive(Deserialize)]
pub(crate) struct Message<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub refusal: Option<Cow<'a, str>>,
    /// DeepSeek's (and vLLM's) name for the reasoning text (see [`text`]).
    #[serde(default, borrow)]
    pub reasoning_content: Option<&'a RawValue>,
    /// OpenRouter's and Groq's; some hosts send an object here, which is not text (see
    /// [`text`]).
    #[serde(default, borrow)]
    pub reasoning: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_calls: Vec<ToolCall<'a>>,
}

/// A tool call of a message.
#[derive(Deserialize)]
pub(crate) struct ToolCall<'a> {
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub function: Function<'a>,
}

/// The function a tool call calls.
#[derive(Deserialize)]
pub(crate) struct Function<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Option<Cow<'a, str>>,
}

/// A `chat.completion.chunk`.
#[derive(Deserialize)]
pub(crate) struct Chunk<'a> {
    /// Text when it is a string (see [`text`]).
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    created: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub choices: Vec<ChunkChoice<'a>>,
    /// Whether the chunk has a `usage` key (read with [`crate::usage::Usage::from_openai`]).
    #[serde(default)]
    pub usage: Option<IgnoredAny>,
}

impl Chunk<'_> {
    /// `created`, when it is a timestamp.
    pub fn created(&self) -> Option<u64> {
        number(self.created)
    }
}

/// A choice of a chunk.
#[derive(Deserialize)]
pub(crate) struct ChunkChoice<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// What a chunk adds to its choice.
#[derive(Deserialize)]
pub(crate) struct Delta<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub refusal: Option<Cow<'a, str>>,
    /// See [`Message::reasoning_content`].
    #[serde(default, borrow)]
    pub reasoning_content: Option<&'a RawValue>,
    /// See [`Message::reasoning`].
    #[serde(default, borrow)]
    pub reasoning: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

/// A fragment of a tool call, by its `index`.
#[derive(Deserialize)]
pub(crate) struct ToolCallDelta<'a> {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub function: Option<FunctionDelta<'a>>,
}

/// A fragment of a tool call's function.
#[derive(Deserialize)]
pub(crate) struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Option<Cow<'a, str>>,
}

/// A string that borrows from the body unless it has escapes.
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// A raw field's text, when it is a string (possibly empty); `None` for anything else.
pub(crate) fn text(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Str<'_>>(raw?.get()).ok().map(|s| s.0)
}

/// A raw field's value, when it is an unsigned integer.
fn number(raw: Option<&RawValue>) -> Option<u64> {
    serde_json::from_str(raw?.get()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_that_is_not_text_reads_as_none_without_failing() {
        let body = r#"{"choices":[{"message":{"reasoning":{"effort":"high"},"reasoning_content":"why"}}]}"#;
        let completion: Completion<'_> = serde_json::from_str(body).expect("readable");
        let message = completion.choices[0].message.as_ref().expect("a message");
        assert_eq!(text(message.reasoning), None);
        assert_eq!(text(message.reasoning_content).as_deref(), Some("why"));
        let chunk = r#"{"choices":[{"delta":{"reasoning":[1],"reasoning_content":null}}]}"#;
        let chunk: Chunk<'_> = serde_json::from_str(chunk).expect("readable");
        let delta = chunk.choices[0].delta.as_ref().expect("a delta");
        assert!(delta.reasoning.is_some() && delta.reasoning_content.is_none());
        assert_eq!(text(delta.reasoning), None);
    }

    #[test]
    fn text_borrows_unless_escaped() {
        let plain: &RawValue = serde_json::from_str(r#""plain""#).expect("json");
        assert!(matches!(text(Some(plain)), Some(Cow::Borrowed("plain"))));
        let escaped: &RawValue = serde_json::from_str(r#""a\nb""#).expect("json");
        assert!(matches!(text(Some(escaped)), Some(Cow::Owned(t)) if t == "a\nb"));
    }

    #[test]
    fn id_and_created_of_another_type_are_ignored() {
        let chunk: Chunk<'_> =
            serde_json::from_str(r#"{"id":7,"created":"soon","choices":[]}"#).expect("readable");
        assert_eq!(text(chunk.id), None);
        assert_eq!(chunk.created(), None);
        let completion: Completion<'_> =
            serde_json::from_str(r#"{"id":"c1","created":1700000000,"choices":[]}"#).expect("readable");
        assert_eq!(text(completion.id).as_deref(), Some("c1"));
        assert_eq!(completion.created(), Some(1_700_000_000));
    }
}
