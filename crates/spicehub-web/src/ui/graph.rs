//! The graph drawing of the registry page: an SVG built from the layout the
//! server computed, so it is complete in the server-rendered HTML. Every node
//! is a link (`<a href>` in the SVG: focusable, with an `aria-label`), so
//! selecting one works before hydration too. After hydration the drawing
//! pans (drag, arrow keys), zooms (wheel, `+`/`-`, buttons) by moving the
//! SVG `viewBox`, and selecting a node no longer reloads the page.
//!
//! A gesture (a drag, a burst of wheel steps) moves the drawing with a CSS
//! transform instead, which the browser composites without painting again,
//! and the `viewBox` follows once the gesture rests: repainting 15,000
//! elements on every pointer move is what made big drawings stutter.
//!
//! Semantic zoom: in a packed layout (entries in nested package and module
//! boxes), when the zoom makes entry labels too small to read, each
//! innermost box is drawn as one summary (its module and entry count)
//! instead of its entries; a summary is a link that zooms into its box.
//! The zoom is recorded in the URL (`zoom=`), and read back on load.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;

mod markup;

use crate::api::viewer::{
    query_without, with_zoom, zoom_in, GraphCluster, GraphLayout, GraphNode, GraphNodeKind,
    Selection, Zoom,
};

/// The visible part of the drawing, in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// Narrowest view (most zoomed in), in user units: a few node labels wide.
pub const MIN_VIEW_WIDTH: f64 = 60.0;
/// Widest view relative to the whole drawing (most zoomed out).
pub const MAX_VIEW_FACTOR: f64 = 4.0;
/// Above this width a selected node is zoomed to, so its label is legible.
const LEGIBLE_WIDTH: f64 = 1_200.0;
/// The width zoomed to when jumping to a node.
const JUMP_WIDTH: f64 = 900.0;

/// Font size of node labels in user units (the SVG's `font-size`).
pub const LABEL_FONT: f64 = 10.0;
/// Below this many screen pixels a label cannot be read, so packed boxes
/// are drawn as summaries instead of their entries.
pub const SUMMARY_BELOW_PX: f64 = 6.0;
/// Below this many screen pixels labels are not even texture, only
/// grey noise over the boxes and edges (and the most expensive part to
/// paint), so they are not drawn at all.
pub const UNLABELLED_BELOW_PX: f64 = 2.5;
/// Label size a click on a summary zooms to: comfortably above the
/// threshold, so the entries show and stay shown after a small zoom out.
const READABLE_PX: f64 = 9.0;
/// Label size a click on a summary zooms to at most: a box of a few
/// entries filled the panel with 65 px letters and nothing around them.
const COMFORTABLE_PX: f64 = 16.0;
/// Width assumed for the drawing before it can be measured (the server's
/// render, and the first one in the browser, which must match it): the
/// graph panel of a laptop browser window, the window the packed layout
/// is shaped for.
pub const NOMINAL_SCREEN_WIDTH: f64 = 1_000.0;
/// How long the zoom must stay still before the URL records it: every
/// wheel step and pointer move would otherwise be a history write.
const ZOOM_URL_DELAY: Duration = Duration::from_millis(300);
/// How long wheel steps must pause before their zoom is drawn for real
/// (the `viewBox` set and the transform dropped).
const GESTURE_SETTLE: Duration = Duration::from_millis(160);
/// Margin around a box zoomed into, in user units.
const BOX_MARGIN: f64 = 8.0;
/// URL parameters that change neither the drawing nor the zoom: a URL that
/// differs from the page's first one elsewhere is a page being left.
const SAME_DRAWING_PARAMS: [&str; 4] = ["zoom", "node", "group", "find"];

impl ViewBox {
    /// The whole drawing.
    pub fn fit(width: f64, height: f64) -> Self {
        ViewBox {
            x: 0.0,
            y: 0.0,
            w: width.max(1.0),
            h: height.max(1.0),
        }
    }

    /// The `viewBox` attribute.
    pub fn attr(&self) -> String {
        format!("{} {} {} {}", self.x, self.y, self.w, self.h)
    }

    /// Zoomed by `factor` (below 1 zooms in) keeping the point `(px, py)`
    /// where it is on screen, within the zoom limits for a drawing `full`.
    pub fn zoom(self, factor: f64, (px, py): (f64, f64), full: ViewBox) -> Self {
        if !factor.is_finite() || factor <= 0.0 {
            return self;
        }
        let max_w = full.w.max(full.h * self.w / self.h) * MAX_VIEW_FACTOR;
        let w = (self.w * factor).clamp(MIN_VIEW_WIDTH.min(self.w), max_w.max(self.w));
        let f = w / self.w;
        ViewBox {
            x: px - (px - self.x) * f,
            y: py - (py - self.y) * f,
            w,
            h: self.h * f,
        }
    }

    /// Moved by `(dx, dy)` user units.
    pub fn pan(self, dx: f64, dy: f64) -> Self {
        ViewBox {
            x: self.x + dx,
            y: self.y + dy,
            ..self
        }
    }

    pub fn center(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }

    /// Whether a box lies wholly inside the view.
    pub fn contains(&self, x: f64, y: f64, w: f64, h: f64) -> bool {
        x >= self.x && y >= self.y && x + w <= self.x + self.w && y + h <= self.y + self.h
    }

    /// The view a `zoom=` names for the drawing `full`: the height follows
    /// from the drawing's aspect ratio and the width is kept within the zoom
    /// limits. `None` (Fit) when it would show none of the drawing.
    pub fn from_zoom(zoom: Zoom, full: ViewBox) -> Option<Self> {
        // Integers up to 10^7: exact as f64.
        let (x, y) = (zoom.x as f64, zoom.y as f64);
        let w = (zoom.w as f64).clamp(MIN_VIEW_WIDTH.min(full.w), full.w * MAX_VIEW_FACTOR);
        let h = w * full.h / full.w;
        let overlaps =
            x < full.x + full.w && x + w > full.x && y < full.y + full.h && y + h > full.y;
        overlaps.then_some(ViewBox { x, y, w, h })
    }

    /// What the URL records for this view: `None` at Fit, so a link to the
    /// whole drawing carries no zoom.
    pub fn to_zoom(&self, full: ViewBox) -> Option<Zoom> {
        let zoom = |v: &ViewBox| Zoom {
            x: v.x.round() as i64,
            y: v.y.round() as i64,
            w: v.w.round().max(1.0) as i64,
        };
        let here = zoom(self);
        (here != zoom(&full)).then_some(here)
    }

    /// The view that opens a box (`x`, `y`, `w`, `h`) with its labels
    /// readable on `screen`: the whole box when that is readable, with
    /// what surrounds it when the box alone would make them huge,
    /// otherwise its top-left part (where its entries start) at the widest
    /// view that is. The aspect ratio stays the drawing's.
    pub fn open_box(self, (x, y, w, h): (f64, f64, f64, f64), screen: &Screen) -> Self {
        let aspect = self.h / self.w;
        let fit_w = (w + 2.0 * BOX_MARGIN).max((h + 2.0 * BOX_MARGIN) / aspect);
        // On screen, a label is LABEL_FONT * min(width, height / aspect) / view width.
        let width_for = |px: f64| LABEL_FONT * screen.width.min(screen.height / aspect) / px;
        let vw = fit_w
            .clamp(width_for(COMFORTABLE_PX), width_for(READABLE_PX))
            .max(MIN_VIEW_WIDTH);
        let vh = vw * aspect;
        if vw >= fit_w {
            ViewBox {
                x: x + w / 2.0 - vw / 2.0,
                y: y + h / 2.0 - vh / 2.0,
                w: vw,
                h: vh,
            }
        } else {
            ViewBox {
                x: x - BOX_MARGIN,
                y: y - BOX_MARGIN,
                w: vw,
                h: vh,
            }
        }
    }

    /// Centred on a node, zoomed in when the view is too wide to read it.
    pub fn jump_to(self, node: &GraphNode) -> Self {
        let (cx, cy) = (node.x + node.w / 2.0, node.y + node.h / 2.0);
        let (w, h) = if self.w > LEGIBLE_WIDTH {
            (JUMP_WIDTH, self.h * JUMP_WIDTH / self.w)
        } else {
            (self.w, self.h)
        };
        ViewBox {
            x: cx - w / 2.0,
            y: cy - h / 2.0,
            w,
            h,
        }
    }
}

/// Screen geometry of the drawing: where the SVG element is in the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Screen {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl Screen {
    /// User units per screen pixel inverted: pixels per user unit, with the
    /// default `preserveAspectRatio` (`xMidYMid meet`).
    pub fn scale(&self, vb: &ViewBox) -> f64 {
        (self.width / vb.w)
            .min(self.height / vb.h)
            .max(f64::MIN_POSITIVE)
    }

    /// The user coordinates of a point given in client pixels.
    pub fn to_user(&self, vb: &ViewBox, client_x: f64, client_y: f64) -> (f64, f64) {
        let s = self.scale(vb);
        let ox = (self.width - vb.w * s) / 2.0;
        let oy = (self.height - vb.h * s) / 2.0;
        (
            vb.x + (client_x - self.left - ox) / s,
            vb.y + (client_y - self.top - oy) / s,
        )
    }
}

impl Screen {
    /// The drawing's size before it is measured (see [`NOMINAL_SCREEN_WIDTH`]).
    pub fn nominal(height: f64) -> Self {
        Screen {
            left: 0.0,
            top: 0.0,
            width: NOMINAL_SCREEN_WIDTH,
            height,
        }
    }

    /// How tall a node label is on screen, in pixels, at `vb`.
    pub fn label_px(&self, vb: &ViewBox) -> f64 {
        LABEL_FONT * self.scale(vb)
    }
}

/// Whether labels of `label_px` pixels are too small to draw entries.
pub fn summarize_at(label_px: f64) -> bool {
    label_px < SUMMARY_BELOW_PX
}

/// Whether labels of `label_px` pixels are too small to draw at all.
pub fn unlabelled_at(label_px: f64) -> bool {
    label_px < UNLABELLED_BELOW_PX
}

/// A CSS `scale` then `translate` (in pixels, from the element's top-left
/// corner) of the drawing element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    pub scale: f64,
    pub dx: f64,
    pub dy: f64,
}

impl Shift {
    /// The transform that makes an SVG drawn at `drawn` look as it would
    /// at `shown` on `screen` (both letterboxed as `xMidYMid meet` does):
    /// a point at `o + s (u - v)` on screen for each view.
    pub fn between(screen: &Screen, drawn: &ViewBox, shown: &ViewBox) -> Self {
        let origin = |v: &ViewBox, s: f64| {
            (
                (screen.width - v.w * s) / 2.0,
                (screen.height - v.h * s) / 2.0,
            )
        };
        let (s0, s1) = (screen.scale(drawn), screen.scale(shown));
        let (o0, o1) = (origin(drawn, s0), origin(shown, s1));
        let k = s1 / s0;
        Shift {
            scale: k,
            dx: o1.0 - k * o0.0 + s1 * (drawn.x - shown.x),
            dy: o1.1 - k * o0.1 + s1 * (drawn.y - shown.y),
        }
    }

    /// The CSS `transform` value (with `transform-origin: 0 0`).
    pub fn css(&self) -> String {
        format!(
            "translate({:.2}px, {:.2}px) scale({:.5})",
            self.dx, self.dy, self.scale
        )
    }
}

/// An innermost box of a packed layout, drawn as one block (its name and
/// how many entries it holds) when its entries are too small to read.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The module (the box's dotted path).
    pub id: String,
    /// What its box is labelled with: the last part of the path, since the
    /// boxes around it name the rest. Drawn large as the summary's title:
    /// the whole dotted path at the same width was 4 px at Fit.
    pub name: String,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    /// Entries the box stands for (a collapsed module counts its entries).
    pub count: u32,
    /// Whether everything in it is this registry's: otherwise it holds
    /// outside or missing nodes, and its count is of nodes.
    pub entries_only: bool,
    /// The layout index of its first node in reading order (top row,
    /// then left): where keyboard focus goes when the box is opened.
    pub first: usize,
}

impl Summary {
    /// `mmdet.models.backbones — 23 entries`.
    pub fn label(&self) -> String {
        format!("{} — {}", self.id, self.count_text())
    }

    /// `23 entries`, `1 entry`, or nodes when not all are entries.
    pub fn count_text(&self) -> String {
        let (one, many) = if self.entries_only {
            ("entry", "entries")
        } else {
            ("node", "nodes")
        };
        format!(
            "{} {}",
            self.count,
            if self.count == 1 { one } else { many }
        )
    }

    /// The font size (user units) of its two lines, name and count: as
    /// large as fits the box. At any zoom where summaries show, that is as
    /// readable as they can be, and it costs nothing per zoom step.
    pub fn font_size(&self) -> f64 {
        let chars = self
            .name
            .chars()
            .count()
            .max(self.count_text().chars().count())
            .max(1) as f64;
        // Helvetica averages a little over half an em per character.
        let by_width = (self.w - 8.0).max(1.0) / (0.6 * chars);
        let by_height = self.h / 3.0;
        by_width.min(by_height).max(1.0)
    }

    fn bounds(&self) -> (f64, f64, f64, f64) {
        (self.x, self.y, self.w, self.h)
    }
}

/// The summaries of a layout's innermost boxes, and which nodes they hide.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summaries {
    pub boxes: Vec<Summary>,
    /// Per node of the layout: drawn in a summarized box.
    pub boxed: Vec<bool>,
}

impl Summaries {
    /// Boxes that hold no other box, with the nodes whose centre lies in
    /// them. Geometry rather than names: a box that is not a dotted module
    /// (a file path, the missing dependencies) is found the same way, and
    /// a component laid out by `dot` across modules, which sits in a
    /// parent box, stays drawn.
    pub fn of(layout: &GraphLayout) -> Self {
        let inside = |inner: &GraphCluster, outer: &GraphCluster| {
            inner.depth > outer.depth
                && inner.x >= outer.x
                && inner.y >= outer.y
                && inner.x + inner.w <= outer.x + outer.w
                && inner.y + inner.h <= outer.y + outer.h
        };
        let innermost: Vec<&GraphCluster> = layout
            .clusters
            .iter()
            .filter(|c| !layout.clusters.iter().any(|d| inside(d, c)))
            .collect();
        let mut boxes: Vec<Option<Summary>> = vec![None; innermost.len()];
        let mut boxed = vec![false; layout.nodes.len()];
        for (i, n) in layout.nodes.iter().enumerate() {
            let (cx, cy) = (n.x + n.w / 2.0, n.y + n.h / 2.0);
            let Some(b) = innermost
                .iter()
                .position(|c| cx >= c.x && cx <= c.x + c.w && cy >= c.y && cy <= c.y + c.h)
            else {
                continue;
            };
            boxed[i] = true;
            let c = innermost[b];
            let summary = boxes[b].get_or_insert_with(|| Summary {
                id: c.id.clone(),
                name: c.label.clone(),
                x: c.x,
                y: c.y,
                w: c.w,
                h: c.h,
                count: 0,
                entries_only: true,
                first: i,
            });
            let first = &layout.nodes[summary.first];
            if (n.y, n.x) < (first.y, first.x) {
                summary.first = i;
            }
            summary.count = summary.count.saturating_add(n.count.max(1));
            summary.entries_only &= matches!(n.kind, GraphNodeKind::Entry | GraphNodeKind::Module);
        }
        Summaries {
            boxes: boxes.into_iter().flatten().collect(),
            boxed,
        }
    }
}

/// What the selection lights up: the selected node, everything upstream
/// (what it depends on, transitively) and downstream (what depends on it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Highlight {
    pub selected: Option<String>,
    pub upstream: HashSet<String>,
    pub downstream: HashSet<String>,
}

impl Highlight {
    pub fn of(layout: &GraphLayout, selected: Option<&str>) -> Self {
        let Some(selected) = selected else {
            return Highlight::default();
        };
        let mut forward: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut backward: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &layout.edges {
            forward
                .entry(e.from.as_str())
                .or_default()
                .push(e.to.as_str());
            backward
                .entry(e.to.as_str())
                .or_default()
                .push(e.from.as_str());
        }
        let reach = |adjacency: &HashMap<&str, Vec<&str>>| {
            let mut seen: HashSet<String> = HashSet::new();
            let mut queue = VecDeque::from([selected]);
            while let Some(at) = queue.pop_front() {
                for next in adjacency.get(at).into_iter().flatten() {
                    if *next != selected && seen.insert((*next).to_owned()) {
                        queue.push_back(*next);
                    }
                }
            }
            seen
        };
        Highlight {
            upstream: reach(&backward),
            downstream: reach(&forward),
            selected: Some(selected.to_owned()),
        }
    }

    /// `selected`, `upstream` or `downstream`; `None` for a node off the
    /// selection's paths (dimmed, by the drawing's `lit` class, while
    /// something is selected).
    pub fn node_state(&self, id: &str) -> Option<&'static str> {
        let s = self.selected.as_ref()?;
        if s == id {
            Some("selected")
        } else if self.upstream.contains(id) {
            Some("upstream")
        } else if self.downstream.contains(id) {
            Some("downstream")
        } else {
            None
        }
    }

    /// An edge is lit when it lies on a path into or out of the selection.
    pub fn edge_state(&self, from: &str, to: &str) -> Option<&'static str> {
        let s = self.selected.as_ref()?;
        let up = |n: &str| n == s || self.upstream.contains(n);
        let down = |n: &str| n == s || self.downstream.contains(n);
        if self.upstream.contains(from) && up(to) {
            Some("upstream")
        } else if self.downstream.contains(to) && down(from) {
            Some("downstream")
        } else {
            None
        }
    }
}

/// The selection a click on `node` makes: a module box selects its module.
pub fn selection_of(node: &GraphNode) -> Selection {
    if node.group_box {
        Selection::Group(node.id.clone())
    } else {
        Selection::Node(node.id.clone())
    }
}

/// The layout node that `selection` names, if it is drawn.
pub fn selected_node<'a>(
    layout: &'a GraphLayout,
    selection: Option<&Selection>,
) -> Option<&'a GraphNode> {
    let selection = selection?;
    layout.nodes.iter().find(|n| &selection_of(n) == selection)
}

fn aria_label(node: &GraphNode) -> String {
    match node.kind {
        GraphNodeKind::Module => format!(
            "{}: module with {} {}",
            node.group,
            node.count,
            if node.count == 1 { "entry" } else { "entries" }
        ),
        kind if node.group_box => {
            format!("{}: {} ({} nodes)", node.group, kind.describe(), node.count)
        }
        kind => match node.change {
            Some(change) => format!("{}: {}, {}", node.id, kind.describe(), change.describe()),
            None => format!("{}: {}", node.id, kind.describe()),
        },
    }
}

/// The id of a node's link element, for focusing it after a search.
pub fn node_element_id(index: usize) -> String {
    format!("graph-node-{index}")
}

#[component]
pub fn GraphCanvas(
    layout: Arc<GraphLayout>,
    /// The current selection (from the URL).
    #[prop(into)]
    selection: Signal<Option<Selection>>,
    /// The zoom the URL asks for (`None`: Fit).
    zoom: Option<Zoom>,
    /// The page address with a selection and a zoom.
    href: Callback<(Option<Selection>, Option<Zoom>), String>,
    /// A name for the drawing, read by screen readers.
    #[prop(into)]
    label: String,
    /// The address of a smaller picture of the same registry (its modules),
    /// offered while the entries are too small to read and no summary
    /// stands in for them.
    overview: Option<String>,
) -> impl IntoView {
    let full = ViewBox::fit(layout.width, layout.height);
    let from_url = zoom.and_then(|z| ViewBox::from_zoom(z, full));
    let vb = RwSignal::new(from_url.unwrap_or(full));
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    let svg_height = (layout.height + 16.0).clamp(240.0, 720.0);
    // Measured once mounted; until then the server's guess, so the first
    // render in the browser matches the server's HTML.
    let nominal = Screen::nominal(svg_height);
    let screen = RwSignal::new(None::<Screen>);
    let svg_ref = NodeRef::<leptos::svg::Svg>::new();
    Effect::new(move |_| {
        let measure = move |el: &leptos::web_sys::Element| {
            let measured = dom::measure(el);
            if measured.is_some() && screen.get_untracked() != measured {
                screen.set(measured);
            }
        };
        if let Some(el) = svg_ref.get() {
            measure(&el);
        }
        let handle = window_event_listener(leptos::ev::resize, move |_| {
            if let Some(el) = svg_ref.get_untracked() {
                measure(&el);
            }
        });
        on_cleanup(move || handle.remove());
    });
    // The view a gesture shows through a transform, ahead of `vb`; every
    // other change of view goes through `set_view`, which drops it, so a
    // transform is never left over a `viewBox` it was not made for.
    let live = StoredValue::new(None::<ViewBox>);
    let settle = StoredValue::new(None::<TimeoutHandle>);
    on_cleanup(move || {
        if let Some(Some(timer)) = settle.try_get_value() {
            timer.clear();
        }
    });
    let shown = move || live.get_value().unwrap_or_else(|| vb.get_untracked());
    let set_view = move |next: ViewBox| {
        if let Some(timer) = settle.get_value() {
            timer.clear();
            settle.set_value(None);
        }
        if live.get_value().is_some() {
            live.set_value(None);
            if let Some(el) = svg_ref.get_untracked() {
                dom::set_transform(&el, None);
            }
        }
        vb.set(next);
    };
    let settle_now = move || {
        if let Some(next) = live.get_value() {
            set_view(next);
        }
    };
    let show = move |next: ViewBox, on: &Screen| {
        live.set_value(Some(next));
        if let Some(el) = svg_ref.get_untracked() {
            dom::set_transform(&el, Some(Shift::between(on, &vb.get_untracked(), &next)));
        }
    };

    let summaries = Summaries::of(&layout);
    let has_summaries = !summaries.boxes.is_empty();
    let boxed_ids: Arc<HashSet<String>> = Arc::new(
        layout
            .nodes
            .iter()
            .zip(&summaries.boxed)
            .filter(|(_, boxed)| **boxed)
            .map(|(n, _)| n.id.clone())
            .collect(),
    );
    let label_px = Memo::new(move |_| screen.get().unwrap_or(nominal).label_px(&vb.get()));
    let summarized = Memo::new(move |_| has_summaries && summarize_at(label_px.get()));
    let unlabelled = Memo::new(move |_| unlabelled_at(label_px.get()));

    let highlight = Memo::new({
        let layout = layout.clone();
        move |_| {
            let selection = selection.get();
            let id = selected_node(&layout, selection.as_ref()).map(|n| n.id.clone());
            Highlight::of(&layout, id.as_deref())
        }
    });

    // Jump to a selected node when it is off screen or too small to read
    // (or hidden in a summary); but not on load when the URL names a zoom:
    // a shared link opens where it was shared.
    Effect::new({
        let layout = layout.clone();
        let boxed_ids = boxed_ids.clone();
        move |previous: Option<()>| {
            let selection = selection.get();
            if previous.is_none() && from_url.is_some() {
                return;
            }
            if let Some(node) = selected_node(&layout, selection.as_ref()) {
                settle_now();
                let current = vb.get_untracked();
                if summarized.get_untracked() && boxed_ids.contains(&node.id) {
                    let on = screen.get_untracked().unwrap_or(nominal);
                    set_view(current.open_box((node.x, node.y, node.w, node.h), &on));
                } else if !current.contains(node.x, node.y, node.w, node.h)
                    || current.w > LEGIBLE_WIDTH
                {
                    set_view(current.jump_to(node));
                }
            }
        }
    });

    let drag = StoredValue::new(None::<Drag>);
    // Set once a press has moved far enough to be a drag: the click that
    // ends it must not select the node under the pointer.
    let dragged = StoredValue::new(false);
    let dragging = RwSignal::new(false);
    let navigate = leptos_router::hooks::use_navigate();

    // The URL follows the zoom once it rests (replacing the history entry,
    // not adding one), so a copied link opens at the same place. Only while
    // the URL still names this drawing: a link to another view is a page
    // being left, whose new drawing starts at Fit.
    let location = leptos_router::hooks::use_location();
    let drawing_url = {
        let (path, search) = (
            location.pathname.get_untracked(),
            location.search.get_untracked(),
        );
        format!("{path}{}", query_without(&search, &SAME_DRAWING_PARAMS))
    };
    let same_drawing = move || {
        let (path, search) = (
            location.pathname.get_untracked(),
            location.search.get_untracked(),
        );
        format!("{path}{}", query_without(&search, &SAME_DRAWING_PARAMS)) == drawing_url
    };
    let same_drawing_later = same_drawing.clone();
    let pending = StoredValue::new(None::<TimeoutHandle>);
    on_cleanup(move || {
        if let Some(Some(timer)) = pending.try_get_value() {
            timer.clear();
        }
    });
    Effect::new({
        let navigate = navigate.clone();
        move |_| {
            let want = vb.with(|v| v.to_zoom(full));
            let recorded = location
                .query
                .with(|q| q.get_str("zoom").and_then(Zoom::parse));
            if let Some(timer) = pending.get_value() {
                timer.clear();
                pending.set_value(None);
            }
            if recorded == want || !same_drawing() {
                return;
            }
            let navigate = navigate.clone();
            let same_drawing = same_drawing_later.clone();
            let timer = set_timeout_with_handle(
                move || {
                    if !same_drawing() {
                        return;
                    }
                    let target = format!(
                        "{}{}{}",
                        location.pathname.get_untracked(),
                        with_zoom(&location.search.get_untracked(), want),
                        location.hash.get_untracked()
                    );
                    navigate(
                        &target,
                        leptos_router::NavigateOptions {
                            replace: true,
                            scroll: false,
                            ..Default::default()
                        },
                    );
                },
                ZOOM_URL_DELAY,
            );
            pending.set_value(timer.ok());
        }
    });

    // Back and Forward between entries of this page keep this drawing
    // (only the query changes), so the zoom their entry recorded is read
    // here; at once, before the router's effects run, so the URL writer
    // above and the jump to a selection see the restored view.
    Effect::new(move |_| {
        let handle = window_event_listener(leptos::ev::popstate, move |_| {
            let Ok(search) = window().location().search() else {
                return;
            };
            let restored = zoom_in(&search).and_then(|z| ViewBox::from_zoom(z, full));
            set_view(restored.unwrap_or(full));
        });
        on_cleanup(move || handle.remove());
    });

    // Clusters, edges and entries are markup (see `markup`): built once,
    // adopted by hydration as they are. The highlight is written on the
    // few elements it concerns when the selection changes.
    let highlighted = highlight.get_untracked();
    let clusters = markup::clusters(&layout);
    let edges = markup::edges(&layout, &boxed_ids, &highlighted);
    let nodes = markup::nodes(&layout, &summaries.boxed, &highlighted, |i| {
        href.run((Some(selection_of(&layout.nodes[i])), zoom))
    });
    let has_selection = Memo::new(move |_| highlight.with(|h| h.selected.is_some()));
    let nodes_ref = NodeRef::<leptos::svg::G>::new();
    let edges_ref = NodeRef::<leptos::svg::G>::new();
    let lit = StoredValue::new(markup::Lit::of(&layout, &highlighted));
    Effect::new({
        let layout = layout.clone();
        move |_| {
            let next = highlight.with(|h| markup::Lit::of(&layout, h));
            let (Some(nodes), Some(edges)) = (nodes_ref.get_untracked(), edges_ref.get_untracked())
            else {
                return;
            };
            lit.update_value(|before| {
                if *before != next {
                    dom::relight(&nodes, &edges, before, &next);
                    *before = next;
                }
            });
        }
    });
    // One listener for every entry: a click selects without a reload.
    let on_node_click = {
        let layout = layout.clone();
        move |ev: leptos::ev::MouseEvent| {
            if ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0 {
                return;
            }
            let Some(node) = dom::clicked_node(&ev).and_then(|i| layout.nodes.get(i)) else {
                return;
            };
            ev.prevent_default();
            if dragged.get_value() {
                return;
            }
            let zoom = shown().to_zoom(full);
            navigate(
                &href.run((Some(selection_of(node)), zoom)),
                leptos_router::NavigateOptions {
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    };

    // On top of their boxes, shown (by a class on the drawing, one DOM
    // write per threshold crossing) only when entries are too small.
    let summary_views = summaries
        .boxes
        .iter()
        .map(|b| {
            let bounds = b.bounds();
            // Where the link goes without JS: the server draws the zoom it names.
            let opened = vb.get_untracked().open_box(bounds, &nominal);
            let target_zoom = opened.to_zoom(full);
            let target = move || href.run((selection.get(), target_zoom));
            let first = node_element_id(b.first);
            let on_click = move |ev: leptos::ev::MouseEvent| {
                if ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0 {
                    return;
                }
                ev.prevent_default();
                if dragged.get_value() {
                    return;
                }
                let on = screen.get_untracked().unwrap_or(nominal);
                set_view(shown().open_box(bounds, &on));
                // Opened from the keyboard (a click with no pointer count),
                // the summary hides under the focus: hand it to the box's
                // first entry once the entries show.
                if ev.detail() == 0 {
                    let first = first.clone();
                    request_animation_frame(move || dom::focus_quietly(&first));
                }
            };
            let font = b.font_size();
            let (cx, cy) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
            view! {
                <a
                    class="summary"
                    href=target
                    aria-label=format!("{}, zoom in to show them", b.label())
                    data-summary=b.id.clone()
                    on:click=on_click
                >
                    <rect x=b.x y=b.y width=b.w height=b.h rx="3"></rect>
                    <text x=cx y=cy - 0.2 * font text-anchor="middle" font-size=font>
                        {b.name.clone()}
                    </text>
                    // Not drawn (SVG draws text only in <text>), but it
                    // separates the two lines in the link's text content,
                    // whose words the aria-label holds in the same order.
                    " "
                    <text class="count" x=cx y=cy + 0.95 * font text-anchor="middle" font-size=font>
                        {b.count_text()}
                    </text>
                </a>
            }
        })
        .collect_view();

    let zoom_by = move |factor: f64| {
        let v = shown();
        set_view(v.zoom(factor, v.center(), full));
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        // Mid-gesture the element's box is transformed, so it is measured
        // only at a gesture's first step.
        let measured = match live.get_value() {
            Some(_) => screen.get_untracked(),
            None => dom::screen_of(&ev),
        };
        let Some(at_screen) = measured else {
            return;
        };
        ev.prevent_default();
        // The page may have reflowed since the last measure.
        if screen.get_untracked() != Some(at_screen) {
            screen.set(Some(at_screen));
        }
        // Pixels, lines or pages: lines and pages scroll further per step.
        let delta = ev.delta_y()
            * match ev.delta_mode() {
                1 => 16.0,
                2 => 400.0,
                _ => 1.0,
            };
        let factor = (delta * 0.0015).exp();
        let from = shown();
        let at = at_screen.to_user(&from, f64::from(ev.client_x()), f64::from(ev.client_y()));
        show(from.zoom(factor, at, full), &at_screen);
        if let Some(timer) = settle.get_value() {
            timer.clear();
        }
        settle.set_value(set_timeout_with_handle(settle_now, GESTURE_SETTLE).ok());
    };
    let on_pointer_down = move |ev: leptos::ev::PointerEvent| {
        if ev.button() != 0 {
            return;
        }
        dragged.set_value(false);
        settle_now();
        drag.set_value(dom::screen_of(&ev).map(|screen| Drag {
            pointer: ev.pointer_id(),
            start: (f64::from(ev.client_x()), f64::from(ev.client_y())),
            from: vb.get_untracked(),
            screen,
            moving: false,
        }));
    };
    let on_pointer_move = move |ev: leptos::ev::PointerEvent| {
        let Some(mut d) = drag.get_value() else {
            return;
        };
        if d.pointer != ev.pointer_id() {
            return;
        }
        let (dx, dy) = (
            f64::from(ev.client_x()) - d.start.0,
            f64::from(ev.client_y()) - d.start.1,
        );
        if !d.moving {
            // A few pixels of jitter is still a click.
            if dx.hypot(dy) < 4.0 {
                return;
            }
            d.moving = true;
            dragged.set_value(true);
            dragging.set(true);
            dom::capture(&ev);
            drag.set_value(Some(d));
        }
        let s = d.screen.scale(&d.from);
        show(d.from.pan(-dx / s, -dy / s), &d.screen);
    };
    let on_pointer_up = move |_ev: leptos::ev::PointerEvent| {
        drag.set_value(None);
        dragging.set(false);
        settle_now();
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let v = shown();
        let (step, step_y) = (v.w / 10.0, v.h / 10.0);
        match ev.key().as_str() {
            "ArrowLeft" => set_view(v.pan(-step, 0.0)),
            "ArrowRight" => set_view(v.pan(step, 0.0)),
            "ArrowUp" => set_view(v.pan(0.0, -step_y)),
            "ArrowDown" => set_view(v.pan(0.0, step_y)),
            "+" | "=" => zoom_by(0.8),
            "-" | "_" => zoom_by(1.25),
            "0" => set_view(full),
            _ => return,
        }
        ev.prevent_default();
    };
    view! {
        <div class="graph-tools" role="toolbar" aria-label="Zoom">
            <button type="button" on:click=move |_| zoom_by(0.8) disabled=move || !hydrated.get()>
                "Zoom in"
            </button>
            <button type="button" on:click=move |_| zoom_by(1.25) disabled=move || !hydrated.get()>
                "Zoom out"
            </button>
            <button type="button" on:click=move |_| set_view(full) disabled=move || !hydrated.get()>
                "Fit"
            </button>
            <span class="muted hint">
                {move || {
                    if hydrated.get() {
                        "Drag to pan, scroll to zoom; arrow keys and + / − work when the graph has focus."
                    } else {
                        "Pan and zoom start once the page has loaded."
                    }
                }}
            </span>
        </div>
        <div class="graph-viewport" tabindex="0" aria-label="Graph drawing; arrow keys pan, plus and minus zoom" on:keydown=on_key>
            // A layered drawing has no module boxes to summarize: at this zoom
            // it is only a shape, so say how to read it rather than leave a
            // grey haze to puzzle over.
            <Show when=move || unlabelled.get() && !summarized.get()>
                <p class="graph-note" role="status">
                    "The entries are too small to read at this zoom: zoom in"
                    {overview.clone().map(|h| view! { ", or " <a href=h>"show the registry by module"</a> })}
                    "."
                </p>
            </Show>
            <svg
                node_ref=svg_ref
                class="graph"
                class:dragging=move || dragging.get()
                class:summarized=move || summarized.get()
                class:unlabelled=move || unlabelled.get()
                class:lit=move || has_selection.get()
                role="group"
                aria-label=label
                width="100%"
                height=svg_height
                viewBox=move || vb.get().attr()
                font-family="Helvetica, Arial, sans-serif"
                font-size="10"
                on:wheel=on_wheel
                on:pointerdown=on_pointer_down
                on:pointermove=on_pointer_move
                on:pointerup=on_pointer_up
                on:pointercancel=on_pointer_up
            >
                <defs>
                    <marker id="arrow-explicit" class="arrowhead explicit" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">
                        <path d="M0,0L10,5L0,10z"></path>
                    </marker>
                    <marker id="arrow-parameter" class="arrowhead parameter" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">
                        <path d="M0,0L10,5L0,10z"></path>
                    </marker>
                    <marker id="arrow-dangling" class="arrowhead dangling" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">
                        <path d="M0,0L10,5L0,10z"></path>
                    </marker>
                    <marker id="arrow-upstream" class="arrowhead upstream" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">
                        <path d="M0,0L10,5L0,10z"></path>
                    </marker>
                    <marker id="arrow-downstream" class="arrowhead downstream" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto">
                        <path d="M0,0L10,5L0,10z"></path>
                    </marker>
                </defs>
                <g class="clusters" aria-hidden="true" inner_html=clusters></g>
                <g class="edges" fill="none" node_ref=edges_ref inner_html=edges></g>
                <g class="nodes" node_ref=nodes_ref on:click=on_node_click inner_html=nodes></g>
                <g class="summaries">{summary_views}</g>
            </svg>
        </div>
    }
}

/// A drag in progress: where it started, in pixels and in the drawing.
#[derive(Debug, Clone, Copy)]
struct Drag {
    pointer: i32,
    start: (f64, f64),
    from: ViewBox,
    screen: Screen,
    moving: bool,
}

/// The little DOM access pan and zoom need, in the browser only.
mod dom {
    use super::Screen;

    #[cfg(feature = "hydrate")]
    mod js {
        use wasm_bindgen::prelude::*;

        #[wasm_bindgen]
        extern "C" {
            /// Any element: only its bounding box is read.
            pub type Measured;
            #[wasm_bindgen(method, js_name = getBoundingClientRect)]
            pub fn bounding_client_rect(this: &Measured) -> ClientRect;

            pub type ClientRect;
            #[wasm_bindgen(method, getter)]
            pub fn left(this: &ClientRect) -> f64;
            #[wasm_bindgen(method, getter)]
            pub fn top(this: &ClientRect) -> f64;
            #[wasm_bindgen(method, getter)]
            pub fn width(this: &ClientRect) -> f64;
            #[wasm_bindgen(method, getter)]
            pub fn height(this: &ClientRect) -> f64;

            /// Any element: only its inline style is written, through the
            /// CSSOM, which the CSP allows (a `style` attribute it does not).
            pub type Styled;
            #[wasm_bindgen(method, getter)]
            pub fn style(this: &Styled) -> Style;

            pub type Style;
            #[wasm_bindgen(method, js_name = setProperty)]
            pub fn set_property(this: &Style, name: &str, value: &str);
            #[wasm_bindgen(method, js_name = removeProperty)]
            pub fn remove_property(this: &Style, name: &str) -> String;

            /// Any focusable element, SVG links included.
            pub type Focusable;
            #[wasm_bindgen(method, catch, js_name = focus)]
            pub fn focus_with(
                this: &Focusable,
                options: &leptos::web_sys::FocusOptions,
            ) -> Result<(), JsValue>;
        }
    }

    /// Shows the drawing moved by `shift`, or where its `viewBox` puts it.
    #[cfg(feature = "hydrate")]
    pub fn set_transform(el: &leptos::web_sys::Element, shift: Option<super::Shift>) {
        use wasm_bindgen::JsCast;
        let style = el.unchecked_ref::<js::Styled>().style();
        match shift {
            Some(shift) => style.set_property("transform", &shift.css()),
            None => {
                style.remove_property("transform");
            }
        }
    }

    /// Focuses the element with this id without scrolling its clipped
    /// viewport (which would move the drawing under the pan and zoom).
    #[cfg(feature = "hydrate")]
    pub fn focus_quietly(id: &str) {
        use wasm_bindgen::JsCast;
        let Some(el) = leptos::prelude::document().get_element_by_id(id) else {
            return;
        };
        let options = leptos::web_sys::FocusOptions::new();
        options.set_prevent_scroll(true);
        let _ = el.unchecked_ref::<js::Focusable>().focus_with(&options);
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn focus_quietly(_id: &str) {}

    #[cfg(not(feature = "hydrate"))]
    pub fn set_transform(_el: &leptos::web_sys::Element, _shift: Option<super::Shift>) {}

    /// Where the element the handler is attached to sits on screen.
    #[cfg(feature = "hydrate")]
    pub fn screen_of(ev: &leptos::web_sys::Event) -> Option<Screen> {
        use wasm_bindgen::JsCast;
        let target = ev.current_target()?;
        let rect = target
            .unchecked_ref::<js::Measured>()
            .bounding_client_rect();
        let screen = Screen {
            left: rect.left(),
            top: rect.top(),
            width: rect.width(),
            height: rect.height(),
        };
        (screen.width > 0.0 && screen.height > 0.0).then_some(screen)
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn screen_of(_ev: &leptos::web_sys::Event) -> Option<Screen> {
        None
    }

    /// Where an element sits on screen; `None` while it has no size
    /// (hidden, or not laid out yet).
    #[cfg(feature = "hydrate")]
    pub fn measure(el: &leptos::web_sys::Element) -> Option<Screen> {
        use wasm_bindgen::JsCast;
        let rect = el.unchecked_ref::<js::Measured>().bounding_client_rect();
        let screen = Screen {
            left: rect.left(),
            top: rect.top(),
            width: rect.width(),
            height: rect.height(),
        };
        (screen.width > 0.0 && screen.height > 0.0).then_some(screen)
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn measure(_el: &leptos::web_sys::Element) -> Option<Screen> {
        None
    }

    /// Moves the highlight classes from the elements `before` names to
    /// those `after` names: the n-th child of each group is element n.
    #[cfg(feature = "hydrate")]
    pub fn relight(
        nodes: &leptos::web_sys::Element,
        edges: &leptos::web_sys::Element,
        before: &super::markup::Lit,
        after: &super::markup::Lit,
    ) {
        let (node_els, edge_els) = (nodes.children(), edges.children());
        let item = |list: &leptos::web_sys::HtmlCollection, i: usize| {
            u32::try_from(i).ok().and_then(|i| list.item(i))
        };
        for (i, _) in &before.nodes {
            if let Some(el) = item(&node_els, *i) {
                let _ = el
                    .class_list()
                    .remove_3("selected", "upstream", "downstream");
            }
        }
        for (i, _) in &before.edges {
            if let Some(el) = item(&edge_els, *i) {
                let _ = el.class_list().remove_2("upstream", "downstream");
            }
        }
        for (i, state) in &after.nodes {
            if let Some(el) = item(&node_els, *i) {
                let _ = el.class_list().add_1(state);
            }
        }
        for (i, state) in &after.edges {
            if let Some(el) = item(&edge_els, *i) {
                let _ = el.class_list().add_1(state);
            }
        }
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn relight(
        _nodes: &leptos::web_sys::Element,
        _edges: &leptos::web_sys::Element,
        _before: &super::markup::Lit,
        _after: &super::markup::Lit,
    ) {
    }

    /// The index of the node whose link a click landed in.
    #[cfg(feature = "hydrate")]
    pub fn clicked_node(ev: &leptos::web_sys::MouseEvent) -> Option<usize> {
        use wasm_bindgen::JsCast;
        let target = ev.target()?.dyn_into::<leptos::web_sys::Element>().ok()?;
        let link = target.closest("a[data-node]").ok()??;
        super::markup::node_index(&link.id())
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn clicked_node(_ev: &leptos::web_sys::MouseEvent) -> Option<usize> {
        None
    }

    /// Keeps the pointer's events on the drawing while dragging.
    #[cfg(feature = "hydrate")]
    pub fn capture(ev: &leptos::web_sys::PointerEvent) {
        use wasm_bindgen::JsCast;
        if let Some(el) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
        {
            let _ = el.set_pointer_capture(ev.pointer_id());
        }
    }

    #[cfg(not(feature = "hydrate"))]
    pub fn capture(_ev: &leptos::web_sys::PointerEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::viewer::GraphEdge;

    pub(super) fn node(id: &str, x: f64) -> GraphNode {
        GraphNode {
            id: id.into(),
            label: id.into(),
            group: "g".into(),
            kind: GraphNodeKind::Entry,
            group_box: false,
            count: 1,
            x,
            y: 0.0,
            w: 20.0,
            h: 10.0,
            change: None,
        }
    }

    pub(super) fn edge(from: &str, to: &str) -> GraphEdge {
        GraphEdge {
            from: from.into(),
            to: to.into(),
            explicit: true,
            dangling: false,
            count: 1,
            path: String::new(),
            change: None,
        }
    }

    #[test]
    fn zoom_keeps_the_point_under_the_cursor_and_stays_in_limits() {
        let full = ViewBox::fit(1000.0, 500.0);
        let z = full.zoom(0.5, (100.0, 50.0), full);
        assert_eq!(
            z,
            ViewBox {
                x: 50.0,
                y: 25.0,
                w: 500.0,
                h: 250.0
            }
        );
        // The point keeps its relative place: (100 - 50) / 500 = 100 / 1000.
        let tiny = full.zoom(1e-9, (0.0, 0.0), full);
        assert_eq!(tiny.w, MIN_VIEW_WIDTH);
        let huge = full.zoom(1e9, (0.0, 0.0), full);
        assert_eq!(huge.w, 1000.0 * MAX_VIEW_FACTOR);
        assert_eq!(full.zoom(f64::NAN, (0.0, 0.0), full), full);
        assert_eq!(full.pan(10.0, -5.0).attr(), "10 -5 1000 500");
    }

    #[test]
    fn client_points_map_to_user_units_with_letterboxing() {
        // 1000x500 drawn in 500x500 pixels: scale 0.5, 125 px bands above and below.
        let screen = Screen {
            left: 10.0,
            top: 20.0,
            width: 500.0,
            height: 500.0,
        };
        let vb = ViewBox::fit(1000.0, 500.0);
        assert_eq!(screen.scale(&vb), 0.5);
        assert_eq!(screen.to_user(&vb, 10.0, 145.0), (0.0, 0.0));
        assert_eq!(screen.to_user(&vb, 510.0, 395.0), (1000.0, 500.0));
    }

    #[test]
    fn a_gesture_transform_shows_the_view_it_stands_for() {
        let screen = Screen {
            left: 40.0,
            top: 120.0,
            width: 1000.0,
            height: 600.0,
        };
        let full = ViewBox::fit(5000.0, 800.0);
        let drawn = full.zoom(0.3, (1200.0, 300.0), full);
        // A zoom out past the drawing's aspect, then a pan: both letterbox
        // differently from `drawn`.
        for shown in [
            drawn.zoom(0.5, (1300.0, 350.0), full),
            drawn.zoom(2.5, (900.0, 100.0), full).pan(-400.0, 90.0),
            full,
        ] {
            let shift = Shift::between(&screen, &drawn, &shown);
            for (px, py) in [(0.0, 0.0), (500.0, 300.0), (999.0, 17.0), (250.0, 599.0)] {
                // Where the pixel's point of the drawing is shown at `shown`...
                let (ux, uy) = screen.to_user(&shown, screen.left + px, screen.top + py);
                // ...is where the transform moves it from its place at `drawn`.
                let s0 = screen.scale(&drawn);
                let ox = (screen.width - drawn.w * s0) / 2.0;
                let oy = (screen.height - drawn.h * s0) / 2.0;
                let (dx, dy) = (ox + s0 * (ux - drawn.x), oy + s0 * (uy - drawn.y));
                let (tx, ty) = (shift.dx + shift.scale * dx, shift.dy + shift.scale * dy);
                assert!(
                    (tx - px).abs() < 1e-6 && (ty - py).abs() < 1e-6,
                    "{shown:?}: ({px}, {py}) went to ({tx}, {ty})"
                );
            }
        }
        assert_eq!(
            Shift::between(&screen, &drawn, &drawn),
            Shift {
                scale: 1.0,
                dx: 0.0,
                dy: 0.0
            }
        );
    }

    #[test]
    fn highlight_follows_edges_both_ways() {
        let layout = GraphLayout {
            width: 100.0,
            height: 10.0,
            nodes: vec![
                node("a", 0.0),
                node("b", 30.0),
                node("c", 60.0),
                node("x", 90.0),
            ],
            edges: vec![edge("a", "b"), edge("b", "c"), edge("x", "c")],
            clusters: Vec::new(),
        };
        let h = Highlight::of(&layout, Some("b"));
        assert_eq!(h.node_state("b"), Some("selected"));
        assert_eq!(h.node_state("a"), Some("upstream"));
        assert_eq!(h.node_state("c"), Some("downstream"));
        assert_eq!(h.node_state("x"), None);
        assert_eq!(h.edge_state("a", "b"), Some("upstream"));
        assert_eq!(h.edge_state("b", "c"), Some("downstream"));
        assert_eq!(h.edge_state("x", "c"), None);
        assert_eq!(Highlight::of(&layout, None).node_state("a"), None);
        let far = ViewBox::fit(5000.0, 2500.0).jump_to(&layout.nodes[2]);
        assert_eq!((far.w, far.center()), (JUMP_WIDTH, (70.0, 5.0)));
    }

    fn cluster(id: &str, depth: u32, (x, y, w, h): (f64, f64, f64, f64)) -> GraphCluster {
        GraphCluster {
            id: id.into(),
            label: id.into(),
            x,
            y,
            w,
            h,
            depth,
        }
    }

    fn placed(id: &str, kind: GraphNodeKind, count: u32, (x, y): (f64, f64)) -> GraphNode {
        GraphNode {
            kind,
            count,
            y,
            ..node(id, x)
        }
    }

    /// A package box holding two module boxes and one entry of its own.
    fn packed() -> GraphLayout {
        GraphLayout {
            width: 400.0,
            height: 200.0,
            nodes: vec![
                placed("a", GraphNodeKind::Entry, 1, (20.0, 30.0)),
                placed("b", GraphNodeKind::Entry, 1, (50.0, 30.0)),
                placed("pkg.two", GraphNodeKind::Module, 12, (220.0, 30.0)),
                placed("other:x", GraphNodeKind::External, 1, (260.0, 30.0)),
                placed("loose", GraphNodeKind::Entry, 1, (20.0, 150.0)),
                placed("outside", GraphNodeKind::Entry, 1, (380.0, 190.0)),
            ],
            edges: vec![],
            clusters: vec![
                cluster("pkg", 0, (8.0, 8.0, 360.0, 180.0)),
                cluster("pkg.one", 1, (12.0, 20.0, 150.0, 60.0)),
                cluster("pkg.two", 1, (200.0, 20.0, 150.0, 60.0)),
            ],
        }
    }

    #[test]
    fn labels_below_six_pixels_switch_to_summaries() {
        assert!(summarize_at(5.9));
        assert!(!summarize_at(SUMMARY_BELOW_PX));
        // 2000 units in 1000 px: labels of 10 units are 5 px.
        let screen = Screen {
            left: 0.0,
            top: 0.0,
            width: 1000.0,
            height: 800.0,
        };
        let far = ViewBox::fit(2000.0, 1000.0);
        assert_eq!(screen.label_px(&far), 5.0);
        assert!(summarize_at(screen.label_px(&far)));
        // Zoomed in twice as far, they are 10 px: entries again.
        let near = far.zoom(0.5, far.center(), far);
        assert!(!summarize_at(screen.label_px(&near)));
        // Before measuring, the nominal width; a short drawing is limited
        // by its height instead (letterboxed).
        assert_eq!(Screen::nominal(720.0).label_px(&far), 5.0);
        assert_eq!(Screen::nominal(250.0).label_px(&far), 2.5);
        // Far smaller, not drawn at all; summaries first.
        assert!(!unlabelled_at(2.5) && unlabelled_at(2.4));
        assert!(summarize_at(UNLABELLED_BELOW_PX));
    }

    #[test]
    fn innermost_boxes_summarize_the_nodes_drawn_in_them() {
        let layout = packed();
        let s = Summaries::of(&layout);
        assert_eq!(
            s.boxes
                .iter()
                .map(|b| (b.id.as_str(), b.count, b.entries_only))
                .collect::<Vec<_>>(),
            vec![("pkg.one", 2, true), ("pkg.two", 13, false)]
        );
        // The package's own entry and a node in no box stay drawn.
        assert_eq!(s.boxed, vec![true, true, true, true, false, false]);
        assert_eq!(s.boxes[0].label(), "pkg.one — 2 entries");
        assert_eq!(s.boxes[1].label(), "pkg.two — 13 nodes");
        // Keyboard focus opens a box at its top-left node, in reading
        // order whatever the order of drawing.
        let firsts = |l: &GraphLayout, s: &Summaries| {
            s.boxes
                .iter()
                .map(|b| l.nodes[b.first].id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(firsts(&layout, &s), ["a", "pkg.two"]);
        let mut reversed = layout.clone();
        reversed.nodes.reverse();
        assert_eq!(
            firsts(&reversed, &Summaries::of(&reversed)),
            ["a", "pkg.two"]
        );
        let one = Summary {
            count: 1,
            ..s.boxes[0].clone()
        };
        assert_eq!(one.count_text(), "1 entry");
        let backbones = Summary {
            id: "mmdet.models.backbones".into(),
            name: "backbones".into(),
            count: 23,
            ..s.boxes[0].clone()
        };
        assert_eq!(backbones.label(), "mmdet.models.backbones — 23 entries");
        // Its name (the last part of the path, as its box is labelled) and
        // count fit the box's width, both lines its height.
        let font = backbones.font_size();
        assert!(0.6 * font * "23 entries".len() as f64 <= backbones.w - 8.0 + 1e-9);
        assert!(3.0 * font <= backbones.h + 1e-9);
        let whole_path = Summary {
            name: backbones.id.clone(),
            ..backbones.clone()
        };
        assert!(
            font > whole_path.font_size(),
            "the short name is drawn larger"
        );

        // An ordinary layout has nothing to summarize.
        let plain = GraphLayout {
            clusters: vec![],
            ..layout
        };
        let none = Summaries::of(&plain);
        assert!(none.boxes.is_empty());
        assert!(none.boxed.iter().all(|b| !b));
    }

    #[test]
    fn the_url_zoom_maps_to_a_view_of_the_drawing() {
        let full = ViewBox::fit(1000.0, 500.0);
        assert_eq!(full.to_zoom(full), None);
        let z = Zoom {
            x: 100,
            y: 50,
            w: 400,
        };
        let v = ViewBox::from_zoom(z, full);
        assert_eq!(
            v,
            Some(ViewBox {
                x: 100.0,
                y: 50.0,
                w: 400.0,
                h: 200.0
            })
        );
        assert_eq!(v.and_then(|v| v.to_zoom(full)), Some(z));
        // Rounded to whole units.
        let panned = full.zoom(0.5, (333.3, 111.1), full);
        let recorded = panned.to_zoom(full).map(|z| (z.x, z.y, z.w));
        assert_eq!(recorded, Some((167, 56, 500)));
        // Too narrow or too wide is clamped; nowhere near the drawing is Fit.
        let tiny = ViewBox::from_zoom(Zoom { x: 0, y: 0, w: 1 }, full);
        assert_eq!(tiny.map(|v| v.w), Some(MIN_VIEW_WIDTH));
        let huge = ViewBox::from_zoom(
            Zoom {
                x: 0,
                y: 0,
                w: 9_000_000,
            },
            full,
        );
        assert_eq!(huge.map(|v| v.w), Some(1000.0 * MAX_VIEW_FACTOR));
        let away = Zoom {
            x: 5000,
            y: 0,
            w: 400,
        };
        assert_eq!(ViewBox::from_zoom(away, full), None);
    }

    #[test]
    fn opening_a_box_makes_its_entries_readable() {
        let screen = Screen::nominal(500.0);
        let far = ViewBox::fit(8000.0, 4000.0);
        assert!(summarize_at(screen.label_px(&far)));
        // A small box: all of it, centred.
        let small = far.open_box((1000.0, 1000.0, 200.0, 80.0), &screen);
        assert!(small.contains(1000.0, 1000.0, 200.0, 80.0));
        assert_eq!(small.center(), (1100.0, 1040.0));
        assert!(!summarize_at(screen.label_px(&small)));
        assert_eq!(small.h / small.w, 0.5);
        // A box of a few entries: centred, with its surroundings, rather
        // than blown up to fill the screen.
        let few = far.open_box((1000.0, 1000.0, 60.0, 40.0), &screen);
        assert!(few.contains(1000.0, 1000.0, 60.0, 40.0));
        assert_eq!(few.center(), (1030.0, 1020.0));
        assert!((screen.label_px(&few) - COMFORTABLE_PX).abs() < 1e-9);
        // A box too big to read whole: its top-left part, readable.
        let big = far.open_box((1000.0, 1000.0, 3000.0, 1500.0), &screen);
        assert_eq!((big.x, big.y), (1000.0 - BOX_MARGIN, 1000.0 - BOX_MARGIN));
        assert!((screen.label_px(&big) - READABLE_PX).abs() < 1e-9);
    }
}
