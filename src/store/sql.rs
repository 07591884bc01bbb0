//! What both SQL backends share: the statements (both accept `$N` placeholders), records
//! flattened into bind parameters and read back from rows, and the mapping of sqlx errors.
//! Each backend keeps only what differs: connecting, transactions, migrations.

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};

use super::{
    Budget, Dimension, KeyRecord, LedgerQuery, LedgerRow, Limits, ReportQuery, ReportRow, StoreError,
    TeamRecord,
};
use crate::accounting::Money;
use crate::accounting::period::Period;

/// Migrations are `(version, sql)`, applied in order; a later issue appends to each list.
pub(super) type Migration = (i64, &'static str);

/// Now, in Unix seconds (for `schema_migrations.applied_at`).
pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// A bound value, whichever backend it goes to.
pub(super) enum Param<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Bool(bool),
}

impl<'a> Param<'a> {
    fn str(value: &'a str) -> Param<'a> {
        Param::Text(Some(Cow::Borrowed(value)))
    }

    fn opt_str(value: Option<&'a str>) -> Param<'a> {
        Param::Text(value.map(Cow::Borrowed))
    }

    fn int(value: i64) -> Param<'a> {
        Param::Int(Some(value))
    }
}

/// Binds `params` in order to a query on any backend.
pub(super) fn bind_all<'q, DB: Database>(
    mut query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    params: Vec<Param<'q>>,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    Option<Cow<'q, str>>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    for param in params {
        query = match param {
            Param::Text(value) => query.bind(value),
            Param::Int(value) => query.bind(value),
            Param::Bool(value) => query.bind(value),
        };
    }
    query
}

// === Errors ===

/// Any sqlx error as a store error; a unique violation is the caller's to name (see
/// [`conflict`]).
pub(super) fn map_err(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(error.to_string()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Like [`map_err`], but a unique violation is a [`StoreError::Conflict`] on `what`.
pub(super) fn conflict(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => map_err(error),
    }
}

/// A connection failure's message, safe for logs: the URL redacted, and the password cut
/// out of whatever the driver said in case it quoted the URL.
pub(super) fn connect_error(url: &str, error: impl std::fmt::Display) -> StoreError {
    let mut message = error.to_string();
    if let Some(password) = password_of(url) {
        message = message.replace(password, "***");
    }
    StoreError::Unavailable(format!("cannot open {}: {message}", super::redact_url(url)))
}

fn password_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    userinfo.split_once(':').map(|(_, password)| password).filter(|p| !p.is_empty())
}

// === Reading rows ===

/// Typed column access with decode failures reported as [`StoreError::Corrupt`].
pub(super) trait Get {
    type Db: Database;

    fn get<'r, T>(&'r self, column: &str) -> Result<T, StoreError>
    where
        T: Decode<'r, Self::Db> + Type<Self::Db>;
}

impl<R> Get for R
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
{
    type Db = R::Database;

    fn get<'r, T>(&'r self, column: &str) -> Result<T, StoreError>
    where
        T: Decode<'r, R::Database> + Type<R::Database>,
    {
        self.try_get(column).map_err(map_err)
    }
}

/// The column types every backend decodes the same way.
pub(super) trait Columns: Get {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
}

impl<R> Columns for R
where
    R: Get,
    for<'r> String: Decode<'r, R::Db> + Type<R::Db>,
    for<'r> i64: Decode<'r, R::Db> + Type<R::Db>,
    for<'r> bool: Decode<'r, R::Db> + Type<R::Db>,
{
    fn text(&self, column: &str) -> Result<String, StoreError> {
        self.get(column)
    }

    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        self.get(column)
    }

    fn int(&self, column: &str) -> Result<i64, StoreError> {
        self.get(column)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        self.get(column)
    }

    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        self.get(column)
    }
}

fn narrow<T: TryFrom<i64>>(column: &str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} = {value} is out of range")))
}

fn opt_narrow<T: TryFrom<i64>>(row: &impl Columns, column: &str) -> Result<Option<T>, StoreError> {
    row.opt_int(column)?.map(|value| narrow(column, value)).transpose()
}

fn json<T: serde::de::DeserializeOwned>(row: &impl Columns, column: &str) -> Result<T, StoreError> {
    let text = row.text(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn limits_from_row(row: &impl Columns) -> Result<Limits, StoreError> {
    let budget = match row.opt_text("budget_period")? {
        Some(period) => Some(Budget {
            hard_usd: row.opt_int("budget_hard_nanos")?.map(Money),
            soft_usd: row.opt_int("budget_soft_nanos")?.map(Money),
            period: Period::try_from(period).map_err(StoreError::Corrupt)?,
        }),
        None => None,
    };
    Ok(Limits {
        rpm: opt_narrow(row, "rpm")?,
        tpm: opt_narrow(row, "tpm")?,
        max_parallel: opt_narrow(row, "max_parallel")?,
        budget,
    })
}

pub(super) fn key_from_row(row: &impl Columns) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: row.text("id")?,
        alias: row.opt_text("alias")?,
        team_id: row.opt_text("team_id")?,
        secret_hash: row.text("secret_hash")?,
        previous_hash: row.opt_text("previous_hash")?,
        previous_expires_at: row.opt_int("previous_expires_at")?,
        models: json(row, "models")?,
        limits: limits_from_row(row)?,
        expires_at: row.opt_int("expires_at")?,
        blocked: row.flag("blocked")?,
        metadata: json(row, "metadata")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

pub(super) fn team_from_row(row: &impl Columns) -> Result<TeamRecord, StoreError> {
    Ok(TeamRecord {
        id: row.text("id")?,
        alias: row.opt_text("alias")?,
        models: json(row, "models")?,
        limits: limits_from_row(row)?,
        blocked: row.flag("blocked")?,
        metadata: json(row, "metadata")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
    })
}

pub(super) fn ledger_from_row(row: &impl Columns) -> Result<LedgerRow, StoreError> {
    Ok(LedgerRow {
        id: row.int("id")?,
        ts_ms: row.int("ts_ms")?,
        request_id: row.text("request_id")?,
        key_id: row.opt_text("key_id")?,
        team_id: row.opt_text("team_id")?,
        endpoint: row.text("endpoint")?,
        model: row.text("model")?,
        served_model: row.opt_text("served_model")?,
        provider: row.opt_text("provider")?,
        status: narrow("status", row.int("status")?)?,
        outcome: row.text("outcome")?,
        attempts: narrow("attempts", row.int("attempts")?)?,
        stream: row.flag("stream")?,
        prompt_tokens: row.int("prompt_tokens")?,
        completion_tokens: row.int("completion_tokens")?,
        cached_tokens: row.int("cached_tokens")?,
        cache_write_tokens: row.int("cache_write_tokens")?,
        reasoning_tokens: row.int("reasoning_tokens")?,
        cost_nanos: row.int("cost_nanos")?,
        latency_ms: row.int("latency_ms")?,
        ttft_ms: row.opt_int("ttft_ms")?,
        overhead_us: row.int("overhead_us")?,
        error: row.opt_text("error")?,
        bodies: row.opt_text("bodies")?,
    })
}

/// The rows of a [`report_sql`] answer. Without a GROUP BY, SQL answers one row even when no
/// row matched; that row (count 0) is dropped so "nothing in range" is an empty report.
pub(super) fn report_rows<R: Columns>(rows: &[R], groups: usize) -> Result<Vec<ReportRow>, StoreError> {
    let mut report = Vec::with_capacity(rows.len());
    for row in rows {
        if row.int("n")? > 0 {
            report.push(report_from_row(row, groups)?);
        }
    }
    Ok(report)
}

/// A report row: the group columns `g0`, `g1`, … then the sums.
fn report_from_row(row: &impl Columns, groups: usize) -> Result<ReportRow, StoreError> {
    let group = (0..groups).map(|i| row.text(&format!("g{i}"))).collect::<Result<_, _>>()?;
    Ok(ReportRow {
        group,
        requests: row.int("requests")?,
        errors: row.int("errors")?,
        prompt_tokens: row.int("prompt_tokens")?,
        completion_tokens: row.int("completion_tokens")?,
        cached_tokens: row.int("cached_tokens")?,
        cache_write_tokens: row.int("cache_write_tokens")?,
        reasoning_tokens: row.int("reasoning_tokens")?,
        cost_nanos: row.int("cost_nanos")?,
    })
}

// === Writing records ===

const KEY_COLUMNS: &[&str] = &[
    "id",
    "alias",
    "team_id",
    "secret_hash",
    "previous_hash",
    "previous_expires_at",
    "models",
    "rpm",
    "tpm",
    "max_parallel",
    "budget_hard_nanos",
    "budget_soft_nanos",
    "budget_period",
    "expires_at",
    "blocked",
    "metadata",
    "created_at",
    "updated_at",
];

const TEAM_COLUMNS: &[&str] = &[
    "id",
    "alias",
    "models",
    "rpm",
    "tpm",
    "max_parallel",
    "budget_hard_nanos",
    "budget_soft_nanos",
    "budget_period",
    "blocked",
    "metadata",
    "created_at",
    "updated_at",
];

/// Every ledger column but `id`, which the database assigns.
const LEDGER_COLUMNS: &[&str] = &[
    "ts_ms",
    "request_id",
    "key_id",
    "team_id",
    "endpoint",
    "model",
    "served_model",
    "provider",
    "status",
    "outcome",
    "attempts",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "latency_ms",
    "ttft_ms",
    "overhead_us",
    "error",
    "bodies",
];

/// Ledger rows per INSERT: 23 parameters each stays under SQLite's 32,766 (and PostgreSQL's
/// 65,535) bind parameters per statement.
pub(super) const LEDGER_CHUNK: usize = 1000;

const _: () = assert!(LEDGER_CHUNK * LEDGER_COLUMNS.len() <= 32_766);

fn placeholders(from: usize, count: usize) -> String {
    let list: Vec<String> = (from..from + count).map(|n| format!("${n}")).collect();
    format!("({})", list.join(", "))
}

fn insert_sql(table: &str, columns: &[&str]) -> String {
    format!("INSERT INTO {table} ({}) VALUES {}", columns.join(", "), placeholders(1, columns.len()))
}

/// `UPDATE … SET` every column but the first (`id`, bound as `$1`).
fn update_sql(table: &str, columns: &[&str]) -> String {
    let sets: Vec<String> =
        columns.iter().enumerate().skip(1).map(|(i, column)| format!("{column} = ${}", i + 1)).collect();
    format!("UPDATE {table} SET {} WHERE id = $1", sets.join(", "))
}

pub(super) static KEY_INSERT: LazyLock<String> = LazyLock::new(|| insert_sql("keys", KEY_COLUMNS));
pub(super) static KEY_UPDATE: LazyLock<String> = LazyLock::new(|| update_sql("keys", KEY_COLUMNS));
pub(super) static KEY_GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM keys WHERE id = $1", KEY_COLUMNS.join(", ")));
pub(super) static KEY_LIST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM keys ORDER BY id", KEY_COLUMNS.join(", ")));
pub(super) static KEY_LIST_TEAM: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM keys WHERE team_id = $1 ORDER BY id", KEY_COLUMNS.join(", ")));
pub(super) const KEY_DELETE: &str = "DELETE FROM keys WHERE id = $1";
pub(super) static TEAM_INSERT: LazyLock<String> = LazyLock::new(|| insert_sql("teams", TEAM_COLUMNS));
pub(super) static TEAM_UPDATE: LazyLock<String> = LazyLock::new(|| update_sql("teams", TEAM_COLUMNS));
pub(super) static TEAM_GET: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM teams WHERE id = $1", TEAM_COLUMNS.join(", ")));
pub(super) static TEAM_LIST: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM teams ORDER BY id", TEAM_COLUMNS.join(", ")));
pub(super) const TEAM_DELETE: &str = "DELETE FROM teams WHERE id = $1";

/// How a statement marks its parameters.
#[derive(Clone, Copy)]
pub(super) enum Marks {
    /// `$1, $2, …`: PostgreSQL's, and SQLite reads them too.
    Dollar,
    /// `?, ?, …`: SQLite parses `$N` as a *name* and looks each one up among the names seen so
    /// far, quadratic in a 23,000-parameter INSERT; bare `?` are numbered as they come.
    Question,
}

static LEDGER_INSERT_DOLLAR: LazyLock<String> =
    LazyLock::new(|| ledger_insert_sql(LEDGER_CHUNK, Marks::Dollar));
static LEDGER_INSERT_QUESTION: LazyLock<String> =
    LazyLock::new(|| ledger_insert_sql(LEDGER_CHUNK, Marks::Question));

/// A multi-row INSERT for `rows` ledger rows.
fn ledger_insert_sql(rows: usize, marks: Marks) -> String {
    let width = LEDGER_COLUMNS.len();
    let values: Vec<String> = (0..rows)
        .map(|r| match marks {
            Marks::Dollar => placeholders(r * width + 1, width),
            Marks::Question => format!("({})", vec!["?"; width].join(", ")),
        })
        .collect();
    format!("INSERT INTO ledger ({}) VALUES {}", LEDGER_COLUMNS.join(", "), values.join(", "))
}

/// The INSERT for one chunk of at most [`LEDGER_CHUNK`] rows.
pub(super) fn ledger_insert(rows: usize, marks: Marks) -> Cow<'static, str> {
    match (rows == LEDGER_CHUNK, marks) {
        (true, Marks::Dollar) => Cow::Borrowed(LEDGER_INSERT_DOLLAR.as_str()),
        (true, Marks::Question) => Cow::Borrowed(LEDGER_INSERT_QUESTION.as_str()),
        (false, _) => Cow::Owned(ledger_insert_sql(rows, marks)),
    }
}

fn wide(column: &str, value: Option<u64>) -> Result<Option<i64>, StoreError> {
    value
        .map(|v| {
            i64::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("{column} = {v} exceeds a 64-bit integer")))
        })
        .transpose()
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<Param<'static>, StoreError> {
    let text = serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Param::Text(Some(Cow::Owned(text))))
}

/// `rpm, tpm, max_parallel, budget_hard_nanos, budget_soft_nanos, budget_period`.
fn limit_params(limits: &Limits) -> Result<[Param<'static>; 6], StoreError> {
    let budget = limits.budget.as_ref();
    Ok([
        Param::Int(limits.rpm.map(i64::from)),
        Param::Int(wide("tpm", limits.tpm)?),
        Param::Int(limits.max_parallel.map(i64::from)),
        Param::Int(budget.and_then(|b| b.hard_usd).map(Money::nanos)),
        Param::Int(budget.and_then(|b| b.soft_usd).map(Money::nanos)),
        Param::Text(budget.map(|b| Cow::Owned(String::from(b.period)))),
    ])
}

/// A key's values in [`KEY_COLUMNS`] order.
pub(super) fn key_params(key: &KeyRecord) -> Result<Vec<Param<'_>>, StoreError> {
    let mut params = vec![
        Param::str(&key.id),
        Param::opt_str(key.alias.as_deref()),
        Param::opt_str(key.team_id.as_deref()),
        Param::str(&key.secret_hash),
        Param::opt_str(key.previous_hash.as_deref()),
        Param::Int(key.previous_expires_at),
        json_text(&key.models)?,
    ];
    params.extend(limit_params(&key.limits)?);
    params.extend([
        Param::Int(key.expires_at),
        Param::Bool(key.blocked),
        json_text(&key.metadata)?,
        Param::int(key.created_at),
        Param::int(key.updated_at),
    ]);
    Ok(params)
}

/// A team's values in [`TEAM_COLUMNS`] order.
pub(super) fn team_params(team: &TeamRecord) -> Result<Vec<Param<'_>>, StoreError> {
    let mut params =
        vec![Param::str(&team.id), Param::opt_str(team.alias.as_deref()), json_text(&team.models)?];
    params.extend(limit_params(&team.limits)?);
    params.extend([
        Param::Bool(team.blocked),
        json_text(&team.metadata)?,
        Param::int(team.created_at),
        Param::int(team.updated_at),
    ]);
    Ok(params)
}

/// Rows' values in [`LEDGER_COLUMNS`] order, one row after the other.
pub(super) fn ledger_params(rows: &[LedgerRow]) -> Vec<Param<'_>> {
    let mut params = Vec::with_capacity(rows.len() * LEDGER_COLUMNS.len());
    for row in rows {
        params.extend([
            Param::int(row.ts_ms),
            Param::str(&row.request_id),
            Param::opt_str(row.key_id.as_deref()),
            Param::opt_str(row.team_id.as_deref()),
            Param::str(&row.endpoint),
            Param::str(&row.model),
            Param::opt_str(row.served_model.as_deref()),
            Param::opt_str(row.provider.as_deref()),
            Param::int(i64::from(row.status)),
            Param::str(&row.outcome),
            Param::int(i64::from(row.attempts)),
            Param::Bool(row.stream),
            Param::int(row.prompt_tokens),
            Param::int(row.completion_tokens),
            Param::int(row.cached_tokens),
            Param::int(row.cache_write_tokens),
            Param::int(row.reasoning_tokens),
            Param::int(row.cost_nanos),
            Param::int(row.latency_ms),
            Param::Int(row.ttft_ms),
            Param::int(row.overhead_us),
            Param::opt_str(row.error.as_deref()),
            Param::opt_str(row.bodies.as_deref()),
        ]);
    }
    params
}

// === Aggregates ===

/// Adds a batch's daily totals to the row with the same key, creating it if need be.
pub(super) const DAILY_UPSERT: &str = "INSERT INTO daily (day, key_id, team_id, model, provider, \
     requests, errors, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, \
     reasoning_tokens, cost_nanos) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (day, key_id, team_id, model, provider) DO UPDATE SET \
     requests = daily.requests + excluded.requests, \
     errors = daily.errors + excluded.errors, \
     prompt_tokens = daily.prompt_tokens + excluded.prompt_tokens, \
     completion_tokens = daily.completion_tokens + excluded.completion_tokens, \
     cached_tokens = daily.cached_tokens + excluded.cached_tokens, \
     cache_write_tokens = daily.cache_write_tokens + excluded.cache_write_tokens, \
     reasoning_tokens = daily.reasoning_tokens + excluded.reasoning_tokens, \
     cost_nanos = daily.cost_nanos + excluded.cost_nanos";

pub(super) fn daily_params<'a>(key: &'a super::DailyKey, totals: &super::DailyTotals) -> Vec<Param<'a>> {
    vec![
        Param::str(&key.day),
        Param::str(&key.key_id),
        Param::str(&key.team_id),
        Param::str(&key.model),
        Param::str(&key.provider),
        Param::int(totals.requests),
        Param::int(totals.errors),
        Param::int(totals.prompt_tokens),
        Param::int(totals.completion_tokens),
        Param::int(totals.cached_tokens),
        Param::int(totals.cache_write_tokens),
        Param::int(totals.reasoning_tokens),
        Param::int(totals.cost_nanos),
    ]
}

pub(super) const SPEND_UPSERT: &str = "INSERT INTO spend (subject, hour, cost_nanos) VALUES ($1, $2, $3) \
     ON CONFLICT (subject, hour) DO UPDATE SET cost_nanos = spend.cost_nanos + excluded.cost_nanos";

// The casts: PostgreSQL's SUM of a BIGINT is a NUMERIC, which we decode as nothing else.
pub(super) const SPEND_SINCE: &str = "SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost_nanos FROM spend \
     WHERE subject = $1 AND hour >= $2";

pub(super) const PURGE_LEDGER: &str = "DELETE FROM ledger WHERE ts_ms < $1";
pub(super) const PURGE_DAILY: &str = "DELETE FROM daily WHERE day < $1";
pub(super) const PURGE_SPEND: &str = "DELETE FROM spend WHERE hour < $1";

/// Numbers placeholders and collects the parameters of a WHERE clause built piece by piece.
struct Filters<'a> {
    clauses: Vec<String>,
    params: Vec<Param<'a>>,
}

impl<'a> Filters<'a> {
    fn new() -> Self {
        Filters { clauses: Vec::new(), params: Vec::new() }
    }

    /// `column op $n`; `column` and `op` are always literals from this file.
    fn add(&mut self, column: &'static str, op: &'static str, param: Param<'a>) {
        self.params.push(param);
        self.clauses.push(format!("{column} {op} ${}", self.params.len()));
    }

    fn text(&mut self, column: &'static str, op: &'static str, value: Option<&'a str>) {
        if let Some(value) = value {
            self.add(column, op, Param::str(value));
        }
    }

    fn int(&mut self, column: &'static str, op: &'static str, value: Option<i64>) {
        if let Some(value) = value {
            self.add(column, op, Param::int(value));
        }
    }

    fn where_clause(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!(" WHERE {}", self.clauses.join(" AND ")) }
    }
}

fn dimension_column(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Key => "key_id",
        Dimension::Team => "team_id",
        Dimension::Model => "model",
        Dimension::Provider => "provider",
        Dimension::Day => "day",
    }
}

/// The report's SELECT over `daily` and its parameters. Only column names from
/// [`dimension_column`] are spliced in; every value the caller gave is bound.
pub(super) fn report_sql(query: &ReportQuery) -> (String, Vec<Param<'_>>) {
    let mut filters = Filters::new();
    filters.text("day", ">=", query.from_day.as_deref());
    filters.text("day", "<=", query.to_day.as_deref());
    filters.text("key_id", "=", query.key_id.as_deref());
    filters.text("team_id", "=", query.team_id.as_deref());
    filters.text("model", "=", query.model.as_deref());
    filters.text("provider", "=", query.provider.as_deref());

    let columns: Vec<&str> = query.group_by.iter().map(|d| dimension_column(*d)).collect();
    let mut select: Vec<String> = columns.iter().enumerate().map(|(i, c)| format!("{c} AS g{i}")).collect();
    select.push("COUNT(*) AS n".into());
    for sum in [
        "requests",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_nanos",
    ] {
        select.push(format!("CAST(COALESCE(SUM({sum}), 0) AS BIGINT) AS {sum}"));
    }
    let mut sql = format!("SELECT {} FROM daily{}", select.join(", "), filters.where_clause());
    if !columns.is_empty() {
        let list = columns.join(", ");
        sql.push_str(&format!(" GROUP BY {list} ORDER BY {list}"));
    }
    (sql, filters.params)
}

/// Page sizes: 0 asks for the default.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// The request log's SELECT and its parameters. Only the filters given become clauses, so
/// the planner sees plain equalities it can match to an index (an `$1 IS NULL OR …` form
/// would hide them).
pub(super) fn requests_sql(query: &LedgerQuery) -> (String, Vec<Param<'_>>) {
    let mut filters = Filters::new();
    filters.text("key_id", "=", query.key_id.as_deref());
    filters.text("team_id", "=", query.team_id.as_deref());
    filters.text("model", "=", query.model.as_deref());
    filters.int("status", "=", query.status.map(i64::from));
    filters.int("ts_ms", ">=", query.since_ms);
    filters.int("ts_ms", "<", query.until_ms);
    filters.int("id", "<", query.before_id);
    let limit = match query.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let sql = format!(
        "SELECT id, {} FROM ledger{} ORDER BY id DESC LIMIT {limit}",
        LEDGER_COLUMNS.join(", "),
        filters.where_clause()
    );
    (sql, filters.params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_sql_splices_only_column_names() {
        let query = ReportQuery {
            group_by: vec![Dimension::Key, Dimension::Day],
            from_day: Some("2026-01-01".into()),
            key_id: Some("x'; DROP TABLE daily; --".into()),
            ..ReportQuery::default()
        };
        let (sql, params) = report_sql(&query);
        assert!(sql.contains("WHERE day >= $1 AND key_id = $2"), "{sql}");
        assert!(sql.ends_with("GROUP BY key_id, day ORDER BY key_id, day"), "{sql}");
        assert!(!sql.contains("DROP"));
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn requests_sql_caps_the_page() {
        let query = LedgerQuery { limit: 5000, before_id: Some(9), ..Default::default() };
        let (sql, params) = requests_sql(&query);
        assert!(sql.ends_with("WHERE id < $1 ORDER BY id DESC LIMIT 1000"), "{sql}");
        assert_eq!(params.len(), 1);
        let (sql, _) = requests_sql(&LedgerQuery::default());
        assert!(sql.ends_with("FROM ledger ORDER BY id DESC LIMIT 100"), "{sql}");
    }

    #[test]
    fn ledger_inserts_number_every_placeholder() {
        let sql = ledger_insert_sql(2, Marks::Dollar);
        assert!(sql.contains("($1, $2,"), "{sql}");
        assert!(sql.ends_with("$45, $46)"), "{sql}");
        let sql = ledger_insert_sql(2, Marks::Question);
        assert_eq!(sql.matches('?').count(), 46, "{sql}");
    }

    #[test]
    fn connect_errors_drop_the_password() {
        let error = connect_error("postgres://u:hunter2@db/x", "failed for postgres://u:hunter2@db/x");
        let message = error.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("postgres://u:***@db/x"), "{message}");
    }
}
