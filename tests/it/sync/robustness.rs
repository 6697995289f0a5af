//! What must not survive: a repository removed while its sync runs, an
//! incremental sync past the limits a full one enforces, and archives a
//! crashed hub left in its work directory.

use std::time::{Duration, Instant};

use ado_emulator::FileChange;
use spicehub_core::admin::repositories::request_sync;
use spicehub_core::db::repositories::RepoState;
use spicehub_core::sync::{JobKind, JobStatus};

use crate::common::TestDb;
use crate::sync::harness::*;

const REGISTRY: &str = "from spice import Registry\n\nsteps = Registry(\"steps\")\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repository_removed_while_its_sync_parses_stays_removed() {
    // Enough files that an incremental sync's parse, which reads every
    // file back from the database, takes a while.
    const N: usize = 3000;
    for test_db in TestDb::all().await {
        let mut files = vec![
            FileChange::put("pkg/__init__.py", ""),
            FileChange::put("pkg/registry.py", REGISTRY),
            FileChange::put(
                "pkg/clean.py",
                "from pkg.registry import steps\n\n@steps.register(\"clean\")\ndef clean():\n    pass\n",
            ),
        ];
        files.extend((0..N).map(|i| {
            FileChange::put(
                format!("pkg/d{}/m{i}.py", i % 30),
                format!("VALUE_{i} = {i}\n{}", "x = 1\n".repeat(10)),
            )
        }));
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(ORG, PROJECT, "app", vec![seed("first", files)])
        })
        .await;
        // A long lease: the runner renews it only every 100 s, so only the
        // switch itself can notice that the repository went away.
        s.env.retain(|(k, _)| *k != "SPICEHUB_SYNC_LEASE");
        s.env.push(("SPICEHUB_SYNC_LEASE", "300".into()));
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        s.wait_synced(&repo.id, &s.head("app")).await;
        assert_eq!(
            s.db.repository_registries(&repo.id).await.unwrap().len(),
            1,
            "{}",
            s.label
        );

        // A push: the incremental sync parses the whole snapshot again.
        let pushed = s.commit(
            "app",
            vec![FileChange::put("pkg/d0/m0.py", "VALUE_0 = 'changed'\n")],
            "change",
        );
        let start = Instant::now();
        let job = loop {
            let jobs = s.queue.jobs_for(&repo.id).await.unwrap();
            if let Some(job) = jobs.iter().find(|j| {
                j.kind == JobKind::RecentChanges
                    && j.status == JobStatus::Running
                    && j.phase.as_deref() == Some("parsing")
            }) {
                break job.clone();
            }
            assert!(
                !jobs
                    .iter()
                    .any(|j| j.kind == JobKind::RecentChanges && j.status == JobStatus::Succeeded),
                "{}: the sync finished before the removal; make the repository larger",
                s.label
            );
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{}: never saw the sync parse: {jobs:#?}\n{}",
                s.label,
                s.logs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(s.db.delete_repository(&repo.id).await.unwrap());

        // The runner is done with the job once it has tried to record its
        // outcome (the job row went with the repository).
        let finished = wait_for(Duration::from_secs(90), || async {
            s.logs()
                .lines()
                .any(|l| l.contains(&job.id) && l.contains("sync runner:"))
        })
        .await;
        assert!(finished, "{}: the job never ended\n{}", s.label, s.logs());
        assert!(s.db.repository(&repo.id).await.unwrap().is_none());
        let left: Vec<_> =
            s.db.list_registries(None)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.repository_id == repo.id)
                .collect();
        assert!(
            left.is_empty(),
            "{}: the removed repository's registries came back: {left:?}",
            s.label
        );
        assert!(s.db.load_graph(&repo.id, &pushed).await.unwrap().is_none());
        assert!(s.db.visible_commit(&repo.id).await.unwrap().is_none());
        assert_eq!(s.db.count_snapshots(&repo.id).await.unwrap(), 0);
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incremental_syncs_enforce_the_entry_and_size_limits() {
    for test_db in TestDb::all().await {
        let small = |i: usize| FileChange::put(format!("pkg/m{i}.py"), format!("M{i} = {i}\n"));
        let sized = |name: &str| FileChange::put(format!("pkg/{name}.py"), "#".repeat(999) + "\n");
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(
                ORG,
                PROJECT,
                "many",
                vec![seed(
                    "first",
                    (0..5)
                        .map(small)
                        .chain([FileChange::put("README.md", "# many\n")])
                        .collect(),
                )],
            )
            .with_seeded_repo(
                ORG,
                PROJECT,
                "big",
                vec![seed("first", vec![sized("a"), sized("b")])],
            )
        })
        .await;
        s.env.push(("SPICEHUB_SYNC_MAX_ENTRIES", "20".into()));
        s.env.push(("SPICEHUB_SYNC_MAX_TOTAL_BYTES", "3000".into()));
        s.start_hub(&test_db);
        let many = s.add("many").await;
        let big = s.add("big").await;
        let many_first = s.head("many");
        let big_first = s.head("big");
        s.wait_synced(&many.id, &many_first).await;
        s.wait_synced(&big.id, &big_first).await;

        // 24 files: under the limit in Python files alone (13), over it in
        // files (every file counts, as in the archive of a full sync).
        s.commit(
            "many",
            (5..13)
                .map(small)
                .chain((0..10).map(|i| FileChange::put(format!("docs/p{i}.md"), "text\n")))
                .collect(),
            "many more files",
        );
        // 4,000 bytes of Python files together.
        s.commit("big", vec![sized("c"), sized("d")], "more bytes");

        for (repo, first, limit) in [
            (&many, &many_first, "more than 20 files"),
            (&big, &big_first, "exceed 3000 bytes"),
        ] {
            let jobs = s.wait_jobs_done(&repo.id).await;
            let failed = jobs
                .iter()
                .find(|j| j.kind == JobKind::RecentChanges)
                .unwrap_or_else(|| panic!("{}: no incremental sync: {jobs:#?}", s.label));
            assert_eq!(failed.status, JobStatus::Failed, "{}: {failed:#?}", s.label);
            let incremental_error = failed.last_error.clone().unwrap_or_default();
            assert!(
                incremental_error.contains(limit),
                "{}: {incremental_error}",
                s.label
            );
            assert_eq!(failed.attempts, 1, "a limit is not retried");
            let r = s.db.repository(&repo.id).await.unwrap().unwrap();
            assert_eq!(r.state, RepoState::Error);
            assert_eq!(r.last_error.as_deref(), Some(incremental_error.as_str()));
            // Nothing of the over-limit commit is visible or kept.
            assert_eq!(r.last_synced_commit.as_deref(), Some(first.as_str()));
            let (commit, _) = s.visible(&repo.id).await.unwrap();
            assert_eq!(&commit, first);
            assert_eq!(
                s.db.count_snapshots(&repo.id).await.unwrap(),
                1,
                "{}: the over-limit snapshot was kept",
                s.label
            );

            // A full sync of the same commit fails the same way.
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
            let jobs = s.wait_jobs_done(&repo.id).await;
            let full = jobs
                .iter()
                .find(|j| j.kind == JobKind::EntireRepository)
                .unwrap();
            assert_eq!(full.status, JobStatus::Failed, "{full:#?}");
            assert_eq!(
                full.last_error.as_deref(),
                Some(incremental_error.as_str()),
                "{}",
                s.label
            );
            let (commit, _) = s.visible(&repo.id).await.unwrap();
            assert_eq!(&commit, first);
        }
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn archives_left_in_the_work_directory_are_removed_at_start() {
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| c).await;
        let work = s.data.join("work");
        std::fs::create_dir_all(&work).unwrap();
        // What a hub killed mid-download leaves: the archive of a job, and
        // the download's temporary file.
        let job = uuid::Uuid::new_v4().to_string();
        let archive = work.join(format!("{job}.zip"));
        let partial = work.join(format!(".{job}.zip.{}.part", uuid::Uuid::new_v4().simple()));
        std::fs::write(&archive, b"PK\x03\x04 cut short").unwrap();
        std::fs::write(&partial, b"PK\x03\x04").unwrap();
        // Not the engine's: left alone.
        let other = work.join("notes.zip");
        std::fs::write(&other, b"mine").unwrap();
        s.start_hub(&test_db);
        let removed = wait_for(Duration::from_secs(30), || async {
            !archive.exists() && !partial.exists()
        })
        .await;
        assert!(
            removed,
            "{}: leftovers still in {}: {:?}\n{}",
            s.label,
            work.display(),
            std::fs::read_dir(&work)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>(),
            s.logs()
        );
        assert!(
            other.exists(),
            "a file the engine did not write was removed"
        );
        s.db.close().await;
    }
}
