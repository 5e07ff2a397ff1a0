//! `vitasync mcp`: the server on stdin/stdout for local assistants, bound to the workspace of
//! one API key. It only reads the store (no migrations, no analytics dataflow, no sync actors)
//! and learns about new analytics by polling the tables the server materialises.

use std::time::Duration;

use rmcp::ServiceExt as _;
use vitasync_engine::domain::WorkspaceId;
use vitasync_engine::store::DynStore;

use crate::server::{Shared, VitaSyncMcp};
use crate::subscriptions::Subscriptions;

/// How often subscribed resources are re-read.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// Serves MCP on stdin/stdout until the client closes the stream.
pub async fn serve(store: DynStore, ws: WorkspaceId) -> anyhow::Result<()> {
    let subscriptions = Subscriptions::polling();
    let shared = Shared {
        store,
        epoch: None,
        subscriptions: subscriptions.clone(),
    };
    let poller = subscriptions.poll(shared.clone(), POLL_EVERY);
    let running = VitaSyncMcp::for_workspace(shared, ws)
        .serve(rmcp::transport::stdio())
        .await?;
    let reason = running.waiting().await?;
    tracing::info!(?reason, "MCP client closed the session");
    poller.abort();
    Ok(())
}
