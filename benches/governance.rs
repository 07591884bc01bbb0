//! What virtual keys cost per request: authentication (cached key, constant-time hash check),
//! the key's and team's limits and budget at admission and settlement, and the ledger record,
//! for 1, 1,000 and 100,000 keys in the store, next to the same path for the master key
//! (which skips all of it). `cargo bench --bench governance`; figures in BENCHMARKS.md.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use divan::{Bencher, black_box};
use llm_proxy::api::request::ApiRequest;
use llm_proxy::server::govern::bench_request;
use llm_proxy::store::{Budget, KeyRecord, Limits, TeamRecord};
use llm_proxy::{AppState, Config};

fn main() {
    divan::main();
}

const MASTER: &str = "sk-bench-master";

struct Setup {
    runtime: tokio::runtime::Runtime,
    /// The store and the ledger writer run here, as in the binary, off the request's thread.
    _store_runtime: tokio::runtime::Runtime,
    state: AppState,
    keys: Vec<String>,
}

/// A proxy with `count` keys in an in-memory SQLite store, each in one of ten teams, all
/// with rpm, tpm and a budget (none reached), and every key already cached (as it is after
/// its first request).
fn setup(count: usize) -> Setup {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store = store_runtime.block_on(llm_proxy::store::open("sqlite::memory:")).unwrap();
    let store = llm_proxy::store::on_runtime(store, store_runtime.handle().clone());
    let yaml = format!(
        "server: {{master_key: {MASTER}}}\nledger: {{queue_capacity: 1000000}}\nproviders: {{mock: {{type: mock}}}}\nmodels: {{echo: {{providers: {{mock: {{model_id: mock-echo}}}}}}}}"
    );
    let config =
        Config::parse(&yaml, Path::new("bench.yaml"), &std::collections::HashMap::<String, String>::new())
            .unwrap();
    let (state, keys) = runtime.block_on(async {
        let limits = Limits {
            rpm: Some(u32::MAX),
            tpm: Some(u64::MAX / 4),
            max_parallel: Some(1_000_000),
            budget: Some(Budget {
                hard_usd: llm_proxy::accounting::Money::from_usd(1e6),
                soft_usd: None,
                period: llm_proxy::accounting::period::Period::Monthly,
            }),
        };
        for team in 0..10 {
            let team = TeamRecord {
                id: format!("team-{team}"),
                alias: None,
                models: vec![],
                limits: limits.clone(),
                blocked: false,
                metadata: serde_json::json!({}),
                created_at: 0,
                updated_at: 0,
            };
            store.insert_team(&team).await.unwrap();
        }
        let mut keys = Vec::with_capacity(count);
        for i in 0..count {
            let minted = llm_proxy::keys::mint().unwrap();
            let record = KeyRecord {
                id: minted.id.clone(),
                alias: None,
                team_id: Some(format!("team-{}", i % 10)),
                secret_hash: minted.hash.clone(),
                previous_hash: None,
                previous_expires_at: None,
                models: vec!["echo*".into()],
                limits: limits.clone(),
                expires_at: None,
                blocked: false,
                metadata: serde_json::json!({}),
                created_at: 0,
                updated_at: 0,
            };
            store.insert_key(&record).await.unwrap();
            keys.push(secrecy::ExposeSecret::expose_secret(&minted.key).to_string());
        }
        let (state, writer) = AppState::with_store(&config, None, store).unwrap();
        store_runtime.spawn(writer);
        let request = request();
        for key in &keys {
            assert!(bench_request(&state, &headers(key), &request).await);
        }
        (state, keys)
    });
    Setup { runtime, _store_runtime: store_runtime, state, keys }
}

fn request() -> ApiRequest {
    ApiRequest::parse(Bytes::from_static(
        br#"{"model":"echo","messages":[{"role":"user","content":"What is the weather in Paris today?"}],"max_tokens":256}"#,
    ))
    .unwrap()
}

fn headers(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_str(&format!("Bearer {key}")).unwrap());
    headers
}

fn cached(count: usize) -> &'static Setup {
    static SETUPS: OnceLock<std::sync::Mutex<Vec<(usize, &'static Setup)>>> = OnceLock::new();
    let setups = SETUPS.get_or_init(Default::default);
    let mut setups = setups.lock().unwrap();
    if let Some((_, setup)) = setups.iter().find(|(n, _)| *n == count) {
        return setup;
    }
    let setup: &'static Setup = Box::leak(Box::new(setup(count)));
    setups.push((count, setup));
    setup
}

/// A virtual key's request: a different key each time, round-robin over all of them.
#[divan::bench(args = [1, 1_000, 100_000], sample_count = 1000)]
fn virtual_key(bencher: Bencher, keys: usize) {
    let setup = cached(keys);
    let request = request();
    let headers: Vec<HeaderMap> = setup.keys.iter().map(|k| headers(k)).collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    bencher.bench_local(|| {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % headers.len();
        setup.runtime.block_on(bench_request(&setup.state, black_box(&headers[i]), &request))
    });
}

/// The master key through the same path: what the proxy did before virtual keys.
#[divan::bench(sample_count = 1000)]
fn master_key(bencher: Bencher) {
    let setup = cached(1);
    let request = request();
    let headers = headers(MASTER);
    bencher
        .bench_local(|| setup.runtime.block_on(bench_request(&setup.state, black_box(&headers), &request)));
}
