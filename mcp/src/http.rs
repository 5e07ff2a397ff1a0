//! Streamable HTTP: the service the API mounts at `/mcp`. Authentication happens in front of it
//! (the API's bearer-key check); the hook here hands the authenticated [`Caller`] from the
//! actix request to the MCP handlers, which scope every call to its workspace.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpMessage as _;
use rmcp_actix_web::transport::{LocalSessionManager, StreamableHttpService};

use crate::server::{Caller, Shared, VitaSyncMcp};

/// Builds the service once per server (sessions live in its session manager); mount a clone of
/// it per actix worker with `.scope_with_path("/mcp")`. `allowed_hosts` are the `Host` names
/// accepted (DNS-rebinding protection); it must not be empty.
pub fn service(shared: Shared, allowed_hosts: Vec<String>) -> StreamableHttpService<VitaSyncMcp> {
    assert!(
        !allowed_hosts.is_empty(),
        "an empty allow-list would disable the Host check"
    );
    StreamableHttpService::builder()
        .service_factory(Arc::new(move || {
            Ok(VitaSyncMcp::per_request(shared.clone()))
        }))
        .session_manager(Arc::new(LocalSessionManager::default()))
        .stateful_mode(true)
        .sse_keep_alive(Duration::from_secs(15))
        .allowed_hosts(allowed_hosts)
        .on_request_fn(|req, ext| {
            if let Some(caller) = req.extensions().get::<Caller>() {
                ext.insert(*caller);
            }
        })
        .build()
}
