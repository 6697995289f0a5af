//! Azure DevOps misbehaving: throttling with Retry-After, bursts of 5xx, an
//! archive cut short, a slow server. The sync converges to the right files.

use ado_emulator::{Fault, FaultRule, FaultScope, FileChange};

use crate::common::TestDb;
use crate::sync::harness::*;

fn files(n: usize) -> Vec<FileChange> {
    (0..n)
        .map(|i| FileChange::put(format!("pkg/m{i}.py"), format!("V{i} = {i}\n")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_server_errors_a_cut_archive_and_a_slow_server_converge() {
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(ORG, PROJECT, "app", vec![seed("one", files(30))])
                .with_faults(vec![
                    // The first two archive requests are throttled.
                    FaultRule::times(
                        FaultScope::PathContains("format=zip".into()),
                        Fault::Throttle429 {
                            retry_after_secs: 1,
                        },
                        2,
                    ),
                    // Refs answer 503 three times, then slowly.
                    FaultRule::times(
                        FaultScope::PathContains("/refs".into()),
                        Fault::ServerError { status: 503 },
                        3,
                    ),
                    FaultRule::times(
                        FaultScope::PathContains("/refs".into()),
                        Fault::Delay { ms: 1500 },
                        2,
                    ),
                ])
        })
        .await;
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        let head = s.head("app");
        s.wait_synced(&repo.id, &head).await;
        let (_, visible) = s.visible(&repo.id).await.unwrap();
        assert_eq!(visible.len(), 30, "{}", s.label);
        assert_eq!(text(&visible, "pkg/m7.py").as_deref(), Some("V7 = 7\n"));

        let log = s.requests();
        let statuses = |pred: fn(&ado_emulator::LoggedRequest) -> bool| -> Vec<u16> {
            log.iter().filter(|r| pred(r)).map(|r| r.status).collect()
        };
        let zips = statuses(is_zip);
        assert_eq!(&zips[..2], [429, 429], "{zips:?}");
        assert_eq!(zips.last(), Some(&200), "{zips:?}");
        let refs = statuses(|r| r.path.ends_with("/refs"));
        assert!(refs.iter().filter(|&&c| c == 503).count() == 3, "{refs:?}");

        // A full resync whose archive is cut short after 100 bytes: the
        // damaged download is retried, the visible files never change.
        s.emu.clear_request_log();
        s.emu.add_fault(FaultRule::times(
            FaultScope::PathContains("format=zip".into()),
            Fault::CutBody { after_bytes: 100 },
            1,
        ));
        spicehub_core::admin::repositories::request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo.id,
            spicehub_core::sync::JobKind::EntireRepository,
            None,
        )
        .await
        .unwrap();
        let jobs = s.wait_jobs_done(&repo.id).await;
        assert!(
            jobs.iter()
                .all(|j| j.status == spicehub_core::sync::JobStatus::Succeeded),
            "{jobs:?}"
        );
        let zips = s.requests().iter().filter(|r| is_zip(r)).count();
        assert!(
            zips >= 2,
            "the cut archive was not downloaded again ({zips})"
        );
        assert_eq!(s.visible(&repo.id).await.unwrap().1, visible);

        // An incremental sync through a burst of 5xx on blobs (batched or not).
        s.emu.add_fault(FaultRule::times(
            FaultScope::PathContains("/blobs".into()),
            Fault::ServerError { status: 500 },
            4,
        ));
        let pushed = s.commit(
            "app",
            vec![
                FileChange::put("pkg/m1.py", "V1 = 'one'\n"),
                FileChange::put("pkg/new.py", "NEW = 1\n"),
                FileChange::delete("pkg/m2.py"),
            ],
            "change",
        );
        s.wait_synced(&repo.id, &pushed).await;
        let (commit, visible) = s.visible(&repo.id).await.unwrap();
        assert_eq!(commit, pushed);
        assert_eq!(visible.len(), 30);
        assert_eq!(text(&visible, "pkg/m1.py").as_deref(), Some("V1 = 'one'\n"));
        assert_eq!(text(&visible, "pkg/new.py").as_deref(), Some("NEW = 1\n"));
        assert!(!visible.contains_key("pkg/m2.py"));
        s.db.close().await;
    }
}
