//! The admin API for virtual keys, teams, spend and the request log: thin handlers over
//! [`crate::manage`] (the CLI's functions too), behind the master key like every `/admin`
//! endpoint. Every change drops the key or team from this instance's cache, so a blocked,
//! rotated or deleted key stops (and a new secret starts) with the next request; other
//! instances see it within `store.key_cache_seconds`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::admin::authorize;
use super::error::ProxyError;
use super::{AppState, Live};
use crate::manage::{self, Kind, ManageError, RequestParams, SpendParams};
use crate::store::Store;

/// The OpenAPI 3.1 description of every `/admin` endpoint.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Why a handler did not do what was asked.
enum Refused {
    /// The master key check's own answer (401, or 403 when the admin API is off).
    Denied(Box<Response>),
    /// Everything else, answered through [`ProxyError`].
    Error(ManageError),
}

impl From<ManageError> for Refused {
    fn from(error: ManageError) -> Self {
        Refused::Error(error)
    }
}

impl From<Box<Response>> for Refused {
    fn from(denied: Box<Response>) -> Self {
        Refused::Denied(denied)
    }
}

type Answer = Result<Response, Refused>;

fn finish(answer: Answer) -> Response {
    match answer {
        Ok(response) => response,
        Err(Refused::Denied(response)) => *response,
        Err(Refused::Error(error)) => {
            // The client is told the store failed; what failed goes to the log only.
            if let Some(detail) = error.source_detail() {
                tracing::warn!(error = %detail, "admin API: the store failed");
            }
            ProxyError::Manage(error).into_response()
        }
    }
}

/// The master key checked, and what the handler works with.
struct Admin {
    live: Arc<Live>,
    store: Option<Arc<dyn Store>>,
}

impl Admin {
    fn open(state: &AppState, headers: &HeaderMap) -> Result<Self, Refused> {
        let live = state.live();
        authorize(&live, headers)?;
        Ok(Self { live, store: state.store().cloned() })
    }

    fn store(&self) -> Result<&dyn Store, ManageError> {
        self.store.as_deref().ok_or(ManageError::NoStore)
    }

    fn code(&self) -> &crate::keys::ring::CodeKeys {
        &self.live.code_keys
    }
}

fn json(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

fn ok(value: Value) -> Answer {
    Ok(json(StatusCode::OK, value))
}

/// An answer holding a whole key: no cache or proxy on the way may keep it.
fn secret(status: StatusCode, value: Value) -> Answer {
    let mut response = json(status, value);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A JSON body (empty is `{}`), its errors naming the field at fault.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ManageError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let param = match path.as_str() {
            // `unknown field `x``, `missing field `x``: the field is in the message.
            "." | "" => message.split('`').nth(1).unwrap_or("body").to_string(),
            _ => path,
        };
        ManageError::Invalid { param, message }
    })?;
    de.end().map_err(|e| ManageError::Invalid { param: "body".into(), message: e.to_string() })?;
    Ok(value)
}

/// Query parameters, each name checked against those the endpoint takes.
fn query(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    known: &[&str],
) -> Result<Vec<(String, String)>, ManageError> {
    let Query(pairs) =
        query.map_err(|e| ManageError::Invalid { param: "query".into(), message: e.body_text() })?;
    if let Some((name, _)) = pairs.iter().find(|(name, _)| !known.contains(&name.as_str())) {
        return Err(ManageError::Invalid {
            param: name.clone(),
            message: format!("is not a parameter of this endpoint (expected one of: {})", known.join(", ")),
        });
    }
    Ok(pairs)
}

fn last(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(pairs: &[(String, String)], name: &str) -> Result<Option<T>, ManageError> {
    match last(pairs, name) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| ManageError::Invalid {
            param: name.into(),
            message: format!("{text:?} is not a whole number in range"),
        }),
    }
}

// === keys ===

/// `POST /admin/keys`: 201 with the key and, this once, its secret (`key`).
pub async fn create_key(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let store = admin.store()?;
            let new = body(&bytes)?;
            let (key, minted) = manage::create_key(store, admin.code(), new).await?;
            // The cache may remember this id as unknown from an earlier try with it.
            state.keyring().forget_key(&key.id).await;
            secret(StatusCode::CREATED, manage::key_json_with_secret(key, &minted))
        }
        .await,
    )
}

/// `GET /admin/keys[?team_id=]`: the store's keys and the config file's.
pub async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let params = query(params, &["team_id"])?;
            let team = last(&params, "team_id");
            let keys = manage::list_keys(admin.store.as_deref(), admin.code(), team.as_deref()).await?;
            ok(manage::list_json(keys.iter().map(manage::key_json).collect()))
        }
        .await,
    )
}

/// `GET /admin/keys/{id}`.
pub async fn get_key(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let key = manage::get_key(admin.store.as_deref(), admin.code(), &id).await?;
            ok(manage::key_json(&key))
        }
        .await,
    )
}

/// `PATCH /admin/keys/{id}`: a merge patch.
pub async fn update_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let store = admin.store()?;
            let patch = body(&bytes)?;
            let key = manage::update_key(store, admin.code(), &id, patch).await?;
            state.keyring().forget_key(&id).await;
            ok(manage::key_json(&manage::from_store(key)))
        }
        .await,
    )
}

/// `DELETE /admin/keys/{id}`.
pub async fn delete_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            manage::delete_key(admin.store()?, admin.code(), &id).await?;
            state.keyring().forget_key(&id).await;
            ok(manage::deleted_json(Kind::Key, &id))
        }
        .await,
    )
}

/// `POST /admin/keys/{id}/block`.
pub async fn block_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let key = manage::block_key(admin.store()?, admin.code(), &id).await?;
            state.keyring().forget_key(&id).await;
            ok(manage::key_json(&manage::from_store(key)))
        }
        .await,
    )
}

/// `POST /admin/keys/{id}/unblock`.
pub async fn unblock_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let key = manage::unblock_key(admin.store()?, admin.code(), &id).await?;
            state.keyring().forget_key(&id).await;
            ok(manage::key_json(&manage::from_store(key)))
        }
        .await,
    )
}

/// What `POST /admin/keys/{id}/rotate` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the old secret keeps working; 0 stops it at once.
    #[serde(default = "default_grace")]
    grace_seconds: u64,
}

fn default_grace() -> u64 {
    manage::DEFAULT_GRACE.as_secs()
}

/// `POST /admin/keys/{id}/rotate` (`{"grace_seconds": N}`, a day unless given): the new
/// secret, shown this once.
pub async fn rotate_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let store = admin.store()?;
            let Rotate { grace_seconds } = body(&bytes)?;
            let grace = Duration::from_secs(grace_seconds);
            let (key, minted) = manage::rotate_key(store, admin.code(), &id, grace).await?;
            state.keyring().forget_key(&id).await;
            secret(StatusCode::OK, manage::key_json_with_secret(key, &minted))
        }
        .await,
    )
}

// === teams ===

/// `POST /admin/teams`: 201 with the team.
pub async fn create_team(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let store = admin.store()?;
            let new = body(&bytes)?;
            let team = manage::create_team(store, admin.code(), new).await?;
            state.keyring().forget_team(&team.id).await;
            Ok(json(StatusCode::CREATED, manage::team_json(&manage::from_store(team))))
        }
        .await,
    )
}

/// `GET /admin/teams`: the store's teams and the config file's.
pub async fn list_teams(State(state): State<AppState>, headers: HeaderMap) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let teams = manage::list_teams(admin.store.as_deref(), admin.code()).await?;
            ok(manage::list_json(teams.iter().map(manage::team_json).collect()))
        }
        .await,
    )
}

/// `GET /admin/teams/{id}`.
pub async fn get_team(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let team = manage::get_team(admin.store.as_deref(), admin.code(), &id).await?;
            ok(manage::team_json(&team))
        }
        .await,
    )
}

/// `PATCH /admin/teams/{id}`: a merge patch.
pub async fn update_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let store = admin.store()?;
            let patch = body(&bytes)?;
            let team = manage::update_team(store, admin.code(), &id, patch).await?;
            state.keyring().forget_team(&id).await;
            ok(manage::team_json(&manage::from_store(team)))
        }
        .await,
    )
}

/// `DELETE /admin/teams/{id}`: refused (409) while keys belong to it.
pub async fn delete_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            manage::delete_team(admin.store()?, admin.code(), &id).await?;
            state.keyring().forget_team(&id).await;
            ok(manage::deleted_json(Kind::Team, &id))
        }
        .await,
    )
}

/// `POST /admin/teams/{id}/block`: every key of the team is refused.
pub async fn block_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let team = manage::block_team(admin.store()?, admin.code(), &id).await?;
            state.keyring().forget_team(&id).await;
            ok(manage::team_json(&manage::from_store(team)))
        }
        .await,
    )
}

/// `POST /admin/teams/{id}/unblock`.
pub async fn unblock_team(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let team = manage::unblock_team(admin.store()?, admin.code(), &id).await?;
            state.keyring().forget_team(&id).await;
            ok(manage::team_json(&manage::from_store(team)))
        }
        .await,
    )
}

// === spend and the request log ===

/// `GET /admin/spend?group_by=key,model&from=…&to=…&key_id=&team_id=&model=&provider=`.
pub async fn spend(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let pairs = query(params, &["group_by", "from", "to", "key_id", "team_id", "model", "provider"])?;
            // `group_by=key&group_by=model` reads as `group_by=key,model`.
            let group_by: Vec<&str> =
                pairs.iter().filter(|(n, _)| n == "group_by").map(|(_, v)| v.as_str()).collect();
            let params = SpendParams {
                group_by: (!group_by.is_empty()).then(|| group_by.join(",")),
                from: last(&pairs, "from"),
                to: last(&pairs, "to"),
                key_id: last(&pairs, "key_id"),
                team_id: last(&pairs, "team_id"),
                model: last(&pairs, "model"),
                provider: last(&pairs, "provider"),
            };
            let query = manage::report_query(params)?;
            let rows = manage::spend(admin.store()?, &query).await?;
            ok(manage::report_json(&query.group_by, &rows))
        }
        .await,
    )
}

/// `GET /admin/requests?key_id=&team_id=&model=&status=&since=&until=&before_id=&limit=`:
/// the request log, newest first, a page at a time.
pub async fn requests(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    finish(
        async {
            let admin = Admin::open(&state, &headers)?;
            let known = ["key_id", "team_id", "model", "status", "since", "until", "before_id", "limit"];
            let pairs = query(params, &known)?;
            let params = RequestParams {
                key_id: last(&pairs, "key_id"),
                team_id: last(&pairs, "team_id"),
                model: last(&pairs, "model"),
                status: number(&pairs, "status")?,
                since: last(&pairs, "since"),
                until: last(&pairs, "until"),
                before_id: number(&pairs, "before_id")?,
                limit: number(&pairs, "limit")?,
            };
            let query = manage::ledger_query(params)?;
            let page = manage::requests(admin.store()?, &query).await?;
            ok(manage::page_json(&page))
        }
        .await,
    )
}

/// `GET /admin/openapi.json`: this API, described.
pub async fn openapi(State(state): State<AppState>, headers: HeaderMap) -> Response {
    finish(
        async {
            Admin::open(&state, &headers)?;
            let content_type = HeaderValue::from_static("application/json");
            Ok(([(header::CONTENT_TYPE, content_type)], OPENAPI).into_response())
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_errors_name_the_field() {
        let param = |text: &str| match body::<manage::NewKey>(text.as_bytes()) {
            Err(ManageError::Invalid { param, .. }) => param,
            other => panic!("{other:?}"),
        };
        assert_eq!(param(r#"{"rpm": -1}"#), "rpm");
        assert_eq!(param(r#"{"budget": {"hard_usd": "lots"}}"#), "budget.hard_usd");
        assert_eq!(param(r#"{"secret_hash": "x"}"#), "secret_hash");
        assert_eq!(param(r#"{"rpm": 1} x"#), "body");
        assert!(body::<manage::NewKey>(b"").is_ok());
        assert!(
            matches!(body::<manage::NewTeam>(b"{}"), Err(ManageError::Invalid { param, .. }) if param == "id")
        );
    }

    #[test]
    fn the_openapi_document_is_json() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
