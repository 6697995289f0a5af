//! Git area (`.../_apis/git/repositories[/{repositoryId}/...]`), one file per section of the Azure DevOps Git
//! REST API. This file routes a repository's sub-resources; the handlers run on the blocking pool because every
//! one of them shells out to `git`.

mod changes;
mod commits;
mod diffs;
mod downloads;
mod items;
mod objects;
mod pushes;
mod refs;
mod repositories;
mod versions;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};

use crate::devops::{repo_not_found, route_not_found_pub, Ctx, HandlerResult};
use crate::http::{self, ado_json, tf_error};
use crate::state::{ProjectState, RepoState};
use crate::EmulatorError;

pub(crate) use repositories::list_repositories;

/// A failed `git` invocation: ADO's generic 500 envelope (and a log line, since the caller only sees the text).
fn internal(error: EmulatorError) -> Response<Body> {
    tracing::warn!(error = %error, "git failure");
    tf_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("VS402371: An unexpected error occurred: {error}"),
        "Exception",
        http::TN_INTERNAL,
    )
}

/// Lets a handler `?` a Git result: a Git failure becomes the 500 answer of [`internal`].
fn or_internal<T>(result: Result<T, EmulatorError>) -> Result<T, Response<Body>> {
    result.map_err(internal)
}

/// Routes `.../repositories/{repositoryId}/...`.
pub(crate) async fn repo_route(
    ctx: &Ctx,
    project: &ProjectState,
    repo: &Arc<RepoState>,
    method: &Method,
    tail_lower: &[&str],
    tail: &[String],
    raw_tail: &[&str],
) -> HandlerResult {
    if tail_lower.is_empty() {
        if *method == Method::GET {
            return Ok(ado_json(
                StatusCode::OK,
                &repositories::repo_json(&ctx.shared, &ctx.org, project, repo, true),
            ));
        }
        return Err(route_not_found_pub(method, "repository"));
    }
    if repo.disabled {
        // [INFER] a disabled repository refuses Git reads with TF401019.
        return Err(repo_not_found(&repo.name));
    }
    let ctx = ctx.clone();
    let repo = repo.clone();
    let method = method.clone();
    let lower: Vec<String> = tail_lower
        .iter()
        .map(|segment| segment.to_string())
        .collect();
    let tail: Vec<String> = tail.to_vec();
    let item_tail: Option<String> =
        if lower.first().map(String::as_str) == Some("items") && raw_tail.len() > 1 {
            Some(
                raw_tail[1..]
                    .iter()
                    .map(|segment| crate::faults::percent_decode(segment))
                    .collect::<Vec<_>>()
                    .join("/"),
            )
        } else {
            None
        };
    let project_id = project.id.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let Some(project) = ctx
            .org
            .projects
            .iter()
            .find(|candidate| candidate.id == project_id)
        else {
            return Err(repo_not_found(&repo.name));
        };
        let route: Vec<&str> = lower.iter().map(String::as_str).collect();
        match (&method, route.as_slice()) {
            (&Method::GET, ["refs", ..]) => refs::refs(&ctx, &repo, &tail[1..]),
            (&Method::GET, ["items", ..]) => items::items(&ctx, project, &repo, item_tail),
            (&Method::GET, ["trees", _]) => objects::trees(&ctx, &repo, &tail[1]),
            (&Method::GET, ["blobs", _]) => objects::blobs(&ctx, &repo, &tail[1]),
            (&Method::POST, ["blobs"]) => objects::blobs_zip(&ctx, &repo),
            (&Method::GET, ["commits"]) => commits::commits_list(&ctx, &repo),
            (&Method::GET, ["commits", _]) => commits::commit_get(&ctx, &repo, &tail[1]),
            (&Method::GET, ["commits", _, "changes"]) => {
                commits::commit_changes(&ctx, &repo, &tail[1])
            }
            (&Method::POST, ["commitsbatch"]) => commits::commits_batch(&ctx, &repo),
            (&Method::GET, ["pushes"]) => pushes::pushes_list(&ctx, project, &repo),
            (&Method::GET, ["pushes", _]) => pushes::push_get(&ctx, project, &repo, &tail[1]),
            (&Method::GET, ["pushes", _, "commits"]) => pushes::push_commits(&ctx, &repo, &tail[1]),
            (&Method::GET, ["diffs", "commits"]) => diffs::diffs(&ctx, &repo),
            _ => Err(route_not_found_pub(&method, &route.join("/"))),
        }
    })
    .await;
    match joined {
        Ok(answer) => answer,
        Err(join_error) => Err(internal(EmulatorError::from(join_error))),
    }
}
