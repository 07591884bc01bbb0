//! A mock upstream for any wire format: answers every request with a canned response (a
//! recorded fixture from `tests/fixtures/`), streamed in small pieces when it is SSE, and
//! records what it received so tests can check what the proxy sent.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::net::TcpListener;

/// A canned answer.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
}

impl Canned {
    /// 200 with a fixture file as the body; `.sse` files are served as an event stream.
    pub fn fixture(path: &str) -> Self {
        Self::status_fixture(200, path)
    }

    /// `status` with a fixture file as the body.
    pub fn status_fixture(status: u16, path: &str) -> Self {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
        let content_type = if path.ends_with(".sse") { "text/event-stream" } else { "application/json" };
        Self { status, content_type, body: Bytes::from(body) }
    }
}

/// What the upstream received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Path and query, e.g. `/v1beta/models/m:generateContent`.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Received {
    /// A request header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Answers still to give (the last repeats), and requests received.
type Shared = Arc<Mutex<(Vec<Canned>, Vec<Received>)>>;

/// The mock upstream; `url` is its base URL (no path).
#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    inner: Shared,
}

impl Recorder {
    /// Starts answering with `answers` in turn (the last one repeats).
    pub async fn start(answers: Vec<Canned>) -> Self {
        let inner = Arc::new(Mutex::new((answers, Vec::new())));
        let app = axum::Router::new().fallback(handle).with_state(Arc::clone(&inner));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, inner }
    }

    /// Every request received, in order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().1.clone()
    }

    /// The last request received.
    pub fn last(&self) -> Received {
        self.received().pop().expect("the upstream received nothing")
    }
}

async fn handle(State(inner): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let canned = {
        let mut state = inner.lock().unwrap();
        state.1.push(Received {
            uri: parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default(),
            headers: parts.headers,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        });
        if state.0.len() > 1 { state.0.remove(0) } else { state.0[0].clone() }
    };
    // Streams arrive in 7-byte pieces, so event boundaries fall anywhere.
    let body = if canned.content_type == "text/event-stream" {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            canned.body.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Body::from_stream(futures_util::stream::iter(pieces))
    } else {
        Body::from(canned.body)
    };
    Response::builder()
        .status(StatusCode::from_u16(canned.status).unwrap())
        .header("content-type", canned.content_type)
        .body(body)
        .unwrap()
}
