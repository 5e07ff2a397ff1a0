//! The `vitasync` command line. Each subcommand is a thin shell over engine services or the
//! HTTP application; logs go to stderr and machine-readable results to stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde_json::json;
use vitasync_engine::config::Config;
use vitasync_engine::cursor::{Cursor, Limit};
use vitasync_engine::domain::{Scope, Workspace};
use vitasync_engine::services::{keys, workspaces};
use vitasync_engine::store::DynStore;

use crate::startup::{Application, open_store};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "vitasync",
    version,
    about = "VitaSync: self-hosted wearable health data with always-fresh analytics",
    long_about = "VitaSync collects wearable health data for the users of your product, keeps it \
                  normalised in one store and serves it over a REST API.\n\n\
                  Configuration comes from built-in defaults, then an optional TOML file \
                  (--config or VITASYNC_CONFIG), then VITASYNC_* environment variables and \
                  DATABASE_URL. Without DATABASE_URL an embedded SQLite store is kept in \
                  VITASYNC_DATA_DIR (default ./vitasync-data)."
)]
pub struct Cli {
    /// TOML configuration file (overrides defaults; environment variables override it).
    #[arg(long, global = true, env = "VITASYNC_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server on the configured store (the embedded default unless DATABASE_URL is
    /// set) with three demo users connected to the demo device, show the backfill's progress,
    /// print a summary with an API key and a curl line, and keep serving until Ctrl-C.
    Demo,
    /// Run the HTTP API server. Applies pending migrations first; listens on VITASYNC_LISTEN
    /// (default 127.0.0.1:8080) until Ctrl-C or SIGTERM, then drains in-flight requests.
    Serve,
    /// Serve MCP (Model Context Protocol) on stdin/stdout for a local assistant, limited to the
    /// workspace of VITASYNC_API_KEY (read scope). Reads the same store as the server (run
    /// `serve` or `migrate` first) and writes nothing; logs go to stderr.
    Mcp {
        /// An API key with the read scope; its workspace is the only one visible.
        #[arg(long, env = "VITASYNC_API_KEY", hide_env_values = true)]
        api_key: String,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage workspaces (tenants).
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Manage API keys of a workspace.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Web Push (VAPID) keys.
    #[command(subcommand)]
    Vapid(VapidCommand),
}

#[derive(Debug, Subcommand)]
pub enum VapidCommand {
    /// Print a new VAPID key pair as {"private_key", "public_key"} (base64url). Set the private
    /// key as VITASYNC_VAPID_PRIVATE_KEY; browsers subscribe with the public key as their
    /// applicationServerKey.
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace and an admin API key for it. The last line on stdout is
    /// {"workspace_id", "slug", "api_key"}; the key is shown only this once.
    Create {
        /// Lowercase letters, digits and inner hyphens, 2-63 characters.
        slug: String,
        /// Display name (defaults to the slug).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; prints it as JSON (shown only this once).
    Create {
        /// Slug of the workspace the key belongs to.
        #[arg(long)]
        workspace: String,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: read, write, admin.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Expiry as an RFC 3339 instant.
        #[arg(long)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// List a workspace's API keys as JSON lines (never the secrets).
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Revoke an API key; it stops working at once.
    Revoke {
        #[arg(long)]
        workspace: String,
        /// Id of the key (from `keys list`).
        key_id: uuid::Uuid,
    },
}

/// Parses arguments and runs the command.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_process_env(cli.config.as_deref())?;
    telemetry::init(config.log_format);
    match cli.command {
        Command::Demo => crate::demo::run(config).await?,
        Command::Vapid(VapidCommand::Generate) => {
            let (private_key, public_key) = vitasync_engine::notify::settings::generate_vapid();
            println!(
                "{}",
                json!({"private_key": private_key, "public_key": public_key})
            );
        }
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::Mcp { api_key } => {
            // Never create the embedded database: this process only reads what the server keeps.
            let embedded = config.data_dir.join("vitasync.db");
            if config.database_url.is_none() && !embedded.exists() {
                anyhow::bail!(
                    "no store at {} (set DATABASE_URL or VITASYNC_DATA_DIR to the server's, or run `vitasync migrate`)",
                    embedded.display()
                );
            }
            let store = vitasync_engine::store::open(&config)
                .await
                .context("opening the store")?;
            store.ready().await.context(
                "the store is not ready (run `vitasync migrate` or start the server first)",
            )?;
            let key = keys::authenticate(store.as_ref(), api_key.trim())
                .await
                .context("VITASYNC_API_KEY")?;
            if !key.scopes.allows(Scope::Read) {
                anyhow::bail!("VITASYNC_API_KEY lacks the read scope");
            }
            tracing::info!(workspace_id = %key.workspace_id, "serving MCP on stdio");
            vitasync_mcp::stdio::serve(store, key.workspace_id).await?;
        }
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.ready().await?;
            println!(
                "{}",
                json!({"status": "migrated", "store": store.backend().as_str()})
            );
        }
        Command::Workspace(WorkspaceCommand::Create { slug, name }) => {
            let store = open_store(&config).await?;
            let (ws, key) =
                workspaces::create_with_admin_key(store.as_ref(), &slug, name.as_deref()).await?;
            // A struct, not json!, so the fields print in the documented order.
            #[derive(serde::Serialize)]
            struct Created<'a> {
                workspace_id: uuid::Uuid,
                slug: &'a str,
                api_key: &'a str,
            }
            let created = Created {
                workspace_id: ws.id,
                slug: &ws.slug,
                api_key: &key.secret,
            };
            println!("{}", serde_json::to_string(&created)?);
        }
        Command::Keys(cmd) => keys_command(&config, cmd).await?,
    }
    Ok(())
}

async fn workspace(store: &DynStore, slug: &str) -> anyhow::Result<Workspace> {
    store
        .workspace_by_slug(slug)
        .await?
        .with_context(|| format!("no workspace with slug '{slug}'"))
}

async fn keys_command(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match cmd {
        KeysCommand::Create {
            workspace: slug,
            name,
            scopes,
            expires_at,
        } => {
            let ws = workspace(&store, &slug).await?;
            let scopes = scopes
                .split(',')
                .map(|s| s.parse::<Scope>())
                .collect::<Result<Vec<_>, _>>()?;
            let issued = keys::create(store.as_ref(), ws.id, &name, scopes, expires_at).await?;
            println!(
                "{}",
                json!({"id": issued.key.id, "name": issued.key.name, "prefix": issued.key.prefix,
                       "scopes": issued.key.scopes, "expires_at": issued.key.expires_at, "key": issued.secret})
            );
        }
        KeysCommand::List { workspace: slug } => {
            let ws = workspace(&store, &slug).await?;
            let mut after: Option<Cursor> = None;
            loop {
                let page = store.list_api_keys(ws.id, Limit(Limit::MAX), after).await?;
                for k in &page.items {
                    println!("{}", serde_json::to_string(k)?);
                }
                match page.next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
        }
        KeysCommand::Revoke {
            workspace: slug,
            key_id,
        } => {
            let ws = workspace(&store, &slug).await?;
            keys::revoke(store.as_ref(), ws.id, key_id).await?;
            println!("{}", json!({"revoked": key_id}));
        }
    }
    Ok(())
}
