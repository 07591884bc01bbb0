//! OpenAI chat and embeddings requests → Gemini `generateContent` and `batchEmbedContents`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::providers::ProviderError;
use crate::providers::translate::parse_data_url;
use crate::providers::translate::request::{
    ChatBody, Content, FilePart, Message, ResponseFormat, Role, ToolChoice, Turns, function_role_refused,
    parse_arguments, push_turn, unsupported_field,
};

pub(super) const PROVIDER: &str = "Gemini";

/// A translated chat request.
pub(super) struct Translated {
    pub body: Value,
    pub include_usage: bool,
}

/// Builds the `generateContent` body, refusing what Gemini cannot honour.
pub(super) fn translate(body: &[u8], stream: bool) -> Result<Translated, ProviderError> {
    let chat = ChatBody::parse(body, PROVIDER)?;
    // `user` is an abuse-tracking id Gemini has no field for; it never changes the answer.
    chat.reject_unsupported(PROVIDER, &[])?;
    // `parallel_tool_calls: false` has no Gemini equivalent. LangChain, llama-index and
    // openai-agents send it with every tool call; refusing it would refuse them all, and a
    // model that may answer one call or several is what every client handles.
    let include_usage = stream && chat.include_usage();
    let (system, contents) = contents(&chat.messages)?;
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": [{"text": system.join("\n\n")}]}));
    }
    let mut config = Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            config.insert(key.into(), value);
        }
    };
    set("temperature", chat.temperature.map(Value::from));
    set("topP", chat.top_p.map(Value::from));
    set("maxOutputTokens", chat.max_output_tokens().map(Value::from));
    set("candidateCount", chat.n.map(Value::from));
    set("seed", chat.seed.map(Value::from));
    set("presencePenalty", chat.presence_penalty.map(Value::from));
    set("frequencyPenalty", chat.frequency_penalty.map(Value::from));
    set("thinkingConfig", chat.thinking_budget(PROVIDER)?.map(|budget| json!({"thinkingBudget": budget})));
    set("stopSequences", chat.stop.map(|s| json!(s.into_vec())));
    match chat.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => set("responseMimeType", Some(json!("application/json"))),
        Some(ResponseFormat::JsonSchema { json_schema }) => {
            set("responseMimeType", Some(json!("application/json")));
            set("responseJsonSchema", json_schema.schema.map(schema));
        }
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    let mut declarations = Vec::new();
    for (i, tool) in chat.tools.iter().flatten().enumerate() {
        let Some(function) = tool.function.as_ref().filter(|_| tool.kind == "function") else {
            return Err(ProviderError::unsupported(
                format!("tool type `{}` is not supported by {PROVIDER}", tool.kind),
                Some(format!("tools[{i}].type")),
            ));
        };
        let mut declaration = json!({"name": function.name});
        if let Some(description) = &function.description {
            declaration["description"] = json!(description);
        }
        if let Some(parameters) = &function.parameters {
            declaration["parametersJsonSchema"] = schema(parameters.clone());
        }
        declarations.push(declaration);
    }
    if !declarations.is_empty() {
        out.insert("tools".into(), json!([{"functionDeclarations": declarations}]));
    }
    if let Some(choice) = &chat.tool_choice {
        let config = match choice {
            ToolChoice::Mode(mode) => match mode.as_str() {
                "auto" => json!({"mode": "AUTO"}),
                "none" => json!({"mode": "NONE"}),
                "required" => json!({"mode": "ANY"}),
                other => {
                    return Err(ProviderError::unsupported(
                        format!("`tool_choice` `{other}` is not one of none, auto, required"),
                        Some("tool_choice".into()),
                    ));
                }
            },
            ToolChoice::Named { function } => json!({"mode": "ANY", "allowedFunctionNames": [function.name]}),
        };
        out.insert("toolConfig".into(), json!({"functionCallingConfig": config}));
    }
    Ok(Translated { body: Value::Object(out), include_usage })
}

/// A JSON Schema for Gemini's JSON-Schema fields (`parametersJsonSchema`,
/// `responseJsonSchema`), which take what pydantic and zod emit (`$ref`/`$defs`,
/// `type: [.., "null"]`, `additionalProperties`) as written, unlike the OpenAPI-subset
/// `parameters`/`responseSchema`. Nothing inside is touched (a property may well be named
/// `strict`); only the top-level `$schema` URI, which names the dialect, is left out.
fn schema(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.remove("$schema");
    }
    value
}

/// System messages → `systemInstruction`; the rest → `contents`, with consecutive same-role
/// turns merged and tool results as `functionResponse` parts (named after the call they
/// answer, which Gemini needs and OpenAI does not send).
fn contents(messages: &[Message]) -> Result<(Vec<String>, Vec<Value>), ProviderError> {
    let mut system = Vec::new();
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut turns = Turns::new();
    for (i, message) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let (role, parts) = match message.role {
            Role::System | Role::Developer => {
                if let Some(content) = &message.content {
                    system.push(content.text_only(PROVIDER, &param)?);
                }
                continue;
            }
            Role::User => ("user", user_parts(message.content.as_ref(), &param)?),
            Role::Assistant => {
                let mut parts = Vec::new();
                if let Some(content) = &message.content {
                    let text = content.text_only(PROVIDER, &param)?;
                    if !text.is_empty() {
                        parts.push(json!({"text": text}));
                    }
                }
                for (j, call) in message.tool_calls.iter().flatten().enumerate() {
                    let args = parse_arguments(&call.function.arguments, || {
                        format!("{param}.tool_calls[{j}].function.arguments")
                    })?;
                    call_names.insert(&call.id, &call.function.name);
                    let mut part = json!({"functionCall": {"name": call.function.name, "args": args}});
                    if let Some(signature) = call.thought_signature() {
                        part["thoughtSignature"] = json!(signature);
                    }
                    parts.push(part);
                }
                ("model", parts)
            }
            Role::Tool => {
                let id = message.tool_call_id.as_deref().unwrap_or("");
                let Some(name) = call_names.get(id) else {
                    return Err(ProviderError::unsupported(
                        format!(
                            "{PROVIDER} needs the function name of a tool result: `tool_call_id` must match a tool call of an earlier assistant message"
                        ),
                        Some(format!("{param}.tool_call_id")),
                    ));
                };
                let text = match &message.content {
                    Some(content) => content.text_only(PROVIDER, &param)?,
                    None => String::new(),
                };
                // Gemini wants an object; a tool that answered with one keeps its structure.
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(object @ Value::Object(_)) => object,
                    _ => json!({"content": text}),
                };
                ("user", vec![json!({"functionResponse": {"name": name, "response": response}})])
            }
            Role::Function => return Err(function_role_refused(PROVIDER, &param)),
        };
        push_turn(&mut turns, role, parts);
    }
    let turns = turns.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect();
    Ok((system, turns))
}

fn user_parts(content: Option<&Content>, param: &str) -> Result<Vec<Value>, ProviderError> {
    match content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(vec![json!({"text": text})]),
        Some(Content::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match (part.kind.as_str(), &part.text, &part.image_url) {
                ("text", Some(text), _) => Ok(json!({"text": text})),
                ("image_url", _, Some(image)) => match parse_data_url(&image.url) {
                    Some(data) => Ok(json!({"inlineData": {"mimeType": data.media_type, "data": data.data}})),
                    None => Err(ProviderError::unsupported(
                        format!("{PROVIDER} takes images as base64 data: URLs"),
                        Some(format!("{param}.content[{j}].image_url.url")),
                    )),
                },
                ("file", _, _) => match part.file.as_ref().and_then(FilePart::inline) {
                    Some(data) => Ok(json!({"inlineData": {"mimeType": data.media_type, "data": data.data}})),
                    None => Err(ProviderError::unsupported(
                        format!(
                            "{PROVIDER} takes files as inline base64 `file_data`, not an uploaded file_id"
                        ),
                        Some(format!("{param}.content[{j}].file")),
                    )),
                },
                (kind, _, _) => Err(ProviderError::unsupported(
                    format!("content part `{kind}` is not supported by {PROVIDER}"),
                    Some(format!("{param}.content[{j}]")),
                )),
            })
            .collect(),
    }
}

/// An OpenAI embeddings request, as far as Gemini can serve it.
#[derive(Deserialize)]
struct EmbeddingsBody {
    input: Input,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

/// A translated embeddings request.
pub(super) struct Embeddings {
    pub body: Value,
    /// The client asked for `encoding_format: base64`.
    pub base64: bool,
}

/// Builds the `batchEmbedContents` body: one request per input string.
pub(super) fn embeddings(body: &[u8], model: &str) -> Result<Embeddings, ProviderError> {
    let request: EmbeddingsBody = serde_json::from_slice(body).map_err(|_| {
        ProviderError::unsupported(
            format!("{PROVIDER} embeds strings only: `input` must be a string or an array of strings"),
            Some("input".into()),
        )
    })?;
    if let Some(field) = request.rest.keys().find(|k| !matches!(k.as_str(), "model" | "user")) {
        return Err(unsupported_field(field, PROVIDER));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ProviderError::unsupported(
                "`encoding_format` must be float or base64",
                Some("encoding_format".into()),
            ));
        }
    };
    let inputs = match request.input {
        Input::One(one) => vec![one],
        Input::Many(many) => many,
    };
    let model_path = format!("models/{model}");
    let requests: Vec<Value> = inputs
        .into_iter()
        .map(|text| {
            let mut entry = json!({"model": model_path, "content": {"parts": [{"text": text}]}});
            if let Some(dimensions) = request.dimensions {
                entry["outputDimensionality"] = json!(dimensions);
            }
            entry
        })
        .collect();
    Ok(Embeddings { body: json!({"requests": requests}), base64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(body: Value) -> Result<Value, ProviderError> {
        translate(body.to_string().as_bytes(), false).map(|t| t.body)
    }

    #[test]
    fn an_inline_pdf_becomes_inline_data() {
        let out = tr(json!({"messages": [{"role": "user", "content": [
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}}]}]}))
        .unwrap();
        assert_eq!(
            out["contents"][0]["parts"][0],
            json!({"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}})
        );
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget() {
        let out =
            tr(json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"})).unwrap();
        assert_eq!(out["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 1024}));
        let out =
            tr(json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "none"})).unwrap();
        assert_eq!(out["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 0}));
        assert!(
            tr(json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "max"})).is_err()
        );
    }

    #[test]
    fn roles_config_tools_and_results_translate() {
        let b = tr(json!({
            "model": "m", "temperature": 1.5, "top_p": 0.9, "max_tokens": 50, "n": 2, "stop": ["X"], "seed": 4, "user": "u",
            "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true,
                "schema": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}}},
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "additionalProperties": false}}}],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Look"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]},
                {"role": "tool", "tool_call_id": "call_9", "content": "{\"temp\": 21}"},
                {"role": "tool", "tool_call_id": "call_9", "content": "plain"},
            ],
        }))
        .unwrap();
        assert_eq!(b["systemInstruction"], json!({"parts": [{"text": "Be brief."}]}));
        let c = b["contents"].as_array().unwrap();
        assert_eq!(c[0]["role"], "user");
        assert_eq!(c[0]["parts"][1], json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}));
        assert_eq!(
            c[1],
            json!({"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Rome"}}}]})
        );
        assert_eq!(
            c[2]["parts"][0],
            json!({"functionResponse": {"name": "weather", "response": {"temp": 21}}})
        );
        assert_eq!(
            c[2]["parts"][1],
            json!({"functionResponse": {"name": "weather", "response": {"content": "plain"}}})
        );
        let g = &b["generationConfig"];
        assert_eq!((g["temperature"].as_f64(), g["topP"].as_f64()), (Some(1.5), Some(0.9)));
        assert_eq!(
            (&g["maxOutputTokens"], &g["candidateCount"], &g["seed"]),
            (&json!(50), &json!(2), &json!(4))
        );
        assert_eq!(g["stopSequences"], json!(["X"]));
        assert_eq!(g["responseMimeType"], "application/json");
        assert_eq!(
            g["responseJsonSchema"],
            json!({"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}})
        );
        assert_eq!(
            b["tools"][0]["functionDeclarations"][0],
            json!({"name": "weather", "parametersJsonSchema": {"type": "object", "additionalProperties": false}})
        );
        assert_eq!(
            b["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
        );
    }

    #[test]
    fn what_gemini_cannot_do_is_refused() {
        for (body, param) in [
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]}),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
                "messages[0].tool_call_id",
            ),
            (json!({"messages": [{"role": "user", "content": "hi"}], "logprobs": true}), "logprobs"),
        ] {
            let Err(ProviderError::Unsupported { param: got, message }) = tr(body) else { panic!("{param}") };
            assert_eq!(got.as_deref(), Some(param), "{message}");
        }
    }

    #[test]
    fn schemas_go_as_json_schema_untouched() {
        // What pydantic emits for an optional nested model, with a parameter named `strict`.
        let parameters = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "$defs": {"Opts": {"type": "object", "properties": {"depth": {"type": ["integer", "null"]}}}},
            "properties": {"strict": {"type": "boolean"}, "opts": {"$ref": "#/$defs/Opts"}},
            "required": ["strict"], "additionalProperties": false});
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "strict": true, "parameters": parameters}}]}))
        .unwrap();
        let sent = &out["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"];
        let mut expected = parameters.clone();
        expected.as_object_mut().unwrap().remove("$schema");
        assert_eq!(sent, &expected);
        assert_eq!(
            sent["properties"]["strict"],
            json!({"type": "boolean"}),
            "a parameter named strict stays"
        );
    }

    #[test]
    fn parallel_tool_calls_false_is_accepted() {
        // What LangChain's structured output and openai-agents send with every tool call.
        let body = json!({"messages": [{"role": "user", "content": "hi"}], "parallel_tool_calls": false,
                          "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
        let out = tr(body).unwrap();
        assert!(out.get("parallel_tool_calls").is_none());
        assert_eq!(out["tools"][0]["functionDeclarations"][0]["name"], "f");
    }

    #[test]
    fn embeddings_batch_every_input() {
        let e = embeddings(
            br#"{"model":"m","input":["a","b"],"dimensions":8,"encoding_format":"base64"}"#,
            "text-embedding-004",
        )
        .unwrap();
        assert!(e.base64);
        assert_eq!(
            e.body["requests"][1],
            json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 8})
        );
        assert!(embeddings(br#"{"model":"m","input":[[1,2,3]]}"#, "x").is_err());
        assert!(embeddings(br#"{"model":"m","input":"a","encoding_format":"hex"}"#, "x").is_err());
    }
}
