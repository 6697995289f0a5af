//! The graph viewer's server functions: the Registries tab, a repository's
//! registries and diagnostics, one registry's graph (laid out by Graphviz on
//! the server, cached per commit and view), node details and node search.
//!
//! The types they exchange travel to the browser, so they are plain data
//! compiled in both builds (`wire`), as are the links the pages build
//! (`links`); everything that reads the database sits in `ssr`, compiled
//! with the `ssr` feature only. Every function checks that a user is signed
//! in (viewers included) and returns a [`ViewerError`] whose `Display` is the
//! sentence to show. The pages use the names re-exported here
//! (`crate::api::viewer::…`), not the submodules' paths.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

mod links;
mod wire;

pub use links::{
    commit_link, diff_path, encode_component, export_path, history_path, query_without,
    registry_path, repository_path, source_link, view_query, with_commit, with_zoom, zoom_in, Zoom,
};
pub use wire::*;

#[cfg(feature = "ssr")]
pub mod commits;
#[cfg(feature = "ssr")]
pub mod ssr;
#[cfg(feature = "ssr")]
pub mod timeline;

#[server(prefix = "/api", endpoint = "registries")]
pub async fn list_registries(q: String) -> Result<Vec<RegistryRow>, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    ssr::list_registries(&db, &q).await
}

/// Entries whose name (or registered object) contains `q`, across every
/// registry of every repository.
#[server(prefix = "/api", endpoint = "search_entries")]
pub async fn search_entries(q: String) -> Result<EntryHits, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    ssr::search_entries(&db, &q).await
}

#[server(prefix = "/api", endpoint = "repository")]
pub async fn repository_overview(repository: String) -> Result<RepositoryContents, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    ssr::repository_overview(&db, &repository).await
}

#[server(prefix = "/api", endpoint = "registry_view", input = Json)]
pub async fn registry_view(
    repository: String,
    registry: String,
    request: ViewRequest,
) -> Result<RegistryPageData, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    ssr::registry_view(&db, &repository, &registry, request).await
}

#[server(prefix = "/api", endpoint = "node_details", input = Json)]
pub async fn node_details(
    repository: String,
    registry: String,
    selection: Selection,
    commit: Option<String>,
) -> Result<NodeInfo, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    ssr::node_details(&db, &repository, &registry, selection, commit.as_deref()).await
}

#[server(prefix = "/api", endpoint = "search_nodes", input = Json)]
pub async fn search_nodes(
    repository: String,
    registry: String,
    query: String,
    commit: Option<String>,
) -> Result<Vec<SearchHit>, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    ssr::search_nodes(&db, &repository, &registry, &query, commit.as_deref()).await
}

/// A repository's synced commits, newest first, with what each changed.
#[server(prefix = "/api", endpoint = "repository_timeline")]
pub async fn repository_timeline(repository: String) -> Result<TimelineData, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    timeline::repository_timeline(&db, &repository).await
}

/// What changed in one registry between two kept commits.
#[server(prefix = "/api", endpoint = "registry_diff", input = Json)]
pub async fn registry_diff(
    repository: String,
    registry: String,
    request: DiffRequest,
) -> Result<RegistryDiffData, ViewerError> {
    ssr::signed_in()?;
    let db = ssr::db()?;
    timeline::registry_diff(&db, &repository, &registry, request).await
}
