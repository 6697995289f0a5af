//! JSON (spec §6) and Graphviz DOT renderings of a [`Graph`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{EdgeKind, EntryKind, Graph};

/// Pretty JSON with a trailing newline. The graph is expected sorted (as
/// [`crate::parse_tree`] returns it); serialisation adds no ordering
/// of its own, so equal graphs give identical bytes.
pub fn to_json(graph: &Graph) -> String {
    // Serialising plain structs of strings and numbers cannot fail; fall back
    // to an empty document rather than panic if serde ever disagrees.
    let mut out = serde_json::to_string_pretty(graph).unwrap_or_else(|_| "{}".to_owned());
    out.push('\n');
    out
}

/// Parses JSON produced by [`to_json`].
pub fn from_json(text: &str) -> Result<Graph, serde_json::Error> {
    serde_json::from_str(text)
}

/// Escapes text for a double-quoted DOT string. Backslash starts Graphviz
/// escapes (`\n`, `\l`, `\N`...) in labels, so it is doubled.
fn dot_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", dot_escape(text))
}

/// The DOT node id of an entry: `registry:name`, unique across the graph.
fn node_id(registry: &str, name: &str) -> String {
    quoted(&format!("{registry}:{name}"))
}

/// Graphviz DOT: one `cluster_…` subgraph per registry, one node per entry
/// name, dashed edges (and dashed placeholder nodes) for dangling edges.
pub fn to_dot(graph: &Graph) -> String {
    let mut out = String::new();
    out.push_str("digraph spice {\n");
    out.push_str("  graph [rankdir=LR, fontname=\"Helvetica\"];\n");
    out.push_str("  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\"];\n");

    // Entries registered several times under one name are one node.
    let mut nodes: BTreeMap<(&str, &str), Vec<&crate::model::Entry>> = BTreeMap::new();
    for entry in &graph.entries {
        nodes
            .entry((&entry.registry, &entry.name))
            .or_default()
            .push(entry);
    }
    let known: BTreeSet<(&str, &str)> = nodes.keys().copied().collect();

    for registry in &graph.registries {
        let _ = writeln!(
            out,
            "  subgraph {} {{",
            quoted(&format!("cluster_{}", registry.id))
        );
        let _ = writeln!(
            out,
            "    label={};",
            quoted(&format!("{}\n{}", registry.label, registry.id))
        );
        let _ = writeln!(
            out,
            "    tooltip={};",
            quoted(&format!("{}:{}", registry.file, registry.line))
        );
        for ((_, name), entries) in nodes.range((registry.id.as_str(), "")..) {
            let Some(first) = entries.first() else {
                continue;
            };
            if first.registry != registry.id {
                break;
            }
            let shape = match first.kind {
                EntryKind::Class => ", shape=component",
                EntryKind::Object => ", shape=ellipse",
                EntryKind::Function => "",
            };
            let places: Vec<String> = entries
                .iter()
                .map(|e| format!("{} ({}:{})", e.target, e.file, e.line))
                .collect();
            let _ = writeln!(
                out,
                "    {} [label={}, tooltip={}{shape}];",
                node_id(&registry.id, name),
                quoted(name),
                quoted(&places.join("\n")),
            );
        }
        out.push_str("  }\n");
    }

    // Dangling ends get a dashed node of their own, outside any cluster.
    let mut placeholders = BTreeSet::new();
    for edge in &graph.edges {
        let from = edge_end(&edge.registry, &edge.from, &known);
        if edge.dangling && placeholders.insert(from.clone()) {
            let _ = writeln!(
                out,
                "  {} [label={}, style=dashed];",
                from,
                quoted(&format!("{}?", edge.from))
            );
        }
    }
    for edge in &graph.edges {
        let from = edge_end(&edge.registry, &edge.from, &known);
        let to = node_id(&edge.registry, &edge.to);
        let mut attrs = Vec::new();
        if edge.dangling {
            attrs.push("style=dashed");
        }
        if edge.kind == EdgeKind::Parameter {
            attrs.push("arrowhead=empty");
        }
        if attrs.is_empty() {
            let _ = writeln!(out, "  {from} -> {to};");
        } else {
            let _ = writeln!(out, "  {from} -> {to} [{}];", attrs.join(", "));
        }
    }
    out.push_str("}\n");
    out
}

/// Node id of an edge's `from`: an entry of the edge's registry, an
/// `other.registry:entry` reference, or (dangling) a placeholder.
fn edge_end(registry: &str, from: &str, known: &BTreeSet<(&str, &str)>) -> String {
    if known.contains(&(registry, from)) {
        return node_id(registry, from);
    }
    if let Some((other, name)) = from.rsplit_once(':') {
        if known.contains(&(other, name)) {
            return node_id(other, name);
        }
    }
    quoted(&format!("dangling:{registry}:{from}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Diagnostic, Edge, Entry, Registry, Severity};

    fn sample() -> Graph {
        let mut graph = Graph {
            registries: vec![Registry {
                id: "shop.registries.pipelines".into(),
                label: "pipe\"lines".into(),
                file: "shop/registries.py".into(),
                line: 3,
            }],
            entries: vec![
                Entry {
                    registry: "shop.registries.pipelines".into(),
                    name: "load_users".into(),
                    kind: EntryKind::Function,
                    target: "shop.users.load_users".into(),
                    file: "shop/users.py".into(),
                    line: 12,
                    doc: Some("Load users from the CRM.".into()),
                },
                Entry {
                    registry: "shop.registries.pipelines".into(),
                    name: "fetch_raw".into(),
                    kind: EntryKind::Object,
                    target: "shop.raw.fetch".into(),
                    file: "shop/raw.py".into(),
                    line: 2,
                    doc: None,
                },
            ],
            edges: vec![
                Edge {
                    registry: "shop.registries.pipelines".into(),
                    from: "fetch_raw".into(),
                    to: "load_users".into(),
                    kind: EdgeKind::Explicit,
                    dangling: false,
                },
                Edge {
                    registry: "shop.registries.pipelines".into(),
                    from: "ghost\\x".into(),
                    to: "load_users".into(),
                    kind: EdgeKind::Explicit,
                    dangling: true,
                },
            ],
            diagnostics: vec![Diagnostic::new(
                "shop/broken.py",
                7,
                Severity::Error,
                "syntax error: x",
            )],
        };
        graph.sort();
        graph
    }

    #[test]
    fn json_matches_the_spec_shape() -> Result<(), serde_json::Error> {
        let graph = sample();
        let json = to_json(&graph);
        assert!(json.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&json)?;
        let keys: Vec<_> = value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(keys, vec!["diagnostics", "edges", "entries", "registries"]);
        let entry = &value["entries"][1];
        assert_eq!(entry["name"], "load_users");
        assert_eq!(entry["kind"], "function");
        assert_eq!(entry["doc"], "Load users from the CRM.");
        assert!(
            value["entries"][0]["doc"].is_null(),
            "doc is null, not missing"
        );
        assert_eq!(value["edges"][0]["kind"], "explicit");
        assert_eq!(value["edges"][0]["from"], "fetch_raw");
        assert_eq!(value["diagnostics"][0]["severity"], "error");
        // Field order inside objects follows the spec's example.
        let first_entry_keys: Vec<&str> = json
            .lines()
            .skip_while(|l| !l.contains("\"entries\""))
            .skip(2)
            .take(7)
            .filter_map(|l| l.trim().split('"').nth(1))
            .collect();
        assert_eq!(
            first_entry_keys,
            vec!["registry", "name", "kind", "target", "file", "line", "doc"]
        );
        assert_eq!(from_json(&json)?, graph, "round trip");
        Ok(())
    }

    #[test]
    fn dot_has_clusters_escaping_and_dashed_dangling_edges() {
        let dot = to_dot(&sample());
        assert!(dot.starts_with("digraph spice {\n"));
        assert!(dot.contains("subgraph \"cluster_shop.registries.pipelines\" {"));
        assert!(dot.contains("label=\"pipe\\\"lines\\nshop.registries.pipelines\";"));
        assert!(dot.contains(
            "\"shop.registries.pipelines:fetch_raw\" -> \"shop.registries.pipelines:load_users\";"
        ));
        assert!(dot.contains(
            "\"dangling:shop.registries.pipelines:ghost\\\\x\" -> \"shop.registries.pipelines:load_users\" [style=dashed];"
        ));
        assert!(dot.contains("[label=\"ghost\\\\x?\", style=dashed];"));
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    }
}
