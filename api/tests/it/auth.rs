//! Authentication, scopes, key lifecycle, rate limiting and the bootstrap key.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vitasync_engine::domain::api_key::generate_key;
use vitasync_engine::domain::{NewApiKey, Scopes};

use crate::common::{Backend, TestApp, expect_error, spawn_app_with, start};
use crate::on_both_backends;

async fn rejects_missing_unknown_malformed_and_expired_keys(app: TestApp) {
    let res = app.call(Method::GET, "/v1/workspace", None, None).await;
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    expect_error(
        app.call(Method::GET, "/v1/workspace", Some("vs_notakey"), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let basic = app
        .client
        .get(app.url("/v1/workspace"))
        .header("Authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    expect_error(basic, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // An expired key: inserted directly, since the API refuses past expiry dates.
    let ws: Value = app.get_json("/v1/workspace").await;
    let generated = generate_key();
    app.store
        .insert_api_key(&NewApiKey {
            workspace_id: ws["id"].as_str().unwrap().parse().unwrap(),
            name: "old".into(),
            prefix: generated.prefix.clone(),
            key_hash: generated.hash.clone(),
            scopes: Scopes::all(),
            expires_at: Some(Utc::now() - Duration::seconds(1)),
        })
        .await
        .unwrap();
    let err = expect_error(
        app.call(Method::GET, "/v1/workspace", Some(&generated.key), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(err["message"].as_str().unwrap().contains("expired"));
}

async fn key_lifecycle(app: TestApp) {
    let res = app.post("/v1/api-keys", json!({"name": "reporting", "scopes": ["read"], "expires_at": (Utc::now() + Duration::days(30)).to_rfc3339()})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["scopes"], json!(["read"]));
    let id = created["id"].as_str().unwrap().to_string();

    // The list never shows a secret or a hash.
    let list = app.get_json("/v1/api-keys").await;
    let text = list.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("hash") && !text.contains("\"key\""),
        "{text}"
    );
    assert_eq!(list["data"].as_array().unwrap().len(), 2);

    assert_eq!(
        app.call(Method::GET, "/v1/workspace", Some(&secret), None)
            .await
            .status(),
        StatusCode::OK
    );

    // Rotation: the old secret dies at once, the new one works, name and scopes are kept.
    let rotated: Value = crate::common::json_ok(
        app.post(&format!("/v1/api-keys/{id}/rotate"), json!({}))
            .await,
    )
    .await;
    let new_secret = rotated["key"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["name"], "reporting");
    assert_eq!(rotated["id"], id.as_str());
    assert_eq!(
        app.call(Method::GET, "/v1/workspace", Some(&secret), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::GET, "/v1/workspace", Some(new_secret), None)
            .await
            .status(),
        StatusCode::OK
    );

    // Revocation.
    assert_eq!(
        app.delete(&format!("/v1/api-keys/{id}")).await.status(),
        StatusCode::NO_CONTENT
    );
    let err = expect_error(
        app.call(Method::GET, "/v1/workspace", Some(new_secret), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(err["message"].as_str().unwrap().contains("revoked"));
    expect_error(
        app.delete(&format!("/v1/api-keys/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Validation names the field.
    let e = expect_error(
        app.post("/v1/api-keys", json!({"name": "x", "scopes": ["root"]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(e["field"].as_str().unwrap().starts_with("scopes"), "{e}");
    let e = expect_error(
        app.post("/v1/api-keys", json!({"name": "x", "scopes": []}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "scopes");
    let e = expect_error(
        app.post("/v1/api-keys", json!({"name": "", "scopes": ["read"]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "name");
    let e = expect_error(
        app.post(
            "/v1/api-keys",
            json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "expires_at");
}

async fn pagination_of_keys(app: TestApp) {
    for _ in 0..4 {
        app.key_with(&["read"]).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/api-keys?limit=2&cursor={c}"),
            None => "/v1/api-keys?limit=2".to_string(),
        };
        let page = app.get_json(&path).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5));
}

/// Every write route refuses a key without the scope it needs, and changes nothing.
async fn scopes_are_enforced_on_every_write_route(app: TestApp) {
    let read = app.key_with(&["read"]).await;
    let write = app.key_with(&["write"]).await;
    let user = app.create_user("scoped", None).await;
    let key_id = app.get_json("/v1/api-keys").await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sample = json!({"samples": [{"metric": "steps", "value": 1, "recorded_at": "2024-01-01T00:00:00Z"}]});

    let routes: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/v1/users".into(),
            Some(json!({"external_id": "x"})),
            "write",
        ),
        (
            Method::PATCH,
            format!("/v1/users/{user}"),
            Some(json!({"display_name": "x"})),
            "write",
        ),
        (Method::DELETE, format!("/v1/users/{user}"), None, "admin"),
        (
            Method::POST,
            format!("/v1/users/{user}/health"),
            Some(sample.clone()),
            "write",
        ),
        (
            Method::POST,
            "/v1/api-keys".into(),
            Some(json!({"name": "x", "scopes": ["read"]})),
            "admin",
        ),
        (Method::GET, "/v1/api-keys".into(), None, "admin"),
        (
            Method::DELETE,
            format!("/v1/api-keys/{key_id}"),
            None,
            "admin",
        ),
        (
            Method::POST,
            format!("/v1/api-keys/{key_id}/rotate"),
            None,
            "admin",
        ),
    ];
    for (method, path, body, needs) in &routes {
        let e = expect_error(
            app.call(method.clone(), path, Some(&read), body.clone())
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert!(
            e["message"].as_str().unwrap().contains(needs),
            "{method} {path}: {e}"
        );
        if *needs == "admin" {
            expect_error(
                app.call(method.clone(), path, Some(&write), body.clone())
                    .await,
                StatusCode::FORBIDDEN,
                "forbidden",
            )
            .await;
        }
    }
    // Nothing changed: the user is intact with no data, the keys are all still usable.
    let u = app.get_json(&format!("/v1/users/{user}")).await;
    assert!(u["display_name"].is_null());
    assert!(
        app.get_json(&format!("/v1/users/{user}/health")).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.get_json("/v1/users").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.call(Method::GET, "/v1/workspace", Some(&read), None)
            .await
            .status(),
        StatusCode::OK
    );
    // Read routes accept a read key.
    for path in [
        "/v1/workspace",
        "/v1/metric-types",
        "/v1/users",
        &format!("/v1/users/{user}/health/summary"),
    ] {
        assert_eq!(
            app.call(Method::GET, path, Some(&read), None)
                .await
                .status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // And a write key can write.
    assert_eq!(
        app.call(
            Method::POST,
            &format!("/v1/users/{user}/health"),
            Some(&write),
            Some(sample)
        )
        .await
        .status(),
        StatusCode::OK
    );
}

async fn rate_limited_per_key(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.rate_limit_rps = 0.5;
        c.rate_limit_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/workspace").await.status(), StatusCode::OK);
    }
    let res = app.get("/v1/workspace").await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    expect_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another key has its own bucket; unauthenticated endpoints are not limited.
    let other = crate::common::json_ok(app.call(Method::GET, "/health", None, None).await).await;
    assert_eq!(other["status"], "ok");
}

#[actix_web::test]
async fn rate_limit_sqlite() {
    rate_limited_per_key(Backend::Sqlite).await;
}

#[actix_web::test]
async fn rate_limit_postgres() {
    rate_limited_per_key(Backend::Postgres).await;
}

async fn bootstrap_key_is_idempotent(backend: Backend) {
    let secret = "vs_bootstrap_0123456789abcdefghij";
    let app = spawn_app_with(backend, |c| c.bootstrap_api_key = Some(secret.into())).await;
    let ws = crate::common::json_ok(
        app.call(Method::GET, "/v1/workspace", Some(secret), None)
            .await,
    )
    .await;
    assert_eq!(ws["slug"], "default");
    let keys = crate::common::json_ok(
        app.call(Method::GET, "/v1/api-keys", Some(secret), None)
            .await,
    )
    .await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);

    // Restart on the same database: same workspace, still one key, still admin.
    let (db, config) = app.stop().await;
    let app = start(db, config).await;
    let again = crate::common::json_ok(
        app.call(Method::GET, "/v1/workspace", Some(secret), None)
            .await,
    )
    .await;
    assert_eq!(again["id"], ws["id"]);
    let keys = crate::common::json_ok(
        app.call(Method::GET, "/v1/api-keys", Some(secret), None)
            .await,
    )
    .await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
    assert_eq!(keys["data"][0]["scopes"], json!(["read", "write", "admin"]));
}

#[actix_web::test]
async fn bootstrap_sqlite() {
    bootstrap_key_is_idempotent(Backend::Sqlite).await;
}

#[actix_web::test]
async fn bootstrap_postgres() {
    bootstrap_key_is_idempotent(Backend::Postgres).await;
}

on_both_backends!(
    rejects_missing_unknown_malformed_and_expired_keys,
    key_lifecycle,
    pagination_of_keys,
    scopes_are_enforced_on_every_write_route
);
