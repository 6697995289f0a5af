//! Database access. One query set runs on SQLite (embedded default) and
//! PostgreSQL (production) through sqlx's `Any` driver; the schemas differ
//! only where the two SQL dialects must (see `migrations/sqlite` and
//! `migrations/postgres`, kept in step by `tests::migration_sets_match`).
//! Queries stay portable: `$n` placeholders, TEXT ids, BIGINT unix times.

pub mod deliveries;
pub mod facts;
pub mod graphs;
pub mod history;
pub mod hooks;
pub mod issuer_keys;
pub mod login_limits;
pub mod providers;
pub mod queue;
pub mod refusals;
pub mod repositories;
pub mod retention;
pub mod search;
pub mod sessions;
pub mod setup_progress;
pub mod snapshots;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL (expected sqlite://FILE or postgres://USER@HOST/DB)")]
    UnsupportedUrl,
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// Bumped by this process's writes to providers and repositories, so
    /// in-memory caches of them (the webhook's `server::directory`) drop
    /// what they hold at once instead of at their expiry.
    directory_version: Arc<AtomicU64>,
    /// What `db::history` keeps of each repository's past commits.
    history: history::HistoryRetention,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }
}

impl Db {
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                // SQLite has one writer; a few connections serve readers
                // while it writes (WAL).
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            .acquire_timeout(Duration::from_secs(10));
        let pool = options.connect(&url).await?;
        if backend == Backend::Sqlite {
            // WAL is a property of the file: set once, every connection uses it.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Self {
            pool,
            backend,
            directory_version: Arc::new(AtomicU64::new(0)),
            history: history::HistoryRetention::default(),
        })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        // sqlx takes an advisory lock on PostgreSQL, so several hub
        // instances starting together migrate once.
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// See [`Db::directory_changed`].
    pub fn directory_version(&self) -> u64 {
        self.directory_version.load(Ordering::Acquire)
    }

    /// Called after a write to providers' webhook credentials or to the set
    /// of repositories.
    pub(crate) fn directory_changed(&self) {
        self.directory_version.fetch_add(1, Ordering::AcqRel);
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Makes sure the SQLite file's directory exists and the file may be created.
fn prepare_sqlite_url(url: &str) -> Result<String, DbError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or(DbError::UnsupportedUrl)?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        return Err(DbError::UnsupportedUrl);
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let query = match query {
        Some(q) if q.contains("mode=") => q.to_owned(),
        Some(q) => format!("{q}&mode=rwc"),
        None => "mode=rwc".to_owned(),
    };
    // Validate early so a typo is reported as such, not as a connect error.
    sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{path}?{query}"))?;
    Ok(format!("sqlite://{path}?{query}"))
}

/// Seconds since the Unix epoch: the one time format stored in both databases.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_sets_match() {
        let names = |m: &Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert_eq!(names(&SQLITE_MIGRATIONS), names(&POSTGRES_MIGRATIONS));
    }

    #[test]
    fn urls_are_classified() {
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mysql://x").is_err());
        assert!(prepare_sqlite_url("sqlite://").is_err());
    }
}
