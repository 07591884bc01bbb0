//! Finding the key a client presented: keys as code first, then the store through a cache.
//!
//! A cached key is trusted for `store.key_cache_seconds`; after that the next request is
//! still served from the cache while one background read refreshes it, so the store is never
//! waited on for a key already seen, and a store that is down leaves known keys working. A key
//! changed through this instance (blocked, rotated, deleted) is dropped from its cache at
//! once; other instances see the change within the cache time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::{KeyRecord, Store, StoreError, TeamRecord};

/// Why a presented virtual key is not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No such key, or the secret does not match.
    #[error("Incorrect API key provided.")]
    Unknown,
    /// Past its `expires_at`.
    #[error("This API key has expired.")]
    Expired,
    /// Blocked by an operator.
    #[error("This API key is blocked.")]
    Blocked,
    /// Its team is blocked.
    #[error("This API key's team is blocked.")]
    TeamBlocked,
    /// The key is not cached and the store cannot be asked.
    #[error("The API key could not be checked: the key store is unavailable. Retry shortly.")]
    Unavailable,
}

impl KeyError {
    /// Its label in logs and `llm_proxy_key_refusals_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Blocked => "blocked",
            Self::TeamBlocked => "team_blocked",
            Self::Unavailable => "store_unavailable",
        }
    }
}

/// A key let in, with its team.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key.
    pub key: Arc<KeyRecord>,
    /// Its team, when it has one that exists.
    pub team: Option<Arc<TeamRecord>>,
}

/// Keys and teams declared in the config file (`keys:`, `teams:`), by id.
#[derive(Debug, Default)]
pub struct CodeKeys {
    keys: HashMap<String, Arc<KeyRecord>>,
    teams: HashMap<String, Arc<TeamRecord>>,
}

impl CodeKeys {
    /// The config's keys and teams.
    pub fn new(keys: &[KeyRecord], teams: &[TeamRecord]) -> Self {
        Self {
            keys: keys.iter().map(|k| (k.id.clone(), Arc::new(k.clone()))).collect(),
            teams: teams.iter().map(|t| (t.id.clone(), Arc::new(t.clone()))).collect(),
        }
    }

    /// Whether a key or team id is declared as code (the admin API will not shadow it).
    pub fn declares(&self, key_id: Option<&str>, team_id: Option<&str>) -> bool {
        key_id.is_some_and(|id| self.keys.contains_key(id))
            || team_id.is_some_and(|id| self.teams.contains_key(id))
    }

    /// The keys declared as code.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<KeyRecord>> {
        self.keys.values()
    }

    /// The teams declared as code.
    pub fn teams(&self) -> impl Iterator<Item = &Arc<TeamRecord>> {
        self.teams.values()
    }
}

/// A cached read: what the store said (`None`: no such record) and when.
struct Cached<T> {
    record: Option<Arc<T>>,
    fetched: Instant,
    refreshing: AtomicBool,
}

type Cache<T> = moka::future::Cache<String, Arc<Cached<T>>>;

/// The store's keys and teams, cached.
pub struct Keyring {
    store: Option<Arc<dyn Store>>,
    /// Bumped by every `forget_*`: a read that started before a change does not put what it
    /// read back into the cache after it.
    changes: Arc<AtomicU64>,
    keys: Cache<KeyRecord>,
    teams: Cache<TeamRecord>,
    fresh_for: Duration,
    timeout: Duration,
}

/// Most keys and teams cached at once; past it the least recently used are read again.
const CACHED: u64 = 1_000_000;

impl Keyring {
    /// A keyring over `store` (none: only keys as code exist).
    pub fn new(store: Option<Arc<dyn Store>>, fresh_for: Duration, timeout: Duration) -> Self {
        Self { store, changes: Arc::default(), keys: cache(), teams: cache(), fresh_for, timeout }
    }

    /// The store, if there is one.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    /// Checks a presented virtual key (`id` is [`super::id_of`] of it) at `now` (Unix
    /// seconds): the key's current secret, or its previous one within the rotation grace.
    pub async fn resolve(
        &self,
        code: &CodeKeys,
        id: &str,
        presented: &str,
        now: i64,
    ) -> Result<Principal, KeyError> {
        let key = match code.keys.get(id) {
            Some(key) => Arc::clone(key),
            None => self.key(id).await?.ok_or(KeyError::Unknown)?,
        };
        let current = super::matches(presented, &key.secret_hash);
        let previous = || match (&key.previous_hash, key.previous_expires_at) {
            (Some(hash), Some(until)) => now < until && super::matches(presented, hash),
            _ => false,
        };
        if !current && !previous() {
            return Err(KeyError::Unknown);
        }
        if key.expires_at.is_some_and(|at| now >= at) {
            return Err(KeyError::Expired);
        }
        if key.blocked {
            return Err(KeyError::Blocked);
        }
        let team = match key.team_id.as_deref() {
            None => None,
            Some(team) => match code.teams.get(team) {
                Some(team) => Some(Arc::clone(team)),
                None => self.team(team).await?,
            },
        };
        if team.as_ref().is_some_and(|t| t.blocked) {
            return Err(KeyError::TeamBlocked);
        }
        Ok(Principal { key, team })
    }

    async fn key(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, KeyError> {
        let Some(store) = &self.store else { return Ok(None) };
        let store = Arc::clone(store);
        self.read(&self.keys, id, move |id| {
            let store = Arc::clone(&store);
            async move { store.get_key(&id).await }
        })
        .await
    }

    async fn team(&self, id: &str) -> Result<Option<Arc<TeamRecord>>, KeyError> {
        let Some(store) = &self.store else { return Ok(None) };
        let store = Arc::clone(store);
        self.read(&self.teams, id, move |id| {
            let store = Arc::clone(&store);
            async move { store.get_team(&id).await }
        })
        .await
    }

    /// A record from the cache, refreshed in the background once stale; read from the store
    /// (once, however many requests wait for it) when not cached.
    async fn read<T, F, Fut>(&self, cache: &Cache<T>, id: &str, fetch: F) -> Result<Option<Arc<T>>, KeyError>
    where
        T: Send + Sync + 'static,
        F: Fn(String) -> Fut + Clone + Send + 'static,
        Fut: std::future::Future<Output = Result<Option<T>, StoreError>> + Send + 'static,
    {
        let changes_before = self.changes.load(Ordering::Acquire);
        if let Some(cached) = cache.get(id).await {
            if cached.fetched.elapsed() >= self.fresh_for && !cached.refreshing.swap(true, Ordering::AcqRel) {
                let (cache, id, fetch, timeout) =
                    (cache.clone(), id.to_string(), fetch.clone(), self.timeout);
                let changes = Arc::clone(&self.changes);
                tokio::spawn(async move {
                    match tokio::time::timeout(timeout, fetch(id.clone())).await {
                        Ok(Ok(record)) if changes.load(Ordering::Acquire) == changes_before => {
                            cache.insert(id, Arc::new(fresh(record))).await
                        }
                        // Changed meanwhile: what was read may be older than the change.
                        Ok(Ok(_)) => cache.invalidate(&id).await,
                        // Still the last word we have: keep serving it, try again next time.
                        _ => {
                            if let Some(stale) = cache.get(&id).await {
                                stale.refreshing.store(false, Ordering::Release);
                            }
                        }
                    }
                });
            }
            return Ok(cached.record.clone());
        }
        let timeout = self.timeout;
        let loaded = cache
            .try_get_with(id.to_string(), async move {
                match tokio::time::timeout(timeout, fetch(id.to_string())).await {
                    Ok(Ok(record)) => Ok(Arc::new(fresh(record))),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err("timed out".to_string()),
                }
            })
            .await;
        match loaded {
            Ok(cached) => {
                if self.changes.load(Ordering::Acquire) != changes_before {
                    // Read before a change made here: serve it to this request (it began
                    // first), but do not keep it.
                    cache.invalidate(id).await;
                }
                Ok(cached.record.clone())
            }
            Err(reason) => {
                tracing::warn!(reason = %reason, "a key could not be read from the store; the request is refused with 503");
                Err(KeyError::Unavailable)
            }
        }
    }

    /// Drops a key from the cache (it was changed here): the next request reads it again.
    pub async fn forget_key(&self, id: &str) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.keys.invalidate(id).await;
    }

    /// Drops a team from the cache.
    pub async fn forget_team(&self, id: &str) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.teams.invalidate(id).await;
    }
}

fn cache<T: Send + Sync + 'static>() -> Cache<T> {
    moka::future::Cache::builder().max_capacity(CACHED).time_to_idle(Duration::from_secs(3600)).build()
}

fn fresh<T>(record: Option<T>) -> Cached<T> {
    Cached { record: record.map(Arc::new), fetched: Instant::now(), refreshing: AtomicBool::new(false) }
}
