//! Every registry's first view is laid out by the hub after a sync, before
//! anyone opens it: a visitor's first look runs no `dot`.

use std::time::Duration;

use ado_emulator::FileChange;
use spicehub_core::graph::DEFAULT_COLLAPSE_THRESHOLD;
use spicehub_core::graph::{get_or_compute_layout, views, Layouter, View};

use crate::common::TestDb;
use crate::sync::harness::*;

const REGISTRIES: &str = "from spice import Registry\n\n\
    pipelines = Registry(\"pipelines\")\nmodels = Registry(\"models\")\n";

/// `pipelines` is a chain (connected: its view is a `dot` run); `models`
/// is entries without edges in two modules, as real registries are.
fn files(steps: usize) -> Vec<FileChange> {
    let mut files = vec![
        FileChange::put("pkg/__init__.py", ""),
        FileChange::put("pkg/registry.py", REGISTRIES),
    ];
    for i in 0..steps {
        let parameter = if i == 0 {
            String::new()
        } else {
            format!("step_{}", i - 1)
        };
        files.push(FileChange::put(
            format!("pkg/steps/step_{i}.py"),
            format!(
                "from pkg.registry import pipelines\n\n\
                 @pipelines.register(\"step_{i}\")\ndef step_{i}({parameter}):\n    pass\n"
            ),
        ));
    }
    for module in ["backbones", "heads"] {
        let mut source = String::from("from pkg.registry import models\n\n");
        for i in 0..5 {
            source.push_str(&format!(
                "@models.register(\"{module}_{i}\")\nclass Model{module}{i}:\n    pass\n\n"
            ));
        }
        files.push(FileChange::put(format!("pkg/models/{module}.py"), source));
    }
    files
}

/// Waits until each registry of `commit` has its default view cached, then
/// opens each one as a visitor would and returns how many `dot` runs that
/// took.
async fn visitor_dot_runs(s: &Setup, repository: &str, commit: &str) -> u64 {
    let registries = s.db.repository_registries(repository).await.expect("list");
    assert_eq!(registries.len(), 2, "{registries:?}");
    let mut defaults = Vec::new();
    for summary in &registries {
        let id = summary.registry.id.clone();
        let graph =
            s.db.registry_graph(repository, commit, &id)
                .await
                .expect("graph")
                .expect("registry");
        let nodes = views::full(&graph).nodes.len();
        defaults.push((id, View::default_for(nodes, DEFAULT_COLLAPSE_THRESHOLD)));
    }
    let ready = wait_for(Duration::from_secs(60), || async {
        for (id, view) in &defaults {
            match s
                .db
                .cached_layout(repository, commit, id, &view.key())
                .await
            {
                Ok(Some(_)) => {}
                _ => return false,
            }
        }
        true
    })
    .await;
    assert!(ready, "{}: layouts not made ahead\n{}", s.label, s.logs());
    let visitor = Layouter::new();
    for (id, view) in &defaults {
        let layout = get_or_compute_layout(&s.db, &visitor, repository, commit, id, view)
            .await
            .expect("layout")
            .expect("registry");
        assert!(!layout.nodes.is_empty());
    }
    visitor.runs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registries_are_laid_out_after_each_sync() {
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(ORG, PROJECT, "app", vec![seed("first", files(4))])
        })
        .await;
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        let head = s.head("app");
        s.wait_synced(&repo.id, &head).await;
        assert_eq!(
            visitor_dot_runs(&s, &repo.id, &head).await,
            0,
            "{}",
            s.label
        );

        // A push: the new commit's layouts are made too.
        let mut push = files(6);
        push.retain(|f| matches!(f, FileChange::Put { path, .. } if path.contains("step_")));
        let next = s.commit("app", push, "two more steps");
        s.wait_synced(&repo.id, &next).await;
        assert_eq!(
            visitor_dot_runs(&s, &repo.id, &next).await,
            0,
            "{}",
            s.label
        );
        // Without the hub's work, opening the pipeline is a dot run: the
        // zero above is not the absence of anything to lay out.
        let fresh = Layouter::new();
        let graph =
            s.db.registry_graph(&repo.id, &next, "pkg.registry.pipelines")
                .await
                .expect("graph")
                .expect("registry");
        assert_eq!(graph.entries.len(), 6, "{}", s.label);
        fresh.layout(&views::full(&graph)).await.expect("laid out");
        assert_eq!(fresh.runs(), 1);
    }
}
