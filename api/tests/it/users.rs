//! Users: create-or-return, list and filter, patch, delete with all data.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, expect_error, json_ok};
use crate::on_both_backends;

async fn create_is_idempotent_on_external_id(app: TestApp) {
    let res = app.post("/v1/users", json!({"external_id": "u-1", "email": "a@example.com", "timezone": "Europe/Oslo", "metadata": {"plan": "pro"}})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["metadata"]["plan"], "pro");
    let res = app.post("/v1/users", json!({"external_id": "u-1"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["email"], "a@example.com");
}

async fn list_filter_and_paginate(app: TestApp) {
    for i in 0..5 {
        app.create_user(&format!("user-{i}"), None).await;
    }
    let one = app.get_json("/v1/users?external_id=user-3").await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["external_id"], "user-3");
    let page1 = app.get_json("/v1/users?limit=3").await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 3);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app
        .get_json(&format!("/v1/users?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let all: Vec<_> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["data"].as_array().unwrap())
        .map(|u| u["external_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        all,
        (0..5).map(|i| format!("user-{i}")).collect::<Vec<_>>(),
        "oldest first"
    );
    // Bad parameters name themselves.
    let e = expect_error(
        app.get("/v1/users?limit=0").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "limit");
    let e = expect_error(
        app.get("/v1/users?limit=ten").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(e["field"], "limit");
    let e = expect_error(
        app.get("/v1/users?cursor=garbage").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert_eq!(e["field"], "cursor");
    let e = expect_error(
        app.get("/v1/users?colour=blue").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("colour"), "{e}");
}

async fn patch_and_validate(app: TestApp) {
    let id = app.create_user("p-1", None).await;
    let u = json_ok(
        app.patch(
            &format!("/v1/users/{id}"),
            json!({"display_name": "Pat", "timezone": "Asia/Tokyo"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (u["display_name"].as_str(), u["timezone"].as_str()),
        (Some("Pat"), Some("Asia/Tokyo"))
    );
    let u = json_ok(
        app.patch(&format!("/v1/users/{id}"), json!({"display_name": null}))
            .await,
    )
    .await;
    assert!(u["display_name"].is_null());
    assert_eq!(u["timezone"], "Asia/Tokyo", "absent fields are kept");

    let e = expect_error(
        app.patch(
            &format!("/v1/users/{id}"),
            json!({"timezone": "Mars/Olympus"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "timezone");
    let e = expect_error(
        app.patch(&format!("/v1/users/{id}"), json!({"email": "nope"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "email");
    let e = expect_error(
        app.patch(&format!("/v1/users/{id}"), json!({"metadata": [1]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "metadata");
    let e = expect_error(
        app.patch(&format!("/v1/users/{id}"), json!({"nickname": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("nickname"), "{e}");
    let e = expect_error(
        app.post("/v1/users", json!({"email": "a@b.co"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "external_id");
    let res = app
        .client
        .post(app.url("/v1/users"))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    // Nothing was corrupted by the failed patches.
    let u = app.get_json(&format!("/v1/users/{id}")).await;
    assert_eq!(u["timezone"], "Asia/Tokyo");
    expect_error(
        app.get("/v1/users/not-a-uuid").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn delete_removes_everything(app: TestApp) {
    let id = app.create_user("gone", None).await;
    let keep = app.create_user("kept", None).await;
    let samples = json!([
        {"metric": "steps", "value": 10, "recorded_at": "2024-01-01T10:00:00Z"},
        {"metric": "heart_rate", "value": 60, "recorded_at": "2024-01-01T10:00:00Z"}
    ]);
    app.ingest(&id, samples.clone()).await;
    app.ingest(&keep, samples).await;
    assert_eq!(
        app.delete(&format!("/v1/users/{id}")).await.status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        app.get(&format!("/v1/users/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.get(&format!("/v1/users/{id}/health")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.delete(&format!("/v1/users/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // The other user's data is intact, and recreating the external id starts empty.
    assert_eq!(
        app.get_json(&format!("/v1/users/{keep}/health")).await["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let again = app.create_user("gone", None).await;
    assert_ne!(again, id);
    assert!(
        app.get_json(&format!("/v1/users/{again}/health")).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

on_both_backends!(
    create_is_idempotent_on_external_id,
    list_filter_and_paginate,
    patch_and_validate,
    delete_removes_everything
);
