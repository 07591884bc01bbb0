//! Failover rules, each checked by the calls every upstream received.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{ECHOED_SECRET, Proxy, Reply, Upstream, chat_body, header};
use serde_json::Value;

async fn pair(first: Reply, router: &str) -> (Upstream, Upstream, Proxy) {
    common::pair(first, Reply::Ok, router).await
}

#[tokio::test]
async fn deployments_are_tried_in_priority_order() {
    let (primary, backup, proxy) = pair(Reply::Ok, "").await;
    let response = proxy.chat(chat_body("m")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "primary");
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "1");
    assert_eq!((primary.calls(), backup.calls()), (1, 0));

    // Priorities, not file order, decide: a config listing the backup first still tries primary first.
    let yaml = format!(
        "providers:\n  b: {{type: openai, base_url: \"{}\"}}\n  p: {{type: openai, base_url: \"{}\"}}\n\
         models:\n  m:\n    providers:\n      b: {{priority: 5}}\n      p: {{priority: 1}}\n",
        backup.url, primary.url
    );
    let proxy = Proxy::start(&yaml).await;
    let response = proxy.chat(chat_body("m")).await;
    assert_eq!(header(&response, "x-llm-proxy-provider"), "p");
    assert_eq!((primary.calls(), backup.calls()), (2, 0));
}

#[tokio::test]
async fn every_kind_of_provider_failure_fails_over_and_counts() {
    let failures = [
        Reply::Status(500, vec![]),
        Reply::Status(502, vec![]),
        Reply::Status(503, vec![]),
        Reply::Status(529, vec![]),
        Reply::Status(429, vec![]),
        Reply::Status(401, vec![]),
        Reply::Status(403, vec![]),
        Reply::Status(404, vec![]),
        Reply::Status(408, vec![]),
        Reply::Garbage,
        Reply::Hang,
    ];
    for failure in failures {
        let (primary, backup, proxy) = pair(failure, "timeout_seconds: 0.3, failure_threshold: 5").await;
        let response = proxy.chat(chat_body("m")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-llm-proxy-provider"), "backup");
        assert_eq!(header(&response, "x-llm-proxy-attempts"), "2");
        assert_eq!((primary.calls(), backup.calls()), (1, 1));
        assert_eq!(proxy.deployment("m", "primary").await["consecutive_failures"], 1);
    }
}

#[tokio::test]
async fn connection_refused_fails_over() {
    let backup = Upstream::start(Reply::Ok).await;
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let yaml = format!(
        "providers:\n  dead: {{type: openai, base_url: \"http://127.0.0.1:{port}/v1\"}}\n  \
         backup: {{type: openai, base_url: \"{}\"}}\nmodels:\n  m:\n    providers:\n      \
         dead: {{priority: 0}}\n      backup: {{priority: 1}}\n",
        backup.url
    );
    let proxy = Proxy::start(&yaml).await;
    let response = proxy.chat(chat_body("m")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "backup");
    assert_eq!(proxy.deployment("m", "dead").await["consecutive_failures"], 1);
    // The 503 for a model with only the dead deployment says why, in words an operator can act on.
    let yaml = yaml.replace("      backup: {priority: 1}\n", "");
    let proxy = Proxy::start(&yaml).await;
    let body: Value = proxy.chat(chat_body("m")).await.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("dead: connection failed") && message.contains("refused"), "{message}");
}

#[tokio::test]
async fn client_errors_are_relayed_without_failover_or_penalty() {
    for code in [400u16, 413, 422] {
        let (primary, backup, proxy) = pair(Reply::Status(code, vec![]), "failure_threshold: 1").await;
        let response = proxy.chat(chat_body("m")).await;
        assert_eq!(response.status(), code);
        assert_eq!(header(&response, "x-llm-proxy-provider"), "primary");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_code", "the upstream's own body is relayed");
        assert_eq!((primary.calls(), backup.calls()), (1, 0));
        let state = proxy.deployment("m", "primary").await;
        assert_eq!(state["consecutive_failures"], 0);
        assert_eq!(state["enabled"], true);
    }
}

#[tokio::test]
async fn threshold_failures_disable_the_deployment_for_the_cooldown() {
    let (primary, backup, proxy) =
        pair(Reply::Status(500, vec![]), "failure_threshold: 3, cooldown_seconds: 600").await;
    for _ in 0..3 {
        assert_eq!(proxy.chat(chat_body("m")).await.status(), 200);
    }
    assert_eq!(primary.calls(), 3);
    let state = proxy.deployment("m", "primary").await;
    assert_eq!(state["enabled"], false);
    assert_eq!(state["consecutive_failures"], 3);
    assert!(state["retry_in_seconds"].as_u64().unwrap() > 590, "{state}");
    for _ in 0..5 {
        let response = proxy.chat(chat_body("m")).await;
        assert_eq!(header(&response, "x-llm-proxy-attempts"), "1");
    }
    assert_eq!(primary.calls(), 3, "a disabled deployment receives nothing");
    assert_eq!(backup.calls(), 8);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let (primary, _backup, proxy) = pair(Reply::Status(500, vec![]), "failure_threshold: 3").await;
    proxy.chat(chat_body("m")).await;
    proxy.chat(chat_body("m")).await;
    primary.set(Reply::Ok);
    proxy.chat(chat_body("m")).await;
    assert_eq!(proxy.deployment("m", "primary").await["consecutive_failures"], 0);
    primary.set(Reply::Status(500, vec![]));
    proxy.chat(chat_body("m")).await;
    proxy.chat(chat_body("m")).await;
    assert_eq!(proxy.deployment("m", "primary").await["enabled"], true);
    assert_eq!(primary.calls(), 5);
}

/// Waits out a short cooldown by watching the readiness report, not by guessing a sleep.
async fn until_probe_due(proxy: &Proxy) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while proxy.deployment("m", "primary").await["available"] != true {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("cooldown never ended");
}

#[tokio::test]
async fn after_the_cooldown_exactly_one_probe_decides() {
    let (primary, backup, proxy) =
        pair(Reply::Status(500, vec![]), "failure_threshold: 1, cooldown_seconds: 0.2").await;
    proxy.chat(chat_body("m")).await;
    assert_eq!(proxy.deployment("m", "primary").await["enabled"], false);
    until_probe_due(&proxy).await;

    // The probe is slow; requests arriving meanwhile must not become extra probes.
    primary.set(Reply::Slow(Duration::from_millis(400), Box::new(Reply::Ok)));
    let requests: Vec<_> = (0..6).map(|_| proxy.chat(chat_body("m"))).collect();
    let responses = futures_util::future::join_all(requests).await;
    let served_by_primary =
        responses.iter().filter(|r| header(r, "x-llm-proxy-provider") == "primary").count();
    assert_eq!(served_by_primary, 1);
    assert_eq!(primary.calls(), 2, "one failure, then exactly one probe");
    assert_eq!(backup.calls(), 6, "the first failed request and the five non-probes");

    // The probe succeeded: the deployment is back for everyone.
    primary.set(Reply::Ok);
    let state = proxy.deployment("m", "primary").await;
    assert_eq!(
        (state["enabled"].clone(), state["consecutive_failures"].clone()),
        (Value::Bool(true), 0.into())
    );
    proxy.chat(chat_body("m")).await;
    proxy.chat(chat_body("m")).await;
    assert_eq!(primary.calls(), 4);
}

#[tokio::test]
async fn a_failed_probe_disables_again() {
    let (primary, backup, proxy) =
        pair(Reply::Status(500, vec![]), "failure_threshold: 2, cooldown_seconds: 0.2").await;
    proxy.chat(chat_body("m")).await;
    proxy.chat(chat_body("m")).await;
    until_probe_due(&proxy).await;
    let response = proxy.chat(chat_body("m")).await;
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "2");
    assert_eq!(primary.calls(), 3, "one probe");
    let state = proxy.deployment("m", "primary").await;
    assert_eq!(state["enabled"], false);
    // Straight after, it is out again: no request reaches it.
    proxy.chat(chat_body("m")).await;
    assert_eq!(primary.calls(), 3);
    assert_eq!(backup.calls(), 4);
}

#[tokio::test]
async fn retry_after_keeps_a_rate_limited_deployment_out() {
    let (primary, backup, proxy) =
        pair(Reply::Status(429, vec![("retry-after", "30")]), "failure_threshold: 10").await;
    proxy.chat(chat_body("m")).await;
    let state = proxy.deployment("m", "primary").await;
    assert_eq!(state["enabled"], false);
    assert!(state["retry_in_seconds"].as_u64().unwrap() >= 29, "{state}");
    proxy.chat(chat_body("m")).await;
    proxy.chat(chat_body("m")).await;
    assert_eq!((primary.calls(), backup.calls()), (1, 3));
}

#[tokio::test]
async fn when_everything_fails_the_client_gets_503_listing_each_attempt() {
    let (primary, backup, proxy) =
        common::pair(Reply::Status(500, vec![]), Reply::Status(401, vec![]), "failure_threshold: 1").await;
    let response = proxy.chat(chat_body("m")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "x-should-retry"), "false");
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "2");
    assert_eq!(header(&response, "x-llm-proxy-provider"), "none");
    let text = response.text().await.unwrap();
    assert!(!text.contains(ECHOED_SECRET), "an upstream body leaked: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("primary: HTTP 500") && message.contains("backup: HTTP 401"), "{message}");
    assert_eq!(body["error"]["code"], "all_deployments_failed");
    assert!(body["error"].as_object().unwrap().contains_key("param"));

    // Both are now cooling down: nothing is sent, and the message says so.
    let response = proxy.chat(chat_body("m")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "x-llm-proxy-attempts"), "0");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("primary: cooling down, retry in 600s"), "{message}");
    assert_eq!((primary.calls(), backup.calls()), (1, 1));
    // Readiness is about the process, not the upstreams: the pod stays in rotation.
    assert_eq!(proxy.ready().await.0, 200);
}

#[tokio::test]
async fn concurrent_failures_disable_once_and_lose_no_request() {
    let (primary, backup, proxy) = pair(Reply::Status(500, vec![]), "failure_threshold: 3").await;
    let requests: Vec<_> = (0..20).map(|_| proxy.chat(chat_body("m"))).collect();
    let responses = futures_util::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.status() == 200), "every request is served by the backup");
    let hit = primary.calls();
    assert!((3..=20).contains(&hit), "{hit}");
    assert_eq!(backup.calls(), 20);
    let state = proxy.deployment("m", "primary").await;
    assert_eq!(state["enabled"], false);
    assert_eq!(state["consecutive_failures"].as_u64().unwrap() as usize, hit);
    proxy.chat(chat_body("m")).await;
    assert_eq!(primary.calls(), hit, "disabled: no further call");
}

#[tokio::test]
async fn health_is_per_model() {
    let shared = Upstream::start(Reply::Status(500, vec![])).await;
    let backup = Upstream::start(Reply::Ok).await;
    let yaml = format!(
        "router: {{failure_threshold: 1}}\nproviders:\n  a: {{type: openai, base_url: \"{}\"}}\n  b: {{type: openai, base_url: \"{}\"}}\n\
         models:\n  big:\n    providers: {{a: {{priority: 0}}, b: {{priority: 1}}}}\n  small:\n    providers: {{a: {{priority: 0}}}}\n",
        shared.url, backup.url
    );
    let proxy = Proxy::start(&yaml).await;
    proxy.chat(chat_body("big")).await;
    let (_, report) = proxy.ready().await;
    assert_eq!(report["models"][0]["deployments"][0]["enabled"], false);
    assert_eq!(report["models"][1]["deployments"][0]["enabled"], true);
    shared.set(Reply::Ok);
    let response = proxy.chat(chat_body("small")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-llm-proxy-provider"), "a");
}
