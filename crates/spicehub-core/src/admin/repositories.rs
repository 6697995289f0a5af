//! Adding a repository (looked up in Azure DevOps as the provider's service
//! principal, stored by GUID, first replication queued) and the manual sync
//! actions.

use super::AdminError;
use crate::connections::ProviderConnections;
use crate::db::repositories::{full_branch_ref, NewRepository, Repository};
use crate::db::{Db, DbError};
use crate::sync::{JobKind, NewJob, Queue};

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
    let client = clients.for_org(req.provider_id, organization).await?;
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

/// Queues a manual action on a repository: synchronize the entire
/// repository, the recent changes, from a commit hash, or re-parse.
pub async fn request_sync(
    db: &Db,
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
            if c.len() != 40 || !c.chars().all(|ch| ch.is_ascii_hexdigit()) {
                return Err(AdminError::BadCommit(c));
            }
            Some(c)
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
