//! The composition root of the domain: one `Hub` opened from a `Config`
//! holds the database, the sync queue and the per-provider Azure DevOps
//! connections. `spicehub serve` and the admin commands of the command line
//! open it the same way, so both see the same validation and the same
//! connections.

use std::sync::Arc;

use crate::auth::signin::SignInGate;
use crate::config::Config;
use crate::connections::ProviderConnections;
use crate::db::{Db, DbError};
use crate::issuer::{Issuer, RotationPolicy};
use crate::sync::{Queue, QueueConfig};

/// Everything a request handler, server function or command may need.
#[derive(Clone)]
pub struct Hub {
    pub db: Db,
    pub config: Arc<Config>,
    /// The sync queue (admin actions enqueue on it).
    pub queue: Queue,
    /// Azure DevOps clients per provider (shared token cache).
    pub connections: ProviderConnections,
    /// Bounds the password checks running at once.
    pub signin: SignInGate,
    /// The hub as an OpenID Connect issuer (federated credentials). Its keys
    /// are read by `serve` at start (`Issuer::rotate`) and by commands that
    /// sign.
    pub issuer: Issuer,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot set up the Azure DevOps client: {0}")]
    Azure(#[from] spicehub_azure::AzureError),
}

impl Hub {
    /// Connects to the database, applies migrations and sets up the
    /// Azure DevOps connections.
    pub async fn open(config: Config) -> Result<Hub, HubError> {
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        Self::with_db(db, Arc::new(config))
    }

    /// A hub on an open, migrated database.
    pub fn with_db(db: Db, config: Arc<Config>) -> Result<Hub, HubError> {
        let db = db.with_history_retention(config.sync.retention.history());
        let issuer = Issuer::new(
            db.clone(),
            config.secret_key.clone(),
            &config.public_url,
            RotationPolicy::default(),
        );
        let connections = ProviderConnections::new(
            db.clone(),
            config.secret_key.clone(),
            config.azure.clone(),
            spicehub_azure::client::ClientConfig {
                max_download_bytes: Some(config.sync.max_archive_bytes),
                governor: config.sync.azure_governor,
                ..Default::default()
            },
        )?
        .with_hub_app(config.hub_app.clone())
        .with_issuer(issuer.clone());
        let queue = Queue::new(
            db.clone(),
            QueueConfig {
                lease_secs: config.sync.sync_lease,
                backoff_base_secs: config.sync.sync_retry_delay,
                ..Default::default()
            },
        );
        Ok(Hub {
            signin: SignInGate::new(config.network.signin_concurrency),
            db,
            config,
            queue,
            connections,
            issuer,
        })
    }
}
