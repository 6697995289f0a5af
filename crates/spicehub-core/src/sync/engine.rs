//! The job handler: what a sync job does.
//!
//! - **Full** (first replication, entire repository, or any fallback):
//!   resolve the tracked branch head, download the zip pinned to that commit
//!   to a temporary file, unpack it with limits into a new snapshot, parse,
//!   switch.
//! - **Incremental** (recent changes, reconcile, from a commit): diff the base
//!   commit to the head, copy the visible snapshot's file list, apply the
//!   changes fetching only the changed blobs, parse, switch. A base that is
//!   not an ancestor of the head (history rewritten) or a diff that fails
//!   for good falls back to a full sync, and the reason is recorded.
//!   It enforces the limits a full sync's unpacking does (`ArchiveLimits`:
//!   files in the tree, bytes kept), with the same errors.
//! - **Re-parse**: parse the visible snapshot again, no network.
//!
//! "Switch" is `Db::switch_snapshot_leased`: one transaction stores the
//! graph and points the repository at the new snapshot, so readers never
//! see a mix; it is refused when the repository was removed meanwhile or
//! the job's lease was lost.
//! A job that dies before it leaves only an invisible snapshot behind, which
//! the next attempt drops.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::files::{
    is_lfs_pointer, note_too_large, noted, stage_content, unpack_zip, wanted, ArchiveError,
    ArchiveLimits, SnapshotTree, Staged, Wanted, NOTE_SUBMODULES, NOTE_SYMLINK, NOTE_VENDORED,
};
use super::prepare::Preparer;
use super::queue::{Job, JobKind};
use super::runner::{JobFailure, JobHandler, Progress};
use crate::connections::{ConnectionError, ProviderConnections};
use crate::db::facts::FactsRow;
use crate::db::history::CommitInfo;
use crate::db::repositories::{full_branch_ref, short_branch, RepoState, Repository};
use crate::db::snapshots::{SnapshotError, SwitchInfo};
use crate::db::{Db, DbError};
use rayon::prelude::*;
use spicehub_azure::client::{read_blobs_zip, AzureClient, ZipBlob};
use spicehub_azure::models::{ChangeFlags, GitObjectType, GitUserDate, PushEvent};
use spicehub_azure::{AzureError, Diagnosis};
use spicehub_parser::{facts_version, parse_tree_keeping, Graph, ParseOptions, PreparedFile};

/// What a parse of a snapshot gave.
struct ParseRun {
    graph: Graph,
    /// The facts this parse made (not kept from an earlier one), to keep.
    made: Vec<FactsRow>,
    /// Python files whose facts were made rather than kept, of `files`.
    extracted: usize,
    files: usize,
}

impl ParseRun {
    /// For the sync's note: how much of the repository was read again.
    fn summary(&self) -> String {
        let noun = if self.files == 1 { "file" } else { "files" };
        format!("{} of {} Python {noun} parsed", self.extracted, self.files)
    }
}

/// Bytes of file contents written to the database per batch.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Files per batch.
const BATCH_FILES: usize = 200;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub limits: ArchiveLimits,
    /// Jobs at once per organization on this instance.
    pub per_org: usize,
    /// Blob downloads (single blobs or batches) at once within one
    /// incremental sync.
    pub fetch_concurrency: usize,
    /// Blob ids per "Get Blobs Zip" request of an incremental sync; 0 or 1
    /// fetches each blob alone (`SPICEHUB_BLOB_BATCH`).
    pub blob_batch: usize,
    /// Sync a push in full when its archive is estimated cheaper than its
    /// changed files (`SPICEHUB_SYNC_FULL_WHEN_CHEAPER`).
    pub full_when_cheaper: bool,
    /// Where archives are downloaded to (removed after each job).
    pub work_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Client(#[from] ConnectionError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("database error: {0}")]
    Db(#[from] DbError),
    #[error("the repository was removed from the hub")]
    RepositoryRemoved,
    /// Another runner took the job over: nothing of this attempt counts.
    #[error("the job's lease was lost (another runner took the job over)")]
    LeaseLost,
    #[error(
        "the repository is disabled in Azure DevOps; enable it there, then synchronize it again"
    )]
    Disabled,
    /// The Repositories tab recognises its text ([`is_branch_missing`]) and
    /// links to the action.
    #[error(
        "the branch {} does not exist in Azure DevOps any more; pick another one with \"Change tracked branch…\" in the repository's Actions menu",
        short_branch(.0)
    )]
    BranchMissing(String),
    #[error("commit {0} does not exist in this repository")]
    UnknownCommit(String),
    #[error(
        "commit {commit} is not an ancestor of the head of {branch}; give a commit of that branch"
    )]
    NotAnAncestor { commit: String, branch: String },
    #[error("a synchronization from a commit needs the commit hash")]
    MissingCommit,
    #[error("there is nothing stored to re-parse yet: synchronize the repository first")]
    NothingStored,
    #[error("cannot write the downloaded archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Whether a repository's stored failure is [`SyncError::BranchMissing`].
pub fn is_branch_missing(message: &str) -> bool {
    message.starts_with("the branch ")
        && message.contains(" does not exist in Azure DevOps any more")
}

impl From<SnapshotError> for SyncError {
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::LeaseLost => SyncError::LeaseLost,
            SnapshotError::RepositoryRemoved => SyncError::RepositoryRemoved,
            SnapshotError::SnapshotGone => SyncError::Internal(e.to_string()),
            SnapshotError::Db(e) => SyncError::Db(e),
        }
    }
}

impl SyncError {
    /// Whether trying again later may help.
    pub fn retryable(&self) -> bool {
        match self {
            SyncError::Azure(e) => e.is_transient(),
            SyncError::Client(ConnectionError::Azure(e)) => e.is_transient(),
            SyncError::Client(ConnectionError::Db(_)) => true,
            SyncError::Client(_) => false,
            SyncError::Archive(e) => e.retryable(),
            SyncError::Db(_) | SyncError::Io(_) | SyncError::Internal(_) => true,
            // Whoever owns the job now retries it; this runner records nothing.
            SyncError::LeaseLost => true,
            _ => false,
        }
    }
}

/// The sync engine. One per hub instance; jobs run on it concurrently.
pub struct SyncEngine {
    db: Db,
    clients: ProviderConnections,
    settings: EngineSettings,
    org_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Removes the downloaded archive whatever way the job ends. Only a killed
/// process leaves one behind: [`work_file_job`] recognises it at start.
struct TempFile(PathBuf);

/// The archive of job `job_id` in the work directory.
fn archive_name(job_id: &str) -> String {
    format!("{job_id}.zip")
}

/// The `n`-th archive of blobs of job `job_id` in the work directory.
fn blobs_name(job_id: &str, n: usize) -> String {
    format!("{job_id}.blobs-{n}.zip")
}

/// How one batch of blobs went wrong.
enum BatchFailure {
    /// The answer was a refusal or did not verify: fewer blobs may do.
    Refused(String),
    /// Anything else: asking for fewer would fail the same way.
    Failed(SyncError),
}

/// Whether Azure DevOps refused a batch for what it asked (a 4xx that is
/// not about the identity), or answered something that is not an archive,
/// or too large a one: a smaller batch may be served. Throttling, 5xx and
/// network failures were already retried by the client.
fn refused(e: &AzureError) -> bool {
    match e.diagnosis() {
        Some(Diagnosis::TooLarge { .. } | Diagnosis::UnexpectedResponse { .. }) => true,
        Some(d) if d.is_transient() => false,
        Some(
            Diagnosis::NotAuthorized
            | Diagnosis::SignInPage { .. }
            | Diagnosis::Forbidden { .. }
            | Diagnosis::ServicePrincipalNotInOrganization,
        ) => false,
        Some(_) => e.context().and_then(|c| c.status).is_some_and(|status| {
            (400..500).contains(&status) && !matches!(status, 401 | 403 | 407)
        }),
        None => false,
    }
}

/// The paths to fetch grouped by blob id (identical files are fetched once),
/// in the order they first appear.
fn by_blob(to_fetch: Vec<(String, String)>) -> Vec<(String, Vec<String>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (path, id) in to_fetch {
        match index.get(&id) {
            Some(&i) => groups[i].1.push(path),
            None => {
                index.insert(id.clone(), groups.len());
                groups.push((id, vec![path]));
            }
        }
    }
    groups
}

/// The job whose download `name` is, if it is one of the engine's work
/// files: its archive (`<job id>.zip`), an archive of blobs
/// (`<job id>.blobs-<n>.zip`) or the client's temporary file for either
/// (`.<name>.<32 hex digits>.part`). Job ids are UUIDs.
/// What fetching a push's changed blobs would cost, estimated before
/// anything is fetched: Azure DevOps' diff gives no sizes, so an edited
/// file is taken at its stored size and an added one at the stored files'
/// mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cost {
    files: usize,
    requests: u64,
    bytes: u64,
}

/// What one request costs beyond its body, in bytes: headers, a TLS
/// round trip, and a share of the identity's throughput units. The same
/// allowance as the bytes target of a push (2 × the changed bytes + 64 KiB).
const REQUEST_BYTES: u64 = 64 * 1024;

impl Cost {
    /// `changed`: (path, blob id) of the files to fetch; a blob two paths
    /// share is fetched once.
    fn of_blobs(
        changed: &[(&str, &str)],
        stored: &[crate::db::snapshots::FileRow],
        batch: usize,
    ) -> Cost {
        let kept: Vec<&crate::db::snapshots::FileRow> =
            stored.iter().filter(|r| r.note.is_none()).collect();
        let mean = if kept.is_empty() {
            0
        } else {
            kept.iter().map(|r| r.size.max(0) as u64).sum::<u64>() / kept.len() as u64
        };
        let by_path: HashMap<&str, u64> = kept
            .iter()
            .map(|r| (r.path.as_str(), r.size.max(0) as u64))
            .collect();
        let mut blobs = std::collections::HashSet::new();
        let bytes = changed
            .iter()
            .filter(|(_, id)| blobs.insert(*id))
            .map(|(path, _)| by_path.get(path).copied().unwrap_or(mean))
            .sum();
        let batch = batch.max(1) as u64;
        Cost {
            files: changed.len(),
            requests: (blobs.len() as u64).div_ceil(batch),
            bytes,
        }
    }

    /// Why the commit's archive (one request of about the repository's
    /// size, as Azure DevOps reports it) is cheaper, if it is.
    fn full_is_cheaper(&self, archive_bytes: u64) -> Option<String> {
        let incremental = self.bytes + self.requests * REQUEST_BYTES;
        let full = archive_bytes + REQUEST_BYTES;
        (self.requests > 1 && full < incremental).then(|| {
            format!(
                "the archive (about {} KiB in one request) is cheaper than the {} changed files' {} requests (about {} KiB)",
                archive_bytes.div_ceil(1024),
                self.files,
                self.requests,
                self.bytes.div_ceil(1024)
            )
        })
    }
}

pub fn work_file_job(name: &str) -> Option<&str> {
    let job = match name.strip_prefix('.') {
        Some(rest) => {
            let (job, tail) = rest.split_once(".zip.")?;
            let hex = tail.strip_suffix(".part")?;
            if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            job
        }
        None => name.strip_suffix(".zip")?,
    };
    // An archive of blobs: `<job id>.blobs-<n>`.
    let job = match job.split_once(".blobs-") {
        Some((job, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => job,
        Some(_) => return None,
        None => job,
    };
    uuid::Uuid::try_parse(job).ok().map(|_| job)
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn short(commit: &str) -> &str {
    commit.get(..8).unwrap_or(commit)
}

impl SyncEngine {
    pub fn new(db: Db, clients: ProviderConnections, settings: EngineSettings) -> Self {
        Self {
            db,
            clients,
            settings,
            org_slots: Mutex::new(HashMap::new()),
        }
    }

    fn org_slot(&self, org: &str) -> Arc<Semaphore> {
        self.org_slots
            .lock()
            .entry(org.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_org.max(1))))
            .clone()
    }

    async fn execute(
        &self,
        job: &Job,
        repo: &Repository,
        progress: &Progress,
    ) -> Result<(), SyncError> {
        if job.kind == JobKind::Reparse {
            return self.reparse(repo, progress).await;
        }
        let org = self
            .db
            .organization(&repo.organization_id)
            .await?
            .ok_or(SyncError::RepositoryRemoved)?;
        let client = self.clients.for_org(&org.provider_id, &org.name).await?;

        progress.report("checking", 0, None).await.ok();
        let remote = client.get_repository(&repo.project_id, &repo.id).await?;
        let project_name = remote
            .project
            .as_ref()
            .map(|p| p.name.as_str())
            .unwrap_or(&repo.project_name);
        self.db
            .refresh_repository_names(
                &repo.id,
                &remote.name,
                project_name,
                remote.web_url.as_deref(),
            )
            .await?;
        if remote.disabled() {
            return Err(SyncError::Disabled);
        }
        // A repository that follows the default branch moves with it when
        // it changes in Azure DevOps (a rename of `main`, say).
        let mut retarget = None;
        let fresh;
        let repo = match remote.default_branch.as_deref().map(full_branch_ref) {
            Some(default) if repo.follow_default_branch && default != repo.tracked_branch => {
                let moved = self
                    .db
                    .retarget_default_branch(&repo.id, &repo.tracked_branch, &default)
                    .await?;
                if moved {
                    retarget = Some(format!(
                        "the default branch changed from {} to {}",
                        short_branch(&repo.tracked_branch),
                        short_branch(&default)
                    ));
                }
                // Re-read: an admin may have picked a branch meanwhile.
                fresh = self
                    .db
                    .repository(&repo.id)
                    .await?
                    .ok_or(SyncError::RepositoryRemoved)?;
                &fresh
            }
            _ => repo,
        };
        let head = client
            .branch_head(&repo.project_id, &repo.id, &repo.tracked_branch)
            .await?;
        let Some(head) = head else {
            if remote.is_empty() {
                self.db
                    .mark_checked(
                        &repo.id,
                        Some("The repository is empty: nothing to replicate yet."),
                    )
                    .await?;
                return Ok(());
            }
            return Err(SyncError::BranchMissing(repo.tracked_branch.clone()));
        };
        // The new branch's head may share nothing with what is stored.
        if let Some(why) = retarget {
            return self
                .full(
                    job,
                    repo,
                    &client,
                    &head,
                    format!("full sync: {why}"),
                    progress,
                )
                .await;
        }

        match job.kind {
            JobKind::FirstReplication | JobKind::EntireRepository => {
                let note = match job.kind {
                    JobKind::FirstReplication => "first replication",
                    _ => "entire repository synchronized on request",
                };
                self.full(job, repo, &client, &head, note.to_owned(), progress)
                    .await
            }
            JobKind::RecentChanges | JobKind::Reconcile => match repo.last_synced_commit.clone() {
                None => {
                    self.full(
                        job,
                        repo,
                        &client,
                        &head,
                        "full sync: nothing was synced before".to_owned(),
                        progress,
                    )
                    .await
                }
                Some(base) if base == head => {
                    self.db.mark_checked(&repo.id, None).await?;
                    Ok(())
                }
                Some(base) => {
                    self.incremental(
                        job,
                        repo,
                        &client,
                        (&base, &head),
                        false,
                        remote.size,
                        progress,
                    )
                    .await
                }
            },
            JobKind::FromCommit => {
                let base = job
                    .target_commit
                    .clone()
                    .ok_or(SyncError::MissingCommit)?
                    .to_ascii_lowercase();
                match client
                    .get_commit(&repo.project_id, &repo.id, &base, None)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_transient() => return Err(e.into()),
                    Err(_) => return Err(SyncError::UnknownCommit(base)),
                }
                self.incremental(
                    job,
                    repo,
                    &client,
                    (&base, &head),
                    true,
                    remote.size,
                    progress,
                )
                .await
            }
            JobKind::Reparse => Err(SyncError::Internal(
                "re-parse reached the network path".into(),
            )),
        }
    }

    /// Downloads the archive of `head` and makes it the visible snapshot.
    async fn full(
        &self,
        job: &Job,
        repo: &Repository,
        client: &AzureClient,
        head: &str,
        note: String,
        progress: &Progress,
    ) -> Result<(), SyncError> {
        progress.report("downloading", 0, None).await.ok();
        tokio::fs::create_dir_all(&self.settings.work_dir).await?;
        let archive = TempFile(self.settings.work_dir.join(archive_name(&job.id)));
        // Bytes so far (of the total, when Azure DevOps declares it), told
        // to the Repositories tab at most twice a second.
        let (bytes_tx, mut bytes_rx) = tokio::sync::watch::channel((0u64, None::<u64>));
        let download = client.download_zip_with_progress(
            &repo.project_id,
            &repo.id,
            head,
            &archive.0,
            Some(bytes_tx),
        );
        let reporter = async {
            while bytes_rx.changed().await.is_ok() {
                let (bytes, total) = *bytes_rx.borrow_and_update();
                let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                progress
                    .report("downloading", as_i64(bytes), total.map(as_i64))
                    .await
                    .ok();
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        };
        let (download, ()) = tokio::join!(download, reporter);
        let download = download?;
        tracing::info!(
            repository = %repo.id,
            commit = %head,
            bytes = download.bytes,
            "sync: archive downloaded"
        );

        let snapshot = self
            .db
            .begin_snapshot(&repo.id, head, Some(&progress.lease()))
            .await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Staged>>(2);
        let limits = self.settings.limits;
        let path = archive.0.clone();
        let entries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let unpack = tokio::task::spawn_blocking({
            let entries = entries.clone();
            move || {
                unpack_zip(&path, limits, BATCH_BYTES, &entries, |batch| {
                    tx.blocking_send(batch).map_err(|_| ArchiveError::Stopped)
                })
            }
        });
        let preparer = Preparer::start(self.parse_options(None));
        let mut stored = 0i64;
        let mut failed = None;
        while let Some(batch) = rx.recv().await {
            stored += batch.len() as i64;
            match self.store(&repo.id, &snapshot, batch).await {
                // Only stored files are parsed ahead: the parse must see
                // exactly the snapshot.
                Ok(contents) => preparer.send(contents).await,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            // Files kept of the archive's entries (some are left out on
            // purpose, so the count may end below the total).
            let total = entries.load(std::sync::atomic::Ordering::Relaxed);
            progress
                .report(
                    "storing files",
                    stored,
                    (total > 0).then(|| i64::try_from(total).unwrap_or(i64::MAX)),
                )
                .await
                .ok();
        }
        drop(rx);
        let unpacked = unpack
            .await
            .map_err(|e| SyncError::Internal(format!("unpacking stopped: {e}")));
        if let Some(e) = failed {
            return Err(e);
        }
        let stats = unpacked??;
        self.db
            .set_snapshot_tree_files(&snapshot, i64::try_from(stats.entries).unwrap_or(i64::MAX))
            .await?;
        let mut note = format!("{note}: {} files kept from the archive", stats.kept);
        if stats.unsafe_paths > 0 {
            note.push_str(&format!(
                "; {} entries with paths outside the repository were refused",
                stats.unsafe_paths
            ));
        }
        let prepared = preparer.finish().await;
        self.parse_and_switch(repo, client, &snapshot, head, note, progress, prepared)
            .await
    }

    /// Applies `base..head` on top of the visible snapshot.
    #[allow(clippy::too_many_arguments)]
    async fn incremental(
        &self,
        job: &Job,
        repo: &Repository,
        client: &AzureClient,
        (base, head): (&str, &str),
        from_commit: bool,
        archive_size: Option<u64>,
        progress: &Progress,
    ) -> Result<(), SyncError> {
        let Some((visible, visible_commit)) = self.db.visible_snapshot(&repo.id).await? else {
            return self
                .full(
                    job,
                    repo,
                    client,
                    head,
                    "full sync: no stored files to update".to_owned(),
                    progress,
                )
                .await;
        };
        progress.report("comparing commits", 0, None).await.ok();
        let diff = match client
            .diff_commits(&repo.project_id, &repo.id, base, head)
            .await
        {
            Ok(diff) => diff,
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => {
                let note = format!(
                    "full sync: the changes since {} could not be listed ({e})",
                    short(base)
                );
                return self.full(job, repo, client, head, note, progress).await;
            }
        };
        if diff.common_commit.as_deref().map(str::to_ascii_lowercase) != Some(base.to_owned()) {
            if from_commit {
                return Err(SyncError::NotAnAncestor {
                    commit: base.to_owned(),
                    branch: repo.tracked_branch.clone(),
                });
            }
            let note = format!(
                "full sync: history was rewritten ({} is no longer an ancestor of {})",
                short(base),
                repo.tracked_branch
            );
            return self.full(job, repo, client, head, note, progress).await;
        }

        // The entry limit counts every file of the tree, as the archive of
        // a full sync does: the visible snapshot's count, moved by the diff
        // when the snapshot is at its base (a re-application from an older
        // commit leaves a snapshot at the head as it was). Otherwise, or
        // for a snapshot stored before files were counted, the count is
        // not known: a full sync gives it.
        let counted = self.db.snapshot_tree_files(&visible).await?;
        let Some(visible_files) =
            counted.filter(|_| visible_commit == base || visible_commit == head)
        else {
            let note = match counted {
                None => "full sync: the stored files predate the file count the limits need",
                Some(_) => {
                    "full sync: the file count at the head is not known from the stored files"
                }
            };
            return self
                .full(job, repo, client, head, note.to_owned(), progress)
                .await;
        };
        let limits = self.settings.limits;
        // Files added (+1) and deleted (-1) by the diff.
        let mut delta = 0i64;

        let mut deletes: Vec<String> = Vec::new();
        let mut notes: Vec<Staged> = Vec::new();
        let mut wanted_blobs: Vec<(String, String)> = Vec::new();
        let (mut adds, mut edits, mut removals, mut renames) = (0, 0, 0, 0);
        for change in &diff.changes {
            let Some(item) = change.item.as_ref() else {
                continue;
            };
            if item.folder()
                || matches!(
                    item.git_object_type,
                    Some(GitObjectType::Tree | GitObjectType::Commit)
                )
            {
                continue;
            }
            let Some(path) = change.path().map(|p| p.trim_start_matches('/').to_owned()) else {
                continue;
            };
            let ct = &change.change_type;
            if ct.is_rename() {
                renames += 1;
                if let Some(old) = change.old_path() {
                    deletes.push(old.trim_start_matches('/').to_owned());
                }
            }
            if ct.is_delete() {
                removals += 1;
                delta -= 1;
                deletes.push(path);
                continue;
            }
            if ct.contains(ChangeFlags::ADD) {
                adds += 1;
                if !ct.is_rename() {
                    delta += 1;
                }
            } else if ct.contains(ChangeFlags::EDIT) {
                edits += 1;
            }
            match wanted(&path) {
                Wanted::Ignore => {}
                Wanted::Vendored(root) => notes.push(noted(root, 0, NOTE_VENDORED.to_owned())),
                Wanted::Submodules => notes.push(noted(&path, 0, NOTE_SUBMODULES.to_owned())),
                Wanted::Keep if item.is_sym_link == Some(true) => {
                    notes.push(noted(&path, 0, NOTE_SYMLINK.to_owned()))
                }
                Wanted::Keep => match &item.object_id {
                    Some(id) => wanted_blobs.push((path, id.to_ascii_lowercase())),
                    None => notes.push(noted(
                        &path,
                        0,
                        "Azure DevOps listed the change without a blob id".to_owned(),
                    )),
                },
            }
        }
        // Before anything is stored or fetched.
        let tree_files = if visible_commit == base {
            visible_files.saturating_add(delta).max(0)
        } else {
            visible_files
        };
        if usize::try_from(tree_files).unwrap_or(usize::MAX) > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: limits.max_entries,
            }
            .into());
        }

        let ids: Vec<String> = wanted_blobs.iter().map(|(_, id)| id.clone()).collect();
        let known = self.db.known_blobs(&repo.id, &ids).await?;
        if let Some(size) = archive_size.filter(|_| self.settings.full_when_cheaper) {
            let unknown: Vec<(&str, &str)> = wanted_blobs
                .iter()
                .filter(|(_, id)| !known.contains_key(id))
                .map(|(path, id)| (path.as_str(), id.as_str()))
                .collect();
            let sizes = self.db.snapshot_rows(&visible).await?;
            let estimate = Cost::of_blobs(&unknown, &sizes, self.settings.blob_batch);
            if let Some(why) = estimate.full_is_cheaper(size) {
                return self
                    .full(
                        job,
                        repo,
                        client,
                        head,
                        format!("full sync: {why}"),
                        progress,
                    )
                    .await;
            }
        }

        let snapshot = self
            .db
            .begin_snapshot(&repo.id, head, Some(&progress.lease()))
            .await?;
        self.db.copy_files(&visible, &snapshot).await?;
        self.db
            .set_snapshot_tree_files(&snapshot, tree_files)
            .await?;
        let mut rows = Vec::new();
        let mut to_fetch = Vec::new();
        for (path, id) in wanted_blobs {
            match known.get(&id) {
                Some(&size) => rows.push(Staged {
                    row: crate::db::snapshots::FileRow {
                        path,
                        object_id: Some(id),
                        size,
                        note: None,
                    },
                    content: None,
                }),
                None => to_fetch.push((path, id)),
            }
        }
        // Paths that come back in the same diff (a rename onto a deleted
        // path) are upserted below, after the deletes. The paths to fetch
        // go too, so that their old contents do not count below.
        deletes.extend(to_fetch.iter().map(|(path, _)| path.clone()));
        self.db.delete_files(&snapshot, &deletes).await?;
        self.store(&repo.id, &snapshot, notes).await?;
        self.store(&repo.id, &snapshot, rows).await?;

        // The size limit counts the kept contents, as unpacking does: what
        // the snapshot keeps now, plus each file as it arrives.
        let mut kept_bytes =
            u64::try_from(self.db.snapshot_kept_bytes(&snapshot).await?).unwrap_or(0);
        let too_large = |kept: u64| -> Result<(), SyncError> {
            if kept > limits.max_total_bytes {
                return Err(ArchiveError::TooLarge {
                    limit: limits.max_total_bytes,
                }
                .into());
            }
            Ok(())
        };
        too_large(kept_bytes)?;

        let total = to_fetch.len() as i64;
        progress
            .report("fetching changed files", 0, Some(total))
            .await
            .ok();
        let max = limits.max_file_bytes;
        let concurrency = self.settings.fetch_concurrency.max(1);
        // Numbers the archives of blobs, so that batches fetched at once
        // never share a file.
        let seq = AtomicUsize::new(0);
        let mut fetched = if self.settings.blob_batch <= 1 {
            stream::iter(to_fetch.into_iter().map(|(path, id)| {
                let client = client.clone();
                let project = repo.project_id.clone();
                let repo_id = repo.id.clone();
                async move {
                    let content = client.get_blob(&project, &repo_id, &id).await?;
                    Ok::<_, SyncError>(vec![stage_content(&path, content, max)])
                }
            }))
            .buffer_unordered(concurrency)
            .boxed()
        } else {
            let groups = by_blob(to_fetch);
            let batches: Vec<Vec<(String, Vec<String>)>> = groups
                .chunks(self.settings.blob_batch)
                .map(<[_]>::to_vec)
                .collect();
            let seq = &seq;
            stream::iter(
                batches
                    .into_iter()
                    .map(move |batch| self.fetch_batch(job, repo, client, batch, seq)),
            )
            .buffer_unordered(concurrency)
            .boxed()
        };
        let mut batch = Vec::new();
        let mut batch_bytes = 0usize;
        let mut done = 0i64;
        while let Some(staged) = fetched.next().await {
            for staged in staged? {
                let size = staged.content.as_ref().map_or(0, Vec::len);
                kept_bytes += size as u64;
                too_large(kept_bytes)?;
                batch_bytes += size;
                batch.push(staged);
                done += 1;
                if batch_bytes >= BATCH_BYTES || batch.len() >= BATCH_FILES {
                    self.store(&repo.id, &snapshot, std::mem::take(&mut batch))
                        .await?;
                    batch_bytes = 0;
                    progress
                        .report("fetching changed files", done, Some(total))
                        .await
                        .ok();
                }
            }
        }
        drop(fetched);
        self.store(&repo.id, &snapshot, batch).await?;

        let what = if from_commit {
            "re-applied"
        } else {
            "incremental"
        };
        let note = format!(
            "{what}: {} changes from {} ({adds} added, {edits} edited, {removals} deleted, \
             {renames} renamed; {total} files fetched)",
            diff.changes.len(),
            short(base),
        );
        self.parse_and_switch(
            repo,
            client,
            &snapshot,
            head,
            note,
            progress,
            HashMap::new(),
        )
        .await
    }

    /// Fetches one batch of changed blobs (`(blob id, paths)`) with "Get
    /// Blobs Zip" and stages every path. A batch that Azure DevOps refuses,
    /// or whose archive does not verify, is split in halves and asked for
    /// again; a single blob is fetched alone, as without batching, so what
    /// fails then fails as it always did.
    async fn fetch_batch(
        &self,
        job: &Job,
        repo: &Repository,
        client: &AzureClient,
        batch: Vec<(String, Vec<String>)>,
        seq: &AtomicUsize,
    ) -> Result<Vec<Staged>, SyncError> {
        let max = self.settings.limits.max_file_bytes;
        let mut staged = Vec::new();
        let mut pending = vec![batch];
        while let Some(mut group) = pending.pop() {
            if group.len() <= 1 {
                for (id, paths) in group {
                    let content = client.get_blob(&repo.project_id, &repo.id, &id).await?;
                    for path in paths {
                        staged.push(stage_content(&path, content.clone(), max));
                    }
                }
                continue;
            }
            let ids: Vec<String> = group.iter().map(|(id, _)| id.clone()).collect();
            let n = seq.fetch_add(1, Ordering::Relaxed);
            match self.blobs_zip(job, repo, client, &ids, n).await {
                Ok(blobs) => {
                    // `read_blobs_zip` gives the blobs in the order asked.
                    for ((id, paths), blob) in group.into_iter().zip(blobs) {
                        // The zip holds a Git LFS file's pointer; the blob
                        // fetched alone comes resolved (`resolveLfs`).
                        if blob.content.as_deref().is_some_and(is_lfs_pointer) {
                            pending.push(vec![(id, paths)]);
                            continue;
                        }
                        for path in paths {
                            staged.push(match &blob.content {
                                Some(content) => stage_content(&path, content.clone(), max),
                                None => noted(
                                    &path,
                                    i64::try_from(blob.size).unwrap_or(i64::MAX),
                                    note_too_large(max),
                                ),
                            });
                        }
                    }
                }
                Err(BatchFailure::Refused(why)) => {
                    tracing::info!(
                        repository = %repo.id,
                        blobs = group.len(),
                        reason = %why,
                        "sync: a batch of blobs was not served whole; asking for halves"
                    );
                    let second = group.split_off(group.len() / 2);
                    pending.push(second);
                    pending.push(group);
                }
                Err(BatchFailure::Failed(e)) => return Err(e),
            }
        }
        Ok(staged)
    }

    /// Downloads and verifies one archive of blobs, in the work directory.
    async fn blobs_zip(
        &self,
        job: &Job,
        repo: &Repository,
        client: &AzureClient,
        ids: &[String],
        n: usize,
    ) -> Result<Vec<ZipBlob>, BatchFailure> {
        tokio::fs::create_dir_all(&self.settings.work_dir)
            .await
            .map_err(|e| BatchFailure::Failed(e.into()))?;
        let file = TempFile(self.settings.work_dir.join(blobs_name(&job.id, n)));
        match client
            .get_blobs_zip(&repo.project_id, &repo.id, ids, &file.0)
            .await
        {
            Ok(_) => {}
            Err(e) if refused(&e) => return Err(BatchFailure::Refused(e.to_string())),
            Err(e) => return Err(BatchFailure::Failed(e.into())),
        }
        let path = file.0.clone();
        let wanted = ids.to_vec();
        let limits = client.blob_zip_limits(self.settings.limits.max_file_bytes);
        let read = tokio::task::spawn_blocking(move || read_blobs_zip(&path, &wanted, limits))
            .await
            .map_err(|e| {
                BatchFailure::Failed(SyncError::Internal(format!("verifying blobs stopped: {e}")))
            })?;
        drop(file);
        match read {
            Ok(blobs) => Ok(blobs),
            Err(e) if e.is_bad_answer() => Err(BatchFailure::Refused(e.to_string())),
            Err(e) => Err(BatchFailure::Failed(AzureError::from(e).into())),
        }
    }

    /// Stores a batch of files in a snapshot and gives back `(path,
    /// content)` of those that had content.
    async fn store(
        &self,
        repository_id: &str,
        snapshot: &str,
        batch: Vec<Staged>,
    ) -> Result<Vec<(String, Vec<u8>)>, SyncError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut blobs = Vec::new();
        let mut paths = Vec::new();
        let mut rows = Vec::with_capacity(batch.len());
        for s in batch {
            if let (Some(content), Some(id)) = (s.content, s.row.object_id.clone()) {
                blobs.push((id, content));
                paths.push(s.row.path.clone());
            }
            rows.push(s.row);
        }
        self.db.put_blobs(repository_id, &blobs).await?;
        self.db.put_files(snapshot, repository_id, &rows).await?;
        Ok(paths
            .into_iter()
            .zip(blobs)
            .map(|(path, (_, content))| (path, content))
            .collect())
    }

    fn parse_options(&self, progress: Option<Arc<spicehub_parser::ProgressFn>>) -> ParseOptions {
        ParseOptions {
            max_file_size: self.settings.limits.max_file_bytes,
            progress,
        }
    }

    /// Parses a snapshot. The facts kept from earlier parses stand for the
    /// files whose path and blob they were made from; the other files'
    /// contents are read from the database on demand, on the parser's
    /// threads. Gives the graph and the facts made by this parse, to keep
    /// ([`SyncEngine::keep_facts`]).
    async fn parse(
        &self,
        snapshot: &str,
        progress: &Progress,
        mut prepared: HashMap<String, PreparedFile>,
    ) -> Result<ParseRun, SyncError> {
        let rows = self.db.snapshot_rows(snapshot).await?;
        let total = rows.iter().filter(|r| r.note.is_none()).count() as i64;
        progress.report("parsing", 0, Some(total)).await.ok();
        let done = Arc::new(AtomicUsize::new(0));
        let db = self.db.clone();
        let handle = tokio::runtime::Handle::current();
        let snapshot_id = snapshot.to_owned();
        let options = self.parse_options(Some({
            let done = done.clone();
            Arc::new(move |n, _| {
                done.store(n, Ordering::Relaxed);
            })
        }));
        let version = facts_version(&options);
        let kept = self.db.snapshot_facts(snapshot, &version).await?;
        let blob_of: HashMap<String, String> = rows
            .iter()
            .filter_map(|r| Some((r.path.clone(), r.object_id.clone()?)))
            .collect();
        let mut task = tokio::task::spawn_blocking(move || {
            let decoded: Vec<(String, PreparedFile)> = kept
                .into_par_iter()
                .filter_map(|(path, bytes)| match PreparedFile::from_bytes(&bytes) {
                    Ok(facts) => Some((path, facts)),
                    Err(e) => {
                        // Extracted again below, and replaced once kept.
                        tracing::warn!(%path, error = %e, "sync: kept parser facts unreadable");
                        None
                    }
                })
                .collect();
            // Facts prepared while the archive was unpacked are new, and
            // kept below like those the parse makes.
            let mut reused = HashSet::new();
            for (path, facts) in decoded {
                if let std::collections::hash_map::Entry::Vacant(slot) = prepared.entry(path) {
                    reused.insert(slot.key().clone());
                    slot.insert(facts);
                }
            }
            let read = |path: &str| -> std::io::Result<Vec<u8>> {
                handle
                    .block_on(db.snapshot_file_content(&snapshot_id, path))
                    .map_err(|e| std::io::Error::other(e.to_string()))?
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no content"))
            };
            let parsed = parse_tree_keeping(&SnapshotTree::new(rows, read), &options, prepared);
            let files = parsed.facts.len();
            let made: Vec<FactsRow> = parsed
                .facts
                .into_par_iter()
                .filter(|(facts, made)| *made || !reused.contains(facts.path()))
                .filter_map(|(facts, _)| {
                    let blob = blob_of.get(facts.path())?.clone();
                    Some((facts.path().to_owned(), blob, facts.to_bytes()))
                })
                .collect();
            ParseRun {
                graph: parsed.graph,
                extracted: made.len(),
                files,
                made,
            }
        });
        loop {
            tokio::select! {
                parsed = &mut task => {
                    return parsed.map_err(|e| SyncError::Internal(format!("the parser stopped: {e}")));
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    let n = done.load(Ordering::Relaxed) as i64;
                    progress.report("parsing", n, Some(total)).await.ok();
                }
            }
        }
    }

    /// Keeps the facts a parse made, for the next sync, before its graph
    /// is visible (so a visible commit has its facts, and the job is done
    /// when its graph shows). A failure here costs the next sync an
    /// extraction, not this one its result; facts of a snapshot that never
    /// becomes visible go with it.
    async fn keep_facts(&self, repository_id: &str, facts: Vec<FactsRow>) {
        if facts.is_empty() {
            return;
        }
        let version = facts_version(&self.parse_options(None));
        if let Err(e) = self.db.put_facts(repository_id, &version, &facts).await {
            tracing::warn!(repository = %repository_id, error = %e, "sync: parser facts not kept");
        }
    }

    /// The author, time and message of a synced commit, for the history:
    /// from the push delivery that named it when there is one (Azure DevOps
    /// already said it, and a push's requests stay counted), else asked
    /// for. Never fails a sync: without it the commit is kept unnamed.
    async fn commit_info(
        &self,
        repo: &Repository,
        client: &AzureClient,
        head: &str,
    ) -> Option<CommitInfo> {
        let from_push = match self.db.delivery_body_for_commit(&repo.id, head).await {
            Ok(Some(body)) => serde_json::from_str::<PushEvent>(&body)
                .ok()
                .and_then(|event| {
                    event
                        .resource
                        .commits
                        .into_iter()
                        .find(|c| c.commit_id.eq_ignore_ascii_case(head))
                })
                .map(|c| commit_info_of(c.author.as_ref(), c.comment)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(repository = %repo.id, error = %e, "sync: push deliveries not read");
                None
            }
        };
        if from_push.is_some() {
            return from_push;
        }
        match client
            .get_commit(&repo.project_id, &repo.id, head, None)
            .await
        {
            Ok(c) => Some(commit_info_of(c.author.as_ref(), c.comment)),
            Err(e) => {
                tracing::warn!(repository = %repo.id, commit = %head, error = %e,
                    "sync: commit details not read; the history names the commit only");
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn parse_and_switch(
        &self,
        repo: &Repository,
        client: &AzureClient,
        snapshot: &str,
        head: &str,
        note: String,
        progress: &Progress,
        prepared: HashMap<String, PreparedFile>,
    ) -> Result<(), SyncError> {
        let mut run = self.parse(snapshot, progress, prepared).await?;
        let note = format!("{note}; {}", run.summary());
        progress.report("saving", 0, None).await.ok();
        self.keep_facts(&repo.id, std::mem::take(&mut run.made))
            .await;
        let commit = self.commit_info(repo, client, head).await;
        // Refused when the repository was removed meanwhile or the lease
        // was lost: nothing of this sync becomes visible then.
        self.db
            .switch_snapshot_leased(
                &repo.id,
                &SwitchInfo {
                    snapshot_id: snapshot,
                    commit_id: head,
                    graph: &run.graph,
                    note: Some(&note),
                    commit: commit.as_ref(),
                },
                Some(&progress.lease()),
            )
            .await?;
        tracing::info!(repository = %repo.id, commit = %head, %note, "sync: commit switched");
        Ok(())
    }

    async fn reparse(&self, repo: &Repository, progress: &Progress) -> Result<(), SyncError> {
        let (snapshot, commit) = self
            .db
            .visible_snapshot(&repo.id)
            .await?
            .ok_or(SyncError::NothingStored)?;
        let mut run = self.parse(&snapshot, progress, HashMap::new()).await?;
        self.keep_facts(&repo.id, std::mem::take(&mut run.made))
            .await;
        self.db
            .replace_visible_graph(
                &repo.id,
                &commit,
                &run.graph,
                Some(&format!(
                    "re-parsed the stored files of {}; {}",
                    short(&commit),
                    run.summary()
                )),
                Some(&progress.lease()),
            )
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl JobHandler for SyncEngine {
    async fn run(&self, job: &Job, progress: &Progress) -> Result<(), JobFailure> {
        let repo = match self.db.repository(&job.repository_id).await {
            Ok(Some(repo)) => repo,
            Ok(None) => {
                return Err(JobFailure {
                    message: SyncError::RepositoryRemoved.to_string(),
                    retryable: false,
                })
            }
            Err(e) => {
                return Err(JobFailure {
                    message: e.to_string(),
                    retryable: true,
                })
            }
        };
        let slot = self.org_slot(&repo.organization_id);
        let _permit = slot.acquire_owned().await;
        let _ = self
            .db
            .set_repository_state(&repo.id, RepoState::Syncing, None)
            .await;
        match self.execute(job, &repo, progress).await {
            Ok(()) => Ok(()),
            // Another runner owns the job, or there is nothing left to
            // record anything on: the repository state is not this
            // attempt's to set.
            Err(e @ (SyncError::LeaseLost | SyncError::RepositoryRemoved)) => Err(JobFailure {
                message: e.to_string(),
                retryable: e.retryable(),
            }),
            Err(e) => {
                // The staged files of a failed attempt are of no use (a
                // retry starts a new snapshot): dropped now, while the
                // lease holds, rather than kept until the next sync.
                if let Err(drop) = self
                    .db
                    .drop_invisible_snapshots(&repo.id, Some(&progress.lease()))
                    .await
                {
                    tracing::warn!(error = %drop, "sync: cannot drop the staged files");
                }
                let retryable = e.retryable();
                let message = e.to_string();
                let last = !retryable || job.attempts >= job.max_attempts;
                let (state, shown) = match (&e, last) {
                    (SyncError::Disabled, _) => (RepoState::Disabled, message.clone()),
                    (_, true) => (RepoState::Error, message.clone()),
                    (_, false) => (RepoState::Syncing, format!("will retry: {message}")),
                };
                if let Err(db) = self
                    .db
                    .set_repository_state(&repo.id, state, Some(&shown))
                    .await
                {
                    tracing::warn!(error = %db, "sync: cannot record the repository state");
                }
                Err(JobFailure { message, retryable })
            }
        }
    }
}

/// A commit's author and message as the history keeps them. Messages are
/// bounded: a timeline shows their first lines, not a novel.
fn commit_info_of(author: Option<&GitUserDate>, message: Option<String>) -> CommitInfo {
    const MAX_MESSAGE: usize = 4096;
    let message = message.map(|mut m| {
        if m.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m.truncate(end);
        }
        m
    });
    CommitInfo {
        author: author.and_then(|a| a.name.clone().or_else(|| a.email.clone())),
        authored_at: author
            .and_then(|a| a.date.as_deref())
            .and_then(|d| {
                time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| t.unix_timestamp()),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_branch_points_to_the_action_that_changes_it() {
        let message = SyncError::BranchMissing("refs/heads/release".into()).to_string();
        assert!(
            message.starts_with("the branch release does not exist"),
            "{message}"
        );
        assert!(message.contains("\"Change tracked branch…\""), "{message}");
        assert!(is_branch_missing(&message));
        assert!(!is_branch_missing(&SyncError::Disabled.to_string()));
    }

    #[test]
    fn a_batch_is_split_on_a_refusal_but_not_on_the_identity_or_the_network() {
        use spicehub_azure::ErrorContext;
        let answered = |diagnosis: Diagnosis, status: u16| {
            AzureError::with_context(
                diagnosis,
                ErrorContext {
                    status: Some(status),
                    ..Default::default()
                },
            )
        };
        let devops = |status| Diagnosis::DevOpsError {
            status,
            tf_code: None,
            message: "no".into(),
        };
        for (error, split) in [
            (answered(devops(400), 400), true),
            (answered(devops(413), 413), true),
            // A blob that is not there: halves find it, and alone it fails
            // as it always did.
            (answered(Diagnosis::RepositoryNotFound, 404), true),
            (
                AzureError::diagnosed(Diagnosis::TooLarge { bytes: 9, limit: 1 }),
                true,
            ),
            (
                AzureError::diagnosed(Diagnosis::UnexpectedResponse {
                    detail: "the archive is not a zip file".into(),
                }),
                true,
            ),
            (answered(Diagnosis::NotAuthorized, 401), false),
            (
                answered(
                    Diagnosis::Forbidden {
                        message: "no".into(),
                    },
                    403,
                ),
                false,
            ),
            (answered(Diagnosis::SignInPage { status: 203 }, 203), false),
            (answered(Diagnosis::ServerError { status: 503 }, 503), false),
            (
                answered(Diagnosis::Throttled { retry_after: None }, 429),
                false,
            ),
            (AzureError::InvalidArgument("x".into()), false),
        ] {
            assert_eq!(refused(&error), split, "{error}");
        }
    }

    #[test]
    fn paths_of_one_blob_are_fetched_once() {
        let groups = by_blob(vec![
            ("a.py".into(), "1".into()),
            ("b.py".into(), "2".into()),
            ("c.py".into(), "1".into()),
        ]);
        assert_eq!(
            groups,
            [
                ("1".to_owned(), vec!["a.py".to_owned(), "c.py".to_owned()]),
                ("2".to_owned(), vec!["b.py".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_push_is_synced_in_full_only_when_the_archive_is_cheaper() {
        let row = |path: &str, size: i64| crate::db::snapshots::FileRow {
            path: path.into(),
            object_id: Some("0".repeat(40)),
            size,
            note: None,
        };
        let stored = [row("a.py", 1_000), row("b.py", 3_000)];
        // An edited file at its stored size, an added one at the mean.
        let cost = Cost::of_blobs(&[("a.py", "1"), ("new.py", "2")], &stored, 100);
        assert_eq!((cost.files, cost.requests, cost.bytes), (2, 1, 3_000));
        // A blob two paths share is one fetch.
        let cost = Cost::of_blobs(&[("a.py", "1"), ("c.py", "1")], &stored, 1);
        assert_eq!((cost.files, cost.requests, cost.bytes), (2, 1, 1_000));
        // One request is never beaten by the archive's one request.
        assert_eq!(cost.full_is_cheaper(0), None);
        // 250 files in batches of 100: three requests of 2 KiB files, against
        // a small repository's archive.
        let many: Vec<(String, String)> = (0..250)
            .map(|i| (format!("f{i}.py"), format!("{i}")))
            .collect();
        let many: Vec<(&str, &str)> = many
            .iter()
            .map(|(p, id)| (p.as_str(), id.as_str()))
            .collect();
        let cost = Cost::of_blobs(&many, &stored, 100);
        assert_eq!(cost.requests, 3);
        let why = cost.full_is_cheaper(100_000).unwrap_or_default();
        assert!(why.contains("250 changed files' 3 requests"), "{why}");
        // The same push into a repository of 10 MB stays incremental.
        assert_eq!(cost.full_is_cheaper(10_000_000), None);
        // One file per request (batching off) costs a request each.
        let cost = Cost::of_blobs(&many[..10], &stored, 0);
        assert_eq!(cost.requests, 10);
        assert!(cost.full_is_cheaper(200_000).is_some());
    }

    #[test]
    fn work_files_are_recognised_by_their_job() {
        let job = "48e2f80a-6de7-4406-ac83-f4d5355088ea";
        assert_eq!(work_file_job(&archive_name(job)), Some(job));
        assert_eq!(
            work_file_job(&format!(".{job}.zip.17127af94e5541e08b5dc9725772fc2a.part")),
            Some(job)
        );
        assert_eq!(work_file_job(&blobs_name(job, 7)), Some(job));
        assert_eq!(
            work_file_job(&format!(
                ".{}.17127af94e5541e08b5dc9725772fc2a.part",
                blobs_name(job, 12)
            )),
            Some(job)
        );
        for other in [
            "notes.zip".to_owned(),
            format!("{job}.zip.bak"),
            format!(".{job}.zip.part"),
            format!(".{job}.zip.17127af94e5541e08b5dc9725772fc2.part"),
            format!(".{job}.zip.17127af94e5541e08b5dc9725772fc2x.part"),
            "../x.zip".to_owned(),
            format!("{job}.blobs-.zip"),
            format!("{job}.blobs-x1.zip"),
            format!("x{job}.blobs-1.zip"),
            format!("{job}.tar"),
        ] {
            assert_eq!(work_file_job(&other), None, "{other}");
        }
    }
}
