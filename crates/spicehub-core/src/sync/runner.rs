//! Job runner loop: claims jobs from the queue with bounded concurrency,
//! keeps each lease alive while its handler works, and records the outcome.
//! What a job *does* is a `JobHandler` (`engine::SyncEngine` in `serve`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use super::queue::{Job, Queue, QueueError};

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
            run_one(queue, handler, job).await;
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

async fn run_one(queue: Queue, handler: Arc<dyn JobHandler>, job: Job) {
    let progress = Progress {
        queue: queue.clone(),
        job_id: job.id.clone(),
    };
    // Renew at a third of the lease, so one slow renewal does not lose it.
    let every = Duration::from_secs((queue.config().lease_secs / 3).max(1) as u64);
    let heartbeat = async {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = queue.renew(&job.id).await {
                return e;
            }
        }
    };
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
