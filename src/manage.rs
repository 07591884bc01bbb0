//! What an operator can do to virtual keys, teams, spend and the request log: one set of
//! plain async functions over a [`Store`], behind both the HTTP admin API
//! (`server::manage`) and the CLI (`cli`), so validation, errors and the JSON shapes are the
//! same whichever way an operator comes in.
//!
//! Keys and teams declared in the config file (keys as code) are listed and read here but
//! never changed: [`ManageError::ReadOnly`] says to change the file. Everything written is
//! validated first, with the field at fault named ([`ManageError::Invalid`]).
//!
//! Patches follow JSON merge patch (RFC 7386): a field left out stays as it is, `null`
//! clears it, a value replaces it; `budget` merges field by field, `metadata` is replaced
//! whole (it is the caller's, returned as given).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::accounting::Money;
use crate::accounting::period::{Period, now, parse_day};
use crate::keys;
use crate::keys::ring::CodeKeys;
use crate::store::{
    Budget, Dimension, KeyRecord, LedgerQuery, LedgerRow, Limits, ReportQuery, ReportRow, Store, StoreError,
    TeamRecord,
};

/// Largest `metadata` accepted, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Longest `alias` accepted, in bytes.
pub const MAX_ALIAS_BYTES: usize = 256;
/// The rotation grace when none is given: a day for clients to pick up the new key.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);
/// Request-log rows per page when no `limit` is given.
pub const DEFAULT_PAGE: u32 = 100;
/// Most request-log rows per page (the store's own cap).
pub const MAX_PAGE: u32 = 1000;

/// Keys or teams, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A virtual key.
    Key,
    /// A team.
    Team,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Key => "key",
            Kind::Team => "team",
        }
    }

    fn section(self) -> &'static str {
        match self {
            Kind::Key => "keys",
            Kind::Team => "teams",
        }
    }
}

/// Why an admin operation was refused. Messages name ids and fields, never a secret, a hash
/// or a database URL.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No key or team has this id.
    #[error("No {} `{id}` exists.", kind.noun())]
    NotFound {
        /// Key or team.
        kind: Kind,
        /// The id asked for.
        id: String,
    },
    /// A field's value is not acceptable.
    #[error("Invalid `{param}`: {message}")]
    Invalid {
        /// The field at fault, as a JSON path (`budget.hard_usd`) or a query parameter.
        param: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The change contradicts what is there (an id taken, a team still in use).
    #[error("{0}")]
    Conflict(String),
    /// The key or team is declared in the config file: the API does not shadow it.
    #[error(
        "The {} `{id}` is declared in the config file (`{}:`) and cannot be changed through the admin API; \
         change the file and reload.",
        kind.noun(),
        kind.section()
    )]
    ReadOnly {
        /// Key or team.
        kind: Kind,
        /// Its id.
        id: String,
    },
    /// No store is configured, and this needs one.
    #[error(
        "No store is configured: set `store.url` in the config (e.g. sqlite://data/llm-proxy.db) to manage \
         keys, teams, spend and the request log. Keys and teams declared in the config file are listed without one."
    )]
    NoStore,
    /// The store failed; the message is generic, the cause is in [`ManageError::source_detail`].
    #[error("{}", store_message(.0))]
    Store(StoreError),
    /// The operating system's random number generator failed (no key could be minted).
    #[error("No key could be minted: the system's random number generator failed.")]
    Entropy,
}

fn store_message(error: &StoreError) -> &'static str {
    match error {
        StoreError::Unavailable(_) => "The store is unavailable; retry shortly.",
        StoreError::Conflict(_) => "A record with this id already exists.",
        StoreError::Corrupt(_) => "The store holds a record that cannot be read; see the proxy's log.",
        StoreError::UnsupportedUrl(_) => "The store URL names no supported backend; see the proxy's log.",
    }
}

impl From<StoreError> for ManageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => ManageError::Conflict(format!("{what} already exists.")),
            other => ManageError::Store(other),
        }
    }
}

impl ManageError {
    fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ManageError::Invalid { param: param.into(), message: message.into() }
    }

    /// The store's own description of a store failure, for the log or an operator's terminal
    /// (the store promises it holds no password).
    pub fn source_detail(&self) -> Option<String> {
        match self {
            ManageError::Store(error) => Some(error.to_string()),
            _ => None,
        }
    }
}

type Result<T, E = ManageError> = std::result::Result<T, E>;

// === inputs ===

/// A field of a patch: left out (`None`), `null` (`Some(None)`), or a value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A point in time as written: Unix seconds, or a day (`YYYY-MM-DD`, its 00:00 UTC).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Moment {
    /// Unix seconds.
    Unix(i64),
    /// `YYYY-MM-DD`, or Unix seconds as text.
    Text(String),
}

/// A length of time as written: seconds, or text such as `30d`, `12h`, `90m`, `45s`, `2w`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Span {
    /// Seconds.
    Seconds(u64),
    /// `30d`, `12h`, `90m`, `45s`, `2w`, or seconds as text.
    Text(String),
}

/// A budget as written; every field optional so a patch can change one (`hard_usd` and
/// `soft_usd` take `null` to clear). A new budget's period is `monthly` unless given.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    /// Refuse requests once spend reaches this many dollars.
    #[serde(default, deserialize_with = "nullable")]
    pub hard_usd: Option<Option<f64>>,
    /// Warn once spend reaches this many dollars.
    #[serde(default, deserialize_with = "nullable")]
    pub soft_usd: Option<Option<f64>>,
    /// `daily`, `weekly`, `monthly`, `total`, or a rolling window such as `24h`, `30d`.
    #[serde(default)]
    pub period: Option<String>,
}

/// A new virtual key (`POST /admin/keys`, `keys create`). Its id and secret are minted.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A name people recognise.
    #[serde(default)]
    pub alias: Option<String>,
    /// The team whose limits also apply; it must exist.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Models it may call (exact names or `*` globs); none or empty is every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// Spend allowed per period.
    #[serde(default)]
    pub budget: Option<BudgetInput>,
    /// When it stops working (in the future).
    #[serde(default)]
    pub expires_at: Option<Moment>,
    /// Or: how long from now it works.
    #[serde(default)]
    pub expires_in: Option<Span>,
    /// A JSON object, kept and returned as given.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Created blocked.
    #[serde(default)]
    pub blocked: bool,
}

/// A change to a key (`PATCH /admin/keys/{id}`, `keys update`): merge-patch semantics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// See [`NewKey::alias`].
    #[serde(default, deserialize_with = "nullable")]
    pub alias: Option<Option<String>>,
    /// See [`NewKey::team_id`]; `null` takes the key out of its team.
    #[serde(default, deserialize_with = "nullable")]
    pub team_id: Option<Option<String>>,
    /// See [`NewKey::models`]; `null` or `[]` is every model.
    #[serde(default, deserialize_with = "nullable")]
    pub models: Option<Option<Vec<String>>>,
    /// See [`NewKey::rpm`].
    #[serde(default, deserialize_with = "nullable")]
    pub rpm: Option<Option<u32>>,
    /// See [`NewKey::tpm`].
    #[serde(default, deserialize_with = "nullable")]
    pub tpm: Option<Option<u64>>,
    /// See [`NewKey::max_parallel`].
    #[serde(default, deserialize_with = "nullable")]
    pub max_parallel: Option<Option<u32>>,
    /// Merged into the key's budget field by field; `null` removes the budget.
    #[serde(default, deserialize_with = "nullable")]
    pub budget: Option<Option<BudgetInput>>,
    /// When it stops working; a time already past expires the key at once.
    #[serde(default, deserialize_with = "nullable")]
    pub expires_at: Option<Option<Moment>>,
    /// Or: how long from now it works.
    #[serde(default)]
    pub expires_in: Option<Span>,
    /// Replaces the metadata whole; `null` empties it.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Option<Option<Value>>,
    /// Blocks or unblocks.
    #[serde(default)]
    pub blocked: Option<bool>,
}

impl From<NewKey> for KeyPatch {
    fn from(new: NewKey) -> Self {
        KeyPatch {
            alias: new.alias.map(Some),
            team_id: new.team_id.map(Some),
            models: new.models.map(Some),
            rpm: new.rpm.map(Some),
            tpm: new.tpm.map(Some),
            max_parallel: new.max_parallel.map(Some),
            budget: new.budget.map(Some),
            expires_at: new.expires_at.map(Some),
            expires_in: new.expires_in,
            metadata: new.metadata.map(Some),
            blocked: Some(new.blocked),
        }
    }
}

/// A new team (`POST /admin/teams`, `teams create`); its id is the operator's choice.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    /// `[A-Za-z0-9._-]`, 1 to 64 long.
    pub id: String,
    /// A name people recognise.
    #[serde(default)]
    pub alias: Option<String>,
    /// Models its keys may call; none or empty is every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Requests per minute over all its keys.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Tokens per minute over all its keys.
    #[serde(default)]
    pub tpm: Option<u64>,
    /// Requests in flight at once over all its keys.
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// Spend allowed per period over all its keys.
    #[serde(default)]
    pub budget: Option<BudgetInput>,
    /// A JSON object, kept and returned as given.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Created blocked (all its keys refused).
    #[serde(default)]
    pub blocked: bool,
}

/// A change to a team (`PATCH /admin/teams/{id}`, `teams update`): merge-patch semantics.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamPatch {
    /// See [`NewTeam::alias`].
    #[serde(default, deserialize_with = "nullable")]
    pub alias: Option<Option<String>>,
    /// See [`NewTeam::models`].
    #[serde(default, deserialize_with = "nullable")]
    pub models: Option<Option<Vec<String>>>,
    /// See [`NewTeam::rpm`].
    #[serde(default, deserialize_with = "nullable")]
    pub rpm: Option<Option<u32>>,
    /// See [`NewTeam::tpm`].
    #[serde(default, deserialize_with = "nullable")]
    pub tpm: Option<Option<u64>>,
    /// See [`NewTeam::max_parallel`].
    #[serde(default, deserialize_with = "nullable")]
    pub max_parallel: Option<Option<u32>>,
    /// Merged field by field; `null` removes the budget.
    #[serde(default, deserialize_with = "nullable")]
    pub budget: Option<Option<BudgetInput>>,
    /// Replaces the metadata whole; `null` empties it.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: Option<Option<Value>>,
    /// Blocks or unblocks.
    #[serde(default)]
    pub blocked: Option<bool>,
}

impl From<NewTeam> for TeamPatch {
    fn from(new: NewTeam) -> Self {
        TeamPatch {
            alias: new.alias.map(Some),
            models: new.models.map(Some),
            rpm: new.rpm.map(Some),
            tpm: new.tpm.map(Some),
            max_parallel: new.max_parallel.map(Some),
            budget: new.budget.map(Some),
            metadata: new.metadata.map(Some),
            blocked: Some(new.blocked),
        }
    }
}

// === validation ===

/// The fields keys and teams share, as a patch.
struct Common {
    alias: Option<Option<String>>,
    models: Option<Option<Vec<String>>>,
    rpm: Option<Option<u32>>,
    tpm: Option<Option<u64>>,
    max_parallel: Option<Option<u32>>,
    budget: Option<Option<BudgetInput>>,
    metadata: Option<Option<Value>>,
    blocked: Option<bool>,
}

/// The fields keys and teams share, in a record.
struct CommonMut<'a> {
    alias: &'a mut Option<String>,
    models: &'a mut Vec<String>,
    limits: &'a mut Limits,
    metadata: &'a mut Value,
    blocked: &'a mut bool,
}

fn apply_common(target: CommonMut<'_>, patch: Common) -> Result<()> {
    if let Some(alias) = patch.alias {
        if let Some(alias) = &alias
            && alias.len() > MAX_ALIAS_BYTES
        {
            return Err(ManageError::invalid("alias", format!("is longer than {MAX_ALIAS_BYTES} bytes")));
        }
        *target.alias = alias;
    }
    if let Some(models) = patch.models {
        let models = models.unwrap_or_default();
        if let Some(i) = models.iter().position(|m| m.trim().is_empty()) {
            return Err(ManageError::invalid(
                format!("models[{i}]"),
                "must be a model name or a glob, not empty",
            ));
        }
        *target.models = models;
    }
    if let Some(rpm) = patch.rpm {
        target.limits.rpm = at_least_one("rpm", rpm)?;
    }
    if let Some(tpm) = patch.tpm {
        target.limits.tpm = at_least_one("tpm", tpm)?;
    }
    if let Some(max_parallel) = patch.max_parallel {
        target.limits.max_parallel = at_least_one("max_parallel", max_parallel)?;
    }
    if let Some(budget) = patch.budget {
        target.limits.budget = match budget {
            None => None,
            Some(input) => Some(merge_budget(target.limits.budget, input)?),
        };
    }
    if let Some(metadata) = patch.metadata {
        *target.metadata = check_metadata(metadata.unwrap_or_else(|| json!({})))?;
    }
    if let Some(blocked) = patch.blocked {
        *target.blocked = blocked;
    }
    Ok(())
}

fn at_least_one<T: Copy + PartialOrd + From<u8>>(param: &str, value: Option<T>) -> Result<Option<T>> {
    match value {
        Some(n) if n < T::from(1) => {
            Err(ManageError::invalid(param, "must be at least 1 (leave it out, or null, for no limit)"))
        }
        other => Ok(other),
    }
}

fn merge_budget(existing: Option<Budget>, input: BudgetInput) -> Result<Budget> {
    let mut budget = existing.unwrap_or(Budget { hard_usd: None, soft_usd: None, period: Period::Monthly });
    let dollars = |param: &str, usd: Option<f64>| match usd {
        None => Ok(None),
        Some(usd) => Money::from_usd(usd).map(Some).ok_or_else(|| {
            ManageError::invalid(param, format!("{usd} is not an amount of dollars (a number, 0 or more)"))
        }),
    };
    if let Some(hard) = input.hard_usd {
        budget.hard_usd = dollars("budget.hard_usd", hard)?;
    }
    if let Some(soft) = input.soft_usd {
        budget.soft_usd = dollars("budget.soft_usd", soft)?;
    }
    if let Some(period) = input.period {
        budget.period = Period::try_from(period).map_err(|e| ManageError::invalid("budget.period", e))?;
    }
    if budget.hard_usd.is_none() && budget.soft_usd.is_none() {
        return Err(ManageError::invalid(
            "budget",
            "needs hard_usd or soft_usd (or both); set the budget to null to remove it",
        ));
    }
    if let (Some(hard), Some(soft)) = (budget.hard_usd, budget.soft_usd)
        && soft > hard
    {
        return Err(ManageError::invalid(
            "budget.soft_usd",
            format!("${soft} is above the hard budget ${hard}: the warning would never be seen"),
        ));
    }
    Ok(budget)
}

fn check_metadata(metadata: Value) -> Result<Value> {
    if !metadata.is_object() {
        return Err(ManageError::invalid("metadata", "must be a JSON object"));
    }
    let size = serde_json::to_vec(&metadata).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_METADATA_BYTES {
        return Err(ManageError::invalid(
            "metadata",
            format!("is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are kept"),
        ));
    }
    Ok(metadata)
}

/// Seconds in a length of time written as `30d`, `12h`, `90m`, `45s`, `2w` or plain seconds.
pub fn parse_span(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(per)
}

fn span_secs(param: &str, span: &Span) -> Result<u64> {
    match span {
        Span::Seconds(secs) => Ok(*secs),
        Span::Text(text) => parse_span(text).ok_or_else(|| {
            ManageError::invalid(
                param,
                format!("{text:?} is not a length of time: use 30d, 12h, 90m, 45s or seconds"),
            )
        }),
    }
}

/// Unix seconds of a [`Moment`].
fn moment_secs(param: &str, moment: &Moment) -> Result<i64> {
    let secs = match moment {
        Moment::Unix(secs) => Some(*secs),
        Moment::Text(text) => text.parse::<i64>().ok().or_else(|| parse_day(text)),
    };
    secs.filter(|s| *s >= 0)
        .ok_or_else(|| ManageError::invalid(param, "must be Unix seconds or a date (YYYY-MM-DD)"))
}

/// `expires_at`/`expires_in` of a patch: `None` leaves it, `Some(None)` clears it.
fn expiry(
    expires_at: Option<Option<Moment>>,
    expires_in: Option<Span>,
    now: i64,
    creating: bool,
) -> Result<Option<Option<i64>>> {
    match (expires_at, expires_in) {
        (Some(_), Some(_)) => {
            Err(ManageError::invalid("expires_in", "give expires_at or expires_in, not both"))
        }
        (None, Some(span)) => {
            let secs = span_secs("expires_in", &span)?;
            if secs == 0 {
                return Err(ManageError::invalid("expires_in", "must be more than 0 seconds"));
            }
            let secs = i64::try_from(secs).unwrap_or(i64::MAX);
            Ok(Some(Some(now.saturating_add(secs))))
        }
        (Some(Some(moment)), None) => {
            let at = moment_secs("expires_at", &moment)?;
            // A new key born expired is a mistake; an existing key set to the past is an
            // operator expiring it now.
            if creating && at <= now {
                return Err(ManageError::invalid("expires_at", "is not in the future"));
            }
            Ok(Some(Some(at)))
        }
        (Some(None), None) => Ok(Some(None)),
        (None, None) => Ok(None),
    }
}

/// Whether an id fits the virtual key format (`sk-lp-{id}_{secret}`): the same rule
/// [`keys::id_of`] reads keys with, so a key made here can be presented.
fn valid_key_id(id: &str) -> bool {
    keys::valid_id(id) && keys::id_of(&format!("{}{id}_x", keys::PREFIX)) == Some(id)
}

async fn team_exists(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<bool> {
    Ok(code.declares(None, Some(id)) || store.get_team(id).await?.is_some())
}

// === records and where they come from ===

/// Where a key or team is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// In the store: the admin API manages it.
    Store,
    /// In the config file (keys as code): read-only here.
    Config,
}

impl Source {
    /// `store` or `config`, as JSON says it.
    pub fn label(self) -> &'static str {
        match self {
            Source::Store => "store",
            Source::Config => "config",
        }
    }
}

/// A record with where it came from.
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    /// The key or team.
    pub record: T,
    /// Store or config.
    pub source: Source,
}

fn need(store: Option<&dyn Store>) -> Result<&dyn Store> {
    store.ok_or(ManageError::NoStore)
}

// === keys ===

/// Mints a key and stores it; returns the record and the whole key (shown once, never
/// stored: only its hash is).
pub async fn create_key(
    store: &dyn Store,
    code: &CodeKeys,
    new: NewKey,
) -> Result<(KeyRecord, SecretString)> {
    let now = now();
    let minted = keys::mint().map_err(|_| ManageError::Entropy)?;
    let mut key = KeyRecord {
        id: minted.id,
        alias: None,
        team_id: None,
        secret_hash: minted.hash,
        previous_hash: None,
        previous_expires_at: None,
        models: Vec::new(),
        limits: Limits::default(),
        expires_at: None,
        blocked: false,
        metadata: json!({}),
        created_at: now,
        updated_at: now,
    };
    apply_key(store, code, &mut key, new.into(), now, true).await?;
    if code.declares(Some(&key.id), None) {
        return Err(ManageError::Conflict(format!(
            "The key id `{}` is declared in the config file; retry.",
            key.id
        )));
    }
    store.insert_key(&key).await?;
    Ok((key, minted.key))
}

async fn apply_key(
    store: &dyn Store,
    code: &CodeKeys,
    key: &mut KeyRecord,
    patch: KeyPatch,
    now: i64,
    creating: bool,
) -> Result<()> {
    let KeyPatch {
        alias,
        team_id,
        models,
        rpm,
        tpm,
        max_parallel,
        budget,
        expires_at,
        expires_in,
        metadata,
        blocked,
    } = patch;
    apply_common(
        CommonMut {
            alias: &mut key.alias,
            models: &mut key.models,
            limits: &mut key.limits,
            metadata: &mut key.metadata,
            blocked: &mut key.blocked,
        },
        Common { alias, models, rpm, tpm, max_parallel, budget, metadata, blocked },
    )?;
    if let Some(at) = expiry(expires_at, expires_in, now, creating)? {
        key.expires_at = at;
    }
    if let Some(team) = team_id {
        if let Some(team) = &team
            && !team_exists(store, code, team).await?
        {
            return Err(ManageError::invalid("team_id", format!("no team `{team}` exists")));
        }
        key.team_id = team;
    }
    key.updated_at = now;
    Ok(())
}

/// A key from the config file or the store (the config's first: it is the one that works).
pub async fn get_key(store: Option<&dyn Store>, code: &CodeKeys, id: &str) -> Result<Sourced<KeyRecord>> {
    if let Some(key) = code.keys().find(|k| k.id == id) {
        return Ok(Sourced { record: KeyRecord::clone(key), source: Source::Config });
    }
    match need(store)?.get_key(id).await? {
        Some(key) => Ok(from_store(key)),
        None => Err(ManageError::NotFound { kind: Kind::Key, id: id.to_string() }),
    }
}

/// Every key (or one team's), the store's and the config file's, ordered by id. Without a
/// store, the config file's only.
pub async fn list_keys(
    store: Option<&dyn Store>,
    code: &CodeKeys,
    team_id: Option<&str>,
) -> Result<Vec<Sourced<KeyRecord>>> {
    let mut keys: Vec<Sourced<KeyRecord>> = code
        .keys()
        .filter(|k| team_id.is_none_or(|team| k.team_id.as_deref() == Some(team)))
        .map(|k| Sourced { record: KeyRecord::clone(k), source: Source::Config })
        .collect();
    if let Some(store) = store {
        // A stored key shadowed by one as code never works: the config's is listed.
        let shadowed = |id: &str| code.declares(Some(id), None);
        keys.extend(store.list_keys(team_id).await?.into_iter().filter(|k| !shadowed(&k.id)).map(from_store));
    }
    keys.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    Ok(keys)
}

/// The stored key `id`, refused if it is declared as code.
async fn stored_key(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<KeyRecord> {
    if code.declares(Some(id), None) {
        return Err(ManageError::ReadOnly { kind: Kind::Key, id: id.to_string() });
    }
    store.get_key(id).await?.ok_or_else(|| ManageError::NotFound { kind: Kind::Key, id: id.to_string() })
}

async fn replace_key(store: &dyn Store, key: KeyRecord) -> Result<KeyRecord> {
    if store.update_key(&key).await? {
        Ok(key)
    } else {
        Err(ManageError::NotFound { kind: Kind::Key, id: key.id })
    }
}

/// Changes a stored key (merge patch). Setting `expires_at` in the past expires it now.
pub async fn update_key(store: &dyn Store, code: &CodeKeys, id: &str, patch: KeyPatch) -> Result<KeyRecord> {
    let mut key = stored_key(store, code, id).await?;
    apply_key(store, code, &mut key, patch, now(), false).await?;
    replace_key(store, key).await
}

/// Blocks a stored key: refused (401) from the next request on.
pub async fn block_key(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<KeyRecord> {
    set_key_blocked(store, code, id, true).await
}

/// Unblocks a stored key.
pub async fn unblock_key(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<KeyRecord> {
    set_key_blocked(store, code, id, false).await
}

async fn set_key_blocked(store: &dyn Store, code: &CodeKeys, id: &str, blocked: bool) -> Result<KeyRecord> {
    let mut key = stored_key(store, code, id).await?;
    key.blocked = blocked;
    key.updated_at = now();
    replace_key(store, key).await
}

/// Gives a stored key a new secret under the same id (its ledger and spend carry on). The
/// old secret keeps working for `grace` (zero: it stops at once); a secret older than that
/// (from an earlier rotation) stops now.
pub async fn rotate_key(
    store: &dyn Store,
    code: &CodeKeys,
    id: &str,
    grace: Duration,
) -> Result<(KeyRecord, SecretString)> {
    let mut key = stored_key(store, code, id).await?;
    let minted = keys::mint_for(&key.id).map_err(|_| ManageError::Entropy)?;
    let now = now();
    let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let old = std::mem::replace(&mut key.secret_hash, minted.hash);
    (key.previous_hash, key.previous_expires_at) =
        if grace > 0 { (Some(old), Some(now.saturating_add(grace))) } else { (None, None) };
    key.updated_at = now;
    Ok((replace_key(store, key).await?, minted.key))
}

/// Deletes a stored key; its ledger rows and spend stay, under its id.
pub async fn delete_key(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<()> {
    if code.declares(Some(id), None) {
        return Err(ManageError::ReadOnly { kind: Kind::Key, id: id.to_string() });
    }
    if store.delete_key(id).await? {
        Ok(())
    } else {
        Err(ManageError::NotFound { kind: Kind::Key, id: id.to_string() })
    }
}

/// A fresh key for the config file (keys as code): the key to hand out, its id and the
/// hash to declare. Nothing is stored. `id` chooses the id (`[A-Za-z0-9-]`), else random.
pub fn generate_key(id: Option<&str>) -> Result<keys::Minted> {
    match id {
        Some(id) if !valid_key_id(id) => Err(ManageError::invalid(
            "id",
            "must be 1 to 64 of A-Z a-z 0-9 and - (the key format keeps _ as its separator)",
        )),
        Some(id) => keys::mint_for(id).map_err(|_| ManageError::Entropy),
        None => keys::mint().map_err(|_| ManageError::Entropy),
    }
}

// === teams ===

/// Creates a team with the operator's id.
pub async fn create_team(store: &dyn Store, code: &CodeKeys, new: NewTeam) -> Result<TeamRecord> {
    if !keys::valid_id(&new.id) {
        return Err(ManageError::invalid("id", "must be 1 to 64 of A-Z a-z 0-9 . _ -"));
    }
    if code.declares(None, Some(&new.id)) {
        return Err(ManageError::Conflict(format!(
            "The team `{}` is declared in the config file (`teams:`); choose another id.",
            new.id
        )));
    }
    let now = now();
    let mut team = TeamRecord {
        id: new.id.clone(),
        alias: None,
        models: Vec::new(),
        limits: Limits::default(),
        blocked: false,
        metadata: json!({}),
        created_at: now,
        updated_at: now,
    };
    apply_team(&mut team, new.into(), now)?;
    store.insert_team(&team).await.map_err(|error| match error {
        StoreError::Conflict(_) => ManageError::Conflict(format!("The team `{}` already exists.", team.id)),
        other => other.into(),
    })?;
    Ok(team)
}

fn apply_team(team: &mut TeamRecord, patch: TeamPatch, now: i64) -> Result<()> {
    let TeamPatch { alias, models, rpm, tpm, max_parallel, budget, metadata, blocked } = patch;
    apply_common(
        CommonMut {
            alias: &mut team.alias,
            models: &mut team.models,
            limits: &mut team.limits,
            metadata: &mut team.metadata,
            blocked: &mut team.blocked,
        },
        Common { alias, models, rpm, tpm, max_parallel, budget, metadata, blocked },
    )?;
    team.updated_at = now;
    Ok(())
}

/// A team from the config file or the store.
pub async fn get_team(store: Option<&dyn Store>, code: &CodeKeys, id: &str) -> Result<Sourced<TeamRecord>> {
    if let Some(team) = code.teams().find(|t| t.id == id) {
        return Ok(Sourced { record: TeamRecord::clone(team), source: Source::Config });
    }
    match need(store)?.get_team(id).await? {
        Some(team) => Ok(from_store(team)),
        None => Err(ManageError::NotFound { kind: Kind::Team, id: id.to_string() }),
    }
}

/// Every team, the store's and the config file's, ordered by id.
pub async fn list_teams(store: Option<&dyn Store>, code: &CodeKeys) -> Result<Vec<Sourced<TeamRecord>>> {
    let mut teams: Vec<Sourced<TeamRecord>> =
        code.teams().map(|t| Sourced { record: TeamRecord::clone(t), source: Source::Config }).collect();
    if let Some(store) = store {
        let shadowed = |id: &str| code.declares(None, Some(id));
        teams.extend(store.list_teams().await?.into_iter().filter(|t| !shadowed(&t.id)).map(from_store));
    }
    teams.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    Ok(teams)
}

async fn stored_team(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<TeamRecord> {
    if code.declares(None, Some(id)) {
        return Err(ManageError::ReadOnly { kind: Kind::Team, id: id.to_string() });
    }
    store.get_team(id).await?.ok_or_else(|| ManageError::NotFound { kind: Kind::Team, id: id.to_string() })
}

async fn replace_team(store: &dyn Store, team: TeamRecord) -> Result<TeamRecord> {
    if store.update_team(&team).await? {
        Ok(team)
    } else {
        Err(ManageError::NotFound { kind: Kind::Team, id: team.id })
    }
}

/// Changes a stored team (merge patch).
pub async fn update_team(
    store: &dyn Store,
    code: &CodeKeys,
    id: &str,
    patch: TeamPatch,
) -> Result<TeamRecord> {
    let mut team = stored_team(store, code, id).await?;
    apply_team(&mut team, patch, now())?;
    replace_team(store, team).await
}

/// Blocks a stored team: all its keys are refused from the next request on.
pub async fn block_team(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<TeamRecord> {
    set_team_blocked(store, code, id, true).await
}

/// Unblocks a stored team.
pub async fn unblock_team(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<TeamRecord> {
    set_team_blocked(store, code, id, false).await
}

async fn set_team_blocked(store: &dyn Store, code: &CodeKeys, id: &str, blocked: bool) -> Result<TeamRecord> {
    let mut team = stored_team(store, code, id).await?;
    team.blocked = blocked;
    team.updated_at = now();
    replace_team(store, team).await
}

/// Deletes a stored team that no key belongs to. A team with keys is refused: its keys
/// would silently lose the team's limits and budget.
pub async fn delete_team(store: &dyn Store, code: &CodeKeys, id: &str) -> Result<()> {
    stored_team(store, code, id).await?;
    let members = store.list_keys(Some(id)).await?;
    if !members.is_empty() {
        let ids: Vec<&str> = members.iter().take(5).map(|k| k.id.as_str()).collect();
        let more = if members.len() > ids.len() { ", …" } else { "" };
        return Err(ManageError::Conflict(format!(
            "The team `{id}` still has {} key(s) ({}{more}); move them to another team or delete them first.",
            members.len(),
            ids.join(", ")
        )));
    }
    if store.delete_team(id).await? {
        Ok(())
    } else {
        Err(ManageError::NotFound { kind: Kind::Team, id: id.to_string() })
    }
}

// === spend and the request log ===

/// A spend report's question as written (query parameters or CLI flags).
#[derive(Debug, Clone, Default)]
pub struct SpendParams {
    /// `key,team,model,provider,day`, in the order wanted.
    pub group_by: Option<String>,
    /// First day included, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day included, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
}

fn dimension(name: &str) -> Option<Dimension> {
    Some(match name {
        "key" | "key_id" => Dimension::Key,
        "team" | "team_id" => Dimension::Team,
        "model" => Dimension::Model,
        "provider" => Dimension::Provider,
        "day" => Dimension::Day,
        _ => return None,
    })
}

/// The field a dimension is reported under.
fn dimension_field(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Key => "key_id",
        Dimension::Team => "team_id",
        Dimension::Model => "model",
        Dimension::Provider => "provider",
        Dimension::Day => "day",
    }
}

/// Reads and checks a spend report's parameters.
pub fn report_query(params: SpendParams) -> Result<ReportQuery> {
    let mut group_by = Vec::new();
    for name in params.group_by.iter().flat_map(|g| g.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let dimension = dimension(name).ok_or_else(|| {
            ManageError::invalid(
                "group_by",
                format!("`{name}` is not one of key, team, model, provider, day"),
            )
        })?;
        if !group_by.contains(&dimension) {
            group_by.push(dimension);
        }
    }
    let day = |param: &str, day: Option<String>| match day {
        None => Ok(None),
        Some(text) => match parse_day(&text) {
            Some(at) => Ok(Some((text, at))),
            None => Err(ManageError::invalid(param, format!("{text:?} is not a day (YYYY-MM-DD)"))),
        },
    };
    let (from, to) = (day("from", params.from)?, day("to", params.to)?);
    if let (Some((_, from)), Some((_, to))) = (&from, &to)
        && from > to
    {
        return Err(ManageError::invalid("to", "is before `from`"));
    }
    Ok(ReportQuery {
        group_by,
        from_day: from.map(|(text, _)| text),
        to_day: to.map(|(text, _)| text),
        key_id: params.key_id,
        team_id: params.team_id,
        model: params.model,
        provider: params.provider,
    })
}

/// Totals from the daily aggregates, as asked.
pub async fn spend(store: &dyn Store, query: &ReportQuery) -> Result<Vec<ReportRow>> {
    Ok(store.report(query).await?)
}

/// A page of the request log's question as written.
#[derive(Debug, Clone, Default)]
pub struct RequestParams {
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this team.
    pub team_id: Option<String>,
    /// Only this model (asked for).
    pub model: Option<String>,
    /// Only this HTTP status.
    pub status: Option<u16>,
    /// At or after: Unix milliseconds, or a day (its 00:00 UTC).
    pub since: Option<String>,
    /// Before: Unix milliseconds, or a day (included: up to its end).
    pub until: Option<String>,
    /// Rows with an id below this (the previous page's `next_before_id`).
    pub before_id: Option<i64>,
    /// Rows per page, 1 to 1000 (100 unless given).
    pub limit: Option<u32>,
}

/// Unix milliseconds of `since`/`until` as written; a day given to `until` counts whole.
fn millis(param: &str, text: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    match parse_day(text) {
        Some(start) => Ok((start + if end_of_day { 86_400 } else { 0 }) * 1000),
        None => Err(ManageError::invalid(
            param,
            format!("{text:?} is not Unix milliseconds or a day (YYYY-MM-DD)"),
        )),
    }
}

/// Reads and checks a request-log page's parameters.
pub fn ledger_query(params: RequestParams) -> Result<LedgerQuery> {
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ManageError::invalid("limit", format!("must be 1 to {MAX_PAGE}")));
    }
    if params.status.is_some_and(|s| !(100..=599).contains(&s)) {
        return Err(ManageError::invalid("status", "must be an HTTP status (100 to 599)"));
    }
    Ok(LedgerQuery {
        key_id: params.key_id,
        team_id: params.team_id,
        model: params.model,
        status: params.status,
        since_ms: params.since.as_deref().map(|t| millis("since", t, false)).transpose()?,
        until_ms: params.until.as_deref().map(|t| millis("until", t, true)).transpose()?,
        before_id: params.before_id,
        limit,
    })
}

/// A page of the request log, newest first, and where the next one starts.
#[derive(Debug, Clone)]
pub struct Page {
    /// The rows.
    pub rows: Vec<LedgerRow>,
    /// Pass as `before_id` for the next page; `None` when this one is the last.
    pub next_before_id: Option<i64>,
}

/// A page of the request log.
pub async fn requests(store: &dyn Store, query: &LedgerQuery) -> Result<Page> {
    let rows = store.requests(query).await?;
    let full = query.limit > 0 && rows.len() >= query.limit as usize;
    let next_before_id = if full { rows.last().map(|r| r.id) } else { None };
    Ok(Page { rows, next_before_id })
}

// === JSON shapes ===

fn budget_json(budget: Option<&Budget>) -> Value {
    match budget {
        None => Value::Null,
        Some(b) => json!({
            "hard_usd": b.hard_usd.map(Money::usd),
            "soft_usd": b.soft_usd.map(Money::usd),
            "period": String::from(b.period),
        }),
    }
}

/// A key as the admin API and the CLI show it: never its hash or its previous one.
pub fn key_json(key: &Sourced<KeyRecord>) -> Value {
    let Sourced { record: k, source } = key;
    let grace = match (&k.previous_hash, k.previous_expires_at) {
        (Some(_), Some(until)) if until > now() => Some(until),
        _ => None,
    };
    json!({
        "id": k.id,
        "alias": k.alias,
        "team_id": k.team_id,
        "models": k.models,
        "rpm": k.limits.rpm,
        "tpm": k.limits.tpm,
        "max_parallel": k.limits.max_parallel,
        "budget": budget_json(k.limits.budget.as_ref()),
        "expires_at": k.expires_at,
        "blocked": k.blocked,
        "metadata": k.metadata,
        "created_at": k.created_at,
        "updated_at": k.updated_at,
        "rotation_grace_until": grace,
        "source": source.label(),
    })
}

/// A key just created or rotated: [`key_json`] plus the whole key, shown this once.
pub fn key_json_with_secret(key: KeyRecord, secret: &SecretString) -> Value {
    let mut value = key_json(&from_store(key));
    value["key"] = Value::String(secret.expose_secret().to_string());
    value
}

/// A team as the admin API and the CLI show it.
pub fn team_json(team: &Sourced<TeamRecord>) -> Value {
    let Sourced { record: t, source } = team;
    json!({
        "id": t.id,
        "alias": t.alias,
        "models": t.models,
        "rpm": t.limits.rpm,
        "tpm": t.limits.tpm,
        "max_parallel": t.limits.max_parallel,
        "budget": budget_json(t.limits.budget.as_ref()),
        "blocked": t.blocked,
        "metadata": t.metadata,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "source": source.label(),
    })
}

/// A stored key or team, by its record.
pub fn from_store<T>(record: T) -> Sourced<T> {
    Sourced { record, source: Source::Store }
}

/// `{"object":"list","data":[…]}`, OpenAI's list shape.
pub fn list_json(data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data})
}

/// What a delete answers, OpenAI's shape for it.
pub fn deleted_json(kind: Kind, id: &str) -> Value {
    json!({"id": id, "object": kind.noun(), "deleted": true})
}

/// A spend report's rows: each grouped dimension as its own field (`key_id`, `team_id`,
/// `model`, `provider`, `day`; `null` for requests without a key, team or provider), then the
/// sums, cost as exact decimal dollars (`cost_usd`, a string) and nano-dollars.
pub fn report_json(group_by: &[Dimension], rows: &[ReportRow]) -> Value {
    let data = rows
        .iter()
        .map(|row| {
            let mut out = serde_json::Map::new();
            for (dimension, value) in group_by.iter().zip(&row.group) {
                let value = match dimension {
                    Dimension::Model | Dimension::Day => Value::String(value.clone()),
                    _ if value.is_empty() => Value::Null,
                    _ => Value::String(value.clone()),
                };
                out.insert(dimension_field(*dimension).to_string(), value);
            }
            let sums = json!({
                "requests": row.requests,
                "errors": row.errors,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "cached_tokens": row.cached_tokens,
                "cache_write_tokens": row.cache_write_tokens,
                "reasoning_tokens": row.reasoning_tokens,
                "cost_usd": Money(row.cost_nanos).to_string(),
                "cost_nanos": row.cost_nanos,
            });
            if let Value::Object(sums) = sums {
                out.extend(sums);
            }
            Value::Object(out)
        })
        .collect();
    list_json(data)
}

/// A request-log page: the rows (with `cost_usd` beside `cost_nanos`; `bodies` only when
/// kept) and `next_before_id`.
pub fn page_json(page: &Page) -> Value {
    let data: Vec<Value> = page
        .rows
        .iter()
        .map(|row| {
            let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
            if let Value::Object(fields) = &mut value {
                if row.bodies.is_none() {
                    fields.remove("bodies");
                }
                fields.insert("cost_usd".into(), Value::String(Money(row.cost_nanos).to_string()));
            }
            value
        })
        .collect();
    json!({"object": "list", "data": data, "next_before_id": page.next_before_id})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_written() {
        assert_eq!(parse_span("30d"), Some(30 * 86_400));
        assert_eq!(parse_span("12h"), Some(43_200));
        assert_eq!(parse_span("90m"), Some(5_400));
        assert_eq!(parse_span("45s"), Some(45));
        assert_eq!(parse_span("2w"), Some(1_209_600));
        assert_eq!(parse_span("3600"), Some(3_600));
        assert_eq!(parse_span("0"), Some(0));
        for bad in ["", "d", "1.5h", "-1d", "10y", "1 d", "99999999999999999999d"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
    }

    #[test]
    fn patches_tell_absent_from_null() {
        let patch: KeyPatch = serde_json::from_str(r#"{"alias": null, "rpm": 5}"#).unwrap();
        assert_eq!(patch.alias, Some(None));
        assert_eq!(patch.rpm, Some(Some(5)));
        assert_eq!(patch.team_id, None);
        assert!(serde_json::from_str::<KeyPatch>(r#"{"secret_hash": "x"}"#).is_err());
    }

    #[test]
    fn budgets_merge_and_must_limit_something() {
        let budget =
            merge_budget(None, BudgetInput { hard_usd: Some(Some(10.0)), ..Default::default() }).unwrap();
        assert_eq!(budget.hard_usd, Money::from_usd(10.0));
        assert_eq!(budget.period, Period::Monthly);
        let merged = merge_budget(
            Some(budget),
            BudgetInput { soft_usd: Some(Some(8.0)), period: Some("7d".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!((merged.hard_usd, merged.soft_usd), (Money::from_usd(10.0), Money::from_usd(8.0)));
        assert_eq!(merged.period, Period::Rolling { hours: 168 });
        let param = |r: Result<Budget>| match r {
            Err(ManageError::Invalid { param, .. }) => param,
            other => panic!("{other:?}"),
        };
        assert_eq!(param(merge_budget(None, BudgetInput::default())), "budget");
        let none = BudgetInput { hard_usd: Some(None), ..Default::default() };
        assert_eq!(param(merge_budget(Some(budget), none)), "budget");
        let bad_period = BudgetInput {
            hard_usd: Some(Some(1.0)),
            period: Some("fortnightly".into()),
            ..Default::default()
        };
        assert_eq!(param(merge_budget(None, bad_period)), "budget.period");
        let negative = BudgetInput { hard_usd: Some(Some(-1.0)), ..Default::default() };
        assert_eq!(param(merge_budget(None, negative)), "budget.hard_usd");
        let upside_down =
            BudgetInput { hard_usd: Some(Some(1.0)), soft_usd: Some(Some(2.0)), ..Default::default() };
        assert_eq!(param(merge_budget(None, upside_down)), "budget.soft_usd");
    }

    #[test]
    fn expiry_is_in_the_future_when_created() {
        let now = 1_800_000_000;
        assert_eq!(expiry(None, Some(Span::Text("1h".into())), now, true).unwrap(), Some(Some(now + 3600)));
        assert_eq!(expiry(Some(Some(Moment::Unix(now + 5))), None, now, true).unwrap(), Some(Some(now + 5)));
        assert!(expiry(Some(Some(Moment::Unix(now - 5))), None, now, true).is_err());
        // An update may expire a key now.
        assert_eq!(expiry(Some(Some(Moment::Unix(now - 5))), None, now, false).unwrap(), Some(Some(now - 5)));
        assert_eq!(
            expiry(Some(Some(Moment::Text("2030-01-01".into()))), None, now, true).unwrap(),
            Some(Some(1_893_456_000))
        );
        assert!(expiry(Some(None), Some(Span::Seconds(5)), now, false).is_err());
        assert!(expiry(None, Some(Span::Seconds(0)), now, false).is_err());
        assert_eq!(expiry(Some(None), None, now, false).unwrap(), Some(None));
    }

    #[test]
    fn metadata_is_a_bounded_object() {
        assert!(check_metadata(json!({"a": 1})).is_ok());
        assert!(check_metadata(json!([1])).is_err());
        assert!(check_metadata(json!({"a": "x".repeat(MAX_METADATA_BYTES)})).is_err());
    }

    #[test]
    fn report_and_ledger_parameters_are_checked() {
        let q = report_query(SpendParams {
            group_by: Some("key, model,key".into()),
            from: Some("2026-01-01".into()),
            to: Some("2026-01-31".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.group_by, [Dimension::Key, Dimension::Model]);
        assert_eq!(q.to_day.as_deref(), Some("2026-01-31"));
        let param = |r: Result<ReportQuery>| match r {
            Err(ManageError::Invalid { param, .. }) => param,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            param(report_query(SpendParams { group_by: Some("colour".into()), ..Default::default() })),
            "group_by"
        );
        assert_eq!(
            param(report_query(SpendParams { from: Some("2026-13-01".into()), ..Default::default() })),
            "from"
        );
        let backwards = SpendParams {
            from: Some("2026-02-01".into()),
            to: Some("2026-01-01".into()),
            ..Default::default()
        };
        assert_eq!(param(report_query(backwards)), "to");

        let q = ledger_query(RequestParams {
            since: Some("2026-01-01".into()),
            until: Some("2026-01-01".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.since_ms, Some(1_767_225_600_000));
        assert_eq!(q.until_ms, Some(1_767_225_600_000 + 86_400_000));
        assert_eq!(q.limit, DEFAULT_PAGE);
        assert!(ledger_query(RequestParams { limit: Some(0), ..Default::default() }).is_err());
        assert!(ledger_query(RequestParams { limit: Some(1001), ..Default::default() }).is_err());
        assert!(ledger_query(RequestParams { since: Some("soon".into()), ..Default::default() }).is_err());
    }

    #[test]
    fn key_ids_fit_the_key_format() {
        assert!(valid_key_id("ci-bot-1"));
        assert!(!valid_key_id("ci_bot"));
        assert!(!valid_key_id("ci.bot"));
        assert!(!valid_key_id(""));
        let minted = generate_key(Some("ci-bot")).unwrap();
        assert_eq!(keys::id_of(minted.key.expose_secret()), Some("ci-bot"));
        assert!(generate_key(Some("ci_bot")).is_err());
    }

    #[test]
    fn a_key_shows_no_hash() {
        let key = KeyRecord {
            id: "abc".into(),
            alias: None,
            team_id: None,
            secret_hash: "h".repeat(64),
            previous_hash: Some("p".repeat(64)),
            previous_expires_at: Some(now() + 60),
            models: vec![],
            limits: Limits::default(),
            expires_at: None,
            blocked: false,
            metadata: json!({}),
            created_at: 1,
            updated_at: 2,
        };
        let shown = key_json(&from_store(key));
        assert!(shown["rotation_grace_until"].is_i64(), "{shown}");
        let shown = shown.to_string();
        assert!(!shown.contains("hhhh") && !shown.contains("pppp") && !shown.contains("hash"), "{shown}");
    }
}
