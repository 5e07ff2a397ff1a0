//! Garmin, through the official Connect Developer Program (Health API + Activity API).
//!
//! - `mod.rs`: the provider, its OAuth 2.0 + PKCE shape, the real endpoints, the account and
//!   revoke calls.
//! - `api.rs`: the summary models on the wire.
//! - `summaries.rs`: the summary types read, with their pull, notification and backfill names.
//! - `mapping.rs`: summaries → catalogue samples and events (pure).
//! - `sync.rs`: the pull sync over upload-time windows, and the first connection's backfill.
//! - `webhook.rs`: push and ping notifications and deregistrations.
//!
//! Garmin publishes no rate-limit headers (only backfill quotas in days of data per minute), so
//! calls draw on the application budget and a 429 pauses it.

mod api;
mod mapping;
mod summaries;
mod sync;
mod webhook;

use async_trait::async_trait;
use chrono::Duration;

use super::{
    Account, AuthKind, BatchStream, Budget, ClientAuth, Endpoints, OAuthApp, OAuthSpec, Provider,
    ProviderContext, ProviderError, ProviderHttp, ProviderInfo, ProviderSettings, SyncRequest,
    TokenSet, WebhookError, WebhookReply, WebhookRequest,
};
use crate::domain::EventType;

pub use mapping::activity_type;
pub use sync::{OVERLAP, PULL_WINDOW};

pub const ID: &str = "garmin";

pub const AUTH_URL: &str = "https://connect.garmin.com/oauth2Confirm";
pub const TOKEN_URL: &str = "https://diauth.garmin.com/di-oauth2-service/oauth/token";
pub const API_URL: &str = "https://apis.garmin.com/wellness-api/rest";

/// Garmin asks for no scopes (users pick data permissions on the consent screen), requires
/// PKCE S256, takes the client credentials in the form body, and wants tokens refreshed at
/// least 600 s before they expire.
pub const OAUTH: OAuthSpec = OAuthSpec {
    scopes: &[],
    scope_separator: " ",
    pkce: true,
    client_auth: ClientAuth::Body,
    extra_authorize_params: &[],
    refresh_margin: Duration::seconds(600),
};

pub struct GarminProvider {
    info: ProviderInfo,
    settings: ProviderSettings,
    endpoints: Endpoints,
    http: ProviderHttp,
}

impl GarminProvider {
    pub fn new(ctx: ProviderContext) -> Self {
        let endpoints = Endpoints::resolve(&ctx.settings, AUTH_URL, TOKEN_URL, API_URL);
        GarminProvider {
            info: ProviderInfo {
                id: ID,
                name: "Garmin",
                auth: AuthKind::Oauth2Pkce,
                metrics: mapping::METRICS,
                event_types: &[EventType::Workout, EventType::Sleep],
                default_backfill_days: ctx.settings.backfill_days.unwrap_or(90),
            },
            settings: ctx.settings,
            endpoints,
            http: ctx.http,
        }
    }

    fn budget(&self) -> Budget {
        Budget::app(ID)
    }
}

#[async_trait]
impl Provider for GarminProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn configured(&self) -> bool {
        self.settings.has_client()
    }

    fn oauth_spec(&self) -> Option<&OAuthSpec> {
        Some(&OAUTH)
    }

    fn oauth_app(&self, redirect_url: &str) -> Option<OAuthApp> {
        OAuthApp::from_settings(&self.settings, &self.endpoints, redirect_url)
    }

    async fn account(&self, tokens: &TokenSet) -> Result<Account, ProviderError> {
        let url = format!("{}/user/id", self.endpoints.api_url);
        let id: api::UserId = self
            .http
            .get_json(&self.budget(), &url, &tokens.access_token, &[])
            .await?;
        Ok(Account {
            provider_user_id: Some(id.user_id),
        })
    }

    /// Deleting the user registration ends the grant; Garmin then also sends a
    /// deregistration notification, which finds the connection already gone.
    async fn revoke(
        &self,
        tokens: &TokenSet,
        _provider_user_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let url = format!("{}/user/registration", self.endpoints.api_url);
        let sent = self
            .http
            .send(&self.budget(), |c| {
                c.delete(&url).bearer_auth(&tokens.access_token)
            })
            .await;
        match sent {
            // Already revoked or unknown at Garmin: the grant is gone either way.
            Ok(_) | Err(ProviderError::Unauthorized(_) | ProviderError::Forbidden(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn webhook(&self, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
        webhook::handle(self, req)
    }

    fn sync(&self, req: SyncRequest) -> BatchStream<'_> {
        sync::stream(self, req)
    }
}
