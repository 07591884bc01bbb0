//! Translation fixtures. The `response` objects and stream events asserted here were checked
//! with the official Python SDK (`openai` 2.x, strict pydantic: `Response.model_validate`,
//! `TypeAdapter(ResponseStreamEvent)`); every test prints its outputs as `SDK-CHECK` lines so
//! that check can be rerun (`cargo test --lib dialect::responses -- --nocapture`).

use bytes::BytesMut;
use serde_json::{Value, json};

use super::*;
use crate::usage::Usage;

fn chat_of(request: Value) -> Value {
    let bytes = to_chat(request.to_string().as_bytes()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn refused(request: Value) -> (String, Option<String>) {
    match to_chat(request.to_string().as_bytes()) {
        Err(ProviderError::Unsupported { message, param }) => (message, param),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

/// Prints a value for the SDK check and drops the clock-dependent `completed_at`.
fn checked(kind: &str, mut value: Value) -> Value {
    println!("SDK-CHECK {kind} {value}");
    strip_clock(&mut value);
    value
}

fn strip_clock(value: &mut Value) {
    if let Some(object) = value.as_object_mut() {
        object.remove("completed_at");
        if let Some(response) = object.get_mut("response") {
            strip_clock(response);
        }
    }
}

// === to_chat ===

#[test]
fn a_string_input_is_one_user_message_and_the_knobs_carry_over() {
    let chat = chat_of(json!({
        "model": "gpt-x", "input": "Hi", "instructions": "Be brief.", "stream": true,
        "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9, "parallel_tool_calls": false,
        "user": "u1", "safety_identifier": "s1", "prompt_cache_key": "k", "service_tier": "flex",
        "reasoning": {"effort": "low", "summary": "auto"}, "text": {"format": {"type": "text"}, "verbosity": "low"},
        "metadata": {"a": "b"}, "store": false, "include": ["reasoning.encrypted_content"], "truncation": "auto",
        "top_logprobs": 3
    }));
    assert_eq!(
        chat,
        json!({
            "model": "gpt-x",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "stream": true, "stream_options": {"include_usage": true}, "max_tokens": 50,
            "temperature": 0.2, "top_p": 0.9, "parallel_tool_calls": false, "verbosity": "low",
            "reasoning_effort": "low", "user": "u1", "safety_identifier": "s1", "prompt_cache_key": "k",
            "service_tier": "flex"
        })
    );
}

#[test]
fn items_become_messages_with_calls_merged_into_one_assistant_turn() {
    let chat = chat_of(json!({
        "model": "m",
        "input": [
            {"role": "developer", "content": "Use tools."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Weather?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Paris\"}", "id": "fc_1", "status": "completed"},
            {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "25C"}]},
            {"role": "assistant", "content": "Paris 18C, Rome 25C."}
        ],
        "tools": [{"type": "function", "name": "weather", "description": "Weather by city",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}],
        "tool_choice": {"type": "function", "name": "weather"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": true}}
    }));
    assert_eq!(
        chat,
        json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Use tools."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}}
                ]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
                ]},
                {"role": "tool", "content": "18C", "tool_call_id": "call_1"},
                {"role": "tool", "content": "25C", "tool_call_id": "call_2"},
                {"role": "assistant", "content": "Paris 18C, Rome 25C."}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather by city",
                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}}
        })
    );
    let chat =
        chat_of(json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f"}],
                              "text": {"format": {"type": "json_object"}}, "tool_choice": "required",
                              "include": ["message.output_text.logprobs"], "top_logprobs": 2}));
    assert_eq!(
        chat["messages"],
        json!([{"role": "assistant", "content": null, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}]}])
    );
    assert_eq!(chat["response_format"], json!({"type": "json_object"}));
    assert_eq!(chat["tool_choice"], "required");
    assert_eq!((chat["logprobs"].clone(), chat["top_logprobs"].clone()), (json!(true), json!(2)));
}

#[test]
fn what_chat_cannot_ask_is_refused_by_name() {
    let cases = [
        (json!({"input": "x", "tools": [{"type": "web_search"}]}), "tools[0]", "Responses API"),
        (
            json!({"input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "mcp", "server_label": "s"}]}),
            "tools[1]",
            "Responses API",
        ),
        (json!({"input": [{"type": "item_reference", "id": "msg_1"}]}), "input[0]", "item_reference"),
        (
            json!({"input": [{"role": "user", "content": "a"}, {"type": "web_search_call", "id": "ws"}]}),
            "input[1]",
            "web_search_call",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
            "input[0].content[0]",
            "file_id",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "https://x/a.pdf"}]}]}),
            "input[0].content[0]",
            "file_url",
        ),
        (json!({"input": [{"role": "wizard", "content": "a"}]}), "input[0].role", "wizard"),
        (
            json!({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "u"}]}]}),
            "input[0].output[0]",
            "text",
        ),
        (json!({"input": "x", "background": true}), "background", "background"),
        (json!({"input": "x", "previous_response_id": "resp_1"}), "previous_response_id", "Responses API"),
        (json!({"input": "x", "conversation": "conv_1"}), "conversation", "conversation"),
        (json!({"input": "x", "prompt": {"id": "pmpt_1"}}), "prompt", "prompt"),
        (
            json!({"input": "x", "tool_choice": {"type": "web_search_preview"}}),
            "tool_choice",
            "Responses API",
        ),
        (json!({"input": "x", "tool_choice": "sometimes"}), "tool_choice", "sometimes"),
        (json!({"input": "x", "text": {"format": {"type": "grammar"}}}), "text.format.type", "grammar"),
        (json!({"input": 7}), "input", "cannot translate"),
        (json!({"input": [{"role": "user", "content": 5}]}), "input[0].content", "cannot translate"),
        (json!({"input": "x", "max_output_tokens": "lots"}), "max_output_tokens", "cannot translate"),
    ];
    for (request, param, words) in cases {
        let (message, got) = refused(request.clone());
        assert_eq!(got.as_deref(), Some(param), "{request}: {message}");
        assert!(message.contains(words), "{request}: {message}");
    }
    assert!(matches!(to_chat(b"\"x\""), Err(ProviderError::Unsupported { .. })));
}

#[test]
fn the_chat_request_reads_back_in_every_translating_adapter() {
    let body = json!({"model": "m", "instructions": "sys", "input": [
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}], "max_output_tokens": 9});
    let chat = to_chat(body.to_string().as_bytes()).unwrap();
    assert!(crate::providers::anthropic::bench::request(&chat, false) > 0);
    assert!(crate::providers::gemini::bench::request(&chat, false) > 0);
}

// === answer ===

const REQUEST: &str = r#"{"model":"alias","input":"hi","instructions":"Be brief.","max_output_tokens":100,
    "metadata":{"k":"v"},"store":false,"temperature":0.5,"tools":[{"type":"function","name":"weather","parameters":{"type":"object"},"strict":true}],
    "tool_choice":"auto","text":{"format":{"type":"text"}},"reasoning":{"effort":"low"},"user":"u"}"#;

#[test]
fn a_completion_becomes_a_response_with_reasoning_text_and_calls() {
    let chat = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": "deepseek-chat",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me check.", "reasoning_content": "The user wants weather.",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
                  "prompt_tokens_details": {"cached_tokens": 5}, "completion_tokens_details": {"reasoning_tokens": 4}}
    });
    let body = answer(REQUEST.as_bytes(), "resp_abc", chat.to_string().as_bytes()).unwrap();
    let response = checked("response", serde_json::from_slice(&body).unwrap());
    assert_eq!(
        response,
        json!({
            "id": "resp_abc", "object": "response", "created_at": 1_700_000_000, "status": "completed",
            "background": false, "error": null, "incomplete_details": null, "instructions": "Be brief.",
            "max_output_tokens": 100, "metadata": {"k": "v"}, "model": "deepseek-chat",
            "output": [
                {"type": "reasoning", "id": "rs_abc_0", "status": "completed",
                 "summary": [{"type": "summary_text", "text": "The user wants weather."}]},
                {"type": "message", "id": "msg_abc_1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}]},
                {"type": "function_call", "id": "fc_abc_2", "call_id": "call_9", "name": "weather",
                 "arguments": "{\"city\":\"Oslo\"}", "status": "completed"}
            ],
            "parallel_tool_calls": true, "previous_response_id": null, "prompt_cache_key": null,
            "reasoning": {"effort": "low", "summary": null}, "safety_identifier": null, "store": false,
            "temperature": 0.5, "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": true}],
            "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled",
            "usage": {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0},
                      "output_tokens": 10, "output_tokens_details": {"reasoning_tokens": 4}, "total_tokens": 30},
            "user": "u"
        })
    );
}

#[test]
fn a_cut_short_or_refused_answer_is_incomplete_or_a_refusal() {
    let chat =
        json!({"model": "m", "choices": [{"finish_reason": "length", "message": {"content": "Once upon"}}]});
    let body = answer(b"{}", "resp_1", chat.to_string().as_bytes()).unwrap();
    let response = checked("response", serde_json::from_slice(&body).unwrap());
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert_eq!(response["usage"]["total_tokens"], 0, "zeros when the upstream reported none");
    assert_eq!((response["tools"].clone(), response["metadata"].clone()), (json!([]), json!({})));

    let chat = json!({"model": "m", "choices": [{"finish_reason": "stop",
        "message": {"content": null, "refusal": "I can't help with that.", "reasoning": "unsafe"}}]});
    let body = answer(b"{\"model\":\"x\"}", "resp_2", chat.to_string().as_bytes()).unwrap();
    let response = checked("response", serde_json::from_slice(&body).unwrap());
    assert_eq!(
        response["output"][1]["content"],
        json!([{"type": "refusal", "refusal": "I can't help with that."}])
    );
    assert_eq!(response["output"][0]["summary"][0]["text"], "unsafe");

    let chat = json!({"choices": [{"finish_reason": "content_filter", "message": {"content": ""}}]});
    let body = answer(b"{\"model\":\"asked\"}", "resp_3", chat.to_string().as_bytes()).unwrap();
    let response = checked("response", serde_json::from_slice(&body).unwrap());
    assert_eq!(response["incomplete_details"]["reason"], "content_filter");
    assert_eq!((response["model"].clone(), response["output"].clone()), (json!("asked"), json!([])));
    assert!(matches!(answer(b"{}", "resp_4", b"{\"choices\": 3}"), Err(ProviderError::InvalidResponse(_))));
}

// === the stream ===

fn run(request: &str, chunks: &[Value], end: Result<Option<Usage>, &str>) -> Vec<Value> {
    let mut writer = writer(request.as_bytes(), "resp_s");
    let mut out = BytesMut::new();
    for chunk in chunks {
        writer.chunk(&chunk.to_string(), &mut out);
    }
    match end {
        Ok(usage) => writer.finish(usage.as_ref(), &mut out),
        Err(error) => writer.error(error, &mut out),
    }
    let text = String::from_utf8(out.to_vec()).unwrap();
    assert!(text.ends_with("\n\n"));
    text.split_terminator("\n\n")
        .enumerate()
        .map(|(n, event)| {
            let (name, data) = event.split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(name.strip_prefix("event: "), data["type"].as_str());
            assert_eq!(data["sequence_number"], n);
            checked("event", data)
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn delta(delta: Value) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
}

#[test]
fn text_streams_as_one_message_item() {
    let chunks = [
        delta(json!({"role": "assistant", "content": ""})),
        delta(json!({"content": "Hel"})),
        delta(json!({"content": "lo"})),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
    ];
    let events = run(REQUEST, &chunks, Ok(None));
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["output"], json!([]));
    assert!(events[0]["response"]["usage"].is_null());
    assert_eq!(
        events[2],
        json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
               "item": {"type": "message", "id": "msg_s_0", "status": "in_progress", "role": "assistant", "content": []}})
    );
    assert_eq!(
        events[3],
        json!({"type": "response.content_part.added", "sequence_number": 3, "item_id": "msg_s_0", "output_index": 0,
               "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
    );
    assert_eq!(
        events[4],
        json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_s_0", "output_index": 0,
               "content_index": 0, "delta": "Hel", "logprobs": []})
    );
    assert_eq!(
        events[6],
        json!({"type": "response.output_text.done", "sequence_number": 6, "item_id": "msg_s_0", "output_index": 0,
               "content_index": 0, "text": "Hello", "logprobs": []})
    );
    let done = &events[9]["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["created_at"], 1_700_000_000);
    assert_eq!(done["output"], json!([events[8]["item"]]));
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(done["usage"]["total_tokens"], 5, "from the usage chunk");
    assert_eq!(done["instructions"], "Be brief.");
}

#[test]
fn reasoning_then_text_then_calls_close_in_order() {
    let call = |index: u32, id: Option<&str>, name: Option<&str>, arguments: &str| {
        let mut function = json!({"arguments": arguments});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({"index": index, "function": function});
        if let Some(id) = id {
            call["id"] = json!(id);
            call["type"] = json!("function");
        }
        delta(json!({"tool_calls": [call]}))
    };
    let chunks = [
        delta(json!({"role": "assistant", "reasoning_content": "Think"})),
        delta(json!({"reasoning": "ing."})),
        delta(json!({"content": "Sure."})),
        call(0, Some("call_a"), Some("weather"), ""),
        call(0, None, None, "{\"city\":"),
        call(1, Some("call_b"), Some("time"), "{}"),
        call(0, None, None, "\"Oslo\"}"),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ];
    let usage =
        Usage { prompt_tokens: 7, completion_tokens: 9, reasoning_tokens: Some(3), ..Usage::default() };
    let events = run("{}", &chunks, Ok(Some(usage)));
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        events[4],
        json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 4, "item_id": "rs_s_0",
               "output_index": 0, "summary_index": 0, "delta": "Think"})
    );
    assert_eq!(
        events[15]["item"],
        json!({"type": "function_call", "id": "fc_s_2", "call_id": "call_a", "name": "weather", "arguments": "",
               "status": "in_progress"})
    );
    assert_eq!(
        events[20],
        json!({"type": "response.function_call_arguments.done", "sequence_number": 20, "item_id": "fc_s_2",
               "output_index": 2, "arguments": "{\"city\":\"Oslo\"}"})
    );
    let response = &events[24]["response"];
    let output: Vec<&str> =
        response["output"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(output, ["rs_s_0", "msg_s_1", "fc_s_2", "fc_s_3"]);
    assert_eq!(response["output"][0]["summary"][0]["text"], "Thinking.");
    assert_eq!(response["usage"]["output_tokens_details"]["reasoning_tokens"], 3);
}

#[test]
fn a_refusal_and_a_length_cut_end_incomplete() {
    let chunks = [
        delta(json!({"content": "Part"})),
        delta(json!({"refusal": "No."})),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
    ];
    let events = run("{}", &chunks, Ok(None));
    let kinds = types(&events);
    assert!(kinds.contains(&"response.refusal.delta") && kinds.contains(&"response.refusal.done"));
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(
        last["response"]["output"][0]["content"],
        json!([{"type": "output_text", "text": "Part", "annotations": [], "logprobs": []},
               {"type": "refusal", "refusal": "No."}])
    );
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");
}

#[test]
fn an_error_fails_the_response_with_the_output_so_far() {
    let error = r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error","code":null}}"#;
    let events = run("{}", &[delta(json!({"content": "Hal"}))], Err(error));
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(
        last["response"]["error"],
        json!({"code": "rate_limit_exceeded", "message": "Rate limit reached"})
    );
    assert_eq!(last["response"]["output"][0]["content"][0]["text"], "Hal");
    assert_eq!(last["response"]["output"][0]["status"], "incomplete");

    // Before anything: the preamble still comes first, as the SDKs require.
    let events = run("{}", &[], Err("not json"));
    assert_eq!(types(&events), ["response.created", "response.in_progress", "response.failed"]);
    assert_eq!(events[2]["response"]["error"]["code"], "server_error");
    let events = run("{}", &[], Ok(None));
    assert_eq!(types(&events), ["response.created", "response.in_progress", "response.completed"]);
}

#[test]
fn nothing_is_written_after_the_end_and_junk_chunks_are_skipped() {
    let mut writer = writer(b"{}", "resp_x");
    let mut out = BytesMut::new();
    writer.chunk("not json", &mut out);
    writer.chunk(r#"{"choices":[{"index":1,"delta":{"content":"other choice"}}]}"#, &mut out);
    assert!(!String::from_utf8_lossy(&out).contains("other choice"));
    writer.finish(None, &mut out);
    let len = out.len();
    writer.chunk(&delta(json!({"content": "late"})).to_string(), &mut out);
    writer.error("{}", &mut out);
    writer.finish(None, &mut out);
    assert_eq!(out.len(), len);
}

/// Requests and completions cut short and with bytes flipped: errors are fine, panics not.
#[test]
fn mangled_payloads_never_panic() {
    let request = json!({"model": "m", "instructions": "s", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "a\"b"}, {"type": "input_image", "image_url": "u"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "x"}],
        "tools": [{"type": "function", "name": "f"}], "tool_choice": "auto", "text": {"format": {"type": "json_object"}}})
    .to_string();
    let chat = r#"{"model":"m","choices":[{"finish_reason":"stop","message":{"content":"hi \"there\"","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]}}],"usage":{"prompt_tokens":1}}"#;
    let chunk = r#"{"choices":[{"index":0,"delta":{"content":"x","reasoning":{"a":1},"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{"}}]},"finish_reason":null}],"usage":null}"#;
    let mut rng = fastrand::Rng::with_seed(3);
    for round in 0..400 {
        let mangle = |original: &str, rng: &mut fastrand::Rng| {
            let mut bytes = original.as_bytes().to_vec();
            bytes.truncate(rng.usize(0..=bytes.len()));
            for _ in 0..round % 4 {
                if !bytes.is_empty() {
                    let at = rng.usize(..bytes.len());
                    bytes[at] = b"{}[]\":,0a\\"[rng.usize(..10)];
                }
            }
            bytes
        };
        let _ = to_chat(&mangle(&request, &mut rng));
        let mangled_request = mangle(&request, &mut rng);
        let _ = answer(&mangled_request, "resp_f", &mangle(chat, &mut rng));
        let mut writer = writer(&mangled_request, "resp_f");
        let mut out = BytesMut::new();
        let data = String::from_utf8_lossy(&mangle(chunk, &mut rng)).into_owned();
        writer.chunk(&data, &mut out);
        writer.chunk(chunk, &mut out);
        writer.finish(None, &mut out);
    }
    assert!(bench::request(request.as_bytes()) > 0);
    assert!(bench::response(chat.as_bytes()) > 0);
    let sse = format!("data: {chunk}\n\ndata: [DONE]\n\n");
    assert!(bench::stream(sse.as_bytes()) > 0);
}

#[test]
fn namespaced_tools_go_flat_to_chat_and_come_back_with_their_namespace() {
    // Codex groups its sub-agent tools in a namespace.
    let request = json!({"model": "m", "input": [
            {"role": "user", "content": "spawn one"},
            {"type": "function_call", "call_id": "c0", "namespace": "agents", "name": "spawn", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c0", "output": "ok"}],
        "tools": [{"type": "namespace", "name": "agents", "description": "Sub-agents", "tools": [
            {"type": "function", "name": "spawn", "parameters": {"type": "object"}}]},
            {"type": "function", "name": "plain__name", "parameters": {"type": "object"}}]});
    let body = request.to_string();
    let chat: Value = serde_json::from_slice(&to_chat(body.as_bytes()).unwrap()).unwrap();
    let names: Vec<&str> =
        chat["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["agents__spawn", "plain__name"]);
    assert_eq!(chat["messages"][1]["tool_calls"][0]["function"]["name"], "agents__spawn");

    let completion = json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "agents__spawn", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "plain__name", "arguments": "{}"}}]},
        "finish_reason": "tool_calls"}]});
    let response: Value = serde_json::from_slice(
        &answer(body.as_bytes(), "resp_1", completion.to_string().as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (response["output"][0]["namespace"].as_str(), response["output"][0]["name"].as_str()),
        (Some("agents"), Some("spawn"))
    );
    assert_eq!(response["output"][1]["name"], "plain__name", "a name that only looks namespaced stays whole");
    assert!(response["output"][1].get("namespace").is_none());
}
