//! kill -9 in the middle of a large full sync: the job is retried by the
//! next process, and readers see exactly the previous commit's files the
//! whole time, then exactly the new commit's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ado_emulator::FileChange;
use spicehub_core::admin::repositories::request_sync;
use spicehub_core::sync::{JobKind, JobStatus};

use crate::common::TestDb;
use crate::sync::harness::*;

type Files = BTreeMap<String, Option<Vec<u8>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hub_killed_mid_sync_resumes_and_readers_never_see_a_mix() {
    const N: usize = 6000;
    for test_db in TestDb::all().await {
        let big: Vec<FileChange> = (0..N)
            .map(|i| {
                FileChange::put(
                    format!("pkg/d{}/m{i}.py", i % 50),
                    format!("# module {i}\nVALUE_{i} = {i}\n{}", "x = 1\n".repeat(20)),
                )
            })
            .collect();
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(
                ORG,
                PROJECT,
                "big",
                vec![seed("small", vec![FileChange::put("old.py", "OLD = 1\n")])],
            )
        })
        .await;
        s.start_hub(&test_db);
        // No webhook: the large commit below is synced only when asked.
        s.emu.set_webhook(None);
        let repo = s.add("big").await;
        let first = s.head("big");
        s.wait_synced(&repo.id, &first).await;
        let (old_commit, old_files) = s.visible(&repo.id).await.unwrap();
        assert_eq!(old_files.keys().collect::<Vec<_>>(), ["old.py"]);

        let large = s.commit("big", big, "large");
        request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo.id,
            JobKind::EntireRepository,
            None,
        )
        .await
        .unwrap();

        // A reader that checks every snapshot it sees is whole.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let db = s.db.clone();
            let repo_id = repo.id.clone();
            let stop = stop.clone();
            let old_commit = old_commit.clone();
            let old_files = old_files.clone();
            let large = large.clone();
            tokio::spawn(async move {
                let mut seen_old = 0u32;
                let mut seen_new = 0u32;
                // After `stop`, it reads until it has seen the new commit
                // once (the last poll may predate the switch), within a bound.
                let mut stopped_at = None;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        let at = *stopped_at.get_or_insert_with(std::time::Instant::now);
                        if seen_new > 0 || at.elapsed() > Duration::from_secs(30) {
                            break;
                        }
                    }
                    let (commit, files) = db.visible_files(&repo_id).await.unwrap().unwrap();
                    let files: Files = files.into_iter().map(|f| (f.row.path, f.content)).collect();
                    if commit == old_commit {
                        assert_eq!(files, old_files, "old commit with other files");
                        seen_old += 1;
                    } else {
                        assert_eq!(commit, large);
                        assert_eq!(files.len(), N + 1, "new commit with {} files", files.len());
                        seen_new += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (seen_old, seen_new)
            })
        };

        // Kill the hub once the job has written part of the new snapshot.
        let mut phase_at_kill = None;
        for _ in 0..2400 {
            let jobs = s.queue.jobs_for(&repo.id).await.unwrap();
            let job = jobs
                .iter()
                .find(|j| j.kind == JobKind::EntireRepository)
                .unwrap();
            if job.status == JobStatus::Running
                && matches!(job.phase.as_deref(), Some("storing files" | "parsing"))
            {
                phase_at_kill = job.phase.clone();
                break;
            }
            assert_ne!(
                job.status,
                JobStatus::Succeeded,
                "{}: the sync finished before the kill; make it larger",
                s.label
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            phase_at_kill.is_some(),
            "{}: never saw the job mid-sync\n{}",
            s.label,
            s.logs()
        );
        s.hub.take().expect("hub").kill();
        // The files staged so far are in the database, invisible.
        let (commit, files) = s.visible(&repo.id).await.unwrap();
        assert_eq!((commit, files), (old_commit.clone(), old_files.clone()));

        // A new process takes the job over once its lease expires.
        s.start_hub(&test_db);
        s.emu.set_webhook(None);
        s.wait_synced(&repo.id, &large).await;
        stop.store(true, Ordering::Relaxed);
        let (seen_old, seen_new) = reader.await.expect("reader assertions");
        assert!(
            seen_old > 0 && seen_new > 0,
            "reader saw old {seen_old} new {seen_new}"
        );

        // The switch is visible before the runner records the job's outcome.
        let jobs = s.wait_jobs_done(&repo.id).await;
        let job = jobs
            .iter()
            .find(|j| j.kind == JobKind::EntireRepository)
            .unwrap();
        assert_eq!(job.status, JobStatus::Succeeded);
        assert_eq!(
            job.attempts, 2,
            "{}: killed once, then done: {job:?}",
            s.label
        );
        let (_, files) = s.visible(&repo.id).await.unwrap();
        assert_eq!(files.len(), N + 1);
        // Nothing of the killed attempt is left behind.
        let snapshots = s.db.count_snapshots(&repo.id).await.unwrap();
        assert_eq!(snapshots, 1, "stale snapshots remain");
        println!("{}: killed during {:?}", s.label, phase_at_kill);
        s.db.close().await;
    }
}
