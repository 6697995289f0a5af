//! Test support shared by this crate's tests and the crates above it
//! (feature `test-support`): one database per test, on SQLite always and on
//! PostgreSQL too when `SPICEHUB_TEST_POSTGRES_URL` is set.
//!
//! A PostgreSQL test database is a copy (`CREATE DATABASE … TEMPLATE …`) of
//! a migrated template instead of being migrated itself. The template's
//! name carries a hash of the PostgreSQL migrations, so it is built once per
//! migration set and server, and shared by every test process (and every
//! checkout with the same migrations). It is built under a temporary name
//! and renamed once complete, so a run that dies half-way never leaves a
//! half-migrated template, and processes building it at the same time agree
//! on one.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

use crate::db::Db;

/// The migrations [`Db::migrate`] applies on PostgreSQL, as embedded at
/// build time: the template's name is derived from them, so it changes
/// whenever they do (and always matches what `migrate` expects).
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The template, once per process: (admin URL, template database name).
static TEMPLATE: tokio::sync::OnceCell<(String, String)> = tokio::sync::OnceCell::const_new();

/// A migrated template: this prefix and a hash of the migrations.
const TEMPLATE_PREFIX: &str = "spicehub_tpl_";
/// A template being built: this prefix, its start (Unix seconds) and a
/// random part.
const BUILDING_PREFIX: &str = "spicehub_tplbuild_";
/// A template build older than this was abandoned by a run that died.
const ABANDONED_AFTER_SECS: i64 = 3600;
/// One test's database: this prefix and a UUID.
const TEST_PREFIX: &str = "spicehub_t_";

/// A database for one test; a PostgreSQL one is dropped afterwards.
pub struct TestDb {
    pub url: String,
    /// `sqlite` or `postgres`, for assertion messages.
    pub label: &'static str,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A SQLite file in a fresh temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        Self {
            url,
            label: "sqlite",
            pg: None,
            _dir: Some(dir),
        }
    }

    /// A new PostgreSQL database on the server of `admin_url`, already
    /// migrated (a copy of the template).
    pub async fn postgres(admin_url: &str) -> Self {
        let template = template(admin_url).await;
        let name = format!("{TEST_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection(admin_url).await;
        if let Err(e) = create_database(&mut admin, &name, Some(&template)).await {
            panic!("create test database {name} from template {template}: {e}");
        }
        let _ = admin.close().await;
        Self {
            url: database_url(admin_url, &name),
            label: "postgres",
            pg: Some((admin_url.to_owned(), name)),
            _dir: None,
        }
    }

    /// SQLite always; PostgreSQL too when configured (and said loudly when not).
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite()];
        match std::env::var("SPICEHUB_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => dbs.push(TestDb::postgres(&url).await),
            _ => {
                eprintln!("NOTE: SPICEHUB_TEST_POSTGRES_URL is not set: PostgreSQL variant SKIPPED")
            }
        }
        dbs
    }

    /// A migrated handle on this database (on a PostgreSQL copy of the
    /// template the migration finds nothing to do, as on a hub restart).
    pub async fn open(&self) -> Db {
        let db = Db::connect(&self.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside any runtime (or inside one that must not
            // block): use a short-lived one on its own thread.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        if let Ok(mut c) = PgConnection::connect(&admin).await {
                            let _ = drop_database(&mut c, &name).await;
                            let _ = c.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// The template's name: the prefix and a hash of every migration's version,
/// description and checksum (sqlx's SHA-384 of the file's contents).
fn template_name() -> String {
    let mut hash = Sha256::new();
    for m in POSTGRES_MIGRATIONS.iter() {
        hash.update(m.version.to_le_bytes());
        hash.update(m.description.as_bytes());
        hash.update([0]);
        hash.update(&m.checksum[..]);
    }
    let hex: String = hash.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{TEMPLATE_PREFIX}{hex}")
}

/// The migrated template on the server of `admin_url`, made sure of once
/// per process.
async fn template(admin_url: &str) -> String {
    let (admin, name) = TEMPLATE
        .get_or_init(|| async { (admin_url.to_owned(), ensure_template(admin_url).await) })
        .await;
    if admin == admin_url {
        name.clone()
    } else {
        // Another server than the first one asked for: not cached.
        ensure_template(admin_url).await
    }
}

/// Makes sure the template exists: built under a temporary name, migrated
/// by [`Db::migrate`], then renamed; if another process renamed its own
/// first, that one is used and ours is dropped.
async fn ensure_template(admin_url: &str) -> String {
    let name = template_name();
    let mut admin = admin_connection(admin_url).await;
    if database_exists(&mut admin, &name).await {
        let _ = admin.close().await;
        return name;
    }
    drop_abandoned_builds(&mut admin).await;

    let building = format!(
        "{BUILDING_PREFIX}{}_{}",
        crate::db::now(),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    if let Err(e) = create_database(&mut admin, &building, None).await {
        panic!("create template database {building}: {e}");
    }
    let migrated = async {
        let db = Db::connect(&database_url(admin_url, &building)).await?;
        let result = db.migrate().await;
        // Every connection closed: a database in use cannot be renamed
        // (nor copied).
        db.close().await;
        result
    }
    .await;
    if let Err(e) = migrated {
        let _ = drop_database(&mut admin, &building).await;
        panic!("migrate template database {building}: {e}");
    }

    let rename = format!("ALTER DATABASE {building} RENAME TO {name}");
    match execute_with_retries(&mut admin, &rename).await {
        Ok(()) => {}
        // Another process finished its template first: use that one.
        Err(e) if error_code(&e).as_deref() == Some(DUPLICATE_DATABASE) => {
            let _ = drop_database(&mut admin, &building).await;
        }
        Err(e) => {
            let _ = drop_database(&mut admin, &building).await;
            panic!("rename template database {building} to {name}: {e}");
        }
    }
    let _ = admin.close().await;
    name
}

/// Drops template builds left behind by runs that died half-way (a build
/// takes seconds; one started an hour ago is not still going).
async fn drop_abandoned_builds(admin: &mut PgConnection) {
    let pattern = format!("{}%", BUILDING_PREFIX.replace('_', "\\_"));
    let Ok(names) =
        sqlx::query_scalar::<_, String>("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(pattern)
            .fetch_all(&mut *admin)
            .await
    else {
        return;
    };
    let now = crate::db::now();
    for name in names {
        let started = name
            .strip_prefix(BUILDING_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<i64>().ok());
        if started.is_some_and(|started| now - started > ABANDONED_AFTER_SECS) {
            let _ = drop_database(admin, &name).await;
        }
    }
}

/// PostgreSQL's `object_in_use`: "source database … is being accessed by
/// other users" (and the like for a rename).
const OBJECT_IN_USE: &str = "55006";
/// PostgreSQL's `duplicate_database`.
const DUPLICATE_DATABASE: &str = "42P04";

fn error_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Runs `sql`, and again after a short sleep while PostgreSQL answers that
/// a database it needs is in use (a connection that is still closing,
/// another test process copying the template, …).
async fn execute_with_retries(admin: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    const ATTEMPTS: u64 = 10;
    let mut attempt = 1;
    loop {
        match sqlx::query(sql).execute(&mut *admin).await {
            Err(e) if attempt < ATTEMPTS && error_code(&e).as_deref() == Some(OBJECT_IN_USE) => {
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            result => return result.map(drop),
        }
    }
}

/// `CREATE DATABASE name`, a copy of `template` if given.
async fn create_database(
    admin: &mut PgConnection,
    name: &str,
    template: Option<&str>,
) -> Result<(), sqlx::Error> {
    let sql = match template {
        Some(template) => format!("CREATE DATABASE {name} TEMPLATE {template}"),
        None => format!("CREATE DATABASE {name}"),
    };
    execute_with_retries(admin, &sql).await
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin)
        .await?;
    Ok(())
}

async fn database_exists(admin: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(admin)
        .await
        .expect("look up the template database")
        .is_some()
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    PgConnection::connect(admin_url)
        .await
        .expect("connect to SPICEHUB_TEST_POSTGRES_URL")
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("postgres url");
    url.set_path(name);
    url.to_string()
}
