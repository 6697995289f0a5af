//! Housekeeping, on every instance: at start, the archives a killed
//! process left in the work directory are removed; then, hourly, what the
//! retention settings no longer keep is pruned from the database
//! (`Db::prune`: webhook deliveries, finished jobs, expired consent
//! requests). Deletes are idempotent, so instances sharing a database
//! need no turn-taking.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, RetentionArgs};
use crate::db::retention::Retention;
use crate::db::{now, Db};

use super::engine::work_file_job;

/// How often the database is pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

const DAY_SECS: i64 = 86_400;

impl From<&RetentionArgs> for Retention {
    fn from(args: &RetentionArgs) -> Self {
        let days =
            |d: u64| (d > 0).then(|| i64::try_from(d).unwrap_or(i64::MAX / DAY_SECS) * DAY_SECS);
        Retention {
            deliveries_max_age: days(args.retain_deliveries_days),
            deliveries_kept: i64::try_from(args.retain_deliveries_min).unwrap_or(i64::MAX),
            test_deliveries_kept: i64::try_from(args.retain_test_deliveries).unwrap_or(i64::MAX),
            jobs_max_age: days(args.retain_jobs_days),
        }
    }
}

/// The housekeeping task of one instance.
pub struct Pruner {
    pub db: Db,
    pub retention: Retention,
    /// The sync engine's work directory (`EngineSettings::work_dir`).
    pub work_dir: PathBuf,
    pub interval: Duration,
}

impl Pruner {
    /// As `serve` configures it: the work directory under the data directory.
    pub fn new(db: Db, config: &Config) -> Self {
        Pruner {
            db,
            retention: Retention::from(&config.sync.retention),
            work_dir: config.data_dir.join("work"),
            interval: PRUNE_INTERVAL,
        }
    }

    /// Cleans the work directory once, then prunes at once and every
    /// `interval`, until the task is aborted.
    pub async fn run(self) {
        match clean_work_dir(&self.db, &self.work_dir).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(
                removed,
                dir = %self.work_dir.display(),
                "removed archives left in the work directory by an earlier run"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                dir = %self.work_dir.display(),
                "could not clean the work directory"
            ),
        }
        let mut every = tokio::time::interval(self.interval);
        loop {
            every.tick().await;
            match self.db.prune(&self.retention, now()).await {
                Ok(pruned) if pruned.total() > 0 => tracing::info!(
                    deliveries = pruned.deliveries,
                    jobs = pruned.jobs,
                    consent_requests = pruned.consent_requests,
                    "pruned old records"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune old records"),
            }
        }
    }
}

/// Removes the sync engine's files (a job's archive, or the download's
/// temporary file; see `engine::work_file_job`) from `dir`, but those of
/// jobs running under a lease that holds: another instance sharing the
/// directory may be downloading. Anything else in it is left alone.
/// Returns how many files were removed.
pub async fn clean_work_dir(db: &Db, dir: &Path) -> std::io::Result<usize> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    // Listed before the running jobs are read: a file that exists by then
    // belongs to a job claimed before the look-up, which sees it.
    let mut candidates = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let Some(job) = name.to_str().and_then(work_file_job) else {
            continue;
        };
        // Regular files only (the type of the entry itself, not of what a
        // symbolic link points to).
        if entry.file_type().await?.is_file() {
            candidates.push((entry.path(), job.to_owned()));
        }
    }
    if candidates.is_empty() {
        return Ok(0);
    }
    let running: HashSet<String> = db
        .running_job_ids(now())
        .await
        .map_err(std::io::Error::other)?
        .into_iter()
        .collect();
    let mut removed = 0;
    for (path, job) in candidates {
        if running.contains(&job) {
            continue;
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::queue::tests::{seed_repos, TestDb};
    use crate::sync::{JobKind, NewJob, Queue, QueueConfig};

    #[tokio::test]
    async fn leftover_archives_go_a_running_jobs_and_other_files_stay() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repos = seed_repos(&db, 1).await;
            let queue = Queue::new(db.clone(), QueueConfig::default());
            queue
                .enqueue(&NewJob {
                    repository_id: &repos[0],
                    kind: JobKind::FirstReplication,
                    target_commit: None,
                    delivery_id: None,
                })
                .await
                .unwrap();
            let running = queue.claim().await.unwrap().unwrap().id;

            let dir = tempfile::tempdir().unwrap();
            let work = dir.path().join("work");
            std::fs::create_dir(&work).unwrap();
            let stale = uuid::Uuid::new_v4().to_string();
            let hex = uuid::Uuid::new_v4().simple().to_string();
            let file = |name: String| {
                let path = work.join(name);
                std::fs::write(&path, b"PK").unwrap();
                path
            };
            let gone = [
                file(format!("{stale}.zip")),
                file(format!(".{stale}.zip.{hex}.part")),
            ];
            let kept = [
                file(format!("{running}.zip")),
                file(format!(".{running}.zip.{hex}.part")),
                file("notes.zip".into()),
                file(format!("{stale}.zip.bak")),
                file(format!(".{stale}.zip.xyz.part")),
                file("README".into()),
            ];
            let a_dir = work.join(format!("{}.zip", uuid::Uuid::new_v4()));
            std::fs::create_dir(&a_dir).unwrap();

            let removed = clean_work_dir(&db, &work).await.unwrap();
            assert_eq!(removed, 2, "{}", t.url);
            for path in &gone {
                assert!(!path.exists(), "{} stayed", path.display());
            }
            for path in kept.iter().chain([&a_dir]) {
                assert!(path.exists(), "{} was removed", path.display());
            }
            // No work directory yet: nothing to do.
            assert_eq!(
                clean_work_dir(&db, &dir.path().join("none")).await.unwrap(),
                0
            );
            db.close().await;
        }
    }

    #[test]
    fn retention_settings_map_days_and_zero_keeps_for_ever() {
        let args = RetentionArgs {
            retain_deliveries_days: 30,
            retain_deliveries_min: 50,
            retain_test_deliveries: 5,
            retain_jobs_days: 0,
            history_commits: 50,
            history_days: 30,
        };
        let r = Retention::from(&args);
        assert_eq!(r.deliveries_max_age, Some(30 * DAY_SECS));
        assert_eq!(r.deliveries_kept, 50);
        assert_eq!(r.test_deliveries_kept, 5);
        assert_eq!(r.jobs_max_age, None);
    }
}
