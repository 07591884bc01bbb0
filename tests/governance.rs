//! Virtual keys on the request path, over real sockets: keys as code (no database), limits
//! under concurrency, allowed models, expiry, budgets and the cost header.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Proxy, header};
use futures_util::future::join_all;
use serde_json::{Value, json};

const MASTER: &str = "sk-master-test";

/// A config with the built-in mock and `keys:`/`teams:` as given (YAML, indented 0).
fn config(principals: &str) -> String {
    format!(
        r#"
server: {{master_key: {MASTER}}}
providers:
  mock: {{type: mock}}
  slow: {{type: mock, latency_ms: 300}}
models:
  echo: {{providers: {{mock: {{model_id: mock-echo}}}}}}
  other: {{providers: {{mock: {{model_id: mock-echo}}}}}}
  slow: {{providers: {{slow: {{model_id: mock-echo}}}}}}
{principals}
"#
    )
}

/// A key for id `id` with a fixed secret, and its hash for the YAML.
fn key(id: &str) -> (String, String) {
    let key = format!("sk-lp-{id}_0123456789abcdefghijklmnopqrstuv");
    let hash = llm_proxy::keys::hash(&key);
    (key, hash)
}

async fn call(proxy: &Proxy, key: &str, model: &str) -> reqwest::Response {
    proxy
        .client
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "one two three"}]}))
        .send()
        .await
        .unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.unwrap()["error"].clone())
}

#[tokio::test]
async fn with_rpm_10_exactly_10_of_50_concurrent_requests_are_admitted() {
    let (k, hash) = key("rpm10");
    let proxy = Proxy::start(&config(&format!("keys: [{{id: rpm10, hash: {hash}, rpm: 10}}]"))).await;
    let responses = join_all((0..50).map(|_| call(&proxy, &k, "echo"))).await;
    let ok = responses.iter().filter(|r| r.status() == 200).count();
    let limited: Vec<_> = responses.iter().filter(|r| r.status() == 429).collect();
    assert_eq!((ok, limited.len()), (10, 40));
    let refused = limited[0];
    assert!(header(refused, "retry-after").parse::<u64>().unwrap() >= 1);
    let admitted = responses.iter().find(|r| r.status() == 200).unwrap();
    assert_eq!(header(admitted, "x-ratelimit-limit-requests"), "10");
    assert!(header(admitted, "x-ratelimit-remaining-requests").parse::<u64>().unwrap() < 10);
    assert!(header(admitted, "x-ratelimit-reset-requests").ends_with('s'));
    let (_, error) = error_of(responses.into_iter().find(|r| r.status() == 429).unwrap()).await;
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert!(error["message"].as_str().unwrap().contains("10 requests per minute"), "{error}");
}

#[tokio::test]
async fn a_key_is_held_to_its_teams_stricter_limit() {
    let (k, hash) = key("member");
    let principals = format!(
        "teams: [{{id: small, rpm: 3}}]\nkeys: [{{id: member, hash: {hash}, team: small, rpm: 100}}]"
    );
    let proxy = Proxy::start(&config(&principals)).await;
    let responses = join_all((0..8).map(|_| call(&proxy, &k, "echo"))).await;
    assert_eq!(responses.iter().filter(|r| r.status() == 200).count(), 3);
    let (_, error) = error_of(responses.into_iter().find(|r| r.status() == 429).unwrap()).await;
    assert!(error["message"].as_str().unwrap().contains("team `small`"), "{error}");
}

#[tokio::test]
async fn max_parallel_refuses_only_while_requests_are_in_flight() {
    let (k, hash) = key("par");
    let proxy = Proxy::start(&config(&format!("keys: [{{id: par, hash: {hash}, max_parallel: 2}}]"))).await;
    let responses = join_all((0..6).map(|_| call(&proxy, &k, "slow"))).await;
    assert_eq!(responses.iter().filter(|r| r.status() == 200).count(), 2);
    assert_eq!(responses.iter().filter(|r| r.status() == 429).count(), 4);
    // Slots are freed when requests end.
    assert_eq!(call(&proxy, &k, "echo").await.status(), 200);
}

#[tokio::test]
async fn tokens_per_minute_reserve_the_estimate_and_settle_the_usage() {
    let (k, hash) = key("tpm");
    let proxy = Proxy::start(&config(&format!("keys: [{{id: tpm, hash: {hash}, tpm: 100}}]"))).await;
    let ask = |max_tokens: u64| {
        proxy
            .client
            .post(format!("{}/v1/chat/completions", proxy.url))
            .bearer_auth(&k)
            .json(&json!({"model": "echo", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    let first = ask(10).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), "100");
    // The mock used a few tokens, not the 10 reserved: the balance came back up.
    let remaining: u64 = header(&first, "x-ratelimit-remaining-tokens").parse().unwrap();
    assert!(remaining < 100);
    let (status, error) = error_of(ask(5_000).await.unwrap()).await;
    assert_eq!(status, 429, "an estimate larger than what is left waits");
    assert_eq!(error["type"], "tokens");
}

#[tokio::test]
async fn keys_are_refused_with_the_reason_in_openai_shape() {
    let (allowed, allowed_hash) = key("allowed");
    let (expired, expired_hash) = key("expired");
    let (blocked, blocked_hash) = key("blocked");
    let (in_team, team_hash) = key("inteam");
    let principals = format!(
        "teams: [{{id: frozen, blocked: true}}]
keys:
  - {{id: allowed, hash: {allowed_hash}, models: [\"ech*\"]}}
  - {{id: expired, hash: {expired_hash}, expires_at: 2020-01-01}}
  - {{id: blocked, hash: {blocked_hash}, blocked: true}}
  - {{id: inteam, hash: {team_hash}, team: frozen}}"
    );
    let proxy = Proxy::start(&config(&principals)).await;
    assert_eq!(call(&proxy, &allowed, "echo").await.status(), 200);
    let (status, error) = error_of(call(&proxy, &allowed, "other").await).await;
    assert_eq!((status, error["code"].as_str()), (403, Some("model_not_allowed")));
    assert!(error["message"].as_str().unwrap().contains("`other`"));
    for (presented, says) in [
        (expired.as_str(), "expired"),
        (blocked.as_str(), "blocked"),
        (in_team.as_str(), "team is blocked"),
        ("sk-lp-allowed_wrongsecret", "Incorrect API key"),
        ("sk-lp-nosuchkey_0123456789", "Incorrect API key"),
    ] {
        let (status, error) = error_of(call(&proxy, presented, "echo").await).await;
        assert_eq!((status, error["code"].as_str()), (401, Some("invalid_api_key")), "{presented}");
        assert!(error["message"].as_str().unwrap().contains(says), "{error}");
        assert!(!error.to_string().contains(presented), "the key is never echoed");
    }
    // Every SDK's header works.
    for (name, value) in [("x-api-key", allowed.clone()), ("api-key", allowed.clone())] {
        let response = proxy
            .client
            .post(format!("{}/v1/chat/completions", proxy.url))
            .header(name, value)
            .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
    }
    // The master key still works, and a non-key without it does not.
    assert_eq!(call(&proxy, MASTER, "other").await.status(), 200);
    assert_eq!(call(&proxy, "sk-something-else", "echo").await.status(), 401);
}

#[tokio::test]
async fn messages_clients_are_refused_in_anthropics_shape() {
    let (k, hash) = key("anth");
    let proxy = Proxy::start(&config(&format!("keys: [{{id: anth, hash: {hash}, models: [echo]}}]"))).await;
    let response = proxy
        .client
        .post(format!("{}/v1/messages", proxy.url))
        .header("x-api-key", &k)
        .json(&json!({"model": "other", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error");
}

#[tokio::test]
async fn the_cost_header_is_the_price_table_times_the_usage() {
    let (k, hash) = key("cost");
    let proxy = Proxy::start(&config(&format!("keys: [{{id: cost, hash: {hash}}}]"))).await;
    let response = call(&proxy, &k, "echo").await;
    assert_eq!(response.status(), 200);
    let cost = header(&response, "x-llm-proxy-cost").to_string();
    let body: Value = response.json().await.unwrap();
    let usage = &body["usage"];
    let (prompt, completion) =
        (usage["prompt_tokens"].as_i64().unwrap(), usage["completion_tokens"].as_i64().unwrap());
    // mock-echo is priced at $1 input and $2 output per million tokens (src/accounting/prices.tsv).
    let nanos = prompt * 1_000 + completion * 2_000;
    assert_eq!(cost, llm_proxy::accounting::Money(nanos).to_string());
}

#[tokio::test]
async fn a_hard_budget_refuses_with_insufficient_quota_and_a_soft_one_warns() {
    let (hard, hard_hash) = key("hard");
    let (soft, soft_hash) = key("soft");
    // One request costs 3 × $1 + 3 × $2 per million = $0.000009: the budget allows one.
    let principals = format!(
        "keys:
  - {{id: hard, hash: {hard_hash}, budget: {{hard_usd: 0.000005, period: daily}}}}
  - {{id: soft, hash: {soft_hash}, budget: {{soft_usd: 0.000005, period: monthly}}}}"
    );
    let proxy = Proxy::start(&config(&principals)).await;
    assert_eq!(call(&proxy, &hard, "echo").await.status(), 200);
    let refused = call(&proxy, &hard, "echo").await;
    assert_eq!(header(&refused, "x-should-retry"), "false");
    let (status, error) = error_of(refused).await;
    assert_eq!(
        (status, error["code"].as_str(), error["type"].as_str()),
        (429, Some("insufficient_quota"), Some("insufficient_quota"))
    );
    assert!(error["message"].as_str().unwrap().contains("$0.000005"), "{error}");

    assert_eq!(header(&call(&proxy, &soft, "echo").await, "x-llm-proxy-budget-warning"), "");
    let warned = call(&proxy, &soft, "echo").await;
    assert_eq!(warned.status(), 200);
    assert!(header(&warned, "x-llm-proxy-budget-warning").contains("key:soft"));
    let metrics = proxy.metrics().await;
    assert_eq!(metrics["llm_proxy_soft_budget_exceeded_total"], 1.0);
    assert_eq!(metrics["llm_proxy_limit_refusals_total{limit=\"budget\"}"], 1.0);
}

#[tokio::test]
async fn unknown_prices_can_be_refused_before_any_upstream_call() {
    let yaml = format!(
        "{}\npricing: {{unknown_model: reject}}",
        config("").replace(
            "echo: {providers: {mock: {model_id: mock-echo}}}",
            "echo: {providers: {mock: {model_id: no-such-price}}}"
        )
    );
    let proxy = Proxy::start(&yaml).await;
    let (status, error) = error_of(call(&proxy, MASTER, "echo").await).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("price_unknown")));
    assert_eq!(call(&proxy, MASTER, "other").await.status(), 200);
}

#[tokio::test]
async fn a_budget_is_overshot_by_at_most_the_requests_in_flight_when_it_ran_out() {
    let (k, hash) = key("bound");
    // No `max_tokens`: the reserved estimate (body bytes / 4 in, nothing out) is well under
    // the real cost (the mock echoes 100 words back), the worst case for a budget.
    let limit: i64 = 600_000;
    let principals =
        format!("keys: [{{id: bound, hash: {hash}, budget: {{hard_usd: 0.0006, period: total}}}}]");
    let proxy = Proxy::start(&config(&principals)).await;
    let words: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
    let ask = || {
        proxy
            .client
            .post(format!("{}/v1/chat/completions", proxy.url))
            .bearer_auth(&k)
            .json(&json!({"model": "slow", "messages": [{"role": "user", "content": words.join(" ")}]}))
            .send()
    };
    // 20 at once against a slow upstream: every admitted one is still in flight when the
    // budget runs out, so none of their real costs is known yet.
    let responses: Vec<_> = join_all((0..20).map(|_| ask())).await.into_iter().map(Result::unwrap).collect();
    let costs: Vec<i64> = responses
        .iter()
        .filter(|r| r.status() == 200)
        .map(|r| (header(r, "x-llm-proxy-cost").parse::<f64>().unwrap() * 1e9).round() as i64)
        .collect();
    let (admitted, refused) = (costs.len(), responses.iter().filter(|r| r.status() == 429).count());
    assert_eq!(admitted + refused, 20);
    assert!(refused > 0 && admitted > 0, "admitted {admitted}");
    let spent: i64 = costs.iter().sum();
    let largest = *costs.iter().max().unwrap();
    let overshoot = spent - limit;
    // The bound: the requests admitted while in flight, each at its real cost.
    assert!(overshoot > 0, "the estimates were low: the budget is overshot ({overshoot})");
    assert!(
        overshoot <= largest * admitted as i64,
        "overshoot {overshoot} > {admitted} in flight × {largest}"
    );
    // Once they settled, spend is over the limit and nothing more gets in.
    let (status, error) = error_of(ask().await.unwrap()).await;
    assert_eq!((status, error["code"].as_str()), (429, Some("insufficient_quota")));
}
