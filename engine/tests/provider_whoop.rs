//! WHOOP v2 provider against a mock speaking WHOOP's documented wire formats: OAuth with
//! client credentials in the form body and the `offline` scope, `limit`/`start`/`end`/
//! `nextToken` collections (newest first, `next_token` envelope), `score_state`, the
//! `X-RateLimit-*` headers, and `X-WHOOP-Signature` webhooks.

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use vitasync_engine::domain::{EventType, NewSample};
use vitasync_engine::providers::oauth::{authorize, exchange_code, refresh};
use vitasync_engine::providers::whoop::WhoopProvider;
use vitasync_engine::providers::{
    Cursors, Provider, ProviderContext, ProviderError, ProviderHttp, ProviderSettings, RetryPolicy,
    SyncBatch, SyncRequest, SyncUser, TokenSet, WebhookError, WebhookReply, WebhookRequest,
    WebhookTarget,
};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "ory_at_8b3example";
const SECRET: &str = "whoop-client-secret";
const MAIN_SLEEP: &str = "ecfc6a15-4661-442f-a9a4-f160dd7afae8";
const NAP: &str = "2b5a0c4e-1d3f-4a8b-9c7d-6e5f4a3b2c1d";
const RUN: &str = "7f0e3c1a-9b8d-4e6f-a5c4-3b2a1f0e9d8c";

fn settings(server: &MockServer) -> ProviderSettings {
    ProviderSettings {
        client_id: Some("whoop-client".into()),
        client_secret: Some(SECRET.into()),
        auth_url: Some(format!("{}/oauth/oauth2/auth", server.uri())),
        token_url: Some(format!("{}/oauth/oauth2/token", server.uri())),
        api_url: Some(format!("{}/developer", server.uri())),
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

fn provider(server: &MockServer) -> WhoopProvider {
    WhoopProvider::new(ProviderContext {
        settings: settings(server),
        http: http(),
    })
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn request(now: &str, cursors: Cursors) -> SyncRequest {
    SyncRequest {
        user: SyncUser {
            external_id: "u1".into(),
            timezone: Some(chrono_tz::America::New_York),
        },
        access_token: Some(TOKEN.into()),
        provider_user_id: Some("10129".into()),
        data_types: vec![],
        cursors,
        range: None,
        backfill_days: 7,
        connected_at: at("2024-03-01T00:00:00Z"),
        now: at(now),
    }
}

/// WHOOP's headers on every API response.
fn ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header(
            "X-RateLimit-Limit",
            "100, 100;window=60, 10000;window=86400",
        )
        .insert_header("X-RateLimit-Remaining", "98")
        .insert_header("X-RateLimit-Reset", "3")
        .set_body_json(body)
}

fn page(records: Value, next: Option<&str>) -> ResponseTemplate {
    ok(json!({"records": records, "next_token": next}))
}

struct NoAuthorizationHeader;
impl Match for NoAuthorizationHeader {
    fn matches(&self, r: &Request) -> bool {
        !r.headers.contains_key("authorization")
    }
}

/// Matches a request without the given query parameter (the first page has no `nextToken`).
struct NoQueryParam(&'static str);
impl Match for NoQueryParam {
    fn matches(&self, r: &Request) -> bool {
        !r.url.query_pairs().any(|(k, _)| k == self.0)
    }
}

fn cycle(id: i64, start: &str, end: Option<&str>, score: Option<Value>) -> Value {
    json!({
        "id": id, "user_id": 10129,
        "created_at": start, "updated_at": start,
        "start": start, "end": end, "timezone_offset": "-05:00",
        "score_state": if score.is_some() { "SCORED" } else { "PENDING_SCORE" },
        "score": score
    })
}

/// Newest first, two pages: the current cycle (no end, pending) and one from the day before,
/// then the cycle that started at 22:30 local on 4 March (03:30 UTC on 5 March).
fn cycles_page1() -> Value {
    json!([
        cycle(93847, "2024-03-08T04:00:00.000Z", None, None),
        cycle(
            93846,
            "2024-03-07T03:45:00.000Z",
            Some("2024-03-08T04:00:00.000Z"),
            Some(
                json!({"strain": 12.5, "kilojoule": 10460.0, "average_heart_rate": 71, "max_heart_rate": 165})
            )
        ),
    ])
}

fn cycles_page2() -> Value {
    json!([cycle(
        93845,
        "2024-03-05T03:30:00.000Z",
        Some("2024-03-07T03:45:00.000Z"),
        Some(
            json!({"strain": 5.2951527, "kilojoule": 8288.297, "average_heart_rate": 68, "max_heart_rate": 141})
        )
    )])
}

fn sleeps() -> Value {
    json!([
        {
            "id": NAP, "cycle_id": 93845, "user_id": 10129,
            "created_at": "2024-03-05T19:00:00.000Z", "updated_at": "2024-03-05T19:00:00.000Z",
            "start": "2024-03-05T18:00:00.000Z", "end": "2024-03-05T18:40:00.000Z",
            "timezone_offset": "-05:00", "nap": true, "score_state": "SCORED",
            "score": {"stage_summary": {"total_in_bed_time_milli": 2400000, "total_awake_time_milli": 300000,
                "total_no_data_time_milli": 0, "total_light_sleep_time_milli": 2100000,
                "total_slow_wave_sleep_time_milli": 0, "total_rem_sleep_time_milli": 0,
                "sleep_cycle_count": 0, "disturbance_count": 1},
                "respiratory_rate": 15.2, "sleep_performance_percentage": 20,
                "sleep_efficiency_percentage": 87.5}
        },
        {
            "id": MAIN_SLEEP, "cycle_id": 93845, "user_id": 10129,
            "created_at": "2024-03-05T11:50:00.000Z", "updated_at": "2024-03-05T12:25:44.774Z",
            "start": "2024-03-05T03:30:00.000Z", "end": "2024-03-05T11:45:00.000Z",
            "timezone_offset": "-05:00", "nap": false, "score_state": "SCORED",
            "score": {
                "stage_summary": {"total_in_bed_time_milli": 29700000, "total_awake_time_milli": 1403507,
                    "total_no_data_time_milli": 0, "total_light_sleep_time_milli": 14905851,
                    "total_slow_wave_sleep_time_milli": 6630370, "total_rem_sleep_time_milli": 6760272,
                    "sleep_cycle_count": 3, "disturbance_count": 12},
                "sleep_needed": {"baseline_milli": 27395716, "need_from_sleep_debt_milli": 352230,
                    "need_from_recent_strain_milli": 208595, "need_from_recent_nap_milli": -12312},
                "respiratory_rate": 16.11328125, "sleep_performance_percentage": 98,
                "sleep_consistency_percentage": 90, "sleep_efficiency_percentage": 91.69533848
            }
        }
    ])
}

fn recoveries() -> Value {
    json!([
        {
            "cycle_id": 93847, "sleep_id": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a", "user_id": 10129,
            "created_at": "2024-03-08T12:00:00.000Z", "updated_at": "2024-03-08T12:00:00.000Z",
            "score_state": "PENDING_SCORE"
        },
        {
            "cycle_id": 93845, "sleep_id": MAIN_SLEEP, "user_id": 10129,
            "created_at": "2024-03-05T11:55:44.774Z", "updated_at": "2024-03-05T14:25:44.774Z",
            "score_state": "SCORED",
            "score": {"user_calibrating": false, "recovery_score": 44, "resting_heart_rate": 64,
                "hrv_rmssd_milli": 31.813562, "spo2_percentage": 95.6875, "skin_temp_celsius": 33.7}
        }
    ])
}

/// A run logged in Tokyo: 00:30 local on 8 March is 15:30 UTC on 7 March.
fn workouts() -> Value {
    json!([{
        "id": RUN, "v1_id": 1043, "user_id": 10129,
        "created_at": "2024-03-07T16:30:00.000Z", "updated_at": "2024-03-07T16:45:00.000Z",
        "start": "2024-03-07T15:30:00.000Z", "end": "2024-03-07T16:10:00.000Z",
        "timezone_offset": "+09:00", "sport_name": "running", "sport_id": 0, "score_state": "SCORED",
        "score": {"strain": 8.2463, "average_heart_rate": 123, "max_heart_rate": 146,
            "kilojoule": 1569.34033203125, "percent_recorded": 100, "distance_meter": 1772.77035916,
            "altitude_gain_meter": 46.64384460449, "altitude_change_meter": -0.781372010707855,
            "zone_durations": {"zone_zero_milli": 13458, "zone_one_milli": 389370, "zone_two_milli": 388367,
                "zone_three_milli": 71137, "zone_four_milli": 0, "zone_five_milli": 0}}
    }])
}

async fn mount_collections(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/developer/v2/cycle"))
        .and(NoQueryParam("nextToken"))
        .respond_with(page(cycles_page1(), Some("MTIzOjEyMzEyMw")))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/developer/v2/cycle"))
        .and(query_param("nextToken", "MTIzOjEyMzEyMw"))
        .respond_with(page(cycles_page2(), None))
        .mount(server)
        .await;
    for (p, body) in [
        ("/developer/v2/activity/sleep", sleeps()),
        ("/developer/v2/recovery", recoveries()),
        ("/developer/v2/activity/workout", workouts()),
    ] {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(page(body, None))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/developer/v2/user/measurement/body"))
        .respond_with(ok(
            json!({"height_meter": 1.8288, "weight_kilogram": 90.7185, "max_heart_rate": 200}),
        ))
        .mount(server)
        .await;
}

async fn run_sync(p: &WhoopProvider, req: SyncRequest) -> Vec<Result<SyncBatch, ProviderError>> {
    p.sync(req).collect().await
}

fn ok_batches(v: Vec<Result<SyncBatch, ProviderError>>) -> Vec<SyncBatch> {
    v.into_iter().map(|b| b.expect("batch")).collect()
}

fn one<'a>(samples: &'a [NewSample], metric: &str, at_: &str) -> &'a NewSample {
    let found: Vec<_> = samples
        .iter()
        .filter(|s| s.metric == metric && s.recorded_at == at(at_))
        .collect();
    assert_eq!(found.len(), 1, "{metric} at {at_}: {found:?}");
    found[0]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[tokio::test]
async fn oauth_flow_uses_body_credentials_and_offline_scope() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let spec = p.oauth_spec().unwrap();
    let app = p
        .oauth_app("https://vs.example/v1/oauth/whoop/callback")
        .unwrap();
    let start = authorize(spec, &app, "st4te-long-enough").unwrap();
    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(url.path(), "/oauth/oauth2/auth");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "whoop-client");
    assert_eq!(q["state"], "st4te-long-enough");
    assert_eq!(
        q["redirect_uri"],
        "https://vs.example/v1/oauth/whoop/callback"
    );
    assert_eq!(
        q["scope"],
        "offline read:recovery read:cycles read:workout read:sleep read:profile read:body_measurement"
    );
    assert!(!q.contains_key("code_challenge"));

    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .and(NoAuthorizationHeader)
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=c0de"))
        .and(body_string_contains("client_id=whoop-client"))
        .and(body_string_contains(format!("client_secret={SECRET}").as_str()))
        .and(body_string_contains("redirect_uri="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": TOKEN, "expires_in": 3600, "refresh_token": "ory_rt_1",
            "scope": "offline read:recovery read:cycles read:workout read:sleep read:profile read:body_measurement",
            "token_type": "bearer"
        })))
        .expect(1)
        .mount(&server)
        .await;
    // Refresh tokens rotate and are single use.
    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .and(NoAuthorizationHeader)
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=ory_rt_1"))
        .and(body_string_contains(
            format!("client_secret={SECRET}").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ory_at_2", "expires_in": 3600, "refresh_token": "ory_rt_2",
            "scope": "offline read:recovery", "token_type": "bearer"
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/oauth2/token"))
        .and(body_string_contains("refresh_token=ory_rt_1"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant",
            "error_description": "The refresh token has already been used."
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/developer/v2/user/profile/basic"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ok(json!({"user_id": 10129, "email": "jo@example.com",
            "first_name": "Jo", "last_name": "Doe"})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/developer/v2/user/access"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    let now = Utc::now();
    let http = http();
    let t = exchange_code(&http, spec, &app, "c0de", None, now)
        .await
        .unwrap();
    assert_eq!(t.access_token, TOKEN);
    assert_eq!(t.refresh_token.as_deref(), Some("ory_rt_1"));
    assert!(t.scopes.contains(&"offline".to_string()));
    assert_eq!(t.expires_at, Some(now + chrono::Duration::seconds(3600)));
    let t2 = refresh(&http, spec, &app, "ory_rt_1", now).await.unwrap();
    assert_eq!(
        (t2.access_token.as_str(), t2.refresh_token.as_deref()),
        ("ory_at_2", Some("ory_rt_2"))
    );
    let reused = refresh(&http, spec, &app, "ory_rt_1", now)
        .await
        .unwrap_err();
    assert!(
        matches!(reused, ProviderError::Unauthorized(_)),
        "{reused:?}"
    );

    let account = p.account(&t).await.unwrap();
    assert_eq!(account.provider_user_id.as_deref(), Some("10129"));
    p.revoke(&t, Some("10129")).await.unwrap();
}

#[tokio::test]
async fn sync_maps_every_collection_with_local_dates_and_holds_cursors_on_pending_records() {
    let server = MockServer::start().await;
    mount_collections(&server).await;
    let p = provider(&server);
    let now = "2024-03-08T20:00:00Z";
    let batches = ok_batches(run_sync(&p, request(now, Cursors::new())).await);
    // cycles ×2 pages, sleep, recovery, workouts, body
    assert_eq!(batches.len(), 6);
    assert!(
        !batches[0].cursors.contains_key("cycles"),
        "first of two pages"
    );
    let last = &batches.last().unwrap().cursors;
    // The current cycle and the pending recovery hold their cursors; the rest reach `now`.
    assert_eq!(last["cycles"], at("2024-03-08T04:00:00Z"));
    assert_eq!(last["recovery"], at("2024-03-08T12:00:00Z"));
    assert_eq!(last["sleep"], at(now));
    assert_eq!(last["workouts"], at(now));
    assert_eq!(last["body"], at(now));

    // Every collection was asked for the backfill window, 25 records a page.
    let reqs = server.received_requests().await.unwrap();
    for r in reqs.iter().filter(|r| !r.url.path().contains("/user/")) {
        let q: std::collections::HashMap<_, _> = r.url.query_pairs().into_owned().collect();
        assert_eq!(q["limit"], "25", "{}", r.url);
        assert_eq!(q["start"], "2024-03-01T20:00:00.000Z", "{}", r.url);
        assert_eq!(q["end"], "2024-03-08T20:00:00.000Z", "{}", r.url);
    }
    assert_eq!(
        reqs.iter()
            .filter(|r| r.url.path() == "/developer/v2/cycle")
            .count(),
        2
    );

    let samples: Vec<_> = batches.iter().flat_map(|b| b.samples.clone()).collect();
    let events: Vec<_> = batches.iter().flat_map(|b| b.events.clone()).collect();
    assert!(samples.iter().all(|s| s.provider == "whoop"));

    // Cycle starting 22:30 local on 4 March: its local date, not the UTC one.
    let strain = one(&samples, "strain", "2024-03-05T03:30:00Z");
    assert_eq!(
        (
            strain.local_date.to_string().as_str(),
            strain.utc_offset_minutes
        ),
        ("2024-03-04", -300)
    );
    assert!(close(strain.value, 5.2951527) && strain.unit == "score");
    let energy = one(&samples, "total_energy", "2024-03-05T03:30:00Z");
    assert!(close(energy.value, 8288.297 / 4.184) && energy.unit == "kcal");
    assert_eq!(
        one(&samples, "heart_rate", "2024-03-05T03:30:00Z").value,
        68.0
    );
    // The pending current cycle has no samples yet.
    assert!(
        !samples
            .iter()
            .any(|s| s.recorded_at == at("2024-03-08T04:00:00Z"))
    );

    // The night's sleep belongs to the morning it ends on (5 March local).
    let main = events
        .iter()
        .find(|e| e.provider_event_id == MAIN_SLEEP)
        .unwrap();
    assert_eq!(main.event_type, EventType::Sleep);
    assert_eq!(main.local_date.to_string(), "2024-03-05");
    assert_eq!(main.ended_at, Some(at("2024-03-05T11:45:00Z")));
    assert_eq!(main.duration_s, Some(29_700.0));
    let t = "2024-03-05T03:30:00Z";
    let asleep = one(&samples, "sleep_duration", t);
    assert!(close(asleep.value, (29_700_000.0 - 1_403_507.0) / 60_000.0) && asleep.unit == "min");
    assert_eq!(asleep.local_date.to_string(), "2024-03-05");
    assert!(close(
        one(&samples, "sleep_deep", t).value,
        6_630_370.0 / 60_000.0
    ));
    assert!(close(
        one(&samples, "sleep_light", t).value,
        14_905_851.0 / 60_000.0
    ));
    assert!(close(
        one(&samples, "sleep_rem", t).value,
        6_760_272.0 / 60_000.0
    ));
    assert!(close(
        one(&samples, "sleep_awake", t).value,
        1_403_507.0 / 60_000.0
    ));
    let eff = one(&samples, "sleep_efficiency", t);
    assert!(close(eff.value, 91.69533848) && eff.unit == "%");
    assert_eq!(one(&samples, "sleep_score", t).value, 98.0);
    let rr = one(&samples, "respiratory_rate", t);
    assert!(close(rr.value, 16.11328125) && rr.unit == "brpm");
    // The nap is an event without sleep metrics.
    let nap = events.iter().find(|e| e.provider_event_id == NAP).unwrap();
    assert_eq!(nap.data.as_ref().unwrap()["nap"], json!(true));
    assert!(
        !samples
            .iter()
            .any(|s| s.recorded_at == at("2024-03-05T18:00:00Z"))
    );

    // Recovery sits at the end of its sleep, on that morning.
    let r = "2024-03-05T11:45:00Z";
    let rec = one(&samples, "recovery_score", r);
    assert_eq!(
        (rec.value, rec.unit, rec.local_date.to_string().as_str()),
        (44.0, "%", "2024-03-05")
    );
    assert_eq!(rec.data.as_ref().unwrap()["skin_temp_celsius"], json!(33.7));
    assert_eq!(one(&samples, "resting_heart_rate", r).value, 64.0);
    let hrv = one(&samples, "hrv_rmssd", r);
    assert!(close(hrv.value, 31.813562) && hrv.unit == "ms");
    assert!(close(one(&samples, "spo2", r).value, 95.6875));

    // The Tokyo run: local date from its own +09:00 offset, kJ → kcal, zones kept.
    let run = events.iter().find(|e| e.provider_event_id == RUN).unwrap();
    assert_eq!(run.event_type, EventType::Workout);
    assert_eq!(run.activity_type.as_deref(), Some("running"));
    assert_eq!(run.local_date.to_string(), "2024-03-08");
    assert!(close(run.energy_kcal.unwrap(), 1569.34033203125 / 4.184));
    assert_eq!((run.avg_hr, run.max_hr), (Some(123.0), Some(146.0)));
    assert_eq!(run.duration_s, Some(2400.0));
    let zones = &run.data.as_ref().unwrap()["zone_durations_ms"];
    assert_eq!(zones["zone_two_milli"], json!(388367));
    let dist = one(&samples, "distance", "2024-03-07T15:30:00Z");
    assert_eq!(
        (
            dist.local_date.to_string().as_str(),
            dist.utc_offset_minutes
        ),
        ("2024-03-08", 540)
    );

    // Body weight: one value per local day, at the user's local midnight.
    let w = one(&samples, "weight", "2024-03-08T05:00:00Z");
    assert_eq!(
        (w.value, w.unit, w.local_date.to_string().as_str()),
        (90.7185, "kg", "2024-03-08")
    );

    // Incremental run: each collection starts at its cursor minus a day; body is not due.
    server.reset().await;
    for p_ in [
        "/developer/v2/cycle",
        "/developer/v2/activity/sleep",
        "/developer/v2/recovery",
        "/developer/v2/activity/workout",
    ] {
        Mock::given(path(p_))
            .respond_with(page(json!([]), None))
            .mount(&server)
            .await;
    }
    let later = "2024-03-09T08:00:00Z";
    let inc = ok_batches(run_sync(&p, request(later, last.clone())).await);
    let reqs = server.received_requests().await.unwrap();
    let start_of = |p_: &str| -> String {
        let r = reqs.iter().find(|r| r.url.path() == p_).expect(p_);
        r.url
            .query_pairs()
            .find(|(k, _)| k == "start")
            .unwrap()
            .1
            .into_owned()
    };
    assert_eq!(start_of("/developer/v2/cycle"), "2024-03-07T04:00:00.000Z");
    assert_eq!(
        start_of("/developer/v2/activity/sleep"),
        "2024-03-07T12:00:00.000Z",
        "min of sleep and recovery"
    );
    assert_eq!(
        start_of("/developer/v2/activity/workout"),
        "2024-03-07T20:00:00.000Z"
    );
    assert!(
        !reqs
            .iter()
            .any(|r| r.url.path().ends_with("/measurement/body"))
    );
    let done = &inc.last().unwrap().cursors;
    assert_eq!(done["cycles"], at(later));
    assert_eq!(done["recovery"], at(later));
    assert_eq!(done["body"], at(now));
}

#[tokio::test]
async fn faults_rate_limits_retries_timeouts_malformed_and_revoked() {
    let server = MockServer::start().await;
    // 429 with a short Retry-After on the first call.
    Mock::given(path("/developer/v2/cycle"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string("Too Many Requests"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    // Two 500s on sleep.
    Mock::given(path("/developer/v2/activity/sleep"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"message": "internal error"})),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    // One workout listing hangs past the timeout.
    Mock::given(path("/developer/v2/activity/workout"))
        .respond_with(page(workouts(), None).set_delay(Duration::from_secs(2)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_collections(&server).await;
    let p = provider(&server);
    let now = "2024-03-08T20:00:00Z";
    let started = std::time::Instant::now();
    let batches = ok_batches(run_sync(&p, request(now, Cursors::new())).await);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(batches.len(), 6);
    assert_eq!(batches.last().unwrap().cursors["workouts"], at(now));
    let reqs = server.received_requests().await.unwrap();
    let count = |p_: &str| reqs.iter().filter(|r| r.url.path() == p_).count();
    assert_eq!(count("/developer/v2/cycle"), 3, "429, then two pages");
    assert_eq!(
        count("/developer/v2/activity/sleep"),
        3,
        "two 500s, then the page"
    );
    assert_eq!(
        count("/developer/v2/activity/workout"),
        2,
        "a timeout, then the page"
    );

    // Truncated second page: the first page's batch carries no cycles cursor.
    server.reset().await;
    Mock::given(path("/developer/v2/cycle"))
        .and(NoQueryParam("nextToken"))
        .respond_with(page(cycles_page1(), Some("MTIzOjEyMzEyMw")))
        .mount(&server)
        .await;
    Mock::given(path("/developer/v2/cycle"))
        .and(query_param("nextToken", "MTIzOjEyMzEyMw"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"records": [{"id": 93845, "user_id": 10"#),
        )
        .mount(&server)
        .await;
    let out = run_sync(&p, request(now, Cursors::new())).await;
    assert_eq!(out.len(), 2);
    let first = out[0].as_ref().unwrap();
    assert!(first.cursors.is_empty() && !first.samples.is_empty());
    assert!(
        matches!(out[1], Err(ProviderError::Malformed(_))),
        "{:?}",
        out[1]
    );

    // A record of the wrong shape is malformed too.
    server.reset().await;
    Mock::given(path("/developer/v2/cycle"))
        .respond_with(page(json!([{"id": "x", "start": "yesterday"}]), None))
        .mount(&server)
        .await;
    let out = run_sync(&p, request(now, Cursors::new())).await;
    assert!(
        matches!(out[..], [Err(ProviderError::Malformed(_))]),
        "{out:?}"
    );

    // Revoked token.
    server.reset().await;
    Mock::given(path("/developer/v2/cycle"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"})))
        .mount(&server)
        .await;
    let out = run_sync(&p, request(now, Cursors::new())).await;
    assert!(
        matches!(out[..], [Err(ProviderError::Unauthorized(_))]),
        "{out:?}"
    );

    // An exhausted window reported in the headers pauses the application budget.
    server.reset().await;
    Mock::given(path("/developer/v2/user/profile/basic"))
        .respond_with(
            ok(json!({"user_id": 10129}))
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", "40"),
        )
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
    assert!(
        matches!(err, ProviderError::RateLimited { retry_after_secs } if retry_after_secs >= 30),
        "{err:?}"
    );
}

fn signed(body: &str, ts_ms: i64, key: &str, received_at: DateTime<Utc>) -> WebhookRequest {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(ts_ms.to_string().as_bytes());
    mac.update(body.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    WebhookRequest {
        method: "POST".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-whoop-signature".into(), sig),
            ("x-whoop-signature-timestamp".into(), ts_ms.to_string()),
        ],
        query: vec![],
        body: body.as_bytes().to_vec(),
        received_at,
    }
}

#[tokio::test]
async fn webhook_signatures_and_targets() {
    let server = MockServer::start().await;
    let p = provider(&server);
    let now = at("2025-05-26T06:34:01Z");
    let ts = now.timestamp_millis() - 2_000;
    let body = r#"{"user_id": 10129, "id": "ecfc6a15-4661-442f-a9a4-f160dd7afae8", "type": "sleep.updated", "trace_id": "e369c784-5100-49e8-8098-75d35c47b31b"}"#;
    assert_eq!(
        p.webhook(&signed(body, ts, SECRET, now)).unwrap(),
        WebhookReply::Accepted {
            status: 200,
            targets: vec![WebhookTarget::Sync {
                provider_user_id: "10129".into(),
                data_types: vec!["sleep".into()],
                range: None,
            }]
        }
    );
    for (kind, dt) in [
        ("workout.deleted", "workouts"),
        ("recovery.updated", "recovery"),
    ] {
        let b =
            format!(r#"{{"user_id": 10129, "id": "{RUN}", "type": "{kind}", "trace_id": "t"}}"#);
        match p.webhook(&signed(&b, ts, SECRET, now)).unwrap() {
            WebhookReply::Accepted { targets, .. } => assert!(
                matches!(&targets[..], [WebhookTarget::Sync { data_types, .. }] if data_types == &vec![dt.to_string()])
            ),
            other => panic!("{other:?}"),
        }
    }

    // Wrong key, tampered body, stale timestamp, missing headers.
    assert!(matches!(
        p.webhook(&signed(body, ts, "other-secret", now)),
        Err(WebhookError::BadSignature(_))
    ));
    let mut tampered = signed(body, ts, SECRET, now);
    tampered.body = body.replace("10129", "10130").into_bytes();
    assert!(matches!(
        p.webhook(&tampered),
        Err(WebhookError::BadSignature(_))
    ));
    let stale = now.timestamp_millis() - 10 * 60 * 1000;
    assert!(matches!(
        p.webhook(&signed(body, stale, SECRET, now)),
        Err(WebhookError::BadSignature(_))
    ));
    let mut unsigned = signed(body, ts, SECRET, now);
    unsigned.headers.retain(|(k, _)| k != "x-whoop-signature");
    assert!(matches!(
        p.webhook(&unsigned),
        Err(WebhookError::BadSignature(_))
    ));
    // A correctly signed body that is not a notification.
    assert!(matches!(
        p.webhook(&signed("{\"type\": 5}", ts, SECRET, now)),
        Err(WebhookError::Malformed(_))
    ));

    let unconfigured = WhoopProvider::new(ProviderContext {
        settings: ProviderSettings {
            client_secret: None,
            ..settings(&server)
        },
        http: http(),
    });
    assert_eq!(
        unconfigured
            .webhook(&signed(body, ts, SECRET, now))
            .unwrap_err(),
        WebhookError::Unsupported
    );
}
