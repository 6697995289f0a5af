//! Counting failed sign-ins per key within a fixed window. Kept in the
//! database so every hub instance sees the same counts.

use sqlx::Row;

use super::{now, Db, DbError};

impl Db {
    /// Failures recorded for `key` in the window that started after `since`.
    pub async fn login_failures(&self, key: &str, since: i64) -> Result<(i64, i64), DbError> {
        let row = sqlx::query(
            "SELECT failures, window_start FROM login_failures WHERE key = $1 AND window_start >= $2",
        )
        .bind(key)
        .bind(since)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(row) => (row.try_get("failures")?, row.try_get("window_start")?),
            None => (0, 0),
        })
    }

    /// Adds one failure, opening a new window when the old one ended before
    /// `since`.
    pub async fn record_login_failure(&self, key: &str, since: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_failures.window_start < $3 THEN 1 ELSE login_failures.failures + 1 END, \
               window_start = CASE WHEN login_failures.window_start < $3 THEN $2 ELSE login_failures.window_start END",
        )
        .bind(key)
        .bind(now())
        .bind(since)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, key: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
