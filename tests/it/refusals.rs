//! Refused webhook deliveries (issue 18, item 8) over real HTTP against the
//! real binary, on SQLite and (when configured) PostgreSQL: a wrong
//! password is counted per provider, made-up user names all land in one
//! `unknown` row, counts reach the database in batches and at shutdown,
//! neither the password nor the body is stored or logged, and the Webhooks
//! page says that Azure DevOps reached the hub with a wrong password.

use crate::common;
use crate::webhook::{basic, push, seed, REPO, USER};

use std::time::Duration;

use common::*;
use spicehub_core::db::refusals::Refusals;
use spicehub_core::db::Db;

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "admin-password-123";
/// Distinctive, so a search of the database and the logs cannot miss it.
const WRONG_PASSWORD: &str = "Wr0ng-Pa55word-NEVER-STORED-7f3a9c";
const BODY_MARKER: &str = "body-marker-NEVER-STORED-51d2e8";

/// Posts a delivery as if from `address` (the hub trusts 127.0.0.1 as a
/// proxy, so each client gets its own failure allowance).
async fn post(hub: &Hub, user: &str, address: &str) -> u16 {
    let mut body = push("e-refused", REPO, "refs/heads/main", &"a".repeat(40));
    body["message"] = serde_json::json!({ "text": BODY_MARKER });
    reqwest::Client::new()
        .post(format!("{}/gateway/public/sync", hub.url))
        .header("Content-Type", "application/json")
        .header("Authorization", basic(user, WRONG_PASSWORD))
        .header("X-Forwarded-For", address)
        .body(body.to_string())
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

/// The stored rows once `done` holds for them (counts are flushed every
/// few seconds, not per request).
async fn rows_when(db: &Db, label: &str, done: impl Fn(&[Refusals]) -> bool) -> Vec<Refusals> {
    let mut rows = Vec::new();
    for _ in 0..100 {
        rows = db.webhook_refusals().await.expect("refusals");
        if done(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{label}: refusals never reached the expected counts: {rows:?}");
}

fn attempts(rows: &[Refusals], provider: Option<&str>) -> i64 {
    rows.iter()
        .find(|r| r.provider_id.as_deref() == provider)
        .map_or(0, |r| r.attempts)
}

/// Everything the database holds, as text: the SQLite file (and its WAL),
/// or every row of every table on PostgreSQL.
async fn database_text(test_db: &TestDb, db: &Db) -> String {
    if let Some(path) = test_db.url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        let mut text = String::new();
        for file in [path.to_owned(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        return text;
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(db.pool())
    .await
    .expect("tables");
    assert!(tables.iter().any(|t| t == "webhook_refusals"), "{tables:?}");
    let mut text = String::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t"))
                .fetch_all(db.pool())
                .await
                .expect("rows");
        text.push_str(&rows.join("\n"));
    }
    text
}

#[tokio::test]
async fn wrong_passwords_are_counted_in_aggregate_and_shown() {
    for test_db in TestDb::all().await {
        let label = test_db.label;
        let (_dir, data) = data_dir();
        let db = seed(&test_db.url, &data, REPO).await;
        let providers = db.providers().await.expect("providers");
        assert_eq!(providers.len(), 1);
        let provider = providers[0].id.clone();
        let out = create_user(&test_db, &data, ADMIN, "admin", ADMIN_PW);
        assert!(out.status.success(), "{label}");
        let hub = Hub::start_with(HubOptions {
            db: &test_db,
            data_dir: &data,
            env: vec![("SPICEHUB_TRUSTED_PROXIES", "127.0.0.1".into())],
        });

        // The provider's user name with a wrong password, five times; the
        // last from 198.51.100.5.
        for i in 1..=5 {
            let status = post(&hub, USER, &format!("198.51.100.{i}")).await;
            assert_eq!(status, 401, "{label}");
        }
        // A flood of made-up user names, from many addresses at once.
        let random_names: Vec<String> = (0..200)
            .map(|i| format!("intruder-{i}-{}", uuid::Uuid::new_v4().simple()))
            .collect();
        let flood = random_names.iter().enumerate().map(|(i, name)| {
            let hub = &hub;
            async move { post(hub, name, &format!("203.0.113.{}", i % 250)).await }
        });
        for status in futures_util::future::join_all(flood).await {
            assert_eq!(status, 401, "{label}");
        }

        let rows = rows_when(&db, label, |rows| {
            attempts(rows, Some(&provider)) == 5 && attempts(rows, None) == 200
        })
        .await;
        // One row for the provider, one for everything unknown: the 200
        // names made no rows of their own.
        assert!(
            rows.len() <= providers.len() + 1,
            "{label}: {} rows",
            rows.len()
        );
        assert_eq!(rows.len(), 2, "{label}: {rows:?}");
        let mine = rows
            .iter()
            .find(|r| r.provider_id.as_deref() == Some(provider.as_str()))
            .expect("provider row");
        assert_eq!(mine.last_address, "198.51.100.5", "{label}");
        assert!(mine.first_at <= mine.last_at, "{label}");
        let unknown = rows.iter().find(|r| r.provider_id.is_none()).unwrap();
        assert!(unknown.last_address.starts_with("203.0.113."), "{label}");

        // Refused deliveries are not deliveries: nothing recorded or queued.
        assert!(
            db.recent_deliveries(10).await.unwrap().is_empty(),
            "{label}"
        );

        // The Webhooks page says what happened, and not "never reached".
        let c = client();
        let r = sign_in(&c, &hub, ADMIN, ADMIN_PW).await;
        assert!(r.status().is_redirection(), "{label}: {}", r.status());
        let page = c
            .get(format!("{}/webhooks", hub.url))
            .send()
            .await
            .expect("GET /webhooks")
            .text()
            .await
            .expect("page");
        assert!(
            page.contains("Azure DevOps reached the hub with a wrong password"),
            "{label}: {page}"
        );
        assert!(page.contains("5 times since"), "{label}");
        assert!(page.contains("198.51.100.5"), "{label}");
        assert!(page.contains("200 times since"), "{label}");
        assert!(
            !page.contains("Azure DevOps has not reached the hub"),
            "{label}"
        );

        // Counted since the last flush: written at shutdown.
        for i in 6..=8 {
            assert_eq!(post(&hub, USER, &format!("198.51.100.{i}")).await, 401);
        }
        let logs = hub.logs();
        let status = hub.stop();
        assert!(status.success(), "{label}: {status:?}");
        let rows = db.webhook_refusals().await.unwrap();
        assert_eq!(attempts(&rows, Some(&provider)), 8, "{label}: {rows:?}");
        assert_eq!(
            rows.iter()
                .find(|r| r.provider_id.is_some())
                .map(|r| r.last_address.as_str()),
            Some("198.51.100.8"),
            "{label}"
        );

        // Neither the password, the body nor a made-up name is kept or logged.
        let stored = database_text(&test_db, &db).await;
        for secret in [WRONG_PASSWORD, BODY_MARKER, random_names[0].as_str()] {
            assert!(
                !stored.contains(secret),
                "{label}: {secret} in the database"
            );
            assert!(!logs.contains(secret), "{label}: {secret} in the logs");
        }

        // Deleting the provider deletes its row.
        assert!(db.delete_provider(&provider).await.unwrap(), "{label}");
        let rows = db.webhook_refusals().await.unwrap();
        assert_eq!(rows.len(), 1, "{label}: {rows:?}");
        assert!(rows[0].provider_id.is_none(), "{label}");
        db.close().await;
    }
}
