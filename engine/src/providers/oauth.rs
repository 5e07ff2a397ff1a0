//! OAuth 2.0 authorization-code flow, shared by every provider through the `oauth2` crate.
//! Providers differ only in data: scopes and how they are joined, whether PKCE is accepted,
//! how the client authenticates at the token endpoint, and extra authorize parameters — all in
//! an [`OAuthSpec`]. HTTP goes through the platform's reqwest client (a small adapter), so
//! there is one HTTP stack and one TLS configuration.

use chrono::{DateTime, Duration, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::ProviderError;
use super::http::ProviderHttp;

/// How the client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic `client_id:client_secret`.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// The provider-specific shape of its OAuth flow.
#[derive(Debug, Clone)]
pub struct OAuthSpec {
    pub scopes: &'static [&'static str],
    /// Space for most providers; Strava joins with commas.
    pub scope_separator: &'static str,
    /// Send an S256 PKCE challenge and verifier.
    pub pkce: bool,
    pub client_auth: ClientAuth,
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
    /// Refresh this long before the access token expires.
    pub refresh_margin: Duration,
}

/// One deployment's OAuth client for a provider.
#[derive(Debug, Clone)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: String,
    pub auth_url: String,
    pub token_url: String,
    pub redirect_url: String,
}

impl OAuthApp {
    /// The deployment's client for a provider: None until both client credentials are set.
    pub fn from_settings(
        settings: &super::ProviderSettings,
        endpoints: &super::Endpoints,
        redirect_url: &str,
    ) -> Option<Self> {
        Some(OAuthApp {
            client_id: settings.client_id.clone()?,
            client_secret: settings.client_secret.clone()?,
            auth_url: endpoints.auth_url.clone(),
            token_url: endpoints.token_url.clone(),
            redirect_url: redirect_url.to_string(),
        })
    }
}

/// Tokens as stored (sealed) with a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Scopes as granted (from the token response), not as requested.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl TokenSet {
    /// True when the access token expires within `margin` of `now`.
    pub fn needs_refresh(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        self.refresh_token.is_some() && self.expires_at.is_some_and(|e| e - margin <= now)
    }
}

/// What the authorize endpoint needs, and what must be kept to finish the flow.
#[derive(Debug, Clone)]
pub struct AuthorizeStart {
    pub url: String,
    pub pkce_verifier: Option<String>,
}

fn auth_type(spec: &OAuthSpec) -> AuthType {
    match spec.client_auth {
        ClientAuth::Basic => AuthType::BasicAuth,
        ClientAuth::Body => AuthType::RequestBody,
    }
}

fn bad_config(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Rejected(format!("invalid {what}: {e}"))
}

/// The authorization URL for `state`, with a fresh PKCE pair when the provider accepts PKCE.
pub fn authorize(
    spec: &OAuthSpec,
    app: &OAuthApp,
    state: &str,
) -> Result<AuthorizeStart, ProviderError> {
    let client = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_auth_uri(AuthUrl::new(app.auth_url.clone()).map_err(|e| bad_config("auth URL", e))?)
        .set_redirect_uri(
            RedirectUrl::new(app.redirect_url.clone())
                .map_err(|e| bad_config("redirect URL", e))?,
        );
    let state = state.to_string();
    let mut req = client.authorize_url(move || CsrfToken::new(state));
    if spec.scope_separator == " " {
        req = req.add_scopes(spec.scopes.iter().map(|s| Scope::new(s.to_string())));
    } else if !spec.scopes.is_empty() {
        req = req.add_extra_param("scope", spec.scopes.join(spec.scope_separator));
    }
    for (k, v) in spec.extra_authorize_params {
        req = req.add_extra_param(*k, *v);
    }
    let mut verifier = None;
    if spec.pkce {
        let (challenge, v) = PkceCodeChallenge::new_random_sha256();
        req = req.set_pkce_challenge(challenge);
        verifier = Some(v.secret().clone());
    }
    let (url, _) = req.url();
    Ok(AuthorizeStart {
        url: url.to_string(),
        pkce_verifier: verifier,
    })
}

/// A client with only the token endpoint set (the authorize URL is built separately).
type TokenClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn token_client(spec: &OAuthSpec, app: &OAuthApp) -> Result<TokenClient, ProviderError> {
    Ok(BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_client_secret(ClientSecret::new(app.client_secret.clone()))
        .set_auth_type(auth_type(spec))
        .set_token_uri(
            TokenUrl::new(app.token_url.clone()).map_err(|e| bad_config("token URL", e))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(app.redirect_url.clone())
                .map_err(|e| bad_config("redirect URL", e))?,
        ))
}

/// Exchanges an authorization code for tokens.
pub async fn exchange_code(
    http: &ProviderHttp,
    spec: &OAuthSpec,
    app: &OAuthApp,
    code: &str,
    pkce_verifier: Option<&str>,
    now: DateTime<Utc>,
) -> Result<TokenSet, ProviderError> {
    let client = token_client(spec, app)?;
    let mut req = client.exchange_code(AuthorizationCode::new(code.to_string()));
    if let Some(v) = pkce_verifier {
        req = req.set_pkce_verifier(PkceCodeVerifier::new(v.to_string()));
    }
    let adapter = Adapter(http);
    let resp = req
        .request_async(&|r| adapter.call(r))
        .await
        .map_err(classify)?;
    Ok(token_set(&resp, None, now))
}

/// Uses a refresh token. Providers rotate refresh tokens: the result carries the new one (or
/// the old one when the provider kept it), and must be persisted before the access token is
/// used.
pub async fn refresh(
    http: &ProviderHttp,
    spec: &OAuthSpec,
    app: &OAuthApp,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<TokenSet, ProviderError> {
    let client = token_client(spec, app)?;
    let rt = RefreshToken::new(refresh_token.to_string());
    let adapter = Adapter(http);
    let resp = client
        .exchange_refresh_token(&rt)
        .request_async(&|r| adapter.call(r))
        .await
        .map_err(classify)?;
    Ok(token_set(&resp, Some(refresh_token), now))
}

fn token_set(resp: &BasicTokenResponse, old_refresh: Option<&str>, now: DateTime<Utc>) -> TokenSet {
    TokenSet {
        access_token: resp.access_token().secret().clone(),
        refresh_token: resp
            .refresh_token()
            .map(|r| r.secret().clone())
            .or_else(|| old_refresh.map(str::to_string)),
        expires_at: resp
            .expires_in()
            .and_then(|d| Duration::from_std(d).ok())
            .map(|d| now + d),
        scopes: resp
            .scopes()
            .map(|s| s.iter().flat_map(split_scopes).collect())
            .unwrap_or_default(),
    }
}

/// Some providers return one comma-joined scope string.
fn split_scopes(s: &Scope) -> Vec<String> {
    s.split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn classify(
    e: RequestTokenError<AdapterError, oauth2::basic::BasicErrorResponse>,
) -> ProviderError {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant | BasicErrorResponseType::InvalidClient => {
                ProviderError::Unauthorized(format!("token endpoint: {}", r.error()))
            }
            other => ProviderError::Rejected(format!("token endpoint: {other}")),
        },
        RequestTokenError::Request(AdapterError(p)) => p,
        RequestTokenError::Parse(e, body) => envelope_error(&body)
            .unwrap_or_else(|| ProviderError::Malformed(format!("token response: {e}"))),
        RequestTokenError::Other(m) => ProviderError::Malformed(format!("token response: {m}")),
    }
}

/// Token-endpoint errors outside RFC 6749's `{"error": …}` shape, such as Fitbit's
/// `{"errors": [{"errorType": "invalid_grant", …}]}`: a rejected grant or client still means
/// the user must reconnect, not that the response was unreadable.
fn envelope_error(body: &[u8]) -> Option<ProviderError> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = v.get("errors")?.get(0)?.get("errorType")?.as_str()?;
    Some(match kind {
        "invalid_grant" | "invalid_client" | "invalid_token" | "expired_token" => {
            ProviderError::Unauthorized(format!("token endpoint: {kind}"))
        }
        other => ProviderError::Rejected(format!("token endpoint: {other}")),
    })
}

#[derive(Debug)]
struct AdapterError(ProviderError);

impl std::fmt::Display for AdapterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for AdapterError {}

/// oauth2's HTTP seam over the platform's reqwest client. Error statuses are returned to
/// oauth2 as responses (it parses the RFC 6749 error body); transport failures become
/// `Transient`.
struct Adapter<'a>(&'a ProviderHttp);

impl Adapter<'_> {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, AdapterError> {
        let (parts, body) = req.into_parts();
        let mut builder = self
            .0
            .client()
            .request(parts.method, parts.uri.to_string())
            .body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let resp = builder
            .send()
            .await
            .map_err(|e| AdapterError(ProviderError::Transient(format!("token endpoint: {e}"))))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(AdapterError(ProviderError::Transient(format!(
                "token endpoint: {status}"
            ))));
        }
        let mut out = http::Response::builder().status(status.as_u16());
        for (name, value) in resp.headers() {
            out = out.header(name.as_str(), value.as_bytes());
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| AdapterError(ProviderError::Transient(format!("token endpoint: {e}"))))?;
        out.body(bytes.to_vec())
            .map_err(|e| AdapterError(ProviderError::Malformed(e.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_string_contains, header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SPEC: OAuthSpec = OAuthSpec {
        scopes: &["read", "activity:read_all"],
        scope_separator: ",",
        pkce: true,
        client_auth: ClientAuth::Basic,
        extra_authorize_params: &[("approval_prompt", "auto")],
        refresh_margin: Duration::minutes(5),
    };

    fn app(server: &str) -> OAuthApp {
        OAuthApp {
            client_id: "cid".into(),
            client_secret: "secret".into(),
            auth_url: format!("{server}/authorize"),
            token_url: format!("{server}/token"),
            redirect_url: "https://vs.example/v1/oauth/x/callback".into(),
        }
    }

    #[test]
    fn authorize_url_carries_state_scopes_and_pkce() {
        let start = authorize(&SPEC, &app("https://p.example"), "st4te").unwrap();
        let url = url::Url::parse(&start.url).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st4te");
        assert_eq!(q["scope"], "read,activity:read_all");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["approval_prompt"], "auto");
        assert_eq!(q["response_type"], "code");
        assert!(start.pkce_verifier.unwrap().len() >= 43);
    }

    #[tokio::test]
    async fn exchange_and_refresh_with_rotation() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(header_exists("authorization"))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code_verifier=v"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": "a1", "refresh_token": "r1", "expires_in": 3600,
                "token_type": "Bearer", "scope": "read activity:read_all"
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains("refresh_token=r1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": "a2", "refresh_token": "r2", "expires_in": 3600,
                "token_type": "bearer"
            })))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains("refresh_token=gone"))
            .respond_with(
                ResponseTemplate::new(400)
                    .set_body_json(serde_json::json!({"error": "invalid_grant"})),
            )
            .mount(&server)
            .await;
        let http = ProviderHttp::new(Default::default());
        let now = Utc::now();
        let a = app(&server.uri());
        let t = exchange_code(&http, &SPEC, &a, "c0de", Some("v"), now)
            .await
            .unwrap();
        assert_eq!(t.access_token, "a1");
        assert_eq!(t.scopes, vec!["read", "activity:read_all"]);
        assert_eq!(t.expires_at, Some(now + Duration::seconds(3600)));
        assert!(t.needs_refresh(now + Duration::minutes(56), SPEC.refresh_margin));
        let t2 = refresh(&http, &SPEC, &a, "r1", now).await.unwrap();
        assert_eq!(
            (t2.access_token.as_str(), t2.refresh_token.as_deref()),
            ("a2", Some("r2"))
        );
        let err = refresh(&http, &SPEC, &a, "gone", now).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    }
}
