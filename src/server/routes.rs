//! Request handlers: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`, `/health`,
//! `/health/ready`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use super::error::ProxyError;
use super::{ATTEMPTS_HEADER, AppState, LoggedAtStreamEnd, PROVIDER_HEADER, RequestLine, RouteInfo};
use crate::api::request::{ApiRequest, InvalidRequest};
use crate::api::{Model, ModelList};
use crate::router::{Served, ceil_secs};
use crate::sse::{self, StreamEnd};

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `POST /v1/chat/completions`.
pub async fn chat_completions(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    dispatch(state, headers, body, ApiRequest::parse).await
}

/// `POST /v1/embeddings`.
pub async fn embeddings(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    dispatch(state, headers, body, ApiRequest::parse_embeddings).await
}

/// Reads, checks and routes a request, and answers with what the router served.
async fn dispatch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
    parse: fn(Bytes) -> Result<ApiRequest, InvalidRequest>,
) -> Response {
    let started = Instant::now();
    let request = match read_body(body, &headers, state.0.max_body_bytes)
        .await
        .and_then(|bytes| parse(bytes).map_err(ProxyError::from))
    {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    // The edge guarantees the header; the fallback only keeps this total.
    let request_id = headers.get(super::REQUEST_ID_HEADER).cloned().unwrap_or(HeaderValue::from_static(""));
    let dispatch = state.router().route(&request, &request_id).await;
    let info = RouteInfo {
        model: Some(Arc::from(request.model())),
        provider: dispatch.provider.clone(),
        attempts: dispatch.attempts,
    };
    let mut response = match dispatch.result {
        Ok(Served::Json(body)) => ([(header::CONTENT_TYPE, JSON)], body).into_response(),
        Ok(Served::ClientError { status, content_type, body }) => {
            (status, [(header::CONTENT_TYPE, content_type.unwrap_or(JSON))], body).into_response()
        }
        Ok(Served::Stream(committed)) => {
            let log_info = info.clone();
            let on_end = move |end: &StreamEnd| {
                let outcome = match end {
                    StreamEnd::Completed => "completed",
                    StreamEnd::Failed(_) => "failed",
                    StreamEnd::ClientGone => "client_gone",
                };
                RequestLine {
                    method: "POST",
                    path: "/v1/chat/completions", // only chat streams
                    request_id: request_id.to_str().unwrap_or(""),
                    status: 200,
                    info: &log_info,
                    error: match end {
                        StreamEnd::Failed(reason) => {
                            tracing::warn!(provider = %log_info.provider.as_deref().unwrap_or(""), reason = %reason, "stream failed after it started");
                            Some("stream_interrupted")
                        }
                        _ => None,
                    },
                    stream: Some(outcome),
                    elapsed: started.elapsed(),
                }
                .emit();
            };
            let mut response = Response::new(Body::from_stream(sse::relay(committed, on_end)));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Tell an nginx in front of us not to buffer the stream either.
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            response.extensions_mut().insert(LoggedAtStreamEnd);
            response
        }
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    if let Some(provider) = info.provider.as_deref().and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert(PROVIDER_HEADER, provider);
    }
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(info.attempts));
    response.extensions_mut().insert(info);
    response
}

/// Reads the whole body, refusing more than `limit` bytes (413) without buffering them.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ProxyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(cause) = source {
            if cause.is::<http_body_util::LengthLimitError>() {
                return ProxyError::PayloadTooLarge { limit };
            }
            source = cause.source();
        }
        ProxyError::InvalidRequest(InvalidRequest {
            message: "could not read the request body".to_string(),
            param: None,
        })
    })
}

/// `GET /v1/models`.
pub async fn list_models(State(state): State<AppState>) -> Response {
    let created = state.0.created;
    let list = ModelList {
        object: "list",
        data: state.router().models().iter().map(|m| Model::new(&m.name, created)).collect(),
    };
    axum::Json(list).into_response()
}

/// `GET /v1/models/{id}`.
pub async fn get_model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.router().model(&id) {
        Some(model) => axum::Json(Model::new(&model.name, state.0.created)).into_response(),
        None => ProxyError::ModelNotFound { model: id }.into_response(),
    }
}

/// `GET /health`: the process is up.
pub async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /health/ready`: 200 when every model has an available deployment, else 503; the body
/// shows each deployment's state (never a key).
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut all_ready = true;
    let models: Vec<_> = state
        .router()
        .models()
        .iter()
        .map(|model| {
            // One snapshot per deployment, so the model's verdict matches the rows shown.
            let mut available = false;
            let deployments: Vec<_> = model
                .deployments
                .iter()
                .map(|d| {
                    let s = d.health.snapshot();
                    available |= s.available;
                    json!({
                        "provider": &*d.provider_name,
                        "model_id": &*d.model_id,
                        "priority": d.priority,
                        "enabled": !s.disabled,
                        "available": s.available,
                        "probing": s.probing,
                        "consecutive_failures": s.consecutive_failures,
                        "retry_in_seconds": ceil_secs(s.retry_in),
                    })
                })
                .collect();
            all_ready &= available;
            json!({"model": &*model.name, "available": available, "deployments": deployments})
        })
        .collect();
    let status = if all_ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"status": if all_ready { "ready" } else { "unavailable" }, "models": models});
    (status, axum::Json(body)).into_response()
}

/// Any path the proxy does not serve.
pub async fn unknown_endpoint(uri: Uri) -> Response {
    ProxyError::UnknownEndpoint(uri.path().to_string()).into_response()
}

/// A known path with the wrong method.
pub async fn method_not_allowed() -> Response {
    ProxyError::MethodNotAllowed.into_response()
}
