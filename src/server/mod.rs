//! The HTTP edge: the axum app, its middleware stack, and serving with graceful shutdown.

mod admin;
mod conn;
pub mod context;
mod cors;
pub mod drain;
mod edge;
pub mod error;
pub mod govern;
mod listen;
pub mod relay;
mod responses;
mod routes;
mod state;

use axum::Router as HttpRouter;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

pub use conn::serve;
pub use context::RequestCtx;
use error::ProxyError;
pub use listen::{bind, bind_shared, serve_per_core};
pub use state::{AppState, Live, ReloadError, Reloaded};

/// Who served a response: the provider's name, or `none` when the proxy answered itself.
pub const PROVIDER_HEADER: &str = "x-llm-proxy-provider";
/// The model that served a response, when a fallback served it instead of the one asked for.
pub const MODEL_HEADER: &str = "x-llm-proxy-model";
/// How many upstream attempts a response took.
pub const ATTEMPTS_HEADER: &str = "x-llm-proxy-attempts";
/// What a complete (non-streamed) answer cost, in US dollars, exact to the nano-dollar
/// (`0.000123`); a stream's cost is in the ledger.
pub const COST_HEADER: &str = "x-llm-proxy-cost";
/// Taken from the client or generated; echoed back and sent upstream.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The whole HTTP app.
///
/// Layers, outermost first: [`edge`] (request id, CORS, master key on `/v1`, who-served-it
/// headers, access log), then panic recovery (a bug answers 500 in OpenAI's envelope, never a dropped
/// connection), then the routes.
pub fn app(state: AppState) -> HttpRouter {
    HttpRouter::new()
        .route("/v1/chat/completions", post(routes::chat_completions))
        .route("/v1/embeddings", post(routes::embeddings))
        .route("/v1/responses", post(routes::responses).get(responses::websocket))
        .route("/v1/responses/{id}", get(responses::get).delete(responses::delete))
        .route("/v1/responses/{id}/input_items", get(responses::input_items))
        .route("/v1/messages", post(routes::messages))
        .route("/v1/messages/count_tokens", post(routes::count_tokens))
        .route("/v1/models", get(routes::list_models))
        .route("/v1/models/{*id}", get(routes::get_model))
        // Claude Code checks the base URL answers before its first call.
        .route("/", get(routes::health))
        .route("/health", get(routes::health))
        .route("/health/ready", get(routes::ready))
        .route("/metrics", get(admin::metrics))
        .route("/admin/reload", post(admin::reload))
        .route("/admin/deployments", get(admin::deployments))
        .route("/admin/deployments/{*target}", post(admin::set_deployment))
        .fallback(routes::unknown_endpoint)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(CatchPanicLayer::custom(|_| ProxyError::Internal.into_response()))
        .layer(middleware::from_fn_with_state(state.clone(), edge::edge))
        .with_state(state)
}
