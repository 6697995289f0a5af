//! Pruning what piles up: webhook deliveries (bodies of up to
//! `SPICEHUB_WEBHOOK_BODY_LIMIT` each), finished sync jobs and expired
//! admin-consent requests. `sync::retention` runs it hourly with the
//! settings of `config::RetentionArgs`.
//!
//! Rows go in batches of [`BATCH`], each its own statement, so a first
//! prune of a large backlog never holds SQLite's one writer for long.

use sqlx::Row;

use super::providers::CONSENT_TTL_SECS;
use super::{Db, DbError};

/// Rows deleted per statement.
const BATCH: i64 = 1000;

/// The statuses of a job that is over.
const FINISHED: &str = "('succeeded', 'failed', 'superseded')";

/// What to keep. Ages are in seconds; `None` keeps rows of that kind for
/// ever (but the Test notifications beyond `test_deliveries_kept` still go).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub deliveries_max_age: Option<i64>,
    /// The newest deliveries of each provider, kept whatever their age.
    pub deliveries_kept: i64,
    /// The newest Test notifications (stored without an event id) of each
    /// provider, kept whatever their age; older ones go even within
    /// `deliveries_max_age`.
    pub test_deliveries_kept: i64,
    /// Finished jobs; a repository's latest finished job is always kept.
    pub jobs_max_age: Option<i64>,
}

/// Rows deleted by one [`Db::prune`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub jobs: u64,
    pub consent_requests: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.deliveries + self.jobs + self.consent_requests
    }
}

/// The deliveries of each provider ranked newest first (`n` = 1 for the
/// newest), among those matching `filter`.
fn ranked_deliveries(filter: &str) -> String {
    format!(
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY provider_id \
         ORDER BY received_at DESC, id DESC) AS n FROM webhook_deliveries WHERE {filter}"
    )
}

impl Db {
    /// Deletes what `retention` no longer keeps, as of `at` (Unix seconds).
    pub async fn prune(&self, retention: &Retention, at: i64) -> Result<Pruned, DbError> {
        let mut pruned = Pruned::default();

        // Test notifications beyond the newest few of each provider.
        let test_kept = ranked_deliveries("event_id IS NULL");
        pruned.deliveries += self
            .delete_in_batches(
                &format!(
                    "DELETE FROM webhook_deliveries WHERE id IN (SELECT k.id FROM ({test_kept}) k \
                     WHERE k.n > $1 LIMIT $2)"
                ),
                &[retention.test_deliveries_kept.max(0)],
            )
            .await?;

        // Old deliveries, but the newest of each provider.
        if let Some(age) = retention.deliveries_max_age {
            let kept = ranked_deliveries("1 = 1");
            pruned.deliveries += self
                .delete_in_batches(
                    &format!(
                        "DELETE FROM webhook_deliveries WHERE id IN (SELECT k.id FROM ({kept}) k \
                         JOIN webhook_deliveries d ON d.id = k.id \
                         WHERE k.n > $1 AND d.received_at < $2 LIMIT $3)"
                    ),
                    &[retention.deliveries_kept.max(0), at - age],
                )
                .await?;
        }

        // Finished jobs, but each repository's latest finished one (the
        // admin pages show how its last sync went).
        if let Some(age) = retention.jobs_max_age {
            pruned.jobs += self
                .delete_in_batches(
                    &format!(
                        "DELETE FROM sync_jobs WHERE id IN (SELECT k.id FROM \
                         (SELECT id, COALESCE(finished_at, updated_at) AS ended, \
                          ROW_NUMBER() OVER (PARTITION BY repository_id \
                          ORDER BY created_at DESC, id DESC) AS n \
                          FROM sync_jobs WHERE status IN {FINISHED}) k \
                         WHERE k.n > 1 AND k.ended < $1 LIMIT $2)"
                    ),
                    &[at - age],
                )
                .await?;
        }

        // Admin-consent requests nobody completed in time.
        pruned.consent_requests +=
            sqlx::query("DELETE FROM consent_requests WHERE created_at < $1")
                .bind(at - CONSENT_TTL_SECS)
                .execute(self.pool())
                .await?
                .rows_affected();
        Ok(pruned)
    }

    /// Runs `sql` (a DELETE whose last placeholder is the batch size,
    /// after `binds`) until a batch deletes fewer rows than [`BATCH`].
    async fn delete_in_batches(&self, sql: &str, binds: &[i64]) -> Result<u64, DbError> {
        let mut total = 0;
        loop {
            let mut query = sqlx::query(sql);
            for b in binds {
                query = query.bind(*b);
            }
            let done = query
                .bind(BATCH)
                .execute(self.pool())
                .await?
                .rows_affected();
            total += done;
            if done < BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// The jobs running under a lease that has not run out as of `at`:
    /// their files in the work directory are in use.
    pub async fn running_job_ids(&self, at: i64) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query(
            "SELECT id FROM sync_jobs WHERE status = 'running' AND lease_expires_at >= $1",
        )
        .bind(at)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(Into::into))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::deliveries::{Decision, NewDelivery};
    use crate::db::now;
    use crate::db::queue::tests::{seed_repos, TestDb};
    use crate::sync::{JobKind, NewJob, Queue, QueueConfig};

    const DAY: i64 = 86_400;

    fn retention() -> Retention {
        Retention {
            deliveries_max_age: Some(30 * DAY),
            deliveries_kept: 2,
            test_deliveries_kept: 1,
            jobs_max_age: Some(30 * DAY),
        }
    }

    async fn provider_of(db: &Db, repo: &str) -> String {
        let row = sqlx::query(
            "SELECT o.provider_id FROM repositories r JOIN organizations o \
             ON o.id = r.organization_id WHERE r.id = $1",
        )
        .bind(repo)
        .fetch_one(db.pool())
        .await
        .unwrap();
        row.try_get("provider_id").unwrap()
    }

    /// A delivery received `age` seconds ago; `event` None is a Test sample.
    async fn delivery(db: &Db, provider: &str, event: Option<&str>, age: i64) -> String {
        let recorded = db
            .record_delivery(
                &NewDelivery {
                    provider_id: provider,
                    event_id: event,
                    event_type: Some("git.push"),
                    repository_id: None,
                    ref_name: None,
                    new_commit: None,
                    body: "{}",
                },
                Decision::Ignore("test".into()),
                5,
            )
            .await
            .unwrap();
        let crate::db::deliveries::Recorded::Ignored { delivery_id, .. } = recorded else {
            panic!("not recorded: {recorded:?}");
        };
        sqlx::query("UPDATE webhook_deliveries SET received_at = $2 WHERE id = $1")
            .bind(&delivery_id)
            .bind(now() - age)
            .execute(db.pool())
            .await
            .unwrap();
        delivery_id
    }

    async fn ids(db: &Db, sql: &str) -> Vec<String> {
        let mut ids: Vec<String> = sqlx::query(sql)
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("id").unwrap())
            .collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn old_deliveries_go_but_the_newest_of_each_provider_stay() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repos = seed_repos(&db, 1).await;
            let provider = provider_of(&db, &repos[0]).await;

            let recent = delivery(&db, &provider, Some("e-recent"), DAY).await;
            let old_a = delivery(&db, &provider, Some("e-old-a"), 40 * DAY).await;
            let old_b = delivery(&db, &provider, Some("e-old-b"), 50 * DAY).await;
            let oldest = delivery(&db, &provider, Some("e-oldest"), 60 * DAY).await;
            // Test samples: only the newest one stays, even a recent one goes.
            let test_new = delivery(&db, &provider, None, 2 * DAY).await;
            let test_old = delivery(&db, &provider, None, 3 * DAY).await;

            let pruned = db.prune(&retention(), now()).await.unwrap();
            // Kept: the two newest (recent, the newest test sample), and
            // what is younger than 30 days; old_a is neither, and goes.
            let left = ids(&db, "SELECT id FROM webhook_deliveries").await;
            let mut want = vec![recent.clone(), test_new.clone()];
            want.sort();
            assert_eq!(left, want, "{}", t.url);
            assert_eq!(pruned.deliveries, 4, "{}", t.url);
            for gone in [&old_a, &old_b, &oldest, &test_old] {
                assert!(!left.contains(gone));
            }

            // With only old deliveries, the newest two still stay: the
            // Webhooks page shows the last delivery.
            for id in &left {
                sqlx::query("DELETE FROM webhook_deliveries WHERE id = $1")
                    .bind(id)
                    .execute(db.pool())
                    .await
                    .unwrap();
            }
            let a = delivery(&db, &provider, Some("a"), 100 * DAY).await;
            let b = delivery(&db, &provider, Some("b"), 200 * DAY).await;
            let _c = delivery(&db, &provider, Some("c"), 300 * DAY).await;
            db.prune(&retention(), now()).await.unwrap();
            let mut want = vec![a, b];
            want.sort();
            assert_eq!(ids(&db, "SELECT id FROM webhook_deliveries").await, want);

            // Kept for ever: nothing but surplus Test samples goes.
            let forever = Retention {
                deliveries_max_age: None,
                jobs_max_age: None,
                ..retention()
            };
            let pruned = db.prune(&forever, now() + 1000 * DAY).await.unwrap();
            assert_eq!(pruned.deliveries, 0);
            db.close().await;
        }
    }

    #[tokio::test]
    async fn finished_jobs_go_but_never_a_repositorys_latest_nor_a_running_one() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repos = seed_repos(&db, 2).await;
            let queue = Queue::new(
                db.clone(),
                QueueConfig {
                    backoff_base_secs: 0,
                    ..QueueConfig::default()
                },
            );
            let run = |repo: String, kind: JobKind, succeed: bool| {
                let queue = queue.clone();
                async move {
                    let id = queue
                        .enqueue(&NewJob {
                            repository_id: &repo,
                            kind,
                            target_commit: None,
                            delivery_id: None,
                        })
                        .await
                        .unwrap();
                    let claimed = queue.claim().await.unwrap().unwrap();
                    assert_eq!(claimed.id, id);
                    if succeed {
                        queue.complete(&id).await.unwrap();
                    } else {
                        queue.fail(&id, "gone", false).await.unwrap();
                    }
                    id
                }
            };
            // Repository 0: three finished jobs; repository 1: one.
            let first = run(repos[0].clone(), JobKind::FirstReplication, true).await;
            let second = run(repos[0].clone(), JobKind::RecentChanges, false).await;
            let latest = run(repos[0].clone(), JobKind::Reconcile, true).await;
            let only = run(repos[1].clone(), JobKind::FirstReplication, true).await;
            // And one running.
            queue
                .enqueue(&NewJob {
                    repository_id: &repos[1],
                    kind: JobKind::RecentChanges,
                    target_commit: None,
                    delivery_id: None,
                })
                .await
                .unwrap();
            let running = queue.claim().await.unwrap().unwrap().id;
            // Tell the jobs apart in time: first oldest.
            for (i, id) in [&first, &second, &latest, &only].iter().enumerate() {
                sqlx::query("UPDATE sync_jobs SET created_at = $2, finished_at = $2 WHERE id = $1")
                    .bind(*id)
                    .bind(now() - 100 * DAY + i as i64)
                    .execute(db.pool())
                    .await
                    .unwrap();
            }

            // Not old enough yet (as of 75 days ago: kept until 105 days old).
            let pruned = db.prune(&retention(), now() - 75 * DAY).await.unwrap();
            assert_eq!(pruned.jobs, 0, "{}", t.url);

            let pruned = db.prune(&retention(), now()).await.unwrap();
            assert_eq!(pruned.jobs, 2, "{}", t.url);
            let mut want = vec![latest, only, running];
            want.sort();
            assert_eq!(
                ids(&db, "SELECT id FROM sync_jobs").await,
                want,
                "{}",
                t.url
            );
            db.close().await;
        }
    }

    #[tokio::test]
    async fn expired_consent_requests_go() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repos = seed_repos(&db, 1).await;
            let provider = provider_of(&db, &repos[0]).await;
            db.create_consent_request(&provider, "contoso.onmicrosoft.com")
                .await
                .unwrap();
            db.create_consent_request(&provider, "contoso.onmicrosoft.com")
                .await
                .unwrap();
            let pruned = db.prune(&retention(), now()).await.unwrap();
            assert_eq!(pruned.consent_requests, 0, "{}", t.url);
            let pruned = db
                .prune(&retention(), now() + CONSENT_TTL_SECS + 1)
                .await
                .unwrap();
            assert_eq!(pruned.consent_requests, 2, "{}", t.url);
            db.close().await;
        }
    }

    #[tokio::test]
    async fn large_backlogs_are_deleted_in_batches() {
        for t in TestDb::all().await {
            let db = t.open().await;
            let repos = seed_repos(&db, 1).await;
            let provider = provider_of(&db, &repos[0]).await;
            let n = BATCH as usize * 2 + 10;
            for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
                let mut sql = String::from(
                    "INSERT INTO webhook_deliveries (id, provider_id, event_id, status, body, \
                     received_at) VALUES ",
                );
                for (j, i) in chunk.iter().enumerate() {
                    if j > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "('d{i}', '{provider}', 'e{i}', 'ignored', '{{}}', {})",
                        now() - 90 * DAY - *i as i64
                    ));
                }
                sqlx::query(&sql).execute(db.pool()).await.unwrap();
            }
            let pruned = db.prune(&retention(), now()).await.unwrap();
            assert_eq!(pruned.deliveries, n as u64 - 2, "{}", t.url);
            assert_eq!(
                ids(&db, "SELECT id FROM webhook_deliveries").await,
                ["d0", "d1"],
                "{}",
                t.url
            );
            db.close().await;
        }
    }
}
