//! Adding a repository (looked up in Azure DevOps as the provider's service
//! principal, stored by GUID, first replication queued), the manual sync
//! actions, and removing one (with the service hooks the hub created).

use super::{AdminError, DiagnosisRecord};
use crate::connections::{ConnectionError, ProviderConnections};
use crate::db::providers::Organization;
pub use crate::db::repositories::short_branch;
use crate::db::repositories::{full_branch_ref, NewRepository, Repository};
use crate::db::{Db, DbError};
use crate::sync::{JobKind, NewJob, Queue};
use crate::Hub;

/// A provider by id or display name.
pub async fn find_provider(db: &Db, name_or_id: &str) -> Result<String, AdminError> {
    let providers = db.providers().await?;
    providers
        .iter()
        .find(|p| p.id == name_or_id)
        .or_else(|| {
            providers
                .iter()
                .find(|p| p.display_name.eq_ignore_ascii_case(name_or_id))
        })
        .map(|p| p.id.clone())
        .ok_or_else(|| AdminError::UnknownProvider(name_or_id.to_owned()))
}

pub struct AddRepository<'a> {
    pub provider_id: &'a str,
    pub organization: &'a str,
    /// Project name or GUID.
    pub project: &'a str,
    /// Repository name or GUID.
    pub repository: &'a str,
    /// Tracked branch; the repository's default branch when `None`.
    pub branch: Option<&'a str>,
}

/// Looks the repository up as the service principal sees it, stores it by
/// GUID and queues its first replication.
pub async fn add_repository(
    db: &Db,
    clients: &ProviderConnections,
    queue: &Queue,
    req: &AddRepository<'_>,
) -> Result<Repository, AdminError> {
    let organization = req.organization.trim();
    let client = clients
        .for_org(req.provider_id, organization)
        .await?
        .with_priority(spicehub_azure::Priority::Interactive);
    let remote = client.get_repository(req.project, req.repository).await?;
    if remote.disabled() {
        return Err(AdminError::Disabled);
    }
    let branch = match (req.branch, remote.default_branch.as_deref()) {
        (Some(b), _) => full_branch_ref(b),
        (None, Some(b)) => full_branch_ref(b),
        (None, None) => return Err(AdminError::Empty),
    };
    let (project_id, project_name) = match &remote.project {
        Some(p) => (p.id.clone(), p.name.clone()),
        None => (req.project.to_owned(), req.project.to_owned()),
    };
    let org = db
        .ensure_organization(req.provider_id, organization, None)
        .await?;
    let repo = db
        .create_repository(&NewRepository {
            id: &remote.id,
            organization_id: &org.id,
            project_id: &project_id,
            project_name: &project_name,
            name: &remote.name,
            tracked_branch: &branch,
            web_url: remote.web_url.as_deref(),
        })
        .await?;
    // A branch named by the admin is theirs to keep; without one, the
    // repository follows the default branch wherever Azure DevOps moves it.
    if req.branch.is_some() {
        db.set_tracked_branch(&repo.id, &branch, false).await?;
    }
    let repo = db
        .repository(&repo.id)
        .await?
        .ok_or(AdminError::UnknownRepository)?;
    queue
        .enqueue(&NewJob {
            repository_id: &repo.id,
            kind: JobKind::FirstReplication,
            target_commit: None,
            delivery_id: None,
        })
        .await?;
    Ok(repo)
}

/// A replicated repository, its organization, and a client of that
/// organization as the provider's app.
async fn repository_with_client(
    db: &Db,
    clients: &ProviderConnections,
    repository_id: &str,
) -> Result<
    (
        Repository,
        Organization,
        spicehub_azure::client::AzureClient,
    ),
    AdminError,
> {
    let repo = db
        .repository(repository_id)
        .await?
        .ok_or(AdminError::UnknownRepository)?;
    let org = db
        .organization(&repo.organization_id)
        .await?
        .ok_or(AdminError::UnknownRepository)?;
    let client = clients.for_org(&org.provider_id, &org.name).await?;
    Ok((repo, org, client))
}

/// How far back a short hash is looked for on the tracked branch.
const SHORT_HASH_SEARCH: usize = 10_000;
const SHORT_HASH_PAGE: u32 = 1_000;

/// Queues a manual action on a repository: synchronize the entire
/// repository, the recent changes, from a commit hash (full, or 7 or more
/// characters, resolved among the tracked branch's commits in Azure
/// DevOps), or re-parse.
pub async fn request_sync(
    db: &Db,
    clients: &ProviderConnections,
    queue: &Queue,
    repository_id: &str,
    kind: JobKind,
    commit: Option<&str>,
) -> Result<String, AdminError> {
    let repo = db
        .repository(repository_id)
        .await?
        .ok_or(AdminError::UnknownRepository)?;
    let commit = match (kind, commit) {
        (JobKind::FromCommit, Some(c)) => {
            let c = c.trim().to_ascii_lowercase();
            if !(7..=40).contains(&c.len()) || !c.chars().all(|ch| ch.is_ascii_hexdigit()) {
                return Err(AdminError::BadCommit(c));
            }
            if c.len() == 40 {
                Some(c)
            } else {
                Some(resolve_short_hash(db, clients, &repo, &c).await?)
            }
        }
        (JobKind::FromCommit, None) => return Err(AdminError::BadCommit(String::new())),
        _ => None,
    };
    Ok(queue
        .enqueue(&NewJob {
            repository_id: &repo.id,
            kind,
            target_commit: commit.as_deref(),
            delivery_id: None,
        })
        .await?)
}

/// The full hash of the one commit of the tracked branch that starts with
/// `prefix`. Azure DevOps takes only full hashes, so the branch's history
/// is read page by page (newest first) until a second match or
/// `SHORT_HASH_SEARCH` commits.
async fn resolve_short_hash(
    db: &Db,
    clients: &ProviderConnections,
    repo: &Repository,
    prefix: &str,
) -> Result<String, AdminError> {
    use spicehub_azure::client::CommitQuery;
    use spicehub_azure::GitVersion;
    let (_, _, client) = repository_with_client(db, clients, &repo.id).await?;
    let branch = repo
        .tracked_branch
        .strip_prefix("refs/heads/")
        .unwrap_or(&repo.tracked_branch)
        .to_owned();
    let mut matches: Vec<String> = Vec::new();
    let mut searched = 0usize;
    while searched < SHORT_HASH_SEARCH {
        let page = client
            .list_commits(
                &repo.project_id,
                &repo.id,
                &CommitQuery {
                    item_version: Some(GitVersion::Branch(branch.clone())),
                    top: Some(SHORT_HASH_PAGE),
                    skip: Some(u32::try_from(searched).unwrap_or(u32::MAX)),
                    ..CommitQuery::default()
                },
            )
            .await?;
        let n = page.len();
        searched += n;
        matches.extend(
            page.into_iter()
                .map(|c| c.commit_id.to_ascii_lowercase())
                .filter(|id| id.starts_with(prefix)),
        );
        matches.dedup();
        if matches.len() > 1 || n < SHORT_HASH_PAGE as usize {
            break;
        }
    }
    decide(prefix, matches, &branch, searched)
}

/// One match is the commit; none or several say so.
fn decide(
    prefix: &str,
    mut matches: Vec<String>,
    branch: &str,
    searched: usize,
) -> Result<String, AdminError> {
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(AdminError::UnknownCommit {
            prefix: prefix.to_owned(),
            branch: branch.to_owned(),
            searched,
        }),
        _ => Err(AdminError::AmbiguousCommit {
            prefix: prefix.to_owned(),
            matches: matches
                .into_iter()
                .map(|m| m.chars().take(12).collect())
                .collect(),
        }),
    }
}

/// Jobs waiting or running, by repository (the Repositories tab's live state).
pub struct ActiveJob {
    pub running: bool,
    pub phase: Option<String>,
    pub done: Option<i64>,
    pub total: Option<i64>,
}

pub async fn active_jobs(
    db: &Db,
) -> Result<std::collections::HashMap<String, Vec<ActiveJob>>, DbError> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT repository_id, status, phase, progress_done, progress_total FROM sync_jobs \
         WHERE status IN ('pending', 'running')",
    )
    .fetch_all(db.pool())
    .await?;
    let mut out: std::collections::HashMap<String, Vec<ActiveJob>> = Default::default();
    for row in rows {
        let status: String = row.try_get("status")?;
        out.entry(row.try_get("repository_id")?)
            .or_default()
            .push(ActiveJob {
                running: status == "running",
                phase: row.try_get("phase")?,
                done: row.try_get("progress_done")?,
                total: row.try_get("progress_total")?,
            });
    }
    Ok(out)
}

/// A service hook the hub created that removal could not delete in Azure
/// DevOps: Azure DevOps keeps posting pushes to the hub (refused or
/// ignored) until someone deletes it on the project's Service hooks page.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HookLeft {
    /// `organization/project/repository`.
    pub repository: String,
    pub subscription_id: String,
    /// Why, in an admin's words.
    pub reason: String,
    /// `{devops}/{organization}/{project}/_settings/serviceHooks`.
    pub service_hooks_url: String,
}

/// What removing a repository did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RepositoryRemoval {
    pub id: String,
    /// `organization/project/repository`.
    pub repository: String,
    /// Hub-created subscriptions deleted in Azure DevOps (or already gone).
    pub hooks_deleted: usize,
    pub hooks_left: Vec<HookLeft>,
}

/// The project's Service hooks page, under the hub's configured Azure
/// DevOps URL (so it points at the emulator or a sovereign cloud too).
pub fn service_hooks_url(devops_url: &str, organization: &str, project: &str) -> String {
    let fallback = || {
        format!(
            "{}/{organization}/{project}/_settings/serviceHooks",
            devops_url.trim_end_matches('/')
        )
    };
    let Ok(mut url) = url::Url::parse(devops_url) else {
        return fallback();
    };
    match url.path_segments_mut() {
        Ok(mut path) => {
            // Percent-encodes a project name with spaces or `#`.
            path.pop_if_empty()
                .extend([organization, project, "_settings", "serviceHooks"]);
        }
        Err(()) => return fallback(),
    }
    url.to_string()
}

/// Deletes, in Azure DevOps, the service hooks the hub created for one
/// repository. Best effort: a subscription already gone (404) counts as
/// deleted; any other failure is returned as a [`HookLeft`] so the
/// caller can still remove the repository and tell the admin.
pub(crate) async fn delete_hooks_of(
    hub: &Hub,
    repo: &Repository,
    organization: Option<&Organization>,
) -> Result<(usize, Vec<HookLeft>), DbError> {
    let hooks = hub.db.hook_subscriptions_of(&repo.id).await?;
    let org_name = organization.map(|o| o.name.as_str()).unwrap_or_default();
    let label = format!("{org_name}/{}/{}", repo.project_name, repo.name);
    let mut deleted = 0;
    let mut left = Vec::new();
    if hooks.is_empty() {
        return Ok((0, left));
    }
    let client = match organization {
        Some(org) => hub
            .connections
            .for_org(&org.provider_id, &org.name)
            .await
            .map_err(|e| match e {
                ConnectionError::Azure(e) => DiagnosisRecord::of_error(&e).title,
                other => other.to_string(),
            }),
        None => Err("the repository's organization is not recorded".to_owned()),
    };
    for hook in hooks {
        let outcome = match &client {
            Ok(client) => match client
                .delete_subscription(&hook.devops_subscription_id)
                .await
            {
                Ok(()) => Ok(()),
                // Deleted by hand already: what removal wanted.
                Err(e) if e.context().and_then(|c| c.status) == Some(404) => Ok(()),
                Err(e) => {
                    let d = DiagnosisRecord::of_error(&e);
                    Err(format!("{}: {}", d.title, d.hint))
                }
            },
            Err(reason) => Err(reason.clone()),
        };
        match outcome {
            Ok(()) => {
                tracing::info!(
                    repository = %repo.id,
                    subscription = %hook.devops_subscription_id,
                    "deleted the service hook the hub created"
                );
                deleted += 1;
            }
            Err(reason) => {
                tracing::warn!(
                    repository = %repo.id,
                    subscription = %hook.devops_subscription_id,
                    %reason,
                    "cannot delete the service hook the hub created; it stays in Azure DevOps"
                );
                left.push(HookLeft {
                    repository: label.clone(),
                    subscription_id: hook.devops_subscription_id,
                    reason,
                    service_hooks_url: service_hooks_url(
                        &hub.config.azure.devops_url,
                        org_name,
                        &repo.project_name,
                    ),
                });
            }
        }
    }
    Ok((deleted, left))
}

/// Removes a repository from the hub: first the service hooks the hub
/// created for it in Azure DevOps (best effort, see [`delete_hooks_of`]),
/// then its row, files, graphs and jobs. The repository is removed even
/// when a hook could not be deleted: the admin asked for it, and the
/// hook left behind is named with a link to delete it by hand.
pub async fn remove_repository(
    hub: &Hub,
    repository_id: &str,
) -> Result<RepositoryRemoval, AdminError> {
    let repo = hub
        .db
        .repository(repository_id)
        .await?
        .ok_or(AdminError::UnknownRepository)?;
    let org = hub.db.organization(&repo.organization_id).await?;
    let (hooks_deleted, hooks_left) = delete_hooks_of(hub, &repo, org.as_ref()).await?;
    if !hub.db.delete_repository(&repo.id).await? {
        return Err(AdminError::UnknownRepository);
    }
    Ok(RepositoryRemoval {
        id: repo.id,
        repository: format!(
            "{}/{}/{}",
            org.as_ref().map(|o| o.name.as_str()).unwrap_or_default(),
            repo.project_name,
            repo.name
        ),
        hooks_deleted,
        hooks_left,
    })
}

/// What "Change tracked branch…" offers for one repository.
#[derive(Clone, Debug)]
pub struct BranchChoices {
    pub repository: Repository,
    /// The organization's name.
    pub organization: String,
    /// Azure DevOps' default branch now (short name); `None` while the
    /// repository has no commit.
    pub default_branch: Option<String>,
    /// Every branch (short names), sorted.
    pub branches: Vec<String>,
}

/// The repository's branches as Azure DevOps lists them now, for the admin
/// to pick one.
pub async fn branch_choices(hub: &Hub, repository_id: &str) -> Result<BranchChoices, AdminError> {
    let (repo, org, client) =
        repository_with_client(&hub.db, &hub.connections, repository_id).await?;
    let remote = client.get_repository(&repo.project_id, &repo.id).await?;
    let mut branches: Vec<String> = client
        .list_refs(&repo.project_id, &repo.id, Some("heads/"))
        .await?
        .into_iter()
        .filter_map(|r| r.name.strip_prefix("refs/heads/").map(str::to_owned))
        .collect();
    branches.sort();
    branches.dedup();
    Ok(BranchChoices {
        default_branch: remote
            .default_branch
            .as_deref()
            .map(|b| short_branch(b).to_owned()),
        repository: repo,
        organization: org.name,
        branches,
    })
}

/// The admin's choice of branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchChoice<'a> {
    /// Azure DevOps' default branch, wherever it moves.
    FollowDefault,
    /// This branch (short or full name), kept when the default changes.
    Branch(&'a str),
}

/// What changing the tracked branch did.
#[derive(Debug)]
pub struct BranchChange {
    /// `organization/project/repository`.
    pub repository: String,
    /// Short names.
    pub from: String,
    pub to: String,
    pub follows_default: bool,
    /// A full sync of the new branch was queued (not when the branch
    /// stayed the same).
    pub sync_queued: bool,
    /// One result per service hook the hub created for the repository.
    pub hooks: Vec<Result<crate::sync::hooks::BranchFilterUpdate, crate::sync::hooks::HookError>>,
}

/// Stores the tracked branch an admin chose (checked against Azure DevOps),
/// queues a full sync of it ("entire repository": the new branch's head
/// may share nothing with the old one), and moves the branch filter of the
/// service hooks the hub created, so pushes to the new branch reach the hub.
pub async fn change_tracked_branch(
    hub: &Hub,
    repository_id: &str,
    choice: BranchChoice<'_>,
) -> Result<BranchChange, AdminError> {
    let (repo, org, client) =
        repository_with_client(&hub.db, &hub.connections, repository_id).await?;
    let (branch, follow) = match choice {
        BranchChoice::FollowDefault => {
            let remote = client.get_repository(&repo.project_id, &repo.id).await?;
            if remote.disabled() {
                return Err(AdminError::Disabled);
            }
            let default = remote.default_branch.ok_or(AdminError::Empty)?;
            (full_branch_ref(&default), true)
        }
        BranchChoice::Branch(name) => {
            let name = name.trim();
            let full = full_branch_ref(name);
            let exists = !name.is_empty()
                && client
                    .branch_head(&repo.project_id, &repo.id, &full)
                    .await?
                    .is_some();
            if !exists {
                return Err(AdminError::UnknownBranch(short_branch(name).to_owned()));
            }
            (full, false)
        }
    };
    if !hub.db.set_tracked_branch(&repo.id, &branch, follow).await? {
        return Err(AdminError::UnknownRepository);
    }
    let moved = branch != repo.tracked_branch;
    if moved {
        hub.queue
            .enqueue(&NewJob {
                repository_id: &repo.id,
                kind: JobKind::EntireRepository,
                target_commit: None,
                delivery_id: None,
            })
            .await?;
    }
    let hooks = match crate::sync::hooks::push_branch(
        &hub.db,
        &hub.connections,
        &hub.config.secret_key,
        &hub.config.public_url,
        &repo.id,
    )
    .await
    {
        Ok(hooks) => hooks,
        // The choice is stored and the sync queued; reconcile moves the
        // filters later.
        Err(e) => vec![Err(e)],
    };
    tracing::info!(
        repository = %repo.id,
        from = %repo.tracked_branch,
        to = %branch,
        follow,
        "tracked branch changed"
    );
    Ok(BranchChange {
        repository: format!("{}/{}/{}", org.name, repo.project_name, repo.name),
        from: short_branch(&repo.tracked_branch).to_owned(),
        to: short_branch(&branch).to_owned(),
        follows_default: follow,
        sync_queued: moved,
        hooks,
    })
}

#[cfg(test)]
mod short_hash_tests {
    use super::*;

    #[test]
    fn one_match_is_the_commit_and_none_or_several_are_explained() {
        let a = "abcdef1234567890abcdef1234567890abcdef12".to_owned();
        let b = "abcdef1299999990abcdef1234567890abcdef12".to_owned();
        assert_eq!(decide("abcdef1", vec![a.clone()], "main", 3).unwrap(), a);
        let none = decide("abcdef1", vec![], "main", 3)
            .unwrap_err()
            .to_string();
        assert!(
            none.contains("no commit of the branch `main` starts with `abcdef1`"),
            "{none}"
        );
        let both = decide("abcdef12", vec![a, b], "main", 3)
            .unwrap_err()
            .to_string();
        assert!(
            both.contains("ambiguous")
                && both.contains("abcdef123456")
                && both.contains("abcdef129999"),
            "{both}"
        );
    }
}
