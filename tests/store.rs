//! The store's conformance suite: every test in `conformance!` runs on SQLite (a fresh file)
//! and on PostgreSQL (a fresh schema on the server `LLM_PROXY_TEST_POSTGRES` names, by
//! default `postgres://postgres@127.0.0.1:5432/test`). A PostgreSQL test fails, never skips,
//! when that server is down.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use llm_proxy::accounting::Money;
use llm_proxy::accounting::period::{Period, day_of, parse_day};
use llm_proxy::store::{
    self, Batch, Budget, Dimension, KeyRecord, LedgerQuery, LedgerRow, Limits, ReportQuery, ReportRow, Store,
    StoreError, TeamRecord, redact_url,
};
use sqlx::{Connection, Executor};

// === Harness ===

/// A test's own database; open it as often as the test likes (each open migrates).
struct Db {
    url: String,
}

impl Db {
    async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.url).await.unwrap_or_else(|e| panic!("open {}: {e}", redact_url(&self.url)))
    }

    /// Runs SQL behind the store's back (to plant a bad row).
    async fn raw(&self, sql: &str) {
        if self.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            conn.execute(sql).await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            conn.execute(sql).await.unwrap();
        }
    }
}

/// Runs `test`, then `cleanup` whether or not it panicked, then passes the panic on.
async fn guarded<Fut: Future<Output = ()>>(test: Fut, cleanup: impl AsyncFnOnce()) {
    let outcome = AssertUnwindSafe(test).catch_unwind().await;
    cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}_{:012x}", std::process::id(), fastrand::u64(..) >> 16)
}

async fn on_sqlite<Fut: Future<Output = ()>>(test: impl FnOnce(Db) -> Fut) {
    let path = std::env::temp_dir().join(format!("llm-proxy-store-{}.db", unique("")));
    let url = format!("sqlite://{}", path.display());
    guarded(test(Db { url }), async || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    })
    .await;
}

fn postgres_base() -> String {
    std::env::var("LLM_PROXY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A URL whose connections see only `schema` (libpq's `options`, which sqlx reads too).
fn with_search_path(base: &str, schema: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

async fn on_postgres<Fut: Future<Output = ()>>(test: impl FnOnce(Db) -> Fut) {
    let base = postgres_base();
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is not reachable ({e}): start it, or point LLM_PROXY_TEST_POSTGRES at one",
            redact_url(&base)
        )
    });
    // Tests run in parallel: each gets its own schema, so each migrates and counts alone.
    let schema = unique("t_");
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    let url = with_search_path(&base, &schema);
    guarded(test(Db { url }), async || {
        let _ = admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await;
    })
    .await;
}

/// Each name is an `async fn(Db)` below, run as `sqlite::NAME` and `postgres::NAME`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::on_sqlite(crate::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::on_postgres(crate::$name).await
                }
            )*
        }
    };
}

conformance!(
    migrating_twice_changes_nothing,
    concurrent_migrators_all_succeed,
    keys_round_trip_every_field,
    teams_round_trip_every_field,
    duplicate_ids_conflict,
    reports_group_by_each_dimension,
    reports_filter_by_range_and_subject,
    requests_filter_and_page_newest_first,
    spend_adds_up_from_an_hour_on,
    purge_drops_old_rows_and_aggregates,
    concurrent_batches_sum_exactly,
    a_batch_of_5000_rows_is_one_write,
    a_hand_edited_row_is_corrupt,
);

// === Records ===

const DAY1: &str = "2026-03-01";
const DAY2: &str = "2026-03-02";
const DAY3: &str = "2026-03-03";

/// Unix ms at `hour`:00 on `day`, plus `ms`.
fn at(day: &str, hour: i64, ms: i64) -> i64 {
    (parse_day(day).unwrap() + hour * 3600) * 1000 + ms
}

fn budget(hard: Option<i64>, soft: Option<i64>, period: Period) -> Option<Budget> {
    Some(Budget { hard_usd: hard.map(Money), soft_usd: soft.map(Money), period })
}

fn full_key(id: &str, team: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        alias: Some(format!("{id} alias ✓")),
        team_id: Some(team.into()),
        secret_hash: format!("{:064x}", fastrand::u128(..)),
        previous_hash: Some("ab".repeat(32)),
        previous_expires_at: Some(1_790_000_000),
        models: vec!["gpt-4o*".into(), "claude-?-sonnet".into(), "exact-model".into()],
        limits: Limits {
            rpm: Some(u32::MAX),
            tpm: Some(i64::MAX as u64),
            max_parallel: Some(7),
            budget: budget(Some(12_500_000_000), Some(10_000_000_001), Period::Daily),
        },
        expires_at: Some(1_800_000_000),
        blocked: true,
        metadata: serde_json::json!({"owner": "ops", "tags": ["a", "b"], "n": 3, "nested": {"ok": true}}),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_001,
    }
}

fn bare_key(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        alias: None,
        team_id: None,
        secret_hash: "0".repeat(64),
        previous_hash: None,
        previous_expires_at: None,
        models: Vec::new(),
        limits: Limits::default(),
        expires_at: None,
        blocked: false,
        metadata: serde_json::json!({}),
        created_at: 1,
        updated_at: 1,
    }
}

fn full_team(id: &str) -> TeamRecord {
    TeamRecord {
        id: id.into(),
        alias: Some("Platform".into()),
        models: vec!["gemini-*".into()],
        limits: Limits {
            rpm: Some(600),
            tpm: Some(1_000_000),
            max_parallel: Some(32),
            budget: budget(Some(100_000_000_000), None, Period::Rolling { hours: 24 * 30 }),
        },
        blocked: false,
        metadata: serde_json::json!({"cost_center": 42}),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_100,
    }
}

/// A ledger row with every optional field set (`key`/`team`/`provider` as given).
fn ledger_row(
    key: Option<&str>,
    team: Option<&str>,
    model: &str,
    provider: Option<&str>,
    ts_ms: i64,
    cost_nanos: i64,
) -> LedgerRow {
    let n = ts_ms.rem_euclid(997);
    LedgerRow {
        id: 0,
        ts_ms,
        request_id: format!("req-{ts_ms}-{}", fastrand::u32(..)),
        key_id: key.map(Into::into),
        team_id: team.map(Into::into),
        endpoint: "chat".into(),
        model: model.into(),
        served_model: Some(format!("{model}-2026")),
        provider: provider.map(Into::into),
        status: if n % 5 == 0 { 502 } else { 200 },
        outcome: if n % 5 == 0 { "failed".into() } else { "ok".into() },
        attempts: 1 + (n % 3) as u32,
        stream: n % 2 == 0,
        prompt_tokens: 100 + n,
        completion_tokens: 50 + n,
        cached_tokens: n % 10,
        cache_write_tokens: n % 7,
        reasoning_tokens: n % 4,
        cost_nanos,
        latency_ms: 300 + n,
        ttft_ms: (n % 2 == 0).then_some(40 + n),
        overhead_us: 120 + n,
        error: (n % 5 == 0).then(|| "upstream_5xx".into()),
        bodies: (n % 3 == 0).then(|| r#"{"request":{"messages":[]},"response":null}"#.into()),
    }
}

/// Two keys (in two teams) × two days × two models, three rows each, plus rows without a
/// key, team or provider; each costs something different.
fn grid() -> Vec<LedgerRow> {
    let mut rows = Vec::new();
    let mut cost = 1_000;
    for (key, team) in [("ka", "ta"), ("kb", "tb")] {
        for day in [DAY1, DAY2] {
            for (model, provider) in [("m1", "p1"), ("m2", "p2")] {
                for i in 0..3 {
                    cost += 7_919;
                    rows.push(ledger_row(
                        Some(key),
                        Some(team),
                        model,
                        Some(provider),
                        at(day, 3 + i, cost),
                        cost,
                    ));
                }
            }
        }
    }
    rows.push(ledger_row(None, None, "m1", None, at(DAY1, 23, 999), 5));
    rows.push(ledger_row(None, None, "m2", Some("p2"), at(DAY2, 0, 0), 0));
    rows
}

fn value(row: &LedgerRow, dimension: Dimension) -> String {
    match dimension {
        Dimension::Key => row.key_id.clone().unwrap_or_default(),
        Dimension::Team => row.team_id.clone().unwrap_or_default(),
        Dimension::Model => row.model.clone(),
        Dimension::Provider => row.provider.clone().unwrap_or_default(),
        Dimension::Day => day_of(row.ts_ms.div_euclid(1000)),
    }
}

/// Which rows a query should select, said in Rust.
type Keep = Box<dyn Fn(&LedgerRow) -> bool>;

/// What a report must say, computed from the rows themselves.
fn expected(rows: &[LedgerRow], group_by: &[Dimension], keep: impl Fn(&LedgerRow) -> bool) -> Vec<ReportRow> {
    let mut groups: BTreeMap<Vec<String>, ReportRow> = BTreeMap::new();
    for row in rows.iter().filter(|row| keep(row)) {
        let group: Vec<String> = group_by.iter().map(|d| value(row, *d)).collect();
        let sums = groups.entry(group.clone()).or_insert_with(|| ReportRow { group, ..ReportRow::default() });
        sums.requests += 1;
        sums.errors += i64::from(row.status >= 400);
        sums.prompt_tokens += row.prompt_tokens;
        sums.completion_tokens += row.completion_tokens;
        sums.cached_tokens += row.cached_tokens;
        sums.cache_write_tokens += row.cache_write_tokens;
        sums.reasoning_tokens += row.reasoning_tokens;
        sums.cost_nanos += row.cost_nanos;
    }
    groups.into_values().collect()
}

/// Writes `rows` in two batches, so daily and spend rows are both created and added to.
async fn write_in_two(store: &dyn Store, rows: &[LedgerRow]) {
    let (first, second) = rows.split_at(rows.len() / 2);
    store.write_batch(&Batch::from_rows(first.to_vec())).await.unwrap();
    store.write_batch(&Batch::from_rows(second.to_vec())).await.unwrap();
}

async fn all_requests(store: &dyn Store, query: LedgerQuery) -> Vec<LedgerRow> {
    let mut all = Vec::new();
    let mut query = LedgerQuery { limit: 1000, ..query };
    loop {
        let page = store.requests(&query).await.unwrap();
        let Some(last) = page.last() else { return all };
        query.before_id = Some(last.id);
        all.extend(page);
    }
}

// === Conformance tests ===

async fn migrating_twice_changes_nothing(db: Db) {
    let store = db.open().await;
    let key = full_key("k1", "t");
    store.insert_key(&key).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let again = db.open().await;
    again.ping().await.unwrap();
    assert_eq!(again.get_key("k1").await.unwrap(), Some(key));
    assert_eq!(again.list_keys(None).await.unwrap().len(), 1);
}

async fn concurrent_migrators_all_succeed(db: Db) {
    let db = Arc::new(db);
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { store::open(&db.url).await.map(|store| store.backend()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap_or_else(|e| panic!("a concurrent migrator failed: {e}"));
    }
    let store = db.open().await;
    store.insert_team(&full_team("t")).await.unwrap();
    assert_eq!(store.list_teams().await.unwrap().len(), 1);
}

async fn keys_round_trip_every_field(db: Db) {
    let store = db.open().await;
    let a = full_key("ka", "t1");
    let mut b = full_key("kb", "t2");
    b.limits.budget = budget(None, Some(1), Period::Rolling { hours: 36 });
    b.blocked = false;
    let c = bare_key("kc");
    // Inserted out of order: lists come back by id.
    for key in [&c, &a, &b] {
        store.insert_key(key).await.unwrap();
    }
    assert_eq!(store.get_key("ka").await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.get_key("kb").await.unwrap().as_ref(), Some(&b));
    assert_eq!(store.get_key("kc").await.unwrap().as_ref(), Some(&c));
    assert_eq!(store.get_key("nope").await.unwrap(), None);
    assert_eq!(store.list_keys(None).await.unwrap(), vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(store.list_keys(Some("t2")).await.unwrap(), vec![b.clone()]);
    assert_eq!(store.list_keys(Some("t9")).await.unwrap(), vec![]);

    // Every period survives the trip, and so does a budget with neither amount.
    let mut a2 = a.clone();
    for period in
        [Period::Weekly, Period::Monthly, Period::Total, Period::Rolling { hours: 5 }, Period::Daily]
    {
        a2.limits.budget = budget(None, None, period);
        assert!(store.update_key(&a2).await.unwrap());
        assert_eq!(store.get_key("ka").await.unwrap().as_ref(), Some(&a2), "{period:?}");
    }
    // Rotation, moving teams and dropping every optional field.
    let rotated = KeyRecord {
        team_id: Some("t2".into()),
        secret_hash: "cd".repeat(32),
        previous_hash: Some(a.secret_hash.clone()),
        models: vec![],
        metadata: serde_json::json!({"rotated": 1}),
        updated_at: 1_700_000_500,
        ..a.clone()
    };
    assert!(store.update_key(&rotated).await.unwrap());
    assert_eq!(store.get_key("ka").await.unwrap().as_ref(), Some(&rotated));
    assert_eq!(store.list_keys(Some("t2")).await.unwrap(), vec![rotated.clone(), b.clone()]);
    let bare = KeyRecord { id: "ka".into(), ..bare_key("ka") };
    assert!(store.update_key(&bare).await.unwrap());
    assert_eq!(store.get_key("ka").await.unwrap().as_ref(), Some(&bare));
    assert!(!store.update_key(&bare_key("nope")).await.unwrap());

    assert!(store.delete_key("ka").await.unwrap());
    assert!(!store.delete_key("ka").await.unwrap());
    assert_eq!(store.get_key("ka").await.unwrap(), None);
    assert_eq!(store.list_keys(None).await.unwrap(), vec![b, c]);
}

async fn teams_round_trip_every_field(db: Db) {
    let store = db.open().await;
    let a = full_team("alpha");
    let b = TeamRecord {
        id: "beta".into(),
        alias: None,
        models: vec![],
        limits: Limits::default(),
        blocked: true,
        metadata: serde_json::json!({}),
        created_at: 5,
        updated_at: 6,
    };
    store.insert_team(&b).await.unwrap();
    store.insert_team(&a).await.unwrap();
    assert_eq!(store.get_team("alpha").await.unwrap().as_ref(), Some(&a));
    assert_eq!(store.get_team("beta").await.unwrap().as_ref(), Some(&b));
    assert_eq!(store.get_team("gamma").await.unwrap(), None);
    assert_eq!(store.list_teams().await.unwrap(), vec![a.clone(), b.clone()]);

    let a2 = TeamRecord {
        alias: Some("Platform (EU)".into()),
        limits: Limits {
            rpm: None,
            tpm: Some(5),
            max_parallel: None,
            budget: budget(Some(1), Some(1), Period::Daily),
        },
        blocked: true,
        metadata: serde_json::json!({"region": "eu", "list": [1, 2]}),
        ..a.clone()
    };
    assert!(store.update_team(&a2).await.unwrap());
    assert_eq!(store.get_team("alpha").await.unwrap().as_ref(), Some(&a2));
    assert!(!store.update_team(&full_team("gamma")).await.unwrap());

    // A team's keys outlive it, team id and all.
    store.insert_key(&full_key("k", "alpha")).await.unwrap();
    assert!(store.delete_team("alpha").await.unwrap());
    assert!(!store.delete_team("alpha").await.unwrap());
    assert_eq!(store.list_teams().await.unwrap(), vec![b]);
    assert_eq!(store.list_keys(Some("alpha")).await.unwrap().len(), 1);
}

async fn duplicate_ids_conflict(db: Db) {
    let store = db.open().await;
    let key = full_key("k1", "t");
    store.insert_key(&key).await.unwrap();
    match store.insert_key(&bare_key("k1")).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "key k1"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    store.insert_team(&full_team("t")).await.unwrap();
    let error = store.insert_team(&full_team("t")).await.unwrap_err();
    assert!(matches!(&error, StoreError::Conflict(what) if what == "team t"), "{error:?}");
    assert_eq!(error.to_string(), "team t already exists");
    // The first of each is intact.
    assert_eq!(store.get_key("k1").await.unwrap(), Some(key));
    assert_eq!(store.list_teams().await.unwrap().len(), 1);
}

async fn reports_group_by_each_dimension(db: Db) {
    let store = db.open().await;
    let rows = grid();
    write_in_two(&*store, &rows).await;
    let all = |_: &LedgerRow| true;
    use Dimension::*;
    for group_by in [
        vec![Key],
        vec![Team],
        vec![Model],
        vec![Provider],
        vec![Day],
        vec![Key, Day],
        vec![Day, Model, Provider],
    ] {
        let query = ReportQuery { group_by: group_by.clone(), ..ReportQuery::default() };
        let report = store.report(&query).await.unwrap();
        assert_eq!(report, expected(&rows, &group_by, all), "grouped by {group_by:?}");
        let total: i64 = report.iter().map(|row| row.cost_nanos).sum();
        assert_eq!(total, rows.iter().map(|row| row.cost_nanos).sum::<i64>());
    }
    let by_key = store.report(&ReportQuery { group_by: vec![Key], ..ReportQuery::default() }).await.unwrap();
    let keys: Vec<&str> = by_key.iter().map(|row| row.group[0].as_str()).collect();
    assert_eq!(keys, ["", "ka", "kb"], "no key is the empty string, and sorts first");

    let totals = store.report(&ReportQuery::default()).await.unwrap();
    assert_eq!(totals, expected(&rows, &[], all));
    assert_eq!(totals.len(), 1);
    assert_eq!(totals[0].requests, rows.len() as i64);
    assert!(totals[0].errors > 0);
}

async fn reports_filter_by_range_and_subject(db: Db) {
    let store = db.open().await;
    let rows = grid();
    write_in_two(&*store, &rows).await;
    let day = |row: &LedgerRow| value(row, Dimension::Day);
    let cases: Vec<(ReportQuery, Keep)> = vec![
        (
            ReportQuery { from_day: Some(DAY2.into()), ..Default::default() },
            Box::new(move |r| day(r).as_str() >= DAY2),
        ),
        (
            ReportQuery { to_day: Some(DAY1.into()), ..Default::default() },
            Box::new(move |r| day(r).as_str() <= DAY1),
        ),
        (
            ReportQuery { from_day: Some(DAY1.into()), to_day: Some(DAY1.into()), ..Default::default() },
            Box::new(move |r| day(r) == DAY1),
        ),
        (
            ReportQuery { key_id: Some("kb".into()), ..Default::default() },
            Box::new(|r| r.key_id.as_deref() == Some("kb")),
        ),
        (
            ReportQuery { team_id: Some("ta".into()), ..Default::default() },
            Box::new(|r| r.team_id.as_deref() == Some("ta")),
        ),
        (ReportQuery { model: Some("m2".into()), ..Default::default() }, Box::new(|r| r.model == "m2")),
        (
            ReportQuery { provider: Some("p1".into()), ..Default::default() },
            Box::new(|r| r.provider.as_deref() == Some("p1")),
        ),
        (
            ReportQuery {
                key_id: Some("ka".into()),
                model: Some("m1".into()),
                from_day: Some(DAY2.into()),
                ..Default::default()
            },
            Box::new(move |r| {
                r.key_id.as_deref() == Some("ka") && r.model == "m1" && day(r).as_str() >= DAY2
            }),
        ),
    ];
    for (query, keep) in cases {
        for group_by in [vec![], vec![Dimension::Key, Dimension::Day], vec![Dimension::Model]] {
            let query = ReportQuery { group_by: group_by.clone(), ..query.clone() };
            let report = store.report(&query).await.unwrap();
            assert_eq!(report, expected(&rows, &group_by, &keep), "{query:?}");
            assert!(!report.is_empty(), "{query:?}");
        }
    }
    // Nothing in range: no rows, even without a grouping.
    for group_by in [vec![], vec![Dimension::Day]] {
        let query = ReportQuery { group_by, from_day: Some(DAY3.into()), ..Default::default() };
        assert_eq!(store.report(&query).await.unwrap(), vec![]);
    }
    let query = ReportQuery { key_id: Some("x' OR '1'='1".into()), ..Default::default() };
    assert_eq!(store.report(&query).await.unwrap(), vec![]);
}

async fn requests_filter_and_page_newest_first(db: Db) {
    let store = db.open().await;
    let rows = grid();
    write_in_two(&*store, &rows).await;

    // Every field comes back as written, in write order by id.
    let mut back = all_requests(&*store, LedgerQuery::default()).await;
    assert!(back.windows(2).all(|w| w[0].id > w[1].id), "newest (highest id) first");
    back.reverse();
    let ids: Vec<i64> = back.iter().map(|row| row.id).collect();
    let unnumbered: Vec<LedgerRow> = back.into_iter().map(|row| LedgerRow { id: 0, ..row }).collect();
    assert_eq!(unnumbered, rows);

    // Small pages stitch into the same list.
    let mut paged = Vec::new();
    let mut query = LedgerQuery { limit: 7, ..LedgerQuery::default() };
    loop {
        let page = store.requests(&query).await.unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        query.before_id = Some(last.id);
        paged.extend(page.iter().map(|row| row.id));
    }
    paged.reverse();
    assert_eq!(paged, ids);
    assert_eq!(store.requests(&LedgerQuery::default()).await.unwrap().len(), rows.len().min(100));

    let ids_where = |keep: &dyn Fn(&LedgerRow) -> bool| -> Vec<i64> {
        let mut ids: Vec<i64> =
            rows.iter().zip(&ids).filter(|(row, _)| keep(row)).map(|(_, id)| *id).collect();
        ids.reverse();
        ids
    };
    let since = at(DAY2, 4, 0);
    let until = at(DAY2, 5, 0);
    let middle = ids[ids.len() / 2];
    let cases: Vec<(LedgerQuery, Keep)> = vec![
        (
            LedgerQuery { key_id: Some("kb".into()), ..Default::default() },
            Box::new(|r| r.key_id.as_deref() == Some("kb")),
        ),
        (
            LedgerQuery { team_id: Some("ta".into()), ..Default::default() },
            Box::new(|r| r.team_id.as_deref() == Some("ta")),
        ),
        (LedgerQuery { model: Some("m2".into()), ..Default::default() }, Box::new(|r| r.model == "m2")),
        (LedgerQuery { status: Some(502), ..Default::default() }, Box::new(|r| r.status == 502)),
        (LedgerQuery { since_ms: Some(since), ..Default::default() }, Box::new(move |r| r.ts_ms >= since)),
        (LedgerQuery { until_ms: Some(until), ..Default::default() }, Box::new(move |r| r.ts_ms < until)),
        (
            LedgerQuery {
                key_id: Some("ka".into()),
                since_ms: Some(since),
                until_ms: Some(until),
                ..Default::default()
            },
            Box::new(move |r| r.key_id.as_deref() == Some("ka") && r.ts_ms >= since && r.ts_ms < until),
        ),
    ];
    for (query, keep) in cases {
        let got: Vec<i64> = all_requests(&*store, query.clone()).await.iter().map(|row| row.id).collect();
        let want = ids_where(&*keep);
        assert!(!want.is_empty(), "{query:?} matches nothing: a useless case");
        assert_eq!(got, want, "{query:?}");
        // The same filter with a cursor: only older rows.
        let older = store.requests(&LedgerQuery { before_id: Some(middle), ..query.clone() }).await.unwrap();
        let want_older: Vec<i64> = want.iter().copied().filter(|id| *id < middle).collect();
        assert_eq!(
            older.iter().map(|row| row.id).collect::<Vec<_>>(),
            want_older,
            "{query:?} before {middle}"
        );
    }
    let none = LedgerQuery { key_id: Some("nobody".into()), ..Default::default() };
    assert_eq!(store.requests(&none).await.unwrap(), vec![]);
}

async fn spend_adds_up_from_an_hour_on(db: Db) {
    let store = db.open().await;
    let hour = |h: i64| at(DAY1, h, 0) / 1000;
    let rows = vec![
        ledger_row(Some("k"), Some("t"), "m", Some("p"), at(DAY1, 1, 10), 100),
        ledger_row(Some("k"), Some("t"), "m", Some("p"), at(DAY1, 1, 3_599_999), 20),
        ledger_row(Some("k"), Some("t"), "m", Some("p"), at(DAY1, 2, 0), 3),
        ledger_row(Some("k2"), Some("t"), "m", Some("p"), at(DAY1, 2, 5), 4_000),
        ledger_row(Some("k"), None, "m", Some("p"), at(DAY1, 5, 0), 50_000),
        ledger_row(None, None, "m", None, at(DAY1, 5, 1), 600_000),
    ];
    write_in_two(&*store, &rows).await;
    let spend = async |subject: &str, since: i64| store.spend_since(subject, since).await.unwrap();
    assert_eq!(spend("key:k", 0).await, Money(50_123));
    assert_eq!(spend("key:k", hour(1)).await, Money(50_123));
    assert_eq!(spend("key:k", hour(1) + 1).await, Money(50_003), "the 01:00 hour starts before since");
    assert_eq!(spend("key:k", hour(2)).await, Money(50_003));
    assert_eq!(spend("key:k", hour(3)).await, Money(50_000));
    assert_eq!(spend("key:k", hour(6)).await, Money::ZERO);
    assert_eq!(spend("team:t", hour(0)).await, Money(4_123));
    assert_eq!(spend("key:k2", 0).await, Money(4_000));
    assert_eq!(spend("key:nobody", 0).await, Money::ZERO);
    assert_eq!(spend("k", 0).await, Money::ZERO, "subjects are matched whole");
}

async fn purge_drops_old_rows_and_aggregates(db: Db) {
    let store = db.open().await;
    let mut rows = grid();
    rows.push(ledger_row(Some("ka"), Some("ta"), "m1", Some("p1"), at(DAY3, 12, 0), 77));
    write_in_two(&*store, &rows).await;
    let cut = parse_day(DAY2).unwrap();
    let old = rows.iter().filter(|row| row.ts_ms < cut * 1000).count();
    assert!(old > 0 && old < rows.len());

    // The ledger is cut at one time, the aggregates at another.
    let deleted = store.purge(at(DAY2, 4, 0), cut).await.unwrap();
    let keep = |row: &LedgerRow| row.ts_ms >= at(DAY2, 4, 0);
    assert_eq!(deleted, rows.iter().filter(|row| !keep(row)).count() as u64);
    let left = all_requests(&*store, LedgerQuery::default()).await;
    assert_eq!(left.len(), rows.iter().filter(|row| keep(row)).count());
    assert!(left.iter().all(keep));

    let by_day = ReportQuery { group_by: vec![Dimension::Day], ..Default::default() };
    let report = store.report(&by_day).await.unwrap();
    assert_eq!(report, expected(&rows, &[Dimension::Day], |row| row.ts_ms >= cut * 1000));
    assert_eq!(report.iter().map(|row| row.group[0].as_str()).collect::<Vec<_>>(), [DAY2, DAY3]);
    let spent_after: i64 = rows
        .iter()
        .filter(|r| r.key_id.as_deref() == Some("ka") && r.ts_ms >= cut * 1000)
        .map(|r| r.cost_nanos)
        .sum();
    assert_eq!(store.spend_since("key:ka", 0).await.unwrap(), Money(spent_after));

    assert_eq!(store.purge(at(DAY2, 4, 0), cut).await.unwrap(), 0, "purging again deletes nothing");
}

async fn concurrent_batches_sum_exactly(db: Db) {
    // Two "instances", four writers each, every batch touching the same daily and spend rows
    // in the same (sorted) order.
    let stores = [db.open().await, db.open().await];
    let rows: Vec<LedgerRow> = grid();
    let batch = Arc::new(Batch::from_rows(rows.clone()));
    assert!(batch.daily.len() >= 8 && batch.spend.len() >= 8, "many rows to lock");
    const WRITERS: i64 = 8;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = stores[i as usize % 2].clone();
            let batch = batch.clone();
            tokio::spawn(async move { store.write_batch(&batch).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap_or_else(|e| panic!("a concurrent batch failed: {e}"));
    }
    let store = &stores[0];
    let report =
        store.report(&ReportQuery { group_by: vec![Dimension::Key], ..Default::default() }).await.unwrap();
    let once = expected(&rows, &[Dimension::Key], |_| true);
    let times = |row: &ReportRow| ReportRow {
        group: row.group.clone(),
        requests: row.requests * WRITERS,
        errors: row.errors * WRITERS,
        prompt_tokens: row.prompt_tokens * WRITERS,
        completion_tokens: row.completion_tokens * WRITERS,
        cached_tokens: row.cached_tokens * WRITERS,
        cache_write_tokens: row.cache_write_tokens * WRITERS,
        reasoning_tokens: row.reasoning_tokens * WRITERS,
        cost_nanos: row.cost_nanos * WRITERS,
    };
    assert_eq!(report, once.iter().map(times).collect::<Vec<_>>());
    for ((subject, _), _) in &batch.spend {
        let want: i64 = batch.spend.iter().filter(|((s, _), _)| s == subject).map(|(_, cost)| cost).sum();
        assert_eq!(store.spend_since(subject, 0).await.unwrap(), Money(want * WRITERS), "{subject}");
    }
    assert_eq!(all_requests(&**store, LedgerQuery::default()).await.len(), rows.len() * WRITERS as usize);
}

async fn a_batch_of_5000_rows_is_one_write(db: Db) {
    let store = db.open().await;
    // More rows than one INSERT may carry on SQLite (32,766 parameters, 23 a row).
    let rows: Vec<LedgerRow> = (0..5_000)
        .map(|i| {
            let key = ["ka", "kb", "kc"][i % 3];
            ledger_row(Some(key), Some("t"), "m", Some("p"), at(DAY1, 0, i as i64 * 17), i as i64)
        })
        .collect();
    store.write_batch(&Batch::from_rows(rows.clone())).await.unwrap();
    store.write_batch(&Batch::default()).await.unwrap();
    let totals = store.report(&ReportQuery::default()).await.unwrap();
    assert_eq!(totals, expected(&rows, &[], |_| true));
    assert_eq!(totals[0].requests, 5_000);
    let page = store.requests(&LedgerQuery { limit: 5_000, ..Default::default() }).await.unwrap();
    assert_eq!(page.len(), 1_000, "a page is capped at 1000");
    assert_eq!(LedgerRow { id: 0, ..page[0].clone() }, rows[4_999]);
    assert_eq!(all_requests(&*store, LedgerQuery::default()).await.len(), 5_000);
}

async fn a_hand_edited_row_is_corrupt(db: Db) {
    let store = db.open().await;
    store.insert_key(&full_key("k", "t")).await.unwrap();
    store.insert_key(&bare_key("k2")).await.unwrap();
    db.raw("UPDATE keys SET models = 'gpt-4o' WHERE id = 'k'").await;
    db.raw("UPDATE keys SET budget_period = 'fortnightly' WHERE id = 'k2'").await;
    for id in ["k", "k2"] {
        let error = store.get_key(id).await.unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)), "{id}: {error:?}");
    }
    assert!(matches!(store.list_keys(None).await, Err(StoreError::Corrupt(_))));
}

// === One backend only ===

#[tokio::test]
async fn sqlite_memory_keeps_its_data_across_calls() {
    let store = store::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.insert_key(&full_key("k", "t")).await.unwrap();
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get_key("k").await })
        })
        .collect();
    for read in reads {
        assert!(read.await.unwrap().unwrap().is_some());
    }
    store.write_batch(&Batch::from_rows(grid())).await.unwrap();
    assert_eq!(store.report(&ReportQuery::default()).await.unwrap()[0].requests, grid().len() as i64);
}

#[tokio::test]
async fn sqlite_creates_the_file_and_its_directory() {
    let dir = std::env::temp_dir().join(unique("llm-proxy-store-dir-"));
    let path = dir.join("nested").join("proxy.db");
    let url = format!("sqlite://{}", path.display());
    guarded(
        async {
            let store = store::open(&url).await.unwrap();
            store.insert_team(&full_team("t")).await.unwrap();
            assert!(path.exists());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let (mode,): (String,) =
                sqlx::query_as("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
            assert_eq!(mode, "wal");
            drop(store);
            assert_eq!(store::open(&url).await.unwrap().list_teams().await.unwrap().len(), 1);
        },
        async || {
            let _ = std::fs::remove_dir_all(&dir);
        },
    )
    .await;
}

#[tokio::test]
async fn postgres_down_is_unavailable_at_once_without_the_password() {
    let started = Instant::now();
    let error = match store::open("postgres://u:hunter2@127.0.0.1:1/x").await {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(error) => error,
    };
    let elapsed = started.elapsed();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}: the pool's retries were not bypassed");
    let message = format!("{error} {error:?}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("u:***@127.0.0.1:1"), "{message}");
}

#[tokio::test]
async fn postgres_search_path_from_the_url_isolates_a_schema() {
    on_postgres(async |db: Db| {
        let store = db.open().await;
        assert_eq!(store.backend(), "postgres");
        let schema = db.url.rsplit("%3D").next().unwrap().to_string();
        let mut conn = sqlx::PgConnection::connect(&postgres_base()).await.unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let tables: Vec<&str> = tables.iter().map(|(name,)| name.as_str()).collect();
        assert_eq!(tables, ["daily", "keys", "ledger", "schema_migrations", "spend", "teams"]);
    })
    .await;
}

#[tokio::test]
async fn unknown_urls_are_refused_without_the_password() {
    let error = match store::open("mysql://root:hunter2@db/llm").await {
        Ok(_) => panic!("there is no MySQL backend"),
        Err(error) => error,
    };
    assert!(
        matches!(&error, StoreError::UnsupportedUrl(url) if url == "mysql://root:***@db/llm"),
        "{error:?}"
    );
}
