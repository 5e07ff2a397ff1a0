//! Notification channels and rules against real local receivers: an HTTP capture server for the
//! chat channels, ntfy and signed webhooks, an in-process SMTP server for email, and a Web Push
//! endpoint whose payload an independent implementation (PyPI http_ece) decrypts and whose VAPID
//! JWT is verified. End to end: an anomaly reaches ntfy and the workspace webhook once, and its
//! correction resolves it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use vitasync_engine::notify::signing;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::{Backend, TestApp, expect_error, json_ok, spawn_app_with};
use crate::{for_both_backends, on_both_backends};

/// A receiver that answers every POST with 200 and remembers it.
pub async fn capture() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The requests `server` received on `path`.
pub async fn received(server: &MockServer, path: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

/// Waits until `server` has at least `n` requests on `path` (or `secs` pass), then returns them.
pub async fn wait_received(server: &MockServer, path: &str, n: usize, secs: u64) -> Vec<Request> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let got = received(server, path).await;
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn header(r: &Request, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Checks the signature as a receiver would (five-minute replay window) and returns the body.
pub fn verified(r: &Request, secret: &str) -> Value {
    let sig = header(r, "VitaSync-Signature");
    assert!(
        signing::verify(secret, &sig, &r.body, chrono::Utc::now().timestamp(), 300),
        "signature {sig} does not verify"
    );
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(header(r, "VitaSync-Event"), body["type"].as_str().unwrap());
    assert_eq!(header(r, "VitaSync-Delivery"), body["id"].as_str().unwrap());
    body
}

async fn create_channel(app: &TestApp, user: &str, body: Value) -> Value {
    let res = app
        .post(&format!("/v1/users/{user}/notifications/channels"), body)
        .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn channel_payloads_and_logs(app: TestApp) {
    let rx = capture().await;
    let user = app.create_user("chan-1", None).await;
    let base = rx.uri();
    let discord = create_channel(
        &app,
        &user,
        json!({"type": "discord", "name": "d",
        "config": {"webhook_url": format!("{base}/discord/123/secret-token-abcd")}}),
    )
    .await;
    // The URL carries the token: only scheme, host and the last characters are shown.
    assert_eq!(
        discord["config"]["webhook_url"],
        json!(format!("{base}/…abcd"))
    );
    assert!(discord.get("secret").is_none());
    let slack = create_channel(
        &app,
        &user,
        json!({"type": "slack", "name": "s",
        "config": {"webhook_url": format!("{base}/slack")}}),
    )
    .await;
    let teams = create_channel(
        &app,
        &user,
        json!({"type": "teams", "name": "t",
        "config": {"webhook_url": format!("{base}/teams")}}),
    )
    .await;
    let ntfy = create_channel(&app, &user, json!({"type": "ntfy", "name": "n",
        "config": {"topic_url": format!("{base}/ntfy/alerts"), "token": "tk_secret", "priority": 2}})).await;
    assert_eq!(ntfy["config"]["token"], "********");
    let hook = create_channel(
        &app,
        &user,
        json!({"type": "webhook", "name": "w",
        "config": {"url": format!("{base}/hook")}}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let got = app
        .get_json(&format!(
            "/v1/users/{user}/notifications/channels/{}",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert!(got.get("secret").is_none() && got["config"]["secret"] == "********");

    for ch in [&discord, &slack, &teams, &ntfy, &hook] {
        let id = ch["id"].as_str().unwrap();
        let log = json_ok(
            app.post(
                &format!("/v1/users/{user}/notifications/channels/{id}/test"),
                json!({}),
            )
            .await,
        )
        .await;
        assert_eq!(log["status"], "delivered", "{log}");
        assert_eq!(log["response_code"], 200);
        assert_eq!(log["attempt"], 1);
        assert_eq!(log["event_type"], "test");
    }

    let d = &received(&rx, "/discord/123/secret-token-abcd").await[0];
    let d: Value = serde_json::from_slice(&d.body).unwrap();
    let embed = &d["embeds"][0];
    assert_eq!(embed["title"], "VitaSync test notification");
    assert_eq!(embed["color"], json!(0x3498db));
    assert_eq!(embed["footer"]["text"], "test");

    let s: Value = serde_json::from_slice(&received(&rx, "/slack").await[0].body).unwrap();
    assert_eq!(s["blocks"][0]["type"], "header");
    assert_eq!(s["blocks"][0]["text"]["text"], "VitaSync test notification");
    assert_eq!(s["blocks"][1]["type"], "section");
    assert!(s["text"].as_str().unwrap().contains("test of the channel"));

    let t: Value = serde_json::from_slice(&received(&rx, "/teams").await[0].body).unwrap();
    assert_eq!(t["type"], "message");
    let card = &t["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(
        card["content"]["body"][0]["text"],
        "VitaSync test notification"
    );

    let n = &received(&rx, "/ntfy/alerts").await[0];
    assert_eq!(header(n, "Title"), "VitaSync test notification");
    assert_eq!(header(n, "Priority"), "2");
    assert_eq!(header(n, "Tags"), "info,system,test");
    assert_eq!(header(n, "Authorization"), "Bearer tk_secret");
    assert!(String::from_utf8_lossy(&n.body).contains("test of the channel 'n'"));

    let w = &received(&rx, "/hook").await[0];
    let body = verified(w, &secret);
    assert_eq!(body["type"], "test");
    assert_eq!(body["workspace_id"], json!(app.workspace_id));
    assert!(!signing::verify(
        "whsec_wrong",
        &header(w, "VitaSync-Signature"),
        &w.body,
        chrono::Utc::now().timestamp(),
        300
    ));

    // Every attempt is logged and can be filtered.
    let logs = app
        .get_json(&format!("/v1/users/{user}/notifications/logs"))
        .await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 5);
    let one = app
        .get_json(&format!(
            "/v1/users/{user}/notifications/logs?channel_id={}&status=delivered",
            ntfy["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert!(one["data"][0]["latency_ms"].is_u64());
    let page = app
        .get_json(&format!("/v1/users/{user}/notifications/logs?limit=2"))
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let next = app
        .get_json(&format!(
            "/v1/users/{user}/notifications/logs?limit=10&cursor={}",
            page["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(next["data"].as_array().unwrap().len(), 3);
    let bad = app
        .get(&format!("/v1/users/{user}/notifications/logs?status=maybe"))
        .await;
    assert_eq!(
        expect_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["field"],
        "status"
    );

    // Patching keeps the webhook secret and re-masks; deleting removes it from listings.
    let id = slack["id"].as_str().unwrap();
    let patched = json_ok(
        app.patch(
            &format!("/v1/users/{user}/notifications/channels/{id}"),
            json!({"name": "renamed", "enabled": false}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (patched["name"].as_str(), patched["enabled"].as_bool()),
        (Some("renamed"), Some(false))
    );
    let res = app
        .delete(&format!("/v1/users/{user}/notifications/channels/{id}"))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let list = app
        .get_json(&format!("/v1/users/{user}/notifications/channels"))
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 4);
}

async fn invalid_configs_name_the_field(app: TestApp) {
    let user = app.create_user("chan-bad", None).await;
    let path = format!("/v1/users/{user}/notifications/channels");
    for (body, field) in [
        (json!({"type": "pager", "name": "x", "config": {}}), "type"),
        (
            json!({"type": "discord", "name": "x", "config": {}}),
            "config.webhook_url",
        ),
        (
            json!({"type": "slack", "name": "x", "config": {"webhook_url": "ftp://x/y"}}),
            "config.webhook_url",
        ),
        (
            json!({"type": "teams", "name": "x", "config": {"webhook_url": "http://127.0.0.1/x", "extra": 1}}),
            "config",
        ),
        (
            json!({"type": "email", "name": "x", "config": {"to": "not an address"}}),
            "config.to",
        ),
        (
            json!({"type": "ntfy", "name": "x", "config": {"topic_url": "http://127.0.0.1/t", "priority": 9}}),
            "config.priority",
        ),
        (
            json!({"type": "push", "name": "x", "config": {"endpoint": "http://127.0.0.1/p", "p256dh": "AAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}),
            "config.p256dh",
        ),
        (
            json!({"type": "webhook", "name": "", "config": {"url": "http://127.0.0.1/h"}}),
            "name",
        ),
    ] {
        let err = expect_error(
            app.post(&path, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(
            err["field"].as_str().unwrap().starts_with(field),
            "{body}: {err}"
        );
    }
    let rx = capture().await;
    let ch = create_channel(
        &app,
        &user,
        json!({"type": "ntfy", "name": "n",
        "config": {"topic_url": format!("{}/t", rx.uri())}}),
    )
    .await;
    let rules = format!("/v1/users/{user}/notifications/rules");
    for (body, field) in [
        (
            json!({"channel_ids": [], "categories": ["anomaly"], "min_severity": "info"}),
            "channel_ids",
        ),
        (
            json!({"channel_ids": [uuid::Uuid::new_v4()], "categories": ["anomaly"], "min_severity": "info"}),
            "channel_ids[0]",
        ),
        (
            json!({"channel_ids": [ch["id"]], "categories": ["weather"], "min_severity": "info"}),
            "categories[0]",
        ),
        (
            json!({"channel_ids": [ch["id"]], "categories": ["anomaly"], "min_severity": "loud"}),
            "min_severity",
        ),
        (
            json!({"channel_ids": [ch["id"]], "categories": ["anomaly"], "min_severity": "info", "quiet_hours": {"start": "25:00", "end": "07:00"}}),
            "quiet_hours.start",
        ),
        (
            json!({"channel_ids": [ch["id"]], "categories": ["anomaly"], "min_severity": "info", "hourly_cap": 0}),
            "hourly_cap",
        ),
    ] {
        let err = expect_error(
            app.post(&rules, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(err["field"], field, "{body}: {err}");
    }
    // Rules and channels are per user: another workspace sees nothing.
    let other = crate::common::other_workspace_key(&app).await;
    let res = app
        .call(reqwest::Method::GET, &rules, Some(&other), None)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

fn spo2(percent: f64) -> Value {
    json!({"metric": "spo2", "value": percent, "recorded_at": "2024-03-01T06:00:00Z"})
}

fn rhr(day: u32, bpm: f64) -> Value {
    json!({"metric": "resting_heart_rate", "value": bpm,
           "recorded_at": format!("2024-03-{day:02}T06:00:00Z")})
}

async fn an_anomaly_notifies_once_and_its_correction_resolves(app: TestApp) {
    let rx = capture().await;
    let user = app.create_user("e2e-1", None).await;
    let ntfy = create_channel(
        &app,
        &user,
        json!({"type": "ntfy", "name": "phone",
        "config": {"topic_url": format!("{}/ntfy/health", rx.uri())}}),
    )
    .await;
    let rule = app
        .post(
            &format!("/v1/users/{user}/notifications/rules"),
            json!({"channel_ids": [ntfy["id"]], "categories": ["anomaly"], "min_severity": "warning"}),
        )
        .await;
    assert_eq!(rule.status(), StatusCode::CREATED);
    let hook = app
        .post(
            "/v1/webhooks",
            json!({"url": format!("{}/hook", rx.uri()), "events": ["anomaly.detected", "anomaly.resolved"]}),
        )
        .await;
    assert_eq!(hook.status(), StatusCode::CREATED);
    let hook: Value = hook.json().await.unwrap();
    let secret = hook["secret"].as_str().unwrap().to_string();

    // One blood-oxygen reading below the clinical threshold: exactly one (critical) anomaly.
    app.ingest(&user, json!([spo2(88.0)])).await;
    let hooks = wait_received(&rx, "/hook", 1, 30).await;
    let pushes = wait_received(&rx, "/ntfy/health", 1, 30).await;
    // Let anything that would be a duplicate arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hooks = if hooks.len() == received(&rx, "/hook").await.len() {
        hooks
    } else {
        received(&rx, "/hook").await
    };
    let pushes = if pushes.len() == received(&rx, "/ntfy/health").await.len() {
        pushes
    } else {
        received(&rx, "/ntfy/health").await
    };
    assert_eq!(hooks.len(), 1, "exactly one webhook delivery");
    assert_eq!(pushes.len(), 1, "exactly one ntfy message");
    let detected = verified(&hooks[0], &secret);
    assert_eq!(detected["type"], "anomaly.detected");
    assert_eq!(detected["data"]["user_id"], json!(user));
    let anomaly = &detected["data"]["anomaly"];
    assert_eq!(anomaly["method"], "clinical");
    assert_eq!(anomaly["metric"], "spo2");
    assert_eq!(anomaly["severity"], "critical");
    assert_eq!(header(&pushes[0], "Priority"), "5");
    assert!(header(&pushes[0], "Tags").contains("anomaly.detected"));

    // Correcting the reading retracts the finding.
    app.ingest(&user, json!([spo2(97.0)])).await;
    let hooks = wait_received(&rx, "/hook", 2, 30).await;
    assert_eq!(hooks.len(), 2);
    let resolved = verified(&hooks[1], &secret);
    assert_eq!(resolved["type"], "anomaly.resolved");
    assert_eq!(resolved["data"]["anomaly"]["id"], anomaly["id"]);
    assert_ne!(resolved["id"], detected["id"]);
    // Resolutions are `info`: below this rule's threshold, so no second ntfy message.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(&rx, "/ntfy/health").await.len(), 1);

    let logs = app
        .get_json(&format!("/v1/users/{user}/notifications/logs"))
        .await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 1);
    assert_eq!(logs["data"][0]["event_type"], "anomaly.detected");
    assert_eq!(logs["data"][0]["rule_id"], rule_id(&app, &user).await);
    let deliveries = app
        .get_json(&format!(
            "/v1/webhooks/{}/deliveries",
            hook["id"].as_str().unwrap()
        ))
        .await;
    let statuses: Vec<_> = deliveries["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("succeeded"), json!("succeeded")]);
}

async fn rule_id(app: &TestApp, user: &str) -> Value {
    app.get_json(&format!("/v1/users/{user}/notifications/rules"))
        .await["data"][0]["id"]
        .clone()
}

async fn rules_filter_by_category_severity_and_quiet_hours(app: TestApp) {
    let rx = capture().await;
    let user = app.create_user("rules-1", Some("UTC")).await;
    let ch = create_channel(
        &app,
        &user,
        json!({"type": "ntfy", "name": "n",
        "config": {"topic_url": format!("{}/n", rx.uri())}}),
    )
    .await;
    let rules = format!("/v1/users/{user}/notifications/rules");
    // Quiet from an hour ago to an hour from now (the user's zone is UTC), and a sync rule:
    // neither admits an anomaly.
    let now = chrono::Utc::now();
    let hhmm = |t: chrono::DateTime<chrono::Utc>| t.format("%H:%M").to_string();
    let quiet = json_created(
        app.post(
            &rules,
            json!({"channel_ids": [ch["id"]], "categories": ["anomaly"],
        "min_severity": "info", "quiet_hours": {"start": hhmm(now - chrono::Duration::hours(1)),
        "end": hhmm(now + chrono::Duration::hours(1))}}),
        )
        .await,
    )
    .await;
    json_created(
        app.post(
            &rules,
            json!({"channel_ids": [ch["id"]], "categories": ["sync"], "min_severity": "info"}),
        )
        .await,
    )
    .await;
    let calm: Vec<_> = (1..=20).map(|d| rhr(d, 58.0 + f64::from(d % 3))).collect();
    app.ingest(&user, json!(calm)).await;
    app.ingest(&user, json!([rhr(21, 66.0), rhr(22, 67.0)]))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        received(&rx, "/n").await.is_empty(),
        "quiet hours and categories hold"
    );
    // Lifting the quiet hours lets the next anomaly through (capped at one an hour).
    let id = quiet["id"].as_str().unwrap();
    let patched = json_ok(
        app.patch(
            &format!("{rules}/{id}"),
            json!({"quiet_hours": null, "hourly_cap": 1}),
        )
        .await,
    )
    .await;
    assert!(patched["quiet_hours"].is_null());
    app.ingest(&user, json!([rhr(23, 68.0), rhr(24, 69.0), rhr(25, 70.0)]))
        .await;
    let got = wait_received(&rx, "/n", 1, 30).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        got.len().max(received(&rx, "/n").await.len()),
        1,
        "the hourly cap holds"
    );
    let res = app.delete(&format!("{rules}/{id}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.delete(&format!("{rules}/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn json_created(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

on_both_backends!(
    channel_payloads_and_logs,
    invalid_configs_name_the_field,
    an_anomaly_notifies_once_and_its_correction_resolves,
    rules_filter_by_category_severity_and_quiet_hours,
);

/// A minimal SMTP server that accepts every message and keeps its DATA.
async fn smtp_capture() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let store = mails.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r);
                w.write_all(b"220 capture ESMTP\r\n").await.unwrap();
                let mut line = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250-capture\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        w.write_all(b"354 go on\r\n").await.unwrap();
                        let mut data = String::new();
                        loop {
                            line.clear();
                            lines.read_line(&mut line).await.unwrap();
                            if line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        store.lock().unwrap().push(data);
                        b"250 queued\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

async fn email_carries_text_and_html(backend: Backend) {
    let (port, mails) = smtp_capture().await;
    let app = spawn_app_with(backend, |c| {
        c.smtp_host = Some("127.0.0.1".into());
        c.smtp_port = Some(port);
        c.smtp_security = "plain".into();
        c.smtp_from = "VitaSync <alerts@vitasync.test>".into();
    })
    .await;
    let user = app.create_user("mail-1", None).await;
    let ch = create_channel(
        &app,
        &user,
        json!({"type": "email", "name": "inbox",
        "config": {"to": "Ada <ada@example.test>"}}),
    )
    .await;
    assert_eq!(ch["config"]["to"], "Ada <ada@example.test>");
    let log = json_ok(
        app.post(
            &format!(
                "/v1/users/{user}/notifications/channels/{}/test",
                ch["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(log["status"], "delivered", "{log}");
    assert_eq!(log["response_code"], 250);
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert!(
        m.contains("Subject: [VitaSync] VitaSync test notification"),
        "{m}"
    );
    assert!(m.contains("To: Ada <ada@example.test>"), "{m}");
    assert!(m.contains("multipart/alternative"), "{m}");
    assert!(m.contains("Content-Type: text/plain"), "{m}");
    assert!(m.contains("Content-Type: text/html"), "{m}");
    assert!(m.contains("<h2>VitaSync test notification</h2>"), "{m}");
}

async fn web_push_is_encrypted_and_vapid_signed(backend: Backend) {
    use web_push_native::jwt_simple::prelude::*;
    use web_push_native::p256;
    let (private_key, public_key) = vitasync_engine::notify::settings::generate_vapid();
    let app = spawn_app_with(backend, |c| {
        c.vapid_private_key = Some(private_key.clone());
        c.vapid_subject = "mailto:ops@vitasync.test".into();
    })
    .await;
    let rx = capture().await;
    // The browser's side of a subscription.
    let ua_secret = p256::SecretKey::random(&mut rand_core_06());
    let ua_public = ua_secret.public_key().to_sec1_bytes();
    let auth: [u8; 16] = rand::random();
    let user = app.create_user("push-1", None).await;
    let ch = create_channel(&app, &user, json!({"type": "push", "name": "browser",
        "config": {"endpoint": format!("{}/push/sub-1", rx.uri()),
                   "p256dh": URL_SAFE_NO_PAD.encode(&ua_public), "auth": URL_SAFE_NO_PAD.encode(auth)}})).await;
    assert_eq!(ch["config"]["auth"], "********");
    let log = json_ok(
        app.post(
            &format!(
                "/v1/users/{user}/notifications/channels/{}/test",
                ch["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(log["status"], "delivered", "{log}");
    let req = &received(&rx, "/push/sub-1").await[0];
    assert_eq!(header(req, "Content-Encoding"), "aes128gcm");
    assert!(header(req, "TTL").parse::<u64>().unwrap() > 0);
    // VAPID: `vapid t=<JWT>, k=<server public key>`, the JWT signed by that key for the
    // endpoint's origin.
    let authz = header(req, "Authorization");
    let rest = authz.strip_prefix("vapid ").expect("a VAPID authorization");
    let (t, k) = rest.split_once(", ").unwrap();
    let (token, k) = (t.strip_prefix("t=").unwrap(), k.strip_prefix("k=").unwrap());
    assert_eq!(k, public_key);
    let key = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
    let claims = key
        .verify_token::<NoCustomClaims>(token, None)
        .expect("the JWT verifies");
    let origin = format!("http://{}", rx.address().ip());
    assert_eq!(claims.audiences.unwrap().into_string().unwrap(), origin);
    assert_eq!(claims.subject.as_deref(), Some("mailto:ops@vitasync.test"));
    // The payload decrypts with the subscription's private key and auth secret — checked by an
    // independent implementation (PyPI http_ece, as browsers' RFC 8291), not the sender's.
    let body_file = std::env::temp_dir().join(format!("vitasync-push-{}", uuid::Uuid::new_v4()));
    std::fs::write(&body_file, &req.body).unwrap();
    let python = std::env::var("VITASYNC_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webpush/decrypt.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(hex::encode(ua_secret.to_bytes()))
        .arg(URL_SAFE_NO_PAD.encode(auth))
        .arg(&body_file)
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    let _ = std::fs::remove_file(&body_file);
    assert!(
        out.status.success(),
        "http_ece could not decrypt the push message (scripts/test.sh prepares a Python with it \
         and sets VITASYNC_TEST_PYTHON): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msg: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(msg["title"], "VitaSync test notification");
    assert_eq!(msg["type"], "test");
    // And the sender's own library agrees.
    let plain =
        web_push_native::decrypt(req.body.clone(), &ua_secret, &auth.into()).expect("decrypts");
    assert_eq!(plain, out.stdout);
}

/// p256 0.13 takes a rand_core 0.6 RNG.
fn rand_core_06() -> impl web_push_native::p256::elliptic_curve::rand_core::CryptoRngCore {
    web_push_native::p256::elliptic_curve::rand_core::OsRng
}

async fn private_targets_are_refused_by_default(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.allow_private_targets = false).await;
    let user = app.create_user("ssrf-1", None).await;
    let path = format!("/v1/users/{user}/notifications/channels");
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://10.0.0.1/x",
        "http://192.168.1.10/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[fd00:ec2::254]/x",
    ] {
        let err = expect_error(
            app.post(
                &path,
                json!({"type": "discord", "name": "x", "config": {"webhook_url": url}}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(err["field"], "config.webhook_url", "{url}: {err}");
        let err = expect_error(
            app.post(
                "/v1/webhooks",
                json!({"url": url, "events": ["sync.failed"]}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(err["field"], "url", "{url}: {err}");
    }
    let err = expect_error(
        app.post(
            "/v1/webhooks",
            json!({"url": "file:///etc/passwd", "events": ["sync.failed"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(err["field"], "url");
}

for_both_backends!(
    email_carries_text_and_html,
    web_push_is_encrypted_and_vapid_signed,
    private_targets_are_refused_by_default,
);
