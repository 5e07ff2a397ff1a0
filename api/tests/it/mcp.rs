//! The MCP server over streamable HTTP at `/mcp`, driven by rmcp's own client: every tool
//! answers what the REST API answers for the same user, bad arguments come back as tool errors
//! naming the argument, resources list/read/subscribe work (an ingest notifies the subscriber),
//! and a key of another workspace sees nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, GetPromptRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ResourceContents, ResourceUpdatedNotificationParam,
    ServerNotification, SubscribeRequestParams, SubscriptionFilter,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt as _, NotificationContext, RunningService,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::{TestApp, other_workspace_key};
use crate::on_both_backends;

/// Forwards `notifications/resources/updated` to the test.
struct Updates(mpsc::UnboundedSender<String>);

impl ClientHandler for Updates {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::default().with_protocol_version(ProtocolVersion::V_2025_11_25)
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

type Client = RunningService<RoleClient, Updates>;

async fn connect(app: &TestApp, key: &str) -> (Client, mpsc::UnboundedReceiver<String>) {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(key),
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let client = Updates(tx).serve(transport).await.expect("MCP initialize");
    (client, rx)
}

async fn call(client: &Client, name: &str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The structured output of a successful call.
async fn ok(client: &Client, name: &str, args: Value) -> Value {
    let r = call(client, name, args.clone()).await;
    assert_ne!(r.is_error, Some(true), "{name}({args}) failed: {r:?}");
    r.structured_content
        .unwrap_or_else(|| panic!("{name} has no structured output"))
}

/// The message of a tool error.
async fn tool_error(client: &Client, name: &str, args: Value) -> String {
    let r = call(client, name, args.clone()).await;
    assert_eq!(r.is_error, Some(true), "{name}({args}) should fail: {r:?}");
    serde_json::to_value(&r.content).unwrap()[0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

fn rhr(day: u32, bpm: f64) -> Value {
    json!({"metric": "resting_heart_rate", "value": bpm,
           "recorded_at": format!("2024-03-{day:02}T06:00:00Z")})
}

fn steps(day: u32, n: f64) -> Value {
    json!({"metric": "steps", "value": n,
           "recorded_at": format!("2024-03-{day:02}T18:00:00Z")})
}

/// A user with a demo connection (events, samples) and 22 days of pushed data ending in a
/// resting-heart-rate elevation; returns the user id once the analytics include everything.
async fn seeded_user(app: &TestApp, external_id: &str) -> String {
    let user = app.create_user(external_id, None).await;
    let (_, job) = app.connect_demo(&user, 3).await;
    app.wait_job(&job, 60).await;
    let days: Vec<Value> = (1..=20)
        .flat_map(|d| {
            [
                rhr(d, 58.0 + f64::from(d % 3)),
                steps(d, 6000.0 + 300.0 * f64::from(d % 5)),
            ]
        })
        .collect();
    app.ingest(&user, json!(days)).await;
    let w = app
        .ingest(&user, json!([rhr(21, 66.0), rhr(22, 67.0)]))
        .await;
    let e = w["epoch"].as_u64().unwrap();
    app.get_json(&format!("/v1/users/{user}/analytics/scores?min_epoch={e}"))
        .await;
    user
}

async fn tools_match_the_rest_api(app: TestApp) {
    let user = seeded_user(&app, "mcp-1").await;
    app.create_user("someone-else", None).await;
    let (client, _) = connect(&app, &app.key).await;

    let info = client.peer_info().expect("server info");
    let server = info.server_info.clone().expect("server identity");
    assert_eq!(server.name, "vitasync");
    assert_eq!(server.version, vitasync_engine::VERSION);
    assert!(
        info.instructions
            .as_deref()
            .unwrap()
            .contains("get_health_context")
    );

    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "get_anomaly_alerts",
            "get_correlations",
            "get_events",
            "get_health_context",
            "get_health_scores",
            "get_personal_records",
            "list_connections",
            "list_users",
            "query_health_metrics",
        ]
    );
    for t in &tools {
        assert!(t.output_schema.is_some(), "{} has an output schema", t.name);
        let props = t.input_schema["properties"].as_object().unwrap();
        for (arg, schema) in props {
            assert!(
                schema["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{}.{arg} has a description",
                t.name
            );
        }
    }

    let rest = |path: String| {
        let app = &app;
        async move { app.get_json(&path).await["data"].clone() }
    };
    // Users: all of them, and a search.
    let listed = ok(&client, "list_users", json!({})).await;
    assert_eq!(listed["data"], rest("/v1/users".into()).await);
    let found = ok(&client, "list_users", json!({"search": "MCP-"})).await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], json!(user));
    let page = ok(&client, "list_users", json!({"limit": 1})).await;
    assert_eq!(page["truncated"], json!(true));
    let next = ok(
        &client,
        "list_users",
        json!({"limit": 1, "cursor": page["next_cursor"]}),
    )
    .await;
    assert_eq!(next["data"][0], listed["data"][1]);

    let conns = rest(format!("/v1/users/{user}/connections")).await;
    assert_eq!(conns.as_array().unwrap().len(), 1);
    assert_eq!(
        ok(&client, "list_connections", json!({"user_id": user})).await["data"],
        conns
    );
    assert_eq!(
        ok(
            &client,
            "list_connections",
            json!({"provider": "demo", "status": "active"})
        )
        .await["data"],
        conns
    );
    assert_eq!(
        ok(&client, "list_connections", json!({"status": "error"})).await["data"],
        json!([])
    );

    assert_eq!(
        ok(
            &client,
            "query_health_metrics",
            json!({"user_id": user, "limit": 50})
        )
        .await["data"],
        rest(format!("/v1/users/{user}/health?limit=50")).await
    );
    assert_eq!(
        ok(
            &client,
            "query_health_metrics",
            json!({"user_id": user, "metric": "resting_heart_rate", "granularity": "daily",
                   "from": "2024-03-01", "to": "2024-03-31"})
        )
        .await["data"],
        rest(format!(
            "/v1/users/{user}/health/daily?metric=resting_heart_rate&from=2024-03-01&to=2024-03-31"
        ))
        .await
    );
    let events = rest(format!("/v1/users/{user}/events?limit=20")).await;
    assert!(
        !events.as_array().unwrap().is_empty(),
        "the demo brought events"
    );
    assert_eq!(
        ok(&client, "get_events", json!({"user_id": user})).await["data"],
        events
    );
    assert_eq!(
        ok(
            &client,
            "get_events",
            json!({"user_id": user, "type": "sleep", "limit": 100})
        )
        .await["data"],
        rest(format!("/v1/users/{user}/events?type=sleep&limit=100")).await
    );
    let workout = rest(format!("/v1/users/{user}/events?type=workout&limit=1")).await;
    let activity = workout[0]["activity_type"]
        .as_str()
        .expect("a demo workout");
    let by_activity = rest(format!(
        "/v1/users/{user}/events?activity_type={}&limit=100",
        activity.to_uppercase()
    ))
    .await;
    assert!(
        by_activity
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["activity_type"] == activity)
    );
    assert_eq!(
        ok(
            &client,
            "get_events",
            json!({"user_id": user, "activity_type": activity, "limit": 100})
        )
        .await["data"],
        by_activity
    );
    assert_eq!(
        ok(&client, "get_personal_records", json!({"user_id": user})).await["data"],
        rest(format!("/v1/users/{user}/analytics/records")).await
    );
    let context = ok(&client, "get_health_context", json!({"user_id": user})).await;
    assert_eq!(
        context["data"],
        rest(format!("/v1/users/{user}/analytics/context")).await
    );
    assert!(
        context["data"]["summary"]
            .as_str()
            .unwrap()
            .contains("anomal")
    );
    assert!(context["epoch"].as_u64().unwrap() > 0);
    let anomalies = rest(format!("/v1/users/{user}/analytics/anomalies")).await;
    assert!(!anomalies.as_array().unwrap().is_empty());
    assert_eq!(
        ok(
            &client,
            "get_anomaly_alerts",
            json!({"user_id": user, "limit": 100})
        )
        .await["data"],
        anomalies
    );
    assert_eq!(
        ok(
            &client,
            "get_anomaly_alerts",
            json!({"user_id": user, "method": "rhr_elevation", "severity": "warning"})
        )
        .await["data"],
        rest(format!(
            "/v1/users/{user}/analytics/anomalies?method=rhr_elevation&severity=warning"
        ))
        .await
    );
    assert_eq!(
        ok(
            &client,
            "get_correlations",
            json!({"user_id": user, "limit": 50})
        )
        .await["data"],
        rest(format!("/v1/users/{user}/analytics/correlations")).await
    );
    assert_eq!(
        ok(
            &client,
            "get_health_scores",
            json!({"user_id": user, "from": "2024-03-01", "to": "2024-03-31"})
        )
        .await["data"],
        rest(format!(
            "/v1/users/{user}/analytics/scores?from=2024-03-01&to=2024-03-31"
        ))
        .await
    );

    // Bad arguments: a tool error that names what to fix.
    let bad = [
        ("list_users", json!({"limit": 0}), "limit"),
        ("list_users", json!({"cursor": "nope"}), "cursor"),
        ("list_connections", json!({"status": "broken"}), "status"),
        ("query_health_metrics", json!({}), "user_id"),
        (
            "query_health_metrics",
            json!({"user_id": user, "granularity": "hourly"}),
            "granularity",
        ),
        (
            "query_health_metrics",
            json!({"user_id": user, "metric": "mood"}),
            "metric",
        ),
        (
            "get_events",
            json!({"user_id": user, "type": "nap"}),
            "type",
        ),
        (
            "get_events",
            json!({"user_id": user, "from": "2024-03-10", "to": "2024-03-01"}),
            "from",
        ),
        (
            "get_personal_records",
            json!({"user_id": user, "metric": "nope"}),
            "metric",
        ),
        (
            "get_health_context",
            json!({"user_id": "not-a-uuid"}),
            "user_id",
        ),
        (
            "get_health_context",
            json!({"user_id": uuid::Uuid::new_v4()}),
            "user_id",
        ),
        (
            "get_anomaly_alerts",
            json!({"user_id": user, "severity": "huge"}),
            "severity",
        ),
        (
            "get_anomaly_alerts",
            json!({"user_id": user, "colour": "red"}),
            "colour",
        ),
        (
            "get_correlations",
            json!({"user_id": user, "lag_days": 5}),
            "lag_days",
        ),
        (
            "get_correlations",
            json!({"user_id": user, "lag_days": "one"}),
            "lag_days",
        ),
        (
            "get_health_scores",
            json!({"user_id": user, "from": "2024-13-01"}),
            "from",
        ),
    ];
    for (tool, args, field) in bad {
        let msg = tool_error(&client, tool, args.clone()).await;
        assert!(msg.contains(field), "{tool}({args}): {msg}");
    }
    client.cancel().await.unwrap();
}

async fn resources_and_subscriptions(app: TestApp) {
    let user = app.create_user("mcp-res", None).await;
    let calm: Vec<Value> = (1..=20).map(|d| rhr(d, 58.0 + f64::from(d % 3))).collect();
    let w = app.ingest(&user, json!(calm)).await;
    let e = w["epoch"].as_u64().unwrap();
    app.get_json(&format!("/v1/users/{user}/analytics/scores?min_epoch={e}"))
        .await;
    let (client, mut updates) = connect(&app, &app.key).await;

    let templates = client.list_all_resource_templates().await.unwrap();
    let mut uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    uris.sort();
    assert_eq!(
        uris,
        [
            "vitasync://users/{user_id}/anomalies",
            "vitasync://users/{user_id}/context",
            "vitasync://users/{user_id}/scores",
        ]
    );
    let listed = client.list_all_resources().await.unwrap();
    let context_uri = format!("vitasync://users/{user}/context");
    let anomalies_uri = format!("vitasync://users/{user}/anomalies");
    assert!(listed.iter().any(|r| r.uri == context_uri));

    let read = |uri: String| {
        let client = &client;
        async move {
            let r = client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
                .unwrap();
            match &r.contents[0] {
                ResourceContents::TextResourceContents { text, .. } => {
                    serde_json::from_str::<Value>(text).unwrap()
                }
                other => panic!("expected text, got {other:?}"),
            }
        }
    };
    let context = read(context_uri.clone()).await;
    assert_eq!(
        context["data"],
        app.get_json(&format!("/v1/users/{user}/analytics/context"))
            .await["data"]
    );
    let scores = read(format!("vitasync://users/{user}/scores")).await;
    assert_eq!(
        scores["data"],
        app.get_json(&format!("/v1/users/{user}/analytics/scores"))
            .await["data"]
    );
    assert_eq!(read(anomalies_uri.clone()).await["data"], json!([]));
    assert!(
        client
            .read_resource(ReadResourceRequestParams::new(format!(
                "vitasync://users/{user}/mood"
            )))
            .await
            .is_err()
    );

    #[allow(deprecated)]
    client
        .subscribe(SubscribeRequestParams::new(anomalies_uri.clone()))
        .await
        .unwrap();
    let start = Instant::now();
    app.ingest(&user, json!([rhr(21, 66.0), rhr(22, 67.0)]))
        .await;
    let got = tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .expect("a resource update within 5 s")
        .unwrap();
    let latency = start.elapsed();
    assert_eq!(got, anomalies_uri);
    assert!(
        latency < Duration::from_secs(2),
        "notified after {latency:?}"
    );
    // After unsubscribing, changes are no longer announced.
    #[allow(deprecated)]
    client
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(
            anomalies_uri.clone(),
        ))
        .await
        .unwrap();
    app.ingest(&user, json!([rhr(23, 70.0)])).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), updates.recv())
            .await
            .is_err(),
        "notified after unsubscribing"
    );
    let now = read(anomalies_uri.clone()).await;
    assert!(
        now["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["method"] == "rhr_elevation"),
        "{now}"
    );
    client.cancel().await.unwrap();
}

async fn another_workspace_sees_nothing(app: TestApp) {
    let user = app.create_user("mcp-private", None).await;
    let w = app
        .ingest(
            &user,
            json!((1..=5).map(|d| rhr(d, 60.0)).collect::<Vec<_>>()),
        )
        .await;
    let e = w["epoch"].as_u64().unwrap();
    app.get_json(&format!("/v1/users/{user}/analytics/scores?min_epoch={e}"))
        .await;
    let other = other_workspace_key(&app).await;
    let (client, mut updates) = connect(&app, &other).await;

    assert_eq!(
        ok(&client, "list_users", json!({})).await["data"],
        json!([])
    );
    assert_eq!(
        ok(&client, "list_users", json!({"search": "mcp"})).await["data"],
        json!([])
    );
    assert_eq!(
        ok(&client, "list_connections", json!({})).await["data"],
        json!([])
    );
    for tool in [
        "list_connections",
        "query_health_metrics",
        "get_events",
        "get_personal_records",
        "get_health_context",
        "get_anomaly_alerts",
        "get_correlations",
        "get_health_scores",
    ] {
        let msg = tool_error(&client, tool, json!({"user_id": user})).await;
        assert!(msg.contains("not found"), "{tool}: {msg}");
    }
    assert!(client.list_all_resources().await.unwrap().is_empty());
    for kind in ["context", "anomalies", "scores"] {
        let uri = format!("vitasync://users/{user}/{kind}");
        assert!(
            client
                .read_resource(ReadResourceRequestParams::new(uri.clone()))
                .await
                .is_err(),
            "{uri} is readable from another workspace"
        );
        #[allow(deprecated)]
        let sub = client.subscribe(SubscribeRequestParams::new(uri)).await;
        assert!(sub.is_err(), "subscribed across workspaces");
    }
    app.ingest(&user, json!([rhr(6, 70.0)])).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), updates.recv())
            .await
            .is_err(),
        "another workspace's change was announced"
    );
    client.cancel().await.unwrap();

    // No key, a wrong key, a foreign Host: refused before any MCP handling.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}});
    let post = |key: Option<&str>| {
        let mut r = app
            .client
            .post(app.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let refused = post(None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["WWW-Authenticate"], "Bearer");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    assert_eq!(
        post(Some("vs_wrong")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(post(Some(&app.key)).await.unwrap().status(), StatusCode::OK);
    let foreign = app
        .client
        .post(app.url("/mcp"))
        .header("Host", "evil.example")
        .header("Accept", "application/json, text/event-stream")
        .bearer_auth(&app.key)
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
}

async fn the_prompt_guides_a_review(app: TestApp) {
    let user = app.create_user("mcp-prompt", None).await;
    let (client, _) = connect(&app, &app.key).await;
    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].name, "health_review");
    let args = prompts[0].arguments.as_ref().unwrap();
    assert!(
        args.iter()
            .any(|a| a.name == "user_id" && a.required == Some(true))
    );
    assert!(
        args.iter()
            .any(|a| a.name == "days" && a.required == Some(false))
    );

    let get = |args: Value| {
        let client = &client;
        async move {
            let Value::Object(args) = args else {
                unreachable!()
            };
            client
                .get_prompt(GetPromptRequestParams::new("health_review").with_arguments(args))
                .await
        }
    };
    let review = get(json!({"user_id": user, "days": "7"})).await.unwrap();
    let text = serde_json::to_value(&review.messages[0]).unwrap()["content"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&user), "{text}");
    assert!(text.contains("last 7 days"), "{text}");
    for tool in [
        "get_health_context",
        "get_health_scores",
        "get_anomaly_alerts",
    ] {
        assert!(text.contains(tool), "{text}");
    }
    let default_days = get(json!({"user_id": user})).await.unwrap();
    assert!(
        serde_json::to_string(&default_days.messages)
            .unwrap()
            .contains("last 14 days")
    );
    for (bad, field) in [
        (json!({}), "user_id"),
        (json!({"user_id": user, "days": "0"}), "days"),
        (json!({"user_id": uuid::Uuid::new_v4()}), "user"),
    ] {
        let err = get(bad.clone()).await.expect_err("a bad prompt argument");
        assert!(err.to_string().contains(field), "{bad}: {err}");
    }
    client.cancel().await.unwrap();
}

/// Clients of protocol 2026-07-28 (no `resources/subscribe`) listen with `subscriptions/listen`;
/// a URI of another workspace's user is acknowledged but never notified.
async fn modern_clients_listen(app: TestApp) {
    let user = app.create_user("mcp-modern", None).await;
    let w = app
        .ingest(
            &user,
            json!((1..=5).map(|d| rhr(d, 60.0)).collect::<Vec<_>>()),
        )
        .await;
    let e = w["epoch"].as_u64().unwrap();
    app.get_json(&format!("/v1/users/{user}/analytics/scores?min_epoch={e}"))
        .await;
    let uri = format!("vitasync://users/{user}/scores");
    let modern = |key: String| {
        let app = &app;
        async move {
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(key),
            );
            ().serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("MCP discover")
        }
    };
    let mine = modern(app.key.clone()).await;
    assert_eq!(
        mine.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    let theirs = modern(other_workspace_key(&app).await).await;
    let filter = || {
        let mut f = SubscriptionFilter::new();
        f.resource_subscriptions = Some(vec![uri.clone()]);
        f
    };
    let mut own = mine.peer().listen(filter()).await.expect("listen");
    let mut foreign = theirs.peer().listen(filter()).await.expect("listen");
    // The scores of a new day change.
    app.ingest(&user, json!([rhr(6, 61.0)])).await;
    let got = tokio::time::timeout(Duration::from_secs(5), own.next())
        .await
        .expect("an update within 5 s")
        .unwrap()
        .expect("a notification");
    match got {
        ServerNotification::ResourceUpdatedNotification(n) => assert_eq!(n.params.uri, uri),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), foreign.next())
            .await
            .is_err(),
        "another workspace's change reached a listener"
    );
    mine.cancel().await.unwrap();
    theirs.cancel().await.unwrap();
}

on_both_backends!(
    tools_match_the_rest_api,
    resources_and_subscriptions,
    another_workspace_sees_nothing,
    the_prompt_guides_a_review,
    modern_clients_listen
);
