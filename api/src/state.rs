//! Shared application state handed to every handler.

use std::sync::Arc;

use vitasync_actors::{NotifyHandle, SyncHandle};
use vitasync_engine::config::Config;
use vitasync_engine::crypto::KeyRing;
use vitasync_engine::services::notifications::NotifyEnv;
use vitasync_engine::services::sync::SyncEnv;
use vitasync_engine::store::DynStore;

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;

#[derive(Clone)]
pub struct AppState {
    /// The analytics pipeline and the view of its output.
    pub analytics: Arc<vitasync_dataflow::Analytics>,
    pub store: DynStore,
    pub keyring: KeyRing,
    pub metrics: Arc<Metrics>,
    pub rate_limiter: Arc<RateLimiter>,
    pub config: Arc<Config>,
    /// Providers, HTTP client, bus and key ring, as the sync machinery sees them.
    pub sync: SyncEnv,
    /// Hands sync jobs to the actors.
    pub actors: SyncHandle,
    /// Channels, rules and outbound webhooks.
    pub notify: NotifyEnv,
    /// The notification dispatcher and webhook sender.
    pub notifier: NotifyHandle,
}

/// How long a stop waits for the analytics tables to hold everything written before it.
const ANALYTICS_FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl AppState {
    /// Stops the background work in dependency order, once the server no longer accepts
    /// requests: the sync actors end at a batch boundary (their writes reach the analytics),
    /// the analytics store those and publish what changed, and only then does the notifier
    /// stop, after queueing the webhooks of what it already received. A stop thus loses no
    /// finding: what it could not store, the next start reconciles and announces.
    pub async fn shutdown(&self) {
        self.actors.shutdown().await;
        self.analytics.shutdown(ANALYTICS_FLUSH_GRACE).await;
        self.notifier.shutdown().await;
    }
}
