//! The official MCP Python SDK against the real server, over streamable HTTP and over stdio
//! (the real `vitasync mcp` binary on the same database): `scripts/mcp_client_check.py`
//! initialises, lists and calls every tool with good and bad arguments, reads a resource,
//! subscribes, ingests through the REST API and waits for the update notification.
//!
//! The SDK comes from the test venv `scripts/test.sh` prepares (`scripts/test-requirements.txt`);
//! `VITASYNC_TEST_PYTHON` names its interpreter. A missing SDK fails the test: it is never
//! skipped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::common::{Backend, spawn_app};
use crate::for_both_backends;

fn python() -> PathBuf {
    let p = PathBuf::from(
        std::env::var("VITASYNC_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string()),
    );
    let has_sdk = std::process::Command::new(&p)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_sdk,
        "the MCP Python SDK is missing from {}: run the suite through scripts/test.sh (it prepares \
         a venv from scripts/test-requirements.txt) or point VITASYNC_TEST_PYTHON at a Python \
         with `mcp` installed",
        p.display()
    );
    p
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/mcp_client_check.py")
}

async fn python_sdk_over_http_and_stdio(backend: Backend) {
    let python = python();
    let app = spawn_app(backend).await;
    let user = app.create_user("py-sdk", None).await;
    let calm: Vec<_> = (1..=20)
        .map(|d| {
            json!({"metric": "resting_heart_rate", "value": 58.0 + f64::from(d % 3),
                   "recorded_at": format!("2024-03-{d:02}T06:00:00Z")})
        })
        .collect();
    let w = app.ingest(&user, json!(calm)).await;
    let e = w["epoch"].as_u64().unwrap();
    app.get_json(&format!("/v1/users/{user}/analytics/scores?min_epoch={e}"))
        .await;

    let runs = [
        ("http", app.url("/mcp"), "21"),
        ("stdio", env!("CARGO_BIN_EXE_vitasync").to_string(), "22"),
    ];
    for (kind, target, day) in runs {
        let mut cmd = tokio::process::Command::new(&python);
        cmd.arg(script())
            .args([kind, &target, &app.base, &app.key, &user, day])
            .env("VITASYNC_API_KEY", &app.key)
            .env("VITASYNC_DATA_DIR", &app.config.data_dir)
            .env("RUST_LOG", "warn")
            .env_remove("VITASYNC_CONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match &app.config.database_url {
            Some(url) => cmd.env("DATABASE_URL", url),
            None => cmd.env_remove("DATABASE_URL"),
        };
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("the {kind} check did not finish in 120 s"))
            .expect("run the Python MCP check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains(&format!("ok {kind}")),
            "{kind} check failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        eprintln!("{stdout}");
    }
}

for_both_backends!(python_sdk_over_http_and_stdio);
