//! Provider webhooks through the real API (`GET/POST /v1/providers/{provider}/webhook`), each
//! provider pointed at a wiremock server and connected through the OAuth flow first: every
//! provider's handshake and signature contract (good and bad), notifications for a connected
//! account becoming targeted `webhook` sync jobs that run, notifications for unknown accounts
//! acknowledged without effect, deauthorizations disconnecting, Garmin push data written
//! directly and idempotently, and unknown or unconfigured providers refused.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use vitasync_engine::domain::ConnectionStatus;
use vitasync_engine::providers::ProviderSettings;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{Backend, TestApp, expect_error, spawn_app, spawn_app_with};
use crate::oauth::{authorize, no_redirects, query_of};

const SECRET: &str = "secret-1";
const VERIFY: &str = "verify-me";
const TZ: &str = "Europe/Berlin";

/// The provider account id each mock hands out on connect.
fn account_id(provider: &str) -> &'static str {
    match provider {
        "fitbit" => "FB123",
        "strava" => "134815",
        "whoop" => "10129",
        "garmin" => "garmin-user-1",
        other => panic!("no account for {other}"),
    }
}

fn settings(mock: &MockServer) -> ProviderSettings {
    ProviderSettings {
        client_id: Some("client-1".into()),
        client_secret: Some(SECRET.into()),
        auth_url: Some(format!("{}/authorize", mock.uri())),
        token_url: Some(format!("{}/token", mock.uri())),
        api_url: Some(format!("{}/api", mock.uri())),
        webhook_secret: None,
        webhook_verify_token: Some(VERIFY.into()),
        backfill_days: Some(2),
    }
}

async fn app_with(backend: Backend, provider: &'static str, mock: &MockServer) -> TestApp {
    let s = settings(mock);
    spawn_app_with(backend, move |c| {
        c.providers.insert(provider.into(), s);
        c.oauth_return_urls = vec!["https://app.example/".into()];
    })
    .await
}

/// Answers every data endpoint with a well-formed empty body in the provider's format, so the
/// backfill after connecting succeeds and each test mounts only the data it looks at.
struct EmptyData(&'static str);

impl Respond for EmptyData {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let p = req.url.path();
        let body = match self.0 {
            "fitbit" if p.contains("/sleep/") => {
                json!({"sleep": [], "summary": {"totalMinutesAsleep": 0, "totalSleepRecords": 0, "totalTimeInBed": 0}})
            }
            "fitbit" if p.contains("/hrv/") => json!({"hrv": []}),
            "fitbit" if p.contains("/br/") => json!({"br": []}),
            "fitbit" if p.contains("/temp/skin/") => json!({"tempSkin": []}),
            "fitbit" if p.contains("/body/log/weight/") => json!({"weight": []}),
            "fitbit" if p.contains("/body/log/fat/") => json!({"fat": []}),
            "fitbit" if p.ends_with("/activities/list.json") => json!({
                "activities": [],
                "pagination": {"limit": 100, "next": "", "offset": 0, "previous": "", "sort": "asc"}
            }),
            "fitbit" if p.contains("/activities/heart/") => json!({
                "activities-heart": [],
                "activities-heart-intraday": {"dataset": [], "datasetInterval": 1, "datasetType": "minute"}
            }),
            "fitbit" if p.contains("/activities/date/") => fitbit_day(0),
            // SpO2 answers a bare list for a range.
            "fitbit" => json!([]),
            // The body endpoint has no empty form: "no measurement" is a 404.
            "whoop" if p.ends_with("/measurement/body") => return ResponseTemplate::new(404),
            "whoop" => json!({"records": [], "next_token": null}),
            // Strava's activity list, Garmin's pulls and backfill requests.
            _ => json!([]),
        };
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// A Fitbit daily activity summary with `steps`.
fn fitbit_day(steps: u32) -> Value {
    json!({
        "activities": [], "goals": {},
        "summary": {
            "activityCalories": 0, "caloriesBMR": 1500, "caloriesOut": 1500, "steps": steps,
            "distances": [{"activity": "total", "distance": 0}],
            "fairlyActiveMinutes": 0, "veryActiveMinutes": 0, "sedentaryMinutes": 1440
        }
    })
}

/// The provider's account endpoint (under the mock's `/api`) and its answer.
fn account_endpoint(provider: &str) -> (&'static str, Value) {
    match provider {
        "fitbit" => (
            "/api/1/user/-/profile.json",
            json!({"user": {"encodedId": "FB123", "timezone": TZ, "offsetFromUTCMillis": 3_600_000}}),
        ),
        "strava" => (
            "/api/athlete",
            json!({"id": 134815, "resource_state": 3, "firstname": "Marianne"}),
        ),
        "whoop" => (
            "/api/v2/user/profile/basic",
            json!({"user_id": 10129, "email": "a@example.com", "first_name": "A", "last_name": "B"}),
        ),
        "garmin" => ("/api/user/id", json!({"userId": "garmin-user-1"})),
        other => panic!("no account endpoint for {other}"),
    }
}

/// A user with `provider` connected through the OAuth flow (so `provider_user_id` is set) and
/// its backfill finished.
struct Connected {
    app: TestApp,
    mock: MockServer,
    user: String,
    conn: String,
}

async fn connected(backend: Backend, provider: &'static str) -> Connected {
    let mock = MockServer::start().await;
    let app = app_with(backend, provider, &mock).await;
    Mock::given(method("GET"))
        .respond_with(EmptyData(provider))
        .with_priority(10)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 3600,
            "token_type": "Bearer"
        })))
        .mount(&mock)
        .await;
    let (account_path, account) = account_endpoint(provider);
    Mock::given(method("GET"))
        .and(path(account_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(account))
        .mount(&mock)
        .await;
    // Fitbit only notifies about users with a subscription, made on connect.
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/api/1/user/-/apiSubscriptions/[0-9a-f]{32}\.json$",
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "collectionType": "user", "ownerId": "FB123", "ownerType": "user",
            "subscriberId": "1", "subscriptionId": "s"
        })))
        .mount(&mock)
        .await;

    let user = app.create_user(&format!("{provider}-user"), Some(TZ)).await;
    let (_, state) = authorize(&app, provider, &user).await;
    let res = no_redirects()
        .get(app.url(&format!(
            "/v1/oauth/{provider}/callback?code=c0de&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = query_of(res.headers()["location"].to_str().unwrap());
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = back["connection_id"].clone();
    let c = connection(&app, &user).await;
    assert_eq!(c["provider_user_id"], account_id(provider));

    let backfill = jobs(&app, &user)
        .await
        .into_iter()
        .find(|j| j["trigger"] == "backfill")
        .expect("a backfill job");
    let done = app.wait_job(backfill["id"].as_str().unwrap(), 60).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    Connected {
        app,
        mock,
        user,
        conn,
    }
}

/// Request headers as (name, value) pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// A webhook delivery: POST with these headers and this exact body.
async fn deliver(app: &TestApp, provider: &str, headers: Headers<'_>, body: &[u8]) -> Response {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/providers/{provider}/webhook")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// A subscription handshake: GET with this query string.
async fn handshake(app: &TestApp, provider: &str, query: &str) -> Response {
    app.client
        .get(app.url(&format!("/v1/providers/{provider}/webhook?{query}")))
        .send()
        .await
        .unwrap()
}

async fn jobs(app: &TestApp, user: &str) -> Vec<Value> {
    app.get_json(&format!("/v1/users/{user}/sync-jobs")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn webhook_jobs(app: &TestApp, user: &str) -> Vec<Value> {
    jobs(app, user)
        .await
        .into_iter()
        .filter(|j| j["trigger"] == "webhook")
        .collect()
}

/// The one webhook job a notification created, after it has finished.
async fn the_webhook_job(c: &Connected, provider: &str) -> Value {
    let created = webhook_jobs(&c.app, &c.user).await;
    assert_eq!(created.len(), 1, "{created:?}");
    let job = &created[0];
    assert_eq!(job["connection_id"], c.conn.as_str());
    assert_eq!(job["provider"], provider);
    let done = c.app.wait_job(job["id"].as_str().unwrap(), 60).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["started_at"].is_string(), "picked up by the actors");
    done
}

/// The connection's sealed tokens as stored.
async fn stored_tokens(c: &Connected) -> Option<String> {
    c.app
        .store
        .connection_by_id(c.conn.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .sealed_tokens
}

async fn connection(app: &TestApp, user: &str) -> Value {
    app.get_json(&format!("/v1/users/{user}/connections")).await["data"][0].clone()
}

async fn samples(app: &TestApp, user: &str, query: &str) -> Vec<Value> {
    app.get_json(&format!("/v1/users/{user}/health?limit=1000&{query}"))
        .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// How many requests the mock has seen on paths containing `part`.
async fn requests_to(mock: &MockServer, part: &str) -> usize {
    mock.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains(part))
        .count()
}

/// Samples whose row was rewritten after it was first stored (read from the database, since
/// an update with an identical value would look the same through the API).
async fn rewritten_samples(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) FROM samples WHERE updated_at <> created_at";
    match app.db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
    }
}

/// Base64(HMAC-SHA1(key = secret + "&", body)).
fn fitbit_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Base64(HMAC-SHA256(secret, timestamp + body)).
fn whoop_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn millis(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

/// Yesterday in the user's zone: a complete day the sync may fetch.
fn yesterday() -> NaiveDate {
    let tz: chrono_tz::Tz = TZ.parse().unwrap();
    Utc::now().with_timezone(&tz).date_naive() - chrono::Duration::days(1)
}

// ---------------------------------------------------------------------------------------------
// Handshakes

async fn fitbit_verification_handshake(backend: Backend) {
    let mock = MockServer::start().await;
    let app = app_with(backend, "fitbit", &mock).await;

    let res = handshake(&app, "fitbit", &format!("verify={VERIFY}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.text().await.unwrap().is_empty());

    // Fitbit checks that a wrong code is refused with exactly 404.
    for query in [
        "verify=wrong",
        "verify=verify-m",
        "verify=verify-me2",
        "verify=",
        "",
    ] {
        expect_error(
            handshake(&app, "fitbit", query).await,
            StatusCode::NOT_FOUND,
            "invalid_verification",
        )
        .await;
    }
}

async fn strava_subscription_handshake(backend: Backend) {
    let mock = MockServer::start().await;
    let app = app_with(backend, "strava", &mock).await;
    let challenge = "15f7d1a91c1f40f8a748fd134752feb3";

    let started = Instant::now();
    let res = handshake(
        &app,
        "strava",
        &format!("hub.mode=subscribe&hub.challenge={challenge}&hub.verify_token={VERIFY}"),
    )
    .await;
    let status = res.status();
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body, json!({"hub.challenge": challenge}));
    // Strava gives the callback 2 s; a quarter of that leaves room for a loaded test machine.
    assert!(
        elapsed < Duration::from_millis(500),
        "answered in {elapsed:?}"
    );

    // A wrong token or mode is refused and the challenge is not echoed.
    for query in [
        format!("hub.mode=subscribe&hub.challenge={challenge}&hub.verify_token=wrong"),
        format!("hub.mode=unsubscribe&hub.challenge={challenge}&hub.verify_token={VERIFY}"),
    ] {
        let e = expect_error(
            handshake(&app, "strava", &query).await,
            StatusCode::FORBIDDEN,
            "invalid_verification",
        )
        .await;
        assert!(!e.to_string().contains(challenge), "{e}");
    }
    expect_error(
        handshake(
            &app,
            "strava",
            &format!("hub.mode=subscribe&hub.verify_token={VERIFY}"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Fitbit

fn fitbit_notes(owner: &str, collection: &str, date: Option<NaiveDate>) -> Vec<u8> {
    let mut note = json!({"collectionType": collection, "ownerId": owner, "ownerType": "user",
                          "subscriptionId": "s"});
    if let Some(d) = date {
        note["date"] = json!(d.to_string());
    }
    serde_json::to_vec(&json!([note])).unwrap()
}

async fn fitbit_bad_signatures_are_refused(backend: Backend) {
    let c = connected(backend, "fitbit").await;
    let body = fitbit_notes("FB123", "activities", Some(yesterday()));
    let good = fitbit_signature(SECRET, &body);
    let tampered = {
        let mut b = body.clone();
        b.extend_from_slice(b" ");
        b
    };
    let no_ampersand = {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        STANDARD.encode(mac.finalize().into_bytes())
    };
    let wrong_key = fitbit_signature("another-secret", &body);
    let cases: [(Headers, &[u8]); 5] = [
        (&[], &body),
        (&[("x-fitbit-signature", wrong_key.as_str())], &body),
        (&[("x-fitbit-signature", no_ampersand.as_str())], &body),
        (&[("x-fitbit-signature", "%%% not base64 %%%")], &body),
        (&[("x-fitbit-signature", good.as_str())], &tampered),
    ];
    for (headers, body) in cases {
        expect_error(
            deliver(&c.app, "fitbit", headers, body).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        )
        .await;
    }
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());
    assert_eq!(connection(&c.app, &c.user).await["status"], "active");
}

async fn fitbit_notification_runs_a_targeted_sync(backend: Backend) {
    let c = connected(backend, "fitbit").await;
    let day = yesterday();

    // Somebody this deployment does not know: acknowledged, nothing else.
    let body = fitbit_notes("NOBODY", "activities", Some(day));
    let sig = fitbit_signature(SECRET, &body);
    let res = deliver(&c.app, "fitbit", &[("X-Fitbit-Signature", &sig)], &body).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());

    Mock::given(method("GET"))
        .and(path(format!("/api/1/user/-/activities/date/{day}.json")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fitbit_day(4321)))
        .mount(&c.mock)
        .await;
    let sleep_reads = requests_to(&c.mock, "/sleep/").await;

    let body = fitbit_notes("FB123", "activities", Some(day));
    let sig = fitbit_signature(SECRET, &body);
    let res = deliver(&c.app, "fitbit", &[("X-Fitbit-Signature", &sig)], &body).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "Fitbit wants 204");

    let job = the_webhook_job(&c, "fitbit").await;
    // The job is bounded to the notified date (in any zone), not a full sync.
    let from: DateTime<Utc> = job["range_from"].as_str().unwrap().parse().unwrap();
    let to: DateTime<Utc> = job["range_to"].as_str().unwrap().parse().unwrap();
    let midnight = day.and_time(chrono::NaiveTime::MIN).and_utc();
    assert!(
        from <= midnight - chrono::Duration::hours(12)
            && to >= midnight + chrono::Duration::hours(36)
            && to - from <= chrono::Duration::days(3),
        "{job}"
    );
    let steps = samples(&c.app, &c.user, "metric=steps&provider=fitbit").await;
    let of_day: Vec<_> = steps
        .iter()
        .filter(|s| s["local_date"] == day.to_string())
        .collect();
    assert_eq!(of_day.len(), 1, "{steps:?}");
    assert_eq!(of_day[0]["value"], 4321.0);
    assert_eq!(
        requests_to(&c.mock, "/sleep/").await,
        sleep_reads,
        "an activities notification does not re-read sleep"
    );
}

async fn fitbit_revocation_disconnects(backend: Backend) {
    let c = connected(backend, "fitbit").await;
    let body = fitbit_notes("FB123", "userRevokedAccess", None);
    let sig = fitbit_signature(SECRET, &body);
    let res = deliver(&c.app, "fitbit", &[("X-Fitbit-Signature", &sig)], &body).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let conn = connection(&c.app, &c.user).await;
    assert_eq!(conn["status"], "disconnected");
    assert!(
        conn["last_error"].as_str().unwrap().contains("revoked"),
        "{conn}"
    );
    // The grant is gone, so are its tokens, as after a disconnect through the API.
    assert!(stored_tokens(&c).await.is_none());

    // Later notifications for the account no longer reach the connection.
    let body = fitbit_notes("FB123", "sleep", Some(yesterday()));
    let sig = fitbit_signature(SECRET, &body);
    let res = deliver(&c.app, "fitbit", &[("X-Fitbit-Signature", &sig)], &body).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Strava (events are not signed: only a known athlete's events have any effect)

fn strava_event(object_type: &str, owner: u64, updates: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "aspect_type": if object_type == "athlete" { "update" } else { "create" },
        "event_time": Utc::now().timestamp(), "object_id": 1360128428_u64,
        "object_type": object_type, "owner_id": owner, "subscription_id": 120475,
        "updates": updates
    }))
    .unwrap()
}

async fn strava_activity_event_runs_a_targeted_sync(backend: Backend) {
    let c = connected(backend, "strava").await;

    let res = deliver(
        &c.app,
        "strava",
        &[],
        &strava_event("activity", 999, json!({})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());
    expect_error(
        deliver(&c.app, "strava", &[], b"{\"aspect_type\": ").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;

    let listed = requests_to(&c.mock, "/athlete/activities").await;
    let res = deliver(
        &c.app,
        "strava",
        &[],
        &strava_event("activity", 134815, json!({})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let job = the_webhook_job(&c, "strava").await;
    assert!(job["range_from"].is_null(), "from the cursors: {job}");
    assert!(
        requests_to(&c.mock, "/athlete/activities").await > listed,
        "the job read the activity list"
    );
    assert_eq!(connection(&c.app, &c.user).await["status"], "active");
}

async fn strava_deauthorization_disconnects(backend: Backend) {
    let c = connected(backend, "strava").await;
    let revoked = strava_event("athlete", 134815, json!({"authorized": "false"}));
    // Another athlete's revocation leaves this connection alone.
    let other = strava_event("athlete", 999, json!({"authorized": "false"}));
    let res = deliver(&c.app, "strava", &[], &other).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(connection(&c.app, &c.user).await["status"], "active");

    // A connection waiting for re-authorization is as revoked as an active one.
    c.app
        .store
        .set_connection_status(
            c.conn.parse().unwrap(),
            ConnectionStatus::ReauthRequired,
            Some("401 from the provider"),
            Utc::now(),
        )
        .await
        .unwrap();
    let res = deliver(&c.app, "strava", &[], &revoked).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(connection(&c.app, &c.user).await["status"], "disconnected");
    assert!(stored_tokens(&c).await.is_none());
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// WHOOP

fn whoop_note(user: u64, kind: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "user_id": user, "id": "ecfc6a15-4661-442f-a9a4-f160dd7afae8", "type": kind,
        "trace_id": "d3c1e5a2-0000-4000-8000-000000000001"
    }))
    .unwrap()
}

async fn whoop_bad_signatures_are_refused(backend: Backend) {
    let c = connected(backend, "whoop").await;
    let body = whoop_note(10129, "workout.updated");
    let now = millis(Utc::now());
    let good = whoop_signature(SECRET, &now, &body);
    let wrong_key = whoop_signature("another-secret", &now, &body);
    let body_only = {
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&body);
        STANDARD.encode(mac.finalize().into_bytes())
    };
    let later = millis(Utc::now() + chrono::Duration::seconds(1));
    // Correctly signed, but too old or too far ahead to be a fresh delivery.
    let stale = millis(Utc::now() - chrono::Duration::minutes(10));
    let stale_sig = whoop_signature(SECRET, &stale, &body);
    let ahead = millis(Utc::now() + chrono::Duration::minutes(10));
    let ahead_sig = whoop_signature(SECRET, &ahead, &body);

    let cases: [(Headers, &str); 7] = [
        (&[], "missing"),
        (
            &[("x-whoop-signature", good.as_str())],
            "Timestamp is missing",
        ),
        (
            &[
                ("x-whoop-signature", wrong_key.as_str()),
                ("x-whoop-signature-timestamp", now.as_str()),
            ],
            "does not match",
        ),
        (
            &[
                ("x-whoop-signature", body_only.as_str()),
                ("x-whoop-signature-timestamp", now.as_str()),
            ],
            "does not match",
        ),
        (
            &[
                ("x-whoop-signature", good.as_str()),
                ("x-whoop-signature-timestamp", later.as_str()),
            ],
            "does not match",
        ),
        (
            &[
                ("x-whoop-signature", stale_sig.as_str()),
                ("x-whoop-signature-timestamp", stale.as_str()),
            ],
            "stale",
        ),
        (
            &[
                ("x-whoop-signature", ahead_sig.as_str()),
                ("x-whoop-signature-timestamp", ahead.as_str()),
            ],
            "stale",
        ),
    ];
    for (headers, why) in cases {
        let e = expect_error(
            deliver(&c.app, "whoop", headers, &body).await,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        )
        .await;
        assert!(e["message"].as_str().unwrap().contains(why), "{why}: {e}");
    }
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());
}

async fn whoop_notification_runs_a_targeted_sync(backend: Backend) {
    let c = connected(backend, "whoop").await;
    let signed = |body: &[u8]| {
        let ts = millis(Utc::now());
        let sig = whoop_signature(SECRET, &ts, body);
        (ts, sig)
    };

    let body = whoop_note(99999, "workout.updated");
    let (ts, sig) = signed(&body);
    let res = deliver(
        &c.app,
        "whoop",
        &[
            ("X-WHOOP-Signature", &sig),
            ("X-WHOOP-Signature-Timestamp", &ts),
        ],
        &body,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());

    let (workouts, cycles) = (
        requests_to(&c.mock, "/v2/activity/workout").await,
        requests_to(&c.mock, "/v2/cycle").await,
    );
    let body = whoop_note(10129, "workout.updated");
    let (ts, sig) = signed(&body);
    let res = deliver(
        &c.app,
        "whoop",
        &[
            ("X-WHOOP-Signature", &sig),
            ("X-WHOOP-Signature-Timestamp", &ts),
        ],
        &body,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    the_webhook_job(&c, "whoop").await;
    assert!(requests_to(&c.mock, "/v2/activity/workout").await > workouts);
    assert_eq!(
        requests_to(&c.mock, "/v2/cycle").await,
        cycles,
        "a workout notification only re-reads workouts"
    );
}

// ---------------------------------------------------------------------------------------------
// Garmin

/// A day's summary as Garmin pushes it (Brussels, +01:00).
fn garmin_daily(user: &str, steps: u32) -> Value {
    json!({
        "userId": user, "summaryId": "x153a9f3-65ecf070-15180", "calendarDate": "2024-03-10",
        "startTimeInSeconds": 1710025200, "startTimeOffsetInSeconds": 3600,
        "durationInSeconds": 86400, "steps": steps, "distanceInMeters": 6520.5,
        "activeKilocalories": 621, "bmrKilocalories": 1731, "restingHeartRateInBeatsPerMinute": 55,
        "timeOffsetHeartRateSamples": {"15": 75, "30": 76, "3180": 80, "3195": 65}
    })
}

async fn garmin_client_id_is_checked(backend: Backend) {
    let c = connected(backend, "garmin").await;
    let push =
        serde_json::to_vec(&json!({"dailies": [garmin_daily("garmin-user-1", 8543)]})).unwrap();
    let revoke =
        serde_json::to_vec(&json!({"deregistrations": [{"userId": "garmin-user-1"}]})).unwrap();
    for body in [&push, &revoke] {
        for headers in [
            &[][..],
            &[("garmin-client-id", "someone-else")][..],
            &[("garmin-client-id", "client-")][..],
        ] {
            expect_error(
                deliver(&c.app, "garmin", headers, body).await,
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
            )
            .await;
        }
    }
    assert!(samples(&c.app, &c.user, "provider=garmin").await.is_empty());
    assert_eq!(connection(&c.app, &c.user).await["status"], "active");
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());
}

async fn garmin_push_is_written_directly_and_idempotently(backend: Backend) {
    let c = connected(backend, "garmin").await;
    let id = [("garmin-client-id", "client-1")];
    let push = |steps: u32| {
        serde_json::to_vec(&json!({"dailies": [
            garmin_daily("garmin-user-1", steps),
            garmin_daily("someone-else", 99999)
        ]}))
        .unwrap()
    };

    let res = deliver(&c.app, "garmin", &id, &push(8543)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let first = samples(&c.app, &c.user, "").await;
    assert!(first.iter().all(|s| s["provider"] == "garmin"), "{first:?}");
    let of = |all: &[Value], metric: &str| -> Vec<Value> {
        all.iter()
            .filter(|s| s["metric"] == metric)
            .cloned()
            .collect()
    };
    let steps = of(&first, "steps");
    assert_eq!(steps.len(), 1, "{first:?}");
    assert_eq!(steps[0]["value"], 8543.0, "not the other user's day");
    assert_eq!(steps[0]["local_date"], "2024-03-10");
    assert_eq!(steps[0]["recorded_at"], "2024-03-09T23:00:00Z");
    let hr = of(&first, "heart_rate");
    assert_eq!(hr.len(), 4, "{hr:?}");
    assert_eq!(of(&first, "resting_heart_rate")[0]["value"], 55.0);
    // Pushed data is the data itself: no sync job is needed.
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());
    assert_eq!(rewritten_samples(&c.app).await, 0);

    // Garmin re-delivers: nothing changes, not even a rewrite of the same values.
    let res = deliver(&c.app, "garmin", &id, &push(8543)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(samples(&c.app, &c.user, "").await, first);
    assert_eq!(rewritten_samples(&c.app).await, 0);

    // The day's total grew: that one sample is updated in place.
    let res = deliver(&c.app, "garmin", &id, &push(9100)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let grown = samples(&c.app, &c.user, "").await;
    assert_eq!(grown.len(), first.len());
    let steps_now = of(&grown, "steps");
    assert_eq!(steps_now[0]["value"], 9100.0);
    assert_eq!(steps_now[0]["id"], steps[0]["id"]);
    assert_eq!(rewritten_samples(&c.app).await, 1);
}

async fn garmin_ping_runs_a_window_sync(backend: Backend) {
    let c = connected(backend, "garmin").await;
    let end = Utc::now().timestamp() - 600;
    let start = end - 3600;
    let mut pulled = garmin_daily("garmin-user-1", 777);
    pulled.as_object_mut().unwrap().remove("userId");
    pulled["calendarDate"] = json!("2024-03-11");
    pulled["summaryId"] = json!("x153a9f3-65ee9050-15180");
    pulled["startTimeInSeconds"] = json!(1710111600);
    Mock::given(method("GET"))
        .and(path("/api/dailies"))
        .and(query_param("uploadStartTimeInSeconds", start.to_string()))
        .and(query_param("uploadEndTimeInSeconds", end.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([pulled])))
        .expect(1)
        .mount(&c.mock)
        .await;

    let callback = |user: &str| {
        json!({"userId": user, "callbackURL": format!(
            "{}/api/dailies?uploadStartTimeInSeconds={start}&uploadEndTimeInSeconds={end}&token=XXX",
            c.mock.uri()
        )})
    };
    let body = serde_json::to_vec(&json!({"dailies": [callback("someone-else")]})).unwrap();
    let res = deliver(&c.app, "garmin", &[("garmin-client-id", "client-1")], &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(webhook_jobs(&c.app, &c.user).await.is_empty());

    let body = serde_json::to_vec(&json!({"dailies": [callback("garmin-user-1")]})).unwrap();
    let res = deliver(&c.app, "garmin", &[("garmin-client-id", "client-1")], &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let job = the_webhook_job(&c, "garmin").await;
    let window = |k: &str| {
        job[k]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
            .timestamp()
    };
    assert_eq!((window("range_from"), window("range_to")), (start, end));
    let steps = samples(&c.app, &c.user, "metric=steps&provider=garmin").await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["value"], 777.0);
}

async fn garmin_deregistration_disconnects(backend: Backend) {
    let c = connected(backend, "garmin").await;
    let id = [("garmin-client-id", "client-1")];
    let other =
        serde_json::to_vec(&json!({"deregistrations": [{"userId": "someone-else"}]})).unwrap();
    let res = deliver(&c.app, "garmin", &id, &other).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(connection(&c.app, &c.user).await["status"], "active");

    let mine =
        serde_json::to_vec(&json!({"deregistrations": [{"userId": "garmin-user-1"}]})).unwrap();
    let res = deliver(&c.app, "garmin", &id, &mine).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(connection(&c.app, &c.user).await["status"], "disconnected");
    assert!(stored_tokens(&c).await.is_none());

    // Data pushed after the deregistration is not written.
    let push =
        serde_json::to_vec(&json!({"dailies": [garmin_daily("garmin-user-1", 8543)]})).unwrap();
    let res = deliver(&c.app, "garmin", &id, &push).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(samples(&c.app, &c.user, "provider=garmin").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Unknown and unconfigured providers

async fn unknown_and_unconfigured_providers_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    expect_error(
        deliver(&app, "nope", &[], b"{}").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        handshake(&app, "nope", "verify=x").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Without a verification code, client secret or client id there is nothing a call could
    // be verified with: the documented 404, whatever it carries.
    let fitbit = fitbit_notes("FB123", "activities", Some(yesterday()));
    let fitbit_sig = fitbit_signature(SECRET, &fitbit);
    let whoop = whoop_note(10129, "workout.updated");
    let ts = millis(Utc::now());
    let whoop_sig = whoop_signature(SECRET, &ts, &whoop);
    let garmin = serde_json::to_vec(&json!({"deregistrations": [{"userId": "u"}]})).unwrap();
    let strava = strava_event("activity", 134815, json!({}));
    let posts: [(&str, Headers, &[u8]); 5] = [
        ("fitbit", &[("x-fitbit-signature", &fitbit_sig)], &fitbit),
        (
            "whoop",
            &[
                ("x-whoop-signature", &whoop_sig),
                ("x-whoop-signature-timestamp", &ts),
            ],
            &whoop,
        ),
        ("garmin", &[("garmin-client-id", "client-1")], &garmin),
        ("strava", &[], &strava),
        ("demo", &[], b"{}"),
    ];
    for (provider, headers, body) in posts {
        let e = expect_error(
            deliver(&app, provider, headers, body).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        assert!(
            e["message"].as_str().unwrap().contains("not set up"),
            "{provider}: {e}"
        );
    }
    for (provider, query) in [
        ("fitbit", format!("verify={VERIFY}")),
        (
            "strava",
            format!("hub.mode=subscribe&hub.challenge=c&hub.verify_token={VERIFY}"),
        ),
    ] {
        expect_error(
            handshake(&app, provider, &query).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() { super::$name(crate::common::Backend::Sqlite).await }
            #[actix_web::test]
            async fn postgres() { super::$name(crate::common::Backend::Postgres).await }
        }
    )*};
}

both!(
    fitbit_verification_handshake,
    strava_subscription_handshake,
    fitbit_bad_signatures_are_refused,
    fitbit_notification_runs_a_targeted_sync,
    fitbit_revocation_disconnects,
    strava_activity_event_runs_a_targeted_sync,
    strava_deauthorization_disconnects,
    whoop_bad_signatures_are_refused,
    whoop_notification_runs_a_targeted_sync,
    garmin_client_id_is_checked,
    garmin_push_is_written_directly_and_idempotently,
    garmin_ping_runs_a_window_sync,
    garmin_deregistration_disconnects,
    unknown_and_unconfigured_providers_are_refused,
);
