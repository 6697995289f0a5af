//! Graph drawing for the viewer: which part of a registry to draw
//! ([`views`]), where everything goes ([`layout`], by Graphviz `dot`), and a
//! plain SVG of the result ([`svg`]), and the downloads made of them
//! ([`export`]: PNG, the registry as JSON). Layouts are cached in the database per
//! (repository, commit, registry, view): a commit's graph never changes, so
//! a layout is computed once.

pub mod export;
pub mod fold;
pub mod layout;
pub mod pack;
pub mod svg;
pub mod views;

pub use layout::{
    dot_runs_total, Layout, LayoutCluster, LayoutEdge, LayoutError, LayoutNode, LayoutSlot,
    LayoutSlots, Layouter, Plan,
};
pub use views::{View, ViewError, ViewGraph, DEFAULT_COLLAPSE_THRESHOLD};

use crate::db::graphs::RegistryGraph;
use crate::db::{Db, DbError};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot encode or decode a cached layout: {0}")]
    Cache(#[from] serde_json::Error),
    #[error("graph work was interrupted: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
}

/// Most layouts cached per registry of a snapshot. Whoever asks picks the
/// view (the modules opened, a focus node and its radius), so there is no
/// bound on their number otherwise; past this many the oldest are dropped,
/// except the whole and the collapsed view, which are what a registry opens
/// with.
pub const MAX_CACHED_LAYOUTS: usize = 32;

/// The layout of one view of a registry: the cached one, or computed with
/// `layouter` and cached. `None` when the snapshot has no such registry.
///
/// An expanded view keeps only the groups that the registry has (see
/// [`View::within`]): unknown names neither run `dot` nor add to the
/// cache, which holds at most [`MAX_CACHED_LAYOUTS`] views per registry.
/// Building the view, its DOT and decoding `dot`'s answer run on the
/// blocking pool: a big registry must not stall the async workers.
///
/// Two requests for the same uncached view may both run `dot`; the first
/// stored result wins and both are the same layout. Not worth a lock: a
/// view is computed once per commit.
pub async fn get_or_compute_layout(
    db: &Db,
    layouter: &Layouter,
    repository_id: &str,
    commit_id: &str,
    registry_id: &str,
    view: &View,
) -> Result<Option<Layout>, GraphError> {
    if let Some(layout) = cached(db, repository_id, commit_id, registry_id, &view.key()).await? {
        return Ok(Some(layout));
    }
    let Some(graph) = db
        .registry_graph(repository_id, commit_id, registry_id)
        .await?
    else {
        return Ok(None);
    };
    let asked = view.clone();
    let (view, plan) = off_runtime(move || {
        let full = views::full(&graph);
        let view = asked.within(&full);
        let drawn = views::from_full(full, &view)?;
        Ok::<_, GraphError>((view, Plan::new(drawn)))
    })
    .await??;
    let key = view.key();
    if let Some(layout) = cached(db, repository_id, commit_id, registry_id, &key).await? {
        return Ok(Some(layout));
    }
    let ids = (repository_id, commit_id, registry_id);
    Ok(Some(
        compute_and_store(db, layouter, ids, &key, plan).await?,
    ))
}

/// The layout of one view of a graph that is not a stored snapshot's (a
/// past commit's registry, or a diff's union of two), computed and not
/// cached: such views are asked for one at a time, and the cache is keyed
/// by the snapshots that the switch replaces.
pub async fn layout_uncached(
    layouter: &Layouter,
    graph: RegistryGraph,
    view: &View,
) -> Result<Layout, GraphError> {
    let asked = view.clone();
    let plan = off_runtime(move || {
        let full = views::full(&graph);
        let view = asked.within(&full);
        let drawn = views::from_full(full, &view)?;
        Ok::<_, GraphError>(Plan::new(drawn))
    })
    .await??;
    let output = match plan.dot() {
        Some(dot) => Some(layouter.run_dot(dot).await?),
        None => None,
    };
    off_runtime(move || plan.finish(output.as_deref()).map_err(GraphError::from)).await?
}

/// Runs `plan` (its `dot`, if any, then the packing, off the async
/// workers) and caches the result under `key`, trimming the cache.
async fn compute_and_store(
    db: &Db,
    layouter: &Layouter,
    (repository_id, commit_id, registry_id): (&str, &str, &str),
    key: &str,
    plan: Plan,
) -> Result<Layout, GraphError> {
    let output = match plan.dot() {
        Some(dot) => Some(layouter.run_dot(dot).await?),
        None => None,
    };
    let (layout, json) = off_runtime(move || {
        let layout = plan.finish(output.as_deref())?;
        let json = serde_json::to_string(&layout)?;
        Ok::<_, GraphError>((layout, json))
    })
    .await??;
    if db
        .store_layout(repository_id, commit_id, registry_id, key, &json)
        .await?
    {
        let keep = [key.to_owned(), View::Full.key(), View::Collapsed.key()];
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        db.trim_layouts(
            repository_id,
            commit_id,
            registry_id,
            MAX_CACHED_LAYOUTS,
            &keep,
        )
        .await?;
    }
    Ok(layout)
}

/// Lays out, ahead of any visitor, the views a registry opens with: its
/// default view, and its full view too when that has at most `max_full`
/// nodes (the viewer offers it one click away). Views already cached are
/// skipped, so running this twice costs two cache lookups. Returns how many
/// views were computed; `None` when the snapshot has no such registry.
pub async fn prelayout_registry(
    db: &Db,
    layouter: &Layouter,
    repository_id: &str,
    commit_id: &str,
    registry_id: &str,
    max_full: usize,
) -> Result<Option<usize>, GraphError> {
    let ids = (repository_id, commit_id, registry_id);
    let is_cached = |key: String| async move {
        db.cached_layout(repository_id, commit_id, registry_id, &key)
            .await
            .map(|c| c.is_some())
    };
    let full_cached = is_cached(View::Full.key()).await?;
    let collapsed_cached = is_cached(View::Collapsed.key()).await?;
    // A small registry never gets a collapsed layout: it loads its graph
    // again to find that out, which costs far less than the dot run saved.
    if full_cached && collapsed_cached {
        return Ok(Some(0));
    }
    let Some(graph) = db
        .registry_graph(repository_id, commit_id, registry_id)
        .await?
    else {
        return Ok(None);
    };
    let full = off_runtime(move || views::full(&graph)).await?;
    let default = View::default_for(full.nodes.len(), DEFAULT_COLLAPSE_THRESHOLD);
    let mut wanted = vec![default.clone()];
    if default != View::Full && full.nodes.len() <= max_full {
        wanted.push(View::Full);
    }
    let full = std::sync::Arc::new(full);
    let mut computed = 0;
    for view in wanted {
        let cached = match view {
            View::Full => full_cached,
            _ => collapsed_cached,
        };
        if cached {
            continue;
        }
        let key = view.key();
        let plan = off_runtime({
            let full = full.clone();
            move || views::from_full((*full).clone(), &view).map(Plan::new)
        })
        .await??;
        compute_and_store(db, layouter, ids, &key, plan).await?;
        computed += 1;
    }
    Ok(Some(computed))
}

/// The cached layout of a view, decoded off the async workers.
async fn cached(
    db: &Db,
    repository_id: &str,
    commit_id: &str,
    registry_id: &str,
    key: &str,
) -> Result<Option<Layout>, GraphError> {
    match db
        .cached_layout(repository_id, commit_id, registry_id, key)
        .await?
    {
        Some(json) => Ok(Some(
            off_runtime(move || serde_json::from_str(&json)).await??,
        )),
        None => Ok(None),
    }
}

/// Runs CPU-bound work on tokio's blocking pool. A panic there is a panic
/// here; the only other failure is a runtime shutting down.
pub async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, GraphError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => Err(GraphError::Interrupted(e)),
        },
    }
}
