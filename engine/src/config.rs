//! Configuration, layered: built-in defaults → optional TOML file (`--config` or
//! `VITASYNC_CONFIG`) → environment variables. Later layers win field by field.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::providers::ProviderSettings;

/// Providers whose settings can come from `VITASYNC_<P>_*` variables.
pub const CONFIGURABLE_PROVIDERS: &[&str] = &["fitbit", "garmin", "strava", "whoop"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Every setting, with its environment variable in the doc comment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `VITASYNC_LISTEN`: address the HTTP server binds.
    pub listen: String,
    /// `VITASYNC_DATA_DIR`: where the embedded store and the generated encryption key live.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…`; unset = SQLite file in the data dir.
    pub database_url: Option<String>,
    /// `VITASYNC_DATABASE_MAX_CONNECTIONS`: pool size.
    pub database_max_connections: u32,
    /// `VITASYNC_ENCRYPTION_KEY`: base64 of 32 bytes; required with PostgreSQL.
    pub encryption_key: Option<String>,
    /// `VITASYNC_ENCRYPTION_RETIRED_KEYS`: comma-separated older keys, kept to decrypt.
    pub encryption_retired_keys: Vec<String>,
    /// `VITASYNC_BOOTSTRAP_API_KEY`: ensure this exact key is an admin key of workspace `default`.
    pub bootstrap_api_key: Option<String>,
    /// `VITASYNC_LOG_FORMAT`: `pretty` or `json`. Levels come from `RUST_LOG`.
    pub log_format: LogFormat,
    /// `VITASYNC_RATE_LIMIT_RPS`: sustained requests per second per API key (0 disables).
    pub rate_limit_rps: f64,
    /// `VITASYNC_RATE_LIMIT_BURST`: requests a key may make at once before the rate applies.
    pub rate_limit_burst: u32,
    /// `VITASYNC_PUBLIC_URL`: the externally reachable base URL; OAuth callbacks are
    /// `{public_url}/v1/oauth/{provider}/callback`.
    pub public_url: Option<String>,
    /// `VITASYNC_MCP_ALLOWED_HOSTS`: comma-separated extra `Host` names `/mcp` accepts (the
    /// loopback names and the hosts of the public URL and listen address always are).
    pub mcp_allowed_hosts: Vec<String>,
    /// `VITASYNC_OAUTH_RETURN_URLS`: comma-separated prefixes an OAuth `return_url` must start
    /// with.
    pub oauth_return_urls: Vec<String>,
    /// `VITASYNC_SYNC_INTERVAL_SECS`: how often each connection syncs incrementally (jittered).
    pub sync_interval_secs: u64,
    /// `VITASYNC_DATAFLOW_WORKERS`: analytics worker threads (0 = one per core).
    pub dataflow_workers: usize,
    /// `VITASYNC_ANALYTICS_RECONCILE_USERS`: users per step of the analytics' first flush
    /// after a start (memory against round trips; at least 1).
    pub analytics_reconcile_users: usize,
    /// `VITASYNC_ALLOW_PRIVATE_TARGETS`: let channels and webhooks point at loopback, private
    /// and link-local addresses (LAN self-hosting, tests). Off: such targets are refused.
    pub allow_private_targets: bool,
    /// `VITASYNC_WEBHOOK_RETRY_SCHEDULE`: pauses before each retry of a webhook delivery
    /// (comma-separated durations such as `500ms`, `30s`, `5m`, `2h`); attempts = pauses + 1.
    pub webhook_retry_schedule: String,
    /// `VITASYNC_WEBHOOK_TIMEOUT`: how long one delivery attempt may take.
    pub webhook_timeout: String,
    /// `VITASYNC_WEBHOOK_DISABLE_AFTER`: an endpoint failing for this long is disabled.
    pub webhook_disable_after: String,
    /// `VITASYNC_NOTIFY_RETRY_SCHEDULE`: pauses before each retry of a channel notification
    /// after a transient failure.
    pub notify_retry_schedule: String,
    /// `VITASYNC_NOTIFY_TIMEOUT`: how long one channel attempt may take.
    pub notify_timeout: String,
    /// `VITASYNC_SMTP_HOST`: the SMTP server email channels send through (unset: no email).
    pub smtp_host: Option<String>,
    /// `VITASYNC_SMTP_PORT`: default 587 (STARTTLS), 465 (TLS) or 25 (plain).
    pub smtp_port: Option<u16>,
    /// `VITASYNC_SMTP_SECURITY`: `starttls`, `tls` or `plain`.
    pub smtp_security: String,
    /// `VITASYNC_SMTP_USERNAME` / `VITASYNC_SMTP_PASSWORD`: optional authentication.
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    /// `VITASYNC_SMTP_FROM`: the sender address, e.g. `VitaSync <alerts@example.com>`.
    pub smtp_from: String,
    /// `VITASYNC_VAPID_PRIVATE_KEY`: base64url of the P-256 private key that signs Web Push
    /// requests (`vitasync vapid generate` makes one). Unset: no push.
    pub vapid_private_key: Option<String>,
    /// `VITASYNC_VAPID_SUBJECT`: the contact push services may reach (`mailto:` or `https:`).
    pub vapid_subject: String,
    /// `[providers.<id>]` tables and `VITASYNC_<P>_*` variables.
    pub providers: BTreeMap<String, ProviderSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./vitasync-data"),
            database_url: None,
            database_max_connections: 10,
            encryption_key: None,
            encryption_retired_keys: Vec::new(),
            bootstrap_api_key: None,
            log_format: LogFormat::Pretty,
            rate_limit_rps: 50.0,
            rate_limit_burst: 100,
            public_url: None,
            mcp_allowed_hosts: Vec::new(),
            oauth_return_urls: Vec::new(),
            sync_interval_secs: 15 * 60,
            dataflow_workers: 0,
            analytics_reconcile_users: 100,
            allow_private_targets: false,
            webhook_retry_schedule: "1m,5m,30m,1h,3h,6h,12h".into(),
            webhook_timeout: "10s".into(),
            webhook_disable_after: "72h".into(),
            notify_retry_schedule: "2s,10s,1m".into(),
            notify_timeout: "10s".into(),
            smtp_host: None,
            smtp_port: None,
            smtp_security: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_from: "VitaSync <vitasync@localhost>".into(),
            vapid_private_key: None,
            vapid_subject: "mailto:admin@localhost".into(),
            providers: BTreeMap::new(),
        }
    }
}

/// Which store a configuration selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(String),
    Postgres(String),
}

impl Config {
    /// Loads defaults, then `file` (or the file named by `VITASYNC_CONFIG`), then `env`.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self> {
        let mut cfg = Config::default();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("VITASYNC_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::Config(format!("cannot read config file {}: {e}", path.display()))
            })?;
            cfg = toml::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        }
        cfg.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Loads from the process environment.
    pub fn from_process_env(file: Option<&Path>) -> Result<Self> {
        Config::load(file, &std::env::vars().collect())
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<()> {
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if let Some(v) = get("VITASYNC_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("VITASYNC_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("VITASYNC_DATABASE_MAX_CONNECTIONS") {
            self.database_max_connections = parse_env("VITASYNC_DATABASE_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("VITASYNC_ENCRYPTION_KEY") {
            self.encryption_key = Some(v);
        }
        if let Some(v) = get("VITASYNC_ENCRYPTION_RETIRED_KEYS") {
            self.encryption_retired_keys = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("VITASYNC_BOOTSTRAP_API_KEY") {
            self.bootstrap_api_key = Some(v);
        }
        if let Some(v) = get("VITASYNC_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                other => {
                    return Err(Error::Config(format!(
                        "VITASYNC_LOG_FORMAT must be json or pretty, not '{other}'"
                    )));
                }
            };
        }
        if let Some(v) = get("VITASYNC_RATE_LIMIT_RPS") {
            self.rate_limit_rps = parse_env("VITASYNC_RATE_LIMIT_RPS", &v)?;
        }
        if let Some(v) = get("VITASYNC_RATE_LIMIT_BURST") {
            self.rate_limit_burst = parse_env("VITASYNC_RATE_LIMIT_BURST", &v)?;
        }
        if let Some(v) = get("VITASYNC_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("VITASYNC_MCP_ALLOWED_HOSTS") {
            self.mcp_allowed_hosts = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("VITASYNC_OAUTH_RETURN_URLS") {
            self.oauth_return_urls = v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = get("VITASYNC_SYNC_INTERVAL_SECS") {
            self.sync_interval_secs = parse_env("VITASYNC_SYNC_INTERVAL_SECS", &v)?;
        }
        if let Some(v) = get("VITASYNC_DATAFLOW_WORKERS") {
            self.dataflow_workers = parse_env("VITASYNC_DATAFLOW_WORKERS", &v)?;
        }
        if let Some(v) = get("VITASYNC_ANALYTICS_RECONCILE_USERS") {
            self.analytics_reconcile_users = parse_env("VITASYNC_ANALYTICS_RECONCILE_USERS", &v)?;
        }
        if let Some(v) = get("VITASYNC_ALLOW_PRIVATE_TARGETS") {
            self.allow_private_targets = parse_env("VITASYNC_ALLOW_PRIVATE_TARGETS", &v)?;
        }
        for (name, field) in [
            (
                "VITASYNC_WEBHOOK_RETRY_SCHEDULE",
                &mut self.webhook_retry_schedule,
            ),
            ("VITASYNC_WEBHOOK_TIMEOUT", &mut self.webhook_timeout),
            (
                "VITASYNC_WEBHOOK_DISABLE_AFTER",
                &mut self.webhook_disable_after,
            ),
            (
                "VITASYNC_NOTIFY_RETRY_SCHEDULE",
                &mut self.notify_retry_schedule,
            ),
            ("VITASYNC_NOTIFY_TIMEOUT", &mut self.notify_timeout),
            ("VITASYNC_SMTP_SECURITY", &mut self.smtp_security),
            ("VITASYNC_SMTP_FROM", &mut self.smtp_from),
            ("VITASYNC_VAPID_SUBJECT", &mut self.vapid_subject),
        ] {
            if let Some(v) = get(name) {
                *field = v;
            }
        }
        for (name, field) in [
            ("VITASYNC_SMTP_HOST", &mut self.smtp_host),
            ("VITASYNC_SMTP_USERNAME", &mut self.smtp_username),
            ("VITASYNC_SMTP_PASSWORD", &mut self.smtp_password),
            ("VITASYNC_VAPID_PRIVATE_KEY", &mut self.vapid_private_key),
        ] {
            if let Some(v) = get(name) {
                *field = Some(v);
            }
        }
        if let Some(v) = get("VITASYNC_SMTP_PORT") {
            self.smtp_port = Some(parse_env("VITASYNC_SMTP_PORT", &v)?);
        }
        for p in CONFIGURABLE_PROVIDERS {
            let entry = self.providers.entry(p.to_string()).or_default();
            entry.apply_env(p, env).map_err(Error::Config)?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("webhook_retry_schedule", &self.webhook_retry_schedule),
            ("notify_retry_schedule", &self.notify_retry_schedule),
        ] {
            parse_durations(v).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        }
        for (name, v) in [
            ("webhook_timeout", &self.webhook_timeout),
            ("webhook_disable_after", &self.webhook_disable_after),
            ("notify_timeout", &self.notify_timeout),
        ] {
            parse_duration(v).map_err(|e| Error::Config(format!("{name}: {e}")))?;
        }
        if self.analytics_reconcile_users == 0 {
            return Err(Error::Config(
                "analytics_reconcile_users must be at least 1".into(),
            ));
        }
        if !matches!(self.smtp_security.as_str(), "starttls" | "tls" | "plain") {
            return Err(Error::Config(
                "smtp_security must be starttls, tls or plain".into(),
            ));
        }
        Ok(())
    }

    /// The public base URL (no trailing slash); defaults to the listen address.
    pub fn public_base(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    /// The `Host` names the MCP endpoint accepts (DNS-rebinding protection): loopback, the
    /// public URL's host, a specific listen host, and any configured extras. Never empty.
    pub fn mcp_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(String::from)
            .collect();
        if let Ok(u) = url::Url::parse(&self.public_base())
            && let Some(h) = u.host_str()
        {
            hosts.push(h.trim_matches(['[', ']']).to_string());
        }
        if let Ok(addr) = self.listen.parse::<std::net::SocketAddr>()
            && !addr.ip().is_unspecified()
        {
            hosts.push(addr.ip().to_string());
        }
        hosts.extend(self.mcp_allowed_hosts.iter().cloned());
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// Analytics worker threads: the configured number, else one per core.
    pub fn dataflow_threads(&self) -> usize {
        if self.dataflow_workers > 0 {
            self.dataflow_workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// Where a provider sends the user back after consent.
    pub fn oauth_callback_url(&self, provider: &str) -> String {
        format!("{}/v1/oauth/{provider}/callback", self.public_base())
    }

    /// The store this configuration selects.
    pub fn store_url(&self) -> Result<StoreUrl> {
        match &self.database_url {
            None => Ok(StoreUrl::Sqlite(format!(
                "sqlite://{}",
                self.data_dir.join("vitasync.db").display()
            ))),
            Some(u) if u.starts_with("sqlite:") => Ok(StoreUrl::Sqlite(u.clone())),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(StoreUrl::Postgres(u.clone()))
            }
            Some(_) => Err(Error::Config(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            )),
        }
    }
}

/// Parses one duration: a number followed by `ms`, `s`, `m` or `h`.
pub fn parse_duration(v: &str) -> std::result::Result<Duration, String> {
    let v = v.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{v}' has no unit (ms, s, m or h)"))?;
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("'{v}' is not a duration"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("'{v}' has an unknown unit (use ms, s, m or h)")),
    })
}

/// Parses a comma-separated list of durations (empty = none).
pub fn parse_durations(v: &str) -> std::result::Result<Vec<Duration>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_duration)
        .collect()
}

fn parse_env<T: std::str::FromStr>(name: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| Error::Config(format!("{name} has an invalid value '{v}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_hosts_come_from_the_public_url_listen_address_and_extras() {
        let env: HashMap<_, _> = [
            ("VITASYNC_LISTEN", "0.0.0.0:8080"),
            ("VITASYNC_PUBLIC_URL", "https://Health.example.com/"),
            ("VITASYNC_MCP_ALLOWED_HOSTS", "vitasync.internal, 10.0.0.5"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let hosts = Config::load(None, &env).unwrap().mcp_hosts();
        for h in [
            "localhost",
            "127.0.0.1",
            "::1",
            "health.example.com",
            "vitasync.internal",
            "10.0.0.5",
        ] {
            assert!(hosts.iter().any(|x| x == h), "{h} missing from {hosts:?}");
        }
        // A wildcard listen address is not a name anyone reaches the server by.
        assert!(!hosts.iter().any(|x| x == "0.0.0.0"), "{hosts:?}");
        let local = Config::load(
            None,
            &[("VITASYNC_LISTEN".to_string(), "192.168.1.9:80".to_string())].into(),
        )
        .unwrap()
        .mcp_hosts();
        assert!(local.iter().any(|x| x == "192.168.1.9"), "{local:?}");
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vitasync.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nrate_limit_rps = 5.0\n").unwrap();
        let env: HashMap<_, _> = [("VITASYNC_RATE_LIMIT_RPS".to_string(), "7".to_string())].into();
        let cfg = Config::load(Some(&file), &env).unwrap();
        assert_eq!(cfg.listen, "0.0.0.0:9000");
        assert_eq!(cfg.rate_limit_rps, 7.0);
        assert_eq!(cfg.rate_limit_burst, 100);
        assert!(matches!(cfg.store_url().unwrap(), StoreUrl::Sqlite(_)));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(Config::load(Some(&file), &HashMap::new()).is_err());
        let env: HashMap<_, _> = [("VITASYNC_LOG_FORMAT".to_string(), "xml".to_string())].into();
        assert!(Config::load(None, &env).is_err());
        let env: HashMap<_, _> = [("DATABASE_URL".to_string(), "mysql://x".to_string())].into();
        assert!(Config::load(None, &env).unwrap().store_url().is_err());
    }
}
