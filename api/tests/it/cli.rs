//! The `vitasync` binary's subcommands, run as a user would.

use std::process::Command;

use serde_json::Value;

fn vitasync(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vitasync"))
        .args(args)
        .env("VITASYNC_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .env_remove("VITASYNC_CONFIG")
        .env_remove("VITASYNC_API_KEY")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run vitasync");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = vitasync(dir.path(), &["--help"]);
    assert!(ok);
    for cmd in ["demo", "serve", "mcp", "migrate", "workspace", "keys"] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
    let (ok, out, _) = vitasync(dir.path(), &["keys", "--help"]);
    assert!(ok);
    for cmd in ["create", "list", "revoke"] {
        assert!(out.contains(cmd), "keys --help lacks {cmd}: {out}");
    }
}

/// `vitasync mcp` needs a usable read key and an existing store, and says which is missing.
#[test]
fn mcp_refuses_without_a_store_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = vitasync(dir.path(), &["mcp"]);
    assert!(!ok && err.contains("api-key"), "{err}");
    let (ok, _, err) = vitasync(dir.path(), &["mcp", "--api-key", "vs_nope"]);
    assert!(!ok && err.contains("no store"), "{err}");
    assert!(
        !dir.path().join("vitasync.db").exists(),
        "mcp created a database"
    );
    let (ok, _, err) = vitasync(dir.path(), &["migrate"]);
    assert!(ok, "{err}");
    let (ok, _, err) = vitasync(dir.path(), &["mcp", "--api-key", "vs_nope"]);
    assert!(!ok && err.contains("VITASYNC_API_KEY"), "{err}");
}

#[test]
fn workspace_and_key_management() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = vitasync(dir.path(), &["migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains("migrated"));

    let (ok, out, err) = vitasync(dir.path(), &["workspace", "create", "acme"]);
    assert!(ok, "{err}");
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["slug"], "acme");
    assert!(last["workspace_id"].as_str().unwrap().len() == 36);
    assert!(last["api_key"].as_str().unwrap().starts_with("vs_"));
    assert_eq!(
        out.lines().last().unwrap().find("workspace_id"),
        Some(2),
        "workspace_id comes first"
    );

    let (ok, _, err) = vitasync(dir.path(), &["workspace", "create", "acme"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = vitasync(dir.path(), &["workspace", "create", "Not A Slug"]);
    assert!(!ok && err.contains("slug"), "{err}");

    let (ok, out, err) = vitasync(
        dir.path(),
        &[
            "keys",
            "create",
            "--workspace",
            "acme",
            "--name",
            "etl",
            "--scopes",
            "read,write",
        ],
    );
    assert!(ok, "{err}");
    let key: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(key["scopes"], serde_json::json!(["read", "write"]));
    let id = key["id"].as_str().unwrap().to_string();

    let (ok, out, _) = vitasync(dir.path(), &["keys", "list", "--workspace", "acme"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 2);
    assert!(
        !out.contains(key["key"].as_str().unwrap()),
        "list never shows secrets"
    );

    let (ok, _, err) = vitasync(dir.path(), &["keys", "revoke", "--workspace", "acme", &id]);
    assert!(ok, "{err}");
    let (ok, out, _) = vitasync(dir.path(), &["keys", "list", "--workspace", "acme"]);
    assert!(ok);
    let revoked = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    assert!(revoked["revoked_at"].is_string());

    let (ok, _, err) = vitasync(dir.path(), &["keys", "list", "--workspace", "nope"]);
    assert!(!ok && err.contains("nope"), "{err}");
}

/// `vitasync demo` on the embedded default: serves synced demo data, honours the listen
/// address, data dir and bootstrap key, and prints a working curl line.
#[actix_web::test]
async fn demo_serves_synced_data() {
    use tokio::io::AsyncBufReadExt as _;

    let dir = tempfile::tempdir().unwrap();
    let key = "vs_demo_bootstrap_key_0123456789abcdefghijkl";
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vitasync"))
        .arg("demo")
        .env("VITASYNC_DATA_DIR", dir.path())
        .env("VITASYNC_LISTEN", "127.0.0.1:0")
        .env("VITASYNC_BOOTSTRAP_API_KEY", key)
        .env_remove("DATABASE_URL")
        .env_remove("VITASYNC_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("run vitasync demo");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut out = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("Ctrl-C");
            out.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(300), read)
        .await
        .expect("the demo finishes its backfill and prints a summary");
    let text = out.join("\n");
    assert!(text.contains("users:    3"), "{text}");
    assert!(text.contains(&format!("API key:  {key}")), "{text}");
    assert!(text.contains("/mcp (streamable HTTP"), "{text}");
    let samples: u64 = out
        .iter()
        .find_map(|l| l.trim().strip_prefix("samples:"))
        .expect("a sample count")
        .trim()
        .parse()
        .unwrap();
    assert!(samples > 30_000, "90 days for 3 users: {samples}");
    assert!(
        dir.path().join("vitasync.db").exists(),
        "the data dir is honoured"
    );

    // The printed curl line works.
    vitasync_engine::providers::http::install_crypto_provider();
    let curl = out
        .iter()
        .find(|l| l.trim().starts_with("curl "))
        .expect("a curl line");
    let url = curl.rsplit('\'').nth(1).expect("a quoted URL");
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["data"].as_array().unwrap().len() >= 80, "{body}");
    child.kill().await.unwrap();
}

#[test]
fn vapid_generate_prints_a_usable_key_pair() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = vitasync(dir.path(), &["vapid", "generate"]);
    assert!(ok, "{err}");
    let keys: Value = serde_json::from_str(out.trim()).unwrap();
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(keys["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        (public.len(), public[0]),
        (65, 4),
        "an uncompressed P-256 point"
    );
    // The private key is accepted as the server's VAPID key.
    let env = [(
        "VITASYNC_VAPID_PRIVATE_KEY".to_string(),
        keys["private_key"].as_str().unwrap().to_string(),
    )]
    .into();
    let config = vitasync_engine::config::Config::load(None, &env).unwrap();
    let settings = vitasync_engine::notify::settings::NotifySettings::from_config(&config).unwrap();
    assert!(settings.vapid.is_some());
}
