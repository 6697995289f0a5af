//! How a kept commit is named (server only): on the timeline, the diff
//! view and a past commit's registry page, and where "What changed" goes
//! from the Repositories tab and the Webhooks page.

use super::*;
use crate::api::format::fmt_time;
use spicehub_core::db::history::HistoryCommit;
use spicehub_parser::diff::RegistryStatus;

/// How a commit is named on the timeline and the diff view.
pub fn commit_row(repo: &RepositoryRef, c: &HistoryCommit, current: bool) -> CommitRow {
    CommitRow {
        short: c.commit_id.chars().take(8).collect(),
        author: c.author.clone(),
        authored: c.authored_at.map(fmt_time),
        title: c
            .message
            .as_deref()
            .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
            .map(|l| l.trim().chars().take(200).collect()),
        synced: fmt_time(c.synced_at),
        link: commit_link(repo.web_url.as_deref(), &c.commit_id),
        current,
        commit: c.commit_id.clone(),
    }
}

/// Where "what this push changed" goes for a synced commit: the diff of
/// the one registry it changed, else its entry on the timeline, which
/// lists each registry's changes (or says that none changed).
pub fn push_changes_link(repository_id: &str, c: &HistoryCommit) -> String {
    match (&c.changes.base, c.changes.registries.as_slice()) {
        (Some(base), [only]) if only.status != RegistryStatus::Removed => diff_path(
            repository_id,
            &only.registry,
            Some(base),
            Some(&c.commit_id),
        ),
        _ => format!("{}#commit-{}", history_path(repository_id), c.commit_id),
    }
}
