//! The periodic reconcile: a missed or disabled webhook must not leave a
//! repository behind. Every instance runs the timer; the database gives the
//! turn to one of them per interval (`schedules`). The turn enqueues one
//! `reconcile` job per repository (coalesced with any pending one); the job
//! compares the branch head with the last synced commit and syncs only when
//! they differ. The turn also re-creates service hooks Azure DevOps disabled.

use std::time::Duration;

use tokio::sync::watch;
use url::Url;

use super::hooks;
use super::queue::{JobKind, NewJob, Queue};
use crate::connections::ProviderConnections;
use crate::crypto::SecretKey;
use crate::db::repositories::RepoState;
use crate::db::{Db, DbError};

pub const SCHEDULE: &str = "reconcile";

/// What one reconcile turn did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Turn {
    pub enqueued: usize,
    pub hooks_recreated: usize,
}

/// Enqueues a reconcile job for every repository that is not disabled.
pub async fn enqueue_all(db: &Db, queue: &Queue) -> Result<usize, DbError> {
    let mut n = 0;
    for repo in db.repositories().await? {
        if repo.state == RepoState::Disabled {
            continue;
        }
        match queue
            .enqueue(&NewJob {
                repository_id: &repo.id,
                kind: JobKind::Reconcile,
                target_commit: None,
                delivery_id: None,
            })
            .await
        {
            Ok(_) => n += 1,
            Err(e) => {
                tracing::warn!(repository = %repo.id, error = %e, "reconcile: cannot enqueue")
            }
        }
    }
    Ok(n)
}

pub struct Scheduler {
    pub db: Db,
    pub queue: Queue,
    pub clients: ProviderConnections,
    pub key: SecretKey,
    pub public_url: Url,
    pub interval: Duration,
}

impl Scheduler {
    /// One turn, if this instance gets it.
    pub async fn tick(&self) -> Result<Option<Turn>, DbError> {
        let secs = i64::try_from(self.interval.as_secs()).unwrap_or(i64::MAX);
        if !self.db.take_schedule_turn(SCHEDULE, secs).await? {
            return Ok(None);
        }
        let enqueued = enqueue_all(&self.db, &self.queue).await?;
        let hooks_recreated =
            match hooks::recreate_disabled(&self.db, &self.clients, &self.key, &self.public_url)
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "reconcile: service hooks not checked");
                    0
                }
            };
        tracing::info!(enqueued, hooks_recreated, "reconcile turn");
        Ok(Some(Turn {
            enqueued,
            hooks_recreated,
        }))
    }

    /// Runs until `shutdown` turns true. Looks for its turn a few times per
    /// interval so a turn freed by another instance is not missed for long.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let poll = (self.interval / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "reconcile: cannot take the turn");
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
