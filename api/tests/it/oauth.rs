//! The OAuth flow through the API against a mock provider: authorize → consent (simulated) →
//! callback → connection, with the provider's exact client authentication and PKCE checked by
//! the mock; and every way a callback can be abused (tampered, replayed, expired, foreign or
//! cross-provider states, denial, markup in parameters).

use std::collections::HashMap;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vitasync_engine::domain::OAuthState;
use vitasync_engine::providers::ProviderSettings;
use wiremock::matchers::{header_exists, method, path, path_regex};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

use crate::common::{Backend, TestApp, expect_error, spawn_app_with};

pub const RETURN: &str = "https://app.example/connected";

/// Points `provider` at the mock with client credentials.
pub fn settings(mock: &MockServer, auth: &str, token: &str, api: &str) -> ProviderSettings {
    ProviderSettings {
        client_id: Some("client-1".into()),
        client_secret: Some("secret-1".into()),
        auth_url: Some(format!("{}{auth}", mock.uri())),
        token_url: Some(format!("{}{token}", mock.uri())),
        api_url: Some(format!("{}{api}", mock.uri())),
        webhook_secret: None,
        webhook_verify_token: Some("verify-me".into()),
        backfill_days: Some(2),
    }
}

pub async fn app_with_fitbit(backend: Backend, mock: &MockServer) -> TestApp {
    let s = settings(mock, "/oauth2/authorize", "/oauth2/token", "");
    spawn_app_with(backend, move |c| {
        c.providers.insert("fitbit".into(), s);
        c.oauth_return_urls = vec!["https://app.example/".into()];
    })
    .await
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Checks the PKCE verifier in a token request against the challenge sent at authorize.
struct PkceMatches(String);

impl Match for PkceMatches {
    fn matches(&self, req: &Request) -> bool {
        let form: HashMap<String, String> =
            form_urlencoded::parse(&req.body).into_owned().collect();
        form.get("code_verifier").is_some_and(|v| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
                == self.0
        })
    }
}

/// Fitbit's documented client authentication: HTTP Basic, never the secret in the body.
struct BasicClientAuth;

impl Match for BasicClientAuth {
    fn matches(&self, req: &Request) -> bool {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("client-1:secret-1")
        );
        let body = String::from_utf8_lossy(&req.body);
        req.headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap_or("") == expected)
            && !body.contains("client_secret")
    }
}

/// GET authorize as the app's admin key; returns (authorization URL query, state).
pub async fn authorize(
    app: &TestApp,
    provider: &str,
    user: &str,
) -> (HashMap<String, String>, String) {
    let body = app
        .get_json(&format!(
            "/v1/oauth/{provider}/authorize?user_id={user}&return_url={}",
            urlencode(RETURN)
        ))
        .await;
    assert!(body["expires_at"].is_string(), "{body}");
    let url = body["authorization_url"].as_str().unwrap();
    let q = query_of(url);
    let state = q["state"].clone();
    (q, state)
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn callback(app: &TestApp, provider: &str, query: &str) -> reqwest::Response {
    no_redirects()
        .get(app.url(&format!("/v1/oauth/{provider}/callback?{query}")))
        .send()
        .await
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string()
}

async fn full_flow_with_pkce(backend: Backend) {
    let mock = MockServer::start().await;
    let app = app_with_fitbit(backend, &mock).await;
    let user = app.create_user("oauth-1", Some("Europe/Berlin")).await;
    let (q, state) = authorize(&app, "fitbit", &user).await;
    assert_eq!(q["client_id"], "client-1");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/v1/oauth/fitbit/callback", app.config.public_base())
    );
    assert!(q["scope"].split(' ').any(|s| s == "heartrate"));
    assert!(state.len() >= 43, "an unguessable state");

    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(BasicClientAuth)
        .and(PkceMatches(q["code_challenge"].clone()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "fitbit-access-1", "refresh_token": "fitbit-refresh-1",
            "expires_in": 28800, "token_type": "Bearer", "user_id": "FB123",
            "scope": "activity heartrate sleep"
        })))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/1/user/-/profile.json"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "user": {"encodedId": "FB123", "timezone": "Europe/Berlin", "offsetFromUTCMillis": 3600000}
        })))
        .mount(&mock)
        .await;

    // Webhooks are set up (a verification code is configured), so the new connection gets
    // its Fitbit subscription.
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/1/user/-/apiSubscriptions/[0-9a-f]{32}\.json$",
        ))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer fitbit-access-1",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "collectionType": "user", "ownerId": "FB123", "ownerType": "user",
            "subscriberId": "1", "subscriptionId": "x"
        })))
        .expect(1)
        .mount(&mock)
        .await;

    let res = callback(&app, "fitbit", &format!("code=c0de&state={state}")).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res);
    assert!(back.starts_with(RETURN), "{back}");
    let bq = query_of(&back);
    assert_eq!(bq["status"], "connected");
    assert_eq!(bq["provider"], "fitbit");
    let conns = app.get_json(&format!("/v1/users/{user}/connections")).await;
    let c = &conns["data"][0];
    assert_eq!(c["id"], bq["connection_id"].as_str());
    assert_eq!(c["provider_user_id"], "FB123");
    assert_eq!(c["scopes"], json!(["activity", "heartrate", "sleep"]));

    // The tokens are stored sealed, under a key id.
    let stored = app
        .store
        .connection_by_id(bq["connection_id"].parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let sealed = stored.sealed_tokens.unwrap();
    assert!(sealed.starts_with("v1."), "{sealed}");
    assert!(!sealed.contains("fitbit-access-1") && !sealed.contains("fitbit-refresh-1"));
    assert!(stored.token_expires_at.is_some());

    // The state was single-use: replaying the callback fails without touching anything.
    let res = callback(&app, "fitbit", &format!("code=c0de&state={state}")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("invalid_state"));

    // Disconnecting revokes the grant at Fitbit and forgets the tokens.
    Mock::given(method("POST"))
        .and(path("/oauth2/revoke"))
        .and(BasicClientAuth)
        .and(wiremock::matchers::body_string_contains(
            "token=fitbit-refresh-1",
        ))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&mock)
        .await;
    let res = app
        .delete(&format!(
            "/v1/users/{user}/connections/{}",
            bq["connection_id"]
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let gone = app
        .store
        .connection_by_id(bq["connection_id"].parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.sealed_tokens, None);
    mock.verify().await;
}

async fn abused_callbacks_are_rejected(backend: Backend) {
    let mock = MockServer::start().await;
    let app = app_with_fitbit(backend, &mock).await;
    let user = app.create_user("oauth-2", None).await;

    // Tampered state: an error page, nothing reflected.
    let res = callback(
        &app,
        "fitbit",
        "code=x&state=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    assert!(res.headers().contains_key("content-security-policy"));
    let page = res.text().await.unwrap();
    assert!(
        !page.contains("<script") && !page.contains("alert(1)"),
        "{page}"
    );
    assert!(page.contains("invalid_state"));

    // A missing state.
    let res = callback(&app, "fitbit", "code=x").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The user denied consent: back to the app with a fixed error code.
    let (_, state) = authorize(&app, "fitbit", &user).await;
    let res = callback(
        &app,
        "fitbit",
        &format!("error=access_denied&error_description=%3Cb%3Enope%3C%2Fb%3E&state={state}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let q = query_of(&location(&res));
    assert_eq!(
        (q["status"].as_str(), q["error"].as_str()),
        ("error", "access_denied")
    );
    assert!(!location(&res).contains("nope"));

    // Any other provider error is reported as a fixed code, never echoed.
    let (_, state) = authorize(&app, "fitbit", &user).await;
    let res = callback(
        &app,
        "fitbit",
        &format!("error=%22%3E%3Cscript%3E&state={state}"),
    )
    .await;
    assert_eq!(query_of(&location(&res))["error"], "provider_error");

    // A state minted for one provider does not complete another's flow.
    let (_, state) = authorize(&app, "fitbit", &user).await;
    let res = callback(&app, "whoop", &format!("code=x&state={state}")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = callback(&app, "fitbit", &format!("code=x&state={state}")).await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "consumed by the attempt above"
    );

    // A state whose user no longer exists in its workspace completes nothing.
    let doomed = app.create_user("oauth-doomed", None).await;
    let (_, state) = authorize(&app, "fitbit", &doomed).await;
    assert_eq!(
        app.delete(&format!("/v1/users/{doomed}")).await.status(),
        StatusCode::NO_CONTENT
    );
    let res = callback(&app, "fitbit", &format!("code=x&state={state}")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // An expired state.
    let raw = "expired-state-value-with-enough-entropy-0123456789";
    let now = chrono::Utc::now();
    let u = app
        .store
        .user(app.workspace_id.parse().unwrap(), user.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    app.store
        .insert_oauth_state(&OAuthState {
            state_hash: hex::encode(Sha256::digest(raw.as_bytes())),
            workspace_id: u.workspace_id,
            user_id: u.id,
            provider: "fitbit".into(),
            sealed_pkce_verifier: None,
            return_url: Some(RETURN.into()),
            backfill_days: None,
            created_at: now - chrono::Duration::minutes(11),
            expires_at: now - chrono::Duration::minutes(1),
        })
        .await
        .unwrap();
    let res = callback(&app, "fitbit", &format!("code=x&state={raw}")).await;
    let q = query_of(&location(&res));
    assert_eq!(
        (q["status"].as_str(), q["error"].as_str()),
        ("error", "expired_state")
    );

    // A failing code exchange (the mock has no token endpoint here) ends in an error too.
    let (_, state) = authorize(&app, "fitbit", &user).await;
    let res = callback(&app, "fitbit", &format!("code=x&state={state}")).await;
    assert_eq!(query_of(&location(&res))["error"], "exchange_failed");
    let conns = app.get_json(&format!("/v1/users/{user}/connections")).await;
    assert!(
        conns["data"].as_array().unwrap().is_empty(),
        "nothing was connected"
    );
}

async fn authorize_is_guarded(backend: Backend) {
    let mock = MockServer::start().await;
    let app = app_with_fitbit(backend, &mock).await;
    let user = app.create_user("oauth-3", None).await;
    let path = |p: &str, extra: &str| format!("/v1/oauth/{p}/authorize?user_id={user}{extra}");

    // The return URL must match a configured prefix.
    let e = expect_error(
        app.get(&path("fitbit", "&return_url=https%3A%2F%2Fevil.example%2F"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "return_url");
    // Without one, the callback shows a page instead of redirecting.
    let body: Value = app.get_json(&path("fitbit", "")).await;
    let state = query_of(body["authorization_url"].as_str().unwrap())["state"].clone();
    let res = callback(
        &app,
        "fitbit",
        &format!("error=access_denied&state={state}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("access_denied"));

    // Unconfigured providers, providers without OAuth and unknown ones.
    expect_error(
        app.get(&path("garmin", "")).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    expect_error(
        app.get(&path("demo", "")).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    expect_error(
        app.get(&path("nope", "")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // OAuth providers cannot be connected without consent.
    expect_error(
        app.post(
            &format!("/v1/users/{user}/connections"),
            json!({"provider": "fitbit"}),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    let listed = app.get_json("/v1/providers/fitbit").await;
    assert_eq!(listed["configured"], true);
    assert_eq!(
        app.get_json("/v1/providers/garmin").await["configured"],
        false
    );

    // A read-only key cannot start a flow; another workspace cannot name this user.
    let read = app.key_with(&["read"]).await;
    let res = app
        .call(reqwest::Method::GET, &path("fitbit", ""), Some(&read), None)
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let other = crate::common::other_workspace_key(&app).await;
    let res = app
        .call(
            reqwest::Method::GET,
            &path("fitbit", ""),
            Some(&other),
            None,
        )
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let e = expect_error(
        app.get("/v1/oauth/fitbit/authorize?user_id=not-a-uuid")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("user"));
}

crate::for_both_backends!(
    full_flow_with_pkce,
    abused_callbacks_are_rejected,
    authorize_is_guarded
);
