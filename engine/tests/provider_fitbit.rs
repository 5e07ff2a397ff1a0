//! The Fitbit provider against a mock of the Fitbit Web API speaking its documented formats:
//! OAuth (Basic client auth, PKCE, single-use refresh tokens), the data endpoints with their
//! `pagination.next` links, `Fitbit-Rate-Limit-*` headers and `errors[]` bodies, and the
//! subscription handshake and signature.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Digest as _;
use vitasync_engine::domain::{EventType, NewEvent, NewSample};
use vitasync_engine::providers::fitbit::{FitbitProvider, OAUTH};
use vitasync_engine::providers::oauth::{authorize, exchange_code, refresh};
use vitasync_engine::providers::{
    Cursors, OAuthApp, Provider, ProviderContext, ProviderError, ProviderHttp, ProviderSettings,
    RetryPolicy, SyncBatch, SyncRequest, SyncUser, TokenSet, WebhookError, WebhookReply,
    WebhookRequest, WebhookTarget,
};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const CLIENT_ID: &str = "23ABCD";
const CLIENT_SECRET: &str = "0a1b2c3d4e5f";
const VERIFY_CODE: &str = "4c0ffee5";
const USER: &str = "GGNJL9";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn fast_http() -> ProviderHttp {
    ProviderHttp::new(RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(10),
        max_inline_wait: Duration::from_secs(3),
        timeout: Duration::from_millis(500),
    })
}

fn settings(server: &MockServer) -> ProviderSettings {
    ProviderSettings {
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        auth_url: Some(format!("{}/oauth2/authorize", server.uri())),
        token_url: Some(format!("{}/oauth2/token", server.uri())),
        api_url: Some(server.uri()),
        webhook_secret: None,
        webhook_verify_token: Some(VERIFY_CODE.into()),
        backfill_days: None,
    }
}

fn provider(server: &MockServer) -> FitbitProvider {
    FitbitProvider::new(ProviderContext {
        settings: settings(server),
        http: fast_http(),
    })
}

/// A 200 with the headers Fitbit puts on every response.
fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(body)
        .insert_header("Fitbit-Rate-Limit-Limit", "150")
        .insert_header("Fitbit-Rate-Limit-Remaining", "140")
        .insert_header("Fitbit-Rate-Limit-Reset", "1800")
}

fn fitbit_error(status: u16, error_type: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "errors": [{"errorType": error_type, "message": message}],
        "success": false
    }))
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    )
}

fn request(tz: Option<&str>, now: &str, backfill_days: u32, cursors: Cursors) -> SyncRequest {
    SyncRequest {
        user: SyncUser {
            external_id: "u-1".into(),
            timezone: tz.map(|z| z.parse().unwrap()),
        },
        access_token: Some("a1".into()),
        provider_user_id: Some(USER.into()),
        data_types: Vec::new(),
        cursors,
        range: None,
        backfill_days,
        connected_at: t(now),
        now: t(now),
    }
}

async fn collect(p: &FitbitProvider, req: SyncRequest) -> (Vec<SyncBatch>, Option<ProviderError>) {
    let mut stream = p.sync(req);
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(b) => out.push(b),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn samples(batches: &[SyncBatch]) -> Vec<&NewSample> {
    batches.iter().flat_map(|b| &b.samples).collect()
}

fn events(batches: &[SyncBatch]) -> Vec<&NewEvent> {
    batches.iter().flat_map(|b| &b.events).collect()
}

fn find<'a>(all: &[&'a NewSample], metric: &str, at: &str) -> &'a NewSample {
    all.iter()
        .copied()
        .find(|s| s.metric == metric && s.recorded_at == t(at))
        .unwrap_or_else(|| panic!("no {metric} at {at}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Answers every data endpoint with an empty (but well-formed) body, so a test only mounts
/// what it looks at.
struct EmptyFitbit;

impl Respond for EmptyFitbit {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let p = req.url.path();
        let body = if p.contains("/sleep/") {
            json!({"sleep": [], "summary": {"totalMinutesAsleep": 0, "totalSleepRecords": 0, "totalTimeInBed": 0}})
        } else if p.contains("/hrv/") {
            json!({"hrv": []})
        } else if p.contains("/spo2/") {
            json!([])
        } else if p.contains("/br/") {
            json!({"br": []})
        } else if p.contains("/temp/skin/") {
            json!({"tempSkin": []})
        } else if p.contains("/body/log/weight/") {
            json!({"weight": []})
        } else if p.contains("/body/log/fat/") {
            json!({"fat": []})
        } else if p.ends_with("/activities/list.json") {
            json!({"activities": [], "pagination": {"afterDate": "2024-03-01", "limit": 100, "next": "", "offset": 0, "previous": "", "sort": "asc"}})
        } else if p.contains("/activities/heart/") {
            json!({"activities-heart": [], "activities-heart-intraday": {"dataset": [], "datasetInterval": 1, "datasetType": "minute"}})
        } else if p.contains("/activities/date/") {
            json!({"activities": [], "goals": {}, "summary": {"activityCalories": 0, "caloriesBMR": 1500, "caloriesOut": 1500, "steps": 0, "distances": [{"activity": "total", "distance": 0}], "fairlyActiveMinutes": 0, "veryActiveMinutes": 0, "sedentaryMinutes": 1440}})
        } else if p.ends_with("/profile.json") {
            json!({"user": {"encodedId": USER, "timezone": "Europe/Berlin", "offsetFromUTCMillis": 3_600_000}})
        } else {
            return fitbit_error(
                404,
                "not_found",
                "The API you are requesting could not be found.",
            );
        };
        ok(body)
    }
}

async fn mount_empty(server: &MockServer) {
    Mock::given(method("GET"))
        .respond_with(EmptyFitbit)
        .with_priority(10)
        .mount(server)
        .await;
}

fn paths(reqs: &[Request]) -> Vec<String> {
    reqs.iter()
        .map(|r| match r.url.query() {
            Some(q) => format!("{}?{q}", r.url.path()),
            None => r.url.path().to_string(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OAuth

/// The token request's `code_verifier` hashes (S256) to the challenge sent to the authorize page.
struct PkceVerifierMatches(String);

impl wiremock::Match for PkceVerifierMatches {
    fn matches(&self, req: &Request) -> bool {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        form.get("code_verifier").is_some_and(|v| {
            let digest = sha2::Sha256::digest(v.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == self.0
        })
    }
}

fn app(server: &MockServer, p: &FitbitProvider) -> OAuthApp {
    let app = p
        .oauth_app("https://vs.example/v1/oauth/fitbit/callback")
        .expect("configured");
    assert_eq!(app.token_url, format!("{}/oauth2/token", server.uri()));
    app
}

#[tokio::test]
async fn oauth_flow_basic_auth_pkce_rotation_account_and_revoke() {
    let server = MockServer::start().await;
    let p = provider(&server);
    assert!(p.configured());
    let app = app(&server, &p);

    let start = authorize(p.oauth_spec().unwrap(), &app, "st4te").unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth2/authorize");
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["state"], "st4te");
    assert_eq!(
        q["scope"],
        "activity heartrate sleep weight profile oxygen_saturation respiratory_rate temperature"
    );
    assert_eq!(
        q["redirect_uri"],
        "https://vs.example/v1/oauth/fitbit/callback"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    let verifier = start.pkce_verifier.clone().expect("PKCE verifier");

    // Code exchange: Basic client auth (no secret in the body) and the matching PKCE verifier.
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header("authorization", basic().as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=c0de"))
        .and(PkceVerifierMatches(q["code_challenge"].clone()))
        .respond_with(|req: &Request| {
            let body = String::from_utf8_lossy(&req.body).to_string();
            if body.contains("client_secret") {
                return fitbit_error(401, "invalid_client", "secret in body");
            }
            ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "a1", "expires_in": 28800, "refresh_token": "r1",
                "scope": "heartrate sleep activity weight profile oxygen_saturation respiratory_rate temperature",
                "token_type": "Bearer", "user_id": USER
            }))
        })
        .expect(1)
        .mount(&server)
        .await;
    // Refresh tokens are single use: r1 works once, then it is dead.
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(header("authorization", basic().as_str()))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=r1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "a2", "expires_in": 28800, "refresh_token": "r2",
            "scope": "heartrate sleep activity", "token_type": "Bearer", "user_id": USER
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .and(body_string_contains("refresh_token=r1"))
        .respond_with(fitbit_error(
            400,
            "invalid_grant",
            "Refresh token invalid: r1.",
        ))
        .with_priority(2)
        .mount(&server)
        .await;

    let http = fast_http();
    let now = t("2024-03-11T20:00:00Z");
    let tokens = exchange_code(&http, &OAUTH, &app, "c0de", Some(&verifier), now)
        .await
        .unwrap();
    assert_eq!(tokens.access_token, "a1");
    assert_eq!(tokens.refresh_token.as_deref(), Some("r1"));
    assert_eq!(tokens.expires_at, Some(t("2024-03-12T04:00:00Z")));
    assert!(tokens.scopes.contains(&"oxygen_saturation".to_string()));
    assert_eq!(tokens.scopes.len(), 8);

    let rotated = refresh(&http, &OAUTH, &app, "r1", now).await.unwrap();
    assert_eq!(
        (
            rotated.access_token.as_str(),
            rotated.refresh_token.as_deref()
        ),
        ("a2", Some("r2"))
    );
    let reused = refresh(&http, &OAUTH, &app, "r1", now).await.unwrap_err();
    assert!(
        matches!(reused, ProviderError::Unauthorized(_)),
        "{reused:?}"
    );

    // The account is the profile's encodedId.
    Mock::given(method("GET"))
        .and(path("/1/user/-/profile.json"))
        .and(header("authorization", "Bearer a2"))
        .respond_with(ok(json!({"user": {
            "encodedId": USER, "displayName": "Alex", "timezone": "America/Los_Angeles",
            "offsetFromUTCMillis": -25_200_000
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let account = p.account(&rotated).await.unwrap();
    assert_eq!(account.provider_user_id.as_deref(), Some(USER));

    // Revoke: RFC 7009 with the Basic header, the refresh token as `token`.
    Mock::given(method("POST"))
        .and(path("/oauth2/revoke"))
        .and(header("authorization", basic().as_str()))
        .and(body_string_contains("token=r2"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    p.revoke(&rotated, Some(USER)).await.unwrap();
}

#[tokio::test]
async fn unconfigured_provider_has_no_oauth_app() {
    let p = FitbitProvider::new(ProviderContext {
        settings: ProviderSettings::default(),
        http: fast_http(),
    });
    assert!(!p.configured());
    assert!(p.oauth_app("https://vs.example/cb").is_none());
    assert_eq!(p.info().id, "fitbit");
    assert_eq!(p.endpoints().api_url, "https://api.fitbit.com");
    let tokens = TokenSet {
        access_token: "a".into(),
        refresh_token: None,
        expires_at: None,
        scopes: vec![],
    };
    assert_eq!(
        p.revoke(&tokens, None).await.unwrap_err(),
        ProviderError::NotConfigured("fitbit")
    );
}

// ---------------------------------------------------------------------------------------------
// Sync

async fn mount_get(server: &MockServer, p: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(header("authorization", "Bearer a1"))
        .respond_with(ok(body))
        .expect(1)
        .mount(server)
        .await;
}

fn summary(
    steps: u32,
    km: f64,
    active_kcal: u32,
    out: u32,
    fairly: u32,
    very: u32,
    floors: u32,
) -> Value {
    json!({
        "activities": [],
        "goals": {"activeMinutes": 30, "caloriesOut": 2500, "distance": 8.05, "floors": 10, "steps": 10000},
        "summary": {
            "activeScore": -1, "activityCalories": active_kcal, "caloriesBMR": 1500, "caloriesOut": out,
            "distances": [
                {"activity": "total", "distance": km}, {"activity": "tracker", "distance": km},
                {"activity": "loggedActivities", "distance": 0}, {"activity": "veryActive", "distance": 0}
            ],
            "elevation": 30.48, "floors": floors, "steps": steps, "sedentaryMinutes": 720,
            "lightlyActiveMinutes": 180, "fairlyActiveMinutes": fairly, "veryActiveMinutes": very,
            "marginalCalories": 500, "restingHeartRate": 57
        }
    })
}

fn heart(date: &str, resting: Option<u32>, points: &[(&str, u32)]) -> Value {
    let mut value = json!({
        "customHeartRateZones": [],
        "heartRateZones": [
            {"caloriesOut": 1979.7, "max": 115, "min": 30, "minutes": 1340, "name": "Out of Range"},
            {"caloriesOut": 410.2, "max": 140, "min": 115, "minutes": 61, "name": "Fat Burn"}
        ]
    });
    if let Some(r) = resting {
        value["restingHeartRate"] = json!(r);
    }
    json!({
        "activities-heart": [{"dateTime": date, "value": value}],
        "activities-heart-intraday": {
            "dataset": points.iter().map(|(time, v)| json!({"time": time, "value": v})).collect::<Vec<_>>(),
            "datasetInterval": 1, "datasetType": "minute"
        }
    })
}

fn list_page(activities: Value, next: &str, offset: u32) -> Value {
    json!({
        "activities": activities,
        "pagination": {"afterDate": "2024-03-09", "limit": 100, "next": next, "offset": offset,
                       "previous": "", "sort": "asc"}
    })
}

/// Three local days in Los Angeles across the 2024-03-10 DST change, every data type.
async fn mount_full_history(server: &MockServer) {
    mount_get(server, "/1.2/user/-/sleep/date/2024-03-09/2024-03-11.json", json!({
        "sleep": [
            {
                "dateOfSleep": "2024-03-09", "duration": 2_700_000, "efficiency": 80,
                "startTime": "2024-03-09T14:00:00.000", "endTime": "2024-03-09T14:45:00.000",
                "infoCode": 2, "isMainSleep": false,
                "levels": {"data": [], "summary": {
                    "asleep": {"count": 0, "minutes": 38}, "awake": {"count": 1, "minutes": 4},
                    "restless": {"count": 2, "minutes": 3}}},
                "logId": 26_013_218_001u64, "logType": "manual", "minutesAfterWakeup": 0,
                "minutesAsleep": 38, "minutesAwake": 7, "minutesToFallAsleep": 0,
                "timeInBed": 45, "type": "classic"
            },
            {
                "dateOfSleep": "2024-03-11", "duration": 27_720_000, "efficiency": 96,
                "startTime": "2024-03-10T23:21:30.000", "endTime": "2024-03-11T07:03:30.000",
                "infoCode": 0, "isMainSleep": true,
                "levels": {
                    "data": [
                        {"dateTime": "2024-03-10T23:21:30.000", "level": "wake", "seconds": 630},
                        {"dateTime": "2024-03-10T23:32:00.000", "level": "light", "seconds": 1860}
                    ],
                    "shortData": [{"dateTime": "2024-03-11T00:15:30.000", "level": "wake", "seconds": 60}],
                    "summary": {
                        "deep": {"count": 5, "minutes": 104, "thirtyDayAvgMinutes": 69},
                        "light": {"count": 32, "minutes": 226, "thirtyDayAvgMinutes": 221},
                        "rem": {"count": 11, "minutes": 75, "thirtyDayAvgMinutes": 80},
                        "wake": {"count": 30, "minutes": 57, "thirtyDayAvgMinutes": 60}
                    }
                },
                "logId": 26013218219u64, "logType": "auto_detected", "minutesAfterWakeup": 0,
                "minutesAsleep": 405, "minutesAwake": 57, "minutesToFallAsleep": 0,
                "timeInBed": 462, "type": "stages"
            }
        ],
        "summary": {"stages": {"deep": 104, "light": 226, "rem": 75, "wake": 57},
                    "totalMinutesAsleep": 443, "totalSleepRecords": 2, "totalTimeInBed": 507}
    }))
    .await;
    mount_get(
        server,
        "/1/user/-/hrv/date/2024-03-09/2024-03-11.json",
        json!({"hrv": [
            {"dateTime": "2024-03-10", "value": {"dailyRmssd": 41.2, "deepRmssd": 39.9}},
            {"dateTime": "2024-03-11", "value": {"dailyRmssd": 34.938, "deepRmssd": 31.567}}
        ]}),
    )
    .await;
    mount_get(
        server,
        "/1/user/-/spo2/date/2024-03-09/2024-03-11.json",
        json!([
            {"dateTime": "2024-03-11", "value": {"avg": 96.4, "min": 93.0, "max": 99.1}}
        ]),
    )
    .await;
    mount_get(
        server,
        "/1/user/-/br/date/2024-03-09/2024-03-11.json",
        json!({"br": [
            {"dateTime": "2024-03-11", "value": {"breathingRate": 14.8}}
        ]}),
    )
    .await;
    mount_get(server, "/1/user/-/temp/skin/date/2024-03-09/2024-03-11.json", json!({"tempSkin": [
        {"dateTime": "2024-03-11", "value": {"nightlyRelative": -0.872}, "logType": "dedicated_temp_sensor"}
    ]}))
    .await;
    mount_get(
        server,
        "/1/user/-/body/log/weight/date/2024-03-09/2024-03-11.json",
        json!({"weight": [
            {"bmi": 23.57, "date": "2024-03-11", "fat": 14.5, "logId": 1_553_067_494_000u64,
             "source": "Aria", "time": "07:38:14", "weight": 72.5}
        ]}),
    )
    .await;
    mount_get(server, "/1/user/-/body/log/fat/date/2024-03-09/2024-03-11.json", json!({"fat": [
        {"date": "2024-03-11", "fat": 14.5, "logId": 1_553_067_494_000u64, "source": "Aria", "time": "07:38:14"}
    ]}))
    .await;

    // Activity log: two pages linked by `pagination.next` (an absolute api.fitbit.com URL).
    Mock::given(method("GET"))
        .and(path("/1/user/-/activities/list.json"))
        .and(query_param("afterDate", "2024-03-09"))
        .and(query_param("sort", "asc"))
        .and(query_param("offset", "0"))
        .and(query_param("limit", "100"))
        .respond_with(ok(list_page(
            json!([
                {"activeDuration": 1_824_000, "activityName": "Run", "activityTypeId": 90009,
                 "averageHeartRate": 151, "calories": 352, "distance": 4.97, "distanceUnit": "Kilometer",
                 "duration": 1_900_000, "logId": 61_547_238_800u64, "logType": "tracker",
                 "lastModified": "2024-03-09T19:00:00.000Z", "startTime": "2024-03-09T18:00:00.000-08:00",
                 "steps": 5120},
                {"activeDuration": 3_600_000, "activityName": "Outdoor Bike", "activityTypeId": 90001,
                 "calories": 610, "distance": 21.3, "distanceUnit": "Kilometer", "duration": 3_600_000,
                 "logId": 61_547_238_850u64, "logType": "mobile_run",
                 "startTime": "2024-03-10T09:15:00.000-07:00"}
            ]),
            "https://api.fitbit.com/1/user/-/activities/list.json?offset=100&limit=100&sort=asc&afterDate=2024-03-09",
            0,
        )))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/1/user/-/activities/list.json"))
        .and(query_param("offset", "100"))
        .and(query_param("afterDate", "2024-03-09"))
        .respond_with(ok(list_page(
            json!([{
                "activeDuration": 1_536_000,
                "activityLevel": [{"minutes": 0, "name": "sedentary"}, {"minutes": 7, "name": "lightly"},
                                  {"minutes": 5, "name": "fairly"}, {"minutes": 13, "name": "very"}],
                "activityName": "Walk", "activityTypeId": 90013, "averageHeartRate": 112, "calories": 204,
                "distance": 2.41, "distanceUnit": "Kilometer", "duration": 1_536_000,
                "hasActiveZoneMinutes": true,
                "heartRateLink": "https://api.fitbit.com/1/user/-/activities/heart/date/2024-03-11/2024-03-11/1sec/time/12:08:23/12:34:01.json",
                "heartRateZones": [{"max": 115, "min": 30, "minutes": 6, "name": "Out of Range"}],
                "lastModified": "2024-03-11T19:31:15.000Z", "logId": 61_547_238_910u64,
                "logType": "auto_detected",
                "manualValuesSpecified": {"calories": false, "distance": false, "steps": false},
                "originalDuration": 1_536_000, "originalStartTime": "2024-03-11T12:08:23.000-07:00",
                "startTime": "2024-03-11T12:08:23.000-07:00", "steps": 3180,
                "tcxLink": "https://api.fitbit.com/1/user/-/activities/61547238910.tcx"
            }]),
            "",
            100,
        )))
        .expect(1)
        .mount(server)
        .await;

    // Daily summaries: 03-09 unworn (zeros, BMR calories only), then two real days.
    mount_get(
        server,
        "/1/user/-/activities/date/2024-03-09.json",
        summary(0, 0.0, 0, 1500, 0, 0, 0),
    )
    .await;
    mount_get(
        server,
        "/1/user/-/activities/date/2024-03-10.json",
        summary(7861, 5.9, 980, 2480, 12, 18, 6),
    )
    .await;
    mount_get(
        server,
        "/1/user/-/activities/date/2024-03-11.json",
        summary(8543, 6.52, 1234, 2734, 20, 30, 10),
    )
    .await;

    // Intraday heart rate: local wall-clock times, both sides of local and UTC midnight.
    mount_get(
        server,
        "/1/user/-/activities/heart/date/2024-03-09/1d/1min.json",
        heart("2024-03-09", None, &[("23:30:00", 58)]),
    )
    .await;
    mount_get(
        server,
        "/1/user/-/activities/heart/date/2024-03-10/1d/1min.json",
        heart(
            "2024-03-10",
            Some(59),
            &[("00:00:00", 62), ("23:59:00", 55)],
        ),
    )
    .await;
    mount_get(
        server,
        "/1/user/-/activities/heart/date/2024-03-11/1d/1min.json",
        heart(
            "2024-03-11",
            Some(57),
            &[("00:00:00", 61), ("00:01:00", 60)],
        ),
    )
    .await;
}

#[tokio::test]
async fn full_sync_maps_every_data_type_in_the_users_zone() {
    let server = MockServer::start().await;
    mount_full_history(&server).await;
    let p = provider(&server);
    let now = "2024-03-11T20:00:00Z";
    let (batches, err) = collect(
        &p,
        request(Some("America/Los_Angeles"), now, 2, Cursors::new()),
    )
    .await;
    assert!(err.is_none(), "{err:?}");
    // sleep, hrv, spo2, br, temperature, body: one window each; workouts: two pages;
    // activity and heart rate: one batch per local date.
    assert_eq!(batches.len(), 6 + 2 + 3 + 3);
    let all = samples(&batches);

    // Daily activity, stamped at local midnight (PST on 03-10, PDT on 03-11), metric units.
    let steps = find(&all, "steps", "2024-03-11T07:00:00Z");
    assert_eq!(
        (
            steps.value,
            steps.unit,
            steps.local_date,
            steps.utc_offset_minutes
        ),
        (8543.0, "count", d("2024-03-11"), -420)
    );
    assert_eq!(steps.provider, "fitbit");
    assert!(close(
        find(&all, "distance", "2024-03-11T07:00:00Z").value,
        6520.0
    ));
    assert_eq!(find(&all, "distance", "2024-03-11T07:00:00Z").unit, "m");
    assert_eq!(
        find(&all, "active_energy", "2024-03-11T07:00:00Z").value,
        1234.0
    );
    assert_eq!(
        find(&all, "total_energy", "2024-03-11T07:00:00Z").value,
        2734.0
    );
    assert_eq!(
        find(&all, "active_minutes", "2024-03-11T07:00:00Z").value,
        50.0
    );
    assert_eq!(
        find(&all, "active_minutes", "2024-03-11T07:00:00Z").unit,
        "min"
    );
    assert_eq!(find(&all, "floors", "2024-03-11T07:00:00Z").value, 10.0);
    let steps10 = find(&all, "steps", "2024-03-10T08:00:00Z");
    assert_eq!(
        (
            steps10.value,
            steps10.local_date,
            steps10.utc_offset_minutes
        ),
        (7861.0, d("2024-03-10"), -480)
    );
    // The unworn day writes nothing.
    assert!(
        !all.iter()
            .any(|s| s.local_date == d("2024-03-09") && s.metric == "steps")
    );

    // Heart rate: wall-clock times on the requested date, converted with the offset in force.
    let late = find(&all, "heart_rate", "2024-03-10T07:30:00Z");
    assert_eq!(
        (late.value, late.local_date, late.utc_offset_minutes),
        (58.0, d("2024-03-09"), -480)
    );
    let before_midnight = find(&all, "heart_rate", "2024-03-11T06:59:00Z");
    assert_eq!(
        (
            before_midnight.value,
            before_midnight.local_date,
            before_midnight.utc_offset_minutes
        ),
        (55.0, d("2024-03-10"), -420)
    );
    assert_eq!(find(&all, "heart_rate", "2024-03-10T08:00:00Z").value, 62.0);
    assert_eq!(find(&all, "heart_rate", "2024-03-11T07:01:00Z").unit, "bpm");
    assert_eq!(all.iter().filter(|s| s.metric == "heart_rate").count(), 5);
    let rhr = find(&all, "resting_heart_rate", "2024-03-11T07:00:00Z");
    assert_eq!((rhr.value, rhr.local_date), (57.0, d("2024-03-11")));
    assert_eq!(
        find(&all, "resting_heart_rate", "2024-03-10T08:00:00Z").value,
        59.0
    );

    // Nightly series on Fitbit's date (the wake date).
    let hrv = find(&all, "hrv_rmssd", "2024-03-11T07:00:00Z");
    assert_eq!(
        (hrv.value, hrv.unit, hrv.local_date),
        (34.938, "ms", d("2024-03-11"))
    );
    assert_eq!(hrv.data.as_ref().unwrap()["deep_rmssd"], 31.567);
    assert_eq!(find(&all, "hrv_rmssd", "2024-03-10T08:00:00Z").value, 41.2);
    let spo2 = find(&all, "spo2", "2024-03-11T07:00:00Z");
    assert_eq!((spo2.value, spo2.unit), (96.4, "%"));
    assert_eq!(
        find(&all, "respiratory_rate", "2024-03-11T07:00:00Z").unit,
        "brpm"
    );
    assert_eq!(
        find(&all, "respiratory_rate", "2024-03-11T07:00:00Z").value,
        14.8
    );
    let skin = find(&all, "skin_temperature_deviation", "2024-03-11T07:00:00Z");
    assert_eq!((skin.value, skin.unit), (-0.872, "°C"));

    // Sleep: the night crosses local midnight and belongs to the date it ends on.
    let sleeps: Vec<_> = events(&batches)
        .into_iter()
        .filter(|e| e.event_type == EventType::Sleep)
        .collect();
    assert_eq!(sleeps.len(), 2);
    let night = sleeps
        .iter()
        .find(|e| e.provider_event_id == "26013218219")
        .unwrap();
    assert_eq!(night.started_at, t("2024-03-11T06:21:30Z"));
    assert_eq!(night.ended_at, Some(t("2024-03-11T14:03:30Z")));
    assert_eq!(night.local_date, d("2024-03-11"));
    assert_eq!(night.duration_s, Some(27_720.0));
    assert_eq!(night.data.as_ref().unwrap()["stages"]["deep"], 104.0);
    assert_eq!(night.data.as_ref().unwrap()["is_main_sleep"], true);
    for (metric, v) in [
        ("sleep_duration", 405.0),
        ("sleep_efficiency", 96.0),
        ("sleep_deep", 104.0),
        ("sleep_light", 226.0),
        ("sleep_rem", 75.0),
        ("sleep_awake", 57.0),
    ] {
        let s = find(&all, metric, "2024-03-11T14:03:30Z");
        assert_eq!(
            (s.value, s.local_date, s.utc_offset_minutes),
            (v, d("2024-03-11"), -420),
            "{metric}"
        );
    }
    // The classic-type nap: no stages and no efficiency.
    let nap_at = "2024-03-09T22:45:00Z";
    assert_eq!(find(&all, "sleep_duration", nap_at).value, 38.0);
    assert_eq!(find(&all, "sleep_awake", nap_at).value, 7.0);
    assert!(!all.iter().any(|s| s.recorded_at == t(nap_at)
        && (s.metric == "sleep_efficiency" || s.metric == "sleep_deep")));

    // Body logs at their local time.
    let w = find(&all, "weight", "2024-03-11T14:38:14Z");
    assert_eq!(
        (w.value, w.unit, w.source.as_deref()),
        (72.5, "kg", Some("Aria"))
    );
    assert_eq!(find(&all, "bmi", "2024-03-11T14:38:14Z").value, 23.57);
    assert_eq!(find(&all, "body_fat", "2024-03-11T14:38:14Z").value, 14.5);
    assert_eq!(all.iter().filter(|s| s.metric == "body_fat").count(), 1);

    // Workouts from both pages, in their own offsets.
    let workouts: Vec<_> = events(&batches)
        .into_iter()
        .filter(|e| e.event_type == EventType::Workout)
        .collect();
    assert_eq!(workouts.len(), 3);
    let walk = workouts
        .iter()
        .find(|e| e.provider_event_id == "61547238910")
        .unwrap();
    assert_eq!(walk.activity_type.as_deref(), Some("walking"));
    assert_eq!(walk.started_at, t("2024-03-11T19:08:23Z"));
    assert_eq!(walk.ended_at, Some(t("2024-03-11T19:33:59Z")));
    assert_eq!(walk.local_date, d("2024-03-11"));
    assert_eq!(walk.duration_s, Some(1536.0));
    assert!(close(walk.distance_m.unwrap(), 2410.0));
    assert_eq!(
        (walk.energy_kcal, walk.avg_hr, walk.max_hr),
        (Some(204.0), Some(112.0), None)
    );
    let run = workouts
        .iter()
        .find(|e| e.provider_event_id == "61547238800")
        .unwrap();
    assert_eq!(
        (run.activity_type.as_deref(), run.local_date),
        (Some("running"), d("2024-03-09"))
    );
    assert_eq!(run.started_at, t("2024-03-10T02:00:00Z"));
    assert_eq!(run.duration_s, Some(1824.0));
    let ride = workouts
        .iter()
        .find(|e| e.provider_event_id == "61547238850")
        .unwrap();
    assert_eq!(ride.activity_type.as_deref(), Some("cycling"));

    // Cursors: each batch carries the full map; a data type's cursor moves with its windows.
    let activity_cursors: Vec<_> = batches
        .iter()
        .filter_map(|b| b.cursors.get("activity").copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        activity_cursors,
        vec![t("2024-03-10T08:00:00Z"), t("2024-03-11T07:00:00Z"), t(now)]
    );
    // After the first workout page the cursor is the last workout it held; after the last, now.
    let workout_batches: Vec<_> = batches
        .iter()
        .filter(|b| b.events.iter().any(|e| e.event_type == EventType::Workout))
        .collect();
    assert_eq!(
        workout_batches[0].cursors["workouts"],
        t("2024-03-10T16:15:00Z")
    );
    assert_eq!(workout_batches[1].cursors["workouts"], t(now));
    assert!(!workout_batches[0].cursors.contains_key("activity"));
    let last = &batches.last().unwrap().cursors;
    assert_eq!(last.len(), 9);
    assert!(last.values().all(|c| *c == t(now)), "{last:?}");
    server.verify().await;
}

#[tokio::test]
async fn incremental_sync_starts_a_day_before_each_cursor() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    let p = provider(&server);
    let cursor = t("2024-03-11T20:00:00Z");
    let cursors: Cursors = [
        "activity",
        "heart_rate",
        "hrv",
        "spo2",
        "breathing_rate",
        "temperature",
        "sleep",
        "body",
        "workouts",
    ]
    .into_iter()
    .map(|k| (k.to_string(), cursor))
    .collect();
    let now = "2024-03-12T18:00:00Z";
    let (batches, err) = collect(&p, request(Some("America/Los_Angeles"), now, 90, cursors)).await;
    assert!(err.is_none(), "{err:?}");
    let seen = paths(&server.received_requests().await.unwrap());
    // cursor − 1 day = 2024-03-10T20:00Z = 03-10 13:00 local: 03-10 … 03-12, never the backfill.
    for expected in [
        "/1.2/user/-/sleep/date/2024-03-10/2024-03-12.json",
        "/1/user/-/hrv/date/2024-03-10/2024-03-12.json",
        "/1/user/-/spo2/date/2024-03-10/2024-03-12.json",
        "/1/user/-/br/date/2024-03-10/2024-03-12.json",
        "/1/user/-/temp/skin/date/2024-03-10/2024-03-12.json",
        "/1/user/-/body/log/weight/date/2024-03-10/2024-03-12.json",
        "/1/user/-/body/log/fat/date/2024-03-10/2024-03-12.json",
        "/1/user/-/activities/list.json?afterDate=2024-03-10&sort=asc&offset=0&limit=100",
        "/1/user/-/activities/date/2024-03-10.json",
        "/1/user/-/activities/date/2024-03-11.json",
        "/1/user/-/activities/date/2024-03-12.json",
        "/1/user/-/activities/heart/date/2024-03-10/1d/1min.json",
        "/1/user/-/activities/heart/date/2024-03-12/1d/1min.json",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "missing {expected} in {seen:#?}"
        );
    }
    assert_eq!(seen.len(), 8 + 3 + 3, "{seen:#?}");
    assert!(!seen.iter().any(|s| s.contains("2024-03-09")));
    // The user's zone is known: no profile call.
    assert!(!seen.iter().any(|s| s.ends_with("/profile.json")));
    let last = &batches.last().unwrap().cursors;
    assert!(last.values().all(|c| *c == t(now)));
}

#[tokio::test]
async fn data_types_filter_and_a_range_that_does_not_join_the_cursor() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    let p = provider(&server);
    let old = t("2024-03-01T00:00:00Z");
    let mut req = request(
        Some("UTC"),
        "2024-03-12T18:00:00Z",
        30,
        [
            ("sleep".to_string(), old),
            ("hrv".to_string(), t("2024-03-11T00:00:00Z")),
        ]
        .into(),
    );
    req.data_types = vec!["sleep".into(), "hrv".into()];
    req.range = Some((t("2024-03-10T12:00:00Z"), t("2024-03-12T12:00:00Z")));
    let (batches, err) = collect(&p, req).await;
    assert!(err.is_none(), "{err:?}");
    let seen = paths(&server.received_requests().await.unwrap());
    assert_eq!(
        seen,
        vec![
            "/1.2/user/-/sleep/date/2024-03-10/2024-03-12.json".to_string(),
            "/1/user/-/hrv/date/2024-03-10/2024-03-12.json".to_string(),
        ]
    );
    let last = &batches.last().unwrap().cursors;
    // Sleep is stored up to 03-01 only: fetching 03-10…03-12 must not claim 03-01…03-10.
    assert_eq!(last["sleep"], old);
    // HRV's cursor lies inside the window, so the window extends it.
    assert_eq!(last["hrv"], t("2024-03-12T12:00:00Z"));
    assert_eq!(last.len(), 2);
}

#[tokio::test]
async fn profile_zone_is_used_when_the_user_has_none() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    mount_get(
        &server,
        "/1/user/-/activities/date/2024-03-11.json",
        summary(4000, 3.0, 300, 1900, 5, 0, 2),
    )
    .await;
    let p = provider(&server);
    let mut req = request(None, "2024-03-11T20:00:00Z", 1, Cursors::new());
    req.data_types = vec!["activity".into()];
    let (batches, err) = collect(&p, req).await;
    assert!(err.is_none(), "{err:?}");
    // The mock profile says Europe/Berlin (UTC+1 in March).
    let all = samples(&batches);
    let steps = find(&all, "steps", "2024-03-10T23:00:00Z");
    assert_eq!(
        (steps.value, steps.local_date, steps.utc_offset_minutes),
        (4000.0, d("2024-03-11"), 60)
    );
    let seen = paths(&server.received_requests().await.unwrap());
    assert_eq!(
        seen.first().map(String::as_str),
        Some("/1/user/-/profile.json")
    );
}

// ---------------------------------------------------------------------------------------------
// Faults

fn only(data_types: &[&str], req: &mut SyncRequest) {
    req.data_types = data_types.iter().map(|s| s.to_string()).collect();
}

#[tokio::test]
async fn rate_limit_429_with_retry_after_is_waited_out() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    Mock::given(path("/1/user/-/hrv/date/2024-03-10/2024-03-11.json"))
        .respond_with(
            fitbit_error(429, "system", "Too Many Requests")
                .insert_header("Retry-After", "1")
                .insert_header("Fitbit-Rate-Limit-Limit", "150")
                .insert_header("Fitbit-Rate-Limit-Remaining", "0")
                .insert_header("Fitbit-Rate-Limit-Reset", "1"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let mut req = request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new());
    only(&["sleep", "hrv"], &mut req);
    let started = std::time::Instant::now();
    let (batches, err) = collect(&p, req).await;
    assert!(err.is_none(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(batches.len(), 2);
    assert!(batches[1].cursors.contains_key("hrv"));
    let hrv_calls = paths(&server.received_requests().await.unwrap())
        .iter()
        .filter(|p| p.contains("/hrv/"))
        .count();
    assert_eq!(hrv_calls, 2);
}

#[tokio::test]
async fn exhausted_hourly_budget_fails_fast_for_that_user_only() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    Mock::given(path("/1.2/user/-/sleep/date/2024-03-10/2024-03-11.json"))
        .respond_with(
            ok(json!({"sleep": []}))
                .insert_header("Fitbit-Rate-Limit-Remaining", "0")
                .insert_header("Fitbit-Rate-Limit-Reset", "3000"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let mut req = request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new());
    only(&["sleep", "hrv"], &mut req);
    let (batches, err) = collect(&p, req.clone()).await;
    // Fitbit-Rate-Limit-* in ms ranges are not waited out inline: the actor reschedules.
    assert!(
        matches!(err, Some(ProviderError::RateLimited { retry_after_secs }) if retry_after_secs > 2900),
        "{err:?}"
    );
    assert_eq!(batches.len(), 1);
    assert!(batches[0].cursors.contains_key("sleep"));
    assert!(!batches[0].cursors.contains_key("hrv"));
    // Another Fitbit user of the same application still has budget.
    req.provider_user_id = Some("OTHER1".into());
    let (_, err) = collect(&p, req).await;
    assert!(err.is_none(), "{err:?}");
}

#[tokio::test]
async fn server_errors_and_a_timeout_are_retried() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    Mock::given(path("/1.2/user/-/sleep/date/2024-03-10/2024-03-11.json"))
        .respond_with(fitbit_error(503, "system", "Service unavailable"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/1/user/-/hrv/date/2024-03-10/2024-03-11.json"))
        .respond_with(ok(json!({"hrv": []})).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let mut req = request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new());
    only(&["sleep", "hrv"], &mut req);
    let (batches, err) = collect(&p, req).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(batches.len(), 2);
    let seen = paths(&server.received_requests().await.unwrap());
    assert_eq!(seen.iter().filter(|p| p.contains("/sleep/")).count(), 3);
    assert_eq!(seen.iter().filter(|p| p.contains("/hrv/")).count(), 2);
}

#[tokio::test]
async fn persistent_timeout_is_transient_and_keeps_earlier_cursors() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    Mock::given(path("/1/user/-/spo2/date/2024-03-10/2024-03-11.json"))
        .respond_with(ok(json!([])).set_delay(Duration::from_secs(2)))
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let (batches, err) = collect(
        &p,
        request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new()),
    )
    .await;
    assert!(matches!(err, Some(ProviderError::Transient(_))), "{err:?}");
    let keys: Vec<_> = batches.last().unwrap().cursors.keys().cloned().collect();
    assert_eq!(keys, vec!["hrv", "sleep"]);
}

#[tokio::test]
async fn malformed_json_stops_the_sync_after_the_completed_types() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    Mock::given(path("/1/user/-/br/date/2024-03-10/2024-03-11.json"))
        .respond_with(ok(
            json!({"br": [{"dateTime": "2024-03-11", "value": {"breathingRate": "fast"}}]}),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let (batches, err) = collect(
        &p,
        request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new()),
    )
    .await;
    match err {
        Some(ProviderError::Malformed(m)) => assert!(m.contains("br"), "{m}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_eq!(batches.len(), 3);
    let keys: Vec<_> = batches.last().unwrap().cursors.keys().cloned().collect();
    assert_eq!(keys, vec!["hrv", "sleep", "spo2"]);
}

#[tokio::test]
async fn truncated_json_is_malformed() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    Mock::given(path("/1/user/-/activities/list.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"activities": [{"logId": 61547238910, "activityName": "Wa"#,
            "application/json",
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let (batches, err) = collect(
        &p,
        request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new()),
    )
    .await;
    assert!(matches!(err, Some(ProviderError::Malformed(_))), "{err:?}");
    let last = &batches.last().unwrap().cursors;
    assert_eq!(last.len(), 6);
    assert!(!last.contains_key("workouts") && !last.contains_key("activity"));
}

#[tokio::test]
async fn revoked_token_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(fitbit_error(401, "invalid_token", "Access token invalid: a1. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."))
        .mount(&server)
        .await;
    let p = provider(&server);
    let (batches, err) = collect(
        &p,
        request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new()),
    )
    .await;
    assert!(batches.is_empty());
    match err {
        Some(ProviderError::Unauthorized(m)) => assert!(m.contains("invalid_token"), "{m}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let mut req = request(Some("UTC"), "2024-03-11T20:00:00Z", 1, Cursors::new());
    req.access_token = None;
    let (_, err) = collect(&p, req).await;
    assert!(matches!(err, Some(ProviderError::Unauthorized(_))));
}

#[tokio::test]
async fn missing_scope_skips_the_type_and_intraday_falls_back_to_daily_resting_hr() {
    let server = MockServer::start().await;
    mount_empty(&server).await;
    Mock::given(path("/1.2/user/-/sleep/date/2024-03-10/2024-03-11.json"))
        .respond_with(fitbit_error(403, "insufficient_scope", "This application does not have permission to access sleep data. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(
        "/1/user/-/activities/heart/date/2024-03-10/1d/1min.json",
    ))
    .respond_with(fitbit_error(
        403,
        "insufficient_permissions",
        "Intraday data is not available for this application.",
    ))
    .with_priority(1)
    .mount(&server)
    .await;
    Mock::given(path("/1/user/-/activities/heart/date/2024-03-10/2024-03-11.json"))
        .respond_with(ok(json!({"activities-heart": [
            {"dateTime": "2024-03-10", "value": {"customHeartRateZones": [], "heartRateZones": [], "restingHeartRate": 58}},
            {"dateTime": "2024-03-11", "value": {"customHeartRateZones": [], "heartRateZones": []}}
        ]})))
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let p = provider(&server);
    let now = "2024-03-11T20:00:00Z";
    let (batches, err) = collect(&p, request(Some("UTC"), now, 1, Cursors::new())).await;
    assert!(err.is_none(), "{err:?}");
    let last = &batches.last().unwrap().cursors;
    assert!(!last.contains_key("sleep"));
    assert_eq!(last["heart_rate"], t(now));
    assert_eq!(last.len(), 8);
    let all = samples(&batches);
    assert_eq!(
        find(&all, "resting_heart_rate", "2024-03-10T00:00:00Z").value,
        58.0
    );
    assert!(!all.iter().any(|s| s.metric == "heart_rate"));
    server.verify().await;
}

// ---------------------------------------------------------------------------------------------
// Webhooks

fn webhook_request(
    method: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &[u8],
) -> WebhookRequest {
    WebhookRequest {
        method: method.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
        received_at: t("2024-03-11T20:00:00Z"),
    }
}

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhook_verification_handshake() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let right = p
        .webhook(&webhook_request(
            "GET",
            &[("verify", VERIFY_CODE)],
            &[],
            b"",
        ))
        .unwrap();
    assert_eq!(
        right,
        WebhookReply::Handshake {
            status: 204,
            content_type: "text/plain",
            body: String::new()
        }
    );
    let wrong = p.webhook(&webhook_request(
        "GET",
        &[("verify", "not-the-code")],
        &[],
        b"",
    ));
    assert_eq!(wrong, Err(WebhookError::BadVerification { status: 404 }));
    let missing = p.webhook(&webhook_request("GET", &[], &[], b""));
    assert_eq!(missing, Err(WebhookError::BadVerification { status: 404 }));
    let unset = FitbitProvider::new(ProviderContext {
        settings: ProviderSettings::default(),
        http: fast_http(),
    });
    assert_eq!(
        unset.webhook(&webhook_request(
            "GET",
            &[("verify", VERIFY_CODE)],
            &[],
            b""
        )),
        Err(WebhookError::Unsupported)
    );
}

#[tokio::test]
async fn webhook_notifications_are_signed_and_become_targeted_syncs() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let body = serde_json::to_vec(&json!([
        {"collectionType": "activities", "date": "2024-03-11", "ownerId": USER, "ownerType": "user", "subscriptionId": "u-1"},
        {"collectionType": "sleep", "date": "2024-03-11", "ownerId": USER, "ownerType": "user", "subscriptionId": "u-1"},
        {"collectionType": "body", "date": "2024-03-09", "ownerId": USER, "ownerType": "user", "subscriptionId": "u-1"},
        {"collectionType": "foods", "date": "2024-03-11", "ownerId": USER, "ownerType": "user", "subscriptionId": "u-1"},
        {"collectionType": "userRevokedAccess", "date": "2024-03-11", "ownerId": "7XYZ22", "ownerType": "user", "subscriptionId": "u-2"}
    ]))
    .unwrap();
    let sig = sign(&format!("{CLIENT_SECRET}&"), &body);
    let reply = p
        .webhook(&webhook_request(
            "POST",
            &[],
            &[
                ("Content-Type", "application/json"),
                ("X-Fitbit-Signature", &sig),
            ],
            &body,
        ))
        .unwrap();
    let WebhookReply::Accepted { status, targets } = reply else {
        panic!("not accepted")
    };
    assert_eq!(status, 204);
    assert_eq!(targets.len(), 3, "{targets:#?}");
    assert_eq!(
        targets[0],
        WebhookTarget::Sync {
            provider_user_id: USER.into(),
            data_types: vec!["body".into()],
            range: Some((t("2024-03-08T10:00:00Z"), t("2024-03-10T12:00:00Z"))),
        }
    );
    let WebhookTarget::Sync {
        data_types, range, ..
    } = &targets[1]
    else {
        panic!()
    };
    assert_eq!(
        data_types,
        &[
            "activity",
            "heart_rate",
            "workouts",
            "sleep",
            "hrv",
            "spo2",
            "breathing_rate",
            "temperature"
        ]
    );
    let (from, to) = range.unwrap();
    assert!(from <= t("2024-03-10T10:00:00Z") && to >= t("2024-03-12T12:00:00Z"));
    assert_eq!(
        targets[2],
        WebhookTarget::Deauthorized {
            provider_user_id: "7XYZ22".into()
        }
    );
}

#[tokio::test]
async fn webhook_bad_signatures_are_refused() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let body = br#"[{"collectionType":"sleep","date":"2024-03-11","ownerId":"GGNJL9","ownerType":"user","subscriptionId":"u-1"}]"#;
    let post = |sig: Option<&str>, body: &[u8]| {
        let headers: Vec<(&str, &str)> = sig
            .map(|s| vec![("X-Fitbit-Signature", s)])
            .unwrap_or_default();
        p.webhook(&webhook_request("POST", &[], &headers, body))
    };
    // Signed without the trailing "&", with another secret, for another body, not at all.
    for sig in [
        sign(CLIENT_SECRET, body),
        sign("other-secret&", body),
        sign(&format!("{CLIENT_SECRET}&"), b"[]"),
    ] {
        assert!(
            matches!(post(Some(&sig), body), Err(WebhookError::BadSignature(_))),
            "{sig}"
        );
    }
    assert!(matches!(
        post(None, body),
        Err(WebhookError::BadSignature(_))
    ));
    assert!(matches!(
        post(Some("%%%"), body),
        Err(WebhookError::BadSignature(_))
    ));
    // A good signature over something that is not a notification array.
    let junk = br#"{"collectionType": "sleep"}"#;
    let sig = sign(&format!("{CLIENT_SECRET}&"), junk);
    assert!(matches!(
        post(Some(&sig), junk),
        Err(WebhookError::Malformed(_))
    ));
    let good = sign(&format!("{CLIENT_SECRET}&"), body);
    assert!(matches!(
        post(Some(&good), body),
        Ok(WebhookReply::Accepted { .. })
    ));
}
