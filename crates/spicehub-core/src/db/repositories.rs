//! Replicated repositories. The id is Azure DevOps' repository GUID (lower
//! case), the key webhooks name a repository by.

use sqlx::Row;

use super::{now, Db, DbError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoState {
    Pending,
    Syncing,
    Synced,
    Error,
    Disabled,
}

impl RepoState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Syncing => "syncing",
            Self::Synced => "synced",
            Self::Error => "error",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending" => Self::Pending,
            "syncing" => Self::Syncing,
            "synced" => Self::Synced,
            "error" => Self::Error,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }
}

pub struct NewRepository<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub project_id: &'a str,
    pub project_name: &'a str,
    pub name: &'a str,
    /// `refs/heads/main` or just `main`.
    pub tracked_branch: &'a str,
    pub web_url: Option<&'a str>,
}

#[derive(Clone, Debug)]
pub struct Repository {
    pub id: String,
    pub organization_id: String,
    pub project_id: String,
    pub project_name: String,
    pub name: String,
    pub tracked_branch: String,
    pub web_url: Option<String>,
    pub last_synced_commit: Option<String>,
    pub state: RepoState,
    pub last_error: Option<String>,
    pub last_webhook_at: Option<i64>,
    /// The snapshot readers see (`db::snapshots`); `None` before the first sync.
    pub visible_snapshot: Option<String>,
    pub last_synced_at: Option<i64>,
    /// Why the last sync did what it did ("full sync: history was rewritten").
    pub last_sync_note: Option<String>,
    /// Files in the visible snapshot.
    pub file_count: Option<i64>,
    /// The tracked branch is Azure DevOps' default branch and moves with
    /// it; false when an admin picked the branch.
    pub follow_default_branch: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("this repository is already replicated")]
    Exists,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for RepositoryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// `main` → `refs/heads/main`; full ref names stay as they are. Pushes name
/// refs in full, so that is what is stored and compared.
pub fn full_branch_ref(branch: &str) -> String {
    if branch.starts_with("refs/") {
        branch.to_owned()
    } else {
        format!("refs/heads/{branch}")
    }
}

/// `refs/heads/main` → `main`, as the pages and Azure DevOps' branch
/// filters name a branch.
pub fn short_branch(branch: &str) -> &str {
    branch.strip_prefix("refs/heads/").unwrap_or(branch)
}

const COLUMNS: &str = "r.id, r.organization_id, r.project_id, r.project_name, r.name, \
     r.tracked_branch, r.web_url, r.last_synced_commit, r.state, r.last_error, r.last_webhook_at, \
     r.visible_snapshot, r.last_synced_at, r.last_sync_note, r.file_count, \
     r.follow_default_branch";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Repository, DbError> {
    let state: String = row.try_get("state")?;
    Ok(Repository {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        project_id: row.try_get("project_id")?,
        project_name: row.try_get("project_name")?,
        name: row.try_get("name")?,
        tracked_branch: row.try_get("tracked_branch")?,
        web_url: row.try_get("web_url")?,
        last_synced_commit: row.try_get("last_synced_commit")?,
        // The CHECK constraint makes any other value impossible.
        state: RepoState::parse(&state).unwrap_or(RepoState::Error),
        last_error: row.try_get("last_error")?,
        last_webhook_at: row.try_get("last_webhook_at")?,
        visible_snapshot: row.try_get("visible_snapshot")?,
        last_synced_at: row.try_get("last_synced_at")?,
        last_sync_note: row.try_get("last_sync_note")?,
        file_count: row.try_get("file_count")?,
        follow_default_branch: row.try_get::<i64, _>("follow_default_branch")? != 0,
    })
}

impl Db {
    pub async fn create_repository(
        &self,
        new: &NewRepository<'_>,
    ) -> Result<Repository, RepositoryError> {
        let id = new.id.to_ascii_lowercase();
        let branch = full_branch_ref(new.tracked_branch);
        let at = now();
        let result = sqlx::query(
            "INSERT INTO repositories (id, organization_id, project_id, project_name, name, \
             tracked_branch, web_url, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(new.organization_id)
        .bind(new.project_id.to_ascii_lowercase())
        .bind(new.project_name)
        .bind(new.name)
        .bind(&branch)
        .bind(new.web_url)
        .bind(at)
        .execute(self.pool())
        .await?;
        self.directory_changed();
        if result.rows_affected() == 0 {
            return Err(RepositoryError::Exists);
        }
        self.repository(&id)
            .await?
            .ok_or(RepositoryError::Db(DbError::Sqlx(sqlx::Error::RowNotFound)))
    }

    pub async fn repository(&self, id: &str) -> Result<Option<Repository>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM repositories r WHERE r.id = $1"
        ))
        .bind(id.to_ascii_lowercase())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The repository with this GUID if it belongs to `provider_id`: a
    /// provider's webhook credentials only ever reach its own repositories.
    pub async fn repository_of_provider(
        &self,
        provider_id: &str,
        id: &str,
    ) -> Result<Option<Repository>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM repositories r \
             JOIN organizations o ON o.id = r.organization_id \
             WHERE r.id = $1 AND o.provider_id = $2"
        ))
        .bind(id.to_ascii_lowercase())
        .bind(provider_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn repositories(&self) -> Result<Vec<Repository>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM repositories r ORDER BY r.project_name, r.name"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn set_repository_state(
        &self,
        id: &str,
        state: RepoState,
        last_error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE repositories SET state = $2, last_error = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(last_error)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets the tracked branch (full ref) and whether it follows Azure
    /// DevOps' default branch. False when the repository is gone.
    pub async fn set_tracked_branch(
        &self,
        id: &str,
        branch: &str,
        follow_default_branch: bool,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE repositories SET tracked_branch = $2, follow_default_branch = $3, \
             updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_ascii_lowercase())
        .bind(full_branch_ref(branch))
        .bind(i64::from(follow_default_branch))
        .bind(now())
        .execute(self.pool())
        .await?;
        // The webhook cache keeps each repository's tracked branch.
        self.directory_changed();
        Ok(done.rows_affected() > 0)
    }

    /// Moves a repository that follows the default branch from `from` to
    /// `to`. Conditional, so a sync that read the row before an admin
    /// picked a branch cannot undo the admin's choice: false then.
    pub async fn retarget_default_branch(
        &self,
        id: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE repositories SET tracked_branch = $3, updated_at = $4 \
             WHERE id = $1 AND tracked_branch = $2 AND follow_default_branch = 1",
        )
        .bind(id.to_ascii_lowercase())
        .bind(from)
        .bind(full_branch_ref(to))
        .bind(now())
        .execute(self.pool())
        .await?;
        self.directory_changed();
        Ok(done.rows_affected() > 0)
    }

    /// A provider's repositories with their organizations, by organization,
    /// project and name.
    pub async fn repositories_of_provider(
        &self,
        provider_id: &str,
    ) -> Result<Vec<(Repository, crate::db::providers::Organization)>, DbError> {
        let orgs = self.organizations(provider_id).await?;
        let mut out = Vec::new();
        for repo in self.repositories().await? {
            if let Some(org) = orgs.iter().find(|o| o.id == repo.organization_id) {
                out.push((repo, org.clone()));
            }
        }
        out.sort_by(|(a, ao), (b, bo)| {
            (&ao.name, &a.project_name, &a.name).cmp(&(&bo.name, &b.project_name, &b.name))
        });
        Ok(out)
    }

    /// Refreshes what Azure DevOps may rename (names, web URL); the GUIDs stay.
    pub async fn refresh_repository_names(
        &self,
        id: &str,
        name: &str,
        project_name: &str,
        web_url: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE repositories SET name = $2, project_name = $3, web_url = COALESCE($4, web_url) \
             WHERE id = $1 AND (name <> $2 OR project_name <> $3 OR web_url IS NULL OR web_url <> $4)",
        )
        .bind(id)
        .bind(name)
        .bind(project_name)
        .bind(web_url)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a repository and everything replicated from it (files, graphs,
    /// jobs, subscriptions the hub recorded).
    ///
    /// The repository row goes first: on PostgreSQL that locks it, so a
    /// sync switching at the same moment either commits before (and its
    /// rows are deleted here, each statement seeing them) or finds no row
    /// and writes nothing (`Db::switch_snapshot`). The foreign keys and the
    /// `repositories_delete_graphs` trigger delete the rest with it; the
    /// explicit deletes after it make sure of it.
    pub async fn delete_repository(&self, id: &str) -> Result<bool, DbError> {
        let id = id.to_ascii_lowercase();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM graph_layouts WHERE repository_id = $1",
            "DELETE FROM graph_diagnostics WHERE repository_id = $1",
            "DELETE FROM graph_edges WHERE repository_id = $1",
            "DELETE FROM graph_entries WHERE repository_id = $1",
            "DELETE FROM graph_registries WHERE repository_id = $1",
            "DELETE FROM graph_snapshots WHERE repository_id = $1",
            "DELETE FROM repository_files WHERE repository_id = $1",
            "DELETE FROM repository_snapshots WHERE repository_id = $1",
            "DELETE FROM file_blobs WHERE repository_id = $1",
            "DELETE FROM hook_subscriptions WHERE repository_id = $1",
            "DELETE FROM sync_jobs WHERE repository_id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(done.rows_affected() > 0)
    }
}
