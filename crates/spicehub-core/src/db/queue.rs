//! Durable job queue on the `sync_jobs` table, shared by every hub instance
//! on one database.
//!
//! - **Coalescing**: at most one *pending* job per (repository, kind), kept by
//!   a partial unique index; enqueueing again updates its target to the
//!   newest commit instead of adding a job. Ten pushes in a burst sync once.
//! - **Leases**: a claim marks the job `running` with an owner and an expiry.
//!   The runner renews the lease while it works (`renew`, `progress`). If the
//!   instance dies, the lease runs out and the job can be claimed again after
//!   an exponential backoff, until `max_attempts`; then it is `failed`.
//! - **One job per repository**: a partial unique index allows one `running`
//!   row per repository, so two instances racing cannot both win; the loser
//!   sees a unique violation and tries again.
//! - PostgreSQL claims with `FOR UPDATE SKIP LOCKED` in a transaction, so
//!   concurrent claimers skip each other's rows instead of waiting. SQLite has
//!   one writer: its single conditional `UPDATE … RETURNING` is atomic.
//!
//! Every state change by a runner is conditioned on `lease_owner`, so a runner
//! whose lease was taken over learns it (`QueueError::LeaseLost`) instead of
//! overwriting the new owner's work.

use sqlx::{AnyConnection, Row};

use crate::db::{now, Backend, Db, DbError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Nothing stored yet: download the tracked branch.
    FirstReplication,
    /// Diff from the last synced commit to the target (the webhook's job).
    RecentChanges,
    /// Download everything again ("Synchronize entire repository").
    EntireRepository,
    /// Diff from a commit the admin names ("Synchronize from commit hash").
    FromCommit,
    /// Parse the stored files again (parser upgrade, configuration change).
    Reparse,
    /// Compare the branch head with the last synced commit (missed webhooks).
    Reconcile,
}

impl JobKind {
    pub const ALL: [JobKind; 6] = [
        Self::FirstReplication,
        Self::RecentChanges,
        Self::EntireRepository,
        Self::FromCommit,
        Self::Reparse,
        Self::Reconcile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstReplication => "first_replication",
            Self::RecentChanges => "recent_changes",
            Self::EntireRepository => "entire_repository",
            Self::FromCommit => "from_commit",
            Self::Reparse => "reparse",
            Self::Reconcile => "reconcile",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Its retry was folded into a newer pending job of the same kind.
    Superseded,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Superseded => "superseded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "superseded" => Self::Superseded,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub repository_id: String,
    pub kind: JobKind,
    /// The commit to sync to (newest push), or the base commit of `FromCommit`.
    pub target_commit: Option<String>,
    pub status: JobStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub phase: Option<String>,
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pub last_error: Option<String>,
    pub delivery_id: Option<String>,
}

#[derive(Clone, Copy, Debug)]
pub struct NewJob<'a> {
    pub repository_id: &'a str,
    pub kind: JobKind,
    pub target_commit: Option<&'a str>,
    /// The webhook delivery that asked for it, if any.
    pub delivery_id: Option<&'a str>,
}

/// Timing of the queue, in seconds.
#[derive(Clone, Copy, Debug)]
pub struct QueueConfig {
    /// How long a claim holds without renewal.
    pub lease_secs: i64,
    /// First retry delay; doubles per attempt.
    pub backoff_base_secs: i64,
    pub backoff_max_secs: i64,
    /// Attempts (claims) before a job is given up.
    pub max_attempts: i64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease_secs: 300,
            backoff_base_secs: 30,
            backoff_max_secs: 3600,
            max_attempts: 5,
        }
    }
}

impl QueueConfig {
    /// Delay before attempt `attempts + 1`, after `attempts` failed.
    pub fn backoff(&self, attempts: i64) -> i64 {
        let exp = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.backoff_base_secs
            .saturating_mul(1i64 << exp)
            .min(self.backoff_max_secs)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the job's lease was lost (expired and taken over, or the job is finished)")]
    LeaseLost,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

const COLUMNS: &str = "id, repository_id, kind, target_commit, status, attempts, max_attempts, \
     run_after, lease_owner, lease_expires_at, phase, progress_done, progress_total, last_error, \
     delivery_id";

fn job_from_row(row: &sqlx::any::AnyRow) -> Result<Job, DbError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let bad = |what: &str, v: &str| {
        DbError::Sqlx(sqlx::Error::Decode(
            format!("unknown sync job {what} `{v}`").into(),
        ))
    };
    Ok(Job {
        id: row.try_get("id")?,
        repository_id: row.try_get("repository_id")?,
        kind: JobKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
        target_commit: row.try_get("target_commit")?,
        status: JobStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_after: row.try_get("run_after")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: row.try_get("lease_expires_at")?,
        phase: row.try_get("phase")?,
        progress_done: row.try_get("progress_done")?,
        progress_total: row.try_get("progress_total")?,
        last_error: row.try_get("last_error")?,
        delivery_id: row.try_get("delivery_id")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Enqueues on an open connection or transaction (the webhook stores its
/// delivery and the job in one transaction). Returns the id of the pending
/// job, new or coalesced.
pub async fn enqueue_on(
    conn: &mut AnyConnection,
    job: &NewJob<'_>,
    max_attempts: i64,
) -> Result<String, DbError> {
    let at = now();
    // The conflict target names the partial index `sync_jobs_one_pending`.
    // The newest enqueue wins the target: pushes arrive in order, and the
    // runner diffs to the branch head anyway.
    let row = sqlx::query(
        "INSERT INTO sync_jobs (id, repository_id, kind, target_commit, status, attempts, \
         max_attempts, run_after, delivery_id, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7, $6, $6) \
         ON CONFLICT (repository_id, kind) WHERE status = 'pending' DO UPDATE SET \
         target_commit = COALESCE(excluded.target_commit, sync_jobs.target_commit), \
         delivery_id = COALESCE(excluded.delivery_id, sync_jobs.delivery_id), \
         updated_at = excluded.updated_at \
         RETURNING id",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(job.repository_id)
    .bind(job.kind.as_str())
    .bind(job.target_commit)
    .bind(max_attempts)
    .bind(at)
    .bind(job.delivery_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

/// A runner's hold on a running job: the job and the runner that claimed
/// it. The writes that make a sync's work visible (`Db::begin_snapshot`,
/// `Db::switch_snapshot_leased`) check it in their own transaction, so a
/// runner whose lease ran out and was taken over cannot make an older
/// commit visible, nor drop the new owner's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease<'a> {
    pub job_id: &'a str,
    pub owner: &'a str,
}

/// Whether `lease` still holds (the job is running, owned by the runner,
/// and its lease has not run out), checked on the caller's transaction.
/// The row is touched, so on PostgreSQL it stays locked until the
/// transaction ends: nobody can take the job over meanwhile.
pub(crate) async fn lease_holds(
    conn: &mut AnyConnection,
    lease: &Lease<'_>,
) -> Result<bool, DbError> {
    let at = now();
    let done = sqlx::query(
        "UPDATE sync_jobs SET updated_at = $3 \
         WHERE id = $1 AND lease_owner = $2 AND status = 'running' AND lease_expires_at >= $3",
    )
    .bind(lease.job_id)
    .bind(lease.owner)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One claimer: a hub instance's runner. `owner` names it in `lease_owner`.
#[derive(Clone, Debug)]
pub struct Queue {
    db: Db,
    owner: String,
    config: QueueConfig,
}

impl Queue {
    pub fn new(db: Db, config: QueueConfig) -> Self {
        Self {
            db,
            owner: format!("runner-{}", uuid::Uuid::new_v4().simple()),
            config,
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// This runner's lease on `job_id` (whether it still holds is checked
    /// where it is used).
    pub fn lease<'a>(&'a self, job_id: &'a str) -> Lease<'a> {
        Lease {
            job_id,
            owner: &self.owner,
        }
    }

    pub async fn enqueue(&self, job: &NewJob<'_>) -> Result<String, QueueError> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(enqueue_on(&mut conn, job, self.config.max_attempts).await?)
    }

    pub async fn claim(&self) -> Result<Option<Job>, QueueError> {
        self.claim_at(now()).await
    }

    /// Claims the next due job as of `at` (unix seconds; tests move the clock).
    pub async fn claim_at(&self, at: i64) -> Result<Option<Job>, QueueError> {
        self.give_up_expired(at).await?;
        // A race for the one running slot of a repository ends in a unique
        // violation for the loser; another job may well be free, so try again.
        for _ in 0..5 {
            match self.try_claim(at).await {
                Err(QueueError::Db(DbError::Sqlx(e))) if is_unique_violation(&e) => continue,
                other => return other,
            }
        }
        Ok(None)
    }

    /// Jobs whose last allowed attempt lost its lease are failed, with why.
    async fn give_up_expired(&self, at: i64) -> Result<(), QueueError> {
        sqlx::query(
            "UPDATE sync_jobs SET status = 'failed', lease_owner = NULL, lease_expires_at = NULL, \
             finished_at = $1, updated_at = $1, \
             last_error = 'gave up after ' || CAST(attempts AS TEXT) || \
             ' attempts: the runner stopped renewing its lease (crashed or stuck)' \
             WHERE status = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts",
        )
        .bind(at)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn try_claim(&self, at: i64) -> Result<Option<Job>, QueueError> {
        let due = "((j.status = 'pending' AND j.run_after <= $1) \
             OR (j.status = 'running' AND j.lease_expires_at < $1 AND j.run_after <= $1 \
                 AND j.attempts < j.max_attempts))";
        let lock = match self.db.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The outer WHERE repeats the due test: on PostgreSQL a row that
        // another transaction claimed since our snapshot is re-checked there.
        // run_after: if this attempt's lease runs out, the retry waits a
        // backoff after it (base << previous attempts, capped; in SQL so the
        // claim stays one statement).
        let claim = format!(
            "UPDATE sync_jobs SET status = 'running', lease_owner = $2, lease_expires_at = $3, \
             run_after = $3 + CASE WHEN attempts >= 30 \
                 OR ($4 << CAST(attempts AS INTEGER)) > $5 THEN $5 \
                 ELSE ($4 << CAST(attempts AS INTEGER)) END, \
             attempts = attempts + 1, started_at = $1, updated_at = $1 \
             WHERE id = (SELECT j.id FROM sync_jobs j WHERE {due} \
               AND NOT EXISTS (SELECT 1 FROM sync_jobs r WHERE r.repository_id = j.repository_id \
                               AND r.status = 'running' AND r.id <> j.id) \
               ORDER BY j.run_after, j.created_at LIMIT 1{lock}) \
             AND (status = 'pending' OR (status = 'running' AND lease_expires_at < $1)) \
             RETURNING {COLUMNS}"
        );
        let query = sqlx::query(&claim)
            .bind(at)
            .bind(&self.owner)
            .bind(at + self.config.lease_secs)
            .bind(self.config.backoff_base_secs)
            .bind(self.config.backoff_max_secs);
        let row = match self.db.backend() {
            // The row lock of SKIP LOCKED lives as long as the transaction.
            Backend::Postgres => {
                let mut tx = self.db.pool().begin().await?;
                let row = query.fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                row
            }
            // One writer at a time: the statement alone is atomic.
            Backend::Sqlite => query.fetch_optional(self.db.pool()).await?,
        };
        Ok(row.as_ref().map(job_from_row).transpose()?)
    }

    /// Extends the lease; a long job calls this (or `progress`) well within
    /// `lease_secs`.
    pub async fn renew(&self, job_id: &str) -> Result<(), QueueError> {
        self.renew_at(job_id, now()).await
    }

    pub async fn renew_at(&self, job_id: &str, at: i64) -> Result<(), QueueError> {
        let lease_end = at + self.config.lease_secs;
        let done = sqlx::query(
            // run_after keeps its backoff distance to the lease end.
            "UPDATE sync_jobs SET run_after = $3 + (run_after - lease_expires_at), \
             lease_expires_at = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running' AND lease_expires_at >= $4",
        )
        .bind(job_id)
        .bind(&self.owner)
        .bind(lease_end)
        .bind(at)
        .execute(self.db.pool())
        .await?;
        owned(done.rows_affected())
    }

    /// Records progress (shown in the admin UI) and renews the lease.
    pub async fn progress(
        &self,
        job_id: &str,
        phase: &str,
        done: i64,
        total: Option<i64>,
    ) -> Result<(), QueueError> {
        let at = now();
        let lease_end = at + self.config.lease_secs;
        let updated = sqlx::query(
            "UPDATE sync_jobs SET phase = $3, progress_done = $4, progress_total = $5, \
             run_after = $6 + (run_after - lease_expires_at), lease_expires_at = $6, \
             updated_at = $7 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running' AND lease_expires_at >= $7",
        )
        .bind(job_id)
        .bind(&self.owner)
        .bind(phase)
        .bind(done)
        .bind(total)
        .bind(lease_end)
        .bind(at)
        .execute(self.db.pool())
        .await?;
        owned(updated.rows_affected())
    }

    pub async fn complete(&self, job_id: &str) -> Result<(), QueueError> {
        let at = now();
        let done = sqlx::query(
            "UPDATE sync_jobs SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, \
             last_error = NULL, finished_at = $3, updated_at = $3 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(job_id)
        .bind(&self.owner)
        .bind(at)
        .execute(self.db.pool())
        .await?;
        owned(done.rows_affected())
    }

    /// Ends an attempt with an error. A retryable error goes back to pending
    /// after a backoff (unless attempts are used up); a permanent one fails
    /// the job with `error` as the reason shown to the admin.
    pub async fn fail(&self, job_id: &str, error: &str, retryable: bool) -> Result<(), QueueError> {
        self.fail_at(job_id, error, retryable, now()).await
    }

    pub async fn fail_at(
        &self,
        job_id: &str,
        error: &str,
        retryable: bool,
        at: i64,
    ) -> Result<(), QueueError> {
        let row = sqlx::query(
            "SELECT attempts, max_attempts FROM sync_jobs \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(job_id)
        .bind(&self.owner)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(QueueError::LeaseLost)?;
        let attempts: i64 = row.try_get("attempts")?;
        let max_attempts: i64 = row.try_get("max_attempts")?;
        if retryable && attempts < max_attempts {
            let retry = sqlx::query(
                "UPDATE sync_jobs SET status = 'pending', lease_owner = NULL, \
                 lease_expires_at = NULL, run_after = $3, last_error = $4, updated_at = $5 \
                 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
            )
            .bind(job_id)
            .bind(&self.owner)
            .bind(at + self.config.backoff(attempts))
            .bind(error)
            .bind(at)
            .execute(self.db.pool())
            .await;
            match retry {
                Ok(done) => return owned(done.rows_affected()),
                // A newer job of this kind is already pending and will do
                // the same work (to a newer target): fold this one into it.
                Err(e) if is_unique_violation(&e) => {
                    return self.finish(job_id, "superseded", error, at).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        let reason = if retryable {
            format!("gave up after {attempts} attempts: {error}")
        } else {
            error.to_owned()
        };
        self.finish(job_id, "failed", &reason, at).await
    }

    async fn finish(
        &self,
        job_id: &str,
        status: &str,
        error: &str,
        at: i64,
    ) -> Result<(), QueueError> {
        let done = sqlx::query(
            "UPDATE sync_jobs SET status = $3, lease_owner = NULL, lease_expires_at = NULL, \
             last_error = $4, finished_at = $5, updated_at = $5 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(job_id)
        .bind(&self.owner)
        .bind(status)
        .bind(error)
        .bind(at)
        .execute(self.db.pool())
        .await?;
        owned(done.rows_affected())
    }

    pub async fn job(&self, id: &str) -> Result<Option<Job>, QueueError> {
        jobs_where(&self.db, "id = $1", id)
            .await
            .map(|mut v| v.pop())
    }

    /// A repository's jobs, oldest first.
    pub async fn jobs_for(&self, repository_id: &str) -> Result<Vec<Job>, QueueError> {
        jobs_where(&self.db, "repository_id = $1", repository_id).await
    }
}

async fn jobs_where(db: &Db, filter: &str, value: &str) -> Result<Vec<Job>, QueueError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sync_jobs WHERE {filter} ORDER BY created_at, id"
    ))
    .bind(value)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .iter()
        .map(job_from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

fn owned(rows: u64) -> Result<(), QueueError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(QueueError::LeaseLost)
    }
}

#[cfg(test)]
pub(crate) mod tests;
