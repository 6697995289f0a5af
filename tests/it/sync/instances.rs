//! Two hub processes on one PostgreSQL database share the queue: every job
//! runs exactly once.

use std::collections::HashMap;
use std::time::Duration;

use ado_emulator::FileChange;
use spicehub_core::sync::JobStatus;

use crate::common::{Hub, HubOptions, TestDb};
use crate::sync::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_fifty_jobs_exactly_once() {
    const REPOS: usize = 50;
    let url = match std::env::var("SPICEHUB_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!("SKIPPED: two_instances_run_fifty_jobs_exactly_once needs SPICEHUB_TEST_POSTGRES_URL");
            return;
        }
    };
    let test_db = TestDb::postgres(&url).await;
    let s = Setup::new(&test_db, |mut c| {
        for i in 0..REPOS {
            c = c.with_seeded_repo(
                ORG,
                PROJECT,
                &format!("repo{i:02}"),
                vec![seed(
                    "one",
                    vec![FileChange::put("a.py", format!("N = {i}\n"))],
                )],
            );
        }
        c
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..REPOS {
        ids.push(s.add(&format!("repo{i:02}")).await.id);
    }
    s.emu.clear_request_log();

    let hubs: Vec<Hub> = (0..2)
        .map(|_| {
            Hub::start_with(HubOptions {
                db: &test_db,
                data_dir: &s.data,
                env: s.env.clone(),
            })
        })
        .collect();

    let done = wait_for(Duration::from_secs(180), || async {
        let mut all = true;
        for id in &ids {
            let r = s.db.repository(id).await.unwrap().unwrap();
            all &= r.last_synced_commit.is_some();
        }
        all
    })
    .await;
    assert!(
        done,
        "not every repository synced\n{}\n{}",
        hubs[0].logs(),
        hubs[1].logs()
    );

    for id in &ids {
        // The switch is visible before the runner records the job's outcome.
        let jobs = s.wait_jobs_done(id).await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].status, JobStatus::Succeeded);
        assert_eq!(jobs[0].attempts, 1, "claimed twice: {:?}", jobs[0]);
    }
    // One archive download per repository, no more: nothing ran twice.
    let mut per_repo: HashMap<String, usize> = HashMap::new();
    for r in s.requests().iter().filter(|r| is_zip(r)) {
        *per_repo.entry(r.path.clone()).or_default() += 1;
    }
    assert_eq!(per_repo.len(), REPOS);
    assert!(per_repo.values().all(|&n| n == 1), "{per_repo:?}");
    // Both instances did some of the work.
    let busy = hubs
        .iter()
        .filter(|h| h.logs().contains("sync: commit switched"))
        .count();
    assert_eq!(busy, 2, "one instance did everything");
    drop(hubs);
    s.db.close().await;
}
