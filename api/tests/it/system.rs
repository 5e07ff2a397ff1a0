//! Unauthenticated endpoints, error envelopes and the OpenAPI document.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{TestApp, expect_error};
use crate::on_both_backends;

async fn liveness_readiness_metrics(app: TestApp) {
    let h: Value = app
        .call(Method::GET, "/health", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));

    let res = app.call(Method::GET, "/ready", None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["status"], "ready");

    // Generate some traffic, then check the exposition.
    let user = app.create_user("metrics-user", None).await;
    app.ingest(
        &user,
        serde_json::json!([{"metric": "steps", "value": 5, "recorded_at": "2024-01-01T10:00:00Z"}]),
    )
    .await;
    let text = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("vitasync_http_requests_total{method=\"POST\",route=\"/v1/users/{user_id}/health\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("vitasync_http_request_duration_seconds_bucket"));
    assert!(text.contains("vitasync_store_samples_written_total{outcome=\"inserted\"} 1"));
    assert!(text.contains("vitasync_process_resident_memory_bytes"));
}

async fn unknown_routes_are_json_404(app: TestApp) {
    let res = app
        .call(Method::GET, "/v1/nope", Some(&app.key), None)
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

async fn openapi_describes_every_route(app: TestApp) {
    let doc: Value = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/v1/workspace", "get"),
        ("/v1/metric-types", "get"),
        ("/v1/users", "post"),
        ("/v1/users", "get"),
        ("/v1/users/{user_id}", "get"),
        ("/v1/users/{user_id}", "patch"),
        ("/v1/users/{user_id}", "delete"),
        ("/v1/users/{user_id}/health", "post"),
        ("/v1/users/{user_id}/health", "get"),
        ("/v1/users/{user_id}/health/daily", "get"),
        ("/v1/users/{user_id}/health/summary", "get"),
        ("/v1/api-keys", "post"),
        ("/v1/api-keys", "get"),
        ("/v1/api-keys/{key_id}", "delete"),
        ("/v1/api-keys/{key_id}/rotate", "post"),
        ("/v1/providers", "get"),
        ("/v1/providers/{provider}", "get"),
        ("/v1/providers/{provider}/webhook", "post"),
        ("/v1/providers/{provider}/webhook", "get"),
        ("/v1/oauth/{provider}/authorize", "get"),
        ("/v1/oauth/{provider}/callback", "get"),
        ("/v1/users/{user_id}/connections", "post"),
        ("/v1/users/{user_id}/connections", "get"),
        ("/v1/users/{user_id}/connections/{connection_id}", "delete"),
        (
            "/v1/users/{user_id}/connections/{connection_id}/sync",
            "post",
        ),
        ("/v1/sync-jobs/{job_id}", "get"),
        ("/v1/users/{user_id}/sync-jobs", "get"),
        ("/v1/users/{user_id}/events", "get"),
        ("/v1/users/{user_id}/analytics/baselines", "get"),
        ("/v1/users/{user_id}/analytics/anomalies", "get"),
        (
            "/v1/users/{user_id}/analytics/anomalies/{anomaly_id}/acknowledge",
            "post",
        ),
        (
            "/v1/users/{user_id}/analytics/anomalies/{anomaly_id}/dismiss",
            "post",
        ),
        ("/v1/users/{user_id}/analytics/correlations", "get"),
        ("/v1/users/{user_id}/analytics/scores", "get"),
        ("/v1/users/{user_id}/analytics/scores/latest", "get"),
        ("/v1/users/{user_id}/analytics/records", "get"),
        ("/v1/users/{user_id}/analytics/context", "get"),
        ("/v1/users/{user_id}/analytics/anomalies", "post"),
        ("/v1/users/{user_id}/analytics/correlations", "post"),
        ("/v1/users/{user_id}/notifications/channels", "post"),
        ("/v1/users/{user_id}/notifications/channels", "get"),
        (
            "/v1/users/{user_id}/notifications/channels/{channel_id}",
            "get",
        ),
        (
            "/v1/users/{user_id}/notifications/channels/{channel_id}",
            "patch",
        ),
        (
            "/v1/users/{user_id}/notifications/channels/{channel_id}",
            "delete",
        ),
        (
            "/v1/users/{user_id}/notifications/channels/{channel_id}/test",
            "post",
        ),
        ("/v1/users/{user_id}/notifications/rules", "post"),
        ("/v1/users/{user_id}/notifications/rules", "get"),
        ("/v1/users/{user_id}/notifications/rules/{rule_id}", "patch"),
        (
            "/v1/users/{user_id}/notifications/rules/{rule_id}",
            "delete",
        ),
        ("/v1/users/{user_id}/notifications/logs", "get"),
        ("/v1/webhooks", "post"),
        ("/v1/webhooks", "get"),
        ("/v1/webhooks/{webhook_id}", "get"),
        ("/v1/webhooks/{webhook_id}", "patch"),
        ("/v1/webhooks/{webhook_id}", "delete"),
        ("/v1/webhooks/{webhook_id}/rotate-secret", "post"),
        ("/v1/webhooks/{webhook_id}/test", "post"),
        ("/v1/webhooks/{webhook_id}/deliveries", "get"),
        (
            "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            "post",
        ),
    ];
    for (path, method) in expected {
        let op = &paths[path][method];
        assert!(
            op.is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
        if path.contains('{') {
            let params = op["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} has no parameters"));
            assert!(
                params.iter().any(|p| p["in"] == "path"),
                "{method} {path} lacks its path parameter"
            );
        }
        if method == "post" && !path.ends_with("/rotate") || method == "patch" {
            assert!(
                op["requestBody"].is_object(),
                "{method} {path} lacks a request body"
            );
        }
    }
    assert_eq!(
        paths.len(),
        45,
        "a route was added without updating this test: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    let ingest = &paths["/v1/users/{user_id}/health"]["get"]["parameters"];
    let names: Vec<_> = ingest
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for q in ["metric", "provider", "from", "to", "limit", "cursor"] {
        assert!(names.contains(&q), "query parameter {q} missing: {names:?}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["RawSample"].is_object());
}

async fn docs_are_served_offline(app: TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap();
    let html = client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    let body = html.text().await.unwrap();
    assert!(body.contains("swagger-ui"), "{body}");
    // Every asset the page loads is served by the binary itself.
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let res = client
            .get(app.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
    }
    let init = client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(
        !body.contains("https://") || !body.contains("cdn"),
        "the explorer must not load from a CDN"
    );
}

on_both_backends!(
    liveness_readiness_metrics,
    unknown_routes_are_json_404,
    openapi_describes_every_route,
    docs_are_served_offline
);
