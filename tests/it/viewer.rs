//! The graph viewer over HTTP against the real binary, on SQLite and
//! PostgreSQL: the server-rendered HTML of the Registries tab, a
//! repository's page and a registry's graph (full, collapsed, expanded,
//! focus, timed out), and the server functions' own sign-in check.

use crate::common;

use common::*;
use reqwest::StatusCode;
use spicehub_core::db::repositories::NewRepository;
use spicehub_core::db::Db;

const VIEWER: &str = "viewer@example.com";
const VIEWER_PW: &str = "viewer-password-123";

const SHOP: &str = "repo-shop";
const PIPELINES: &str = "shopflow.registry.pipelines";

/// A hub with a signed-in viewer and the data_pipeline fixture stored as
/// `repo-shop` (no repositories row: the latest snapshot is shown).
struct Setup {
    hub: Hub,
    client: reqwest::Client,
    db: Db,
    _dir: tempfile::TempDir,
}

async fn setup(tdb: &TestDb, env: Vec<(&str, String)>) -> Setup {
    let (dir_guard, dir) = data_dir();
    let out = create_user(tdb, &dir, VIEWER, "viewer", VIEWER_PW);
    assert!(
        out.status.success(),
        "admin create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = open_db(tdb).await;
    db.store_graph(SHOP, "c1", &fixture_graph("data_pipeline"))
        .await
        .expect("store");
    let hub = Hub::start_with(HubOptions {
        db: tdb,
        data_dir: &dir,
        env,
    });
    let client = client();
    let signed = sign_in(&client, &hub, VIEWER, VIEWER_PW).await;
    assert!(signed.status().is_redirection(), "{}", signed.status());
    Setup {
        hub,
        client,
        db,
        _dir: dir_guard,
    }
}

impl Setup {
    async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.hub.url))
            .send()
            .await
            .expect("GET");
        let status = r.status();
        (status, r.text().await.expect("body"))
    }

    async fn ok(&self, path: &str) -> String {
        let (status, html) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}:\n{html}");
        html
    }
}

fn node(name: &str) -> String {
    format!("data-node=\"{name}\"")
}

#[tokio::test]
async fn registries_tab_lists_and_filters() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        s.db.store_graph("repo-zoo", "z1", &fixture_graph("model_zoo"))
            .await
            .expect("store");

        let html = s.ok("/registries").await;
        // A plain GET form with a labelled input: it works before hydration.
        assert!(html.contains("method=\"get\""), "{}", tdb.label);
        assert!(
            html.contains("<label for=\"registry-filter\">Search registries and entries</label>")
        );
        assert!(html.contains("name=\"q\""));
        for id in [
            PIPELINES,
            "shopflow.registry.sources",
            "zoo.registry.MODELS",
        ] {
            assert!(html.contains(id), "{id} listed on {}", tdb.label);
        }
        assert!(html.contains("href=\"/registries/repo-shop/shopflow.registry.pipelines\""));
        assert!(
            html.contains("href=\"/registries/repo-shop\""),
            "repository link"
        );
        assert!(html.contains("5 registries"), "{html}");

        let html = s.ok("/registries?q=ZOO").await;
        assert!(html.contains("zoo.registry.MODELS"));
        assert!(
            !html.contains("href=\"/registries/repo-shop/"),
            "filtered out"
        );
        assert!(html.contains("value=\"ZOO\""), "the box keeps the filter");

        // The same box finds entries by name in every registry, with where
        // they are defined and a link that opens the registry on them.
        let html = s.ok("/registries?q=resnet").await;
        assert!(
            html.contains("data-entry=\"ResNet\""),
            "{}: {html}",
            tdb.label
        );
        assert!(
            html.contains("zoo/models/backbones/resnet.py:"),
            "{}",
            tdb.label
        );
        assert!(
            html.contains("?node=ResNet\""),
            "{}: the entry opens its registry selected",
            tdb.label
        );
        assert!(!html.contains("data-entry=\"load_users\""), "{}", tdb.label);

        let html = s.ok("/registries?q=no-such-thing").await;
        assert!(
            html.contains("No registry or entry matches"),
            "{}",
            tdb.label
        );

        // The server function checks the caller itself.
        let anonymous = client()
            .post(format!("{}/api/registries", s.hub.url))
            .header("Origin", &s.hub.url)
            .form(&[("q", "")])
            .send()
            .await
            .expect("POST");
        assert_eq!(
            anonymous.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            tdb.label
        );
        assert!(!anonymous.text().await.expect("body").contains(PIPELINES));
        let anonymous = client()
            .post(format!("{}/api/registry_view", s.hub.url))
            .header("Origin", &s.hub.url)
            .json(&serde_json::json!({
                "repository": SHOP, "registry": PIPELINES, "request": {"mode": null, "focus": null, "k": null, "expand": []}
            }))
            .send()
            .await
            .expect("POST");
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        s.db.close().await;
    }
}

#[tokio::test]
async fn repository_page_lists_registries_and_diagnostics() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        let html = s.ok("/registries/repo-shop").await;
        assert!(
            html.contains("<h2 id=\"registries-title\">Registries</h2>"),
            "{}",
            tdb.label
        );
        assert!(html.contains("href=\"/registries/repo-shop/shopflow.registry.pipelines\""));
        assert!(html.contains("<h2 id=\"diagnostics-title\">Diagnostics</h2>"));
        assert!(html.contains("src/shopflow/legacy/broken.py"));
        assert!(html.contains("syntax error: Simple statements must be separated"));
        assert!(html.contains("dangling edge in `shopflow.registry.pipelines`"));
        assert!(html.contains(">12<"), "diagnostic line");

        let (status, html) = s.page("/registries/no-such-repo").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{}", tdb.label);
        assert!(html.contains("There is no repository"));
        s.db.close().await;
    }
}

#[tokio::test]
async fn registry_page_draws_the_graph_server_side() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        let path = format!("/registries/{SHOP}/{PIPELINES}");
        let html = s.ok(&path).await;
        assert!(html.contains("<svg"), "{}", tdb.label);
        assert!(html.contains("class=\"graph"));
        // Every entry, the dangling source and the other registry's entry.
        for name in [
            "daily_revenue",
            "debug_dump",
            "enrich_orders",
            "fetch_orders",
            "fetch_raw",
            "legacy_export",
            "load_users",
            "weekly_digest",
            "send_email",
            "shopflow.registry.sources:crm.users.v1",
        ] {
            assert!(html.contains(&node(name)), "{name} drawn on {}", tdb.label);
        }
        // Nodes are links with a name for screen readers.
        assert!(html.contains("aria-label=\"load_users: entry\""));
        assert!(html.contains("aria-label=\"send_email: missing dependency\""));
        assert!(html.contains(&format!("href=\"{path}?node=load_users\"")));
        // The dangling edge is dashed by the style sheet, through its class
        // (one rule, not an attribute on each of thousands of edges); the
        // legend's sample by its own attribute.
        assert!(html.contains("class=\"edge dangling"), "dangling class");
        assert_eq!(
            html.matches("stroke-dasharray=\"5 4\"").count(),
            1,
            "the legend's sample"
        );
        assert!(include_str!("../../style/main.css").contains(
            "svg.graph .edge.dangling { marker-end: url(#arrow-dangling); stroke-dasharray: 5 4; }"
        ));
        assert!(html.contains("class=\"edge explicit"));
        assert!(html.contains("class=\"edge parameter"));
        // The legend names the edge kinds.
        assert!(html.contains("<h2 id=\"legend-title\">Legend</h2>"));
        assert!(html.contains("Dependency by parameter name"));
        assert!(html.contains("Dangling: the dependency names no entry"));
        // Small registries are drawn whole, with labelled search and focus.
        assert!(html.contains("Whole registry"));
        assert!(html.contains("<label for=\"node-search\">Find a node</label>"));
        assert!(html.contains("<label for=\"focus-node\">Focus on</label>"));

        // The layout is cached per (commit, registry, view).
        use sqlx::Row;
        let cached: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM graph_layouts WHERE repository_id = $1 AND registry_id = $2",
        )
        .bind(SHOP)
        .bind(PIPELINES)
        .fetch_one(s.db.pool())
        .await
        .expect("count")
        .try_get("n")
        .expect("n");
        assert_eq!(cached, 1, "{}", tdb.label);

        // A selected node: details and the highlight, before any script runs.
        let html = s.ok(&format!("{path}?node=load_users")).await;
        assert!(html.contains("Load users from the CRM."), "{}", tdb.label);
        assert!(html.contains("src/shopflow/steps/ingest.py:17"));
        assert!(html.contains("shopflow.steps.ingest.load_users"));
        assert!(html.contains("Depends on (upstream)"));
        assert!(html.contains("class=\"node entry selected\""));
        assert!(
            html.contains("class=\"node entry upstream\""),
            "fetch_raw is upstream"
        );
        assert!(
            html.contains("class=\"node entry downstream\""),
            "enrich_orders is downstream"
        );
        // Unrelated entries carry no state: the drawing's `lit` dims them.
        let svg_class = html
            .split("<svg ")
            .filter_map(|rest| rest.split_once('>'))
            .filter_map(|(attrs, _)| attrs.split_once(" class=\""))
            .filter_map(|(_, class)| class.split('"').next())
            .find(|class| class.starts_with("graph"));
        assert!(
            svg_class.is_some_and(|c| c.split(' ').any(|c| c == "lit")),
            "{svg_class:?}"
        );
        let class_of = |node: &str| {
            let at = html.find(&format!("data-node=\"{node}\""))?;
            let start = html[..at].rfind("<g class=\"")? + "<g class=\"".len();
            html[start..].split('"').next().map(str::to_owned)
        };
        let unrelated = class_of("legacy_export").unwrap_or_default();
        assert!(unrelated.starts_with("node entry"), "{unrelated}");
        assert!(
            !["selected", "upstream", "downstream"]
                .iter()
                .any(|state| unrelated.split(' ').any(|c| c == *state)),
            "legacy_export is unrelated: {unrelated}"
        );
        assert!(class_of("fetch_raw").is_some_and(|c| c.ends_with(" upstream")));
        assert!(html.contains(&format!(
            "href=\"{path}?focus=load_users&amp;k=2&amp;node=load_users\""
        )));

        // Search, as a plain GET form.
        let html = s.ok(&format!("{path}?find=fetch")).await;
        assert!(
            html.contains(&format!("href=\"{path}?node=fetch_orders\"")),
            "{}",
            tdb.label
        );
        assert!(html.contains(&format!("href=\"{path}?node=fetch_raw\"")));

        let (status, html) = s
            .page(&format!("/registries/{SHOP}/no.such.registry"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{}", tdb.label);
        assert!(html.contains("has no registry"));
        s.db.close().await;
    }
}

#[tokio::test]
async fn focus_view_draws_a_neighbourhood() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        let path = format!("/registries/{SHOP}/{PIPELINES}");
        let html = s.ok(&format!("{path}?focus=load_users&k=1")).await;
        assert!(html.contains("Around load_users: 1 hop"), "{}", tdb.label);
        for name in [
            "load_users",
            "fetch_raw",
            "enrich_orders",
            "shopflow.registry.sources:crm.users.v1",
        ] {
            assert!(
                html.contains(&node(name)),
                "{name} in focus on {}",
                tdb.label
            );
        }
        for name in [
            "daily_revenue",
            "weekly_digest",
            "legacy_export",
            "fetch_orders",
        ] {
            assert!(
                !html.contains(&node(name)),
                "{name} not in focus on {}",
                tdb.label
            );
        }
        // k is adjustable.
        assert!(html.contains(&format!(
            "href=\"{path}?focus=load_users&amp;k=2&amp;node=load_users\""
        )));
        let html = s.ok(&format!("{path}?focus=load_users&k=2")).await;
        assert!(html.contains(&node("daily_revenue")), "two hops down");
        assert!(!html.contains(&node("weekly_digest")), "three hops down");

        let html = s.ok(&format!("{path}?focus=nope")).await;
        assert!(html.contains("There is no node"), "{}", tdb.label);
        s.db.close().await;
    }
}

#[tokio::test]
async fn large_registries_are_collapsed_by_module_and_expand() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        s.db.store_graph("repo-big", "b1", &synthetic_registry(600, "big"))
            .await
            .expect("store");
        let path = "/registries/repo-big/big.registry";
        let html = s.ok(path).await;
        assert!(html.contains("so it is shown by module"), "{}", tdb.label);
        assert!(html.contains("big.m0 (50)"));
        assert!(html.contains("big.m11 (50)"));
        assert!(html.contains("aria-label=\"big.m3: module with 50 entries\""));
        assert!(
            !html.contains(&node("entry_5")),
            "entries are inside their modules"
        );
        assert!(html.contains(&format!("href=\"{path}?group=big.m0\"")));

        // A module's details offer to expand it; expanded, its entries are drawn.
        let html = s.ok(&format!("{path}?group=big.m0")).await;
        assert!(html.contains("Expand this module"), "{}", tdb.label);
        assert!(html.contains(&format!("href=\"{path}?expand=big.m0&amp;group=big.m0\"")));
        let html = s.ok(&format!("{path}?expand=big.m0")).await;
        assert!(html.contains(&node("entry_5")), "{}", tdb.label);
        assert!(!html.contains(&node("entry_55")), "big.m1 stays closed");
        assert!(html.contains("big.m1 (50)"));

        // A node hidden in a module can still be searched and focused.
        let html = s.ok(&format!("{path}?find=entry_123")).await;
        assert!(
            html.contains(&format!("href=\"{path}?node=entry_123\"")),
            "{}",
            tdb.label
        );
        let html = s.ok(&format!("{path}?node=entry_123")).await;
        assert!(html.contains("Drawn inside the module box big.m2"));
        let html = s.ok(&format!("{path}?focus=entry_123&k=1")).await;
        assert!(html.contains(&node("entry_123")));
        assert!(html.contains(&node("entry_118")), "a direct dependency");
        assert!(!html.contains(&node("entry_300")));
        s.db.close().await;
    }
}

#[tokio::test]
async fn a_layout_timeout_is_said_and_the_focus_view_offered() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![("SPICEHUB_LAYOUT_TIMEOUT_MS", "1".to_owned())]).await;
        let path = format!("/registries/{SHOP}/{PIPELINES}");
        let html = s.ok(&path).await;
        assert!(
            html.contains("This view took too long to lay out"),
            "{}",
            tdb.label
        );
        assert!(html.contains("did not finish within 1 ms"));
        assert!(html.contains("Focus on one of the best-connected entries"));
        assert!(html.contains(&format!(
            "href=\"{path}?focus=enrich_orders&amp;k=2&amp;node=enrich_orders\""
        )));
        assert!(!html.contains("<svg class=\"graph"), "no drawing");
        s.db.close().await;
    }
}

#[tokio::test]
async fn the_repositorys_synced_commit_is_shown_with_links_to_azure_devops() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        let guid = "6f1c3d7e-0000-4000-8000-000000000001";
        let old = "1111111111111111111111111111111111111111";
        let new = "2222222222222222222222222222222222222222";
        sqlx::query(
            "INSERT INTO providers (id, display_name, kind, tenant_id, client_id, credential_kind, \
             credential_sealed, webhook_username, webhook_password_verifier, created_at, updated_at) \
             VALUES ('p1', 'Contoso', 'azure_devops', 't', 'c', 'client_secret', 'x', 'hook', 'v', 0, 0)",
        )
        .execute(s.db.pool())
        .await
        .expect("provider");
        sqlx::query(
            "INSERT INTO organizations (id, provider_id, name, created_at) VALUES ('o1', 'p1', 'contoso', 0)",
        )
        .execute(s.db.pool())
        .await
        .expect("organization");
        s.db.create_repository(&NewRepository {
            id: guid,
            organization_id: "o1",
            project_id: "proj",
            project_name: "Shop",
            name: "shopflow",
            tracked_branch: "main",
            web_url: Some("https://dev.azure.com/contoso/Shop/_git/shopflow"),
        })
        .await
        .expect("repository");
        s.db.store_graph(guid, old, &fixture_graph("data_pipeline"))
            .await
            .expect("store");
        s.db.store_graph(guid, new, &fixture_graph("model_zoo"))
            .await
            .expect("store");

        // Not synced yet: nothing of it is visible, though graphs are stored.
        let html = s.ok("/registries?q=Shop/shopflow").await;
        assert!(
            html.contains("No registry or entry matches"),
            "{}",
            tdb.label
        );

        // The synced commit is shown, not the snapshot stored last.
        switch_to(&s.db, guid, old, &fixture_graph("data_pipeline")).await;
        let html = s.ok("/registries?q=shop/SHOPFLOW").await;
        assert!(html.contains("Shop/shopflow"), "{}", tdb.label);
        assert!(html.contains(&format!("href=\"/registries/{guid}/{PIPELINES}\"")));
        assert!(!html.contains("zoo.registry.MODELS"));
        let path = format!("/registries/{guid}/{PIPELINES}");
        let html = s.ok(&format!("{path}?node=load_users")).await;
        assert!(html.contains(&format!(
            "href=\"https://dev.azure.com/contoso/Shop/_git/shopflow?path=/src/shopflow/steps/ingest.py&amp;line=17&amp;version=GC{old}\""
        )), "{}", tdb.label);
        let html = s.ok(&format!("/registries/{guid}")).await;
        assert!(html.contains("Shop/shopflow"));
        assert!(html.contains(&format!(
            "href=\"https://dev.azure.com/contoso/Shop/_git/shopflow?path=/src/shopflow/legacy/broken.py&amp;line=12&amp;version=GC{old}\""
        )));

        // The sync engine moves the commit: the viewer follows.
        switch_to(&s.db, guid, new, &fixture_graph("model_zoo")).await;
        let html = s.ok("/registries?q=shopflow").await;
        assert!(
            html.contains(&format!("href=\"/registries/{guid}/zoo.registry.MODELS\"")),
            "{}",
            tdb.label
        );
        assert!(!html.contains(&format!("href=\"/registries/{guid}/{PIPELINES}\"")));
        let (status, _) = s.page(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "gone at the new commit");
        s.db.close().await;
    }
}

/// What the sync engine does at the end of a sync: a snapshot of `commit`
/// becomes visible with its graph, in one transaction.
async fn switch_to(db: &Db, repository: &str, commit: &str, graph: &spicehub_parser::Graph) {
    let snapshot = db
        .begin_snapshot(repository, commit, None)
        .await
        .expect("snapshot");
    db.switch_snapshot(
        repository,
        &spicehub_core::db::snapshots::SwitchInfo {
            snapshot_id: &snapshot,
            commit_id: commit,
            graph,
            note: None,
            commit: None,
        },
    )
    .await
    .expect("switch");
}

/// The view keys of the layouts cached for a registry.
async fn cached_views(db: &Db, repository: &str, registry: &str) -> Vec<String> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT view_key FROM graph_layouts WHERE repository_id = $1 AND registry_id = $2 \
         ORDER BY view_key",
    )
    .bind(repository)
    .bind(registry)
    .fetch_all(db.pool())
    .await
    .expect("cached layouts");
    rows.iter()
        .map(|r| r.try_get("view_key").expect("view_key"))
        .collect()
}

#[tokio::test]
async fn modules_that_do_not_exist_are_neither_expanded_nor_cached() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        s.db.store_graph("repo-big", "b1", &synthetic_registry(600, "big"))
            .await
            .expect("store");
        let path = "/registries/repo-big/big.registry";
        s.ok(path).await;
        let collapsed = cached_views(&s.db, "repo-big", "big.registry").await;
        assert_eq!(collapsed.len(), 1, "{collapsed:?} on {}", tdb.label);

        // Made-up module names: the collapsed view, from the cache, however
        // many different names are asked for.
        for i in 0..5 {
            let html = s
                .ok(&format!("{path}?expand=nope{i}&expand=big.m0.x{i}"))
                .await;
            assert!(html.contains("big.m0 (50)"), "{}", tdb.label);
            assert!(!html.contains(&node("entry_5")));
        }
        assert_eq!(
            cached_views(&s.db, "repo-big", "big.registry").await,
            collapsed,
            "no layout for made-up modules on {}",
            tdb.label
        );

        // A real module among made-up ones: only it is opened.
        let html = s.ok(&format!("{path}?expand=nope&expand=big.m0")).await;
        assert!(html.contains(&node("entry_5")), "{}", tdb.label);
        s.ok(&format!("{path}?expand=big.m0")).await;
        let views = cached_views(&s.db, "repo-big", "big.registry").await;
        assert_eq!(views.len(), 2, "{views:?} on {}", tdb.label);
        assert!(views.iter().any(|k| k.ends_with(":expanded:[\"big.m0\"]")));
        s.db.close().await;
    }
}

#[tokio::test]
async fn dot_sees_none_of_the_hubs_secrets() {
    for tdb in TestDb::all().await {
        // A `dot` first on the hub's PATH that writes down the environment
        // it was given, then runs the real one.
        let bin = tempfile::tempdir().expect("temp dir");
        let real = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("dot"))
            .find(|p| p.is_file())
            .expect("Graphviz installed for the tests");
        let dump = bin.path().join("env.txt");
        let script = bin.path().join("dot");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nenv >> '{}'\nexec '{}' \"$@\"\n",
                dump.display(),
                real.display()
            ),
        )
        .expect("write fake dot");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = std::env::join_paths(std::iter::once(bin.path().to_owned()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH");

        let secrets = [
            (
                "SPICEHUB_SECRET_KEY",
                "q0hSgm3Qd8QqZlqJ8ZGrLz6jW2y1UvQ4bq7qXcS+0nE=",
            ),
            (
                "SPICEHUB_HUB_CLIENT_ID",
                "0b6c4f3e-1d2a-4e5f-8a9b-0c1d2e3f4a5b",
            ),
            (
                "SPICEHUB_HUB_CLIENT_SECRET",
                "dot-canary-hub-client-secret-4R",
            ),
            ("SPICEHUB_ADMIN_EMAIL", "first@example.com"),
            ("SPICEHUB_ADMIN_PASSWORD", "dot-canary-admin-password-8T"),
        ];
        let mut env: Vec<(&str, String)> =
            secrets.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        env.push(("PATH", path.to_string_lossy().into_owned()));
        let s = setup(&tdb, env).await;
        let html = s.ok(&format!("/registries/{SHOP}/{PIPELINES}")).await;
        assert!(html.contains(&node("load_users")), "drawn on {}", tdb.label);

        let seen = std::fs::read_to_string(&dump).expect("the fake dot ran");
        for (name, value) in secrets {
            assert!(!seen.contains(value), "{name} reached dot on {}", tdb.label);
        }
        let database_url = tdb.url.as_str();
        assert!(!seen.contains(database_url), "the database URL reached dot");
        for name in ["DATABASE_URL", "SPICEHUB_", "PATH=", "HOME="] {
            assert!(!seen.contains(name), "{name} reached dot:\n{seen}");
        }
        s.db.close().await;
    }
}

#[tokio::test]
async fn a_module_of_a_hostile_size_has_its_details() {
    use spicehub_parser::{Edge, EdgeKind, Entry, EntryKind, Graph, Registry};
    // 20,000 entries in one module and 40,000 edges into it, each from a
    // dependency of its own that names nothing.
    let registry = Registry {
        id: "huge.registry".into(),
        label: "huge".into(),
        file: "huge/registry.py".into(),
        line: 1,
    };
    let entries: Vec<Entry> = (0..20_000)
        .map(|i| Entry {
            registry: registry.id.clone(),
            name: format!("e{i}"),
            kind: EntryKind::Function,
            target: format!("huge.module.e{i}"),
            file: "huge/module.py".into(),
            line: 1,
            doc: None,
        })
        .collect();
    let edges: Vec<Edge> = (0..40_000)
        .map(|i| Edge {
            registry: registry.id.clone(),
            from: format!("missing{i}"),
            to: format!("e{}", i % 20_000),
            kind: EdgeKind::Parameter,
            dangling: true,
        })
        .collect();
    let graph = Graph {
        registries: vec![registry],
        entries,
        edges,
        diagnostics: vec![],
    };
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        s.db.store_graph("repo-huge", "h1", &graph)
            .await
            .expect("store");
        // Time-boxed generously: this is about answering at all.
        let response = s
            .client
            .get(format!(
                "{}/registries/repo-huge/huge.registry?group=huge.module",
                s.hub.url
            ))
            .timeout(std::time::Duration::from_secs(300))
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::OK, "{}", tdb.label);
        let html = response.text().await.expect("body");
        assert!(
            html.contains("Showing 200 of 20000 entries."),
            "{}",
            tdb.label
        );
        assert!(html.contains("huge.module (20000)"), "the collapsed view");
        s.db.close().await;
    }
}

/// A GET with `client`: status, headers and body.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = client.get(url).send().await.expect("GET");
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().await.expect("body").to_vec())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A registry whose entry is named like markup.
fn hostile_labels() -> spicehub_parser::Graph {
    use spicehub_parser::{Edge, EdgeKind, Entry, EntryKind, Graph, Registry};
    let registry = Registry {
        id: "xss.registry".into(),
        label: "<b>xss</b>".into(),
        file: "xss/registry.py".into(),
        line: 1,
    };
    let entry = |name: &str| Entry {
        registry: registry.id.clone(),
        name: name.into(),
        kind: EntryKind::Function,
        target: format!("xss.steps.{name}"),
        file: "xss/steps.py".into(),
        line: 3,
        doc: None,
    };
    Graph {
        entries: vec![entry("<script>"), entry("plain")],
        edges: vec![Edge {
            registry: registry.id.clone(),
            from: "plain".into(),
            to: "<script>".into(),
            kind: EdgeKind::Explicit,
            dangling: false,
        }],
        registries: vec![registry],
        diagnostics: vec![],
    }
}

/// The width and height of a PNG (its IHDR chunk).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

#[tokio::test]
async fn the_registry_page_downloads_svg_png_and_json() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        let url = |path: &str| format!("{}{path}", s.hub.url);
        let export = format!("/export/{SHOP}/{PIPELINES}");

        // The page links to the downloads of the view it shows.
        let html = s
            .ok(&format!("/registries/{SHOP}/{PIPELINES}?view=full"))
            .await;
        for (format, label) in [("svg", "SVG"), ("png", "PNG"), ("json", "JSON")] {
            assert!(
                html.contains(&format!("data-testid=\"export-{format}\"")),
                "{format} on {}",
                tdb.label
            );
            assert!(html.contains(&format!("href=\"{export}/{format}?view=full\"")));
            assert!(html.contains(&format!(">{label}</a>")));
        }
        assert!(html.contains("aria-label=\"Download this view as SVG\""));
        assert!(html.contains("download=\"\""));
        let html = s
            .ok(&format!(
                "/registries/{SHOP}/{PIPELINES}?focus=load_users&k=1"
            ))
            .await;
        assert!(html.contains(&format!("href=\"{export}/png?focus=load_users&amp;k=1\"")));

        // SVG: well-formed, the entries drawn, named after the view.
        let (status, headers, body) = fetch(&s.client, &url(&format!("{export}/svg"))).await;
        let svg = String::from_utf8(body).expect("utf-8");
        assert_eq!(status, StatusCode::OK, "{}: {svg}", tdb.label);
        assert_eq!(header(&headers, "content-type"), "image/svg+xml");
        assert_eq!(
            header(&headers, "content-disposition"),
            format!("attachment; filename=\"{PIPELINES}-full.svg\"")
        );
        let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let labels: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        assert!(labels.contains(&"load_users"), "{}: {labels:?}", tdb.label);
        let before = cached_views(&s.db, SHOP, PIPELINES).await;
        let (status, headers, _) = fetch(
            &s.client,
            &url(&format!("{export}/svg?focus=load_users&k=1")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            header(&headers, "content-disposition"),
            format!("attachment; filename=\"{PIPELINES}-focus-load_users-1.svg\"")
        );
        // The page laid that view out already: the download reused it.
        assert_eq!(cached_views(&s.db, SHOP, PIPELINES).await, before);

        // Labels are escaped.
        s.db.store_graph("repo-xss", "x1", &hostile_labels())
            .await
            .expect("store");
        let (status, _, body) = fetch(&s.client, &url("/export/repo-xss/xss.registry/svg")).await;
        assert_eq!(status, StatusCode::OK, "{}", tdb.label);
        let svg = String::from_utf8(body).expect("utf-8");
        assert!(!svg.contains("<script>"), "{}", tdb.label);
        assert!(svg.contains("&lt;script&gt;"));
        let doc = roxmltree::Document::parse(&svg).expect("the SVG is XML");
        assert!(doc.descendants().any(|n| n.text() == Some("<script>")));

        // PNG.
        let (status, headers, png) = fetch(&s.client, &url(&format!("{export}/png"))).await;
        assert_eq!(status, StatusCode::OK, "{}", tdb.label);
        assert_eq!(header(&headers, "content-type"), "image/png");
        assert_eq!(
            header(&headers, "content-disposition"),
            format!("attachment; filename=\"{PIPELINES}-full.png\"")
        );
        let (w, h) = png_size(&png);
        assert!(w > 10 && h > 10, "{w}×{h}");

        // JSON: the stored registry, its diagnostics, where it comes from.
        let (status, headers, body) = fetch(&s.client, &url(&format!("{export}/json"))).await;
        assert_eq!(status, StatusCode::OK, "{}", tdb.label);
        assert_eq!(header(&headers, "content-type"), "application/json");
        assert_eq!(
            header(&headers, "content-disposition"),
            format!("attachment; filename=\"{PIPELINES}.json\"")
        );
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let stored =
            s.db.registry_graph(SHOP, "c1", PIPELINES)
                .await
                .expect("read")
                .expect("stored");
        let all = s.db.snapshot_diagnostics(SHOP, "c1").await.expect("read");
        let own = spicehub_core::graph::export::registry_diagnostics(
            &stored.registry,
            &stored.entries,
            &all,
        );
        let count = |key: &str| json[key].as_array().map_or(0, Vec::len);
        assert_eq!(count("entries"), stored.entries.len(), "{}", tdb.label);
        assert_eq!(count("edges"), stored.edges.len());
        assert_eq!(count("diagnostics"), own.len());
        assert!(!own.is_empty(), "{}", tdb.label);
        assert_eq!(count("registries"), 1);
        assert_eq!(json["registry"], PIPELINES);
        assert_eq!(json["repository"], SHOP);
        assert_eq!(json["commit"], "c1");
        let diagnostics = json["diagnostics"].as_array().expect("diagnostics");
        assert!(diagnostics.iter().all(|d| d["severity"].is_string()));
        let dangling = format!("dangling edge in `{PIPELINES}`");
        assert!(
            diagnostics
                .iter()
                .any(|d| d["message"].as_str().is_some_and(|m| m.contains(&dangling))),
            "{}",
            tdb.label
        );
        // Another registry of the repository: only its own diagnostics.
        let sources = "shopflow.registry.sources";
        let (status, _, body) =
            fetch(&s.client, &url(&format!("/export/{SHOP}/{sources}/json"))).await;
        assert_eq!(status, StatusCode::OK, "{}", tdb.label);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let stored =
            s.db.registry_graph(SHOP, "c1", sources)
                .await
                .expect("read")
                .expect("stored");
        let own = spicehub_core::graph::export::registry_diagnostics(
            &stored.registry,
            &stored.entries,
            &all,
        );
        assert_eq!(count_of(&json, "entries"), stored.entries.len());
        assert_eq!(count_of(&json, "diagnostics"), own.len());
        assert!(!String::from_utf8_lossy(&body).contains(&dangling));
        s.db.close().await;
    }
}

fn count_of(json: &serde_json::Value, key: &str) -> usize {
    json[key].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn downloads_are_refused_when_they_should_be() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        let url = |path: &str| format!("{}{path}", s.hub.url);
        let export = format!("/export/{SHOP}/{PIPELINES}");

        // Nothing anonymous: sent to sign in, no file.
        for format in ["svg", "png", "json"] {
            let (status, headers, body) =
                fetch(&client(), &url(&format!("{export}/{format}"))).await;
            assert!(
                status.is_redirection(),
                "{format}: {status} on {}",
                tdb.label
            );
            assert!(header(&headers, "location").starts_with("/signin?next="));
            assert!(header(&headers, "content-disposition").is_empty());
            assert!(!String::from_utf8_lossy(&body).contains("<svg"));
        }

        let refused = |path: String, want: StatusCode| {
            let url = url(&path);
            let client = s.client.clone();
            let label = tdb.label;
            async move {
                let (status, headers, body) = fetch(&client, &url).await;
                assert_eq!(status, want, "{path} on {label}");
                assert!(header(&headers, "content-type").starts_with("text/plain"));
                assert!(header(&headers, "content-disposition").is_empty());
                String::from_utf8(body).expect("utf-8")
            }
        };
        let text = refused(
            format!("/export/{SHOP}/no.such.registry/svg"),
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(text.contains("has no registry"), "{text}");
        refused(
            format!("/export/no-such-repo/{PIPELINES}/png"),
            StatusCode::NOT_FOUND,
        )
        .await;
        refused(
            format!("/export/{SHOP}/no.such.registry/json"),
            StatusCode::NOT_FOUND,
        )
        .await;
        refused(format!("{export}/gif"), StatusCode::NOT_FOUND).await;
        refused(format!("{export}/svg?focus=nope"), StatusCode::NOT_FOUND).await;
        for bad in [
            "view=bogus",
            "focus=load_users&k=99",
            "k=2",
            "size=1",
            "focus=load_users&view=full",
        ] {
            let text = refused(format!("{export}/svg?{bad}"), StatusCode::BAD_REQUEST).await;
            assert!(text.contains("not understood"), "{bad}: {text}");
        }
        refused(format!("{export}/json?view=bogus"), StatusCode::BAD_REQUEST).await;
        s.db.close().await;
    }
}

#[tokio::test]
async fn the_png_of_a_large_registry_is_bounded() {
    for tdb in TestDb::all().await {
        let s = setup(&tdb, vec![]).await;
        s.db.store_graph("repo-big", "b1", &synthetic_registry(2000, "big"))
            .await
            .expect("store");
        for query in ["", "?view=full"] {
            let (status, headers, png) = fetch(
                &s.client,
                &format!("{}/export/repo-big/big.registry/png{query}", s.hub.url),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{query} on {}: {}",
                tdb.label,
                String::from_utf8_lossy(&png)
            );
            assert_eq!(header(&headers, "content-type"), "image/png");
            let (w, h) = png_size(&png);
            eprintln!("{query}: {w}×{h}, {} bytes", png.len());
            assert!(w <= 4096 && h <= 4096, "{w}×{h}");
            assert!(u64::from(w) * u64::from(h) <= 16_000_000, "{w}×{h}");
            assert!(w.max(h) >= 1000, "not needlessly small: {w}×{h}");
        }
        s.db.close().await;
    }
}
