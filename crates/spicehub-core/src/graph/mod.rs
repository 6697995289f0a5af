//! Graph drawing for the viewer: which part of a registry to draw
//! ([`views`]), where everything goes ([`layout`], by Graphviz `dot`), and a
//! plain SVG of the result ([`svg`]). Layouts are cached in the database per
//! (repository, commit, registry, view): a commit's graph never changes, so
//! a layout is computed once.

pub mod layout;
pub mod svg;
pub mod views;

pub use layout::{Layout, LayoutEdge, LayoutError, LayoutNode, Layouter};
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
}

/// The layout of one view of a registry: the cached one, or computed with
/// `layouter` and cached. `None` when the snapshot has no such registry.
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
    let key = view.key();
    if let Some(json) = db
        .cached_layout(repository_id, commit_id, registry_id, &key)
        .await?
    {
        return Ok(Some(serde_json::from_str(&json)?));
    }
    let Some(graph) = db
        .registry_graph(repository_id, commit_id, registry_id)
        .await?
    else {
        return Ok(None);
    };
    let layout = layouter.layout(&views::build(&graph, view)?).await?;
    db.store_layout(
        repository_id,
        commit_id,
        registry_id,
        &key,
        &serde_json::to_string(&layout)?,
    )
    .await?;
    Ok(Some(layout))
}
