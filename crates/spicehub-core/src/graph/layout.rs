//! Graphviz `dot` as the layout engine: a [`ViewGraph`] goes in as DOT on
//! stdin, `-Tjson0` comes out, and is turned into our own [`Layout`], in SVG
//! coordinates (origin top left, y downwards, units of points).
//!
//! `dot` is a separate process because it is the best layered layout there
//! is and it cannot take the hub down with it. Its run time grows quickly
//! with the graph, so every run has a timeout that kills it. It reads labels
//! written in untrusted repositories, so it starts with an empty environment
//! (the hub's holds its secret key, database URL and client secrets), and
//! [`LayoutSlots`] bounds how many run at once.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::views::{NodeKind, ViewGraph};
use super::{fold, pack};
use spicehub_parser::EdgeKind;

/// Long enough for a collapsed view or a few hundred entries on a busy
/// machine; a full view of thousands of nodes is not worth waiting for.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a layout waits for a turn of [`LayoutSlots`] before it gives up
/// with [`LayoutError::Busy`]: a person waiting for a page would rather be
/// told to try again than wait behind a queue of layouts of unknown length.
pub const DEFAULT_SLOT_WAIT: Duration = Duration::from_secs(10);

/// The only environment `dot` gets: numbers and messages in the C locale.
const DOT_ENV: [(&str, &str); 1] = [("LC_ALL", "C")];

/// Above this many nodes or edges, `dot` is told to trade quality for
/// speed ([`DotTuning::LARGE`]).
const LARGE_NODES: usize = 300;
const LARGE_EDGES: usize = 1_000;

/// The `dot` attributes that bound its work on a big graph. Its run time
/// there goes to network simplex (ranking, `nslimit1`, and above all the
/// x coordinates, `nslimit`: both are iteration limits per node, and one
/// iteration on the 40,000 nodes and virtual nodes of a 5,000-entry view
/// costs milliseconds), to crossing minimisation (`mclimit`), and with
/// splines to routing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DotTuning {
    pub splines: &'static str,
    pub mclimit: f64,
    pub nslimit: f64,
    pub nslimit1: f64,
    /// Edges network simplex looks at for a better one (`dot`'s default: 30).
    pub searchsize: u32,
    /// Graphviz's newer ranking (`newrank`): on a 5,000-entry view with
    /// 10,000 edges, the whole layout takes 2.5 s instead of 5.6 s, with
    /// the same crossings, edge length and aspect ratio.
    pub newrank: bool,
}

impl DotTuning {
    /// What big graphs got up to issue 19: 21.5 s for 5,000 entries and
    /// 10,000 edges, 8,450 of the 10,000 x-coordinate iterations taking
    /// most of it. Kept to compare against (`benches/graph_layout.rs`).
    pub const LEGACY: DotTuning = DotTuning {
        splines: "line",
        mclimit: 0.1,
        nslimit: 2.0,
        nslimit1: 2.0,
        searchsize: 30,
        newrank: false,
    };

    /// Big graphs now: x coordinates stop after 0.02 iterations per node,
    /// which leaves nodes of a rank less tightly aligned with their
    /// neighbours, but straight edges make that cheap to read; ranking
    /// stops at half an iteration per node (a few more long edges), and
    /// uses `newrank`.
    pub const LARGE: DotTuning = DotTuning {
        splines: "line",
        mclimit: 0.1,
        nslimit: 0.02,
        nslimit1: 0.5,
        searchsize: 10,
        newrank: true,
    };

    fn attributes(&self) -> String {
        format!(
            "  graph [splines={}, mclimit={}, nslimit={}, nslimit1={}, searchsize={}, newrank={}, remincross=false];\n",
            self.splines, self.mclimit, self.nslimit, self.nslimit1, self.searchsize, self.newrank
        )
    }
}

/// Blank border around the drawing, so strokes at the edge are not clipped.
const MARGIN: f64 = 8.0;

/// Graphviz sizes are in inches; SVG user units here are points.
const POINTS_PER_INCH: f64 = 72.0;

/// At most this much of `dot`'s stderr is kept for the error message.
const STDERR_LIMIT: usize = 4 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<LayoutNode>,
    pub edges: Vec<LayoutEdge>,
    /// The package and module boxes that packed nodes are drawn in,
    /// outermost first (a box comes before the boxes inside it). Empty when
    /// the whole view is one layered drawing; absent from layouts cached
    /// before there were boxes.
    #[serde(default)]
    pub clusters: Vec<LayoutCluster>,
}

/// A box of the package and module hierarchy, drawn behind its content
/// with `label` in its top-left corner (the name relative to the box it is
/// in; `id` is the full dotted path).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutCluster {
    pub id: String,
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// 0 for a box drawn at the top level, 1 inside one, and so on.
    pub depth: u32,
}

/// A node's box: `x`, `y` is its top-left corner, ready for `<rect>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutNode {
    pub id: String,
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub group: String,
    pub kind: NodeKind,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutEdge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    pub dangling: bool,
    pub count: u32,
    /// Cubic B-spline control points (1 + 3n of them): `M p0 C p1 p2 p3 …`;
    /// or the corners of a polyline, for an edge `fold` routed between bands
    /// (never 1 + 3n of them).
    pub points: Vec<(f64, f64)>,
    /// Tip of the arrowhead, when `dot` drew one (the spline stops short of it).
    pub arrow: Option<(f64, f64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("graph layout timed out after {0:?}")]
    Timeout(Duration),
    /// Every slot stayed taken for the whole wait: nothing was started.
    #[error("every Graphviz slot stayed busy for {0:?}")]
    Busy(Duration),
    #[error("Graphviz is not installed (no {0})")]
    NotInstalled(PathBuf),
    #[error("cannot run Graphviz: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("Graphviz failed: {stderr}")]
    Failed { stderr: String },
    #[error("unexpected Graphviz output: {0}")]
    Parse(String),
}

/// At most `n` `dot` processes at once among the [`Layouter`]s that share
/// these slots (clones share them), each waiting at most `wait` for a turn.
#[derive(Debug, Clone)]
pub struct LayoutSlots {
    semaphore: Arc<Semaphore>,
    wait: Duration,
}

/// A turn to run `dot`, given back when dropped.
#[derive(Debug)]
pub struct LayoutSlot {
    _permit: OwnedSemaphorePermit,
}

impl LayoutSlots {
    pub fn new(n: usize, wait: Duration) -> Self {
        LayoutSlots {
            semaphore: Arc::new(Semaphore::new(n)),
            wait,
        }
    }

    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// A turn, or [`LayoutError::Busy`] once `wait` has passed without one.
    pub async fn acquire(&self) -> Result<LayoutSlot, LayoutError> {
        match tokio::time::timeout(self.wait, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(LayoutSlot { _permit: permit }),
            // Closed cannot happen (nothing closes it); treat it as busy.
            Ok(Err(_)) | Err(_) => Err(LayoutError::Busy(self.wait)),
        }
    }
}

/// `dot` processes started by any [`Layouter`] of this process.
static DOT_RUNS: AtomicU64 = AtomicU64::new(0);

/// How many `dot` processes this process has started: for `/metrics`, and
/// for tests that check a view was served without one (a [`Layouter`]'s own
/// [`Layouter::runs`] counts only its clones).
pub fn dot_runs_total() -> u64 {
    DOT_RUNS.load(Ordering::Relaxed)
}

/// Runs `dot`. Cheap to clone; clones share the run counter and the slots.
#[derive(Debug, Clone)]
pub struct Layouter {
    dot: PathBuf,
    timeout: Duration,
    slots: Option<LayoutSlots>,
    runs: Arc<AtomicU64>,
}

impl Default for Layouter {
    fn default() -> Self {
        Layouter {
            dot: PathBuf::from("dot"),
            timeout: DEFAULT_TIMEOUT,
            slots: None,
            runs: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// `dot` as the child is started. The child gets no `PATH`, so a bare
/// name is looked up here, in the hub's own `PATH`; `None` when it is not
/// there.
fn resolve_program(dot: &Path) -> Option<PathBuf> {
    if dot.components().count() != 1 || dot.is_absolute() {
        return Some(dot.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(dot))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

impl Layouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Another `dot` executable (a path, or a name looked up in `PATH`).
    pub fn with_dot(mut self, dot: impl Into<PathBuf>) -> Self {
        self.dot = dot.into();
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Takes a turn of `slots` for every `dot` run (none: no limit).
    pub fn with_slots(mut self, slots: LayoutSlots) -> Self {
        self.slots = Some(slots);
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many times this layouter (or a clone) started `dot`: lets tests
    /// and metrics tell a cache hit from a computation.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Lays out `view`: `dot` for its connected components, packing for
    /// the rest (see [`Plan`]). A view without edges needs no `dot`.
    pub async fn layout(&self, view: &ViewGraph) -> Result<Layout, LayoutError> {
        let plan = Plan::new(view.clone());
        let output = match plan.dot() {
            Some(dot) => Some(self.run_dot(dot).await?),
            None => None,
        };
        plan.finish(output.as_deref())
    }

    /// Runs `dot -Tjson0` on `source` and returns its stdout, once a slot
    /// is free (see [`Layouter::with_slots`]).
    pub async fn run_dot(&self, source: &str) -> Result<Vec<u8>, LayoutError> {
        let _slot = match &self.slots {
            Some(slots) => Some(slots.acquire().await?),
            None => None,
        };
        let program = resolve_program(&self.dot)
            .ok_or_else(|| LayoutError::NotInstalled(self.dot.clone()))?;
        let mut child = Command::new(program)
            .arg("-Tjson0")
            // Nothing of the hub's environment: it holds secrets, and dot
            // reads labels that anyone who can push to a repository wrote.
            .env_clear()
            .envs(DOT_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // If the caller gives up (a closed browser tab drops the
            // request's future), the process must not outlive it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => LayoutError::NotInstalled(self.dot.clone()),
                _ => LayoutError::Spawn(e),
            })?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        DOT_RUNS.fetch_add(1, Ordering::Relaxed);

        let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(LayoutError::Spawn(std::io::Error::other("pipes missing")));
        };
        // Write and read concurrently: a big graph fills the pipes both ways
        // and sequential I/O would deadlock with `dot`.
        let input = source.as_bytes().to_vec();
        let writer = tokio::spawn(async move {
            // A write error means `dot` exited early; its status says why.
            let _ = stdin.write_all(&input).await;
        });
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).await.map(|_| out)
        });
        let err_reader = tokio::spawn(async move {
            let mut err = Vec::new();
            let _ = stderr.read_to_end(&mut err).await;
            err
        });

        let finished = tokio::time::timeout(self.timeout, async {
            let status = child.wait().await;
            let out = reader.await;
            let err = err_reader.await;
            (status, out, err)
        })
        .await;
        let (status, out, err) = match finished {
            Ok(done) => done,
            Err(_) => {
                // kill() also waits for the process, so no zombie is left.
                let _ = child.kill().await;
                writer.abort();
                return Err(LayoutError::Timeout(self.timeout));
            }
        };
        writer.abort();
        let status = status.map_err(LayoutError::Spawn)?;
        let out = out
            .map_err(|e| LayoutError::Spawn(std::io::Error::other(e)))?
            .map_err(LayoutError::Spawn)?;
        if !status.success() {
            let mut err = err.unwrap_or_default();
            err.truncate(STDERR_LIMIT);
            let stderr = String::from_utf8_lossy(&err).trim().to_owned();
            return Err(LayoutError::Failed {
                stderr: if stderr.is_empty() {
                    format!("dot exited with {status}")
                } else {
                    stderr
                },
            });
        }
        Ok(out)
    }
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            // Backslash starts DOT escapes (`\N`, `\l`...) in labels.
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The DOT of a view. Nodes are named `n<index>` and edges carry
/// `id="e<index>"`, so the output maps back to the view without relying
/// on how Graphviz numbers objects, and user names need no DOT quoting
/// except in labels.
pub fn to_dot(view: &ViewGraph) -> String {
    to_dot_tuned(view, DotTuning::LARGE)
}

/// [`to_dot`], with `large` for the attributes of a big graph.
pub fn to_dot_tuned(view: &ViewGraph, large: DotTuning) -> String {
    let mut out = String::with_capacity(64 * (view.nodes.len() + view.edges.len()) + 256);
    out.push_str("digraph spice {\n");
    out.push_str("  graph [rankdir=LR, nodesep=0.15, ranksep=0.5];\n");
    if view.nodes.len() > LARGE_NODES || view.edges.len() > LARGE_EDGES {
        out.push_str(&large.attributes());
    }
    out.push_str(
        "  node [shape=box, fontname=\"Helvetica\", fontsize=10, height=0.25, width=0.4, margin=\"0.06,0.03\"];\n",
    );
    let mut index = std::collections::HashMap::with_capacity(view.nodes.len());
    for (i, node) in view.nodes.iter().enumerate() {
        index.insert(node.id.as_str(), i);
        let _ = writeln!(out, "  n{i} [label={}];", quoted(&node.label));
    }
    for (i, edge) in view.edges.iter().enumerate() {
        if let (Some(from), Some(to)) = (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
        {
            let _ = writeln!(out, "  n{from} -> n{to} [id=\"e{i}\"];");
        }
    }
    out.push_str("}\n");
    out
}

/// How a view is drawn. `dot` draws every connected component in one
/// rank above the other, so a registry of unconnected entries came out as
/// one column thousands of points tall. Here only the components that have
/// an edge go to `dot` (one run for all of them), and those components and
/// every node without an edge are packed in nested package and module boxes
/// ([`pack`]). A view that is one connected component is `dot`'s drawing
/// unchanged.
#[derive(Debug)]
pub struct Plan {
    view: ViewGraph,
    /// What `dot` lays out: the whole view, or its components with edges.
    layered: ViewGraph,
    whole: bool,
    /// For each node of `layered`, its index in `view` and its component.
    origin: Vec<(usize, usize)>,
    components: usize,
    dot: Option<String>,
}

/// One component cut out of `dot`'s drawing: its nodes (with their index
/// in the view) and its edges.
type Part = (Vec<(usize, LayoutNode)>, Vec<LayoutEdge>);

/// Union-find root of `i`, with path halving.
fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

impl Plan {
    pub fn new(view: ViewGraph) -> Plan {
        let n = view.nodes.len();
        let mut index = std::collections::HashMap::with_capacity(n);
        for (i, node) in view.nodes.iter().enumerate() {
            index.entry(node.id.as_str()).or_insert(i);
        }
        let mut parent: Vec<usize> = (0..n).collect();
        let mut has_edge = vec![false; n];
        let mut kept = Vec::with_capacity(view.edges.len());
        for (e, edge) in view.edges.iter().enumerate() {
            // An edge to a node outside the view is not drawn (as in `to_dot`).
            let (Some(&a), Some(&b)) = (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
            else {
                continue;
            };
            kept.push(e);
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
            has_edge[a] = true;
            has_edge[b] = true;
        }
        let mut component_of = vec![usize::MAX; n];
        let mut components = 0;
        let mut edged = vec![false; n];
        for i in 0..n {
            let r = root(&mut parent, i);
            if component_of[r] == usize::MAX {
                component_of[r] = components;
                components += 1;
            }
            component_of[i] = component_of[r];
            edged[component_of[i]] |= has_edge[i];
        }
        let whole = components == 1 && edged[0];
        if whole || n == 0 {
            let dot = (n > 0).then(|| to_dot(&view));
            return Plan {
                view,
                layered: ViewGraph::default(),
                whole,
                origin: vec![],
                components,
                dot,
            };
        }
        let mut layered = ViewGraph::default();
        let mut origin = Vec::new();
        for (i, node) in view.nodes.iter().enumerate() {
            if edged[component_of[i]] {
                layered.nodes.push(node.clone());
                origin.push((i, component_of[i]));
            }
        }
        layered.edges = kept.iter().map(|&e| view.edges[e].clone()).collect();
        let dot = (!layered.nodes.is_empty()).then(|| to_dot(&layered));
        Plan {
            view,
            layered,
            whole,
            origin,
            components,
            dot,
        }
    }

    /// The DOT source to run, if any part of the view is layered.
    pub fn dot(&self) -> Option<&str> {
        self.dot.as_deref()
    }

    /// The layout, from `dot`'s output for [`Plan::dot`] (`None` when
    /// there was nothing to run).
    pub fn finish(self, output: Option<&[u8]>) -> Result<Layout, LayoutError> {
        if self.view.nodes.is_empty() {
            return Ok(Layout {
                width: 2.0 * MARGIN,
                height: 2.0 * MARGIN,
                nodes: vec![],
                edges: vec![],
                clusters: vec![],
            });
        }
        let layered = match (&self.dot, output) {
            (Some(_), Some(output)) if self.whole => {
                let mut layout = parse_json0(&self.view, output)?;
                let mut nodes: Vec<&mut LayoutNode> = layout.nodes.iter_mut().collect();
                if let Some((w, h)) = fold::fold(&mut nodes, &mut layout.edges, (MARGIN, MARGIN)) {
                    for n in &mut layout.nodes {
                        (n.x, n.y) = (round(n.x), round(n.y));
                    }
                    for p in layout
                        .edges
                        .iter_mut()
                        .flat_map(|e| e.points.iter_mut().chain(e.arrow.iter_mut()))
                    {
                        *p = (round(p.0), round(p.1));
                    }
                    (layout.width, layout.height) =
                        (round(w + 2.0 * MARGIN), round(h + 2.0 * MARGIN));
                }
                return Ok(layout);
            }
            (Some(_), Some(output)) => Some(parse_json0(&self.layered, output)?),
            (None, _) => None,
            (Some(_), None) => {
                return Err(LayoutError::Parse("dot's output is missing".into()));
            }
        };
        // Cut dot's drawing into its components, one rigid block each.
        let mut parts: Vec<Part> = vec![(vec![], vec![]); self.components];
        let mut in_block = vec![false; self.view.nodes.len()];
        if let Some(layered) = layered {
            let mut component_by_id = std::collections::HashMap::new();
            for (node, &(i, c)) in layered.nodes.into_iter().zip(&self.origin) {
                component_by_id.insert(node.id.clone(), c);
                in_block[i] = true;
                parts[c].0.push((i, node));
            }
            for edge in layered.edges {
                let Some(&c) = component_by_id.get(&edge.from) else {
                    return Err(LayoutError::Parse(format!(
                        "edge from unknown node {:?}",
                        edge.from
                    )));
                };
                parts[c].1.push(edge);
            }
        }
        let blocks: Vec<pack::Block> = parts
            .into_iter()
            .filter(|(nodes, _)| !nodes.is_empty())
            .map(|(mut nodes, mut edges)| {
                // A long chain is folded before it is packed, or it sets the
                // width of everything packed beside it.
                let mut refs: Vec<&mut LayoutNode> = nodes.iter_mut().map(|(_, n)| n).collect();
                fold::fold(&mut refs, &mut edges, (0.0, 0.0));
                pack::Block::new(nodes, edges)
            })
            .collect();
        let packed = pack::pack(&self.view, &in_block, &blocks);
        let shift = |(x, y): (f64, f64)| (round(x + MARGIN), round(y + MARGIN));
        let nodes = packed
            .nodes
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let mut n =
                    n.ok_or_else(|| LayoutError::Parse(format!("node n{i} was not placed")))?;
                (n.x, n.y) = shift((n.x, n.y));
                (n.w, n.h) = (round(n.w), round(n.h));
                Ok(n)
            })
            .collect::<Result<Vec<_>, LayoutError>>()?;
        let edges = packed
            .edges
            .into_iter()
            .map(|mut e| {
                for p in e.points.iter_mut().chain(e.arrow.iter_mut()) {
                    *p = shift(*p);
                }
                e
            })
            .collect();
        let clusters = packed
            .clusters
            .into_iter()
            .map(|mut c| {
                (c.x, c.y) = shift((c.x, c.y));
                (c.w, c.h) = (round(c.w), round(c.h));
                c
            })
            .collect();
        Ok(Layout {
            width: round(packed.width + 2.0 * MARGIN),
            height: round(packed.height + 2.0 * MARGIN),
            nodes,
            edges,
            clusters,
        })
    }
}

#[derive(Deserialize)]
struct DotJson {
    bb: String,
    #[serde(default)]
    objects: Vec<DotObject>,
    #[serde(default)]
    edges: Vec<DotEdge>,
}

#[derive(Deserialize)]
struct DotObject {
    name: String,
    pos: Option<String>,
    width: Option<String>,
    height: Option<String>,
}

#[derive(Deserialize)]
struct DotEdge {
    id: Option<String>,
    pos: Option<String>,
}

fn number(text: &str) -> Result<f64, LayoutError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| LayoutError::Parse(format!("not a number: {text:?}")))
}

fn point(text: &str) -> Result<(f64, f64), LayoutError> {
    let (x, y) = text
        .split_once(',')
        .ok_or_else(|| LayoutError::Parse(format!("not a point: {text:?}")))?;
    Ok((number(x)?, number(y)?))
}

/// Rounded to 1/100 pt: finer is invisible and makes the cached JSON bigger.
fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Turns `dot -Tjson0` output for `to_dot(view)` into a [`Layout`].
pub fn parse_json0(view: &ViewGraph, output: &[u8]) -> Result<Layout, LayoutError> {
    let json: DotJson =
        serde_json::from_slice(output).map_err(|e| LayoutError::Parse(e.to_string()))?;
    let bb: Vec<f64> = json.bb.split(',').map(number).collect::<Result<_, _>>()?;
    let &[llx, lly, urx, ury] = bb.as_slice() else {
        return Err(LayoutError::Parse(format!(
            "bad bounding box {:?}",
            json.bb
        )));
    };
    // Graphviz has y upwards from the bottom-left corner; SVG downwards from
    // the top-left.
    let flip = |(x, y): (f64, f64)| (round(x - llx + MARGIN), round(ury - y + MARGIN));

    let mut placed: Vec<Option<LayoutNode>> = vec![None; view.nodes.len()];
    for object in &json.objects {
        // Subgraphs are objects too; ours are the `n<index>` nodes.
        let Some(i) = object
            .name
            .strip_prefix('n')
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        let (Some(node), Some(pos)) = (view.nodes.get(i), &object.pos) else {
            continue;
        };
        let w = number(object.width.as_deref().unwrap_or("0"))? * POINTS_PER_INCH;
        let h = number(object.height.as_deref().unwrap_or("0"))? * POINTS_PER_INCH;
        let (cx, cy) = flip(point(pos)?);
        placed[i] = Some(LayoutNode {
            id: node.id.clone(),
            label: node.label.clone(),
            x: round(cx - w / 2.0),
            y: round(cy - h / 2.0),
            w: round(w),
            h: round(h),
            group: node.group.clone(),
            kind: node.kind,
            count: node.count,
        });
    }
    let nodes = placed
        .into_iter()
        .enumerate()
        .map(|(i, n)| n.ok_or_else(|| LayoutError::Parse(format!("node n{i} was not placed"))))
        .collect::<Result<Vec<_>, _>>()?;

    let mut edges = Vec::with_capacity(json.edges.len());
    for edge in &json.edges {
        let Some(i) = edge
            .id
            .as_deref()
            .and_then(|id| id.strip_prefix('e'))
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        let Some(source) = view.edges.get(i) else {
            return Err(LayoutError::Parse(format!("unknown edge e{i}")));
        };
        let mut points = Vec::new();
        let mut arrow = None;
        // "e,x,y" is the arrow tip, "s,x,y" a start arrow (we draw none),
        // the rest the spline's control points.
        for token in edge.pos.as_deref().unwrap_or("").split_whitespace() {
            if let Some(tip) = token.strip_prefix("e,") {
                arrow = Some(flip(point(tip)?));
            } else if token.starts_with("s,") {
                continue;
            } else {
                points.push(flip(point(token)?));
            }
        }
        if points.is_empty() {
            return Err(LayoutError::Parse(format!("edge e{i} has no route")));
        }
        edges.push(LayoutEdge {
            from: source.from.clone(),
            to: source.to.clone(),
            kind: source.kind,
            dangling: source.dangling,
            count: source.count,
            points,
            arrow,
        });
    }
    Ok(Layout {
        width: round(urx - llx + 2.0 * MARGIN),
        height: round(ury - lly + 2.0 * MARGIN),
        nodes,
        edges,
        clusters: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::views::{ViewEdge, ViewNode};

    fn node(id: &str) -> ViewNode {
        ViewNode {
            id: id.into(),
            label: id.into(),
            group: "g".into(),
            kind: NodeKind::Entry,
            count: 1,
        }
    }

    fn edge(from: &str, to: &str) -> ViewEdge {
        ViewEdge {
            from: from.into(),
            to: to.into(),
            kind: EdgeKind::Explicit,
            dangling: false,
            count: 1,
        }
    }

    fn small_view() -> ViewGraph {
        ViewGraph {
            nodes: vec![node("a"), node("b")],
            edges: vec![edge("a", "b")],
        }
    }

    /// A `dot` that writes the environment it was given to `env.txt` beside
    /// itself, then runs the real one.
    fn env_dumping_dot(dir: &Path) -> PathBuf {
        let real = resolve_program(Path::new("dot")).expect("Graphviz installed for the tests");
        let script = dir.join("dot");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nenv > '{}'\nexec '{}' \"$@\"\n",
                dir.join("env.txt").display(),
                real.display()
            ),
        )
        .expect("write script");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        script
    }

    #[tokio::test]
    async fn dot_gets_none_of_the_hubs_environment() {
        // The test process has HOME, PATH and cargo's CARGO_* at least; the
        // hub has its secrets there too.
        assert!(std::env::vars_os().count() > 3);
        let dir = tempfile::tempdir().expect("temp dir");
        let layouter = Layouter::new().with_dot(env_dumping_dot(dir.path()));
        let layout = layouter.layout(&small_view()).await.expect("layout");
        assert_eq!(layout.nodes.len(), 2);
        let dumped = std::fs::read_to_string(dir.path().join("env.txt")).expect("env dumped");
        let mut seen: Vec<&str> = dumped
            .lines()
            // What the shell running the script sets itself.
            .filter(|l| {
                !["PWD=", "OLDPWD=", "SHLVL=", "_="]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, ["LC_ALL=C"], "dot saw:\n{dumped}");
    }

    #[tokio::test]
    async fn a_bare_dot_is_looked_up_in_the_hubs_path() {
        let found = resolve_program(Path::new("dot")).expect("Graphviz on PATH");
        assert!(found.is_absolute(), "{found:?}");
        assert_eq!(
            resolve_program(Path::new("./bin/dot")),
            Some(PathBuf::from("./bin/dot"))
        );
        assert_eq!(resolve_program(Path::new("no-such-graphviz-dot")), None);
        let missing = Layouter::new().with_dot("no-such-graphviz-dot");
        assert!(matches!(
            missing.layout(&small_view()).await,
            Err(LayoutError::NotInstalled(p)) if p == Path::new("no-such-graphviz-dot")
        ));
        assert_eq!(missing.runs(), 0);
        // The default finds the real one without any help.
        assert!(Layouter::new().layout(&small_view()).await.is_ok());
    }

    #[tokio::test]
    async fn a_layout_gives_up_when_every_slot_stays_busy() {
        let slots = LayoutSlots::new(2, Duration::from_millis(50));
        let layouter = Layouter::new().with_slots(slots.clone());
        let first = slots.acquire().await.expect("a free slot");
        let second = slots.acquire().await.expect("a free slot");
        assert_eq!(slots.available(), 0);
        let started = std::time::Instant::now();
        let result = layouter.layout(&small_view()).await;
        assert!(
            matches!(result, Err(LayoutError::Busy(wait)) if wait == Duration::from_millis(50)),
            "{result:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(layouter.runs(), 0, "dot was not started");
        // An empty view needs no dot, so no slot either.
        assert!(layouter.layout(&ViewGraph::default()).await.is_ok());

        drop(first);
        layouter
            .layout(&small_view())
            .await
            .expect("a slot came free");
        assert_eq!(layouter.runs(), 1);
        // The slot is given back once dot is done.
        assert_eq!(slots.available(), 1);
        drop(second);
        assert_eq!(slots.available(), 2);
    }

    #[tokio::test]
    async fn a_waiting_layout_gets_the_slot_that_comes_free() {
        let slots = LayoutSlots::new(1, Duration::from_secs(30));
        let layouter = Layouter::new().with_slots(slots.clone());
        let held = slots.acquire().await.expect("a free slot");
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(held);
        });
        layouter
            .layout(&small_view())
            .await
            .expect("laid out once free");
        release.await.expect("released");
        assert_eq!(layouter.runs(), 1);
    }

    #[test]
    fn dot_source_escapes_labels() {
        let view = ViewGraph {
            nodes: vec![node("a\"b\\c\nd"), node("x")],
            edges: vec![edge("a\"b\\c\nd", "x"), edge("x", "unknown")],
        };
        let dot = to_dot(&view);
        assert!(dot.contains(r#"n0 [label="a\"b\\c\nd"];"#), "{dot}");
        assert!(dot.contains(r#"n0 -> n1 [id="e0"];"#));
        // An edge to a node outside the view is left out, not an error.
        assert!(!dot.contains("e1"));
    }

    #[test]
    fn json0_is_flipped_into_svg_coordinates() {
        let view = ViewGraph {
            nodes: vec![node("a"), node("b")],
            edges: vec![edge("a", "b")],
        };
        let out = br#"{"bb":"0,0,200,100","objects":[
            {"_gvid":0,"name":"n0","pos":"50,80","width":"1","height":"0.5"},
            {"_gvid":1,"name":"n1","pos":"150,20","width":"1","height":"0.5"}],
          "edges":[{"_gvid":0,"tail":0,"head":1,"id":"e0",
            "pos":"e,114,20 86,80 100,60 100,40 107,25"}]}"#;
        let layout = parse_json0(&view, out).expect("parses");
        assert_eq!((layout.width, layout.height), (216.0, 116.0));
        let a = &layout.nodes[0];
        // centre (50, 80) -> (58, 28) in SVG; box 72x36 around it.
        assert_eq!((a.x, a.y, a.w, a.h), (22.0, 10.0, 72.0, 36.0));
        let e = &layout.edges[0];
        assert_eq!(e.points[0], (94.0, 28.0));
        assert_eq!(e.points.len(), 4);
        assert_eq!(e.arrow, Some((122.0, 88.0)));
    }

    #[test]
    fn bad_output_is_a_parse_error() {
        let view = ViewGraph {
            nodes: vec![node("a")],
            edges: vec![],
        };
        for out in [
            &b"not json"[..],
            br#"{"bb":"0,0,1"}"#,
            br#"{"bb":"0,0,1,1","objects":[]}"#,
            br#"{"bb":"0,0,1,1","objects":[{"name":"n0","pos":"x,1"}]}"#,
        ] {
            assert!(
                matches!(parse_json0(&view, out), Err(LayoutError::Parse(_))),
                "{}",
                String::from_utf8_lossy(out)
            );
        }
    }
}
