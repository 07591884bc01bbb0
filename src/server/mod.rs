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
mod manage;
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

/// Declares every `/admin` route once: [`ADMIN_ROUTES`] lists them (the OpenAPI test checks
/// each is documented) and `admin_routes` registers the same list, so neither can drift.
macro_rules! admin_api {
    ($($method:ident $path:literal => $handler:path),* $(,)?) => {
        /// Every `/admin` route as (method, path), in axum's path syntax; all need the master
        /// key, and all are described by `GET /admin/openapi.json`.
        pub const ADMIN_ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn admin_routes(router: HttpRouter<AppState>) -> HttpRouter<AppState> {
            router$(.route($path, axum::routing::$method($handler)))*
        }
    };
}

admin_api! {
    post "/admin/reload" => admin::reload,
    get "/admin/deployments" => admin::deployments,
    post "/admin/deployments/{*target}" => admin::set_deployment,
    post "/admin/keys" => manage::create_key,
    get "/admin/keys" => manage::list_keys,
    get "/admin/keys/{id}" => manage::get_key,
    patch "/admin/keys/{id}" => manage::update_key,
    delete "/admin/keys/{id}" => manage::delete_key,
    post "/admin/keys/{id}/block" => manage::block_key,
    post "/admin/keys/{id}/unblock" => manage::unblock_key,
    post "/admin/keys/{id}/rotate" => manage::rotate_key,
    post "/admin/teams" => manage::create_team,
    get "/admin/teams" => manage::list_teams,
    get "/admin/teams/{id}" => manage::get_team,
    patch "/admin/teams/{id}" => manage::update_team,
    delete "/admin/teams/{id}" => manage::delete_team,
    post "/admin/teams/{id}/block" => manage::block_team,
    post "/admin/teams/{id}/unblock" => manage::unblock_team,
    get "/admin/spend" => manage::spend,
    get "/admin/requests" => manage::requests,
    get "/admin/openapi.json" => manage::openapi,
}

/// The whole HTTP app.
///
/// Layers, outermost first: [`edge`] (request id, CORS, master key on `/v1`, who-served-it
/// headers, access log), then panic recovery (a bug answers 500 in OpenAI's envelope, never a dropped
/// connection), then the routes.
pub fn app(state: AppState) -> HttpRouter {
    let router = HttpRouter::new()
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
        .route("/metrics", get(admin::metrics));
    // `/admin` routes are declared in `admin_api!` only, so each is documented and tested.
    admin_routes(router)
        .fallback(routes::unknown_endpoint)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(CatchPanicLayer::custom(|_| ProxyError::Internal.into_response()))
        .layer(middleware::from_fn_with_state(state.clone(), edge::edge))
        .with_state(state)
}
