//! WHOOP API v2: scored physiology. OAuth with client credentials in the form body and the
//! `offline` scope (without it WHOOP issues no refresh token); cycles (day strain, energy,
//! mean heart rate), recovery (score, resting heart rate, HRV, SpO2), sleep (events and stage
//! metrics), workouts (events with energy and heart-rate zones) and body weight; the
//! application rate budget from `X-RateLimit-*`; signed webhooks.

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
pub use sync::{BODY, CYCLES, OVERLAP, PAGE_LIMIT, RECOVERY, SLEEP, WINDOW_DAYS, WORKOUTS};
pub use webhook::MAX_SKEW;

pub const ID: &str = "whoop";

const AUTH_URL: &str = "https://api.prod.whoop.com/oauth/oauth2/auth";
const TOKEN_URL: &str = "https://api.prod.whoop.com/oauth/oauth2/token";
const API_URL: &str = "https://api.prod.whoop.com/developer";

static SPEC: OAuthSpec = OAuthSpec {
    scopes: &[
        "offline",
        "read:recovery",
        "read:cycles",
        "read:workout",
        "read:sleep",
        "read:profile",
        "read:body_measurement",
    ],
    scope_separator: " ",
    // WHOOP documents no PKCE; its confidential clients authenticate with the secret.
    pkce: false,
    client_auth: ClientAuth::Body,
    extra_authorize_params: &[],
    refresh_margin: Duration::minutes(5),
};

const METRICS: &[&str] = &[
    "strain",
    "total_energy",
    "heart_rate",
    "recovery_score",
    "resting_heart_rate",
    "hrv_rmssd",
    "spo2",
    "sleep_duration",
    "sleep_efficiency",
    "sleep_deep",
    "sleep_light",
    "sleep_rem",
    "sleep_awake",
    "sleep_score",
    "respiratory_rate",
    "distance",
    "weight",
];

pub struct WhoopProvider {
    info: ProviderInfo,
    ctx: ProviderContext,
    endpoints: Endpoints,
}

impl WhoopProvider {
    pub fn new(ctx: ProviderContext) -> Self {
        let endpoints = Endpoints::resolve(&ctx.settings, AUTH_URL, TOKEN_URL, API_URL);
        WhoopProvider {
            info: ProviderInfo {
                id: ID,
                name: "WHOOP",
                auth: AuthKind::Oauth2,
                metrics: METRICS,
                event_types: &[EventType::Workout, EventType::Sleep],
                default_backfill_days: ctx.settings.backfill_days.unwrap_or(90),
            },
            ctx,
            endpoints,
        }
    }

    fn budget(&self) -> Budget {
        // WHOOP's limits are per client application.
        Budget::app(ID).with_headers(parse_rate_headers)
    }
}

#[async_trait]
impl Provider for WhoopProvider {
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
        let url = format!("{}/v2/user/profile/basic", self.endpoints.api_url);
        let profile: api::Profile = self
            .ctx
            .http
            .get_json(&self.budget(), &url, &tokens.access_token, &[])
            .await?;
        Ok(Account {
            provider_user_id: Some(profile.user_id.to_string()),
        })
    }

    async fn revoke(
        &self,
        tokens: &TokenSet,
        _provider_user_id: Option<&str>,
    ) -> Result<(), ProviderError> {
        let url = format!("{}/v2/user/access", self.endpoints.api_url);
        let token = tokens.access_token.clone();
        let result = self
            .ctx
            .http
            .send(&self.budget(), |c| c.delete(&url).bearer_auth(&token))
            .await;
        match result {
            // Already revoked (or expired): nothing is left to revoke.
            Ok(_) | Err(ProviderError::Unauthorized(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn webhook(&self, req: &WebhookRequest) -> Result<WebhookReply, WebhookError> {
        // WHOOP signs deliveries with the application's client secret (overridable).
        webhook::handle(self.ctx.settings.signing_secret(), req)
    }

    fn sync(&self, req: SyncRequest) -> BatchStream<'_> {
        sync::stream(self, req)
    }
}
