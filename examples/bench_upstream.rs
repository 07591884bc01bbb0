//! A fast mock OpenAI upstream for benchmarks: one fixed `chat.completion`, or (when the request
//! says `"stream":true`) a paced SSE stream. Every contender in `bench/run` talks to it, so it
//! must never be the bottleneck: it parses nothing and answers from static bytes.
//!
//! `cargo run --release --example bench_upstream -- --listen 127.0.0.1:9001 --latency-ms 0`

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use clap::Parser;

#[derive(Parser, Clone, Copy)]
struct Args {
    /// HOST:PORT to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: std::net::SocketAddr,
    /// Delay before each answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Content chunks per stream.
    #[arg(long, default_value_t = 20)]
    chunks: usize,
    /// Delay between stream chunks.
    #[arg(long, default_value_t = 10)]
    chunk_interval_ms: u64,
}

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
const CHUNK: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const LAST: &str = "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

async fn answer(args: Args, body: Bytes) -> Response {
    if args.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(args.latency_ms)).await;
    }
    if !body.windows(13).any(|w| w == b"\"stream\":true" || w == b"\"stream\": tru") {
        return ([(header::CONTENT_TYPE, "application/json")], COMPLETION).into_response();
    }
    let gap = Duration::from_millis(args.chunk_interval_ms);
    let events = futures_util::stream::unfold(0usize, move |i| async move {
        if i > args.chunks {
            return None;
        }
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        let event = if i == args.chunks { LAST } else { CHUNK };
        Some((Ok::<_, std::convert::Infallible>(Bytes::from_static(event.as_bytes())), i + 1))
    });
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(events)).into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(move |body: Bytes| answer(args, body)))
        .route("/chat/completions", axum::routing::post(move |body: Bytes| answer(args, body)));
    let listener = llm_proxy::server::bind(&args.listen.to_string()).await?;
    println!("bench upstream listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
