//! A store pinned to one runtime. The proxy serves on a runtime per core, and a database
//! pool's connections belong to the runtime that opened them; so the binary opens the store
//! on a runtime of its own and every call, from whichever core, is run there.

use std::sync::Arc;

use tokio::runtime::Handle;

use super::{
    Batch, KeyRecord, LedgerQuery, LedgerRow, ReportQuery, ReportRow, Store, StoreError, TeamRecord,
};
use crate::accounting::Money;

/// `store`, with every call run on `runtime`.
pub fn on_runtime(store: Arc<dyn Store>, runtime: Handle) -> Arc<dyn Store> {
    Arc::new(Pinned { store, runtime })
}

struct Pinned {
    store: Arc<dyn Store>,
    runtime: Handle,
}

impl Pinned {
    async fn run<T, F>(&self, call: impl FnOnce(Arc<dyn Store>) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let future = call(Arc::clone(&self.store));
        self.runtime
            .spawn(future)
            .await
            .unwrap_or_else(|error| Err(StoreError::Unavailable(format!("store task failed: {error}"))))
    }
}

#[async_trait::async_trait]
impl Store for Pinned {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.run(|s| async move { s.migrate().await }).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|s| async move { s.ping().await }).await
    }
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let key = key.clone();
        self.run(|s| async move { s.insert_key(&key).await }).await
    }
    async fn get_key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let id = id.to_string();
        self.run(|s| async move { s.get_key(&id).await }).await
    }
    async fn list_keys(&self, team_id: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        let team = team_id.map(str::to_string);
        self.run(|s| async move { s.list_keys(team.as_deref()).await }).await
    }
    async fn update_key(&self, key: &KeyRecord) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(|s| async move { s.update_key(&key).await }).await
    }
    async fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(|s| async move { s.delete_key(&id).await }).await
    }
    async fn insert_team(&self, team: &TeamRecord) -> Result<(), StoreError> {
        let team = team.clone();
        self.run(|s| async move { s.insert_team(&team).await }).await
    }
    async fn get_team(&self, id: &str) -> Result<Option<TeamRecord>, StoreError> {
        let id = id.to_string();
        self.run(|s| async move { s.get_team(&id).await }).await
    }
    async fn list_teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        self.run(|s| async move { s.list_teams().await }).await
    }
    async fn update_team(&self, team: &TeamRecord) -> Result<bool, StoreError> {
        let team = team.clone();
        self.run(|s| async move { s.update_team(&team).await }).await
    }
    async fn delete_team(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(|s| async move { s.delete_team(&id).await }).await
    }
    async fn write_batch(&self, batch: &Batch) -> Result<(), StoreError> {
        let batch = batch.clone();
        self.run(|s| async move { s.write_batch(&batch).await }).await
    }
    async fn spend_since(&self, subject: &str, since: i64) -> Result<Money, StoreError> {
        let subject = subject.to_string();
        self.run(|s| async move { s.spend_since(&subject, since).await }).await
    }
    async fn report(&self, query: &ReportQuery) -> Result<Vec<ReportRow>, StoreError> {
        let query = query.clone();
        self.run(|s| async move { s.report(&query).await }).await
    }
    async fn requests(&self, query: &LedgerQuery) -> Result<Vec<LedgerRow>, StoreError> {
        let query = query.clone();
        self.run(|s| async move { s.requests(&query).await }).await
    }
    async fn purge(&self, before_ms: i64, aggregates_before: i64) -> Result<u64, StoreError> {
        self.run(|s| async move { s.purge(before_ms, aggregates_before).await }).await
    }
}
