//! The HTTP server: axum router with the Leptos app, the operational routes
//! (`/healthz`, `/metrics`) and the middleware stack, started with graceful
//! shutdown.

pub mod abuse;
mod accept;
pub mod client;
pub mod consent;
pub mod csrf;
pub mod export;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod middleware;
pub mod oidc;
pub mod refusals;
pub mod webhook;
pub mod webhook_cache;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::{middleware as mw, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use csrf::CsrfPolicy;
use spicehub_core::config::Config;
use spicehub_core::db::sessions::DbSessionStore;
use spicehub_core::db::Db;
use spicehub_core::{Hub, HubError};
use spicehub_web::app::{shell, App};

/// Everything a request handler may need: the hub (what server functions
/// see, as Leptos context) plus what only the HTTP server has.
#[derive(Clone)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub hub: Hub,
    pub db: Db,
    pub config: Arc<Config>,
    pub metrics: Arc<metrics::Metrics>,
    /// Webhook deliveries are committed through this writer (group commit).
    pub ingest: ingest::Ingest,
    /// Webhook credentials and repositories, cached for the webhook route.
    pub webhook_cache: Arc<webhook_cache::WebhookCache>,
    /// Refused webhook deliveries, counted in memory and written in batches.
    pub refusals: Arc<refusals::RefusalLog>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub const SESSION_COOKIE: &str = "spicehub_session";

/// Largest request body outside the webhook.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let session_layer = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.secure_cookies())
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(12),
        ))
        // Signed: a made-up session cookie fails its signature here and
        // costs no database read.
        .with_signed(tower_sessions::cookie::Key::from(
            &state.config.secret_key.derive("session-cookie"),
        ));
    let csrf_policy = CsrfPolicy {
        public_origin: state.config.public_origin(),
    };
    let https = state.config.secure_cookies();

    Router::new()
        .route(spicehub_routes::HEALTH, get(health::healthz))
        .route(spicehub_routes::METRICS, get(metrics::render))
        // Outside Leptos: Azure DevOps posts here with Basic Auth. The
        // sign-in gate and the CSRF check exempt `/gateway/public/`.
        .route(webhook::PATH, post(webhook::receive))
        .route(consent::PATH, get(consent::callback))
        .route(spicehub_routes::OIDC_DISCOVERY, get(oidc::discovery))
        .route(spicehub_routes::OIDC_JWKS, get(oidc::jwks))
        .route(&export::path(), get(export::download))
        .leptos_routes_with_context(
            &state,
            routes,
            {
                let hub = state.hub.clone();
                move || {
                    provide_context(hub.clone());
                    leptos::nonce::provide_nonce();
                }
            },
            {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // Layers run bottom-up for a request: request id, trace, time
        // limit, compression, metrics, headers, client address, failure gate, CSRF,
        // session, user, sign-in gate, then the handler.
        .layer(mw::from_fn_with_state(
            state.clone(),
            middleware::require_sign_in,
        ))
        .layer(mw::from_fn_with_state(state.clone(), middleware::load_user))
        .layer(session_layer)
        .layer(mw::from_fn_with_state(csrf_policy, csrf::enforce))
        // Server functions read whole bodies: bound them (the webhook reads
        // its own, with its own limit, which may be set higher).
        .layer(RequestBodyLimitLayer::new(
            MAX_BODY_BYTES.max(state.config.webhook_body_limit),
        ))
        .layer(mw::from_fn_with_state(
            Arc::new(abuse::FailureGate::new()),
            abuse::gate,
        ))
        .layer(mw::from_fn_with_state(
            Arc::new(state.config.network.clone()),
            client::client_address,
        ))
        .layer(mw::from_fn_with_state(https, middleware::security_headers))
        .layer(mw::from_fn_with_state(
            state.metrics.clone(),
            metrics::record,
        ))
        // A big registry's drawing is megabytes of SVG that compress about
        // tenfold; level 4 costs milliseconds where the defaults (brotli
        // 11) cost seconds per megabyte. No secret is ever in a page, and
        // none next to what a visitor sends, so BREACH has nothing to read.
        .layer(CompressionLayer::new().quality(tower_http::CompressionLevel::Precise(4)))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.config.network.request_timeout,
        ))
        .layer(middleware::trace_layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] spicehub_core::db::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot create the first admin: {0}")]
    FirstAdmin(String),
    #[error(transparent)]
    Hub(#[from] HubError),
}

pub async fn serve(mut config: Config) -> Result<(), ServeError> {
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    ensure_first_admin(&db, &config).await?;

    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.bind,
            source,
        })?;
    let local = listener.local_addr()?;
    // Without SPICEHUB_PUBLIC_URL the public URL is the bind address; with
    // port 0 it is only known now (webhook URLs and consent links need it).
    if config.public_url.port() == Some(0) {
        if let Ok(url) = url::Url::parse(&format!("http://{local}")) {
            config.public_url = url;
        }
    }
    let leptos_options = LeptosOptions::builder()
        .output_name(env!("CARGO_PKG_NAME"))
        .site_root(config.site_root.clone())
        .site_pkg_dir("pkg")
        .site_addr(local)
        .build();
    let hub = Hub::with_db(db.clone(), Arc::new(config))?;
    let config = hub.config.clone();
    // The issuer's keys before the first request: a federated provider
    // signs on its first sync. A failure here is not fatal (only federated
    // credentials need the keys); the hourly rotation tries again.
    if let Err(error) = hub.issuer.rotate(spicehub_core::db::now()).await {
        tracing::warn!(%error, "the issuer's keys could not be prepared");
    }
    let issuer_rotation = hub.issuer.spawn_rotation();
    let metrics = Arc::new(metrics::Metrics::new());
    let (stop_sync, sync_shutdown) = tokio::sync::watch::channel(false);
    let refusal_log = Arc::new(refusals::RefusalLog::new(db.clone()));
    let refusal_task = refusal_log.start(sync_shutdown.clone());
    let sync_tasks = start_sync(&hub, sync_shutdown);
    let state = AppState {
        leptos_options,
        hub: hub.clone(),
        db: db.clone(),
        config: config.clone(),
        metrics: metrics.clone(),
        ingest: ingest::Ingest::start(
            db.clone(),
            spicehub_core::sync::QueueConfig::default().max_attempts,
        ),
        webhook_cache: Arc::new(webhook_cache::WebhookCache::new(
            db.clone(),
            metrics.webhook_credential_reads.clone(),
        )),
        refusals: refusal_log,
    };
    let sessions = DbSessionStore::new(db.clone());
    let cleanup_db = db.clone();
    let cleanup = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = sessions.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions");
            }
            if let Err(e) = cleanup_db
                .prune_login_throttle(spicehub_core::auth::signin::QUIET_SECS)
                .await
            {
                tracing::warn!(error = %e, "could not prune sign-in counters");
            }
        }
    });

    // Old deliveries, finished jobs, expired consent requests; and at
    // start, archives a killed run left in the work directory.
    let pruning =
        tokio::spawn(spicehub_core::sync::retention::Pruner::new(db.clone(), &config).run());

    tracing::info!(
        database = ?db.backend(),
        key = %state.config.secret_key.fingerprint(),
        public_url = %state.config.public_url,
        "spicehub listening on http://{local}"
    );
    let network = state.config.network.clone();
    let app = router(state);
    accept::serve(
        listener,
        app,
        &network,
        metrics.open_connections.clone(),
        shutdown_signal(),
    )
    .await;
    cleanup.abort();
    pruning.abort();
    issuer_rotation.abort();
    // Jobs in flight get a moment to finish; one that does not is taken
    // over after its lease by this or another instance.
    let _ = stop_sync.send(true);
    // The refusals counted since the last flush are written now.
    if tokio::time::timeout(Duration::from_secs(5), refusal_task)
        .await
        .is_err()
    {
        tracing::warn!("refused webhook deliveries of the last seconds were not recorded");
    }
    for task in sync_tasks {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("a sync job was still running at shutdown; it will be retried");
        }
    }
    db.close().await;
    tracing::info!("spicehub stopped");
    Ok(())
}

/// Starts the sync runner and the reconcile timer.
fn start_sync(
    hub: &Hub,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use spicehub_core::sync::reconcile;
    let (db, config, queue, clients) = (&hub.db, &hub.config, &hub.queue, &hub.connections);
    let mut tasks = Vec::new();
    if config.sync.sync_workers == 0 {
        tracing::warn!("SPICEHUB_SYNC_WORKERS=0: this instance runs no sync jobs; another instance sharing its database must");
    } else {
        tasks.extend(start_runner(hub, shutdown.clone()));
    }
    if config.sync.reconcile_interval > 0 {
        let scheduler = reconcile::Scheduler {
            db: db.clone(),
            queue: queue.clone(),
            clients: clients.clone(),
            key: config.secret_key.clone(),
            public_url: config.public_url.clone(),
            interval: Duration::from_secs(config.sync.reconcile_interval),
        };
        tasks.push(tokio::spawn(scheduler.run(shutdown)));
    }
    tasks
}

/// Starts the sync engine's runner and the worker that lays out each
/// registry's first views after a job has synced it.
fn start_runner(
    hub: &Hub,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> [tokio::task::JoinHandle<()>; 2] {
    use spicehub_core::sync::{engine, files, runner};
    let (db, config, queue, clients) = (&hub.db, &hub.config, &hub.queue, &hub.connections);
    let engine = Arc::new(engine::SyncEngine::new(
        db.clone(),
        clients.clone(),
        engine::EngineSettings {
            limits: files::ArchiveLimits {
                max_entries: config.sync.max_entries,
                max_file_bytes: config.sync.max_file_bytes,
                max_total_bytes: config.sync.max_total_bytes,
            },
            per_org: config.sync.sync_workers_per_org,
            fetch_concurrency: 4,
            blob_batch: config.sync.blob_batch,
            full_when_cheaper: config.sync.full_when_cheaper,
            work_dir: config.data_dir.join("work"),
        },
    ));
    // Every registry's first view is laid out once a job has synced it,
    // so no visitor waits for `dot` (a worker of its own, one at a time).
    let (prelayouter, prelayout_worker) = spicehub_core::sync::prelayout::Prelayouter::start(
        db.clone(),
        spicehub_core::graph::Layouter::new().with_timeout(config.layout_timeout),
        shutdown.clone(),
    );
    let engine = Arc::new(spicehub_core::sync::prelayout::WithPrelayout::new(
        engine,
        prelayouter,
    ));
    let runner = tokio::spawn(runner::run(
        queue.clone(),
        engine,
        runner::RunnerConfig {
            concurrency: config.sync.sync_workers,
            poll_interval: Duration::from_millis(config.sync.sync_poll_ms.max(10)),
        },
        shutdown,
    ));
    [prelayout_worker, runner]
}

/// Creates the first admin from the environment when there is no user yet.
async fn ensure_first_admin(db: &Db, config: &Config) -> Result<(), ServeError> {
    let Some((email, password)) = &config.first_admin else {
        if db.count_users().await? == 0 {
            tracing::warn!("no user exists yet: create an admin with `spicehub admin create --email you@example.com --role admin`");
        }
        return Ok(());
    };
    if db.count_users().await? > 0 {
        return Ok(());
    }
    let password = password.clone();
    let hash = tokio::task::spawn_blocking(move || spicehub_core::auth::password::hash(&password))
        .await
        .map_err(|e| ServeError::FirstAdmin(e.to_string()))?
        .map_err(|e| ServeError::FirstAdmin(e.to_string()))?;
    match db
        .create_user(email, &hash, spicehub_core::db::users::Role::Admin)
        .await
    {
        Ok(_) | Err(spicehub_core::db::users::UserError::Exists) => {
            tracing::info!(email = %email, "first admin created from SPICEHUB_ADMIN_EMAIL");
            Ok(())
        }
        Err(spicehub_core::db::users::UserError::Db(e)) => Err(e.into()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
