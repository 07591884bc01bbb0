//! Every provider adapter through real sockets: mock upstreams speaking each provider's wire
//! format (recorded fixtures in `tests/fixtures/`), checked in both directions — what the
//! upstream received, and what the OpenAI client got.
#![allow(clippy::unwrap_used)]

mod common;

use common::recorder::{Canned, Recorder};
use common::{Proxy, Reply, Upstream, header};
use serde_json::{Value, json};

/// The data of every event of an SSE body, and whether it ended with `[DONE]`.
async fn stream_events(response: reqwest::Response) -> (Vec<Value>, bool) {
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let text = response.text().await.unwrap();
    let mut done = false;
    let mut events = Vec::new();
    // Comments (`: ping`) are keep-alives every SSE client ignores.
    for event in text.split("\n\n").filter(|e| !e.trim().is_empty() && !e.starts_with(':')) {
        let data = event.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {event:?}"));
        if data == "[DONE]" {
            done = true;
        } else {
            assert!(!done, "event after [DONE]");
            events.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}")));
        }
    }
    (events, done)
}

/// Reassembles streamed tool calls the way the official SDKs do: by `index`, strings
/// concatenated. Returns (id, name, arguments) per call.
fn tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().expect("every tool-call delta has an index") as usize;
            if calls.len() <= index {
                calls.resize(index + 1, Default::default());
            }
            calls[index].0 += call["id"].as_str().unwrap_or("");
            calls[index].1 += call["function"]["name"].as_str().unwrap_or("");
            calls[index].2 += call["function"]["arguments"].as_str().unwrap_or("");
        }
    }
    calls
}

fn text(chunks: &[Value]) -> String {
    chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect()
}

fn tool_request(stream: bool) -> Value {
    json!({
        "model": "m", "stream": stream, "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}],
        "tool_choice": "auto",
    })
}

fn provider_yaml(kind: &str, url: &str, extra: &str) -> String {
    format!(
        "providers:\n  up: {{type: {kind}, api_key: sk-up-SECRET, base_url: \"{url}\"{extra}}}\n\
         models:\n  m: {{providers: {{up: {{model_id: upstream-model}}}}}}\n  e: {{providers: {{up: {{model_id: embed-model}}}}}}\n"
    )
}

#[tokio::test]
async fn anthropic_requests_and_answers_translate_both_ways() {
    let upstream = Recorder::start(vec![Canned::fixture("anthropic/message_tool_use.json")]).await;
    let proxy = Proxy::start(&provider_yaml("anthropic", &upstream.url, "")).await;
    let response = proxy.chat(tool_request(false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "up");
    let body: Value = response.json().await.unwrap();

    let sent = upstream.last();
    assert_eq!(sent.uri, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), "sk-up-SECRET");
    assert_eq!(sent.header("anthropic-version"), "2023-06-01");
    assert_eq!(sent.header("authorization"), "");
    assert_eq!(sent.body["model"], "upstream-model");
    assert_eq!(sent.body["system"], "You are terse.");
    assert_eq!(sent.body["max_tokens"], 4096);
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}])
    );
    assert_eq!(sent.body["tools"][0]["name"], "get_weather");
    assert_eq!(sent.body["tools"][0]["input_schema"]["required"], json!(["location"]));
    assert_eq!(sent.body["tool_choice"], json!({"type": "auto"}));
    assert!(sent.body.get("stream").is_none());

    assert_eq!(body["object"], "chat.completion");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "I'll check the weather in Paris.");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
    let arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"location": "Paris, France", "unit": "celsius"}));
    assert_eq!(body["usage"]["prompt_tokens"], 472 + 128);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 128);
}

#[tokio::test]
async fn anthropic_streams_become_openai_chunks_with_tool_call_deltas() {
    let upstream = Recorder::start(vec![Canned::fixture("anthropic/stream_tool_use.sse")]).await;
    let proxy = Proxy::start(&provider_yaml("anthropic", &upstream.url, ", max_tokens: 1000")).await;
    let (chunks, done) = stream_events(proxy.chat(tool_request(true)).await).await;
    assert!(done, "[DONE] ends the stream");
    assert_eq!(upstream.last().body["stream"], true);
    assert_eq!(upstream.last().body["max_tokens"], 1000);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "msg_014p7gG3wDgGV9EUtLvnow3U")
    );
    let roles = chunks.iter().filter(|c| c["choices"][0]["delta"].get("role").is_some()).count();
    assert_eq!(roles, 1, "role only in the first chunk");
    assert_eq!(text(&chunks), "Okay, let's check the weather.");
    let calls = tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].0.as_str(), calls[0].1.as_str()), ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"));
    let arguments: Value =
        serde_json::from_str(&calls[0].2).expect("streamed arguments reassemble into JSON");
    assert_eq!(arguments, json!({"location": "San Francisco, CA"}));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], json!({"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561}));
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn anthropic_errors_are_shown_in_openais_envelope_and_overload_fails_over() {
    let upstream =
        Recorder::start(vec![Canned::status_fixture(400, "anthropic/error_invalid_request.json")]).await;
    let proxy = Proxy::start(&provider_yaml("anthropic", &upstream.url, "")).await;
    let response = proxy.chat(tool_request(false)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "messages: text content blocks must be non-empty");
    assert!(body["error"].get("param").is_some() && body["error"].get("code").is_some());

    // 529 overloaded (and an overloaded error event opening a stream) fail over to OpenAI.
    for (canned, stream) in [
        (Canned::status_fixture(529, "anthropic/error_overloaded.json"), false),
        (Canned::fixture("anthropic/stream_overloaded.sse"), true),
    ] {
        let claude = Recorder::start(vec![canned]).await;
        let openai = Upstream::start(if stream {
            Reply::Stream { chunks: 2, gap: std::time::Duration::ZERO, end: common::End::Done }
        } else {
            Reply::Ok
        })
        .await;
        let yaml = format!(
            "providers:\n  claude: {{type: anthropic, api_key: k, base_url: \"{}\"}}\n  gpt: {{type: openai, base_url: \"{}\"}}\n\
             models:\n  m: {{providers: {{claude: {{priority: 0, model_id: claude-x}}, gpt: {{priority: 1, model_id: gpt-x}}}}}}\n",
            claude.url, openai.url
        );
        let proxy = Proxy::start(&yaml).await;
        let mut request = tool_request(stream);
        request["stream_options"] = Value::Null;
        let response = proxy.chat(request).await;
        assert_eq!(response.status(), 200, "stream: {stream}");
        assert_eq!(header(&response, "x-llm-proxy-provider"), "gpt");
        assert_eq!(header(&response, "x-llm-proxy-attempts"), "2");
        let deployment = proxy.deployment("m", "claude").await;
        assert_eq!(deployment["consecutive_failures"], 1, "overload counts against the deployment");
    }
}

#[tokio::test]
async fn fields_a_provider_cannot_honour_are_refused_by_name_or_served_elsewhere() {
    let claude = Recorder::start(vec![Canned::fixture("anthropic/message_text.json")]).await;
    let proxy = Proxy::start(&provider_yaml("anthropic", &claude.url, "")).await;
    let mut request = tool_request(false);
    request["logprobs"] = json!(true);
    let response = proxy.chat(request.clone()).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "logprobs");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`logprobs` is not supported by Anthropic") && message.contains("`up`"),
        "{message}"
    );
    assert!(claude.received().is_empty(), "nothing was sent upstream");

    // With an OpenAI deployment behind it, the request is served there, and Claude is not
    // penalised for what it never promised.
    let openai = Upstream::start(Reply::Ok).await;
    let yaml = format!(
        "router: {{failure_threshold: 1}}\nproviders:\n  claude: {{type: anthropic, api_key: k, base_url: \"{}\"}}\n  gpt: {{type: openai, base_url: \"{}\"}}\n\
         models:\n  m: {{providers: {{claude: {{priority: 0}}, gpt: {{priority: 1}}}}}}\n",
        claude.url, openai.url
    );
    let proxy = Proxy::start(&yaml).await;
    let response = proxy.chat(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "gpt");
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "1");
    assert_eq!(proxy.deployment("m", "claude").await["available"], true);
}

#[tokio::test]
async fn gemini_requests_answers_and_streams_translate() {
    let upstream = Recorder::start(vec![
        Canned::fixture("gemini/generate_function_call.json"),
        Canned::fixture("gemini/stream_text.sse"),
    ])
    .await;
    let proxy = Proxy::start(&provider_yaml("gemini", &upstream.url, "")).await;
    let body: Value = proxy.chat(tool_request(false)).await.json().await.unwrap();
    let sent = upstream.last();
    assert_eq!(sent.uri, "/v1beta/models/upstream-model:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), "sk-up-SECRET");
    assert!(!sent.uri.contains("key="), "the key never goes in the URL");
    assert_eq!(sent.body["systemInstruction"], json!({"parts": [{"text": "You are terse."}]}));
    assert_eq!(sent.body["contents"], json!([{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]));
    assert_eq!(sent.body["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
    assert_eq!(sent.body["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["function"]["arguments"], "{\"location\":\"Boston, MA\"}");
    assert_eq!(body["usage"]["total_tokens"], 65);
    assert_eq!(body["model"], "gemini-2.5-flash");

    let (chunks, done) = stream_events(proxy.chat(tool_request(true)).await).await;
    assert_eq!(upstream.last().uri, "/v1beta/models/upstream-model:streamGenerateContent?alt=sse");
    assert!(done, "Gemini sends no [DONE]; the proxy adds it");
    assert_eq!(text(&chunks), "Once upon a time, a llama wrote code.");
    assert!(chunks.iter().all(|c| c["id"] == "r-stream-1"));
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 12);
}

#[tokio::test]
async fn gemini_errors_translate_and_unavailable_fails_over() {
    let upstream = Recorder::start(vec![
        Canned::status_fixture(400, "gemini/error_invalid_argument.json"),
        Canned::status_fixture(503, "gemini/error_unavailable.json"),
    ])
    .await;
    let proxy = Proxy::start(&provider_yaml("gemini", &upstream.url, "")).await;
    let response = proxy.chat(tool_request(false)).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("contents is not specified"));
    let response = proxy.chat(tool_request(false)).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("up: HTTP 503"), "{body}");
}

#[tokio::test]
async fn azure_puts_the_deployment_in_the_url_and_the_key_in_api_key() {
    let recorder = Recorder::start(vec![Canned {
        status: 200,
        content_type: "application/json",
        body: common::completion("gpt-4o").to_string().into(),
    }])
    .await;
    let yaml = format!(
        "providers:\n  az: {{type: azure, api_key: az-SECRET, base_url: \"{}/\", api_version: 2025-01-01-preview}}\n\
         models:\n  m: {{providers: {{az: {{model_id: my gpt/4o}}}}}}\n  e: {{providers: {{az: {{model_id: embedder}}}}}}\n",
        recorder.url
    );
    let proxy = Proxy::start(&yaml).await;
    let response = proxy.chat(tool_request(false)).await;
    assert_eq!(response.status(), 200);
    let sent = recorder.last();
    assert_eq!(sent.uri, "/openai/deployments/my%20gpt%2F4o/chat/completions?api-version=2025-01-01-preview");
    assert_eq!(sent.header("api-key"), "az-SECRET");
    assert_eq!(sent.header("authorization"), "");
    assert_eq!(sent.body["tools"], tool_request(false)["tools"], "the body passes through");
    proxy.post("/v1/embeddings", json!({"model": "e", "input": "hi"})).await;
    assert_eq!(recorder.last().uri, "/openai/deployments/embedder/embeddings?api-version=2025-01-01-preview");
}

#[tokio::test]
async fn presets_are_the_openai_adapter_with_their_defaults() {
    let upstream = Recorder::start(vec![Canned {
        status: 200,
        content_type: "application/json",
        body: common::completion("llama").to_string().into(),
    }])
    .await;
    let proxy = Proxy::start(&provider_yaml("groq", &format!("{}/openai/v1", upstream.url), "")).await;
    assert_eq!(proxy.chat(tool_request(false)).await.status(), 200);
    let sent = upstream.last();
    assert_eq!(sent.uri, "/openai/v1/chat/completions");
    assert_eq!(sent.header("authorization"), "Bearer sk-up-SECRET");

    let env = std::collections::HashMap::<String, String>::new();
    let missing_key =
        "providers:\n  g: {type: groq}\n  o: {type: ollama}\nmodels:\n  m: {providers: {g: {}, o: {}}}\n";
    let err =
        llm_proxy::Config::parse(missing_key, std::path::Path::new("t.yaml"), &env).unwrap_err().to_string();
    assert!(err.contains("providers.g.api_key: required"), "{err}");
    assert!(!err.contains("providers.o"), "local servers need no key: {err}");
    let unknown = "providers:\n  x: {type: grok}\nmodels:\n  m: {providers: {x: {}}}\n";
    let err =
        llm_proxy::Config::parse(unknown, std::path::Path::new("t.yaml"), &env).unwrap_err().to_string();
    assert!(err.contains("unknown provider type `grok`") && err.contains("groq"), "{err}");
}

#[tokio::test]
async fn embeddings_route_and_fail_over_across_formats() {
    // Gemini first (503), then an OpenAI-compatible upstream.
    let gemini = Recorder::start(vec![
        Canned::status_fixture(503, "gemini/error_unavailable.json"),
        Canned::fixture("gemini/embed.json"),
    ])
    .await;
    let openai = Recorder::start(vec![Canned {
        status: 200,
        content_type: "application/json",
        body: json!({"object": "list", "model": "text-embedding-3-small",
                     "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                     "usage": {"prompt_tokens": 2, "total_tokens": 2}})
        .to_string()
        .into(),
    }])
    .await;
    let yaml = format!(
        "router: {{failure_threshold: 5}}\nproviders:\n  gem: {{type: gemini, api_key: g, base_url: \"{}\"}}\n  oai: {{type: openai, base_url: \"{}/v1\"}}\n  \
         claude: {{type: anthropic, api_key: a}}\n\
         models:\n  e: {{providers: {{claude: {{priority: 0}}, gem: {{priority: 1, model_id: text-embedding-004}}, oai: {{priority: 2, model_id: text-embedding-3-small}}}}}}\n",
        gemini.url, openai.url
    );
    let proxy = Proxy::start(&yaml).await;
    let response = proxy.post("/v1/embeddings", json!({"model": "e", "input": "hello"})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "oai");
    assert_eq!(
        header(&response, "x-llm-proxy-attempts"),
        "2",
        "Anthropic has no embeddings: passed over, not tried"
    );
    assert_eq!(openai.last().uri, "/v1/embeddings");
    assert_eq!(openai.last().body["model"], "text-embedding-3-small");

    let response = proxy
        .post("/v1/embeddings", json!({"model": "e", "input": ["a", "b"], "encoding_format": "float"}))
        .await;
    assert_eq!(header(&response, "x-llm-proxy-provider"), "gem");
    let body: Value = response.json().await.unwrap();
    let sent = gemini.last();
    assert_eq!(sent.uri, "/v1beta/models/text-embedding-004:batchEmbedContents");
    assert_eq!(sent.body["requests"][1]["content"]["parts"][0]["text"], "b");
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][1]["embedding"], json!([0.5, -0.25, 0.125, 1.0]));
    assert_eq!(body["data"][1]["index"], 1);

    // Only Anthropic: a clear 400 naming the endpoint and the provider.
    let yaml =
        "providers:\n  claude: {type: anthropic, api_key: a}\nmodels:\n  e: {providers: {claude: {}}}\n";
    let proxy = Proxy::start(yaml).await;
    let response = proxy.post("/v1/embeddings", json!({"model": "e", "input": "x"})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embeddings are not supported (provider `claude`)"),
        "{body}"
    );
}

#[tokio::test]
async fn the_mock_provider_embeds_deterministically() {
    let proxy =
        Proxy::start("providers:\n  mock: {type: mock}\nmodels:\n  e: {providers: {mock: {}}}\n").await;
    let embed = |input: &'static str| {
        proxy.post("/v1/embeddings", json!({"model": "e", "input": [input, "other"], "dimensions": 4}))
    };
    let first: Value = embed("same").await.json().await.unwrap();
    let again: Value = embed("same").await.json().await.unwrap();
    assert_eq!(first["data"][0]["embedding"], again["data"][0]["embedding"]);
    assert_ne!(first["data"][0]["embedding"], first["data"][1]["embedding"]);
    assert_eq!(first["data"][0]["embedding"].as_array().unwrap().len(), 4);
    let bad = proxy.post("/v1/embeddings", json!({"model": "e"})).await;
    assert_eq!(bad.status(), 400);
}
