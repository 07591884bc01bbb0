//! An estimate of a Messages request's input tokens, for `count_tokens` on upstreams that
//! have no counting endpoint. It is an estimate, not a count: the real tokenizer is the
//! upstream's. The rule:
//!
//! 1. Text (system, message text, tool results, text documents, tool definitions' name,
//!    description and schema as JSON, tool calls' input as JSON) counts one token per 4
//!    characters, rounded up, summed over the request.
//! 2. Each message adds 4 tokens (role and turn markers), each tool 8, the request 3.
//! 3. An image counts 1,600 tokens (Anthropic's figure for a ~1.15 megapixel image, the
//!    largest it keeps unscaled); a PDF 1,500 tokens per 100 KB of base64, at least 1,500.

use serde_json::Value;

use crate::providers::ProviderError;

const PER_MESSAGE: u64 = 4;
const PER_TOOL: u64 = 8;
const PER_REQUEST: u64 = 3;
const IMAGE: u64 = 1_600;
const PDF_PER_100KB: u64 = 1_500;

/// The estimated input tokens of a Messages request (see the module doc for the rule).
pub(super) fn estimate(body: &[u8]) -> Result<u64, ProviderError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::unsupported(format!("cannot read the Messages request: {e}"), None))?;
    let Some(request) = request.as_object() else {
        return Err(ProviderError::unsupported("the Messages request must be a JSON object", None));
    };
    let mut tally = Tally::default();
    if let Some(system) = request.get("system") {
        tally.content(system);
    }
    for message in request.get("messages").and_then(Value::as_array).into_iter().flatten() {
        tally.fixed += PER_MESSAGE;
        if let Some(content) = message.get("content") {
            tally.content(content);
        }
    }
    for tool in request.get("tools").and_then(Value::as_array).into_iter().flatten() {
        tally.fixed += PER_TOOL;
        for key in ["name", "description"] {
            if let Some(text) = tool.get(key).and_then(Value::as_str) {
                tally.chars += text.chars().count() as u64;
            }
        }
        if let Some(schema) = tool.get("input_schema") {
            tally.json(schema);
        }
    }
    Ok(tally.chars.div_ceil(4).saturating_add(tally.fixed).saturating_add(PER_REQUEST))
}

#[derive(Default)]
struct Tally {
    chars: u64,
    fixed: u64,
}

impl Tally {
    fn json(&mut self, value: &Value) {
        self.chars += value.to_string().chars().count() as u64;
    }

    /// A `content` (or `system`): a string or blocks.
    fn content(&mut self, content: &Value) {
        match content {
            Value::String(text) => self.chars += text.chars().count() as u64,
            Value::Array(blocks) => blocks.iter().for_each(|b| self.block(b)),
            _ => {}
        }
    }

    fn block(&mut self, block: &Value) {
        let text = |key: &str| block.get(key).and_then(Value::as_str).map_or(0, |t| t.chars().count() as u64);
        match block.get("type").and_then(Value::as_str).unwrap_or("") {
            "image" => self.fixed += IMAGE,
            "document" => {
                let source = block.get("source");
                let data = source.and_then(|s| s.get("data")).and_then(Value::as_str).unwrap_or("");
                match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
                    Some("text") => self.chars += data.chars().count() as u64,
                    _ => self.fixed += (data.len() as u64 / 100_000).max(1) * PDF_PER_100KB,
                }
            }
            "tool_use" => {
                self.chars += text("name");
                if let Some(input) = block.get("input") {
                    self.json(input);
                }
            }
            "tool_result" => {
                if let Some(content) = block.get("content") {
                    self.content(content);
                }
            }
            "thinking" => self.chars += text("thinking"),
            _ => self.chars += text("text"),
        }
    }
}
