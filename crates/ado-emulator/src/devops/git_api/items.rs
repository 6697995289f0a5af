//! Items section: `GET .../items`, files and folders addressed by path at a version. One endpoint answers JSON,
//! raw content or a zip depending on `$format` and `Accept`, so the choice of answer is made here.

use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::downloads::{raw_response, zip_response};
use super::or_internal;
use super::repositories::repo_api_url;
use super::versions::{resolve, VersionDescriptor};
use crate::devops::{bad_request, parse_bool, Ctx, HandlerResult};
use crate::git;
use crate::http::{self, ado_json, tf_error};
use crate::state::{enc_query, ProjectState, RepoState};
use crate::EmulatorError;

/// A tree entry addressed by path.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    /// `/a/b.py` (`/` for the root).
    pub(super) path: String,
    kind: String,
    id: String,
    mode: String,
}

impl Entry {
    pub(super) fn is_folder(&self) -> bool {
        self.kind == "tree"
    }
    pub(super) fn rel(&self) -> &str {
        self.path.trim_start_matches('/')
    }
    pub(super) fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

fn normalize_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|part| !part.is_empty())
        .collect();
    format!("/{}", parts.join("/"))
}

fn lookup(repo: &RepoState, commit: &str, path: &str) -> Result<Option<Entry>, EmulatorError> {
    if path == "/" {
        let tree = git::rev_parse(&repo.path, &format!("{commit}^{{tree}}"))?;
        return Ok(tree.map(|id| Entry {
            path: "/".into(),
            kind: "tree".into(),
            id,
            mode: "040000".into(),
        }));
    }
    let rel = path.trim_start_matches('/');
    Ok(git::ls_tree(&repo.path, commit, Some(rel), false)?
        .into_iter()
        .find(|tree_entry| tree_entry.path == rel)
        .map(|tree_entry| Entry {
            path: format!("/{}", tree_entry.path),
            kind: tree_entry.kind,
            id: tree_entry.id,
            mode: tree_entry.mode,
        }))
}

fn children(
    repo: &RepoState,
    commit: &str,
    of: &Entry,
    full: bool,
) -> Result<Vec<Entry>, EmulatorError> {
    if !of.is_folder() {
        return Ok(Vec::new());
    }
    let spec = if of.path == "/" {
        None
    } else {
        Some(format!("{}/", of.rel()))
    };
    Ok(git::ls_tree(&repo.path, commit, spec.as_deref(), full)?
        .into_iter()
        .map(|tree_entry| Entry {
            path: format!("/{}", tree_entry.path),
            kind: tree_entry.kind,
            id: tree_entry.id,
            mode: tree_entry.mode,
        })
        .collect())
}

fn content_type_for(name: &str) -> (&'static str, bool, bool) {
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => ("image/png", true, true),
        "jpg" | "jpeg" => ("image/jpeg", true, true),
        "gif" => ("image/gif", true, true),
        "ico" => ("image/x-icon", true, true),
        "zip" | "gz" | "tgz" | "whl" | "pyc" | "so" | "dll" | "exe" | "bin" | "pdf" => {
            ("application/octet-stream", true, false)
        }
        "json" => ("application/json", false, false),
        "xml" => ("text/xml", false, false),
        "html" | "htm" => ("text/html", false, false),
        "svg" => ("image/svg+xml", false, true),
        _ => ("text/plain", false, false),
    }
}

fn content_metadata(entry: &Entry) -> Value {
    let name = if entry.path == "/" { "" } else { entry.name() };
    if entry.is_folder() {
        return json!({"fileName": name});
    }
    let (content_type, binary, image) = content_type_for(name);
    let mut metadata = json!({"encoding": 65001, "contentType": content_type, "fileName": name});
    if let Some(obj) = metadata.as_object_mut() {
        if let Some((_, ext)) = name.rsplit_once('.') {
            obj.insert("extension".into(), json!(format!(".{ext}")));
        }
        if binary {
            obj.insert("isBinary".into(), json!(true));
        }
        if image {
            obj.insert("isImage".into(), json!(true));
        }
    }
    metadata
}

fn item_json(
    repo_url: &str,
    commit: &str,
    vtype: &str,
    version: &str,
    entry: &Entry,
    meta: bool,
) -> Value {
    let mut item = Map::new();
    item.insert("objectId".into(), json!(entry.id));
    item.insert("gitObjectType".into(), json!(entry.kind));
    item.insert("commitId".into(), json!(commit));
    item.insert("path".into(), json!(entry.path));
    if entry.is_folder() {
        item.insert("isFolder".into(), json!(true));
    }
    if entry.mode == "120000" {
        item.insert("isSymLink".into(), json!(true));
    }
    if meta {
        item.insert("contentMetadata".into(), content_metadata(entry));
    }
    item.insert(
        "url".into(),
        json!(format!(
            "{repo_url}/items?path={}&versionType={vtype}&version={}&versionOptions=None",
            enc_query(&entry.path),
            enc_query(version)
        )),
    );
    Value::Object(item)
}

enum Want {
    Json,
    Raw,
    Zip,
}

/// `GET .../items` — one item (`path`: raw content by default, JSON with `Accept: application/json` or
/// `$format=json`), a folder listing (`scopePath` + `recursionLevel`), or a zip (`$format=zip` or
/// `Accept: application/zip`).
pub(super) fn items(
    ctx: &Ctx,
    project: &ProjectState,
    repo: &RepoState,
    tail_path: Option<String>,
) -> HandlerResult {
    let _ = project;
    let query = &ctx.query;
    let path_param = tail_path.or_else(|| query.get("path").map(str::to_string));
    let is_get = path_param.is_some();
    let target = normalize_path(
        path_param
            .as_deref()
            .or(query.get("scopePath"))
            .unwrap_or("/"),
    );
    let traversal = target
        .split('/')
        .any(|segment| segment == ".." || segment == ".");
    let recursion = query
        .get("recursionLevel")
        .unwrap_or("none")
        .to_ascii_lowercase();
    let (list_children, full) = match recursion.as_str() {
        "none" => (false, false),
        "onelevel" | "onelevelplusnestedemptyfolders" => (true, false),
        "full" => (true, true),
        other => {
            return Err(bad_request(&format!(
                "The value '{other}' is not valid for recursionLevel."
            )))
        }
    };
    let meta = parse_bool(
        "includeContentMetadata",
        query.get("includeContentMetadata"),
    )?
    .unwrap_or(false);
    let include_content =
        parse_bool("includeContent", query.get("includeContent"))?.unwrap_or(false);
    let download = parse_bool("download", query.get("download"))?.unwrap_or(false);
    let descriptor = VersionDescriptor::from_query(
        ctx,
        &["versionDescriptor.version", "version"],
        &["versionDescriptor.versionType", "versionType"],
        &["versionDescriptor.versionOptions", "versionOptions"],
    );
    let (commit, label, version) = resolve(repo, &descriptor)?;
    let found = if traversal {
        None
    } else {
        or_internal(lookup(repo, &commit, &target))?
    };
    let Some(entry) = found else {
        return Err(tf_error(
            StatusCode::NOT_FOUND,
            &format!(
                "TF401174: The item '{target}' could not be found in the repository '{}' at the version specified by '{label}' (resolved to commit '{commit}').",
                repo.name
            ),
            "GitItemNotFoundException",
            http::TN_ITEM_NOT_FOUND,
        ));
    };
    let accept = ctx.accept();
    let format = query.get("$format").map(str::to_ascii_lowercase);
    let want = match format.as_deref() {
        Some("zip") => Want::Zip,
        Some("json") => Want::Json,
        Some("octetstream") | Some("text") => Want::Raw,
        Some(other) => {
            return Err(bad_request(&format!(
                "The value '{other}' is not valid for $format."
            )))
        }
        None if accept.contains("application/zip") => Want::Zip,
        None if download => Want::Raw,
        None if accept.contains("application/json") => Want::Json,
        None if accept.contains("application/octet-stream") || accept.contains("text/plain") => {
            Want::Raw
        }
        // [INFER] Items - Get of a file with `Accept: */*` answers the raw content; a listing answers JSON.
        None if is_get && !entry.is_folder() => Want::Raw,
        None => Want::Json,
    };
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    match want {
        Want::Zip => zip_response(repo, &commit, &entry),
        Want::Raw if entry.is_folder() => zip_response(repo, &commit, &entry),
        Want::Raw => {
            let bytes = or_internal(git::blob(&repo.path, &entry.id))?.unwrap_or_default();
            let bytes = crate::lfs::answer(query.get("resolveLfs"), bytes)?;
            let octet = format.as_deref() == Some("octetstream")
                || accept.contains("application/octet-stream");
            Ok(raw_response(
                bytes,
                entry.name(),
                &entry.id,
                octet,
                download,
            ))
        }
        Want::Json if is_get => {
            let mut item = item_json(
                &repo_url,
                &commit,
                descriptor.type_label(),
                &version,
                &entry,
                meta,
            );
            if include_content && !entry.is_folder() {
                let bytes = or_internal(git::blob(&repo.path, &entry.id))?.unwrap_or_default();
                let text = (!bytes.contains(&0))
                    .then(|| std::str::from_utf8(&bytes).ok())
                    .flatten();
                if let Some(obj) = item.as_object_mut() {
                    match text {
                        Some(text) => {
                            obj.insert("content".into(), json!(text));
                        }
                        None => {
                            obj.insert("content".into(), json!(STANDARD.encode(&bytes)));
                            obj.insert(
                                "contentMetadata".into(),
                                json!({"isBinary": true, "encoding": -1}),
                            );
                        }
                    }
                }
            }
            Ok(ado_json(StatusCode::OK, &item))
        }
        Want::Json => {
            let mut all = vec![entry.clone()];
            if list_children {
                all.extend(or_internal(children(repo, &commit, &entry, full))?);
            }
            let value: Vec<Value> = all
                .iter()
                .map(|listed| {
                    item_json(
                        &repo_url,
                        &commit,
                        descriptor.type_label(),
                        &version,
                        listed,
                        meta,
                    )
                })
                .collect();
            Ok(ado_json(
                StatusCode::OK,
                &json!({"count": value.len(), "value": value}),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize_path("a//b/"), "/a/b");
        assert_eq!(normalize_path(""), "/");
    }
}
