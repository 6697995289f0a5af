//! Trees and Blobs sections: `GET .../trees/{sha1}` and `GET .../blobs/{sha1}`, Git objects addressed by id
//! rather than by path, so they skip version resolution and answer TF401174 for an id that is not there.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{json, Value};

use super::downloads::{raw_response, zip_attachment};
use super::or_internal;
use super::repositories::repo_api_url;
use crate::devops::{bad_request, parse_bool, Ctx, HandlerResult};
use crate::git;
use crate::http::{self, ado_json, tf_error};
use crate::state::RepoState;

fn object_not_found(repo: &RepoState, id: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "TF401174: The item '{id}' could not be found in the repository '{}'.",
            repo.name
        ),
        "GitItemNotFoundException",
        http::TN_ITEM_NOT_FOUND,
    )
}

/// `GET .../trees/{sha1}` (`recursive`).
pub(super) fn trees(ctx: &Ctx, repo: &RepoState, sha: &str) -> HandlerResult {
    if or_internal(git::object_type(&repo.path, sha))?.as_deref() != Some("tree") {
        return Err(object_not_found(repo, sha));
    }
    let recursive = parse_bool("recursive", ctx.query.get("recursive"))?.unwrap_or(false);
    let entries = or_internal(git::ls_tree(&repo.path, sha, None, recursive))?;
    let tree_ids: Vec<String> = entries
        .iter()
        .filter(|entry| entry.kind == "tree")
        .map(|entry| entry.id.clone())
        .chain(std::iter::once(sha.to_string()))
        .collect();
    let sizes = or_internal(git::object_sizes(&repo.path, &tree_ids))?;
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let value: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let (kind_url, size) = match entry.kind.as_str() {
                "tree" => ("trees", sizes.get(&entry.id).copied()),
                "blob" => ("blobs", entry.size),
                _ => ("commits", None),
            };
            let mut tree_entry = json!({
                "objectId": entry.id,
                "relativePath": entry.path,
                "mode": entry.mode.trim_start_matches('0'),
                "gitObjectType": entry.kind,
                "url": format!("{repo_url}/{kind_url}/{}", entry.id),
            });
            if let (Some(obj), Some(size)) = (tree_entry.as_object_mut(), size) {
                obj.insert("size".into(), json!(size));
            }
            tree_entry
        })
        .collect();
    let url = format!("{repo_url}/trees/{sha}");
    Ok(ado_json(
        StatusCode::OK,
        &json!({
            "objectId": sha,
            "url": url,
            "size": sizes.get(sha),
            "treeEntries": value,
            "_links": {
                "self": {"href": url},
                "repository": {"href": repo_url},
                "treeEntries": {"href": format!("{url}/treeEntries")},
            },
        }),
    ))
}

/// `GET .../blobs/{sha1}` — JSON metadata, or the bytes (`Accept: application/octet-stream`,
/// `$format=octetstream|text`, `download=true`).
pub(super) fn blobs(ctx: &Ctx, repo: &RepoState, sha: &str) -> HandlerResult {
    let query = &ctx.query;
    let Some(bytes) = or_internal(git::blob(&repo.path, sha))? else {
        return Err(object_not_found(repo, sha));
    };
    let accept = ctx.accept();
    let download = parse_bool("download", query.get("download"))?.unwrap_or(false);
    let format = query.get("$format").map(str::to_ascii_lowercase);
    let raw = match format.as_deref() {
        Some("octetstream") | Some("text") => true,
        Some("json") => false,
        Some("zip") => {
            return Err(bad_request(
                "$format=zip of a single blob is not supported by the spicehub emulator; use octetstream.",
            ))
        }
        Some(other) => return Err(bad_request(&format!("The value '{other}' is not valid for $format."))),
        None => download || accept.contains("application/octet-stream") || accept.contains("text/plain"),
    };
    if raw {
        let bytes = crate::lfs::answer(query.get("resolveLfs"), bytes)?;
        let name = query.get("fileName").unwrap_or(sha).to_string();
        let octet = format.as_deref() != Some("text") && !accept.contains("text/plain");
        return Ok(raw_response(bytes, &name, sha, octet, download));
    }
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let url = format!("{repo_url}/blobs/{sha}");
    Ok(ado_json(
        StatusCode::OK,
        &json!({
            "objectId": sha,
            "size": bytes.len(),
            "url": url,
            "_links": {"self": {"href": url}, "repository": {"href": repo_url}},
        }),
    ))
}

/// `POST .../blobs` ("Get Blobs Zip"): the body is a JSON array of blob ids, the answer one zip of those blobs.
/// [INFER] Microsoft documents neither the entries' names nor a limit: each entry is named by its blob id, an id
/// asked for twice comes once, and more ids than `max_blobs_per_zip` (when configured) are refused with a 400 in
/// Azure DevOps' error shape, as it refuses other bad arguments. An unknown id is TF401174 (404), as for one blob.
pub(super) fn blobs_zip(ctx: &Ctx, repo: &RepoState) -> HandlerResult {
    let ids: Vec<String> = serde_json::from_slice(&ctx.body).map_err(|error| {
        bad_request(&format!(
            "The request body must be a JSON array of blob ids: {error}"
        ))
    })?;
    if ids.is_empty() {
        return Err(bad_request("At least one blob id is required."));
    }
    if let Some(max) = ctx.shared.settings.max_blobs_per_zip {
        if ids.len() > max {
            return Err(bad_request(&format!(
                "The request asks for {} blobs; at most {max} may be requested at once.",
                ids.len()
            )));
        }
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.to_ascii_lowercase();
        if !(id.len() == 40 && git::is_hex(&id)) {
            return Err(bad_request(&format!(
                "'{id}' is not a blob id (40 hex digits)."
            )));
        }
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    let contents = or_internal(git::blobs(&repo.path, &unique))?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (id, content) in unique.iter().zip(contents) {
        let Some(bytes) = content else {
            return Err(object_not_found(repo, id));
        };
        let written = zip
            .start_file(id.as_str(), options)
            .map_err(std::io::Error::other)
            .and_then(|()| std::io::Write::write_all(&mut zip, &bytes));
        or_internal(written.map_err(crate::EmulatorError::Io))?;
    }
    let bytes = or_internal(
        zip.finish()
            .map(std::io::Cursor::into_inner)
            .map_err(|error| crate::EmulatorError::Io(std::io::Error::other(error))),
    )?;
    Ok(zip_attachment(
        bytes,
        ctx.query.get("filename").unwrap_or("blobs"),
    ))
}
