//! Micro-benchmarks of the translations: the provider adapters (Chat ↔ Anthropic, Gemini) and
//! the client dialects (Responses, Messages ↔ Chat), each as request, whole answer and a
//! recorded stream (the fixtures of `tests/fixtures/`), and the native pass-through scanners
//! (a Responses or Messages stream relayed untouched), fed in 64-byte pieces.
//! `cargo bench --bench translate`; results are quoted in BENCHMARKS.md.
#![allow(clippy::unwrap_used)]

use divan::{Bencher, black_box};
use llm_proxy::dialect::{self, Dialect};
use llm_proxy::providers::{anthropic, gemini};

// The binary's allocator, so the figures are the ones the proxy gets.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The request of `benches/hot_path.rs`: a system prompt, a tool round trip, one tool.
const REQUEST: &[u8] = br#"{"model":"m","messages":[{"role":"system","content":"You are a helpful assistant that answers briefly."},{"role":"user","content":"What is the weather in Paris today? Please answer in one sentence."},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":21,\"sky\":\"clear\"}"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"temperature":0.2,"max_completion_tokens":256,"stream":true,"stream_options":{"include_usage":true}}"#;

#[divan::bench]
fn anthropic_request() -> usize {
    let n = anthropic::bench::request(black_box(REQUEST), true);
    assert!(n > 0);
    n
}

#[divan::bench]
fn anthropic_response(bencher: Bencher) {
    let body = fixture("anthropic/message_tool_use.json");
    bencher.bench(|| assert!(anthropic::bench::response(black_box(&body)) > 0));
}

#[divan::bench]
fn anthropic_stream(bencher: Bencher) {
    let sse = fixture("anthropic/stream_tool_use.sse");
    bencher
        .counter(divan::counter::BytesCount::of_slice(&sse))
        .bench(|| anthropic::bench::stream(black_box(&sse), 64));
}

#[divan::bench]
fn gemini_request() -> usize {
    let n = gemini::bench::request(black_box(REQUEST), true);
    assert!(n > 0);
    n
}

#[divan::bench]
fn gemini_response(bencher: Bencher) {
    let body = fixture("gemini/generate_function_call.json");
    bencher.bench(|| assert!(gemini::bench::response(black_box(&body)) > 0));
}

#[divan::bench]
fn gemini_stream(bencher: Bencher) {
    let sse = fixture("gemini/stream_text.sse");
    bencher
        .counter(divan::counter::BytesCount::of_slice(&sse))
        .bench(|| gemini::bench::stream(black_box(&sse), 64));
}

/// A Responses request as openai-agents sends it: instructions, a tool round trip, one tool.
const RESPONSES_REQUEST: &[u8] = br#"{"model":"m","instructions":"You are a helpful assistant that answers briefly.","input":[{"role":"user","content":"What is the weather in Paris today? Please answer in one sentence."},{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},{"type":"function_call_output","call_id":"call_1","output":"{\"temp\":21,\"sky\":\"clear\"}"}],"tools":[{"type":"function","name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":false}],"temperature":0.2,"max_output_tokens":256,"stream":true}"#;

/// The same conversation as the Anthropic SDK sends it.
const MESSAGES_REQUEST: &[u8] = br#"{"model":"m","system":"You are a helpful assistant that answers briefly.","messages":[{"role":"user","content":"What is the weather in Paris today? Please answer in one sentence."},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"{\"temp\":21,\"sky\":\"clear\"}"}]}],"tools":[{"name":"get_weather","description":"Current weather for a city","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],"temperature":0.2,"max_tokens":256,"stream":true}"#;

#[divan::bench]
fn responses_to_chat_request() -> usize {
    let n = dialect::responses::bench::request(black_box(RESPONSES_REQUEST));
    assert!(n > 0);
    n
}

#[divan::bench]
fn responses_from_chat_response(bencher: Bencher) {
    let body = fixture("chat/chat_completion.json");
    bencher.bench(|| assert!(dialect::responses::bench::response(black_box(&body)) > 0));
}

#[divan::bench]
fn responses_from_chat_stream(bencher: Bencher) {
    let sse = fixture("chat/chat_stream.sse");
    bencher
        .counter(divan::counter::BytesCount::of_slice(&sse))
        .bench(|| dialect::responses::bench::stream(black_box(&sse)));
}

#[divan::bench]
fn messages_to_chat_request() -> usize {
    let n = dialect::messages::bench::request(black_box(MESSAGES_REQUEST));
    assert!(n > 0);
    n
}

#[divan::bench]
fn messages_from_chat_response(bencher: Bencher) {
    let body = fixture("chat/chat_completion.json");
    bencher.bench(|| assert!(dialect::messages::bench::response(black_box(&body)) > 0));
}

#[divan::bench]
fn messages_from_chat_stream(bencher: Bencher) {
    let sse = fixture("chat/chat_stream.sse");
    bencher
        .counter(divan::counter::BytesCount::of_slice(&sse))
        .bench(|| dialect::messages::bench::stream(black_box(&sse)));
}

#[divan::bench]
fn responses_pass_through_stream(bencher: Bencher) {
    let sse = fixture("responses/response_stream.sse");
    bencher
        .counter(divan::counter::BytesCount::of_slice(&sse))
        .bench(|| assert!(dialect::bench::pass_through(Dialect::Responses, black_box(&sse), 64) > 0));
}

#[divan::bench]
fn messages_pass_through_stream(bencher: Bencher) {
    let sse = fixture("anthropic/stream_tool_use.sse");
    bencher
        .counter(divan::counter::BytesCount::of_slice(&sse))
        .bench(|| assert!(dialect::bench::pass_through(Dialect::Messages, black_box(&sse), 64) > 0));
}

#[divan::bench]
fn chat_pass_through_stream(bencher: Bencher) {
    let sse = fixture("chat/chat_stream.sse");
    bencher
        .counter(divan::counter::BytesCount::of_slice(&sse))
        .bench(|| assert!(dialect::bench::pass_through(Dialect::Chat, black_box(&sse), 64) > 0));
}
