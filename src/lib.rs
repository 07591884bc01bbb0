//! llm-proxy: one OpenAI-compatible API in front of many LLM providers, with priority
//! failover, per-deployment health and streams that are never buffered.
//!
//! The request path, module by module: [`server`] (HTTP edge, auth, errors) → [`api`]
//! (what the client sent) → [`router`] (deployments by priority, failover, health) →
//! [`providers`] (one adapter per wire format) → back through [`sse`] for streams.

pub mod accounting;
pub mod api;
pub mod cli;
pub mod config;
pub mod conversations;
pub mod dialect;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod limits;
pub mod manage;
pub mod metrics;
pub mod providers;
pub mod router;
pub mod server;
pub mod sse;
pub mod store;
pub mod telemetry;
pub mod usage;
pub mod validate;

pub use config::Config;
pub use server::{AppState, app, serve};
