use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.yaml"), &env(vars))
}

const SEED: &str = r#"
providers:
  primary:   {type: openai, api_key: "${OPENAI_API_KEY}", base_url: "${OPENAI_BASE_URL:-https://api.openai.com/v1}"}
  backup:    {type: openai, api_key: sk-backup}
models:
  gpt-4:
    providers:
      primary: {priority: 0, model_id: gpt-4}
      backup:  {priority: 1, model_id: gpt-4}
"#;

#[test]
fn the_seed_format_loads_unchanged_with_defaults() {
    let config = parse(SEED, &[("OPENAI_API_KEY", "sk-live")]).unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:8000");
    assert_eq!(config.server.master_key(), None);
    assert_eq!(config.server.max_body_bytes, 33_554_432);
    assert_eq!(config.router.failure_threshold, 3);
    assert_eq!(config.router.cooldown_seconds, Duration::from_secs(600));
    assert_eq!(config.router.timeout_seconds, None);
    let timeouts = config.router.timeouts();
    assert_eq!(
        (timeouts.connect, timeouts.first_token, timeouts.idle, timeouts.total),
        (
            Duration::from_secs(10),
            Duration::from_secs(300),
            Duration::from_secs(60),
            Duration::from_secs(1800)
        )
    );
    let names: Vec<_> = config.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["primary", "backup"]);
    let ProviderConfig::OpenAi(primary) = &config.providers[0].config else { panic!("openai") };
    assert_eq!(primary.base_url, "https://api.openai.com/v1");
    assert_eq!(primary.api_key.as_ref().unwrap().expose_secret(), "sk-live");
    let model = &config.models[0];
    assert_eq!(model.name, "gpt-4");
    assert_eq!(model.deployments.len(), 2);
    assert_eq!((model.deployments[1].provider.as_str(), model.deployments[1].priority), ("backup", 1));
}

#[test]
fn new_sections_and_env_numbers_are_read() {
    let text = r#"
server: {listen: "0.0.0.0:9000", master_key: "${MK}", max_body_bytes: "${MAX:-1024}", shutdown_grace_seconds: 2.5}
router: {failure_threshold: "${FT}", cooldown_seconds: 0.5, timeout_seconds: 10}
providers:
  m: {type: mock, latency_ms: 5}
models:
  echo: {providers: {m: {}}}
"#;
    let config = parse(text, &[("MK", "sk-master"), ("FT", "5")]).unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:9000");
    assert_eq!(config.server.master_key(), Some("sk-master"));
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.server.shutdown_grace_seconds, Duration::from_millis(2500));
    assert_eq!(config.router.failure_threshold, 5);
    assert_eq!(config.router.cooldown_seconds, Duration::from_millis(500));
    // The seed's timeout_seconds keeps its meaning: up to the first bytes, and between chunks.
    let timeouts = config.router.timeouts();
    assert_eq!((timeouts.first_token, timeouts.idle), (Duration::from_secs(10), Duration::from_secs(10)));
    // model_id defaults to the model's own name, priority to 0.
    assert_eq!(config.models[0].deployments[0].model_id, "echo");
    assert_eq!(config.models[0].deployments[0].priority, 0);
}

#[test]
fn values_with_yaml_special_characters_survive_expansion() {
    let nasty = "sk-a: b #c {d} [e] 'f\" - g &h *i !j %k @l `m | n > o";
    let config = parse(SEED, &[("OPENAI_API_KEY", nasty)]).unwrap();
    let ProviderConfig::OpenAi(primary) = &config.providers[0].config else { panic!("openai") };
    assert_eq!(primary.api_key.as_ref().unwrap().expose_secret(), nasty);
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let text = r#"
server: {listen: "127.0.0.1:8000", colour: blue}
router: {failure_threshold: lots}
providers:
  primary: {type: openai, api_key: "${MISSING_KEY}"}
  weird: {type: carrier-pigeon}
  bad_url: {type: openai, base_url: "ftp://x"}
models:
  gpt-4:
    providers:
      primary: {priority: 0}
      nowhere: {priority: 1}
  empty: {providers: {}}
  typo: {provders: {}}
extra: 1
"#;
    let err = parse(text, &[]).unwrap_err();
    let shown = err.to_string();
    assert!(shown.starts_with("test.yaml: "), "{shown}");
    let has = |path: &str, needle: &str| {
        assert!(
            err.problems.iter().any(|p| p.path == path && p.message.contains(needle)),
            "missing {path}: {needle} in\n{shown}"
        );
    };
    has("providers.primary.api_key", "MISSING_KEY is not set");
    has("server.colour", "unknown field `colour`");
    has("router.failure_threshold", "invalid number");
    has("providers.weird.type", "unknown provider type `carrier-pigeon`");
    has("providers.bad_url.base_url", "http:// or https://");
    has("models.gpt-4.providers.nowhere", "not declared");
    has("models.empty.providers", "at least one provider");
    has("models.typo.provders", "unknown field `provders`");
    has("extra", "unknown section");
    assert_eq!(err.problems.len(), 9, "{shown}");
}

#[test]
fn secrets_never_print() {
    let config = parse(SEED, &[("OPENAI_API_KEY", "sk-very-secret")]).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("sk-very-secret"), "{debug}");
    assert!(!debug.contains("sk-backup"), "{debug}");
}

#[test]
fn structural_errors_are_explained() {
    assert!(
        parse("providers: [1, 2]\nmodels: {}", &[])
            .unwrap_err()
            .to_string()
            .contains("providers: must be a mapping")
    );
    assert!(parse("just text", &[]).unwrap_err().to_string().contains("top level must be a mapping"));
    assert!(parse("a: [", &[]).unwrap_err().to_string().contains("invalid YAML"));
    assert!(parse("providers: {}", &[]).unwrap_err().to_string().contains("no models are defined"));
    let text =
        "providers: {m: {type: mock, fail_status: 200, failure_rate: 2}}\nmodels: {x: {providers: {m: {}}}}";
    let err = parse(text, &[]).unwrap_err().to_string();
    assert!(err.contains("providers.m.fail_status") && err.contains("providers.m.failure_rate"), "{err}");
    let text = "server: {listen: nope}\nrouter: {timeout_seconds: 0}\nproviders: {m: {type: mock}}\nmodels: {x: {providers: {m: {}}}}";
    let err = parse(text, &[]).unwrap_err().to_string();
    assert!(err.contains("server.listen") && err.contains("router.timeout_seconds"), "{err}");
}

#[test]
fn the_shipped_config_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/config.yaml")).unwrap();
    let config = parse(&text, &[]).unwrap();
    assert!(config.providers.iter().all(|p| matches!(p.config, crate::providers::ProviderConfig::Mock(_))));
}

#[test]
fn edge_settings_have_defaults_and_are_validated() {
    let config = parse(SEED, &[("OPENAI_API_KEY", "sk-live")]).unwrap();
    let server = &config.server;
    assert_eq!(server.shutdown_delay_seconds, Duration::from_secs(5));
    assert_eq!(server.header_read_timeout_seconds, Duration::from_secs(10));
    assert_eq!(server.body_read_timeout_seconds, Duration::from_secs(60));
    assert_eq!(server.keep_alive_timeout_seconds, Duration::from_secs(75));
    assert_eq!(server.max_connections, 10_000);
    assert!(server.cors.allowed_origins.is_empty());
    assert_eq!(server.cors.allowed_headers, None);
    assert_eq!(server.cors.max_age_seconds, 600);

    let text = format!(
        "server: {{shutdown_delay_seconds: 0, header_read_timeout_seconds: 0, body_read_timeout_seconds: 0,\n  \
         keep_alive_timeout_seconds: 0, max_connections: 0,\n  \
         cors: {{allowed_origins: [\"*\", \"https://ok.example\", \"https://slash.example/\", \"app.example\"],\n  \
         allowed_headers: [\"bad header\"]}}}}\n{SEED}"
    );
    let err = parse(&text, &[("OPENAI_API_KEY", "sk-live")]).unwrap_err();
    let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "server.header_read_timeout_seconds",
            "server.body_read_timeout_seconds",
            "server.keep_alive_timeout_seconds",
            "server.max_connections",
            "server.cors.allowed_origins[2]",
            "server.cors.allowed_origins[3]",
            "server.cors.allowed_headers[0]",
        ],
        "{err}"
    );
}

#[test]
fn governance_sections_are_checked_with_their_paths() {
    let yaml = r#"
providers: {mock: {type: mock}}
models: {echo: {providers: {mock: {price: {input: -1, output: 2}}}}}
store: {url: "mysql://u:secret@db/x"}
ledger: {batch_size: 0}
teams: [{id: t, hash: "abc"}]
keys:
  - {id: "bad id", hash: "nothex"}
  - {id: k, hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", team: nobody, rpm: 0,
     budget: {period: monthly}, expires_at: "someday"}
  - {id: k, hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
"#;
    let error = parse(yaml, &[]).unwrap_err();
    let problems: Vec<String> = error.problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    for expected in [
        "models.echo.providers.mock.price",
        "store.url",
        "ledger.batch_size",
        "teams[0].hash",
        "keys[0].id",
        "keys[0].hash",
        "keys[1].team",
        "keys[1].rpm",
        "keys[1].budget",
        "keys[1].expires_at",
        "keys[2].id",
    ] {
        assert!(problems.iter().any(|p| p.starts_with(expected)), "no problem at {expected}: {problems:#?}");
    }
    assert!(!problems.iter().any(|p| p.contains("secret")), "a URL's password is never shown");
}
