//! Counting failed sign-ins per key, kept in the database so every hub
//! instance sees the same counts. Keys are hashes (`auth::signin` makes
//! them), so a row has a fixed size whatever a client sent.

use sqlx::Row;

use super::{now, Db, DbError};

/// What one reserved attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Failures counted for the key, this attempt included (unchanged when
    /// the key was locked).
    pub failures: i64,
    /// Unix seconds until which the key is locked (0: never locked).
    pub locked_until: i64,
}

impl Db {
    /// Counts one failure for `key_hash` in advance, in one statement, so
    /// concurrent attempts each see a different count: with a limit of five
    /// only five are let through, however many arrive at once. A locked
    /// key is not counted again. Failures older than `quiet_secs` (counted
    /// from the end of the last failure or lock) are forgotten.
    pub async fn reserve_login_attempt(
        &self,
        key_hash: &str,
        quiet_secs: i64,
    ) -> Result<Reservation, DbError> {
        let now = now();
        let row = sqlx::query(
            "INSERT INTO login_throttle (key_hash, failures, last_failure, locked_until) \
             VALUES ($1, 1, $2, 0) \
             ON CONFLICT (key_hash) DO UPDATE SET \
               failures = CASE \
                 WHEN login_throttle.locked_until > $2 THEN login_throttle.failures \
                 WHEN (CASE WHEN login_throttle.last_failure > login_throttle.locked_until \
                            THEN login_throttle.last_failure ELSE login_throttle.locked_until END) < $3 THEN 1 \
                 ELSE login_throttle.failures + 1 END, \
               last_failure = CASE WHEN login_throttle.locked_until > $2 \
                 THEN login_throttle.last_failure ELSE $2 END \
             RETURNING failures, locked_until",
        )
        .bind(key_hash)
        .bind(now)
        .bind(now - quiet_secs)
        .fetch_one(self.pool())
        .await?;
        Ok(Reservation {
            failures: row.try_get("failures")?,
            locked_until: row.try_get("locked_until")?,
        })
    }

    /// Locks `key_hash` until `until` (never shortens a longer lock).
    pub async fn lock_login_key(&self, key_hash: &str, until: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE login_throttle SET locked_until = $2 \
             WHERE key_hash = $1 AND locked_until < $2",
        )
        .bind(key_hash)
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives back a reserved attempt that turned out not to be a failure.
    pub async fn refund_login_attempt(&self, key_hash: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 \
             WHERE key_hash = $1 AND failures > 0",
        )
        .bind(key_hash)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, key_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM login_throttle WHERE key_hash = $1")
            .bind(key_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes keys whose failures are forgotten anyway; returns how many.
    pub async fn prune_login_throttle(&self, quiet_secs: i64) -> Result<u64, DbError> {
        let before = now() - quiet_secs;
        let done =
            sqlx::query("DELETE FROM login_throttle WHERE last_failure < $1 AND locked_until < $1")
                .bind(before)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// Keys currently stored (for tests and the operator's view of abuse).
    pub async fn login_throttle_rows(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM login_throttle")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }
}
