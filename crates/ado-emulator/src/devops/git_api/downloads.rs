//! Downloads: the bytes behind items and blobs, raw (with `etag` and `content-disposition`) or as a zip archive
//! (`$format=zip`). Kept apart from the JSON sections because items and blobs answer bytes the same way.

use axum::body::Body;
use axum::http::{Response, StatusCode};

use super::items::Entry;
use super::or_internal;
use crate::devops::HandlerResult;
use crate::git;
use crate::http;
use crate::state::{enc_query, RepoState};

/// A zip of the whole tree (the root), of a folder (entries under `{folder}/`), or of one file.
pub(super) fn zip_response(repo: &RepoState, commit: &str, entry: &Entry) -> HandlerResult {
    let (treeish, prefix, pathspec, name) = if entry.path == "/" {
        (commit.to_string(), None, None, repo.name.clone())
    } else if entry.is_folder() {
        (
            format!("{commit}:{}", entry.rel()),
            Some(format!("{}/", entry.name())),
            None,
            entry.name().to_string(),
        )
    } else {
        (
            commit.to_string(),
            None,
            Some(entry.rel().to_string()),
            entry.name().to_string(),
        )
    };
    let bytes = or_internal(git::archive_zip(
        &repo.path,
        &treeish,
        prefix.as_deref(),
        pathspec.as_deref(),
    ))?;
    Ok(zip_attachment(bytes, &name))
}

/// A zip sent as a download named `{name}.zip`, as Azure DevOps names its
/// archives (the commit archive and Get Blobs Zip alike).
pub(super) fn zip_attachment(bytes: Vec<u8>, name: &str) -> Response<Body> {
    let mut response = http::response(StatusCode::OK, "application/zip", bytes);
    http::set_header(
        response.headers_mut(),
        "content-disposition",
        &format!("attachment; filename=\"{}.zip\"", name.replace('"', "")),
    );
    response
}

pub(super) fn raw_response(
    bytes: Vec<u8>,
    name: &str,
    id: &str,
    octet: bool,
    download: bool,
) -> Response<Body> {
    let is_text = !bytes.contains(&0) && std::str::from_utf8(&bytes).is_ok();
    let content_type = if is_text && !octet {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let mut response = http::response(StatusCode::OK, content_type, bytes);
    http::set_header(response.headers_mut(), "etag", &format!("\"{id}\""));
    if download {
        http::set_header(
            response.headers_mut(),
            "content-disposition",
            &format!(
                "attachment; filename=\"{}\"; filename*=utf-8''{}",
                name.replace('"', ""),
                enc_query(name)
            ),
        );
    }
    response
}
