//! The replicated files of a repository, as snapshots: a sync stages a whole
//! new snapshot next to the visible one, then [`Db::switch_snapshot`]
//! points the repository at it, stores its graph and drops the graph of the
//! previous commit, in one transaction. Readers go through
//! `repositories.visible_snapshot`, so they see the old commit's files or
//! the new one's, never a mix, even when the hub is killed mid-sync.
//!
//! Contents live in `file_blobs`, keyed per repository by Git blob id, so
//! that an incremental sync copies the file list of the visible snapshot
//! (a few rows) and stores only what changed.

use std::collections::HashMap;
use std::fmt::Write as _;

use sqlx::Row;

use super::graphs::write_graph;
use super::{now, Db, DbError};
use spicehub_parser::Graph;

/// Rows per multi-row INSERT (well below SQLite's bound-parameter limit).
const ROWS_PER_INSERT: usize = 200;
/// Blobs per INSERT: contents can be large, so fewer per statement.
const BLOBS_PER_INSERT: usize = 50;

/// One path of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    pub path: String,
    /// Git blob id of the content; `None` when the content is not stored.
    pub object_id: Option<String>,
    pub size: i64,
    /// Why the content is not stored (symbolic link, LFS pointer, too large).
    pub note: Option<String>,
}

/// A file with its content (absent for noted paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub row: FileRow,
    pub content: Option<Vec<u8>>,
}

/// What the switch records about the sync that produced the snapshot.
pub struct SwitchInfo<'a> {
    pub snapshot_id: &'a str,
    pub commit_id: &'a str,
    pub graph: &'a Graph,
    /// Why the sync did what it did, for the admin ("full sync: history was rewritten").
    pub note: Option<&'a str>,
}

/// Git's blob id: SHA-1 of `blob <len>\0<content>`; the same id Azure DevOps
/// reports for a file, so an unchanged or renamed file is never fetched again.
pub fn git_blob_id(content: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", content.len()).as_bytes());
    h.update(content);
    h.finalize()
        .iter()
        .fold(String::with_capacity(40), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn placeholders(rows: usize, cols: usize) -> String {
    let mut sql = String::new();
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            n += 1;
            let _ = write!(sql, "{}${n}", if c == 0 { "" } else { ", " });
        }
        sql.push(')');
    }
    sql
}

impl Db {
    /// Starts a snapshot of `commit_id` for a job. Snapshots left behind by
    /// an attempt that died (never made visible) are dropped first: one job
    /// runs per repository at a time, so nobody else is writing them.
    pub async fn begin_snapshot(
        &self,
        repository_id: &str,
        commit_id: &str,
        job_id: Option<&str>,
    ) -> Result<String, DbError> {
        self.drop_invisible_snapshots(repository_id).await?;
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO repository_snapshots (id, repository_id, commit_id, job_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(repository_id)
        .bind(commit_id)
        .bind(job_id)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Drops every snapshot of the repository but the visible one, and the
    /// blobs no snapshot uses any more.
    pub async fn drop_invisible_snapshots(&self, repository_id: &str) -> Result<(), DbError> {
        let visible: Option<String> =
            sqlx::query("SELECT visible_snapshot FROM repositories WHERE id = $1")
                .bind(repository_id)
                .fetch_optional(self.pool())
                .await?
                .map(|r| r.try_get("visible_snapshot"))
                .transpose()?
                .flatten();
        let stale: Vec<String> =
            sqlx::query("SELECT id FROM repository_snapshots WHERE repository_id = $1")
                .bind(repository_id)
                .fetch_all(self.pool())
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|id| Some(id) != visible.as_ref())
                .collect();
        for id in &stale {
            // Children first: SQLite does not enforce the foreign key unless asked.
            sqlx::query("DELETE FROM repository_files WHERE snapshot_id = $1")
                .bind(id)
                .execute(self.pool())
                .await?;
            sqlx::query("DELETE FROM repository_snapshots WHERE id = $1")
                .bind(id)
                .execute(self.pool())
                .await?;
        }
        if !stale.is_empty() {
            sqlx::query(
                "DELETE FROM file_blobs WHERE repository_id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM repository_files f WHERE f.repository_id = file_blobs.repository_id \
                  AND f.object_id = file_blobs.object_id)",
            )
            .bind(repository_id)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Which of these blob ids the repository already stores, with their sizes.
    pub async fn known_blobs(
        &self,
        repository_id: &str,
        object_ids: &[String],
    ) -> Result<HashMap<String, i64>, DbError> {
        let mut known = HashMap::new();
        for chunk in object_ids.chunks(ROWS_PER_INSERT) {
            let mut sql = "SELECT object_id, LENGTH(content) AS size FROM file_blobs \
                 WHERE repository_id = $1 AND object_id IN ("
                .to_owned();
            for i in 0..chunk.len() {
                let _ = write!(sql, "{}${}", if i == 0 { "" } else { ", " }, i + 2);
            }
            sql.push(')');
            let mut q = sqlx::query(&sql).bind(repository_id);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(self.pool()).await? {
                let size: i64 = match row.try_get::<i64, _>("size") {
                    Ok(n) => n,
                    Err(_) => i64::from(row.try_get::<i32, _>("size")?),
                };
                known.insert(row.try_get("object_id")?, size);
            }
        }
        Ok(known)
    }

    /// The paths of a snapshot without contents, sorted by path.
    pub async fn snapshot_rows(&self, snapshot_id: &str) -> Result<Vec<FileRow>, DbError> {
        let rows = sqlx::query(
            "SELECT path, object_id, size, note FROM repository_files \
             WHERE snapshot_id = $1 ORDER BY path",
        )
        .bind(snapshot_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FileRow {
                    path: r.try_get("path")?,
                    object_id: r.try_get("object_id")?,
                    size: r.try_get("size")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }

    /// The content of one path of a snapshot (`None` for a noted path).
    pub async fn snapshot_file_content(
        &self,
        snapshot_id: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let row = sqlx::query(
            "SELECT b.content FROM repository_files f JOIN file_blobs b \
             ON b.repository_id = f.repository_id AND b.object_id = f.object_id \
             WHERE f.snapshot_id = $1 AND f.path = $2",
        )
        .bind(snapshot_id)
        .bind(path)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get("content"))
            .transpose()
            .map_err(Into::into)
    }

    /// Snapshots stored for a repository (visible or staged).
    pub async fn count_snapshots(&self, repository_id: &str) -> Result<i64, DbError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM repository_snapshots WHERE repository_id = $1")
                .bind(repository_id)
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get("n")?)
    }

    /// Records a sync that found nothing to change (or nothing to replicate).
    pub async fn mark_checked(
        &self,
        repository_id: &str,
        note: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE repositories SET state = 'synced', last_error = NULL, last_synced_at = $2, \
             last_sync_note = COALESCE($3, last_sync_note), updated_at = $2 WHERE id = $1",
        )
        .bind(repository_id)
        .bind(now())
        .bind(note)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores contents (already-known blob ids are left as they are).
    pub async fn put_blobs(
        &self,
        repository_id: &str,
        blobs: &[(String, Vec<u8>)],
    ) -> Result<(), DbError> {
        for chunk in blobs.chunks(BLOBS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO file_blobs (repository_id, object_id, content) VALUES {} \
                 ON CONFLICT (repository_id, object_id) DO NOTHING",
                placeholders(chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (id, content) in chunk {
                q = q.bind(repository_id).bind(id).bind(content.as_slice());
            }
            q.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Adds or replaces paths in a (not yet visible) snapshot.
    pub async fn put_files(
        &self,
        snapshot_id: &str,
        repository_id: &str,
        files: &[FileRow],
    ) -> Result<(), DbError> {
        // One path can appear twice in a batch (a rename onto a path edited
        // in the same diff): PostgreSQL refuses to upsert one row twice.
        let mut last = std::collections::HashMap::new();
        for (i, f) in files.iter().enumerate() {
            last.insert(f.path.as_str(), i);
        }
        let files: Vec<&FileRow> = files
            .iter()
            .enumerate()
            .filter(|(i, f)| last.get(f.path.as_str()) == Some(i))
            .map(|(_, f)| f)
            .collect();
        for chunk in files.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO repository_files (snapshot_id, repository_id, path, object_id, size, note) \
                 VALUES {} ON CONFLICT (snapshot_id, path) DO UPDATE SET \
                 object_id = excluded.object_id, size = excluded.size, note = excluded.note",
                placeholders(chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(snapshot_id)
                    .bind(repository_id)
                    .bind(&f.path)
                    .bind(f.object_id.as_deref())
                    .bind(f.size)
                    .bind(f.note.as_deref());
            }
            q.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Removes paths from a (not yet visible) snapshot.
    pub async fn delete_files(&self, snapshot_id: &str, paths: &[String]) -> Result<(), DbError> {
        for chunk in paths.chunks(ROWS_PER_INSERT) {
            let mut sql =
                "DELETE FROM repository_files WHERE snapshot_id = $1 AND path IN (".to_owned();
            for i in 0..chunk.len() {
                let _ = write!(sql, "{}${}", if i == 0 { "" } else { ", " }, i + 2);
            }
            sql.push(')');
            let mut q = sqlx::query(&sql).bind(snapshot_id);
            for p in chunk {
                q = q.bind(p);
            }
            q.execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Copies the file list of one snapshot into another (contents are shared).
    pub async fn copy_files(&self, from: &str, to: &str) -> Result<u64, DbError> {
        let done = sqlx::query(
            "INSERT INTO repository_files (snapshot_id, repository_id, path, object_id, size, note) \
             SELECT $1, repository_id, path, object_id, size, note FROM repository_files \
             WHERE snapshot_id = $2",
        )
        .bind(to)
        .bind(from)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Every path of a snapshot with its content, sorted by path.
    pub async fn snapshot_files(&self, snapshot_id: &str) -> Result<Vec<StoredFile>, DbError> {
        let rows = sqlx::query(SNAPSHOT_FILES_WITH_CONTENT)
            .bind(snapshot_id)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(stored_file).collect()
    }

    /// The visible snapshot of a repository and its commit, if it ever synced.
    pub async fn visible_snapshot(
        &self,
        repository_id: &str,
    ) -> Result<Option<(String, String)>, DbError> {
        let row = sqlx::query(
            "SELECT s.id, s.commit_id FROM repositories r \
             JOIN repository_snapshots s ON s.id = r.visible_snapshot WHERE r.id = $1",
        )
        .bind(repository_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("commit_id")?)))
            .transpose()
    }

    /// The files readers see now, with the commit they belong to, read in
    /// one transaction.
    pub async fn visible_files(
        &self,
        repository_id: &str,
    ) -> Result<Option<(String, Vec<StoredFile>)>, DbError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(
            "SELECT s.id, s.commit_id FROM repositories r \
             JOIN repository_snapshots s ON s.id = r.visible_snapshot WHERE r.id = $1",
        )
        .bind(repository_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let snapshot: String = row.try_get("id")?;
        let commit: String = row.try_get("commit_id")?;
        let rows = sqlx::query(SNAPSHOT_FILES_WITH_CONTENT)
            .bind(&snapshot)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let files = rows
            .iter()
            .map(stored_file)
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(Some((commit, files)))
    }

    /// Makes a staged snapshot the visible one: stores its graph, points the
    /// repository at it and at its commit, and drops the graph of any other
    /// commit, in one transaction. The previous snapshot's rows are removed
    /// afterwards (they are invisible from this point).
    pub async fn switch_snapshot(
        &self,
        repository_id: &str,
        switch: &SwitchInfo<'_>,
    ) -> Result<(), DbError> {
        let file_count: i64 = {
            let row =
                sqlx::query("SELECT COUNT(*) AS n FROM repository_files WHERE snapshot_id = $1")
                    .bind(switch.snapshot_id)
                    .fetch_one(self.pool())
                    .await?;
            row.try_get("n")?
        };
        let mut tx = self.pool().begin().await?;
        write_graph(&mut tx, repository_id, switch.commit_id, switch.graph).await?;
        for table in [
            "graph_layouts",
            "graph_diagnostics",
            "graph_edges",
            "graph_entries",
            "graph_registries",
            "graph_snapshots",
        ] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE repository_id = $1 AND commit_id <> $2"
            ))
            .bind(repository_id)
            .bind(switch.commit_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE repositories SET visible_snapshot = $2, last_synced_commit = $3, \
             last_synced_at = $4, last_sync_note = $5, file_count = $6, state = 'synced', \
             last_error = NULL, updated_at = $4 WHERE id = $1",
        )
        .bind(repository_id)
        .bind(switch.snapshot_id)
        .bind(switch.commit_id)
        .bind(now())
        .bind(switch.note)
        .bind(file_count)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.drop_invisible_snapshots(repository_id).await
    }

    /// Replaces the graph of the visible commit (a re-parse), and notes when.
    pub async fn replace_visible_graph(
        &self,
        repository_id: &str,
        commit_id: &str,
        graph: &Graph,
        note: Option<&str>,
    ) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        write_graph(&mut tx, repository_id, commit_id, graph).await?;
        sqlx::query(
            "UPDATE repositories SET state = 'synced', last_error = NULL, last_sync_note = $2, \
             updated_at = $3 WHERE id = $1",
        )
        .bind(repository_id)
        .bind(note)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A snapshot's files with their contents, in path order (`$1`: snapshot id).
const SNAPSHOT_FILES_WITH_CONTENT: &str = "SELECT f.path, f.object_id, f.size, f.note, b.content \
     FROM repository_files f LEFT JOIN file_blobs b \
     ON b.repository_id = f.repository_id AND b.object_id = f.object_id \
     WHERE f.snapshot_id = $1 ORDER BY f.path";

fn stored_file(r: &sqlx::any::AnyRow) -> Result<StoredFile, DbError> {
    Ok(StoredFile {
        row: FileRow {
            path: r.try_get("path")?,
            object_id: r.try_get("object_id")?,
            size: r.try_get("size")?,
            note: r.try_get("note")?,
        },
        content: r.try_get("content")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_match_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        // The empty blob.
        assert_eq!(git_blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }
}
