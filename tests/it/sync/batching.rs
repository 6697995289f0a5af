//! Changed files fetched in batches ("Get Blobs Zip"): what a push costs in
//! requests and bytes, a batch refused for its size split in halves, and a
//! Git LFS file among them fetched again alone to be resolved.

use std::collections::BTreeSet;

use ado_emulator::{FileChange, LoggedRequest, Service};

use crate::common::TestDb;
use crate::sync::harness::*;
use spicehub_core::db::repositories::Repository;

const REGISTRY: &str = "from spice import Registry\n\nsteps = Registry(\"steps\")\n";

fn step_source(i: usize, version: usize) -> String {
    format!(
        "from pkg.registry import steps\n\n@steps.register(\"step_{i}\")\ndef step_{i}():\n    return {version}\n"
    )
}

fn step(i: usize, version: usize) -> FileChange {
    FileChange::put(format!("pkg/steps/s{i:02}.py"), step_source(i, version))
}

fn first_commit() -> Vec<FileChange> {
    let mut files = vec![
        FileChange::put("pkg/__init__.py", ""),
        FileChange::put("pkg/registry.py", REGISTRY),
    ];
    files.extend((0..20).map(|i| step(i, 0)));
    files
}

/// A push touching 25 Python files: 15 edited, 10 added, two of them with
/// the same content (one blob, two paths).
fn push_25() -> Vec<FileChange> {
    let mut files: Vec<FileChange> = (0..15).map(|i| step(i, 1)).collect();
    files.extend((20..28).map(|i| step(i, 1)));
    files.push(FileChange::put("pkg/same_a.py", "SAME = 1\n"));
    files.push(FileChange::put("pkg/same_b.py", "SAME = 1\n"));
    files
}

fn changed_bytes(changes: &[FileChange]) -> usize {
    changes
        .iter()
        .map(|c| match c {
            FileChange::Put { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .sum()
}

fn devops(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter()
        .filter(|r| r.service == Service::DevOps)
        .collect()
}

fn listing(log: &[&LoggedRequest]) -> Vec<String> {
    log.iter()
        .map(|r| format!("{} {} {}", r.method, r.status, r.path_and_query()))
        .collect()
}

/// Every pushed file is visible with its content, and the graph has one
/// entry per step file of the tree.
async fn assert_pushed(
    s: &Setup,
    repo_id: &str,
    pushed: &str,
    changes: &[FileChange],
    steps: usize,
) {
    let (commit, files) = s.visible(repo_id).await.expect("visible");
    assert_eq!(commit, pushed);
    for change in changes {
        if let FileChange::Put { path, bytes, .. } = change {
            assert_eq!(
                files.get(path.as_str()).and_then(|c| c.as_deref()),
                Some(bytes.as_slice()),
                "{}: {path}",
                s.label
            );
        }
    }
    let graph =
        s.db.load_graph(repo_id, pushed)
            .await
            .unwrap()
            .expect("graph");
    let names: BTreeSet<String> = graph.entries.iter().map(|e| e.name.clone()).collect();
    let expected: BTreeSet<String> = (0..steps).map(|i| format!("step_{i}")).collect();
    assert_eq!(names, expected, "{}", s.label);
}

/// The repository `app` at its first commit, replicated by a hub started
/// with `env`, and the emulator's request log cleared for what follows.
async fn synced_app(
    test_db: &TestDb,
    max_blobs_per_zip: Option<usize>,
    env: &[(&'static str, &str)],
) -> (Setup, Repository) {
    let mut s = Setup::new(test_db, |c| {
        let c = c.with_seeded_repo(ORG, PROJECT, "app", vec![seed("first", first_commit())]);
        match max_blobs_per_zip {
            Some(n) => c.with_max_blobs_per_zip(n),
            None => c,
        }
    })
    .await;
    s.env.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    s.start_hub(test_db);
    let repo = s.add("app").await;
    let head = s.head("app");
    s.wait_synced(&repo.id, &head).await;
    s.emu.clear_request_log();
    (s, repo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_costs_a_few_requests_plus_one_per_batch() {
    const BATCH: usize = 10;
    for test_db in TestDb::all().await {
        // The batches themselves are measured: on a repository this small
        // the archive would be cheaper, and the hub would take it.
        let batch = BATCH.to_string();
        let (s, repo) = synced_app(
            &test_db,
            None,
            &[
                ("SPICEHUB_BLOB_BATCH", batch.as_str()),
                ("SPICEHUB_SYNC_FULL_WHEN_CHEAPER", "false"),
            ],
        )
        .await;
        let changes = push_25();
        let k = changes.len();
        let pushed = s.commit("app", changes.clone(), "touch 25 files");
        let synced = s.wait_synced(&repo.id, &pushed).await;
        let note = synced.last_sync_note.unwrap_or_default();
        assert!(note.starts_with("incremental"), "{note}");
        assert_pushed(&s, &repo.id, &pushed, &changes, 28).await;

        let log = s.requests();
        let api = devops(&log);
        let batches: Vec<_> = api.iter().filter(|r| is_blobs_zip(r)).collect();
        let singles = api.iter().filter(|r| is_blob(r)).count();
        assert_eq!(
            (batches.len(), singles),
            (k.div_ceil(BATCH), 0),
            "{}: {:#?}",
            s.label,
            listing(&api)
        );
        assert!(batches.iter().all(|r| r.status == 200));
        assert!(
            api.len() <= 4 + k.div_ceil(BATCH),
            "{}: {} requests for {k} files: {:#?}",
            s.label,
            api.len(),
            listing(&api)
        );
        let bytes: usize = api.iter().map(|r| r.body.len()).sum();
        let budget = 2 * changed_bytes(&changes) + 64 * 1024;
        assert!(bytes <= budget, "{}: {bytes} bytes > {budget}", s.label);
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_refused_for_its_size_is_split_until_it_is_served() {
    const SERVED: usize = 4;
    for test_db in TestDb::all().await {
        // The hub's batch is larger than what the emulator serves.
        let (s, repo) = synced_app(&test_db, Some(SERVED), &[("SPICEHUB_BLOB_BATCH", "100")]).await;
        let changes = push_25();
        let unique_blobs = changes.len() - 1;
        let pushed = s.commit("app", changes.clone(), "touch 25 files");
        s.wait_synced(&repo.id, &pushed).await;
        assert_pushed(&s, &repo.id, &pushed, &changes, 28).await;

        let log = s.requests();
        let api = devops(&log);
        let refused = api
            .iter()
            .filter(|r| is_blobs_zip(r) && r.status == 400)
            .count();
        let served = api
            .iter()
            .filter(|r| is_blobs_zip(r) && r.status == 200)
            .count();
        assert!(refused >= 1, "{}: {:#?}", s.label, listing(&api));
        // Halving lands between SERVED/2 and SERVED ids a batch.
        assert!(
            (unique_blobs.div_ceil(SERVED)..=unique_blobs.div_ceil(SERVED / 2)).contains(&served),
            "{}: {served} batches served: {:#?}",
            s.label,
            listing(&api)
        );
        assert_eq!(
            api.iter().filter(|r| is_blob(r)).count(),
            0,
            "{}: no batch had to go down to single blobs",
            s.label
        );
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_of_one_fetches_each_blob_alone() {
    for test_db in TestDb::all().await {
        let (s, repo) = synced_app(
            &test_db,
            None,
            &[
                ("SPICEHUB_BLOB_BATCH", "1"),
                ("SPICEHUB_SYNC_FULL_WHEN_CHEAPER", "false"),
            ],
        )
        .await;
        let changes = push_25();
        let pushed = s.commit("app", changes.clone(), "touch 25 files");
        s.wait_synced(&repo.id, &pushed).await;
        assert_pushed(&s, &repo.id, &pushed, &changes, 28).await;
        let log = s.requests();
        let api = devops(&log);
        assert_eq!(api.iter().filter(|r| is_blobs_zip(r)).count(), 0);
        assert_eq!(
            api.iter().filter(|r| is_blob(r)).count(),
            changes.len(),
            "{}",
            s.label
        );
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_git_lfs_file_in_a_batch_is_fetched_again_resolved() {
    for test_db in TestDb::all().await {
        let (s, repo) = synced_app(&test_db, None, &[]).await;
        let content = step_source(40, 1);
        let changes = vec![
            FileChange::lfs("pkg/steps/s40.py", &content),
            step(0, 1),
            step(1, 1),
        ];
        let pushed = s.commit("app", changes, "an LFS file among others");
        s.wait_synced(&repo.id, &pushed).await;
        // The pointer came in the zip; the file behind it is what is stored.
        let (_, files) = s.visible(&repo.id).await.expect("visible");
        assert_eq!(
            files.get("pkg/steps/s40.py").and_then(|c| c.as_deref()),
            Some(content.as_bytes()),
            "{}",
            s.label
        );
        let graph =
            s.db.load_graph(&repo.id, &pushed)
                .await
                .unwrap()
                .expect("graph");
        assert!(
            graph.entries.iter().any(|e| e.name == "step_40"),
            "{}",
            s.label
        );
        let log = s.requests();
        let api = devops(&log);
        let singles: Vec<_> = api.iter().filter(|r| is_blob(r)).collect();
        assert_eq!(
            (
                api.iter().filter(|r| is_blobs_zip(r)).count(),
                singles.len()
            ),
            (1, 1),
            "{}: {:#?}",
            s.label,
            listing(&api)
        );
        assert!(singles[0]
            .query
            .as_deref()
            .is_some_and(|q| q.contains("resolveLfs=true")));
        s.db.close().await;
    }
}

/// A push whose changed files would cost more requests and bytes than the
/// commit's archive (25 files one request each, in a repository of a few
/// dozen KiB; two of the files share a blob) is synced in full, and the note says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_push_into_a_small_repository_takes_the_archive() {
    for test_db in TestDb::all().await {
        let (s, repo) = synced_app(&test_db, None, &[("SPICEHUB_BLOB_BATCH", "1")]).await;
        let changes = push_25();
        let pushed = s.commit("app", changes.clone(), "touch 25 files");
        let synced = s.wait_synced(&repo.id, &pushed).await;
        let note = synced.last_sync_note.unwrap_or_default();
        assert!(
            note.starts_with("full sync: the archive")
                && note.contains("25 changed files' 24 requests"),
            "{}: {note}",
            s.label
        );
        assert_pushed(&s, &repo.id, &pushed, &changes, 28).await;
        let log = s.requests();
        let api = devops(&log);
        assert_eq!(
            api.iter().filter(|r| is_zip(r)).count(),
            1,
            "{:#?}",
            listing(&api)
        );
        assert_eq!(
            api.iter().filter(|r| is_blob(r) || is_blobs_zip(r)).count(),
            0
        );
        s.db.close().await;
    }
}
