//! The `vitasync` binary's subcommands, run as a user would.

use std::process::Command;

use serde_json::Value;

fn vitasync(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vitasync"))
        .args(args)
        .env("VITASYNC_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .env_remove("VITASYNC_CONFIG")
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
    for cmd in ["serve", "migrate", "workspace", "keys"] {
        assert!(out.contains(cmd), "--help lacks {cmd}: {out}");
    }
    let (ok, out, _) = vitasync(dir.path(), &["keys", "--help"]);
    assert!(ok);
    for cmd in ["create", "list", "revoke"] {
        assert!(out.contains(cmd), "keys --help lacks {cmd}: {out}");
    }
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
