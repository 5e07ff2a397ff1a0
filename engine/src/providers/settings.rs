//! Per-provider deployment settings: OAuth client credentials, endpoint bases (so tests,
//! proxies and regional hosts work) and webhook secrets. Read from `[providers.<id>]` in the
//! TOML file and from `VITASYNC_<P>_*` environment variables; the provider fills in its real
//! hosts for anything left unset.

use std::collections::HashMap;

use serde::Deserialize;

/// What an operator sets for one provider. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// `VITASYNC_<P>_CLIENT_ID`
    pub client_id: Option<String>,
    /// `VITASYNC_<P>_CLIENT_SECRET`
    pub client_secret: Option<String>,
    /// `VITASYNC_<P>_AUTH_URL`: the authorization page.
    pub auth_url: Option<String>,
    /// `VITASYNC_<P>_TOKEN_URL`: the token endpoint.
    pub token_url: Option<String>,
    /// `VITASYNC_<P>_API_URL`: base of the data endpoints.
    pub api_url: Option<String>,
    /// `VITASYNC_<P>_WEBHOOK_SECRET`: the key webhook signatures are checked with, where the
    /// provider signs with something other than the client secret.
    pub webhook_secret: Option<String>,
    /// `VITASYNC_<P>_WEBHOOK_VERIFY_TOKEN`: the verification code/token of the subscription
    /// handshake (Fitbit `verify`, Strava `hub.verify_token`).
    pub webhook_verify_token: Option<String>,
    /// `VITASYNC_<P>_BACKFILL_DAYS`: history fetched when a connection is made.
    pub backfill_days: Option<u32>,
}

/// The environment variable suffixes, in the order the README lists them.
pub const ENV_SUFFIXES: &[&str] = &[
    "CLIENT_ID",
    "CLIENT_SECRET",
    "AUTH_URL",
    "TOKEN_URL",
    "API_URL",
    "WEBHOOK_SECRET",
    "WEBHOOK_VERIFY_TOKEN",
    "BACKFILL_DAYS",
];

impl ProviderSettings {
    /// Overlays `VITASYNC_<P>_*` variables on these settings.
    pub fn apply_env(
        &mut self,
        provider: &str,
        env: &HashMap<String, String>,
    ) -> Result<(), String> {
        let prefix = format!("VITASYNC_{}_", provider.to_ascii_uppercase());
        let get = |suffix: &str| {
            env.get(&format!("{prefix}{suffix}"))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let set = |slot: &mut Option<String>, suffix: &str| {
            if let Some(v) = get(suffix) {
                *slot = Some(v);
            }
        };
        set(&mut self.client_id, "CLIENT_ID");
        set(&mut self.client_secret, "CLIENT_SECRET");
        set(&mut self.auth_url, "AUTH_URL");
        set(&mut self.token_url, "TOKEN_URL");
        set(&mut self.api_url, "API_URL");
        set(&mut self.webhook_secret, "WEBHOOK_SECRET");
        set(&mut self.webhook_verify_token, "WEBHOOK_VERIFY_TOKEN");
        if let Some(v) = get("BACKFILL_DAYS") {
            self.backfill_days = Some(
                v.parse()
                    .map_err(|_| format!("{prefix}BACKFILL_DAYS has an invalid value '{v}'"))?,
            );
        }
        Ok(())
    }

    /// The key webhook signatures are checked with: the configured webhook secret, else the
    /// client secret (what Fitbit and WHOOP sign with).
    pub fn signing_secret(&self) -> Option<&str> {
        self.webhook_secret
            .as_deref()
            .or(self.client_secret.as_deref())
    }

    /// Both OAuth client credentials are present.
    pub fn has_client(&self) -> bool {
        self.client_id.is_some() && self.client_secret.is_some()
    }
}

/// Resolved endpoints: the operator's override or the provider's real host, without a
/// trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub auth_url: String,
    pub token_url: String,
    pub api_url: String,
}

impl Endpoints {
    pub fn resolve(s: &ProviderSettings, auth: &str, token: &str, api: &str) -> Self {
        let pick = |o: &Option<String>, d: &str| {
            o.as_deref().unwrap_or(d).trim_end_matches('/').to_string()
        };
        Endpoints {
            auth_url: pick(&s.auth_url, auth),
            token_url: pick(&s.token_url, token),
            api_url: pick(&s.api_url, api),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overlays_and_endpoints_default_to_real_hosts() {
        let env: HashMap<String, String> = [
            ("VITASYNC_FITBIT_CLIENT_ID", "abc"),
            ("VITASYNC_FITBIT_API_URL", "http://127.0.0.1:9/"),
            ("VITASYNC_FITBIT_BACKFILL_DAYS", "30"),
            ("VITASYNC_STRAVA_CLIENT_ID", "other"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut s = ProviderSettings::default();
        s.apply_env("fitbit", &env).unwrap();
        assert_eq!(s.client_id.as_deref(), Some("abc"));
        assert_eq!(s.backfill_days, Some(30));
        assert!(!s.has_client());
        let e = Endpoints::resolve(&s, "https://a/authorize", "https://a/token", "https://api");
        assert_eq!(e.api_url, "http://127.0.0.1:9");
        assert_eq!(e.token_url, "https://a/token");

        assert_eq!(s.signing_secret(), None);
        s.client_secret = Some("client".into());
        assert_eq!(s.signing_secret(), Some("client"));
        s.webhook_secret = Some("hooks".into());
        assert_eq!(
            s.signing_secret(),
            Some("hooks"),
            "an explicit webhook secret wins"
        );

        let bad: HashMap<String, String> =
            [("VITASYNC_FITBIT_BACKFILL_DAYS".into(), "many".into())].into();
        assert!(
            s.apply_env("fitbit", &bad)
                .unwrap_err()
                .contains("BACKFILL_DAYS")
        );
    }
}
