//! VitaSync engine: everything that is neither transport nor actor nor dataflow.
//!
//! What lives where:
//! - [`domain`]: workspaces, API keys, users, samples — the types the store keeps.
//! - [`catalogue`]: the canonical metric list with units, accepted input units and daily rules.
//! - [`time`]: the time model (UTC instant + the user's local date).
//! - [`store`]: the `Store` port and its SQLite and PostgreSQL implementations, with embedded
//!   migrations; tenancy is enforced by its signatures.
//! - [`services`]: use cases shared by the REST API and the MCP server (validation, ingest,
//!   keys, bootstrap).
//! - [`providers`]: the provider port, the registry, and one folder per provider.
//! - [`analytics`]: the port committed sample changes reach the analytics through.
//! - [`bus`]: the in-process event bus the data-in side publishes state changes on.
//! - [`notify`]: the notification event model, channels, rules, SSRF guard and webhook
//!   signatures.
//! - [`crypto`]: AES-256-GCM secrets at rest under rotatable key ids.
//! - [`config`]: layered configuration (defaults → TOML → environment).
//! - [`cursor`]: opaque, stable (time, id) pagination cursors.
//! - [`error`]: the crate's one error enum.
//!
//! This crate has no actix, timely or rmcp types: the transports and the dataflow depend on it,
//! never the other way round.

pub mod analytics;
pub mod bus;
pub mod catalogue;
pub mod config;
pub mod crypto;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod notify;
pub mod providers;
pub mod services;
pub mod store;
pub mod time;

pub use error::{Error, Result};

/// The version of this build (the workspace version, which CI checks against `VERSION`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
