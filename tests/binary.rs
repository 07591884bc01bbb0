//! The `llm-proxy` binary itself: `check`, `--help`, logs that never hold a secret, SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{ECHOED_SECRET, Reply, Upstream};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_llm-proxy");

/// A config file in the system temp dir, removed on drop.
struct TempConfig(std::path::PathBuf);

impl TempConfig {
    fn new(text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("llm-proxy-test-{}.yaml", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn check_accepts_the_shipped_config() {
    let out = Command::new(BIN)
        .args(["check", "--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config/config.yaml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok (2 providers, 2 models)"));
}

#[test]
fn check_lists_every_problem_and_fails() {
    let config = TempConfig::new(
        "server: {listen: x}\nproviders:\n  p: {type: openai, api_key: \"${LLM_PROXY_TEST_UNSET_VAR}\"}\n\
         models:\n  m: {providers: {q: {}}}\n",
    );
    let out = Command::new(BIN).args(["check", "--config"]).arg(&config.0).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&*config.0.to_string_lossy()), "names the file: {stderr}");
    assert!(stderr.contains("3 problems"), "{stderr}");
    assert!(stderr.contains("server.listen"), "{stderr}");
    assert!(
        stderr.contains("providers.p.api_key: environment variable LLM_PROXY_TEST_UNSET_VAR is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("models.m.providers.q: provider `q` is not declared"), "{stderr}");
    let missing = Command::new(BIN).args(["check", "--config", "/nonexistent.yaml"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read file"));
}

#[test]
fn help_explains_the_commands_and_options() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["check", "--config", "--listen", "--log-format", "config/config.yaml"] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
}

/// Runs the binary on `config` and returns its JSON log lines and exit status after SIGTERM,
/// having called `exercise` with its base URL in between.
/// Runs the binary on `config` (plus `args`), calls `exercise(base_url, config_file, pid)`,
/// then SIGTERM; returns the JSON log lines and the exit status.
fn run_binary<F: FnOnce(&str, &std::path::Path, u32)>(
    config: &str,
    args: &[&str],
    exercise: F,
) -> (Vec<Value>, std::process::ExitStatus) {
    run_binary_limited(config, args, None, exercise)
}

/// Like [`run_binary`], with at most `max_files` open file descriptors (`ulimit -n`).
fn run_binary_limited<F: FnOnce(&str, &std::path::Path, u32)>(
    config: &str,
    args: &[&str],
    max_files: Option<u32>,
    exercise: F,
) -> (Vec<Value>, std::process::ExitStatus) {
    let config = TempConfig::new(config);
    let mut command = match max_files {
        // `exec` keeps the pid, so signals still reach the proxy.
        Some(n) => {
            let mut shell = Command::new("sh");
            shell.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).arg(BIN);
            shell
        }
        None => Command::new(BIN),
    };
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--config"])
        .arg(&config.0)
        .args(args)
        .env("LLM_PROXY_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut lines = Vec::new();
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("the proxy never said it was listening");
        let json: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
        lines.push(json.clone());
        if json["message"] == "listening" {
            break json["addr"].as_str().unwrap().to_string();
        }
    };
    exercise(&format!("http://{addr}"), &config.0, child.id());
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(
        rx.try_iter().map(|line| serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))),
    );
    (lines, status)
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_hold_no_secret_and_sigterm_exits_cleanly() {
    let upstream = Upstream::start(Reply::Status(401, vec![])).await;
    let backup = Upstream::start(Reply::Ok).await;
    let config = format!(
        "server: {{master_key: sk-master-SECRET-1}}\nproviders:\n  \
         primary: {{type: openai, api_key: sk-provider-SECRET-2, base_url: \"{}\", headers: {{X-Custom: hdr-SECRET-3}}}}\n  \
         backup: {{type: openai, api_key: sk-provider-SECRET-4, base_url: \"{}\"}}\n\
         models:\n  m: {{providers: {{primary: {{priority: 0}}, backup: {{priority: 1}}}}}}\n",
        upstream.url, backup.url
    );
    let (lines, status) = tokio::task::spawn_blocking(move || {
        run_binary(&config, &[], |base, _, _| {
            assert!(post_chat(base, "m", Some("sk-master-SECRET-1")).starts_with("HTTP/1.1 200"));
            assert!(post_chat(base, "m", Some("sk-wrong-SECRET-5")).starts_with("HTTP/1.1 401"));
            assert!(post_chat(base, "m", None).starts_with("HTTP/1.1 401"));
        })
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let all = lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    for secret in ["SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "SECRET-5", ECHOED_SECRET, "Bearer"] {
        assert!(!all.contains(secret), "{secret} leaked into the logs:\n{all}");
    }
    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["status"] == 200)
        .unwrap_or_else(|| panic!("no request line in\n{all}"));
    assert_eq!(request["model"], "m");
    assert_eq!(request["provider"], "backup");
    assert_eq!(request["attempts"], 2);
    assert!(request["latency_ms"].as_f64().is_some());
    assert!(request["request_id"].as_str().is_some_and(|id| id.len() == 36));
    let failed = lines.iter().find(|l| l["message"] == "attempt failed").unwrap();
    assert_eq!(failed["provider"], "primary");
    assert_eq!(failed["error"], "HTTP 401");
    assert!(lines.iter().any(|l| l["message"] == "request" && l["status"] == 401));
    assert!(lines.iter().any(|l| l["message"] == "stopped"));
}

#[test]
fn sighup_and_watch_reload_the_config_and_an_invalid_one_is_refused() {
    let config = "providers:\n  mock: {type: mock}\nmodels:\n  m: {providers: {mock: {}}}\n";
    let eventually = |base: &str, model: &str| {
        (0..100).any(|_| {
            let ok = post_chat(base, model, None).starts_with("HTTP/1.1 200");
            if !ok {
                std::thread::sleep(Duration::from_millis(50));
            }
            ok
        })
    };
    let (lines, status) = run_binary(config, &["--watch"], |base, file, pid| {
        assert!(post_chat(base, "m2", None).starts_with("HTTP/1.1 404"));
        // SIGHUP. (The edit also trips --watch; either way m2 must appear.)
        std::fs::write(file, format!("{config}  m2: {{providers: {{mock: {{}}}}}}\n")).unwrap();
        Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
        assert!(eventually(base, "m2"), "m2 never appeared after SIGHUP");
        // An invalid file: refused, the old config stays.
        std::fs::write(file, "models: {m: {providers: {ghost: {}}}}\n").unwrap();
        Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(post_chat(base, "m2", None).starts_with("HTTP/1.1 200"));
        // --watch alone: a file change is enough.
        std::fs::write(file, format!("{config}  m3: {{providers: {{mock: {{}}}}}}\n")).unwrap();
        assert!(eventually(base, "m3"), "m3 never appeared with --watch");
    });
    assert!(status.success());
    assert!(lines.iter().any(|l| l["message"] == "config reloaded"));
    let refused = lines
        .iter()
        .find(|l| l["level"] == "ERROR" && l["message"].as_str().unwrap_or("").contains("reload refused"));
    assert!(refused.is_some_and(|l| l["message"].as_str().unwrap().contains("ghost")), "{lines:?}");
}

/// One blocking HTTP/1.1 chat request over std's TcpStream; returns the status line.
fn post_chat(base: &str, model: &str, key: Option<&str>) -> String {
    let host = base.trim_start_matches("http://");
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(host).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.lines().next().unwrap_or_default().to_string()
}

/// GET `path` on a new connection; the status, or None when the connection is refused.
fn get_status(base: &str, path: &str) -> Option<u16> {
    get(base, path)?.0.get(9..12)?.parse().ok()
}

/// GET `path` on a new connection; the response head and body, or None when refused.
fn get(base: &str, path: &str) -> Option<(String, String)> {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

#[test]
fn sigterm_fails_readiness_at_once_keeps_accepting_for_the_delay_then_cuts_open_streams() {
    // A stream of ~60 words, one every 200 ms: still running when the 1 s grace ends.
    let words = vec!["word"; 60].join(" ");
    let config = "server: {shutdown_delay_seconds: 2, shutdown_grace_seconds: 1}\n\
                  providers:\n  slow: {type: mock, chunk_delay_ms: 200}\nmodels:\n  m: {providers: {slow: {}}}\n";
    let (lines, status) = run_binary(config, &[], |base, _, pid| {
        let host = base.trim_start_matches("http://");
        let body =
            format!(r#"{{"model":"m","stream":true,"messages":[{{"role":"user","content":"{words}"}}]}}"#);
        let mut stream = TcpStream::connect(host).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut received = String::new();
        while !received.contains("data: ") {
            reader.read_line(&mut received).unwrap();
        }
        assert_eq!(get_status(base, "/health/ready"), Some(200));

        Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        // Readiness fails at once (polled, bounded)…
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while get_status(base, "/health/ready") != Some(503) {
            assert!(std::time::Instant::now() < deadline, "/health/ready never turned 503");
        }
        // …while new connections are still served during the 2 s delay.
        assert_eq!(get_status(base, "/health"), Some(200), "a new connection during the delay");

        // The grace ends with the stream still open: one error event, no [DONE].
        reader.read_to_string(&mut received).unwrap();
        let events: Vec<&str> = received.split("\n\n").filter(|e| e.contains("data: ")).collect();
        let last = events.last().unwrap();
        assert!(last.contains(r#""code":"shutting_down""#), "last event: {last}\nall: {received}");
        assert!(!received.contains("[DONE]"), "{received}");
        assert!(events.len() > 2, "some content streamed before the cut: {received}");
    });
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let all = lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    let cut = lines
        .iter()
        .find(|l| l["message"] == "request" && l["stream"] == "cut_by_shutdown")
        .unwrap_or_else(|| panic!("no request line says the stream was cut by shutdown:\n{all}"));
    assert_eq!(cut["error"], "shutting_down");
    assert!(
        lines.iter().any(|l| l["message"].as_str().unwrap_or("").contains("cutting the streams")),
        "{all}"
    );
    assert!(lines.iter().any(|l| l["message"] == "stopped"));
}

#[test]
fn out_of_file_descriptors_is_logged_counted_and_survived() {
    let config = "providers:\n  mock: {type: mock}\nmodels:\n  m: {providers: {mock: {}}}\n";
    let (lines, status) = run_binary_limited(config, &[], Some(64), |base, _, _| {
        let host = base.trim_start_matches("http://");
        // More connections than the proxy has descriptors left: some accepts fail (EMFILE).
        let held: Vec<_> = (0..120).filter_map(|_| TcpStream::connect(host).ok()).collect();
        assert!(held.len() > 64, "the kernel queues them: {}", held.len());
        let mut probe = held.last().unwrap().try_clone().unwrap();
        probe.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        drop(held);
        drop(probe);
        // Once the descriptors are free again, the proxy serves and has counted the failures.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let metrics = loop {
            if let Some(text) = get_body(base, "/metrics") {
                break text;
            }
            if std::time::Instant::now() >= deadline {
                let got = get(base, "/metrics").map(|(h, _)| h);
                let conn = TcpStream::connect(host).map(|_| ()).map_err(|e| e.to_string());
                panic!("never served again after EMFILE: {got:?} connect={conn:?}");
            }
            // Polling, not timing: each try is a connection, and they must not pile up.
            std::thread::sleep(Duration::from_millis(50));
        };
        let failed = metrics
            .lines()
            .find_map(|l| l.strip_prefix("llm_proxy_connections_refused_total{reason=\"accept_error\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no accept_error counter in\n{metrics}"));
        assert!(failed >= 1.0, "{metrics}");
    });
    assert!(status.success(), "{status}");
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| l["message"].as_str().unwrap_or("").starts_with("cannot accept connections"))
        .collect();
    assert!(!refused.is_empty(), "no log line about failed accepts");
    assert!(refused.iter().all(|l| l["refused"].as_u64().is_some_and(|n| n >= 1)), "{refused:?}");
}

/// GET `path` on a new connection; the body of a 200, or None.
fn get_body(base: &str, path: &str) -> Option<String> {
    let (head, body) = get(base, path)?;
    head.starts_with("HTTP/1.1 200").then_some(body)
}
