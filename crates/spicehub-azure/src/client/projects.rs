//! Endpoints of the organization's catalogue: its projects and their Git
//! repositories. Kept apart from the per-repository Git endpoints because these are
//! what discovery walks (`azure check`, the admin's repository listing), whereas
//! replication starts from a repository it already knows.

use std::collections::HashSet;

use super::urls::{continuation_token, Query};
use super::AzureClient;
use crate::diagnosis::{AzureError, ResourceScope};
use crate::models::{GitRepository, ListResponse, TeamProjectReference};

impl AzureClient {
    /// All projects visible to the service principal (every page).
    pub async fn list_projects(&self) -> Result<Vec<TeamProjectReference>, AzureError> {
        let top = self.shared.config.projects_page_size.max(1);
        let mut out: Vec<TeamProjectReference> = Vec::new();
        let mut ids: HashSet<String> = HashSet::new();
        let mut seen_tokens: HashSet<String> = HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..self.shared.config.max_pages {
            let mut q = Query::new().push("$top", top);
            q = match &token {
                Some(t) => q.push("continuationToken", t),
                None if !out.is_empty() => q.push("$skip", out.len()),
                None => q,
            };
            let url = self.url(&["_apis", "projects"], q)?;
            let (page, headers): (ListResponse<TeamProjectReference>, _) =
                self.get_json(url, ResourceScope::Organization).await?;
            let n = page.value.len();
            let mut new_items = 0usize;
            for p in page.value {
                if ids.insert(p.id.clone()) {
                    out.push(p);
                    new_items += 1;
                }
            }
            // The token is a response header; some APIs put it in the body instead.
            let next =
                continuation_token(&headers).or(page.continuation_token.filter(|t| !t.is_empty()));
            match next {
                Some(t) if new_items > 0 && seen_tokens.insert(t.clone()) => token = Some(t),
                // No token: continue by offset only after a full page of new items
                // (a server that ignores `$top` returns everything at once).
                None if n >= top as usize && new_items > 0 => token = None,
                _ => break,
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ repositories

    /// Repositories of one project (project id or name).
    pub async fn list_repositories(&self, project: &str) -> Result<Vec<GitRepository>, AzureError> {
        let url = self.url(&[project, "_apis", "git", "repositories"], Query::new())?;
        let (page, _): (ListResponse<GitRepository>, _) =
            self.get_json(url, ResourceScope::Project).await?;
        Ok(page.value)
    }

    /// Repositories of the whole organization.
    pub async fn list_all_repositories(&self) -> Result<Vec<GitRepository>, AzureError> {
        let url = self.url(&["_apis", "git", "repositories"], Query::new())?;
        let (page, _): (ListResponse<GitRepository>, _) =
            self.get_json(url, ResourceScope::Organization).await?;
        Ok(page.value)
    }

    /// One repository by id (or name, with its project).
    pub async fn get_repository(
        &self,
        project: &str,
        repository: &str,
    ) -> Result<GitRepository, AzureError> {
        let url = self.repo_url(project, repository, &[], Query::new())?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }
}
