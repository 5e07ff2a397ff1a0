//! What the API benches share: the server's configuration on a fresh database.

use std::collections::HashMap;

use vitasync_engine::config::Config;
use vitasync_testkit::FreshDb;

/// A server on `db`, listening on a free port, without rate limits or info logs; `extra`
/// settings (environment names) are applied on top.
pub fn config(db: &FreshDb, extra: &[(&str, String)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("DATABASE_URL".to_string(), db.url.clone()),
        (
            "VITASYNC_DATA_DIR".to_string(),
            db.dir.path().display().to_string(),
        ),
        ("VITASYNC_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "VITASYNC_ENCRYPTION_KEY".to_string(),
            vitasync_engine::crypto::generate_key_b64(),
        ),
        ("VITASYNC_RATE_LIMIT_RPS".to_string(), "0".to_string()),
        ("RUST_LOG".to_string(), "warn".to_string()),
    ]
    .into();
    for (k, v) in extra {
        env.insert((*k).to_string(), v.clone());
    }
    Config::load(None, &env).expect("config")
}
