//! Folding a layered drawing that is far wider than a window: its ranks are
//! cut into bands, stacked top to bottom like lines of text, so that the
//! drawing takes the window's shape and "Fit" shows it at a size that can
//! be seen.
//!
//! `dot` draws left to right, one rank after the other, so a long chain
//! (a pipeline of 30 steps, or the 5,000-entry registry where every entry
//! depends on the one before) comes out as a strip hundreds of times wider
//! than tall: at "Fit" its boxes are a fraction of a pixel tall and the
//! drawing looks empty. Graphviz has no wrapping of ranks and no layered
//! layout crate does it, so the bands are cut here, after `dot`: ranks stay
//! whole (a band boundary falls between two ranks), an edge within a band
//! keeps `dot`'s route, and an edge from one band to another is routed
//! like a line break: out of its tail, along the gap between the bands and
//! into its head from the left.

use std::collections::HashMap;

use super::layout::{LayoutEdge, LayoutNode};
use super::pack::{bounds, VIEWPORT};

/// A drawing is folded only when it is more than this many times as wide,
/// for its height, as the window (a drawing somewhat wider than the window
/// reads well as it is).
const FOLD_FROM: f64 = 2.0;

/// ... and wider than the window at one unit a pixel: a short chain that
/// fits is left on one line.
const MIN_WIDTH: f64 = VIEWPORT.0;

/// Space between two bands: the channel that edges from one band to the
/// next run along.
const BAND_GAP: f64 = 24.0;

/// How far an edge routed between bands runs straight out of its tail and
/// into its head before it turns.
const STUB: f64 = 6.0;

/// Length of the last straight stretch before an arrow's tip, as `dot`
/// leaves it (the arrowhead is drawn over it).
const ARROW: f64 = 10.0;

/// Points of an edge routed between bands: a polyline's corners. Never
/// 1 + 3n, which the renderers would read as cubic segments.
pub const ROUTE_CORNERS: usize = 6;

/// The size of the drawing after folding, its top-left corner at `origin`,
/// or `None` if it was left as it was. Nodes and edges are moved in place.
pub fn fold(
    nodes: &mut [&mut LayoutNode],
    edges: &mut [LayoutEdge],
    origin: (f64, f64),
) -> Option<(f64, f64)> {
    if nodes.is_empty() {
        return None;
    }
    let (x0, y0, x1, y1) = bounds(nodes.iter().map(|n| &**n), edges)?;
    let (width, height) = (x1 - x0, y1 - y0);
    let window = VIEWPORT.0 / VIEWPORT.1;
    if width <= MIN_WIDTH || height <= 0.0 || width / height <= FOLD_FROM * window {
        return None;
    }
    // b bands of width W/b and height H stack to (W/b) × (bH + (b-1)gap):
    // about the window's shape when b² = W / (window (H + gap)).
    let wanted = (width / (window * (height + BAND_GAP)))
        .sqrt()
        .round()
        .max(2.0);

    // Ranks are the distinct centre abscissas (`dot` centres a rank's
    // nodes on one vertical line when drawing left to right).
    let centre = |n: &LayoutNode| n.x + n.w / 2.0;
    let mut ranks: Vec<f64> = nodes.iter().map(|n| centre(n)).collect();
    ranks.sort_by(f64::total_cmp);
    ranks.dedup_by(|a, b| (*a - *b).abs() < 0.5);
    let bands = (wanted as usize).min(ranks.len());
    if bands < 2 {
        return None;
    }
    // The first rank of each band: the band holds the ranks whose centre is
    // at or past its share of the width (never an empty band: each starts
    // at least one rank after the one before).
    let mut starts = vec![ranks[0]];
    let mut next = 1;
    for k in 1..bands {
        let cut = x0 + width * k as f64 / bands as f64;
        let from = ranks[next..]
            .iter()
            .position(|&r| r >= cut)
            .map_or(ranks.len(), |p| next + p);
        let from = from.max(next);
        if from >= ranks.len() {
            break;
        }
        starts.push(ranks[from]);
        next = from + 1;
    }
    let bands = starts.len();
    if bands < 2 {
        return None;
    }
    let band_of = |x: f64| starts.partition_point(|&s| s <= x + 0.5).saturating_sub(1);

    // Each band starts at the left of its leftmost node and moves down one
    // band height (plus the gap) per band.
    let node_band: Vec<usize> = nodes.iter().map(|n| band_of(centre(n))).collect();
    let mut left = vec![f64::MAX; bands];
    for (n, &b) in nodes.iter().zip(&node_band) {
        left[b] = left[b].min(n.x);
    }
    // An edge into a band's first rank turns left of it: room for that.
    let inset = STUB + ARROW;
    let shift: Vec<(f64, f64)> = (0..bands)
        .map(|b| {
            (
                origin.0 + inset - left[b],
                origin.1 - y0 + b as f64 * (height + BAND_GAP),
            )
        })
        .collect();
    // Gap below band b, in folded coordinates: where edges leaving it run.
    let channel = |b: usize| origin.1 + b as f64 * (height + BAND_GAP) + height + BAND_GAP / 2.0;

    // Nodes move first: an edge between bands is routed from where its
    // ends now are.
    for (n, &b) in nodes.iter_mut().zip(&node_band) {
        n.x += shift[b].0;
        n.y += shift[b].1;
    }
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        index.entry(n.id.as_str()).or_insert(i);
    }
    for edge in edges.iter_mut() {
        let (Some(&tail), Some(&head)) =
            (index.get(edge.from.as_str()), index.get(edge.to.as_str()))
        else {
            continue;
        };
        let (bt, bh) = (node_band[tail], node_band[head]);
        if bt == bh {
            let (dx, dy) = shift[bt];
            for p in edge.points.iter_mut().chain(edge.arrow.iter_mut()) {
                *p = (p.0 + dx, p.1 + dy);
            }
            continue;
        }
        // Down a band: along the gap above the head's band; up (an edge
        // `dot` reversed to break a cycle): along the gap below it.
        let gy = if bh > bt {
            channel(bh - 1)
        } else {
            channel(bh)
        };
        let (t, h) = (&nodes[tail], &nodes[head]);
        let start = (t.x + t.w, t.y + t.h / 2.0);
        let tip = (h.x, h.y + h.h / 2.0);
        let corners = [
            start,
            (start.0 + STUB, start.1),
            (start.0 + STUB, gy),
            (tip.0 - ARROW - STUB, gy),
            (tip.0 - ARROW - STUB, tip.1),
        ];
        let end = if edge.arrow.is_some() {
            (tip.0 - ARROW, tip.1)
        } else {
            tip
        };
        // Six corners, not 1 + 3n points: drawn as straight lines (see
        // `svg::edge_path`), and a third of the size of the same route as
        // cubic segments (the 5,000-entry page grew by 0.3 MB with those).
        let mut route = corners.to_vec();
        route.push(end);
        debug_assert_eq!(route.len(), ROUTE_CORNERS);
        edge.points = route;
        if edge.arrow.is_some() {
            edge.arrow = Some(tip);
        }
    }
    let (_, _, fx1, fy1) = bounds(nodes.iter().map(|n| &**n), edges)?;
    Some((fx1 - origin.0, fy1 - origin.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::views::NodeKind;
    use spicehub_parser::EdgeKind;

    const RANK: f64 = 100.0;

    fn node(i: usize, row: f64) -> LayoutNode {
        LayoutNode {
            id: format!("n{i}"),
            label: format!("n{i}"),
            x: i as f64 * RANK,
            y: row * 30.0,
            w: 60.0,
            h: 21.6,
            group: "g".into(),
            kind: NodeKind::Entry,
            count: 1,
        }
    }

    /// `dot`'s kind of route from `a`'s right side to `b`'s left side: one
    /// cubic segment.
    fn edge(a: &LayoutNode, b: &LayoutNode) -> LayoutEdge {
        let s = (a.x + a.w, a.y + a.h / 2.0);
        let tip = (b.x, b.y + b.h / 2.0);
        let e = (tip.0 - ARROW, tip.1);
        let third = ((e.0 - s.0) / 3.0, (e.1 - s.1) / 3.0);
        LayoutEdge {
            from: a.id.clone(),
            to: b.id.clone(),
            kind: EdgeKind::Explicit,
            dangling: false,
            count: 1,
            points: vec![
                s,
                (s.0 + third.0, s.1 + third.1),
                (s.0 + 2.0 * third.0, s.1 + 2.0 * third.1),
                e,
            ],
            arrow: Some(tip),
        }
    }

    /// A chain of `n` nodes left to right, one per rank.
    fn chain(n: usize) -> (Vec<LayoutNode>, Vec<LayoutEdge>) {
        let nodes: Vec<LayoutNode> = (0..n).map(|i| node(i, 0.0)).collect();
        let edges = nodes.windows(2).map(|w| edge(&w[0], &w[1])).collect();
        (nodes, edges)
    }

    fn inside(p: (f64, f64), n: &LayoutNode) -> bool {
        p.0 >= n.x - 0.01 && p.0 <= n.x + n.w + 0.01 && p.1 >= n.y - 0.01 && p.1 <= n.y + n.h + 0.01
    }

    fn overlap(a: &LayoutNode, b: &LayoutNode) -> bool {
        a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
    }

    #[test]
    fn a_long_chain_is_folded_to_the_windows_shape() {
        let (mut nodes, mut edges) = chain(300);
        let before = nodes.clone();
        let mut refs: Vec<&mut LayoutNode> = nodes.iter_mut().collect();
        let (w, h) = fold(&mut refs, &mut edges, (8.0, 8.0)).expect("folded");
        let window = VIEWPORT.0 / VIEWPORT.1;
        println!(
            "FIGURE: 300-step chain folded to {w:.0} x {h:.0} (was {:.0} x 21.6)",
            300.0 * RANK
        );
        assert!(
            w / h < FOLD_FROM * window && w / h > window / FOLD_FROM,
            "{w} x {h}"
        );
        // Nothing lost or overlapping, everything inside the drawing.
        for (i, a) in nodes.iter().enumerate() {
            assert_eq!(a.id, before[i].id);
            assert!(
                a.x >= 8.0
                    && a.y >= 8.0
                    && a.x + a.w <= 8.0 + w + 0.01
                    && a.y + a.h <= 8.0 + h + 0.01
            );
            for b in &nodes[i + 1..] {
                assert!(!overlap(a, b), "{} overlaps {}", a.id, b.id);
            }
        }
        // Every edge still leaves its tail and points at its head; the
        // order of the chain reads left to right, band after band.
        for e in &edges {
            let a = nodes.iter().find(|n| n.id == e.from).expect("tail");
            let b = nodes.iter().find(|n| n.id == e.to).expect("head");
            assert!(inside(e.points[0], a), "{} starts off its tail", e.from);
            assert!(
                inside(e.arrow.expect("arrow"), b),
                "{} ends off its head",
                e.to
            );
            let path = crate::graph::svg::edge_path(e).expect("a path");
            if e.points.len() == ROUTE_CORNERS {
                assert!(path.contains('L') && !path.contains('C'), "{path}");
            } else {
                assert_eq!(e.points.len() % 3, 1, "dot's cubic segments kept");
            }
            assert!(b.x > a.x || b.y > a.y, "{} → {} goes backwards", a.id, b.id);
        }
        let rows: std::collections::BTreeSet<i64> =
            nodes.iter().map(|n| n.y.round() as i64).collect();
        assert!(rows.len() >= 3, "{} bands", rows.len());
    }

    #[test]
    fn edges_within_a_band_keep_their_route() {
        let (mut nodes, mut edges) = chain(300);
        let original = edges.clone();
        let mut refs: Vec<&mut LayoutNode> = nodes.iter_mut().collect();
        fold(&mut refs, &mut edges, (0.0, 0.0)).expect("folded");
        let mut kept = 0;
        for (e, o) in edges.iter().zip(&original) {
            if e.points.len() == o.points.len() {
                let (dx, dy) = (e.points[0].0 - o.points[0].0, e.points[0].1 - o.points[0].1);
                for (p, q) in e.points.iter().zip(&o.points) {
                    assert!((p.0 - q.0 - dx).abs() < 1e-9 && (p.1 - q.1 - dy).abs() < 1e-9);
                }
                kept += 1;
            }
        }
        assert!(kept > 250, "{kept} of 299 edges moved whole");
    }

    #[test]
    fn a_drawing_of_the_windows_shape_or_a_short_chain_is_left_alone() {
        let (mut nodes, mut edges) = chain(9);
        let mut refs: Vec<&mut LayoutNode> = nodes.iter_mut().collect();
        assert_eq!(
            fold(&mut refs, &mut edges, (0.0, 0.0)),
            None,
            "fits in the window"
        );
        // 40 ranks of 50 nodes each: wide, but not a strip.
        let mut nodes: Vec<LayoutNode> = (0..2000).map(|i| node(i / 50, (i % 50) as f64)).collect();
        for (i, n) in nodes.iter_mut().enumerate() {
            n.id = format!("m{i}");
        }
        let mut refs: Vec<&mut LayoutNode> = nodes.iter_mut().collect();
        assert_eq!(fold(&mut refs, &mut [], (0.0, 0.0)), None);
    }

    #[test]
    fn a_rank_is_never_split_between_bands() {
        // 200 ranks of three nodes (one above the other).
        let mut nodes: Vec<LayoutNode> = (0..600)
            .map(|i| {
                let mut n = node(i / 3, (i % 3) as f64);
                n.id = format!("r{}_{}", i / 3, i % 3);
                n
            })
            .collect();
        let mut refs: Vec<&mut LayoutNode> = nodes.iter_mut().collect();
        fold(&mut refs, &mut [], (0.0, 0.0)).expect("folded");
        for rank in nodes.chunks(3) {
            assert!(
                rank.iter().all(|n| (n.x - rank[0].x).abs() < 1e-9),
                "{}",
                rank[0].id
            );
            assert!(rank[2].y - rank[0].y < 100.0, "{} split", rank[0].id);
        }
    }
}
