//! The analytics inside the running server: every writer (API pushes, corrections, syncs,
//! deletions) feeds the dataflow, writes return their epoch, and once the view reflects that
//! epoch it equals the batch oracle computed from what the store holds. A restart hydrates the
//! same state from the store.

use std::time::Duration;

use serde_json::json;
use vitasync_dataflow::model::SampleRow;
use vitasync_dataflow::oracle;
use vitasync_dataflow::sink::deltas;

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

/// Waits until the view includes everything handed over so far, then compares it with the
/// oracle over the store's contents.
async fn assert_view_matches_store(app: &TestApp) {
    let barrier = vitasync_engine::analytics::AnalyticsSink::apply(app.analytics.as_ref(), &[]);
    assert!(
        app.analytics
            .view()
            .wait_for(barrier, Duration::from_secs(30)),
        "the view reaches epoch {barrier}"
    );
    let (_, got) = app.analytics.view().snapshot();
    let expected = oracle::compute(&stored_rows(app).await);
    assert_eq!(got, expected);
}

fn rhr(day: u32, bpm: f64) -> serde_json::Value {
    json!({"metric": "resting_heart_rate", "value": bpm,
           "recorded_at": format!("2024-03-{day:02}T06:00:00Z")})
}

async fn writes_reach_the_analytics(app: TestApp) {
    let user = app.create_user("a-1", Some("Europe/Berlin")).await;
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
    assert!(app.analytics.view().wait_for(e2, Duration::from_secs(30)));
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

    // Synced data (the demo device) and a deletion go through the same path.
    let other = app.create_user("a-2", None).await;
    let (conn, job) = app.connect_demo(&other, 14).await;
    app.wait_job(&job, 60).await;
    assert_view_matches_store(&app).await;
    let res = app
        .delete(&format!(
            "/v1/users/{other}/connections/{conn}?delete_data=true"
        ))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_view_matches_store(&app).await;
    let res = app.delete(&format!("/v1/users/{user}")).await;
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    assert_view_matches_store(&app).await;
    let (_, view) = app.analytics.view().snapshot();
    assert!(
        view.daily.is_empty() && view.baselines.is_empty(),
        "nothing left"
    );
}

async fn a_restart_hydrates_from_the_store(app: TestApp) {
    let user = app.create_user("h-1", None).await;
    let (_, job) = app.connect_demo(&user, 30).await;
    app.wait_job(&job, 60).await;
    assert_view_matches_store(&app).await;
    let (_, before) = app.analytics.view().snapshot();
    let (db, config) = app.stop().await;
    let app = start(db, config).await;
    assert_view_matches_store(&app).await;
    let (_, after) = app.analytics.view().snapshot();
    assert_eq!(before, after, "hydration rebuilds the same analytics");
    assert!(!after.scores.is_empty() && !after.correlations.is_empty());
}

on_both_backends!(
    writes_reach_the_analytics,
    a_restart_hydrates_from_the_store
);
