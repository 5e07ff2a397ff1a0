//! Crash safety of a long backfill with the real `vitasync serve` process. A slow Fitbit mock
//! (every data response delayed 100–200 ms) serves 30 days of history with minute-by-minute
//! heart rate (1,440 samples a day), sleep, workouts and the nightly series. A user connects
//! through the OAuth flow over HTTP; the process is killed with SIGKILL twice mid-backfill
//! (once in the daily activity summaries, once in the intraday heart rate; the instant is
//! wherever the process happens to be, waiting on the provider or mid-commit), and restarted
//! on the same database each time. Each restart must resume at once from the committed cursors
//! and the end state must equal a clean run's that was never killed: the same samples, events
//! and cursors, no duplicates, and job counters that add up to what is stored.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use vitasync_engine::config::Config;
use vitasync_engine::crypto::generate_key_b64;
use vitasync_engine::cursor::Limit;
use vitasync_engine::domain::{JobStatus, SyncJob};
use vitasync_engine::providers::Cursors;
use vitasync_engine::providers::fitbit::sync::DATA_TYPES;
use vitasync_testkit::{Backend, FreshDb};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "vs_crash_safety_bootstrap_key_0123456789";
/// A zone without daylight saving (every local day has 1,440 minutes) whose half-hour offset
/// puts local midnight away from UTC midnight.
const TZ: Tz = chrono_tz::Asia::Kolkata;
const MINUTES: i64 = 1440;
const BACKFILL_DAYS: u32 = 34;

// ---------------------------------------------------------------------------------------------
// The mock provider

/// The dates the mock has data for. They end two days before the test starts and the backfill
/// reaches further back than they do, so every run covers all of them even if the test
/// crosses midnight; outside them every endpoint answers with an empty day.
#[derive(Debug, Clone, Copy)]
struct History {
    first: NaiveDate,
    last: NaiveDate,
}

impl History {
    fn ending_before_today() -> Self {
        let today = Utc::now().with_timezone(&TZ).date_naive();
        History {
            first: today - Days::new(31),
            last: today - Days::new(2),
        }
    }

    fn days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }

    /// `(index, date)` of the data dates in `[a, b]`.
    fn within(&self, a: NaiveDate, b: NaiveDate) -> Vec<(i64, NaiveDate)> {
        let mut out = Vec::new();
        let mut d = a.max(self.first);
        while d <= b.min(self.last) {
            out.push(((d - self.first).num_days(), d));
            d = d + Days::new(1);
        }
        out
    }

    fn index(&self, d: NaiveDate) -> Option<i64> {
        (self.first..=self.last)
            .contains(&d)
            .then(|| (d - self.first).num_days())
    }

    /// Data dates strictly before the local date of `cursor`: what a per-date data type whose
    /// cursor is `cursor` has committed.
    fn days_before(&self, cursor: DateTime<Utc>) -> i64 {
        let local = cursor.with_timezone(&TZ).date_naive();
        self.within(self.first, local - Days::new(1)).len() as i64
    }
}

fn heart_value(k: i64, minute: i64) -> i64 {
    52 + (k * 31 + minute * 7 + minute / 37) % 83
}

fn local_iso(d: NaiveDate, h: u32, m: u32) -> String {
    d.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap())
        .format("%Y-%m-%dT%H:%M:%S%.3f")
        .to_string()
}

/// Answers every Fitbit data endpoint in its documented shape, slowly.
struct SlowFitbit(History);

impl SlowFitbit {
    fn daily_activity(&self, d: NaiveDate) -> Value {
        let Some(k) = self.0.index(d) else {
            return json!({"activities": [], "goals": {}, "summary": {
                "activityCalories": 0, "caloriesBMR": 1500, "caloriesOut": 1500, "steps": 0,
                "distances": [{"activity": "total", "distance": 0}],
                "fairlyActiveMinutes": 0, "veryActiveMinutes": 0, "sedentaryMinutes": 1440}});
        };
        json!({"activities": [], "goals": {"steps": 10000}, "summary": {
            "activityCalories": 300 + 7 * k, "caloriesBMR": 1600, "caloriesOut": 1900 + 7 * k,
            "steps": 4000 + 113 * k, "floors": k % 12,
            "distances": [{"activity": "total", "distance": 3.0 + k as f64 * 0.25},
                          {"activity": "tracker", "distance": 3.0 + k as f64 * 0.25}],
            "fairlyActiveMinutes": 10 + k % 5, "veryActiveMinutes": 5 + k % 7,
            "lightlyActiveMinutes": 180, "sedentaryMinutes": 700}})
    }

    fn heart_intraday(&self, d: NaiveDate) -> Value {
        let day = d.format("%Y-%m-%d").to_string();
        let Some(k) = self.0.index(d) else {
            return json!({"activities-heart": [{"dateTime": day, "value": {"heartRateZones": []}}],
                "activities-heart-intraday": {"dataset": [], "datasetInterval": 1, "datasetType": "minute"}});
        };
        let dataset: Vec<Value> = (0..MINUTES)
            .map(|m| {
                json!({"time": format!("{:02}:{:02}:00", m / 60, m % 60), "value": heart_value(k, m)})
            })
            .collect();
        json!({
            "activities-heart": [{"dateTime": day, "value": {
                "customHeartRateZones": [], "heartRateZones": [], "restingHeartRate": 50 + k % 9}}],
            "activities-heart-intraday": {"dataset": dataset, "datasetInterval": 1, "datasetType": "minute"}
        })
    }

    fn sleep(&self, a: NaiveDate, b: NaiveDate) -> Value {
        let logs: Vec<Value> = self
            .0
            .within(a, b)
            .into_iter()
            .map(|(k, d)| {
                let (deep, light, rem, wake) = (60 + k % 40, 200 + k % 50, 70 + k % 30, 30 + k % 20);
                json!({
                    "dateOfSleep": d, "duration": 27_600_000, "efficiency": 88 + k % 10,
                    "startTime": local_iso(d - Days::new(1), 23, 10),
                    "endTime": local_iso(d, 6, 50),
                    "infoCode": 0, "isMainSleep": true, "logId": 41_000_000_000u64 + k as u64,
                    "logType": "auto_detected", "minutesAfterWakeup": 0,
                    "minutesAsleep": deep + light + rem, "minutesAwake": wake,
                    "minutesToFallAsleep": 0, "timeInBed": 460, "type": "stages",
                    "levels": {"data": [], "summary": {
                        "deep": {"count": 4, "minutes": deep}, "light": {"count": 30, "minutes": light},
                        "rem": {"count": 9, "minutes": rem}, "wake": {"count": 25, "minutes": wake}}}
                })
            })
            .collect();
        json!({"sleep": logs, "summary": {"totalMinutesAsleep": 0, "totalSleepRecords": 0, "totalTimeInBed": 0}})
    }

    fn workouts(&self, req: &Request) -> Value {
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let after = q
            .get("afterDate")
            .and_then(|d| d.parse::<NaiveDate>().ok())
            .unwrap_or(self.0.first);
        let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
        // Two workouts a day: a morning run and an evening ride.
        let all: Vec<Value> = self
            .0
            .within(after, self.0.last)
            .into_iter()
            .flat_map(|(k, d)| {
                [(7, "Run", 90009, 4.0), (18, "Outdoor Bike", 90001, 18.5)].map(
                    |(hour, name, type_id, km)| {
                        let start = TZ
                            .from_local_datetime(&d.and_hms_opt(hour, (k % 50) as u32, 0).unwrap())
                            .single()
                            .unwrap();
                        json!({
                            "activityName": name, "activityTypeId": type_id,
                            "logId": 62_000_000_000u64 + (k as u64) * 10 + u64::from(hour),
                            "startTime": start.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
                            "duration": 1_800_000 + k * 1000, "activeDuration": 1_790_000 + k * 1000,
                            "calories": 250 + k, "distance": km + k as f64 * 0.125,
                            "distanceUnit": "Kilometer", "averageHeartRate": 130 + k % 20,
                            "steps": if hour == 7 { 4200 + k } else { 0 },
                            "logType": "tracker", "lastModified": start.with_timezone(&Utc).to_rfc3339()
                        })
                    },
                )
            })
            .collect();
        let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
        let next = if offset + limit < all.len() {
            format!(
                "https://api.fitbit.com/1/user/-/activities/list.json?afterDate={after}&sort=asc&offset={}&limit={limit}",
                offset + limit
            )
        } else {
            String::new()
        };
        json!({"activities": page, "pagination": {"afterDate": after, "limit": limit,
            "next": next, "offset": offset, "previous": "", "sort": "asc"}})
    }

    fn range(&self, kind: &str, a: NaiveDate, b: NaiveDate) -> Value {
        let days = self.0.within(a, b);
        let each = |f: &dyn Fn(i64, NaiveDate) -> Option<Value>| -> Vec<Value> {
            days.iter().filter_map(|&(k, d)| f(k, d)).collect()
        };
        match kind {
            "hrv" => json!({"hrv": each(&|k, d| Some(json!({"dateTime": d,
                "value": {"dailyRmssd": 30.0 + k as f64 * 0.5, "deepRmssd": 28.0 + k as f64 * 0.25}})))}),
            "spo2" => json!(each(&|k, d| Some(json!({"dateTime": d,
                "value": {"avg": 95.0 + (k % 4) as f64 * 0.5, "min": 92.0, "max": 99.0}})))),
            "br" => json!({"br": each(&|k, d| Some(json!({"dateTime": d,
                "value": {"breathingRate": 14.0 + (k % 5) as f64 * 0.25}})))}),
            "temp" => json!({"tempSkin": each(&|k, d| Some(json!({"dateTime": d,
                "value": {"nightlyRelative": (k % 7) as f64 * 0.125 - 0.375},
                "logType": "dedicated_temp_sensor"})))}),
            "weight" => json!({"weight": each(&|k, d| (k % 3 == 0).then(|| json!({
                "logId": 1_700_000_000_000u64 + k as u64, "date": d, "time": "07:31:00",
                "weight": 72.0 + (k % 5) as f64 * 0.25, "bmi": 23.5, "source": "Aria"})))}),
            "fat" => json!({"fat": each(&|k, d| (k % 3 == 0).then(|| json!({
                "logId": 1_700_000_000_000u64 + k as u64, "date": d, "time": "07:31:00",
                "fat": 15.0 + (k % 4) as f64 * 0.5, "source": "Aria"})))}),
            _ => unreachable!(),
        }
    }
}

fn fitbit_error(status: u16, error_type: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "errors": [{"errorType": error_type, "message": message}], "success": false
    }))
}

fn date_of(segment: &str) -> Option<NaiveDate> {
    segment.trim_end_matches(".json").parse().ok()
}

impl Respond for SlowFitbit {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let p = req.url.path();
        let seg: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        let body = match seg.as_slice() {
            ["1", "user", "-", "profile.json"] => json!({"user": {
                "encodedId": "CRASH1", "timezone": TZ.name(), "offsetFromUTCMillis": 19_800_000}}),
            ["1", "user", "-", "activities", "list.json"] => self.workouts(req),
            ["1", "user", "-", "activities", "date", d] => match date_of(d) {
                Some(d) => self.daily_activity(d),
                None => return fitbit_error(400, "validation", "Invalid date"),
            },
            [
                "1",
                "user",
                "-",
                "activities",
                "heart",
                "date",
                d,
                "1d",
                "1min.json",
            ] => match date_of(d) {
                Some(d) => self.heart_intraday(d),
                None => return fitbit_error(400, "validation", "Invalid date"),
            },
            ["1.2", "user", "-", "sleep", "date", a, b]
            | ["1", "user", "-", "hrv" | "spo2" | "br", "date", a, b]
            | ["1", "user", "-", "temp", "skin", "date", a, b]
            | [
                "1",
                "user",
                "-",
                "body",
                "log",
                "weight" | "fat",
                "date",
                a,
                b,
            ] => {
                let (Some(a), Some(b)) = (date_of(a), date_of(b)) else {
                    return fitbit_error(400, "validation", "Invalid date range");
                };
                match seg[3] {
                    "sleep" => self.sleep(a, b),
                    "temp" => self.range("temp", a, b),
                    "body" => self.range(seg[5], a, b),
                    kind => self.range(kind, a, b),
                }
            }
            _ => {
                return fitbit_error(
                    404,
                    "not_found",
                    "The API you are requesting could not be found.",
                );
            }
        };
        // 100–200 ms, fixed per URL so every run sees the same latencies.
        let spread = p
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        ResponseTemplate::new(200)
            .set_body_json(body)
            .insert_header("Fitbit-Rate-Limit-Limit", "150")
            .insert_header("Fitbit-Rate-Limit-Remaining", "140")
            .insert_header("Fitbit-Rate-Limit-Reset", "1800")
            .set_delay(Duration::from_millis(100 + spread % 101))
    }
}

async fn fitbit_mock(history: History) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "crash-access", "refresh_token": "crash-refresh",
            "expires_in": 28800, "token_type": "Bearer", "user_id": "CRASH1",
            "scope": "activity heartrate sleep weight profile oxygen_saturation respiratory_rate temperature"
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .respond_with(SlowFitbit(history))
        .mount(&mock)
        .await;
    mock
}

// ---------------------------------------------------------------------------------------------
// The binary

/// One deployment: a database and the environment every process on it starts with.
struct Deployment {
    name: &'static str,
    env: HashMap<String, String>,
    _db: FreshDb,
    logs: PathBuf,
    starts: u32,
}

impl Deployment {
    async fn new(name: &'static str, backend: Backend, mock: &MockServer, key: &str) -> Self {
        let db = vitasync_testkit::fresh(backend).await;
        let mut env: HashMap<String, String> = [
            ("VITASYNC_DATA_DIR", db.dir.path().display().to_string()),
            ("VITASYNC_ENCRYPTION_KEY", key.to_string()),
            ("VITASYNC_BOOTSTRAP_API_KEY", KEY.to_string()),
            ("VITASYNC_RATE_LIMIT_RPS", "0".to_string()),
            // Only the backfill and the start-up catch-ups sync; a scheduled run would blur the
            // comparison.
            ("VITASYNC_SYNC_INTERVAL_SECS", "3600".to_string()),
            ("VITASYNC_FITBIT_CLIENT_ID", "crash-client".to_string()),
            ("VITASYNC_FITBIT_CLIENT_SECRET", "crash-secret".to_string()),
            (
                "VITASYNC_FITBIT_AUTH_URL",
                format!("{}/oauth2/authorize", mock.uri()),
            ),
            (
                "VITASYNC_FITBIT_TOKEN_URL",
                format!("{}/oauth2/token", mock.uri()),
            ),
            ("VITASYNC_FITBIT_API_URL", mock.uri()),
            ("VITASYNC_FITBIT_BACKFILL_DAYS", BACKFILL_DAYS.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // SQLite is the embedded default: the file in the data dir, no DATABASE_URL.
        if backend == Backend::Postgres {
            env.insert("DATABASE_URL".into(), db.url.clone());
        }
        let logs = db.dir.path().join(format!("{name}.log"));
        Deployment {
            name,
            env,
            _db: db,
            logs,
            starts: 0,
        }
    }

    /// Starts `vitasync serve` on a free port and waits until it answers.
    async fn start(&mut self) -> Process {
        self.starts += 1;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.logs)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vitasync"))
            .arg("serve")
            .env_clear()
            .envs(&self.env)
            .env("VITASYNC_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info,sqlx=warn")
            .env("VITASYNC_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start vitasync serve");
        let mut p = Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            logs: self.logs.clone(),
            label: format!("{} #{}", self.name, self.starts),
        };
        let deadline = Deadline::new("the server answers /health", 30);
        loop {
            if let Ok(r) = p.http.get(p.url("/health")).send().await
                && r.status().is_success()
            {
                return p;
            }
            deadline.check(&mut p);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads what the database holds for the connection (with no process running, or while
    /// one runs: every read is of committed data).
    async fn stored(&self, user: &str, connection: &str) -> Stored {
        let cfg = Config::load(None, &self.env).unwrap();
        let store = vitasync_engine::store::open(&cfg).await.unwrap();
        let ws = store.workspace_by_slug("default").await.unwrap().unwrap();
        let user = store
            .user(ws.id, user.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let conn = store
            .connection_by_id(connection.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let counts = store
            .metric_summaries(&user)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.metric, m.count))
            .collect();
        let jobs = store
            .list_sync_jobs(&user, Limit::parse(Some(100)).unwrap(), None)
            .await
            .unwrap()
            .items;
        Stored {
            cursors: conn.cursors,
            counts,
            jobs,
        }
    }
}

struct Stored {
    cursors: Cursors,
    counts: BTreeMap<String, i64>,
    /// Newest first.
    jobs: Vec<SyncJob>,
}

impl Stored {
    fn count(&self, metric: &str) -> i64 {
        self.counts.get(metric).copied().unwrap_or(0)
    }

    fn total(&self) -> i64 {
        self.counts.values().sum()
    }

    /// The job counters are committed with the batches they count, so across every job of
    /// the connection — killed ones included — the insertions add up to what is stored.
    fn assert_counters_add_up(&self, when: &str) {
        let inserted: i64 = self.jobs.iter().map(|j| j.inserted).sum();
        assert_eq!(
            inserted,
            self.total(),
            "{when}: job counters {:?} vs stored {:?}",
            self.jobs
                .iter()
                .map(|j| (j.status, j.inserted, j.unchanged))
                .collect::<Vec<_>>(),
            self.counts
        );
    }

    /// A cursor says "everything before me is stored": for the per-date data types the
    /// stored days are exactly the data dates before the cursor's local date.
    fn assert_cursors_match_data(&self, history: &History, when: &str) {
        for (data_type, metric, per_day) in [
            ("activity", "steps", 1),
            ("heart_rate", "heart_rate", MINUTES),
        ] {
            let days = self
                .cursors
                .get(data_type)
                .map_or(0, |c| history.days_before(*c));
            assert_eq!(
                self.count(metric),
                days * per_day,
                "{when}: {metric} stored vs {data_type} cursor {:?}",
                self.cursors.get(data_type)
            );
        }
    }
}

/// A running `vitasync serve`. Dropping it kills the process.
struct Process {
    child: Child,
    base: String,
    http: reqwest::Client,
    logs: PathBuf,
    label: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.logs).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL: no shutdown hook, no batch boundary, no flush.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "{}: {status}", self.label);
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Value {
        let res = req.bearer_auth(KEY).send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(status.is_success(), "{}: {status}: {text}", self.label);
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.send(self.http.get(self.url(path))).await
    }

    /// Every item of a paginated list.
    async fn all(&self, path: String) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("{path}?limit=1000");
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&url).await;
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    async fn counts(&self, user: &str) -> HashMap<String, i64> {
        let summary = self.get(&format!("/v1/users/{user}/health/summary")).await;
        summary["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["metric"].as_str().unwrap().to_string(),
                    m["count"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    async fn jobs(&self, user: &str) -> Vec<Value> {
        self.get(&format!("/v1/users/{user}/sync-jobs?limit=100"))
            .await["data"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Creates a user and connects Fitbit the way a browser would: authorize, follow the
    /// provider's redirect back with the code. Returns (user, connection, backfill job).
    async fn connect_fitbit(&self) -> (String, String, String) {
        let user = self
            .send(
                self.http
                    .post(self.url("/v1/users"))
                    .json(&json!({"external_id": "crash-1", "timezone": TZ.name()})),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let auth = self
            .get(&format!("/v1/oauth/fitbit/authorize?user_id={user}"))
            .await;
        let q = crate::oauth::query_of(auth["authorization_url"].as_str().unwrap());
        let res = crate::oauth::no_redirects()
            .get(self.url(&format!(
                "/v1/oauth/fitbit/callback?code=crash-code&state={}",
                crate::oauth::urlencode(&q["state"])
            )))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let page = res.text().await.unwrap();
        assert!(
            status.is_success(),
            "{}: callback {status}: {page}",
            self.label
        );
        let conns = self.get(&format!("/v1/users/{user}/connections")).await;
        let conn = conns["data"][0]["id"].as_str().unwrap().to_string();
        let jobs = self.jobs(&user).await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        (user, conn, jobs[0]["id"].as_str().unwrap().to_string())
    }

    /// Polls the per-metric counts until `metric` reaches `n`.
    async fn wait_count(&mut self, user: &str, metric: &str, n: i64, secs: u64) {
        let deadline = Deadline::new(&format!("{metric} reaches {n}"), secs);
        loop {
            if self.counts(user).await.get(metric).copied().unwrap_or(0) >= n {
                return;
            }
            deadline.check(self);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a job other than `except` to be running (or done) and returns it.
    async fn wait_new_job(&mut self, user: &str, except: &[&str], secs: u64) -> Value {
        let deadline = Deadline::new("a new sync job starts", secs);
        loop {
            if let Some(j) = self
                .jobs(user)
                .await
                .into_iter()
                .find(|j| !except.iter().any(|e| j["id"] == *e) && j["status"] != "queued")
            {
                return j;
            }
            deadline.check(self);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_job_done(&mut self, job: &str, secs: u64) -> Value {
        let deadline = Deadline::new(&format!("job {job} finishes"), secs);
        loop {
            let j = self.get(&format!("/v1/sync-jobs/{job}")).await;
            if j["status"] == "succeeded" || j["status"] == "failed" {
                return j;
            }
            deadline.check(self);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct Deadline {
    what: String,
    at: Instant,
    secs: u64,
}

impl Deadline {
    fn new(what: &str, secs: u64) -> Self {
        Deadline {
            what: what.to_string(),
            at: Instant::now() + Duration::from_secs(secs),
            secs,
        }
    }

    /// Panics with the process's log when it has died or time is up.
    fn check(&self, p: &mut Process) {
        if let Some(status) = p.child.try_wait().unwrap() {
            panic!(
                "{} exited ({status}) while waiting until {}:\n{}",
                p.label,
                self.what,
                p.log_tail()
            );
        }
        if Instant::now() > self.at {
            panic!(
                "{}: not within {} s: {}\n{}",
                p.label,
                self.secs,
                self.what,
                p.log_tail()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The comparison

/// A sample as stored, without its row id.
fn sample_key(s: &Value) -> (String, String, String, String, u64, String, String) {
    (
        s["provider"].as_str().unwrap().to_string(),
        s["metric"].as_str().unwrap().to_string(),
        s["recorded_at"].as_str().unwrap().to_string(),
        s["local_date"].as_str().unwrap().to_string(),
        s["value"].as_f64().unwrap().to_bits(),
        s["unit"].as_str().unwrap().to_string(),
        s["source"].to_string(),
    )
}

fn without_id(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("id");
    v
}

/// (data requests, most requests of any one URL) a mock received.
async fn fetches(mock: &MockServer) -> (usize, usize) {
    let mut per_url: HashMap<String, usize> = HashMap::new();
    for r in mock.received_requests().await.unwrap() {
        if r.method == wiremock::http::Method::GET && !r.url.path().ends_with("/profile.json") {
            *per_url.entry(r.url.to_string()).or_default() += 1;
        }
    }
    (
        per_url.values().sum(),
        per_url.values().copied().max().unwrap_or(0),
    )
}

/// Every cursor of a finished run is that run's end: the instant its last job read as "now".
fn assert_cursors_at_end_of(stored: &Stored, who: &str) {
    let last = &stored.jobs[0];
    assert_eq!(last.status, JobStatus::Succeeded, "{who}: {last:?}");
    let keys: Vec<&str> = stored.cursors.keys().map(String::as_str).collect();
    let mut all: Vec<&str> = DATA_TYPES.to_vec();
    all.sort_unstable();
    assert_eq!(keys, all, "{who}: every data type has a cursor");
    let (from, to) = (last.started_at.unwrap(), last.finished_at.unwrap());
    for (dt, c) in &stored.cursors {
        assert!(
            *c >= from && *c <= to,
            "{who}: cursor {dt} = {c} is not the end of the last run ({from} .. {to})"
        );
    }
    let first = stored.cursors.values().next().unwrap();
    assert!(
        stored.cursors.values().all(|c| c == first),
        "{who}: {:?}",
        stored.cursors
    );
}

async fn killed_twice_resumes_and_matches_a_clean_run(backend: Backend) {
    vitasync_engine::providers::http::install_crypto_provider();
    let began = Instant::now();
    let history = History::ending_before_today();
    let days = history.days();
    let (mock, clean_mock) = (fitbit_mock(history).await, fitbit_mock(history).await);
    let key = generate_key_b64();
    let mut crashing = Deployment::new("crashing", backend, &mock, &key).await;
    let mut clean = Deployment::new("clean", backend, &clean_mock, &key).await;

    // Both backfills run at the same time, each against its own mock with the same history;
    // only one is killed.
    let mut a = crashing.start().await;
    let mut c = clean.start().await;
    let (user, conn, job1) = a.connect_fitbit().await;
    let (clean_user, clean_conn, clean_job) = c.connect_fitbit().await;

    // Kill 1: in the daily activity summaries (one request per date), after 8 of them.
    // The range types before them are done, heart rate has not started.
    a.wait_count(&user, "steps", 8, 60).await;
    a.kill();
    let killed1 = Instant::now();
    let s1 = crashing.stored(&user, &conn).await;
    assert!(
        (8..days).contains(&s1.count("steps")),
        "killed mid-activity: {:?}",
        s1.counts
    );
    assert_eq!(s1.count("heart_rate"), 0, "{:?}", s1.counts);
    assert!(s1.count("sleep_duration") == days && s1.count("hrv_rmssd") == days);
    assert!(!s1.cursors.contains_key("heart_rate"), "{:?}", s1.cursors);
    s1.assert_cursors_match_data(&history, "after kill 1");
    s1.assert_counters_add_up("after kill 1");

    // Restart: the interrupted job is closed and the connection syncs again at once.
    let mut a = crashing.start().await;
    let job2 = a.wait_new_job(&user, &[job1.as_str()], 15).await;
    let resume1 = killed1.elapsed();
    let j1 = a.get(&format!("/v1/sync-jobs/{job1}")).await;
    assert_eq!(j1["status"], "failed", "{j1}");
    assert_eq!(j1["error"], "interrupted by a restart", "{j1}");
    let job2 = job2["id"].as_str().unwrap().to_string();

    // Kill 2: in the intraday heart rate (one request per date, 1,440 samples each), after
    // 8 dates of it have been committed by the resumed run.
    a.wait_count(&user, "heart_rate", 8 * MINUTES, 60).await;
    a.kill();
    let killed2 = Instant::now();
    let s2 = crashing.stored(&user, &conn).await;
    assert_eq!(s2.count("steps"), days, "{:?}", s2.counts);
    assert!(
        (8 * MINUTES..days * MINUTES).contains(&s2.count("heart_rate")),
        "killed mid-heart-rate: {:?}",
        s2.counts
    );
    s2.assert_cursors_match_data(&history, "after kill 2");
    s2.assert_counters_add_up("after kill 2");

    let mut a = crashing.start().await;
    let job3 = a
        .wait_new_job(&user, &[job1.as_str(), job2.as_str()], 15)
        .await;
    let resume2 = killed2.elapsed();
    let job3 = job3["id"].as_str().unwrap().to_string();
    let j3 = a.wait_job_done(&job3, 90).await;
    assert_eq!(j3["status"], "succeeded", "{j3}");
    let jc = c.wait_job_done(&clean_job, 90).await;
    assert_eq!(jc["status"], "succeeded", "{jc}");
    let synced = began.elapsed();

    // Each restart went on from the cursors: no URL was fetched more than twice (once before
    // a kill, once more for the window or date the kill interrupted).
    let (fetched, most) = fetches(&mock).await;
    let (clean_fetched, clean_most) = fetches(&clean_mock).await;
    assert_eq!(clean_most, 1, "the clean run fetched a URL twice");
    assert!(
        most <= 2,
        "after a restart a URL was fetched a third time ({fetched} requests vs {clean_fetched})"
    );

    // The same samples and events, read through the API.
    let (crashed_samples, clean_samples) = tokio::join!(
        a.all(format!("/v1/users/{user}/health")),
        c.all(format!("/v1/users/{clean_user}/health"))
    );
    let mut got: Vec<_> = crashed_samples.iter().map(sample_key).collect();
    let mut want: Vec<_> = clean_samples.iter().map(sample_key).collect();
    got.sort();
    want.sort();
    let distinct = |v: &[(String, String, String, String, u64, String, String)]| {
        let mut keys: Vec<_> = v.iter().map(|s| (&s.0, &s.1, &s.2)).collect();
        keys.dedup();
        keys.len()
    };
    assert_eq!(distinct(&got), got.len(), "a sample is stored twice");
    assert_eq!(distinct(&want), want.len(), "a sample is stored twice");
    let heart = want.iter().filter(|s| s.1 == "heart_rate").count() as i64;
    assert_eq!(heart, days * MINUTES, "the clean run stored every minute");
    assert_eq!(got.len(), want.len());
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "samples differ first at {i}: crashed {:?} vs clean {:?}",
            got[i], want[i]
        );
    }
    let events = |v: Vec<Value>| {
        let mut v: Vec<String> = v.into_iter().map(|e| without_id(e).to_string()).collect();
        v.sort();
        v
    };
    let (got_events, want_events) = tokio::join!(
        a.all(format!("/v1/users/{user}/events")),
        c.all(format!("/v1/users/{clean_user}/events"))
    );
    let (got_events, want_events) = (events(got_events), events(want_events));
    assert_eq!(
        want_events.len() as i64,
        days * 3,
        "a sleep and two workouts a day"
    );
    assert_eq!(got_events, want_events);
    drop(a);
    drop(c);

    // The same cursors, counters that add up, and nothing left running.
    let crashed = crashing.stored(&user, &conn).await;
    let reference = clean.stored(&clean_user, &clean_conn).await;
    assert_eq!(crashed.counts, reference.counts);
    assert_cursors_at_end_of(&crashed, "crashed run");
    assert_cursors_at_end_of(&reference, "clean run");
    crashed.assert_counters_add_up("at the end");
    reference.assert_counters_add_up("clean run");
    assert_eq!(
        crashed
            .jobs
            .iter()
            .map(|j| (j.status, j.error.clone()))
            .collect::<Vec<_>>(),
        vec![
            (JobStatus::Succeeded, None),
            (
                JobStatus::Failed,
                Some("interrupted by a restart".to_string())
            ),
            (
                JobStatus::Failed,
                Some("interrupted by a restart".to_string())
            ),
        ]
    );
    assert_eq!(reference.jobs.len(), 1);
    eprintln!(
        "crash safety ({backend:?}): {} samples, {} events over {days} days; {fetched} provider \
         requests with two kills vs {clean_fetched} without; resumed {:.2} s and {:.2} s after \
         the kills; both runs synced in {:.1} s, compared in {:.1} s",
        got.len(),
        got_events.len(),
        resume1.as_secs_f64(),
        resume2.as_secs_f64(),
        synced.as_secs_f64(),
        (began.elapsed() - synced).as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    killed_twice_resumes_and_matches_a_clean_run(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    killed_twice_resumes_and_matches_a_clean_run(Backend::Postgres).await;
}
