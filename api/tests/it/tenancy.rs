//! The tenancy matrix: a key of workspace B, given workspace A's ids, gets 404 on every route
//! and learns nothing; A's data is untouched afterwards.

use reqwest::{Method, StatusCode};
use serde_json::json;
use vitasync_engine::services::workspaces;

use crate::common::{TestApp, expect_error};
use crate::on_both_backends;

async fn foreign_ids_are_not_found(app: TestApp) {
    let user_a = app.create_user("alice-external-id", None).await;
    app.ingest(
        &user_a,
        json!([{"metric": "steps", "value": 4242, "recorded_at": "2024-01-01T12:00:00Z"}]),
    )
    .await;
    let key_a = app.get_json("/v1/api-keys").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (_, issued_b) = workspaces::create_with_admin_key(app.store.as_ref(), "tenant-b", None)
        .await
        .unwrap();
    let b = issued_b.secret.as_str();

    let sample = json!({"samples": [{"metric": "steps", "value": 1, "recorded_at": "2024-01-02T00:00:00Z"}]});
    let matrix: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, format!("/v1/users/{user_a}"), None),
        (
            Method::PATCH,
            format!("/v1/users/{user_a}"),
            Some(json!({"display_name": "mallory"})),
        ),
        (Method::DELETE, format!("/v1/users/{user_a}"), None),
        (
            Method::POST,
            format!("/v1/users/{user_a}/health"),
            Some(sample),
        ),
        (Method::GET, format!("/v1/users/{user_a}/health"), None),
        (
            Method::GET,
            format!("/v1/users/{user_a}/health/daily"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/users/{user_a}/health/summary"),
            None,
        ),
        (Method::DELETE, format!("/v1/api-keys/{key_a}"), None),
        (Method::POST, format!("/v1/api-keys/{key_a}/rotate"), None),
    ];
    for (method, path, body) in matrix {
        let res = app.call(method.clone(), &path, Some(b), body).await;
        let err = expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
        let text = err.to_string();
        assert!(
            !text.contains("alice") && !text.contains("4242"),
            "{method} {path} leaked: {text}"
        );
    }

    // Lists show only B's own rows.
    let users_b = app
        .call(Method::GET, "/v1/users", Some(b), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!users_b.contains(&user_a), "{users_b}");
    let filtered = app
        .call(
            Method::GET,
            "/v1/users?external_id=alice-external-id",
            Some(b),
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&filtered).unwrap()["data"],
        json!([])
    );
    let keys_b = app
        .call(Method::GET, "/v1/api-keys", Some(b), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!keys_b.contains(&key_a), "{keys_b}");
    let ws_b = app
        .call(Method::GET, "/v1/workspace", Some(b), None)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(ws_b["slug"], "tenant-b");

    // The same external id in B is a different user.
    let res = app
        .call(
            Method::POST,
            "/v1/users",
            Some(b),
            Some(json!({"external_id": "alice-external-id"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let user_b = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(user_b, user_a);

    // A is untouched.
    let u = app.get_json(&format!("/v1/users/{user_a}")).await;
    assert!(u["display_name"].is_null());
    let samples = app.get_json(&format!("/v1/users/{user_a}/health")).await;
    assert_eq!(samples["data"].as_array().unwrap().len(), 1);
    assert_eq!(samples["data"][0]["value"], 4242.0);
    assert_eq!(
        app.get("/v1/workspace").await.status(),
        StatusCode::OK,
        "A's key still works"
    );
}

on_both_backends!(foreign_ids_are_not_found);
