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
    /// Every input item of the turn, earlier turns' included, each with an `id`.
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
    /// upstream that speaks Responses may hold it: the request goes as it is).
    pub fn expand(&self, body: &[u8]) -> Option<Bytes> {
        memchr::memmem::find(body, b"previous_response_id")?;
        let Ok(Value::Object(mut request)) = serde_json::from_slice::<Value>(body) else { return None };
        let stored = match request.get("previous_response_id") {
            Some(Value::String(id)) => self.get(id)?,
            _ => return None,
        };
        request.remove("previous_response_id");
        let mut input = stored.input.clone();
        if let Some(Value::Array(output)) = stored.response.get("output") {
            input.extend(output.iter().cloned());
        }
        input.extend(input_items(request.remove("input")));
        request.insert("input".to_string(), Value::Array(input));
        Some(Bytes::from(serde_json::to_vec(&Value::Object(request)).unwrap_or_default()))
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
        let input: Vec<Value> = input_items(request.input).into_iter().map(with_id).collect();
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

/// An input item as `input_items` lists it: typed, with an id, text content as parts.
fn with_id(item: Value) -> Value {
    let Value::Object(mut item) = item else { return item };
    let is_message = item.get("type").is_none_or(|t| t == "message") && item.contains_key("role");
    if is_message {
        item.insert("type".to_string(), Value::from("message"));
        if let Some(Value::String(text)) = item.get("content") {
            let part = json!([{"type": "input_text", "text": text}]);
            item.insert("content".to_string(), part);
        }
        item.entry("status").or_insert(Value::from("completed"));
    }
    if !item.contains_key("id") {
        let prefix = if is_message { "msg_" } else { "item_" };
        item.insert("id".to_string(), Value::from(crate::dialect::new_id(prefix)));
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
        let expanded: Value = serde_json::from_slice(&store.expand(next).unwrap()).unwrap();
        assert!(expanded.get("previous_response_id").is_none(), "every upstream can serve it now");
        let input = expanded["input"].as_array().unwrap();
        assert_eq!(input.len(), 3);
        assert_eq!(input[0]["role"], "user");
        assert_eq!(input[0]["content"], json!([{"type": "input_text", "text": "Weather in Paris?"}]));
        assert!(input[0]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(input[1]["type"], "function_call");
        assert_eq!(input[2]["type"], "function_call_output");

        // The second turn, stored, carries the whole conversation.
        let second = json!({"id": "resp_2", "object": "response", "output": []});
        store.record(&store.expand(next).unwrap(), second.to_string().as_bytes());
        assert_eq!(store.get("resp_2").unwrap().input.len(), 3);
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
