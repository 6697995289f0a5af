//! Job runner loop: claims jobs from the queue with bounded concurrency,
//! keeps each lease alive while its handler works, and records the outcome.
//! What a job *does* is a `JobHandler` (`engine::SyncEngine` in `serve`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use super::queue::{Job, Lease, Queue, QueueError};

/// How soon a renewal that failed (not for a lost lease) is tried again.
const RENEW_RETRY: Duration = Duration::from_secs(2);

/// Why a job attempt failed, and whether trying again may help (throttling,
/// 5xx, timeouts) or not (repository gone, access revoked).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    pub message: String,
    pub retryable: bool,
}

/// Progress reporting for a running job; each report also renews the lease.
pub struct Progress {
    queue: Queue,
    job_id: String,
}

impl Progress {
    pub async fn report(
        &self,
        phase: &str,
        done: i64,
        total: Option<i64>,
    ) -> Result<(), QueueError> {
        self.queue.progress(&self.job_id, phase, done, total).await
    }

    /// The runner's lease on the job, which the writes that make the job's
    /// work visible check in their own transaction.
    pub fn lease(&self) -> Lease<'_> {
        self.queue.lease(&self.job_id)
    }
}

#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &Job, progress: &Progress) -> Result<(), JobFailure>;
}

#[derive(Clone, Copy, Debug)]
pub struct RunnerConfig {
    /// Jobs run at once by this instance.
    pub concurrency: usize,
    /// Sleep when the queue has nothing due.
    pub poll_interval: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// Runs until `shutdown` turns true, then waits for the jobs in flight.
pub async fn run(
    queue: Queue,
    handler: Arc<dyn JobHandler>,
    config: RunnerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    loop {
        if *shutdown.borrow() {
            break;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        // The lease runs from the claim: counted from before it, to be safe.
        let claimed_at = Instant::now();
        let job = match queue.claim().await {
            Ok(Some(job)) => job,
            Ok(None) => {
                drop(permit);
                idle(&mut shutdown, config.poll_interval).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "sync runner: cannot claim a job");
                drop(permit);
                idle(&mut shutdown, config.poll_interval).await;
                continue;
            }
        };
        let queue = queue.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            run_one(queue, handler, job, claimed_at).await;
            drop(permit);
        });
    }
    // Every slot back means every job in flight has finished.
    let _ = slots.acquire_many(config.concurrency.max(1) as u32).await;
}

async fn idle(shutdown: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {},
        _ = shutdown.changed() => {},
    }
}

/// Keeps a job's lease: renews it every `every` until the lease is lost,
/// and returns why. A renewal that fails for another reason (the database
/// did not answer, a connection dropped) does not give the job up: it is
/// tried again every [`RENEW_RETRY`] until the lease has really run out,
/// `lease` after the last renewal that went through (or after `held_since`,
/// the claim). Past that, another runner may own the job, so the last
/// error is returned.
pub(crate) async fn keep_lease<F, Fut>(
    mut renew: F,
    every: Duration,
    lease: Duration,
    mut held_since: Instant,
) -> QueueError
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), QueueError>>,
{
    loop {
        tokio::time::sleep(every).await;
        loop {
            let asked = Instant::now();
            match renew().await {
                Ok(()) => {
                    held_since = asked;
                    break;
                }
                Err(QueueError::LeaseLost) => return QueueError::LeaseLost,
                Err(e) => {
                    let left = lease.saturating_sub(held_since.elapsed());
                    if left.is_zero() {
                        return e;
                    }
                    tracing::warn!(
                        error = %e,
                        lease_left_secs = left.as_secs(),
                        "sync runner: cannot renew the lease; trying again"
                    );
                    tokio::time::sleep(RENEW_RETRY.min(left)).await;
                }
            }
        }
    }
}

async fn run_one(queue: Queue, handler: Arc<dyn JobHandler>, job: Job, claimed_at: Instant) {
    let progress = Progress {
        queue: queue.clone(),
        job_id: job.id.clone(),
    };
    // Renew at a third of the lease, so one slow renewal does not lose it.
    let lease_secs = queue.config().lease_secs.max(1) as u64;
    let every = Duration::from_secs((lease_secs / 3).max(1));
    let heartbeat = keep_lease(
        || queue.renew(&job.id),
        every,
        Duration::from_secs(lease_secs),
        claimed_at,
    );
    let outcome = tokio::select! {
        result = handler.run(&job, &progress) => result,
        lost = heartbeat => {
            // Another instance may own the job now: stop working on it.
            tracing::warn!(job = %job.id, error = %lost, "sync runner: lease lost, job abandoned");
            return;
        }
    };
    let recorded = match &outcome {
        Ok(()) => queue.complete(&job.id).await,
        Err(f) => queue.fail(&job.id, &f.message, f.retryable).await,
    };
    match (outcome, recorded) {
        (_, Err(e)) => {
            tracing::warn!(job = %job.id, error = %e, "sync runner: outcome not recorded")
        }
        (Ok(()), Ok(())) => {
            tracing::info!(job = %job.id, kind = job.kind.as_str(), "sync job done")
        }
        (Err(f), Ok(())) => {
            tracing::warn!(job = %job.id, kind = job.kind.as_str(), error = %f, "sync job failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use parking_lot::Mutex;

    use super::*;
    use crate::sync::queue::tests::{seed_repos, TestDb};
    use crate::sync::{JobKind, JobStatus, NewJob, QueueConfig};

    /// Fails each repository's first attempt (retryable), succeeds after;
    /// the repository named `permanent` fails for good.
    struct Flaky {
        seen: Mutex<HashMap<String, u32>>,
        permanent: String,
    }

    #[async_trait::async_trait]
    impl JobHandler for Flaky {
        async fn run(&self, job: &Job, progress: &Progress) -> Result<(), JobFailure> {
            progress
                .report("work", 1, Some(1))
                .await
                .map_err(|e| JobFailure {
                    message: e.to_string(),
                    retryable: true,
                })?;
            if job.repository_id == self.permanent {
                return Err(JobFailure {
                    message: "TF401019: gone".into(),
                    retryable: false,
                });
            }
            let n = {
                let mut seen = self.seen.lock();
                let n = seen.entry(job.repository_id.clone()).or_default();
                *n += 1;
                *n
            };
            if n == 1 {
                Err(JobFailure {
                    message: "HTTP 503".into(),
                    retryable: true,
                })
            } else {
                Ok(())
            }
        }
    }

    fn hiccup() -> QueueError {
        QueueError::Db(crate::db::DbError::Sqlx(sqlx::Error::PoolTimedOut))
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_renewal_is_retried_and_does_not_abandon_the_job() {
        // Three failures (a database hiccup of a few seconds), then the
        // renewal goes through; later the lease is really lost.
        let script = Mutex::new(vec![
            Err(QueueError::LeaseLost),
            Ok(()),
            Ok(()),
            Err(hiccup()),
            Err(hiccup()),
            Err(hiccup()),
        ]);
        let calls = Mutex::new(Vec::new());
        let start = Instant::now();
        let lost = keep_lease(
            || {
                calls.lock().push(start.elapsed().as_secs());
                let next = script.lock().pop().expect("renewed once too often");
                async move { next }
            },
            Duration::from_secs(10),
            Duration::from_secs(30),
            start,
        )
        .await;
        assert!(matches!(lost, QueueError::LeaseLost), "{lost}");
        // Renewals at 10 s, retried at 12 and 14, through at 16; then every 10 s.
        assert_eq!(*calls.lock(), [10, 12, 14, 16, 26, 36]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_failing_for_good_gives_up_when_the_lease_has_run_out() {
        let start = Instant::now();
        let calls = Mutex::new(0);
        let error = keep_lease(
            || {
                *calls.lock() += 1;
                async { Err(hiccup()) }
            },
            Duration::from_secs(10),
            Duration::from_secs(30),
            start,
        )
        .await;
        assert!(matches!(error, QueueError::Db(_)), "{error}");
        // Counted from the claim: the lease ran out at 30 s, not before.
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        // At 10, 12, …, 28 and once more at 30.
        assert_eq!(*calls.lock(), 11);
    }

    #[tokio::test]
    async fn runs_jobs_retries_transient_failures_and_records_permanent_ones() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repos = seed_repos(&db, 4).await;
            let config = QueueConfig {
                backoff_base_secs: 0,
                ..QueueConfig::default()
            };
            let queue = Queue::new(db.clone(), config);
            let mut ids = Vec::new();
            for r in &repos {
                ids.push(
                    queue
                        .enqueue(&NewJob {
                            repository_id: r,
                            kind: JobKind::RecentChanges,
                            target_commit: Some("c1"),
                            delivery_id: None,
                        })
                        .await
                        .unwrap(),
                );
            }
            let handler = Arc::new(Flaky {
                seen: Mutex::new(HashMap::new()),
                permanent: repos[3].clone(),
            });
            let (stop, shutdown) = watch::channel(false);
            let runner = tokio::spawn(run(
                queue.clone(),
                handler,
                RunnerConfig {
                    concurrency: 2,
                    poll_interval: Duration::from_millis(20),
                },
                shutdown,
            ));
            let mut done = false;
            for _ in 0..200 {
                let mut finished = 0;
                for id in &ids {
                    let job = queue.job(id).await.unwrap().unwrap();
                    if matches!(job.status, JobStatus::Succeeded | JobStatus::Failed) {
                        finished += 1;
                    }
                }
                if finished == ids.len() {
                    done = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let _ = stop.send(true);
            runner.await.unwrap();
            assert!(done, "{}: jobs did not finish", t.url);
            for id in &ids[..3] {
                let job = queue.job(id).await.unwrap().unwrap();
                assert_eq!(job.status, JobStatus::Succeeded, "{}", t.url);
                assert_eq!(job.attempts, 2);
                assert_eq!(job.phase.as_deref(), Some("work"));
            }
            let failed = queue.job(&ids[3]).await.unwrap().unwrap();
            assert_eq!(failed.status, JobStatus::Failed);
            assert_eq!(failed.last_error.as_deref(), Some("TF401019: gone"));
            db.close().await;
        }
    }
}
