//! The analytics inside the running server: every writer (API pushes, corrections, syncs,
//! deletions) feeds the dataflow, writes return their epoch, and once the view reflects that
//! epoch it equals the batch oracle computed from what the store holds. A restart hydrates the
//! same state from the store.

use std::time::Duration;

use serde_json::json;
use vitasync_dataflow::model::SampleRow;
use vitasync_dataflow::sink::deltas;
use vitasync_dataflow::{materialize, oracle};
use vitasync_engine::analytics::AnalyticsTable;
use vitasync_engine::bus::{AnalyticsChange, BusEvent};
use vitasync_engine::catalogue::ProviderPriority;

use crate::common::{TestApp, start};
use crate::on_both_backends;

/// Every stored sample as the pipeline's rows.
async fn stored_rows(app: &TestApp) -> Vec<SampleRow> {
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .store
            .scan_samples(None, None, after, 5_000)
            .await
            .unwrap();
        let Some((last, _)) = page.last() else {
            return rows;
        };
        after = Some(*last);
        let changes: Vec<_> = page.into_iter().map(|(_, c)| c).collect();
        rows.extend(deltas(&changes).into_iter().map(|d| d.row));
    }
}

/// What the store holds, computed from scratch (each user's workspace priority applied).
async fn recomputed(app: &TestApp) -> oracle::Analytics {
    let mut priorities = std::collections::BTreeMap::new();
    let mut workouts = Vec::new();
    for (user_id, workspace, priority) in app.store.user_priorities().await.unwrap() {
        priorities.insert(user_id.as_u128(), ProviderPriority(priority));
        let user = app.store.user(workspace, user_id).await.unwrap().unwrap();
        let events = vitasync_engine::analytics::workout_events(app.store.as_ref(), &user)
            .await
            .unwrap();
        workouts.extend(
            events
                .iter()
                .filter_map(vitasync_dataflow::sink::workout_row)
                .map(|w| (user_id.as_u128(), w)),
        );
    }
    let mut out = oracle::compute_with(&stored_rows(app).await, &priorities);
    oracle::add_workouts(&mut out, &workouts);
    out
}

/// What each analytics table must hold for `user`, from the oracle, as sorted JSON texts.
/// JSON text with object keys sorted: rows compare equal whatever key order a backend (JSONB
/// sorts keys) or serde_json's map (insertion order, which a dependency turns on) keeps.
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        canonical(&m[*k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

fn expected_tables(a: &oracle::Analytics, user: u128) -> Vec<(AnalyticsTable, Vec<String>)> {
    let mut baselines = Vec::new();
    for ((u, m, w), b) in &a.baselines {
        if *u == user {
            baselines.push(materialize::baseline_body(*m, *w, b));
        }
    }
    let mut anomalies = Vec::new();
    for ((u, m, d), found) in &a.anomalies {
        if *u == user {
            for x in found {
                let id = materialize::anomaly_id(*u, *m, *d, x.method);
                let mut body = materialize::anomaly_body(id, *m, *d, x);
                body["status"] = json!("open");
                anomalies.push(body);
            }
        }
    }
    let mut correlations = Vec::new();
    for ((u, x, y, lag), c) in &a.correlations {
        if *u == user {
            correlations.push(materialize::correlation_body(*x, *y, *lag, c));
        }
    }
    let mut scores = Vec::new();
    for ((u, d), sc) in &a.scores {
        if *u == user {
            scores.push(materialize::score_body(*d, sc));
        }
    }
    let mut records = Vec::new();
    for ((u, m), r) in &a.records {
        if *u == user {
            records.push(materialize::record_body(*m, r));
        }
    }
    for ((u, activity, kind), r) in &a.workout_records {
        if *u == user {
            records.push(materialize::workout_record_body(activity, *kind, r));
        }
    }
    let texts = |v: Vec<serde_json::Value>| {
        let mut t: Vec<String> = v.iter().map(canonical).collect();
        t.sort();
        t
    };
    vec![
        (AnalyticsTable::Baselines, texts(baselines)),
        (AnalyticsTable::Anomalies, texts(anomalies)),
        (AnalyticsTable::Correlations, texts(correlations)),
        (AnalyticsTable::Scores, texts(scores)),
        (AnalyticsTable::Records, texts(records)),
    ]
}

/// Waits (at most 30 s) until the analytics tables hold `epoch`.
async fn tables_reach(app: &TestApp, epoch: u64) {
    let mut materialized = app.analytics.materialized();
    tokio::time::timeout(
        Duration::from_secs(30),
        materialized.wait_for(|e| *e >= epoch),
    )
    .await
    .unwrap_or_else(|_| panic!("the tables reach epoch {epoch}"))
    .unwrap();
}

/// Waits until the tables reflect everything handed over so far, then compares every table of
/// `user` with the oracle over the store's contents.
async fn assert_tables_match_store(app: &TestApp, u: &vitasync_engine::domain::User) {
    tables_reach(app, app.analytics.barrier()).await;
    let expected = recomputed(app).await;
    for (table, want) in expected_tables(&expected, u.id.as_u128()) {
        let mut got: Vec<String> = app
            .store
            .analytics_rows(u, table)
            .await
            .unwrap()
            .iter()
            .map(canonical)
            .collect();
        got.sort();
        assert_eq!(got, want, "{table:?}");
    }
}

/// Waits until the view includes everything handed over so far, then compares it with the
/// oracle over the store's contents.
async fn assert_view_matches_store(app: &TestApp) {
    let barrier = app.analytics.barrier();
    // Waiting must not block the runtime: store connections made on it serve the task that
    // reads a user's rows for their archive.
    assert!(
        app.analytics.viewed(barrier, Duration::from_secs(30)).await,
        "the view reaches epoch {barrier}"
    );
    let (_, got) = app.analytics.view().snapshot();
    let mut expected = recomputed(app).await;
    // Daily values are the pipeline's intermediate, not kept by the view (the dataflow's
    // property test compares them); everything derived from them is compared here.
    expected.daily.clear();
    assert_eq!(got, expected);
}

fn rhr(day: u32, bpm: f64) -> serde_json::Value {
    json!({"metric": "resting_heart_rate", "value": bpm,
           "recorded_at": format!("2024-03-{day:02}T06:00:00Z")})
}

async fn load_user(app: &TestApp, id: &str) -> vitasync_engine::domain::User {
    app.store
        .user(app.workspace_id.parse().unwrap(), id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn writes_reach_the_analytics(app: TestApp) {
    let user = app.create_user("a-1", Some("Europe/Berlin")).await;
    let u1 = load_user(&app, &user).await;
    let calm: Vec<_> = (1..=20).map(|d| rhr(d, 58.0 + f64::from(d % 3))).collect();
    let first = app.ingest(&user, json!(calm)).await;
    let e1 = first["epoch"].as_u64().unwrap();
    assert!(e1 > 0, "{first}");
    // Two elevated nights: an illness signal.
    let second = app
        .ingest(&user, json!([rhr(21, 66.0), rhr(22, 67.0)]))
        .await;
    let e2 = second["epoch"].as_u64().unwrap();
    assert!(e2 > e1);
    assert!(app.analytics.viewed(e2, Duration::from_secs(30)).await);
    let (epoch, view) = app.analytics.view().snapshot();
    assert!(epoch >= e2);
    let methods: Vec<_> = view
        .anomalies
        .values()
        .flatten()
        .map(|a| a.method.as_str())
        .collect();
    assert!(methods.contains(&"rhr_elevation"), "{methods:?}");
    assert_view_matches_store(&app).await;
    assert_tables_match_store(&app, &u1).await;

    // An unchanged re-send is not a change: no new epoch.
    let again = app.ingest(&user, json!([rhr(22, 67.0)])).await;
    assert_eq!(again["epoch"], 0, "{again}");
    // A correction retracts the anomaly it caused.
    app.ingest(&user, json!([rhr(22, 59.0)])).await;
    assert_view_matches_store(&app).await;
    let (_, view) = app.analytics.view().snapshot();
    assert!(
        !view
            .anomalies
            .values()
            .flatten()
            .any(|a| a.method.as_str() == "rhr_elevation"),
        "the correction removed the sustained elevation"
    );
    assert_tables_match_store(&app, &u1).await;

    // Synced data (the demo device) and a deletion go through the same path.
    let other = app.create_user("a-2", None).await;
    let u2 = load_user(&app, &other).await;
    let (conn, job) = app.connect_demo(&other, 14).await;
    app.wait_job(&job, 60).await;
    assert_view_matches_store(&app).await;
    assert_tables_match_store(&app, &u2).await;
    let res = app
        .delete(&format!(
            "/v1/users/{other}/connections/{conn}?delete_data=true"
        ))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_view_matches_store(&app).await;
    assert_tables_match_store(&app, &u2).await;
    let res = app.delete(&format!("/v1/users/{user}")).await;
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    assert_view_matches_store(&app).await;
    let (_, view) = app.analytics.view().snapshot();
    assert!(
        view.baselines.is_empty() && view.scores.is_empty() && view.anomalies.is_empty(),
        "nothing left"
    );
}

async fn a_restart_hydrates_from_the_store(app: TestApp) {
    let user = app.create_user("h-1", None).await;
    let u = load_user(&app, &user).await;
    let (_, job) = app.connect_demo(&user, 30).await;
    app.wait_job(&job, 60).await;
    assert_view_matches_store(&app).await;
    let (_, before) = app.analytics.view().snapshot();
    let last_epoch = app.analytics.barrier();
    let (db, config) = app.stop().await;
    let app = start(db, config).await;
    // Epochs continue across the restart: an epoch read before it is already reached after it.
    assert!(app.analytics.barrier() > last_epoch);
    assert_view_matches_store(&app).await;
    let (_, after) = app.analytics.view().snapshot();
    assert_eq!(before, after, "hydration rebuilds the same analytics");
    assert_tables_match_store(&app, &u).await;
    assert!(!after.scores.is_empty() && !after.correlations.is_empty());
    assert!(
        !after.workout_records.is_empty(),
        "the demo's workouts set records"
    );
}

/// The analytics events the bus carried up to and including `epoch`: the materializer
/// announces an epoch's changes before it reports the epoch stored, so once the tables reach
/// it they are all on the bus (no quiet period to guess on a loaded machine).
async fn drain(
    app: &TestApp,
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<BusEvent>>,
    epoch: u64,
) -> Vec<(String, AnalyticsChange)> {
    tables_reach(app, epoch).await;
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let BusEvent::AnalyticsChanged {
            user_id, change, ..
        } = e.as_ref()
        {
            out.push((user_id.to_string(), change.clone()));
        }
    }
    out
}

async fn analytics_changes_reach_the_bus(app: TestApp) {
    let user = app.create_user("bus-1", None).await;
    let mut rx = app.sync.bus.subscribe();
    let calm: Vec<_> = (1..=20).map(|d| rhr(d, 58.0 + f64::from(d % 3))).collect();
    app.ingest(&user, json!(calm)).await;
    let w = app
        .ingest(&user, json!([rhr(21, 66.0), rhr(22, 67.0)]))
        .await;
    let e = w["epoch"].as_u64().unwrap();
    let events = drain(&app, &mut rx, e).await;
    assert!(events.iter().all(|(u, _)| *u == user));
    let detected: Vec<_> = events
        .iter()
        .filter_map(|(_, c)| match c {
            AnalyticsChange::AnomalyDetected { anomaly } => Some(anomaly),
            _ => None,
        })
        .collect();
    let elevation = detected
        .iter()
        .find(|a| a.method == "rhr_elevation")
        .expect("the sustained elevation was announced");
    assert_eq!(elevation.date.to_string(), "2024-03-22");
    assert_eq!(elevation.severity, "warning");
    // The event's id is the id the API serves (so a notification can link to it).
    let listed = app
        .get_json(&format!(
            "/v1/users/{user}/analytics/anomalies?method=rhr_elevation&min_epoch={e}"
        ))
        .await;
    assert_eq!(listed["data"][0]["id"], json!(elevation.id.to_string()));
    // Every day got scores; the first values of a metric break no record.
    assert!(
        events
            .iter()
            .any(|(_, c)| matches!(c, AnalyticsChange::ScoreUpdated { .. }))
    );
    assert!(
        !events
            .iter()
            .any(|(_, c)| matches!(c, AnalyticsChange::RecordBroken { .. }))
    );

    // A lower resting heart rate is a record; the correction retracts the elevation.
    let w = app
        .ingest(&user, json!([rhr(22, 59.0), rhr(23, 50.0)]))
        .await;
    let events = drain(&app, &mut rx, w["epoch"].as_u64().unwrap()).await;
    assert!(events.iter().any(|(_, c)| matches!(
        c,
        AnalyticsChange::AnomalyResolved { anomaly } if anomaly.id == elevation.id
    )));
    let broken: Vec<_> = events
        .iter()
        .filter_map(|(_, c)| match c {
            AnalyticsChange::RecordBroken {
                metric,
                body,
                previous,
            } => Some((
                metric.as_str(),
                body["value"].as_f64(),
                previous["value"].as_f64(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        broken,
        vec![("resting_heart_rate", Some(50.0), Some(58.0))],
        "{events:?}"
    );
}

async fn steps_by_day(app: &TestApp, user: &str) -> Vec<serde_json::Value> {
    let url = format!("/v1/users/{user}/health/daily?metric=steps");
    app.get_json(&url).await["data"].as_array().unwrap().clone()
}

/// A workspace's provider priority decides which device's value a day takes, in the daily
/// endpoint and in every analytic, from the next epoch on and across a restart.
async fn the_workspace_chooses_which_provider_wins(app: TestApp) {
    let user = app.create_user("prio-1", None).await;
    let (_, job) = app.connect_demo(&user, 20).await;
    app.wait_job(&job, 60).await;
    let by_demo = steps_by_day(&app, &user).await;
    assert!(by_demo.len() >= 15, "{by_demo:?}");
    // The same days pushed by hand, with values no device would report.
    let manual: Vec<_> = by_demo
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let date = d["date"].as_str().unwrap();
            json!({"metric": "steps", "value": 100 + i, "local_date": date,
                   "recorded_at": format!("{date}T12:00:00Z")})
        })
        .collect();
    app.ingest(&user, json!(manual)).await;
    assert!(
        steps_by_day(&app, &user)
            .await
            .iter()
            .all(|d| d["provider"] == "demo")
    );
    assert_view_matches_store(&app).await;

    let res = app
        .patch("/v1/workspace", json!({"provider_priority": ["api"]}))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let changed: serde_json::Value = res.json().await.unwrap();
    assert_eq!(changed["provider_priority"], json!(["api"]));
    let e = changed["epoch"].as_u64().unwrap();
    assert!(e > 0, "{changed}");
    let by_hand = steps_by_day(&app, &user).await;
    assert!(
        by_hand.iter().all(|d| d["provider"] == "api"),
        "{by_hand:?}"
    );
    let b = app
        .get_json(&format!(
            "/v1/users/{user}/analytics/baselines?metric=steps&window=28&min_epoch={e}"
        ))
        .await;
    let mean = by_hand
        .iter()
        .map(|d| d["value"].as_f64().unwrap())
        .sum::<f64>()
        / by_hand.len() as f64;
    assert!(
        (b["data"][0]["mean"].as_f64().unwrap() - mean).abs() < 1e-6,
        "{b}"
    );
    assert_view_matches_store(&app).await;

    // A restart keeps the order (hydration reads it from the store).
    let key = app.key.clone();
    let (db, config) = app.stop().await;
    let mut app = start(db, config).await;
    app.key = key;
    assert_view_matches_store(&app).await;
    assert!(
        steps_by_day(&app, &user)
            .await
            .iter()
            .all(|d| d["provider"] == "api")
    );
    // An empty list restores the default.
    let res = app
        .patch("/v1/workspace", json!({"provider_priority": []}))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert!(
        steps_by_day(&app, &user)
            .await
            .iter()
            .all(|d| d["provider"] == "demo")
    );
    assert_view_matches_store(&app).await;

    // Validation names the entry; only admins may change it; nothing changed by a refusal.
    for (body, field) in [
        (
            json!({"provider_priority": ["fitbit", "nope"]}),
            "provider_priority[1]",
        ),
        (
            json!({"provider_priority": ["api", "api"]}),
            "provider_priority[1]",
        ),
    ] {
        let err = crate::common::expect_error(
            app.patch("/v1/workspace", body).await,
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(err["field"], field);
    }
    let reader = app.key_with(&["read"]).await;
    let res = app
        .call(
            reqwest::Method::PATCH,
            "/v1/workspace",
            Some(&reader),
            Some(json!({"provider_priority": ["api"]})),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(
        app.get_json("/v1/workspace").await["provider_priority"],
        json!([])
    );
}

/// A day of resting heart rate, HRV and steps, `n` days after 2024-01-01, for the horizon
/// test: steps and resting heart rate move against each other.
fn long_day(n: i64, bpm: f64) -> Vec<serde_json::Value> {
    let at = (chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(n as u64))
        .and_hms_opt(6, 0, 0)
        .unwrap()
        .and_utc()
        .to_rfc3339();
    let wave = ((n * 37) % 11) as f64;
    vec![
        json!({"metric": "resting_heart_rate", "value": bpm + wave / 4.0, "recorded_at": at}),
        json!({"metric": "hrv_rmssd", "value": 60.0 - wave, "recorded_at": at}),
        json!({"metric": "steps", "value": 12_000.0 - 500.0 * wave, "recorded_at": at}),
    ]
}

/// The dates of the user's stored anomalies.
async fn anomaly_dates(app: &TestApp, u: &vitasync_engine::domain::User) -> Vec<String> {
    let rows = app
        .store
        .analytics_rows(u, AnalyticsTable::Anomalies)
        .await
        .unwrap();
    rows.iter()
        .filter_map(|r| r["date"].as_str().map(str::to_string))
        .collect()
}

async fn a_long_history_is_archived_behind_the_horizon(app: TestApp) {
    let user = app.create_user("long-1", None).await;
    let u = load_user(&app, &user).await;
    // 200 days; a fever on day 40 (long archived by the end) and one on day 190.
    let days: Vec<serde_json::Value> = (0..200)
        .flat_map(|n| long_day(n, if n == 40 || n == 190 { 90.0 } else { 58.0 }))
        .collect();
    for chunk in days.chunks(150) {
        app.ingest(&user, json!(chunk)).await;
    }
    assert_view_matches_store(&app).await;
    assert_tables_match_store(&app, &u).await;
    let first = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let held = app
        .analytics
        .held_from(u.id)
        .expect("the user has a horizon");
    let held_date = vitasync_dataflow::model::date_of(held);
    assert!(
        held_date > first + chrono::Days::new(60),
        "the pipeline holds only the recent dates, from {held_date}"
    );
    let dates = anomaly_dates(&app, &u).await;
    assert!(
        dates.contains(&"2024-02-10".into()) && dates.contains(&"2024-07-09".into()),
        "{dates:?}"
    );

    // A late correction of an archived date (the fever of day 40 was a bad reading) and a new
    // one on day 20: the user's archive is recomputed from the store.
    app.ingest(&user, json!(long_day(40, 58.0))).await;
    app.ingest(&user, json!(long_day(20, 95.0))).await;
    assert_view_matches_store(&app).await;
    assert_tables_match_store(&app, &u).await;
    let dates = anomaly_dates(&app, &u).await;
    assert!(
        dates.contains(&"2024-01-21".into()) && !dates.contains(&"2024-02-10".into()),
        "{dates:?}"
    );

    // A restart hydrates the same analytics, archive included.
    let (_, before) = app.analytics.view().snapshot();
    let (db, config) = app.stop().await;
    let app = start(db, config).await;
    assert_view_matches_store(&app).await;
    let (_, after) = app.analytics.view().snapshot();
    assert_eq!(before, after, "hydration rebuilds the same analytics");
    assert_tables_match_store(&app, &u).await;
}

on_both_backends!(
    a_long_history_is_archived_behind_the_horizon,
    writes_reach_the_analytics,
    the_workspace_chooses_which_provider_wins,
    a_restart_hydrates_from_the_store,
    analytics_changes_reach_the_bus
);

async fn the_api_serves_fresh_analytics(app: TestApp) {
    let user = app.create_user("api-1", None).await;
    let calm: Vec<_> = (1..=20).map(|d| rhr(d, 58.0 + f64::from(d % 3))).collect();
    app.ingest(&user, json!(calm)).await;
    let w = app
        .ingest(&user, json!([rhr(21, 66.0), rhr(22, 67.0)]))
        .await;
    let e = w["epoch"].as_u64().unwrap();
    let base = format!("/v1/users/{user}/analytics");

    // Read-your-writes: with min_epoch the rows include the write.
    let b = app
        .get_json(&format!(
            "{base}/baselines?metric=resting_heart_rate&window=28&min_epoch={e}"
        ))
        .await;
    assert!(b["epoch"].as_u64().unwrap() >= e, "{b}");
    let row = &b["data"][0];
    assert_eq!(row["metric"], "resting_heart_rate");
    assert_eq!(row["window_days"], 28);
    assert_eq!(row["n"], 22);
    assert_eq!(row["as_of_date"], "2024-03-22");
    for f in [
        "mean",
        "sd",
        "median",
        "p25",
        "p75",
        "min",
        "max",
        "slope_per_day",
        "change_7d_pct",
    ] {
        assert!(row[f].is_number(), "{f}: {row}");
    }

    let a = app
        .get_json(&format!(
            "{base}/anomalies?method=rhr_elevation&min_epoch={e}"
        ))
        .await;
    let anomaly = a["data"][0].clone();
    assert_eq!(anomaly["date"], "2024-03-22", "{a}");
    assert_eq!(anomaly["severity"], "warning");
    assert_eq!(anomaly["status"], "open");
    assert!(
        anomaly["title"]
            .as_str()
            .unwrap()
            .contains("Resting heart rate")
    );
    let id = anomaly["id"].as_str().unwrap().to_string();
    let res = app
        .post(&format!("{base}/anomalies/{id}/acknowledge"), json!({}))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let acked = app
        .get_json(&format!("{base}/anomalies?status=acknowledged"))
        .await;
    assert_eq!(acked["data"][0]["id"], id.as_str());
    let open = app
        .get_json(&format!(
            "{base}/anomalies?status=open&method=rhr_elevation"
        ))
        .await;
    assert!(open["data"].as_array().unwrap().is_empty());
    let res = app
        .post(&format!("{base}/anomalies/{id}/dismiss"), json!({}))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let missing = uuid::Uuid::now_v7();
    let res = app
        .post(&format!("{base}/anomalies/{missing}/dismiss"), json!({}))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND);

    // Paging: newest date first, pages of two follow each other without gaps or repeats, and
    // the filters apply before the page is cut.
    let all = app.get_json(&format!("{base}/anomalies?limit=1000")).await;
    assert_eq!(all["next_cursor"], serde_json::Value::Null);
    let all = all["data"].as_array().unwrap().clone();
    assert!(all.len() >= 3, "{all:?}");
    let dates: Vec<&str> = all.iter().map(|a| a["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/anomalies?limit=2&cursor={c}"),
            None => format!("{base}/anomalies?limit=2"),
        };
        let page = app.get_json(&url).await;
        let items = page["data"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let window = app
        .get_json(&format!(
            "{base}/anomalies?from=2024-03-21&to=2024-03-22&limit=1000"
        ))
        .await;
    let expected: Vec<_> = all
        .iter()
        .filter(|a| ["2024-03-21", "2024-03-22"].contains(&a["date"].as_str().unwrap()))
        .cloned()
        .collect();
    assert_eq!(window["data"].as_array().unwrap(), &expected);
    let dismissed = app
        .get_json(&format!("{base}/anomalies?status=dismissed"))
        .await;
    assert_eq!(dismissed["data"].as_array().unwrap().len(), 1);
    assert_eq!(dismissed["data"][0]["id"], id.as_str());
    let err = crate::common::expect_error(
        app.get(&format!("{base}/anomalies?cursor=not-a-cursor"))
            .await,
        reqwest::StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(err["field"], "cursor");

    let s = app
        .get_json(&format!("{base}/scores/latest?min_epoch={e}"))
        .await;
    assert_eq!(s["data"][0]["date"], "2024-03-22");
    assert!(
        s["data"][0]["cardio"].as_f64().unwrap() < 50.0,
        "an elevated resting heart rate lowers cardio: {s}"
    );
    assert_eq!(s["data"][0]["sleep"], serde_json::Value::Null);
    let r = app.get_json(&format!("{base}/records")).await;
    assert_eq!(r["data"][0]["metric"], "resting_heart_rate");
    assert_eq!(r["data"][0]["value"], 58.0);
    let c = app
        .get_json(&format!("{base}/correlations?min_strength=strong"))
        .await;
    assert!(c["data"].is_array());

    // The seed's POST forms return the same rows.
    let alias: serde_json::Value = app
        .post(&format!("{base}/anomalies?method=rhr_elevation"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alias["data"][0]["id"], id.as_str());
    assert!(
        app.post(&format!("{base}/correlations"), json!({}))
            .await
            .status()
            .is_success()
    );

    // The LLM context: facts plus a deterministic summary (dismissed anomalies are left out).
    let ctx = app.get_json(&format!("{base}/context")).await;
    let d = &ctx["data"];
    assert!(
        d["baselines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["window_days"] == 28)
    );
    assert!(
        d["active_anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["id"] != id.as_str())
    );
    assert_eq!(d["latest_scores"]["date"], "2024-03-22");
    assert_eq!(d["freshness"].as_array().unwrap().len(), 1);
    let summary = d["summary"].as_str().unwrap();
    assert!(
        summary.contains("28-day baselines for 1 metrics"),
        "{summary}"
    );
    assert_eq!(
        summary,
        app.get_json(&format!("{base}/context")).await["data"]["summary"]
    );

    // Validation names the field; other workspaces see nothing; the future is not yet there.
    for (q, field) in [
        ("baselines?window=7", "window"),
        ("baselines?metric=nope", "metric"),
        ("anomalies?severity=loud", "severity"),
        ("anomalies?limit=0", "limit"),
        ("correlations?lag=3", "lag"),
        ("scores?from=2024-03-10&to=2024-03-01", "from"),
    ] {
        let err = crate::common::expect_error(
            app.get(&format!("{base}/{q}")).await,
            reqwest::StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(err["field"], field, "{q}");
    }
    let other = crate::common::other_workspace_key(&app).await;
    let res = app
        .call(
            reqwest::Method::GET,
            &format!("{base}/baselines"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::NOT_FOUND);
    let future = app.analytics.barrier() + 1_000_000;
    let res = app.get(&format!("{base}/records?min_epoch={future}")).await;
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
}

on_both_backends!(the_api_serves_fresh_analytics);
