//! Diffs section: `GET .../diffs/commits`, what changed between two versions. The hub pages through it, so the
//! paging quirk (`allChangesIncluded` only on the last page) is kept.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::changes::{change_counts, change_json};
use super::or_internal;
use super::repositories::repo_api_url;
use super::versions::{resolve, VersionDescriptor};
use crate::devops::{parse_bool, parse_usize, Ctx, HandlerResult};
use crate::git;
use crate::http::ado_json;
use crate::state::RepoState;

/// `GET .../diffs/commits` — `baseVersion*` → `targetVersion*` (defaults: the default branch), or merge-base →
/// target with `diffCommonCommit=true`; `$top` (100) / `$skip`; `allChangesIncluded` only when the page reaches
/// the end (ADO omits it otherwise).
pub(super) fn diffs(ctx: &Ctx, repo: &RepoState) -> HandlerResult {
    let query = &ctx.query;
    let base_descriptor = VersionDescriptor::from_query(
        ctx,
        &["baseVersion"],
        &["baseVersionType"],
        &["baseVersionOptions"],
    );
    let target_descriptor = VersionDescriptor::from_query(
        ctx,
        &["targetVersion"],
        &["targetVersionType"],
        &["targetVersionOptions"],
    );
    let common_only =
        parse_bool("diffCommonCommit", query.get("diffCommonCommit"))?.unwrap_or(false);
    let top = parse_usize("$top", query.get("$top"))?;
    let skip = parse_usize("$skip", query.get("$skip"))?.unwrap_or(0);
    let (base, _, _) = resolve(repo, &base_descriptor)?;
    let (target, _, _) = resolve(repo, &target_descriptor)?;
    let dir = &repo.path;
    let common = or_internal(git::merge_base(dir, &base, &target))?;
    let from = if common_only {
        common.clone()
    } else {
        Some(base.clone())
    };
    let entries = or_internal(git::diff_tree(dir, from.as_deref(), &target))?;
    let (ahead, behind) = or_internal(git::ahead_behind(dir, &base, &target))?;
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let page = ctx.page(top.map(|top| top.min(2000)), 100);
    let end = (skip + page).min(entries.len());
    let changes: Vec<Value> = entries
        .get(skip.min(entries.len())..end)
        .unwrap_or(&[])
        .iter()
        .map(|change| change_json(&repo_url, &target, change, true))
        .collect();
    let mut diff = Map::new();
    if end >= entries.len() {
        diff.insert("allChangesIncluded".into(), json!(true));
    }
    diff.insert("changeCounts".into(), json!(change_counts(&entries)));
    diff.insert("changes".into(), json!(changes));
    if let Some(common) = &common {
        diff.insert("commonCommit".into(), json!(common));
    }
    diff.insert("baseCommit".into(), json!(base));
    diff.insert("targetCommit".into(), json!(target));
    diff.insert("aheadCount".into(), json!(ahead));
    diff.insert("behindCount".into(), json!(behind));
    Ok(ado_json(StatusCode::OK, &Value::Object(diff)))
}
