//! The embedded backend: one SQLite file in WAL mode (readers never wait for the writer), or
//! an in-memory database for tests and throwaway runs.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::Executor;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::{self, Migration, bind_all, conflict, connect_error, map_err};
use super::{
    Batch, KeyRecord, LedgerQuery, LedgerRow, ReportQuery, ReportRow, Store, StoreError, TeamRecord,
};
use crate::accounting::Money;
use crate::accounting::period::day_of;

const MIGRATIONS: &[Migration] = &[(1, include_str!("migrations/sqlite/0001_init.sql"))];

const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)";

/// How long a writer waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers in parallel; writes take turns on the file's one write lock anyway.
const FILE_CONNECTIONS: u32 = 4;

// Every write transaction starts with BEGIN IMMEDIATE: a deferred one that reads first and
// then writes cannot wait for the lock (SQLite answers SQLITE_BUSY at once rather than risk a
// deadlock), while IMMEDIATE takes the lock up front and so honours the busy timeout.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// A [`Store`] in SQLite: `sqlite://PATH` (the file and its directory are created if
/// missing) or `sqlite::memory:`.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if need be) the database `url` names. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| connect_error(url, e))?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);
        let memory = is_in_memory(url);
        let (options, pool) = if memory {
            // Each connection to `:memory:` is its own database unless they share a cache,
            // and the database is gone once its last connection closes: one connection,
            // kept for good.
            let pool = SqlitePoolOptions::new().max_connections(1).idle_timeout(None).max_lifetime(None);
            (options, pool)
        } else {
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                // Blocking, but once at startup, before anything else runs.
                std::fs::create_dir_all(dir).map_err(|e| connect_error(url, e))?;
            }
            let pool = SqlitePoolOptions::new().max_connections(FILE_CONNECTIONS);
            (options.journal_mode(SqliteJournalMode::Wal), pool)
        };
        let pool = pool.acquire_timeout(BUSY_TIMEOUT);
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            match pool.clone().connect_with(options.clone()).await {
                Ok(pool) => return Ok(SqliteStore { pool }),
                // Turning a new file to WAL needs it alone for a moment, and SQLite answers a
                // second opener that already holds a read lock SQLITE_BUSY at once instead of
                // waiting (waiting could deadlock). The switch is over in milliseconds and
                // happens once per file: try again.
                Err(error) if is_busy(&error) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(error) => return Err(connect_error(url, error)),
            }
        }
    }
}

/// SQLITE_BUSY or one of its extended codes (the low byte is the primary code).
fn is_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else { return false };
    db.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == 5)
}

/// Whether sqlx will open `url` as an in-memory database (`sqlite::memory:`,
/// `sqlite://:memory:`, `?mode=memory`).
fn is_in_memory(url: &str) -> bool {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|param| param == "mode=memory")
}

// === impl Store ===

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        for &(version, migration) in MIGRATIONS {
            // The write lock taken by BEGIN IMMEDIATE serialises migrators across processes;
            // the version is checked under it.
            let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
            tx.execute(sqlx::raw_sql(CREATE_MIGRATIONS)).await.map_err(map_err)?;
            let applied = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .is_some();
            if !applied {
                // Through `Executor`: `RawSql::execute`'s own future is not `Send`.
                tx.execute(sqlx::raw_sql(migration)).await.map_err(map_err)?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    .bind(sql::unix_now())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        bind_all(sqlx::query(&sql::KEY_INSERT), sql::key_params(key)?)
            .execute(&self.pool)
            .await
            .map_err(conflict(format!("key {}", key.id)))?;
        Ok(())
    }

    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(&sql::KEY_GET).bind(id).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(sql::key_from_row).transpose()
    }

    async fn list_keys(&self, team_id: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let query = match team_id {
            Some(team_id) => sqlx::query(&sql::KEY_LIST_TEAM).bind(team_id),
            None => sqlx::query(&sql::KEY_LIST),
        };
        let rows = query.fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(sql::key_from_row).collect()
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let done = bind_all(sqlx::query(&sql::KEY_UPDATE), sql::key_params(key)?)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::KEY_DELETE).bind(id).execute(&self.pool).await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn insert_team(&self, team: &TeamRecord) -> Result<(), StoreError> {
        bind_all(sqlx::query(&sql::TEAM_INSERT), sql::team_params(team)?)
            .execute(&self.pool)
            .await
            .map_err(conflict(format!("team {}", team.id)))?;
        Ok(())
    }

    async fn get_team(&self, id: &str) -> Result<Option<TeamRecord>, StoreError> {
        let row = sqlx::query(&sql::TEAM_GET).bind(id).fetch_optional(&self.pool).await.map_err(map_err)?;
        row.as_ref().map(sql::team_from_row).transpose()
    }

    async fn list_teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        let rows = sqlx::query(&sql::TEAM_LIST).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(sql::team_from_row).collect()
    }

    async fn update_team(&self, team: &TeamRecord) -> Result<bool, StoreError> {
        let done = bind_all(sqlx::query(&sql::TEAM_UPDATE), sql::team_params(team)?)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_team(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(sql::TEAM_DELETE).bind(id).execute(&self.pool).await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn write_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.rows.is_empty() && batch.daily.is_empty() && batch.spend.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        for chunk in batch.rows.chunks(sql::LEDGER_CHUNK) {
            let insert = sql::ledger_insert(chunk.len(), sql::Marks::Question);
            bind_all(sqlx::query(&insert), sql::ledger_params(chunk))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for (key, totals) in &batch.daily {
            bind_all(sqlx::query(sql::DAILY_UPSERT), sql::daily_params(key, totals))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for ((subject, hour), cost_nanos) in &batch.spend {
            sqlx::query(sql::SPEND_UPSERT)
                .bind(subject)
                .bind(hour)
                .bind(cost_nanos)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn spend_since(&self, subject: &str, since: i64) -> Result<Money, StoreError> {
        let row = sqlx::query(sql::SPEND_SINCE)
            .bind(subject)
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(Money(sql::Columns::int(&row, "cost_nanos")?))
    }

    async fn report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, StoreError> {
        let (select, params) = sql::report_sql(query);
        let rows = bind_all(sqlx::query(&select), params).fetch_all(&self.pool).await.map_err(map_err)?;
        sql::report_rows(&rows, query.group_by.len())
    }

    async fn requests(&self, query: &LedgerQuery) -> Result<Vec<LedgerRow>, StoreError> {
        let (select, params) = sql::requests_sql(query);
        let rows = bind_all(sqlx::query(&select), params).fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(sql::ledger_from_row).collect()
    }

    async fn purge(&self, before_ms: i64, aggregates_before: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        let deleted =
            sqlx::query(sql::PURGE_LEDGER).bind(before_ms).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query(sql::PURGE_DAILY)
            .bind(day_of(aggregates_before))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(sql::PURGE_SPEND).bind(aggregates_before).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(deleted.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://:memory:"));
        assert!(is_in_memory("sqlite://x.db?mode=memory&cache=shared"));
        assert!(!is_in_memory("sqlite://data/x.db"));
        assert!(!is_in_memory("sqlite:///var/lib/llm-proxy/memory.db"));
    }
}
