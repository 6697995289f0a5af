//! Graph storage (`db::graphs`) on SQLite and PostgreSQL, and layouts by
//! Graphviz (`graph`), including the layout cache.

use crate::common;

use std::time::{Duration, Instant};

use common::{fixture_graph, open_db, synthetic_registry, TestDb};
use spicehub_core::db::Db;
use spicehub_core::graph::views::{self, NodeKind};
use spicehub_core::graph::{get_or_compute_layout, Layout, LayoutError, Layouter, View};
use spicehub_parser::{to_json, Edge, Entry, Registry};

const FIXTURES: [&str; 3] = ["data_pipeline", "fixture_project", "model_zoo"];

async fn count(db: &Db, table: &str, repository_id: &str, commit_id: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE repository_id = $1 AND commit_id = $2"
    ))
    .bind(repository_id)
    .bind(commit_id)
    .fetch_one(db.pool())
    .await
    .expect("count")
    .try_get("n")
    .expect("n")
}

#[tokio::test]
async fn stored_graphs_load_identical() {
    for tdb in TestDb::all().await {
        let db = open_db(&tdb).await;
        for (i, name) in FIXTURES.iter().enumerate() {
            let graph = fixture_graph(name);
            assert!(!graph.entries.is_empty(), "{name} has entries");
            let commit = format!("c{i}");
            db.store_graph("repo", &commit, &graph)
                .await
                .expect("store");
            let loaded = db
                .load_graph("repo", &commit)
                .await
                .expect("load")
                .expect("stored");
            assert_eq!(to_json(&loaded), to_json(&graph), "{name} on {}", tdb.label);
            assert_eq!(loaded, graph);
        }
        // An unsorted graph keeps its order too; a big one crosses the
        // batch size of the inserts.
        let mut big = synthetic_registry(700, "registry");
        big.edges.reverse();
        db.store_graph("repo", "big", &big).await.expect("store");
        assert_eq!(
            db.load_graph("repo", "big").await.expect("load"),
            Some(big),
            "{}",
            tdb.label
        );
        assert_eq!(db.load_graph("repo", "nope").await.expect("load"), None);
        assert_eq!(db.load_graph("other", "c0").await.expect("load"), None);
        db.close().await;
    }
}

#[tokio::test]
async fn storing_again_replaces_the_snapshot() {
    for tdb in TestDb::all().await {
        let db = open_db(&tdb).await;
        let first = fixture_graph("fixture_project");
        let second = fixture_graph("data_pipeline");
        db.store_graph("repo", "c1", &first).await.expect("store");
        db.store_graph("repo", "c2", &first).await.expect("store");
        let layouter = Layouter::new();
        let registry = &first.registries[0].id;
        get_or_compute_layout(&db, &layouter, "repo", "c1", registry, &View::Full)
            .await
            .expect("layout")
            .expect("registry exists");
        assert_eq!(count(&db, "graph_layouts", "repo", "c1").await, 1);

        db.store_graph("repo", "c1", &second).await.expect("store");
        assert_eq!(
            db.load_graph("repo", "c1").await.expect("load"),
            Some(second.clone())
        );
        let expected = [
            ("graph_snapshots", 1),
            ("graph_registries", second.registries.len()),
            ("graph_entries", second.entries.len()),
            ("graph_edges", second.edges.len()),
            ("graph_diagnostics", second.diagnostics.len()),
            // The old layout described the old graph.
            ("graph_layouts", 0),
        ];
        for (table, n) in expected {
            assert_eq!(
                count(&db, table, "repo", "c1").await,
                i64::try_from(n).unwrap_or(-1),
                "{table} on {}",
                tdb.label
            );
        }
        // The other commit is untouched.
        assert_eq!(
            db.load_graph("repo", "c2").await.expect("load"),
            Some(first.clone())
        );
        db.close().await;
    }
}

#[tokio::test]
async fn a_failed_store_keeps_the_previous_snapshot() {
    for tdb in TestDb::all().await {
        let db = open_db(&tdb).await;
        let good = fixture_graph("fixture_project");
        db.store_graph("repo", "c1", &good).await.expect("store");
        // Renaming a column of the last table written makes the next store
        // fail after its deletes and its other inserts have run.
        sqlx::query("ALTER TABLE graph_diagnostics RENAME COLUMN message TO msg")
            .execute(db.pool())
            .await
            .expect("rename");
        let mut bad = fixture_graph("data_pipeline");
        bad.diagnostics.push(spicehub_parser::Diagnostic::new(
            "x.py",
            1,
            spicehub_parser::Severity::Info,
            "makes the last insert run",
        ));
        let result = db.store_graph("repo", "c1", &bad).await;
        assert!(result.is_err(), "store with a broken diagnostics table");
        for (table, n) in [
            ("graph_snapshots", 1),
            ("graph_registries", good.registries.len()),
            ("graph_entries", good.entries.len()),
            ("graph_edges", good.edges.len()),
            ("graph_diagnostics", good.diagnostics.len()),
        ] {
            assert_eq!(
                count(&db, table, "repo", "c1").await,
                i64::try_from(n).unwrap_or(-1),
                "{table} rolled back on {}",
                tdb.label
            );
        }
        db.close().await;
    }
}

#[tokio::test]
async fn registries_are_listed_with_counts() {
    for tdb in TestDb::all().await {
        let db = open_db(&tdb).await;
        let project = fixture_graph("fixture_project");
        let zoo = fixture_graph("model_zoo");
        // repo-a has an older commit with the zoo: only its latest counts.
        db.store_graph("repo-a", "old", &zoo).await.expect("store");
        sqlx::query("UPDATE graph_snapshots SET stored_at = stored_at - 100")
            .execute(db.pool())
            .await
            .expect("age");
        db.store_graph("repo-a", "new", &project)
            .await
            .expect("store");
        db.store_graph("repo-b", "head", &zoo).await.expect("store");

        let all = db.list_registries(None).await.expect("list");
        assert_eq!(all.len(), project.registries.len() + zoo.registries.len());
        assert!(all
            .iter()
            .filter(|r| r.repository_id == "repo-a")
            .all(|r| r.commit_id == "new"));
        for summary in &all {
            let graph = if summary.repository_id == "repo-a" {
                &project
            } else {
                &zoo
            };
            let id = &summary.registry.id;
            let entries = graph.entries.iter().filter(|e| &e.registry == id).count();
            assert_eq!(summary.entry_count, i64::try_from(entries).unwrap_or(-1));
            let files: Vec<&str> = std::iter::once(summary.registry.file.as_str())
                .chain(
                    graph
                        .entries
                        .iter()
                        .filter(|e| &e.registry == id)
                        .map(|e| e.file.as_str()),
                )
                .collect();
            let diagnostics = graph
                .diagnostics
                .iter()
                .filter(|d| files.contains(&d.file.as_str()))
                .count();
            assert_eq!(
                summary.diagnostics_count,
                i64::try_from(diagnostics).unwrap_or(-1),
                "{id} on {}",
                tdb.label
            );
        }
        assert!(
            all.iter().any(|r| r.diagnostics_count > 0),
            "the fixtures have diagnostics"
        );

        // Substring filter, case-insensitive, on id, label or repository.
        let target = &project.registries[0];
        let needle = target.label.to_uppercase();
        let found = db.list_registries(Some(&needle)).await.expect("filter");
        assert!(found.iter().any(|r| r.registry == *target));
        assert!(found.iter().all(|r| r
            .registry
            .id
            .to_lowercase()
            .contains(&target.label.to_lowercase())
            || r.registry
                .label
                .to_lowercase()
                .contains(&target.label.to_lowercase())
            || r.repository_id.contains(&target.label.to_lowercase())));
        let by_repo = db.list_registries(Some("REPO-B")).await.expect("filter");
        assert_eq!(by_repo.len(), zoo.registries.len());
        assert!(db
            .list_registries(Some("no such registry"))
            .await
            .expect("filter")
            .is_empty());
        // LIKE wildcards in the filter are literal.
        assert!(db
            .list_registries(Some("%"))
            .await
            .expect("filter")
            .is_empty());

        // One registry's entries and edges.
        let rg = db
            .registry_graph("repo-a", "new", &target.id)
            .await
            .expect("registry")
            .expect("exists");
        assert_eq!(rg.registry, *target);
        let entries: Vec<&Entry> = project
            .entries
            .iter()
            .filter(|e| e.registry == target.id)
            .collect();
        assert_eq!(rg.entries.iter().collect::<Vec<_>>(), entries);
        let edges: Vec<&Edge> = project
            .edges
            .iter()
            .filter(|e| e.registry == target.id)
            .collect();
        assert_eq!(rg.edges.iter().collect::<Vec<_>>(), edges);
        assert!(db
            .registry_graph("repo-a", "new", "nope")
            .await
            .expect("query")
            .is_none());

        assert_eq!(
            db.snapshot_diagnostics("repo-a", "new")
                .await
                .expect("diagnostics"),
            project.diagnostics
        );
        db.close().await;
    }
}

fn assert_inside(layout: &Layout) {
    for n in &layout.nodes {
        assert!(
            n.x >= 0.0 && n.y >= 0.0 && n.x + n.w <= layout.width && n.y + n.h <= layout.height,
            "{n:?} outside {}x{}",
            layout.width,
            layout.height
        );
        assert!(n.w > 0.0 && n.h > 0.0);
    }
    for e in &layout.edges {
        assert!(!e.points.is_empty(), "{e:?}");
        for (x, y) in e.points.iter().chain(e.arrow.iter()) {
            assert!(
                (0.0..=layout.width).contains(x) && (0.0..=layout.height).contains(y),
                "{e:?}"
            );
        }
    }
}

#[tokio::test]
async fn small_registry_is_laid_out() {
    let graph = fixture_graph("fixture_project");
    let registry = graph
        .registries
        .iter()
        .max_by_key(|r| graph.edges.iter().filter(|e| e.registry == r.id).count())
        .expect("a registry");
    let rg = spicehub_core::db::graphs::RegistryGraph {
        registry: registry.clone(),
        entries: graph
            .entries
            .iter()
            .filter(|e| e.registry == registry.id)
            .cloned()
            .collect(),
        edges: graph
            .edges
            .iter()
            .filter(|e| e.registry == registry.id)
            .cloned()
            .collect(),
    };
    assert!(!rg.edges.is_empty(), "the fixture has edges");
    let full = views::full(&rg);
    let layouter = Layouter::new();
    let layout = layouter.layout(&full).await.expect("layout");
    let mut ids: Vec<&str> = layout.nodes.iter().map(|n| n.id.as_str()).collect();
    ids.sort();
    let mut expected: Vec<&str> = full.nodes.iter().map(|n| n.id.as_str()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(layout.edges.len(), rg.edges.len());
    assert_inside(&layout);
    assert!(layout.edges.iter().all(|e| e.points.len() >= 2));
    // Left to right: a dependency is placed left of its dependent.
    let x = |id: &str| layout.nodes.iter().find(|n| n.id == id).map(|n| n.x);
    for e in layout.edges.iter().filter(|e| e.from != e.to) {
        assert!(x(&e.from) < x(&e.to), "{} -> {}", e.from, e.to);
    }
    let svg = spicehub_core::graph::svg::render(&layout);
    assert_eq!(svg.matches("<rect").count(), layout.nodes.len());
    assert_eq!(
        svg.matches("<path class=\"edge").count(),
        layout.edges.len()
    );
}

#[tokio::test]
async fn collapsed_and_focus_views_are_laid_out() {
    let graph = synthetic_registry(600, "registry");
    let rg = spicehub_core::db::graphs::RegistryGraph {
        registry: graph.registries[0].clone(),
        entries: graph.entries.clone(),
        edges: graph.edges.clone(),
    };
    assert_eq!(
        View::default_for(
            views::full(&rg).nodes.len(),
            views::DEFAULT_COLLAPSE_THRESHOLD
        ),
        View::Collapsed
    );
    let layouter = Layouter::new();
    let collapsed = views::build(&rg, &View::Collapsed).expect("view");
    assert_eq!(collapsed.nodes.len(), 12, "600 entries in modules of 50");
    assert!(collapsed
        .nodes
        .iter()
        .all(|n| n.kind == NodeKind::Module && n.count == 50));
    let layout = layouter.layout(&collapsed).await.expect("layout");
    assert_eq!(layout.nodes.len(), 12);
    assert_eq!(layout.edges.len(), collapsed.edges.len());
    assert!(layout.nodes.iter().any(|n| n.label == "big.m0 (50)"));
    assert_inside(&layout);

    let focus = views::build(
        &rg,
        &View::Focus {
            node: "entry_300".into(),
            k: 1,
        },
    )
    .expect("view");
    let layout = layouter.layout(&focus).await.expect("layout");
    assert!(layout.nodes.iter().any(|n| n.id == "entry_300"));
    assert!(layout.nodes.len() < 20, "{}", layout.nodes.len());
    assert!(layout
        .edges
        .iter()
        .all(|e| e.from == "entry_300" || e.to == "entry_300"));
    assert_inside(&layout);
}

/// Zombie children of this process whose command is `dot`.
fn dot_zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = tail.split_whitespace().collect();
        if head.ends_with("(dot")
            && fields.first() == Some(&"Z")
            && fields.get(1) == Some(&me.as_str())
        {
            found.push(stat);
        }
    }
    found
}

#[tokio::test]
async fn a_slow_layout_times_out_and_dot_is_reaped() {
    let graph = synthetic_registry(3_000, "registry");
    let rg = spicehub_core::db::graphs::RegistryGraph {
        registry: graph.registries[0].clone(),
        entries: graph.entries,
        edges: graph.edges,
    };
    let layouter = Layouter::new().with_timeout(Duration::from_millis(1));
    let started = Instant::now();
    let result = layouter.layout(&views::full(&rg)).await;
    assert!(matches!(result, Err(LayoutError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(layouter.runs(), 1);
    // Other tests run dot concurrently and may hold a zombie for an
    // instant; ours must not stay.
    let mut zombies = dot_zombies();
    for _ in 0..20 {
        if zombies.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        zombies = dot_zombies();
    }
    assert!(zombies.is_empty(), "{zombies:?}");
}

#[tokio::test]
async fn missing_graphviz_is_reported() {
    let layouter = Layouter::new().with_dot("/nonexistent/graphviz/dot");
    // Connected entries: a view without edges is packed without dot.
    let graph = synthetic_registry(20, "registry");
    let view = views::full(&spicehub_core::db::graphs::RegistryGraph {
        registry: Registry {
            id: "r".into(),
            label: "r".into(),
            file: "r.py".into(),
            line: 1,
        },
        entries: graph.entries,
        edges: graph.edges,
    });
    assert!(!view.edges.is_empty());
    assert!(matches!(
        layouter.layout(&view).await,
        Err(LayoutError::NotInstalled(_))
    ));
    // dot itself failing (a syntax error) carries its stderr.
    match Layouter::new().run_dot("digraph { a -> }").await {
        Err(LayoutError::Failed { stderr }) => assert!(stderr.contains("syntax"), "{stderr}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn layouts_are_cached_per_view() {
    for tdb in TestDb::all().await {
        let db = open_db(&tdb).await;
        let graph = fixture_graph("fixture_project");
        db.store_graph("repo", "c1", &graph).await.expect("store");
        let registry = &graph.registries[0].id;
        let layouter = Layouter::new();
        let first = get_or_compute_layout(&db, &layouter, "repo", "c1", registry, &View::Full)
            .await
            .expect("layout")
            .expect("exists");
        assert_eq!(layouter.runs(), 1);
        let second = get_or_compute_layout(&db, &layouter, "repo", "c1", registry, &View::Full)
            .await
            .expect("layout")
            .expect("exists");
        assert_eq!(layouter.runs(), 1, "served from the cache on {}", tdb.label);
        assert_eq!(first, second);
        // Another view is another entry.
        get_or_compute_layout(&db, &layouter, "repo", "c1", registry, &View::Collapsed)
            .await
            .expect("layout")
            .expect("exists");
        assert_eq!(layouter.runs(), 2);
        // No such registry or snapshot: nothing to lay out, dot not run.
        for (commit, registry) in [("c1", "nope"), ("c9", registry.as_str())] {
            assert!(
                get_or_compute_layout(&db, &layouter, "repo", commit, registry, &View::Full)
                    .await
                    .expect("query")
                    .is_none()
            );
        }
        assert_eq!(layouter.runs(), 2);
        db.close().await;
    }
}

/// The view keys cached for one registry of a snapshot.
async fn cached_keys(db: &Db, commit_id: &str, registry_id: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::query(
        "SELECT view_key FROM graph_layouts WHERE repository_id = 'repo' AND commit_id = $1 \
         AND registry_id = $2 ORDER BY view_key",
    )
    .bind(commit_id)
    .bind(registry_id)
    .fetch_all(db.pool())
    .await
    .expect("keys")
    .iter()
    .map(|r| r.try_get("view_key").expect("view_key"))
    .collect()
}

#[tokio::test]
async fn expanding_unknown_groups_runs_no_dot_and_caches_nothing_new() {
    for tdb in TestDb::all().await {
        let db = open_db(&tdb).await;
        db.store_graph("repo", "c1", &synthetic_registry(600, "registry"))
            .await
            .expect("store");
        let layouter = Layouter::new();
        let lay = |view: View| {
            let (db, layouter) = (&db, &layouter);
            async move {
                get_or_compute_layout(db, layouter, "repo", "c1", "big.registry", &view)
                    .await
                    .expect("layout")
                    .expect("registry exists")
            }
        };
        let collapsed = lay(View::Collapsed).await;
        assert_eq!(layouter.runs(), 1);
        for i in 0..5 {
            let junk = lay(View::expanded([format!("nope{i}"), format!("big.m0.{i}")])).await;
            assert_eq!(junk, collapsed, "{}", tdb.label);
        }
        assert_eq!(layouter.runs(), 1, "no dot run for junk on {}", tdb.label);
        assert_eq!(
            cached_keys(&db, "c1", "big.registry").await,
            [View::Collapsed.key()]
        );
        // Known groups among unknown ones: cached as the known ones alone.
        let one = lay(View::expanded(["big.m0".to_owned(), "nope".to_owned()])).await;
        assert_eq!(layouter.runs(), 2);
        assert_eq!(lay(View::expanded(["big.m0".to_owned()])).await, one);
        assert_eq!(layouter.runs(), 2, "the same view on {}", tdb.label);
        assert_eq!(
            cached_keys(&db, "c1", "big.registry").await,
            [
                View::Collapsed.key(),
                View::expanded(["big.m0".to_owned()]).key()
            ]
        );
        db.close().await;
    }
}

#[tokio::test]
async fn the_layout_cache_of_a_registry_is_capped() {
    use spicehub_core::graph::MAX_CACHED_LAYOUTS;
    for tdb in TestDb::all().await {
        let db = open_db(&tdb).await;
        db.store_graph("repo", "c1", &synthetic_registry(600, "registry"))
            .await
            .expect("store");
        let layouter = Layouter::new();
        let lay = |view: View| {
            let (db, layouter) = (&db, &layouter);
            async move {
                get_or_compute_layout(db, layouter, "repo", "c1", "big.registry", &view)
                    .await
                    .expect("layout")
                    .expect("registry exists")
            }
        };
        lay(View::Collapsed).await;
        // Many small views, each one a dot run: more than the cache keeps.
        let focus = |i: usize| View::Focus {
            node: format!("entry_{i}"),
            k: 1,
        };
        let n = MAX_CACHED_LAYOUTS + 8;
        for i in 0..n {
            lay(focus(i)).await;
            let keys = cached_keys(&db, "c1", "big.registry").await;
            assert!(
                keys.len() <= MAX_CACHED_LAYOUTS,
                "{} layouts cached on {}",
                keys.len(),
                tdb.label
            );
        }
        assert_eq!(layouter.runs(), u64::try_from(n + 1).unwrap_or(0));
        let keys = cached_keys(&db, "c1", "big.registry").await;
        assert_eq!(keys.len(), MAX_CACHED_LAYOUTS, "{}", tdb.label);
        // The view a big registry opens with stays, and so does the newest.
        assert!(keys.contains(&View::Collapsed.key()), "{}", tdb.label);
        assert!(keys.contains(&focus(n - 1).key()), "{}", tdb.label);
        // Another snapshot's layouts are not counted against this one.
        db.store_graph("repo", "c2", &synthetic_registry(600, "registry"))
            .await
            .expect("store");
        get_or_compute_layout(&db, &layouter, "repo", "c2", "big.registry", &focus(1))
            .await
            .expect("layout");
        assert_eq!(cached_keys(&db, "c2", "big.registry").await.len(), 1);
        assert_eq!(
            cached_keys(&db, "c1", "big.registry").await.len(),
            MAX_CACHED_LAYOUTS
        );
        db.close().await;
    }
}
