//! OpenAI chat request → Anthropic Messages request.

use serde_json::{Map, Value, json};

use crate::providers::ProviderError;
use crate::providers::translate::parse_data_url;
use crate::providers::translate::request::{
    ChatBody, Content, FilePart, Message, Part, ResponseFormat, Role, ToolChoice, Turns,
    function_role_refused, parse_arguments, push_turn, unsupported_field,
};

pub(super) const PROVIDER: &str = "Anthropic";

/// The name of the tool that carries a JSON answer when the client asked for
/// `response_format: json_object`.
const JSON_OBJECT_TOOL: &str = "json_response";

/// A translated request, and how to read the answer back.
pub(super) struct Translated {
    pub body: Value,
    /// When set, a call of this tool is the JSON answer the client asked for with
    /// `response_format`: its input becomes `message.content`, not a tool call.
    pub json_tool: Option<String>,
    pub include_usage: bool,
}

/// Turns on extended thinking with `budget` tokens, within `max_tokens` (which counts them,
/// as OpenAI's does reasoning tokens). Anthropic refuses thinking together with a changed
/// temperature or a forced tool; so does this, naming the field, rather than drop either.
fn thinking(out: &mut Map<String, Value>, budget: u64) -> Result<(), ProviderError> {
    let max_tokens = out.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    let budget = budget.min(max_tokens.saturating_sub(1));
    if budget < 1024 {
        return Err(ProviderError::unsupported(
            format!("`reasoning_effort` needs a max_tokens above 1024 on {PROVIDER}"),
            Some("max_tokens".to_string()),
        ));
    }
    if out.get("temperature").and_then(Value::as_f64).is_some_and(|t| t != 1.0) {
        return Err(ProviderError::unsupported(
            format!("`temperature` cannot be combined with `reasoning_effort` on {PROVIDER}"),
            Some("temperature".to_string()),
        ));
    }
    let forced =
        out.get("tool_choice").and_then(|c| c.get("type")).is_some_and(|t| t == "any" || t == "tool");
    if forced {
        return Err(ProviderError::unsupported(
            format!("a forced `tool_choice` cannot be combined with `reasoning_effort` on {PROVIDER}"),
            Some("tool_choice".to_string()),
        ));
    }
    out.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
    Ok(())
}

/// Builds the Anthropic request for `model`, refusing what Anthropic cannot honour.
pub(super) fn translate(
    body: &[u8],
    model: &str,
    stream: bool,
    default_max_tokens: u64,
) -> Result<Translated, ProviderError> {
    let chat = ChatBody::parse(body, PROVIDER)?;
    // `seed` only asks for best-effort determinism, which Anthropic does not offer anyway.
    chat.reject_unsupported(PROVIDER, &["seed"])?;
    if chat.n.is_some_and(|n| n != 1) {
        return Err(unsupported_field("n", PROVIDER));
    }
    for (field, value) in
        [("frequency_penalty", chat.frequency_penalty), ("presence_penalty", chat.presence_penalty)]
    {
        if value.is_some_and(|v| v != 0.0) {
            return Err(unsupported_field(field, PROVIDER));
        }
    }
    let include_usage = stream && chat.include_usage();
    let thinking_budget = chat.thinking_budget(PROVIDER)?;
    let (system, messages) = messages(&chat.messages)?;
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("max_tokens".into(), json!(chat.max_output_tokens().unwrap_or(default_max_tokens)));
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(t) = chat.temperature {
        // OpenAI allows up to 2, Anthropic up to 1: clamp, so a request written for OpenAI
        // still works when it fails over here.
        out.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = chat.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if let Some(stop) = chat.stop {
        // Anthropic refuses whitespace-only stop sequences; OpenAI accepts (and ignores) them.
        let stop: Vec<String> = stop.into_vec().into_iter().filter(|s| !s.trim().is_empty()).collect();
        if !stop.is_empty() {
            out.insert("stop_sequences".into(), json!(stop));
        }
    }
    if let Some(user) = &chat.user {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if stream {
        out.insert("stream".into(), json!(true));
    }
    let mut tools: Vec<Value> = Vec::new();
    for (i, tool) in chat.tools.iter().flatten().enumerate() {
        let Some(function) = tool.function.as_ref().filter(|_| tool.kind == "function") else {
            return Err(ProviderError::unsupported(
                format!("tool type `{}` is not supported by {PROVIDER}", tool.kind),
                Some(format!("tools[{i}].type")),
            ));
        };
        let mut entry = json!({
            "name": function.name,
            "input_schema": function.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
        if let Some(description) = &function.description {
            entry["description"] = json!(description);
        }
        tools.push(entry);
    }
    let mut tool_choice = match &chat.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => json!({"type": "auto"}),
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            other => {
                return Err(ProviderError::unsupported(
                    format!("`tool_choice` `{other}` is not one of none, auto, required"),
                    Some("tool_choice".into()),
                ));
            }
        }),
        Some(ToolChoice::Named { function }) => Some(json!({"type": "tool", "name": function.name})),
    };
    // Anthropic has no JSON mode; the faithful equivalent is a tool whose input schema is the
    // requested schema, forced with tool_choice, its input returned as the message content.
    let json_tool = match chat.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(format) => {
            if !tools.is_empty() {
                return Err(ProviderError::unsupported(
                    format!("`response_format` together with `tools` is not supported by {PROVIDER}"),
                    Some("response_format".into()),
                ));
            }
            let (name, description, schema) = match format {
                ResponseFormat::JsonSchema { json_schema } => (
                    json_schema.name,
                    json_schema
                        .description
                        .unwrap_or_else(|| "Respond with JSON matching this schema.".into()),
                    json_schema.schema.unwrap_or_else(|| json!({"type": "object"})),
                ),
                _ => (
                    JSON_OBJECT_TOOL.to_string(),
                    "Respond with a JSON object.".to_string(),
                    json!({"type": "object", "additionalProperties": true}),
                ),
            };
            tools.push(json!({"name": name, "description": description, "input_schema": schema}));
            tool_choice = Some(json!({"type": "tool", "name": name}));
            Some(name)
        }
    };
    if chat.parallel_tool_calls == Some(false) {
        let choice = tool_choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = json!(true);
        }
    }
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    // Anthropic refuses `tool_choice` without `tools` (`parallel_tool_calls: false` alone, or
    // a `tool_choice` with nothing to choose from): it means nothing then.
    if let Some(choice) = tool_choice.filter(|_| out.contains_key("tools")) {
        out.insert("tool_choice".into(), choice);
    }
    if let Some(budget) = thinking_budget.filter(|&b| b > 0) {
        thinking(&mut out, budget)?;
    }
    Ok(Translated { body: Value::Object(out), json_tool, include_usage })
}

/// System and developer messages become the top-level `system`; the rest become turns, with
/// tool results in user turns and consecutive same-role turns merged.
fn messages(messages: &[Message]) -> Result<(Vec<String>, Vec<Value>), ProviderError> {
    let mut system = Vec::new();
    let mut turns = Turns::new();
    for (i, message) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                if let Some(content) = &message.content {
                    system.push(content.text_only(PROVIDER, &param)?);
                }
                continue;
            }
            Role::User => ("user", user_blocks(message.content.as_ref(), &param)?),
            Role::Assistant => ("assistant", assistant_blocks(message, &param)?),
            Role::Tool => {
                let id = message.tool_call_id.clone().ok_or_else(|| {
                    ProviderError::unsupported(
                        "a tool message needs `tool_call_id`",
                        Some(format!("{param}.tool_call_id")),
                    )
                })?;
                let text = match &message.content {
                    Some(content) => content.text_only(PROVIDER, &param)?,
                    None => String::new(),
                };
                ("user", vec![json!({"type": "tool_result", "tool_use_id": id, "content": text})])
            }
            Role::Function => return Err(function_role_refused(PROVIDER, &param)),
        };
        push_turn(&mut turns, role, blocks);
    }
    let turns = turns.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
    Ok((system, turns))
}

fn user_blocks(content: Option<&Content>, param: &str) -> Result<Vec<Value>, ProviderError> {
    match content {
        None => Ok(Vec::new()),
        Some(Content::Text(text)) => Ok(text_block(text).into_iter().collect()),
        Some(Content::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                match (part.kind.as_str(), &part.text, &part.image_url) {
                    ("text", Some(text), _) => blocks.extend(text_block(text)),
                    ("image_url", _, Some(image)) => {
                        blocks.push(image_block(&image.url, &format!("{param}.content[{j}]"))?)
                    }
                    ("file", _, _) => blocks.push(document_block(part, &format!("{param}.content[{j}]"))?),
                    (kind, _, _) => {
                        return Err(ProviderError::unsupported(
                            format!("content part `{kind}` is not supported by {PROVIDER}"),
                            Some(format!("{param}.content[{j}]")),
                        ));
                    }
                }
            }
            Ok(blocks)
        }
    }
}

fn assistant_blocks(message: &Message, param: &str) -> Result<Vec<Value>, ProviderError> {
    let mut blocks = Vec::new();
    match &message.content {
        None => {}
        Some(Content::Text(text)) => blocks.extend(text_block(text)),
        Some(Content::Parts(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                match (part.kind.as_str(), &part.text, &part.refusal) {
                    ("text", Some(text), _) | ("refusal", _, Some(text)) => blocks.extend(text_block(text)),
                    (kind, _, _) => {
                        return Err(ProviderError::unsupported(
                            format!("assistant content part `{kind}` is not supported by {PROVIDER}"),
                            Some(format!("{param}.content[{j}]")),
                        ));
                    }
                }
            }
        }
    }
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        let input = parse_arguments(&call.function.arguments, || {
            format!("{param}.tool_calls[{j}].function.arguments")
        })?;
        blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}));
    }
    Ok(blocks)
}

/// Anthropic refuses empty and whitespace-only text blocks, which OpenAI clients send freely
/// (an assistant turn of `" "`, a newline between tool calls).
fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

/// A `file` part as a `document` block: Anthropic reads PDFs (and plain text) inline.
fn document_block(part: &Part, param: &str) -> Result<Value, ProviderError> {
    let data = part.file.as_ref().and_then(FilePart::inline).ok_or_else(|| {
        ProviderError::unsupported(
            format!("a file must be inline base64 `file_data` for {PROVIDER}, not an uploaded file_id"),
            Some(format!("{param}.file")),
        )
    })?;
    let mut block = json!({"type": "document", "source": {"type": "base64", "media_type": data.media_type, "data": data.data}});
    if let Some(name) = part.file.as_ref().and_then(|f| f.filename.as_deref()) {
        block["title"] = json!(name);
    }
    Ok(block)
}

fn image_block(url: &str, param: &str) -> Result<Value, ProviderError> {
    if let Some(data) = parse_data_url(url) {
        return Ok(
            json!({"type": "image", "source": {"type": "base64", "media_type": data.media_type, "data": data.data}}),
        );
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(ProviderError::unsupported(
        format!("an image must be an http(s) URL or a base64 data: URL for {PROVIDER}"),
        Some(format!("{param}.image_url.url")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(body: Value) -> Result<Translated, ProviderError> {
        translate(body.to_string().as_bytes(), "claude-x", false, 4096)
    }

    #[test]
    fn system_roles_tools_and_images_translate() {
        let out = tr(json!({
            "model": "ignored", "temperature": 1.7, "stop": "END", "user": "u-1", "max_tokens": 99,
            "parallel_tool_calls": false, "tool_choice": "required",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}}]},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "d",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        }))
        .unwrap();
        let b = out.body;
        assert_eq!(b["model"], "claude-x");
        assert_eq!(b["system"], "Be brief.\n\nUse tools.");
        assert_eq!(b["temperature"], 1.0);
        assert_eq!(b["max_tokens"], 99);
        assert_eq!(b["stop_sequences"], json!(["END"]));
        assert_eq!(b["metadata"]["user_id"], "u-1");
        assert_eq!(b["tool_choice"], json!({"type": "any", "disable_parallel_tool_use": true}));
        assert_eq!(b["tools"][0]["input_schema"]["properties"]["city"]["type"], "string");
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "tool result and the next user message merge: {m:?}");
        assert_eq!(
            m[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
        );
        assert_eq!(m[0]["content"][2]["source"], json!({"type": "url", "url": "https://x.test/cat.jpg"}));
        assert_eq!(
            m[1]["content"],
            json!([{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}])
        );
        assert_eq!(m[2]["role"], "user");
        assert_eq!(
            m[2]["content"][0],
            json!({"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"})
        );
        assert_eq!(m[2]["content"][1], json!({"type": "text", "text": "Thanks"}));
        assert!(out.json_tool.is_none());
    }

    #[test]
    fn max_tokens_falls_back_to_the_configured_default() {
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 7, "max_tokens": 9})).unwrap();
        assert_eq!(out.body["max_tokens"], 7);
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
        assert_eq!(out.body["max_tokens"], 4096);
    }

    #[test]
    fn what_anthropic_refuses_is_not_sent() {
        // `parallel_tool_calls: false` alone: no tools, so no tool_choice.
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}], "parallel_tool_calls": false}))
            .unwrap();
        assert!(out.body.get("tool_choice").is_none() && out.body.get("tools").is_none(), "{}", out.body);
        // Whitespace-only text blocks and stop sequences.
        let out = tr(json!({"stop": ["\n", " ", "END"], "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": " \n"}]},
            {"role": "assistant", "content": " "},
            {"role": "user", "content": "again"}]}))
        .unwrap();
        assert_eq!(out.body["stop_sequences"], json!(["END"]));
        let all = out.body["messages"].to_string();
        assert!(all.contains(r#""text":"hi""#) && all.contains(r#""text":"again""#), "{all}");
        assert!(!all.contains(r#""text":" ""#) && !all.contains(r#""text":" \n""#), "{all}");
        let only_blank = tr(json!({"stop": [" "], "messages": [{"role": "user", "content": "hi"}]})).unwrap();
        assert!(only_blank.body.get("stop_sequences").is_none());
    }

    #[test]
    fn an_inline_pdf_becomes_a_document_block() {
        let out = tr(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "Summarise"},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "a.pdf"}}]}]}))
        .unwrap();
        assert_eq!(
            out.body["messages"][0]["content"][1],
            json!({"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}})
        );
        let uploaded = tr(
            json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}),
        );
        assert!(
            matches!(uploaded, Err(ProviderError::Unsupported { param: Some(p), .. }) if p == "messages[0].content[0].file")
        );
    }

    #[test]
    fn reasoning_effort_becomes_a_thinking_budget_within_max_tokens() {
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "medium", "max_tokens": 16000}))
            .unwrap();
        assert_eq!(out.body["thinking"], json!({"type": "enabled", "budget_tokens": 8192}));
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high", "max_tokens": 4000}))
            .unwrap();
        assert_eq!(out.body["thinking"]["budget_tokens"], 3999, "the budget stays below max_tokens");
        let out =
            tr(json!({"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "none"})).unwrap();
        assert!(out.body.get("thinking").is_none());
    }

    #[test]
    fn tool_choice_modes_map() {
        for (choice, expected) in [
            (json!("auto"), json!({"type": "auto"})),
            (json!("none"), json!({"type": "none"})),
            (json!({"type": "function", "function": {"name": "f"}}), json!({"type": "tool", "name": "f"})),
        ] {
            let tools =
                json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
            let out = tr(json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": choice}))
                .unwrap();
            assert_eq!(out.body["tool_choice"], expected);
        }
    }

    #[test]
    fn json_schema_becomes_a_forced_tool() {
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}}))
        .unwrap();
        assert_eq!(out.json_tool.as_deref(), Some("answer"));
        assert_eq!(out.body["tool_choice"], json!({"type": "tool", "name": "answer"}));
        assert_eq!(out.body["tools"][0]["input_schema"], json!({"type": "object"}));
        let out = tr(json!({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}})).unwrap();
        assert_eq!(out.json_tool.as_deref(), Some(JSON_OBJECT_TOOL));
    }

    #[test]
    fn what_anthropic_cannot_do_is_refused_by_name() {
        for (extra, param) in [
            (json!({"logprobs": true}), "logprobs"),
            (json!({"reasoning_effort": "extreme"}), "reasoning_effort"),
            (json!({"reasoning_effort": "high", "temperature": 0.2}), "temperature"),
            (json!({"reasoning_effort": "low", "max_tokens": 500}), "max_tokens"),
            (json!({"n": 2}), "n"),
            (json!({"presence_penalty": 0.5}), "presence_penalty"),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
                "messages[0].content[0]",
            ),
            (
                json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "nope"}}]}]}),
                "messages[0].tool_calls[0].function.arguments",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}),
                "messages[0].content[0].image_url.url",
            ),
        ] {
            let mut body = json!({"messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            let Err(ProviderError::Unsupported { message, param: got }) = tr(body) else {
                panic!("{param} accepted")
            };
            assert_eq!(got.as_deref(), Some(param), "{message}");
        }
        assert!(tr(json!({"messages": [{"role": "user", "content": "hi"}], "n": 1, "seed": 3, "presence_penalty": 0})).is_ok());
    }
}
