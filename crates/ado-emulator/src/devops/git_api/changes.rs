//! `GitChange` and change counts, shared by the commits and diffs sections: both describe a tree diff the same
//! way, so the mapping from `git diff-tree` to ADO's change types lives in one place.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::git::{self, CommitInfo, DiffEntry, ZERO_ID};
use crate::state::{enc_segment, RepoState};
use crate::EmulatorError;

pub(super) fn change_type(change: &DiffEntry) -> &'static str {
    match change.status {
        'A' | 'C' => "add",
        'D' => "delete",
        'R' if change.similarity >= 100 => "rename",
        'R' => "edit, rename",
        _ => "edit",
    }
}

fn count_key(change_type: &str) -> String {
    change_type
        .split(", ")
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn change_counts(entries: &[DiffEntry]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for change in entries {
        *counts.entry(count_key(change_type(change))).or_insert(0) += 1;
    }
    counts
}

pub(super) fn change_json(
    repo_url: &str,
    commit: &str,
    change: &DiffEntry,
    with_commit: bool,
) -> Value {
    let path = format!("/{}", change.path);
    let deleted = change.status == 'D';
    let mut item = Map::new();
    let object_id = if deleted {
        &change.old_id
    } else {
        &change.new_id
    };
    item.insert("objectId".into(), json!(object_id));
    if change.status != 'A' && change.old_id != ZERO_ID {
        item.insert("originalObjectId".into(), json!(change.old_id));
    }
    item.insert(
        "gitObjectType".into(),
        json!(if change.is_tree() {
            "tree"
        } else if change.new_mode == "160000" {
            "commit"
        } else {
            "blob"
        }),
    );
    if with_commit {
        item.insert("commitId".into(), json!(commit));
    }
    item.insert("path".into(), json!(path));
    if change.is_tree() {
        item.insert("isFolder".into(), json!(true));
    }
    item.insert(
        "url".into(),
        json!(format!(
            "{repo_url}/items{}?versionType=Commit&version={commit}",
            enc_path(&path)
        )),
    );
    let mut git_change = Map::new();
    git_change.insert("item".into(), Value::Object(item));
    git_change.insert("changeType".into(), json!(change_type(change)));
    if let Some(old) = &change.old_path {
        git_change.insert("sourceServerItem".into(), json!(format!("/{old}")));
        git_change.insert("originalPath".into(), json!(format!("/{old}")));
    }
    Value::Object(git_change)
}

fn enc_path(path: &str) -> String {
    path.split('/')
        .map(enc_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// Changes of a commit against its first parent (or the empty tree).
pub(super) fn commit_diff(
    repo: &RepoState,
    info: &CommitInfo,
) -> Result<Vec<DiffEntry>, EmulatorError> {
    git::diff_tree(
        &repo.path,
        info.parents.first().map(String::as_str),
        &info.id,
    )
}

pub(super) fn cached_counts(
    repo: &RepoState,
    info: &CommitInfo,
) -> Result<BTreeMap<String, u64>, EmulatorError> {
    if let Some(cached) = repo.change_count_cache.lock().get(&info.id) {
        return Ok(cached.clone());
    }
    let mut counts = change_counts(&commit_diff(repo, info)?);
    for kind in ["Add", "Edit", "Delete"] {
        counts.entry(kind.to_string()).or_insert(0);
    }
    repo.change_count_cache
        .lock()
        .insert(info.id.clone(), counts.clone());
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_types_and_count_keys() {
        let entry = |status: char, similarity: u32| DiffEntry {
            status,
            similarity,
            old_mode: "100644".into(),
            new_mode: "100644".into(),
            old_id: "a".into(),
            new_id: "b".into(),
            path: "x".into(),
            old_path: None,
        };
        assert_eq!(change_type(&entry('A', 0)), "add");
        assert_eq!(change_type(&entry('D', 0)), "delete");
        assert_eq!(change_type(&entry('M', 0)), "edit");
        assert_eq!(change_type(&entry('R', 100)), "rename");
        assert_eq!(change_type(&entry('R', 87)), "edit, rename");
        assert_eq!(count_key("edit, rename"), "Edit, Rename");
    }
}
