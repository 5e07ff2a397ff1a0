//! Connections end to end with the demo provider: connect → the backfill runs on the actors →
//! samples and events land; manual and ranged syncs; job listing; validation; tenancy;
//! disconnecting with and without the data.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, expect_error, json_ok};
use crate::on_both_backends;

async fn demo_backfill_lands_samples_and_events(app: TestApp) {
    let user = app.create_user("demo-1", Some("Europe/Berlin")).await;
    let (conn, job) = app.connect_demo(&user, 7).await;
    let job = app.wait_job(&job, 60).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["connection_id"], conn.as_str());
    assert!(job["inserted"].as_i64().unwrap() > 1000, "{job}");
    assert!(job["events_written"].as_i64().unwrap() >= 7, "{job}");
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());

    let conns = app.get_json(&format!("/v1/users/{user}/connections")).await;
    let c = &conns["data"][0];
    assert_eq!(c["status"], "active");
    assert_eq!(c["provider"], "demo");
    assert!(c["last_synced_at"].is_string(), "{c}");
    assert!(c.get("tokens").is_none() && c.get("cursors").is_none());

    let hr = app
        .get_json(&format!(
            "/v1/users/{user}/health?metric=heart_rate&limit=5"
        ))
        .await;
    assert_eq!(hr["data"].as_array().unwrap().len(), 5);
    assert_eq!(hr["data"][0]["provider"], "demo");
    let sleep = app
        .get_json(&format!("/v1/users/{user}/events?type=sleep"))
        .await;
    let sleeps = sleep["data"].as_array().unwrap();
    assert!(sleeps.len() >= 6, "{sleep}");
    assert!(
        sleeps
            .iter()
            .all(|e| e["type"] == "sleep" && e["provider"] == "demo")
    );
    let workouts = app
        .get_json(&format!("/v1/users/{user}/events?type=workout"))
        .await;
    let w = &workouts["data"][0];
    assert!(
        w["duration_s"].as_f64().unwrap() > 0.0 && w["activity_type"].is_string(),
        "{w}"
    );

    // A manual sync starts from the cursors: what is stored is reported unchanged.
    let res = app
        .post(
            &format!("/v1/users/{user}/connections/{conn}/sync"),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let again: Value = res.json().await.unwrap();
    let again = app.wait_job(again["job_id"].as_str().unwrap(), 60).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert!(again["unchanged"].as_i64().unwrap() > 0, "{again}");
    assert!(
        again["inserted"].as_i64().unwrap() < job["inserted"].as_i64().unwrap() / 5,
        "an incremental sync must not re-fetch the backfill: {again}"
    );

    // An explicit window re-syncs exactly those days (all unchanged).
    let res = app
        .call(
            reqwest::Method::POST,
            &format!("/v1/users/{user}/connections/{conn}/sync"),
            Some(&app.key),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "a body is optional");
    let day = (chrono::Utc::now() - chrono::Duration::days(3)).date_naive();
    let res = app
        .post(
            &format!("/v1/users/{user}/connections/{conn}/sync"),
            json!({"from": day.to_string(), "to": day.to_string()}),
        )
        .await;
    let ranged: Value = res.json().await.unwrap();
    let ranged = app.wait_job(ranged["job_id"].as_str().unwrap(), 60).await;
    assert_eq!(ranged["status"], "succeeded", "{ranged}");
    assert!(ranged["range_from"].is_string());
    assert_eq!(ranged["inserted"], 0, "{ranged}");
    assert!(ranged["unchanged"].as_i64().unwrap() > 100, "{ranged}");

    let jobs = app.get_json(&format!("/v1/users/{user}/sync-jobs")).await;
    let jobs = jobs["data"].as_array().unwrap();
    assert!(jobs.len() >= 4, "{jobs:?}");
    // Operators see the syncs in Prometheus (counted from the event bus).
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("vitasync_sync_jobs_total{outcome=\"succeeded\",provider=\"demo\"}"),
        "{metrics}"
    );
    assert_eq!(jobs[0]["id"], ranged["id"], "newest first");
    assert_eq!(jobs.last().unwrap()["trigger"], "backfill");
}

async fn connection_requests_are_validated(app: TestApp) {
    let user = app.create_user("v-1", None).await;
    let path = format!("/v1/users/{user}/connections");
    let e = expect_error(
        app.post(&path, json!({"provider": "nope"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "provider");
    let e = expect_error(
        app.post(&path, json!({"provider": "demo", "days": 0}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "days");
    expect_error(
        app.post(&path, json!({"provider": "demo", "extra": 1}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let missing = uuid::Uuid::now_v7();
    expect_error(
        app.post(
            &format!("/v1/users/{missing}/connections"),
            json!({"provider": "demo"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let (conn, job) = app.connect_demo(&user, 2).await;
    app.wait_job(&job, 60).await;
    let sync = format!("/v1/users/{user}/connections/{conn}/sync");
    let e = expect_error(
        app.post(&sync, json!({"to": "2024-01-01"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "from");
    let e = expect_error(
        app.post(&sync, json!({"from": "2024-02-01", "to": "2024-01-01"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "from");
    let e = expect_error(
        app.post(&sync, json!({"from": "yesterday", "to": "2024-01-01"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "from");
    let e = expect_error(
        app.get(&format!("/v1/users/{user}/events?type=run")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "type");
    expect_error(
        app.get(&format!("/v1/sync-jobs/{missing}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Read-only keys cannot connect or sync.
    let read = app.key_with(&["read"]).await;
    let res = app
        .call(reqwest::Method::POST, &sync, Some(&read), Some(json!({})))
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn providers_are_listed(app: TestApp) {
    let list = app.get_json("/v1/providers").await;
    let demo = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "demo")
        .cloned()
        .expect("demo is listed");
    assert_eq!(demo["configured"], true);
    assert_eq!(demo["auth"], "none");
    assert!(
        demo["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "resting_heart_rate")
    );
    assert_eq!(demo["event_types"], json!(["workout", "sleep"]));
    assert_eq!(app.get_json("/v1/providers/demo").await["id"], "demo");
    expect_error(
        app.get("/v1/providers/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .call(reqwest::Method::GET, "/v1/providers", None, None)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn disconnect_keeps_or_deletes_data(app: TestApp) {
    let user = app.create_user("d-1", None).await;
    let (conn, job) = app.connect_demo(&user, 2).await;
    app.wait_job(&job, 60).await;
    let count = |v: &Value| v["data"].as_array().unwrap().len();

    let res = app
        .delete(&format!("/v1/users/{user}/connections/{conn}"))
        .await;
    let body = json_ok(res).await;
    assert_eq!(body["samples_deleted"], 0);
    let conns = app.get_json(&format!("/v1/users/{user}/connections")).await;
    assert_eq!(conns["data"][0]["status"], "disconnected");
    assert!(count(&app.get_json(&format!("/v1/users/{user}/health")).await) > 0);
    expect_error(
        app.post(
            &format!("/v1/users/{user}/connections/{conn}/sync"),
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;

    // Reconnecting re-activates the same connection; deleting with data removes everything.
    let (again, job) = app.connect_demo(&user, 2).await;
    assert_eq!(again, conn);
    app.wait_job(&job, 60).await;
    let res = app
        .delete(&format!(
            "/v1/users/{user}/connections/{conn}?delete_data=true"
        ))
        .await;
    let body = json_ok(res).await;
    assert!(body["samples_deleted"].as_u64().unwrap() > 100, "{body}");
    assert_eq!(
        count(&app.get_json(&format!("/v1/users/{user}/health")).await),
        0
    );
    assert_eq!(
        count(&app.get_json(&format!("/v1/users/{user}/events")).await),
        0
    );
}

async fn other_workspaces_see_nothing(app: TestApp) {
    let user = app.create_user("t-1", None).await;
    let (conn, job) = app.connect_demo(&user, 1).await;
    app.wait_job(&job, 60).await;
    let other = crate::common::other_workspace_key(&app).await;
    let connect = Some(json!({"provider": "demo"}));
    for (m, p, body) in [
        (reqwest::Method::GET, format!("/v1/sync-jobs/{job}"), None),
        (
            reqwest::Method::GET,
            format!("/v1/users/{user}/connections"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/v1/users/{user}/sync-jobs"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/v1/users/{user}/events"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/v1/users/{user}/connections"),
            connect,
        ),
        (
            reqwest::Method::POST,
            format!("/v1/users/{user}/connections/{conn}/sync"),
            None,
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/users/{user}/connections/{conn}"),
            None,
        ),
    ] {
        let res = app.call(m.clone(), &p, Some(&other), body).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{m} {p}");
    }
    let conns = app.get_json(&format!("/v1/users/{user}/connections")).await;
    assert_eq!(conns["data"][0]["status"], "active", "nothing changed");
}

on_both_backends!(
    demo_backfill_lands_samples_and_events,
    connection_requests_are_validated,
    providers_are_listed,
    disconnect_keeps_or_deletes_data,
    other_workspaces_see_nothing,
);
