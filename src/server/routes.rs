//! Request handlers: `/v1/chat/completions`, `/v1/embeddings`, `/v1/responses`,
//! `/v1/messages` (and `count_tokens`), `/v1/models`, `/health`, `/health/ready`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::time::Instant;

use super::context::{LoggedAtStreamEnd, RequestCtx};
use super::error::ProxyError;
use super::govern::{self, Caller};
use super::relay::{self, StreamEnd};
use super::responses::remember_streamed;
use super::{ATTEMPTS_HEADER, AppState, COST_HEADER, Live, MODEL_HEADER, PROVIDER_HEADER};
use crate::accounting::{Money, Price};
use crate::api::request::{ApiRequest, InvalidRequest, Operation};
use crate::api::{Model, ModelList};
use crate::metrics::StreamStatus;
use crate::router::{Inbound, RouteError, Served, ceil_secs};

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    state: State<AppState>,
    live: Option<Extension<Arc<Live>>>,
    ctx: Option<Extension<RequestCtx>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(state, live, ctx, caller, headers, body, Operation::Chat).await
}

/// `POST /v1/embeddings`.
pub async fn embeddings(
    state: State<AppState>,
    live: Option<Extension<Arc<Live>>>,
    ctx: Option<Extension<RequestCtx>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(state, live, ctx, caller, headers, body, Operation::Embeddings).await
}

/// `POST /v1/responses`.
pub async fn responses(
    state: State<AppState>,
    live: Option<Extension<Arc<Live>>>,
    ctx: Option<Extension<RequestCtx>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(state, live, ctx, caller, headers, body, Operation::Responses).await
}

/// `POST /v1/messages`.
pub async fn messages(
    state: State<AppState>,
    live: Option<Extension<Arc<Live>>>,
    ctx: Option<Extension<RequestCtx>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(state, live, ctx, caller, headers, body, Operation::Messages).await
}

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(
    state: State<AppState>,
    live: Option<Extension<Arc<Live>>>,
    ctx: Option<Extension<RequestCtx>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    dispatch(state, live, ctx, caller, headers, body, Operation::CountTokens).await
}

/// Reads, checks and routes a request, and answers with what the router served, in the
/// client's dialect.
async fn dispatch(
    State(state): State<AppState>,
    live: Option<Extension<Arc<Live>>>,
    ctx: Option<Extension<RequestCtx>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
    operation: Operation,
) -> Response {
    let dialect = operation.dialect();
    let started = Instant::now();
    // The edge made it; the fallback only keeps this total.
    let mut ctx = ctx.map_or_else(
        || {
            let id = headers.get(super::REQUEST_ID_HEADER).cloned().unwrap_or(HeaderValue::from_static(""));
            RequestCtx::new(id, axum::http::Method::POST, Uri::from_static("/v1"))
        },
        |Extension(ctx)| ctx,
    );
    ctx.endpoint = Some(operation.label());
    let caller = caller.map_or(Caller::Open, |Extension(caller)| caller);
    let metrics = state.metrics();
    let in_flight = InFlightGauge::new(&metrics.in_flight);
    // The edge loaded the config in force for this request: it finishes on it, whatever
    // reloads happen meanwhile.
    let live = live.map_or_else(|| state.live(), |Extension(live)| live);
    let request = match async {
        check_json(&headers)?;
        let bytes = read_body(body, &headers, live.max_body_bytes, live.body_read_timeout).await?;
        if operation == Operation::Responses
            && let Some((expanded, previous)) = state.conversations().expand(&bytes)
        {
            return ApiRequest::parse_as(operation, expanded)
                .map(|r| r.continuing(&previous))
                .map_err(ProxyError::from);
        }
        ApiRequest::parse_as(operation, bytes).map_err(ProxyError::from)
    }
    .await
    {
        Ok(request) => request,
        Err(error) => {
            let mut response = error.respond(dialect);
            metrics.unknown_model(response.status().as_u16());
            response.extensions_mut().insert(ctx);
            return response;
        }
    };
    ctx.model = Some(Arc::from(request.model()));
    ctx.stream = request.stream();
    let mut governed = match govern::admit(&state, &live, &caller, &request).await {
        Ok(governed) => governed,
        Err(error) => {
            let mut response = error.respond(dialect);
            metrics.unknown_model(response.status().as_u16());
            response.extensions_mut().insert(ctx);
            return response;
        }
    };
    if operation == Operation::CountTokens && !can_count(&live, request.model()) {
        // Nothing behind this model counts tokens: the estimate, without touching a deployment.
        governed.settle(None, Money::ZERO);
        let mut response = match crate::dialect::estimate_tokens(&request) {
            Ok(body) => ([(header::CONTENT_TYPE, JSON)], body).into_response(),
            Err(error) => {
                ProxyError::Unsupported { message: error.to_string(), param: None }.respond(dialect)
            }
        };
        metrics.unknown_model(response.status().as_u16());
        response.extensions_mut().insert(ctx);
        return response;
    }
    let request_id = ctx.request_id.clone();
    let inbound = Inbound { request: &request, request_id: &request_id, headers: &headers };
    let dispatch = live.router.route(&inbound).await;
    let model_metrics = dispatch.metrics.clone();
    ctx.provider = dispatch.provider.clone();
    ctx.served_model = dispatch.served_model.clone();
    ctx.attempts = dispatch.attempts;
    ctx.usage = dispatch.usage;
    let overhead = started.elapsed().saturating_sub(dispatch.upstream_time);
    metrics.overhead.observe(overhead);
    ctx.overhead = overhead;
    let price = served_price(&live, &request, &dispatch);
    if price.is_none() && ctx.provider.is_some() {
        metrics.governance.unpriced.inc();
    }
    let remember = operation == Operation::Responses;
    let mut response = match dispatch.result {
        Ok(Served::Json(body)) => {
            if remember {
                state.conversations().record(request.body(), &body);
            }
            let cost = price.map_or(Money::ZERO, |p| p.cost(&dispatch.usage.unwrap_or_default()));
            ctx.cost = Some(cost);
            if live.ledger_bodies {
                ctx.bodies = Some(kept_bodies(request.body(), Some(&body)));
            }
            metrics.governance.spend_nanos.inc_by(cost.nanos().max(0) as u64);
            governed.settle(dispatch.usage, cost);
            let mut response = ([(header::CONTENT_TYPE, JSON)], body).into_response();
            if let Ok(cost) = HeaderValue::from_str(&cost.to_string()) {
                response.headers_mut().insert(COST_HEADER, cost);
            }
            response
        }
        Ok(Served::ClientError { status, content_type, body }) => {
            (status, [(header::CONTENT_TYPE, content_type.unwrap_or(JSON))], body).into_response()
        }
        Ok(Served::Stream(mut committed)) => {
            if remember {
                committed = remember_streamed(committed, state.clone(), request.body().clone());
            }
            ctx.ttft = Some(ctx.elapsed());
            if live.ledger_bodies {
                // The stream's events are the client's; only the request is kept.
                ctx.bodies = Some(kept_bodies(request.body(), None));
            }
            let mut ctx = ctx.clone();
            let mut governed = std::mem::take(&mut governed);
            let ended_state = state.clone();
            let model_metrics = model_metrics.clone();
            let was_cut = Arc::new(AtomicBool::new(false));
            let cut = Arc::clone(&was_cut);
            let prompt_estimate = (request.body().len() / 4) as u64;
            let on_end = move |end: &StreamEnd, usage: Option<crate::usage::Usage>, content_frames: u64| {
                // A stream cut before its usage arrived (the client left, the upstream broke)
                // is billed on an estimate rather than not at all: the prompt's bytes / 4 and
                // a token per content frame relayed.
                let estimated = usage.is_none();
                let usage = usage.or_else(|| {
                    Some(crate::usage::Usage {
                        prompt_tokens: prompt_estimate,
                        completion_tokens: content_frames,
                        ..Default::default()
                    })
                });
                let _in_flight = in_flight;
                let (outcome, status) = match end {
                    StreamEnd::Completed => ("completed", StreamStatus::Completed),
                    StreamEnd::Failed(_) => ("failed", StreamStatus::Failed),
                    // Dropped by the drain, not by the client (see `server::drain`).
                    StreamEnd::ClientGone if cut.load(Ordering::Relaxed) => {
                        ("cut_by_shutdown", StreamStatus::CutByShutdown)
                    }
                    StreamEnd::ClientGone => ("client_gone", StreamStatus::ClientGone),
                };
                if let Some(metrics) = &model_metrics {
                    metrics.stream_ended(status, started.elapsed());
                }
                ctx.usage = usage;
                // Priced from what the upstream reported, however the stream ended.
                let cost = price.map_or(Money::ZERO, |p| p.cost(&usage.unwrap_or_default()));
                ctx.cost = Some(cost);
                ended_state.metrics().governance.spend_nanos.inc_by(cost.nanos().max(0) as u64);
                governed.settle(usage, cost);
                ctx.error = match end {
                    StreamEnd::Failed(reason) => {
                        tracing::warn!(provider = %ctx.provider.as_deref().unwrap_or(""), reason = %reason, "stream failed after it started");
                        Some("stream_interrupted")
                    }
                    _ if status == StreamStatus::CutByShutdown => Some("shutting_down"),
                    // The ledger says the tokens are the proxy's estimate, not the provider's.
                    _ if estimated => Some("usage_estimated"),
                    _ => None,
                };
                ctx.finish(ended_state.ledger(), 200, Some(outcome));
            };
            let relay = relay::relay(committed, dialect, on_end);
            let mut response =
                Response::new(Body::from_stream(state.drain().cut_on_shutdown(relay, was_cut)));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            // Tell an nginx in front of us not to buffer the stream either.
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            response.extensions_mut().insert(LoggedAtStreamEnd);
            response
        }
        Err(RouteError::Unsupported { .. }) if operation == Operation::CountTokens => {
            match crate::dialect::estimate_tokens(&request) {
                Ok(body) => ([(header::CONTENT_TYPE, JSON)], body).into_response(),
                Err(error) => {
                    ProxyError::Unsupported { message: error.to_string(), param: None }.respond(dialect)
                }
            }
        }
        Err(error) => ProxyError::from(error).respond(dialect),
    };
    // Whatever was not served as a stream or a body settles with nothing spent.
    governed.settle(None, Money::ZERO);
    governed.decorate(response.headers_mut());
    if response.extensions().get::<LoggedAtStreamEnd>().is_none() {
        match &model_metrics {
            Some(metrics) => metrics.request(response.status().as_u16(), started.elapsed()),
            None => metrics.unknown_model(response.status().as_u16()),
        }
    }
    let headers = response.headers_mut();
    headers.extend(dispatch.upstream_headers);
    if let Some(provider) = ctx.provider.as_deref().and_then(|p| HeaderValue::from_str(p).ok()) {
        headers.insert(PROVIDER_HEADER, provider);
    }
    if let Some(model) = dispatch.served_model.as_deref().filter(|m| *m != request.model())
        && let Ok(model) = HeaderValue::from_str(model)
    {
        headers.insert(MODEL_HEADER, model);
    }
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(ctx.attempts));
    response.extensions_mut().insert(ctx);
    response
}

/// `{"request": …, "response": …}`, redacted, for the ledger.
fn kept_bodies(request: &Bytes, response: Option<&Bytes>) -> Arc<str> {
    use crate::accounting::redact::redact;
    let response = response.map_or_else(|| "null".to_string(), |body| json!(redact(body)).to_string());
    Arc::from(format!("{{\"request\":{},\"response\":{response}}}", json!(redact(request))))
}

/// The price of the deployment that served, if it has one.
fn served_price(live: &Live, request: &ApiRequest, dispatch: &crate::router::Dispatch) -> Option<Price> {
    let provider = dispatch.provider.as_deref()?;
    let model = dispatch.served_model.as_deref().unwrap_or(request.model());
    let route = live.router.model(model)?;
    route.deployments.iter().find(|d| &*d.provider_name == provider).and_then(|d| d.price)
}

/// Whether some deployment of `model` (a name or an alias) speaks the Messages API, and so
/// can count tokens; an unknown model is for the router to refuse.
fn can_count(live: &Live, model: &str) -> bool {
    live.router.model(model).is_none_or(|route| route.speaks(crate::api::dialect::Dialect::Messages))
}

/// Counts a request in `llm_proxy_in_flight_requests` until dropped (streams: at their end).
struct InFlightGauge(prometheus_client::metrics::gauge::Gauge);

impl InFlightGauge {
    fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlightGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// JSON endpoints take `application/json` only (parameters such as `; charset=utf-8` are
/// fine, case does not matter); anything else, a missing type included, is 415. The official
/// SDKs always send `application/json`; a browser form or `curl -d`
/// (`application/x-www-form-urlencoded`) must not reach an upstream: a cross-site form post
/// needs no CORS preflight, so accepting it would let any web page spend the proxy's keys.
fn check_json(headers: &HeaderMap) -> Result<(), ProxyError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
    let essence = content_type.map(|v| v.split(|&b| b == b';').next().unwrap_or_default().trim_ascii());
    match essence {
        Some(essence) if essence.eq_ignore_ascii_case(b"application/json") => Ok(()),
        Some(_) => Err(ProxyError::UnsupportedMediaType(format!(
            "Unsupported Content-Type {:?}: send the request body as `application/json`.",
            String::from_utf8_lossy(content_type.unwrap_or_default())
        ))),
        None => Err(ProxyError::UnsupportedMediaType(
            "Missing Content-Type: send the request body as `application/json`.".to_string(),
        )),
    }
}

/// Reads the whole body, refusing more than `limit` bytes (413) without buffering them, and a
/// body not received within `within` (408).
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    within: Duration,
) -> Result<Bytes, ProxyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ProxyError::PayloadTooLarge { limit });
    }
    let read = tokio::time::timeout(within, axum::body::to_bytes(body, limit));
    let read = read.await.map_err(|_| ProxyError::BodyTimeout(within.as_secs_f64()))?;
    read.map_err(|err| {
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
    let live = state.live();
    let created = live.created;
    let names = live.router.models().iter().flat_map(|m| std::iter::once(&m.name).chain(&m.aliases));
    let list = ModelList { object: "list", data: names.map(|name| Model::new(name, created)).collect() };
    axum::Json(list).into_response()
}

/// `GET /v1/models/{id}`.
pub async fn get_model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let live = state.live();
    match live.router.model(&id) {
        // An alias is a model name as far as clients are concerned.
        Some(_) => axum::Json(Model::new(&id, live.created)).into_response(),
        None => ProxyError::ModelNotFound { model: id }.into_response(),
    }
}

/// `GET /health`: the process is up.
pub async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /health/ready`: 200 while the config is loaded and the proxy is not draining (after
/// SIGTERM: 503 `"draining"`). Deployment health never fails readiness: a model with no
/// healthy deployment is the router's problem (it answers 503 for that model), and taking the
/// pod out of a load balancer would not bring it back. The body shows each model's and
/// deployment's state (never a key).
pub async fn ready(State(state): State<AppState>) -> Response {
    let live = state.live();
    let models: Vec<_> = live
        .router
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
                        "state": s.state.label(),
                        "enabled": !s.disabled,
                        "available": s.available,
                        "probing": s.probing,
                        "consecutive_failures": s.consecutive_failures,
                        "retry_in_seconds": ceil_secs(s.retry_in),
                        "paused_for_seconds": ceil_secs(s.paused_for),
                    })
                })
                .collect();
            json!({"model": &*model.name, "available": available, "deployments": deployments})
        })
        .collect();
    let draining = state.drain().is_draining();
    let status = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    // A store that is down does not fail readiness either: cached keys keep working and the
    // ledger waits in its queue; the body (and `llm_proxy_store_up`) says so.
    let governance = &state.metrics().governance;
    let store = state.store().map(|store| {
        json!({
            "backend": store.backend(),
            "up": governance.store_up.get() == 1,
            // Waiting: in the queue, or in the batch the writer is retrying.
            "ledger_queue": governance.ledger_queue.get(),
            "ledger_dropped": governance.ledger_dropped.get(),
        })
    });
    let body =
        json!({"status": if draining { "draining" } else { "ready" }, "store": store, "models": models});
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
