//! Building the organizations from the configuration (creating / seeding / importing the bare repositories) and
//! the write operations (commit, force-push, move a branch) that record pushes and fire `git.push` events.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use time::OffsetDateTime;

use crate::config::{derived_id, EmulatorConfig, FileChange, RepoConfig, Signature};
use crate::git::{self, NewCommit, ZERO_ID};
use crate::state::{OrgState, ProjectState, PushRecord, RefUpdate, RepoState, Shared};
use crate::webhook;
use crate::EmulatorError;

/// Date of the first seed commit without an explicit date (later ones: one hour apart), so seeded repositories
/// get the same commit ids on every run.
fn seed_base_date() -> OffsetDateTime {
    time::macros::datetime!(2024-01-08 09:00 UTC)
}

/// Creates the runtime organizations; creates, seeds or imports the repositories on disk.
pub(crate) fn build_orgs(cfg: &EmulatorConfig) -> Result<Vec<Arc<OrgState>>, EmulatorError> {
    let mut orgs = Vec::new();
    for org in &cfg.organizations {
        let mut projects = Vec::new();
        for (pi, project) in org.projects.iter().enumerate() {
            let project_id = project
                .id
                .clone()
                .unwrap_or_else(|| derived_id("project", &format!("{}/{}", org.name, project.name)))
                .to_lowercase();
            let mut repos = Vec::new();
            for repo in &project.repos {
                let repo_id = repo
                    .id
                    .clone()
                    .unwrap_or_else(|| {
                        derived_id(
                            "repo",
                            &format!("{}/{}/{}", org.name, project.name, repo.name),
                        )
                    })
                    .to_lowercase();
                let path = cfg
                    .data_dir
                    .join(org.name.to_lowercase())
                    .join(&project_id)
                    .join(format!("{repo_id}.git"));
                let state = RepoState {
                    id: repo_id,
                    name: repo.name.clone(),
                    project_id: project_id.clone(),
                    project_name: project.name.clone(),
                    path,
                    disabled: repo.disabled,
                    visible_to: repo.visible_to.clone(),
                    default_branch: RwLock::new(None),
                    write_lock: Mutex::new(()),
                    pushes: Mutex::new(Vec::new()),
                    size: AtomicU64::new(0),
                    change_count_cache: Mutex::new(HashMap::new()),
                };
                prepare_repo(&state, repo, &org.pusher)?;
                repos.push(Arc::new(state));
            }
            projects.push(ProjectState {
                id: project_id,
                name: project.name.clone(),
                description: project.description.clone(),
                visibility: project.visibility,
                revision: 400 + pi as u64,
                last_update_time: seed_base_date(),
                repos,
            });
        }
        orgs.push(Arc::new(OrgState {
            name: org.name.clone(),
            id: org.id.to_lowercase(),
            account_id: org.account_id(),
            tenant_id: org.tenant.to_lowercase(),
            members: org
                .members
                .iter()
                .map(|(client_id, level)| (client_id.to_lowercase(), *level))
                .collect(),
            hook_managers: org.hook_managers.as_ref().map(|managers| {
                managers
                    .iter()
                    .map(|client_id| client_id.to_lowercase())
                    .collect()
            }),
            pats: org.personal_access_tokens.clone(),
            pusher: org.pusher.clone(),
            projects,
        }));
    }
    Ok(orgs)
}

fn head_branch(dir: &Path) -> Result<Option<String>, EmulatorError> {
    let refs = git::refs(dir)?;
    let heads: Vec<&git::GitRef> = refs
        .iter()
        .filter(|git_ref| git_ref.name.starts_with("refs/heads/"))
        .collect();
    if heads.is_empty() {
        return Ok(None);
    }
    let head = std::fs::read_to_string(dir.join("HEAD")).unwrap_or_default();
    let head = head.trim().strip_prefix("ref: ").map(str::to_string);
    if let Some(head) = head {
        if heads.iter().any(|git_ref| git_ref.name == head) {
            return Ok(Some(head));
        }
    }
    Ok(heads.first().map(|git_ref| git_ref.name.clone()))
}

fn set_head(dir: &Path, refname: &str) -> Result<(), EmulatorError> {
    std::fs::write(dir.join("HEAD"), format!("ref: {refname}\n"))?;
    Ok(())
}

fn save_pushes(repo: &RepoState) {
    let pushes = repo.pushes.lock().clone();
    if let Ok(text) = serde_json::to_string(&pushes) {
        if let Err(error) = std::fs::write(repo.pushes_file(), text) {
            tracing::warn!(error = %error, repo = %repo.name, "could not save pushes");
        }
    }
}

fn prepare_repo(
    repo: &RepoState,
    cfg: &RepoConfig,
    pusher: &crate::config::Identity,
) -> Result<(), EmulatorError> {
    let dir = &repo.path;
    if git::exists(dir) && !cfg.keep_existing {
        std::fs::remove_dir_all(dir)?;
        let _ = std::fs::remove_file(repo.pushes_file());
    }
    if git::exists(dir) {
        // Reuse what a previous run left (commits made through the API survive restarts).
        let pushes: Vec<PushRecord> = std::fs::read_to_string(repo.pushes_file())
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        *repo.pushes.lock() = pushes;
        *repo.default_branch.write() = head_branch(dir)?;
        repo.size.store(git::repo_size(dir)?, Ordering::Relaxed);
        return Ok(());
    }
    if let Some(src) = &cfg.import_from {
        git::clone_bare(src, dir)?;
        let head = head_branch(dir)?;
        *repo.default_branch.write() = head;
        // One push per branch, as if each had been pushed once.
        let mut pushes = Vec::new();
        for branch_ref in git::refs(dir)?
            .into_iter()
            .filter(|branch_ref| branch_ref.name.starts_with("refs/heads/"))
        {
            let commits = git::rev_list(dir, std::slice::from_ref(&branch_ref.object_id), &[])?;
            pushes.push(PushRecord {
                push_id: pushes.len() as u32 + 1,
                date: OffsetDateTime::now_utc(),
                pushed_by: pusher.clone(),
                ref_updates: vec![RefUpdate {
                    name: branch_ref.name.clone(),
                    old_object_id: ZERO_ID.into(),
                    new_object_id: branch_ref.object_id.clone(),
                }],
                commits,
            });
        }
        *repo.pushes.lock() = pushes;
        save_pushes(repo);
        repo.size.store(git::repo_size(dir)?, Ordering::Relaxed);
        return Ok(());
    }
    if cfg.seed.is_empty() {
        // Empty repository: created on disk by its first push.
        return Ok(());
    }
    git::init_bare(dir, &cfg.default_branch)?;
    let mut when = seed_base_date();
    for (i, seed) in cfg.seed.iter().enumerate() {
        let date = seed.date.unwrap_or(when);
        when = date + time::Duration::hours(1);
        let branch = seed
            .branch
            .clone()
            .unwrap_or_else(|| cfg.default_branch.clone());
        let refname = format!("refs/heads/{branch}");
        let old = git::rev_parse(dir, &refname)?;
        let parent = match (&old, &seed.from_branch) {
            (Some(old_head), _) => Some(old_head.clone()),
            (None, Some(from)) => git::rev_parse(dir, &format!("refs/heads/{from}"))?,
            (None, None) => None,
        };
        let author = seed.author.clone().unwrap_or_default();
        let id = git::create_commit(
            dir,
            &NewCommit {
                parent: parent.as_deref(),
                changes: &seed.changes,
                message: &seed.message,
                author: &author,
                when: date,
            },
        )
        .map_err(|error| {
            EmulatorError::Config(format!("seed commit {i} of {}: {error}", repo.name))
        })?;
        git::update_ref(dir, &refname, &id, Some(old.as_deref().unwrap_or(ZERO_ID)))?;
        for tag in &seed.tags {
            git::update_ref(dir, &format!("refs/tags/{tag}"), &id, None)?;
        }
        let exclude: Vec<String> = old.iter().cloned().chain(parent.iter().cloned()).collect();
        let commits = git::rev_list(dir, std::slice::from_ref(&id), &exclude)?;
        let mut pushes = repo.pushes.lock();
        let push_id = pushes.len() as u32 + 1;
        pushes.push(PushRecord {
            push_id,
            date,
            pushed_by: pusher.clone(),
            ref_updates: vec![RefUpdate {
                name: refname,
                old_object_id: old.unwrap_or_else(|| ZERO_ID.into()),
                new_object_id: id,
            }],
            commits,
        });
    }
    set_head(dir, &format!("refs/heads/{}", cfg.default_branch))?;
    *repo.default_branch.write() = head_branch(dir)?;
    save_pushes(repo);
    repo.size.store(git::repo_size(dir)?, Ordering::Relaxed);
    Ok(())
}

/// Where a new commit's parent comes from.
pub(crate) enum Base<'a> {
    /// The branch's current head (a normal push).
    BranchHead,
    /// This commit, or none (a root commit), whatever the branch points to (a force-push).
    Force(Option<&'a str>),
}

fn check_branch_name(branch: &str) -> Result<(), EmulatorError> {
    let ok = !branch.is_empty()
        && !branch.starts_with('/')
        && !branch.ends_with('/')
        && !branch.starts_with('-')
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.ends_with(".lock")
        && !branch
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(EmulatorError::Invalid(format!(
            "invalid branch name {branch:?}"
        )))
    }
}

fn ensure_repo(repo: &RepoState, branch: &str) -> Result<(), EmulatorError> {
    if !git::exists(&repo.path) {
        git::init_bare(&repo.path, branch)?;
    }
    Ok(())
}

/// The content of a commit made through the emulator's API.
pub(crate) struct CommitSpec<'a> {
    pub changes: &'a [FileChange],
    pub message: &'a str,
    pub author: &'a Signature,
}

/// Commits on `branch` and records the push (blocking). Returns the new commit id and the push.
pub(crate) fn commit(
    shared: &Arc<Shared>,
    org: &Arc<OrgState>,
    repo: &RepoState,
    branch: &str,
    base: Base<'_>,
    spec: &CommitSpec<'_>,
) -> Result<(String, PushRecord), EmulatorError> {
    let CommitSpec {
        changes,
        message,
        author,
    } = *spec;
    check_branch_name(branch)?;
    let (id, push, infos) = {
        let _guard = repo.write_lock.lock();
        ensure_repo(repo, branch)?;
        let dir = &repo.path;
        let refname = format!("refs/heads/{branch}");
        let old = git::rev_parse(dir, &refname)?;
        let parent = match base {
            Base::BranchHead => old.clone(),
            Base::Force(None) => None,
            Base::Force(Some(base_commit)) => Some(
                git::rev_parse(dir, &format!("{base_commit}^{{commit}}"))?
                    .ok_or_else(|| EmulatorError::NotFound(format!("commit {base_commit}")))?,
            ),
        };
        let id = git::create_commit(
            dir,
            &NewCommit {
                parent: parent.as_deref(),
                changes,
                message,
                author,
                when: OffsetDateTime::now_utc(),
            },
        )?;
        git::update_ref(dir, &refname, &id, Some(old.as_deref().unwrap_or(ZERO_ID)))?;
        let (push, infos) = record_push(shared, org, repo, &refname, old, Some(id.clone()))?;
        (id, push, infos)
    };
    webhook::dispatch_push(shared, org, repo, &push, &infos);
    Ok((id, push))
}

/// Points `branch` at `target` (creating it), or deletes it (`None`); records the push (blocking).
/// Makes an existing branch the repository's default branch (as the
/// Branches page's "Set as default branch" does; no push, no webhook).
pub(crate) fn set_default_branch(repo: &RepoState, branch: &str) -> Result<(), EmulatorError> {
    let _guard = repo.write_lock.lock();
    let refname = format!("refs/heads/{branch}");
    if git::rev_parse(&repo.path, &refname)?.is_none() {
        return Err(EmulatorError::NotFound(format!("branch {branch}")));
    }
    set_head(&repo.path, &refname)?;
    *repo.default_branch.write() = Some(refname);
    Ok(())
}

pub(crate) fn set_branch(
    shared: &Arc<Shared>,
    org: &Arc<OrgState>,
    repo: &RepoState,
    branch: &str,
    target: Option<&str>,
) -> Result<PushRecord, EmulatorError> {
    check_branch_name(branch)?;
    let (push, infos) = {
        let _guard = repo.write_lock.lock();
        let dir = &repo.path;
        let refname = format!("refs/heads/{branch}");
        let old = git::rev_parse(dir, &refname)?;
        let new = match target {
            Some(target) => {
                let id = git::rev_parse(dir, &format!("{target}^{{commit}}"))?
                    .ok_or_else(|| EmulatorError::NotFound(format!("commit {target}")))?;
                git::update_ref(dir, &refname, &id, Some(old.as_deref().unwrap_or(ZERO_ID)))?;
                Some(id)
            }
            None => {
                let Some(old_id) = &old else {
                    return Err(EmulatorError::NotFound(format!("branch {branch}")));
                };
                git::delete_ref(dir, &refname, Some(old_id))?;
                None
            }
        };
        record_push(shared, org, repo, &refname, old, new)?
    };
    webhook::dispatch_push(shared, org, repo, &push, &infos);
    Ok(push)
}

/// Records a push of one ref update (caller holds the write lock).
fn record_push(
    shared: &Shared,
    org: &OrgState,
    repo: &RepoState,
    refname: &str,
    old: Option<String>,
    new: Option<String>,
) -> Result<(PushRecord, Vec<git::CommitInfo>), EmulatorError> {
    let dir = &repo.path;
    let commits = match &new {
        Some(new_id) => {
            // Commits new to the repository (not reachable from any other ref before the push).
            let mut exclude: Vec<String> = git::refs(dir)?
                .into_iter()
                .filter(|git_ref| git_ref.name != refname)
                .map(|git_ref| git_ref.object_id)
                .collect();
            exclude.extend(old.iter().cloned());
            let mut seen = HashSet::new();
            exclude.retain(|id| seen.insert(id.clone()));
            git::rev_list(dir, std::slice::from_ref(new_id), &exclude)?
        }
        None => Vec::new(),
    };
    if new.is_some() && repo.default_branch.read().is_none() {
        set_head(dir, refname)?;
        *repo.default_branch.write() = Some(refname.to_string());
    }
    let push = {
        let mut pushes = repo.pushes.lock();
        let push_id = pushes.last().map_or(1, |last| last.push_id + 1);
        let push = PushRecord {
            push_id,
            date: OffsetDateTime::now_utc(),
            pushed_by: org.pusher.clone(),
            ref_updates: vec![RefUpdate {
                name: refname.to_string(),
                old_object_id: old.unwrap_or_else(|| ZERO_ID.into()),
                new_object_id: new.unwrap_or_else(|| ZERO_ID.into()),
            }],
            commits: commits.clone(),
        };
        pushes.push(push.clone());
        push
    };
    save_pushes(repo);
    repo.size.store(git::repo_size(dir)?, Ordering::Relaxed);
    repo.change_count_cache.lock().clear();
    let listed: Vec<String> = commits
        .into_iter()
        .take(shared.settings.max_push_commits)
        .collect();
    let infos = git::commits(dir, &listed)?;
    tracing::info!(repo = %repo.name, push_id = push.push_id, refname, "push recorded");
    Ok((push, infos))
}
