//! Micro-benchmarks of the request hot path: parse → route → rewrite, and SSE framing.
//! `cargo bench --bench hot_path`; results are quoted in BENCHMARKS.md.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use bytes::Bytes;
use divan::{Bencher, black_box};
use llm_proxy::api::request::ApiRequest;
use llm_proxy::router::Router;
use llm_proxy::sse::EventScanner;

fn main() {
    divan::main();
}

/// A typical request: a system prompt, a few turns, one tool, some options.
fn typical_body() -> Bytes {
    Bytes::from(
        r#"{"model":"model-999","messages":[{"role":"system","content":"You are a helpful assistant that answers briefly."},{"role":"user","content":"What is the weather in Paris today? Please answer in one sentence."},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":21,\"sky\":\"clear\"}"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"temperature":0.2,"max_completion_tokens":256,"stream":false}"#,
    )
}

/// A long conversation: ~100 KB of messages.
fn large_body() -> Bytes {
    let turn = r#"{"role":"user","content":"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation."},"#;
    let mut body = String::from(r#"{"model":"model-999","messages":["#);
    while body.len() < 100_000 {
        body.push_str(turn);
    }
    body.push_str(r#"{"role":"user","content":"Summarise."}]}"#);
    Bytes::from(body)
}

fn big_router() -> Router {
    let mut yaml = String::from("providers:\n");
    for d in 0..5 {
        yaml.push_str(&format!(
            "  p{d}: {{type: openai, api_key: sk-x, base_url: \"http://127.0.0.1:1/v1\"}}\n"
        ));
    }
    yaml.push_str("models:\n");
    for m in 0..1000 {
        yaml.push_str(&format!(
            "  model-{m}: {{providers: {{p0: {{priority: 0}}, p1: {{priority: 1}}, p2: {{priority: 2}}, p3: {{priority: 3}}, p4: {{priority: 4}}}}}}\n"
        ));
    }
    let env = std::collections::HashMap::<String, String>::new();
    let config = llm_proxy::Config::parse(&yaml, Path::new("bench.yaml"), &env).unwrap();
    Router::new(&config, &llm_proxy::metrics::Metrics::new(), None).unwrap()
}

#[divan::bench]
fn parse_typical_request(bencher: Bencher) {
    let body = typical_body();
    bencher.bench(|| ApiRequest::parse(black_box(body.clone())).unwrap());
}

#[divan::bench]
fn parse_100kb_request(bencher: Bencher) {
    let body = large_body();
    bencher.bench(|| ApiRequest::parse(black_box(body.clone())).unwrap());
}

/// Parse, look the model up among 1,000 models × 5 deployments, rewrite `model`.
#[divan::bench]
fn parse_route_rewrite(bencher: Bencher) {
    let router = big_router();
    let body = typical_body();
    bencher.bench(|| {
        let request = ApiRequest::parse(black_box(body.clone())).unwrap();
        let route = router.model(request.model()).unwrap();
        let first = &route.deployments[0];
        black_box(request.body_with_model(black_box(&format!("\"{}\"", first.model_id))))
    });
}

#[divan::bench]
fn rewrite_model_in_100kb_body(bencher: Bencher) {
    let request = ApiRequest::parse(large_body()).unwrap();
    bencher.bench(|| black_box(request.body_with_model(black_box("\"gpt-4o-2024-08-06\""))));
}

const CHUNK: &[u8] = b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";

/// One whole event per network chunk: the common case, zero-copy.
#[divan::bench]
fn sse_whole_event(bencher: Bencher) {
    let chunk = Bytes::from_static(CHUNK);
    bencher.bench_local(|| {
        let mut scanner = EventScanner::default();
        black_box(scanner.push(black_box(chunk.clone())).unwrap())
    });
}

/// An event split across two network chunks: the copying path.
#[divan::bench]
fn sse_split_event(bencher: Bencher) {
    let (a, b) = CHUNK.split_at(CHUNK.len() / 2);
    let (a, b) = (Bytes::from_static(a), Bytes::from_static(b));
    bencher.bench_local(|| {
        let mut scanner = EventScanner::default();
        scanner.push(black_box(a.clone())).unwrap();
        black_box(scanner.push(black_box(b.clone())).unwrap())
    });
}
