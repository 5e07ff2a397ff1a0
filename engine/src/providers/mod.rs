//! Provider plugins. Each provider is one folder (`providers/<name>/`) with its client, its
//! mapping to the metric catalogue and its tests; the [`Registry`] is filled at start-up, so
//! adding a provider changes no core code.
//!
//! A provider converts to the catalogue at the edge (units, local dates from the provider's
//! offsets or the user's time zone, sleep on its end date) and yields its history lazily as a
//! stream of batches, each carrying the cursors that are valid once it is committed — so memory
//! stays flat however much history there is, and a crash between batches resumes exactly.

pub mod demo;
pub mod fitbit;
pub mod garmin;
pub mod http;
pub mod oauth;
pub mod settings;
pub mod strava;
pub mod webhook;
pub mod whoop;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{EventType, NewEvent, NewSample};

pub use http::{Budget, ProviderHttp, RetryPolicy};
pub use oauth::{ClientAuth, OAuthApp, OAuthSpec, TokenSet};
pub use settings::{Endpoints, ProviderSettings};
pub use webhook::{WebhookError, WebhookReply, WebhookRequest, WebhookTarget};

/// How a user connects an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// No credentials (the demo provider).
    None,
    /// OAuth 2.0 authorization code.
    Oauth2,
    /// OAuth 2.0 authorization code with PKCE (S256).
    Oauth2Pkce,
}

/// Static facts about a provider.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: &'static str,
    pub name: &'static str,
    pub auth: AuthKind,
    pub metrics: &'static [&'static str],
    pub event_types: &'static [EventType],
    /// Days of history fetched when a connection is made.
    pub default_backfill_days: u32,
}

/// Per-data-type progress: everything up to the instant is stored. Kept with the connection and
/// written in the same transaction as the batch it covers.
pub type Cursors = BTreeMap<String, DateTime<Utc>>;

/// What a sync needs to know about the connection's user.
#[derive(Debug, Clone)]
pub struct SyncUser {
    pub external_id: String,
    pub timezone: Option<chrono_tz::Tz>,
}

/// One sync run's input.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub user: SyncUser,
    /// Decrypted access token, for providers that need one.
    pub access_token: Option<String>,
    /// The user's id at the provider (per-user rate budgets, URLs that name the user).
    pub provider_user_id: Option<String>,
    /// Only these data types (a webhook's targeted sync); empty = every type.
    pub data_types: Vec<String>,
    pub cursors: Cursors,
    /// Explicit window (a manual re-sync); None = from the cursors (or the backfill start) to now.
    pub range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub backfill_days: u32,
    /// When the connection was made (anchors anything relative to it, e.g. the demo's story).
    pub connected_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

impl SyncRequest {
    /// Where a data type's sync starts: the explicit range, else its cursor minus `overlap`
    /// (late and partial-day values are picked up again), else the backfill start.
    pub fn start_for(&self, data_type: &str, overlap: chrono::Duration) -> DateTime<Utc> {
        if let Some((from, _)) = self.range {
            return from;
        }
        match self.cursors.get(data_type) {
            Some(c) => *c - overlap,
            None => self.now - chrono::Duration::days(i64::from(self.backfill_days)),
        }
    }

    /// Whether this run covers `data_type`.
    pub fn wants(&self, data_type: &str) -> bool {
        self.data_types.is_empty() || self.data_types.iter().any(|d| d == data_type)
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.range
            .map(|(_, to)| to.min(self.now))
            .unwrap_or(self.now)
    }
}

/// One unit of progress: samples and events to write, and the cursors after them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncBatch {
    pub samples: Vec<NewSample>,
    pub events: Vec<NewEvent>,
    pub cursors: Cursors,
}

/// How a provider call failed, as far as the sync machinery cares.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// 429: wait before calling this provider (application budget) again.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// 401 after a refresh: the user must reconnect.
    #[error("authorization rejected: {0}")]
    Unauthorized(String),
    /// 5xx, timeouts, connection errors: retry with backoff.
    #[error("transient provider failure: {0}")]
    Transient(String),
    /// The provider answered something we cannot read.
    #[error("malformed provider response: {0}")]
    Malformed(String),
    /// 403: the grant lacks a scope or permission; refreshing will not help.
    #[error("permission denied by provider: {0}")]
    Forbidden(String),
    /// 404 for a resource the sync expected.
    #[error("not found at provider: {0}")]
    NotFound(String),
    /// Any other 4xx: the request itself was refused.
    #[error("request rejected by provider: {0}")]
    Rejected(String),
    /// The provider is not configured on this server.
    #[error("provider not configured: {0}")]
    NotConfigured(&'static str),
}

pub type BatchStream<'a> = BoxStream<'a, Result<SyncBatch, ProviderError>>;

/// The account a token set belongs to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    pub provider_user_id: Option<String>,
}

/// A data source.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    fn info(&self) -> &ProviderInfo;

    /// False when the server lacks the credentials this provider needs.
    fn configured(&self) -> bool;

    /// The shape of the provider's OAuth flow; None for providers that need no OAuth.
    fn oauth_spec(&self) -> Option<&OAuthSpec> {
        None
    }

    /// This deployment's OAuth client, with `redirect_url` as the callback; None when the
    /// provider needs no OAuth or is not configured.
    fn oauth_app(&self, redirect_url: &str) -> Option<OAuthApp> {
        let _ = redirect_url;
        None
    }

    /// Who the tokens belong to at the provider (called once after the code exchange).
    async fn account(&self, tokens: &TokenSet) -> Result<Account, ProviderError> {
        let _ = tokens;
        Ok(Account::default())
    }

    /// Per-connection set-up at the provider once the account is connected (e.g. Fitbit's
    /// webhook subscriptions). `subscription_id` is unique per connection. A failure is logged
    /// by the caller and does not undo the connection: syncs still run on the schedule.
    async fn on_connected(
        &self,
        tokens: &TokenSet,
        subscription_id: &str,
    ) -> Result<(), ProviderError> {
        let _ = (tokens, subscription_id);
        Ok(())
    }

    /// Revokes the grant at the provider, where the provider allows it.
    async fn revoke(
        &self,
        tokens: &TokenSet,
        provider_user_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let _ = (tokens, provider_user_id);
        Ok(())
    }

    /// Verifies and reads a webhook call (handshakes included).
    fn webhook(&self, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
        let _ = req;
        Err(WebhookError::Unsupported)
    }

    /// Lazily yields the connection's data from its cursors up to now.
    fn sync(&self, req: SyncRequest) -> BatchStream<'_>;
}

/// What a provider is built from.
#[derive(Clone)]
pub struct ProviderContext {
    pub settings: ProviderSettings,
    pub http: ProviderHttp,
}

/// The providers known to this server, by id.
#[derive(Clone, Default)]
pub struct Registry {
    providers: HashMap<&'static str, Arc<dyn Provider>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Every built-in provider, configured from `settings` (by provider id).
    pub fn builtin(settings: &BTreeMap<String, ProviderSettings>, http: &ProviderHttp) -> Self {
        let ctx = |id: &str| ProviderContext {
            settings: settings.get(id).cloned().unwrap_or_default(),
            http: http.clone(),
        };
        let mut r = Registry::new();
        r.register(Arc::new(demo::DemoProvider::new()));
        r.register(Arc::new(fitbit::FitbitProvider::new(ctx("fitbit"))));
        r.register(Arc::new(garmin::GarminProvider::new(ctx("garmin"))));
        r.register(Arc::new(strava::StravaProvider::new(ctx("strava"))));
        r.register(Arc::new(whoop::WhoopProvider::new(ctx("whoop"))));
        r
    }

    pub fn register(&mut self, p: Arc<dyn Provider>) {
        self.providers.insert(p.info().id, p);
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(id).cloned()
    }

    /// All providers, sorted by id.
    pub fn all(&self) -> Vec<Arc<dyn Provider>> {
        let mut v: Vec<_> = self.providers.values().cloned().collect();
        v.sort_by_key(|p| p.info().id);
        v
    }
}
