//! The operator's commands: `llm-proxy keys|teams|spend|requests …`, the admin API's
//! operations from a terminal, straight against the store (the same [`crate::manage`]
//! functions the HTTP API calls). A running proxy sees a change made here within
//! `store.key_cache_seconds`; the admin API makes it take effect at once on the instance
//! that serves it.
//!
//! [`run`] returns what to print, as JSON: the same shapes the admin API answers with.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::keys::ring::CodeKeys;
use crate::manage::{
    self, BudgetInput, KeyPatch, Kind, ManageError, Moment, NewKey, NewTeam, RequestParams, Span,
    SpendParams, TeamPatch,
};
use crate::store::Store;

/// `keys`, `teams`, `spend`, `requests`: the admin commands.
#[derive(Debug, Subcommand)]
pub enum Admin {
    /// Virtual keys: create, list, change, rotate, block, delete; `generate` for the config file.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Teams: limits, budgets and allowed models shared by their keys.
    Teams {
        /// What to do.
        #[command(subcommand)]
        command: TeamsCommand,
    },
    /// Spend and usage totals from the daily aggregates, grouped and filtered.
    Spend {
        /// The report's question.
        #[command(flatten)]
        args: SpendArgs,
    },
    /// The request log, newest first, a page at a time.
    Requests {
        /// Which requests.
        #[command(flatten)]
        args: RequestsArgs,
    },
}

/// `keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Mint a key and store it; prints it once (only its hash is kept).
    Create {
        /// Its settings.
        #[command(flatten)]
        settings: KeySettings,
        /// Create it blocked.
        #[arg(long)]
        blocked: bool,
    },
    /// Every key: the store's and the config file's.
    List {
        /// Only this team's keys.
        #[arg(long, visible_alias = "team-id")]
        team: Option<String>,
    },
    /// One key.
    Get {
        /// The key's id (the part between `sk-lp-` and `_`).
        id: String,
    },
    /// Change a key's settings: flags given replace, `--clear` removes.
    Update {
        /// The key's id.
        id: String,
        /// New settings.
        #[command(flatten)]
        settings: KeySettings,
        /// Settings to remove (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',')]
        clear: Vec<KeyField>,
    },
    /// Refuse the key from now on.
    Block {
        /// The key's id.
        id: String,
    },
    /// Accept the key again.
    Unblock {
        /// The key's id.
        id: String,
    },
    /// A new secret under the same id; the old one keeps working for the grace period.
    Rotate {
        /// The key's id.
        id: String,
        /// How long the old secret keeps working (`24h`, `7d`, seconds; `0`: it stops now).
        #[arg(long, default_value = "24h")]
        grace: String,
    },
    /// Delete a key (its ledger rows and spend stay).
    Delete {
        /// The key's id.
        id: String,
    },
    /// Mint a key for the config file (keys as code): prints the key, its id, its hash and
    /// the YAML to declare it. Nothing is stored; no store is needed.
    Generate {
        /// The id to give it (`A-Z a-z 0-9 -`); random unless given.
        #[arg(long)]
        id: Option<String>,
    },
}

/// `teams …`.
#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Create a team.
    Create {
        /// Its id (`A-Z a-z 0-9 . _ -`, at most 64).
        id: String,
        /// Its settings.
        #[command(flatten)]
        settings: TeamSettings,
        /// Create it blocked.
        #[arg(long)]
        blocked: bool,
    },
    /// Every team: the store's and the config file's.
    List,
    /// One team.
    Get {
        /// The team's id.
        id: String,
    },
    /// Change a team's settings: flags given replace, `--clear` removes.
    Update {
        /// The team's id.
        id: String,
        /// New settings.
        #[command(flatten)]
        settings: TeamSettings,
        /// Settings to remove (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',')]
        clear: Vec<TeamField>,
    },
    /// Refuse every key of the team from now on.
    Block {
        /// The team's id.
        id: String,
    },
    /// Accept the team's keys again.
    Unblock {
        /// The team's id.
        id: String,
    },
    /// Delete a team no key belongs to.
    Delete {
        /// The team's id.
        id: String,
    },
}

/// The settings of a key, as flags (the JSON fields of `POST /admin/keys`).
#[derive(Debug, Clone, Default, Args)]
pub struct KeySettings {
    /// A name people recognise.
    #[arg(long)]
    pub alias: Option<String>,
    /// The team whose limits also apply.
    #[arg(long, visible_alias = "team-id")]
    pub team: Option<String>,
    /// Models it may call, comma-separated (exact names or `*` globs); none: every model.
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// Hard budget in dollars: refused once spent.
    #[arg(long)]
    pub budget_usd: Option<f64>,
    /// Soft budget in dollars: warned once spent.
    #[arg(long)]
    pub soft_budget_usd: Option<f64>,
    /// The budget's period: daily, weekly, monthly (the default), total, or `24h`, `30d`…
    #[arg(long)]
    pub budget_period: Option<String>,
    /// Works for this long from now (`30d`, `12h`, seconds).
    #[arg(long, conflicts_with = "expires_at")]
    pub expires_in: Option<String>,
    /// Works until then (Unix seconds or `YYYY-MM-DD`).
    #[arg(long)]
    pub expires_at: Option<String>,
    /// A JSON object kept with it (`'{"owner": "ci"}'`).
    #[arg(long)]
    pub metadata: Option<String>,
}

/// The settings of a team, as flags (the JSON fields of `POST /admin/teams`).
#[derive(Debug, Clone, Default, Args)]
pub struct TeamSettings {
    /// A name people recognise.
    #[arg(long)]
    pub alias: Option<String>,
    /// Models its keys may call, comma-separated; none: every model.
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Requests per minute over all its keys.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute over all its keys.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Requests in flight at once over all its keys.
    #[arg(long)]
    pub max_parallel: Option<u32>,
    /// Hard budget in dollars over all its keys.
    #[arg(long)]
    pub budget_usd: Option<f64>,
    /// Soft budget in dollars.
    #[arg(long)]
    pub soft_budget_usd: Option<f64>,
    /// The budget's period: daily, weekly, monthly (the default), total, or `24h`, `30d`…
    #[arg(long)]
    pub budget_period: Option<String>,
    /// A JSON object kept with it.
    #[arg(long)]
    pub metadata: Option<String>,
}

/// A key setting `keys update --clear` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyField {
    /// The alias.
    Alias,
    /// The team.
    Team,
    /// The model list (every model allowed).
    Models,
    /// Requests per minute.
    Rpm,
    /// Tokens per minute.
    Tpm,
    /// Requests in flight.
    MaxParallel,
    /// The budget.
    Budget,
    /// The expiry.
    Expires,
    /// The metadata.
    Metadata,
}

/// A team setting `teams update --clear` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TeamField {
    /// The alias.
    Alias,
    /// The model list (every model allowed).
    Models,
    /// Requests per minute.
    Rpm,
    /// Tokens per minute.
    Tpm,
    /// Requests in flight.
    MaxParallel,
    /// The budget.
    Budget,
    /// The metadata.
    Metadata,
}

/// `spend …`.
#[derive(Debug, Clone, Default, Args)]
pub struct SpendArgs {
    /// Group by, in order (comma-separated): key, team, model, provider, day; none: one total.
    #[arg(long)]
    pub group_by: Option<String>,
    /// First day included (`YYYY-MM-DD`, UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day included.
    #[arg(long)]
    pub to: Option<String>,
    /// Only this key.
    #[arg(long, visible_alias = "key-id")]
    pub key: Option<String>,
    /// Only this team.
    #[arg(long, visible_alias = "team-id")]
    pub team: Option<String>,
    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only this provider.
    #[arg(long)]
    pub provider: Option<String>,
}

/// `requests …`.
#[derive(Debug, Clone, Default, Args)]
pub struct RequestsArgs {
    /// Only this key.
    #[arg(long, visible_alias = "key-id")]
    pub key: Option<String>,
    /// Only this team.
    #[arg(long, visible_alias = "team-id")]
    pub team: Option<String>,
    /// Only this model (as asked for).
    #[arg(long)]
    pub model: Option<String>,
    /// Only this HTTP status.
    #[arg(long)]
    pub status: Option<u16>,
    /// At or after: Unix milliseconds or `YYYY-MM-DD`.
    #[arg(long)]
    pub since: Option<String>,
    /// Before: Unix milliseconds, or `YYYY-MM-DD` (that day included).
    #[arg(long)]
    pub until: Option<String>,
    /// Rows older than this id (the previous page's `next_before_id`).
    #[arg(long)]
    pub before_id: Option<i64>,
    /// Rows per page (1 to 1000).
    #[arg(long, default_value_t = manage::DEFAULT_PAGE)]
    pub limit: u32,
}

/// Runs a command with no keys as code known (see [`run_with`]); returns what to print.
pub async fn run(admin: Admin, store: Option<Arc<dyn Store>>) -> Result<Value, String> {
    run_with(admin, store, &CodeKeys::default()).await
}

/// Runs a command against `store`, with the config file's keys and teams (`code`) listed
/// beside the store's and protected from change; returns what to print (pretty JSON), or
/// the error to show. Only `keys generate` and listing keys as code work without a store.
pub async fn run_with(admin: Admin, store: Option<Arc<dyn Store>>, code: &CodeKeys) -> Result<Value, String> {
    execute(admin, store.as_deref(), code).await.map_err(|error| match error.source_detail() {
        // The operator's own terminal: the store's reason helps and holds no password.
        Some(detail) => format!("{error} ({detail})"),
        None => error.to_string(),
    })
}

async fn execute(admin: Admin, store: Option<&dyn Store>, code: &CodeKeys) -> Result<Value, ManageError> {
    let need = || store.ok_or(ManageError::NoStore);
    match admin {
        Admin::Keys { command } => keys(command, store, code, need).await,
        Admin::Teams { command } => teams(command, store, code, need).await,
        Admin::Spend { args } => {
            let query = manage::report_query(SpendParams {
                group_by: args.group_by,
                from: args.from,
                to: args.to,
                key_id: args.key,
                team_id: args.team,
                model: args.model,
                provider: args.provider,
            })?;
            let rows = manage::spend(need()?, &query).await?;
            Ok(manage::report_json(&query.group_by, &rows))
        }
        Admin::Requests { args } => {
            let query = manage::ledger_query(RequestParams {
                key_id: args.key,
                team_id: args.team,
                model: args.model,
                status: args.status,
                since: args.since,
                until: args.until,
                before_id: args.before_id,
                limit: Some(args.limit),
            })?;
            let page = manage::requests(need()?, &query).await?;
            Ok(manage::page_json(&page))
        }
    }
}

async fn keys<'a>(
    command: KeysCommand,
    store: Option<&'a dyn Store>,
    code: &CodeKeys,
    need: impl Fn() -> Result<&'a dyn Store, ManageError>,
) -> Result<Value, ManageError> {
    let shown = |key| manage::key_json(&manage::from_store(key));
    Ok(match command {
        KeysCommand::Create { settings, blocked } => {
            let patch = settings.patch()?;
            let new = NewKey {
                alias: flatten(patch.alias),
                team_id: flatten(patch.team_id),
                models: flatten(patch.models),
                rpm: flatten(patch.rpm),
                tpm: flatten(patch.tpm),
                max_parallel: flatten(patch.max_parallel),
                budget: flatten(patch.budget),
                expires_at: flatten(patch.expires_at),
                expires_in: patch.expires_in,
                metadata: flatten(patch.metadata),
                blocked,
            };
            let (key, secret) = manage::create_key(need()?, code, new).await?;
            manage::key_json_with_secret(key, &secret)
        }
        KeysCommand::List { team } => {
            let keys = manage::list_keys(store, code, team.as_deref()).await?;
            manage::list_json(keys.iter().map(manage::key_json).collect())
        }
        KeysCommand::Get { id } => manage::key_json(&manage::get_key(store, code, &id).await?),
        KeysCommand::Update { id, settings, clear } => {
            let mut patch = settings.patch()?;
            for field in clear {
                match field {
                    KeyField::Alias => patch.alias = Some(None),
                    KeyField::Team => patch.team_id = Some(None),
                    KeyField::Models => patch.models = Some(None),
                    KeyField::Rpm => patch.rpm = Some(None),
                    KeyField::Tpm => patch.tpm = Some(None),
                    KeyField::MaxParallel => patch.max_parallel = Some(None),
                    KeyField::Budget => patch.budget = Some(None),
                    KeyField::Expires => patch.expires_at = Some(None),
                    KeyField::Metadata => patch.metadata = Some(None),
                }
            }
            shown(manage::update_key(need()?, code, &id, patch).await?)
        }
        KeysCommand::Block { id } => shown(manage::block_key(need()?, code, &id).await?),
        KeysCommand::Unblock { id } => shown(manage::unblock_key(need()?, code, &id).await?),
        KeysCommand::Rotate { id, grace } => {
            let grace = manage::parse_span(&grace).ok_or_else(|| ManageError::Invalid {
                param: "grace".into(),
                message: format!("{grace:?} is not a length of time: use 24h, 7d, 0 or seconds"),
            })?;
            let (key, secret) = manage::rotate_key(need()?, code, &id, Duration::from_secs(grace)).await?;
            manage::key_json_with_secret(key, &secret)
        }
        KeysCommand::Delete { id } => {
            manage::delete_key(need()?, code, &id).await?;
            manage::deleted_json(Kind::Key, &id)
        }
        KeysCommand::Generate { id } => {
            let minted = manage::generate_key(id.as_deref())?;
            json!({
                "key": minted.key.expose_secret(),
                "id": minted.id,
                "hash": minted.hash,
                "yaml": format!("keys:\n  - id: {}\n    hash: {}\n", minted.id, minted.hash),
            })
        }
    })
}

async fn teams<'a>(
    command: TeamsCommand,
    store: Option<&'a dyn Store>,
    code: &CodeKeys,
    need: impl Fn() -> Result<&'a dyn Store, ManageError>,
) -> Result<Value, ManageError> {
    let shown = |team| manage::team_json(&manage::from_store(team));
    Ok(match command {
        TeamsCommand::Create { id, settings, blocked } => {
            let patch = settings.patch()?;
            let new = NewTeam {
                id,
                alias: flatten(patch.alias),
                models: flatten(patch.models),
                rpm: flatten(patch.rpm),
                tpm: flatten(patch.tpm),
                max_parallel: flatten(patch.max_parallel),
                budget: flatten(patch.budget),
                metadata: flatten(patch.metadata),
                blocked,
            };
            shown(manage::create_team(need()?, code, new).await?)
        }
        TeamsCommand::List => {
            let teams = manage::list_teams(store, code).await?;
            manage::list_json(teams.iter().map(manage::team_json).collect())
        }
        TeamsCommand::Get { id } => manage::team_json(&manage::get_team(store, code, &id).await?),
        TeamsCommand::Update { id, settings, clear } => {
            let mut patch = settings.patch()?;
            for field in clear {
                match field {
                    TeamField::Alias => patch.alias = Some(None),
                    TeamField::Models => patch.models = Some(None),
                    TeamField::Rpm => patch.rpm = Some(None),
                    TeamField::Tpm => patch.tpm = Some(None),
                    TeamField::MaxParallel => patch.max_parallel = Some(None),
                    TeamField::Budget => patch.budget = Some(None),
                    TeamField::Metadata => patch.metadata = Some(None),
                }
            }
            shown(manage::update_team(need()?, code, &id, patch).await?)
        }
        TeamsCommand::Block { id } => shown(manage::block_team(need()?, code, &id).await?),
        TeamsCommand::Unblock { id } => shown(manage::unblock_team(need()?, code, &id).await?),
        TeamsCommand::Delete { id } => {
            manage::delete_team(need()?, code, &id).await?;
            manage::deleted_json(Kind::Team, &id)
        }
    })
}

/// A patch's value for a create, where there is nothing to clear.
fn flatten<T>(value: Option<Option<T>>) -> Option<T> {
    value.flatten()
}

/// The budget flags as a budget patch: only the flags given change anything.
fn budget(hard: Option<f64>, soft: Option<f64>, period: Option<String>) -> Option<Option<BudgetInput>> {
    if hard.is_none() && soft.is_none() && period.is_none() {
        return None;
    }
    Some(Some(BudgetInput { hard_usd: hard.map(Some), soft_usd: soft.map(Some), period }))
}

fn metadata(text: Option<String>) -> Result<Option<Option<Value>>, ManageError> {
    text.map(|text| {
        serde_json::from_str(&text).map(Some).map_err(|e| ManageError::Invalid {
            param: "metadata".into(),
            message: format!("is not JSON: {e}"),
        })
    })
    .transpose()
}

impl KeySettings {
    /// The flags as a key patch: only the flags given change anything.
    fn patch(self) -> Result<KeyPatch, ManageError> {
        Ok(KeyPatch {
            alias: self.alias.map(Some),
            team_id: self.team.map(Some),
            models: self.models.map(Some),
            rpm: self.rpm.map(Some),
            tpm: self.tpm.map(Some),
            max_parallel: self.max_parallel.map(Some),
            budget: budget(self.budget_usd, self.soft_budget_usd, self.budget_period),
            expires_at: self.expires_at.map(|at| Some(Moment::Text(at))),
            expires_in: self.expires_in.map(Span::Text),
            metadata: metadata(self.metadata)?,
            blocked: None,
        })
    }
}

impl TeamSettings {
    /// The flags as a team patch: only the flags given change anything.
    fn patch(self) -> Result<TeamPatch, ManageError> {
        Ok(TeamPatch {
            alias: self.alias.map(Some),
            models: self.models.map(Some),
            rpm: self.rpm.map(Some),
            tpm: self.tpm.map(Some),
            max_parallel: self.max_parallel.map(Some),
            budget: budget(self.budget_usd, self.soft_budget_usd, self.budget_period),
            metadata: metadata(self.metadata)?,
            blocked: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The binary's shape: `Admin` flattened into its commands.
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        admin: Admin,
    }

    fn parse(args: &[&str]) -> Admin {
        let mut argv = vec!["llm-proxy"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}")).admin
    }

    #[tokio::test]
    async fn generate_needs_no_store_and_prints_config() {
        let out = run(parse(&["keys", "generate", "--id", "ci-bot"]), None).await.unwrap();
        let key = out["key"].as_str().unwrap();
        assert_eq!(crate::keys::id_of(key), Some("ci-bot"));
        assert!(crate::keys::matches(key, out["hash"].as_str().unwrap()));
        assert_eq!(
            out["yaml"],
            format!("keys:\n  - id: ci-bot\n    hash: {}\n", out["hash"].as_str().unwrap())
        );
        // The snippet is a config the proxy loads, and the key it declares gets in.
        let yaml = format!(
            "providers: {{mock: {{type: mock}}}}\nmodels: {{echo: {{providers: {{mock: {{priority: 0}}}}}}}}\n{}",
            out["yaml"].as_str().unwrap()
        );
        let env = std::collections::HashMap::<String, String>::new();
        let config = crate::Config::parse(&yaml, std::path::Path::new("generated.yaml"), &env).unwrap();
        let code = CodeKeys::new(&config.keys, &config.teams);
        let ring = crate::keys::ring::Keyring::new(None, Duration::from_secs(30), Duration::from_secs(1));
        assert!(ring.resolve(&code, "ci-bot", key, crate::accounting::period::now()).await.is_ok());
        assert!(run(parse(&["keys", "generate", "--id", "ci_bot"]), None).await.is_err());
        let random = run(parse(&["keys", "generate"]), None).await.unwrap();
        assert_ne!(random["id"], out["id"]);
    }

    #[tokio::test]
    async fn store_commands_say_to_configure_one() {
        let error = run(parse(&["keys", "create", "--rpm", "5"]), None).await.unwrap_err();
        assert!(error.contains("store.url"), "{error}");
        let listed = run(parse(&["keys", "list"]), None).await.unwrap();
        assert_eq!(listed["data"], json!([]));
        assert!(run(parse(&["spend"]), None).await.unwrap_err().contains("store.url"));
    }

    /// A SQLite store in a file of its own, removed at the end.
    struct TempStore(std::path::PathBuf);

    impl TempStore {
        async fn open() -> (Self, Arc<dyn Store>) {
            let name = format!("llm-proxy-cli-{}-{:016x}.db", std::process::id(), fastrand::u64(..));
            let path = std::env::temp_dir().join(name);
            let store = crate::store::open(&format!("sqlite://{}", path.display())).await.unwrap();
            (Self(path), store)
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    #[tokio::test]
    async fn keys_and_teams_live_through_the_cli() {
        let (_file, store) = TempStore::open().await;
        let run = |args: &[&str]| {
            let admin = parse(args);
            let store = Arc::clone(&store);
            async move { run(admin, Some(store)).await }
        };
        let team =
            run(&["teams", "create", "ml", "--budget-usd", "50", "--soft-budget-usd", "40"]).await.unwrap();
        assert_eq!(team["budget"], json!({"hard_usd": 50.0, "soft_usd": 40.0, "period": "monthly"}));
        let created =
            run(&["keys", "create", "--team", "ml", "--models", "gpt-4o*,echo", "--expires-in", "30d"])
                .await
                .unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        let key = created["key"].as_str().unwrap().to_string();
        let stored = store.get_key(&id).await.unwrap().unwrap();
        assert!(crate::keys::matches(&key, &stored.secret_hash));
        assert_eq!(stored.models, ["gpt-4o*", "echo"]);

        let listed = run(&["keys", "list", "--team", "ml"]).await.unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert!(!listed.to_string().contains(&stored.secret_hash));
        let updated =
            run(&["keys", "update", &id, "--rpm", "60", "--clear", "models,expires"]).await.unwrap();
        assert_eq!((updated["rpm"].clone(), updated["models"].clone()), (json!(60), json!([])));
        assert_eq!(updated["expires_at"], Value::Null);
        assert!(run(&["keys", "update", &id, "--rpm", "0"]).await.unwrap_err().contains("`rpm`"));
        assert!(run(&["keys", "update", &id, "--team", "nope"]).await.unwrap_err().contains("nope"));

        let rotated = run(&["keys", "rotate", &id, "--grace", "1h"]).await.unwrap();
        let new_key = rotated["key"].as_str().unwrap();
        let stored = store.get_key(&id).await.unwrap().unwrap();
        assert!(crate::keys::matches(new_key, &stored.secret_hash));
        assert!(crate::keys::matches(&key, stored.previous_hash.as_deref().unwrap()));
        assert!(run(&["keys", "rotate", &id, "--grace", "soon"]).await.is_err());
        assert_eq!(run(&["keys", "block", &id]).await.unwrap()["blocked"], true);
        assert_eq!(run(&["teams", "block", "ml"]).await.unwrap()["blocked"], true);
        assert!(run(&["teams", "delete", "ml"]).await.unwrap_err().contains("still has 1 key"));
        assert_eq!(run(&["keys", "delete", &id]).await.unwrap()["deleted"], true);
        assert!(run(&["keys", "get", &id]).await.unwrap_err().contains("No key"));
        assert_eq!(run(&["teams", "delete", "ml"]).await.unwrap()["deleted"], true);
        assert_eq!(run(&["teams", "list"]).await.unwrap()["data"], json!([]));

        let spend =
            run(&["spend", "--group-by", "key,model", "--from", "2026-01-01", "--to", "2026-01-31"]).await;
        assert_eq!(spend.unwrap()["data"], json!([]));
        let page = run(&["requests", "--key", &id, "--limit", "10"]).await.unwrap();
        assert_eq!(page, json!({"object": "list", "data": [], "next_before_id": null}));
        assert!(run(&["spend", "--group-by", "colour"]).await.unwrap_err().contains("group_by"));
    }

    #[test]
    fn flags_mirror_the_json_fields() {
        <Cli as clap::CommandFactory>::command().debug_assert();
        let Admin::Keys { command: KeysCommand::Create { settings, .. } } = parse(&[
            "keys",
            "create",
            "--alias",
            "ci",
            "--models",
            "a,b",
            "--rpm",
            "10",
            "--budget-usd",
            "12.5",
            "--budget-period",
            "weekly",
            "--expires-in",
            "30d",
            "--metadata",
            r#"{"owner": "ci"}"#,
        ]) else {
            panic!("not keys create")
        };
        let patch = settings.patch().unwrap();
        assert_eq!(patch.models, Some(Some(vec!["a".to_string(), "b".to_string()])));
        assert_eq!(patch.rpm, Some(Some(10)));
        assert_eq!(
            patch.budget,
            Some(Some(BudgetInput {
                hard_usd: Some(Some(12.5)),
                soft_usd: None,
                period: Some("weekly".into())
            }))
        );
        assert_eq!(patch.expires_in, Some(Span::Text("30d".into())));
        assert_eq!(patch.metadata, Some(Some(json!({"owner": "ci"}))));
        let Admin::Keys { command: KeysCommand::Update { clear, .. } } =
            parse(&["keys", "update", "abc", "--clear", "budget,max-parallel"])
        else {
            panic!("not keys update")
        };
        assert_eq!(clear, [KeyField::Budget, KeyField::MaxParallel]);
    }
}
