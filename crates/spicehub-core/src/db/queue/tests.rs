//! Queue tests on SQLite always and on PostgreSQL when
//! `SPICEHUB_TEST_POSTGRES_URL` is set (one fresh database per test).

use std::collections::HashMap;

use super::*;
use crate::crypto::SecretKey;
use crate::db::providers::{CredentialKind, NewProvider};
use crate::db::repositories::NewRepository;

pub(crate) use crate::testing::TestDb;

/// A provider, an organization and `n` repositories; returns their ids.
pub(crate) async fn seed_repos(db: &Db, n: usize) -> Vec<String> {
    let key = SecretKey::generate();
    let provider = db
        .create_provider(
            &key,
            &NewProvider {
                display_name: "Contoso",
                tenant_id: "11111111-2222-4333-8444-555555555555",
                client_id: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                credential_kind: CredentialKind::ClientSecret,
                credential: b"client~secret",
                webhook_username: "hook",
                webhook_password: "a-long-random-webhook-password",
                secret_expires_at: None,
            },
        )
        .await
        .expect("provider");
    let org = db
        .create_organization(&provider.id, "acme", None)
        .await
        .expect("org");
    let mut ids = Vec::new();
    for i in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        db.create_repository(&NewRepository {
            id: &id,
            organization_id: &org.id,
            project_id: "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c",
            project_name: "Alpha",
            name: &format!("repo{i}"),
            tracked_branch: "main",
            web_url: None,
        })
        .await
        .expect("repository");
        ids.push(id);
    }
    ids
}

fn config() -> QueueConfig {
    QueueConfig {
        lease_secs: 60,
        backoff_base_secs: 10,
        backoff_max_secs: 1000,
        max_attempts: 3,
    }
}

fn push<'a>(repo: &'a str, commit: &'a str) -> NewJob<'a> {
    NewJob {
        repository_id: repo,
        kind: JobKind::RecentChanges,
        target_commit: Some(commit),
        delivery_id: None,
    }
}

#[tokio::test]
async fn ten_enqueues_coalesce_into_one_job_with_the_newest_target() {
    for t in TestDb::all().await {
        let db = t.open().await;
        let repos = seed_repos(&db, 1).await;
        let q = Queue::new(db.clone(), config());
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(q.enqueue(&push(&repos[0], &format!("c{i}"))).await.unwrap());
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{}", t.url);
        let jobs = q.jobs_for(&repos[0]).await.unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].target_commit.as_deref(), Some("c9"));
        assert_eq!(jobs[0].status, JobStatus::Pending);
        // Another kind is another job.
        q.enqueue(&NewJob {
            kind: JobKind::Reparse,
            target_commit: None,
            ..push(&repos[0], "")
        })
        .await
        .unwrap();
        assert_eq!(q.jobs_for(&repos[0]).await.unwrap().len(), 2);
        // Once the job runs, a new push queues a new pending job.
        let claimed = q.claim().await.unwrap().expect("claim");
        assert_eq!(claimed.status, JobStatus::Running);
        q.enqueue(&push(&repos[0], &claimed.id)).await.unwrap();
        assert_eq!(q.jobs_for(&repos[0]).await.unwrap().len(), 3);
        db.close().await;
    }
}

#[tokio::test]
async fn an_expired_lease_is_retried_after_a_backoff_and_the_old_owner_is_fenced() {
    for t in TestDb::all().await {
        let db = t.open().await;
        let repos = seed_repos(&db, 1).await;
        let a = Queue::new(db.clone(), config());
        let b = Queue::new(db.clone(), config());
        let id = a.enqueue(&push(&repos[0], "c1")).await.unwrap();
        // Read the clock after enqueueing: enqueue stamps run_after with its
        // own clock, and a second boundary in between would make it due later.
        let t0 = now();
        let job = a.claim_at(t0).await.unwrap().expect("claim");
        assert_eq!((job.id.as_str(), job.attempts), (id.as_str(), 1));
        assert_eq!(job.lease_expires_at, Some(t0 + 60));
        assert!(b.claim_at(t0 + 30).await.unwrap().is_none(), "leased");
        a.progress(&id, "download", 3, Some(10)).await.unwrap();
        let renewed = a.job(&id).await.unwrap().unwrap();
        assert_eq!(renewed.phase.as_deref(), Some("download"));
        assert_eq!(
            (renewed.progress_done, renewed.progress_total),
            (Some(3), Some(10))
        );
        let lease_end = renewed.lease_expires_at.unwrap();
        // Expired, but the backoff (10 s after the first attempt) is not over.
        assert!(b.claim_at(lease_end + 1).await.unwrap().is_none());
        let again = b.claim_at(lease_end + 11).await.unwrap().expect("retry");
        assert_eq!((again.id.as_str(), again.attempts), (id.as_str(), 2));
        assert_eq!(again.lease_owner.as_deref(), Some(b.owner()));
        // The first runner comes back: it may not finish the job any more.
        assert!(matches!(a.complete(&id).await, Err(QueueError::LeaseLost)));
        assert!(matches!(a.renew(&id).await, Err(QueueError::LeaseLost)));
        b.complete(&id).await.unwrap();
        assert_eq!(
            a.job(&id).await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );
        db.close().await;
    }
}

#[tokio::test]
async fn attempts_are_limited_then_the_job_fails_with_the_reason() {
    for t in TestDb::all().await {
        let db = t.open().await;
        let repos = seed_repos(&db, 2).await;
        let q = Queue::new(db.clone(), config());
        // Lost leases: attempts 1, 2, 3, then given up.
        let id = q.enqueue(&push(&repos[0], "c1")).await.unwrap();
        // After enqueue, which stamps run_after with its own clock.
        let mut at = now();
        for attempt in 1..=3 {
            let job = q.claim_at(at).await.unwrap().expect("claim");
            assert_eq!(job.attempts, attempt);
            at = job.run_after + 1;
        }
        assert!(q.claim_at(at).await.unwrap().is_none());
        let job = q.job(&id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert!(job.last_error.unwrap().contains("gave up after 3 attempts"));

        // Reported errors: retryable ones back off and retry, then fail.
        let id = q.enqueue(&push(&repos[1], "c1")).await.unwrap();
        let mut at = now();
        for attempt in 1..=3 {
            let job = q.claim_at(at).await.unwrap().expect("claim");
            assert_eq!(job.attempts, attempt);
            q.fail_at(&id, "HTTP 503", true, at).await.unwrap();
            let after = q.job(&id).await.unwrap().unwrap();
            if attempt < 3 {
                assert_eq!(after.status, JobStatus::Pending);
                assert_eq!(after.run_after, at + 10 * (1 << (attempt - 1)));
                assert!(q.claim_at(after.run_after - 1).await.unwrap().is_none());
                at = after.run_after;
            } else {
                assert_eq!(after.status, JobStatus::Failed);
                assert_eq!(
                    after.last_error.as_deref(),
                    Some("gave up after 3 attempts: HTTP 503")
                );
            }
        }
        db.close().await;
    }
}

#[tokio::test]
async fn one_running_job_per_repository() {
    for t in TestDb::all().await {
        let db = t.open().await;
        let repos = seed_repos(&db, 2).await;
        let q = Queue::new(db.clone(), config());
        q.enqueue(&push(&repos[0], "c1")).await.unwrap();
        q.enqueue(&NewJob {
            kind: JobKind::Reparse,
            ..push(&repos[0], "c1")
        })
        .await
        .unwrap();
        q.enqueue(&push(&repos[1], "c1")).await.unwrap();
        let first = q.claim().await.unwrap().expect("first");
        let second = q.claim().await.unwrap().expect("second");
        assert_ne!(first.repository_id, second.repository_id);
        assert!(q.claim().await.unwrap().is_none(), "repo busy");
        q.complete(&first.id).await.unwrap();
        let third = q.claim().await.unwrap().expect("third");
        assert_eq!(third.repository_id, first.repository_id);
        // A permanent error fails at once, with the error as the reason.
        q.fail(&third.id, "TF401019: repository not found", false)
            .await
            .unwrap();
        let failed = q.job(&third.id).await.unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.attempts, 1);
        db.close().await;
    }
}

#[tokio::test]
async fn two_pools_claim_fifty_jobs_each_exactly_once() {
    for t in TestDb::all().await {
        let setup = t.open().await;
        let repos = seed_repos(&setup, 50).await;
        let q = Queue::new(setup.clone(), config());
        for r in &repos {
            q.enqueue(&push(r, "c1")).await.unwrap();
        }
        // Two independent pools, as two hub instances have; several claimers each.
        let pools = [t.open().await, t.open().await];
        let mut tasks = Vec::new();
        for pool in &pools {
            for _ in 0..3 {
                let q = Queue::new(pool.clone(), config());
                tasks.push(tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut idle = 0;
                    // A claim can come back empty while others hold row
                    // locks; stop after several empty rounds in a row.
                    while idle < 5 {
                        match q.claim().await.expect("claim") {
                            Some(job) => {
                                idle = 0;
                                got.push(job.id);
                            }
                            None => {
                                idle += 1;
                                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            }
                        }
                    }
                    got
                }));
            }
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        for task in tasks {
            for id in task.await.expect("task") {
                *counts.entry(id).or_default() += 1;
            }
        }
        assert_eq!(counts.len(), 50, "{}: every job claimed", t.url);
        assert!(counts.values().all(|&n| n == 1), "{}: {counts:?}", t.url);
        for p in &pools {
            p.close().await;
        }
        setup.close().await;
    }
}

#[test]
fn backoff_doubles_and_is_capped() {
    let c = config();
    assert_eq!(
        (1..=8).map(|a| c.backoff(a)).collect::<Vec<_>>(),
        vec![10, 20, 40, 80, 160, 320, 640, 1000]
    );
    assert_eq!(c.backoff(1000), 1000);
}
