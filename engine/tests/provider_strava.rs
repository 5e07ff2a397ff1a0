//! Strava provider against a mock speaking Strava's documented wire formats: OAuth with client
//! credentials in the body and no PKCE, `page`/`per_page` activity listing with `after`/`before`,
//! activity detail and `key_by_type` streams, `X-RateLimit-*`/`X-ReadRateLimit-*` headers, Fault
//! error bodies, and the push-subscription webhook.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde_json::{Value, json};
use vitasync_engine::domain::EventType;
use vitasync_engine::providers::oauth::{authorize, exchange_code, refresh};
use vitasync_engine::providers::strava::StravaProvider;
use vitasync_engine::providers::{
    Cursors, Provider, ProviderContext, ProviderError, ProviderHttp, ProviderSettings, RetryPolicy,
    SyncBatch, SyncRequest, SyncUser, TokenSet, WebhookError, WebhookReply, WebhookRequest,
    WebhookTarget,
};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "a4b945687ga4b945687ga4b945687ga4b945687g";

fn settings(server: &MockServer) -> ProviderSettings {
    ProviderSettings {
        client_id: Some("5".into()),
        client_secret: Some("s3cr3t".into()),
        auth_url: Some(format!("{}/oauth/authorize", server.uri())),
        token_url: Some(format!("{}/oauth/token", server.uri())),
        api_url: Some(format!("{}/api/v3", server.uri())),
        webhook_verify_token: Some("STRAVA".into()),
        ..Default::default()
    }
}

fn http() -> ProviderHttp {
    ProviderHttp::new(RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_inline_wait: Duration::from_secs(3),
        timeout: Duration::from_millis(400),
    })
}

fn provider(server: &MockServer, page_size: u32) -> StravaProvider {
    StravaProvider::new(ProviderContext {
        settings: settings(server),
        http: http(),
    })
    .with_page_size(page_size)
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn request(now: &str, cursors: Cursors) -> SyncRequest {
    SyncRequest {
        user: SyncUser {
            external_id: "u1".into(),
            timezone: Some(chrono_tz::Europe::Berlin),
        },
        access_token: Some(TOKEN.into()),
        provider_user_id: Some("134815".into()),
        data_types: vec![],
        cursors,
        range: None,
        backfill_days: 10,
        connected_at: at("2024-03-01T00:00:00Z"),
        now: at(now),
    }
}

/// Strava's headers on every API response.
fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("X-RateLimit-Limit", "200,2000")
        .insert_header("X-RateLimit-Usage", "34,510")
        .insert_header("X-ReadRateLimit-Limit", "100,1000")
        .insert_header("X-ReadRateLimit-Usage", "21,300")
        .set_body_json(body)
}

/// Token requests must not use HTTP Basic: Strava wants the credentials as form fields.
struct NoAuthorizationHeader;
impl Match for NoAuthorizationHeader {
    fn matches(&self, r: &Request) -> bool {
        !r.headers.contains_key("authorization")
    }
}

/// A run in Los Angeles that starts at 23:30 local (07:30 UTC) and crosses local midnight.
fn run() -> Value {
    json!({
        "resource_state": 2, "athlete": {"id": 134815, "resource_state": 1},
        "name": "Midnight run", "distance": 8012.5, "moving_time": 2460, "elapsed_time": 2520,
        "total_elevation_gain": 12.0, "type": "Run", "sport_type": "Run", "workout_type": null,
        "id": 1001, "start_date": "2024-03-09T07:30:00Z", "start_date_local": "2024-03-08T23:30:00Z",
        "timezone": "(GMT-08:00) America/Los_Angeles", "utc_offset": -28800,
        "device_name": "Garmin Forerunner 265", "trainer": false, "commute": false, "manual": false,
        "private": false, "average_speed": 3.18, "max_speed": 4.1, "has_heartrate": true,
        "average_heartrate": 151.2, "max_heartrate": 178, "suffer_score": 41
    })
}

/// A ride with power: `kilojoules` on the summary, `calories` only on the detail.
fn ride() -> Value {
    json!({
        "resource_state": 2, "athlete": {"id": 134815, "resource_state": 1},
        "name": "Happy Friday", "distance": 24931.4, "moving_time": 4500, "elapsed_time": 4500,
        "total_elevation_gain": 0, "type": "Ride", "sport_type": "MountainBikeRide", "id": 1002,
        "start_date": "2024-03-10T12:15:09Z", "start_date_local": "2024-03-10T05:15:09Z",
        "timezone": "(GMT-07:00) America/Los_Angeles", "utc_offset": -25200,
        "device_name": "Garmin Edge 1030", "trainer": true, "manual": false,
        "average_speed": 5.54, "max_speed": 11, "average_watts": 175.3,
        "weighted_average_watts": 210, "kilojoules": 788.7, "device_watts": true,
        "has_heartrate": false, "max_watts": 406
    })
}

/// A manual walk in Berlin: no heart rate, no energy.
fn walk() -> Value {
    json!({
        "resource_state": 2, "athlete": {"id": 134815, "resource_state": 1},
        "name": "Evening walk", "distance": 3100.0, "moving_time": 2700, "elapsed_time": 2700,
        "type": "Walk", "sport_type": "Walk", "id": 1003,
        "start_date": "2024-03-11T18:00:00Z", "start_date_local": "2024-03-11T19:00:00Z",
        "timezone": "(GMT+01:00) Europe/Berlin", "utc_offset": 3600, "manual": true,
        "has_heartrate": false
    })
}

fn detail(summary: Value, extra: Value) -> Value {
    let mut d = summary;
    d["resource_state"] = json!(3);
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

/// 42 minutes of heart rate at 1 Hz-ish (every 30 s), rising one bpm per minute from 130.
fn run_streams() -> Value {
    let time: Vec<i64> = (0..=84).map(|i| i * 30).collect();
    let hr: Vec<i64> = time.iter().map(|t| 130 + t / 60).collect();
    json!({
        "time": {"data": time, "series_type": "distance", "original_size": 85, "resolution": "high"},
        "heartrate": {"data": hr, "series_type": "distance", "original_size": 85, "resolution": "high"}
    })
}

async fn mount_details(server: &MockServer) {
    for (id, body) in [
        (1001, detail(run(), json!({"calories": 612.0}))),
        (1002, detail(ride(), json!({"calories": 870.0}))),
        (1003, detail(walk(), json!({}))),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/api/v3/activities/{id}")))
            .and(query_param("include_all_efforts", "false"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ok(body))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/v3/activities/1001/streams"))
        .and(query_param("key_by_type", "true"))
        .respond_with(ok(run_streams()))
        .mount(server)
        .await;
}

async fn run_sync(p: &StravaProvider, req: SyncRequest) -> Vec<Result<SyncBatch, ProviderError>> {
    p.sync(req).collect().await
}

fn ok_batches(v: Vec<Result<SyncBatch, ProviderError>>) -> Vec<SyncBatch> {
    v.into_iter().map(|b| b.expect("batch")).collect()
}

#[tokio::test]
async fn oauth_flow_uses_body_credentials_comma_scopes_and_no_pkce() {
    let server = MockServer::start().await;
    let p = provider(&server, 200);
    let spec = p.oauth_spec().unwrap();
    let app = p
        .oauth_app("https://vs.example/v1/oauth/strava/callback")
        .unwrap();

    let start = authorize(spec, &app, "state-123456").unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth/authorize");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "5");
    assert_eq!(q["state"], "state-123456");
    assert_eq!(q["scope"], "read,activity:read_all");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["approval_prompt"], "auto");
    assert!(!q.contains_key("code_challenge"));
    assert!(start.pkce_verifier.is_none());

    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(NoAuthorizationHeader)
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=c0de"))
        .and(body_string_contains("client_id=5"))
        .and(body_string_contains("client_secret=s3cr3t"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_at": 1710189134, "expires_in": 21600,
            "refresh_token": "r1", "access_token": TOKEN,
            "athlete": {"id": 134815, "username": "marianne_t", "resource_state": 2}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(NoAuthorizationHeader)
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=r1"))
        .and(body_string_contains("client_secret=s3cr3t"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "access_token": "a2", "expires_at": 1710210734,
            "expires_in": 21600, "refresh_token": "r2"
        })))
        .expect(1)
        .mount(&server)
        .await;
    // A used code, as Strava reports it.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("code=used"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "message": "Bad Request",
            "errors": [{"resource": "AuthorizationCode", "field": "code", "code": "invalid"}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v3/athlete"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ok(
            json!({"id": 134815, "username": "marianne_t", "resource_state": 3,
            "firstname": "Marianne", "weight": 61.2}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/deauthorize"))
        .and(body_string_contains(
            format!("access_token={TOKEN}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": TOKEN})))
        .expect(1)
        .mount(&server)
        .await;

    let now = Utc::now();
    let http = http();
    let t = exchange_code(&http, spec, &app, "c0de", None, now)
        .await
        .unwrap();
    assert_eq!(t.access_token, TOKEN);
    assert_eq!(t.refresh_token.as_deref(), Some("r1"));
    assert_eq!(t.expires_at, Some(now + chrono::Duration::seconds(21600)));
    let t2 = refresh(&http, spec, &app, "r1", now).await.unwrap();
    assert_eq!(t2.access_token, "a2");
    assert_eq!(t2.refresh_token.as_deref(), Some("r2"));
    // Strava's Fault body is not an RFC 6749 error body, so the shared OAuth client cannot name
    // the error; it must still fail without being mistaken for a transient outage.
    let err = exchange_code(&http, spec, &app, "used", None, now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Malformed(_) | ProviderError::Rejected(_)
        ),
        "{err:?}"
    );

    let account = p.account(&t).await.unwrap();
    assert_eq!(account.provider_user_id.as_deref(), Some("134815"));
    p.revoke(&t, Some("134815")).await.unwrap();
}

#[tokio::test]
async fn sync_pages_maps_activities_and_advances_cursor() {
    let server = MockServer::start().await;
    let p = provider(&server, 2);
    let now = "2024-03-12T12:00:00Z";
    // Backfill 10 days: after = now − 10 d − 1 s.
    let after = (at(now).timestamp() - 10 * 86_400 - 1).to_string();
    let before = at(now).timestamp().to_string();
    for (page, body) in [("1", json!([run(), ride()])), ("2", json!([walk()]))] {
        Mock::given(method("GET"))
            .and(path("/api/v3/athlete/activities"))
            .and(query_param("after", after.as_str()))
            .and(query_param("before", before.as_str()))
            .and(query_param("page", page))
            .and(query_param("per_page", "2"))
            .respond_with(ok(body))
            .expect(1)
            .mount(&server)
            .await;
    }
    mount_details(&server).await;

    let batches = ok_batches(run_sync(&p, request(now, Cursors::new())).await);
    assert_eq!(
        batches.len(),
        4,
        "one batch per activity and the window's end"
    );
    // The list spans two pages, so no activity cursor moves until the window is complete.
    assert!(batches[..3].iter().all(|b| b.cursors.is_empty()));
    assert_eq!(batches[3].cursors["activities"], at(now));
    assert!(batches[3].samples.is_empty() && batches[3].events.is_empty());

    let samples: Vec<_> = batches.iter().flat_map(|b| b.samples.clone()).collect();
    let events: Vec<_> = batches.iter().flat_map(|b| b.events.clone()).collect();
    assert_eq!(events.len(), 3);
    assert!(samples.iter().all(|s| s.provider == "strava"));

    // The run: local date from start_date_local, not from the UTC start.
    let run_ev = events
        .iter()
        .find(|e| e.provider_event_id == "1001")
        .unwrap();
    assert_eq!(run_ev.event_type, EventType::Workout);
    assert_eq!(run_ev.activity_type.as_deref(), Some("running"));
    assert_eq!(run_ev.local_date.to_string(), "2024-03-08");
    assert_eq!(run_ev.started_at, at("2024-03-09T07:30:00Z"));
    assert_eq!(run_ev.ended_at, Some(at("2024-03-09T08:12:00Z")));
    assert_eq!(run_ev.duration_s, Some(2520.0));
    assert_eq!(run_ev.distance_m, Some(8012.5));
    assert_eq!(run_ev.energy_kcal, Some(612.0));
    assert_eq!((run_ev.avg_hr, run_ev.max_hr), (Some(151.2), Some(178.0)));
    let run_samples: Vec<_> = samples
        .iter()
        .filter(|s| {
            s.recorded_at >= at("2024-03-09T07:30:00Z")
                && s.recorded_at < at("2024-03-09T09:00:00Z")
        })
        .collect();
    let dist = run_samples.iter().find(|s| s.metric == "distance").unwrap();
    assert_eq!((dist.value, dist.unit), (8012.5, "m"));
    assert_eq!(dist.local_date.to_string(), "2024-03-08");
    assert_eq!(dist.utc_offset_minutes, -480);
    let minutes = run_samples
        .iter()
        .find(|s| s.metric == "active_minutes")
        .unwrap();
    assert_eq!((minutes.value, minutes.unit), (41.0, "min"));
    let energy = run_samples
        .iter()
        .find(|s| s.metric == "active_energy")
        .unwrap();
    assert_eq!((energy.value, energy.unit), (612.0, "kcal"));
    // Heart rate: one mean per minute of the stream; minute 30 onwards is past local midnight.
    let hr: Vec<_> = run_samples
        .iter()
        .filter(|s| s.metric == "heart_rate")
        .collect();
    assert_eq!(hr.len(), 43);
    assert!(hr.iter().all(|s| s.unit == "bpm"));
    let m29 = hr
        .iter()
        .find(|s| s.recorded_at == at("2024-03-09T07:59:00Z"))
        .unwrap();
    assert_eq!(
        (m29.value, m29.local_date.to_string().as_str()),
        (159.0, "2024-03-08")
    );
    let m30 = hr
        .iter()
        .find(|s| s.recorded_at == at("2024-03-09T08:00:00Z"))
        .unwrap();
    assert_eq!(
        (m30.value, m30.local_date.to_string().as_str()),
        (160.0, "2024-03-09")
    );

    // The ride: calories from the detail, power kept on the event.
    let ride_ev = events
        .iter()
        .find(|e| e.provider_event_id == "1002")
        .unwrap();
    assert_eq!(ride_ev.activity_type.as_deref(), Some("cycling"));
    assert_eq!(ride_ev.energy_kcal, Some(870.0));
    let data = ride_ev.data.as_ref().unwrap();
    assert_eq!(data["average_watts"], json!(175.3));
    assert_eq!(data["work_kj"], json!(788.7));
    assert_eq!(data["energy_source"], json!("calories"));
    assert_eq!(ride_ev.local_date.to_string(), "2024-03-10");

    // The walk: Berlin offset, no energy, no heart rate.
    let walk_ev = events
        .iter()
        .find(|e| e.provider_event_id == "1003")
        .unwrap();
    assert_eq!(walk_ev.activity_type.as_deref(), Some("walking"));
    assert_eq!(walk_ev.energy_kcal, None);
    let walk_samples: Vec<_> = samples
        .iter()
        .filter(|s| s.recorded_at == at("2024-03-11T18:00:00Z"))
        .collect();
    assert_eq!(walk_samples.len(), 2, "distance and active minutes only");
    assert!(walk_samples.iter().all(|s| s.utc_offset_minutes == 60));

    // Streams are only fetched for activities with heart rate.
    let reqs = server.received_requests().await.unwrap();
    let streams = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/streams"))
        .count();
    assert_eq!(streams, 1);

    // Incremental: from the cursor minus one day, not a fixed window.
    let later = "2024-03-13T06:00:00Z";
    let inc_after = (at(now).timestamp() - 86_400 - 1).to_string();
    Mock::given(method("GET"))
        .and(path("/api/v3/athlete/activities"))
        .and(query_param("after", inc_after.as_str()))
        .and(query_param(
            "before",
            at(later).timestamp().to_string().as_str(),
        ))
        .and(query_param("page", "1"))
        .respond_with(ok(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let cursors = batches[3].cursors.clone();
    let inc = ok_batches(run_sync(&p, request(later, cursors)).await);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].cursors["activities"], at(later));
}

#[tokio::test]
async fn a_single_page_window_moves_the_cursor_per_activity_and_stops_at_malformed_data() {
    let server = MockServer::start().await;
    let p = provider(&server, 200);
    let now = "2024-03-12T12:00:00Z";
    Mock::given(path("/api/v3/athlete/activities"))
        .and(query_param("per_page", "200"))
        // Newest first: the provider must not depend on the order.
        .respond_with(ok(json!([walk(), ride(), run()])))
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/activities/1001"))
        .respond_with(ok(detail(run(), json!({"calories": 612.0}))))
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/activities/1001/streams"))
        .respond_with(ok(run_streams()))
        .mount(&server)
        .await;
    // The ride's detail is cut off mid-body.
    Mock::given(path("/api/v3/activities/1002"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"id": 1002, "name": "Happy Fri"#),
        )
        .mount(&server)
        .await;
    let out = run_sync(&p, request(now, Cursors::new())).await;
    assert_eq!(out.len(), 2);
    let first = out[0].as_ref().unwrap();
    assert_eq!(first.events[0].provider_event_id, "1001");
    assert_eq!(first.cursors["activities"], at("2024-03-09T07:30:00Z"));
    assert!(
        matches!(out[1], Err(ProviderError::Malformed(_))),
        "{:?}",
        out[1]
    );

    // A wrongly typed field is malformed too.
    server.reset().await;
    Mock::given(path("/api/v3/athlete/activities"))
        .respond_with(ok(json!([{"id": "not-a-number", "start_date": 5}])))
        .mount(&server)
        .await;
    let out = run_sync(&p, request(now, Cursors::new())).await;
    assert_eq!(out.len(), 1);
    assert!(
        matches!(out[0], Err(ProviderError::Malformed(_))),
        "{:?}",
        out[0]
    );
}

#[tokio::test]
async fn faults_rate_limit_server_errors_timeouts_and_revoked_tokens() {
    let server = MockServer::start().await;
    let p = provider(&server, 200);
    let now = "2024-03-12T12:00:00Z";
    // 429 with Strava's body and a short Retry-After, then the list.
    Mock::given(path("/api/v3/athlete/activities"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"message": "Rate Limit Exceeded", "errors": [
                    {"resource": "Application", "field": "rate limit", "code": "exceeded"}]})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/athlete/activities"))
        .respond_with(ok(json!([run(), ride()])))
        .mount(&server)
        .await;
    // Two 503s, then the detail.
    Mock::given(path("/api/v3/activities/1001"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    mount_details(&server).await;
    // One stream request hangs past the timeout; the retry succeeds.
    Mock::given(path("/api/v3/activities/1001/streams"))
        .respond_with(ok(run_streams()).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;

    let started = std::time::Instant::now();
    let batches = ok_batches(run_sync(&p, request(now, Cursors::new())).await);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited out Retry-After"
    );
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[2].cursors["activities"], at(now));
    assert_eq!(batches[0].events[0].energy_kcal, Some(612.0));
    let reqs = server.received_requests().await.unwrap();
    let count = |suffix: &str| {
        reqs.iter()
            .filter(|r| r.url.path().ends_with(suffix))
            .count()
    };
    assert_eq!(count("/activities"), 2, "the 429, then the list");
    assert_eq!(count("/activities/1001"), 3, "two 503s, then the detail");
    assert_eq!(count("/streams"), 2, "a timeout, then the streams");

    // Revoked token: Strava's 401 Fault.
    server.reset().await;
    Mock::given(path("/api/v3/athlete/activities"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": "Authorization Error",
            "errors": [{"resource": "Athlete", "field": "access_token", "code": "invalid"}]
        })))
        .mount(&server)
        .await;
    let out = run_sync(&p, request(now, Cursors::new())).await;
    assert!(
        matches!(out[..], [Err(ProviderError::Unauthorized(_))]),
        "{out:?}"
    );

    // An exhausted daily read budget (reported in headers) pauses the application budget.
    server.reset().await;
    Mock::given(path("/api/v3/athlete"))
        .respond_with(ok(json!({"id": 134815})).insert_header("X-ReadRateLimit-Usage", "57,1000"))
        .mount(&server)
        .await;
    let tokens = TokenSet {
        access_token: TOKEN.into(),
        refresh_token: None,
        expires_at: None,
        scopes: vec![],
    };
    p.account(&tokens).await.unwrap();
    let err = p.account(&tokens).await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err:?}");
}

fn hook(method: &str, query: &[(&str, &str)], body: &str) -> WebhookRequest {
    WebhookRequest {
        method: method.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
        received_at: Utc::now(),
    }
}

#[tokio::test]
async fn webhook_handshake_and_events() {
    let server = MockServer::start().await;
    let p = provider(&server, 200);
    let good = hook(
        "GET",
        &[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "15f7d1a91c1f40f8a748fd134752feb3"),
            ("hub.verify_token", "STRAVA"),
        ],
        "",
    );
    match p.webhook(&good).unwrap() {
        WebhookReply::Handshake {
            status,
            content_type,
            body,
        } => {
            assert_eq!((status, content_type), (200, "application/json"));
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                v,
                json!({"hub.challenge": "15f7d1a91c1f40f8a748fd134752feb3"})
            );
        }
        other => panic!("{other:?}"),
    }
    let bad = hook(
        "GET",
        &[
            ("hub.mode", "subscribe"),
            ("hub.challenge", "x"),
            ("hub.verify_token", "STRAVB"),
        ],
        "",
    );
    assert_eq!(
        p.webhook(&bad).unwrap_err(),
        WebhookError::BadVerification { status: 403 }
    );

    let created = r#"{"aspect_type": "create", "event_time": 1516126040, "object_id": 1360128428,
        "object_type": "activity", "owner_id": 134815, "subscription_id": 120475, "updates": {}}"#;
    assert_eq!(
        p.webhook(&hook("POST", &[], created)).unwrap(),
        WebhookReply::Accepted {
            status: 200,
            targets: vec![WebhookTarget::Sync {
                provider_user_id: "134815".into(),
                data_types: vec!["activities".into()],
                range: None,
            }]
        }
    );
    let deauth = r#"{"aspect_type": "update", "event_time": 1516126040, "object_id": 134815,
        "object_type": "athlete", "owner_id": 134815, "subscription_id": 120475,
        "updates": {"authorized": "false"}}"#;
    assert_eq!(
        p.webhook(&hook("POST", &[], deauth)).unwrap(),
        WebhookReply::Accepted {
            status: 200,
            targets: vec![WebhookTarget::Deauthorized {
                provider_user_id: "134815".into()
            }]
        }
    );
    assert!(matches!(
        p.webhook(&hook("POST", &[], "{\"aspect_type\":")),
        Err(WebhookError::Malformed(_))
    ));

    // Without a verify token configured there is no subscription to answer for.
    let unconfigured = StravaProvider::new(ProviderContext {
        settings: ProviderSettings {
            webhook_verify_token: None,
            ..settings(&server)
        },
        http: http(),
    });
    assert_eq!(
        unconfigured.webhook(&good).unwrap_err(),
        WebhookError::Unsupported
    );
}
