//! The graph viewer's server functions: the Registries tab, a repository's
//! registries and diagnostics, one registry's graph (laid out by Graphviz on
//! the server, cached per commit and view), node details and node search.
//!
//! The types here travel to the browser, so they are plain data compiled in
//! both builds; everything that reads the database sits behind `ssr`. Every
//! function checks that a user is signed in (viewers included) and returns a
//! [`ViewerError`] whose `Display` is the sentence to show.

use leptos::prelude::*;
use leptos::server_fn::codec::{Json, JsonEncoding};
use serde::{Deserialize, Serialize};

/// Default number of hops of the focus view.
pub const DEFAULT_FOCUS_K: u32 = 2;
/// Largest focus radius offered: further than this is most of a graph.
pub const MAX_FOCUS_K: u32 = 6;
/// Longest name, id or query accepted from a request.
pub const MAX_INPUT_LEN: usize = 1_000;
/// Most groups opened at once in the collapsed view.
pub const MAX_EXPANDED_GROUPS: usize = 24;
/// Most search hits returned.
pub const MAX_SEARCH_HITS: usize = 20;
/// Most entries listed for a selected module.
pub const MAX_GROUP_ENTRIES: usize = 200;

/// What went wrong, in words for the person using the viewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ViewerError {
    #[error("You are not signed in (or your session has ended). Sign in again.")]
    NotSignedIn,
    #[error("There is no repository “{0}” with parsed registries. It may have been removed, or it has not synced yet.")]
    RepositoryNotFound(String),
    #[error("Repository “{repository}” has no registry “{registry}” at the commit shown. It may have been renamed or removed in a later commit.")]
    RegistryNotFound {
        repository: String,
        registry: String,
    },
    #[error("The request was not understood: {0}")]
    BadRequest(String),
    #[error("The hub cannot read its database right now. Try again in a moment.")]
    Unavailable,
    #[error("The hub could not be reached ({0}). Check your connection and try again.")]
    Transport(String),
}

impl FromServerFnError for ViewerError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => Self::BadRequest(m),
            other => Self::Transport(other.to_string()),
        }
    }
}

impl ViewerError {
    /// The HTTP status a page showing this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotSignedIn => 401,
            Self::RepositoryNotFound(_) | Self::RegistryNotFound { .. } => 404,
            Self::BadRequest(_) => 400,
            Self::Unavailable => 503,
            Self::Transport(_) => 502,
        }
    }
}

/// One row of the Registries tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRow {
    pub repository_id: String,
    /// `project/name`, or the id when the repository is not (or no longer)
    /// in the repositories table.
    pub repository_name: String,
    pub registry_id: String,
    pub label: String,
    pub file: String,
    pub line: u32,
    pub entry_count: i64,
    pub diagnostics_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticRow {
    pub file: String,
    pub line: u32,
    pub severity: String,
    pub message: String,
    /// The line in Azure DevOps, when the repository's web URL is known.
    pub link: Option<String>,
}

/// Which repository and commit a page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRef {
    pub id: String,
    pub name: String,
    pub web_url: Option<String>,
    /// The visible commit; `None` before the first sync.
    pub commit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryContents {
    pub repository: RepositoryRef,
    pub registries: Vec<RegistryRow>,
    pub diagnostics: Vec<DiagnosticRow>,
}

/// A view of a registry, as the page asks for it and as it was drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewSpec {
    Full,
    Collapsed,
    /// The collapsed view with these modules drawn entry by entry.
    Expanded(Vec<String>),
    /// `k` hops upstream and downstream of one node.
    Focus {
        node: String,
        k: u32,
    },
}

/// What the page's URL asks for; the server picks the view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ViewRequest {
    /// `full` or `collapsed`; anything else means "by size".
    pub mode: Option<String>,
    pub focus: Option<String>,
    pub k: Option<u32>,
    pub expand: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GraphNodeKind {
    /// An entry of the registry.
    Entry,
    /// An entry of another registry.
    External,
    /// A dependency that names nothing (the source of a dangling edge).
    Missing,
    /// A module's box in the collapsed view.
    Module,
}

impl GraphNodeKind {
    pub fn css(self) -> &'static str {
        match self {
            Self::Entry => "entry",
            Self::External => "external",
            Self::Missing => "missing",
            Self::Module => "module",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Entry => "entry",
            Self::External => "entry of another registry",
            Self::Missing => "missing dependency",
            Self::Module => "module",
        }
    }
}

/// A placed node: `x`, `y` is the top-left corner, in SVG user units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    pub id: String,
    pub label: String,
    pub group: String,
    pub kind: GraphNodeKind,
    /// A box standing for a whole group (a module, another registry, the
    /// missing dependencies): selecting it selects the group.
    pub group_box: bool,
    pub count: u32,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
    /// Written in a registration (`depends_on=`…); otherwise found by
    /// parameter name.
    pub explicit: bool,
    pub dangling: bool,
    pub count: u32,
    /// SVG path data, ending at the arrow tip.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphLayout {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// The drawing of a view, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Drawing {
    Ready(GraphLayout),
    /// Graphviz did not finish within the configured time.
    TimedOut {
        timeout_ms: u64,
    },
    /// The focus view names no node of the registry.
    UnknownNode(String),
    /// Graphviz is missing or failed; the message says which.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    pub id: String,
    pub label: String,
    pub file: String,
    pub line: u32,
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryPageData {
    pub repository: RepositoryRef,
    pub registry: RegistryInfo,
    pub entry_count: u32,
    /// Nodes and edges of the full view (entries plus outside dependencies).
    pub node_count: u32,
    pub edge_count: u32,
    pub dangling_count: u32,
    /// Above this many nodes the collapsed view is the default.
    pub collapse_threshold: u32,
    /// The view drawn.
    pub view: ViewSpec,
    /// Whether the view was picked by size (no view in the URL).
    pub automatic: bool,
    pub drawing: Drawing,
    /// When there is no drawing: the best-connected nodes, as starting
    /// points for a focus view.
    pub focus_suggestions: Vec<String>,
}

/// What is selected in the graph: a node of the full graph, or a module box.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Selection {
    Node(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryInfo {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub file: String,
    pub line: u32,
    pub doc: Option<String>,
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub selection: Selection,
    /// `None` when the commit shown has no such node or module.
    pub kind: Option<GraphNodeKind>,
    /// The module (or, for outside nodes, the registry) it belongs to.
    pub group: String,
    /// A node's entries (one, or more when the name is registered twice);
    /// a module's entries, at most [`MAX_GROUP_ENTRIES`].
    pub entries: Vec<EntryInfo>,
    /// A module's entry count (it may exceed the entries listed).
    pub total_entries: u32,
    /// Direct dependencies (upstream) and dependants (downstream).
    pub upstream: Vec<String>,
    pub downstream: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub name: String,
    pub group: String,
    pub kind: GraphNodeKind,
}

/// `/registries/<repository>/<registry>`, each part percent-encoded.
pub fn registry_path(repository: &str, registry: &str) -> String {
    format!(
        "/registries/{}/{}",
        encode_component(repository),
        encode_component(registry)
    )
}

/// `/registries/<repository>`.
pub fn repository_path(repository: &str) -> String {
    format!("/registries/{}", encode_component(repository))
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string (with `?`, or empty) of a view and a selection.
pub fn view_query(view: &ViewSpec, automatic: bool, selection: Option<&Selection>) -> String {
    let mut parts: Vec<String> = Vec::new();
    match view {
        _ if automatic => {}
        ViewSpec::Full => parts.push("view=full".into()),
        ViewSpec::Collapsed => parts.push("view=collapsed".into()),
        ViewSpec::Expanded(groups) => {
            parts.extend(
                groups
                    .iter()
                    .map(|g| format!("expand={}", encode_component(g))),
            );
        }
        ViewSpec::Focus { node, k } => {
            parts.push(format!("focus={}", encode_component(node)));
            parts.push(format!("k={k}"));
        }
    }
    match selection {
        Some(Selection::Node(n)) => parts.push(format!("node={}", encode_component(n))),
        Some(Selection::Group(g)) => parts.push(format!("group={}", encode_component(g))),
        None => {}
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The Azure DevOps address of a line: `{web_url}?path=/{file}&line={line}`,
/// pinned to `commit` when it is a full commit id. `None` unless `web_url`
/// is an http(s) URL (it is shown as a link).
pub fn source_link(
    web_url: Option<&str>,
    commit: Option<&str>,
    file: &str,
    line: u32,
) -> Option<String> {
    let base = web_url?.trim();
    let lower = base.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) || base.contains(['?', '#'])
    {
        return None;
    }
    let mut path = String::from("/");
    for b in file.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            path.push(char::from(b));
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    let mut link = format!("{}?path={path}&line={line}", base.trim_end_matches('/'));
    if let Some(commit) =
        commit.filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        link.push_str("&version=GC");
        link.push_str(commit);
    }
    Some(link)
}

#[server(prefix = "/api", endpoint = "registries")]
pub async fn list_registries(q: String) -> Result<Vec<RegistryRow>, ViewerError> {
    backend::signed_in()?;
    let db = backend::db()?;
    let q = backend::bounded(&q, "filter")?;
    let rows = db
        .list_registries(Some(q))
        .await
        .map_err(backend::unavailable)?;
    Ok(rows.into_iter().map(backend::registry_row).collect())
}

#[server(prefix = "/api", endpoint = "repository")]
pub async fn repository_overview(repository: String) -> Result<RepositoryContents, ViewerError> {
    backend::signed_in()?;
    let db = backend::db()?;
    let repository = backend::bounded(&repository, "repository")?;
    let (repo, commit) = backend::repository_ref(&db, repository).await?;
    let registries = db
        .repository_registries(&repo.id)
        .await
        .map_err(backend::unavailable)?;
    let diagnostics = match &commit {
        Some(commit) => db
            .snapshot_diagnostics(&repo.id, commit)
            .await
            .map_err(backend::unavailable)?,
        None => vec![],
    };
    let diagnostics = diagnostics
        .into_iter()
        .map(|d| DiagnosticRow {
            link: source_link(repo.web_url.as_deref(), commit.as_deref(), &d.file, d.line),
            severity: backend::severity(d.severity).to_owned(),
            file: d.file,
            line: d.line,
            message: d.message,
        })
        .collect();
    Ok(RepositoryContents {
        registries: registries.into_iter().map(backend::registry_row).collect(),
        diagnostics,
        repository: repo,
    })
}

#[server(prefix = "/api", endpoint = "registry_view", input = Json)]
pub async fn registry_view(
    repository: String,
    registry: String,
    request: ViewRequest,
) -> Result<RegistryPageData, ViewerError> {
    backend::signed_in()?;
    let db = backend::db()?;
    backend::registry_view(&db, &repository, &registry, request).await
}

#[server(prefix = "/api", endpoint = "node_details", input = Json)]
pub async fn node_details(
    repository: String,
    registry: String,
    selection: Selection,
) -> Result<NodeInfo, ViewerError> {
    backend::signed_in()?;
    let db = backend::db()?;
    backend::node_details(&db, &repository, &registry, selection).await
}

#[server(prefix = "/api", endpoint = "search_nodes", input = Json)]
pub async fn search_nodes(
    repository: String,
    registry: String,
    query: String,
) -> Result<Vec<SearchHit>, ViewerError> {
    backend::signed_in()?;
    let db = backend::db()?;
    backend::search_nodes(&db, &repository, &registry, &query).await
}

#[cfg(feature = "ssr")]
mod backend {
    use std::collections::HashSet;

    use tokio::sync::Semaphore;

    use super::*;
    use spicehub_core::db::graphs::{RegistryGraph, RegistrySummary};
    use spicehub_core::db::{Db, DbError};
    use spicehub_core::graph::views::{self, NodeKind, ViewGraph};
    use spicehub_core::graph::{
        get_or_compute_layout, svg, GraphError, Layout, LayoutError, Layouter, View,
        DEFAULT_COLLAPSE_THRESHOLD,
    };
    use spicehub_parser::{EdgeKind, Entry, EntryKind, Severity};

    /// `dot` runs at once, hub-wide: layouts are CPU-bound, and a burst of
    /// uncached views must not starve the requests that only read.
    static LAYOUT_SLOTS: Semaphore = Semaphore::const_new(2);

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
    pub fn unavailable(error: DbError) -> ViewerError {
        tracing::error!(error = %error, "viewer: database error");
        crate::api::session::set_status(503);
        ViewerError::Unavailable
    }

    fn fail(error: ViewerError) -> ViewerError {
        crate::api::session::set_status(error.status());
        error
    }

    /// Refuses over-long input (ids, names and queries are short).
    pub fn bounded<'a>(text: &'a str, what: &str) -> Result<&'a str, ViewerError> {
        if text.len() > MAX_INPUT_LEN {
            return Err(fail(ViewerError::BadRequest(format!(
                "the {what} is longer than {MAX_INPUT_LEN} characters"
            ))));
        }
        Ok(text.trim())
    }

    pub fn severity(severity: Severity) -> &'static str {
        match severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    pub fn registry_row(s: RegistrySummary) -> RegistryRow {
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
    pub async fn repository_ref(
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
        let repository = bounded(repository, "repository")?;
        let registry = bounded(registry, "registry")?;
        let (repo, commit) = repository_ref(db, repository).await?;
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
        Ok((repo, commit, graph))
    }

    fn kind_of(kind: NodeKind) -> GraphNodeKind {
        match kind {
            NodeKind::Entry => GraphNodeKind::Entry,
            NodeKind::External => GraphNodeKind::External,
            NodeKind::Missing => GraphNodeKind::Missing,
            NodeKind::Module => GraphNodeKind::Module,
        }
    }

    fn to_graph_layout(layout: Layout, spec: &ViewSpec) -> GraphLayout {
        let is_box = |group: &str| match spec {
            ViewSpec::Collapsed => true,
            ViewSpec::Expanded(open) => !open.iter().any(|g| g == group),
            ViewSpec::Full | ViewSpec::Focus { .. } => false,
        };
        GraphLayout {
            width: layout.width,
            height: layout.height,
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

    /// The view the request names, given the full view's node ids.
    fn pick_view(request: &ViewRequest, full: &ViewGraph) -> Result<(ViewSpec, bool), ViewerError> {
        if let Some(node) = request
            .focus
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let node = bounded(node, "node")?;
            let k = request.k.unwrap_or(DEFAULT_FOCUS_K).min(MAX_FOCUS_K);
            return Ok((
                ViewSpec::Focus {
                    node: node.to_owned(),
                    k,
                },
                false,
            ));
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
            return Ok(match View::expanded(groups) {
                View::Expanded { groups } => (ViewSpec::Expanded(groups), false),
                _ => (ViewSpec::Collapsed, false),
            });
        }
        Ok(match request.mode.as_deref() {
            Some("full") => (ViewSpec::Full, false),
            Some("collapsed") => (ViewSpec::Collapsed, false),
            _ => match View::default_for(full.nodes.len(), DEFAULT_COLLAPSE_THRESHOLD) {
                View::Collapsed => (ViewSpec::Collapsed, true),
                _ => (ViewSpec::Full, true),
            },
        })
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

    pub async fn registry_view(
        db: &Db,
        repository: &str,
        registry: &str,
        request: ViewRequest,
    ) -> Result<RegistryPageData, ViewerError> {
        let (repo, commit, graph) = load(db, repository, registry).await?;
        let full = views::full(&graph);
        let (spec, automatic) = pick_view(&request, &full)?;
        let view = to_view(&spec);
        let drawing = match &spec {
            ViewSpec::Focus { node, .. } if !full.nodes.iter().any(|n| &n.id == node) => {
                Drawing::UnknownNode(node.clone())
            }
            _ => draw(db, &repo.id, &commit, &graph.registry.id, &view, &spec).await?,
        };
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let focus_suggestions = match &drawing {
            Drawing::Ready(_) => vec![],
            _ => best_connected(&full, 12),
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
            node_count: count(full.nodes.len()),
            edge_count: count(full.edges.len()),
            dangling_count: count(full.edges.iter().filter(|e| e.dangling).count()),
            collapse_threshold: count(DEFAULT_COLLAPSE_THRESHOLD),
            view: spec,
            automatic,
            drawing,
            repository: repo,
        })
    }

    /// The layout of a view: cached, or computed by `dot` (at most
    /// [`LAYOUT_SLOTS`] at a time) and cached.
    async fn draw(
        db: &Db,
        repository: &str,
        commit: &str,
        registry: &str,
        view: &View,
        spec: &ViewSpec,
    ) -> Result<Drawing, ViewerError> {
        let timeout = config()
            .map(|c| c.layout_timeout)
            .unwrap_or(spicehub_core::graph::layout::DEFAULT_TIMEOUT);
        let layouter = Layouter::new().with_timeout(timeout);
        let cached = db
            .cached_layout(repository, commit, registry, &view.key())
            .await
            .map_err(unavailable)?;
        let _slot = match cached {
            Some(_) => None,
            // A closed semaphore cannot happen (it is never closed).
            None => LAYOUT_SLOTS.acquire().await.ok(),
        };
        match get_or_compute_layout(db, &layouter, repository, commit, registry, view).await {
            Ok(Some(layout)) => Ok(Drawing::Ready(to_graph_layout(layout, spec))),
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
    ) -> Result<NodeInfo, ViewerError> {
        let (repo, _commit, graph) = load(db, repository, registry).await?;
        let full = views::full(&graph);
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
                let name = bounded(name, "node")?;
                let Some(node) = full.nodes.iter().find(|n| n.id == name) else {
                    return Ok(details);
                };
                details.kind = Some(kind_of(node.kind));
                details.group = node.group.clone();
                details.entries = graph
                    .entries
                    .iter()
                    .filter(|e| e.name == name)
                    .map(|e| entry_info(e, &repo))
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
                let group = bounded(group, "module")?;
                let members: Vec<&views::ViewNode> =
                    full.nodes.iter().filter(|n| n.group == group).collect();
                if members.is_empty() {
                    return Ok(details);
                }
                details.kind = Some(if members.iter().any(|n| n.kind == NodeKind::Entry) {
                    GraphNodeKind::Module
                } else {
                    kind_of(members[0].kind)
                });
                details.group = group.to_owned();
                let names: HashSet<&str> = members.iter().map(|n| n.id.as_str()).collect();
                details.total_entries = u32::try_from(members.len()).unwrap_or(u32::MAX);
                let mut seen = HashSet::new();
                details.entries = graph
                    .entries
                    .iter()
                    .filter(|e| names.contains(e.name.as_str()) && seen.insert(e.name.as_str()))
                    .take(MAX_GROUP_ENTRIES)
                    .map(|e| entry_info(e, &repo))
                    .collect();
                let group_of = |id: &str| {
                    full.nodes
                        .iter()
                        .find(|n| n.id == id)
                        .map(|n| n.group.clone())
                };
                let mut up = HashSet::new();
                let mut down = HashSet::new();
                for edge in &full.edges {
                    let (from_in, to_in) = (
                        names.contains(edge.from.as_str()),
                        names.contains(edge.to.as_str()),
                    );
                    if to_in && !from_in {
                        if let Some(g) = group_of(&edge.from) {
                            if up.insert(g.clone()) {
                                details.upstream.push(g);
                            }
                        }
                    }
                    if from_in && !to_in {
                        if let Some(g) = group_of(&edge.to) {
                            if down.insert(g.clone()) {
                                details.downstream.push(g);
                            }
                        }
                    }
                }
            }
        }
        Ok(details)
    }

    pub async fn search_nodes(
        db: &Db,
        repository: &str,
        registry: &str,
        query: &str,
    ) -> Result<Vec<SearchHit>, ViewerError> {
        let query = bounded(query, "search")?.to_lowercase();
        if query.is_empty() {
            return Ok(vec![]);
        }
        let (_repo, _commit, graph) = load(db, repository, registry).await?;
        let full = views::full(&graph);
        // Exact names first, then prefixes, then other matches; by name within.
        let mut hits: Vec<(u8, &views::ViewNode)> = full
            .nodes
            .iter()
            .filter_map(|n| {
                let id = n.id.to_lowercase();
                if id == query {
                    Some((0, n))
                } else if id.starts_with(&query) {
                    Some((1, n))
                } else if id.contains(&query) {
                    Some((2, n))
                } else {
                    None
                }
            })
            .collect();
        hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(hits
            .into_iter()
            .take(MAX_SEARCH_HITS)
            .map(|(_, n)| SearchHit {
                name: n.id.clone(),
                group: n.group.clone(),
                kind: kind_of(n.kind),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_the_line_and_only_for_web_urls() {
        let web = Some("https://dev.azure.com/org/proj/_git/repo");
        assert_eq!(
            source_link(web, None, "pkg/mod.py", 12).as_deref(),
            Some("https://dev.azure.com/org/proj/_git/repo?path=/pkg/mod.py&line=12")
        );
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            source_link(web, Some(sha), "a b.py", 1).as_deref(),
            Some(
                "https://dev.azure.com/org/proj/_git/repo?path=/a%20b.py&line=1\
                 &version=GC0123456789abcdef0123456789abcdef01234567"
            )
        );
        assert_eq!(
            source_link(Some("javascript:alert(1)"), None, "a.py", 1),
            None
        );
        assert_eq!(source_link(None, None, "a.py", 1), None);
    }

    #[test]
    fn paths_and_queries_are_encoded() {
        assert_eq!(
            registry_path("repo 1", "pkg.reg/x"),
            "/registries/repo%201/pkg.reg%2Fx"
        );
        assert_eq!(view_query(&ViewSpec::Collapsed, true, None), "");
        assert_eq!(
            view_query(
                &ViewSpec::Focus {
                    node: "a&b".into(),
                    k: 3
                },
                false,
                Some(&Selection::Node("c d".into()))
            ),
            "?focus=a%26b&k=3&node=c%20d"
        );
        assert_eq!(
            view_query(
                &ViewSpec::Expanded(vec!["m.one".into(), "m.two".into()]),
                false,
                Some(&Selection::Group("m.two".into()))
            ),
            "?expand=m.one&expand=m.two&group=m.two"
        );
    }
}
