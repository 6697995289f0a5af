//! Server configuration: flags and environment variables, validated once at
//! start so a bad value stops the hub with a message instead of failing later.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use url::Url;

use crate::crypto::{KeyError, SecretKey};

mod network;
pub use network::{Network, NetworkArgs};

/// Options shared by every subcommand that touches the database.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// Directory for the SQLite database, the generated secret key and other
    /// local state.
    #[arg(long, env = "SPICEHUB_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// `sqlite://FILE` or `postgres://USER@HOST/DB`. Defaults to a SQLite file
    /// in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// The database URL may carry a password: never printed.
impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .finish()
    }
}

/// `scheme://user:***@host/db`: what a log may show of a database URL.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            // Query parameters can carry passwords too (`?password=`).
            if url.query().is_some() {
                url.set_query(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "***".to_owned(),
    }
}

impl DatabaseArgs {
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("spicehub.db").display()),
        }
    }
}

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address to listen on. Port 0 picks a free port (printed at start).
    #[arg(long, env = "SPICEHUB_BIND", default_value = "127.0.0.1:3000")]
    pub bind: String,

    /// The URL users and Azure DevOps reach the hub at. Secure cookies and the
    /// encryption-key requirement follow from its scheme.
    #[arg(long, env = "SPICEHUB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Base64 of 32 random bytes: the key that encrypts secrets at rest.
    /// Generated into the data directory for local use; required when the
    /// public URL is https.
    #[arg(long, env = "SPICEHUB_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Directory with the compiled site (`pkg/` with the wasm bundle).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,

    /// E-mail of the first admin, created at start when there is no user yet.
    #[arg(long, env = "SPICEHUB_ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// Password of that first admin (environment only, never a flag, so it
    /// does not show in the process list).
    #[arg(skip = std::env::var("SPICEHUB_ADMIN_PASSWORD").ok())]
    pub admin_password: Option<String>,

    /// Largest webhook body accepted, in bytes (larger ones get 413). A
    /// git.push payload is a few KiB; its commit list is capped by Azure
    /// DevOps.
    #[arg(long, env = "SPICEHUB_WEBHOOK_BODY_LIMIT", default_value_t = DEFAULT_WEBHOOK_BODY_LIMIT)]
    pub webhook_body_limit: usize,

    /// After the webhook password changes, how long the previous one is
    /// still accepted, in seconds (it stops earlier, at the first delivery
    /// with the new one), so hooks being updated lose no delivery.
    #[arg(long, env = "SPICEHUB_WEBHOOK_PASSWORD_OVERLAP", default_value_t = DEFAULT_WEBHOOK_PASSWORD_OVERLAP)]
    pub webhook_password_overlap: u64,

    /// How long Graphviz may take to lay out one view of a registry, in
    /// milliseconds. Past it the viewer says so and offers a smaller view.
    #[arg(long, env = "SPICEHUB_LAYOUT_TIMEOUT_MS", default_value_t = DEFAULT_LAYOUT_TIMEOUT_MS)]
    pub layout_timeout_ms: u64,

    #[command(flatten)]
    pub azure: AzureArgs,

    #[command(flatten)]
    pub hub_app: HubAppArgs,

    #[command(flatten)]
    pub sync: SyncArgs,

    #[command(flatten)]
    pub network: NetworkArgs,
}

/// Secrets are shown as `***` (or the key's fingerprint), so a `{:?}` in a
/// log line cannot leak them.
impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("database", &self.database)
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("site_root", &self.site_root)
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "***"),
            )
            .field("webhook_body_limit", &self.webhook_body_limit)
            .field("webhook_password_overlap", &self.webhook_password_overlap)
            .field("layout_timeout_ms", &self.layout_timeout_ms)
            .field("azure", &self.azure)
            .field("hub_app", &self.hub_app)
            .field("sync", &self.sync)
            .field("network", &self.network)
            .finish()
    }
}

/// The hub's own multi-tenant app registration (the admin-consent
/// onboarding model). Optional: without it only customer-owned app
/// registrations can be set up.
#[derive(Args, Clone, Default)]
pub struct HubAppArgs {
    /// Application (client) ID of the hub's multi-tenant app registration.
    #[arg(long, env = "SPICEHUB_HUB_CLIENT_ID")]
    pub hub_client_id: Option<String>,

    /// Its client secret (environment only, never a flag).
    #[arg(skip = std::env::var("SPICEHUB_HUB_CLIENT_SECRET").ok().filter(|s| !s.is_empty()))]
    pub hub_client_secret: Option<String>,

    /// How the hub's app authenticates: `secret` (SPICEHUB_HUB_CLIENT_SECRET),
    /// `certificate` (SPICEHUB_HUB_CERTIFICATE_FILE: the certificate and its
    /// private key in one PEM file) or `federated` (a federated credential on
    /// the app trusting this hub's own issuer, subject `spicehub:hub`: the
    /// hub then holds no secret at all).
    #[arg(long, env = "SPICEHUB_HUB_CREDENTIAL", default_value = "secret")]
    pub hub_credential: String,

    /// PEM file with the hub app's certificate and private key, for
    /// `SPICEHUB_HUB_CREDENTIAL=certificate`.
    #[arg(long, env = "SPICEHUB_HUB_CERTIFICATE_FILE")]
    pub hub_certificate_file: Option<PathBuf>,
}

impl std::fmt::Debug for HubAppArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubAppArgs")
            .field("hub_client_id", &self.hub_client_id)
            .field(
                "hub_client_secret",
                &self.hub_client_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// The hub's multi-tenant app, validated.
#[derive(Clone)]
pub struct HubApp {
    pub client_id: String,
    pub credential: HubCredential,
}

/// What the hub's own app authenticates with.
#[derive(Clone)]
pub enum HubCredential {
    ClientSecret(secrecy::SecretString),
    /// The PEM bundle: certificate and private key.
    Certificate(secrecy::SecretString),
    /// A federated credential trusting the hub's issuer
    /// (`crate::issuer::HUB_SUBJECT`).
    Federated,
}

impl std::fmt::Debug for HubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubApp")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn hub_app(args: HubAppArgs) -> Result<Option<HubApp>, ConfigError> {
    let HubAppArgs {
        hub_client_id,
        hub_client_secret,
        hub_credential,
        hub_certificate_file,
    } = args;
    let credential = match (
        hub_credential.as_str(),
        hub_client_secret,
        hub_certificate_file,
    ) {
        // Empty: arguments built in code rather than parsed (the default).
        ("secret" | "", Some(secret), None) => Some(HubCredential::ClientSecret(secret.into())),
        ("secret" | "", None, None) => None,
        ("certificate", None, Some(path)) => {
            let shown = path.display().to_string();
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::HubCertificate(shown.clone(), e.to_string()))?;
            // The key itself is checked when the first token is asked for
            // (Test connection says what is wrong with it).
            let blocks = pem::parse_many(pem.as_bytes())
                .map_err(|e| ConfigError::HubCertificate(shown.clone(), e.to_string()))?;
            let has = |tag: &str| blocks.iter().any(|b| b.tag().ends_with(tag));
            if !has("CERTIFICATE") || !has("PRIVATE KEY") {
                return Err(ConfigError::HubCertificate(
                    shown,
                    "needs the certificate and its private key, both in PEM".into(),
                ));
            }
            Some(HubCredential::Certificate(pem.into()))
        }
        ("federated", None, None) => Some(HubCredential::Federated),
        ("secret" | "" | "certificate" | "federated", _, _) => return Err(ConfigError::HubApp),
        _ => return Err(ConfigError::HubCredentialKind),
    };
    match (hub_client_id, credential) {
        // `federated` alone, without a client ID, is the default's
        // absence of a hub app only when nothing else is set.
        (None, None) => Ok(None),
        (Some(id), Some(credential)) if is_guid(id.trim()) => Ok(Some(HubApp {
            client_id: id.trim().to_ascii_lowercase(),
            credential,
        })),
        _ => Err(ConfigError::HubApp),
    }
}

/// Where Entra ID and Azure DevOps are (sovereign clouds, the emulator).
#[derive(Args, Debug, Clone)]
pub struct AzureArgs {
    /// Entra ID authority; tenants are appended to it.
    #[arg(long, env = "SPICEHUB_AUTHORITY_URL", default_value = spicehub_azure::DEFAULT_AUTHORITY)]
    pub authority_url: String,

    /// Azure DevOps base URL; organizations are appended to it.
    #[arg(long, env = "SPICEHUB_DEVOPS_URL", default_value = spicehub_azure::DEFAULT_DEVOPS_URL)]
    pub devops_url: String,
}

/// The sync engine's bounds.
#[derive(Args, Debug, Clone)]
pub struct SyncArgs {
    /// Sync jobs this instance runs at once; 0 makes a web-only instance
    /// that queues jobs for the others sharing its PostgreSQL database.
    #[arg(long, env = "SPICEHUB_SYNC_WORKERS", default_value_t = 2)]
    pub sync_workers: usize,

    /// Sync jobs this instance runs at once for one organization.
    #[arg(long, env = "SPICEHUB_SYNC_WORKERS_PER_ORG", default_value_t = 2)]
    pub sync_workers_per_org: usize,

    /// Seconds between reconcile passes (each repository's branch head
    /// against its last synced commit); 0 turns reconcile off.
    #[arg(long, env = "SPICEHUB_RECONCILE_INTERVAL", default_value_t = 900)]
    pub reconcile_interval: u64,

    /// Seconds a claimed job is held without renewal before another runner
    /// may take it over (a crashed instance's jobs wait this long).
    #[arg(long, env = "SPICEHUB_SYNC_LEASE", default_value_t = 120)]
    pub sync_lease: i64,

    /// First retry delay of a failed sync job, in seconds (doubles per attempt).
    #[arg(long, env = "SPICEHUB_SYNC_RETRY_DELAY", default_value_t = 30)]
    pub sync_retry_delay: i64,

    /// Milliseconds between looks at an empty queue.
    #[arg(long, env = "SPICEHUB_SYNC_POLL_MS", default_value_t = 1000)]
    pub sync_poll_ms: u64,

    /// Largest repository archive downloaded, in bytes.
    #[arg(long, env = "SPICEHUB_SYNC_MAX_ARCHIVE_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_archive_bytes: u64,

    /// Most files a repository may have (full and incremental syncs alike).
    #[arg(long, env = "SPICEHUB_SYNC_MAX_ENTRIES", default_value_t = 500_000)]
    pub max_entries: usize,

    /// Largest file kept (larger ones are noted and skipped).
    #[arg(long, env = "SPICEHUB_SYNC_MAX_FILE_BYTES", default_value_t = spicehub_parser::DEFAULT_MAX_FILE_SIZE)]
    pub max_file_bytes: u64,

    /// Most bytes of files kept per repository.
    #[arg(long, env = "SPICEHUB_SYNC_MAX_TOTAL_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_total_bytes: u64,

    /// Changed files an incremental sync fetches per request ("Get Blobs
    /// Zip"); 0 or 1 fetches each one alone. Azure DevOps documents no
    /// limit, so the default stays modest; a refused batch is split anyway.
    #[arg(long, env = "SPICEHUB_BLOB_BATCH", default_value_t = DEFAULT_BLOB_BATCH)]
    pub blob_batch: usize,

    /// Sync a push in full when the commit's archive is estimated cheaper
    /// than fetching its changed files (a large push into a small
    /// repository); the note says why. `false` always fetches the changes.
    #[arg(long, env = "SPICEHUB_SYNC_FULL_WHEN_CHEAPER", default_value_t = true, action = clap::ArgAction::Set)]
    pub full_when_cheaper: bool,

    /// Pace Azure DevOps requests by the rate-limit headers, slowing down
    /// before the identity's budget is spent. `false` exists to measure
    /// the difference: the hub then waits only when refused (429), as a
    /// naive client does.
    #[arg(long, env = "SPICEHUB_AZURE_GOVERNOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub azure_governor: bool,

    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// How long the hub keeps what piles up: pruned at start and hourly
/// (`sync::retention`). Expired admin-consent requests always go.
#[derive(Args, Debug, Clone)]
pub struct RetentionArgs {
    /// Days webhook deliveries (with their bodies) are kept; 0 keeps them
    /// for ever.
    #[arg(long, env = "SPICEHUB_RETAIN_DELIVERIES_DAYS", default_value_t = 30)]
    pub retain_deliveries_days: u64,

    /// Deliveries of each provider kept whatever their age, newest first,
    /// so that the Webhooks page still shows the last ones.
    #[arg(long, env = "SPICEHUB_RETAIN_DELIVERIES_MIN", default_value_t = 50)]
    pub retain_deliveries_min: u64,

    /// Azure DevOps "Test" notifications kept per provider, newest first,
    /// whatever their age (each click stores one: they are never
    /// de-duplicated).
    #[arg(long, env = "SPICEHUB_RETAIN_TEST_DELIVERIES", default_value_t = 5)]
    pub retain_test_deliveries: u64,

    /// Days finished sync jobs are kept (a repository's latest finished job
    /// always is); 0 keeps them for ever.
    #[arg(long, env = "SPICEHUB_RETAIN_JOBS_DAYS", default_value_t = 30)]
    pub retain_jobs_days: u64,

    /// Synced commits whose graph each repository keeps for its timeline
    /// and diffs, newest first, whatever their age (at least 1).
    #[arg(long, env = "SPICEHUB_HISTORY_COMMITS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub history_commits: u32,

    /// Days of synced commits kept whatever their number (commits beyond
    /// both this and SPICEHUB_HISTORY_COMMITS are dropped).
    #[arg(long, env = "SPICEHUB_HISTORY_DAYS", default_value_t = 30)]
    pub history_days: u64,
}

impl RetentionArgs {
    pub fn history(&self) -> crate::db::history::HistoryRetention {
        crate::db::history::HistoryRetention {
            commits: self.history_commits,
            max_age: std::time::Duration::from_secs(self.history_days.saturating_mul(24 * 60 * 60)),
        }
    }
}

pub const DEFAULT_BLOB_BATCH: usize = 100;
/// The request body stays small (43 bytes an id), and one refused batch
/// costs at most about log2(batch) extra requests to split.
pub const MAX_BLOB_BATCH: usize = 10_000;
pub const DEFAULT_WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;
/// A day: time to update every hand-made service hook.
pub const DEFAULT_WEBHOOK_PASSWORD_OVERLAP: u64 = 24 * 60 * 60;
pub const DEFAULT_LAYOUT_TIMEOUT_MS: u64 = 30_000;
/// Ten minutes: a request that waits longer has been given up on anyway.
pub const MAX_LAYOUT_TIMEOUT_MS: u64 = 600_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--bind `{0}` is not an address such as 127.0.0.1:3000")]
    Bind(String),
    #[error(
        "SPICEHUB_PUBLIC_URL `{0}` is not an http(s) URL such as https://spicehub.example.com"
    )]
    PublicUrl(String),
    #[error("SPICEHUB_SECRET_KEY is required when SPICEHUB_PUBLIC_URL is https (generate one with `openssl rand -base64 32`)")]
    SecretKeyRequired,
    #[error("SPICEHUB_SECRET_KEY: {0}")]
    SecretKey(#[from] KeyError),
    #[error("SPICEHUB_WEBHOOK_BODY_LIMIT must be at least 1024 bytes")]
    WebhookBodyLimit,
    #[error("{0} `{1}` is not an http(s) URL")]
    ServiceUrl(&'static str, String),
    #[error("SPICEHUB_SYNC_WORKERS must be between 0 and 64 and SPICEHUB_SYNC_WORKERS_PER_ORG between 1 and 64")]
    SyncWorkers,
    #[error("SPICEHUB_SYNC_LEASE must be at least 10 seconds")]
    SyncLease,
    #[error("SPICEHUB_BLOB_BATCH must be between 0 (one file per request) and {MAX_BLOB_BATCH}")]
    BlobBatch,
    #[error(
        "SPICEHUB_LAYOUT_TIMEOUT_MS must be between 1 and {MAX_LAYOUT_TIMEOUT_MS} milliseconds"
    )]
    LayoutTimeout,
    #[error("SPICEHUB_HUB_CLIENT_ID needs its credential (SPICEHUB_HUB_CLIENT_SECRET, or SPICEHUB_HUB_CERTIFICATE_FILE with SPICEHUB_HUB_CREDENTIAL=certificate, or nothing with SPICEHUB_HUB_CREDENTIAL=federated), a credential needs the client ID, and the client ID is a GUID")]
    HubApp,
    #[error("SPICEHUB_HUB_CREDENTIAL must be secret, certificate or federated")]
    HubCredentialKind,
    #[error("SPICEHUB_HUB_CERTIFICATE_FILE {0}: {1}")]
    HubCertificate(String, String),
    #[error("SPICEHUB_ADMIN_EMAIL is set but SPICEHUB_ADMIN_PASSWORD is not")]
    AdminPasswordMissing,
    #[error("{0}: `{1}` is not an address or CIDR range such as 10.0.0.0/8")]
    Network(&'static str, String),
    #[error("SPICEHUB_HEADER_TIMEOUT_SECS must be 1 to 3600 and SPICEHUB_REQUEST_TIMEOUT_SECS 1 to 86400")]
    Timeouts,
    #[error("SPICEHUB_MAX_CONNECTIONS must be between 1 and 1000000")]
    MaxConnections,
    #[error("SPICEHUB_SIGNIN_CONCURRENCY must be between 0 (twice the cores) and 1024")]
    SigninConcurrency,
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Configuration after validation.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub public_url: Url,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub secret_key: SecretKey,
    pub site_root: String,
    /// The time limit of one `dot` run (`SPICEHUB_LAYOUT_TIMEOUT_MS`).
    pub layout_timeout: std::time::Duration,
    pub first_admin: Option<(String, String)>,
    pub webhook_body_limit: usize,
    /// `SPICEHUB_WEBHOOK_PASSWORD_OVERLAP`.
    pub webhook_password_overlap: std::time::Duration,
    pub azure: AzureArgs,
    pub hub_app: Option<HubApp>,
    pub sync: SyncArgs,
    pub network: Network,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url.as_str())
            .field("database_url", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("secret_key", &self.secret_key)
            .field("site_root", &self.site_root)
            .field("layout_timeout", &self.layout_timeout)
            .field(
                "first_admin",
                &self.first_admin.as_ref().map(|(email, _)| (email, "***")),
            )
            .field("webhook_body_limit", &self.webhook_body_limit)
            .field("webhook_password_overlap", &self.webhook_password_overlap)
            .field("azure", &self.azure)
            .field("hub_app", &self.hub_app)
            .field("sync", &self.sync)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let bind: SocketAddr = args
            .bind
            .parse()
            .map_err(|_| ConfigError::Bind(args.bind.clone()))?;
        let public_url = match &args.public_url {
            Some(raw) => parse_public_url(raw)?,
            None => parse_public_url(&format!("http://{bind}"))?,
        };
        if args.webhook_body_limit < 1024 {
            return Err(ConfigError::WebhookBodyLimit);
        }
        for (name, raw) in [
            ("SPICEHUB_AUTHORITY_URL", &args.azure.authority_url),
            ("SPICEHUB_DEVOPS_URL", &args.azure.devops_url),
        ] {
            match Url::parse(raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return Err(ConfigError::ServiceUrl(name, raw.clone())),
            }
        }
        if !(0..=64).contains(&args.sync.sync_workers)
            || !(1..=64).contains(&args.sync.sync_workers_per_org)
        {
            return Err(ConfigError::SyncWorkers);
        }
        if args.sync.sync_lease < 10 {
            return Err(ConfigError::SyncLease);
        }
        if args.sync.blob_batch > MAX_BLOB_BATCH {
            return Err(ConfigError::BlobBatch);
        }
        if !(1..=MAX_LAYOUT_TIMEOUT_MS).contains(&args.layout_timeout_ms) {
            return Err(ConfigError::LayoutTimeout);
        }
        let network = Network::from_args(&args.network)?;
        ensure_dir(&args.database.data_dir)?;
        let secret_key = match &args.secret_key {
            Some(encoded) => SecretKey::from_base64(encoded)?,
            None if public_url.scheme() == "https" => return Err(ConfigError::SecretKeyRequired),
            None => SecretKey::load_or_generate(&args.database.data_dir.join("secret.key"))?,
        };
        let hub_app = hub_app(args.hub_app)?;
        let first_admin = match (args.admin_email, args.admin_password) {
            (Some(email), Some(password)) => Some((email, password)),
            (Some(_), None) => return Err(ConfigError::AdminPasswordMissing),
            (None, _) => None,
        };
        Ok(Self {
            bind,
            public_url,
            database_url: args.database.url(),
            data_dir: args.database.data_dir,
            secret_key,
            site_root: args.site_root,
            layout_timeout: std::time::Duration::from_millis(args.layout_timeout_ms),
            first_admin,
            webhook_body_limit: args.webhook_body_limit,
            webhook_password_overlap: std::time::Duration::from_secs(args.webhook_password_overlap),
            azure: args.azure,
            hub_app,
            sync: args.sync,
            network,
        })
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

pub use spicehub_azure::is_guid;

/// Whether `url` names a host the internet cannot reach (loopback, private
/// or link-local addresses, `localhost`, a single-label name, `.local`,
/// `.internal`): Azure DevOps' webhooks and Entra ID's key fetches both come
/// from the internet.
pub fn is_local_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".local")
                || name.ends_with(".internal")
                || !name.contains('.')
        }
        Some(url::Host::Ipv4(ip)) => {
            ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified()
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
        }
        None => true,
    }
}

fn parse_public_url(raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|_| ConfigError::PublicUrl(raw.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::PublicUrl(raw.to_owned()));
    }
    Ok(url)
}

pub fn ensure_dir(path: &Path) -> Result<(), ConfigError> {
    std::fs::create_dir_all(path).map_err(|source| ConfigError::DataDir {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_app_runs_on_a_secret_a_certificate_or_no_secret_at_all() {
        let id = "6f1c7e2a-1111-4222-8333-944455556666";
        let hub = |credential: &str, secret: Option<&str>, file: Option<PathBuf>| {
            hub_app(HubAppArgs {
                hub_client_id: Some(id.into()),
                hub_client_secret: secret.map(str::to_owned),
                hub_credential: credential.into(),
                hub_certificate_file: file,
            })
        };
        assert!(matches!(
            hub("secret", Some("s3cret"), None),
            Ok(Some(HubApp {
                credential: HubCredential::ClientSecret(_),
                ..
            }))
        ));
        // Federated: the hub holds nothing, and refuses a secret given anyway.
        assert!(matches!(
            hub("federated", None, None),
            Ok(Some(HubApp {
                credential: HubCredential::Federated,
                ..
            }))
        ));
        assert!(matches!(
            hub("federated", Some("s3cret"), None),
            Err(ConfigError::HubApp)
        ));
        assert!(matches!(
            hub("secret", None, None),
            Err(ConfigError::HubApp)
        ));
        assert!(matches!(
            hub("password", None, None),
            Err(ConfigError::HubCredentialKind)
        ));
        // A certificate file must hold the certificate and its key.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let only_cert = dir.path().join("cert.pem");
        std::fs::write(
            &only_cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            hub("certificate", None, Some(only_cert)),
            Err(ConfigError::HubCertificate(..))
        ));
        assert!(matches!(
            hub("certificate", None, Some(dir.path().join("missing.pem"))),
            Err(ConfigError::HubCertificate(..))
        ));
        // No client ID: no hub app, unless a credential was given for it.
        let none = hub_app(HubAppArgs {
            hub_credential: "secret".into(),
            ..HubAppArgs::default()
        });
        assert!(matches!(none, Ok(None)));
    }

    fn args(dir: &Path) -> ServeArgs {
        ServeArgs {
            database: DatabaseArgs {
                data_dir: dir.to_owned(),
                database_url: None,
            },
            bind: "127.0.0.1:0".into(),
            public_url: None,
            secret_key: None,
            site_root: "target/site".into(),
            admin_email: None,
            admin_password: None,
            webhook_body_limit: DEFAULT_WEBHOOK_BODY_LIMIT,
            webhook_password_overlap: DEFAULT_WEBHOOK_PASSWORD_OVERLAP,
            layout_timeout_ms: DEFAULT_LAYOUT_TIMEOUT_MS,
            azure: defaults().azure,
            hub_app: HubAppArgs::default(),
            sync: defaults().sync,
            network: defaults().network,
        }
    }

    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        azure: AzureArgs,
        #[command(flatten)]
        sync: SyncArgs,
        #[command(flatten)]
        network: NetworkArgs,
    }

    fn defaults() -> Defaults {
        <Defaults as clap::Parser>::parse_from(["spicehub"])
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.database.database_url = Some("postgres://hub:db-pass-123@db.example/hub".into());
        a.secret_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into());
        a.admin_email = Some("admin@example.com".into());
        a.admin_password = Some("admin-pass-456".into());
        a.hub_app = HubAppArgs {
            hub_client_id: Some("6f1c7e2a-1111-4222-8333-944455556666".into()),
            hub_client_secret: Some("hub-secret-789".into()),
            hub_credential: "secret".into(),
            hub_certificate_file: None,
        };
        a.network.metrics_token = Some("metrics-token-abc".into());
        let args_debug = format!("{a:?}");
        let config_debug = format!("{:?}", Config::from_args(a).unwrap());
        for shown in [&args_debug, &config_debug] {
            for secret in [
                "db-pass-123",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                "admin-pass-456",
                "hub-secret-789",
                "metrics-token-abc",
            ] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("db.example"), "{shown}");
        }
        assert_eq!(
            redact_url("postgres://u@h/db?password=x&sslmode=require"),
            "postgres://u@h/db?***"
        );
    }

    #[test]
    fn bad_service_urls_and_sync_bounds_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.azure.devops_url = "ftp://dev.azure.com".into();
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::ServiceUrl("SPICEHUB_DEVOPS_URL", _))
        ));
        let mut a = args(dir.path());
        a.sync.sync_workers = 65;
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::SyncWorkers)
        ));
        let mut a = args(dir.path());
        a.sync.sync_workers_per_org = 0;
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::SyncWorkers)
        ));
        let mut a = args(dir.path());
        a.sync.sync_workers = 0;
        assert_eq!(Config::from_args(a).unwrap().sync.sync_workers, 0);
        let mut a = args(dir.path());
        a.sync.sync_lease = 1;
        assert!(matches!(Config::from_args(a), Err(ConfigError::SyncLease)));
        let mut a = args(dir.path());
        a.sync.blob_batch = MAX_BLOB_BATCH + 1;
        assert!(matches!(Config::from_args(a), Err(ConfigError::BlobBatch)));
        let mut a = args(dir.path());
        a.sync.blob_batch = 0;
        assert_eq!(Config::from_args(a).unwrap().sync.blob_batch, 0);
        let ok = Config::from_args(args(dir.path())).unwrap();
        assert_eq!(ok.sync.reconcile_interval, 900);
        assert_eq!(ok.sync.blob_batch, DEFAULT_BLOB_BATCH);
        assert_eq!(ok.azure.devops_url, spicehub_azure::DEFAULT_DEVOPS_URL);
    }

    #[test]
    fn defaults_give_a_local_sqlite_hub_with_a_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_args(args(dir.path())).unwrap();
        assert!(config.database_url.starts_with("sqlite://"));
        assert!(dir.path().join("secret.key").exists());
        assert!(!config.secure_cookies());
        // The key is stable across restarts, or stored secrets would be lost.
        let again = Config::from_args(args(dir.path())).unwrap();
        assert_eq!(
            config.secret_key.fingerprint(),
            again.secret_key.fingerprint()
        );
    }

    #[test]
    fn https_requires_an_explicit_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.public_url = Some("https://hub.example.com".into());
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::SecretKeyRequired)
        ));
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path());
        a.bind = "localhost".into();
        assert!(matches!(Config::from_args(a), Err(ConfigError::Bind(_))));
        let mut a = args(dir.path());
        a.public_url = Some("ftp://x".into());
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::PublicUrl(_))
        ));
        let mut a = args(dir.path());
        a.secret_key = Some("too-short".into());
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::SecretKey(_))
        ));
        let mut a = args(dir.path());
        a.webhook_body_limit = 10;
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::WebhookBodyLimit)
        ));
        for bad in [0, MAX_LAYOUT_TIMEOUT_MS + 1] {
            let mut a = args(dir.path());
            a.layout_timeout_ms = bad;
            assert!(matches!(
                Config::from_args(a),
                Err(ConfigError::LayoutTimeout)
            ));
        }
        let mut a = args(dir.path());
        a.admin_email = Some("a@b.c".into());
        assert!(matches!(
            Config::from_args(a),
            Err(ConfigError::AdminPasswordMissing)
        ));
    }
}
