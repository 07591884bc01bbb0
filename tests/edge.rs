//! The edge against hostile or careless clients, through real sockets: header, body and
//! idle timeouts, the connection cap, request ids, content types and CORS.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Proxy, Reply, Upstream, header};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Every wait in these tests is bounded by this; none asserts how long something took.
const DEADLINE: Duration = Duration::from_secs(10);

const MOCK: &str = "providers: {mock: {type: mock}}\nmodels: {m: {providers: {mock: {}}}}\n";

fn addr(proxy: &Proxy) -> String {
    proxy.url.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection (EOF or reset); false if it is still open
/// at the deadline.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, read_to_end).await.is_ok()
}

/// Sends `request` and reads one HTTP/1.1 response (by its content-length): status and body.
async fn exchange(stream: &mut TcpStream, request: &str) -> (u16, String) {
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if data.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    return (status, String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string());
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed mid-response: {}", String::from_utf8_lossy(&data));
            data.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(DEADLINE, read).await.expect("no response in time")
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: proxy\r\n\r\n")
}

#[tokio::test]
async fn slowloris_connections_are_closed_by_the_header_timeout_while_others_are_served() {
    let proxy = Proxy::start(&format!("server: {{header_read_timeout_seconds: 0.5}}\n{MOCK}")).await;
    let target = addr(&proxy);
    let slow: Vec<_> = (0..50)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&target).await.unwrap();
                let mut bytes =
                    b"GET /health HTTP/1.1\r\nHost: proxy\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a'));
                let mut buf = [0u8; 256];
                let started = Instant::now();
                loop {
                    tokio::select! {
                        read = stream.read(&mut buf) => match read {
                            Ok(0) | Err(_) => return true,
                            Ok(_) => panic!("a slow header got an answer"),
                        },
                        // One byte at a time, forever unless the server hangs up.
                        () = tokio::time::sleep(Duration::from_millis(50)) => {
                            if stream.write_all(&[*bytes.next().unwrap()]).await.is_err() {
                                return true;
                            }
                        }
                    }
                    if started.elapsed() > DEADLINE {
                        return false;
                    }
                }
            })
        })
        .collect();
    // Meanwhile a normal client is served.
    let response = proxy.chat(common::chat_body("m")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(proxy.get("/health").await.status(), 200);
    for (i, task) in slow.into_iter().enumerate() {
        assert!(task.await.unwrap(), "slow connection {i} was still open at the deadline");
    }
    assert_eq!(proxy.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_slow_header_after_a_keep_alive_request_is_cut_too() {
    let proxy = Proxy::start(&format!("server: {{header_read_timeout_seconds: 0.5}}\n{MOCK}")).await;
    let mut stream = TcpStream::connect(addr(&proxy)).await.unwrap();
    assert_eq!(exchange(&mut stream, &get("/health")).await.0, 200);
    let mut buf = [0u8; 256];
    let started = Instant::now();
    let mut bytes = b"GET /health HTTP/1.1\r\nX-Slow: ".iter().chain(std::iter::repeat(&b'a'));
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => panic!("a slow header got an answer"),
            },
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                if stream.write_all(&[*bytes.next().unwrap()]).await.is_err() {
                    break;
                }
            }
        }
        assert!(started.elapsed() < DEADLINE, "the slow second header was never cut");
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    // Shorter and longer than the header timeout (the watchdog's timer moves both ways).
    for server in [
        "keep_alive_timeout_seconds: 0.5",
        "keep_alive_timeout_seconds: 0.6, header_read_timeout_seconds: 0.2",
    ] {
        let proxy = Proxy::start(&format!("server: {{{server}}}\n{MOCK}")).await;
        let mut stream = TcpStream::connect(addr(&proxy)).await.unwrap();
        assert_eq!(exchange(&mut stream, &get("/health")).await.0, 200);
        assert_eq!(exchange(&mut stream, &get("/health")).await.0, 200, "keep-alive works");
        assert!(closed_by_server(&mut stream).await, "{server}: the idle connection was never closed");
    }
}

#[tokio::test]
async fn a_slow_body_gets_408_in_openai_s_envelope() {
    let proxy = Proxy::start(&format!("server: {{body_read_timeout_seconds: 0.5}}\n{MOCK}")).await;
    let mut stream = TcpStream::connect(addr(&proxy)).await.unwrap();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"model\":";
    let (status, body) = exchange(&mut stream, head).await;
    assert_eq!(status, 408, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "request_timeout");
}

#[tokio::test]
async fn over_the_connection_cap_connections_are_refused_and_counted() {
    let proxy = Proxy::start(&format!("server: {{max_connections: 4}}\n{MOCK}")).await;
    let target = addr(&proxy);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&target).await.unwrap();
        // A request each, so all four are surely accepted before the fifth connects.
        assert_eq!(exchange(&mut stream, &get("/health")).await.0, 200);
        held.push(stream);
    }
    let mut fifth = TcpStream::connect(&target).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, fifth.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the fifth connection was left open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 503"), "{answer}");
    // The first four still work; one of them reads the metrics.
    for stream in &mut held {
        assert_eq!(exchange(stream, &get("/health")).await.0, 200);
    }
    let (status, metrics) = exchange(&mut held[0], &get("/metrics")).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("llm_proxy_connections_refused_total{reason=\"limit\"} 1"), "{metrics}");
    assert!(metrics.contains("llm_proxy_connections_refused_total{reason=\"accept_error\"} 0"), "{metrics}");
    assert!(metrics.contains("llm_proxy_open_connections 4"), "{metrics}");
    drop(held);
    // Slots free up as the server notices the closes.
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let response = client.get(format!("{}/health", proxy.url)).send().await;
        if response.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "new connections were never served again");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn client_request_ids_are_kept_only_when_short_and_made_of_token_characters() {
    let upstream = Upstream::start(Reply::Ok).await;
    let proxy = Proxy::start(&common::config("", &[("p", &upstream)])).await;
    let send = |id: &'static [u8]| {
        proxy
            .client
            .post(format!("{}/v1/chat/completions", proxy.url))
            .header("x-request-id", reqwest::header::HeaderValue::from_bytes(id).unwrap())
            .json(&common::chat_body("m"))
            .send()
    };
    let good = "req-ABC_123.x:y/z+w=";
    let response = send(good.as_bytes()).await.unwrap();
    assert_eq!(header(&response, "x-request-id"), good);
    assert_eq!(upstream.last_request().0["x-request-id"], good);
    let long: &'static [u8] = Box::leak(vec![b'a'; 129].into_boxed_slice());
    let exactly_128: &'static [u8] = &long[..128];
    let response = send(exactly_128).await.unwrap();
    assert_eq!(header(&response, "x-request-id").len(), 128, "128 bytes are fine");
    for bad in [long, b"has space", "caf\u{e9}".as_bytes(), b"quote\"d"] {
        let response = send(bad).await.unwrap();
        let echoed = header(&response, "x-request-id").to_string();
        assert_eq!(echoed.len(), 36, "a new UUID replaces {:?}: {echoed}", String::from_utf8_lossy(bad));
        assert_ne!(echoed.as_bytes(), bad);
        assert_eq!(upstream.last_request().0["x-request-id"], echoed.as_str(), "the new id went upstream");
    }
    // A DEL byte never gets this far: the HTTP parser refuses the request.
    let mut stream = TcpStream::connect(addr(&proxy)).await.unwrap();
    let (status, _) =
        exchange(&mut stream, "GET /health HTTP/1.1\r\nHost: proxy\r\nX-Request-Id: a\x7fb\r\n\r\n").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn json_endpoints_refuse_other_content_types_with_415() {
    let proxy = Proxy::start(MOCK).await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    for (path, content_type) in [
        ("/v1/chat/completions", Some("text/plain")),
        ("/v1/chat/completions", Some("application/x-www-form-urlencoded")),
        ("/v1/chat/completions", Some("multipart/form-data; boundary=x")),
        ("/v1/chat/completions", Some("application/jsonx")),
        ("/v1/chat/completions", None),
        ("/v1/embeddings", Some("text/plain")),
    ] {
        let mut request = proxy.client.post(format!("{}{path}", proxy.url)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{path} {content_type:?}");
        assert_eq!(header(&response, "content-type"), "application/json");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert_eq!(error["error"]["code"], "unsupported_media_type");
        assert!(error["error"].as_object().unwrap().contains_key("param"));
    }
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let response = proxy
            .client
            .post(format!("{}/v1/chat/completions", proxy.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{content_type}");
    }
}

#[tokio::test]
async fn cors_preflights_and_responses_follow_the_configured_origins() {
    let yaml = format!(
        "server: {{master_key: sk-master, cors: {{allowed_origins: [\"https://app.example.com\"]}}}}\n{MOCK}"
    );
    let proxy = Proxy::start(&yaml).await;
    let url = format!("{}/v1/chat/completions", proxy.url);
    let preflight = |origin: &'static str| {
        proxy
            .client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type, x-stainless-os")
            .send()
    };
    // Allowed, without the master key (browsers send no credentials on a preflight).
    let response = preflight("https://app.example.com").await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-origin"), "https://app.example.com");
    assert!(header(&response, "access-control-allow-methods").contains("POST"));
    assert_eq!(
        header(&response, "access-control-allow-headers"),
        "authorization, content-type, x-stainless-os"
    );
    assert_eq!(header(&response, "access-control-max-age"), "600");
    assert!(header(&response, "vary").contains("Origin"));
    // Not allowed: no allow-origin, so the browser refuses.
    let response = preflight("https://evil.example.com").await.unwrap();
    assert_eq!(header(&response, "access-control-allow-origin"), "");
    // An actual request from the allowed origin.
    let response = proxy
        .client
        .post(&url)
        .bearer_auth("sk-master")
        .header("origin", "https://app.example.com")
        .json(&common::chat_body("m"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), "https://app.example.com");
    let exposed = header(&response, "access-control-expose-headers");
    for name in
        ["x-request-id", "x-llm-proxy-provider", "x-llm-proxy-attempts", "x-ratelimit-remaining-requests"]
    {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    assert!(response.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().contains("Origin")));
    // From another origin: served (CORS is the browser's check), but not allowed to read it.
    let response = proxy
        .client
        .get(format!("{}/health", proxy.url))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "access-control-allow-origin"), "");

    // With no origins configured there are no CORS headers at all.
    let plain = Proxy::start(MOCK).await;
    let response = plain
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/chat/completions", plain.url))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), 204);
    assert!(response.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "{response:?}");
    let response =
        plain.client.get(format!("{}/health", plain.url)).header("origin", "https://x.example").send();
    let response = response.await.unwrap();
    assert!(response.headers().keys().all(|k| !k.as_str().starts_with("access-control-")));
}

#[tokio::test]
async fn cors_accepts_any_origin_with_a_star() {
    let yaml = format!(
        "server: {{cors: {{allowed_origins: [\"*\"], allowed_headers: [authorization, content-type], max_age_seconds: 60}}}}\n{MOCK}"
    );
    let proxy = Proxy::start(&yaml).await;
    let response = proxy
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/models", proxy.url))
        .header("origin", "https://anything.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "x-other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-origin"), "*");
    assert_eq!(header(&response, "access-control-allow-headers"), "authorization, content-type");
    assert_eq!(header(&response, "access-control-max-age"), "60");
}
