//! `spawn_app`: the real application on port 0 with a fresh database, plus request helpers.
#![allow(dead_code)]

use std::collections::HashMap;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use vitasync_api::startup::{Application, Overrides};
use vitasync_engine::config::Config;
use vitasync_engine::crypto::generate_key_b64;
use vitasync_engine::services::sync::SyncEnv;
use vitasync_engine::services::workspaces;
use vitasync_engine::store::DynStore;
pub use vitasync_testkit::Backend;
use vitasync_testkit::FreshDb;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Admin key of the test workspace.
    pub key: String,
    pub workspace_id: String,
    pub store: DynStore,
    pub db: FreshDb,
    pub config: Config,
    /// The running app's providers, bus and key ring.
    pub sync: SyncEnv,
    pub actors: vitasync_actors::SyncHandle,
    pub analytics: std::sync::Arc<vitasync_dataflow::Analytics>,
    pub notifier: vitasync_actors::NotifyHandle,
    handle: actix_web::dev::ServerHandle,
    /// The server task: it ends after the app's shutdown ran.
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Base configuration for a test app on `db`.
pub fn test_config(db: &FreshDb) -> Config {
    let env: HashMap<String, String> = [
        ("VITASYNC_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "VITASYNC_DATA_DIR".to_string(),
            db.dir.path().display().to_string(),
        ),
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("VITASYNC_ENCRYPTION_KEY".to_string(), generate_key_b64()),
        ("VITASYNC_RATE_LIMIT_RPS".to_string(), "0".to_string()),
        // Test receivers listen on loopback; the SSRF test turns this off again.
        (
            "VITASYNC_ALLOW_PRIVATE_TARGETS".to_string(),
            "true".to_string(),
        ),
    ]
    .into();
    Config::load(None, &env).expect("test config")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns the app after letting the test adjust its configuration.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db = vitasync_testkit::fresh(backend).await;
    let mut config = test_config(&db);
    tweak(&mut config);
    start(db, config).await
}

/// Spawns the app with adjusted configuration and timing overrides (fast backoff, short
/// timeouts) for tests of the sync machinery.
pub async fn spawn_app_tuned(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
    overrides: Overrides,
) -> TestApp {
    let db = vitasync_testkit::fresh(backend).await;
    let mut config = test_config(&db);
    tweak(&mut config);
    start_with(db, config, overrides).await
}

/// Starts the application on an existing database (e.g. to restart it).
pub async fn start(db: FreshDb, config: Config) -> TestApp {
    start_with(db, config, Overrides::default()).await
}

pub async fn start_with(db: FreshDb, config: Config, overrides: Overrides) -> TestApp {
    let store = vitasync_api::startup::open_store(&config)
        .await
        .expect("store opens");
    let app = Application::build_with(config.clone(), store, overrides)
        .await
        .expect("application builds");
    let port = app.port();
    let store = app.state().store.clone();
    let sync = app.state().sync.clone();
    let actors = app.state().actors.clone();
    let analytics = app.state().analytics.clone();
    let notifier = app.state().notifier.clone();
    let handle = app.server_handle();
    let served = actix_web::rt::spawn(app.run_until_stopped());
    let (ws, key) = workspaces::create_with_admin_key(
        store.as_ref(),
        &format!("ws-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
        None,
    )
    .await
    .expect("workspace");
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        key: key.secret,
        workspace_id: ws.id.to_string(),
        store,
        db,
        config,
        sync,
        actors,
        analytics,
        notifier,
        handle,
        served,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with `key` (None = no Authorization header).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call(Method::GET, path, Some(&self.key), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(&self.key), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.call(Method::PATCH, path, Some(&self.key), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.call(Method::DELETE, path, Some(&self.key), None).await
    }

    /// GET expecting 200, returning the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        json_ok(self.get(path).await).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, external_id: &str, timezone: Option<&str>) -> String {
        let mut body = json!({"external_id": external_id});
        if let Some(tz) = timezone {
            body["timezone"] = json!(tz);
        }
        let res = self.post("/v1/users", body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Pushes samples for `user`, expecting 200; returns the write counts.
    pub async fn ingest(&self, user: &str, samples: Value) -> Value {
        let res = self
            .post(
                &format!("/v1/users/{user}/health"),
                json!({ "samples": samples }),
            )
            .await;
        json_ok(res).await
    }

    /// Polls a sync job until it has finished (or `secs` pass) and returns it.
    pub async fn wait_job(&self, job_id: &str, secs: u64) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let job = self.get_json(&format!("/v1/sync-jobs/{job_id}")).await;
            if job["status"] == "succeeded" || job["status"] == "failed" {
                return job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "job {job_id} did not finish in {secs} s: {job}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Connects the demo provider for `user` with `days` of history; returns (connection id,
    /// backfill job id).
    pub async fn connect_demo(&self, user: &str, days: u32) -> (String, String) {
        let res = self
            .post(
                &format!("/v1/users/{user}/connections"),
                json!({"provider": "demo", "days": days}),
            )
            .await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["connection"]["id"].as_str().unwrap().to_string(),
            body["job_id"].as_str().unwrap().to_string(),
        )
    }

    /// Creates a key with `scopes` in this workspace and returns the secret.
    pub async fn key_with(&self, scopes: &[&str]) -> String {
        let res = self
            .post("/v1/api-keys", json!({"name": "test", "scopes": scopes}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Stops the server, then the sync actors (at their next batch boundary) and the
    /// notification tasks.
    /// Stops the app as a signal would: the server, then its background work (the same
    /// shutdown as in production, awaited to its end).
    pub async fn stop(self) -> (FreshDb, Config) {
        self.handle.stop(true).await;
        self.served
            .await
            .expect("the server task ends")
            .expect("the server stops cleanly");
        (self.db, self.config)
    }
}

/// An admin key of a second, unrelated workspace.
pub async fn other_workspace_key(app: &TestApp) -> String {
    let slug = format!("other-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (_, issued) = workspaces::create_with_admin_key(app.store.as_ref(), &slug, None)
        .await
        .expect("second workspace");
    issued.secret
}

/// Asserts 200 and returns the body.
pub async fn json_ok(res: Response) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "body: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Asserts the status and the error envelope, returning the error object.
pub async fn expect_error(res: Response, status: StatusCode, code: &str) -> Value {
    let got = res.status();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "body: {body}");
    let v: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("error body is not JSON: {body}"));
    assert_eq!(v["error"]["code"], code, "body: {body}");
    assert!(v["error"]["message"].is_string(), "body: {body}");
    v["error"].clone()
}

/// Runs each named `async fn(TestApp)` once per backend, as `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::common::spawn_app($crate::common::Backend::Sqlite).await).await
            }
            #[actix_web::test]
            async fn postgres() {
                super::$name($crate::common::spawn_app($crate::common::Backend::Postgres).await).await
            }
        }
    )*};
}

/// Runs each named `async fn(Backend)` once per backend, for tests that build their own app
/// (extra configuration, a mock provider, timing overrides).
#[macro_export]
macro_rules! for_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() { super::$name($crate::common::Backend::Sqlite).await }
            #[actix_web::test]
            async fn postgres() { super::$name($crate::common::Backend::Postgres).await }
        }
    )*};
}
