//! The viewer's wire types: what its server functions take and return, the
//! limits they enforce and [`ViewerError`]. They travel between the server
//! and the browser, so they are plain data (serde, no server-only
//! dependency) compiled in both builds; the server half builds them in
//! `ssr`, the pages read them.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
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
    #[error("Commit {commit} of repository “{repository}” is not in the hub's history: it was never synced, or it is older than what the hub keeps. The repository's timeline lists the commits kept.")]
    CommitNotKept { repository: String, commit: String },
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
            Self::RepositoryNotFound(_)
            | Self::RegistryNotFound { .. }
            | Self::CommitNotKept { .. } => 404,
            Self::BadRequest(_) => 400,
            Self::Unavailable => 503,
            Self::Transport(_) => 502,
        }
    }
}

/// An entry found by the Registries tab's search, in any registry of any
/// repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryHitRow {
    pub repository_id: String,
    /// `project/name`, or the id when the repository is not in the
    /// repositories table.
    pub repository_name: String,
    pub registry_id: String,
    pub name: String,
    /// `function`, `class` or `object`.
    pub kind: String,
    pub file: String,
    pub line: u32,
    /// The line in Azure DevOps, pinned to the commit shown.
    pub source: Option<String>,
}

/// The entries found, best first, and whether more matched than are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryHits {
    pub hits: Vec<EntryHitRow>,
    pub more: bool,
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
    /// A kept commit to show instead of the current one (`commit=`).
    #[serde(default)]
    pub commit: Option<String>,
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

/// How a node or edge of a diff's drawing fared between the two commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeMark {
    Added,
    /// Drawn as a ghost: it is only in the older commit.
    Removed,
    Changed,
}

impl ChangeMark {
    pub fn css(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        }
    }

    /// The sign a change list shows.
    pub fn sign(self) -> &'static str {
        match self {
            Self::Added => "+",
            Self::Removed => "−",
            Self::Changed => "~",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
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
    /// In a diff's drawing, how it changed; `None` elsewhere.
    #[serde(default)]
    pub change: Option<ChangeMark>,
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
    /// In a diff's drawing, how it changed; `None` elsewhere.
    #[serde(default)]
    pub change: Option<ChangeMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphLayout {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// The package and module boxes a packed layout draws its entries in,
    /// outermost first; empty for a layout that is one connected drawing.
    #[serde(default)]
    pub clusters: Vec<GraphCluster>,
}

/// A box of the package and module hierarchy: `x`, `y` is its top-left
/// corner; its label sits in the strip the layout leaves at its top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphCluster {
    pub id: String,
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// 0 at the top level, 1 inside one box, and so on.
    pub depth: u32,
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
    /// Set when the page shows a kept commit other than the current one
    /// (`repository.commit` is then that commit).
    #[serde(default)]
    pub past: Option<CommitRow>,
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

/// A synced commit as the timeline and the diff view name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRow {
    pub commit: String,
    pub short: String,
    pub author: Option<String>,
    /// When it was authored, as shown (UTC).
    pub authored: Option<String>,
    /// The message's first line.
    pub title: Option<String>,
    /// When the hub synced it, as shown (UTC).
    pub synced: String,
    /// The commit in Azure DevOps.
    pub link: Option<String>,
    /// It is the commit the viewer shows by default.
    pub current: bool,
}

/// One registry's changes in a timeline row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryChangeRow {
    pub registry: String,
    /// `added`, `removed` or `changed` (the registry itself).
    pub status: String,
    pub entries_added: u32,
    pub entries_removed: u32,
    pub entries_changed: u32,
    pub edges_added: u32,
    pub edges_removed: u32,
    pub edges_changed: u32,
    /// The diff view of this registry for this commit, when its base is kept.
    pub diff: Option<String>,
    /// The registry at this commit, unless the commit removed it.
    pub open: Option<String>,
}

/// A synced commit and what it changed against the previous synced one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineRow {
    pub commit: CommitRow,
    /// The first commit the hub kept for this repository: everything in it
    /// is new to the hub, so no changes are counted.
    pub first: bool,
    pub registries: Vec<RegistryChangeRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineData {
    pub repository: RepositoryRef,
    /// Newest first.
    pub commits: Vec<TimelineRow>,
    /// What the hub keeps, in words.
    pub retention: String,
}

/// What the diff view asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiffRequest {
    /// The older commit; by default the synced commit before `to`.
    pub from: Option<String>,
    /// The newer commit; by default the current one.
    pub to: Option<String>,
    /// `changed` (changes and their neighbours) or `all`; by default all,
    /// unless the registry is too big to read whole.
    pub show: Option<String>,
}

/// One line of the diff view's change list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub mark: ChangeMark,
    /// `entry` or `edge`.
    pub what: String,
    /// The entry's name, or `from → to`.
    pub name: String,
    /// What changed, in words (`doc, line 3 → 5`); the place of an entry.
    pub detail: String,
    /// Where it is (or was) in Azure DevOps.
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryDiffData {
    pub repository: RepositoryRef,
    pub registry: String,
    pub from: CommitRow,
    pub to: CommitRow,
    pub changes: Vec<ChangeRow>,
    /// Only the changes and their neighbours are drawn.
    pub changed_only: bool,
    /// Entries drawn (both commits' entries together, or the changed part).
    pub drawn_entries: u32,
    /// `None` when nothing changed (nothing to draw).
    pub drawing: Option<Drawing>,
}
