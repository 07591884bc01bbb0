//! Operator endpoints: `GET /metrics`, `POST /admin/reload`, `GET /admin/deployments` and
//! `POST /admin/deployments/{model}/{provider}/enable|disable`.
//!
//! The admin endpoints need the master key; with no `server.master_key` configured they are
//! refused (403), since anyone could otherwise take deployments out. `/metrics` is open, like
//! `/health`: it holds names and counts, never a key.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::edge::check_master_key;
use super::error::ProxyError;
use super::{AppState, Live, ReloadError};
use crate::router::{Deployment, ceil_secs};

/// `GET /metrics`: Prometheus/OpenMetrics text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let live = state.live();
    let metrics = state.metrics();
    // Deployment states are read now, not tracked per request. Scrapes only set gauges made
    // at config load, so two at once cannot race.
    for model in live.router.models() {
        for deployment in &model.deployments {
            deployment.metrics().set_state(state_of(deployment));
        }
    }
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], metrics.encode()).into_response()
}

fn state_of(deployment: &Deployment) -> &'static str {
    deployment.health.snapshot().state.label()
}

/// Unix seconds `after` from now.
fn unix_secs_after(after: std::time::Duration) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    ceil_secs(now.saturating_add(after))
}

/// The master key, required and configured; the refusal to send otherwise.
pub(super) fn authorize(live: &Live, headers: &HeaderMap) -> Result<(), Box<Response>> {
    if live.master_key.is_none() {
        return Err(Box::new(forbidden()));
    }
    check_master_key(live, headers).map_err(|e| Box::new(e.into_response()))
}

fn forbidden() -> Response {
    let body = json!({"error": {
        "message": "The admin API needs `server.master_key` to be set.",
        "type": "permission_error", "param": null, "code": "admin_disabled"
    }});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// `POST /admin/reload`: the same as SIGHUP, with the outcome in the answer.
pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(denied) = authorize(&state.live(), &headers) {
        return *denied;
    }
    // Building provider clients and parsing YAML is blocking work: keep it off the runtime.
    let reloading = state.clone();
    let outcome = tokio::task::spawn_blocking(move || reloading.reload()).await;
    match outcome {
        Ok(Ok(done)) => {
            axum::Json(json!({"status": "reloaded", "models": done.models, "deployments": done.deployments}))
                .into_response()
        }
        Ok(Err(err)) => {
            let status = match err {
                ReloadError::NoSource => StatusCode::CONFLICT,
                ReloadError::Invalid(_) | ReloadError::Build(_) => StatusCode::BAD_REQUEST,
            };
            let body = json!({"error": {
                "message": format!("Reload refused; the previous config stays in force. {err}"),
                "type": "invalid_request_error", "param": null, "code": "invalid_config"
            }});
            (status, axum::Json(body)).into_response()
        }
        Err(_) => ProxyError::Internal.into_response(),
    }
}

/// `GET /admin/deployments`: the live state of every deployment.
pub async fn deployments(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let live = state.live();
    if let Err(denied) = authorize(&live, &headers) {
        return *denied;
    }
    let models: Vec<_> = live
        .router
        .models()
        .iter()
        .map(|model| {
            let deployments: Vec<_> = model
                .deployments
                .iter()
                .map(|d| {
                    let s = d.health.snapshot();
                    let (rpm_used, tpm_used) = d.caps.used();
                    json!({
                        "provider": &*d.provider_name,
                        "model_id": &*d.model_id,
                        "tier": d.priority,
                        "weight": d.weight,
                        "state": state_of(d),
                        "in_flight": d.load.in_flight(),
                        "latency_ewma_ms": d.load.latency().as_secs_f64() * 1000.0,
                        "consecutive_failures": s.consecutive_failures,
                        "ejections": s.ejections,
                        "cooling_down_for_seconds": ceil_secs(s.retry_in),
                        "cooling_down_until": (!s.retry_in.is_zero()).then(|| unix_secs_after(s.retry_in)),
                        "paused_for_seconds": ceil_secs(s.paused_for),
                        "paused_until": (!s.paused_for.is_zero()).then(|| unix_secs_after(s.paused_for)),
                        "rpm": {"limit": d.caps.rpm, "used": rpm_used},
                        "tpm": {"limit": d.caps.tpm, "used": tpm_used},
                    })
                })
                .collect();
            json!({"model": &*model.name, "aliases": model.aliases.iter().map(|a| &**a).collect::<Vec<_>>(),
                   "fallbacks": model.fallbacks.iter().map(|f| &**f).collect::<Vec<_>>(), "deployments": deployments})
        })
        .collect();
    axum::Json(json!({"models": models})).into_response()
}

/// `POST /admin/deployments/{model}/{provider}/enable|disable`. Model names may contain `/`,
/// so the path is split from the right.
pub async fn set_deployment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> Response {
    let live = state.live();
    if let Err(denied) = authorize(&live, &headers) {
        return *denied;
    }
    let mut parts = target.rsplitn(3, '/');
    let (Some(action), Some(provider), Some(model)) = (parts.next(), parts.next(), parts.next()) else {
        return ProxyError::UnknownEndpoint(format!("/admin/deployments/{target}")).into_response();
    };
    let off = match action {
        "disable" => true,
        "enable" => false,
        _ => return ProxyError::UnknownEndpoint(format!("/admin/deployments/{target}")).into_response(),
    };
    let deployment =
        live.router.model(model).and_then(|m| m.deployments.iter().find(|d| &*d.provider_name == provider));
    let Some(deployment) = deployment else {
        let body = json!({"error": {
            "message": format!("No deployment of model `{model}` on provider `{provider}`."),
            "type": "invalid_request_error", "param": null, "code": "deployment_not_found"
        }});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    };
    let changed = deployment.health.set_manual_off(off);
    axum::Json(
        json!({"model": model, "provider": provider, "state": state_of(deployment), "changed": changed}),
    )
    .into_response()
}
