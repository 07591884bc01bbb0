//! The OpenAI chat request as typed data, for adapters that must rebuild it in another
//! format, and the policy for fields a provider cannot honour.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::providers::ProviderError;

/// A chat completion request, as far as translation needs it. Fields not named here land in
/// `rest`, where [`ChatBody::reject_unsupported`] decides about them.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatBody {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// `model` and `stream` (the router's), and everything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// One entry of `messages`.
#[derive(Debug, Deserialize)]
pub(crate) struct Message {
    pub role: Role,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// A message's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// A message's `content`: a string or an array of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// One content part. Kept loose (a `type` string plus optional payloads) so an unknown part
/// type is reported by name instead of as a parse failure.
#[derive(Debug, Deserialize)]
pub(crate) struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub image_url: Option<ImageUrl>,
    #[serde(default)]
    pub file: Option<FilePart>,
}

/// A `file` part's payload: a document inline as a `data:` URL (an uploaded `file_id`
/// exists only at OpenAI).
#[derive(Debug, Deserialize)]
pub(crate) struct FilePart {
    #[serde(default)]
    pub file_data: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
}

impl FilePart {
    /// The inline document, when it is one: a base64 `data:` URL.
    pub fn inline(&self) -> Option<super::DataUrl<'_>> {
        self.file_data.as_deref().and_then(super::parse_data_url)
    }
}

/// An `image_url` part's payload.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageUrl {
    pub url: String,
}

/// An assistant message's tool call.
#[derive(Debug, Deserialize)]
pub(crate) struct ToolCall {
    pub id: String,
    pub function: FunctionCall,
    /// Provider extras a client replays as it got them (Gemini's thought signature).
    #[serde(default)]
    pub extra_content: Option<ExtraContent>,
}

/// `extra_content` of a tool call.
#[derive(Debug, Deserialize)]
pub(crate) struct ExtraContent {
    #[serde(default)]
    pub google: Option<GoogleExtra>,
}

/// `extra_content.google`.
#[derive(Debug, Deserialize)]
pub(crate) struct GoogleExtra {
    #[serde(default)]
    pub thought_signature: Option<String>,
}

impl ToolCall {
    /// The Gemini thought signature the client sent back, if any.
    pub fn thought_signature(&self) -> Option<&str> {
        self.extra_content.as_ref()?.google.as_ref()?.thought_signature.as_deref()
    }
}

/// The function a tool call names, with its arguments as a JSON string.
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// One entry of `tools`.
#[derive(Debug, Deserialize)]
pub(crate) struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub function: Option<FunctionDef>,
}

/// A function tool's declaration.
#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// `tool_choice`: `none` / `auto` / `required`, or one named function.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ToolChoice {
    Mode(String),
    Named { function: NamedFunction },
}

/// The function `tool_choice` names.
#[derive(Debug, Deserialize)]
pub(crate) struct NamedFunction {
    pub name: String,
}

/// `response_format`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchema },
}

/// `response_format.json_schema`.
#[derive(Debug, Deserialize)]
pub(crate) struct JsonSchema {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub schema: Option<Value>,
}

/// `stop`: one sequence or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    /// The sequences, as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// Fields a translating adapter may ignore because they cannot change the answer: storage
/// and billing hints, abuse-tracking ids, caching and latency hints.
const IGNORABLE: &[&str] = &[
    "model",
    "stream",
    "store",
    "metadata",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prediction",
    // How long an answer should be: a hint GPT-5 takes, and the others need not.
    "verbosity",
];

impl ChatBody {
    /// Reads the request; a body of the wrong shape is reported with the path at fault.
    pub fn parse(body: &[u8], provider: &str) -> Result<Self, ProviderError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(&mut de).map_err(|err| {
            let path = err.path().to_string();
            ProviderError::unsupported(
                format!("cannot translate the request for {provider}: {} at `{path}`", err.inner()),
                (path != ".").then_some(path),
            )
        })
    }

    /// Whether the client asked for a final usage chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false)
    }

    /// `max_completion_tokens`, else the deprecated `max_tokens`.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// `reasoning_effort` as a thinking budget in tokens, for the providers that take one
    /// (Anthropic, Gemini): `none` is 0 (no thinking), `minimal` and `low` 1,024 (Anthropic's
    /// least), `medium` 8,192, `high` 24,576, the budgets Google's own OpenAI-compatible layer
    /// uses. `None` when the client did not ask.
    pub fn thinking_budget(&self, provider: &str) -> Result<Option<u64>, ProviderError> {
        let Some(effort) = self.reasoning_effort.as_deref() else { return Ok(None) };
        Ok(Some(match effort {
            "none" => 0,
            "minimal" | "low" => 1024,
            "medium" => 8192,
            "high" | "xhigh" => 24_576,
            other => {
                return Err(ProviderError::unsupported(
                    format!(
                        "`reasoning_effort` `{other}` is not supported by {provider}; one of none, minimal, low, medium, high"
                    ),
                    Some("reasoning_effort".to_string()),
                ));
            }
        }))
    }

    /// Refuses every field left in `rest` that `provider` cannot honour, unless it has its
    /// default value or is one of the [`IGNORABLE`] hints. `also_ignorable` adds the fields
    /// this provider may drop.
    pub fn reject_unsupported(&self, provider: &str, also_ignorable: &[&str]) -> Result<(), ProviderError> {
        for (key, value) in &self.rest {
            let ignorable = IGNORABLE.contains(&key.as_str()) || also_ignorable.contains(&key.as_str());
            if ignorable || is_default(key, value) {
                continue;
            }
            return Err(unsupported_field(key, provider));
        }
        Ok(())
    }
}

/// A value that asks for nothing beyond OpenAI's default behaviour.
fn is_default(key: &str, value: &Value) -> bool {
    match (key, value) {
        (_, Value::Null) => true,
        ("logprobs", Value::Bool(false)) => true,
        ("top_logprobs", Value::Number(n)) => n.as_u64() == Some(0),
        ("logit_bias", Value::Object(map)) => map.is_empty(),
        ("modalities", Value::Array(items)) => items.iter().all(|m| m == "text"),
        _ => false,
    }
}

/// "`field` is not supported by Provider", naming the field as `param`.
pub(crate) fn unsupported_field(field: &str, provider: &str) -> ProviderError {
    ProviderError::unsupported(format!("`{field}` is not supported by {provider}"), Some(field.to_string()))
}

impl Content {
    /// The text of a content that may hold only text parts (system, developer, tool), joined
    /// with blank lines; `param` names the message for the error.
    pub fn text_only(&self, provider: &str, param: &str) -> Result<String, ProviderError> {
        match self {
            Self::Text(text) => Ok(text.clone()),
            Self::Parts(parts) => {
                let mut texts = Vec::with_capacity(parts.len());
                for (i, part) in parts.iter().enumerate() {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(text)) => texts.push(text.as_str()),
                        (kind, _) => {
                            return Err(ProviderError::unsupported(
                                format!("content part `{kind}` is not supported here by {provider}"),
                                Some(format!("{param}.content[{i}]")),
                            ));
                        }
                    }
                }
                Ok(texts.join("\n\n"))
            }
        }
    }
}

/// Conversation turns being built: role and its blocks (or parts).
pub(crate) type Turns = Vec<(&'static str, Vec<Value>)>;

/// Appends `items` as a turn of `role`, merged into the previous turn when that has the same
/// role (both Anthropic and Gemini want turns to alternate).
pub(crate) fn push_turn(turns: &mut Turns, role: &'static str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((last, existing)) if *last == role => existing.extend(items),
        _ => turns.push((role, items)),
    }
}

/// The deprecated `function` role, which translating adapters refuse.
pub(crate) fn function_role_refused(provider: &str, param: &str) -> ProviderError {
    ProviderError::unsupported(
        format!("the deprecated `function` role is not supported by {provider}; use `tool`"),
        Some(format!("{param}.role")),
    )
}

/// A tool call's `arguments`, which must be a JSON object (or empty, meaning no arguments).
pub(crate) fn parse_arguments(
    arguments: &str,
    param: impl FnOnce() -> String,
) -> Result<Value, ProviderError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(ProviderError::unsupported(
            "tool call `arguments` must be a JSON object encoded as a string",
            Some(param()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused_unless_default_or_harmless() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"store":true,
            "logprobs":false,"logit_bias":{},"modalities":["text"],"top_logprobs":null}"#;
        let chat = ChatBody::parse(body, "X").unwrap();
        assert!(chat.reject_unsupported("X", &[]).is_ok());
        for field in [r#""logprobs":true"#, r#""audio":{"voice":"alloy"}"#, r#""modalities":["audio"]"#] {
            let body = format!(r#"{{"model":"m","messages":[],{field}}}"#);
            let err =
                ChatBody::parse(body.as_bytes(), "X").unwrap().reject_unsupported("X", &[]).unwrap_err();
            let ProviderError::Unsupported { message, param } = err else { panic!() };
            assert!(message.ends_with("is not supported by X"), "{message}");
            assert!(param.is_some());
        }
    }

    #[test]
    fn shape_errors_name_the_path() {
        let err = ChatBody::parse(br#"{"messages":[{"role":"wizard"}]}"#, "X").unwrap_err();
        let ProviderError::Unsupported { message, param } = err else { panic!() };
        assert_eq!(param.as_deref(), Some("messages[0].role"), "{message}");
    }

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(parse_arguments("", String::new).unwrap(), serde_json::json!({}));
        assert_eq!(parse_arguments(r#"{"a":1}"#, String::new).unwrap(), serde_json::json!({"a":1}));
        assert!(parse_arguments("[1]", String::new).is_err());
        assert!(parse_arguments("{oops", String::new).is_err());
    }
}
