//! The Responses API's memory: the responses the proxy served with `store` on, kept so that
//! `previous_response_id`, `GET /v1/responses/{id}` and its `input_items` work whatever
//! upstream served them, and a conversation survives failover from one dialect to another.
//!
//! In memory: each entry lives for a TTL, and the whole is bounded by bytes (the least
//! recently used go first). The shared database store takes this role when it exists.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

/// Stored responses, by id.
pub struct Conversations {
    cache: moka::sync::Cache<Arc<str>, Arc<Stored>>,
}

/// One stored turn.
#[derive(Debug)]
pub struct Stored {
    /// The `response` object, as the client got it.
    pub response: Value,
    /// Every input item of the turn, earlier turns' included, as the client sent them.
    pub input: Vec<Value>,
    /// Its size in bytes, as the store's bound counts it.
    weight: usize,
}

impl Conversations {
    /// A store keeping each response for `ttl`, `max_bytes` in all.
    pub fn new(ttl: Duration, max_bytes: u64) -> Self {
        let cache = moka::sync::Cache::builder()
            .time_to_live(ttl)
            .max_capacity(max_bytes)
            .weigher(|id: &Arc<str>, stored: &Arc<Stored>| {
                u32::try_from(id.len() + stored.weight).unwrap_or(u32::MAX)
            })
            .build();
        Self { cache }
    }

    /// The stored response `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Stored>> {
        self.cache.get(id)
    }

    /// Forgets `id`; whether it was there.
    pub fn delete(&self, id: &str) -> bool {
        self.cache.remove(id).is_some()
    }

    /// The request with its `previous_response_id` replaced by the conversation it names
    /// (that turn's input and output items, then this request's input), so any upstream can
    /// serve it; `None` when the request names no previous response the proxy holds (an
    /// upstream that speaks Responses may hold it: the request goes as it is). Also the id it
    /// named, which the answer echoes.
    pub fn expand(&self, body: &[u8]) -> Option<(Bytes, String)> {
        memchr::memmem::find(body, b"previous_response_id")?;
        let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else { return None };
        let (stored, id) = match request.get("previous_response_id") {
            Some(Value::String(id)) => (self.get(id)?, id.clone()),
            _ => return None,
        };
        request.remove("previous_response_id");
        let mut input = stored.input.clone();
        if let Some(Value::Array(output)) = stored.response.get("output") {
            input.extend(output.iter().filter_map(replayable));
        }
        input.extend(input_items(request.remove("input")));
        request.insert("input".to_string(), Value::Array(input));
        Some((Bytes::from(serde_json::to_vec(&Value::Object(request)).unwrap_or_default()), id))
    }

    /// Keeps `response` (a `response` object) with the input of `request` (already expanded),
    /// unless the request said `store: false`.
    pub fn record(&self, request: &[u8], response: &[u8]) {
        #[derive(serde::Deserialize)]
        struct Request {
            #[serde(default)]
            store: Option<bool>,
            #[serde(default)]
            input: Option<Value>,
        }
        let Ok(request) = serde_json::from_slice::<Request>(request) else { return };
        if request.store == Some(false) {
            return;
        }
        let Ok(response) = serde_json::from_slice::<Value>(response) else { return };
        let Some(id) = response.get("id").and_then(Value::as_str).map(Arc::<str>::from) else { return };
        let input = input_items(request.input);
        let weight = response.to_string().len() + input.iter().map(|i| i.to_string().len()).sum::<usize>();
        self.cache.insert(id, Arc::new(Stored { response, input, weight }));
    }
}

/// A request's `input` as items: a string is one user message.
fn input_items(input: Option<Value>) -> Vec<Value> {
    match input {
        Some(Value::String(text)) => vec![json!({"type": "message", "role": "user", "content": text})],
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

/// An output item as the next turn's input: without the `id` the upstream gave it (ids mean
/// something only to the store that made them, and a translated answer's are the proxy's), and
/// reasoning only when it carries its encrypted content (else it names state no other upstream
/// holds).
fn replayable(item: &Value) -> Option<Value> {
    let Value::Object(item) = item else { return Some(item.clone()) };
    if item.get("type").and_then(Value::as_str) == Some("reasoning")
        && !item.contains_key("encrypted_content")
    {
        return None;
    }
    let mut item = item.clone();
    item.remove("id");
    Some(Value::Object(item))
}

/// The input items of a stored turn as `input_items` lists them: typed, text content as parts
/// (`output_text` for the assistant's), and an id, the one the client gave or one made from
/// the response's id and the item's place, so that pages (`after`) are stable.
pub fn listed(response_id: &str, input: &[Value]) -> Vec<Value> {
    input.iter().enumerate().map(|(index, item)| listed_item(response_id, index, item.clone())).collect()
}

fn listed_item(response_id: &str, index: usize, item: Value) -> Value {
    let Value::Object(mut item) = item else { return item };
    let role = item.get("role").and_then(Value::as_str).map(str::to_string);
    let is_message = item.get("type").is_none_or(|t| t == "message") && role.is_some();
    if is_message {
        item.insert("type".to_string(), Value::from("message"));
        if let Some(Value::String(text)) = item.get("content") {
            let kind = if role.as_deref() == Some("assistant") { "output_text" } else { "input_text" };
            let part = json!([{"type": kind, "text": text}]);
            item.insert("content".to_string(), part);
        }
        item.entry("status").or_insert(Value::from("completed"));
    }
    if !item.contains_key("id") {
        let prefix = if is_message { "msg" } else { "item" };
        let tail = response_id.strip_prefix("resp_").unwrap_or(response_id);
        item.insert("id".to_string(), Value::from(format!("{prefix}_{tail}_{index}")));
    }
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Conversations {
        Conversations::new(Duration::from_secs(60), 1 << 20)
    }

    #[test]
    fn a_turn_continues_from_the_stored_input_and_output() {
        let store = store();
        let first = br#"{"model":"m","input":"Weather in Paris?","tools":[{"type":"function","name":"w"}]}"#;
        let answer = json!({"id": "resp_1", "object": "response", "output": [
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "w", "arguments": "{}"}
        ]});
        store.record(first, answer.to_string().as_bytes());
        let next = br#"{"model":"m","previous_response_id":"resp_1","input":[{"type":"function_call_output","call_id":"call_1","output":"sunny"}]}"#;
        let expanded: Value = serde_json::from_slice(&store.expand(next).unwrap().0).unwrap();
        assert!(expanded.get("previous_response_id").is_none(), "every upstream can serve it now");
        let input = expanded["input"].as_array().unwrap();
        assert_eq!(input.len(), 3);
        assert_eq!(input[0], json!({"type": "message", "role": "user", "content": "Weather in Paris?"}));
        assert_eq!(input[1]["type"], "function_call");
        assert!(input[1].get("id").is_none(), "an upstream's item id is not replayed");
        assert_eq!(input[2]["type"], "function_call_output");

        // The second turn, stored, carries the whole conversation.
        let second = json!({"id": "resp_2", "object": "response", "output": []});
        store.record(&store.expand(next).unwrap().0, second.to_string().as_bytes());
        let stored = store.get("resp_2").unwrap();
        let listed = listed("resp_2", &stored.input);
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0]["content"], json!([{"type": "input_text", "text": "Weather in Paris?"}]));
        assert_eq!(listed[0]["id"], "msg_2_0");
        assert_eq!(listed[1]["id"], "item_2_1");
    }

    #[test]
    fn replayed_turns_keep_what_any_upstream_accepts() {
        let store = store();
        let answer = json!({"id": "resp_9", "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAA"},
            {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]}]});
        store.record(
            br#"{"input":[{"role":"assistant","content":"earlier"}]}"#,
            answer.to_string().as_bytes(),
        );
        let expanded: Value = serde_json::from_slice(
            &store.expand(br#"{"previous_response_id":"resp_9","input":"next"}"#).unwrap().0,
        )
        .unwrap();
        let input = expanded["input"].as_array().unwrap();
        assert_eq!(
            input[0],
            json!({"role": "assistant", "content": "earlier"}),
            "the client's items as it sent them"
        );
        assert_eq!(input[1], json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAA"}));
        assert_eq!(input[2]["type"], "message");
        assert!(input[2].get("id").is_none());
        assert_eq!(input.len(), 4, "reasoning without its encrypted content is dropped");
        let listed = listed("resp_9", &store.get("resp_9").unwrap().input);
        assert_eq!(listed[0]["content"], json!([{"type": "output_text", "text": "earlier"}]));
    }

    #[test]
    fn unknown_ids_and_store_false_leave_things_alone() {
        let store = store();
        assert!(store.expand(br#"{"model":"m","input":"hi"}"#).is_none());
        assert!(store.expand(br#"{"model":"m","previous_response_id":"resp_x","input":"hi"}"#).is_none());
        store.record(br#"{"model":"m","input":"hi","store":false}"#, br#"{"id":"resp_3","output":[]}"#);
        assert!(store.get("resp_3").is_none());
        store.record(br#"{"model":"m","input":"hi"}"#, br#"{"id":"resp_4","output":[]}"#);
        assert!(store.delete("resp_4"));
        assert!(!store.delete("resp_4"));
        // Not JSON, no id: nothing kept, nothing panics.
        store.record(b"{", b"}");
        store.record(br#"{"input":"hi"}"#, br#"{"output":[]}"#);
    }
}
