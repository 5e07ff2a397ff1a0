//! Use cases shared by the REST API, the CLI and the MCP server. Each takes the store port and
//! plain values, validates input (errors name the field) and never touches a transport type.

pub mod ingest;
pub mod keys;
pub mod users;
pub mod workspaces;
