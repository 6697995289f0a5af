//! An incremental sync extracts only the files a push changed and resolves
//! names over the facts kept for the others: the sync's note says how many
//! files were parsed, and after every push the graph is the one a full
//! parse of the same tree gives (renames, deletes, a `spice.toml` change,
//! facts of another parser version, damaged facts).

use std::collections::BTreeMap;

use ado_emulator::FileChange;
use spicehub_core::db::repositories::Repository;
use spicehub_core::sync::{JobKind, JobStatus};
use spicehub_parser::{parse_tree, Graph, MemorySource, ParseOptions};

use crate::common::TestDb;
use crate::sync::harness::*;

/// Modules with no registry at all, as most of a real repository is.
const FILLER: usize = 300;
const STEPS: usize = 12;

const REGISTRY: &str = "from spice import Registry\n\nsteps = Registry(\"steps\")\nALIAS = steps\n";

fn step(i: usize, name: &str) -> FileChange {
    let deps = if i == 0 {
        String::new()
    } else {
        format!(", depends_on=[\"step_{}\"]", i - 1)
    };
    FileChange::put(
        format!("pkg/steps/s{i:02}.py"),
        format!(
            "from pkg.registry import ALIAS\nfrom pkg.util.m000 import helper_0\n\n\
             @ALIAS.register(\"{name}\"{deps})\ndef {name}(data):\n    \"\"\"Step {i}.\"\"\"\n    \
             return helper_0(data)\n"
        ),
    )
}

fn filler(i: usize) -> FileChange {
    FileChange::put(
        format!("pkg/util/m{i:03}.py"),
        format!("import os\n\n\ndef helper_{i}(x):\n    return os.path.join(str(x), \"{i}\")\n"),
    )
}

fn first_commit() -> Vec<FileChange> {
    let mut files = vec![
        FileChange::put("pkg/__init__.py", ""),
        FileChange::put("pkg/registry.py", REGISTRY),
    ];
    files.extend((0..STEPS).map(|i| step(i, &format!("step_{i}"))));
    files.extend((0..FILLER).map(filler));
    files
}

/// The graph a full parse of the visible tree gives, in the stored order.
async fn full_parse(s: &Setup, repo_id: &str) -> Graph {
    let (_, files) = s.visible(repo_id).await.expect("visible");
    let tree: MemorySource = files
        .into_iter()
        .filter_map(|(path, content)| Some((path, content?)))
        .collect();
    let mut graph = parse_tree(&tree, &ParseOptions::default());
    graph.sort();
    graph
}

async fn stored(s: &Setup, repo: &Repository, commit: &str) -> Graph {
    let mut graph =
        s.db.load_graph(&repo.id, commit)
            .await
            .expect("load graph")
            .expect("a graph");
    graph.sort();
    graph
}

/// Pushes, waits for the sync, and checks the note's count of parsed
/// files and the graph against a full parse.
async fn push(
    s: &Setup,
    repo: &Repository,
    changes: Vec<FileChange>,
    message: &str,
    parsed: &str,
) -> Graph {
    let pushed = s.commit("app", changes, message);
    let synced = s.wait_synced(&repo.id, &pushed).await;
    let note = synced.last_sync_note.unwrap_or_default();
    assert!(
        note.starts_with("incremental"),
        "{}: {message}: {note}",
        s.label
    );
    assert!(
        note.ends_with(&format!("; {parsed} parsed")),
        "{}: {message}: {note}",
        s.label
    );
    let graph = stored(s, repo, &pushed).await;
    assert_eq!(
        graph,
        full_parse(s, &repo.id).await,
        "{}: {message}: the kept facts changed the graph",
        s.label
    );
    graph
}

fn names(graph: &Graph) -> Vec<&str> {
    graph.entries.iter().map(|e| e.name.as_str()).collect()
}

async fn facts_rows(s: &Setup, repo: &Repository) -> BTreeMap<String, String> {
    use sqlx::Row;
    sqlx::query("SELECT path, version FROM file_facts WHERE repository_id = $1")
        .bind(&repo.id)
        .fetch_all(s.db.pool())
        .await
        .expect("file_facts")
        .iter()
        .map(|r| (r.get("path"), r.get("version")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_parses_only_what_changed_and_the_graph_is_a_full_parse() {
    let python = FILLER + STEPS + 2;
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(ORG, PROJECT, "app", vec![seed("first", first_commit())])
        })
        .await;
        // Incremental syncs are what is measured here, even where the
        // archive would be cheaper for a repository this small.
        s.env
            .push(("SPICEHUB_SYNC_FULL_WHEN_CHEAPER", "false".to_owned()));
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        let head = s.head("app");
        let synced = s.wait_synced(&repo.id, &head).await;
        let note = synced.last_sync_note.unwrap_or_default();
        assert!(
            note.ends_with(&format!("; {python} of {python} Python files parsed")),
            "{}: {note}",
            s.label
        );
        assert_eq!(
            stored(&s, &repo, &head).await,
            full_parse(&s, &repo.id).await
        );
        assert_eq!(facts_rows(&s, &repo).await.len(), python, "{}", s.label);

        // An edit: one file parsed, its entry renamed, the edge kept.
        let graph = push(
            &s,
            &repo,
            vec![step(3, "step_three")],
            "edit one step",
            &format!("1 of {python} Python files"),
        )
        .await;
        assert!(names(&graph).contains(&"step_three"));
        assert!(!names(&graph).contains(&"step_3"));

        // Added, deleted and renamed files: only the new paths are parsed,
        // and the facts of the old paths go with them.
        let graph = push(
            &s,
            &repo,
            vec![
                step(STEPS, "step_new"),
                FileChange::delete("pkg/util/m007.py"),
                FileChange::rename("pkg/steps/s05.py", "pkg/steps/renamed.py"),
                FileChange::rename("pkg/util/m008.py", "pkg/util/moved.py"),
            ],
            "add, delete, rename",
            &format!("3 of {python} Python files"),
        )
        .await;
        assert!(names(&graph).contains(&"step_new"));
        let entry = graph
            .entries
            .iter()
            .find(|e| e.name == "step_5")
            .expect("step_5");
        assert_eq!(entry.file, "pkg/steps/renamed.py");
        let rows = facts_rows(&s, &repo).await;
        assert!(!rows.contains_key("pkg/util/m007.py"), "{}", s.label);
        assert!(!rows.contains_key("pkg/steps/s05.py"), "{}", s.label);
        assert!(rows.contains_key("pkg/util/moved.py"), "{}", s.label);
        assert_eq!(rows.len(), python, "{}: facts are kept per file", s.label);

        // spice.toml changes which files are read and how: the facts stay,
        // names are resolved again over all of them.
        let graph = push(
            &s,
            &repo,
            vec![FileChange::put(
                "spice.toml",
                "exclude = [\"pkg/steps/s01.py\"]\n",
            )],
            "exclude a step",
            &format!("0 of {} Python files", python - 1),
        )
        .await;
        assert!(!names(&graph).contains(&"step_1"));

        // Facts of another parser version are never read: everything is
        // extracted again once, and kept under this version.
        sqlx::query("UPDATE file_facts SET version = 'an-older-parser' WHERE repository_id = $1")
            .bind(&repo.id)
            .execute(s.db.pool())
            .await
            .expect("age the facts");
        push(
            &s,
            &repo,
            vec![FileChange::put("spice.toml", "")],
            "drop the configuration",
            &format!("{python} of {python} Python files"),
        )
        .await;
        let versions: std::collections::BTreeSet<String> =
            facts_rows(&s, &repo).await.into_values().collect();
        assert_eq!(versions.len(), 1, "{}: {versions:?}", s.label);
        assert!(!versions.contains("an-older-parser"), "{}", s.label);

        // Damaged facts are extracted again, not trusted and not fatal.
        sqlx::query(
            "UPDATE file_facts SET facts = $2 WHERE repository_id = $1 AND path = 'pkg/registry.py'",
        )
        .bind(&repo.id)
        .bind(vec![0xffu8; 16])
        .execute(s.db.pool())
        .await
        .expect("damage the facts");
        let graph = push(
            &s,
            &repo,
            vec![step(3, "step_3")],
            "edit back",
            &format!("2 of {python} Python files"),
        )
        .await;
        assert!(names(&graph).contains(&"step_3"));
        assert!(
            s.logs().contains("kept parser facts unreadable"),
            "{}",
            s.label
        );

        // A re-parse with no facts kept parses everything and gives the
        // same graph.
        let before = stored(&s, &repo, &s.head("app")).await;
        sqlx::query("DELETE FROM file_facts WHERE repository_id = $1")
            .bind(&repo.id)
            .execute(s.db.pool())
            .await
            .expect("forget the facts");
        let jobs = s.reparse(&repo.id).await;
        assert!(jobs
            .iter()
            .filter(|j| j.kind == JobKind::Reparse)
            .all(|j| j.status == JobStatus::Succeeded));
        let r = s.db.repository(&repo.id).await.unwrap().unwrap();
        let note = r.last_sync_note.unwrap_or_default();
        assert!(
            note.ends_with(&format!("; {python} of {python} Python files parsed")),
            "{}: {note}",
            s.label
        );
        assert_eq!(
            stored(&s, &repo, &s.head("app")).await,
            before,
            "{}",
            s.label
        );
        s.db.close().await;
    }
}
