//! An inbound request in any client dialect (chat completion, embeddings, Responses,
//! Anthropic Messages, token count): the client's exact bytes, plus the few fields the proxy
//! routes on. Nothing else is parsed, so unknown fields pass through untouched.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::dialect::Dialect;

/// What a request asks for: which endpoint it came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Operation {
    /// The endpoint's name in messages: `chat completions`, `embeddings`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Chat => "chat completions",
            Self::Embeddings => "embeddings",
            Self::Responses => "responses",
            Self::Messages => "messages",
            Self::CountTokens => "token counting",
        }
    }

    /// The endpoint's label in the ledger: `chat`, `embeddings`, `responses`, `messages`,
    /// `count_tokens`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embeddings => "embeddings",
            Self::Responses => "responses",
            Self::Messages => "messages",
            Self::CountTokens => "count_tokens",
        }
    }

    /// The operation a `POST` to `path` is, if it is a generative endpoint.
    pub fn of_path(path: &str) -> Option<Operation> {
        Some(match path {
            "/v1/chat/completions" => Self::Chat,
            "/v1/embeddings" => Self::Embeddings,
            "/v1/responses" => Self::Responses,
            "/v1/messages" => Self::Messages,
            "/v1/messages/count_tokens" => Self::CountTokens,
            _ => return None,
        })
    }

    /// The dialect the client speaks on this endpoint.
    pub fn dialect(self) -> Dialect {
        match self {
            Self::Chat | Self::Embeddings => Dialect::Chat,
            Self::Responses => Dialect::Responses,
            Self::Messages | Self::CountTokens => Dialect::Messages,
        }
    }
}

/// A request the client sent to one of the generative endpoints.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    operation: Operation,
    body: Bytes,
    model: String,
    /// Byte range of the `model` value (quotes included) inside `body`.
    model_span: Range<usize>,
    stream: bool,
    /// `stream_options` (its value's byte range), when sent.
    stream_options: Option<Range<usize>>,
    /// The client asked for the usage chunk (`stream_options.include_usage: true`).
    include_usage: bool,
    /// The same request in Chat Completions, made on first need (the first attempt at an
    /// upstream that does not speak this request's dialect) and kept for the next ones.
    as_chat: Arc<OnceLock<Result<ApiRequest, Untranslatable>>>,
    /// The stored response this one continues, when the proxy put that conversation in the
    /// body (a Responses `previous_response_id` it held): the answer names it.
    continues: Option<Arc<str>>,
    /// The most output tokens asked for (`max_tokens`, `max_completion_tokens` or
    /// `max_output_tokens`), for the estimate limits reserve.
    max_output_tokens: Option<u64>,
}

/// Why a request could not be put in another dialect: what is missing there, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslatable {
    /// What cannot be expressed, naming the field.
    pub message: String,
    /// The field at fault.
    pub param: Option<String>,
}

/// Why a request body was refused; `param` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    /// What is wrong, for the client.
    pub message: String,
    /// The field at fault, if one is.
    pub param: Option<&'static str>,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    stream: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    stream_options: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_output_tokens: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

fn invalid(message: impl Into<String>, param: Option<&'static str>) -> InvalidRequest {
    InvalidRequest { message: message.into(), param }
}

impl ApiRequest {
    /// Checks a chat body: a JSON object with a string `model` and a non-empty `messages`
    /// array; remembers where `model` sits so it can be rewritten without re-encoding.
    pub fn parse(body: Bytes) -> Result<Self, InvalidRequest> {
        Self::parse_for(Operation::Chat, body)
    }

    /// Checks an embeddings body: a JSON object with a string `model` and an `input`.
    pub fn parse_embeddings(body: Bytes) -> Result<Self, InvalidRequest> {
        Self::parse_for(Operation::Embeddings, body)
    }

    /// Checks a Responses body: a JSON object with a string `model` and an `input` that is a
    /// string or an array (the fields inside are the translator's or the upstream's to judge).
    pub fn parse_responses(body: Bytes) -> Result<Self, InvalidRequest> {
        Self::parse_for(Operation::Responses, body)
    }

    /// Checks an Anthropic Messages body: a string `model`, a non-empty `messages` array and
    /// a `max_tokens` number, as Anthropic requires.
    pub fn parse_messages(body: Bytes) -> Result<Self, InvalidRequest> {
        Self::parse_for(Operation::Messages, body)
    }

    /// Checks a `count_tokens` body: a string `model` and a non-empty `messages` array.
    pub fn parse_count_tokens(body: Bytes) -> Result<Self, InvalidRequest> {
        Self::parse_for(Operation::CountTokens, body)
    }

    /// Parses `body` as a request for `operation`.
    pub fn parse_as(operation: Operation, body: Bytes) -> Result<Self, InvalidRequest> {
        Self::parse_for(operation, body)
    }

    fn parse_for(operation: Operation, body: Bytes) -> Result<Self, InvalidRequest> {
        if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|&b| b != b'{') {
            // serde would happily read `[…]` into a struct; only an object is a request.
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                Ok(_) => invalid("the request body must be a JSON object", None),
                Err(err) => invalid(format!("the request body is not valid JSON: {err}"), None),
            });
        }
        let head: Head = serde_json::from_slice(&body).map_err(|err| {
            if err.is_data() {
                // Valid JSON of the wrong shape, or a field of the wrong type.
                let message = err.to_string();
                let param = ["stream", "model", "messages", "input"]
                    .into_iter()
                    .find(|field| message.contains(&format!("`{field}`")));
                invalid(format!("invalid request body: {message}"), param)
            } else {
                invalid(format!("the request body is not valid JSON: {err}"), None)
            }
        })?;
        let raw_model =
            head.model.ok_or_else(|| invalid("you must provide a model parameter", Some("model")))?;
        let model: Cow<str> = serde_json::from_str(raw_model.get())
            .map_err(|_| invalid("`model` must be a string", Some("model")))?;
        if model.is_empty() {
            return Err(invalid("`model` must not be empty", Some("model")));
        }
        match operation {
            Operation::Chat | Operation::Messages | Operation::CountTokens => {
                let messages = head
                    .messages
                    .ok_or_else(|| invalid("missing required parameter: 'messages'", Some("messages")))?;
                if !is_non_empty_array(messages.get()) {
                    return Err(invalid("`messages` must be a non-empty array", Some("messages")));
                }
                if operation == Operation::Messages {
                    match head.max_tokens.map(|m| m.get().trim_start()) {
                        Some(n) if n.starts_with(|c: char| c.is_ascii_digit()) => {}
                        None | Some("null") => {
                            return Err(invalid("max_tokens: Field required", Some("max_tokens")));
                        }
                        Some(_) => {
                            return Err(invalid(
                                "`max_tokens` must be a positive integer",
                                Some("max_tokens"),
                            ));
                        }
                    }
                }
            }
            Operation::Responses => match head.input.map(|i| i.get().trim_start()) {
                None | Some("null") => {
                    return Err(invalid("missing required parameter: 'input'", Some("input")));
                }
                Some(input) if input.starts_with('"') || input.starts_with('[') => {}
                Some(_) => {
                    return Err(invalid("`input` must be a string or an array of items", Some("input")));
                }
            },
            Operation::Embeddings => match head.input.map(|i| i.get().trim_start()) {
                None | Some("null") => {
                    return Err(invalid("missing required parameter: 'input'", Some("input")));
                }
                Some(input) if input.starts_with('"') || is_non_empty_array(input) => {}
                Some(_) => {
                    return Err(invalid(
                        "`input` must be a string or a non-empty array of strings or token arrays",
                        Some("input"),
                    ));
                }
            },
        }
        // A `RawValue` borrows from `body`, so its address gives its offset; no unsafe needed.
        let span_of = |raw: &RawValue| {
            let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
            start..start + raw.get().len()
        };
        let model_span = span_of(raw_model);
        let include_usage = match head.stream_options {
            None => false,
            Some(raw) => match serde_json::from_str::<Option<StreamOptions>>(raw.get()) {
                Ok(options) => options.and_then(|o| o.include_usage).unwrap_or(false),
                Err(_) => {
                    return Err(invalid("`stream_options` must be an object", Some("stream_options")));
                }
            },
        };
        let stream_options = head.stream_options.map(span_of);
        let stream = match head.stream.map(RawValue::get) {
            None | Some("null" | "false") => false,
            Some("true") if !matches!(operation, Operation::Embeddings | Operation::CountTokens) => true,
            Some("true") => {
                return Err(invalid(format!("{} cannot be streamed", operation.name()), Some("stream")));
            }
            Some(_) => return Err(invalid("`stream` must be a boolean", Some("stream"))),
        };
        let max_output_tokens = [head.max_tokens, head.max_completion_tokens, head.max_output_tokens]
            .into_iter()
            .flatten()
            .find_map(|raw| raw.get().parse::<u64>().ok());
        Ok(Self {
            max_output_tokens,
            operation,
            model: model.into_owned(),
            model_span,
            stream,
            stream_options,
            include_usage,
            body,
            as_chat: Arc::default(),
            continues: None,
        })
    }

    /// The same request, continuing the stored response `id` (see [`ApiRequest::continues`]).
    pub fn continuing(mut self, id: &str) -> Self {
        self.continues = Some(Arc::from(id));
        self
    }

    /// The stored response this request continues, when the proxy expanded it.
    pub fn continues(&self) -> Option<&str> {
        self.continues.as_deref()
    }

    /// The dialect the client speaks.
    pub fn dialect(&self) -> Dialect {
        self.operation.dialect()
    }

    /// This request as a Chat Completions request, translated by `translate` on the first
    /// call only (failover to a second translating upstream reuses it).
    pub fn as_chat(
        &self,
        translate: impl FnOnce(&[u8]) -> Result<Bytes, Untranslatable>,
    ) -> Result<&ApiRequest, Untranslatable> {
        let translated = self.as_chat.get_or_init(|| {
            let body = translate(&self.body)?;
            Self::parse(body).map_err(|invalid| Untranslatable { message: invalid.message, param: None })
        });
        translated.as_ref().map_err(Clone::clone)
    }

    /// Which endpoint the request came to.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The model the client asked for.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether the client asked for a stream.
    pub fn stream(&self) -> bool {
        self.stream
    }

    /// The most output tokens the request asks for, if it says.
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_output_tokens
    }

    /// The body exactly as the client sent it.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the client asked for the usage chunk of a stream.
    pub fn include_usage(&self) -> bool {
        self.include_usage
    }

    /// The body with `model` set to `model_json` (an already JSON-encoded string); every other
    /// byte is the client's. Costs one copy of the body, none when the model is unchanged.
    pub fn body_with_model(&self, model_json: &str) -> Bytes {
        self.upstream_body(model_json, false)
    }

    /// [`ApiRequest::body_with_model`], and with `ask_usage` a stream also asks for usage
    /// (`stream_options.include_usage: true`) if the client did not, so that its tokens are
    /// counted. Only those bytes change; one copy of the body, none when nothing does.
    pub fn upstream_body(&self, model_json: &str, ask_usage: bool) -> Bytes {
        let same_model = &self.body[self.model_span.clone()] == model_json.as_bytes();
        let add_usage = ask_usage && self.stream && !self.include_usage;
        if same_model && !add_usage {
            return self.body.clone();
        }
        let mut edits: Vec<(Range<usize>, Cow<[u8]>)> = Vec::with_capacity(2);
        if !same_model {
            edits.push((self.model_span.clone(), Cow::Borrowed(model_json.as_bytes())));
        }
        if add_usage {
            match &self.stream_options {
                Some(span) => {
                    // Rare: options without include_usage. Keep the client's other options.
                    let mut options: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_slice(&self.body[span.clone()]).unwrap_or_default();
                    options.insert("include_usage".to_string(), serde_json::Value::Bool(true));
                    let encoded = serde_json::Value::Object(options).to_string().into_bytes();
                    edits.push((span.clone(), Cow::Owned(encoded)));
                }
                None => {
                    // Right after the opening brace: valid whatever follows.
                    let brace = self.body.iter().position(|&b| b == b'{').unwrap_or(0) + 1;
                    edits.push((brace..brace, Cow::Borrowed(br#""stream_options":{"include_usage":true},"#)));
                }
            }
        }
        edits.sort_by_key(|(range, _)| range.start);
        let extra: usize = edits.iter().map(|(_, with)| with.len()).sum();
        let mut out = BytesMut::with_capacity(self.body.len() + extra);
        let mut at = 0;
        for (range, with) in &edits {
            out.put_slice(&self.body[at..range.start]);
            out.put_slice(with);
            at = range.end;
        }
        out.put_slice(&self.body[at..]);
        out.freeze()
    }
}

fn is_non_empty_array(raw: &str) -> bool {
    let inner = raw.trim_start();
    inner.starts_with('[') && !inner[1..].trim_start().starts_with(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ApiRequest, InvalidRequest> {
        ApiRequest::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn rewrites_only_the_model_and_keeps_every_other_byte() {
        let body = r#"{ "tools":[{"type":"function"}], "model" : "gpt-4", "seed":7,
            "messages":[{"role":"user","content":"hi \"there\""}], "x_unknown": {"model":"keep"} }"#;
        let req = parse(body).unwrap();
        assert_eq!(req.model(), "gpt-4");
        assert!(!req.stream());
        let out = req.body_with_model(r#""gpt-4o-2024""#);
        let expected = body.replacen(r#""gpt-4","#, r#""gpt-4o-2024","#, 1);
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        // Unchanged model: the very same bytes, no copy.
        assert_eq!(req.body_with_model(r#""gpt-4""#).as_ptr(), req.body().as_ptr());
    }

    #[test]
    fn a_stream_asks_for_usage_unless_the_client_did() {
        let req = parse(r#"{"model":"m","messages":[{}],"stream":true}"#).unwrap();
        assert!(!req.include_usage());
        let out = req.upstream_body(r#""x""#, true);
        assert_eq!(
            &out[..],
            br#"{"stream_options":{"include_usage":true},"model":"x","messages":[{}],"stream":true}"#
        );
        assert_eq!(&req.upstream_body(r#""m""#, false)[..], req.body().as_ref(), "not asked: untouched");
        let asked =
            parse(r#"{"model":"m","messages":[{}],"stream":true,"stream_options":{"include_usage":true}}"#)
                .unwrap();
        assert!(asked.include_usage());
        assert_eq!(asked.upstream_body(r#""m""#, true).as_ptr(), asked.body().as_ptr());
        let other =
            parse(r#"{"model":"m","stream_options": {"x": 1},"messages":[{}],"stream":true}"#).unwrap();
        let out: serde_json::Value = serde_json::from_slice(&other.upstream_body(r#""y""#, true)).unwrap();
        assert_eq!(out["stream_options"], serde_json::json!({"x": 1, "include_usage": true}));
        assert_eq!(out["model"], "y");
        let plain = parse(r#"{"model":"m","messages":[{}]}"#).unwrap();
        assert_eq!(plain.upstream_body(r#""m""#, true).as_ptr(), plain.body().as_ptr(), "not a stream");
        assert!(parse(r#"{"model":"m","messages":[{}],"stream_options":3}"#).is_err());
    }

    #[test]
    fn decodes_escaped_model_names() {
        let req = parse(r#"{"model":"a\/b\u0041","messages":[{}],"stream":true}"#).unwrap();
        assert_eq!(req.model(), "a/bA");
        assert!(req.stream());
        let out = req.body_with_model(r#""x""#);
        assert_eq!(&out[..], br#"{"model":"x","messages":[{}],"stream":true}"#);
    }

    #[test]
    fn refuses_bad_bodies_with_the_field_at_fault() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("", None, "not valid JSON"),
            ("{", None, "not valid JSON"),
            ("[1]", None, "JSON object"),
            ("\"hi\"", None, "JSON object"),
            (r#"{"messages":[{}]}"#, Some("model"), "model parameter"),
            (r#"{"model":"m"}"#, Some("messages"), "'messages'"),
            (r#"{"model":"m","messages":[]}"#, Some("messages"), "non-empty"),
            (r#"{"model":"m","messages":[ ] }"#, Some("messages"), "non-empty"),
            (r#"{"model":"m","messages":"hi"}"#, Some("messages"), "non-empty"),
            (r#"{"model":7,"messages":[{}]}"#, Some("model"), "string"),
            (r#"{"model":"","messages":[{}]}"#, Some("model"), "empty"),
            (r#"{"model":"m","messages":[{}],"stream":"yes"}"#, Some("stream"), "boolean"),
            (r#"{"model":"a","model":"b","messages":[{}]}"#, Some("model"), "duplicate"),
        ];
        for (body, param, needle) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.param, *param, "{body}: {err:?}");
            assert!(err.message.contains(needle), "{body}: {err:?}");
        }
        assert!(parse(r#"{"model":"m","messages":[{}],"stream":null}"#).is_ok());
    }

    #[test]
    fn embeddings_need_an_input() {
        let ok = |s: &str| ApiRequest::parse_embeddings(Bytes::copy_from_slice(s.as_bytes()));
        let req = ok(r#"{"model":"e","input":"hello"}"#).unwrap();
        assert_eq!((req.model(), req.operation()), ("e", Operation::Embeddings));
        assert!(ok(r#"{"model":"e","input":["a","b"]}"#).is_ok());
        assert!(ok(r#"{"model":"e","input":[[1,2]]}"#).is_ok());
        for (body, needle) in [
            (r#"{"model":"e"}"#, "'input'"),
            (r#"{"model":"e","input":null}"#, "'input'"),
            (r#"{"model":"e","input":[]}"#, "non-empty"),
            (r#"{"model":"e","input":7}"#, "string"),
            (r#"{"model":"e","input":"x","stream":true}"#, "cannot be streamed"),
        ] {
            let err = ok(body).unwrap_err();
            assert!(err.message.contains(needle), "{body}: {err:?}");
        }
    }
}
