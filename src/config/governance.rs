//! The governance sections: `store:` (where keys, spend and the ledger live), `ledger:` (what
//! each request leaves behind and for how long), and keys and teams declared as code.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::Value;

use super::{Problems, de};
use crate::accounting::period::parse_day;
use crate::store::{Budget, KeyRecord, Limits, TeamRecord};

/// `store:`: the database behind keys, teams, spend and the ledger.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://…`; empty: no store (keys as code
    /// and the master key still work; nothing is recorded). Startup-only.
    #[serde(default)]
    pub url: String,
    /// How long a key read from the store is trusted before it is read again (in the
    /// background: the request is served from the cache meanwhile).
    #[serde(default = "default_key_cache", deserialize_with = "de::seconds")]
    pub key_cache_seconds: Duration,
    /// How long a request may wait for the store when its key is not cached; longer is 503.
    #[serde(default = "default_store_timeout", deserialize_with = "de::seconds")]
    pub timeout_seconds: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            key_cache_seconds: default_key_cache(),
            timeout_seconds: default_store_timeout(),
        }
    }
}

fn default_key_cache() -> Duration {
    Duration::from_secs(30)
}

fn default_store_timeout() -> Duration {
    Duration::from_secs(2)
}

/// `ledger:`: the record each request leaves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Records waiting to be written; when full, new ones are dropped (and counted), never
    /// waited for. Startup-only.
    #[serde(default = "default_queue", deserialize_with = "de::number")]
    pub queue_capacity: usize,
    /// Records written per transaction at most. Startup-only.
    #[serde(default = "default_batch", deserialize_with = "de::number")]
    pub batch_size: usize,
    /// Longest a record waits for its batch. Startup-only.
    #[serde(default = "default_flush", deserialize_with = "de::seconds")]
    pub flush_interval_seconds: Duration,
    /// Days the per-request rows are kept (0: for ever).
    #[serde(default = "default_retention", deserialize_with = "de::number")]
    pub retention_days: u32,
    /// Days the daily aggregates (spend reports) and hourly spend are kept (0: for ever).
    #[serde(default = "default_aggregate_retention", deserialize_with = "de::number")]
    pub aggregate_retention_days: u32,
    /// Keep request and response bodies in the ledger, with credentials redacted.
    #[serde(default)]
    pub bodies: bool,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            queue_capacity: default_queue(),
            batch_size: default_batch(),
            flush_interval_seconds: default_flush(),
            retention_days: default_retention(),
            aggregate_retention_days: default_aggregate_retention(),
            bodies: false,
        }
    }
}

fn default_queue() -> usize {
    65_536
}

fn default_batch() -> usize {
    512
}

fn default_flush() -> Duration {
    Duration::from_millis(200)
}

fn default_retention() -> u32 {
    90
}

fn default_aggregate_retention() -> u32 {
    800
}

/// Limits as written in YAML, for a key or a team.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    id: String,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default, deserialize_with = "de::optional_number")]
    rpm: Option<u32>,
    #[serde(default, deserialize_with = "de::optional_number")]
    tpm: Option<u64>,
    #[serde(default, deserialize_with = "de::optional_number")]
    max_parallel: Option<u32>,
    #[serde(default)]
    budget: Option<Budget>,
    #[serde(default)]
    expires_at: Option<Value>,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

impl RawPrincipal {
    fn limits(&self) -> Limits {
        Limits { rpm: self.rpm, tpm: self.tpm, max_parallel: self.max_parallel, budget: self.budget }
    }
}

/// Reads `keys:` (virtual keys as code: each with its id and the SHA-256 of the whole key)
/// and `teams:`.
pub(super) fn parse_principals(
    keys: Option<Value>,
    teams: Option<Value>,
    problems: &mut Problems,
) -> (Vec<KeyRecord>, Vec<TeamRecord>) {
    let mut team_records = Vec::new();
    for (path, raw) in entries(teams, "teams", problems) {
        for (field, given) in [("hash", raw.hash.is_some()), ("team", raw.team.is_some())] {
            if given {
                problems.push(format!("{path}.{field}"), "is a key setting, not a team's");
            }
        }
        if raw.expires_at.is_some() {
            problems.push(format!("{path}.expires_at"), "is a key setting, not a team's");
        }
        team_records.push(TeamRecord {
            id: raw.id.clone(),
            alias: raw.alias.clone(),
            models: raw.models.clone(),
            limits: raw.limits(),
            blocked: raw.blocked,
            metadata: raw.metadata.clone().unwrap_or_else(|| serde_json::json!({})),
            created_at: 0,
            updated_at: 0,
        });
    }
    let mut key_records = Vec::new();
    for (path, raw) in entries(keys, "keys", problems) {
        // The id is the part of the key between `sk-lp-` and `_`: no `_` or `.` in it.
        if crate::keys::valid_id(&raw.id) && !raw.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            problems.push(
                format!("{path}.id"),
                "a key id is A-Z a-z 0-9 and - only (it sits between sk-lp- and _ in the key)",
            );
        }
        let hash = raw.hash.as_deref().unwrap_or_default().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            problems.push(
                format!("{path}.hash"),
                "must be the hex SHA-256 of the whole key (`llm-proxy keys generate` prints one)",
            );
        }
        let expires_at = match &raw.expires_at {
            None => None,
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(day)) => {
                let at = parse_day(day);
                if at.is_none() {
                    problems
                        .push(format!("{path}.expires_at"), "must be a date (YYYY-MM-DD) or Unix seconds");
                }
                at
            }
            Some(_) => {
                problems.push(format!("{path}.expires_at"), "must be a date (YYYY-MM-DD) or Unix seconds");
                None
            }
        };
        key_records.push(KeyRecord {
            id: raw.id.clone(),
            alias: raw.alias.clone(),
            team_id: raw.team.clone(),
            secret_hash: hash,
            previous_hash: None,
            previous_expires_at: None,
            models: raw.models.clone(),
            limits: raw.limits(),
            expires_at,
            blocked: raw.blocked,
            metadata: raw.metadata.clone().unwrap_or_else(|| serde_json::json!({})),
            created_at: 0,
            updated_at: 0,
        });
    }
    (key_records, team_records)
}

/// The entries of a list section, decoded, with checks common to keys and teams.
fn entries(section: Option<Value>, name: &str, problems: &mut Problems) -> Vec<(String, RawPrincipal)> {
    let items = match section {
        None => return Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(_) => {
            problems.push(name, "must be a list of entries, each with an `id`");
            return Vec::new();
        }
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("{name}[{i}]");
        let Some(raw) = problems.decode::<RawPrincipal>(&path, item) else { continue };
        if !crate::keys::valid_id(&raw.id) {
            problems.push(format!("{path}.id"), "must be 1 to 64 of A-Z a-z 0-9 . _ -");
        }
        if !seen.insert(raw.id.clone()) {
            problems.push(format!("{path}.id"), format!("`{}` is declared twice", raw.id));
        }
        for (field, zero) in [
            ("rpm", raw.rpm == Some(0)),
            ("tpm", raw.tpm == Some(0)),
            ("budget", raw.budget.is_some_and(|b| b.hard_usd.is_none() && b.soft_usd.is_none())),
        ] {
            if zero {
                problems.push(format!("{path}.{field}"), "sets no limit: leave it out for none");
            }
        }
        if raw.metadata.as_ref().is_some_and(|m| !m.is_object()) {
            problems.push(format!("{path}.metadata"), "must be a mapping");
        }
        out.push((path, raw));
    }
    out
}

/// Checks `store:` and `ledger:`.
pub(super) fn validate_store(store: &StoreConfig, ledger: &LedgerConfig, problems: &mut Problems) {
    let url = store.url.trim();
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !url.is_empty() && !known.iter().any(|scheme| url.starts_with(scheme)) {
        problems.push(
            "store.url",
            format!(
                "{:?} is not a store URL: use sqlite://PATH, sqlite::memory: or postgres://…",
                crate::store::redact_url(url)
            ),
        );
    }
    if store.timeout_seconds.is_zero() {
        problems.push("store.timeout_seconds", "must be greater than 0");
    }
    for (field, value) in [("queue_capacity", ledger.queue_capacity), ("batch_size", ledger.batch_size)] {
        if value == 0 {
            problems.push(format!("ledger.{field}"), "must be at least 1");
        }
    }
}

/// Checks that every key's team is declared (keys as code refer to teams as code).
pub(super) fn validate_principals(keys: &[KeyRecord], teams: &[TeamRecord], problems: &mut Problems) {
    for (i, key) in keys.iter().enumerate() {
        if let Some(team) = &key.team_id
            && !teams.iter().any(|t| &t.id == team)
        {
            problems.push(format!("keys[{i}].team"), format!("`{team}` is not declared under `teams:`"));
        }
    }
}
