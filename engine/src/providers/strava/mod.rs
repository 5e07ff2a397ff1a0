//! Strava API v3: workouts only. OAuth without PKCE (client credentials in the form body,
//! comma-joined scopes), the athlete's activity list paged by start time, each activity's
//! detail (for `calories`) and heart-rate stream, the application-wide rate budget read from
//! `X-RateLimit-*`/`X-ReadRateLimit-*`, and push-subscription webhooks.

mod api;
mod mapping;
mod rates;
mod sync;
mod webhook;

use async_trait::async_trait;
use chrono::Duration;

use super::{
    Account, AuthKind, BatchStream, Budget, ClientAuth, Endpoints, OAuthApp, OAuthSpec, Provider,
    ProviderContext, ProviderError, ProviderInfo, SyncRequest, TokenSet, WebhookError,
    WebhookReply, WebhookRequest,
};
use crate::domain::EventType;

pub use rates::parse_rate_headers;

pub const ID: &str = "strava";

/// The one data type Strava has; its cursor is an activity start time.
pub const ACTIVITIES: &str = "activities";

const AUTH_URL: &str = "https://www.strava.com/oauth/authorize";
const TOKEN_URL: &str = "https://www.strava.com/oauth/token";
const API_URL: &str = "https://www.strava.com/api/v3";

/// The most activities one list page may hold.
pub const MAX_PAGE_SIZE: u32 = 200;

static SPEC: OAuthSpec = OAuthSpec {
    scopes: &["read", "activity:read_all"],
    scope_separator: ",",
    pkce: false,
    client_auth: ClientAuth::Body,
    extra_authorize_params: &[("approval_prompt", "auto")],
    refresh_margin: Duration::minutes(5),
};

const METRICS: &[&str] = &["distance", "active_energy", "active_minutes", "heart_rate"];

pub struct StravaProvider {
    info: ProviderInfo,
    ctx: ProviderContext,
    endpoints: Endpoints,
    page_size: u32,
}

impl StravaProvider {
    pub fn new(ctx: ProviderContext) -> Self {
        let endpoints = Endpoints::resolve(&ctx.settings, AUTH_URL, TOKEN_URL, API_URL);
        StravaProvider {
            info: ProviderInfo {
                id: ID,
                name: "Strava",
                auth: AuthKind::Oauth2,
                metrics: METRICS,
                event_types: &[EventType::Workout],
                default_backfill_days: ctx.settings.backfill_days.unwrap_or(90),
            },
            ctx,
            endpoints,
            page_size: MAX_PAGE_SIZE,
        }
    }

    /// Activities per list page (1–200); smaller pages mean smaller batches.
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, MAX_PAGE_SIZE);
        self
    }

    fn budget(&self) -> Budget {
        // Strava limits the application as a whole, not each athlete.
        Budget::app(ID).with_headers(parse_rate_headers)
    }

    /// `…/oauth/token` → `…/oauth/deauthorize`: both live under the same OAuth base.
    fn deauthorize_url(&self) -> String {
        let token = &self.endpoints.token_url;
        match token.rsplit_once('/') {
            Some((base, _)) => format!("{base}/deauthorize"),
            None => format!("{token}/deauthorize"),
        }
    }
}

#[async_trait]
impl Provider for StravaProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn configured(&self) -> bool {
        self.ctx.settings.has_client()
    }

    fn oauth_spec(&self) -> Option<&OAuthSpec> {
        Some(&SPEC)
    }

    fn oauth_app(&self, redirect_url: &str) -> Option<OAuthApp> {
        OAuthApp::from_settings(&self.ctx.settings, &self.endpoints, redirect_url)
    }

    async fn account(&self, tokens: &TokenSet) -> Result<Account, ProviderError> {
        let url = format!("{}/athlete", self.endpoints.api_url);
        let athlete: api::Athlete = self
            .ctx
            .http
            .get_json(&self.budget(), &url, &tokens.access_token, &[])
            .await?;
        Ok(Account {
            provider_user_id: Some(athlete.id.to_string()),
        })
    }

    async fn revoke(
        &self,
        tokens: &TokenSet,
        _provider_user_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let url = self.deauthorize_url();
        let token = tokens.access_token.clone();
        let result = self
            .ctx
            .http
            .send(&self.budget(), |c| {
                c.post(&url).form(&[("access_token", token.as_str())])
            })
            .await;
        match result {
            // A token that is already invalid has nothing left to revoke.
            Ok(_) | Err(ProviderError::Unauthorized(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn webhook(&self, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
        webhook::handle(&self.ctx.settings, req)
    }

    fn sync(&self, req: SyncRequest) -> BatchStream<'_> {
        sync::activities(self, req)
    }
}
