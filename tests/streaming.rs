//! Streams: byte-exact relay, failover only before the first byte, clean error events after.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{End, Proxy, Reply, Upstream, chunk_event, config, finish_event, header, sse_data, stream_body};
use futures_util::StreamExt;
use serde_json::Value;

fn streaming(chunks: usize, end: End) -> Reply {
    Reply::Stream { chunks, gap: Duration::ZERO, end }
}

async fn pair(first: Reply, router: &str) -> (Upstream, Upstream, Proxy) {
    common::pair(first, streaming(3, End::Done), router).await
}

#[tokio::test]
async fn a_stream_is_relayed_byte_for_byte() {
    let (primary, _backup, proxy) =
        pair(Reply::Stream { chunks: 4, gap: Duration::from_millis(5), end: End::Done }, "").await;
    let response = proxy.chat(stream_body("m")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "x-llm-proxy-provider"), "primary");
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "1");
    let text = response.text().await.unwrap();
    let mut expected: String = (0..4).map(|i| chunk_event("primary-model", i)).collect();
    expected.push_str(&finish_event("primary-model"));
    expected.push_str("data: [DONE]\n\n");
    assert_eq!(text, expected);
    let (_, sent) = primary.last_request();
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["model"], "primary-model");
    assert_eq!(proxy.deployment("m", "primary").await["consecutive_failures"], 0);
}

#[tokio::test]
async fn failover_happens_before_the_first_byte() {
    let before_first_byte = [
        Reply::Status(500, vec![]),
        Reply::Status(429, vec![]),
        // Headers sent, then the stream dies or closes before any event.
        streaming(0, End::Die),
        streaming(0, End::Close),
        // Headers sent, then silence longer than the timeout.
        streaming(0, End::Hang),
        Reply::Hang,
        // A JSON body where a stream was asked for.
        Reply::Ok,
    ];
    for reply in before_first_byte {
        let rate_limited = matches!(reply, Reply::Status(429, _));
        let (primary, backup, proxy) = pair(reply, "timeout_seconds: 0.3").await;
        let response = proxy.chat(stream_body("m")).await;
        assert_eq!(header(&response, "x-llm-proxy-provider"), "backup");
        let events = sse_data(response).await;
        assert_eq!(events.last().unwrap(), "[DONE]");
        assert_eq!((primary.calls(), backup.calls()), (1, 1));
        let failures = if rate_limited { 0 } else { 1 };
        assert_eq!(proxy.deployment("m", "primary").await["consecutive_failures"], failures);
    }
}

/// A stream commits on its first content, tool call or finish, not on its first byte: what
/// comes before (comments, a role-only chunk) is held, and an error or silence there still
/// fails over.
#[tokio::test]
async fn a_stream_commits_on_meaning_not_on_bytes() {
    let role = common::chunk_event("primary-model", 0);
    let comment = ": OPENROUTER PROCESSING\n\n".to_string();
    let before_any_content = [
        // OpenRouter: a keep-alive comment, then the error as the first event.
        Reply::Events(
            vec![
                comment.clone(),
                r#"data: {"error":{"code":502,"message":"provider down"}}"#.to_string() + "\n\n",
            ],
            End::Close,
        ),
        // A role-only chunk, then an error event (Anthropic's message_start + overloaded_error).
        Reply::Events(
            vec![
                role.clone(),
                "data: {\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
                    .to_string(),
            ],
            End::Close,
        ),
        // A role-only chunk, then the connection dies.
        Reply::Events(vec![role.clone()], End::Die),
        // Keep-alives, then silence past the first-token timeout.
        Reply::Events(vec![comment.clone(), role.clone()], End::Hang),
    ];
    for reply in before_any_content {
        let (primary, backup, proxy) = pair(reply, "timeout_seconds: 0.3").await;
        let response = proxy.chat(stream_body("m")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-llm-proxy-provider"), "backup");
        let events = sse_data(response).await;
        assert_eq!(events.last().unwrap(), "[DONE]");
        assert!(events.iter().all(|e| !e.contains("error")), "{events:?}");
        assert_eq!((primary.calls(), backup.calls()), (1, 1));
    }

    // What was held is sent once the stream commits, in order, byte for byte.
    let content = common::chunk_event("primary-model", 1);
    let finish = common::finish_event("primary-model");
    let (_, _, proxy) = pair(
        Reply::Events(vec![comment.clone(), role.clone(), content.clone(), finish.clone()], End::Done),
        "",
    )
    .await;
    let response = proxy.chat(stream_body("m")).await;
    assert_eq!(header(&response, "x-llm-proxy-provider"), "primary");
    let text = response.text().await.unwrap();
    assert_eq!(text, format!("{comment}{role}{content}{finish}data: [DONE]\n\n"));

    // An error event after content is relayed as it is and ends the stream, counted apart.
    let late_error =
        "data: {\"error\":{\"message\":\"mid-stream\",\"type\":\"server_error\"}}\n\n".to_string();
    let (_, backup, proxy) =
        pair(Reply::Events(vec![role.clone(), content.clone(), late_error.clone()], End::Close), "").await;
    let text = proxy.chat(stream_body("m")).await.text().await.unwrap();
    assert_eq!(text, format!("{role}{content}{late_error}"), "no second error event, no [DONE]");
    assert_eq!(backup.calls(), 0);
    let m = proxy.metrics().await;
    assert_eq!(m[r#"llm_proxy_upstream_streams_broken_total{model="m",provider="primary"}"#], 1.0);
}

#[tokio::test]
async fn after_the_first_byte_a_failure_ends_the_stream_with_an_error_event() {
    for end in [End::Die, End::Close, End::Hang] {
        // A gap lets the first events leave the mock before it dies.
        let reply = Reply::Stream { chunks: 2, gap: Duration::from_millis(20), end };
        let (primary, backup, proxy) = pair(reply, "timeout_seconds: 0.3, failure_threshold: 1").await;
        let response = proxy.chat(stream_body("m")).await;
        assert_eq!(response.status(), 200);
        let events = sse_data(response).await;
        assert_eq!(events.len(), 3, "{end:?}: {events:?}");
        assert!(events.iter().all(|e| e != "[DONE]"), "{end:?}: no [DONE] after a failure");
        let error: Value = serde_json::from_str(&events[2]).unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("provider `primary` was interrupted"), "{message}");
        assert_eq!(error["error"]["code"], "stream_interrupted");
        assert_eq!((primary.calls(), backup.calls()), (1, 0), "no failover once committed");
        let state = proxy.deployment("m", "primary").await;
        assert_eq!(state["enabled"], false, "{end:?}: the failure counted");
        let metrics = proxy.metrics().await;
        let count =
            |status: &str| metrics[&format!("llm_proxy_requests_total{{model=\"m\",status=\"{status}\"}}")];
        assert_eq!(count("stream_failed"), 1.0, "{end:?}: counted as a failed stream");
        assert_eq!(count("200"), 0.0, "{end:?}: not as a success");
    }
}

#[tokio::test]
async fn client_errors_on_a_stream_request_are_relayed() {
    let (primary, backup, proxy) = pair(Reply::Status(400, vec![]), "").await;
    let response = proxy.chat(stream_body("m")).await;
    assert_eq!(response.status(), 400);
    assert_eq!((primary.calls(), backup.calls()), (1, 0));
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream() {
    let forever = Reply::Stream { chunks: 0, gap: Duration::from_millis(10), end: End::Forever };
    let (primary, _backup, proxy) = pair(forever, "").await;
    let response = proxy.chat(stream_body("m")).await;
    let mut body = response.bytes_stream();
    assert!(body.next().await.unwrap().is_ok());
    drop(body);
    assert!(primary.wait_stream_dropped().await, "the upstream stream was never cancelled");
    // An abandoned stream is neither a success nor a failure.
    assert_eq!(proxy.deployment("m", "primary").await["consecutive_failures"], 0);
    let metrics = proxy.metrics().await;
    assert_eq!(metrics["llm_proxy_requests_total{model=\"m\",status=\"stream_client_gone\"}"], 1.0);
    assert_eq!(metrics["llm_proxy_requests_total{model=\"m\",status=\"200\"}"], 0.0);
}

#[tokio::test]
async fn the_mock_provider_streams_the_echo_with_usage() {
    let yaml = "providers: {mock: {type: mock}}\nmodels: {echo: {providers: {mock: {model_id: mock-echo}}}}";
    let proxy = Proxy::start(yaml).await;
    let body = serde_json::json!({
        "model": "echo", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say it back"}]
    });
    let events = sse_data(proxy.chat(body).await).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "say it back");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[1..].iter().all(
        |c| c["choices"].as_array().unwrap().is_empty() || c["choices"][0]["delta"].get("role").is_none()
    ));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage["usage"]["prompt_tokens"], 5);
    assert_eq!(usage["usage"]["total_tokens"], 8);
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let slow = Reply::Stream { chunks: 5, gap: Duration::from_millis(60), end: End::Done };
    let upstream = Upstream::start(slow).await;
    let yaml = format!("server: {{shutdown_delay_seconds: 0}}\n{}", config("", &[("p", &upstream)]));
    let mut proxy = Proxy::start(&yaml).await;
    let response = proxy.chat(stream_body("m")).await;
    let task = proxy.shutdown();
    let events = sse_data(response).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
    assert!(proxy.client.get(format!("{}/health", proxy.url)).send().await.is_err(), "no new connections");
}
