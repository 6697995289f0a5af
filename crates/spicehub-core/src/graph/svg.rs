//! A plain SVG drawing of a [`Layout`]: boxes with labels, edges as paths,
//! dangling edges dashed. Used where the viewer needs a static picture (and
//! by the benchmark to measure the page weight of a big graph); every user
//! string is escaped, since labels come from the repository.

use std::fmt::Write as _;

use super::layout::{Layout, LayoutEdge};
use super::views::NodeKind;

/// Escapes text for SVG element content and attribute values (quotes
/// included, so one function serves both).
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

/// The SVG path data (`d`) of an edge: its B-spline as cubic Béziers (or
/// straight segments when `dot` gave no spline), then the arrow tip. `None`
/// for an edge without points.
pub fn edge_path(edge: &LayoutEdge) -> Option<String> {
    let ((x0, y0), rest) = edge.points.split_first()?;
    let mut d = format!("M{x0},{y0}");
    // dot gives 1 + 3n control points; anything else is drawn as lines.
    if rest.len() % 3 == 0 && !rest.is_empty() {
        for c in rest.chunks(3) {
            let _ = write!(
                d,
                "C{},{} {},{} {},{}",
                c[0].0, c[0].1, c[1].0, c[1].1, c[2].0, c[2].1
            );
        }
    } else {
        for (x, y) in rest {
            let _ = write!(d, "L{x},{y}");
        }
    }
    if let Some((x, y)) = edge.arrow {
        let _ = write!(d, "L{x},{y}");
    }
    Some(d)
}

/// The SVG document of `layout`. Classes (`cluster`, `node`, `entry`,
/// `module`, `external`, `missing`, `edge`, `dangling`, `parameter`) carry the look,
/// so the page's stylesheet can restyle it; the inline attributes are the
/// fallback for a standalone file.
pub fn render(layout: &Layout) -> String {
    let mut out = String::with_capacity(160 * (layout.nodes.len() + layout.edges.len()) + 512);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"10\">\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\"/>\
         </marker></defs>",
        w = layout.width,
        h = layout.height
    );
    // Behind everything: the package and module boxes that hold the rest.
    if !layout.clusters.is_empty() {
        out.push_str("<g class=\"clusters\">");
        for c in &layout.clusters {
            let _ =
                write!(
                out,
                "<g class=\"cluster\" data-id=\"{id}\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" \
                 height=\"{h}\" rx=\"3\" fill=\"{fill}\" stroke=\"#bbb\"/>\
                 <text x=\"{tx}\" y=\"{ty}\" font-weight=\"bold\">{label}</text></g>",
                id = escape(&c.id),
                x = c.x,
                y = c.y,
                w = c.w,
                h = c.h,
                // Nested boxes alternate, so a box stands out from its parent.
                fill = if c.depth % 2 == 0 { "#f7f7f7" } else { "#ffffff" },
                tx = c.x + super::pack::LABEL_INSET.0,
                ty = c.y + super::pack::LABEL_INSET.1,
                label = escape(&c.label),
            );
        }
        out.push_str("</g>");
    }
    out.push_str("<g class=\"edges\" fill=\"none\" stroke=\"#555\">");
    for edge in &layout.edges {
        let Some(d) = edge_path(edge) else {
            continue;
        };
        let mut class = String::from("edge");
        if edge.dangling {
            class.push_str(" dangling");
        }
        if edge.kind == spicehub_parser::EdgeKind::Parameter {
            class.push_str(" parameter");
        }
        let _ = write!(
            out,
            "<path class=\"{class}\" d=\"{d}\" marker-end=\"url(#arrow)\"{dash}><title>{title}</title></path>",
            dash = if edge.dangling { " stroke-dasharray=\"4 3\"" } else { "" },
            title = escape(&if edge.count > 1 {
                format!("{} → {} ({})", edge.from, edge.to, edge.count)
            } else {
                format!("{} → {}", edge.from, edge.to)
            }),
        );
    }
    out.push_str("</g><g class=\"nodes\">");
    for node in &layout.nodes {
        let (kind, fill) = match node.kind {
            NodeKind::Entry => ("entry", "#eef4ff"),
            NodeKind::Module => ("module", "#e8f5e9"),
            NodeKind::External => ("external", "#f3e5f5"),
            NodeKind::Missing => ("missing", "#ffebee"),
        };
        let _ = write!(
            out,
            "<g class=\"node {kind}\" data-id=\"{id}\"><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" \
             height=\"{h}\" rx=\"4\" fill=\"{fill}\" stroke=\"#333\"{dash}/>\
             <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"middle\" dominant-baseline=\"central\">{label}</text></g>",
            id = escape(&node.id),
            x = node.x,
            y = node.y,
            w = node.w,
            h = node.h,
            dash = if node.kind == NodeKind::Missing { " stroke-dasharray=\"4 3\"" } else { "" },
            tx = node.x + node.w / 2.0,
            ty = node.y + node.h / 2.0,
            label = escape(&node.label),
        );
    }
    out.push_str("</g></svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::layout::{LayoutCluster, LayoutEdge, LayoutNode};
    use spicehub_parser::EdgeKind;

    #[test]
    fn renders_escaped_nodes_and_dashed_dangling_edges() {
        let layout = Layout {
            width: 100.0,
            height: 50.0,
            nodes: vec![LayoutNode {
                id: "<a&\"b\">".into(),
                label: "<script>alert('x')</script>".into(),
                x: 1.0,
                y: 2.0,
                w: 30.0,
                h: 10.0,
                group: "g".into(),
                kind: NodeKind::Entry,
                count: 1,
            }],
            edges: vec![
                LayoutEdge {
                    from: "missing".into(),
                    to: "<a&\"b\">".into(),
                    kind: EdgeKind::Explicit,
                    dangling: true,
                    count: 1,
                    points: vec![(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)],
                    arrow: Some((4.0, 4.0)),
                },
                LayoutEdge {
                    from: "x".into(),
                    to: "y".into(),
                    kind: EdgeKind::Parameter,
                    dangling: false,
                    count: 3,
                    points: vec![(0.0, 0.0), (5.0, 5.0)],
                    arrow: None,
                },
            ],
            clusters: vec![LayoutCluster {
                id: "pkg.<mod>".into(),
                label: "<mod>".into(),
                x: 0.0,
                y: 0.0,
                w: 90.0,
                h: 40.0,
                depth: 0,
            }],
        };
        let svg = render(&layout);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"));
        assert!(svg.contains("data-id=\"&lt;a&amp;&quot;b&quot;&gt;\""));
        assert!(svg.contains("class=\"edge dangling\" d=\"M0,0C1,1 2,2 3,3L4,4\""));
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("class=\"edge parameter\" d=\"M0,0L5,5\""));
        assert!(svg.contains("x → y (3)"));
        assert_eq!(svg.matches("stroke-dasharray").count(), 1);
        // Boxes come first, so they are drawn behind nodes and edges.
        let cluster = svg
            .find("<g class=\"cluster\" data-id=\"pkg.&lt;mod&gt;\">")
            .expect("cluster drawn");
        assert!(cluster < svg.find("class=\"edges\"").expect("edges"));
        assert!(svg.contains(">&lt;mod&gt;</text>"));
    }
}
