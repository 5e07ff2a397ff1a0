//! Composition root for the HTTP server: opens and migrates the store, loads the key ring,
//! ensures the bootstrap key, and builds the actix-web app. `Application::build` binds the
//! configured address (port 0 in tests) so callers can read the real port before running.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use utoipa::OpenApi as _;
use utoipa_swagger_ui::SwaggerUi;
use vitasync_actors::{NotifyHandle, SyncHandle, SyncSettings};
use vitasync_engine::bus::Bus;
use vitasync_engine::config::Config;
use vitasync_engine::crypto::{self, KeyRing};
use vitasync_engine::notify::settings::NotifySettings;
use vitasync_engine::providers::{ProviderHttp, Registry, RetryPolicy};
use vitasync_engine::services::keys;
use vitasync_engine::services::notifications::NotifyEnv;
use vitasync_engine::services::sync::SyncEnv;
use vitasync_engine::store::{self, Backend, DynStore};

use crate::error::{ErrorBody, ErrorDetail};
use crate::extract::MAX_BODY_BYTES;
use crate::metrics::Metrics;
use crate::openapi::ApiDoc;
use crate::rate_limit::RateLimiter;
use crate::state::AppState;
use crate::{routes, telemetry};

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

/// What the composition root can be told beyond the configuration (tests shorten timings).
#[derive(Clone, Default)]
pub struct Overrides {
    pub sync: Option<SyncSettings>,
    pub retry: Option<RetryPolicy>,
}

/// Opens the configured store and applies migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    let store = store::open(config).await.context("opening the store")?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// The key ring for secrets at rest. With PostgreSQL the key must come from the environment
/// (replicas must share it); the embedded default generates one into the data dir.
pub fn load_keyring(config: &Config, backend: Backend) -> anyhow::Result<KeyRing> {
    let retired = config
        .encryption_retired_keys
        .iter()
        .map(|k| crypto::decode_key(k))
        .collect::<Result<Vec<_>, _>>()
        .context("VITASYNC_ENCRYPTION_RETIRED_KEYS")?;
    if let Some(k) = &config.encryption_key {
        return Ok(KeyRing::new(
            crypto::decode_key(k).context("VITASYNC_ENCRYPTION_KEY")?,
            &retired,
        ));
    }
    if backend == Backend::Postgres {
        anyhow::bail!("VITASYNC_ENCRYPTION_KEY (base64 of 32 bytes) is required with PostgreSQL");
    }
    let (ring, created) = KeyRing::load_or_create_file(&config.data_dir)?;
    if created {
        tracing::warn!(
            path = %config.data_dir.join("encryption.key").display(),
            "generated a new encryption key; back it up, or set VITASYNC_ENCRYPTION_KEY"
        );
    }
    Ok(ring)
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        Self::build_with_store(config, store).await
    }

    pub async fn build_with_store(config: Config, store: DynStore) -> anyhow::Result<Self> {
        Self::build_with(config, store, Overrides::default()).await
    }

    pub async fn build_with(
        config: Config,
        store: DynStore,
        overrides: Overrides,
    ) -> anyhow::Result<Self> {
        let keyring = load_keyring(&config, store.backend())?;
        if let Some(secret) = &config.bootstrap_api_key {
            keys::ensure_bootstrap_key(store.as_ref(), secret)
                .await
                .context("VITASYNC_BOOTSTRAP_API_KEY")?;
            tracing::info!("bootstrap API key is an admin key of workspace 'default'");
        }
        let listener = TcpListener::bind(&config.listen)
            .with_context(|| format!("binding {}", config.listen))?;
        let port = listener.local_addr()?.port();
        // The analytics hydrate from the store before anything can write, so no change is
        // missed or counted twice.
        let analytics = vitasync_dataflow::Analytics::start(config.dataflow_threads())
            .map_err(|e| anyhow::anyhow!("starting the analytics dataflow: {e}"))?;
        analytics
            .hydrate(store.clone())
            .await
            .context("hydrating the analytics")?;
        let bus = Bus::new();
        let notify = NotifyEnv::new(
            store.clone(),
            Arc::new(keyring.clone()),
            NotifySettings::from_config(&config).context("notification settings")?,
        );
        // Subscribed before anything can publish, and resumes queued webhook deliveries.
        let notifier = NotifyHandle::start(notify.clone(), &bus);
        analytics.spawn_materializer(store.clone(), bus.clone(), config.analytics_reconcile_users);
        let http = ProviderHttp::new(overrides.retry.unwrap_or_default());
        let sync = SyncEnv {
            store: store.clone(),
            registry: Registry::builtin(&config.providers, &http),
            keys: Arc::new(keyring.clone()),
            bus,
            http,
            analytics: analytics.clone(),
            public_url: config.public_base(),
        };
        let settings = overrides.sync.unwrap_or_else(|| SyncSettings {
            interval: std::time::Duration::from_secs(config.sync_interval_secs.max(1)),
            ..SyncSettings::default()
        });
        let actors = SyncHandle::start(sync.clone(), settings);
        let metrics = Arc::new(Metrics::new());
        metrics.clone().follow(&sync.bus);
        let subscriptions = vitasync_mcp::Subscriptions::fed_by_bus();
        subscriptions.clone().follow(&sync.bus);
        let mcp = vitasync_mcp::Shared {
            store: store.clone(),
            epoch: Some(analytics.materialized()),
            subscriptions,
        };
        let state = AppState {
            analytics,
            sync,
            actors,
            notify,
            notifier,
            store,
            keyring,
            metrics,
            rate_limiter: Arc::new(RateLimiter::new(
                config.rate_limit_rps,
                config.rate_limit_burst,
            )),
            config: Arc::new(config),
        };
        let server = run(listener, state.clone(), mcp)?;
        tracing::info!(port, backend = state.store.backend().as_str(), "listening");
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (Ctrl-C, SIGTERM or a handle), then stops the
    /// background work ([`AppState::shutdown`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.state.shutdown().await;
        result
    }
}

fn run(
    listener: TcpListener,
    state: AppState,
    mcp: vitasync_mcp::Shared,
) -> anyhow::Result<Server> {
    let mcp = vitasync_mcp::http::service(mcp, state.config.mcp_hosts());
    let data = web::Data::new(state);
    let openapi = ApiDoc::openapi();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .wrap(from_fn(telemetry::observe))
            .configure(routes::configure)
            .service(
                mcp.clone()
                    .scope_with_path("/mcp")
                    .wrap(from_fn(crate::auth::require_read_key)),
            )
            .route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                }),
            )
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(ErrorBody {
                    error: ErrorDetail {
                        code: "not_found",
                        message: "no such route".into(),
                        field: None,
                    },
                })
            }))
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    Ok(server)
}
