//! The client-facing contract: pass-through fidelity, headers, models, errors and auth.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ECHOED_SECRET, Proxy, Reply, Upstream, completion, config, header};
use serde_json::{Value, json};

/// Asserts an OpenAI error envelope with all four keys, and returns it.
async fn openai_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(header(&response, "content-type"), "application/json");
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_object().unwrap_or_else(|| panic!("not an OpenAI error: {body}"));
    for key in ["message", "type", "param", "code"] {
        assert!(error.contains_key(key), "missing {key} in {body}");
    }
    body["error"].clone()
}

#[tokio::test]
async fn only_the_model_is_rewritten_and_the_answer_is_relayed_untouched() {
    let upstream = Upstream::start(Reply::Ok).await;
    let yaml = format!(
        "providers:\n  p: {{type: openai, api_key: sk-p-key, base_url: \"{}\", headers: {{OpenAI-Organization: org-42}}}}\n\
         models:\n  gpt-4o:\n    providers: {{p: {{model_id: gpt-4o-2024-08-06}}}}\n",
        upstream.url
    );
    let proxy = Proxy::start(&yaml).await;
    let sent = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi \u00e9"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
        "response_format":{"type":"json_object"},"stream_options":null,"seed":7,"n":2,
        "logprobs":true,"reasoning_effort":"low","some_future_field":{"nested":[1,2.50,"x"]}}"#;
    let response = proxy
        .client
        .post(format!("{}/v1/chat/completions", proxy.url))
        .header("content-type", "application/json")
        .header("x-request-id", "req-from-client")
        .body(sent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "p");
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "1");
    assert_eq!(header(&response, "x-request-id"), "req-from-client");
    assert_eq!(header(&response, "content-type"), "application/json");
    let body = response.bytes().await.unwrap();
    assert_eq!(body, serde_json::to_vec(&completion("gpt-4o-2024-08-06")).unwrap(), "byte-identical body");

    let (headers, received) = upstream.last_request();
    let expected = sent.replacen(r#""model":"gpt-4o""#, r#""model":"gpt-4o-2024-08-06""#, 1);
    assert_eq!(std::str::from_utf8(&received).unwrap(), expected, "every other byte untouched");
    assert_eq!(headers["authorization"], "Bearer sk-p-key");
    assert_eq!(headers["openai-organization"], "org-42");
    assert_eq!(headers["x-request-id"], "req-from-client");
}

#[tokio::test]
async fn a_request_id_is_generated_when_the_client_sends_none() {
    let upstream = Upstream::start(Reply::Ok).await;
    let proxy = Proxy::start(&config("", &[("p", &upstream)])).await;
    let response = proxy.chat(common::chat_body("m")).await;
    let id = header(&response, "x-request-id").to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(upstream.last_request().0["x-request-id"], id.as_str());
    let error = proxy.chat(json!({"model": "nope", "messages": [{}]})).await;
    assert_eq!(header(&error, "x-request-id").len(), 36, "errors carry one too");
}

#[tokio::test]
async fn models_are_listed_in_openai_format() {
    let yaml = "providers: {m: {type: mock}}\nmodels:\n  b-model: {providers: {m: {}}}\n  org/a-model: {providers: {m: {}}}\n";
    let proxy = Proxy::start(yaml).await;
    let list: Value = proxy.get("/v1/models").await.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<_> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["b-model", "org/a-model"]);
    for model in list["data"].as_array().unwrap() {
        assert_eq!(model["object"], "model");
        assert!(model["created"].as_u64().unwrap() > 1_700_000_000);
        assert_eq!(model["owned_by"], "llm-proxy");
    }
    let one: Value = proxy.get("/v1/models/org/a-model").await.json().await.unwrap();
    assert_eq!(one["id"], "org/a-model");
    let error = openai_error(proxy.get("/v1/models/missing").await, 404).await;
    assert_eq!(error["code"], "model_not_found");
}

#[tokio::test]
async fn bad_requests_get_clear_openai_errors() {
    let yaml =
        "server: {max_body_bytes: 2048}\nproviders: {m: {type: mock}}\nmodels: {echo: {providers: {m: {}}}}";
    let proxy = Proxy::start(yaml).await;
    let post = |body: &'static str| proxy.post_raw(body);
    let error = openai_error(post("{not json").await, 400).await;
    assert!(error["message"].as_str().unwrap().contains("not valid JSON"));
    assert_eq!(error["type"], "invalid_request_error");
    let error = openai_error(post(r#"{"messages":[{"role":"user","content":"x"}]}"#).await, 400).await;
    assert_eq!(error["param"], "model");
    let error = openai_error(post(r#"{"model":"echo"}"#).await, 400).await;
    assert_eq!(error["param"], "messages");
    let error =
        openai_error(post(r#"{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}"#).await, 404)
            .await;
    assert_eq!(error["code"], "model_not_found");
    assert!(error["message"].as_str().unwrap().contains("gpt-9"));

    // Over the limit: refused from Content-Length, and from a chunked body too.
    let big =
        format!(r#"{{"model":"echo","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(4096));
    let response = proxy.post_raw(big.clone()).await;
    assert_eq!(openai_error(response, 413).await["code"], "request_too_large");
    let chunks = futures_util::stream::iter(
        big.into_bytes().chunks(100).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>(),
    );
    let response = proxy.post_raw(reqwest::Body::wrap_stream(chunks)).await;
    openai_error(response, 413).await;

    openai_error(proxy.get("/v1/nothing-here").await, 404).await;
    openai_error(proxy.get("/v1/chat/completions").await, 405).await;
}

#[tokio::test]
async fn no_input_makes_the_proxy_panic() {
    let proxy = Proxy::start("providers: {m: {type: mock}}\nmodels: {echo: {providers: {m: {}}}}").await;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut inputs: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"{}".to_vec(),
        b"[]".to_vec(),
        b"\xff\xfe".to_vec(),
        br#"{"model":"echo","messages":[1,2]}"#.to_vec(),
        br#"{"model":"echo","messages":[{"role":"user","content":{"a":1}}]}"#.to_vec(),
        br#"{"model":"echo","messages":[{"role":"user"}],"stream":true}"#.to_vec(),
        br#"{"model":"echo","messages":[{}],"stream":1}"#.to_vec(),
        br#"{"model":"\ud800","messages":[{}]}"#.to_vec(),
        format!(r#"{{"model":"echo","messages":{}1{}}}"#, "[".repeat(200), "]".repeat(200)).into_bytes(),
    ];
    for _ in 0..200 {
        let len = rng.usize(0..64);
        inputs.push((0..len).map(|_| rng.u8(..)).collect());
    }
    for input in inputs {
        let response = proxy.post_raw(input.clone()).await;
        let status = response.status().as_u16();
        assert!(status == 200 || (400..500).contains(&status), "{status} for {input:?}");
        if status != 200 {
            openai_error(response, status).await;
        }
    }
    assert_eq!(proxy.get("/health").await.status(), 200);
}

#[tokio::test]
async fn the_master_key_guards_v1_but_not_health() {
    let yaml = "server: {master_key: sk-master-0001}\nproviders: {m: {type: mock}}\nmodels: {echo: {providers: {m: {}}}}";
    let proxy = Proxy::start(yaml).await;
    let url = format!("{}/v1/chat/completions", proxy.url);
    let body = common::chat_body("echo");
    let error = openai_error(proxy.client.post(&url).json(&body).send().await.unwrap(), 401).await;
    assert_eq!(error["code"], "invalid_api_key");
    let response = proxy.client.post(&url).bearer_auth("sk-master-0002").json(&body).send().await.unwrap();
    let error = openai_error(response, 401).await;
    assert!(!error["message"].as_str().unwrap().contains("sk-master"), "never echo a key");
    let response = proxy.client.get(format!("{}/v1/models", proxy.url)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = proxy.client.post(&url).bearer_auth("sk-master-0001").json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "hello");
    assert_eq!(proxy.get("/health").await.status(), 200);
    assert_eq!(proxy.get("/health/ready").await.status(), 200);
}

#[tokio::test]
async fn readiness_stays_200_with_every_deployment_down_and_reports_state_without_secrets() {
    let upstream = Upstream::start(Reply::Status(500, vec![])).await;
    let proxy = Proxy::start(&config("failure_threshold: 1", &[("only", &upstream)])).await;
    let health: Value = proxy.get("/health").await.json().await.unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let (status, report) = proxy.ready().await;
    assert_eq!(status, 200);
    assert_eq!(report["status"], "ready");

    proxy.chat(common::chat_body("m")).await;
    let response = proxy.get("/health/ready").await;
    // A model with no healthy deployment is not a reason to take the pod out of rotation.
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("sk-only-key") && !text.contains(ECHOED_SECRET), "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    let deployment = &report["models"][0]["deployments"][0];
    assert_eq!(deployment["provider"], "only");
    assert_eq!(deployment["enabled"], false);
    assert_eq!(deployment["consecutive_failures"], 1);
    assert_eq!(deployment["retry_in_seconds"], 600);
    assert_eq!(report["models"][0]["available"], false);
    assert_eq!(report["status"], "ready");
}

#[tokio::test]
async fn the_mock_provider_echoes_and_fails_on_demand() {
    let yaml = "providers:\n  bad: {type: mock, fail_status: 503}\n  good: {type: mock}\n\
                models: {echo: {providers: {bad: {priority: 0}, good: {priority: 1}}}}";
    let proxy = Proxy::start(yaml).await;
    let body = json!({"model": "echo", "messages": [
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]}]});
    let response = proxy.chat(body).await;
    assert_eq!(header(&response, "x-llm-proxy-provider"), "good");
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "2");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "echo");
    assert_eq!(answer["choices"][0]["message"]["content"], "second");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert!(answer["choices"][0]["message"].as_object().unwrap().contains_key("refusal"));
}
