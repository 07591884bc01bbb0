//! The decision model under real provider behaviour, through real sockets: usage as typed
//! data on every stream, timeouts as separate knobs, headers by intent, a probe that is a
//! stream, and state carried over a reload by identity.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::recorder::{Canned, Recorder};
use common::{End, Proxy, Reply, Upstream, chat_body, header, stream_body};
use serde_json::{Value, json};

fn event(value: Value) -> String {
    format!("data: {value}\n\n")
}

fn content(text: &str) -> String {
    event(json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x",
                 "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]}))
}

fn finish() -> String {
    event(json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "x",
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
}

/// Polls `check` until it holds, for at most five seconds.
async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn usage_is_counted_on_every_stream_whether_or_not_the_client_asked() {
    // An OpenAI-compatible upstream, spacing its usage chunk the way some hosts do.
    let usage_chunk = "data: {\"id\": \"c\", \"choices\": [], \"usage\": {\"prompt_tokens\": 7, \"completion_tokens\": 2, \"total_tokens\": 9}}\n\n";
    let upstream =
        Upstream::start(Reply::Events(vec![content("Hi"), finish(), usage_chunk.to_string()], End::Done))
            .await;
    let proxy = Proxy::start(&common::config("", &[("up", &upstream)])).await;
    let text = proxy.chat(stream_body("m")).await.text().await.unwrap();
    assert_eq!(
        text,
        format!("{}{}data: [DONE]\n\n", content("Hi"), finish()),
        "the usage chunk it did not ask for is left out"
    );
    let sent: Value = serde_json::from_slice(&upstream.last_request().1).unwrap();
    assert_eq!(sent["stream_options"], json!({"include_usage": true}), "the proxy asked on its behalf");

    let mut asked = stream_body("m");
    asked["stream_options"] = json!({"include_usage": true});
    let text = proxy.chat(asked).await.text().await.unwrap();
    assert!(text.contains(usage_chunk), "kept for a client that asked: {text}");
    let m = proxy.metrics().await;
    assert_eq!(m[r#"llm_proxy_tokens_total{model="m",provider="up",direction="in"}"#], 14.0);
    assert_eq!(m[r#"llm_proxy_tokens_total{model="m",provider="up",direction="out"}"#], 4.0);

    // Translated streams report usage as data too, though the client did not ask.
    for (kind, fixture, tokens_in, tokens_out) in [
        ("anthropic", "anthropic/stream_tool_use.sse", 472.0, 89.0),
        ("gemini", "gemini/stream_text.sse", 7.0, 12.0),
    ] {
        let upstream = Recorder::start(vec![Canned::fixture(fixture)]).await;
        let proxy = Proxy::start(&format!(
            "providers:\n  up: {{type: {kind}, api_key: sk-x, base_url: \"{}\"}}\nmodels:\n  m: {{providers: {{up: {{}}}}}}\n",
            upstream.url
        ))
        .await;
        let text = proxy.chat(stream_body("m")).await.text().await.unwrap();
        assert!(text.ends_with("data: [DONE]\n\n") && !text.contains("\"usage\":{"), "{kind}: {text}");
        let m = proxy.metrics().await;
        assert_eq!(
            m[r#"llm_proxy_tokens_total{model="m",provider="up",direction="in"}"#], tokens_in,
            "{kind}"
        );
        assert_eq!(
            m[r#"llm_proxy_tokens_total{model="m",provider="up",direction="out"}"#], tokens_out,
            "{kind}"
        );
    }
}

#[tokio::test]
async fn timeouts_are_separate_knobs() {
    // First token: a hanging upstream fails over after the first-token timeout, whatever
    // the others say; a deployment may have its own.
    let (primary, backup) = (Upstream::start(Reply::Hang).await, Upstream::start(Reply::Ok).await);
    let yaml = format!(
        "router: {{first_token_timeout_seconds: 30}}\nproviders:\n  primary: {{type: openai, base_url: \"{}\"}}\n  backup: {{type: openai, base_url: \"{}\"}}\n\
         models:\n  m:\n    providers:\n      primary: {{priority: 0, first_token_timeout_seconds: 0.3}}\n      backup: {{priority: 1}}\n",
        primary.url, backup.url
    );
    let proxy = Proxy::start(&yaml).await;
    let response = proxy.chat(chat_body("m")).await;
    assert_eq!(header(&response, "x-llm-proxy-provider"), "backup");
    assert_eq!(
        proxy.metrics().await[r#"llm_proxy_upstream_attempts_total{model="m",provider="primary",outcome="timeout"}"#],
        1.0
    );

    // Idle: once a stream flows, silence longer than the idle timeout ends it with an error.
    let upstream = Upstream::start(Reply::Events(vec![content("a")], End::Hang)).await;
    let proxy = Proxy::start(&common::config("idle_timeout_seconds: 0.3", &[("up", &upstream)])).await;
    let text = proxy.chat(stream_body("m")).await.text().await.unwrap();
    assert!(
        text.starts_with(&content("a")) && text.contains("stream_interrupted") && text.contains("timed out"),
        "{text}"
    );

    // Total: an endless stream is cut at the total timeout; bytes: at max_stream_bytes.
    for (router, words) in
        [("total_timeout_seconds: 0.5", "total timeout"), ("max_stream_bytes: 4096", "exceeded 4096 bytes")]
    {
        let endless =
            Upstream::start(Reply::Stream { chunks: 0, gap: Duration::from_millis(5), end: End::Forever })
                .await;
        let proxy = Proxy::start(&common::config(router, &[("up", &endless)])).await;
        let text = tokio::time::timeout(Duration::from_secs(10), async {
            proxy.chat(stream_body("m")).await.text().await.unwrap()
        })
        .await
        .expect("the stream is bounded");
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        assert!(last.contains("stream_interrupted") && last.contains(words), "{router}: {last}");
        assert!(endless.wait_stream_dropped().await, "{router}: the upstream is cancelled");
    }
}

#[tokio::test]
async fn headers_go_through_by_intent_only() {
    let upstream = Upstream::start(Reply::Status(
        200,
        vec![
            ("x-request-id", "req_upstream_1"),
            ("x-ratelimit-remaining-requests", "99"),
            ("openai-processing-ms", "12"),
            ("set-cookie", "session=abc"),
        ],
    ))
    .await;
    let yaml = common::config("", &[("up", &upstream)])
        .replace("base_url:", "forward_headers: [x-tenant], base_url:");
    let proxy = Proxy::start(&yaml).await;
    let response = proxy
        .client
        .post(format!("{}/v1/chat/completions", proxy.url))
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .header("authorization", "Bearer sk-client-key")
        .header("x-internal-secret", "keep-me-here")
        .header("x-tenant", "acme")
        .json(&chat_body("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-upstream-x-request-id"), "req_upstream_1");
    assert_eq!(header(&response, "x-llm-proxy-upstream-x-ratelimit-remaining-requests"), "99");
    assert_eq!(header(&response, "x-llm-proxy-upstream-openai-processing-ms"), "12");
    assert!(
        response.headers().get("set-cookie").is_none()
            && response.headers().get("x-ratelimit-remaining-requests").is_none()
    );
    assert_ne!(header(&response, "x-request-id"), "req_upstream_1", "the proxy's own id");
    let (sent, _) = upstream.last_request();
    let sent = |name: &str| sent.get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(sent("anthropic-beta").as_deref(), Some("prompt-caching-2024-07-31"));
    assert!(sent("traceparent").is_some());
    assert_eq!(
        sent("authorization").as_deref(),
        Some("Bearer sk-up-key"),
        "the provider's key, never the client's"
    );
    assert_eq!(sent("x-internal-secret"), None);
    assert_eq!(sent("x-tenant").as_deref(), Some("acme"), "a provider's forward_headers add to the list");

    // Credentials cannot be put on the list.
    let refused = llm_proxy::Config::parse(
        &common::config("", &[("up", &upstream)])
            .replace("base_url:", "forward_headers: [Authorization], base_url:"),
        std::path::Path::new("t.yaml"),
        &std::collections::HashMap::<String, String>::new(),
    );
    assert!(refused.unwrap_err().to_string().contains("providers.up.forward_headers[0]"));
}

#[tokio::test]
async fn a_probe_that_is_a_stream_settles_at_its_first_content() {
    let (primary, _backup, proxy) = common::pair(
        Reply::Status(500, vec![]),
        Reply::Ok,
        "failure_threshold: 1, cooldown_seconds: 0.2, panic_routing: false",
    )
    .await;
    proxy.chat(chat_body("m")).await;
    assert_eq!(proxy.deployment("m", "primary").await["state"], "cooling_down");
    assert!(eventually(async || proxy.deployment("m", "primary").await["available"] == true).await);
    // The probe streams slowly: its first content restores the deployment, not its end.
    primary.set(Reply::Stream { chunks: 3, gap: Duration::from_millis(400), end: End::Done });
    let mut response = proxy.chat(stream_body("m")).await;
    assert_eq!(header(&response, "x-llm-proxy-provider"), "primary");
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    assert_eq!(
        proxy.deployment("m", "primary").await["state"],
        "available",
        "restored while the stream is open"
    );
    let served = proxy.chat(stream_body("m")).await;
    assert_eq!(header(&served, "x-llm-proxy-provider"), "primary", "and serving other requests meanwhile");
    drop(served);
    while response.chunk().await.unwrap().is_some() {}
}

#[tokio::test]
async fn a_reload_that_changes_a_providers_url_starts_it_fresh() {
    let broken = Upstream::start(Reply::Status(500, vec![])).await;
    let fixed = Upstream::start(Reply::Ok).await;
    let backup = Upstream::start(Reply::Ok).await;
    let dir = std::env::temp_dir().join(format!("llm-proxy-fingerprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    let write = |primary: &str, comment: &str| {
        std::fs::write(
            &file,
            format!(
                "# {comment}\nserver: {{master_key: sk-admin}}\nrouter: {{failure_threshold: 1, cooldown_seconds: 600}}\n\
                 providers:\n  primary: {{type: openai, base_url: \"{primary}\"}}\n  backup: {{type: openai, base_url: \"{}\"}}\n\
                 models:\n  m: {{providers: {{primary: {{priority: 0}}, backup: {{priority: 1}}}}}}\n",
                backup.url
            ),
        )
        .unwrap();
    };
    write(&broken.url, "first");
    let proxy = Proxy::start_file(&file).await;
    let chat = |proxy: &Proxy| {
        proxy
            .client
            .post(format!("{}/v1/chat/completions", proxy.url))
            .bearer_auth("sk-admin")
            .json(&chat_body("m"))
            .send()
    };
    assert_eq!(header(&chat(&proxy).await.unwrap(), "x-llm-proxy-provider"), "backup");
    assert_eq!(proxy.deployment("m", "primary").await["state"], "cooling_down");

    // Unchanged settings (only a comment moved): the same deployment, still ejected.
    write(&broken.url, "second");
    assert_eq!(proxy.post_admin("/admin/reload", "sk-admin").await.status(), 200);
    assert_eq!(proxy.deployment("m", "primary").await["state"], "cooling_down");

    // The operator fixes the URL: a new deployment, fresh, served at once.
    write(&fixed.url, "third");
    assert_eq!(proxy.post_admin("/admin/reload", "sk-admin").await.status(), 200);
    let state = proxy.deployment("m", "primary").await;
    assert_eq!(
        (&state["state"], &state["consecutive_failures"]),
        (&json!("available"), &json!(0)),
        "{state}"
    );
    assert_eq!(header(&chat(&proxy).await.unwrap(), "x-llm-proxy-provider"), "primary");
    assert_eq!(fixed.calls(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// Upstreams that rate limit at several rates, in every way providers do (429 with
/// `Retry-After`, `retry-after-ms` or a reset header, 503 and Anthropic's 529 with
/// `Retry-After`), under concurrent load: no request gets 503, since no deployment is failing;
/// a client is told 429 only when every deployment is paused; the metrics equal what the
/// mocks saw.
#[tokio::test]
async fn chaos_of_rate_limits_never_becomes_an_outage() {
    let limited = |percent: usize| {
        let mut replies = vec![Reply::Fit; 100 - percent];
        let kinds = [
            Reply::Status(429, vec![("retry-after-ms", "30")]),
            Reply::Status(429, vec![("x-ratelimit-reset-requests", "40ms")]),
            Reply::Status(529, vec![("retry-after", "0.05")]),
            Reply::Status(503, vec![("retry-after", "0.02")]),
        ];
        replies.extend((0..percent).map(|i| kinds[i % kinds.len()].clone()));
        Reply::Random(replies)
    };
    for (rates, n) in [([4, 4, 2], 300), ([20, 20, 10], 300), ([60, 60, 60], 150)] {
        let upstreams = [
            Upstream::start(limited(rates[0])).await,
            Upstream::start(limited(rates[1])).await,
            Upstream::start(limited(rates[2])).await,
        ];
        let proxy = Proxy::start(&format!(
            "router: {{failure_threshold: 1}}\nproviders:\n  a: {{type: openai, base_url: \"{}\"}}\n  b: {{type: openai, base_url: \"{}\"}}\n  c: {{type: openai, base_url: \"{}\"}}\n\
             models:\n  m: {{providers: {{a: {{}}, b: {{}}, c: {{priority: 1}}}}}}\n",
            upstreams[0].url, upstreams[1].url, upstreams[2].url
        ))
        .await;
        let requests: Vec<_> =
            (0..n).map(|i| proxy.chat(if i % 3 == 0 { stream_body("m") } else { chat_body("m") })).collect();
        let mut counts = [0usize; 2];
        for response in futures_util::future::join_all(requests).await {
            match response.status().as_u16() {
                200 => {
                    let stream = header(&response, "content-type") == "text/event-stream";
                    let text = response.text().await.unwrap();
                    assert!(!stream || text.ends_with("data: [DONE]\n\n"), "{text}");
                    counts[0] += 1;
                }
                429 => {
                    let wait: u64 = header(&response, "retry-after").parse().unwrap();
                    assert!((1..=60).contains(&wait));
                    assert!(response.headers().get("x-should-retry").is_none());
                    counts[1] += 1;
                }
                other => panic!("{rates:?}: unexpected status {other}: {}", response.text().await.unwrap()),
            }
        }
        if rates[0] <= 4 {
            assert!(
                counts[0] >= n * 9 / 10,
                "{rates:?}: a few percent of 429s upstream stay a few percent: {counts:?}"
            );
        }
        common::assert_metrics_match_the_mocks(&proxy, &upstreams, n).await;
        let m = proxy.metrics().await;
        let limited: f64 = ["a", "b", "c"]
            .iter()
            .map(|p| {
                m[&format!(
                    r#"llm_proxy_upstream_attempts_total{{model="m",provider="{p}",outcome="rate_limited"}}"#
                )]
            })
            .sum();
        assert!(limited > 0.0 || rates[0] <= 4, "{rates:?}");
        for p in ["a", "b", "c"] {
            let state = proxy.deployment("m", p).await;
            assert_eq!(
                state["consecutive_failures"], 0,
                "{rates:?}: a rate limit is never a failure: {state}"
            );
        }
    }
}

#[tokio::test]
async fn an_error_event_before_any_content_is_answered_with_its_status_and_a_body() {
    let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
               event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"messages: text content blocks must be non-empty\"}}\n\n";
    let upstream = Recorder::start(vec![Canned {
        status: 200,
        content_type: "text/event-stream",
        body: axum::body::Bytes::from_static(sse.as_bytes()),
    }])
    .await;
    let proxy = Proxy::start(&format!(
        "providers:\n  up: {{type: anthropic, api_key: sk-x, base_url: \"{}\"}}\nmodels:\n  m: {{providers: {{up: {{}}}}}}\n",
        upstream.url
    ))
    .await;
    let response = proxy.chat(stream_body("m")).await;
    assert_eq!(response.status(), 400, "the client's fault, before anything was sent: a plain error");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().unwrap().contains("must be non-empty"), "{body}");
}

#[tokio::test]
async fn concurrent_scrapes_each_see_every_deployment_state() {
    let a = Upstream::start(Reply::Ok).await;
    let b = Upstream::start(Reply::Ok).await;
    let proxy = Proxy::start(&common::config("", &[("a", &a), ("b", &b)])).await;
    let scrapes: Vec<_> = (0..40).map(|_| proxy.metrics()).collect();
    for m in futures_util::future::join_all(scrapes).await {
        for provider in ["a", "b"] {
            let series =
                format!(r#"llm_proxy_deployment_state{{model="m",provider="{provider}",state="available"}}"#);
            assert_eq!(m.get(&series), Some(&1.0), "a scrape never sees another one's half-cleared state");
        }
    }
}
