//! Adding a repository (looked up in Azure DevOps as the provider's service
//! principal, stored by GUID, first replication queued) and the manual sync
//! actions.

use crate::azure::AzureError;
use crate::db::providers::ProviderError;
use crate::db::repositories::{full_branch_ref, NewRepository, Repository, RepositoryError};
use crate::db::{Db, DbError};
use crate::sync::clients::{ClientError, Clients};
use crate::sync::{JobKind, NewJob, Queue, QueueError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no Git provider is named `{0}`")]
    UnknownProvider(String),
    #[error("no such repository in the hub")]
    UnknownRepository,
    #[error("this repository is already replicated")]
    AlreadyAdded,
    #[error("the repository is disabled in Azure DevOps")]
    Disabled,
    #[error("the repository is empty: add it after its first push")]
    Empty,
    #[error("`{0}` is not a commit hash (40 hexadecimal characters)")]
    BadCommit(String),
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<RepositoryError> for AdminError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::Exists => AdminError::AlreadyAdded,
            RepositoryError::Db(e) => AdminError::Db(e),
        }
    }
}

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
    clients: &Clients,
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
struct ActiveJob {
    running: bool,
    phase: Option<String>,
    done: Option<i64>,
    total: Option<i64>,
}

async fn active_jobs(
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

/// One row per replicated repository, with its live state.
pub async fn rows(db: &Db) -> Result<Vec<crate::api::admin::RepoRow>, DbError> {
    use crate::db::repositories::RepoState;
    let repos = db.repositories().await?;
    let jobs = active_jobs(db).await?;
    let mut orgs: std::collections::HashMap<String, (String, String)> = Default::default();
    let mut out = Vec::with_capacity(repos.len());
    for r in repos {
        if !orgs.contains_key(&r.organization_id) {
            let o = db.organization(&r.organization_id).await?;
            orgs.insert(
                r.organization_id.clone(),
                o.map(|o| (o.name, o.provider_id)).unwrap_or_default(),
            );
        }
        let (organization, provider_id) = orgs.get(&r.organization_id).cloned().unwrap_or_default();
        let active = jobs.get(&r.id);
        let running = active.and_then(|j| j.iter().find(|j| j.running));
        let pending = active.is_some_and(|j| j.iter().any(|j| !j.running));
        let (state, label) = match (running, r.state) {
            (_, RepoState::Disabled) => ("disabled", "Disabled"),
            (Some(_), _) => ("syncing", "Syncing"),
            (None, _) if pending && r.state == RepoState::Syncing => ("queued", "Waiting to retry"),
            (None, _) if pending => ("queued", "Queued"),
            (None, RepoState::Pending) => ("queued", "Queued"),
            (None, RepoState::Syncing) => ("syncing", "Syncing"),
            (None, RepoState::Synced) => ("in_sync", "In sync"),
            (None, RepoState::Error) => ("failed", "Failed"),
        };
        let error = r.last_error.clone();
        out.push(crate::api::admin::RepoRow {
            diagnosis: error.as_deref().and_then(super::diagnosis_in_message),
            error,
            commit_short: r
                .last_synced_commit
                .as_ref()
                .map(|c| c.chars().take(8).collect()),
            commit_url: match (&r.web_url, &r.last_synced_commit) {
                (Some(w), Some(c)) => Some(format!("{}/commit/{c}", w.trim_end_matches('/'))),
                _ => None,
            },
            commit: r.last_synced_commit.clone(),
            web_url: r.web_url.clone(),
            last_synced: r.last_synced_at.map(super::fmt_time),
            state: state.into(),
            state_label: label.into(),
            phase: running.and_then(|j| j.phase.clone()),
            progress_done: running.and_then(|j| j.done),
            progress_total: running.and_then(|j| j.total),
            note: r.last_sync_note.clone(),
            last_webhook: r.last_webhook_at.map(super::fmt_time),
            branch: r
                .tracked_branch
                .strip_prefix("refs/heads/")
                .unwrap_or(&r.tracked_branch)
                .to_owned(),
            id: r.id,
            provider_id,
            organization,
            project: r.project_name,
            name: r.name,
        });
    }
    Ok(out)
}

/// A manual action from the Repositories tab: `entire`, `recent`,
/// `from_commit` (with a commit hash) or `reparse`.
pub async fn action(
    state: &crate::server::AppState,
    id: &str,
    action: &str,
    commit: Option<&str>,
) -> Result<String, crate::api::admin::AdminError> {
    use crate::api::admin::{AdminError as UiError, FieldError};
    let (kind, label) = match action {
        "entire" => (JobKind::EntireRepository, "Synchronize entire repository"),
        "recent" => (JobKind::RecentChanges, "Synchronize recent changes"),
        "from_commit" => (JobKind::FromCommit, "Synchronize from commit hash"),
        "reparse" => (JobKind::Reparse, "Re-parse"),
        _ => return Err(UiError::Message(format!("Unknown action `{action}`."))),
    };
    let name = state
        .db
        .repository(id)
        .await
        .ok()
        .flatten()
        .map(|r| r.name)
        .unwrap_or_default();
    match request_sync(&state.db, &state.queue, id, kind, commit).await {
        Ok(_) => Ok(format!("{label}: queued for {name}.")),
        Err(AdminError::BadCommit(c)) => Err(UiError::Fields(vec![FieldError {
            field: "commit".into(),
            message: if c.is_empty() {
                "Enter the commit hash to synchronize from (40 hexadecimal characters).".into()
            } else {
                format!("`{c}` is not a commit hash: it has 40 hexadecimal characters (0-9, a-f).")
            },
        }])),
        Err(AdminError::UnknownRepository) => Err(UiError::Message(
            "This repository is no longer replicated.".into(),
        )),
        Err(e) => {
            tracing::error!(error = %e, "manual sync could not be queued");
            Err(UiError::Message(
                "The hub could not queue this (database error). Try again.".into(),
            ))
        }
    }
}
