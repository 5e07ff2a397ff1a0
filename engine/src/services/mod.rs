//! Use cases shared by the REST API, the CLI and the MCP server. Each takes the store port and
//! plain values, validates input (errors name the field) and never touches a transport type.

pub mod analytics;
pub mod connections;
pub mod ingest;
pub mod keys;
pub mod notifications;
pub mod outbound_webhooks;
pub mod query;
pub mod sync;
pub mod users;
pub mod webhooks;
pub mod workspaces;
