//! The translations against outputs validated with Anthropic's Python SDK (anthropic 2.16.0:
//! `Message.model_validate` for answers, `TypeAdapter(RawMessageStreamEvent)` for each
//! stream event and the SDK's `accumulate_event` over each whole stream), frozen here.
//! With `MESSAGES_DUMP=<dir>` set, the tests also write what they produced there, for
//! re-checking with the SDK after a change.

use bytes::BytesMut;
use serde_json::{Value, json};

use super::*;

fn dump(name: &str, bytes: &[u8]) {
    if let Ok(dir) = std::env::var("MESSAGES_DUMP") {
        std::fs::write(format!("{dir}/{name}"), bytes).unwrap();
    }
}

fn chat_of(request: Value) -> Value {
    serde_json::from_slice(&to_chat(request.to_string().as_bytes()).unwrap()).unwrap()
}

fn refused(request: Value) -> (String, Option<String>) {
    match to_chat(request.to_string().as_bytes()) {
        Err(ProviderError::Unsupported { message, param }) => (message, param),
        other => panic!("accepted: {other:?}"),
    }
}

/// Feeds Chat chunks (JSON values) and ends the stream.
fn stream_of(request: &Value, chunks: &[Value], usage: Option<&crate::usage::Usage>) -> String {
    let mut writer = writer(request.to_string().as_bytes());
    let mut out = BytesMut::new();
    for chunk in chunks {
        writer.chunk(&chunk.to_string(), &mut out);
    }
    writer.finish(usage, &mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

// === to_chat ===

#[test]
fn a_full_request_translates() {
    let chat = chat_of(json!({
        "model": "gpt-4o", "max_tokens": 1024, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
        "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}, "stream": true,
        "service_tier": "auto", "cache_control": {"type": "ephemeral"},
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Use tools."}],
        "tools": [{"name": "weather", "description": "Weather of a city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                   "cache_control": {"type": "ephemeral"}},
                  {"type": "custom", "name": "time", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris? See:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
                {"type": "document", "title": "report", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xxx"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Here you go."},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                 "content": [{"type": "text", "text": "clock broken"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}]}]},
            {"role": "assistant", "content": "Sunny."},
            {"role": "user", "content": "Thanks"},
        ],
    }));
    assert_eq!(
        chat,
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief.\n\nUse tools."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris? See:"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                    {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
                    {"type": "text", "text": "plain notes"}]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21°C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: clock broken"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Here you go."},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]},
                {"role": "assistant", "content": "Sunny."},
                {"role": "user", "content": "Thanks"},
            ],
            "max_completion_tokens": 1024, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
            "user": "u-1", "reasoning_effort": "medium",
            "tools": [
                {"type": "function", "function": {"name": "weather", "description": "Weather of a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "time", "parameters": {"type": "object"}}}],
            "tool_choice": "required", "parallel_tool_calls": false,
            "stream": true, "stream_options": {"include_usage": true},
        })
    );
}

#[test]
fn tool_results_come_before_the_rest_of_their_turn_and_a_lone_text_is_a_string() {
    let chat = chat_of(json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "ok"},
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "only thoughts", "signature": "s"}]},
    ]}));
    assert_eq!(
        chat["messages"],
        json!([
            {"role": "tool", "tool_call_id": "t1", "content": "a\n\nb"},
            {"role": "user", "content": "ok"},
            {"role": "tool", "tool_call_id": "t2", "content": ""},
        ]),
        "a turn of thinking alone says nothing Chat can carry"
    );
    assert!(chat.get("stream").is_none() && chat.get("stream_options").is_none());
}

#[test]
fn tool_choice_and_thinking_map() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    for (choice, expected) in [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "none"}), json!("none")),
        (json!({"type": "tool", "name": "f"}), json!({"type": "function", "function": {"name": "f"}})),
    ] {
        let chat = chat_of(
            json!({"model": "m", "max_tokens": 5, "messages": [], "tools": tools, "tool_choice": choice}),
        );
        assert_eq!(chat["tool_choice"], expected);
        assert!(chat.get("parallel_tool_calls").is_none());
    }
    // Without tools, tool_choice means nothing (and OpenAI refuses it).
    let chat = chat_of(json!({"model": "m", "max_tokens": 5, "messages": [],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}}));
    assert!(chat.get("tool_choice").is_none() && chat.get("parallel_tool_calls").is_none());
    for (thinking, effort) in [
        (json!({"type": "enabled", "budget_tokens": 1024}), Some("low")),
        (json!({"type": "enabled", "budget_tokens": 4096}), Some("medium")),
        (json!({"type": "enabled", "budget_tokens": 16384}), Some("high")),
        (json!({"type": "disabled"}), None),
        (json!({"type": "adaptive"}), None),
    ] {
        let chat = chat_of(json!({"model": "m", "max_tokens": 5, "messages": [], "thinking": thinking}));
        assert_eq!(chat.get("reasoning_effort").and_then(Value::as_str), effort);
    }
    let chat = chat_of(json!({"model": "m", "max_tokens": 5, "messages": [],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "output_config": {"effort": "max", "format": {"type": "json_schema", "schema": {"type": "object"}}}}));
    assert_eq!(chat["reasoning_effort"], "high");
    assert_eq!(
        chat["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}})
    );
}

#[test]
fn what_chat_cannot_do_is_refused_by_name() {
    let base = || json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let with = |key: &str, value: Value| {
        let mut body = base();
        body[key] = value;
        body
    };
    let user = |block: Value| {
        with("messages", json!([{"role": "user", "content": [{"type": "text", "text": "x"}, block]}]))
    };
    for (body, param) in [
        (with("stop_sequences", json!(["a", "b", "c", "d", "e"])), "stop_sequences"),
        (
            with(
                "tools",
                json!([{"name": "f", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}]),
            ),
            "tools[1]",
        ),
        (with("tools", json!([{"type": "bash_20250124", "name": "bash"}])), "tools[0]"),
        (with("container", json!("c-1")), "container"),
        (with("mcp_servers", json!([{"type": "url", "url": "https://x", "name": "x"}])), "mcp_servers"),
        (with("future_field", json!(1)), "future_field"),
        (
            user(json!({"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}})),
            "messages[0].content[1]",
        ),
        (
            user(json!({"type": "web_search_tool_result", "tool_use_id": "s", "content": []})),
            "messages[0].content[1]",
        ),
        (
            user(json!({"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}})),
            "messages[0].content[1].source",
        ),
        (
            user(json!({"type": "image", "source": {"type": "file", "file_id": "f"}})),
            "messages[0].content[1].source",
        ),
        (user(json!({"type": "tool_use", "id": "t", "name": "f", "input": {}})), "messages[0].content[1]"),
        (with("messages", json!([{"role": "tool", "content": "x"}])), "messages[0].role"),
        (with("messages", json!([{"role": "user", "content": 5}])), "messages[0].content"),
    ] {
        let (message, got) = refused(body);
        assert_eq!(got.as_deref(), Some(param), "{message}");
    }
    // Null and dropped fields are fine.
    assert!(to_chat(with("container", Value::Null).to_string().as_bytes()).is_ok());
    assert!(to_chat(b"not json").is_err());
}

// === answer ===

const REQUEST: &[u8] = br#"{"model":"claude-proxy","max_tokens":100,"messages":[]}"#;

#[test]
fn a_completion_becomes_a_message() {
    let chat = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "Checking.", "reasoning_content": "Need the tool.", "refusal": null,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\": \"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": ""}},
                {"id": "call_3", "type": "function", "function": {"name": "bad", "arguments": "[1"}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "prompt_tokens_details": {"cached_tokens": 30}}});
    let out = answer(REQUEST, chat.to_string().as_bytes()).unwrap();
    dump("answer_tools.json", &out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"gpt-4o","content":[{"type":"thinking","thinking":"Need the tool.","signature":""},{"type":"text","text":"Checking."},{"type":"tool_use","id":"call_1","name":"weather","input":{"city": "Paris"}},{"type":"tool_use","id":"call_2","name":"time","input":{}},{"type":"tool_use","id":"call_3","name":"bad","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":70,"output_tokens":20,"cache_creation_input_tokens":0,"cache_read_input_tokens":30}}"#
    );
}

#[test]
fn finish_reasons_and_plain_answers_map() {
    for (finish, stop) in [
        (json!("stop"), "end_turn"),
        (json!("length"), "max_tokens"),
        (json!("content_filter"), "refusal"),
        (json!("tool_calls"), "tool_use"),
        (Value::Null, "end_turn"),
    ] {
        let chat = json!({"id": "x", "model": "m", "choices": [{"finish_reason": finish,
            "message": {"role": "assistant", "content": "Hi", "reasoning": "short"}}]});
        let v: Value =
            serde_json::from_slice(&answer(REQUEST, chat.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(v["stop_reason"], stop);
    }
    let chat = json!({"id": "msg_1", "choices": [{"finish_reason": "stop", "message": {"content": null, "refusal": "I can't."}}]});
    let out = answer(REQUEST, chat.to_string().as_bytes()).unwrap();
    dump("answer_refusal.json", &out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-proxy","content":[{"type":"text","text":"I can't."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#
    );
    for bad in [&b"{}"[..], b"[]", b"nope", br#"{"choices":[{"message":{"tool_calls":[{}]}}]}"#] {
        assert!(matches!(answer(REQUEST, bad), Err(ProviderError::InvalidResponse(_))));
    }
}

// === stream ===

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

#[test]
fn a_stream_of_reasoning_text_and_tools_becomes_events() {
    let request = json!({"model": "claude-proxy", "max_tokens": 100, "messages": [], "stream": true});
    let usage = json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o", "choices": [],
        "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62, "prompt_tokens_details": {"cached_tokens": 10}}});
    let chunks = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"reasoning_content": "Hmm"}), Value::Null),
        chunk(json!({"content": "Hel"}), Value::Null),
        chunk(json!({"content": "lo"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        usage,
    ];
    let out = stream_of(&request, &chunks, None);
    dump("stream_tools.sse", out.as_bytes());
    let expected = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_chatcmpl-9\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-4o\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}}\n\n",
        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Hmm\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"time\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":40,\"output_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":10}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn a_plain_stream_uses_the_usage_it_is_given_and_errors_become_error_events() {
    let request = json!({"model": "claude-proxy", "max_tokens": 100, "messages": []});
    let usage = crate::usage::Usage { prompt_tokens: 7, completion_tokens: 3, ..Default::default() };
    let out = stream_of(&request, &[chunk(json!({"content": "Hi"}), json!("length"))], Some(&usage));
    dump("stream_text.sse", out.as_bytes());
    assert!(out.contains(r#""delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":7,"output_tokens":3,"#), "{out}");

    // Nothing at all: still a well-formed (empty) message.
    let out = stream_of(&request, &[], None);
    dump("stream_empty.sse", out.as_bytes());
    assert!(
        out.contains(r#""model":"claude-proxy""#)
            && out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    );

    let mut w = writer(request.to_string().as_bytes());
    let mut buf = BytesMut::new();
    w.chunk(&chunk(json!({"content": "Hi"}), Value::Null).to_string(), &mut buf);
    w.error(
        r#"{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#,
        &mut buf,
    );
    w.chunk(&chunk(json!({"content": "late"}), Value::Null).to_string(), &mut buf);
    w.finish(None, &mut buf);
    let out = String::from_utf8(buf.to_vec()).unwrap();
    dump("stream_error.sse", out.as_bytes());
    assert!(
        out.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n"),
        "nothing after the error: {out}"
    );
}

#[test]
fn mangled_chunks_never_panic() {
    let request = json!({"model": "m"}).to_string();
    let good = chunk(json!({"content": "Hi", "tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}), json!("stop")).to_string();
    let mut rng = fastrand::Rng::with_seed(5);
    for round in 0..500 {
        let mut bytes = good.clone().into_bytes();
        bytes.truncate(rng.usize(0..=bytes.len()));
        for _ in 0..round % 5 {
            if !bytes.is_empty() {
                let at = rng.usize(..bytes.len());
                let noise = b"{}[]\":,0a";
                bytes[at] = noise[rng.usize(..noise.len())];
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let mut w = writer(request.as_bytes());
        let mut out = BytesMut::new();
        w.chunk(&text, &mut out);
        w.chunk(&good, &mut out);
        w.finish(None, &mut out);
        let _ = to_chat(&bytes);
        let _ = answer(&bytes, &bytes);
        let _ = estimate_input_tokens(&bytes);
        let _ = error_body(http::StatusCode::BAD_GATEWAY, &bytes);
    }
}

// === estimate_input_tokens ===

#[test]
fn the_token_estimate_follows_its_documented_rule() {
    let body = json!({"model": "m", "max_tokens": 5,
        "system": "12345678",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"},
            {"type": "image", "source": {"type": "url", "url": "https://x"}}]}],
        "tools": [{"name": "f", "description": "abc", "input_schema": {}}]});
    // chars: 8 + 4 + 1 + 3 + 2 ("{}") = 18 → 5; fixed: 4 + 8 + 1600 + 3.
    assert_eq!(estimate_input_tokens(body.to_string().as_bytes()).unwrap(), 5 + 4 + 8 + 1600 + 3);
    assert!(estimate_input_tokens(b"[]").is_err());
}

#[test]
fn the_chat_request_is_one_the_translating_adapters_take() {
    let body = json!({"model": "m", "max_tokens": 64, "stream": true, "system": "Be brief.",
        "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}]}]});
    let chat = to_chat(body.to_string().as_bytes()).unwrap();
    assert!(crate::providers::anthropic::bench::request(&chat, true) > 0);
    assert!(crate::providers::gemini::bench::request(&chat, true) > 0);
}

#[test]
fn claude_codes_requests_translate_system_turns_and_context_management() {
    // What Claude Code sends on every call: a mid-conversation system turn, context editing,
    // adaptive thinking and effort.
    let request = json!({
        "model": "m", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
            {"role": "system", "content": [{"type": "text", "text": "Reminder: be brief."}]},
        ],
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": "u1"},
    });
    let chat: Value = serde_json::from_slice(&to_chat(request.to_string().as_bytes()).unwrap()).unwrap();
    let roles: Vec<&str> =
        chat["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "system"]);
    assert_eq!(chat["messages"][2]["content"], "Reminder: be brief.");
    assert!(chat.get("context_management").is_none());
    assert_eq!(chat["reasoning_effort"], "medium");
    assert_eq!(chat["user"], "u1");
}
