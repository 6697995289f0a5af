//! The viewer's server half, compiled with `ssr` only: who may call (any
//! signed-in user), the database from the `Hub` in Leptos context, input
//! limits, database errors mapped once to [`ViewerError`] (with the
//! response's HTTP status), and the views built from the stored graphs
//! (Graphviz layouts, at most two `dot` runs hub-wide, node details,
//! search). `mod.rs` declares it behind `#[cfg(feature = "ssr")]`, so nothing
//! here (the core, the parser, tokio) reaches the wasm build.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use super::*;
use spicehub_core::db::graphs::{RegistryGraph, RegistrySummary};
use spicehub_core::db::{Db, DbError};
use spicehub_core::graph::layout::DEFAULT_SLOT_WAIT;
use spicehub_core::graph::views::{self, NodeKind, ViewGraph};
use spicehub_core::graph::{
    get_or_compute_layout, layout_uncached, svg, GraphError, Layout, LayoutError, LayoutSlots,
    Layouter, View, DEFAULT_COLLAPSE_THRESHOLD,
};
use spicehub_parser::{EdgeKind, Entry, EntryKind, Severity};

/// `dot` runs at once, hub-wide: layouts are CPU-bound, and a burst of
/// uncached views must not starve the requests that only read. A view
/// that waits [`DEFAULT_SLOT_WAIT`] without a turn is answered "busy".
static LAYOUT_SLOTS: LazyLock<LayoutSlots> =
    LazyLock::new(|| LayoutSlots::new(2, DEFAULT_SLOT_WAIT));

/// What a view says when every `dot` slot stayed busy.
pub const BUSY_MESSAGE: &str = "The hub is busy drawing other graphs right now, so this one was \
     not drawn. Try again in a moment.";

pub fn signed_in() -> Result<spicehub_core::auth::AuthUser, ViewerError> {
    crate::api::session::request_user().ok_or_else(|| {
        crate::api::session::set_status(401);
        ViewerError::NotSignedIn
    })
}

pub fn db() -> Result<Db, ViewerError> {
    crate::api::session::app_state()
        .map(|s| s.db)
        .map_err(|_| ViewerError::Unavailable)
}

fn config() -> Option<std::sync::Arc<spicehub_core::config::Config>> {
    crate::api::session::app_state().ok().map(|s| s.config)
}

/// Logs a database error and says the hub cannot read its data.
pub(super) fn unavailable(error: DbError) -> ViewerError {
    tracing::error!(error = %error, "viewer: database error");
    crate::api::session::set_status(503);
    ViewerError::Unavailable
}

pub(super) fn fail(error: ViewerError) -> ViewerError {
    crate::api::session::set_status(error.status());
    error
}

/// Runs CPU-bound graph work (building views, walking edges) on the
/// blocking pool, so that one big registry does not stall the async
/// workers that serve every other request (there may be only two).
/// Whatever sets the response's status must run before or after, on the
/// request's task: the blocking pool has no Leptos context.
pub(super) async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ViewerError> {
    spicehub_core::graph::off_runtime(work).await.map_err(|e| {
        tracing::error!(error = %e, "viewer: graph work failed");
        fail(ViewerError::Unavailable)
    })
}

/// Refuses over-long input (ids, names and queries are short).
pub(super) fn bounded<'a>(text: &'a str, what: &str) -> Result<&'a str, ViewerError> {
    if text.len() > MAX_INPUT_LEN {
        return Err(fail(ViewerError::BadRequest(format!(
            "the {what} is longer than {MAX_INPUT_LEN} characters"
        ))));
    }
    Ok(text.trim())
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn registry_row(s: RegistrySummary) -> RegistryRow {
    RegistryRow {
        repository_name: s.repository_name.unwrap_or_else(|| s.repository_id.clone()),
        repository_id: s.repository_id,
        registry_id: s.registry.id,
        label: s.registry.label,
        file: s.registry.file,
        line: s.registry.line,
        entry_count: s.entry_count,
        diagnostics_count: s.diagnostics_count,
    }
}

/// The repository and its visible commit; 404 when nothing is known
/// about it (no repository row and no stored graph).
pub(super) async fn repository_ref(
    db: &Db,
    repository: &str,
) -> Result<(RepositoryRef, Option<String>), ViewerError> {
    let row = db.repository(repository).await.map_err(unavailable)?;
    // Repository ids are stored in lower case: read under the row's own.
    let id = row.as_ref().map_or(repository, |r| r.id.as_str());
    let commit = db.visible_commit(id).await.map_err(unavailable)?;
    let repo = match row {
        Some(r) => RepositoryRef {
            name: format!("{}/{}", r.project_name, r.name),
            id: r.id,
            web_url: r.web_url,
            commit: commit.clone(),
        },
        None if commit.is_some() => RepositoryRef {
            id: repository.to_owned(),
            name: repository.to_owned(),
            web_url: None,
            commit: commit.clone(),
        },
        None => return Err(fail(ViewerError::RepositoryNotFound(repository.to_owned()))),
    };
    Ok((repo, commit))
}

/// The repository, its visible commit and the registry's graph there.
async fn load(
    db: &Db,
    repository: &str,
    registry: &str,
) -> Result<(RepositoryRef, String, RegistryGraph), ViewerError> {
    let (repo, commit, graph, _) = load_at(db, repository, registry, None).await?;
    Ok((repo, commit, graph))
}

/// [`load`] at a kept commit (`at`, when it names one other than the
/// visible commit): the repository (its `commit` then that commit), the
/// commit, the registry's graph there, and the commit as the page names it.
pub(super) async fn load_at(
    db: &Db,
    repository: &str,
    registry: &str,
    at: Option<&str>,
) -> Result<(RepositoryRef, String, RegistryGraph, Option<CommitRow>), ViewerError> {
    let repository = bounded(repository, "repository")?;
    let registry = bounded(registry, "registry")?;
    let at = match at.map(|c| bounded(c, "commit")).transpose()? {
        Some(c) if !c.is_empty() => Some(c.to_ascii_lowercase()),
        _ => None,
    };
    let (mut repo, commit) = repository_ref(db, repository).await?;
    if let Some(at) = at.filter(|at| Some(at) != commit.as_ref()) {
        let Some(kept) = db
            .history_commit(&repo.id, &at)
            .await
            .map_err(unavailable)?
        else {
            return Err(fail(ViewerError::CommitNotKept {
                repository: repo.name.clone(),
                commit: at,
            }));
        };
        let past = super::commits::commit_row(&repo, &kept, false);
        let g = db
            .history_graph(&repo.id, kept.seq, Some(registry))
            .await
            .map_err(unavailable)?;
        let Some(declared) = g.registries.into_iter().next() else {
            return Err(fail(ViewerError::RegistryNotFound {
                repository: repo.name.clone(),
                registry: registry.to_owned(),
            }));
        };
        repo.commit = Some(kept.commit_id.clone());
        let graph = RegistryGraph {
            registry: declared,
            entries: g.entries,
            edges: g.edges,
        };
        return Ok((repo, kept.commit_id, graph, Some(past)));
    }
    let (repo, commit) = (repo, commit);
    let not_found = || {
        fail(ViewerError::RegistryNotFound {
            repository: repo.name.clone(),
            registry: registry.to_owned(),
        })
    };
    let Some(commit) = commit else {
        return Err(not_found());
    };
    let graph = db
        .registry_graph(&repo.id, &commit, registry)
        .await
        .map_err(unavailable)?
        .ok_or_else(not_found)?;
    Ok((repo, commit, graph, None))
}

pub async fn list_registries(db: &Db, q: &str) -> Result<Vec<RegistryRow>, ViewerError> {
    let q = bounded(q, "filter")?;
    let rows = db.list_registries(Some(q)).await.map_err(unavailable)?;
    Ok(rows.into_iter().map(registry_row).collect())
}

/// Entries shown by the Registries tab's search.
const ENTRY_HITS: usize = 50;

pub async fn search_entries(db: &Db, q: &str) -> Result<EntryHits, ViewerError> {
    let q = bounded(q, "search")?;
    let found = db
        .search_entries(q, ENTRY_HITS)
        .await
        .map_err(unavailable)?;
    Ok(EntryHits {
        more: found.more,
        hits: found
            .hits
            .into_iter()
            .map(|h| EntryHitRow {
                source: source_link(h.web_url.as_deref(), Some(&h.commit_id), &h.file, h.line),
                repository_name: h.repository_name.unwrap_or_else(|| h.repository_id.clone()),
                repository_id: h.repository_id,
                registry_id: h.registry_id,
                name: h.name,
                kind: h.kind,
                file: h.file,
                line: h.line,
            })
            .collect(),
    })
}

pub async fn repository_overview(
    db: &Db,
    repository: &str,
) -> Result<RepositoryContents, ViewerError> {
    let repository = bounded(repository, "repository")?;
    let (repo, commit) = repository_ref(db, repository).await?;
    let registries = db
        .repository_registries(&repo.id)
        .await
        .map_err(unavailable)?;
    let diagnostics = match &commit {
        Some(commit) => db
            .snapshot_diagnostics(&repo.id, commit)
            .await
            .map_err(unavailable)?,
        None => vec![],
    };
    let diagnostics = diagnostics
        .into_iter()
        .map(|d| DiagnosticRow {
            link: source_link(repo.web_url.as_deref(), commit.as_deref(), &d.file, d.line),
            severity: severity(d.severity).to_owned(),
            file: d.file,
            line: d.line,
            message: d.message,
        })
        .collect();
    Ok(RepositoryContents {
        registries: registries.into_iter().map(registry_row).collect(),
        diagnostics,
        repository: repo,
    })
}

fn kind_of(kind: NodeKind) -> GraphNodeKind {
    match kind {
        NodeKind::Entry => GraphNodeKind::Entry,
        NodeKind::External => GraphNodeKind::External,
        NodeKind::Missing => GraphNodeKind::Missing,
        NodeKind::Module => GraphNodeKind::Module,
    }
}

pub(super) fn to_graph_layout(layout: Layout, spec: &ViewSpec) -> GraphLayout {
    let is_box = |group: &str| match spec {
        ViewSpec::Collapsed => true,
        ViewSpec::Expanded(open) => !open.iter().any(|g| g == group),
        ViewSpec::Full | ViewSpec::Focus { .. } => false,
    };
    GraphLayout {
        width: layout.width,
        height: layout.height,
        clusters: layout
            .clusters
            .iter()
            .map(|c| GraphCluster {
                id: c.id.clone(),
                label: c.label.clone(),
                x: c.x,
                y: c.y,
                w: c.w,
                h: c.h,
                depth: c.depth,
            })
            .collect(),
        edges: layout
            .edges
            .iter()
            .filter_map(|e| {
                Some(GraphEdge {
                    path: svg::edge_path(e)?,
                    from: e.from.clone(),
                    to: e.to.clone(),
                    explicit: e.kind == EdgeKind::Explicit,
                    dangling: e.dangling,
                    count: e.count,
                    change: None,
                })
            })
            .collect(),
        nodes: layout
            .nodes
            .into_iter()
            .map(|n| GraphNode {
                group_box: is_box(&n.group),
                id: n.id,
                label: n.label,
                group: n.group,
                kind: kind_of(n.kind),
                count: n.count,
                x: n.x,
                y: n.y,
                w: n.w,
                h: n.h,
                change: None,
            })
            .collect(),
    }
}

fn entry_info(entry: &Entry, repo: &RepositoryRef) -> EntryInfo {
    EntryInfo {
        name: entry.name.clone(),
        kind: match entry.kind {
            EntryKind::Function => "function",
            EntryKind::Class => "class",
            EntryKind::Object => "object",
        }
        .to_owned(),
        target: entry.target.clone(),
        file: entry.file.clone(),
        line: entry.line,
        doc: entry.doc.clone(),
        link: source_link(
            repo.web_url.as_deref(),
            repo.commit.as_deref(),
            &entry.file,
            entry.line,
        ),
    }
}

/// The view a request asks for, checked for size but not yet against the
/// registry (see [`resolve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Focus {
        node: String,
        k: u32,
    },
    Expanded(Vec<String>),
    Full,
    Collapsed,
    /// No view named: by the registry's size.
    BySize,
}

/// The view the request names. Runs on the request's task: a refusal sets
/// the response's status.
fn asked_view(request: &ViewRequest) -> Result<Asked, ViewerError> {
    if let Some(node) = request
        .focus
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let node = bounded(node, "node")?;
        let k = request.k.unwrap_or(DEFAULT_FOCUS_K).min(MAX_FOCUS_K);
        return Ok(Asked::Focus {
            node: node.to_owned(),
            k,
        });
    }
    let groups: Vec<String> = request
        .expand
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .map(ToOwned::to_owned)
        .collect();
    if !groups.is_empty() {
        if groups.len() > MAX_EXPANDED_GROUPS {
            return Err(fail(ViewerError::BadRequest(format!(
                "at most {MAX_EXPANDED_GROUPS} modules can be expanded at once"
            ))));
        }
        for g in &groups {
            bounded(g, "module")?;
        }
        return Ok(Asked::Expanded(groups));
    }
    Ok(match request.mode.as_deref() {
        Some("full") => Asked::Full,
        Some("collapsed") => Asked::Collapsed,
        _ => Asked::BySize,
    })
}

/// The view drawn for `asked` in a registry whose full view is `full`, and
/// whether it was picked by size. Modules that the registry does not have
/// are not opened (a name is free text, and each set of names would be a
/// layout of its own); none left is the collapsed view.
fn resolve(asked: Asked, full: &ViewGraph) -> (ViewSpec, bool) {
    match asked {
        Asked::Focus { node, k } => (ViewSpec::Focus { node, k }, false),
        Asked::Expanded(groups) => match View::expanded(groups).within(full) {
            View::Expanded { groups } => (ViewSpec::Expanded(groups), false),
            _ => (ViewSpec::Collapsed, false),
        },
        Asked::Full => (ViewSpec::Full, false),
        Asked::Collapsed => (ViewSpec::Collapsed, false),
        Asked::BySize => match View::default_for(full.nodes.len(), DEFAULT_COLLAPSE_THRESHOLD) {
            View::Collapsed => (ViewSpec::Collapsed, true),
            _ => (ViewSpec::Full, true),
        },
    }
}

fn to_view(spec: &ViewSpec) -> View {
    match spec {
        ViewSpec::Full => View::Full,
        ViewSpec::Collapsed => View::Collapsed,
        ViewSpec::Expanded(groups) => View::expanded(groups.iter().cloned()),
        ViewSpec::Focus { node, k } => View::Focus {
            node: node.clone(),
            k: *k,
        },
    }
}

/// What `registry_view` learns from the graph, on the blocking pool.
struct Shape {
    full: ViewGraph,
    spec: ViewSpec,
    automatic: bool,
    /// The focus node, when the registry has no such node.
    unknown_focus: Option<String>,
    dangling_count: usize,
}

fn shape(graph: &RegistryGraph, asked: Asked) -> Shape {
    let full = views::full(graph);
    let (spec, automatic) = resolve(asked, &full);
    let unknown_focus = match &spec {
        ViewSpec::Focus { node, .. } if !full.nodes.iter().any(|n| &n.id == node) => {
            Some(node.clone())
        }
        _ => None,
    };
    Shape {
        dangling_count: full.edges.iter().filter(|e| e.dangling).count(),
        full,
        spec,
        automatic,
        unknown_focus,
    }
}

pub async fn registry_view(
    db: &Db,
    repository: &str,
    registry: &str,
    request: ViewRequest,
) -> Result<RegistryPageData, ViewerError> {
    let asked = asked_view(&request)?;
    let (repo, commit, graph, past) =
        load_at(db, repository, registry, request.commit.as_deref()).await?;
    // A past commit's graph is not a stored snapshot: laid out, not cached.
    let uncached = past.as_ref().map(|_| graph.clone());
    let (graph, shape) = off_runtime(move || {
        let shape = shape(&graph, asked);
        (graph, shape)
    })
    .await?;
    let Shape {
        full,
        spec,
        automatic,
        unknown_focus,
        dangling_count,
    } = shape;
    let view = to_view(&spec);
    let drawing = match unknown_focus {
        Some(node) => Drawing::UnknownNode(node),
        None => match uncached {
            Some(g) => draw_uncached(g, &view, &spec).await?,
            None => draw(db, &repo.id, &commit, &graph.registry.id, &view, &spec).await?,
        },
    };
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let (node_count, edge_count) = (count(full.nodes.len()), count(full.edges.len()));
    let focus_suggestions = match &drawing {
        Drawing::Ready(_) => vec![],
        _ => off_runtime(move || best_connected(&full, 12)).await?,
    };
    Ok(RegistryPageData {
        focus_suggestions,
        registry: RegistryInfo {
            link: source_link(
                repo.web_url.as_deref(),
                Some(&commit),
                &graph.registry.file,
                graph.registry.line,
            ),
            id: graph.registry.id.clone(),
            label: graph.registry.label.clone(),
            file: graph.registry.file.clone(),
            line: graph.registry.line,
        },
        entry_count: count(graph.entries.len()),
        node_count,
        edge_count,
        dangling_count: count(dangling_count),
        collapse_threshold: count(DEFAULT_COLLAPSE_THRESHOLD),
        view: spec,
        automatic,
        drawing,
        repository: repo,
        past,
    })
}

/// The layout of a view: cached, or computed by `dot` (at most
/// [`LAYOUT_SLOTS`] at a time, or "busy" after waiting for one) and cached.
async fn draw(
    db: &Db,
    repository: &str,
    commit: &str,
    registry: &str,
    view: &View,
    spec: &ViewSpec,
) -> Result<Drawing, ViewerError> {
    let result = get_or_compute_layout(db, &layouter(), repository, commit, registry, view).await;
    let result = match result {
        Ok(Some(layout)) => Ok(Some(
            off_runtime({
                let spec = spec.clone();
                move || to_graph_layout(layout, &spec)
            })
            .await?,
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    drawing(result, repository, registry, view)
}

/// The layer of a layout: the hub-wide slots and the configured timeout.
fn layouter() -> Layouter {
    let timeout = config()
        .map(|c| c.layout_timeout)
        .unwrap_or(spicehub_core::graph::layout::DEFAULT_TIMEOUT);
    Layouter::new()
        .with_timeout(timeout)
        .with_slots(LAYOUT_SLOTS.clone())
}

/// The drawing of a view of a graph that is no stored snapshot's (a past
/// commit's registry, a diff), computed under the same slots as any other.
pub(super) async fn draw_uncached(
    graph: RegistryGraph,
    view: &View,
    spec: &ViewSpec,
) -> Result<Drawing, ViewerError> {
    let registry = graph.registry.id.clone();
    let result = match layout_uncached(&layouter(), graph, view).await {
        Ok(layout) => Ok(Some(
            off_runtime({
                let spec = spec.clone();
                move || to_graph_layout(layout, &spec)
            })
            .await?,
        )),
        Err(e) => Err(e),
    };
    drawing(result, "", &registry, view)
}

/// What the page shows for the outcome of a layout.
fn drawing(
    result: Result<Option<GraphLayout>, GraphError>,
    repository: &str,
    registry: &str,
    view: &View,
) -> Result<Drawing, ViewerError> {
    match result {
        Ok(Some(layout)) => Ok(Drawing::Ready(layout)),
        // Replaced between reading the graph and laying it out.
        Ok(None) => Err(fail(ViewerError::RegistryNotFound {
            repository: repository.to_owned(),
            registry: registry.to_owned(),
        })),
        Err(GraphError::Layout(LayoutError::Timeout(t))) => {
            tracing::warn!(registry, view = %view.key(), "layout timed out after {t:?}");
            Ok(Drawing::TimedOut {
                timeout_ms: u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
            })
        }
        Err(GraphError::Layout(LayoutError::Busy(t))) => {
            tracing::warn!(registry, view = %view.key(), "no layout slot free within {t:?}");
            Ok(Drawing::Failed(BUSY_MESSAGE.into()))
        }
        Err(GraphError::View(views::ViewError::UnknownNode(node))) => {
            Ok(Drawing::UnknownNode(node))
        }
        Err(GraphError::Db(e)) => Err(unavailable(e)),
        Err(e @ GraphError::Layout(LayoutError::NotInstalled(_))) => {
            tracing::error!(error = %e, "layout failed");
            Ok(Drawing::Failed(
                "Graphviz is not installed on the hub, so graphs cannot be drawn. \
                 Ask your hub operator to install it (the `graphviz` package)."
                    .into(),
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "layout failed");
            Ok(Drawing::Failed(format!(
                "The graph could not be drawn: {e}"
            )))
        }
    }
}

/// Why a download was refused: the HTTP status and the sentence to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFailure {
    pub status: u16,
    pub message: String,
}

impl ExportFailure {
    fn new(status: u16, message: impl Into<String>) -> Self {
        ExportFailure {
            status,
            message: message.into(),
        }
    }
}

impl From<ViewerError> for ExportFailure {
    fn from(error: ViewerError) -> Self {
        ExportFailure::new(error.status(), error.to_string())
    }
}

/// The SVG of one view of a registry, for download.
#[derive(Debug, Clone)]
pub struct ViewDownload {
    pub svg: String,
    /// The registry's id and the view, for the file name.
    pub registry: String,
    pub view: String,
}

/// The view a download names, for its file name.
fn view_name(spec: &ViewSpec) -> String {
    match spec {
        ViewSpec::Full => "full".into(),
        ViewSpec::Collapsed => "collapsed".into(),
        ViewSpec::Expanded(_) => "expanded".into(),
        ViewSpec::Focus { node, k } => format!("focus-{node}-{k}"),
    }
}

/// The SVG of the view `request` names, as the page picks it (same view,
/// same defaults, same cached layout): the cached layout, or one `dot` run
/// under the page's own [`LAYOUT_SLOTS`] when the page would run one too.
pub async fn export_view(
    db: &Db,
    repository: &str,
    registry: &str,
    request: ViewRequest,
    layout_timeout: std::time::Duration,
) -> Result<ViewDownload, ExportFailure> {
    let asked = asked_view(&request)?;
    // Downloads are of the current commit (the page offers none for a past one).
    let (repo, commit, graph) = load(db, repository, registry).await?;
    let registry_id = graph.registry.id.clone();
    let shape = off_runtime(move || shape(&graph, asked)).await?;
    if let Some(node) = shape.unknown_focus {
        return Err(ExportFailure::new(
            404,
            format!("This registry has no node “{node}” to focus on."),
        ));
    }
    let view = to_view(&shape.spec);
    let layouter = Layouter::new()
        .with_timeout(layout_timeout)
        .with_slots(LAYOUT_SLOTS.clone());
    let layout =
        match get_or_compute_layout(db, &layouter, &repo.id, &commit, &registry_id, &view).await {
            Ok(Some(layout)) => layout,
            Ok(None) => {
                return Err(ViewerError::RegistryNotFound {
                    repository: repo.name,
                    registry: registry_id,
                }
                .into())
            }
            Err(e) => return Err(layout_failure(e, &registry_id, &view)),
        };
    let svg = off_runtime(move || svg::render(&layout)).await?;
    Ok(ViewDownload {
        svg,
        view: view_name(&shape.spec),
        registry: registry_id,
    })
}

/// A layout that could not be had, as a download's answer.
fn layout_failure(error: GraphError, registry: &str, view: &View) -> ExportFailure {
    match error {
        GraphError::Layout(LayoutError::Busy(t)) => {
            tracing::warn!(registry, view = %view.key(), "download: no layout slot free within {t:?}");
            ExportFailure::new(503, BUSY_MESSAGE)
        }
        GraphError::Layout(LayoutError::Timeout(t)) => {
            tracing::warn!(registry, view = %view.key(), "download: layout timed out after {t:?}");
            ExportFailure::new(
                503,
                format!(
                    "This view took longer than {} s to lay out, so it was not drawn. \
                     Download a smaller view (by module, or around one node).",
                    t.as_secs()
                ),
            )
        }
        GraphError::View(views::ViewError::UnknownNode(node)) => ExportFailure::new(
            404,
            format!("This registry has no node “{node}” to focus on."),
        ),
        GraphError::Db(e) => unavailable(e).into(),
        e => {
            tracing::error!(error = %e, "download: layout failed");
            ExportFailure::new(503, format!("The graph could not be drawn: {e}"))
        }
    }
}

/// A registry as JSON, for download.
#[derive(Debug, Clone)]
pub struct RegistryDownload {
    pub json: String,
    pub registry: String,
}

/// The registry's entries, edges and diagnostics at the visible commit, in
/// the parser's JSON shape (registries.md §6), with where they come from.
pub async fn export_registry(
    db: &Db,
    repository: &str,
    registry: &str,
) -> Result<RegistryDownload, ExportFailure> {
    let (repo, commit, graph) = load(db, repository, registry).await?;
    let diagnostics = db
        .snapshot_diagnostics(&repo.id, &commit)
        .await
        .map_err(unavailable)?;
    let registry = graph.registry.id.clone();
    let json = off_runtime(move || {
        spicehub_core::graph::export::registry_json(
            spicehub_core::graph::export::Origin {
                repository: &repo.name,
                repository_id: &repo.id,
                commit: &commit,
            },
            &graph.registry,
            &graph.entries,
            &graph.edges,
            &diagnostics,
        )
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "download: registry JSON failed");
        ExportFailure::new(500, "The registry could not be written as JSON.")
    })?;
    Ok(RegistryDownload { json, registry })
}

/// The `n` nodes with the most edges (ties by name).
fn best_connected(full: &ViewGraph, n: usize) -> Vec<String> {
    let mut degree: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for e in &full.edges {
        *degree.entry(&e.from).or_default() += 1;
        *degree.entry(&e.to).or_default() += 1;
    }
    let mut nodes: Vec<(&str, usize)> = full
        .nodes
        .iter()
        .filter(|node| node.kind == NodeKind::Entry)
        .map(|node| {
            (
                node.id.as_str(),
                degree.get(node.id.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    nodes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    nodes
        .into_iter()
        .take(n)
        .map(|(id, _)| id.to_owned())
        .collect()
}

pub async fn node_details(
    db: &Db,
    repository: &str,
    registry: &str,
    selection: Selection,
    commit: Option<&str>,
) -> Result<NodeInfo, ViewerError> {
    match &selection {
        Selection::Node(name) => bounded(name, "node")?,
        Selection::Group(group) => bounded(group, "module")?,
    };
    let (repo, _commit, graph, _) = load_at(db, repository, registry, commit).await?;
    off_runtime(move || node_info(&graph, &repo, selection)).await
}

/// The details of a selected node or module of `graph`. Linear in the
/// graph's entries and edges (every lookup goes through a map built once):
/// a hostile repository can make a registry big, and this runs on a click.
pub fn node_info(graph: &RegistryGraph, repo: &RepositoryRef, selection: Selection) -> NodeInfo {
    let full = views::full(graph);
    let mut details = NodeInfo {
        selection: selection.clone(),
        kind: None,
        group: String::new(),
        entries: vec![],
        total_entries: 0,
        upstream: vec![],
        downstream: vec![],
    };
    match &selection {
        Selection::Node(name) => {
            let name = name.trim();
            let Some(node) = full.nodes.iter().find(|n| n.id == name) else {
                return details;
            };
            details.kind = Some(kind_of(node.kind));
            details.group = node.group.clone();
            details.entries = graph
                .entries
                .iter()
                .filter(|e| e.name == name)
                .map(|e| entry_info(e, repo))
                .collect();
            details.total_entries = u32::try_from(details.entries.len()).unwrap_or(0);
            let mut up = HashSet::new();
            let mut down = HashSet::new();
            for edge in &full.edges {
                if edge.to == name && up.insert(edge.from.as_str()) {
                    details.upstream.push(edge.from.clone());
                }
                if edge.from == name && down.insert(edge.to.as_str()) {
                    details.downstream.push(edge.to.clone());
                }
            }
        }
        Selection::Group(group) => {
            let group = group.trim();
            let group_of: HashMap<&str, &str> = full
                .nodes
                .iter()
                .map(|n| (n.id.as_str(), n.group.as_str()))
                .collect();
            let members: Vec<&views::ViewNode> =
                full.nodes.iter().filter(|n| n.group == group).collect();
            if members.is_empty() {
                return details;
            }
            details.kind = Some(if members.iter().any(|n| n.kind == NodeKind::Entry) {
                GraphNodeKind::Module
            } else {
                kind_of(members[0].kind)
            });
            details.group = group.to_owned();
            details.total_entries = u32::try_from(members.len()).unwrap_or(u32::MAX);
            let inside = |id: &str| group_of.get(id) == Some(&group);
            let mut seen = HashSet::new();
            details.entries = graph
                .entries
                .iter()
                .filter(|e| inside(&e.name) && seen.insert(e.name.as_str()))
                .take(MAX_GROUP_ENTRIES)
                .map(|e| entry_info(e, repo))
                .collect();
            let mut up = HashSet::new();
            let mut down = HashSet::new();
            for edge in &full.edges {
                let (Some(&from), Some(&to)) = (
                    group_of.get(edge.from.as_str()),
                    group_of.get(edge.to.as_str()),
                ) else {
                    continue;
                };
                if to == group && from != group && up.insert(from) {
                    details.upstream.push(from.to_owned());
                }
                if from == group && to != group && down.insert(to) {
                    details.downstream.push(to.to_owned());
                }
            }
        }
    }
    details
}

pub async fn search_nodes(
    db: &Db,
    repository: &str,
    registry: &str,
    query: &str,
    commit: Option<&str>,
) -> Result<Vec<SearchHit>, ViewerError> {
    let query = bounded(query, "search")?.to_lowercase();
    if query.is_empty() {
        return Ok(vec![]);
    }
    let (_repo, _commit, graph, _) = load_at(db, repository, registry, commit).await?;
    off_runtime(move || search(&graph, &query)).await
}

/// The nodes of `graph` whose name contains `query` (lower case).
fn search(graph: &RegistryGraph, query: &str) -> Vec<SearchHit> {
    let full = views::full(graph);
    // Exact names first, then prefixes, then other matches; by name within.
    let mut hits: Vec<(u8, &views::ViewNode)> = full
        .nodes
        .iter()
        .filter_map(|n| {
            let id = n.id.to_lowercase();
            if id == query {
                Some((0, n))
            } else if id.starts_with(query) {
                Some((1, n))
            } else if id.contains(query) {
                Some((2, n))
            } else {
                None
            }
        })
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    hits.into_iter()
        .take(MAX_SEARCH_HITS)
        .map(|(_, n)| SearchHit {
            name: n.id.clone(),
            group: n.group.clone(),
            kind: kind_of(n.kind),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use spicehub_parser::{Edge, Registry};

    fn repo() -> RepositoryRef {
        RepositoryRef {
            id: "repo".into(),
            name: "repo".into(),
            web_url: None,
            commit: Some("c1".into()),
        }
    }

    fn entry(name: String, module: &str) -> Entry {
        Entry {
            registry: "r".into(),
            target: format!("{module}.{name}"),
            name,
            kind: EntryKind::Function,
            file: format!("{}.py", module.replace('.', "/")),
            line: 1,
            doc: None,
        }
    }

    fn edge(from: String, to: String, dangling: bool) -> Edge {
        Edge {
            registry: "r".into(),
            from,
            to,
            kind: EdgeKind::Parameter,
            dangling,
        }
    }

    /// What a hostile repository can push: `entries` entries in one module
    /// and `edges` edges into it, each from a dependency of its own that
    /// names nothing (so the full view has `entries + edges` nodes), plus
    /// one small module that depends on it.
    fn hostile(entries: usize, edges: usize) -> RegistryGraph {
        let mut graph = RegistryGraph {
            registry: Registry {
                id: "r".into(),
                label: "r".into(),
                file: "r.py".into(),
                line: 1,
            },
            entries: (0..entries)
                .map(|i| entry(format!("e{i}"), "big.module"))
                .collect(),
            edges: (0..edges)
                .map(|i| edge(format!("missing{i}"), format!("e{}", i % entries), true))
                .collect(),
        };
        graph.entries.push(entry("small".into(), "small.module"));
        graph.edges.push(edge("e0".into(), "small".into(), false));
        graph
    }

    #[test]
    fn module_details_of_a_huge_module_are_linear() {
        // Not timed, but a quadratic walk shows: looking up each edge's
        // ends by scanning the nodes, as this did, is 200,000 edges × up to
        // 220,000 nodes, minutes in a debug build (40,000 edges took 10 s).
        let graph = hostile(20_000, 200_000);
        let started = std::time::Instant::now();
        let info = node_info(&graph, &repo(), Selection::Group("big.module".into()));
        eprintln!(
            "node_info of a 20,000-entry module, 200,000 edges: {:?}",
            started.elapsed()
        );
        assert_eq!(info.kind, Some(GraphNodeKind::Module));
        assert_eq!(info.group, "big.module");
        assert_eq!(info.total_entries, 20_000);
        assert_eq!(info.entries.len(), MAX_GROUP_ENTRIES);
        assert_eq!(info.entries[0].name, "e0");
        assert_eq!(info.upstream, [views::MISSING_GROUP]);
        assert_eq!(info.downstream, ["small.module"]);

        let info = node_info(&graph, &repo(), Selection::Group("small.module".into()));
        assert_eq!(info.total_entries, 1);
        assert_eq!(info.upstream, ["big.module"]);
        assert!(info.downstream.is_empty());

        let info = node_info(&graph, &repo(), Selection::Node(" e0 ".into()));
        assert_eq!(info.kind, Some(GraphNodeKind::Entry));
        assert_eq!(info.entries.len(), 1);
        assert_eq!(info.upstream.len(), 10, "missing0, missing20000, …");
        assert_eq!(info.downstream, ["small"]);

        for unknown in [
            Selection::Group("no.such.module".into()),
            Selection::Node("nope".into()),
        ] {
            let info = node_info(&graph, &repo(), unknown.clone());
            assert_eq!((info.kind, info.selection), (None, unknown));
        }
    }

    #[test]
    fn modules_that_do_not_exist_are_not_expanded() {
        let graph = hostile(10, 10);
        let full = views::full(&graph);
        let request = |expand: &[&str]| ViewRequest {
            expand: expand.iter().map(|s| (*s).to_owned()).collect(),
            ..ViewRequest::default()
        };
        let asked = asked_view(&request(&["nope", " small.module ", "nope2"])).expect("asked");
        assert_eq!(
            resolve(asked, &full),
            (ViewSpec::Expanded(vec!["small.module".into()]), false)
        );
        let asked = asked_view(&request(&["nope", "big"])).expect("asked");
        assert_eq!(resolve(asked, &full), (ViewSpec::Collapsed, false));
        let too_many: Vec<String> = (0..=MAX_EXPANDED_GROUPS).map(|i| format!("m{i}")).collect();
        let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
        assert!(matches!(
            asked_view(&request(&too_many)),
            Err(ViewerError::BadRequest(_))
        ));
        // Without a view named, by size: 21 nodes are drawn whole.
        let asked = asked_view(&ViewRequest::default()).expect("asked");
        assert_eq!(resolve(asked, &full), (ViewSpec::Full, true));
    }

    #[test]
    fn a_busy_hub_says_try_again() {
        let busy = Err(GraphError::Layout(LayoutError::Busy(DEFAULT_SLOT_WAIT)));
        let drawing = drawing(busy, "repo", "r", &View::Collapsed).expect("a drawing");
        assert_eq!(drawing, Drawing::Failed(BUSY_MESSAGE.into()));
        assert!(BUSY_MESSAGE.contains("Try again"));
    }
}
