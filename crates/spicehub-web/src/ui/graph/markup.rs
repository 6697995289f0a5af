//! The drawing's many static elements (package boxes, edges, entries) as
//! SVG markup, set on their group with `inner_html`. Hydration adopts
//! markup it is given that way without walking it, where a view per
//! element cost a DOM walk, a closure and a listener each: for 5,000
//! entries and 10,000 edges that was seconds before the page answered.
//! What changes after the first render (the highlight) is written on the
//! few elements concerned by [`Lit`]; a click is handled once for all
//! entries by the group (see `GraphCanvas`).
//!
//! Every string from the repository (ids, labels, titles) is escaped here,
//! since nothing else stands between it and the page.

use std::collections::HashSet;
use std::fmt::Write as _;

use html_escape::{encode_double_quoted_attribute_to_string, encode_text_to_string};

use super::{aria_label, node_element_id, Highlight};
use crate::api::viewer::GraphLayout;

/// Where a box's name starts (its baseline) from the box's corner: the
/// server's `graph::pack::LABEL_INSET`, which this crate cannot import
/// (it is built for the browser too); the SVG export draws from that one.
const CLUSTER_LABEL_INSET: (f64, f64) = (3.0, 13.0);

/// The package and module boxes, behind everything else.
pub fn clusters(layout: &GraphLayout) -> String {
    let mut out = String::with_capacity(160 * layout.clusters.len());
    for c in &layout.clusters {
        let parity = if c.depth % 2 == 0 { "even" } else { "odd" };
        let _ = write!(out, "<g class=\"cluster {parity}\" data-cluster=\"");
        encode_double_quoted_attribute_to_string(&c.id, &mut out);
        out.push_str("\">");
        rect_and_text(
            &mut out,
            (c.x, c.y, c.w, c.h),
            " rx=\"3\"",
            (c.x + CLUSTER_LABEL_INSET.0, c.y + CLUSTER_LABEL_INSET.1),
        );
        encode_text_to_string(&c.label, &mut out);
        out.push_str("</text></g>");
    }
    out
}

/// The edges, in the layout's order (the group's n-th child is edge n).
/// `boxed` names the entries drawn inside summaries: their edges go with them.
pub fn edges(layout: &GraphLayout, boxed: &HashSet<String>, highlight: &Highlight) -> String {
    let mut out = String::with_capacity(200 * layout.edges.len());
    for e in &layout.edges {
        let kind = if e.dangling {
            "dangling"
        } else if e.explicit {
            "explicit"
        } else {
            "parameter"
        };
        // The arrowhead and dashes follow the classes in the style sheet.
        let _ = write!(out, "<path class=\"edge {kind}");
        if boxed.contains(&e.from) || boxed.contains(&e.to) {
            out.push_str(" boxed");
        }
        if let Some(state) = highlight.edge_state(&e.from, &e.to) {
            let _ = write!(out, " {state}");
        }
        if let Some(change) = e.change {
            let _ = write!(out, " {}", change.css());
        }
        out.push_str("\" d=\"");
        encode_double_quoted_attribute_to_string(&e.path, &mut out);
        out.push_str("\"><title>");
        encode_text_to_string(&e.from, &mut out);
        out.push_str(" → ");
        encode_text_to_string(&e.to, &mut out);
        if e.count > 1 {
            let _ = write!(out, " ({} edges)", e.count);
        }
        if let Some(change) = e.change {
            let _ = write!(out, " ({})", change.describe());
        }
        out.push_str("</title></path>");
    }
    out
}

/// The entries (and module boxes), in the layout's order (the group's n-th
/// child is node n). Each is a link, so selecting one works without the
/// script; `href` gives the address that selects node n.
pub fn nodes(
    layout: &GraphLayout,
    boxed: &[bool],
    highlight: &Highlight,
    href: impl Fn(usize) -> String,
) -> String {
    let mut out = String::with_capacity(320 * layout.nodes.len());
    for (i, n) in layout.nodes.iter().enumerate() {
        let _ = write!(out, "<g class=\"node {}", n.kind.css());
        if n.group_box {
            out.push_str(" group");
        }
        if boxed.get(i).copied().unwrap_or(false) {
            out.push_str(" boxed");
        }
        if let Some(state) = highlight.node_state(&n.id) {
            let _ = write!(out, " {state}");
        }
        if let Some(change) = n.change {
            let _ = write!(out, " {}", change.css());
        }
        let _ = write!(out, "\"><a id=\"{}\" href=\"", node_element_id(i));
        encode_double_quoted_attribute_to_string(href(i), &mut out);
        out.push_str("\" aria-label=\"");
        encode_double_quoted_attribute_to_string(aria_label(n), &mut out);
        out.push_str("\" data-node=\"");
        encode_double_quoted_attribute_to_string(&n.id, &mut out);
        out.push_str("\">");
        let centre = (n.x + n.w / 2.0, n.y + n.h / 2.0);
        rect_and_text(&mut out, (n.x, n.y, n.w, n.h), "", centre);
        encode_text_to_string(&n.label, &mut out);
        out.push_str("</text></a></g>");
    }
    out
}

/// A box, then the opening of the label drawn at `at` (the caller writes
/// the escaped text and closes it).
fn rect_and_text(
    out: &mut String,
    (x, y, w, h): (f64, f64, f64, f64),
    extra: &str,
    at: (f64, f64),
) {
    let _ = write!(
        out,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\"{extra}></rect><text x=\"{}\" y=\"{}\">",
        at.0, at.1
    );
}

/// The node an element id made by [`node_element_id`] names.
// Read by the browser's click handler only.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn node_index(element_id: &str) -> Option<usize> {
    element_id.strip_prefix("graph-node-")?.parse().ok()
}

/// Which nodes and edges (by index) carry a highlight class, and which:
/// what changes on the page when the selection does. Everything else is
/// dimmed by one class on the drawing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lit {
    pub nodes: Vec<(usize, &'static str)>,
    pub edges: Vec<(usize, &'static str)>,
}

impl Lit {
    pub fn of(layout: &GraphLayout, highlight: &Highlight) -> Self {
        if highlight.selected.is_none() {
            return Lit::default();
        }
        Lit {
            nodes: layout
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| highlight.node_state(&n.id).map(|s| (i, s)))
                .collect(),
            edges: layout
                .edges
                .iter()
                .enumerate()
                .filter_map(|(i, e)| highlight.edge_state(&e.from, &e.to).map(|s| (i, s)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::viewer::{GraphCluster, GraphEdge, GraphNode};

    fn node(id: &str, label: &str) -> GraphNode {
        GraphNode {
            label: label.into(),
            x: 1.5,
            y: 2.0,
            ..super::super::tests::node(id, 0.0)
        }
    }

    fn edge(from: &str, to: &str) -> GraphEdge {
        GraphEdge {
            path: "M0,0L1,1".into(),
            ..super::super::tests::edge(from, to)
        }
    }

    fn layout() -> GraphLayout {
        GraphLayout {
            width: 100.0,
            height: 50.0,
            nodes: vec![
                node("a", "<script>alert(1)</script>"),
                node("b\" onmouseover=\"x", "b & co"),
                node("c", "c"),
            ],
            edges: vec![edge("a", "b\" onmouseover=\"x"), edge("c", "a")],
            clusters: vec![GraphCluster {
                id: "pkg</g><script>".into(),
                label: "pkg <b>".into(),
                depth: 0,
                x: 0.0,
                y: 0.0,
                w: 50.0,
                h: 50.0,
            }],
        }
    }

    #[test]
    fn repository_strings_cannot_become_markup() {
        let l = layout();
        let all = [
            clusters(&l),
            edges(&l, &HashSet::new(), &Highlight::default()),
            nodes(&l, &[], &Highlight::default(), |i| {
                format!("/r?node={i}&k=2")
            }),
        ]
        .concat();
        assert!(!all.contains("<script"), "{all}");
        assert!(!all.contains("<b>"), "{all}");
        // No tag gained an attribute: a quote is harmless in text, and
        // escaped in attributes.
        for tag in all
            .split('<')
            .filter_map(|t| t.split_once('>'))
            .map(|(tag, _)| tag)
        {
            assert!(!tag.contains("onmouseover=\""), "{tag}");
        }
        assert!(all.contains("data-node=\"b&quot; onmouseover=&quot;x\""));
        assert!(all.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(all.contains("b &amp; co"));
        assert!(all.contains("href=\"/r?node=1&amp;k=2\""));
    }

    #[test]
    fn one_element_per_node_and_edge_in_layout_order() {
        let l = layout();
        let n = nodes(&l, &[false, true], &Highlight::default(), |_| "#".into());
        assert_eq!(n.matches("<g class=\"node").count(), 3);
        let ids: Vec<usize> = n
            .match_indices("id=\"graph-node-")
            .map(|(at, _)| {
                let rest = &n[at + 4..];
                node_index(&rest[..rest.find('"').unwrap_or(0)]).unwrap_or(usize::MAX)
            })
            .collect();
        assert_eq!(ids, [0, 1, 2]);
        assert!(n.contains("<g class=\"node entry boxed\"><a id=\"graph-node-1\""));
        let e = edges(&l, &HashSet::from(["c".to_owned()]), &Highlight::default());
        assert_eq!(e.matches("<path class=\"edge").count(), 2);
        assert!(
            e.contains("<path class=\"edge explicit boxed\" d=\"M0,0L1,1\"><title>c → a</title>")
        );
        assert_eq!(node_index(&node_element_id(12)), Some(12));
        assert_eq!(node_index("graph-node-x"), None);
        assert_eq!(node_index("other-1"), None);
    }

    #[test]
    fn a_diff_marks_its_nodes_and_edges() {
        let mut l = layout();
        l.nodes[0].change = Some(crate::api::viewer::ChangeMark::Added);
        l.edges[0].change = Some(crate::api::viewer::ChangeMark::Removed);
        let n = nodes(&l, &[], &Highlight::default(), |_| String::new());
        assert!(n.contains("<g class=\"node entry added\"><a id=\"graph-node-0\""));
        // The class, and the label a screen reader reads.
        assert_eq!(n.matches("added").count(), 2, "{n}");
        assert!(n.contains("aria-label=\"a: entry, added\""), "{n}");
        let e = edges(&l, &HashSet::new(), &Highlight::default());
        assert!(e.contains("class=\"edge explicit removed\""), "{e}");
        assert!(e.contains("(removed)</title>"));
    }

    #[test]
    fn the_highlight_is_drawn_and_lit_names_what_carries_it() {
        let l = layout();
        let h = Highlight::of(&l, Some("a"));
        let n = nodes(&l, &[], &h, |_| "#".into());
        assert!(n.contains("<g class=\"node entry selected\"><a id=\"graph-node-0\""));
        assert!(n.contains("<g class=\"node entry upstream\"><a id=\"graph-node-2\""));
        assert!(n.contains("<g class=\"node entry downstream\"><a id=\"graph-node-1\""));
        let e = edges(&l, &HashSet::new(), &h);
        assert!(e.contains("class=\"edge explicit downstream\""));
        assert!(e.contains("class=\"edge explicit upstream\""));
        let lit = Lit::of(&l, &h);
        assert_eq!(
            lit.nodes,
            [(0, "selected"), (1, "downstream"), (2, "upstream")]
        );
        assert_eq!(lit.edges, [(0, "downstream"), (1, "upstream")]);
        assert_eq!(Lit::of(&l, &Highlight::default()), Lit::default());
        // Unrelated entries carry no class: the drawing's `lit` dims them.
        let h = Highlight::of(&l, Some("c"));
        assert_eq!(
            Lit::of(&l, &h).nodes,
            [(0, "downstream"), (1, "downstream"), (2, "selected")]
        );
    }
}
