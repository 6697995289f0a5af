//! The parser's per-file facts (`file_facts`), kept by path and blob id so
//! that a sync extracts only the files it has not seen. What the bytes hold
//! is the parser's business (`spicehub_parser::PreparedFile`); this is
//! only their SQL.

use sqlx::Row;

use super::snapshots::placeholders;
use super::{Db, DbError};

/// Rows per INSERT: facts are a few KiB each, like the contents.
const FACTS_PER_INSERT: usize = 50;

/// Facts to keep: `(path, blob id, encoded facts)`.
pub type FactsRow = (String, String, Vec<u8>);

impl Db {
    /// The facts of `version` kept for the files of a snapshot, by path:
    /// only for paths whose blob in the snapshot is the one they were made
    /// from.
    pub async fn snapshot_facts(
        &self,
        snapshot_id: &str,
        version: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let rows = sqlx::query(
            "SELECT f.path, x.facts FROM repository_files f JOIN file_facts x \
             ON x.repository_id = f.repository_id AND x.path = f.path \
             AND x.object_id = f.object_id \
             WHERE f.snapshot_id = $1 AND x.version = $2",
        )
        .bind(snapshot_id)
        .bind(version)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("path")?, r.try_get("facts")?)))
            .collect()
    }

    /// Keeps facts made by `version`, replacing those of another version.
    pub async fn put_facts(
        &self,
        repository_id: &str,
        version: &str,
        facts: &[FactsRow],
    ) -> Result<(), DbError> {
        for chunk in facts.chunks(FACTS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO file_facts (repository_id, path, object_id, version, facts) \
                 VALUES {} ON CONFLICT (repository_id, path, object_id) DO UPDATE SET \
                 version = excluded.version, facts = excluded.facts",
                placeholders(chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for (path, object_id, bytes) in chunk {
                q = q
                    .bind(repository_id)
                    .bind(path)
                    .bind(object_id)
                    .bind(version)
                    .bind(bytes.as_slice());
            }
            q.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Bytes and rows of facts kept for a repository (for the benchmark and
    /// the bound on what is kept).
    pub async fn facts_stored(&self, repository_id: &str) -> Result<(i64, i64), DbError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(facts)), 0) AS bytes \
             FROM file_facts WHERE repository_id = $1",
        )
        .bind(repository_id)
        .fetch_one(self.pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("bytes")?))
    }
}
