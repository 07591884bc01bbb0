//! The routing loop with in-process providers (the built-in mock) under paused time, so
//! backoffs and budgets are observed exactly, without sockets.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use http::header::HeaderValue;

use tokio::time::Instant;

use super::*;
use crate::Config;
use crate::api::request::ApiRequest;
use crate::metrics::Metrics;

fn router(yaml: &str) -> Router {
    let config = Config::parse(yaml, Path::new("t.yaml"), &HashMap::<String, String>::new()).unwrap();
    Router::new(&config, &Metrics::new(), None).unwrap()
}

fn request(model: &str) -> ApiRequest {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    ApiRequest::parse(Bytes::from(body)).unwrap()
}

async fn route(router: &Router, model: &str) -> Dispatch {
    let request = request(model);
    let id = HeaderValue::from_static("t");
    let headers = http::HeaderMap::new();
    router.route(&Inbound { request: &request, request_id: &id, headers: &headers }).await
}

const FAILING: &str =
    "providers:\n  a: {type: mock, fail_status: 500}\n  b: {type: mock, fail_status: 502}\n";

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_with_full_jitter() {
    let r = router(&format!(
        "router: {{retries: 3, retry_backoff_ms: 100, failure_threshold: 1000, retry_budget_percent: 1000}}\n{FAILING}\
         models:\n  m: {{providers: {{a: {{}}, b: {{}}}}}}\n"
    ));
    let mut total = Duration::ZERO;
    for _ in 0..200 {
        let started = Instant::now();
        let dispatch = route(&r, "m").await;
        let waited = started.elapsed();
        // One try per deployment, then three retries.
        assert_eq!(dispatch.attempts, 5);
        // Full jitter: anywhere up to 100 + 200 + 400 ms.
        assert!(waited <= Duration::from_millis(700), "{waited:?}");
        total += waited;
    }
    // The mean of uniform waits is half the ceiling: 350 ms (wide bounds: it is random).
    let mean = total / 200;
    assert!(mean > Duration::from_millis(250) && mean < Duration::from_millis(450), "{mean:?}");
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_stops_a_storm() {
    let r = router(&format!(
        "router: {{retries: 5, retry_backoff_ms: 1, failure_threshold: 100000, retry_budget_percent: 20}}\n{FAILING}\
         models:\n  m: {{providers: {{a: {{}}, b: {{}}}}}}\n"
    ));
    let mut attempts = 0;
    for _ in 0..500 {
        attempts += route(&r, "m").await.attempts;
    }
    // Without a budget: 500 × 7 = 3,500 calls. With it: 2 per request, plus retries of at
    // most 20% of requests and a floor of 3 per second over the 10 s window.
    assert!(attempts <= 500 * 2 + 100 + 30, "{attempts}");
    assert!(attempts > 500 * 2, "some retries were made");
}

#[tokio::test(start_paused = true)]
async fn a_failed_try_moves_within_the_tier_before_the_next_tier() {
    let r = router(
        "router: {failure_threshold: 1000}\nproviders:\n  a: {type: mock, fail_status: 500}\n  b: {type: mock}\n  c: {type: mock}\n\
         models:\n  m: {providers: {a: {priority: 0, weight: 1000}, b: {priority: 0}, c: {priority: 1}}}\n",
    );
    for _ in 0..50 {
        let dispatch = route(&r, "m").await;
        assert_eq!(dispatch.provider.as_deref(), Some("b"), "tier 0's other deployment, never tier 1");
    }
}

#[tokio::test(start_paused = true)]
async fn the_next_tier_only_when_the_whole_tier_fails() {
    let r = router(&format!(
        "router: {{failure_threshold: 1000}}\n{FAILING}  c: {{type: mock}}\n\
         models:\n  m: {{providers: {{a: {{priority: 0}}, b: {{priority: 0}}, c: {{priority: 1}}}}}}\n"
    ));
    let dispatch = route(&r, "m").await;
    assert_eq!((dispatch.provider.as_deref(), dispatch.attempts), (Some("c"), 3));
}

#[tokio::test(start_paused = true)]
async fn fallbacks_aliases_and_reload_keeping_state() {
    let yaml = format!(
        "router: {{failure_threshold: 1, cooldown_seconds: 600}}\n{FAILING}  ok: {{type: mock}}\n\
         models:\n  dead: {{providers: {{a: {{}}}}, fallbacks: [alive], aliases: [gone]}}\n  alive: {{providers: {{ok: {{model_id: alive-id}}}}}}\n"
    );
    let r = router(&yaml);
    let dispatch = route(&r, "gone").await;
    assert_eq!(dispatch.served_model.as_deref(), Some("alive"));
    assert_eq!(dispatch.provider.as_deref(), Some("ok"));
    let Ok(Served::Json(body)) = dispatch.result else { panic!("fallback served nothing") };
    assert!(std::str::from_utf8(&body).unwrap().contains("\"model\":\"alive-id\""));
    assert!(!r.model("dead").unwrap().deployments[0].health.snapshot().available);

    // A reload keeps the dead deployment's cooldown (same model, same provider).
    let config = Config::parse(&yaml, Path::new("t.yaml"), &HashMap::<String, String>::new()).unwrap();
    let reloaded = Router::new(&config, &Metrics::new(), Some(&r)).unwrap();
    let health = &reloaded.model("dead").unwrap().deployments[0].health;
    assert!(!health.snapshot().available, "health state survives a reload");
    assert!(Arc::ptr_eq(health, &r.model("dead").unwrap().deployments[0].health));
}
