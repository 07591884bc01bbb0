//! The edge middleware: the request id, CORS, the master key on `/v1`, the headers saying who
//! served a response, and the request's one access-log line.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::context::{LoggedAtStreamEnd, RequestCtx};
use super::error::{ErrorKind, ProxyError};
use super::govern::Caller;
use super::{ATTEMPTS_HEADER, AppState, Live, PROVIDER_HEADER, REQUEST_ID_HEADER};
use crate::api::dialect::Dialect;
use crate::api::request::Operation;

/// A UUIDv4 from a fast thread-local generator: request ids must be unique, not
/// unpredictable, and a `getrandom` syscall per request showed up in profiles.
fn new_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).unwrap_or(HeaderValue::from_static(""))
}

/// Longest client `x-request-id` kept; longer ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// A client's `x-request-id` is kept when it is 1 to 128 bytes of `A-Za-z0-9` and `-_.:/+=`
/// (UUIDs, ULIDs, base64, W3C trace ids, `service:123` all fit); anything else (spaces,
/// control bytes, quotes, non-ASCII) could break log lines or upstream headers, so it is
/// replaced by a generated id.
fn acceptable_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

/// The dialect a path speaks, for errors answered before routing.
fn dialect_of(path: &str) -> Dialect {
    if path.starts_with("/v1/messages") { Dialect::Messages } else { Dialect::Chat }
}

/// `/v1` requests must carry the master key, when `server.master_key` is set.
pub(super) fn check_master_key(live: &Live, headers: &HeaderMap) -> Result<(), ProxyError> {
    let Some(expected) = &live.master_key else {
        return Ok(());
    };
    match presented_key(headers) {
        None => Err(ProxyError::Unauthorized(
            "Missing API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`.",
        )),
        // Constant-time, so response timing does not reveal how much of a guess was right.
        Some(key) if bool::from(key.as_bytes().ct_eq(expected.expose_secret().as_bytes())) => Ok(()),
        Some(_) => Err(ProxyError::Unauthorized("Incorrect API key provided.")),
    }
}

/// The key a client presents the way its SDK does: `Authorization: Bearer` (OpenAI's),
/// `x-api-key` (Anthropic's) or `api-key` (Azure's).
pub(super) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = || {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, key) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
    };
    let plain = |name: &str| Some(headers.get(name)?.to_str().ok()?.trim());
    bearer().or_else(|| plain("x-api-key")).or_else(|| plain("api-key"))
}

/// The edge, as one middleware (four separate layers cost ~4 µs more per request in
/// `bench/run`): the request id (the client's `x-request-id` if [`acceptable_request_id`],
/// else a new one; echoed back and sent upstream), CORS (preflights answered before the key
/// check), the master key on `/v1`, the headers saying who served the response, and one log
/// line per request (streams log theirs when they end).
pub(super) async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let request_id = match request.headers().get(REQUEST_ID_HEADER) {
        Some(id) if acceptable_request_id(id) => id.clone(),
        _ => {
            let id = new_request_id();
            request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
            id
        }
    };
    let mut ctx = RequestCtx::new(request_id.clone(), request.method().clone(), request.uri().clone());
    let (method, uri) = (ctx.method.clone(), ctx.uri.clone());
    let path = uri.path();
    // Loaded once here: CORS, the key and the route all see the same config.
    let live = state.live();
    let origin = live.cors.as_ref().and_then(|_| request.headers().get(header::ORIGIN).cloned());
    let preflight = live.cors.as_ref().and_then(|cors| cors.preflight(&method, request.headers()));
    let answered_preflight = preflight.is_some();
    let mut response = match (preflight, path.starts_with("/v1/")) {
        (Some(preflight), _) => preflight,
        (None, true) => match super::govern::authenticate(&state, &live, request.headers()).await {
            Ok(caller) => {
                if let Caller::Key(principal) = &caller {
                    ctx.key_id = Some(Arc::from(principal.key.id.as_str()));
                    ctx.team_id = principal.team.as_ref().map(|t| Arc::from(t.id.as_str()));
                }
                request.extensions_mut().insert(Arc::clone(&live));
                request.extensions_mut().insert(ctx.clone());
                request.extensions_mut().insert(caller);
                next.run(request).await
            }
            Err(error) => {
                // A refused call to a generative endpoint still leaves its ledger record.
                if method == axum::http::Method::POST {
                    ctx.endpoint = Operation::of_path(path).map(Operation::label);
                }
                error.respond(dialect_of(path))
            }
        },
        (None, false) => next.run(request).await,
    };
    if let Some(cors) = &live.cors
        && !answered_preflight
    {
        cors.decorate(origin.as_ref(), response.headers_mut());
    }
    drop(live);
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID_HEADER, request_id.clone());
    headers.entry(PROVIDER_HEADER).or_insert(HeaderValue::from_static("none"));
    headers.entry(ATTEMPTS_HEADER).or_insert(HeaderValue::from_static("0"));
    if response.extensions().get::<LoggedAtStreamEnd>().is_some() {
        return response;
    }
    // The handler's copy, filled by routing, if it ran; else the edge's own.
    let mut ctx = response.extensions_mut().remove::<RequestCtx>().unwrap_or(ctx);
    if let Some(error) = response.extensions().get::<ErrorKind>() {
        ctx.error = Some(error.0);
    }
    ctx.finish(state.ledger(), response.status().as_u16(), None);
    response
}
