//! The admin API over real sockets, with a SQLite store in a temporary file: a key's life
//! from creation to deletion as the request path sees it, teams, the master key, validation,
//! spend and the request log, and the OpenAPI document against the routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{Proxy, chat_body};
use llm_proxy::store::Store;
use serde_json::{Value, json};

const MASTER: &str = "sk-admin-test";

/// A key as code: its whole key and its declaration.
const CODE_KEY: &str = "sk-lp-codekey_0123456789abcdef0123456789abcdef";

fn yaml(master: Option<&str>) -> String {
    let server = match master {
        Some(key) => format!("server: {{master_key: {key}}}\n"),
        None => String::new(),
    };
    format!(
        "{server}providers:\n  mock: {{type: mock}}\n\
         models:\n  echo:\n    providers:\n      mock: {{priority: 0, model_id: mock-echo, price: {{input: 1000, output: 2000}}}}\n  \
         other:\n    providers:\n      mock: {{priority: 0, model_id: mock-echo}}\n\
         teams:\n  - {{id: code-team, rpm: 100}}\n\
         keys:\n  - {{id: codekey, hash: {}, team: code-team, alias: from the file}}\n",
        llm_proxy::keys::hash(CODE_KEY)
    )
}

/// A SQLite file of its own, deleted with its WAL files at the end.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let name = format!("llm-proxy-admin-{}-{:016x}.db", std::process::id(), fastrand::u64(..));
        Self(std::env::temp_dir().join(name))
    }

    async fn open(&self) -> Arc<dyn Store> {
        llm_proxy::store::open(&format!("sqlite://{}", self.0.display())).await.unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// The proxy with a fresh store, and the store's file.
async fn start() -> (Proxy, TempDb) {
    let db = TempDb::new();
    let proxy = Proxy::start_stored(&yaml(Some(MASTER)), db.open().await).await;
    (proxy, db)
}

/// Calls the admin API with `key`; the status and the JSON answer.
async fn call_as(
    proxy: &Proxy,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = proxy.client.request(method, format!("{}{path}", proxy.url));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text}")))
}

async fn call(proxy: &Proxy, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(proxy, Some(MASTER), method, path, body).await
}

/// Asserts a call succeeded with `status`; its answer.
async fn ok(proxy: &Proxy, status: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let (got, answer) = call(proxy, method, path, body).await;
    assert_eq!(got, status, "{method} {path}: {answer}");
    answer
}

/// A chat request with a virtual key: the status and the message it was refused with.
async fn chat(proxy: &Proxy, key: &str, model: &str) -> (u16, String) {
    let response = proxy
        .client
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(key)
        .json(&chat_body(model))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["message"].as_str().unwrap_or_default().to_string())
}

/// Asserts an error answer: status, OpenAI's envelope, and the `param` when given.
fn assert_error(answer: &(u16, Value), status: u16, code: &str, param: Option<&str>) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    let error = &body["error"];
    assert!(error["message"].is_string() && error["type"].is_string(), "{body}");
    assert_eq!(error["code"], code, "{body}");
    if let Some(param) = param {
        assert_eq!(error["param"], param, "{body}");
    }
}

fn now() -> i64 {
    llm_proxy::accounting::period::now()
}

fn secret(answer: &Value) -> String {
    answer["key"].as_str().expect("the key is shown on create and rotate").to_string()
}

#[tokio::test]
async fn a_key_lives_from_creation_to_deletion() {
    let (proxy, _db) = start().await;
    let response = proxy
        .client
        .post(format!("{}/admin/keys", proxy.url))
        .bearer_auth(MASTER)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(common::header(&response, "cache-control"), "no-store", "a whole key is never cached");
    let created = ok(&proxy, 201, "POST", "/admin/keys", Some(json!({"alias": "ci", "rpm": 100}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    let first = secret(&created);
    assert!(first.starts_with(&format!("sk-lp-{id}_")));
    assert_eq!(created["source"], "store");
    assert_eq!(created["rpm"], 100);
    assert_eq!(chat(&proxy, &first, "echo").await.0, 200);

    let blocked = ok(&proxy, 200, "POST", &format!("/admin/keys/{id}/block"), None).await;
    assert_eq!(blocked["blocked"], true);
    let (status, message) = chat(&proxy, &first, "echo").await;
    assert_eq!(status, 401);
    assert!(message.contains("blocked"), "{message}");
    ok(&proxy, 200, "POST", &format!("/admin/keys/{id}/unblock"), None).await;
    assert_eq!(chat(&proxy, &first, "echo").await.0, 200);

    // Rotation with grace: both secrets work until it ends.
    let rotated =
        ok(&proxy, 200, "POST", &format!("/admin/keys/{id}/rotate"), Some(json!({"grace_seconds": 3600})))
            .await;
    let second = secret(&rotated);
    assert_ne!(second, first);
    assert_eq!(rotated["id"], id.as_str());
    assert!(rotated["rotation_grace_until"].as_i64().unwrap() >= now() + 3590);
    assert_eq!(chat(&proxy, &first, "echo").await.0, 200);
    assert_eq!(chat(&proxy, &second, "echo").await.0, 200);
    // Without grace: only the newest works.
    let rotated =
        ok(&proxy, 200, "POST", &format!("/admin/keys/{id}/rotate"), Some(json!({"grace_seconds": 0}))).await;
    let third = secret(&rotated);
    assert_eq!(rotated["rotation_grace_until"], Value::Null);
    assert_eq!(chat(&proxy, &second, "echo").await.0, 401);
    assert_eq!(chat(&proxy, &first, "echo").await.0, 401);
    assert_eq!(chat(&proxy, &third, "echo").await.0, 200);
    // The secret is shown on create and rotate only.
    let shown = ok(&proxy, 200, "GET", &format!("/admin/keys/{id}"), None).await;
    assert!(shown.get("key").is_none(), "{shown}");

    let updated =
        ok(&proxy, 200, "PATCH", &format!("/admin/keys/{id}"), Some(json!({"models": ["other"]}))).await;
    assert_eq!(updated["models"], json!(["other"]));
    assert_eq!(updated["rpm"], 100, "a patch leaves other fields alone");
    let (status, message) = chat(&proxy, &third, "echo").await;
    assert_eq!(status, 403);
    assert!(message.contains("`echo`"), "{message}");
    assert_eq!(chat(&proxy, &third, "other").await.0, 200);

    let patch = json!({"models": null, "expires_at": now() - 10});
    ok(&proxy, 200, "PATCH", &format!("/admin/keys/{id}"), Some(patch)).await;
    let (status, message) = chat(&proxy, &third, "echo").await;
    assert_eq!(status, 401);
    assert!(message.contains("expired"), "{message}");
    ok(&proxy, 200, "PATCH", &format!("/admin/keys/{id}"), Some(json!({"expires_in": "1h"}))).await;
    assert_eq!(chat(&proxy, &third, "echo").await.0, 200);

    let deleted = ok(&proxy, 200, "DELETE", &format!("/admin/keys/{id}"), None).await;
    assert_eq!(deleted, json!({"id": id, "object": "key", "deleted": true}));
    assert_eq!(chat(&proxy, &third, "echo").await.0, 401);
    assert_error(&call(&proxy, "GET", &format!("/admin/keys/{id}"), None).await, 404, "not_found", None);
}

#[tokio::test]
async fn a_team_governs_its_keys() {
    let (proxy, _db) = start().await;
    let team =
        ok(&proxy, 201, "POST", "/admin/teams", Some(json!({"id": "research", "budget": {"hard_usd": 50}})))
            .await;
    assert_eq!(team["budget"], json!({"hard_usd": 50.0, "soft_usd": null, "period": "monthly"}));
    assert_eq!(team["source"], "store");
    let created = ok(&proxy, 201, "POST", "/admin/keys", Some(json!({"team_id": "research"}))).await;
    let (id, key) = (created["id"].as_str().unwrap().to_string(), secret(&created));
    assert_eq!(chat(&proxy, &key, "echo").await.0, 200);

    ok(&proxy, 200, "POST", "/admin/teams/research/block", None).await;
    let (status, message) = chat(&proxy, &key, "echo").await;
    assert_eq!(status, 401);
    assert!(message.contains("team is blocked"), "{message}");
    ok(&proxy, 200, "POST", "/admin/teams/research/unblock", None).await;
    assert_eq!(chat(&proxy, &key, "echo").await.0, 200);

    ok(&proxy, 200, "PATCH", "/admin/teams/research", Some(json!({"models": ["other"]}))).await;
    assert_eq!(chat(&proxy, &key, "echo").await.0, 403);
    assert_eq!(chat(&proxy, &key, "other").await.0, 200);

    let listed = ok(&proxy, 200, "GET", "/admin/keys?team_id=research", None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let teams = ok(&proxy, 200, "GET", "/admin/teams", None).await;
    let sources: Vec<(&str, &str)> = teams["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["source"].as_str().unwrap()))
        .collect();
    assert_eq!(sources, [("code-team", "config"), ("research", "store")]);

    // A team with keys is not deleted from under them.
    assert_error(&call(&proxy, "DELETE", "/admin/teams/research", None).await, 409, "conflict", None);
    ok(&proxy, 200, "DELETE", &format!("/admin/keys/{id}"), None).await;
    ok(&proxy, 200, "DELETE", "/admin/teams/research", None).await;
    assert_error(&call(&proxy, "GET", "/admin/teams/research", None).await, 404, "not_found", None);

    // A key's team must exist; a config team can be joined, not changed or shadowed.
    let unknown = call(&proxy, "POST", "/admin/keys", Some(json!({"team_id": "nope"}))).await;
    assert_error(&unknown, 400, "invalid_value", Some("team_id"));
    ok(&proxy, 201, "POST", "/admin/keys", Some(json!({"team_id": "code-team"}))).await;
    let shadow = call(&proxy, "POST", "/admin/teams", Some(json!({"id": "code-team"}))).await;
    assert_error(&shadow, 409, "conflict", None);
    let change = call(&proxy, "PATCH", "/admin/teams/code-team", Some(json!({"rpm": 1}))).await;
    assert_error(&change, 409, "declared_in_config", None);
    assert!(change.1["error"]["message"].as_str().unwrap().contains("config file"));
    ok(&proxy, 201, "POST", "/admin/teams", Some(json!({"id": "twice"}))).await;
    assert_error(
        &call(&proxy, "POST", "/admin/teams", Some(json!({"id": "twice"}))).await,
        409,
        "conflict",
        None,
    );
}

#[tokio::test]
async fn the_admin_api_needs_the_master_key() {
    let (proxy, _db) = start().await;
    for path in ["/admin/keys", "/admin/teams", "/admin/spend", "/admin/requests", "/admin/openapi.json"] {
        let missing = call_as(&proxy, None, "GET", path, None).await;
        assert_error(&missing, 401, "invalid_api_key", None);
        let wrong = call_as(&proxy, Some("sk-wrong"), "GET", path, None).await;
        assert_error(&wrong, 401, "invalid_api_key", None);
    }
    // A virtual key is not the master key.
    let created = ok(&proxy, 201, "POST", "/admin/keys", None).await;
    let as_key = call_as(&proxy, Some(&secret(&created)), "GET", "/admin/keys", None).await;
    assert_error(&as_key, 401, "invalid_api_key", None);
    let refused = call_as(&proxy, None, "POST", "/admin/keys", Some(json!({}))).await;
    assert_eq!(refused.0, 401);
    assert_eq!(ok(&proxy, 200, "GET", "/admin/keys", None).await["data"].as_array().unwrap().len(), 2);

    let db = TempDb::new();
    let open = Proxy::start_stored(&yaml(None), db.open().await).await;
    let closed = call_as(&open, Some("anything"), "POST", "/admin/keys", Some(json!({}))).await;
    assert_error(&closed, 403, "admin_disabled", None);
    assert_error(&call_as(&open, None, "GET", "/admin/spend", None).await, 403, "admin_disabled", None);
}

#[tokio::test]
async fn keys_as_code_are_listed_never_changed_and_no_hash_is_shown() {
    let (proxy, _db) = start().await;
    let created = ok(&proxy, 201, "POST", "/admin/keys", Some(json!({"alias": "stored"}))).await;
    let id = created["id"].as_str().unwrap().to_string();
    ok(&proxy, 200, "POST", &format!("/admin/keys/{id}/rotate"), None).await;
    let listed = ok(&proxy, 200, "GET", "/admin/keys", None).await;
    let text = listed.to_string();
    assert!(!text.contains("hash"), "{text}");
    assert!(!text.contains(&llm_proxy::keys::hash(CODE_KEY)), "{text}");
    assert!(!text.contains("sk-lp-"), "{text}");
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let code = data.iter().find(|k| k["id"] == "codekey").unwrap();
    assert_eq!(code["source"], "config");
    assert_eq!(code["team_id"], "code-team");
    let stored = data.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(stored["source"], "store");
    assert!(stored["rotation_grace_until"].is_i64(), "a rotation's grace is shown: {stored}");
    for field in ["secret_hash", "previous_hash", "previous_expires_at"] {
        assert!(stored.get(field).is_none(), "{field} in {stored}");
    }

    assert_eq!(ok(&proxy, 200, "GET", "/admin/keys/codekey", None).await["alias"], "from the file");
    assert_eq!(chat(&proxy, CODE_KEY, "echo").await.0, 200);
    for (method, path) in [
        ("PATCH", "/admin/keys/codekey"),
        ("POST", "/admin/keys/codekey/block"),
        ("POST", "/admin/keys/codekey/rotate"),
        ("DELETE", "/admin/keys/codekey"),
    ] {
        let refused = call(&proxy, method, path, Some(json!({}))).await;
        assert_error(&refused, 409, "declared_in_config", None);
    }
    assert_eq!(chat(&proxy, CODE_KEY, "echo").await.0, 200);
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let (proxy, _db) = start().await;
    let cases = [
        (json!({"rpm": 0}), "rpm"),
        (json!({"tpm": 0}), "tpm"),
        (json!({"max_parallel": -1}), "max_parallel"),
        (json!({"models": ["echo", ""]}), "models[1]"),
        (json!({"models": "echo"}), "models"),
        (json!({"budget": {"period": "monthly"}}), "budget"),
        (json!({"budget": {"hard_usd": 5, "period": "fortnightly"}}), "budget.period"),
        (json!({"budget": {"hard_usd": -5}}), "budget.hard_usd"),
        (json!({"expires_at": now() - 60}), "expires_at"),
        (json!({"expires_in": "soon"}), "expires_in"),
        (json!({"expires_in": "1d", "expires_at": now() + 60}), "expires_in"),
        (json!({"metadata": ["not", "an", "object"]}), "metadata"),
        (json!({"metadata": {"blob": "x".repeat(17 * 1024)}}), "metadata"),
        (json!({"secret_hash": "0000"}), "secret_hash"),
        (json!({"alias": "x".repeat(300)}), "alias"),
    ];
    for (body, param) in cases {
        let answer = call(&proxy, "POST", "/admin/keys", Some(body.clone())).await;
        assert_error(&answer, 400, "invalid_value", Some(param));
        assert_eq!(answer.1["error"]["type"], "invalid_request_error");
    }
    assert_eq!(ok(&proxy, 200, "GET", "/admin/keys", None).await["data"].as_array().unwrap().len(), 1);
    let created = ok(&proxy, 201, "POST", "/admin/keys", Some(json!({"expires_in": "30d"}))).await;
    assert!((created["expires_at"].as_i64().unwrap() - (now() + 30 * 86_400)).abs() < 5);

    let team = call(&proxy, "POST", "/admin/teams", Some(json!({"id": "has space"}))).await;
    assert_error(&team, 400, "invalid_value", Some("id"));
    let team = call(&proxy, "POST", "/admin/teams", Some(json!({"alias": "no id"}))).await;
    assert_error(&team, 400, "invalid_value", Some("id"));
    let rotate = call(
        &proxy,
        "POST",
        &format!("/admin/keys/{}/rotate", created["id"].as_str().unwrap()),
        Some(json!({"grace_seconds": -1})),
    )
    .await;
    assert_error(&rotate, 400, "invalid_value", Some("grace_seconds"));
    for (path, param) in [
        ("/admin/spend?group_by=colour", "group_by"),
        ("/admin/spend?from=2026-02-30", "from"),
        ("/admin/spend?from=2026-02-02&to=2026-02-01", "to"),
        ("/admin/spend?colour=red", "colour"),
        ("/admin/requests?limit=0", "limit"),
        ("/admin/requests?limit=lots", "limit"),
        ("/admin/requests?since=yesterday", "since"),
        ("/admin/requests?status=999", "status"),
        ("/admin/keys?team=x", "team"),
    ] {
        assert_error(&call(&proxy, "GET", path, None).await, 400, "invalid_value", Some(param));
    }
    let malformed = proxy
        .client
        .post(format!("{}/admin/keys", proxy.url))
        .bearer_auth(MASTER)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
}

#[tokio::test]
async fn unknown_ids_are_404_naming_them() {
    let (proxy, _db) = start().await;
    for (method, path) in [
        ("GET", "/admin/keys/nope"),
        ("PATCH", "/admin/keys/nope"),
        ("DELETE", "/admin/keys/nope"),
        ("POST", "/admin/keys/nope/block"),
        ("POST", "/admin/keys/nope/unblock"),
        ("POST", "/admin/keys/nope/rotate"),
        ("GET", "/admin/teams/nope"),
        ("PATCH", "/admin/teams/nope"),
        ("DELETE", "/admin/teams/nope"),
        ("POST", "/admin/teams/nope/block"),
        ("POST", "/admin/teams/nope/unblock"),
    ] {
        let answer = call(&proxy, method, path, Some(json!({}))).await;
        assert_error(&answer, 404, "not_found", None);
        assert!(
            answer.1["error"]["message"].as_str().unwrap().contains("`nope`"),
            "{method} {path}: {}",
            answer.1
        );
    }
}

#[tokio::test]
async fn spend_and_the_request_log_report_what_was_served() {
    let (proxy, _db) = start().await;
    let created = ok(&proxy, 201, "POST", "/admin/keys", Some(json!({"alias": "metered"}))).await;
    let (id, key) = (created["id"].as_str().unwrap().to_string(), secret(&created));
    for _ in 0..3 {
        assert_eq!(chat(&proxy, &key, "echo").await.0, 200);
    }
    assert_eq!(chat(&proxy, &key, "missing-model").await.0, 404);

    // The ledger is written off the request path: wait (bounded) for its rows.
    let path = format!("/admin/requests?key_id={id}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = ok(&proxy, 200, "GET", &path, None).await;
        if page["data"].as_array().unwrap().len() >= 4 {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "the ledger never showed 4 rows: {page}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(page["object"], "list");
    assert_eq!(page["next_before_id"], Value::Null);
    let rows = page["data"].as_array().unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(rows[0]["status"], 404);
    let served = &rows[1];
    assert_eq!(served["key_id"], id.as_str());
    assert_eq!(served["model"], "echo");
    assert_eq!(served["provider"], "mock");
    assert!(served.get("bodies").is_none(), "{served}");
    assert!(served["cost_nanos"].as_i64().unwrap() > 0, "{served}");
    assert_eq!(
        served["cost_usd"].as_str().unwrap(),
        llm_proxy::accounting::Money(served["cost_nanos"].as_i64().unwrap()).to_string()
    );

    // Pages: two rows, then the rest from `next_before_id`.
    let first = ok(&proxy, 200, "GET", &format!("{path}&limit=2"), None).await;
    let next = first["next_before_id"].as_i64().expect("a full page points at the next");
    assert_eq!(next, ids[1]);
    let second = ok(&proxy, 200, "GET", &format!("{path}&limit=2&before_id={next}"), None).await;
    let rest: Vec<i64> =
        second["data"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(rest, ids[2..]);
    let only_ok = ok(&proxy, 200, "GET", &format!("{path}&status=200&model=echo"), None).await;
    assert_eq!(only_ok["data"].as_array().unwrap().len(), 3);
    let today = llm_proxy::accounting::period::day_of(now());
    let dated = ok(&proxy, 200, "GET", &format!("{path}&since={today}&until={today}"), None).await;
    assert_eq!(dated["data"].as_array().unwrap().len(), 4);
    let future = ok(&proxy, 200, "GET", &format!("{path}&since=2999-01-01"), None).await;
    assert_eq!(future["data"], json!([]));

    let spend = ok(
        &proxy,
        200,
        "GET",
        &format!("/admin/spend?group_by=key,model&from={today}&to={today}&key_id={id}"),
        None,
    )
    .await;
    assert_eq!(spend["object"], "list");
    let data = spend["data"].as_array().unwrap();
    let echo = data.iter().find(|r| r["model"] == "echo").unwrap_or_else(|| panic!("{spend}"));
    assert_eq!(echo["key_id"], id.as_str());
    assert_eq!(echo["requests"], 3);
    assert_eq!(echo["errors"], 0);
    assert!(echo["prompt_tokens"].as_i64().unwrap() > 0);
    let nanos = echo["cost_nanos"].as_i64().unwrap();
    assert_eq!(nanos, 3 * served["cost_nanos"].as_i64().unwrap());
    assert_eq!(echo["cost_usd"], llm_proxy::accounting::Money(nanos).to_string());
    for field in ["completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens"] {
        assert!(echo[field].is_i64(), "{field} in {echo}");
    }
    assert!(
        echo.get("team_id").is_none() && echo.get("day").is_none(),
        "only the grouped dimensions: {echo}"
    );
    let missing = data.iter().find(|r| r["model"] == "missing-model").unwrap();
    assert_eq!(missing["errors"], 1);

    let total = ok(&proxy, 200, "GET", &format!("/admin/spend?key_id={id}"), None).await;
    assert_eq!(total["data"].as_array().unwrap().len(), 1);
    assert_eq!(total["data"][0]["requests"], 4);
    let by_day = ok(&proxy, 200, "GET", "/admin/spend?group_by=day&group_by=provider", None).await;
    let row = &by_day["data"][0];
    assert_eq!(row["day"], today.as_str());
    assert!(row.get("provider").is_some(), "{row}");
}

#[tokio::test]
async fn without_a_store_keys_as_code_are_still_listed() {
    let proxy = Proxy::start(&yaml(Some(MASTER))).await;
    let listed = ok(&proxy, 200, "GET", "/admin/keys", None).await;
    assert_eq!(listed["data"][0]["id"], "codekey");
    assert_eq!(ok(&proxy, 200, "GET", "/admin/teams", None).await["data"][0]["id"], "code-team");
    assert_eq!(ok(&proxy, 200, "GET", "/admin/keys/codekey", None).await["source"], "config");
    for (method, path) in [
        ("POST", "/admin/keys"),
        ("GET", "/admin/keys/nope"),
        ("POST", "/admin/teams"),
        ("GET", "/admin/spend"),
        ("GET", "/admin/requests"),
    ] {
        let answer = call(&proxy, method, path, Some(json!({"id": "t"}))).await;
        assert_error(&answer, 409, "store_not_configured", None);
        assert!(answer.1["error"]["message"].as_str().unwrap().contains("store.url"));
    }
}

/// An axum path as OpenAPI writes it: `{*target}` becomes the documented segments.
fn documented(doc: &Value, method: &str, path: &str) -> bool {
    let paths = doc["paths"].as_object().unwrap();
    match path.split_once("{*") {
        Some((prefix, _)) => paths.iter().any(|(p, ops)| p.starts_with(prefix) && ops.get(method).is_some()),
        None => paths.get(path).is_some_and(|ops| ops.get(method).is_some()),
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_admin_route() {
    let (proxy, _db) = start().await;
    let doc = ok(&proxy, 200, "GET", "/admin/openapi.json", None).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["masterKey"]["scheme"], "bearer");
    assert!(llm_proxy::server::ADMIN_ROUTES.len() >= 21);
    for (method, path) in llm_proxy::server::ADMIN_ROUTES {
        assert!(documented(&doc, method, path), "{method} {path} is not in openapi.json");
    }
    // And everything documented is served: each answers 401 without the key, not 404/405.
    let methods = ["get", "post", "patch", "delete", "put"];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with("/admin/"), "{path}");
        for (method, op) in ops.as_object().unwrap().iter().filter(|(m, _)| methods.contains(&m.as_str())) {
            let concrete: String = path
                .split('/')
                .map(|segment| if segment.starts_with('{') { "x" } else { segment })
                .collect::<Vec<_>>()
                .join("/");
            let answer = call_as(&proxy, None, &method.to_uppercase(), &concrete, None).await;
            assert_eq!(answer.0, 401, "{method} {path} is documented but answers {}", answer.1);
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
            assert!(op["responses"]["401"].is_object(), "{method} {path} documents its 401");
        }
    }
}
