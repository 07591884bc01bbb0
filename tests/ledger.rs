//! Virtual keys in a real store (SQLite in a temp file), over sockets: the ledger rows each
//! kind of request leaves, the spend report against the price table, spend across a
//! restart, and the store going down under a running proxy.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Proxy, header};
use llm_proxy::accounting::Money;
use llm_proxy::accounting::period::Period;
use llm_proxy::store::{
    Batch, Budget, Dimension, KeyRecord, LedgerQuery, LedgerRow, Limits, ReportQuery, ReportRow, Store,
    StoreError, TeamRecord,
};
use serde_json::{Value, json};

const YAML: &str = r#"
server: {master_key: sk-master}
store: {key_cache_seconds: 0.2}
ledger: {flush_interval_seconds: 0.02}
providers:
  mock: {type: mock}
  slow: {type: mock, chunk_delay_ms: 40}
  broken: {type: mock, fail_status: 503}
models:
  echo: {providers: {mock: {model_id: mock-echo}}}
  slow: {providers: {slow: {model_id: mock-echo}}}
  echo-failover:
    providers:
      broken: {priority: 0, model_id: mock-echo}
      mock: {priority: 1, model_id: mock-echo}
"#;

fn temp_db() -> String {
    let path = std::env::temp_dir().join(format!("llm-proxy-ledger-{}.db", uuid::Uuid::new_v4()));
    format!("sqlite://{}", path.display())
}

/// Adds a key to the store; returns the key to present.
async fn add_key(store: &dyn Store, id: &str, limits: Limits) -> String {
    let minted = llm_proxy::keys::mint_for(id).unwrap();
    let record = KeyRecord {
        id: id.into(),
        alias: None,
        team_id: Some("team-a".into()),
        secret_hash: minted.hash,
        previous_hash: None,
        previous_expires_at: None,
        models: vec![],
        limits,
        expires_at: None,
        blocked: false,
        metadata: json!({}),
        created_at: 0,
        updated_at: 0,
    };
    if store.get_team("team-a").await.unwrap().is_none() {
        let team = TeamRecord {
            id: "team-a".into(),
            alias: None,
            models: vec![],
            limits: Limits::default(),
            blocked: false,
            metadata: json!({}),
            created_at: 0,
            updated_at: 0,
        };
        store.insert_team(&team).await.unwrap();
    }
    store.insert_key(&record).await.unwrap();
    secrecy::ExposeSecret::expose_secret(&minted.key).to_string()
}

async fn chat(proxy: &Proxy, key: &str, body: Value) -> reqwest::Response {
    proxy
        .client
        .post(format!("{}/v1/chat/completions", proxy.url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Polls the store until `key` has `count` ledger rows (the writer is asynchronous).
async fn rows(store: &dyn Store, key: &str, count: usize) -> Vec<LedgerRow> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let query = LedgerQuery { key_id: Some(key.into()), limit: 100, ..LedgerQuery::default() };
        let rows = store.requests(&query).await.unwrap();
        if rows.len() >= count {
            return rows;
        }
        assert!(Instant::now() < deadline, "{} of {count} ledger rows for {key}", rows.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh schema on the PostgreSQL every machine and CI run has (127.0.0.1:5432, trust
/// auth, database `test`; `LLM_PROXY_TEST_POSTGRES` names another), and its URL.
async fn postgres_schema() -> (String, String) {
    use sqlx::{Connection, Executor};
    let base = std::env::var("LLM_PROXY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable: {e}"));
    let schema = format!("ledger_{}", uuid::Uuid::new_v4().simple());
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    (format!("{base}{separator}options=-c%20search_path%3D{schema}"), schema)
}

/// Drops a schema [`postgres_schema`] made (best effort).
async fn drop_schema(schema: &str) {
    use sqlx::{Connection, Executor};
    let base = std::env::var("LLM_PROXY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if let Ok(mut admin) = sqlx::PgConnection::connect(&base).await {
        let _ = admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
    }
}

#[tokio::test]
async fn each_kind_of_request_leaves_its_row_and_the_report_adds_them_up() {
    kinds_of_requests(&temp_db()).await;
}

#[tokio::test]
async fn on_postgresql_too_each_kind_of_request_leaves_its_row() {
    let (url, schema) = postgres_schema().await;
    kinds_of_requests(&url).await;
    drop_schema(&schema).await;
}

async fn kinds_of_requests(url: &str) {
    let store = llm_proxy::store::open(url).await.unwrap();
    let key = add_key(&*store, "ledger", Limits::default()).await;
    let proxy = Proxy::start_stored(YAML, Arc::clone(&store)).await;

    let plain =
        chat(&proxy, &key, json!({"model": "echo", "messages": [{"role": "user", "content": "one two"}]}))
            .await;
    assert_eq!(plain.status(), 200);
    let plain_cost = header(&plain, "x-llm-proxy-cost").to_string();
    let body: Value = plain.json().await.unwrap();
    let failover = chat(
        &proxy,
        &key,
        json!({"model": "echo-failover", "messages": [{"role": "user", "content": "a b c"}]}),
    )
    .await;
    assert_eq!(header(&failover, "x-llm-proxy-attempts"), "2");
    let streamed = chat(
        &proxy,
        &key,
        json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": "x y"}]}),
    )
    .await;
    assert!(streamed.text().await.unwrap().contains("[DONE]"));
    // A client that reads the first bytes of a slow stream and goes away.
    let words = vec!["w"; 60].join(" ");
    let mut cut = chat(
        &proxy,
        &key,
        json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": words}]}),
    )
    .await;
    cut.chunk().await.unwrap();
    drop(cut);
    let refused =
        chat(&proxy, &key, json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(refused.status(), 404);

    let rows = rows(&*store, "ledger", 5).await;
    let find = |f: &dyn Fn(&LedgerRow) -> bool| rows.iter().find(|r| f(r)).unwrap().clone();
    let plain_row = find(&|r| r.model == "echo" && !r.stream);
    assert_eq!((plain_row.status, plain_row.outcome.as_str(), plain_row.attempts), (200, "ok", 1));
    assert_eq!(plain_row.prompt_tokens, body["usage"]["prompt_tokens"].as_i64().unwrap());
    assert_eq!(Money(plain_row.cost_nanos).to_string(), plain_cost);
    assert_eq!(plain_row.team_id.as_deref(), Some("team-a"));
    assert_eq!(plain_row.endpoint, "chat");
    let failover_row = find(&|r| r.model == "echo-failover");
    assert_eq!((failover_row.attempts, failover_row.provider.as_deref()), (2, Some("mock")));
    let streamed_row = find(&|r| r.model == "echo" && r.stream);
    assert_eq!(streamed_row.outcome, "completed");
    assert!(streamed_row.ttft_ms.is_some() && streamed_row.cost_nanos > 0);
    let cut_row = find(&|r| r.model == "slow");
    assert_eq!(cut_row.outcome, "client_gone");
    // Its usage never came: it is billed on the proxy's estimate, and says so.
    assert_eq!(cut_row.error.as_deref(), Some("usage_estimated"));
    assert!(
        cut_row.prompt_tokens > 0 && cut_row.completion_tokens >= 1 && cut_row.cost_nanos > 0,
        "{cut_row:?}"
    );
    let missing = find(&|r| r.model == "nope");
    assert_eq!((missing.status, missing.outcome.as_str(), missing.cost_nanos), (404, "client_error", 0));
    assert!(rows.iter().all(|r| r.request_id.len() > 10 && r.overhead_us >= 0 && r.bodies.is_none()));

    // The spend report (the daily aggregates) equals the sum of the rows, key by key and in
    // total; and each row's cost is the price table's figure for its usage.
    for row in rows.iter().filter(|r| r.error.as_deref() != Some("usage_estimated")) {
        let price = llm_proxy::accounting::PriceTable::shipped().lookup("mock", "mock-echo").unwrap();
        let usage = llm_proxy::usage::Usage {
            prompt_tokens: row.prompt_tokens as u64,
            completion_tokens: row.completion_tokens as u64,
            ..Default::default()
        };
        assert_eq!(row.cost_nanos, price.cost(&usage).nanos(), "{row:?}");
    }
    let query = ReportQuery {
        group_by: vec![Dimension::Key, Dimension::Model],
        key_id: Some("ledger".into()),
        ..Default::default()
    };
    let report = store.report(&query).await.unwrap();
    let total: i64 = report.iter().map(|r: &ReportRow| r.cost_nanos).sum();
    assert_eq!(total, rows.iter().map(|r| r.cost_nanos).sum::<i64>());
    assert_eq!(report.iter().map(|r| r.requests).sum::<i64>(), 5);
    assert_eq!(report.iter().map(|r| r.errors).sum::<i64>(), 1);
}

#[tokio::test]
async fn spend_and_limits_survive_a_restart() {
    restart(&temp_db()).await;
}

#[tokio::test]
async fn on_postgresql_too_spend_survives_a_restart() {
    let (url, schema) = postgres_schema().await;
    restart(&url).await;
    drop_schema(&schema).await;
}

async fn restart(url: &str) {
    let url = url.to_string();
    let store = llm_proxy::store::open(&url).await.unwrap();
    let budget = Budget { hard_usd: Some(Money(5_000)), soft_usd: None, period: Period::Monthly };
    let key = add_key(&*store, "restart", Limits { budget: Some(budget), ..Limits::default() }).await;
    {
        let proxy = Proxy::start_stored(YAML, Arc::clone(&store)).await;
        let body =
            json!({"model": "echo", "messages": [{"role": "user", "content": "spend a little money"}]});
        assert_eq!(chat(&proxy, &key, body).await.status(), 200);
        rows(&*store, "restart", 1).await;
    }
    // A new process: a new store handle, a new proxy; the spend comes back from the store.
    let reopened = llm_proxy::store::open(&url).await.unwrap();
    let proxy = Proxy::start_stored(YAML, reopened).await;
    let response =
        chat(&proxy, &key, json!({"model": "echo", "messages": [{"role": "user", "content": "more"}]})).await;
    assert_eq!(response.status(), 429);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "insufficient_quota");
}

/// A store that can be taken down: every call fails while `down` is set.
struct Switchable {
    inner: Arc<dyn Store>,
    down: AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl Store for Switchable {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.migrate().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.ping().await
    }
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.insert_key(key).await
    }
    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.get_key(id).await
    }
    async fn list_keys(&self, team: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.list_keys(team).await
    }
    async fn update_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.update_key(key).await
    }
    async fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.delete_key(id).await
    }
    async fn insert_team(&self, team: &TeamRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.insert_team(team).await
    }
    async fn get_team(&self, id: &str) -> Result<Option<TeamRecord>, StoreError> {
        self.check()?;
        self.inner.get_team(id).await
    }
    async fn list_teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        self.check()?;
        self.inner.list_teams().await
    }
    async fn update_team(&self, team: &TeamRecord) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.update_team(team).await
    }
    async fn delete_team(&self, id: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.delete_team(id).await
    }
    async fn write_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        self.check()?;
        self.inner.write_batch(batch).await
    }
    async fn spend_since(&self, subject: &str, since: i64) -> Result<Money, StoreError> {
        self.check()?;
        self.inner.spend_since(subject, since).await
    }
    async fn report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, StoreError> {
        self.check()?;
        self.inner.report(query).await
    }
    async fn requests(&self, query: &LedgerQuery) -> Result<Vec<LedgerRow>, StoreError> {
        self.check()?;
        self.inner.requests(query).await
    }
    async fn purge(&self, before_ms: i64, aggregates_before: i64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge(before_ms, aggregates_before).await
    }
}

#[tokio::test]
async fn with_the_store_down_cached_keys_work_new_ones_get_503_and_the_ledger_waits() {
    let inner = llm_proxy::store::open(&temp_db()).await.unwrap();
    let cached = add_key(&*inner, "cached", Limits::default()).await;
    let uncached = add_key(&*inner, "uncached", Limits::default()).await;
    let store = Arc::new(Switchable { inner: Arc::clone(&inner), down: AtomicBool::new(false) });
    let yaml = YAML.replace("key_cache_seconds: 0.2", "key_cache_seconds: 0");
    let proxy = Proxy::start_stored(&yaml, store.clone()).await;
    let hi = || json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&proxy, &cached, hi()).await.status(), 200);
    rows(&*inner, "cached", 1).await;

    store.down.store(true, Ordering::SeqCst);
    // `key_cache_seconds: 0`: the cached key is stale at once, so every request below is
    // served from the cache while a background refresh fails.
    for _ in 0..3 {
        assert_eq!(chat(&proxy, &cached, hi()).await.status(), 200);
    }
    let response = chat(&proxy, &uncached, hi()).await;
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "key_store_unavailable");
    let (status, ready) = proxy.ready().await;
    assert_eq!(status, 200, "a store that is down does not fail readiness");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, ready) = proxy.ready().await;
        if ready["store"]["up"] == false && ready["store"]["ledger_queue"].as_u64().unwrap() >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "readiness never said the store is down: {ready}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready["store"]["backend"], "sqlite");
    assert_eq!(proxy.metrics().await["llm_proxy_store_up"], 0.0);

    // Back up: the rows that waited are written, nothing lost.
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(rows(&*inner, "cached", 4).await.len(), 4);
    assert_eq!(chat(&proxy, &uncached, hi()).await.status(), 200);
}

#[tokio::test]
async fn a_stored_key_seen_first_by_50_requests_at_once_admits_exactly_its_rpm() {
    let store = llm_proxy::store::open(&temp_db()).await.unwrap();
    let key = add_key(&*store, "burst", Limits { rpm: Some(10), ..Limits::default() }).await;
    let proxy = Proxy::start_stored(YAML, Arc::clone(&store)).await;
    let hi = json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]});
    // None of them finds the key cached: one store read serves them all, one limit state.
    let statuses: Vec<u16> = futures_util::future::join_all((0..50).map(|_| chat(&proxy, &key, hi.clone())))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 40);
    // Every request counts, refused ones included in the ledger.
    assert_eq!(rows(&*store, "burst", 50).await.iter().filter(|r| r.outcome == "refused").count(), 40);
}
