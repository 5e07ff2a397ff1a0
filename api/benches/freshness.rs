//! Freshness end to end: the real server (`Application`, embedded SQLite by default) holding
//! `BENCH_USERS` users × 15 metrics × `BENCH_DAYS` days of generated daily data, then steady
//! ingest over HTTP. Each write corrects three samples of a random user's latest date
//! (`POST /v1/users/{id}/health`), and its latency to readable is the time from the POST's
//! response (the write is committed and has its epoch) to the response of
//! `GET /v1/users/{id}/analytics/baselines?min_epoch=<epoch>`, which answers once the analytics
//! tables hold that epoch — pipeline, view, materializer and the read included.
//!
//! `cargo bench -p vitasync-api --bench freshness`. Knobs (defaults in brackets):
//! `BENCH_USERS` [1000], `BENCH_DAYS` [365], `BENCH_WRITES` measured writes [1000],
//! `BENCH_WARMUP` writes before them, not measured [200: the first ones after the load pay for
//! SQLite checkpointing the load's write-ahead log], `BENCH_RATE` writes per second, spread
//! evenly [50], `BENCH_BACKEND` sqlite|postgresql [sqlite] (PostgreSQL needs
//! `TEST_DATABASE_URL`, e.g. from `scripts/bench.sh --bench freshness`); `BENCH_TRACE` prints
//! every write slower than 50 ms; `VITASYNC_DATABASE_MAX_CONNECTIONS` reaches the server.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone as _, Utc};
use serde_json::{Value, json};
use vitasync_api::startup::Application;
use vitasync_engine::catalogue;
use vitasync_engine::config::Config;
use vitasync_engine::domain::{NewSample, NewUser};
use vitasync_engine::services::{ingest, workspaces};
use vitasync_engine::store;
use vitasync_testkit::Backend;
use vitasync_testkit::generated::{METRICS, mix, value};

mod common;

/// The last generated date (2025-11-27, days since 1970-01-01).
const LAST_DAY: i32 = 20_419;
/// The metrics each write corrects (indexes into `METRICS`).
const CORRECTED: [usize; 3] = [0, 5, 6];

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|s| s.parse().unwrap_or_else(|_| panic!("{name}: {s}")))
        .unwrap_or(default)
}

fn date(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Days::new(day as u64)
}

fn noon(day: i32) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&date(day).and_hms_opt(12, 0, 0).unwrap())
}

fn rss_gib() -> f64 {
    vitasync_testkit::process::memory().0 as f64 / (1u64 << 30) as f64
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Writes every user's history through the store's write path (the API's, without HTTP);
/// returns the users' ids.
async fn load(config: &Config, users: usize, days: i32) -> (Vec<String>, String) {
    let store = store::open(config).await.expect("store");
    store.migrate().await.expect("migrate");
    let (ws, key) = workspaces::create_with_admin_key(store.as_ref(), "bench", None)
        .await
        .expect("workspace");
    let units: Vec<&'static str> = METRICS
        .iter()
        .map(|m| catalogue::metric(m).expect("catalogue metric").unit)
        .collect();
    let mut ids = Vec::with_capacity(users);
    for u in 0..users {
        let new = NewUser {
            external_id: format!("bench-{u}"),
            email: None,
            display_name: None,
            timezone: None,
            metadata: None,
        };
        let user = store.create_user(ws.id, &new).await.expect("user").0;
        let mut samples = Vec::with_capacity(days as usize * METRICS.len());
        for day in LAST_DAY - days + 1..=LAST_DAY {
            for (m, metric) in METRICS.iter().enumerate() {
                samples.push(NewSample {
                    provider: "api".into(),
                    metric,
                    value: value(u as u64, m, day),
                    unit: units[m],
                    recorded_at: noon(day),
                    local_date: date(day),
                    utc_offset_minutes: 0,
                    source: None,
                    data: None,
                });
            }
        }
        ingest::write(store.as_ref(), &user, samples)
            .await
            .expect("write");
        ids.push(user.id.to_string());
    }
    (ids, key.secret)
}

/// The body of a successful response; panics with the status and body otherwise.
async fn ok_json(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.expect("json");
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// One write and its read-back: (POST ms, commit → readable ms).
async fn write_and_read(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    user: &str,
    body: Value,
) -> (f64, f64) {
    let sent = Instant::now();
    let res = client
        .post(format!("{base}/v1/users/{user}/health"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("post");
    let written = ok_json(res).await;
    let committed = Instant::now();
    let epoch = written["epoch"].as_u64().expect("epoch");
    let res = client
        .get(format!(
            "{base}/v1/users/{user}/analytics/baselines?metric=steps&min_epoch={epoch}"
        ))
        .bearer_auth(key)
        .send()
        .await
        .expect("get");
    let read = ok_json(res).await;
    assert!(read["epoch"].as_u64().expect("epoch") >= epoch, "{read}");
    let readable = Instant::now();
    (
        (committed - sent).as_secs_f64() * 1e3,
        (readable - committed).as_secs_f64() * 1e3,
    )
}

/// Steady ingest at `rate` writes per second; returns each write's (POST ms, readable ms) and
/// the achieved rate.
async fn ingest(
    base: String,
    key: String,
    users: Vec<String>,
    (warmup, writes): (usize, usize),
    rate: usize,
) -> (Vec<(f64, f64)>, f64) {
    let client = reqwest::Client::new();
    let every = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut tick = tokio::time::interval(every);
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = Instant::now();
    for i in 0..warmup + writes {
        tick.tick().await;
        if i == warmup {
            started = Instant::now();
        }
        let u = (mix(i as u64 ^ 0xFEED) % users.len() as u64) as usize;
        let samples: Vec<Value> = CORRECTED
            .iter()
            .map(|m| {
                let v = value(u as u64, *m, LAST_DAY) * (1.0 + 0.01 * ((i % 7) as f64 + 1.0));
                json!({"metric": METRICS[*m], "value": (v * 10.0).round() / 10.0,
                       "recorded_at": noon(LAST_DAY).to_rfc3339()})
            })
            .collect();
        let (client, base, key, user) =
            (client.clone(), base.clone(), key.clone(), users[u].clone());
        tasks.spawn(async move {
            let r =
                write_and_read(&client, &base, &key, &user, json!({ "samples": samples })).await;
            if std::env::var("BENCH_TRACE").is_ok() && (r.0 > 50.0 || r.1 > 50.0) {
                eprintln!("slow write {i}: post {:.1} ms, readable {:.1} ms", r.0, r.1);
            }
            (i >= warmup).then_some(r)
        });
    }
    let mut out = Vec::with_capacity(writes);
    while let Some(r) = tasks.join_next().await {
        out.extend(r.expect("write task"));
    }
    let achieved = writes as f64 / started.elapsed().as_secs_f64();
    (out, achieved)
}

fn main() {
    let users = env_num("BENCH_USERS", 1000);
    let days = env_num("BENCH_DAYS", 365) as i32;
    let writes = env_num("BENCH_WRITES", 1000);
    let warmup = env_num("BENCH_WARMUP", 200);
    let rate = env_num("BENCH_RATE", 50);
    let backend = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("postgresql") | Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    actix_web::rt::System::new().block_on(async move {
        let db = vitasync_testkit::fresh(backend).await;
        // VITASYNC_DATABASE_MAX_CONNECTIONS reaches the server, to compare pool sizes.
        let pool: Vec<(&str, String)> = std::env::var("VITASYNC_DATABASE_MAX_CONNECTIONS")
            .map(|v| vec![("VITASYNC_DATABASE_MAX_CONNECTIONS", v)])
            .unwrap_or_default();
        let config = common::config(&db, &pool);
        // Warnings and errors of the server go to stderr (RUST_LOG overrides).
        if std::env::var("RUST_LOG").is_err() {
            // SAFETY: set before any other thread of this process reads the environment.
            unsafe { std::env::set_var("RUST_LOG", "warn") };
        }
        vitasync_api::telemetry::init(config.log_format);
        let t = Instant::now();
        let (ids, key) = load(&config, users, days).await;
        let load_s = t.elapsed().as_secs_f64();
        let samples = users * days as usize * METRICS.len();
        println!("{users} users × {days} days: {samples} samples stored in {load_s:.1} s");
        let rss_before = rss_gib();
        // The peak of the server's start (hydration and the first flush), not of the load.
        vitasync_testkit::process::reset_peak();

        let t = Instant::now();
        let app = Application::build(config).await.expect("app");
        let hydrate_s = t.elapsed().as_secs_f64();
        let rss_hydrated = rss_gib();
        let analytics = app.state().analytics.clone();
        let base = format!("http://127.0.0.1:{}", app.port());
        actix_web::rt::spawn(app.run_until_stopped());
        // The first flush writes every analytics row of the hydration (the tables start
        // empty here); ingest is measured after it.
        let everything = analytics.barrier();
        analytics
            .materialized()
            .wait_for(|e| *e >= everything)
            .await
            .expect("materializer");
        let tables_s = t.elapsed().as_secs_f64() - hydrate_s;
        let rss_ready = rss_gib();
        let peak_start = vitasync_testkit::process::memory().1 as f64 / (1u64 << 30) as f64;
        println!(
            "hydrated in {hydrate_s:.1} s ({rss_hydrated:.2} GiB resident), tables written in \
             {tables_s:.1} s more; {rss_ready:.2} GiB resident, {peak_start:.2} GiB at the peak \
             ({rss_before:.2} before the server started)"
        );

        // The client runs on its own thread and runtime, as a real client would.
        let client = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(ingest(base, key, ids, (warmup, writes), rate))
        });
        let (measured, achieved) =
            actix_web::rt::task::spawn_blocking(move || client.join().expect("client"))
                .await
                .expect("join");
        let mut post: Vec<f64> = measured.iter().map(|m| m.0).collect();
        let mut readable: Vec<f64> = measured.iter().map(|m| m.1).collect();
        post.sort_by(f64::total_cmp);
        readable.sort_by(f64::total_cmp);
        let (p50, p99, max) = (
            percentile(&readable, 0.5),
            percentile(&readable, 0.99),
            readable.last().copied().unwrap_or(f64::NAN),
        );
        println!("RESULT samples={samples}");
        println!("RESULT load_s={load_s:.1}");
        println!("RESULT hydration_s={hydrate_s:.1}");
        println!("RESULT tables_s={tables_s:.1}");
        println!("RESULT rss_hydrated_gib={rss_hydrated:.2}");
        println!("RESULT rss_ready_gib={rss_ready:.2}");
        println!("RESULT rss_peak_start_gib={peak_start:.2}");
        println!("RESULT rss_end_gib={:.2}", rss_gib());
        println!("RESULT writes_per_s={achieved:.1}");
        println!(
            "RESULT post_p50_ms={:.1} post_p99_ms={:.1}",
            percentile(&post, 0.5),
            percentile(&post, 0.99)
        );
        println!("RESULT readable_p50_ms={p50:.1} readable_p99_ms={p99:.1} readable_max_ms={max:.1}");
        println!(
            "| {} | {users} | {days} | {writes} | {achieved:.0} | {:.1} | {:.1} | {p50:.1} | {p99:.1} | {max:.1} | {hydrate_s:.0} | {tables_s:.0} | {rss_ready:.2} | {peak_start:.2} |",
            match backend {
                Backend::Sqlite => "SQLite",
                Backend::Postgres => "PostgreSQL",
            },
            percentile(&post, 0.5),
            percentile(&post, 0.99),
        );
    });
}
