//! Pushes section: `GET .../pushes`, `GET .../pushes/{pushId}` and `GET .../pushes/{pushId}/commits`. Git keeps
//! no push history, so these answer from the emulator's own push records (the ones its webhooks announce).

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::commits::{commit_ref_json, parse_date};
use super::repositories::{repo_api_url, repo_json, repo_web_url};
use super::{internal, or_internal};
use crate::devops::{parse_bool, parse_usize, Ctx, HandlerResult};
use crate::git;
use crate::http::{ado_json, ado_time, tf_error};
use crate::state::{OrgState, ProjectState, PushRecord, RepoState, Shared};
use crate::EmulatorError;

pub(super) fn pusher_json(shared: &Shared, org: &OrgState, push: &PushRecord) -> Value {
    let org_url = shared.org_url(org);
    let who = &push.pushed_by;
    json!({
        "id": who.id,
        "displayName": who.display_name,
        "uniqueName": who.unique_name,
        "url": format!("{org_url}/_apis/Identities/{}", who.id),
        "imageUrl": format!("{org_url}/_api/_common/identityImage?id={}", who.id),
    })
}

fn push_json(
    ctx: &Ctx,
    project: &ProjectState,
    repo: &RepoState,
    push: &PushRecord,
    ref_updates: bool,
    repository: bool,
) -> Value {
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let mut fields = Map::new();
    if ref_updates {
        fields.insert(
            "refUpdates".into(),
            json!(push
                .ref_updates
                .iter()
                .map(|update| json!({"repositoryId": repo.id, "name": update.name, "oldObjectId": update.old_object_id, "newObjectId": update.new_object_id}))
                .collect::<Vec<_>>()),
        );
    }
    if repository {
        fields.insert(
            "repository".into(),
            repo_json(&ctx.shared, &ctx.org, project, repo, false),
        );
    }
    fields.insert("pushedBy".into(), pusher_json(&ctx.shared, &ctx.org, push));
    fields.insert("pushId".into(), json!(push.push_id));
    fields.insert("date".into(), json!(ado_time(push.date)));
    fields.insert(
        "url".into(),
        json!(format!("{repo_url}/pushes/{}", push.push_id)),
    );
    Value::Object(fields)
}

/// `GET .../pushes` — `$top` (100), `$skip`, `searchCriteria.refName`, `includeRefUpdates`, `fromDate`,
/// `toDate`, `pusherId` (prefix optional). Newest first.
pub(super) fn pushes_list(ctx: &Ctx, project: &ProjectState, repo: &RepoState) -> HandlerResult {
    let query = &ctx.query;
    let top = parse_usize("$top", query.get("$top"))?;
    let skip = parse_usize("$skip", query.get("$skip"))?.unwrap_or(0);
    let ref_name = query.sc("refName").map(str::to_string);
    let include_refs =
        parse_bool("includeRefUpdates", query.sc("includeRefUpdates"))?.unwrap_or(false);
    let from = query.sc("fromDate").and_then(parse_date);
    let to = query.sc("toDate").and_then(parse_date);
    let pusher = query.sc("pusherId").map(str::to_lowercase);
    let mut pushes: Vec<PushRecord> = repo.pushes.lock().clone();
    pushes.reverse();
    pushes.retain(|push| {
        ref_name
            .as_ref()
            .is_none_or(|name| push.ref_updates.iter().any(|update| &update.name == name))
            && from.is_none_or(|from| push.date.unix_timestamp() >= from)
            && to.is_none_or(|to| push.date.unix_timestamp() <= to)
            && pusher
                .as_ref()
                .is_none_or(|id| push.pushed_by.id.to_lowercase() == *id)
    });
    let page = ctx.page(top, 100);
    let value: Vec<Value> = pushes
        .iter()
        .skip(skip)
        .take(page)
        .map(|push| push_json(ctx, project, repo, push, include_refs, true))
        .collect();
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

fn find_push(repo: &RepoState, id: &str) -> Result<PushRecord, Response<Body>> {
    let number: Option<u32> = id.parse().ok();
    number
        .and_then(|number| {
            repo.pushes
                .lock()
                .iter()
                .find(|push| push.push_id == number)
                .cloned()
        })
        .ok_or_else(|| {
            tf_error(
                StatusCode::NOT_FOUND,
                &format!("TF401180: The requested push {id} could not be found in the repository {}.", repo.name),
                "GitPushNotFoundException",
                "Microsoft.TeamFoundation.Git.Server.GitPushNotFoundException, Microsoft.TeamFoundation.Git.Server",
            )
        })
}

/// `GET .../pushes/{pushId}` (`includeCommits`, `includeRefUpdates`).
pub(super) fn push_get(
    ctx: &Ctx,
    project: &ProjectState,
    repo: &RepoState,
    id: &str,
) -> HandlerResult {
    let push = find_push(repo, id)?;
    let include_commits =
        parse_usize("includeCommits", ctx.query.get("includeCommits"))?.unwrap_or(0);
    let include_refs =
        parse_bool("includeRefUpdates", ctx.query.get("includeRefUpdates"))?.unwrap_or(true);
    let mut push_value = push_json(ctx, project, repo, &push, include_refs, true);
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let listed: Vec<String> = push.commits.iter().take(include_commits).cloned().collect();
    let commits: Vec<Value> = or_internal(git::commits(&repo.path, &listed))?
        .iter()
        .map(|commit| commit_ref_json(ctx, repo, commit, false))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    if let Some(obj) = push_value.as_object_mut() {
        obj.insert("commits".into(), json!(commits));
        obj.insert(
            "_links".into(),
            json!({
                "self": {"href": format!("{repo_url}/pushes/{}", push.push_id)},
                "repository": {"href": repo_url},
                "commits": {"href": format!("{repo_url}/pushes/{}/commits", push.push_id)},
                "pusher": {"href": format!("{}/_apis/Identities/{}", ctx.org_url(), push.pushed_by.id)},
                "refs": {"href": format!("{repo_url}/refs")},
            }),
        );
    }
    Ok(ado_json(StatusCode::OK, &push_value))
}

/// `GET .../pushes/{pushId}/commits` and `GET .../commits?pushId=` (`top`, `skip`).
pub(super) fn push_commits(ctx: &Ctx, repo: &RepoState, id: &str) -> HandlerResult {
    let push = find_push(repo, id)?;
    let top = parse_usize("top", ctx.query.get("top").or(ctx.query.get("$top")))?;
    let skip = parse_usize("skip", ctx.query.get("skip").or(ctx.query.get("$skip")))?.unwrap_or(0);
    let page = ctx.page(top, 100);
    let listed: Vec<String> = push.commits.iter().skip(skip).take(page).cloned().collect();
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let web = repo_web_url(&ctx.shared, &ctx.org, repo);
    let value: Vec<Value> = or_internal(git::commits(&repo.path, &listed))?
        .iter()
        .map(|commit| {
            let mut commit_ref = commit_ref_json(ctx, repo, commit, false)?;
            if let Some(obj) = commit_ref.as_object_mut() {
                obj.insert(
                    "_links".into(),
                    json!({
                        "self": {"href": format!("{repo_url}/commits/{}", commit.id)},
                        "repository": {"href": repo_url},
                        "web": {"href": format!("{web}/commit/{}", commit.id)},
                        "changes": {"href": format!("{repo_url}/commits/{}/changes", commit.id)},
                    }),
                );
            }
            Ok(commit_ref)
        })
        .collect::<Result<_, EmulatorError>>()
        .map_err(internal)?;
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}
