//! Webhook deliveries refused for their credentials, in aggregate, so the
//! Webhooks page can say that Azure DevOps reached the hub with a wrong
//! password (the commonest set-up mistake) instead of "not reached".
//!
//! Bounded by construction: a row per provider (the one whose webhook user
//! name was sent) and one `unknown` row for everything else, so made-up
//! user names cannot add rows. The hub aggregates in memory and adds its
//! counts here every few seconds (`server::refusals`), so a flood costs a
//! handful of writes, not one per request; the upsert *adds*, so several
//! instances sharing one database add up. Neither the password nor the
//! body is ever stored: only counts, times and the client address.

use sqlx::Row;

use super::{Db, DbError};

/// The bucket of refusals no provider's user name explains.
pub const UNKNOWN_BUCKET: &str = "unknown";

/// Refusals counted since the last flush (or as stored: the totals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusals {
    /// The provider whose webhook user name was sent; `None`: unknown.
    pub provider_id: Option<String>,
    pub attempts: i64,
    /// Unix seconds.
    pub first_at: i64,
    pub last_at: i64,
    /// The client address of the latest attempt (`ClientAddr`).
    pub last_address: String,
}

impl Refusals {
    /// Folds `other` (later or earlier) into this one.
    pub fn merge(&mut self, other: &Refusals) {
        self.attempts = self.attempts.saturating_add(other.attempts);
        self.first_at = self.first_at.min(other.first_at);
        if other.last_at >= self.last_at {
            self.last_at = other.last_at;
            self.last_address.clone_from(&other.last_address);
        }
    }
}

impl Db {
    /// Adds `delta` to its provider's row (or the unknown row). A delta of
    /// a provider deleted meanwhile is dropped: its row went with it, and a
    /// new one would break the foreign key.
    pub async fn add_webhook_refusals(&self, delta: &Refusals) -> Result<(), DbError> {
        let bucket = delta.provider_id.as_deref().unwrap_or(UNKNOWN_BUCKET);
        // `INSERT … SELECT … WHERE` so the provider check and the insert are
        // one statement; SQLite needs the WHERE to parse `ON CONFLICT` after
        // a SELECT. Times and the address keep the latest attempt, also when
        // another instance flushed a later one first.
        let sql = "INSERT INTO webhook_refusals \
                     (bucket, provider_id, attempts, first_at, last_at, last_address) \
                   SELECT $1, $2, $3, $4, $5, $6 \
                   WHERE $7 = 0 OR EXISTS (SELECT 1 FROM providers WHERE id = $2) \
                   ON CONFLICT (bucket) DO UPDATE SET \
                     attempts = webhook_refusals.attempts + excluded.attempts, \
                     first_at = CASE WHEN excluded.first_at < webhook_refusals.first_at \
                                     THEN excluded.first_at ELSE webhook_refusals.first_at END, \
                     last_address = CASE WHEN excluded.last_at >= webhook_refusals.last_at \
                                     THEN excluded.last_address ELSE webhook_refusals.last_address END, \
                     last_at = CASE WHEN excluded.last_at > webhook_refusals.last_at \
                                     THEN excluded.last_at ELSE webhook_refusals.last_at END";
        sqlx::query(sql)
            .bind(bucket)
            .bind(delta.provider_id.as_deref())
            .bind(delta.attempts)
            .bind(delta.first_at)
            .bind(delta.last_at)
            .bind(&delta.last_address)
            .bind(i64::from(delta.provider_id.is_some()))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every row: at most one per provider, plus the unknown one.
    pub async fn webhook_refusals(&self) -> Result<Vec<Refusals>, DbError> {
        let rows = sqlx::query(
            "SELECT provider_id, attempts, first_at, last_at, last_address \
             FROM webhook_refusals ORDER BY bucket",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Refusals {
                    provider_id: row.try_get("provider_id")?,
                    attempts: row.try_get("attempts")?,
                    first_at: row.try_get("first_at")?,
                    last_at: row.try_get("last_at")?,
                    last_address: row.try_get("last_address")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;
    use crate::db::providers::{CredentialKind, NewProvider};
    use crate::testing::TestDb;

    fn delta(provider: Option<&str>, attempts: i64, first: i64, last: i64, addr: &str) -> Refusals {
        Refusals {
            provider_id: provider.map(str::to_owned),
            attempts,
            first_at: first,
            last_at: last,
            last_address: addr.to_owned(),
        }
    }

    #[tokio::test]
    async fn deltas_add_up_and_go_with_their_provider() {
        for test_db in TestDb::all().await {
            let db = test_db.open().await;
            // A second instance on the same database.
            let other = test_db.open().await;
            let dir = tempfile::tempdir().expect("dir");
            let key = SecretKey::load_or_generate(&dir.path().join("k")).expect("key");
            let provider = db
                .create_provider(
                    &key,
                    &NewProvider {
                        display_name: "Contoso",
                        tenant_id: "11111111-2222-4333-8444-555555555555",
                        client_id: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                        credential_kind: CredentialKind::ClientSecret,
                        credential: b"client~secret",
                        webhook_username: "hook",
                        webhook_password: "password-0123456789-abc",
                        secret_expires_at: None,
                    },
                )
                .await
                .expect("provider")
                .id;
            let label = test_db.label;
            db.add_webhook_refusals(&delta(Some(&provider), 3, 100, 200, "10.0.0.1"))
                .await
                .unwrap();
            // The other instance saw an earlier first and a later last attempt.
            other
                .add_webhook_refusals(&delta(Some(&provider), 2, 50, 300, "10.0.0.2"))
                .await
                .unwrap();
            // An older flush arriving late changes neither the last time nor address.
            db.add_webhook_refusals(&delta(Some(&provider), 1, 150, 250, "10.0.0.3"))
                .await
                .unwrap();
            db.add_webhook_refusals(&delta(None, 7, 10, 20, "10.0.0.9"))
                .await
                .unwrap();
            // A provider that does not exist (deleted since): dropped, no error.
            db.add_webhook_refusals(&delta(Some("gone"), 1, 1, 1, "10.0.0.4"))
                .await
                .unwrap();
            let rows = db.webhook_refusals().await.unwrap();
            assert_eq!(rows.len(), 2, "{label}: {rows:?}");
            let mine = rows
                .iter()
                .find(|r| r.provider_id.as_deref() == Some(provider.as_str()))
                .expect("provider row");
            assert_eq!(
                *mine,
                delta(Some(&provider), 6, 50, 300, "10.0.0.2"),
                "{label}"
            );
            let unknown = rows.iter().find(|r| r.provider_id.is_none()).unwrap();
            assert_eq!(*unknown, delta(None, 7, 10, 20, "10.0.0.9"), "{label}");

            assert!(db.delete_provider(&provider).await.unwrap());
            let rows = db.webhook_refusals().await.unwrap();
            assert_eq!(rows.len(), 1, "{label}: the provider's row goes with it");
            db.close().await;
            other.close().await;
        }
    }

    #[test]
    fn merge_keeps_the_latest_address() {
        let mut a = delta(None, 1, 10, 20, "a");
        a.merge(&delta(None, 2, 5, 15, "b"));
        assert_eq!(a, delta(None, 3, 5, 20, "a"));
        a.merge(&delta(None, 1, 30, 30, "c"));
        assert_eq!(a, delta(None, 4, 5, 30, "c"));
    }
}
