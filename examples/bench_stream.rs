//! Streaming load client for `bench/run`: measures time to first byte and the gaps between
//! chunks over many concurrent streams, or opens N streams and holds them open (to measure
//! memory per idle stream). `--plain` sends non-streaming requests instead (the CI smoke).
//!
//! Prints one JSON object with counts and percentiles in microseconds.

use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;

#[derive(Parser, Clone)]
struct Args {
    /// The chat completions URL.
    #[arg(long)]
    url: String,
    /// The `model` to ask for.
    #[arg(long, default_value = "bench")]
    model: String,
    /// Concurrent streams.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to keep opening streams.
    #[arg(long, default_value_t = 5.0)]
    duration_s: f64,
    /// Extra header `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Open this many streams, wait for their first bytes, print `holding`, keep them open for
    /// `--duration-s`, then exit.
    #[arg(long)]
    hold: Option<usize>,
    /// Non-streaming requests instead of streams.
    #[arg(long)]
    plain: bool,
}

#[derive(Default)]
struct Samples {
    ttfb: Vec<u64>,
    gaps: Vec<u64>,
    requests: u64,
    errors: u64,
}

fn client(args: &Args) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    for h in &args.headers {
        if let Some((name, value)) = h.split_once(':')
            && let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(value.trim()),
            )
        {
            headers.insert(name, value);
        }
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(100_000)
        .build()
        .expect("client")
}

fn body(args: &Args) -> String {
    format!(
        r#"{{"model":"{}","stream":{},"messages":[{{"role":"user","content":"Hello, benchmark!"}}]}}"#,
        args.model, !args.plain
    )
}

async fn one(client: &reqwest::Client, args: &Args, samples: &mut Samples) {
    let started = Instant::now();
    let response =
        match client.post(&args.url).header("content-type", "application/json").body(body(args)).send().await
        {
            Ok(r) if r.status().is_success() => r,
            _ => {
                samples.errors += 1;
                return;
            }
        };
    let mut stream = response.bytes_stream();
    let mut last = None::<Instant>;
    let mut ok = true;
    while let Some(chunk) = stream.next().await {
        if chunk.is_err() {
            ok = false;
            break;
        }
        let now = Instant::now();
        match last {
            None => samples.ttfb.push(now.duration_since(started).as_micros() as u64),
            Some(previous) => samples.gaps.push(now.duration_since(previous).as_micros() as u64),
        }
        last = Some(now);
    }
    if ok { samples.requests += 1 } else { samples.errors += 1 }
}

fn percentiles(values: &mut [u64]) -> serde_json::Value {
    values.sort_unstable();
    let at = |q: f64| values.get(((values.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    serde_json::json!({"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "count": values.len()})
}

async fn hold(args: Args, n: usize) {
    let client = client(&args);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<bool>(n);
    for _ in 0..n {
        let (client, args, ready) = (client.clone(), args.clone(), ready_tx.clone());
        tokio::spawn(async move {
            let request = client.post(&args.url).header("content-type", "application/json").body(body(&args));
            let Ok(response) = request.send().await else {
                let _ = ready.send(false).await;
                return;
            };
            let mut stream = response.bytes_stream();
            let first = matches!(stream.next().await, Some(Ok(_)));
            let _ = ready.send(first).await;
            while stream.next().await.is_some() {}
        });
    }
    let mut opened = 0;
    for _ in 0..n {
        if ready_rx.recv().await == Some(true) {
            opened += 1;
        }
    }
    println!("holding {opened}");
    tokio::time::sleep(Duration::from_secs_f64(args.duration_s)).await;
    println!("{}", serde_json::json!({"held": opened, "failed": n - opened}));
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(n) = args.hold {
        return hold(args, n).await;
    }
    let client = client(&args);
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration_s);
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, args) = (client.clone(), args.clone());
            tokio::spawn(async move {
                let mut samples = Samples::default();
                while Instant::now() < deadline {
                    one(&client, &args, &mut samples).await;
                }
                samples
            })
        })
        .collect();
    let mut all = Samples::default();
    for worker in workers {
        let s = worker.await.expect("worker");
        all.ttfb.extend(s.ttfb);
        all.gaps.extend(s.gaps);
        all.requests += s.requests;
        all.errors += s.errors;
    }
    let report = serde_json::json!({
        "requests": all.requests, "errors": all.errors,
        "rps": all.requests as f64 / args.duration_s,
        "ttfb_us": percentiles(&mut all.ttfb), "gap_us": percentiles(&mut all.gaps),
    });
    println!("{report}");
}
