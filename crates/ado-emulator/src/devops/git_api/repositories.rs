//! Repositories section: the `GitRepository` shape and `GET .../git/repositories`. The repository URLs live here
//! because every other section links back to its repository with them.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::devops::core::project_ref_json;
use crate::devops::{can_read, Ctx, HandlerResult};
use crate::http::ado_json;
use crate::state::{enc_segment, OrgState, ProjectState, RepoState, Shared};

pub(super) fn repo_api_url(shared: &Shared, org: &OrgState, repo: &RepoState) -> String {
    format!(
        "{}/{}/_apis/git/repositories/{}",
        shared.org_url(org),
        repo.project_id,
        repo.id
    )
}

pub(super) fn repo_web_url(shared: &Shared, org: &OrgState, repo: &RepoState) -> String {
    format!(
        "{}/{}/_git/{}",
        shared.org_url(org),
        enc_segment(&repo.project_name),
        enc_segment(&repo.name)
    )
}

/// `GitRepository`
pub(super) fn repo_json(
    shared: &Shared,
    org: &OrgState,
    project: &ProjectState,
    repo: &RepoState,
    links: bool,
) -> Value {
    let url = repo_api_url(shared, org, repo);
    let web = repo_web_url(shared, org, repo);
    let mut repository = json!({
        "id": repo.id,
        "name": repo.name,
        "url": url,
        "project": project_ref_json(shared, org, project),
        "size": repo.size(),
        "remoteUrl": web,
        "sshUrl": format!("git@ssh.dev.azure.com:v3/{}/{}/{}", enc_segment(&org.name), enc_segment(&project.name), enc_segment(&repo.name)),
        "webUrl": web,
        "isDisabled": repo.disabled,
        "isInMaintenance": false,
    });
    if let Some(obj) = repository.as_object_mut() {
        if let Some(branch) = repo.default_branch() {
            obj.insert("defaultBranch".into(), json!(branch));
        }
        if links {
            obj.insert(
                "_links".into(),
                json!({
                    "self": {"href": url},
                    "project": {"href": format!("vstfs:///Classification/TeamProject/{}", project.id)},
                    "web": {"href": web},
                    "ssh": {"href": format!("git@ssh.dev.azure.com:v3/{}/{}/{}", enc_segment(&org.name), enc_segment(&project.name), enc_segment(&repo.name))},
                    "commits": {"href": format!("{url}/commits")},
                    "refs": {"href": format!("{url}/refs")},
                    "pullRequests": {"href": format!("{url}/pullRequests")},
                    "items": {"href": format!("{url}/items")},
                    "pushes": {"href": format!("{url}/pushes")},
                }),
            );
        }
    }
    repository
}

/// `GET {org}/[{project}/]_apis/git/repositories` — repositories the caller may read (none for a Stakeholder).
pub(crate) fn list_repositories(ctx: &Ctx, project: Option<&ProjectState>) -> HandlerResult {
    let mut value = Vec::new();
    let projects: Vec<&ProjectState> = match project {
        Some(project) => vec![project],
        None => ctx.org.projects.iter().collect(),
    };
    for project in projects {
        let mut repos: Vec<&Arc<RepoState>> = project
            .repos
            .iter()
            .filter(|repo| can_read(&ctx.principal, repo))
            .collect();
        repos.sort_by_key(|repo| repo.name.to_lowercase());
        for repo in repos {
            value.push(repo_json(&ctx.shared, &ctx.org, project, repo, false));
        }
    }
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}
