//! Graph drawing for the viewer: which part of a registry to draw
//! ([`views`]), where everything goes ([`layout`], by Graphviz `dot`), and a
//! plain SVG of the result ([`svg`]). Layouts are cached in the database per
//! (repository, commit, registry, view): a commit's graph never changes, so
//! a layout is computed once.

pub mod layout;
pub mod svg;
pub mod views;

pub use layout::{Layout, LayoutEdge, LayoutError, LayoutNode, LayoutSlot, LayoutSlots, Layouter};
pub use views::{View, ViewError, ViewGraph, DEFAULT_COLLAPSE_THRESHOLD};

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
    let (view, drawn, dot) = off_runtime(move || {
        let full = views::full(&graph);
        let view = asked.within(&full);
        let drawn = views::from_full(full, &view)?;
        let dot = layout::to_dot(&drawn);
        Ok::<_, GraphError>((view, drawn, dot))
    })
    .await??;
    let key = view.key();
    if let Some(layout) = cached(db, repository_id, commit_id, registry_id, &key).await? {
        return Ok(Some(layout));
    }
    let (layout, json) = if drawn.nodes.is_empty() {
        let layout = layouter.layout(&drawn).await?;
        let json = serde_json::to_string(&layout)?;
        (layout, json)
    } else {
        let output = layouter.run_dot(&dot).await?;
        off_runtime(move || {
            let layout = layout::parse_json0(&drawn, &output)?;
            let json = serde_json::to_string(&layout)?;
            Ok::<_, GraphError>((layout, json))
        })
        .await??
    };
    if db
        .store_layout(repository_id, commit_id, registry_id, &key, &json)
        .await?
    {
        let keep = [key.clone(), View::Full.key(), View::Collapsed.key()];
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
    Ok(Some(layout))
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
