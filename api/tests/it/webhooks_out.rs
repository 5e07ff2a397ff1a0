//! Outbound webhooks: registration and secrets, test and redelivery, retries and disabling an
//! endpoint that keeps failing (with a `system` notification), and durability across a real
//! restart while the receiver is down.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{Backend, TestApp, expect_error, json_ok, spawn_app_with, start};
use crate::for_both_backends;
use crate::notify::{capture, header, received, verified, wait_received};

async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Polls the webhook's deliveries until `done` holds for them.
async fn wait_deliveries(
    app: &TestApp,
    hook: &str,
    secs: u64,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let list = app
            .get_json(&format!("/v1/webhooks/{hook}/deliveries?limit=1000"))
            .await["data"]
            .as_array()
            .unwrap()
            .clone();
        if done(&list) {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries did not settle: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn register_rotate_test_and_redeliver(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let rx = capture().await;
    let hook = created(
        app.post(
            "/v1/webhooks",
            json!({"url": format!("{}/in", rx.uri()),
            "events": ["user.created"], "description": "CRM"}),
        )
        .await,
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_string();
    let first_secret = hook["secret"].as_str().unwrap().to_string();
    let got = app.get_json(&format!("/v1/webhooks/{id}")).await;
    assert!(got.get("secret").is_none(), "the secret is shown once");
    assert_eq!(got["events"], json!(["user.created"]));
    assert_eq!(
        app.get_json("/v1/webhooks").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Admin scope only; other workspaces see nothing.
    let reader = app.key_with(&["read", "write"]).await;
    let res = app
        .call(reqwest::Method::GET, "/v1/webhooks", Some(&reader), None)
        .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let other = crate::common::other_workspace_key(&app).await;
    let res = app
        .call(
            reqwest::Method::GET,
            &format!("/v1/webhooks/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let err = expect_error(
        app.post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1/x", "events": ["nope"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(err["field"], "events[0]");

    // A user event arrives signed with the first secret.
    let user = app.create_user("wh-1", None).await;
    let got = wait_received(&rx, "/in", 1, 10).await;
    let body = verified(&got[0], &first_secret);
    assert_eq!(body["type"], "user.created");
    assert_eq!(body["data"]["user_id"], json!(user));

    // After rotation only the new secret verifies.
    let rotated = json_ok(
        app.post(&format!("/v1/webhooks/{id}/rotate-secret"), json!({}))
            .await,
    )
    .await;
    let secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(secret, first_secret);
    let res = app
        .post(&format!("/v1/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let test: Value = res.json().await.unwrap();
    let got = wait_received(&rx, "/in", 2, 10).await;
    let body = verified(&got[1], &secret);
    assert_eq!(body["type"], "test");
    assert_eq!(body["id"], test["event_id"]);
    assert!(!vitasync_engine::notify::signing::verify(
        &first_secret,
        &header(&got[1], "VitaSync-Signature"),
        &got[1].body,
        chrono::Utc::now().timestamp(),
        300
    ));

    // Redelivery sends the same event id again.
    let list = wait_deliveries(&app, &id, 10, |l| {
        l.len() == 2 && l.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let first = &list[0];
    assert_eq!(first["attempts"], 1);
    let res = app
        .post(
            &format!(
                "/v1/webhooks/{id}/deliveries/{}/redeliver",
                first["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let got = wait_received(&rx, "/in", 3, 10).await;
    assert_eq!(verified(&got[2], &secret)["id"], first["event_id"]);

    // Patch and delete.
    let patched = json_ok(
        app.patch(
            &format!("/v1/webhooks/{id}"),
            json!({"events": ["user.created", "user.deleted"], "description": null}),
        )
        .await,
    )
    .await;
    assert_eq!(patched["events"], json!(["user.created", "user.deleted"]));
    assert!(patched["description"].is_null());
    assert_eq!(
        app.delete(&format!("/v1/webhooks/{id}")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/v1/webhooks/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn a_failing_endpoint_is_retried_then_disabled(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.webhook_retry_schedule = "20ms,40ms,80ms".into();
        c.webhook_disable_after = "300ms".into();
    })
    .await;
    let broken = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&broken)
        .await;
    // Somebody in the workspace listens for system notifications.
    let rx = capture().await;
    let admin = app.create_user("ops", None).await;
    let ch = created(app.post(&format!("/v1/users/{admin}/notifications/channels"),
        json!({"type": "ntfy", "name": "ops", "config": {"topic_url": format!("{}/ops", rx.uri())}})).await).await;
    created(app.post(&format!("/v1/users/{admin}/notifications/rules"),
        json!({"channel_ids": [ch["id"]], "categories": ["system"], "min_severity": "critical"})).await).await;

    let hook = created(
        app.post(
            "/v1/webhooks",
            json!({"url": format!("{}/down", broken.uri()), "events": ["user.created"]}),
        )
        .await,
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    app.create_user("u-1", None).await;
    // Four attempts (the first plus three retries), then it gives up.
    let list = wait_deliveries(&app, id, 10, |l| l.len() == 1 && l[0]["status"] == "failed").await;
    assert_eq!(list[0]["attempts"], 4);
    assert_eq!(list[0]["response_code"], 503);
    assert_eq!(received(&broken, "/down").await.len(), 4);

    // Still failing after the disable period: the next failure disables it.
    tokio::time::sleep(Duration::from_millis(350)).await;
    app.create_user("u-2", None).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let hook = loop {
        let h = app.get_json(&format!("/v1/webhooks/{id}")).await;
        if h["enabled"] == false {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "not disabled: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        hook["disabled_reason"].as_str().unwrap().contains("503"),
        "{hook}"
    );
    let notes = wait_received(&rx, "/ops", 1, 10).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(header(&notes[0], "Title"), "A webhook was disabled");
    assert!(header(&notes[0], "Tags").contains("webhook.disabled"));

    // Re-enabling clears the failure record.
    let h = json_ok(
        app.patch(&format!("/v1/webhooks/{id}"), json!({"enabled": true}))
            .await,
    )
    .await;
    assert!(h["enabled"] == true && h["failing_since"].is_null() && h["disabled_reason"].is_null());
}

async fn deliveries_survive_a_restart_while_the_receiver_is_down(backend: Backend) {
    // Reserve a port for the receiver, then leave it closed: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(backend, |c| {
        c.webhook_retry_schedule =
            "100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s,1s".into();
    })
    .await;
    let hook = created(
        app.post(
            "/v1/webhooks",
            json!({"url": format!("http://127.0.0.1:{port}/in"),
        "events": ["user.created"]}),
        )
        .await,
    )
    .await;
    let (id, secret) = (
        hook["id"].as_str().unwrap().to_string(),
        hook["secret"].as_str().unwrap().to_string(),
    );
    let mut users = BTreeSet::new();
    for i in 0..5 {
        users.insert(app.create_user(&format!("dur-{i}"), None).await);
    }
    // Every delivery has failed at least once before the server goes down.
    wait_deliveries(&app, &id, 20, |l| {
        l.len() == 5
            && l.iter()
                .all(|d| d["attempts"].as_u64() >= Some(1) && d["status"] == "pending")
    })
    .await;
    let (db, config) = app.stop().await;

    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let rx = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&rx)
        .await;
    // Nothing is sent while the server is down.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received(&rx, "/in").await.is_empty());

    let app = start(db, config).await;
    let got = wait_received(&rx, "/in", 5, 30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = if received(&rx, "/in").await.len() > got.len() {
        received(&rx, "/in").await
    } else {
        got
    };
    let mut seen = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for r in &got {
        let body = verified(r, &secret);
        assert_eq!(body["type"], "user.created");
        seen.insert(body["data"]["user_id"].as_str().unwrap().to_string());
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, users, "every event delivered, none missing");
    assert_eq!(ids.len(), 5, "one event id per user");
    assert_eq!(got.len(), 5, "no duplicates once delivered");
    // The restarted server's store says so too.
    let ws = app
        .store
        .webhook_by_id(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .workspace_id;
    let page = app
        .store
        .list_deliveries(
            ws,
            id.parse().unwrap(),
            vitasync_engine::cursor::Limit(100),
            None,
        )
        .await
        .unwrap();
    assert!(
        page.items
            .iter()
            .all(|d| d.status == vitasync_engine::notify::model::DeliveryStatus::Succeeded)
    );
}

async fn sync_and_analytics_events_reach_subscribers(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let rx = capture().await;
    let hook = created(
        app.post(
            "/v1/webhooks",
            json!({"url": format!("{}/in", rx.uri()),
        "events": ["connection.created", "sync.completed", "score.updated"]}),
        )
        .await,
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let user = app.create_user("sync-ev", None).await;
    let (conn, job) = app.connect_demo(&user, 7).await;
    app.wait_job(&job, 60).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let kinds = loop {
        let bodies: Vec<Value> = received(&rx, "/in")
            .await
            .iter()
            .map(|r| verified(r, &secret))
            .collect();
        let kinds: BTreeSet<String> = bodies
            .iter()
            .map(|b| b["type"].as_str().unwrap().to_string())
            .collect();
        if kinds.len() == 3 || std::time::Instant::now() > deadline {
            let created = bodies
                .iter()
                .find(|b| b["type"] == "connection.created")
                .expect("connection.created");
            assert_eq!(created["data"]["connection_id"], json!(conn));
            assert_eq!(created["data"]["provider"], "demo");
            let done = bodies
                .iter()
                .find(|b| b["type"] == "sync.completed")
                .expect("sync.completed");
            assert_eq!(done["data"]["job_id"], json!(job));
            assert!(done["data"]["inserted"].as_u64().unwrap() > 0);
            break kinds;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    // Only subscribed events are sent.
    assert!(
        received(&rx, "/in")
            .await
            .iter()
            .all(|r| header(r, "VitaSync-Event") != "user.created")
    );
}

fn rhr(day: u32, bpm: f64) -> Value {
    json!({"metric": "resting_heart_rate", "value": bpm,
           "recorded_at": format!("2024-03-{day:02}T06:00:00Z")})
}

/// Waits for the first flush after a start and returns what it wrote and announced.
async fn reconciled(app: &TestApp) -> vitasync_dataflow::sink::Reconciled {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = app.analytics.reconciled() {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "no first flush");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An app with a webhook for `anomaly.detected` to a capture server, and a user with twenty
/// calm resting heart rates: (app, receiver, the hook as created, user id).
async fn calm_user_with_anomaly_hook(
    backend: Backend,
    name: &str,
) -> (TestApp, MockServer, Value, String) {
    let app = spawn_app_with(backend, |_| {}).await;
    let rx = capture().await;
    let hook = created(
        app.post(
            "/v1/webhooks",
            json!({"url": format!("{}/in", rx.uri()), "events": ["anomaly.detected"]}),
        )
        .await,
    )
    .await;
    let user = app.create_user(name, None).await;
    let calm: Vec<_> = (1..=20).map(|d| rhr(d, 58.0 + f64::from(d % 3))).collect();
    app.ingest(&user, json!(calm)).await;
    (app, rx, hook, user)
}

/// Samples committed while the analytics were not running (a crash between a write's commit
/// and its materialisation leaves the same state) are found at the next start: the tables are
/// brought up to date and the finding is delivered. A start with nothing new writes and
/// announces nothing.
async fn findings_committed_while_down_are_delivered_at_start(backend: Backend) {
    let (app, rx, hook, user) = calm_user_with_anomaly_hook(backend, "down-1").await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let u = app
        .store
        .user(app.workspace_id.parse().unwrap(), user.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let key = app.key.clone();
    let (db, config) = app.stop().await;

    let store = vitasync_api::startup::open_store(&config).await.unwrap();
    let raw: Vec<vitasync_engine::services::ingest::RawSample> =
        serde_json::from_value(json!([rhr(21, 66.0), rhr(22, 67.0)])).unwrap();
    let batch = vitasync_engine::services::ingest::prepare_all(&u, "api", raw).unwrap();
    store.write_samples(&u, &batch).await.unwrap();
    drop(store);

    let mut app = start(db, config).await;
    app.key = key.clone();
    let r = reconciled(&app).await;
    assert!(r.rows > 0 && r.changes > 0, "{r:?}");
    // Every finding of the new days (z-score, IQR and the sustained elevation) arrives signed.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = received(&rx, "/in").await;
        let methods: BTreeSet<String> = got
            .iter()
            .map(|r| {
                let body = verified(r, &secret);
                assert_eq!(body["type"], "anomaly.detected");
                body["data"]["anomaly"]["method"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if methods.contains("rhr_elevation") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{methods:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listed = app
        .get_json(&format!(
            "/v1/users/{user}/analytics/anomalies?method=rhr_elevation"
        ))
        .await;
    assert_eq!(listed["data"][0]["date"], "2024-03-22");

    let hook_id = hook["id"].as_str().unwrap();
    wait_deliveries(&app, hook_id, 30, |l| {
        !l.is_empty() && l.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let ids = |got: &[wiremock::Request]| -> BTreeSet<String> {
        got.iter().map(|r| header(r, "VitaSync-Delivery")).collect()
    };
    let before = ids(&received(&rx, "/in").await);

    // Nothing changed while stopped: nothing rewritten, nothing announced.
    let (db, config) = app.stop().await;
    let mut app = start(db, config).await;
    app.key = key;
    let r = reconciled(&app).await;
    assert_eq!((r.rows, r.changes), (0, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ids(&received(&rx, "/in").await), before);
}

/// The first flush after a start goes through the users a few at a time (here two per step,
/// five users): every user's findings committed while down are announced and delivered exactly
/// once, and a start after that has nothing left to write.
async fn a_start_reconciles_a_few_users_at_a_time(backend: Backend) {
    let (app, rx, hook, first) = calm_user_with_anomaly_hook(backend, "range-0").await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let mut users = vec![first];
    for i in 1..5 {
        let user = app.create_user(&format!("range-{i}"), None).await;
        let calm: Vec<_> = (1..=20).map(|d| rhr(d, 58.0 + f64::from(d % 3))).collect();
        app.ingest(&user, json!(calm)).await;
        users.push(user);
    }
    let key = app.key.clone();
    let workspace = app.workspace_id.parse().unwrap();
    let (db, mut config) = app.stop().await;

    let store = vitasync_api::startup::open_store(&config).await.unwrap();
    for user in &users {
        let u = store
            .user(workspace, user.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let raw: Vec<vitasync_engine::services::ingest::RawSample> =
            serde_json::from_value(json!([rhr(21, 66.0), rhr(22, 67.0)])).unwrap();
        let batch = vitasync_engine::services::ingest::prepare_all(&u, "api", raw).unwrap();
        store.write_samples(&u, &batch).await.unwrap();
    }
    drop(store);

    config.analytics_reconcile_users = 2;
    let mut app = start(db, config).await;
    app.key = key.clone();
    let r = reconciled(&app).await;
    assert!(r.rows > 0 && r.changes >= 5, "{r:?}");
    // Every user's findings are stored (the sustained elevation on the 22nd among them) ...
    let mut stored = BTreeSet::new();
    for user in &users {
        let listed = app
            .get_json(&format!("/v1/users/{user}/analytics/anomalies"))
            .await;
        let found = listed["data"].as_array().unwrap();
        assert!(
            found
                .iter()
                .any(|a| a["method"] == "rhr_elevation" && a["date"] == "2024-03-22"),
            "{user}: {found:?}"
        );
        stored.extend(found.iter().map(|a| a["id"].as_str().unwrap().to_string()));
    }
    // ... and each is delivered exactly once.
    let hook_id = hook["id"].as_str().unwrap();
    wait_deliveries(&app, hook_id, 30, |l| {
        l.len() >= stored.len() && l.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let delivered: Vec<String> = received(&rx, "/in")
        .await
        .iter()
        .map(|r| {
            verified(r, &secret)["data"]["anomaly"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(delivered.len(), stored.len(), "a finding announced twice");
    assert_eq!(delivered.into_iter().collect::<BTreeSet<_>>(), stored);

    let (db, config) = app.stop().await;
    let mut app = start(db, config).await;
    app.key = key;
    let r = reconciled(&app).await;
    assert_eq!((r.rows, r.changes), (0, 0));
}

/// A stop right behind a write still stores the write's analytics and queues the webhooks of
/// its findings: the next start has nothing to reconcile, and each finding is delivered once.
async fn a_stop_flushes_the_analytics_and_queues_their_webhooks(backend: Backend) {
    let (app, rx, hook, user) = calm_user_with_anomaly_hook(backend, "stop-1").await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    // Stopped as soon as the write is committed, its analytics most likely not yet stored.
    app.ingest(&user, json!([rhr(21, 66.0), rhr(22, 67.0)]))
        .await;
    let key = app.key.clone();
    let (db, config) = app.stop().await;

    let mut app = start(db, config).await;
    app.key = key;
    let r = reconciled(&app).await;
    assert_eq!((r.rows, r.changes), (0, 0), "the stop stored everything");
    let hook_id = hook["id"].as_str().unwrap();
    let deliveries = wait_deliveries(&app, hook_id, 30, |l| {
        l.len() >= 3 && l.iter().all(|d| d["status"] == "succeeded")
    })
    .await;
    let got = received(&rx, "/in").await;
    let events: Vec<Value> = got.iter().map(|r| verified(r, &secret)).collect();
    let methods: BTreeSet<&str> = events
        .iter()
        .map(|e| e["data"]["anomaly"]["method"].as_str().unwrap())
        .collect();
    assert!(methods.contains("rhr_elevation"), "{methods:?}");
    let ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "no finding is delivered twice");
    assert_eq!(events.len(), deliveries.len());
}

for_both_backends!(
    a_stop_flushes_the_analytics_and_queues_their_webhooks,
    findings_committed_while_down_are_delivered_at_start,
    a_start_reconciles_a_few_users_at_a_time,
    sync_and_analytics_events_reach_subscribers,
    register_rotate_test_and_redeliver,
    a_failing_endpoint_is_retried_then_disabled,
    deliveries_survive_a_restart_while_the_receiver_is_down,
);
