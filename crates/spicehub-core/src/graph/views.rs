//! What of a registry is drawn: every entry ([`View::Full`]), one box per
//! module ([`View::Collapsed`], for registries too big to read node by
//! node), the collapsed view with some modules opened
//! ([`View::Expanded`]), or the neighbourhood of one entry ([`View::Focus`]).
//!
//! A view is a plain graph ([`ViewGraph`]) that `layout` hands to Graphviz.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::db::graphs::RegistryGraph;
use spicehub_parser::{module_name, EdgeKind};

/// Above this many nodes the full view is unreadable (and slow to lay out):
/// the viewer starts with the collapsed view.
pub const DEFAULT_COLLAPSE_THRESHOLD: usize = 500;

/// Bumped whenever the layout of a view changes, so that layouts cached by
/// an older hub are not served (the version is part of the cache key).
const VIEW_FORMAT: &str = "v4";

/// Group of the nodes that stand for dangling dependencies.
pub const MISSING_GROUP: &str = "(missing)";

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "view")]
pub enum View {
    Full,
    Collapsed,
    /// The collapsed view with these groups drawn entry by entry (sorted,
    /// without duplicates: see [`View::expanded`]).
    Expanded {
        groups: Vec<String>,
    },
    /// The entries within `k` edges upstream or downstream of `node`.
    Focus {
        node: String,
        k: u32,
    },
}

impl View {
    /// The view to open first for a registry of `node_count` nodes.
    pub fn default_for(node_count: usize, threshold: usize) -> View {
        if node_count > threshold {
            View::Collapsed
        } else {
            View::Full
        }
    }

    /// The collapsed view with `groups` opened, normalised (sorted and
    /// deduplicated) so that one set of groups has one cache key. No group
    /// is the collapsed view itself.
    pub fn expanded(groups: impl IntoIterator<Item = String>) -> View {
        let groups: Vec<String> = groups
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if groups.is_empty() {
            View::Collapsed
        } else {
            View::Expanded { groups }
        }
    }

    /// This view of `full`, keeping only the expanded groups that `full`
    /// has: a group name is free text from a request, and every distinct
    /// set of groups would otherwise be a `dot` run and a cached layout
    /// (none left is the collapsed view). Other views are unchanged.
    pub fn within(self, full: &ViewGraph) -> View {
        match self {
            View::Expanded { groups } => {
                let known: HashSet<&str> = full.nodes.iter().map(|n| n.group.as_str()).collect();
                View::expanded(groups.into_iter().filter(|g| known.contains(g.as_str())))
            }
            other => other,
        }
    }

    /// The layout cache key of this view.
    pub fn key(&self) -> String {
        match self {
            View::Full => format!("{VIEW_FORMAT}:full"),
            View::Collapsed => format!("{VIEW_FORMAT}:collapsed"),
            // JSON: group names may contain any character.
            View::Expanded { groups } => format!(
                "{VIEW_FORMAT}:expanded:{}",
                serde_json::to_string(groups).unwrap_or_default()
            ),
            // The node name goes last: it may contain ':'.
            View::Focus { node, k } => format!("{VIEW_FORMAT}:focus:{k}:{node}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// An entry of the registry.
    Entry,
    /// An entry of another registry (`other.registry:entry`).
    External,
    /// A dependency that names no entry (a dangling edge's source).
    Missing,
    /// A module of the collapsed view.
    Module,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewNode {
    /// Unique in the view: the entry name, the dependency as written, or
    /// the module name.
    pub id: String,
    pub label: String,
    /// The Python module the node belongs to (the collapsed view's boxes).
    pub group: String,
    pub kind: NodeKind,
    /// Entries this node stands for: 1, or a module's entry count.
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewEdge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    pub dangling: bool,
    /// Edges this one stands for: 1, or the aggregated count between modules.
    pub count: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewGraph {
    pub nodes: Vec<ViewNode>,
    pub edges: Vec<ViewEdge>,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("the registry has no node {0:?}")]
    UnknownNode(String),
}

/// The view of `graph` that `view` names.
pub fn build(graph: &RegistryGraph, view: &View) -> Result<ViewGraph, ViewError> {
    from_full(full(graph), view)
}

/// The view that `view` names, of a registry whose [`full`] view is `full`.
pub fn from_full(full: ViewGraph, view: &View) -> Result<ViewGraph, ViewError> {
    match view {
        View::Full => Ok(full),
        View::Collapsed => Ok(collapsed(&full)),
        View::Expanded { groups } => Ok(expanded(&full, groups)),
        View::Focus { node, k } => focus(&full, node, *k),
    }
}

/// The group of a dependency that is not an entry of the registry.
fn outside_group(name: &str, dangling: bool) -> (String, NodeKind) {
    match name.split_once(':') {
        Some((registry, _)) if !dangling => (registry.to_owned(), NodeKind::External),
        _ => (MISSING_GROUP.to_owned(), NodeKind::Missing),
    }
}

/// Every entry (one node per name, as `parser::to_dot` draws them) and
/// every edge, with a node for each dependency outside the registry.
pub fn full(graph: &RegistryGraph) -> ViewGraph {
    let mut out = ViewGraph::default();
    let mut seen: HashSet<&str> = HashSet::new();
    for entry in &graph.entries {
        if seen.insert(&entry.name) {
            out.nodes.push(ViewNode {
                id: entry.name.clone(),
                label: entry.name.clone(),
                // A file that is not a module (a notebook export, say) is
                // its own group rather than lost.
                group: module_name(&entry.file).unwrap_or_else(|| entry.file.clone()),
                kind: NodeKind::Entry,
                count: 1,
            });
        }
    }
    for edge in &graph.edges {
        for (name, is_source) in [(&edge.from, true), (&edge.to, false)] {
            if seen.insert(name) {
                // `to` is always an entry of the registry; an unknown one
                // can only come from a damaged snapshot and is drawn as missing.
                let (group, kind) = outside_group(name, edge.dangling || !is_source);
                out.nodes.push(ViewNode {
                    id: name.clone(),
                    label: name.clone(),
                    group,
                    kind,
                    count: 1,
                });
            }
        }
        out.edges.push(ViewEdge {
            from: edge.from.clone(),
            to: edge.to.clone(),
            kind: edge.kind,
            dangling: edge.dangling,
            count: 1,
        });
    }
    out
}

/// One node per group of `full`, labelled with its entry count; edges
/// between groups aggregated with their count. Edges inside a group are
/// hidden: the box stands for them.
pub fn collapsed(full: &ViewGraph) -> ViewGraph {
    let mut groups: BTreeMap<&str, (u32, NodeKind)> = BTreeMap::new();
    let mut group_of: HashMap<&str, &str> = HashMap::new();
    for node in &full.nodes {
        let slot = groups.entry(&node.group).or_insert((
            0,
            if node.kind == NodeKind::Entry {
                NodeKind::Module
            } else {
                node.kind
            },
        ));
        slot.0 += node.count;
        if node.kind == NodeKind::Entry {
            slot.1 = NodeKind::Module;
        }
        group_of.insert(&node.id, &node.group);
    }
    let mut edges: BTreeMap<(&str, &str), ViewEdge> = BTreeMap::new();
    for edge in &full.edges {
        let (Some(&from), Some(&to)) = (
            group_of.get(edge.from.as_str()),
            group_of.get(edge.to.as_str()),
        ) else {
            continue;
        };
        if from == to {
            continue;
        }
        let agg = edges.entry((from, to)).or_insert_with(|| ViewEdge {
            from: from.to_owned(),
            to: to.to_owned(),
            kind: EdgeKind::Parameter,
            dangling: true,
            count: 0,
        });
        agg.count += edge.count;
        // Explicit wins: it is what the user wrote.
        if edge.kind == EdgeKind::Explicit {
            agg.kind = EdgeKind::Explicit;
        }
        agg.dangling &= edge.dangling;
    }
    ViewGraph {
        nodes: groups
            .into_iter()
            .map(|(group, (count, kind))| ViewNode {
                id: group.to_owned(),
                label: format!("{group} ({count})"),
                group: group.to_owned(),
                kind,
                count,
            })
            .collect(),
        edges: edges.into_values().collect(),
    }
}

/// The collapsed view of `full`, except that the nodes of `groups` are
/// drawn one by one: edges between an opened node and a closed group go to
/// the group's box (aggregated), edges inside an opened group are kept, and
/// edges inside a closed group are hidden as in [`collapsed`]. A closed
/// group's box keeps the group name as its id, as in the collapsed view.
pub fn expanded(full: &ViewGraph, groups: &[String]) -> ViewGraph {
    let open: HashSet<&str> = groups.iter().map(String::as_str).collect();
    let (opened, closed): (Vec<&ViewNode>, Vec<&ViewNode>) = full
        .nodes
        .iter()
        .partition(|n| open.contains(n.group.as_str()));
    let boxes = collapsed(&ViewGraph {
        nodes: closed.into_iter().cloned().collect(),
        edges: vec![],
    });
    // Where each node of the full view is drawn: itself, or its group's box.
    let mut drawn_as: HashMap<&str, &str> = HashMap::new();
    for node in &full.nodes {
        let at = if open.contains(node.group.as_str()) {
            node.id.as_str()
        } else {
            node.group.as_str()
        };
        drawn_as.insert(&node.id, at);
    }
    let mut edges: Vec<ViewEdge> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    for edge in &full.edges {
        let (Some(&from), Some(&to)) = (
            drawn_as.get(edge.from.as_str()),
            drawn_as.get(edge.to.as_str()),
        ) else {
            continue;
        };
        let between_nodes = from == edge.from && to == edge.to;
        if from == to && !between_nodes {
            continue;
        }
        if between_nodes {
            edges.push(edge.clone());
            continue;
        }
        match index.get(&(from, to)) {
            Some(&i) => {
                let agg = &mut edges[i];
                agg.count += edge.count;
                if edge.kind == EdgeKind::Explicit {
                    agg.kind = EdgeKind::Explicit;
                }
                agg.dangling &= edge.dangling;
            }
            None => {
                index.insert((from, to), edges.len());
                edges.push(ViewEdge {
                    from: from.to_owned(),
                    to: to.to_owned(),
                    kind: edge.kind,
                    dangling: edge.dangling,
                    count: edge.count,
                });
            }
        }
    }
    let mut nodes: Vec<ViewNode> = opened.into_iter().cloned().collect();
    nodes.extend(boxes.nodes);
    ViewGraph { nodes, edges }
}

/// The nodes within `k` edges of `node` following edges backwards
/// (upstream: what it depends on) or forwards (downstream: what depends on
/// it), and the edges among them. Siblings reached by going up then down
/// are not included: they are not related to the node.
pub fn focus(full: &ViewGraph, node: &str, k: u32) -> Result<ViewGraph, ViewError> {
    if !full.nodes.iter().any(|n| n.id == node) {
        return Err(ViewError::UnknownNode(node.to_owned()));
    }
    let mut down: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut up: HashMap<&str, Vec<&str>> = HashMap::new();
    for edge in &full.edges {
        down.entry(&edge.from).or_default().push(&edge.to);
        up.entry(&edge.to).or_default().push(&edge.from);
    }
    let mut keep: HashSet<&str> = HashSet::from([node]);
    for adjacency in [&down, &up] {
        let mut seen: HashSet<&str> = HashSet::from([node]);
        let mut queue = VecDeque::from([(node, 0u32)]);
        while let Some((at, depth)) = queue.pop_front() {
            if depth == k {
                continue;
            }
            for next in adjacency.get(at).into_iter().flatten() {
                if seen.insert(next) {
                    queue.push_back((*next, depth + 1));
                }
            }
        }
        keep.extend(seen);
    }
    Ok(ViewGraph {
        nodes: full
            .nodes
            .iter()
            .filter(|n| keep.contains(n.id.as_str()))
            .cloned()
            .collect(),
        edges: full
            .edges
            .iter()
            .filter(|e| keep.contains(e.from.as_str()) && keep.contains(e.to.as_str()))
            .cloned()
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spicehub_parser::{Edge, Entry, EntryKind, Registry};

    fn entry(name: &str, file: &str) -> Entry {
        Entry {
            registry: "r".into(),
            name: name.into(),
            kind: EntryKind::Function,
            target: format!("m.{name}"),
            file: file.into(),
            line: 1,
            doc: None,
        }
    }

    fn edge(from: &str, to: &str, kind: EdgeKind, dangling: bool) -> Edge {
        Edge {
            registry: "r".into(),
            from: from.into(),
            to: to.into(),
            kind,
            dangling,
        }
    }

    /// a -> b -> c -> d, e -> c, missing -> a, other:x -> b;
    /// a, b in pkg.one; c, d, e in pkg.two.
    fn sample() -> RegistryGraph {
        RegistryGraph {
            registry: Registry {
                id: "r".into(),
                label: "r".into(),
                file: "pkg/reg.py".into(),
                line: 1,
            },
            entries: vec![
                entry("a", "pkg/one.py"),
                entry("b", "pkg/one.py"),
                entry("b", "pkg/one.py"),
                entry("c", "src/pkg/two.py"),
                entry("d", "src/pkg/two.py"),
                entry("e", "src/pkg/two.py"),
            ],
            edges: vec![
                edge("a", "b", EdgeKind::Explicit, false),
                edge("b", "c", EdgeKind::Parameter, false),
                edge("b", "d", EdgeKind::Parameter, false),
                edge("c", "d", EdgeKind::Explicit, false),
                edge("e", "c", EdgeKind::Parameter, false),
                edge("missing", "a", EdgeKind::Explicit, true),
                edge("other.reg:x", "b", EdgeKind::Explicit, false),
            ],
        }
    }

    #[test]
    fn full_view_has_one_node_per_name_and_outside_nodes() {
        let v = full(&sample());
        let ids: Vec<&str> = v.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e", "missing", "other.reg:x"]);
        assert_eq!(v.nodes[2].group, "pkg.two");
        assert_eq!(v.nodes[5].kind, NodeKind::Missing);
        assert_eq!(v.nodes[6].kind, NodeKind::External);
        assert_eq!(v.nodes[6].group, "other.reg");
        assert_eq!(v.edges.len(), 7);
    }

    #[test]
    fn collapsed_view_counts_nodes_and_aggregates_edges() {
        let v = collapsed(&full(&sample()));
        let nodes: Vec<(&str, u32)> = v
            .nodes
            .iter()
            .map(|n| (n.label.as_str(), n.count))
            .collect();
        assert_eq!(
            nodes,
            [
                ("(missing) (1)", 1),
                ("other.reg (1)", 1),
                ("pkg.one (2)", 2),
                ("pkg.two (3)", 3)
            ]
        );
        let one_two = v
            .edges
            .iter()
            .find(|e| e.from == "pkg.one" && e.to == "pkg.two")
            .expect("aggregated edge");
        assert_eq!(one_two.count, 2);
        assert_eq!(one_two.kind, EdgeKind::Parameter);
        assert!(!one_two.dangling);
        let missing = v
            .edges
            .iter()
            .find(|e| e.from == MISSING_GROUP)
            .expect("dangling edge");
        assert!(missing.dangling);
        // pkg.two's internal edges (c->d, e->c) are inside its box.
        assert_eq!(v.edges.len(), 3);
    }

    #[test]
    fn focus_view_follows_edges_up_and_down_only() {
        let f = full(&sample());
        let ids = |v: &ViewGraph| {
            let mut ids: Vec<String> = v.nodes.iter().map(|n| n.id.clone()).collect();
            ids.sort();
            ids
        };
        // c: up 1 = b, e; down 1 = d. Not a (2 up), not missing.
        let v = focus(&f, "c", 1).expect("known node");
        assert_eq!(ids(&v), ["b", "c", "d", "e"]);
        assert!(v.edges.iter().all(|e| e.from != "a"));
        // d: up 1 = b, c; not e (a sibling of d through c, and 2 hops up).
        assert_eq!(ids(&focus(&f, "d", 1).expect("known")), ["b", "c", "d"]);
        assert_eq!(
            ids(&focus(&f, "d", 2).expect("known")),
            ["a", "b", "c", "d", "e", "other.reg:x"]
        );
        assert_eq!(ids(&focus(&f, "a", 0).expect("known")), ["a"]);
        assert!(matches!(
            focus(&f, "nope", 1),
            Err(ViewError::UnknownNode(n)) if n == "nope"
        ));
    }

    #[test]
    fn expanded_view_opens_groups_and_aggregates_the_rest() {
        let f = full(&sample());
        let v = expanded(&f, &["pkg.one".to_owned()]);
        let mut ids: Vec<&str> = v.nodes.iter().map(|n| n.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["(missing)", "a", "b", "other.reg", "pkg.two"]);
        let two = v.nodes.iter().find(|n| n.id == "pkg.two").expect("box");
        assert_eq!((two.kind, two.count), (NodeKind::Module, 3));
        let find = |from: &str, to: &str| {
            v.edges
                .iter()
                .find(|e| e.from == from && e.to == to)
                .cloned()
        };
        // a -> b stays; b -> c and b -> d become one edge to pkg.two.
        assert!(find("a", "b").is_some());
        assert_eq!(find("b", "pkg.two").expect("aggregated").count, 2);
        assert!(find("(missing)", "a").expect("dangling").dangling);
        assert!(find("other.reg", "b").is_some());
        // Edges inside the closed pkg.two are hidden.
        assert_eq!(v.edges.len(), 4);
        assert_eq!(View::expanded(Vec::new()), View::Collapsed);
        assert_eq!(
            View::expanded(["b".to_owned(), "a".to_owned(), "b".to_owned()]),
            View::Expanded {
                groups: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn expanded_views_keep_only_groups_that_exist() {
        let f = full(&sample());
        let asked = View::expanded(["pkg.two", "nope", "pkg.one", "pkg"].map(String::from));
        assert_eq!(
            asked.within(&f),
            View::Expanded {
                groups: vec!["pkg.one".into(), "pkg.two".into()]
            }
        );
        // Outside groups exist too: their nodes can be drawn one by one.
        assert_eq!(
            View::expanded([MISSING_GROUP.to_owned()]).within(&f),
            View::expanded([MISSING_GROUP.to_owned()])
        );
        // Nothing left: the collapsed view, one cache key for all junk.
        let junk = |n: usize| View::expanded((0..n).map(|i| format!("junk{i}")));
        assert_eq!(junk(3).within(&f), View::Collapsed);
        assert_eq!(junk(3).within(&f).key(), junk(7).within(&f).key());
        for view in [
            View::Full,
            View::Collapsed,
            View::Focus {
                node: "nope".into(),
                k: 1,
            },
        ] {
            assert_eq!(view.clone().within(&f), view);
        }
    }

    #[test]
    fn view_keys_differ_and_collapse_threshold_applies() {
        let keys: HashSet<String> = [
            View::Full,
            View::Collapsed,
            View::Focus {
                node: "a".into(),
                k: 1,
            },
            View::Focus {
                node: "a".into(),
                k: 2,
            },
            View::expanded(["a".to_owned()]),
            View::expanded(["a".to_owned(), "b".to_owned()]),
        ]
        .iter()
        .map(View::key)
        .collect();
        assert_eq!(keys.len(), 6);
        assert_eq!(
            View::default_for(500, DEFAULT_COLLAPSE_THRESHOLD),
            View::Full
        );
        assert_eq!(
            View::default_for(501, DEFAULT_COLLAPSE_THRESHOLD),
            View::Collapsed
        );
    }
}
