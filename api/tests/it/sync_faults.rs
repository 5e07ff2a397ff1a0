//! The sync machinery under provider faults, through the real actors against a mock WHOOP:
//! an expired token is refreshed once (the rotated refresh token persisted) and a second
//! rejection sends the connection to `reauth_required`; persistent 5xx restart the connection
//! actor with backoff until the restart limit puts the connection in `error`; a 429 pauses and
//! the sync completes; a truncated page commits only what came before it; shutdown stops a
//! run at a batch boundary. Every state change is published on the bus.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vitasync_actors::SyncSettings;
use vitasync_api::startup::Overrides;
use vitasync_engine::bus::BusEvent;
use vitasync_engine::domain::ConnectionStatus;
use vitasync_engine::providers::RetryPolicy;
use wiremock::matchers::{body_string_contains, header, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Backend, TestApp, spawn_app_tuned};
use crate::oauth::{authorize, no_redirects, query_of, settings};

/// WHOOP's data endpoints (not the profile, which the OAuth callback reads).
const DATA: &str = r"^/developer/v2/(cycle|recovery|activity/.*|user/measurement/body)$";

fn overrides() -> Overrides {
    Overrides {
        sync: Some(SyncSettings {
            interval: Duration::from_secs(3600),
            restart_base: Duration::from_millis(100),
            restart_max: Duration::from_millis(200),
            max_restarts: 2,
            shutdown_grace: Duration::from_secs(5),
            ..SyncSettings::default()
        }),
        retry: Some(RetryPolicy {
            attempts: 2,
            backoff: Duration::from_millis(10),
            max_inline_wait: Duration::from_secs(3),
            timeout: Duration::from_secs(2),
        }),
    }
}

async fn whoop_app(backend: Backend, mock: &MockServer) -> TestApp {
    let s = settings(
        mock,
        "/oauth/oauth2/auth",
        "/oauth/oauth2/token",
        "/developer",
    );
    spawn_app_tuned(
        backend,
        move |c| {
            c.providers.insert("whoop".into(), s);
            c.oauth_return_urls = vec!["https://app.example/".into()];
        },
        overrides(),
    )
    .await
}

fn tokens(access: &str, refresh: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": access, "refresh_token": refresh, "expires_in": 3600,
        "token_type": "bearer", "scope": "offline read:cycles"
    }))
}

fn cycle(id: i64, day: u32) -> Value {
    let start = format!("2026-11-{day:02}T05:00:00.000Z");
    let end = format!("2026-11-{:02}T05:00:00.000Z", day + 1);
    json!({
        "id": id, "user_id": 10129, "created_at": start, "updated_at": start,
        "start": start, "end": end, "timezone_offset": "-05:00", "score_state": "SCORED",
        "score": {"strain": 10.5, "kilojoule": 8368.0, "average_heart_rate": 64, "max_heart_rate": 150}
    })
}

fn records(items: Value, next: Option<&str>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"records": items, "next_token": next}))
}

/// Mounts WHOOP's data endpoints answering for `bearer`: two cycles, nothing else.
async fn mount_data(mock: &MockServer, bearer: &str) {
    let auth = format!("Bearer {bearer}");
    Mock::given(method("GET"))
        .and(path("/developer/v2/cycle"))
        .and(header("authorization", auth.as_str()))
        .respond_with(records(json!([cycle(2, 24), cycle(1, 23)]), None))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/developer/v2/(recovery|activity/sleep|activity/workout)$",
        ))
        .and(header("authorization", auth.as_str()))
        .respond_with(records(json!([]), None))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/developer/v2/user/measurement/body"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"height_meter": 1.8, "weight_kilogram": 80.0, "max_heart_rate": 190}),
        ))
        .mount(mock)
        .await;
}

/// Connects `user` to WHOOP through the OAuth flow; the token endpoint hands out `a1`/`r1`.
/// Returns (connection id, backfill job id).
async fn connect(app: &TestApp, mock: &MockServer, user: &str) -> (String, String) {
    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(tokens("a1", "r1"))
        .mount(mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/developer/v2/user/profile/basic"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"user_id": 10129, "email": "x@example.com", "first_name": "A", "last_name": "B"}),
        ))
        .mount(mock)
        .await;
    let (_, state) = authorize(app, "whoop", user).await;
    let res = no_redirects()
        .get(app.url(&format!("/v1/oauth/whoop/callback?code=c&state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let q = query_of(res.headers()["location"].to_str().unwrap());
    assert_eq!(q["status"], "connected", "{q:?}");
    let jobs = app.get_json(&format!("/v1/users/{user}/sync-jobs")).await;
    (
        q["connection_id"].clone(),
        jobs["data"][0]["id"].as_str().unwrap().to_string(),
    )
}

async fn connection(app: &TestApp, user: &str) -> Value {
    app.get_json(&format!("/v1/users/{user}/connections")).await["data"][0].clone()
}

async fn wait_status(app: &TestApp, user: &str, status: &str, secs: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let c = connection(app, user).await;
        if c["status"] == status {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connection never became {status}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn expired_token_is_refreshed_once(backend: Backend) {
    let mock = MockServer::start().await;
    let app = whoop_app(backend, &mock).await;
    let mut bus = app.sync.bus.subscribe();
    // The first access token is already dead at the provider; the refreshed one works.
    Mock::given(path_regex(DATA))
        .and(header("authorization", "Bearer a1"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "expired"})))
        .mount(&mock)
        .await;
    mount_data(&mock, "a2").await;
    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .and(body_string_contains("refresh_token=r1"))
        .respond_with(tokens("a2", "r2"))
        .expect(1)
        .mount(&mock)
        .await;
    let user = app.create_user("f-1", None).await;
    let (conn_id, job) = connect(&app, &mock, &user).await;
    let job = app.wait_job(&job, 30).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["inserted"].as_i64().unwrap() >= 2, "{job}");

    // The rotated refresh token was persisted (sealed) before the new access token was used.
    let conn = app
        .store
        .connection_by_id(conn_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let t = app.sync.open_tokens(&conn).unwrap().unwrap();
    assert_eq!(
        (t.access_token.as_str(), t.refresh_token.as_deref()),
        ("a2", Some("r2"))
    );

    // Now the grant is revoked: the refresh is refused, so the user must reconnect.
    mock.reset().await;
    Mock::given(path_regex(DATA))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "revoked"})))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})))
        .expect(1)
        .mount(&mock)
        .await;
    let res = app
        .post(
            &format!("/v1/users/{user}/connections/{conn_id}/sync"),
            json!({}),
        )
        .await;
    let id = res.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = app.wait_job(&id, 30).await;
    assert_eq!(failed["status"], "failed");
    let c = wait_status(&app, &user, "reauth_required", 10).await;
    assert!(
        c["last_error"].as_str().unwrap().contains("invalid_grant"),
        "{c}"
    );

    // The bus saw the whole story.
    let mut seen = Vec::new();
    while let Ok(e) = tokio::time::timeout(Duration::from_millis(500), bus.recv()).await {
        seen.push(e.unwrap());
    }
    let kinds: Vec<&str> = seen
        .iter()
        .map(|e| match e.as_ref() {
            BusEvent::ConnectionCreated { .. } => "created",
            BusEvent::SyncStarted { .. } => "started",
            BusEvent::SamplesChanged { .. } => "samples",
            BusEvent::SyncCompleted { .. } => "completed",
            BusEvent::SyncFailed { .. } => "failed",
            BusEvent::ConnectionErrored { .. } => "errored",
            BusEvent::ConnectionDisconnected { .. } => "disconnected",
            BusEvent::UserCreated { .. } | BusEvent::UserDeleted { .. } => "user",
            BusEvent::AnalyticsChanged { .. } | BusEvent::AnalyticsMaterialized { .. } => {
                "analytics"
            }
        })
        .collect();
    for k in [
        "created",
        "started",
        "samples",
        "completed",
        "failed",
        "errored",
    ] {
        assert!(kinds.contains(&k), "no {k} event in {kinds:?}");
    }
    assert!(seen.iter().any(|e| matches!(
        e.as_ref(),
        BusEvent::ConnectionErrored {
            status: ConnectionStatus::ReauthRequired,
            ..
        }
    )));
    let res = app
        .post(
            &format!("/v1/users/{user}/connections/{conn_id}/sync"),
            json!({}),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CONFLICT,
        "no syncing until reconnected"
    );
}

async fn server_errors_restart_with_backoff_until_error(backend: Backend) {
    let mock = MockServer::start().await;
    let app = whoop_app(backend, &mock).await;
    Mock::given(path_regex("^/developer/v2/(cycle|recovery|activity/.*)$"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&mock)
        .await;
    let user = app.create_user("f-2", None).await;
    let started = std::time::Instant::now();
    let (_, job) = connect(&app, &mock, &user).await;
    let first = app.wait_job(&job, 30).await;
    assert_eq!(first["status"], "failed");
    assert!(first["error"].as_str().unwrap().contains("503"), "{first}");
    let c = wait_status(&app, &user, "error", 30).await;
    assert!(
        c["last_error"]
            .as_str()
            .unwrap()
            .contains("gave up after 3 failed syncs"),
        "{c}"
    );
    // Two restarts, 100 ms then 200 ms apart.
    assert!(started.elapsed() >= Duration::from_millis(300));
    let jobs = app.get_json(&format!("/v1/users/{user}/sync-jobs")).await;
    let jobs = jobs["data"].as_array().unwrap();
    assert_eq!(
        jobs.len(),
        3,
        "the backfill and one run per restart: {jobs:?}"
    );
    assert!(jobs.iter().all(|j| j["status"] == "failed"));
    // No further runs once the connection is in error.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = app.get_json(&format!("/v1/users/{user}/sync-jobs")).await;
    assert_eq!(again["data"].as_array().unwrap().len(), 3);
}

async fn rate_limit_pauses_then_completes(backend: Backend) {
    let mock = MockServer::start().await;
    let app = whoop_app(backend, &mock).await;
    Mock::given(method("GET"))
        .and(path("/developer/v2/cycle"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"message": "Too Many Requests"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    mount_data(&mock, "a1").await;
    let user = app.create_user("f-3", None).await;
    let started = std::time::Instant::now();
    let (_, job) = connect(&app, &mock, &user).await;
    let job = app.wait_job(&job, 30).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the pause was honoured"
    );
    assert_eq!(connection(&app, &user).await["status"], "active");
}

async fn truncated_page_commits_only_what_came_before(backend: Backend) {
    let mock = MockServer::start().await;
    let app = whoop_app(backend, &mock).await;
    mount_data(&mock, "a1").await;
    // Cycles come in two pages; the second is cut off mid-body.
    Mock::given(method("GET"))
        .and(path("/developer/v2/cycle"))
        .and(wiremock::matchers::query_param("nextToken", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"records\": [{\"id\": 9"))
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/developer/v2/cycle"))
        .respond_with(records(json!([cycle(3, 25)]), Some("p2")))
        .with_priority(2)
        .mount(&mock)
        .await;
    let user = app.create_user("f-4", None).await;
    let (_, job) = connect(&app, &mock, &user).await;
    let job = app.wait_job(&job, 30).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("malformed"),
        "{job}"
    );
    // The first page's cycle is stored; nothing of the broken page is.
    let strain = app
        .get_json(&format!("/v1/users/{user}/health?metric=strain"))
        .await;
    let values: Vec<f64> = strain["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![10.5], "{strain}");
    assert!(job["inserted"].as_i64().unwrap() > 0, "{job}");
}

async fn shutdown_stops_runs_at_a_batch_boundary(backend: Backend) {
    let mock = MockServer::start().await;
    let app = whoop_app(backend, &mock).await;
    mount_data(&mock, "a1").await;
    Mock::given(method("GET"))
        .and(path("/developer/v2/cycle"))
        .respond_with(records(json!([cycle(5, 20)]), None).set_delay(Duration::from_secs(10)))
        .with_priority(1)
        .mount(&mock)
        .await;
    let user = app.create_user("f-5", None).await;
    let (_, job) = connect(&app, &mock, &user).await;
    // Wait until the run is underway, then stop the process.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.get_json(&format!("/v1/sync-jobs/{job}")).await["status"] != "running" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = app.store.clone();
    let ws = app.workspace_id.parse().unwrap();
    let started = std::time::Instant::now();
    let _ = app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown does not wait for the provider"
    );
    let j = store
        .sync_job(ws, job.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.status, vitasync_engine::domain::JobStatus::Failed);
    assert_eq!(j.error.as_deref(), Some("interrupted by shutdown"));
}

async fn tokens_are_refreshed_ahead_of_expiry(backend: Backend) {
    let mock = MockServer::start().await;
    let app = whoop_app(backend, &mock).await;
    // The first token set expires within the refresh margin; the old access token is never
    // presented for data.
    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "a1", "refresh_token": "r1", "expires_in": 60, "token_type": "bearer"
        })))
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .and(body_string_contains("refresh_token=r1"))
        .respond_with(tokens("a2", "r2"))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(path_regex(DATA))
        .and(header("authorization", "Bearer a1"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&mock)
        .await;
    mount_data(&mock, "a2").await;
    let user = app.create_user("f-6", None).await;
    let (_, job) = connect(&app, &mock, &user).await;
    let job = app.wait_job(&job, 30).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    mock.verify().await;
}

crate::for_both_backends!(
    expired_token_is_refreshed_once,
    server_errors_restart_with_backoff_until_error,
    rate_limit_pauses_then_completes,
    truncated_page_commits_only_what_came_before,
    shutdown_stops_runs_at_a_batch_boundary,
    tokens_are_refreshed_ahead_of_expiry,
);
