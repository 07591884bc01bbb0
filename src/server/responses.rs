//! The Responses API's stored side: keeping each streamed answer, `GET` and `DELETE
//! /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`, and the WebSocket upgrade
//! (answered 426, so a client such as Codex goes on over HTTP at once).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::AppState;
use super::error::ProxyError;
use crate::api::dialect::Dialect;
use crate::providers::translate::stream::{SseDecoder, SseEvent};
use crate::router::Committed;

/// The stream, and when its `response.completed` (or `.incomplete`) event passes, the final
/// response kept for `previous_response_id`.
pub(super) fn remember_streamed(mut committed: Committed, state: AppState, request: Bytes) -> Committed {
    let mut watch = Watch { decoder: SseDecoder::default(), events: Vec::new(), state, request };
    if watch.saw_end(&committed.first) {
        return committed;
    }
    let mut watching = true;
    committed.rest = committed
        .rest
        .map(move |frame| {
            if let Ok(frame) = &frame
                && watching
                && watch.saw_end(&frame.bytes)
            {
                watching = false;
            }
            frame
        })
        .boxed();
    committed
}

struct Watch {
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    state: AppState,
    request: Bytes,
}

impl Watch {
    /// Reads `bytes` for the terminal event; records it and says so when it is there.
    fn saw_end(&mut self, bytes: &[u8]) -> bool {
        let quick = memchr::memmem::find(bytes, b"response.completed").is_some()
            || memchr::memmem::find(bytes, b"response.incomplete").is_some();
        if self.decoder.push(bytes, &mut self.events).is_err() {
            return true;
        }
        let events = std::mem::take(&mut self.events);
        if !quick {
            return false;
        }
        for event in events {
            let Ok(value) = serde_json::from_str::<Value>(&event.data) else { continue };
            let kind = value.get("type").and_then(Value::as_str);
            if matches!(kind, Some("response.completed" | "response.incomplete"))
                && let Some(response) = value.get("response")
            {
                let response = serde_json::to_vec(response).unwrap_or_default();
                self.state.conversations().record(&self.request, &response);
                return true;
            }
        }
        false
    }
}

/// `GET /v1/responses/{id}`: a response the proxy kept.
pub(super) async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.conversations().get(&id) {
        Some(stored) => axum::Json(&stored.response).into_response(),
        None => not_found(&id),
    }
}

/// `DELETE /v1/responses/{id}`.
pub(super) async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    if !state.conversations().delete(&id) {
        return not_found(&id);
    }
    axum::Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
}

/// `GET /v1/responses/{id}/input_items`: newest first unless `order=asc`, `limit` (1 to 100,
/// default 20) after the item `after`.
pub(super) async fn input_items(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(stored) = state.conversations().get(&id) else { return not_found(&id) };
    let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(20).clamp(1, 100);
    let listed = crate::conversations::listed(&id, &stored.input);
    let mut items: Vec<&Value> = listed.iter().collect();
    if query.get("order").map(String::as_str) != Some("asc") {
        items.reverse();
    }
    if let Some(after) = query.get("after") {
        let at = items.iter().position(|item| item.get("id").and_then(Value::as_str) == Some(after));
        items.drain(..at.map_or(0, |at| at + 1));
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    let id_of = |item: Option<&&Value>| item.and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
    let page = json!({
        "object": "list",
        "data": items,
        "first_id": id_of(items.first()),
        "last_id": id_of(items.last()),
        "has_more": has_more,
    });
    axum::Json(page).into_response()
}

/// `GET /v1/responses` with `Upgrade: websocket` (Codex tries the WebSocket transport first):
/// 426, so the client falls back to HTTP streaming without waiting.
pub(super) async fn websocket(headers: HeaderMap) -> Response {
    let upgrade =
        headers.get(header::UPGRADE).is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !upgrade {
        return ProxyError::MethodNotAllowed.into_response();
    }
    ProxyError::UpgradeRequired.respond(Dialect::Responses)
}

fn not_found(id: &str) -> Response {
    ProxyError::ResponseNotFound(id.to_string()).respond(Dialect::Responses)
}
