//! The shared backend: PostgreSQL, for several instances that keep one set of keys, budgets
//! and one ledger.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};

use super::sql::{self, Migration, bind_all, conflict, connect_error, map_err};
use super::{
    Batch, KeyRecord, LedgerQuery, LedgerRow, ReportQuery, ReportRow, Store, StoreError, TeamRecord,
};
use crate::accounting::Money;
use crate::accounting::period::day_of;

const MIGRATIONS: &[Migration] = &[(1, include_str!("migrations/postgres/0001_init.sql"))];

const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// The advisory lock migrators take (any constant, the same in every instance):
/// "llmproxy" in ASCII.
const MIGRATION_LOCK: i64 = 0x6c6c_6d70_726f_7879;

/// How long a query waits for a pooled connection: a down database fails requests for the
/// admin API after this, instead of hanging them.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const MAX_CONNECTIONS: u32 = 8;

/// A [`Store`] in PostgreSQL (`postgres://` or `postgresql://` URLs, as libpq reads them).
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database `url` names. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| connect_error(url, e))?;
        // The pool retries a refused connection until its acquire timeout, right for a blip
        // at run time but it would hide a wrong URL or a down server at startup: one direct
        // connection first fails at once, with the real reason.
        let probe = tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| connect_error(url, format!("no answer within {ACQUIRE_TIMEOUT:?}")))?
            .map_err(|e| connect_error(url, e))?;
        // Only a courtesy to the server: the probe has answered.
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(PostgresStore { pool })
    }
}

// === impl Store ===

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        for &(version, migration) in MIGRATIONS {
            let mut tx = self.pool.begin().await.map_err(map_err)?;
            // Instances starting together queue here; the lock is released with the
            // transaction. It also covers the CREATE TABLE IF NOT EXISTS, which is not safe
            // to race in PostgreSQL (two creators can both pass the check).
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for chunk in batch.rows.chunks(sql::LEDGER_CHUNK) {
            let insert = sql::ledger_insert(chunk.len(), sql::Marks::Dollar);
            bind_all(sqlx::query(&insert), sql::ledger_params(chunk))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        // Row locks are taken here, one upsert at a time in the batch's sorted order, so two
        // instances' batches wait for each other instead of deadlocking.
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
