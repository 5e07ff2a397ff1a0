//! Sync throughput end to end: the real `Application` (sync supervisor, connection actors on
//! their arbiters, the Fitbit provider, the store) backfilling many users' Fitbit history at
//! once from a local mock of the Fitbit Web API that speaks its documented formats — intraday
//! heart rate (1,440 samples per date and request), the daily activity summary, sleep logs,
//! the nightly range series, body logs and the paginated activity log.
//!
//! The users are connected the way an OAuth callback leaves them (a connection with sealed
//! tokens and a Fitbit account id, plus a backfill job); every job is then handed to the actors
//! at the same instant and the clock runs until the last one has succeeded. Alongside, the
//! provider alone (the same calls, parsing and mapping, nothing stored) shows what fetching
//! costs, and per-thread CPU time shows where the rest goes.
//!
//! Run with `scripts/bench.sh` (starts a throwaway PostgreSQL) or with `TEST_DATABASE_URL` set:
//! `cargo bench --bench sync`. Knobs: `BENCH_USERS` (8), `BENCH_DAYS` (30), `BENCH_WORKERS`
//! (sync arbiters; the application's default otherwise), `BENCH_BACKENDS` (`sqlite` or
//! `postgresql` runs one database only).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveTime, TimeZone as _, Timelike as _, Utc};
use chrono_tz::Tz;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use vitasync_actors::SyncSettings;
use vitasync_api::startup::{self, Application, Overrides};
use vitasync_engine::bus::BusEvent;
use vitasync_engine::config::Config;
use vitasync_engine::domain::{JobStatus, NewConnection, NewUser, SyncJob, SyncTrigger};
use vitasync_engine::providers::fitbit::{self, FitbitProvider};
use vitasync_engine::providers::{
    Provider, ProviderContext, ProviderHttp, ProviderSettings, RetryPolicy, SyncRequest, SyncUser,
    TokenSet,
};
use vitasync_engine::services::workspaces;
use vitasync_testkit::{Backend, FreshDb};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

mod common;

/// The Fitbit profile's zone: local times on the wire are in it, and it has DST.
const ZONE: Tz = chrono_tz::Europe::Berlin;
const MOCK_THREAD: &str = "fitbit-mock";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// The mock Fitbit Web API. Every body is rendered before the clock starts: a response is a
// lookup and a copy, so the mock stays far from being what is measured.

struct Bodies {
    profile: Vec<u8>,
    /// Per local date: the whole response.
    intraday: HashMap<NaiveDate, Vec<u8>>,
    activity: HashMap<NaiveDate, Vec<u8>>,
    /// Per local date: one element of the range endpoints' arrays, joined per request.
    hrv: BTreeMap<NaiveDate, String>,
    spo2: BTreeMap<NaiveDate, String>,
    br: BTreeMap<NaiveDate, String>,
    temp: BTreeMap<NaiveDate, String>,
    sleep: BTreeMap<NaiveDate, String>,
    weight: BTreeMap<NaiveDate, String>,
    fat: BTreeMap<NaiveDate, String>,
    workouts: BTreeMap<NaiveDate, String>,
}

struct FitbitApi {
    bodies: Arc<Bodies>,
    calls: Arc<AtomicU64>,
}

fn frag(v: Value) -> String {
    serde_json::to_string(&v).expect("static JSON")
}

impl Bodies {
    /// Every date a backfill of `days` can ask for, up to the current minute of today.
    fn render(days: u32) -> Self {
        let now = Utc::now().with_timezone(&ZONE);
        let today = now.date_naive();
        let mut b = Bodies {
            profile: serde_json::to_vec(&json!({"user": {
                "encodedId": "BENCH0", "timezone": ZONE.name(), "offsetFromUTCMillis": 3_600_000,
                "fullName": "Bench User", "memberSince": "2019-04-01"
            }}))
            .unwrap(),
            intraday: HashMap::new(),
            activity: HashMap::new(),
            hrv: BTreeMap::new(),
            spo2: BTreeMap::new(),
            br: BTreeMap::new(),
            temp: BTreeMap::new(),
            sleep: BTreeMap::new(),
            weight: BTreeMap::new(),
            fat: BTreeMap::new(),
            workouts: BTreeMap::new(),
        };
        for back in 0..=i64::from(days) + 2 {
            let date = today - chrono::Duration::days(back);
            let d = date.format("%Y-%m-%d").to_string();
            let n = (date - NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()).num_days() as u64;
            let k = (n % 7) as f64;
            // Fitbit serves today up to the last full minute.
            let minutes = if back == 0 {
                now.hour() * 60 + now.minute()
            } else {
                1440
            };
            let dataset: Vec<Value> = (0..minutes)
                .map(|m| {
                    let t = NaiveTime::from_num_seconds_from_midnight_opt(m * 60, 0).unwrap();
                    json!({"time": t.format("%H:%M:%S").to_string(), "value": 52 + (m * 37 + n as u32) % 75})
                })
                .collect();
            b.intraday.insert(
                date,
                serde_json::to_vec(&json!({
                    "activities-heart": [{"dateTime": d, "value": {
                        "customHeartRateZones": [],
                        "heartRateZones": [
                            {"caloriesOut": 1979.7, "max": 115, "min": 30, "minutes": 1340, "name": "Out of Range"},
                            {"caloriesOut": 410.2, "max": 140, "min": 115, "minutes": 61, "name": "Fat Burn"},
                            {"caloriesOut": 82.3, "max": 172, "min": 140, "minutes": 9, "name": "Cardio"},
                            {"caloriesOut": 0, "max": 220, "min": 172, "minutes": 0, "name": "Peak"}
                        ],
                        "restingHeartRate": 55 + n % 6
                    }}],
                    "activities-heart-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"}
                }))
                .unwrap(),
            );
            b.activity.insert(
                date,
                serde_json::to_vec(&json!({
                    "activities": [],
                    "goals": {"activeMinutes": 30, "caloriesOut": 2500, "distance": 8.05, "floors": 10, "steps": 10000},
                    "summary": {
                        "activeScore": -1, "activityCalories": 900 + n % 300, "caloriesBMR": 1500,
                        "caloriesOut": 2400 + n % 300,
                        "distances": [
                            {"activity": "total", "distance": 6.2 + k}, {"activity": "tracker", "distance": 6.2 + k},
                            {"activity": "loggedActivities", "distance": 0}, {"activity": "veryActive", "distance": 1.1}
                        ],
                        "elevation": 30.48, "floors": 4 + n % 9, "steps": 7000 + n % 5000,
                        "sedentaryMinutes": 720, "lightlyActiveMinutes": 180, "fairlyActiveMinutes": 20 + n % 10,
                        "veryActiveMinutes": 15 + n % 20, "marginalCalories": 500, "restingHeartRate": 55 + n % 6
                    }
                }))
                .unwrap(),
            );
            b.hrv.insert(
                date,
                frag(
                    json!({"dateTime": d, "value": {"dailyRmssd": 34.5 + k, "deepRmssd": 31.2 + k}}),
                ),
            );
            b.spo2.insert(
                date,
                frag(
                    json!({"dateTime": d, "value": {"avg": 95.5 + k / 10.0, "min": 92.1, "max": 98.9}}),
                ),
            );
            b.br.insert(
                date,
                frag(json!({"dateTime": d, "value": {"breathingRate": 14.2 + k / 5.0}})),
            );
            b.temp.insert(
                date,
                frag(
                    json!({"dateTime": d, "value": {"nightlyRelative": -0.3 + k / 10.0}, "logType": "dedicated_temp_sensor"}),
                ),
            );
            let bed = (date - chrono::Duration::days(1)).format("%Y-%m-%d");
            b.sleep.insert(
                date,
                frag(json!({
                    "dateOfSleep": d, "duration": 28_200_000, "efficiency": 90 + n % 8,
                    "startTime": format!("{bed}T23:05:30.000"), "endTime": format!("{d}T06:55:30.000"),
                    "infoCode": 0, "isMainSleep": true,
                    "levels": {"data": [], "shortData": [], "summary": {
                        "deep": {"count": 4, "minutes": 80 + n % 30, "thirtyDayAvgMinutes": 88},
                        "light": {"count": 30, "minutes": 230, "thirtyDayAvgMinutes": 221},
                        "rem": {"count": 9, "minutes": 90, "thirtyDayAvgMinutes": 86},
                        "wake": {"count": 28, "minutes": 50, "thirtyDayAvgMinutes": 57}
                    }},
                    "logId": 30_000_000_000u64 + n, "logType": "auto_detected", "minutesAfterWakeup": 0,
                    "minutesAsleep": 420 + n % 40, "minutesAwake": 50, "minutesToFallAsleep": 0,
                    "timeInBed": 470, "type": "stages"
                })),
            );
            b.weight.insert(
                date,
                frag(json!({
                    "bmi": 23.1 + k / 10.0, "date": d, "fat": 18.4, "logId": 1_700_000_000_000u64 + n,
                    "source": "Aria", "time": "07:05:12", "weight": 72.4 + k / 10.0
                })),
            );
            b.fat.insert(
                date,
                frag(json!({
                    "date": d, "fat": 18.4 + k / 10.0, "logId": 1_700_000_000_000u64 + n,
                    "source": "Aria", "time": "07:05:12"
                })),
            );
            let start = ZONE
                .from_local_datetime(&date.and_hms_opt(18, 4, 0).unwrap())
                .earliest()
                .unwrap();
            b.workouts.insert(
                date,
                frag(json!({
                    "logId": 60_000_000_000u64 + n, "activityName": "Run", "activityTypeId": 90009,
                    "startTime": start.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
                    "duration": 1_860_000, "activeDuration": 1_800_000, "calories": 320 + n % 50,
                    "distance": 5.1 + k / 10.0, "distanceUnit": "Kilometer", "averageHeartRate": 148 + n % 10,
                    "steps": 5400, "elevationGain": 12.2, "logType": "auto_detected",
                    "lastModified": start.to_rfc3339()
                })),
            );
        }
        b
    }
}

/// `a/b.json` → the dates.
fn range(rest: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (a, b) = rest.strip_suffix(".json")?.split_once('/')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn join(
    map: &BTreeMap<NaiveDate, String>,
    (a, b): (NaiveDate, NaiveDate),
    open: &str,
    close: &str,
) -> Vec<u8> {
    let mut out = String::with_capacity(open.len() + close.len() + 128 * 31);
    out.push_str(open);
    for (i, f) in map.range(a..=b).map(|(_, f)| f).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(f);
    }
    out.push_str(close);
    out.into_bytes()
}

fn fitbit_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({"errors": [{"errorType": kind, "message": message}], "success": false}),
    )
}

impl FitbitApi {
    fn body(&self, req: &Request) -> Option<Vec<u8>> {
        let b = &self.bodies;
        let path = req.url.path();
        if path == "/1/user/-/profile.json" {
            return Some(b.profile.clone());
        }
        if path == "/1/user/-/activities/list.json" {
            return Some(self.activity_list(req));
        }
        if let Some(rest) = path.strip_prefix("/1.2/user/-/sleep/date/") {
            let r = range(rest)?;
            let open = r#"{"sleep":["#;
            return Some(join(
                &b.sleep,
                r,
                open,
                r#"],"summary":{"totalMinutesAsleep":0,"totalSleepRecords":0,"totalTimeInBed":0}}"#,
            ));
        }
        let rest = path.strip_prefix("/1/user/-/")?;
        if let Some(rest) = rest.strip_prefix("activities/heart/date/") {
            let date = rest.strip_suffix("/1d/1min.json")?.parse().ok()?;
            return Some(b.intraday.get(&date).cloned().unwrap_or_else(|| {
                br#"{"activities-heart":[],"activities-heart-intraday":{"dataset":[],"datasetInterval":1,"datasetType":"minute"}}"#.to_vec()
            }));
        }
        if let Some(rest) = rest.strip_prefix("activities/date/") {
            let date = rest.strip_suffix(".json")?.parse().ok()?;
            return b.activity.get(&date).cloned();
        }
        let series: [(&str, &BTreeMap<NaiveDate, String>, &str, &str); 6] = [
            ("hrv/date/", &b.hrv, r#"{"hrv":["#, "]}"),
            ("spo2/date/", &b.spo2, "[", "]"),
            ("br/date/", &b.br, r#"{"br":["#, "]}"),
            ("temp/skin/date/", &b.temp, r#"{"tempSkin":["#, "]}"),
            ("body/log/weight/date/", &b.weight, r#"{"weight":["#, "]}"),
            ("body/log/fat/date/", &b.fat, r#"{"fat":["#, "]}"),
        ];
        for (prefix, map, open, close) in series {
            if let Some(rest) = rest.strip_prefix(prefix) {
                return Some(join(map, range(rest)?, open, close));
            }
        }
        None
    }

    /// The activity log from `afterDate`, oldest first, `limit` per page with Fitbit's
    /// absolute `pagination.next` link.
    fn activity_list(&self, req: &Request) -> Vec<u8> {
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let after: NaiveDate = q
            .get("afterDate")
            .and_then(|d| d.parse().ok())
            .unwrap_or(NaiveDate::MIN);
        let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
        let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
        let all: Vec<&String> = self
            .bodies
            .workouts
            .range(after..)
            .map(|(_, f)| f)
            .collect();
        let page: Vec<&str> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|s| s.as_str())
            .collect();
        let next = if offset + page.len() < all.len() {
            format!(
                "https://api.fitbit.com/1/user/-/activities/list.json?offset={}&limit={limit}&sort=asc&afterDate={after}",
                offset + page.len()
            )
        } else {
            String::new()
        };
        format!(
            r#"{{"activities":[{}],"pagination":{{"afterDate":"{after}","limit":{limit},"next":"{next}","offset":{offset},"previous":"","sort":"asc"}}}}"#,
            page.join(",")
        )
        .into_bytes()
    }
}

impl Respond for FitbitApi {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let authorized = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer access-"));
        if !authorized {
            return fitbit_error(401, "invalid_token", "Access token invalid");
        }
        match self.body(req) {
            Some(body) => ResponseTemplate::new(200)
                .set_body_raw(body, "application/json;charset=UTF-8")
                .insert_header("Fitbit-Rate-Limit-Limit", "150")
                .insert_header("Fitbit-Rate-Limit-Remaining", "149")
                .insert_header("Fitbit-Rate-Limit-Reset", "3000"),
            None => fitbit_error(
                404,
                "not_found",
                "The API you are requesting could not be found.",
            ),
        }
    }
}

struct MockApi {
    uri: String,
    calls: Arc<AtomicU64>,
    _stop: std::sync::mpsc::Sender<()>,
}

/// Starts the mock from a thread named `fitbit-mock`: the server thread it spawns inherits the
/// name, so its CPU time can be told apart from the application's.
fn start_mock(days: u32) -> MockApi {
    let bodies = Arc::new(Bodies::render(days));
    let calls = Arc::new(AtomicU64::new(0));
    let (uri_tx, uri_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let responder = FitbitApi {
        bodies,
        calls: calls.clone(),
    };
    std::thread::Builder::new()
        .name(MOCK_THREAD.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let server = rt.block_on(async {
                let server = MockServer::builder()
                    .disable_request_recording()
                    .start()
                    .await;
                Mock::given(wiremock::matchers::method("GET"))
                    .respond_with(responder)
                    .mount(&server)
                    .await;
                server
            });
            uri_tx
                .send(server.uri())
                .expect("report the mock's address");
            // Keeps the server up until the bench drops its handle.
            let _ = stop_rx.recv();
            drop(server);
        })
        .expect("mock thread");
    MockApi {
        uri: uri_rx.recv().expect("mock started"),
        calls,
        _stop: stop_tx,
    }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux): where the wall time went.

/// CPU seconds of one `/proc/.../stat` line: (name, parent pid, user + system seconds).
fn stat_cpu(stat: &str) -> Option<(String, u32, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((name, ppid, ticks as f64 / 100.0))
}

/// CPU seconds used so far by this process's threads, grouped by what they do.
fn thread_cpu() -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    let pid = std::process::id().to_string();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let tid = t.file_name().to_string_lossy().to_string();
        let Some((name, _, secs)) = std::fs::read_to_string(t.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(stat_cpu)
        else {
            continue;
        };
        let group = if tid == pid {
            "main thread (actix system: supervisor, bench driver)"
        } else if name.starts_with("actix-rt|system") {
            "sync arbiters (connection actors: provider calls, parsing, mapping, store calls)"
        } else if name.starts_with("sqlx-sqlite") {
            "SQLite worker threads (statements, commits)"
        } else if name.starts_with(MOCK_THREAD) {
            "mock Fitbit server"
        } else if name.starts_with("actix-server") {
            "API HTTP workers (idle here)"
        } else {
            "other threads"
        };
        *out.entry(group).or_insert(0.0) += secs;
    }
    out
}

/// CPU seconds used so far by a PostgreSQL server's processes (postmaster and its children).
fn pg_cpu(postmaster: u32) -> f64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    procs
        .flatten()
        .filter_map(|p| {
            let pid: u32 = p.file_name().to_str()?.parse().ok()?;
            let (_, ppid, secs) = stat_cpu(&std::fs::read_to_string(p.path().join("stat")).ok()?)?;
            (pid == postmaster || ppid == postmaster).then_some(secs)
        })
        .sum()
}

async fn postmaster_of(url: &str) -> Option<u32> {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url).await.ok()?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut c)
        .await
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu(&stat).map(|(_, ppid, _)| ppid)
}

fn cpu_diff(
    before: &BTreeMap<&'static str, f64>,
    after: &BTreeMap<&'static str, f64>,
) -> Vec<(&'static str, f64)> {
    after
        .iter()
        .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v >= 0.05)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The measurements.

fn fitbit_settings(mock: &str) -> ProviderSettings {
    ProviderSettings {
        client_id: Some("23BENCH".into()),
        client_secret: Some("bench-secret".into()),
        auth_url: Some(format!("{mock}/oauth2/authorize")),
        token_url: Some(format!("{mock}/oauth2/token")),
        api_url: Some(mock.to_string()),
        webhook_secret: None,
        webhook_verify_token: None,
        backfill_days: None,
    }
}

fn config(db: &FreshDb, mock: &str) -> Config {
    let mut config = common::config(db, &[]);
    config
        .providers
        .insert(fitbit::ID.into(), fitbit_settings(mock));
    config
}

fn tokens(i: usize) -> TokenSet {
    TokenSet {
        access_token: format!("access-{i}"),
        refresh_token: Some(format!("refresh-{i}")),
        expires_at: Some(Utc::now() + chrono::Duration::hours(8)),
        scopes: fitbit::OAUTH.scopes.iter().map(|s| s.to_string()).collect(),
    }
}

struct Run {
    backend: &'static str,
    wall: Duration,
    samples: i64,
    events: i64,
    calls: u64,
    job_secs: (f64, f64),
    cpu: Vec<(&'static str, f64)>,
}

async fn bench_backend(
    backend: Backend,
    name: &'static str,
    mock: &MockApi,
    users: usize,
    days: u32,
    workers: Option<usize>,
) -> Run {
    let db = vitasync_testkit::fresh(backend).await;
    let config = config(&db, &mock.uri);
    let store = startup::open_store(&config).await.expect("store");
    let overrides = Overrides {
        sync: workers.map(|w| SyncSettings {
            workers: w,
            ..SyncSettings::default()
        }),
        retry: None,
    };
    let app = Application::build_with(config, store, overrides)
        .await
        .expect("app");
    let state = app.state().clone();
    let handle = app.server_handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());
    // The supervisor answers only once it has loaded the connections that exist at start-up.
    // Connections made before that load would get a catch-up run of their own, and the
    // backfill jobs below would then find their data already stored.
    state.actors.status().await;
    let store = state.store.clone();
    let (ws, _) = workspaces::create_with_admin_key(store.as_ref(), "bench", None)
        .await
        .expect("workspace");

    // What a successful OAuth callback leaves: the connection with sealed tokens and the
    // Fitbit account, and its backfill job.
    let now = Utc::now();
    let mut jobs: Vec<SyncJob> = Vec::new();
    for i in 0..users {
        let (user, _) = store
            .create_user(
                ws.id,
                &NewUser {
                    external_id: format!("bench-{i}"),
                    email: None,
                    display_name: None,
                    timezone: None,
                    metadata: None,
                },
            )
            .await
            .expect("user");
        let t = tokens(i);
        let conn = store
            .upsert_connection(
                &user,
                &NewConnection {
                    provider: fitbit::ID.into(),
                    provider_user_id: Some(format!("BENCH{i:03}")),
                    scopes: t.scopes.clone(),
                    sealed_tokens: Some(state.sync.seal_tokens(&t).expect("seal")),
                    token_expires_at: t.expires_at,
                    backfill_days: days,
                },
                now,
            )
            .await
            .expect("connection");
        jobs.push(
            store
                .create_sync_job(&conn, SyncTrigger::Backfill, None, now)
                .await
                .expect("job"),
        );
    }

    let postmaster = match backend {
        Backend::Postgres => {
            // Start from a fresh checkpoint, as the store-path bench does.
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query("CHECKPOINT")
                .execute(&mut c)
                .await
                .expect("checkpoint");
            postmaster_of(&db.url).await
        }
        Backend::Sqlite => None,
    };

    let mut rx = state.sync.bus.subscribe();
    let mut pending: HashSet<_> = jobs.iter().map(|j| j.id).collect();
    let calls_before = mock.calls.load(Ordering::Relaxed);
    let cpu_before = thread_cpu();
    let pg_before = postmaster.map(pg_cpu);
    let t = Instant::now();
    for job in &jobs {
        state.actors.enqueue(job.clone());
    }
    while !pending.is_empty() {
        match tokio::time::timeout(Duration::from_secs(600), rx.recv()).await {
            Err(_) => panic!("no backfill finished in 10 minutes; {pending:?} still running"),
            Ok(Ok(ev)) => match &*ev {
                BusEvent::SyncCompleted { job_id, .. } => {
                    pending.remove(job_id);
                }
                BusEvent::SyncFailed { job_id, error, .. } if pending.contains(job_id) => {
                    panic!("backfill {job_id} failed: {error}")
                }
                _ => {}
            },
            // Fell behind the batch notifications: ask the store instead.
            Ok(Err(RecvError::Lagged(_))) => {
                for job in &jobs {
                    if let Some(j) = store.sync_job(ws.id, job.id).await.expect("job") {
                        assert_ne!(j.status, JobStatus::Failed, "backfill failed: {j:?}");
                        if j.status == JobStatus::Succeeded {
                            pending.remove(&job.id);
                        }
                    }
                }
            }
            Ok(Err(RecvError::Closed)) => panic!("the bus closed"),
        }
    }
    let wall = t.elapsed();
    let cpu_after = thread_cpu();
    let calls = mock.calls.load(Ordering::Relaxed) - calls_before;
    let mut cpu = cpu_diff(&cpu_before, &cpu_after);
    if let (Some(pm), Some(before)) = (postmaster, pg_before) {
        cpu.push(("PostgreSQL server processes", pg_cpu(pm) - before));
    }

    let (mut samples, mut events) = (0, 0);
    let (mut shortest, mut longest) = (f64::MAX, 0f64);
    for job in &jobs {
        let j = store
            .sync_job(ws.id, job.id)
            .await
            .expect("job")
            .expect("job exists");
        assert_eq!(j.status, JobStatus::Succeeded, "{j:?}");
        assert!(j.inserted > 0, "a backfill wrote nothing: {j:?}");
        samples += j.inserted + j.updated + j.unchanged;
        events += j.events_written;
        if let (Some(a), Some(b)) = (j.started_at, j.finished_at) {
            let s = (b - a).num_milliseconds() as f64 / 1000.0;
            shortest = shortest.min(s);
            longest = longest.max(s);
        }
    }
    handle.stop(true).await;
    let _ = server.await;
    Run {
        backend: name,
        wall,
        samples,
        events,
        calls,
        job_secs: (shortest, longest),
        cpu,
    }
}

/// The provider alone: the same backfills' calls, parsing and mapping on as many threads as
/// the application has sync arbiters, with nothing stored.
fn provider_only(mock: &MockApi, users: usize, days: u32, threads: usize) -> (Duration, u64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    let provider = Arc::new(FitbitProvider::new(ProviderContext {
        settings: fitbit_settings(&mock.uri),
        http: ProviderHttp::new(RetryPolicy::default()),
    }));
    rt.block_on(async {
        let now = Utc::now();
        let t = Instant::now();
        let runs: Vec<_> = (0..users)
            .map(|i| {
                let p = provider.clone();
                let req = SyncRequest {
                    user: SyncUser {
                        external_id: format!("bench-{i}"),
                        timezone: None,
                    },
                    access_token: Some(tokens(i).access_token),
                    provider_user_id: Some(format!("BENCH{i:03}")),
                    data_types: Vec::new(),
                    cursors: Default::default(),
                    range: None,
                    backfill_days: days,
                    connected_at: now,
                    now,
                };
                tokio::spawn(async move {
                    let mut stream = p.sync(req);
                    let (mut samples, mut events) = (0u64, 0u64);
                    while let Some(batch) = stream.next().await {
                        let batch = batch.expect("provider batch");
                        samples += batch.samples.len() as u64;
                        events += batch.events.len() as u64;
                    }
                    (samples, events)
                })
            })
            .collect();
        let (mut samples, mut events) = (0, 0);
        for r in runs {
            let (s, e) = r.await.expect("provider run");
            samples += s;
            events += e;
        }
        (t.elapsed(), samples, events)
    })
}

fn main() {
    let users: usize = env_or("BENCH_USERS", 8);
    let days: u32 = env_or("BENCH_DAYS", 30);
    let workers: Option<usize> = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok());
    let arbiters = workers.unwrap_or_else(|| SyncSettings::default().workers);
    let only = std::env::var("BENCH_BACKENDS")
        .unwrap_or_default()
        .to_lowercase();
    let mock = start_mock(days);

    let (d, s, e) = provider_only(&mock, users, days, arbiters);
    let provider_rate = s as f64 / d.as_secs_f64();
    eprintln!(
        "provider only | {s} samples, {e} events | {:.2} s | {provider_rate:.0} samples/s",
        d.as_secs_f64()
    );

    let runs = actix_web::rt::System::new().block_on(async {
        let mut runs = Vec::new();
        for (backend, name) in [
            (Backend::Sqlite, "SQLite"),
            (Backend::Postgres, "PostgreSQL"),
        ] {
            if !only.is_empty() && only != name.to_lowercase() {
                continue;
            }
            let r = bench_backend(backend, name, &mock, users, days, workers).await;
            eprintln!(
                "{} | {} samples, {} events | {:.2} s | {:.0} samples/s",
                r.backend,
                r.samples,
                r.events,
                r.wall.as_secs_f64(),
                r.samples as f64 / r.wall.as_secs_f64()
            );
            runs.push(r);
        }
        runs
    });

    println!(
        "{users} users × {days} days of Fitbit history, {arbiters} sync arbiter(s), {} CPU(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| database | samples | events | provider calls | wall s | samples/s | events/s | calls/s | job s (min–max) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| none (provider only) | {s} | {e} | – | {:.2} | {provider_rate:.0} | {:.0} | – | – |",
        d.as_secs_f64(),
        e as f64 / d.as_secs_f64()
    );
    for r in &runs {
        let w = r.wall.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {w:.2} | {:.0} | {:.0} | {:.0} | {:.1}–{:.1} |",
            r.backend,
            r.samples,
            r.events,
            r.calls,
            r.samples as f64 / w,
            r.events as f64 / w,
            r.calls as f64 / w,
            r.job_secs.0,
            r.job_secs.1
        );
    }
    for r in &runs {
        let w = r.wall.as_secs_f64();
        println!();
        println!("CPU during the {} run ({w:.2} s wall):", r.backend);
        for (what, secs) in &r.cpu {
            println!(
                "- {what}: {secs:.2} s ({:.0} % of one core)",
                100.0 * secs / w
            );
        }
    }
}
