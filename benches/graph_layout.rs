//! Layout of a big registry: 5,000 entries and 10,000 edges. Not a timed
//! test: it prints figures (time uncached and cached, on SQLite, and the
//! size of the SVG drawn from each layout). Also the details of a module
//! as a hostile repository can make it: 20,000 entries, 40,000 edges into
//! it from as many made-up dependencies (`node_info`, what a click on the
//! module's box runs).
//!
//! `cargo bench --bench graph_layout`. The full view is
//! laid out too, with a timeout (`SPICEHUB_BENCH_FULL_TIMEOUT` seconds,
//! default 300), since `dot` on 5,000 nodes used to take minutes. It is
//! laid out twice more, side by side: with the `dot` settings big graphs
//! had before issue 19 ([`DotTuning::LEGACY`], the whole view to `dot`) and
//! as the hub does it now ([`Plan`]: components with edges to `dot` with
//! [`DotTuning::LARGE`], the rest packed), with the time and the quality
//! of each (edge crossings, total edge length, aspect ratio, label size at
//! "Fit"). `SPICEHUB_BENCH_DUMP_DOT=<file>` writes the DOT the hub gives
//! `dot` for the full view, for trying settings by hand.

use std::error::Error;
use std::time::{Duration, Instant};

use spicehub_core::db::graphs::RegistryGraph;
use spicehub_core::db::Db;
use spicehub_core::graph::layout::{parse_json0, to_dot_tuned, DotTuning};
use spicehub_core::graph::pack::{fit_scale, FONT_SIZE};
use spicehub_core::graph::{
    get_or_compute_layout, svg, views, Layout, LayoutError, Layouter, Plan, View, ViewGraph,
    DEFAULT_COLLAPSE_THRESHOLD,
};
use spicehub_parser::{Edge, EdgeKind, Entry, EntryKind, Graph, Registry};
use spicehub_web::api::viewer::ssr::node_info;
use spicehub_web::api::viewer::{RepositoryRef, Selection};

const NODES: usize = 5_000;
const EDGES: usize = 10_000;
/// Entries per module: 100 modules, the collapsed view's boxes.
const PER_MODULE: usize = 50;

/// A deterministic DAG: each edge goes from a lower to a higher entry,
/// mostly within a few hundred entries (as real pipelines are local).
fn registry() -> Graph {
    let reg = Registry {
        id: "bench.registry".into(),
        label: "registry".into(),
        file: "bench/registry.py".into(),
        line: 1,
    };
    let entries = (0..NODES)
        .map(|i| Entry {
            registry: reg.id.clone(),
            name: format!("step_{i:04}"),
            kind: EntryKind::Function,
            target: format!("bench.m{:03}.step_{i:04}", i / PER_MODULE),
            file: format!("bench/m{:03}.py", i / PER_MODULE),
            line: 1,
            doc: None,
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut edges = Vec::with_capacity(EDGES);
    while edges.len() < EDGES {
        // xorshift: reproducible without a dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let to = usize::try_from(state % NODES as u64).unwrap_or(0);
        let back = 1 + usize::try_from((state >> 20) % 300).unwrap_or(0);
        if back > to || !seen.insert((to - back, to)) {
            continue;
        }
        edges.push(Edge {
            registry: reg.id.clone(),
            from: format!("step_{:04}", to - back),
            to: format!("step_{to:04}"),
            kind: if edges.len() % 3 == 0 {
                EdgeKind::Explicit
            } else {
                EdgeKind::Parameter
            },
            dangling: false,
        });
    }
    let mut graph = Graph {
        registries: vec![reg],
        entries,
        edges,
        diagnostics: vec![],
    };
    graph.sort();
    graph
}

/// One module of 20,000 entries and 40,000 edges into it, each from a
/// dependency of its own that names nothing.
fn hostile_module() -> RegistryGraph {
    let registry = Registry {
        id: "hostile.registry".into(),
        label: "hostile".into(),
        file: "hostile/registry.py".into(),
        line: 1,
    };
    let entries = (0..20_000)
        .map(|i| Entry {
            registry: registry.id.clone(),
            name: format!("e{i}"),
            kind: EntryKind::Function,
            target: format!("hostile.module.e{i}"),
            file: "hostile/module.py".into(),
            line: 1,
            doc: None,
        })
        .collect();
    let edges = (0..40_000)
        .map(|i| Edge {
            registry: registry.id.clone(),
            from: format!("missing{i}"),
            to: format!("e{}", i % 20_000),
            kind: EdgeKind::Parameter,
            dangling: true,
        })
        .collect();
    RegistryGraph {
        registry,
        entries,
        edges,
    }
}

fn node_details_figures() {
    let graph = hostile_module();
    let repo = RepositoryRef {
        id: "hostile".into(),
        name: "hostile".into(),
        web_url: None,
        commit: None,
    };
    for selection in [
        Selection::Group("hostile.module".into()),
        Selection::Group(views::MISSING_GROUP.into()),
        Selection::Node("e0".into()),
    ] {
        let started = Instant::now();
        let info = node_info(&graph, &repo, selection.clone());
        println!(
            "node_info {selection:?} ({} entries, {} edges): {} ({} upstream, {} downstream)",
            graph.entries.len(),
            graph.edges.len(),
            ms(started.elapsed()),
            info.upstream.len(),
            info.downstream.len(),
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn measure(db: &Db, layouter: &Layouter, view: &View) -> Result<(), Box<dyn Error>> {
    let runs = layouter.runs();
    let started = Instant::now();
    let result = get_or_compute_layout(db, layouter, "bench", "c1", "bench.registry", view).await;
    let uncached = started.elapsed();
    let layout = match result {
        Ok(Some(layout)) => layout,
        Ok(None) => return Err("registry missing".into()),
        Err(spicehub_core::graph::GraphError::Layout(LayoutError::Timeout(t))) => {
            println!("{:<22} uncached: timed out after {t:?}", view.key());
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let started = Instant::now();
    let again = get_or_compute_layout(db, layouter, "bench", "c1", "bench.registry", view).await?;
    let cached = started.elapsed();
    if again.as_ref() != Some(&layout) || layouter.runs() != runs + 1 {
        return Err("the second call was not served from the cache".into());
    }
    let drawing = svg::render(&layout);
    let json = serde_json::to_string(&layout)?;
    println!(
        "{:<22} {:>5} nodes {:>6} edges  uncached {:>10}  cached {:>9}  SVG {:>6} KiB  JSON {:>6} KiB",
        view.key(),
        layout.nodes.len(),
        layout.edges.len(),
        ms(uncached),
        ms(cached),
        drawing.len() / 1024,
        json.len() / 1024,
    );
    Ok(())
}

/// Edge crossings, counting each edge as the segment from its start to its
/// arrow tip (exact for `splines=line`, what big graphs get), and the total
/// length of those segments.
fn crossings_and_length(layout: &Layout) -> (u64, f64) {
    let segments: Vec<((f64, f64), (f64, f64))> = layout
        .edges
        .iter()
        .filter_map(|e| {
            let start = *e.points.first()?;
            let end = e.arrow.or_else(|| e.points.last().copied())?;
            Some((start, end))
        })
        .collect();
    let length = segments
        .iter()
        .map(|((x0, y0), (x1, y1))| (x1 - x0).hypot(y1 - y0))
        .sum();
    let cross = |o: (f64, f64), a: (f64, f64), b: (f64, f64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    // Sorted by left end, so each segment is tested only against those
    // whose x ranges overlap it.
    let mut by_x: Vec<(f64, f64, usize)> = segments
        .iter()
        .enumerate()
        .map(|(i, (a, b))| (a.0.min(b.0), a.0.max(b.0), i))
        .collect();
    by_x.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut count = 0;
    for (k, &(_, right, i)) in by_x.iter().enumerate() {
        let (a, b) = segments[i];
        for &(left, _, j) in &by_x[k + 1..] {
            if left > right {
                break;
            }
            let (c, d) = segments[j];
            // Proper crossings only: edges that share an end do not count.
            let (d1, d2) = (cross(a, b, c), cross(a, b, d));
            let (d3, d4) = (cross(c, d, a), cross(c, d, b));
            if d1 * d2 < 0.0 && d3 * d4 < 0.0 {
                count += 1;
            }
        }
    }
    (count, length)
}

/// The full view laid out the way big graphs were before issue 19 and the
/// way they are now, printed side by side.
async fn compare_full_view(full: &ViewGraph, timeout: Duration) -> Result<(), Box<dyn Error>> {
    let layouter = Layouter::new().with_timeout(timeout);
    println!(
        "full view, {} nodes {} edges (2 cores: {:?} available)",
        full.nodes.len(),
        full.edges.len(),
        std::thread::available_parallelism().map(usize::from).ok()
    );
    println!(
        "  {:<34} {:>9} {:>10} {:>14} {:>8} {:>9}",
        "layout", "time", "crossings", "edge length", "aspect", "px at Fit"
    );
    for legacy in [true, false] {
        let started = Instant::now();
        let result = if legacy {
            let dot = to_dot_tuned(full, DotTuning::LEGACY);
            match layouter.run_dot(&dot).await {
                Ok(out) => Ok(parse_json0(full, &out)?),
                Err(e) => Err(e),
            }
        } else {
            let plan = Plan::new(full.clone());
            // For trying `dot` settings by hand on the very input the hub gives it.
            if let (Ok(path), Some(dot)) = (std::env::var("SPICEHUB_BENCH_DUMP_DOT"), plan.dot()) {
                std::fs::write(path, dot)?;
            }
            match plan.dot() {
                Some(dot) => match layouter.run_dot(dot).await {
                    Ok(out) => Ok(plan.finish(Some(&out))?),
                    Err(e) => Err(e),
                },
                None => Ok(plan.finish(None)?),
            }
        };
        let name = if legacy {
            "before: all to dot, LEGACY"
        } else {
            "now: components to dot, LARGE"
        };
        let layout = match result {
            Ok(layout) => layout,
            Err(LayoutError::Timeout(t)) => {
                println!("  {name:<34} timed out after {t:?}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let took = started.elapsed();
        let (crossings, length) = crossings_and_length(&layout);
        println!(
            "  {name:<34} {:>7.2} s {crossings:>10} {length:>11.0} pt {:>8.2} {:>6.2} px",
            took.as_secs_f64(),
            layout.width / layout.height,
            FONT_SIZE * fit_scale(layout.width, layout.height),
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    node_details_figures();
    let graph = registry();
    let dir = tempfile::tempdir()?;
    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await?;
    db.migrate().await?;
    let started = Instant::now();
    db.store_graph("bench", "c1", &graph).await?;
    println!(
        "registry: {} entries, {} edges; store_graph (SQLite) {}",
        graph.entries.len(),
        graph.edges.len(),
        ms(started.elapsed())
    );
    let started = Instant::now();
    let loaded = db.load_graph("bench", "c1").await?;
    println!("load_graph (SQLite) {}", ms(started.elapsed()));
    if loaded.as_ref() != Some(&graph) {
        return Err("round trip changed the graph".into());
    }

    let nodes = graph.entries.len();
    let default = View::default_for(nodes, DEFAULT_COLLAPSE_THRESHOLD);
    println!("default view for {nodes} nodes: {}", default.key());
    let layouter = Layouter::new();
    measure(&db, &layouter, &View::Collapsed).await?;
    for k in [1, 2, 3] {
        let view = View::Focus {
            node: "step_2500".into(),
            k,
        };
        measure(&db, &layouter, &view).await?;
    }
    let full_timeout = std::env::var("SPICEHUB_BENCH_FULL_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let slow = Layouter::new().with_timeout(Duration::from_secs(full_timeout));
    measure(&db, &slow, &View::Full).await?;
    // What the view module builds is what dot gets: say how big it was.
    let rg = db
        .registry_graph("bench", "c1", "bench.registry")
        .await?
        .ok_or("registry missing")?;
    let full = views::full(&rg);
    println!(
        "full view DOT: {} KiB",
        spicehub_core::graph::layout::to_dot(&full).len() / 1024
    );
    compare_full_view(&full, Duration::from_secs(full_timeout)).await?;
    db.close().await;
    Ok(())
}
