//! Test support: an OpenAI-speaking mock upstream on a real socket that counts its calls, and
//! the proxy itself started in-process on port 0.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod recorder;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// What the mock upstream answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with a `chat.completion` for the requested model.
    Ok,
    /// 200 with exactly this JSON body.
    Json(Value),
    /// This status, an OpenAI error body (the message contains an echoed key, as some
    /// providers do), and extra headers.
    Status(u16, Vec<(&'static str, &'static str)>),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Accept the request and never answer.
    Hang,
    /// Wait, then answer the inner reply.
    Slow(Duration, Box<Reply>),
    /// 200 `text/event-stream`: `chunks` content deltas, `gap` apart, then `end`.
    Stream { chunks: usize, gap: Duration, end: End },
    /// This status with exactly this JSON body.
    StatusJson(u16, Value),
    /// One of these, at random, per request.
    Random(Vec<Reply>),
    /// What the request asks for: a 3-chunk stream if it says `stream: true`, else `Ok`.
    Fit,
    /// 200 `text/event-stream`: exactly these raw events (each a whole SSE event), then `end`
    /// (`Done` sends `data: [DONE]`).
    Events(Vec<String>, End),
}

/// How a mock stream ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum End {
    /// Finish chunk, then `data: [DONE]`.
    Done,
    /// Break the connection.
    Die,
    /// Go silent forever.
    Hang,
    /// Close cleanly without `[DONE]`.
    Close,
    /// Never stop sending (until the peer goes away).
    Forever,
}

/// The key some providers echo back in error bodies; it must never reach a client or log.
pub const ECHOED_SECRET: &str = "sk-upstream-secret-1234";

pub const COMPLETION_ID: &str = "chatcmpl-mock-123";

/// A mock OpenAI upstream on 127.0.0.1:0.
#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    inner: Arc<Inner>,
}

struct Inner {
    reply: Mutex<Reply>,
    calls: AtomicUsize,
    requests: Mutex<Vec<(HeaderMap, Bytes)>>,
    stream_dropped: AtomicBool,
    dropped: Notify,
}

impl Upstream {
    pub async fn start(reply: Reply) -> Self {
        let inner = Arc::new(Inner {
            reply: Mutex::new(reply),
            calls: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            stream_dropped: AtomicBool::new(false),
            dropped: Notify::new(),
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(handle))
            .with_state(Arc::clone(&inner));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    pub fn set(&self, reply: Reply) {
        *self.inner.reply.lock().unwrap() = reply;
    }

    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    pub fn last_request(&self) -> (HeaderMap, Bytes) {
        self.inner.requests.lock().unwrap().last().cloned().expect("no request received")
    }

    /// Waits (bounded) until a stream this upstream was sending is dropped by its peer.
    pub async fn wait_stream_dropped(&self) -> bool {
        let wait = async {
            while !self.inner.stream_dropped.load(Ordering::SeqCst) {
                self.inner.dropped.notified().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait).await.is_ok()
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    inner.requests.lock().unwrap().push((headers, body.clone()));
    let request = serde_json::from_slice::<Value>(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or_default().to_string();
    let mut reply = inner.reply.lock().unwrap().clone();
    if let Reply::Random(choices) = reply {
        reply = choices[fastrand::usize(..choices.len())].clone();
    }
    if let Reply::Fit = reply {
        reply = match request["stream"].as_bool() {
            Some(true) => Reply::Stream { chunks: 3, gap: Duration::ZERO, end: End::Done },
            _ => Reply::Ok,
        };
    }
    respond(reply, model, inner).await
}

fn respond(
    reply: Reply,
    model: String,
    inner: Arc<Inner>,
) -> futures_util::future::BoxFuture<'static, Response> {
    Box::pin(async move {
        match reply {
            Reply::Ok => axum::Json(completion(&model)).into_response(),
            Reply::Json(body) => axum::Json(body).into_response(),
            Reply::Status(code, headers) => {
                let body = json!({"error": {
                    "message": format!("Incorrect API key provided: {ECHOED_SECRET}"),
                    "type": "invalid_request_error", "param": null, "code": "upstream_code"
                }});
                let mut response = (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
            Reply::Garbage => ([("content-type", "application/json")], "<html>oops</html>").into_response(),
            Reply::Hang => std::future::pending().await,
            Reply::Slow(delay, inner_reply) => {
                tokio::time::sleep(delay).await;
                respond(*inner_reply, model, inner).await
            }
            Reply::Stream { chunks, gap, end } => stream(model, chunks, gap, end, inner),
            Reply::Events(events, end) => raw_stream(events, end, inner),
            Reply::StatusJson(code, body) => {
                (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response()
            }
            // Resolved in `handle`, which sees the request.
            Reply::Random(_) | Reply::Fit => Reply::Ok.into_response_for(&model),
        }
    })
}

impl Reply {
    fn into_response_for(self, model: &str) -> Response {
        axum::Json(completion(model)).into_response()
    }
}

pub fn completion(model: &str) -> Value {
    json!({
        "id": COMPLETION_ID, "object": "chat.completion", "created": 1_700_000_000, "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from upstream", "refusal": null},
                     "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    })
}

/// The `i`-th chunk of a mock stream, framed as an SSE event.
pub fn chunk_event(model: &str, i: usize) -> String {
    let delta = if i == 0 {
        json!({"role": "assistant", "content": ""})
    } else {
        json!({"content": format!("tok{i} ")})
    };
    let chunk = json!({"id": COMPLETION_ID, "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]});
    format!("data: {chunk}\n\n")
}

pub fn finish_event(model: &str) -> String {
    let chunk = json!({"id": COMPLETION_ID, "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": model, "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]});
    format!("data: {chunk}\n\n")
}

struct DropFlag(Arc<Inner>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.stream_dropped.store(true, Ordering::SeqCst);
        self.0.dropped.notify_waiters();
        self.0.dropped.notify_one();
    }
}

fn stream(model: String, chunks: usize, gap: Duration, end: End, inner: Arc<Inner>) -> Response {
    let flag = DropFlag(inner);
    let events = futures_util::stream::unfold((0usize, flag), move |(i, flag)| {
        let model = model.clone();
        async move {
            if i > 0 && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            if i < chunks || end == End::Forever {
                return Some((Ok::<_, std::io::Error>(Bytes::from(chunk_event(&model, i))), (i + 1, flag)));
            }
            match end {
                End::Done if i == chunks => Some((Ok(Bytes::from(finish_event(&model))), (i + 1, flag))),
                End::Done if i == chunks + 1 => {
                    Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), (i + 1, flag)))
                }
                End::Die => Some((Err(std::io::Error::other("upstream died")), (i + 1, flag))),
                End::Hang => std::future::pending().await,
                _ => None,
            }
        }
    });
    Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(events)).unwrap()
}

fn raw_stream(events: Vec<String>, end: End, inner: Arc<Inner>) -> Response {
    let flag = DropFlag(inner);
    let mut items: Vec<Result<Bytes, std::io::Error>> =
        events.into_iter().map(|e| Ok(Bytes::from(e))).collect();
    match end {
        End::Done => items.push(Ok(Bytes::from_static(b"data: [DONE]\n\n"))),
        End::Die => items.push(Err(std::io::Error::other("upstream died"))),
        End::Close | End::Hang | End::Forever => {}
    }
    let tail = futures_util::stream::unfold(flag, move |flag| async move {
        if end == End::Hang {
            std::future::pending::<()>().await;
        }
        drop(flag);
        None::<(Result<Bytes, std::io::Error>, DropFlag)>
    });
    let body = futures_util::StreamExt::chain(futures_util::stream::iter(items), tail);
    Response::builder().header("content-type", "text/event-stream").body(Body::from_stream(body)).unwrap()
}

/// The proxy, served in-process on 127.0.0.1:0.
pub struct Proxy {
    pub url: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Proxy {
    pub async fn start(yaml: &str) -> Self {
        let config =
            llm_proxy::Config::parse(yaml, Path::new("test.yaml"), &HashMap::<String, String>::new())
                .unwrap_or_else(|e| panic!("{e}"));
        let state = llm_proxy::AppState::new(&config).unwrap();
        Self::serve(state).await
    }

    /// Like [`Proxy::start`], keeping keys, spend and the ledger in `store` (its ledger
    /// writer runs on its own task).
    pub async fn start_with_store(yaml: &str, store: Arc<dyn llm_proxy::store::Store>) -> Self {
        let config =
            llm_proxy::Config::parse(yaml, Path::new("test.yaml"), &HashMap::<String, String>::new())
                .unwrap_or_else(|e| panic!("{e}"));
        let (state, writer) = llm_proxy::AppState::with_store(&config, None, store).unwrap();
        tokio::spawn(writer);
        Self::serve(state).await
    }

    async fn serve(state: llm_proxy::AppState) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(llm_proxy::serve(listener, state, async {
            let _ = rx.await;
        }));
        Self { url, client: reqwest::Client::new(), shutdown: Some(tx), task: Some(task) }
    }

    /// Like [`Proxy::start`], from a file that `POST /admin/reload` reads again.
    pub async fn start_file(file: &Path) -> Self {
        let config = llm_proxy::Config::load(file).unwrap_or_else(|e| panic!("{e}"));
        let state = llm_proxy::AppState::from_file(&config, file).unwrap();
        Self::serve(state).await
    }

    /// Signals shutdown (like SIGTERM) and returns the server task.
    pub fn shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap()
    }

    pub async fn chat(&self, body: Value) -> reqwest::Response {
        self.client.post(format!("{}/v1/chat/completions", self.url)).json(&body).send().await.unwrap()
    }

    /// Posts `body` to `path` (e.g. `/v1/embeddings`).
    /// Posts `body` to `path` with the master key.
    pub async fn post_admin(&self, path: &str, key: &str) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.url)).bearer_auth(key).send().await.unwrap()
    }

    /// GETs `path` with the master key, as JSON.
    pub async fn get_admin(&self, path: &str, key: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The `/metrics` text, parsed into `name{labels}` → value.
    pub async fn metrics(&self) -> HashMap<String, f64> {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.url)).json(&body).send().await.unwrap()
    }

    /// Posts raw bytes (or a streamed body) to the chat endpoint, as `application/json`.
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url)).send().await.unwrap()
    }

    /// The readiness report, as JSON.
    pub async fn ready(&self) -> (u16, Value) {
        let response = self.get("/health/ready").await;
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// One deployment's entry in the readiness report.
    pub async fn deployment(&self, model: &str, provider: &str) -> Value {
        let (_, report) = self.ready().await;
        report["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["model"] == model)
            .and_then(|m| {
                m["deployments"].as_array().unwrap().iter().find(|d| d["provider"] == provider).cloned()
            })
            .unwrap_or_else(|| panic!("no deployment {model}/{provider} in {report}"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A response header as text ("" when absent).
pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A `primary` upstream answering `first`, a `backup` answering `backup`, and the proxy
/// serving model `m` from them in that order.
pub async fn pair(first: Reply, backup: Reply, router: &str) -> (Upstream, Upstream, Proxy) {
    let primary = Upstream::start(first).await;
    let backup = Upstream::start(backup).await;
    let proxy = Proxy::start(&config(router, &[("primary", &primary), ("backup", &backup)])).await;
    (primary, backup, proxy)
}

/// Every request to model `m` was counted once, and the attempts the metrics count are the
/// calls the mocks saw.
pub async fn assert_metrics_match_the_mocks(proxy: &Proxy, upstreams: &[Upstream], requests: usize) {
    let m = proxy.metrics().await;
    let sum = |prefix: &str| m.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum::<f64>();
    assert_eq!(sum("llm_proxy_requests_total{model=\"m\""), requests as f64, "every request counted once");
    let calls: usize = upstreams.iter().map(Upstream::calls).sum();
    assert_eq!(
        sum("llm_proxy_upstream_attempts_total{model=\"m\""),
        calls as f64,
        "attempts = what the mocks saw"
    );
    assert_eq!(m["llm_proxy_in_flight_requests"], 0.0, "nothing left hanging");
}

pub fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

pub fn stream_body(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hello"}]})
}

/// A config with `providers` (name → upstream URL) serving one model `m` in that priority
/// order, plus extra `router:` settings.
pub fn config(router: &str, providers: &[(&str, &Upstream)]) -> String {
    let mut yaml = format!("router: {{{router}}}\nproviders:\n");
    for (name, upstream) in providers {
        yaml.push_str(&format!(
            "  {name}: {{type: openai, api_key: sk-{name}-key, base_url: \"{}\"}}\n",
            upstream.url
        ));
    }
    yaml.push_str("models:\n  m:\n    providers:\n");
    for (priority, (name, _)) in providers.iter().enumerate() {
        yaml.push_str(&format!("      {name}: {{priority: {priority}, model_id: {name}-model}}\n"));
    }
    yaml
}

/// Reads a whole SSE body into its events' data lines.
pub async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.trim().strip_prefix("data: ").unwrap_or(e.trim()).to_string())
        .collect()
}
