//! The three client dialects through real sockets: OpenAI Chat Completions, OpenAI Responses
//! and Anthropic Messages, each against an upstream that speaks it (bytes relayed untouched
//! both ways) and against one that does not (translated through Chat Completions); errors in
//! the client's dialect; failover across dialects.
#![allow(clippy::unwrap_used)]

mod common;

use common::recorder::{Canned, Recorder};
use common::{Proxy, header};
use serde_json::{Value, json};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// One model `m` served by `up` (a provider of `kind` at `url`), and `extra` providers.
fn one_provider(kind: &str, url: &str) -> String {
    format!(
        "server: {{master_key: sk-master}}\nproviders:\n  up: {{type: {kind}, api_key: sk-up-SECRET, base_url: \"{url}\"}}\n\
         models:\n  m: {{providers: {{up: {{model_id: upstream-model}}}}}}\n"
    )
}

async fn post(proxy: &Proxy, path: &str, body: &Value, key: (&str, &str)) -> reqwest::Response {
    proxy.client.post(format!("{}{path}", proxy.url)).header(key.0, key.1).json(body).send().await.unwrap()
}

fn messages_request(stream: bool) -> Value {
    json!({
        "model": "m", "max_tokens": 1024, "stream": stream,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Weather in SF?", "cache_control": {"type": "ephemeral"}}
        ]}],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "x_future_field": {"anything": [1, 2]},
    })
}

#[tokio::test]
async fn messages_to_anthropic_pass_through_byte_for_byte() {
    for (stream, file) in
        [(false, "anthropic/message_tool_use.json"), (true, "anthropic/stream_tool_use.sse")]
    {
        let upstream = Recorder::start(vec![Canned::fixture(file)]).await;
        let proxy = Proxy::start(&one_provider("anthropic", &upstream.url)).await;
        let request = messages_request(stream);
        let response = proxy
            .client
            .post(format!("{}/v1/messages", proxy.url))
            .header("x-api-key", "sk-master")
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "interleaved-thinking-2025-05-14")
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "stream: {stream}");
        assert_eq!(header(&response, "x-llm-proxy-provider"), "up");
        let got = response.bytes().await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&fixture(file)),
            "the client gets Anthropic's bytes (stream: {stream})"
        );

        let sent = upstream.last();
        assert_eq!(sent.uri, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), "sk-up-SECRET", "the proxy's key, not the client's");
        assert_eq!(sent.header("anthropic-beta"), "interleaved-thinking-2025-05-14");
        assert_eq!(sent.header("anthropic-version"), "2023-06-01");
        let mut expected = request.clone();
        expected["model"] = json!("upstream-model");
        assert_eq!(
            sent.body, expected,
            "cache_control, thinking and unknown fields reach Anthropic untouched"
        );
    }
}

#[tokio::test]
async fn responses_to_openai_pass_through_byte_for_byte() {
    for (stream, file) in [(false, "responses/response_text.json"), (true, "responses/response_stream.sse")] {
        let upstream = Recorder::start(vec![Canned::fixture(file)]).await;
        let proxy = Proxy::start(&one_provider("openai", &format!("{}/v1", upstream.url))).await;
        let request = json!({
            "model": "m", "stream": stream, "input": "Tell me a story.", "instructions": "Be brief.",
            "reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"], "x_future": 1,
        });
        let response = post(&proxy, "/v1/responses", &request, ("authorization", "Bearer sk-master")).await;
        assert_eq!(response.status(), 200, "stream: {stream}");
        let got = response.bytes().await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&fixture(file)),
            "the client gets OpenAI's bytes (stream: {stream})"
        );
        let sent = upstream.last();
        assert_eq!(sent.uri, "/v1/responses");
        assert_eq!(sent.header("authorization"), "Bearer sk-up-SECRET");
        let mut expected = request.clone();
        expected["model"] = json!("upstream-model");
        assert_eq!(sent.body, expected, "the request reaches OpenAI as the client wrote it");
    }
}

#[tokio::test]
async fn the_master_key_works_the_way_each_sdk_sends_it_and_errors_speak_the_dialect() {
    let upstream = Recorder::start(vec![Canned::fixture("anthropic/message_text.json")]).await;
    let proxy = Proxy::start(&one_provider("anthropic", &upstream.url)).await;
    let body = messages_request(false);
    for key in [("x-api-key", "sk-master"), ("authorization", "Bearer sk-master"), ("api-key", "sk-master")] {
        assert_eq!(post(&proxy, "/v1/messages", &body, key).await.status(), 200, "{key:?}");
    }
    let wrong = post(&proxy, "/v1/messages", &body, ("x-api-key", "sk-wrong")).await;
    assert_eq!(wrong.status(), 401);
    let error: Value = wrong.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "authentication_error");
    assert!(!error.to_string().contains("sk-wrong"), "a key is never echoed");

    let unknown = post(
        &proxy,
        "/v1/messages",
        &json!({"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        ("x-api-key", "sk-master"),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(error["error"]["type"], "not_found_error", "{error}");

    let no_max = post(
        &proxy,
        "/v1/messages",
        &json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ("x-api-key", "sk-master"),
    )
    .await;
    assert_eq!(no_max.status(), 400);
    let error: Value = no_max.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("max_tokens"));

    // The OpenAI dialects keep OpenAI's envelope.
    let openai =
        post(&proxy, "/v1/responses", &json!({"model": "nope", "input": "hi"}), ("x-api-key", "sk-master"))
            .await;
    assert_eq!(openai.status(), 404);
    let error: Value = openai.json().await.unwrap();
    assert_eq!(error["error"]["code"], "model_not_found", "{error}");
}

#[tokio::test]
async fn an_upstream_error_reaches_a_messages_client_in_anthropics_shape() {
    // Pass-through: Anthropic's own error body, status kept.
    let upstream =
        Recorder::start(vec![Canned::status_fixture(400, "anthropic/error_invalid_request.json")]).await;
    let proxy = Proxy::start(&one_provider("anthropic", &upstream.url)).await;
    let response = post(&proxy, "/v1/messages", &messages_request(false), ("x-api-key", "sk-master")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        fixture("anthropic/error_invalid_request.json").as_slice()
    );

    // Every deployment overloaded: Anthropic's 529 `overloaded_error`, which its SDK raises as
    // `OverloadedError`.
    let upstream =
        Recorder::start(vec![Canned::status_fixture(529, "anthropic/error_overloaded.json")]).await;
    let proxy = Proxy::start(&one_provider("anthropic", &upstream.url)).await;
    let response = post(&proxy, "/v1/messages", &messages_request(false), ("x-api-key", "sk-master")).await;
    assert_eq!(response.status(), 529);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error", "{error}");
}

#[tokio::test]
async fn a_websocket_upgrade_on_responses_gets_426_at_once() {
    let upstream = Recorder::start(vec![Canned::fixture("responses/response_text.json")]).await;
    let proxy = Proxy::start(&one_provider("openai", &upstream.url)).await;
    let response = proxy
        .client
        .get(format!("{}/v1/responses", proxy.url))
        .header("authorization", "Bearer sk-master")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 426);
    assert!(upstream.received().is_empty());
}

/// `m` served by `first` (priority 0) then `second`.
fn two_providers(first: (&str, &str), second: (&str, &str)) -> String {
    format!(
        "providers:\n  a: {{type: {}, api_key: sk-a, base_url: \"{}\"}}\n  b: {{type: {}, api_key: sk-b, base_url: \"{}\"}}\n\
         models:\n  m: {{providers: {{a: {{priority: 0, model_id: a-model}}, b: {{priority: 1, model_id: b-model}}}}}}\n",
        first.0, first.1, second.0, second.1
    )
}

/// The events of an SSE body with `event:` names: (name, data).
async fn named_events(response: reqwest::Response) -> Vec<(String, Value)> {
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty() && !e.starts_with(':'))
        .map(|event| {
            let mut name = String::new();
            let mut data = String::new();
            for line in event.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (name, serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}")))
        })
        .collect()
}

#[tokio::test]
async fn a_messages_call_fails_over_from_anthropic_to_openai_and_stays_anthropic() {
    // Plain: Anthropic overloaded (relayed as is would be 529), OpenAI answers in Chat.
    let anthropic =
        Recorder::start(vec![Canned::status_fixture(529, "anthropic/error_overloaded.json")]).await;
    let openai = Recorder::start(vec![Canned::fixture("chat/chat_completion.json")]).await;
    let proxy = Proxy::start(&two_providers(("anthropic", &anthropic.url), ("openai", &openai.url))).await;
    let request = json!({"model": "m", "max_tokens": 100, "system": "Be terse.",
        "messages": [{"role": "user", "content": "hi"}]});
    let response = post(&proxy, "/v1/messages", &request, ("x-api-key", "k")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "b");
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "2");
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"][0], json!({"type": "text", "text": "Hello from OpenAI."}));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], 9);
    assert_eq!(message["usage"]["output_tokens"], 4);
    let sent = openai.last();
    assert_eq!(sent.uri, "/chat/completions");
    assert_eq!(sent.body["model"], "b-model");
    assert_eq!(sent.body["messages"][0]["content"], "Be terse.");
    assert_eq!(sent.body["messages"][1], json!({"role": "user", "content": "hi"}));

    // Streamed: an overloaded error event before any content fails over too.
    let anthropic = Recorder::start(vec![Canned::fixture("anthropic/stream_overloaded.sse")]).await;
    let openai = Recorder::start(vec![Canned::fixture("chat/chat_stream.sse")]).await;
    let proxy = Proxy::start(&two_providers(("anthropic", &anthropic.url), ("openai", &openai.url))).await;
    let mut request = request.clone();
    request["stream"] = json!(true);
    let events = named_events(post(&proxy, "/v1/messages", &request, ("x-api-key", "k")).await).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert!(names.contains(&"content_block_delta") && names.contains(&"message_delta"), "{names:?}");
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Hello from OpenAI.");
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "every data names its event");
    }
}

#[tokio::test]
async fn a_responses_conversation_continues_on_a_translating_upstream() {
    let upstream = Recorder::start(vec![Canned::fixture("anthropic/message_text.json")]).await;
    let proxy = Proxy::start(&one_provider("anthropic", &upstream.url)).await;
    let key = ("authorization", "Bearer sk-master");
    let first = post(
        &proxy,
        "/v1/responses",
        &json!({"model": "m", "input": "Who are you?", "instructions": "Be brief."}),
        key,
    )
    .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["object"], "response");
    assert_eq!(first["status"], "completed");
    let id = first["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("resp_"), "{id}");
    assert_eq!(first["output"][0]["type"], "message");
    assert_eq!(first["output"][0]["content"][0]["text"], "Hi! My name is Claude.");
    assert_eq!(first["usage"]["input_tokens"], 2095);
    let sent = upstream.last();
    assert_eq!(sent.body["system"], "Be brief.");
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Who are you?"}]}])
    );

    // The proxy kept it.
    let got: Value = proxy
        .client
        .get(format!("{}/v1/responses/{id}", proxy.url))
        .header(key.0, key.1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, first);

    // The next turn names it; Anthropic, which keeps nothing, gets the whole conversation.
    let second = post(
        &proxy,
        "/v1/responses",
        &json!({"model": "m", "previous_response_id": id, "input": "And again?"}),
        key,
    )
    .await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    let texts: Vec<String> = upstream.last().body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}: {}", m["role"].as_str().unwrap(), m["content"]))
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].starts_with("user") && texts[0].contains("Who are you?"), "{texts:?}");
    assert!(texts[1].starts_with("assistant") && texts[1].contains("Hi! My name is Claude."), "{texts:?}");
    assert!(texts[2].starts_with("user") && texts[2].contains("And again?"), "{texts:?}");

    let items: Value = proxy
        .client
        .get(format!("{}/v1/responses/{}/input_items?order=asc", proxy.url, second["id"].as_str().unwrap()))
        .header(key.0, key.1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"].as_array().unwrap().len(), 3);
    assert_eq!(items["has_more"], false);

    let deleted = proxy
        .client
        .delete(format!("{}/v1/responses/{id}", proxy.url))
        .header(key.0, key.1)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let gone = proxy
        .client
        .get(format!("{}/v1/responses/{id}", proxy.url))
        .header(key.0, key.1)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_responses_stream_from_a_chat_upstream_is_the_typed_event_sequence() {
    // `groq` speaks Chat Completions only (`responses_api` is off for the presets).
    let upstream = Recorder::start(vec![Canned::fixture("chat/chat_stream.sse")]).await;
    let proxy = Proxy::start(&one_provider("groq", &upstream.url)).await;
    let request = json!({"model": "m", "input": "hi", "stream": true});
    let events =
        named_events(post(&proxy, "/v1/responses", &request, ("authorization", "Bearer sk-master")).await)
            .await;
    assert_eq!(upstream.last().uri, "/chat/completions");
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["response.created", "response.in_progress"], "{names:?}");
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i, "sequence numbers count every event");
    }
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .filter_map(|(_, d)| d["delta"].as_str())
        .collect();
    assert_eq!(text, "Hello from OpenAI.");
    let done = &events.last().unwrap().1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["usage"]["input_tokens"], 9);
    assert_eq!(done["output"][0]["content"][0]["text"], "Hello from OpenAI.");
    // Kept, as a plain answer is.
    let id = done["id"].as_str().unwrap();
    let got = proxy
        .client
        .get(format!("{}/v1/responses/{id}", proxy.url))
        .header("authorization", "Bearer sk-master")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
}

#[tokio::test]
async fn a_native_responses_stream_that_fails_before_content_fails_over() {
    let openai = Recorder::start(vec![Canned::fixture("responses/response_stream_rate_limited.sse")]).await;
    let backup = Recorder::start(vec![Canned::fixture("responses/response_stream.sse")]).await;
    let proxy = Proxy::start(&two_providers(("openai", &openai.url), ("azure", &backup.url))).await;
    let request = json!({"model": "m", "input": "hi", "stream": true});
    let response = post(&proxy, "/v1/responses", &request, ("authorization", "Bearer x")).await;
    assert_eq!(header(&response, "x-llm-proxy-provider"), "b");
    let got = response.bytes().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&fixture("responses/response_stream.sse"))
    );
    assert_eq!(backup.last().uri, "/openai/v1/responses");
    assert_eq!(backup.last().header("api-key"), "sk-b");
}

#[tokio::test]
async fn count_tokens_asks_anthropic_and_estimates_elsewhere() {
    let anthropic = Recorder::start(vec![Canned {
        status: 200,
        content_type: "application/json",
        body: r#"{"input_tokens":42}"#.into(),
    }])
    .await;
    let proxy = Proxy::start(&one_provider("anthropic", &anthropic.url)).await;
    let request =
        json!({"model": "m", "messages": [{"role": "user", "content": "Hello, Claude. How are you today?"}]});
    let response = post(&proxy, "/v1/messages/count_tokens", &request, ("x-api-key", "sk-master")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"input_tokens": 42}));
    assert_eq!(anthropic.last().uri, "/v1/messages/count_tokens");
    assert_eq!(anthropic.last().body["model"], "upstream-model");

    let openai = Recorder::start(vec![Canned::fixture("chat/chat_completion.json")]).await;
    let proxy = Proxy::start(&one_provider("openai", &openai.url)).await;
    let response = post(&proxy, "/v1/messages/count_tokens", &request, ("x-api-key", "sk-master")).await;
    assert_eq!(response.status(), 200);
    let tokens = response.json::<Value>().await.unwrap()["input_tokens"].as_u64().unwrap();
    assert!((5..40).contains(&tokens), "an estimate near the truth: {tokens}");
    assert!(openai.received().is_empty(), "nothing to ask an upstream without a counting endpoint");
}

/// A `count_tokens` answered by the proxy's estimate never reached an upstream, so it settles
/// nothing: a deployment failing every real request is still ejected.
#[tokio::test]
async fn a_count_tokens_estimate_touches_no_deployment() {
    let (primary, _backup, proxy) = common::pair(
        common::Reply::Status(500, vec![]),
        common::Reply::Ok,
        "failure_threshold: 3, cooldown_seconds: 600",
    )
    .await;
    let count = json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]});
    for _ in 0..3 {
        proxy.chat(common::chat_body("m")).await;
        let counted = proxy.post("/v1/messages/count_tokens", count.clone()).await;
        assert_eq!(counted.status(), 200);
        assert!(counted.json::<Value>().await.unwrap()["input_tokens"].as_u64().unwrap() > 0);
    }
    assert_eq!(primary.calls(), 3, "the estimate never reached the upstream");
    let state = proxy.deployment("m", "primary").await;
    assert_eq!(state["enabled"], false, "three real failures in a row eject it: {state}");
}
