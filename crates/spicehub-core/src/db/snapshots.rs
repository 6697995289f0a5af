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

use sqlx::{AnyConnection, Row};

use super::graphs::write_graph;
use super::history::{self, CommitInfo};
use super::queue::{lease_holds, Lease};
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
    /// The commit's author, time and message, for the history's timeline.
    pub commit: Option<&'a CommitInfo>,
}

/// Why a snapshot could not be started or made visible.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The job's lease ran out and another runner may own the job now:
    /// its work must not become visible, nor may it drop the new owner's.
    #[error("the job's lease was lost (another runner took the job over)")]
    LeaseLost,
    /// The repository's row is gone: nothing may be stored for it.
    #[error("the repository was removed from the hub")]
    RepositoryRemoved,
    /// The snapshot the job worked on is gone, or no longer the visible
    /// one (another run replaced it).
    #[error("the files this sync worked on were replaced meanwhile; it will start again")]
    SnapshotGone,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for SnapshotError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Checks, on the caller's transaction, that the repository still exists
/// and (when given) that the lease holds. The repository row is locked
/// first, the job's second: the order in which `delete_repository` takes
/// them (its row, then the jobs the foreign key deletes), so the two never
/// wait on each other in a cycle. Returns the visible snapshot.
async fn hold_repository(
    conn: &mut AnyConnection,
    repository_id: &str,
    lease: Option<&Lease<'_>>,
) -> Result<Option<String>, SnapshotError> {
    let row = sqlx::query(
        "UPDATE repositories SET updated_at = updated_at WHERE id = $1 RETURNING visible_snapshot",
    )
    .bind(repository_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(SnapshotError::RepositoryRemoved)?;
    if let Some(lease) = lease {
        if !lease_holds(conn, lease).await? {
            return Err(SnapshotError::LeaseLost);
        }
    }
    Ok(row.try_get("visible_snapshot")?)
}

/// Drops every snapshot of the repository but `visible`, and the blobs and
/// parser facts no snapshot uses any more, on the caller's transaction.
async fn drop_snapshots_but(
    conn: &mut AnyConnection,
    repository_id: &str,
    visible: Option<&str>,
) -> Result<(), DbError> {
    let stale: Vec<String> =
        sqlx::query("SELECT id FROM repository_snapshots WHERE repository_id = $1")
            .bind(repository_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|id| Some(id.as_str()) != visible)
            .collect();
    for id in &stale {
        // Children first: the foreign key would cascade, but one statement
        // per table keeps it plain.
        sqlx::query("DELETE FROM repository_files WHERE snapshot_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM repository_snapshots WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    if !stale.is_empty() {
        sqlx::query(
            "DELETE FROM file_facts WHERE repository_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM repository_files f WHERE f.repository_id = file_facts.repository_id \
              AND f.path = file_facts.path AND f.object_id = file_facts.object_id)",
        )
        .bind(repository_id)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM file_blobs WHERE repository_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM repository_files f WHERE f.repository_id = file_blobs.repository_id \
              AND f.object_id = file_blobs.object_id)",
        )
        .bind(repository_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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

pub(super) fn placeholders(rows: usize, cols: usize) -> String {
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
    /// runs per repository at a time, so nobody else is writing them. With
    /// a lease, all of it happens only while the lease holds (a runner that
    /// lost its job must not drop the new owner's snapshot), in one
    /// transaction; without one (tests, tools), unconditionally.
    pub async fn begin_snapshot(
        &self,
        repository_id: &str,
        commit_id: &str,
        lease: Option<&Lease<'_>>,
    ) -> Result<String, SnapshotError> {
        let mut tx = self.pool().begin().await?;
        let visible = hold_repository(&mut tx, repository_id, lease).await?;
        drop_snapshots_but(&mut tx, repository_id, visible.as_deref()).await?;
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO repository_snapshots (id, repository_id, commit_id, job_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(repository_id)
        .bind(commit_id)
        .bind(lease.map(|l| l.job_id))
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Drops every snapshot of the repository but the visible one, and the
    /// blobs no snapshot uses any more; with a lease, only while it holds
    /// (otherwise nothing is dropped and `LeaseLost` is returned).
    pub async fn drop_invisible_snapshots(
        &self,
        repository_id: &str,
        lease: Option<&Lease<'_>>,
    ) -> Result<(), SnapshotError> {
        let mut tx = self.pool().begin().await?;
        let visible = match hold_repository(&mut tx, repository_id, lease).await {
            Ok(visible) => visible,
            // Nothing left to drop: the foreign keys took it all.
            Err(SnapshotError::RepositoryRemoved) => return Ok(()),
            Err(e) => return Err(e),
        };
        drop_snapshots_but(&mut tx, repository_id, visible.as_deref()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how many files the snapshot's tree has (every file, kept or
    /// not), so that the incremental syncs based on it can enforce the
    /// entry limit; `None` when the snapshot predates the count.
    pub async fn set_snapshot_tree_files(
        &self,
        snapshot_id: &str,
        files: i64,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE repository_snapshots SET tree_files = $2 WHERE id = $1")
            .bind(snapshot_id)
            .bind(files)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// See [`Db::set_snapshot_tree_files`].
    pub async fn snapshot_tree_files(&self, snapshot_id: &str) -> Result<Option<i64>, DbError> {
        let row = sqlx::query("SELECT tree_files FROM repository_snapshots WHERE id = $1")
            .bind(snapshot_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("tree_files")).transpose()?.flatten())
    }

    /// Bytes of the contents a snapshot keeps (paths with a stored blob),
    /// as the archive limit `max_total_bytes` counts them.
    pub async fn snapshot_kept_bytes(&self, snapshot_id: &str) -> Result<i64, DbError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM repository_files \
             WHERE snapshot_id = $1 AND object_id IS NOT NULL",
        )
        .bind(snapshot_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
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
    /// afterwards (they are invisible from this point). Refused when the
    /// repository is gone. See [`Db::switch_snapshot_leased`] for a job's
    /// switch.
    pub async fn switch_snapshot(
        &self,
        repository_id: &str,
        switch: &SwitchInfo<'_>,
    ) -> Result<(), SnapshotError> {
        self.switch_snapshot_leased(repository_id, switch, None)
            .await
    }

    /// [`Db::switch_snapshot`] for a job: the transaction also requires
    /// the job's lease, so a runner that lost its job to another cannot
    /// make an older commit visible over the new owner's work.
    pub async fn switch_snapshot_leased(
        &self,
        repository_id: &str,
        switch: &SwitchInfo<'_>,
        lease: Option<&Lease<'_>>,
    ) -> Result<(), SnapshotError> {
        let mut tx = self.pool().begin().await?;
        // First: nothing is written for a repository that is gone (its
        // graph would have no owner and show under its GUID for good).
        hold_repository(&mut tx, repository_id, lease).await?;
        let file_count: i64 = {
            let row =
                sqlx::query("SELECT COUNT(*) AS n FROM repository_files WHERE snapshot_id = $1")
                    .bind(switch.snapshot_id)
                    .fetch_one(&mut *tx)
                    .await?;
            row.try_get("n")?
        };
        let staged = sqlx::query(
            "SELECT 1 AS one FROM repository_snapshots WHERE id = $1 AND repository_id = $2",
        )
        .bind(switch.snapshot_id)
        .bind(repository_id)
        .fetch_optional(&mut *tx)
        .await?;
        if staged.is_none() {
            return Err(SnapshotError::SnapshotGone);
        }
        write_graph(&mut tx, repository_id, switch.commit_id, switch.graph).await?;
        history::record(
            &mut tx,
            repository_id,
            switch.commit_id,
            switch.graph,
            switch.commit,
            self.history_retention(),
        )
        .await?;
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
        // The previous snapshot is invisible now. If the lease ran out in
        // between, the next attempt drops it instead.
        match self.drop_invisible_snapshots(repository_id, lease).await {
            Ok(()) | Err(SnapshotError::LeaseLost) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the graph of the visible commit (a re-parse), and notes
    /// when; refused when the repository is gone, when it shows another
    /// commit by now, or when the lease (if given) was lost.
    pub async fn replace_visible_graph(
        &self,
        repository_id: &str,
        commit_id: &str,
        graph: &Graph,
        note: Option<&str>,
        lease: Option<&Lease<'_>>,
    ) -> Result<(), SnapshotError> {
        let mut tx = self.pool().begin().await?;
        hold_repository(&mut tx, repository_id, lease).await?;
        let updated = sqlx::query(
            "UPDATE repositories SET state = 'synced', last_error = NULL, last_sync_note = $2, \
             updated_at = $3 WHERE id = $1 AND last_synced_commit = $4",
        )
        .bind(repository_id)
        .bind(note)
        .bind(now())
        .bind(commit_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(SnapshotError::SnapshotGone);
        }
        write_graph(&mut tx, repository_id, commit_id, graph).await?;
        history::record(
            &mut tx,
            repository_id,
            commit_id,
            graph,
            None,
            self.history_retention(),
        )
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
    use crate::db::queue::tests::{seed_repos, TestDb};
    use crate::sync::{JobKind, NewJob, Queue, QueueConfig};

    fn graph(registry: &str) -> Graph {
        Graph {
            registries: vec![spicehub_parser::Registry {
                id: registry.to_owned(),
                label: registry.to_owned(),
                file: "pkg/registry.py".to_owned(),
                line: 1,
            }],
            ..Graph::default()
        }
    }

    fn file(path: &str) -> FileRow {
        FileRow {
            path: path.to_owned(),
            object_id: None,
            size: 0,
            note: Some("noted".to_owned()),
        }
    }

    async fn job(queue: &Queue, repo: &str, kind: JobKind) {
        queue
            .enqueue(&NewJob {
                repository_id: repo,
                kind,
                target_commit: None,
                delivery_id: None,
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_runner_that_lost_its_lease_can_neither_switch_nor_drop_the_new_owners_files() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repo = seed_repos(&db, 1).await.remove(0);
            let config = QueueConfig {
                lease_secs: 60,
                backoff_base_secs: 0,
                ..QueueConfig::default()
            };
            let (a, b) = (
                Queue::new(db.clone(), config),
                Queue::new(db.clone(), config),
            );

            // Runner A makes c1 visible.
            job(&a, &repo, JobKind::FirstReplication).await;
            let first = a.claim().await.unwrap().unwrap();
            let lease = a.lease(&first.id);
            let s1 = db.begin_snapshot(&repo, "c1", Some(&lease)).await.unwrap();
            db.put_files(&s1, &repo, &[file("a.py")]).await.unwrap();
            let switch = |snapshot, commit, g| SwitchInfo {
                snapshot_id: snapshot,
                commit_id: commit,
                graph: g,
                note: None,
                commit: None,
            };
            let g1 = graph("one");
            db.switch_snapshot_leased(&repo, &switch(&s1, "c1", &g1), Some(&lease))
                .await
                .unwrap();
            a.complete(&first.id).await.unwrap();

            // A claims the next job and stages c2; its lease runs out and
            // B takes the job over, staging c3.
            job(&a, &repo, JobKind::RecentChanges).await;
            let second = a.claim().await.unwrap().unwrap();
            let stale = a.lease(&second.id);
            let s2 = db.begin_snapshot(&repo, "c2", Some(&stale)).await.unwrap();
            db.put_files(&s2, &repo, &[file("b.py")]).await.unwrap();
            let taken = b
                .claim_at(now() + config.lease_secs + 1)
                .await
                .unwrap()
                .expect("taken over");
            assert_eq!(taken.id, second.id);
            let fresh = b.lease(&taken.id);
            let s3 = db.begin_snapshot(&repo, "c3", Some(&fresh)).await.unwrap();
            db.put_files(&s3, &repo, &[file("c.py")]).await.unwrap();

            // A wakes up: its switch is refused, and so is a new snapshot
            // (which would drop B's).
            let g2 = graph("two");
            let refused = db
                .switch_snapshot_leased(&repo, &switch(&s2, "c2", &g2), Some(&stale))
                .await;
            assert!(
                matches!(refused, Err(SnapshotError::LeaseLost)),
                "{}: {refused:?}",
                t.url
            );
            let refused = db.begin_snapshot(&repo, "c2", Some(&stale)).await;
            assert!(
                matches!(refused, Err(SnapshotError::LeaseLost)),
                "{refused:?}"
            );
            let refused = db
                .replace_visible_graph(&repo, "c1", &g2, None, Some(&stale))
                .await;
            assert!(
                matches!(refused, Err(SnapshotError::LeaseLost)),
                "{refused:?}"
            );
            let refused = db.drop_invisible_snapshots(&repo, Some(&stale)).await;
            assert!(
                matches!(refused, Err(SnapshotError::LeaseLost)),
                "{refused:?}"
            );
            // Readers still see c1, with its graph; c2 was never stored.
            assert_eq!(
                db.visible_snapshot(&repo).await.unwrap(),
                Some((s1.clone(), "c1".to_owned()))
            );
            assert_eq!(
                db.visible_commit(&repo).await.unwrap().as_deref(),
                Some("c1")
            );
            assert!(db.load_graph(&repo, "c2").await.unwrap().is_none());
            assert_eq!(db.load_graph(&repo, "c1").await.unwrap(), Some(g1.clone()));
            // B's staged files are intact, and its switch goes through.
            assert_eq!(db.snapshot_rows(&s3).await.unwrap(), [file("c.py")]);
            let g3 = graph("three");
            db.switch_snapshot_leased(&repo, &switch(&s3, "c3", &g3), Some(&fresh))
                .await
                .unwrap();
            assert_eq!(
                db.visible_commit(&repo).await.unwrap().as_deref(),
                Some("c3")
            );
            assert_eq!(db.count_snapshots(&repo).await.unwrap(), 1);
            db.close().await;
        }
    }

    #[tokio::test]
    async fn nothing_is_stored_for_a_removed_repository_and_its_graph_goes_with_it() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repos = seed_repos(&db, 2).await;
            let queue = Queue::new(db.clone(), QueueConfig::default());
            job(&queue, &repos[0], JobKind::FirstReplication).await;
            let running = queue.claim().await.unwrap().unwrap();
            let lease = queue.lease(&running.id);
            let staged = db
                .begin_snapshot(&repos[0], "c1", Some(&lease))
                .await
                .unwrap();

            // Removed while its sync parses.
            assert!(db.delete_repository(&repos[0]).await.unwrap());
            let g = graph("one");
            let info = SwitchInfo {
                snapshot_id: &staged,
                commit_id: "c1",
                graph: &g,
                note: None,
                commit: None,
            };
            for lease in [Some(&lease), None] {
                let refused = db.switch_snapshot_leased(&repos[0], &info, lease).await;
                assert!(
                    matches!(refused, Err(SnapshotError::RepositoryRemoved)),
                    "{}: {refused:?}",
                    t.url
                );
            }
            let refused = db.begin_snapshot(&repos[0], "c1", None).await;
            assert!(matches!(refused, Err(SnapshotError::RepositoryRemoved)));
            assert!(db.load_graph(&repos[0], "c1").await.unwrap().is_none());
            assert!(db.visible_commit(&repos[0]).await.unwrap().is_none());
            assert!(db.list_registries(None).await.unwrap().is_empty());

            // A repository removed by the cascade from its provider takes
            // its graph along (the trigger on `repositories`).
            let s = db.begin_snapshot(&repos[1], "c9", None).await.unwrap();
            let info = SwitchInfo {
                snapshot_id: &s,
                commit_id: "c9",
                graph: &g,
                note: None,
                commit: None,
            };
            db.switch_snapshot(&repos[1], &info).await.unwrap();
            assert_eq!(db.list_registries(None).await.unwrap().len(), 1);
            sqlx::query("DELETE FROM providers")
                .execute(db.pool())
                .await
                .unwrap();
            assert!(db.repository(&repos[1]).await.unwrap().is_none());
            assert!(db.load_graph(&repos[1], "c9").await.unwrap().is_none());
            assert!(db.list_registries(None).await.unwrap().is_empty());
            db.close().await;
        }
    }

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
