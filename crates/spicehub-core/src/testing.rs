//! Test support shared by this crate's tests and the crates above it
//! (feature `test-support`): one database per test, on SQLite always and on
//! PostgreSQL too when `SPICEHUB_TEST_POSTGRES_URL` is set.

use crate::db::Db;

/// A database for one test; a PostgreSQL one is dropped afterwards.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn all() -> Vec<TestDb> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut dbs = vec![TestDb {
            url: format!("sqlite://{}", dir.path().join("q.db").display()),
            _dir: Some(dir),
            pg: None,
        }];
        match std::env::var("SPICEHUB_TEST_POSTGRES_URL") {
            Ok(admin) if !admin.is_empty() => {
                use sqlx::Connection;
                let name = format!("spicehub_q_{}", uuid::Uuid::new_v4().simple());
                let mut c = sqlx::PgConnection::connect(&admin).await.expect("postgres");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .expect("create database");
                let mut url = url::Url::parse(&admin).expect("url");
                url.set_path(&name);
                dbs.push(TestDb {
                    url: url.to_string(),
                    _dir: None,
                    pg: Some((admin, name)),
                });
            }
            _ => {
                eprintln!("NOTE: SPICEHUB_TEST_POSTGRES_URL is not set: PostgreSQL variant SKIPPED")
            }
        }
        dbs
    }

    pub async fn open(&self) -> Db {
        let db = Db::connect(&self.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        use sqlx::Connection;
                        if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}
