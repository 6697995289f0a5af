//! Refs section: `GET .../refs`, branches and tags with the objects they point at. Paged by
//! `x-ms-continuationtoken` like ADO, so clients that follow the token are exercised.

use axum::http::StatusCode;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::or_internal;
use super::repositories::repo_api_url;
use crate::devops::{bad_request, parse_bool, parse_usize, Ctx, HandlerResult};
use crate::git;
use crate::http::{self, ado_json};
use crate::state::{enc_query, OrgState, RepoState, Shared};

fn identity_json(shared: &Shared, org: &OrgState) -> Value {
    let pusher = &org.pusher;
    let org_url = shared.org_url(org);
    json!({
        "displayName": pusher.display_name,
        "url": format!("{org_url}/_apis/Identities/{}", pusher.id),
        "_links": {"avatar": {"href": format!("{org_url}/_apis/GraphProfile/MemberAvatars/aad.{}", pusher.id)}},
        "id": pusher.id,
        "uniqueName": pusher.unique_name,
        "imageUrl": format!("{org_url}/_api/_common/identityImage?id={}", pusher.id),
        "descriptor": format!("aad.{}", pusher.id),
    })
}

/// `GET .../refs` — `filter` (prefix after `refs/`), `filterContains`, `peelTags`, `includeStatuses`, `$top` +
/// `continuationToken` (header `x-ms-continuationtoken`).
pub(super) fn refs(ctx: &Ctx, repo: &RepoState, path_filter: &[String]) -> HandlerResult {
    let query = &ctx.query;
    let filter = if path_filter.is_empty() {
        query.get("filter").map(str::to_string)
    } else {
        Some(path_filter.join("/"))
    };
    let contains = query.get("filterContains").map(str::to_lowercase);
    let peel = parse_bool("peelTags", query.get("peelTags"))?.unwrap_or(false);
    let statuses = parse_bool("includeStatuses", query.get("includeStatuses"))?.unwrap_or(false);
    let top = parse_usize("$top", query.get("$top"))?;
    let token = query.get("continuationToken");
    let mut all: Vec<git::GitRef> = or_internal(git::refs(&repo.path))?;
    if let Some(filter) = &filter {
        let prefix = format!("refs/{}", filter.trim_start_matches("refs/"));
        all.retain(|git_ref| git_ref.name.starts_with(&prefix));
    }
    if let Some(needle) = &contains {
        all.retain(|git_ref| git_ref.name.to_lowercase().contains(needle));
    }
    let start = match token {
        Some(token) => {
            let name = URL_SAFE_NO_PAD
                .decode(token.trim_end_matches('='))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    bad_request(&format!("The continuation token '{token}' is not valid."))
                })?;
            all.iter()
                .position(|git_ref| git_ref.name >= name)
                .unwrap_or(all.len())
        }
        None => 0,
    };
    let paged = top.is_some() || token.is_some() || ctx.page_size.is_some();
    let page = if paged {
        ctx.page(top.map(|top| top.min(1000)), 100)
    } else {
        all.len().max(1)
    };
    let end = (start + page).min(all.len());
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let value: Vec<Value> = all[start.min(all.len())..end]
        .iter()
        .map(|git_ref| {
            let short = git_ref.name.trim_start_matches("refs/");
            let mut ref_json = json!({
                "name": git_ref.name,
                "objectId": git_ref.object_id,
                "creator": identity_json(&ctx.shared, &ctx.org),
                "url": format!("{repo_url}/refs?filter={}", enc_query(short)),
            });
            if let Some(obj) = ref_json.as_object_mut() {
                if peel {
                    if let Some(peeled) = &git_ref.peeled {
                        obj.insert("peeledObjectId".into(), json!(peeled));
                    }
                }
                if statuses {
                    obj.insert("statuses".into(), json!([]));
                }
            }
            ref_json
        })
        .collect();
    let mut resp = ado_json(
        StatusCode::OK,
        &json!({"value": value, "count": value.len()}),
    );
    if paged && end < all.len() {
        http::set_header(
            resp.headers_mut(),
            "x-ms-continuationtoken",
            &URL_SAFE_NO_PAD.encode(all[end].name.as_bytes()),
        );
    }
    Ok(resp)
}
