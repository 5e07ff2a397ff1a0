//! VitaSync's HTTP API and the `vitasync` binary's composition root.
//!
//! What lives where:
//! - [`cli`]: the command line (demo, serve, migrate, workspace, keys).
//! - [`demo`]: `vitasync demo`, the whole product on the embedded default in one command.
//! - [`startup`]: `Application::build` — store, key ring, bootstrap key, provider registry,
//!   sync actors, actix-web app.
//! - [`routes`]: one module per resource; each handler declares its scope in its signature.
//! - [`auth`]: the bearer-key extractor (authentication, per-key rate limit, scope check).
//! - [`extract`]: JSON and query extractors whose errors name the offending field.
//! - [`error`]: the single mapping from engine errors to HTTP status and error code.
//! - [`openapi`]: the OpenAPI 3.1 document; `/docs` serves an embedded explorer for it.
//! - [`metrics`], [`telemetry`]: Prometheus metrics, logging and per-request spans.

pub mod auth;
pub mod cli;
pub mod demo;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod startup;
pub mod state;
pub mod telemetry;
