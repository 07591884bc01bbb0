//! Where keys, teams, spend and the request ledger live: one [`Store`] trait, embedded SQLite
//! by default, PostgreSQL when several instances share it. Nothing on the request path calls
//! it: keys are read through a cache (`keys`), the ledger is written in batches off the path
//! (`accounting::ledger`), spend is read once per budgeted subject and then kept in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::accounting::Money;
use crate::accounting::period::{Period, day_of, hour_of};

mod postgres;
mod sql;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Opens the store `url` names and applies its pending migrations: `sqlite://PATH`,
/// `sqlite::memory:`, `postgres://…` or `postgresql://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PostgresStore::connect(url).await?)
    } else {
        return Err(StoreError::UnsupportedUrl(redact_url(url)));
    };
    store.migrate().await?;
    Ok(store)
}

/// What can go wrong talking to a store. Messages never hold a URL's password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A record with this id exists already.
    #[error("{0} already exists")]
    Conflict(String),
    /// A stored value could not be read back (a bug or a hand-edited row).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The URL names no backend this build has.
    #[error("unsupported store URL {0:?}: use sqlite://PATH, sqlite::memory: or postgres://…")]
    UnsupportedUrl(String),
}

/// Limits a key or a team is held to; `None` is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute (a token bucket: `rpm` at once, refilled at `rpm` per minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute (input and output; reserved at admission, settled after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// Spend allowed per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// A spending limit over a period: past `hard` requests are refused (429
/// `insufficient_quota`), past `soft` they are served with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Refuse once spend reaches this.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "usd_opt")]
    pub hard_usd: Option<Money>,
    /// Warn once spend reaches this.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "usd_opt")]
    pub soft_usd: Option<Money>,
    /// Over which period spend adds up (UTC).
    pub period: Period,
}

/// Dollars in JSON and YAML as people write them (`12.5`), integer nano-dollars inside.
mod usd_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::accounting::Money;

    pub fn serialize<S: Serializer>(value: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(money) => s.serialize_f64(money.usd()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
        let Some(usd) = Option::<f64>::deserialize(d)? else { return Ok(None) };
        Money::from_usd(usd)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{usd} is not an amount of dollars")))
    }
}

/// A virtual key as stored: never its secret, only the SHA-256 of the whole key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The public id, the part of the key between `sk-lp-` and `_`.
    pub id: String,
    /// A name people recognise.
    pub alias: Option<String>,
    /// The team whose limits also apply.
    pub team_id: Option<String>,
    /// Hex SHA-256 of the whole key (`sk-lp-{id}_{secret}`).
    pub secret_hash: String,
    /// The hash of the key it was rotated from, accepted until `previous_expires_at`.
    pub previous_hash: Option<String>,
    /// Unix seconds when the previous secret stops working.
    pub previous_expires_at: Option<i64>,
    /// Models it may call: exact names or globs (`gpt-4o*`); empty is every model.
    pub models: Vec<String>,
    /// Its own limits.
    pub limits: Limits,
    /// Unix seconds after which it no longer works.
    pub expires_at: Option<i64>,
    /// Refused while set.
    pub blocked: bool,
    /// Free-form JSON object, returned as given.
    pub metadata: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A team: limits, a budget and allowed models shared by its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecord {
    /// Chosen by the operator (`[A-Za-z0-9._-]`, at most 64).
    pub id: String,
    /// A name people recognise.
    pub alias: Option<String>,
    /// Models its keys may call; empty is every model.
    pub models: Vec<String>,
    /// Limits over all its keys together.
    pub limits: Limits,
    /// Refuses all its keys while set.
    pub blocked: bool,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One request's record in the ledger. No bodies unless `ledger.bodies` is on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRow {
    /// Assigned by the store (ascending); 0 before it is written.
    pub id: i64,
    /// Unix milliseconds when the request arrived.
    pub ts_ms: i64,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// The virtual key's id; `None` for the master key or an open proxy.
    pub key_id: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The endpoint: `chat`, `responses`, `messages`, `count_tokens`, `embeddings`.
    pub endpoint: String,
    /// The model the client asked for.
    pub model: String,
    /// The model that served it (differs after a fallback).
    pub served_model: Option<String>,
    /// The provider whose answer was returned.
    pub provider: Option<String>,
    /// HTTP status sent to the client.
    pub status: u16,
    /// `ok`, `client_error`, `refused`, `failed`, `stream_interrupted`, `client_gone`, …
    pub outcome: String,
    /// Upstream attempts sent.
    pub attempts: u32,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Input tokens (cached included).
    pub prompt_tokens: i64,
    /// Output tokens (reasoning included).
    pub completion_tokens: i64,
    /// Input tokens read from the provider's cache.
    pub cached_tokens: i64,
    /// Input tokens written to the provider's cache.
    pub cache_write_tokens: i64,
    /// Output tokens spent reasoning.
    pub reasoning_tokens: i64,
    /// What it cost, in nano-dollars.
    pub cost_nanos: i64,
    /// From arrival to the last byte, in milliseconds.
    pub latency_ms: i64,
    /// From arrival to the first content, streams only.
    pub ttft_ms: Option<i64>,
    /// The proxy's own time (all but the wait on upstreams), in microseconds.
    pub overhead_us: i64,
    /// The error class the proxy answered with, if any.
    pub error: Option<String>,
    /// The request and response bodies, redacted, when `ledger.bodies` is on.
    pub bodies: Option<String>,
}

/// Grouping dimensions of a spend report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The virtual key (`""` for requests without one).
    Key,
    /// The key's team (`""` for none).
    Team,
    /// The model asked for.
    Model,
    /// The provider that served it (`""` for none).
    Provider,
    /// The UTC day, `YYYY-MM-DD`.
    Day,
}

/// A spend report's question: totals from the daily aggregates, grouped and filtered.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    /// Group by these, in this order; empty is one grand total.
    pub group_by: Vec<Dimension>,
    /// First day included (`YYYY-MM-DD`).
    pub from_day: Option<String>,
    /// Last day included.
    pub to_day: Option<String>,
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
}

/// One row of a spend report: the grouped-by values, then the sums.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The value of each `group_by` dimension, in order.
    pub group: Vec<String>,
    /// Requests counted.
    pub requests: i64,
    /// Of which answered with an error status.
    pub errors: i64,
    /// Token sums.
    pub prompt_tokens: i64,
    /// Token sums.
    pub completion_tokens: i64,
    /// Token sums.
    pub cached_tokens: i64,
    /// Token sums.
    pub cache_write_tokens: i64,
    /// Token sums.
    pub reasoning_tokens: i64,
    /// Nano-dollars.
    pub cost_nanos: i64,
}

/// A page of the request log, newest first.
#[derive(Debug, Clone, Default)]
pub struct LedgerQuery {
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this model (asked for).
    pub model: Option<String>,
    /// Only this HTTP status.
    pub status: Option<u16>,
    /// Only requests at or after (Unix ms).
    pub since_ms: Option<i64>,
    /// Only requests before (Unix ms).
    pub until_ms: Option<i64>,
    /// Only rows with an id below this (the previous page's last id).
    pub before_id: Option<i64>,
    /// Page size (the store caps it at 1000).
    pub limit: u32,
}

/// Rows the ledger writer hands over at once, with the aggregates they add to, so a batch
/// is one transaction whatever its size.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The ledger rows, in arrival order.
    pub rows: Vec<LedgerRow>,
    /// Additions to the daily aggregates, sorted by their key: every writer takes row locks
    /// in the same order, so two instances' batches cannot deadlock.
    pub daily: Vec<(DailyKey, DailyTotals)>,
    /// Additions to hourly spend per budget subject (`key:ID`, `team:ID`), sorted likewise.
    pub spend: Vec<((String, i64), i64)>,
}

/// The key of a daily aggregate row (`""` where a request had no key, team or provider).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct DailyKey {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Virtual key id or `""`.
    pub key_id: String,
    /// Team id or `""`.
    pub team_id: String,
    /// Model asked for.
    pub model: String,
    /// Serving provider or `""`.
    pub provider: String,
}

/// The sums a daily aggregate row keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DailyTotals {
    /// Requests.
    pub requests: i64,
    /// Requests answered with a status of 400 or more.
    pub errors: i64,
    /// Tokens.
    pub prompt_tokens: i64,
    /// Tokens.
    pub completion_tokens: i64,
    /// Tokens.
    pub cached_tokens: i64,
    /// Tokens.
    pub cache_write_tokens: i64,
    /// Tokens.
    pub reasoning_tokens: i64,
    /// Nano-dollars.
    pub cost_nanos: i64,
}

impl Batch {
    /// A batch of `rows` with the daily and spend additions they make.
    pub fn from_rows(rows: Vec<LedgerRow>) -> Batch {
        let mut daily: BTreeMap<DailyKey, DailyTotals> = BTreeMap::new();
        let mut spend: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for row in &rows {
            let secs = row.ts_ms.div_euclid(1000);
            let key = DailyKey {
                day: day_of(secs),
                key_id: row.key_id.clone().unwrap_or_default(),
                team_id: row.team_id.clone().unwrap_or_default(),
                model: row.model.clone(),
                provider: row.provider.clone().unwrap_or_default(),
            };
            let totals = daily.entry(key).or_default();
            totals.requests += 1;
            totals.errors += i64::from(row.status >= 400);
            totals.prompt_tokens += row.prompt_tokens;
            totals.completion_tokens += row.completion_tokens;
            totals.cached_tokens += row.cached_tokens;
            totals.cache_write_tokens += row.cache_write_tokens;
            totals.reasoning_tokens += row.reasoning_tokens;
            totals.cost_nanos += row.cost_nanos;
            if row.cost_nanos != 0 {
                let hour = hour_of(secs);
                for subject in spend_subjects(row.key_id.as_deref(), row.team_id.as_deref()) {
                    *spend.entry((subject, hour)).or_default() += row.cost_nanos;
                }
            }
        }
        Batch { rows, daily: daily.into_iter().collect(), spend: spend.into_iter().collect() }
    }
}

/// The budget subjects a request's spend counts toward: `key:ID`, `team:ID`.
pub fn spend_subjects(key_id: Option<&str>, team_id: Option<&str>) -> impl Iterator<Item = String> {
    let key = key_id.map(|id| format!("key:{id}"));
    let team = team_id.map(|id| format!("team:{id}"));
    key.into_iter().chain(team)
}

/// Keys, teams, spend and the ledger. Every method is one round trip or one transaction;
/// implementations are safe to share between tasks and between instances (PostgreSQL).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for readiness and logs.
    fn backend(&self) -> &'static str;
    /// Applies the embedded migrations not yet applied (idempotent; safe from several
    /// instances at once).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Adds a key; [`StoreError::Conflict`] if its id exists.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    /// The key with this id.
    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Every key, or those of one team, ordered by id.
    async fn list_keys(&self, team_id: Option<&str>) -> Result<Vec<KeyRecord>, StoreError>;
    /// Replaces the key with `key.id`; false if there is none.
    async fn update_key(&self, key: &KeyRecord) -> Result<bool, StoreError>;
    /// Deletes a key (its ledger rows stay); false if there was none.
    async fn delete_key(&self, id: &str) -> Result<bool, StoreError>;

    /// Adds a team; [`StoreError::Conflict`] if its id exists.
    async fn insert_team(&self, team: &TeamRecord) -> Result<(), StoreError>;
    /// The team with this id.
    async fn get_team(&self, id: &str) -> Result<Option<TeamRecord>, StoreError>;
    /// Every team, ordered by id.
    async fn list_teams(&self) -> Result<Vec<TeamRecord>, StoreError>;
    /// Replaces the team with `team.id`; false if there is none.
    async fn update_team(&self, team: &TeamRecord) -> Result<bool, StoreError>;
    /// Deletes a team; false if there was none. Its keys keep their `team_id`.
    async fn delete_team(&self, id: &str) -> Result<bool, StoreError>;

    /// Writes a batch in one transaction: the rows, then the daily and spend upserts in the
    /// batch's (sorted) order.
    async fn write_batch(&self, batch: &Batch) -> Result<(), StoreError>;
    /// Spend of a subject (`key:ID`, `team:ID`) in the hours starting at or after `since`
    /// (Unix seconds).
    async fn spend_since(&self, subject: &str, since: i64) -> Result<Money, StoreError>;
    /// Totals from the daily aggregates (never the ledger), grouped as asked, ordered by the
    /// group. Without `group_by` it is one row of grand totals, or no row at all when nothing
    /// matched, so an empty report always means "no requests".
    async fn report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, StoreError>;
    /// A page of ledger rows, newest (highest id) first: at most 1000, 100 when `limit` is 0.
    async fn requests(&self, query: &LedgerQuery) -> Result<Vec<LedgerRow>, StoreError>;
    /// Deletes ledger rows older than `before_ms`, and daily and spend rows older than
    /// `aggregates_before` (Unix seconds); returns the ledger rows deleted.
    async fn purge(&self, before_ms: i64, aggregates_before: i64) -> Result<u64, StoreError>;
}

/// A URL fit for a log line or an error: any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_in_a_url() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/llm"), "postgres://app:***@db:5432/llm");
        assert_eq!(redact_url("postgres://db/llm"), "postgres://db/llm");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn a_batch_sums_by_day_and_subject_in_sorted_order() {
        let row = |key: &str, ts_ms: i64, cost: i64| LedgerRow {
            ts_ms,
            key_id: Some(key.into()),
            team_id: Some("t".into()),
            model: "m".into(),
            status: 200,
            cost_nanos: cost,
            prompt_tokens: 3,
            ..LedgerRow::default()
        };
        let batch = Batch::from_rows(vec![row("b", 1_000, 5), row("a", 2_000, 7), row("b", 3_000, 1)]);
        assert_eq!(batch.daily.len(), 2);
        assert_eq!(batch.daily[0].0.key_id, "a");
        assert_eq!(batch.daily[1].1.requests, 2);
        assert_eq!(batch.daily[1].1.cost_nanos, 6);
        let spend: Vec<_> = batch.spend.iter().map(|((s, _), c)| (s.as_str(), *c)).collect();
        assert_eq!(spend, [("key:a", 7), ("key:b", 6), ("team:t", 13)]);
    }
}
