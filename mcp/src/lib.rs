//! VitaSync's MCP server (rmcp): nine read-only tools, three live resources per user and one
//! prompt over the store's tables (the materialised analytics, samples, events, connections),
//! scoped to the workspace of the API key it runs with.
//!
//! What lives where:
//! - `server`: the `ServerHandler` (info, instructions, dispatch, workspace of each request);
//! - `tools`: the nine tools, one module per area, with their argument schemas and caps;
//! - `resources`: the `vitasync://users/{id}/…` templates and how each is read;
//! - `subscriptions`: who subscribed to what, and the two change feeds that notify them (the
//!   analytics bus inside `serve`, polling the store when the MCP process runs alone);
//! - `prompts`: the `health_review` prompt;
//! - `http`: the streamable-HTTP service mounted at `/mcp` by the API;
//! - `stdio`: `vitasync mcp`.

pub mod http;
mod prompts;
mod resources;
mod server;
pub mod stdio;
mod subscriptions;
mod tools;

pub use server::{Caller, Shared, VitaSyncMcp};
pub use subscriptions::Subscriptions;
