//! Fitbit Web API provider.
//!
//! - `mod.rs`: the [`Provider`] implementation, the OAuth shape (Basic client authentication at
//!   the token endpoint, PKCE S256, space-separated scopes) and the real endpoint defaults.
//! - [`api`]: wire types. [`client`]: typed endpoint calls and the per-user rate budget.
//! - [`zone`]: reading Fitbit's offset-less local times. [`mapping`]: wire → samples/events.
//! - [`sync`]: the lazy, per-data-type-cursor sync stream. [`webhook`]: subscriptions.
//!
//! Google retires this API (support ends 2026-09-30, shutdown with HTTP 410 in November 2026)
//! in favour of the Google Health API; everything Fitbit-specific lives in this folder so a
//! successor connector can replace it without touching anything else.

pub mod api;
pub mod client;
pub mod mapping;
pub mod sync;
pub mod webhook;
pub mod zone;

use async_trait::async_trait;
use chrono::Duration;

use super::{
    Account, AuthKind, BatchStream, ClientAuth, Endpoints, OAuthApp, OAuthSpec, Provider,
    ProviderContext, ProviderError, ProviderHttp, ProviderInfo, ProviderSettings, SyncRequest,
    TokenSet, WebhookError, WebhookReply, WebhookRequest,
};
use crate::domain::EventType;

pub const ID: &str = "fitbit";

pub const AUTH_URL: &str = "https://www.fitbit.com/oauth2/authorize";
pub const TOKEN_URL: &str = "https://api.fitbit.com/oauth2/token";
pub const API_URL: &str = "https://api.fitbit.com";

/// Fitbit authenticates a server application at the token and revoke endpoints with HTTP Basic,
/// accepts PKCE, and joins scopes with spaces. Its refresh tokens are single-use.
pub static OAUTH: OAuthSpec = OAuthSpec {
    scopes: &[
        "activity",
        "heartrate",
        "sleep",
        "weight",
        "profile",
        "oxygen_saturation",
        "respiratory_rate",
        "temperature",
    ],
    scope_separator: " ",
    pkce: true,
    client_auth: ClientAuth::Basic,
    extra_authorize_params: &[],
    refresh_margin: Duration::minutes(5),
};

pub struct FitbitProvider {
    info: ProviderInfo,
    settings: ProviderSettings,
    endpoints: Endpoints,
    http: ProviderHttp,
}

impl FitbitProvider {
    pub fn new(ctx: ProviderContext) -> Self {
        let endpoints = Endpoints::resolve(&ctx.settings, AUTH_URL, TOKEN_URL, API_URL);
        FitbitProvider {
            info: ProviderInfo {
                id: ID,
                name: "Fitbit",
                auth: AuthKind::Oauth2Pkce,
                metrics: mapping::METRICS,
                event_types: &[EventType::Workout, EventType::Sleep],
                // One call per date for the daily summary and for intraday heart rate against
                // 150 calls an hour per user: the platform's 90 days take about two hours,
                // the rate budget pausing and the actor resuming from the cursors in between
                // (cheap range endpoints go first, so most types land in the first hour).
                default_backfill_days: ctx.settings.backfill_days.unwrap_or(90),
            },
            settings: ctx.settings,
            endpoints,
            http: ctx.http,
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }
}

#[async_trait]
impl Provider for FitbitProvider {
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

    /// The Fitbit user id (`encodedId`) from the profile.
    async fn account(&self, tokens: &TokenSet) -> Result<Account, ProviderError> {
        let c = client::Client {
            http: &self.http,
            api: &self.endpoints.api_url,
            token: &tokens.access_token,
            budget: client::budget(None),
        };
        let profile = c.profile().await?;
        Ok(Account {
            provider_user_id: Some(profile.user.encoded_id),
        })
    }

    /// Fitbit only notifies about users with a subscription: one per connection, for every
    /// collection, created when webhooks are set up here (a verification code is configured).
    /// 409 means another subscriber id already covers the user, which is as good.
    async fn on_connected(
        &self,
        tokens: &TokenSet,
        subscription_id: &str,
    ) -> Result<(), ProviderError> {
        if self.settings.webhook_verify_token.is_none() {
            return Ok(());
        }
        let url = format!(
            "{}/1/user/-/apiSubscriptions/{subscription_id}.json",
            self.endpoints.api_url
        );
        match self
            .http
            .send(&client::budget(None), |c| {
                c.post(&url).bearer_auth(&tokens.access_token)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(ProviderError::Rejected(m)) if m.starts_with("409") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// RFC 7009 revoke with the client's Basic credentials. Revoking either token removes every
    /// token of the user for this application; the refresh token is used because it is still
    /// valid when the access token has expired.
    async fn revoke(
        &self,
        tokens: &TokenSet,
        _provider_user_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let (Some(id), Some(secret)) = (&self.settings.client_id, &self.settings.client_secret)
        else {
            return Err(ProviderError::NotConfigured(ID));
        };
        let token = tokens
            .refresh_token
            .as_deref()
            .unwrap_or(&tokens.access_token);
        let url = format!("{}/oauth2/revoke", self.endpoints.api_url);
        self.http
            .send(&client::budget(None), |c| {
                c.post(&url)
                    .basic_auth(id, Some(secret))
                    .form(&[("token", token)])
            })
            .await?;
        Ok(())
    }

    fn webhook(&self, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
        webhook::handle(
            req,
            self.settings.webhook_verify_token.as_deref(),
            self.settings.signing_secret(),
        )
    }

    fn sync(&self, req: SyncRequest) -> BatchStream<'_> {
        sync::run(self, req)
    }
}
