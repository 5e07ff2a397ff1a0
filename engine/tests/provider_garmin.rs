//! The Garmin provider against a mock of the official Health/Activity API speaking its
//! documented formats: OAuth 2.0 with PKCE and body credentials, upload-time pull windows of at
//! most 24 h answered with JSON arrays, backfill requests answered 202 (409 when repeated, 412
//! for a type the user did not share), `errorMessage` error bodies, and push/ping/deregistration
//! notifications authenticated by the `garmin-client-id` header.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use vitasync_engine::domain::{EventType, NewSample};
use vitasync_engine::providers::garmin::GarminProvider;
use vitasync_engine::providers::oauth;
use vitasync_engine::providers::{
    Cursors, Provider, ProviderContext, ProviderError, ProviderHttp, ProviderSettings, RetryPolicy,
    SyncBatch, SyncRequest, SyncUser, TokenSet, WebhookError, WebhookReply, WebhookRequest,
    WebhookTarget,
};

const USER: &str = "d3315b1072421d0dd7c8f6b8e1de4df8";
const REDIRECT: &str = "https://vs.example/v1/oauth/garmin/callback";
const API: &str = "/wellness-api/rest";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn secs(d: DateTime<Utc>) -> String {
    d.timestamp().to_string()
}

fn now() -> DateTime<Utc> {
    t("2024-03-12T12:00:00Z")
}

fn http() -> ProviderHttp {
    ProviderHttp::new(RetryPolicy {
        attempts: 4,
        backoff: StdDuration::from_millis(10),
        max_inline_wait: StdDuration::from_secs(5),
        timeout: StdDuration::from_millis(500),
    })
}

fn settings(server: &MockServer) -> ProviderSettings {
    ProviderSettings {
        client_id: Some("cid".into()),
        client_secret: Some("secret".into()),
        auth_url: Some(format!("{}/oauth2Confirm", server.uri())),
        token_url: Some(format!("{}/di-oauth2-service/oauth/token", server.uri())),
        api_url: Some(format!("{}{API}", server.uri())),
        ..Default::default()
    }
}

fn provider(server: &MockServer) -> GarminProvider {
    GarminProvider::new(ProviderContext {
        settings: settings(server),
        http: http(),
    })
}

fn request(
    cursors: Cursors,
    data_types: &[&str],
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> SyncRequest {
    SyncRequest {
        user: SyncUser {
            external_id: "alice".into(),
            timezone: Some("Europe/Brussels".parse().unwrap()),
        },
        access_token: Some("a2".into()),
        provider_user_id: Some(USER.into()),
        data_types: data_types.iter().map(|s| s.to_string()).collect(),
        cursors,
        range,
        backfill_days: 100,
        connected_at: now() - Duration::hours(30),
        now: now(),
    }
}

async fn run(p: &GarminProvider, req: SyncRequest) -> Vec<Result<SyncBatch, ProviderError>> {
    p.sync(req).collect().await
}

fn ok_batches(results: Vec<Result<SyncBatch, ProviderError>>) -> Vec<SyncBatch> {
    results.into_iter().map(|r| r.unwrap()).collect()
}

fn find<'a>(samples: &'a [NewSample], metric: &str, at: DateTime<Utc>) -> &'a NewSample {
    samples
        .iter()
        .find(|s| s.metric == metric && s.recorded_at == at)
        .unwrap_or_else(|| panic!("no {metric} at {at}"))
}

fn q(req: &Request) -> HashMap<String, String> {
    req.url.query_pairs().into_owned().collect()
}

fn form(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

fn garmin_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "errorMessage": message }))
}

// ---------------------------------------------------------------------------------------------
// Fixtures, shaped like Garmin's documented examples.

/// A day in Brussels (+01:00): the summary starts at local midnight, 23:00 UTC the day before.
fn daily_brussels() -> Value {
    json!({
        "summaryId": "x153a9f3-65ecf070-15180",
        "calendarDate": "2024-03-10",
        "activityType": "WALKING",
        "startTimeInSeconds": 1710025200,
        "startTimeOffsetInSeconds": 3600,
        "durationInSeconds": 86400,
        "steps": 8543,
        "distanceInMeters": 6520.5,
        "activeTimeInSeconds": 12240,
        "activeKilocalories": 621,
        "bmrKilocalories": 1731,
        "moderateIntensityDurationInSeconds": 1920,
        "vigorousIntensityDurationInSeconds": 1080,
        "floorsClimbed": 8,
        "minHeartRateInBeatsPerMinute": 52,
        "averageHeartRateInBeatsPerMinute": 64,
        "maxHeartRateInBeatsPerMinute": 151,
        "restingHeartRateInBeatsPerMinute": 55,
        "timeOffsetHeartRateSamples": {"15": 75, "30": 75, "3180": 76, "3195": 65},
        "averageStressLevel": 43,
        "maxStressLevel": 87,
        "stressQualifier": "stressful_awake",
        "bodyBatteryChargedValue": 58,
        "bodyBatteryDrainedValue": 61,
        "stepsGoal": 10000,
        "intensityDurationGoalInSeconds": 1800,
        "floorsClimbedGoal": 10
    })
}

/// The next day, after flying to New York (−05:00): its 20:00 local is 01:00 UTC the next day.
fn daily_new_york() -> Value {
    json!({
        "summaryId": "x153a9f3-65ee9050-15180",
        "calendarDate": "2024-03-11",
        "startTimeInSeconds": 1710133200,
        "startTimeOffsetInSeconds": -18000,
        "durationInSeconds": 86400,
        "steps": 10234,
        "distanceInMeters": 7900,
        "activeKilocalories": 700,
        "bmrKilocalories": 1700,
        "moderateIntensityDurationInSeconds": 600,
        "restingHeartRateInBeatsPerMinute": 57,
        "timeOffsetHeartRateSamples": {"72000": 88}
    })
}

fn sleep() -> Value {
    json!({
        "summaryId": "x153a9f3-65ee2ed2",
        "calendarDate": "2024-03-11",
        "startTimeInSeconds": 1710108090,
        "startTimeOffsetInSeconds": 3600,
        "durationInSeconds": 26880,
        "unmeasurableSleepInSeconds": 0,
        "deepSleepDurationInSeconds": 5460,
        "lightSleepDurationInSeconds": 15240,
        "remSleepInSeconds": 6180,
        "awakeDurationInSeconds": 960,
        "sleepLevelsMap": {
            "deep":  [{"startTimeInSeconds": 1710109890, "endTimeInSeconds": 1710112290}],
            "light": [{"startTimeInSeconds": 1710108090, "endTimeInSeconds": 1710109890},
                      {"startTimeInSeconds": 1710124860, "endTimeInSeconds": 1710135930}],
            "rem":   [{"startTimeInSeconds": 1710120090, "endTimeInSeconds": 1710121890}],
            "awake": [{"startTimeInSeconds": 1710124500, "endTimeInSeconds": 1710124860}]
        },
        "validation": "ENHANCED_FINAL",
        "timeOffsetSleepRespiration": {"60": 15.31, "120": 14.58},
        "timeOffsetSleepSpo2": {"0": 95, "60": 96},
        "overallSleepScore": {"value": 87, "qualifierKey": "GOOD"},
        "sleepScores": {"totalDuration": {"qualifierKey": "EXCELLENT"}},
        "naps": [{"napDurationInSeconds": 600, "napStartTimeInSeconds": 1710165900,
                  "napValidation": "DEVICE", "napOffsetInSeconds": 3600}]
    })
}

fn activity() -> Value {
    json!({
        "userId": USER,
        "summaryId": "7654562055",
        "activityId": 7654562055u64,
        "activityName": "Morning Run",
        "activityType": "RUNNING",
        "deviceName": "forerunner965",
        "startTimeInSeconds": 1710139692,
        "startTimeOffsetInSeconds": -18000,
        "durationInSeconds": 2820,
        "distanceInMeters": 8200.4,
        "averageSpeedInMetersPerSecond": 2.908,
        "averagePaceInMinutesPerKilometer": 5.73,
        "averageHeartRateInBeatsPerMinute": 151,
        "maxHeartRateInBeatsPerMinute": 176,
        "averageRunCadenceInStepsPerMinute": 168.5,
        "totalElevationGainInMeters": 85.3,
        "totalElevationLossInMeters": 83.9,
        "activeKilocalories": 612,
        "steps": 7890,
        "manual": false
    })
}

/// One summary list per pull path, served for the first or the second upload window.
fn pulls() -> Vec<(&'static str, bool, Value)> {
    vec![
        ("dailies", true, json!([daily_brussels()])),
        ("dailies", false, json!([daily_new_york()])),
        ("sleeps", true, json!([sleep()])),
        (
            "hrv",
            true,
            json!([{"summaryId": "x473db21-65ee2ed2", "calendarDate": "2024-03-11",
                "lastNightAvg": 44, "lastNight5MinHigh": 72, "startTimeOffsetInSeconds": 3600,
                "durationInSeconds": 3820, "startTimeInSeconds": 1710108090,
                "hrvValues": {"300": 32, "600": 24}}]),
        ),
        (
            "pulseOx",
            true,
            json!([{"summaryId": "x-spo2", "calendarDate": "2024-03-11",
                "startTimeInSeconds": 1710108090, "durationInSeconds": 27840,
                "startTimeOffsetInSeconds": 3600,
                "timeOffsetSpo2Values": {"0": 95, "7140": 94, "10740": 98}, "onDemand": false}]),
        ),
        (
            "respiration",
            true,
            json!([{"summaryId": "x15372ea-5d7866b4", "startTimeInSeconds": 1710108000,
                "durationInSeconds": 900, "startTimeOffsetInSeconds": 3600,
                "timeOffsetEpochToBreaths": {"0": 14.63, "60": 14.4}}]),
        ),
        (
            "skinTemp",
            true,
            json!([{"summaryId": "example-65f83c38", "calendarDate": "2024-03-11",
                "avgDeviationCelsius": -0.4, "durationInSeconds": 1980,
                "startTimeInSeconds": 1710108090, "startTimeOffsetInSeconds": 3600}]),
        ),
        (
            "stressDetails",
            true,
            json!([{"summaryId": "x473db21-stress", "calendarDate": "2024-03-10",
                "startTimeInSeconds": 1710025200, "startTimeOffsetInSeconds": 3600,
                "durationInSeconds": 86400,
                "timeOffsetStressLevelValues": {"0": 18, "180": -1, "360": 28},
                "timeOffsetBodyBatteryValues": {"0": 55, "180": 56}}]),
        ),
        (
            "bodyComps",
            false,
            json!([{"summaryId": "EXAMPLE_678901", "measurementTimeInSeconds": 1710140000,
                "measurementTimeOffsetInSeconds": -18000, "muscleMassInGrams": 25478,
                "boneMassInGrams": 2437, "bodyWaterInPercent": 59.4, "bodyFatInPercent": 17.1,
                "bodyMassIndex": 23.2, "weightInGrams": 75450}]),
        ),
        (
            "userMetrics",
            true,
            json!([{"summaryId": "EXAMPLE_843244", "calendarDate": "2024-03-11", "vo2Max": 48.0,
                "vo2MaxCycling": 51.0, "enhanced": true, "fitnessAge": 32}]),
        ),
        (
            "bloodPressures",
            false,
            json!([{"summaryId": "x473db21-632b3500", "systolic": 120, "diastolic": 80,
                "pulse": 62, "sourceType": "DEVICE", "measurementTimeInSeconds": 1710140000,
                "measurementTimeOffsetInSeconds": -18000}]),
        ),
        ("activities", false, json!([activity()])),
    ]
}

// ---------------------------------------------------------------------------------------------
// 1. OAuth

#[tokio::test]
async fn oauth_flow_with_pkce_body_credentials_rotation_account_and_revoke() {
    let server = MockServer::start().await;
    let p = provider(&server);
    assert!(p.configured());
    let spec = p.oauth_spec().unwrap();
    let app = p.oauth_app(REDIRECT).unwrap();

    let start = oauth::authorize(spec, &app, "st4te").unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth2Confirm");
    let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], "cid");
    assert_eq!(query["state"], "st4te");
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(!query.contains_key("scope"), "Garmin takes no scopes");
    let challenge = query["code_challenge"].clone();
    let verifier = start.pkce_verifier.clone().unwrap();

    let token = "/di-oauth2-service/oauth/token";
    Mock::given(method("POST"))
        .and(path(token))
        .and(move |r: &Request| {
            let f = form(r);
            let pkce = f.get("code_verifier").is_some_and(|v| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(v))
                    == challenge
            });
            !r.headers.contains_key("authorization")
                && f.get("grant_type").map(String::as_str) == Some("authorization_code")
                && f.get("client_id").map(String::as_str) == Some("cid")
                && f.get("client_secret").map(String::as_str) == Some("secret")
                && f.get("code").map(String::as_str) == Some("c0de")
                && f.get("redirect_uri").map(String::as_str) == Some(REDIRECT)
                && pkce
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "a1",
            "expires_in": 86400,
            "token_type": "bearer",
            "refresh_token": "r1",
            "scope": "PARTNER_WRITE PARTNER_READ CONNECT_READ CONNECT_WRITE",
            "jti": "f9eb2316-9b9d-495a-8732-e16c4b5bcafd",
            "refresh_token_expires_in": 7775998
        })))
        .expect(1)
        .mount(&server)
        .await;
    // Refresh tokens rotate: r1 works once, then Garmin refuses it.
    Mock::given(method("POST"))
        .and(path(token))
        .and(|r: &Request| {
            let f = form(r);
            !r.headers.contains_key("authorization")
                && f.get("grant_type").map(String::as_str) == Some("refresh_token")
                && f.get("refresh_token").map(String::as_str) == Some("r1")
                && f.get("client_id").map(String::as_str) == Some("cid")
                && f.get("client_secret").map(String::as_str) == Some("secret")
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "a2", "expires_in": 86400, "token_type": "bearer",
            "refresh_token": "r2", "scope": "PARTNER_WRITE PARTNER_READ CONNECT_READ CONNECT_WRITE",
            "jti": "0c5a1f7e-2d43-4b8e-9a3e-1f2b3c4d5e6f", "refresh_token_expires_in": 7775998
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(token))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant", "error_description": "Invalid refresh token"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/user/id")))
        .and(header("authorization", "Bearer a2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "userId": USER })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(format!("{API}/user/registration")))
        .and(header("authorization", "Bearer a2"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    let http = http();
    let t0 = now();
    let tokens = oauth::exchange_code(&http, spec, &app, "c0de", Some(&verifier), t0)
        .await
        .unwrap();
    assert_eq!(tokens.access_token, "a1");
    assert_eq!(tokens.refresh_token.as_deref(), Some("r1"));
    assert_eq!(tokens.expires_at, Some(t0 + Duration::seconds(86400)));
    assert_eq!(
        tokens.scopes,
        [
            "PARTNER_WRITE",
            "PARTNER_READ",
            "CONNECT_READ",
            "CONNECT_WRITE"
        ]
    );
    // Garmin asks for a refresh at least 600 s before expiry.
    let margin = spec.refresh_margin;
    assert!(!tokens.needs_refresh(t0 + Duration::seconds(86400 - 700), margin));
    assert!(tokens.needs_refresh(t0 + Duration::seconds(86400 - 590), margin));

    let refreshed = oauth::refresh(&http, spec, &app, "r1", t0).await.unwrap();
    assert_eq!(refreshed.access_token, "a2");
    assert_eq!(refreshed.refresh_token.as_deref(), Some("r2"));
    let reused = oauth::refresh(&http, spec, &app, "r1", t0)
        .await
        .unwrap_err();
    assert!(
        matches!(reused, ProviderError::Unauthorized(_)),
        "{reused:?}"
    );

    let account = p.account(&refreshed).await.unwrap();
    assert_eq!(account.provider_user_id.as_deref(), Some(USER));
    p.revoke(&refreshed, Some(USER)).await.unwrap();
}

#[tokio::test]
async fn revoking_an_already_revoked_grant_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("{API}/user/registration")))
        .respond_with(garmin_error(401, "Unable to find user for token"))
        .expect(1)
        .mount(&server)
        .await;
    let tokens = TokenSet {
        access_token: "gone".into(),
        refresh_token: None,
        expires_at: None,
        scopes: vec![],
    };
    provider(&server).revoke(&tokens, Some(USER)).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. Sync

/// Serves every pull path: the fixtures for their window, `[]` otherwise.
async fn mount_pulls(server: &MockServer, first: DateTime<Utc>, second: DateTime<Utc>) {
    for (p, in_first, body) in pulls() {
        let from = if in_first { first } else { second };
        Mock::given(method("GET"))
            .and(path(format!("{API}/{p}")))
            .and(query_param("uploadStartTimeInSeconds", secs(from)))
            .and(header("authorization", "Bearer a2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .with_priority(1)
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path_regex(format!("^{API}/[A-Za-z]+$")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .with_priority(10)
        .mount(server)
        .await;
}

#[tokio::test]
async fn first_sync_requests_backfill_and_pulls_upload_windows_since_the_connection() {
    let server = MockServer::start().await;
    let n = now();
    let from = n - Duration::days(100);
    // A repeated backfill request is a 409 at Garmin: harmless.
    Mock::given(method("GET"))
        .and(path(format!("{API}/backfill/hrv")))
        .and(query_param("summaryStartTimeInSeconds", secs(from)))
        .respond_with(garmin_error(409, "Duplicate backfill request"))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^{API}/backfill/[A-Za-z]+$")))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    // Pulls start an hour before the connection (30 h ago), in windows of at most 24 h.
    let w1 = n - Duration::hours(31);
    let w2 = w1 + Duration::hours(24);
    mount_pulls(&server, w1, w2).await;

    let p = provider(&server);
    let batches = ok_batches(run(&p, request(Cursors::new(), &[], None)).await);

    // Backfill: every backfillable type, in chunks of at most 90 days (activities 30).
    let requests = server.received_requests().await.unwrap();
    let mut backfills: Vec<(String, String, String)> = requests
        .iter()
        .filter(|r| r.url.path().starts_with(&format!("{API}/backfill/")))
        .map(|r| {
            let q = q(r);
            (
                r.url.path().rsplit('/').next().unwrap().to_string(),
                q["summaryStartTimeInSeconds"].clone(),
                q["summaryEndTimeInSeconds"].clone(),
            )
        })
        .collect();
    backfills.sort();
    let mut expected = Vec::new();
    for ty in [
        "dailies",
        "sleeps",
        "hrv",
        "pulseOx",
        "respiration",
        "skinTemp",
        "stressDetails",
        "bodyComps",
        "userMetrics",
        "bloodPressures",
    ] {
        expected.push((ty.to_string(), secs(from), secs(from + Duration::days(90))));
        expected.push((ty.to_string(), secs(from + Duration::days(90)), secs(n)));
    }
    for k in 0..4 {
        let a = from + Duration::days(30 * k);
        let b = (a + Duration::days(30)).min(n);
        expected.push(("activities".into(), secs(a), secs(b)));
    }
    expected.sort();
    assert_eq!(backfills, expected);
    assert!(
        requests.iter().all(|r| r.method.as_str() == "GET"),
        "backfill and pulls are GETs"
    );

    // Pulls: 12 types × 2 windows, each window exactly as Garmin caps it.
    let pulls: Vec<_> = requests
        .iter()
        .filter(|r| !r.url.path().contains("/backfill/"))
        .collect();
    assert_eq!(pulls.len(), 24);
    for r in &pulls {
        let q = q(r);
        let (a, b) = (
            q["uploadStartTimeInSeconds"].parse::<i64>().unwrap(),
            q["uploadEndTimeInSeconds"].parse::<i64>().unwrap(),
        );
        assert!(b - a <= 86_400 && b > a, "{}", r.url);
        assert!([w1.timestamp(), w2.timestamp()].contains(&a), "{}", r.url);
    }
    assert_eq!(batches.len(), 24);

    // Cursors advance per type to each window's end, and only for what is complete.
    assert_eq!(batches[0].cursors.len(), 1);
    assert_eq!(batches[0].cursors["dailies"], w2);
    assert_eq!(batches[1].cursors["dailies"], n);
    let last = &batches.last().unwrap().cursors;
    assert_eq!(last.len(), 12);
    assert!(last.values().all(|c| *c == n));

    let samples: Vec<NewSample> = batches.iter().flat_map(|b| b.samples.clone()).collect();
    let events: Vec<_> = batches.iter().flat_map(|b| b.events.clone()).collect();
    assert!(samples.iter().all(|s| s.provider == "garmin"));

    // Dailies: totals at the local day start (23:00 UTC the day before), calendarDate as day.
    let day = at(1710025200);
    let steps = find(&samples, "steps", day);
    assert_eq!((steps.value, steps.unit), (8543.0, "count"));
    assert_eq!(steps.local_date.to_string(), "2024-03-10");
    assert_eq!(steps.utc_offset_minutes, 60);
    assert_eq!(find(&samples, "distance", day).value, 6520.5);
    assert_eq!(find(&samples, "active_energy", day).value, 621.0);
    assert_eq!(find(&samples, "total_energy", day).value, 2352.0);
    let active = find(&samples, "active_minutes", day);
    assert_eq!((active.value, active.unit), (50.0, "min"));
    assert_eq!(find(&samples, "floors", day).value, 8.0);
    assert_eq!(find(&samples, "resting_heart_rate", day).value, 55.0);
    let hr: Vec<_> = samples
        .iter()
        .filter(|s| s.metric == "heart_rate" && s.local_date.to_string() == "2024-03-10")
        .collect();
    assert_eq!(hr.len(), 4, "the 15 s samples, not the 7-day average");
    assert_eq!(
        find(&samples, "heart_rate", day + Duration::seconds(3195)).value,
        65.0
    );
    // Stress: negative codes are not values; body battery has no catalogue metric.
    let stress: Vec<f64> = samples
        .iter()
        .filter(|s| s.metric == "stress")
        .map(|s| s.value)
        .collect();
    assert_eq!(stress, vec![18.0, 28.0]);

    // The travelled day: −05:00, and a sample at 20:00 local falls on the next UTC date.
    let ny = find(&samples, "steps", at(1710133200));
    assert_eq!((ny.value, ny.utc_offset_minutes), (10234.0, -300));
    assert_eq!(ny.local_date.to_string(), "2024-03-11");
    let evening = find(&samples, "heart_rate", t("2024-03-12T01:00:00Z"));
    assert_eq!(evening.local_date.to_string(), "2024-03-11");
    assert_eq!(find(&samples, "active_minutes", at(1710133200)).value, 10.0);

    // Sleep: metrics on the date the sleep ends on, though it starts at 23:01 the day before.
    let bed = at(1710108090);
    for (metric, value, unit) in [
        ("sleep_duration", 448.0, "min"),
        ("sleep_deep", 91.0, "min"),
        ("sleep_light", 254.0, "min"),
        ("sleep_rem", 103.0, "min"),
        ("sleep_awake", 16.0, "min"),
        ("sleep_score", 87.0, "score"),
    ] {
        let s = find(&samples, metric, bed);
        assert_eq!((s.value, s.unit), (value, unit), "{metric}");
        assert_eq!(s.local_date.to_string(), "2024-03-11", "{metric}");
    }
    let eff = find(&samples, "sleep_efficiency", bed);
    assert!((eff.value - 100.0 * 26880.0 / 27840.0).abs() < 1e-9);
    assert_eq!(eff.unit, "%");
    let sleep_ev = events
        .iter()
        .find(|e| e.event_type == EventType::Sleep)
        .unwrap();
    assert_eq!(sleep_ev.provider_event_id, "x153a9f3-65ee2ed2");
    assert_eq!(sleep_ev.started_at, bed);
    assert_eq!(sleep_ev.ended_at, Some(at(1710135930)));
    assert_eq!(sleep_ev.duration_s, Some(27840.0));
    assert_eq!(sleep_ev.local_date.to_string(), "2024-03-11");
    let data = sleep_ev.data.as_ref().unwrap();
    assert_eq!(data["validation"], "ENHANCED_FINAL");
    assert_eq!(data["score_qualifier"], "GOOD");

    // HRV, skin temperature: one value per night on the calendar date.
    let hrv = find(&samples, "hrv_rmssd", bed);
    assert_eq!(
        (hrv.value, hrv.unit, hrv.local_date.to_string().as_str()),
        (44.0, "ms", "2024-03-11")
    );
    let skin = find(&samples, "skin_temperature_deviation", bed);
    assert_eq!((skin.value, skin.unit), (-0.4, "°C"));

    // Pulse ox across local midnight: 23:01 local is the 10th, 01:00 local the 11th.
    let spo2_evening = find(&samples, "spo2", bed);
    assert_eq!(spo2_evening.local_date.to_string(), "2024-03-10");
    let spo2_night = find(&samples, "spo2", bed + Duration::seconds(7140));
    assert_eq!((spo2_night.value, spo2_night.unit), (94.0, "%"));
    assert_eq!(spo2_night.local_date.to_string(), "2024-03-11");
    let rr = find(&samples, "respiratory_rate", at(1710108000 + 60));
    assert_eq!((rr.value, rr.unit), (14.4, "brpm"));

    // Body composition in grams → kg; blood pressure; VO2max on its calendar date.
    let weigh_in = at(1710140000);
    let weight = find(&samples, "weight", weigh_in);
    assert!((weight.value - 75.45).abs() < 1e-9);
    assert_eq!((weight.unit, weight.utc_offset_minutes), ("kg", -300));
    assert_eq!(weight.local_date.to_string(), "2024-03-11");
    assert_eq!(find(&samples, "body_fat", weigh_in).value, 17.1);
    assert_eq!(find(&samples, "bmi", weigh_in).value, 23.2);
    assert_eq!(
        find(&samples, "blood_pressure_systolic", weigh_in).value,
        120.0
    );
    assert_eq!(
        find(&samples, "blood_pressure_diastolic", weigh_in).value,
        80.0
    );
    assert_eq!(find(&samples, "heart_rate", weigh_in).value, 62.0);
    let vo2 = find(&samples, "vo2max", t("2024-03-10T23:00:00Z"));
    assert_eq!((vo2.value, vo2.unit), (48.0, "mL/kg/min"));
    assert_eq!(vo2.local_date.to_string(), "2024-03-11");

    // The workout, at its own offset.
    let run = events
        .iter()
        .find(|e| e.event_type == EventType::Workout)
        .unwrap();
    assert_eq!(run.provider_event_id, "7654562055");
    assert_eq!(run.activity_type.as_deref(), Some("running"));
    assert_eq!(run.started_at, at(1710139692));
    assert_eq!(run.ended_at, Some(at(1710139692 + 2820)));
    assert_eq!(run.local_date.to_string(), "2024-03-11");
    assert_eq!(run.duration_s, Some(2820.0));
    assert_eq!(run.distance_m, Some(8200.4));
    assert_eq!(run.energy_kcal, Some(612.0));
    assert_eq!((run.avg_hr, run.max_hr), (Some(151.0), Some(176.0)));
    let data = run.data.as_ref().unwrap();
    assert_eq!(data["name"], "Morning Run");
    assert_eq!(data["device"], "forerunner965");
    assert_eq!(data["garmin_type"], "RUNNING");
    // Workouts add no samples: the daily summary already counts them.
    assert!(samples.iter().all(|s| s.recorded_at != at(1710139692)));
}

#[tokio::test]
async fn incremental_sync_starts_from_cursor_minus_an_hour_without_backfill() {
    let server = MockServer::start().await;
    let n = now();
    let dailies_cursor = n - Duration::hours(2);
    let sleeps_cursor = n - Duration::hours(26);
    Mock::given(path_regex("/backfill/"))
        .respond_with(ResponseTemplate::new(202))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .and(query_param(
            "uploadStartTimeInSeconds",
            secs(dailies_cursor - Duration::hours(1)),
        ))
        .and(query_param("uploadEndTimeInSeconds", secs(n)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([daily_new_york()])))
        .expect(1)
        .mount(&server)
        .await;
    let s1 = sleeps_cursor - Duration::hours(1);
    let s2 = s1 + Duration::hours(24);
    for (a, b) in [(s1, s2), (s2, n)] {
        Mock::given(method("GET"))
            .and(path(format!("{API}/sleeps")))
            .and(query_param("uploadStartTimeInSeconds", secs(a)))
            .and(query_param("uploadEndTimeInSeconds", secs(b)))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .expect(1)
            .mount(&server)
            .await;
    }
    let cursors: Cursors = [
        ("dailies".to_string(), dailies_cursor),
        ("sleeps".to_string(), sleeps_cursor),
        ("hrv".to_string(), n - Duration::hours(5)),
    ]
    .into();
    let p = provider(&server);
    let batches = ok_batches(run(&p, request(cursors, &["dailies", "sleeps"], None)).await);
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].cursors["dailies"], n);
    assert_eq!(batches[0].cursors["sleeps"], sleeps_cursor);
    assert_eq!(batches[1].cursors["sleeps"], s2);
    assert_eq!(batches[2].cursors["sleeps"], n);
    // Types outside the request keep their cursors untouched.
    assert_eq!(batches[2].cursors["hrv"], n - Duration::hours(5));
    assert_eq!(
        batches[0]
            .samples
            .iter()
            .filter(|s| s.metric == "steps")
            .count(),
        1
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_ping_window_sync_pulls_that_window_and_only_extends_adjoining_cursors() {
    let server = MockServer::start().await;
    let n = now();
    let (from, to) = (n - Duration::minutes(90), n - Duration::minutes(60));
    for p in ["dailies", "sleeps"] {
        Mock::given(method("GET"))
            .and(path(format!("{API}/{p}")))
            .and(query_param("uploadStartTimeInSeconds", secs(from)))
            .and(query_param("uploadEndTimeInSeconds", secs(to)))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .expect(1)
            .mount(&server)
            .await;
    }
    let cursors: Cursors = [
        ("dailies".to_string(), n - Duration::minutes(80)),
        ("sleeps".to_string(), n - Duration::hours(10)),
    ]
    .into();
    let p = provider(&server);
    let batches = ok_batches(
        run(
            &p,
            request(cursors, &["dailies", "sleeps"], Some((from, to))),
        )
        .await,
    );
    let last = &batches.last().unwrap().cursors;
    assert_eq!(last["dailies"], to, "the window joins the dailies cursor");
    assert_eq!(
        last["sleeps"],
        n - Duration::hours(10),
        "a window ahead of the cursor leaves the gap open"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Faults

fn only_dailies(cursor: DateTime<Utc>) -> SyncRequest {
    request([("dailies".to_string(), cursor)].into(), &["dailies"], None)
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_waited_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(garmin_error(429, "Rate limit exceeded").insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([daily_brussels()])))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let started = std::time::Instant::now();
    let batches = ok_batches(run(&p, only_dailies(now() - Duration::hours(2))).await);
    assert!(started.elapsed() >= StdDuration::from_secs(1));
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].cursors["dailies"], now());
    assert_eq!(
        batches[0]
            .samples
            .iter()
            .filter(|s| s.metric == "steps")
            .count(),
        1
    );
}

#[tokio::test]
async fn server_errors_and_a_timeout_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(garmin_error(503, "Service Unavailable"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([daily_brussels()])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/sleeps")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .set_delay(StdDuration::from_secs(3)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/sleeps")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([sleep()])))
        .mount(&server)
        .await;
    let n = now();
    let cursors: Cursors = [
        ("dailies".to_string(), n - Duration::hours(2)),
        ("sleeps".to_string(), n - Duration::hours(2)),
    ]
    .into();
    let p = provider(&server);
    let batches = ok_batches(run(&p, request(cursors, &["dailies", "sleeps"], None)).await);
    assert_eq!(batches.len(), 2);
    assert!(batches[0].samples.iter().any(|s| s.metric == "steps"));
    assert_eq!(batches[1].events.len(), 1);
    assert!(batches[1].cursors.values().all(|c| *c == n));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3 + 2);
}

#[tokio::test]
async fn truncated_json_stops_the_sync_after_the_complete_windows() {
    let server = MockServer::start().await;
    let n = now();
    let cursor = n - Duration::hours(30);
    let w2 = cursor - Duration::hours(1) + Duration::hours(24);
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .and(query_param(
            "uploadStartTimeInSeconds",
            secs(cursor - Duration::hours(1)),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([daily_brussels()])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .and(query_param("uploadStartTimeInSeconds", secs(w2)))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"[{"summaryId": "x153a9f3-65ee9050-15180", "steps": 12"#),
        )
        .mount(&server)
        .await;
    let p = provider(&server);
    let results = run(&p, only_dailies(cursor)).await;
    assert_eq!(results.len(), 2);
    let first = results[0].as_ref().unwrap();
    assert_eq!(first.cursors["dailies"], w2, "only the complete window");
    assert!(
        matches!(results[1], Err(ProviderError::Malformed(_))),
        "{:?}",
        results[1]
    );
}

#[tokio::test]
async fn malformed_bodies_are_malformed() {
    for body in [
        // An error object with a 200 status instead of the summary array.
        r#"{"errorMessage": "unexpected"}"#,
        // A field of the wrong type.
        r#"[{"summaryId": "x", "startTimeInSeconds": 1710025200, "steps": "many"}]"#,
        "<html>gateway</html>",
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(format!("{API}/dailies")))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        let p = provider(&server);
        let results = run(&p, only_dailies(now() - Duration::hours(2))).await;
        assert_eq!(results.len(), 1, "{body}");
        assert!(
            matches!(results[0], Err(ProviderError::Malformed(_))),
            "{body}: {:?}",
            results[0]
        );
    }
}

#[tokio::test]
async fn a_revoked_token_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(garmin_error(401, "Unable to find user for token"))
        .expect(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let results = run(&p, only_dailies(now() - Duration::hours(2))).await;
    assert_eq!(results.len(), 1);
    assert!(
        matches!(results[0], Err(ProviderError::Unauthorized(_))),
        "{:?}",
        results[0]
    );

    let mut no_token = only_dailies(now());
    no_token.access_token = None;
    let results = run(&p, no_token).await;
    assert!(matches!(results[0], Err(ProviderError::Unauthorized(_))));
}

#[tokio::test]
async fn a_type_the_user_did_not_share_is_skipped_and_bad_requests_fail() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/sleeps")))
        .respond_with(garmin_error(
            412,
            "User has not granted permission for this summary type",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let n = now();
    let cursors: Cursors = [
        ("dailies".to_string(), n - Duration::hours(2)),
        ("sleeps".to_string(), n - Duration::hours(2)),
    ]
    .into();
    let p = provider(&server);
    let batches = ok_batches(run(&p, request(cursors, &["dailies", "sleeps"], None)).await);
    let last = &batches.last().unwrap().cursors;
    assert_eq!(last["dailies"], n);
    assert_eq!(
        last["sleeps"],
        n - Duration::hours(2),
        "an unshared type does not advance"
    );

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(garmin_error(
            400,
            "timestamp '1452777797000' appears to be in milliseconds. Please provide unix timestamps in seconds.",
        ))
        .mount(&server)
        .await;
    let results = run(&provider(&server), only_dailies(n - Duration::hours(2))).await;
    assert!(
        matches!(&results[0], Err(ProviderError::Rejected(m)) if m.contains("milliseconds")),
        "{:?}",
        results[0]
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Webhooks

fn notification(client_id: Option<&str>, body: Value) -> WebhookRequest {
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/json;charset=UTF-8".to_string(),
        ),
        ("user-agent".to_string(), "Garmin Health API".to_string()),
    ];
    if let Some(c) = client_id {
        headers.push(("garmin-client-id".to_string(), c.to_string()));
    }
    WebhookRequest {
        method: "POST".into(),
        headers,
        query: vec![],
        body: serde_json::to_vec(&body).unwrap(),
        received_at: now(),
    }
}

fn accepted(reply: WebhookReply) -> Vec<WebhookTarget> {
    match reply {
        WebhookReply::Accepted { status, targets } => {
            assert_eq!(status, 200, "Garmin wants exactly 200");
            targets
        }
        other => panic!("{other:?}"),
    }
}

fn with_user(mut v: Value, user: &str) -> Value {
    v["userId"] = json!(user);
    v
}

#[tokio::test]
async fn push_notifications_carry_the_data_per_user() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let body = json!({
        "dailies": [with_user(daily_brussels(), USER), with_user(daily_new_york(), "other-user")],
        "bodyComps": [{"userId": USER, "summaryId": "EXAMPLE_678901",
            "measurementTimeInSeconds": 1439741130, "measurementTimeOffsetInSeconds": 0,
            "muscleMassInGrams": 25478, "boneMassInGrams": 2437, "bodyWaterInPercent": 59.4,
            "bodyFatInPercent": 17.1, "bodyMassIndex": 23.2, "weightInGrams": 75450}],
        "activities": [activity()],
        "sleeps": [sleep()],
        "epochs": [{"userId": USER, "summaryId": "e1", "steps": 10}]
    });
    let targets = accepted(p.webhook(&notification(Some("cid"), body)).unwrap());
    let data: Vec<(&str, &SyncBatch)> = targets
        .iter()
        .map(|t| match t {
            WebhookTarget::Data {
                provider_user_id,
                batch,
            } => (provider_user_id.as_str(), batch),
            other => panic!("{other:?}"),
        })
        .collect();
    // Sleep without a userId cannot be tied to an account: dropped. Epochs are not read.
    assert_eq!(data.len(), 4, "{data:?}");
    assert!(data.iter().all(|(_, b)| b.cursors.is_empty()));
    let weight = data
        .iter()
        .flat_map(|(u, b)| b.samples.iter().map(move |s| (*u, s)))
        .find(|(_, s)| s.metric == "weight")
        .unwrap();
    assert_eq!(weight.0, USER);
    assert!((weight.1.value - 75.45).abs() < 1e-9);
    assert_eq!(weight.1.unit, "kg");
    let other = data.iter().find(|(u, _)| *u == "other-user").unwrap().1;
    let steps = other.samples.iter().find(|s| s.metric == "steps").unwrap();
    assert_eq!((steps.value, steps.utc_offset_minutes), (10234.0, -300));
    let mine = data
        .iter()
        .filter(|(u, _)| *u == USER)
        .flat_map(|(_, b)| b.events.iter())
        .collect::<Vec<_>>();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].activity_type.as_deref(), Some("running"));
}

#[tokio::test]
async fn ping_notifications_become_window_syncs_that_pull_the_window() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let (from, to) = (1710237600i64, 1710237602i64);
    let cb = |path: &str| {
        format!(
            "https://apis.garmin.com/wellness-api/rest/{path}?uploadStartTimeInSeconds={from}&uploadEndTimeInSeconds={to}&token=XXXXXXXXX"
        )
    };
    let body = json!({
        "dailies": [{"userId": USER, "callbackURL": cb("dailies")}],
        "pulseox": [{"userId": USER, "callbackURL": cb("pulseOx")}],
        "allDayRespiration": [{"userId": "other-user", "callbackURL": cb("respiration")}],
        "epochs": [{"userId": USER, "callbackURL": cb("epochs")}],
        "deregistrations": [{"userId": "gone-user"}],
        "userPermissionsChange": [{"userId": USER, "summaryId": "x120d383-60256e84",
            "permissions": ["ACTIVITY_EXPORT"], "changeTimeInSeconds": 1613065860}]
    });
    let targets = accepted(p.webhook(&notification(Some("cid"), body)).unwrap());
    let range = Some((at(from), at(to)));
    let sync = |user: &str, ty: &str| WebhookTarget::Sync {
        provider_user_id: user.into(),
        data_types: vec![ty.into()],
        range,
    };
    assert_eq!(targets.len(), 4, "{targets:?}");
    assert!(targets.contains(&sync(USER, "dailies")));
    assert!(targets.contains(&sync(USER, "pulseOx")));
    assert!(targets.contains(&sync("other-user", "respiration")));
    assert!(targets.contains(&WebhookTarget::Deauthorized {
        provider_user_id: "gone-user".into()
    }));

    // The targeted sync pulls exactly the pinged upload window.
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .and(query_param("uploadStartTimeInSeconds", from.to_string()))
        .and(query_param("uploadEndTimeInSeconds", to.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([daily_brussels()])))
        .expect(1)
        .mount(&server)
        .await;
    let cursor = at(from) + Duration::seconds(1);
    let req = request(
        [("dailies".to_string(), cursor)].into(),
        &["dailies"],
        range,
    );
    let batches = ok_batches(run(&p, req).await);
    assert_eq!(batches.len(), 1);
    assert!(
        batches[0]
            .samples
            .iter()
            .any(|s| s.metric == "steps" && s.value == 8543.0)
    );
    assert_eq!(batches[0].cursors["dailies"], at(to));
}

#[tokio::test]
async fn notifications_without_this_client_id_are_refused() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let body = json!({"deregistrations": [{"userId": USER}]});
    assert!(matches!(
        p.webhook(&notification(Some("someone-else"), body.clone())),
        Err(WebhookError::BadSignature(_))
    ));
    assert!(matches!(
        p.webhook(&notification(None, body.clone())),
        Err(WebhookError::BadSignature(_))
    ));
    assert!(matches!(
        p.webhook(&notification(Some("cidx"), body.clone())),
        Err(WebhookError::BadSignature(_))
    ));
    let targets = accepted(p.webhook(&notification(Some("cid"), body.clone())).unwrap());
    assert_eq!(
        targets,
        vec![WebhookTarget::Deauthorized {
            provider_user_id: USER.into()
        }]
    );

    let mut bad = notification(Some("cid"), json!({}));
    bad.body = br#"{"dailies": [{"userId": "#.to_vec();
    assert!(matches!(p.webhook(&bad), Err(WebhookError::Malformed(_))));
    let wrong_shape = notification(Some("cid"), json!({"dailies": {"userId": USER}}));
    assert!(matches!(
        p.webhook(&wrong_shape),
        Err(WebhookError::Malformed(_))
    ));

    // Without a configured client id there is nothing to check against.
    let unconfigured = GarminProvider::new(ProviderContext {
        settings: ProviderSettings::default(),
        http: http(),
    });
    assert!(!unconfigured.configured());
    assert!(unconfigured.oauth_app(REDIRECT).is_none());
    assert_eq!(
        unconfigured.webhook(&notification(Some("cid"), body)),
        Err(WebhookError::Unsupported)
    );
}

#[tokio::test]
async fn a_first_sync_skips_a_type_whose_backfill_is_not_permitted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/backfill/sleeps")))
        .respond_with(garmin_error(
            412,
            "User has not granted permission for this summary type",
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/backfill/dailies")))
        .respond_with(ResponseTemplate::new(202))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/sleeps")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{API}/dailies")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(2)
        .mount(&server)
        .await;
    let p = provider(&server);
    let batches = ok_batches(run(&p, request(Cursors::new(), &["dailies", "sleeps"], None)).await);
    let last = &batches.last().unwrap().cursors;
    assert_eq!(last.keys().collect::<Vec<_>>(), ["dailies"]);
    assert_eq!(last["dailies"], now());
}
