//! Files kept in Git LFS: the commit's zip holds their pointers, which are
//! noted rather than parsed; a changed file fetched as a blob is asked for
//! with `resolveLfs=true` and arrives as its content, which is parsed.

use ado_emulator::FileChange;

use crate::common::TestDb;
use crate::sync::harness::*;

const REGISTRY: &str = "from spice import Registry\n\npipelines = Registry(\"pipelines\")\n";

fn step(name: &str) -> String {
    format!("from pkg.registry import pipelines\n\n@pipelines.register(\"{name}\")\ndef {name}():\n    pass\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lfs_pointers_are_noted_and_resolved_blobs_parsed() {
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(
                ORG,
                PROJECT,
                "app",
                vec![seed(
                    "first",
                    vec![
                        FileChange::put("pkg/__init__.py", ""),
                        FileChange::put("pkg/registry.py", REGISTRY),
                        FileChange::put("pkg/plain.py", step("plain")),
                        FileChange::lfs("pkg/stored.py", step("in_lfs")),
                    ],
                )],
            )
        })
        .await;
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        let head = s.head("app");
        s.wait_synced(&repo.id, &head).await;

        // The zip holds the pointer: noted, not stored, not parsed.
        let (_, files) = s.visible(&repo.id).await.expect("visible");
        assert_eq!(files.get("pkg/stored.py"), Some(&None), "{}", s.label);
        let graph = s.db.load_graph(&repo.id, &head).await.unwrap().unwrap();
        let names: Vec<&str> = graph.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["plain"], "{}", s.label);
        let diags = s.db.snapshot_diagnostics(&repo.id, &head).await.unwrap();
        assert!(
            diags
                .iter()
                .any(|d| d.file == "pkg/stored.py" && d.message.contains("Git LFS pointer")),
            "{diags:?}"
        );

        // A push changes the LFS file: its blob is asked for resolved, and
        // the content behind the pointer is what gets parsed.
        s.emu.clear_request_log();
        let pushed = s.commit(
            "app",
            vec![FileChange::lfs("pkg/stored.py", step("resolved"))],
            "change the LFS file",
        );
        let synced = s.wait_synced(&repo.id, &pushed).await;
        let note = synced.last_sync_note.unwrap_or_default();
        assert!(note.starts_with("incremental"), "{note}");
        let log = s.requests();
        let blobs: Vec<_> = log.iter().filter(|r| is_blob(r)).collect();
        assert_eq!(blobs.len(), 1, "{blobs:#?}");
        let query = blobs[0].query.clone().unwrap_or_default();
        assert!(query.contains("resolveLfs=true"), "{query}");

        let (_, files) = s.visible(&repo.id).await.expect("visible");
        assert_eq!(
            text(&files, "pkg/stored.py").as_deref(),
            Some(step("resolved").as_str())
        );
        let graph = s.db.load_graph(&repo.id, &pushed).await.unwrap().unwrap();
        let names: Vec<&str> = graph.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["plain", "resolved"], "{}", s.label);
        s.db.close().await;
    }
}
