//! Endpoints inside one Git repository: refs, items and the zip archive, commits,
//! commit diffs, pushes and blobs. These are what replication reads; each names its
//! endpoint and query, walks its pages (`x-ms-continuationtoken` for refs,
//! `$top`/`$skip` and `allChangesIncluded` for diffs) and leaves sending to the
//! transport.

use std::collections::HashSet;
use std::path::Path;

use super::urls::{continuation_token, Query};
use super::{AzureClient, CommitQuery, GitVersion, PushQuery, RecursionLevel, ZipDownload};
use crate::diagnosis::{AzureError, ResourceScope};
use crate::models::{
    GitBlobRef, GitCommit, GitCommitDiffs, GitCommitRef, GitItem, GitPush, GitRef, ListResponse,
};

impl AzureClient {
    /// Refs whose name starts with `filter` (e.g. `heads/` or `heads/main`), every page.
    pub async fn list_refs(
        &self,
        project: &str,
        repository: &str,
        filter: Option<&str>,
    ) -> Result<Vec<GitRef>, AzureError> {
        let top = self.shared.config.refs_page_size.max(1);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut seen_tokens: HashSet<String> = HashSet::new();
        for _ in 0..self.shared.config.max_pages {
            let q = Query::new()
                .push_opt("filter", filter)
                .push("$top", top)
                .push_opt("continuationToken", token.as_ref());
            let url = self.repo_url(project, repository, &["refs"], q)?;
            let (page, headers): (ListResponse<GitRef>, _) =
                self.get_json(url, ResourceScope::Repository).await?;
            let n = page.value.len();
            out.extend(page.value);
            match continuation_token(&headers).or(page.continuation_token.filter(|t| !t.is_empty()))
            {
                Some(t) if n > 0 && seen_tokens.insert(t.clone()) => token = Some(t),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Head commit of a branch (`main` or `refs/heads/main`); `None` if the branch does not exist.
    pub async fn branch_head(
        &self,
        project: &str,
        repository: &str,
        branch: &str,
    ) -> Result<Option<String>, AzureError> {
        let short = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        let full = format!("refs/heads/{short}");
        // `filter` is a prefix match: `heads/main` also returns `heads/main-old`.
        let refs = self
            .list_refs(project, repository, Some(&format!("heads/{short}")))
            .await?;
        Ok(refs
            .into_iter()
            .find(|r| r.name == full)
            .map(|r| r.object_id))
    }

    // ------------------------------------------------------------------ items

    /// Raw bytes of one file at `version`.
    pub async fn get_file(
        &self,
        project: &str,
        repository: &str,
        path: &str,
        version: &GitVersion,
    ) -> Result<Vec<u8>, AzureError> {
        let q = Query::new()
            .push("path", path)
            .version("versionDescriptor", version)
            .push("download", "true")
            // Otherwise a file kept in Git LFS arrives as its pointer.
            .push("resolveLfs", "true");
        let url = self.repo_url(project, repository, &["items"], q)?;
        self.get_bytes(url, ResourceScope::Repository).await
    }

    /// Items under `scope_path` at `version`.
    pub async fn list_items(
        &self,
        project: &str,
        repository: &str,
        scope_path: &str,
        recursion: RecursionLevel,
        version: &GitVersion,
    ) -> Result<Vec<GitItem>, AzureError> {
        let q = Query::new()
            .push("scopePath", scope_path)
            .push("recursionLevel", recursion.as_str())
            .version("versionDescriptor", version)
            .push("$format", "json");
        let url = self.repo_url(project, repository, &["items"], q)?;
        let (page, _): (ListResponse<GitItem>, _) =
            self.get_json(url, ResourceScope::Repository).await?;
        Ok(page.value)
    }

    /// Streams a zip of the whole tree at `commit` to `dest` (never held in memory).
    /// The file appears at `dest` only when complete (written to a temporary file in
    /// the same folder, then renamed).
    pub async fn download_zip(
        &self,
        project: &str,
        repository: &str,
        commit: &str,
        dest: &Path,
    ) -> Result<ZipDownload, AzureError> {
        self.download_zip_with_progress(project, repository, commit, dest, None)
            .await
    }

    /// [`Self::download_zip`], reporting the bytes received (and the total,
    /// when Azure DevOps declares it) on `progress` as they arrive.
    pub async fn download_zip_with_progress(
        &self,
        project: &str,
        repository: &str,
        commit: &str,
        dest: &Path,
        progress: Option<super::DownloadProgress>,
    ) -> Result<ZipDownload, AzureError> {
        let q = Query::new()
            .push("scopePath", "/")
            .push("recursionLevel", "full")
            .version("versionDescriptor", &GitVersion::Commit(commit.to_string()))
            .push("$format", "zip")
            .push("download", "true")
            .push("zipForUnix", "true");
        let url = self.repo_url(project, repository, &["items"], q)?;
        let (bytes, sha256) = self
            .get_zip(url, ResourceScope::Repository, dest, progress)
            .await?;
        Ok(ZipDownload {
            path: dest.to_path_buf(),
            bytes,
            sha256,
            commit: commit.to_string(),
        })
    }

    // ------------------------------------------------------------------ diffs, commits, pushes, blobs

    /// All changes between two commits (`diffs/commits`, every `$top`/`$skip` page).
    pub async fn diff_commits(
        &self,
        project: &str,
        repository: &str,
        base_commit: &str,
        target_commit: &str,
    ) -> Result<GitCommitDiffs, AzureError> {
        let top = self.shared.config.diff_page_size.max(1);
        let mut merged: Option<GitCommitDiffs> = None;
        let mut skip: usize = 0;
        for _ in 0..self.shared.config.max_pages {
            let q = Query::new()
                .push("baseVersion", base_commit)
                .push("baseVersionType", "commit")
                .push("targetVersion", target_commit)
                .push("targetVersionType", "commit")
                .push("$top", top)
                .push("$skip", skip);
            let url = self.repo_url(project, repository, &["diffs", "commits"], q)?;
            let (page, _): (GitCommitDiffs, _) =
                self.get_json(url, ResourceScope::Repository).await?;
            let n = page.changes.len();
            let done = page.all_changes_included.unwrap_or(false) || n < top as usize;
            skip += n;
            match merged.as_mut() {
                None => merged = Some(page),
                Some(m) => m.changes.extend(page.changes),
            }
            if done || n == 0 {
                break;
            }
        }
        let mut merged = merged.unwrap_or_default();
        merged.all_changes_included = Some(true);
        Ok(merged)
    }

    /// One page of commits.
    pub async fn list_commits(
        &self,
        project: &str,
        repository: &str,
        query: &CommitQuery,
    ) -> Result<Vec<GitCommitRef>, AzureError> {
        let mut q = Query::new();
        if let Some(v) = &query.item_version {
            q = q.version("searchCriteria.itemVersion", v);
        }
        if let Some(v) = &query.compare_version {
            q = q.version("searchCriteria.compareVersion", v);
        }
        let q = q
            .push_opt("searchCriteria.itemPath", query.item_path.as_ref())
            .push_opt("searchCriteria.$top", query.top)
            .push_opt("searchCriteria.$skip", query.skip);
        let url = self.repo_url(project, repository, &["commits"], q)?;
        let (page, _): (ListResponse<GitCommitRef>, _) =
            self.get_json(url, ResourceScope::Repository).await?;
        Ok(page.value)
    }

    /// One commit; with `change_count`, up to that many changes are included.
    pub async fn get_commit(
        &self,
        project: &str,
        repository: &str,
        commit_id: &str,
        change_count: Option<u32>,
    ) -> Result<GitCommit, AzureError> {
        let q = Query::new().push_opt("changeCount", change_count);
        let url = self.repo_url(project, repository, &["commits", commit_id], q)?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }

    /// One page of pushes.
    pub async fn list_pushes(
        &self,
        project: &str,
        repository: &str,
        query: &PushQuery,
    ) -> Result<Vec<GitPush>, AzureError> {
        let q = Query::new()
            .push_opt("searchCriteria.refName", query.ref_name.as_ref())
            .push_opt(
                "searchCriteria.includeRefUpdates",
                query.include_ref_updates.then_some("true"),
            )
            .push_opt("$top", query.top)
            .push_opt("$skip", query.skip);
        let url = self.repo_url(project, repository, &["pushes"], q)?;
        let (page, _): (ListResponse<GitPush>, _) =
            self.get_json(url, ResourceScope::Repository).await?;
        Ok(page.value)
    }

    /// One push with its ref updates and up to `include_commits` commits.
    pub async fn get_push(
        &self,
        project: &str,
        repository: &str,
        push_id: i64,
        include_commits: Option<u32>,
    ) -> Result<GitPush, AzureError> {
        let q = Query::new()
            .push_opt("includeCommits", include_commits)
            .push("includeRefUpdates", "true");
        let url = self.repo_url(project, repository, &["pushes", &push_id.to_string()], q)?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }

    /// Raw bytes of a blob; for a Git LFS pointer, the file it points to
    /// when Azure DevOps can resolve it.
    pub async fn get_blob(
        &self,
        project: &str,
        repository: &str,
        object_id: &str,
    ) -> Result<Vec<u8>, AzureError> {
        // `resolveLfs` works only with octet-stream, which this asks for.
        let q = Query::new()
            .push("$format", "octetstream")
            .push("resolveLfs", "true");
        let url = self.repo_url(project, repository, &["blobs", object_id], q)?;
        self.get_bytes(url, ResourceScope::Repository).await
    }

    /// Streams one zip of the blobs `ids` ("Get Blobs Zip", `POST .../blobs`)
    /// to `dest`, which appears only when complete. Nothing is checked but
    /// that it is a zip: [`super::read_blobs_zip`] verifies it against `ids`.
    pub async fn get_blobs_zip(
        &self,
        project: &str,
        repository: &str,
        ids: &[String],
        dest: &Path,
    ) -> Result<super::BlobsZipDownload, AzureError> {
        let url = self.repo_url(project, repository, &["blobs"], Query::new())?;
        let (bytes, _) = self
            .post_zip(url, ResourceScope::Repository, serde_json::json!(ids), dest)
            .await?;
        Ok(super::BlobsZipDownload {
            path: dest.to_path_buf(),
            bytes,
        })
    }

    /// Bounds for [`super::read_blobs_zip`] that accept exactly the blobs
    /// [`Self::get_blob`] would, keeping contents up to `keep_bytes`.
    pub fn blob_zip_limits(&self, keep_bytes: u64) -> super::BlobZipLimits {
        super::BlobZipLimits {
            max_blob_bytes: self.shared.config.max_item_bytes,
            keep_bytes,
        }
    }

    /// Blob metadata (size) without content.
    pub async fn get_blob_metadata(
        &self,
        project: &str,
        repository: &str,
        object_id: &str,
    ) -> Result<GitBlobRef, AzureError> {
        let q = Query::new().push("$format", "json");
        let url = self.repo_url(project, repository, &["blobs", object_id], q)?;
        Ok(self.get_json(url, ResourceScope::Repository).await?.0)
    }
}
