//! The graph drawing of the registry page: an SVG built from the layout the
//! server computed, so it is complete in the server-rendered HTML. Every node
//! is a link (`<a href>` in the SVG: focusable, with an `aria-label`), so
//! selecting one works before hydration too. After hydration the drawing
//! pans (drag, arrow keys), zooms (wheel, `+`/`-`, buttons) by moving the
//! SVG `viewBox`, and selecting a node no longer reloads the page.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use leptos::prelude::*;

use crate::api::viewer::{GraphLayout, GraphNode, GraphNodeKind, Selection};

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

    /// `selected`, `upstream`, `downstream`, `dimmed` (something else is
    /// selected) or empty.
    pub fn node_state(&self, id: &str) -> &'static str {
        match &self.selected {
            None => "",
            Some(s) if s == id => "selected",
            Some(_) if self.upstream.contains(id) => "upstream",
            Some(_) if self.downstream.contains(id) => "downstream",
            Some(_) => "dimmed",
        }
    }

    /// An edge is lit when it lies on a path into or out of the selection.
    pub fn edge_state(&self, from: &str, to: &str) -> &'static str {
        let Some(s) = &self.selected else {
            return "";
        };
        let up = |n: &str| n == s || self.upstream.contains(n);
        let down = |n: &str| n == s || self.downstream.contains(n);
        if self.upstream.contains(from) && up(to) {
            "upstream"
        } else if self.downstream.contains(to) && down(from) {
            "downstream"
        } else {
            "dimmed"
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
        kind => format!("{}: {}", node.id, kind.describe()),
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
    /// The page address that selects a node.
    href: Callback<Selection, String>,
    /// A name for the drawing, read by screen readers.
    #[prop(into)]
    label: String,
) -> impl IntoView {
    let full = ViewBox::fit(layout.width, layout.height);
    let vb = RwSignal::new(full);
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    let highlight = Memo::new({
        let layout = layout.clone();
        move |_| {
            let selection = selection.get();
            let id = selected_node(&layout, selection.as_ref()).map(|n| n.id.clone());
            Highlight::of(&layout, id.as_deref())
        }
    });

    // Jump to a selected node when it is off screen or too small to read.
    Effect::new({
        let layout = layout.clone();
        move |_| {
            let selection = selection.get();
            if let Some(node) = selected_node(&layout, selection.as_ref()) {
                let current = vb.get_untracked();
                if !current.contains(node.x, node.y, node.w, node.h) || current.w > LEGIBLE_WIDTH {
                    vb.set(current.jump_to(node));
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

    // Behind everything: the package and module boxes of a packed layout.
    let clusters = layout
        .clusters
        .iter()
        .map(|c| {
            view! {
                <g class=if c.depth % 2 == 0 { "cluster even" } else { "cluster odd" } data-cluster=c.id.clone()>
                    <rect x=c.x y=c.y width=c.w height=c.h rx="3"></rect>
                    <text x=c.x + 4.0 y=c.y + 14.0>{c.label.clone()}</text>
                </g>
            }
        })
        .collect_view();
    let edges = layout
        .edges
        .iter()
        .map(|e| {
            let (from, to) = (e.from.clone(), e.to.clone());
            let kind = if e.dangling {
                "dangling"
            } else if e.explicit {
                "explicit"
            } else {
                "parameter"
            };
            let title = if e.count > 1 {
                format!("{} → {} ({} edges)", e.from, e.to, e.count)
            } else {
                format!("{} → {}", e.from, e.to)
            };
            let state = move || highlight.with(|h| h.edge_state(&from, &to));
            let class_state = state.clone();
            view! {
                <path
                    class=move || format!("edge {kind} {}", class_state())
                    d=e.path.clone()
                    marker-end=move || {
                        let s = state();
                        format!("url(#arrow-{})", if s.is_empty() || s == "dimmed" { kind } else { s })
                    }
                    stroke-dasharray=e.dangling.then_some("5 4")
                >
                    <title>{title}</title>
                </path>
            }
        })
        .collect_view();

    let nodes = layout
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let selection = selection_of(n);
            let target = href.run(selection.clone());
            let id = n.id.clone();
            let kind = n.kind.css();
            let group_class = if n.group_box { " group" } else { "" };
            let navigate = navigate.clone();
            let on_click = move |ev: leptos::ev::MouseEvent| {
                if ev.ctrl_key() || ev.meta_key() || ev.shift_key() || ev.button() != 0 {
                    return;
                }
                ev.prevent_default();
                if dragged.get_value() {
                    return;
                }
                navigate(
                    &href.run(selection.clone()),
                    leptos_router::NavigateOptions {
                        scroll: false,
                        ..Default::default()
                    },
                );
            };
            view! {
                <g class=move || {
                    format!("node {kind}{group_class} {}", highlight.with(|h| h.node_state(&id)))
                }>
                    <a
                        id=node_element_id(i)
                        href=target
                        aria-label=aria_label(n)
                        data-node=n.id.clone()
                        on:click=on_click
                    >
                        <rect x=n.x y=n.y width=n.w height=n.h rx="4"></rect>
                        <text
                            x=n.x + n.w / 2.0
                            y=n.y + n.h / 2.0
                            text-anchor="middle"
                            dominant-baseline="central"
                        >
                            {n.label.clone()}
                        </text>
                    </a>
                </g>
            }
        })
        .collect_view();

    let zoom_by = move |factor: f64| {
        vb.update(|v| *v = v.zoom(factor, v.center(), full));
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        let Some(screen) = dom::screen_of(&ev) else {
            return;
        };
        ev.prevent_default();
        // Pixels, lines or pages: lines and pages scroll further per step.
        let delta = ev.delta_y()
            * match ev.delta_mode() {
                1 => 16.0,
                2 => 400.0,
                _ => 1.0,
            };
        let factor = (delta * 0.0015).exp();
        vb.update(|v| {
            let at = screen.to_user(v, f64::from(ev.client_x()), f64::from(ev.client_y()));
            *v = v.zoom(factor, at, full);
        });
    };
    let on_pointer_down = move |ev: leptos::ev::PointerEvent| {
        if ev.button() != 0 {
            return;
        }
        dragged.set_value(false);
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
        vb.set(d.from.pan(-dx / s, -dy / s));
    };
    let on_pointer_up = move |_ev: leptos::ev::PointerEvent| {
        drag.set_value(None);
        dragging.set(false);
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let step = vb.with_untracked(|v| v.w / 10.0);
        let step_y = vb.with_untracked(|v| v.h / 10.0);
        match ev.key().as_str() {
            "ArrowLeft" => vb.update(|v| *v = v.pan(-step, 0.0)),
            "ArrowRight" => vb.update(|v| *v = v.pan(step, 0.0)),
            "ArrowUp" => vb.update(|v| *v = v.pan(0.0, -step_y)),
            "ArrowDown" => vb.update(|v| *v = v.pan(0.0, step_y)),
            "+" | "=" => zoom_by(0.8),
            "-" | "_" => zoom_by(1.25),
            "0" => vb.set(full),
            _ => return,
        }
        ev.prevent_default();
    };
    let svg_height = (layout.height + 16.0).clamp(240.0, 720.0);

    view! {
        <div class="graph-tools" role="toolbar" aria-label="Zoom">
            <button type="button" on:click=move |_| zoom_by(0.8) disabled=move || !hydrated.get()>
                "Zoom in"
            </button>
            <button type="button" on:click=move |_| zoom_by(1.25) disabled=move || !hydrated.get()>
                "Zoom out"
            </button>
            <button type="button" on:click=move |_| vb.set(full) disabled=move || !hydrated.get()>
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
            <svg
                class="graph"
                class:dragging=move || dragging.get()
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
                <g class="clusters" aria-hidden="true">{clusters}</g>
                <g class="edges" fill="none">{edges}</g>
                <g class="nodes">{nodes}</g>
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
        }
    }

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

    fn node(id: &str, x: f64) -> GraphNode {
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
        }
    }

    fn edge(from: &str, to: &str) -> GraphEdge {
        GraphEdge {
            from: from.into(),
            to: to.into(),
            explicit: true,
            dangling: false,
            count: 1,
            path: String::new(),
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
        assert_eq!(h.node_state("b"), "selected");
        assert_eq!(h.node_state("a"), "upstream");
        assert_eq!(h.node_state("c"), "downstream");
        assert_eq!(h.node_state("x"), "dimmed");
        assert_eq!(h.edge_state("a", "b"), "upstream");
        assert_eq!(h.edge_state("b", "c"), "downstream");
        assert_eq!(h.edge_state("x", "c"), "dimmed");
        assert_eq!(Highlight::of(&layout, None).node_state("a"), "");
        let far = ViewBox::fit(5000.0, 2500.0).jump_to(&layout.nodes[2]);
        assert_eq!((far.w, far.center()), (JUMP_WIDTH, (70.0, 5.0)));
    }
}
