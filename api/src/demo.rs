//! `vitasync demo`: the whole product on the embedded default in one command. It starts the
//! server (with its sync actors and analytics), creates a demo workspace with three users
//! connected to the demo device, shows the backfill's progress, prints what landed, what the
//! analytics found and how to query it, and keeps serving — new demo data keeps arriving on the
//! incremental schedule — until Ctrl-C.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vitasync_engine::analytics::AnalyticsTable;
use vitasync_engine::config::Config;
use vitasync_engine::cursor::Limit;
use vitasync_engine::domain::{EventQuery, EventType, JobStatus, NewUser, SyncJobId, User};
use vitasync_engine::services::{connections, keys, workspaces};

use crate::startup::Application;

/// The demo cast: external id, display name, home time zone.
const PEOPLE: &[(&str, &str, &str)] = &[
    ("demo-ada", "Ada (Berlin)", "Europe/Berlin"),
    ("demo-kofi", "Kofi (New York)", "America/New_York"),
    ("demo-mei", "Mei (Tokyo)", "Asia/Tokyo"),
];

pub async fn run(config: Config) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let bootstrap = config.bootstrap_api_key.clone();
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let store = state.store.clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = actix_web::rt::spawn(app.run_until_stopped());

    // The bootstrap key (when set) already is an admin key of `default`; otherwise a fresh
    // key of the `demo` workspace is issued on every run (secrets are not stored, so an
    // earlier run's key cannot be shown again).
    let (ws, key) = match bootstrap {
        Some(secret) => {
            let k = keys::ensure_bootstrap_key(store.as_ref(), &secret).await?;
            (k.workspace_id, secret)
        }
        None => {
            let ws = workspaces::ensure(store.as_ref(), "demo", "Demo").await?;
            let issued = keys::create(
                store.as_ref(),
                ws.id,
                "demo",
                vec![
                    vitasync_engine::domain::Scope::Read,
                    vitasync_engine::domain::Scope::Write,
                    vitasync_engine::domain::Scope::Admin,
                ],
                None,
            )
            .await?;
            (ws.id, issued.secret)
        }
    };

    let mut users: Vec<User> = Vec::new();
    let mut jobs: Vec<SyncJobId> = Vec::new();
    for (external_id, name, tz) in PEOPLE {
        let (user, _) = vitasync_engine::services::users::create(
            store.as_ref(),
            ws,
            NewUser {
                external_id: external_id.to_string(),
                email: None,
                display_name: Some(name.to_string()),
                timezone: Some(tz.to_string()),
                metadata: None,
            },
        )
        .await
        .with_context(|| format!("creating demo user {external_id}"))?;
        let done = connections::connect_direct(&state.sync, ws, user.id, "demo", None).await?;
        jobs.push(done.job.id);
        state.actors.enqueue(done.job);
        users.push(user);
    }

    eprintln!(
        "vitasync demo: backfilling 90 days for {} users…",
        users.len()
    );
    let started = Instant::now();
    loop {
        let mut finished = 0;
        let mut failed = Vec::new();
        let mut written = 0i64;
        for id in &jobs {
            if let Some(j) = store.sync_job(ws, *id).await? {
                written += j.inserted + j.updated + j.unchanged;
                match j.status {
                    JobStatus::Succeeded => finished += 1,
                    JobStatus::Failed => {
                        finished += 1;
                        failed.push(j.error.unwrap_or_default());
                    }
                    _ => {}
                }
            }
        }
        eprint!(
            "\r  {finished}/{} connections done, {written} samples synced ({:.0} s)   ",
            jobs.len(),
            started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
        if finished == jobs.len() {
            eprintln!();
            for e in failed {
                eprintln!("  a backfill failed: {e}");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut samples = 0i64;
    let mut events = [0usize; 2];
    for u in &users {
        samples += store
            .metric_summaries(u)
            .await?
            .iter()
            .map(|m| m.count)
            .sum::<i64>();
        for (i, t) in [EventType::Workout, EventType::Sleep]
            .into_iter()
            .enumerate()
        {
            let q = EventQuery {
                event_type: Some(t),
                ..Default::default()
            };
            let mut after = None;
            loop {
                let page = store.list_events(u, &q, Limit(Limit::MAX), after).await?;
                events[i] += page.items.len();
                match page.next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
        }
    }

    // What the analytics found, once the tables include the backfills.
    let barrier = state.analytics.barrier();
    let mut materialized = state.analytics.materialized();
    let _ = tokio::time::timeout(
        Duration::from_secs(120),
        materialized.wait_for(|e| *e >= barrier),
    )
    .await;
    let mut findings = Vec::new();
    for u in &users {
        let anomalies = store.analytics_rows(u, AnalyticsTable::Anomalies).await?;
        let illness = anomalies
            .iter()
            .filter(|a| a["method"] == "rhr_elevation")
            .filter_map(|a| a["date"].as_str())
            .min()
            .map(str::to_string);
        let correlations = store
            .analytics_rows(u, AnalyticsTable::Correlations)
            .await?
            .len();
        findings.push((
            u.external_id.clone(),
            anomalies.len(),
            illness,
            correlations,
        ));
    }

    let first = &users[0];
    println!();
    println!("VitaSync demo is running on {base} (listening on {listen})");
    println!(
        "  users:    {} ({})",
        users.len(),
        PEOPLE.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
    );
    println!("  samples:  {samples}");
    println!(
        "  events:   {} workouts, {} sleep sessions",
        events[0], events[1]
    );
    for (who, anomalies, illness, correlations) in &findings {
        println!(
            "  {who}: {anomalies} anomalies{}, {correlations} significant correlations",
            illness
                .as_deref()
                .map(|d| format!(" (resting heart rate elevated from {d})"))
                .unwrap_or_default()
        );
    }
    println!("  API key:  {key}");
    println!("  MCP:      {base}/mcp (streamable HTTP, header Authorization: Bearer <API key>)");
    println!();
    println!("Try:");
    println!(
        "  curl -s -H 'Authorization: Bearer {key}' '{base}/v1/users/{}/health/daily?metric=resting_heart_rate'",
        first.id
    );
    println!(
        "  curl -s -H 'Authorization: Bearer {key}' '{base}/v1/users/{}/analytics/context'",
        first.id
    );
    println!("  open {base}/docs for the API reference");
    println!(
        "  connect an MCP client to {base}/mcp, or run `VITASYNC_API_KEY={key} vitasync mcp` (stdio)"
    );
    println!();
    println!("New demo data arrives on the sync schedule. Press Ctrl-C to stop.");
    let _ = std::io::stdout().flush();

    server.await.context("server task")??;
    Ok(())
}
