//! Write-path throughput: the store's upsert path (`services::ingest::write`) and the HTTP ingest
//! endpoint, next to each database's own bulk load as the ceiling (PostgreSQL `COPY`, SQLite one
//! transaction of prepared plain inserts), into the same `samples` table with the same indexes.
//!
//! Run with `scripts/bench.sh` (starts a throwaway PostgreSQL) or with `TEST_DATABASE_URL` set:
//! `cargo bench --bench write_path`. `BENCH_SAMPLES` sets the samples per measurement.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::PgPoolCopyExt as _;
use vitasync_api::startup::Application;

use vitasync_engine::domain::{NewSample, NewUser, User, new_id};
use vitasync_engine::services::{ingest, workspaces};
use vitasync_engine::store::postgres::PgStore;
use vitasync_engine::store::sqlite::SqliteStore;
use vitasync_engine::store::{self, DynStore};
use vitasync_testkit::Backend;

mod common;

async fn new_user(store: &DynStore, ws: uuid::Uuid, name: &str) -> User {
    let u = NewUser {
        external_id: name.into(),
        email: None,
        display_name: None,
        timezone: None,
        metadata: None,
    };
    store.create_user(ws, &u).await.expect("user").0
}

/// Heart-rate samples one second apart: realistic intraday data, all new rows.
fn samples(n: usize, start: DateTime<Utc>) -> Vec<NewSample> {
    (0..n)
        .map(|i| {
            let at = start + chrono::Duration::seconds(i as i64);
            NewSample {
                provider: "api".into(),
                metric: "heart_rate",
                value: 55.0 + (i % 60) as f64,
                unit: "bpm",
                recorded_at: at,
                local_date: at.date_naive(),
                utc_offset_minutes: 0,
                source: Some("bench".into()),
                data: None,
            }
        })
        .collect()
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

struct Row {
    backend: &'static str,
    path: &'static str,
    batch: usize,
    per_sec: f64,
}

async fn bench_store(backend: Backend, name: &'static str, total: usize, rows: &mut Vec<Row>) {
    for batch in [1_000usize, 10_000] {
        // Ceiling: the database's own bulk load into an identical, freshly migrated table.
        let db = vitasync_testkit::fresh(backend).await;
        let store = store::open(&common::config(&db, &[])).await.expect("open");
        store.migrate().await.expect("migrate");
        let (ws, _) = workspaces::create_with_admin_key(store.as_ref(), "bench", None)
            .await
            .expect("ws");
        let user = new_user(&store, ws.id, "ceiling").await;
        let data = samples(total, "2024-01-01T00:00:00Z".parse().unwrap());
        match backend {
            Backend::Sqlite => {
                let file = db.dir.path().join("test.db");
                match sqlite_cli_import(&file, user.id, &data, batch) {
                    Some(d) => push(
                        rows,
                        Row {
                            backend: name,
                            path: "bulk load (ceiling)",
                            batch,
                            per_sec: rate(total, d),
                        },
                    ),
                    None => eprintln!("sqlite3 CLI not found: no SQLite ceiling"),
                }
                let user = new_user(&store, ws.id, "sqlx-prepared").await;
                let t = Instant::now();
                sqlx_prepared_inserts(&db.url, user.id, &data, batch).await;
                push(
                    rows,
                    Row {
                        backend: name,
                        path: "sqlx prepared inserts, one transaction",
                        batch,
                        per_sec: rate(total, t.elapsed()),
                    },
                );
            }
            Backend::Postgres => {
                settle(backend, &db.url).await;
                let t = Instant::now();
                pg_ceiling(&db.url, user.id, &data, batch).await;
                push(
                    rows,
                    Row {
                        backend: name,
                        path: "bulk load (ceiling)",
                        batch,
                        per_sec: rate(total, t.elapsed()),
                    },
                );
            }
        }

        // The store's write path: upsert with change detection, one transaction per batch.
        let user = new_user(&store, ws.id, "store").await;
        settle(backend, &db.url).await;
        let t = Instant::now();
        for chunk in data.chunks(batch) {
            let out = ingest::write(store.as_ref(), &user, chunk.to_vec())
                .await
                .expect("write");
            assert_eq!(out.inserted as usize, chunk.len());
        }
        push(
            rows,
            Row {
                backend: name,
                path: "store write path",
                batch,
                per_sec: rate(total, t.elapsed()),
            },
        );

        // The same again: every sample unchanged (the cost of a re-sync).
        settle(backend, &db.url).await;
        let t = Instant::now();
        for chunk in data.chunks(batch) {
            let out = ingest::write(store.as_ref(), &user, chunk.to_vec())
                .await
                .expect("write");
            assert_eq!(out.unchanged as usize, chunk.len());
        }
        push(
            rows,
            Row {
                backend: name,
                path: "store write path, all unchanged",
                batch,
                per_sec: rate(total, t.elapsed()),
            },
        );
    }
}

/// Starts each PostgreSQL measurement from a fresh checkpoint, so one measurement does not pay
/// for flushing what the previous ones wrote (with fsync on, that stalls for seconds).
async fn settle(backend: Backend, url: &str) {
    if backend == Backend::Postgres {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query("CHECKPOINT")
            .execute(&mut c)
            .await
            .expect("checkpoint");
    }
}

fn push(rows: &mut Vec<Row>, row: Row) {
    eprintln!(
        "{} | {} | {} | {:.0}/s",
        row.backend, row.path, row.batch, row.per_sec
    );
    rows.push(row);
}

/// SQLite's own bulk load: the `sqlite3` shell's `.import`, which runs each file as one
/// transaction through one prepared INSERT, at C speed. Returns None without the shell.
fn sqlite_cli_import(
    db: &std::path::Path,
    user: uuid::Uuid,
    data: &[NewSample],
    batch: usize,
) -> Option<Duration> {
    let dir = tempfile::tempdir().ok()?;
    let now = Utc::now().timestamp_micros();
    let mut script = String::from(".mode csv\nPRAGMA synchronous=NORMAL;\n");
    for (i, chunk) in data.chunks(batch).enumerate() {
        let mut csv = String::with_capacity(chunk.len() * 120);
        for x in chunk {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{},{},,{now},{now}",
                new_id().simple(),
                user.simple(),
                x.provider,
                x.metric,
                x.value,
                x.unit,
                x.recorded_at.timestamp_micros(),
                x.local_date,
                x.utc_offset_minutes,
                x.source.as_deref().unwrap_or(""),
            );
        }
        let path = dir.path().join(format!("{i}.csv"));
        std::fs::write(&path, csv).ok()?;
        let _ = writeln!(script, ".import {} samples", path.display());
    }
    let t = Instant::now();
    let mut child = std::process::Command::new("sqlite3")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write as _;
    child.stdin.take()?.write_all(script.as_bytes()).ok()?;
    let status = child.wait().ok()?;
    assert!(status.success(), "sqlite3 .import failed");
    Some(t.elapsed())
}

async fn sqlx_prepared_inserts(url: &str, user: uuid::Uuid, data: &[NewSample], batch: usize) {
    let s = SqliteStore::connect(url, 1).await.expect("sqlite");
    let now = Utc::now().timestamp_micros();
    for chunk in data.chunks(batch) {
        let mut tx = s.pool().begin().await.expect("tx");
        for x in chunk {
            sqlx::query(
                "INSERT INTO samples (id, user_id, provider, metric, value, unit, recorded_at, local_date,
                                      utc_offset_minutes, source, data, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(new_id())
            .bind(user)
            .bind(&x.provider)
            .bind(x.metric)
            .bind(x.value)
            .bind(x.unit)
            .bind(x.recorded_at.timestamp_micros())
            .bind(x.local_date.to_string())
            .bind(x.utc_offset_minutes)
            .bind(&x.source)
            .bind(None::<String>)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("insert");
        }
        tx.commit().await.expect("commit");
    }
}

async fn pg_ceiling(url: &str, user: uuid::Uuid, data: &[NewSample], batch: usize) {
    let s = PgStore::connect(url, 1).await.expect("pg");
    for chunk in data.chunks(batch) {
        let mut text = String::with_capacity(chunk.len() * 160);
        for x in chunk {
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t\\N\tnow\tnow",
                new_id(),
                user,
                x.provider,
                x.metric,
                x.value,
                x.unit,
                x.recorded_at.to_rfc3339(),
                x.local_date,
                x.utc_offset_minutes,
                x.source.as_deref().unwrap_or("\\N"),
            );
        }
        let mut copy = s
            .pool()
            .copy_in_raw(
                "COPY samples (id, user_id, provider, metric, value, unit, recorded_at, local_date,
                               utc_offset_minutes, source, data, created_at, updated_at) FROM STDIN",
            )
            .await
            .expect("copy");
        copy.send(text.as_bytes()).await.expect("send");
        copy.finish().await.expect("finish");
    }
}

async fn bench_http(backend: Backend, name: &'static str, total: usize, rows: &mut Vec<Row>) {
    let db = vitasync_testkit::fresh(backend).await;
    let app = Application::build(common::config(&db, &[]))
        .await
        .expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.state().store.clone();
    actix_web::rt::spawn(app.run_until_stopped());
    let (_, key) = workspaces::create_with_admin_key(store.as_ref(), "bench", None)
        .await
        .expect("ws");
    // The client runs on its own thread and runtime, as a real client would: this thread keeps
    // serving the runtime the store's connection pool was created on.
    let db_url = db.url.clone();
    let client_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(http_client(base, key.secret, total, backend, db_url))
    });
    let measured =
        actix_web::rt::task::spawn_blocking(move || client_thread.join().expect("client thread"))
            .await
            .expect("join");
    for (batch, per_sec) in measured {
        push(
            rows,
            Row {
                backend: name,
                path: "POST /v1/users/{id}/health",
                batch,
                per_sec,
            },
        );
    }
}

/// Sends `total` samples in requests of 1,000 and then 10,000; returns (batch, samples/s).
async fn http_client(
    base: String,
    key: String,
    total: usize,
    backend: Backend,
    db_url: String,
) -> Vec<(usize, f64)> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for batch in [1_000usize, 10_000] {
        let user: serde_json::Value = client
            .post(format!("{base}/v1/users"))
            .bearer_auth(&key)
            .json(&json!({"external_id": format!("http-{batch}")}))
            .send()
            .await
            .expect("user")
            .json()
            .await
            .expect("json");
        let url = format!("{base}/v1/users/{}/health", user["id"].as_str().unwrap());
        let start: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let bodies: Vec<Vec<u8>> = (0..total / batch)
            .map(|b| {
                let s: Vec<_> = (0..batch)
                    .map(|i| {
                        let at = start + chrono::Duration::seconds((b * batch + i) as i64);
                        json!({"metric": "heart_rate", "value": 55 + (i % 60), "recorded_at": at.to_rfc3339(), "source": "bench"})
                    })
                    .collect();
                serde_json::to_vec(&json!({"samples": s})).unwrap()
            })
            .collect();
        settle(backend, &db_url).await;
        let t = Instant::now();
        for body in bodies {
            let res = client
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            assert!(
                res.status().is_success(),
                "{}",
                res.text().await.unwrap_or_default()
            );
        }
        out.push((batch, rate(total, t.elapsed())));
    }
    out
}

fn main() {
    let total: usize = std::env::var("BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    actix_web::rt::System::new().block_on(async move {
        let mut rows = Vec::new();
        // BENCH_BACKENDS=sqlite or =postgresql runs one database only.
        let only = std::env::var("BENCH_BACKENDS")
            .unwrap_or_default()
            .to_lowercase();
        for (backend, name) in [
            (Backend::Sqlite, "SQLite"),
            (Backend::Postgres, "PostgreSQL"),
        ] {
            if !only.is_empty() && only != name.to_lowercase() {
                continue;
            }
            bench_store(backend, name, total, &mut rows).await;
            bench_http(backend, name, total, &mut rows).await;
        }
        println!("samples per measurement: {total}");
        println!("| database | path | batch | samples/s | vs ceiling |");
        println!("| --- | --- | ---: | ---: | ---: |");
        for r in &rows {
            let ceiling = rows
                .iter()
                .find(|c| {
                    c.backend == r.backend && c.batch == r.batch && c.path.starts_with("bulk")
                })
                .map(|c| c.per_sec)
                .unwrap_or(f64::NAN);
            println!(
                "| {} | {} | {} | {:.0} | {:.0} % |",
                r.backend,
                r.path,
                r.batch,
                r.per_sec,
                100.0 * r.per_sec / ceiling
            );
        }
    });
}
