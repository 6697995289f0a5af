//! Git area: repositories, refs, items (file / folder / zip), trees, blobs, commits, pushes, diffs. All Git work
//! runs on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::devops::core::project_ref_json;
use crate::devops::{
    bad_request, can_read, parse_bool, parse_usize, repo_not_found, route_not_found_pub, Ctx, R,
};
use crate::git::{self, CommitInfo, DiffEntry, ZERO_ID};
use crate::http::{self, ado_json, ado_time, git_time, tf_error};
use crate::state::{enc_query, enc_segment, OrgState, ProjectState, PushRecord, RepoState, Shared};
use crate::EmulatorError;

fn internal(e: EmulatorError) -> Response<Body> {
    tracing::warn!(error = %e, "git failure");
    tf_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("VS402371: An unexpected error occurred: {e}"),
        "Exception",
        http::TN_INTERNAL,
    )
}

fn g<T>(r: Result<T, EmulatorError>) -> Result<T, Response<Body>> {
    r.map_err(internal)
}

pub(crate) fn repo_api_url(shared: &Shared, org: &OrgState, repo: &RepoState) -> String {
    format!(
        "{}/{}/_apis/git/repositories/{}",
        shared.org_url(org),
        repo.project_id,
        repo.id
    )
}

pub(crate) fn repo_web_url(shared: &Shared, org: &OrgState, repo: &RepoState) -> String {
    format!(
        "{}/{}/_git/{}",
        shared.org_url(org),
        enc_segment(&repo.project_name),
        enc_segment(&repo.name)
    )
}

/// `GitRepository`
pub(crate) fn repo_json(
    shared: &Shared,
    org: &OrgState,
    p: &ProjectState,
    r: &RepoState,
    links: bool,
) -> Value {
    let url = repo_api_url(shared, org, r);
    let web = repo_web_url(shared, org, r);
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "url": url,
        "project": project_ref_json(shared, org, p),
        "size": r.size(),
        "remoteUrl": web,
        "sshUrl": format!("git@ssh.dev.azure.com:v3/{}/{}/{}", enc_segment(&org.name), enc_segment(&p.name), enc_segment(&r.name)),
        "webUrl": web,
        "isDisabled": r.disabled,
        "isInMaintenance": false,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(b) = r.default_branch() {
            obj.insert("defaultBranch".into(), json!(b));
        }
        if links {
            obj.insert(
                "_links".into(),
                json!({
                    "self": {"href": url},
                    "project": {"href": format!("vstfs:///Classification/TeamProject/{}", p.id)},
                    "web": {"href": web},
                    "ssh": {"href": format!("git@ssh.dev.azure.com:v3/{}/{}/{}", enc_segment(&org.name), enc_segment(&p.name), enc_segment(&r.name))},
                    "commits": {"href": format!("{url}/commits")},
                    "refs": {"href": format!("{url}/refs")},
                    "pullRequests": {"href": format!("{url}/pullRequests")},
                    "items": {"href": format!("{url}/items")},
                    "pushes": {"href": format!("{url}/pushes")},
                }),
            );
        }
    }
    v
}

/// `GET {org}/[{project}/]_apis/git/repositories` — repositories the caller may read (none for a Stakeholder).
pub(crate) fn list_repositories(ctx: &Ctx, project: Option<&ProjectState>) -> R {
    let mut value = Vec::new();
    let projects: Vec<&ProjectState> = match project {
        Some(p) => vec![p],
        None => ctx.org.projects.iter().collect(),
    };
    for p in projects {
        let mut repos: Vec<&Arc<RepoState>> = p
            .repos
            .iter()
            .filter(|r| can_read(&ctx.principal, r))
            .collect();
        repos.sort_by_key(|r| r.name.to_lowercase());
        for r in repos {
            value.push(repo_json(&ctx.shared, &ctx.org, p, r, false));
        }
    }
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

/// Routes `.../repositories/{repositoryId}/...`.
pub(crate) async fn repo_route(
    ctx: &Ctx,
    project: &ProjectState,
    repo: &Arc<RepoState>,
    method: &Method,
    tail_lower: &[&str],
    tail: &[String],
    raw_tail: &[&str],
) -> R {
    if tail_lower.is_empty() {
        if *method == Method::GET {
            return Ok(ado_json(
                StatusCode::OK,
                &repo_json(&ctx.shared, &ctx.org, project, repo, true),
            ));
        }
        return Err(route_not_found_pub(method, "repository"));
    }
    if repo.disabled {
        // [INFER] a disabled repository refuses Git reads with TF401019.
        return Err(repo_not_found(&repo.name));
    }
    let ctx = ctx.clone();
    let repo = repo.clone();
    let method = method.clone();
    let lower: Vec<String> = tail_lower.iter().map(|s| s.to_string()).collect();
    let tail: Vec<String> = tail.to_vec();
    let item_tail: Option<String> =
        if lower.first().map(String::as_str) == Some("items") && raw_tail.len() > 1 {
            Some(
                raw_tail[1..]
                    .iter()
                    .map(|s| crate::faults::percent_decode(s))
                    .collect::<Vec<_>>()
                    .join("/"),
            )
        } else {
            None
        };
    let project_id = project.id.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let Some(project) = ctx.org.projects.iter().find(|p| p.id == project_id) else {
            return Err(repo_not_found(&repo.name));
        };
        let l: Vec<&str> = lower.iter().map(String::as_str).collect();
        match (&method, l.as_slice()) {
            (&Method::GET, ["refs", ..]) => refs(&ctx, &repo, &tail[1..]),
            (&Method::GET, ["items", ..]) => items(&ctx, project, &repo, item_tail),
            (&Method::GET, ["trees", _]) => trees(&ctx, &repo, &tail[1]),
            (&Method::GET, ["blobs", _]) => blobs(&ctx, &repo, &tail[1]),
            (&Method::GET, ["commits"]) => commits_list(&ctx, &repo),
            (&Method::GET, ["commits", _]) => commit_get(&ctx, &repo, &tail[1]),
            (&Method::GET, ["commits", _, "changes"]) => commit_changes(&ctx, &repo, &tail[1]),
            (&Method::POST, ["commitsbatch"]) => commits_batch(&ctx, &repo),
            (&Method::GET, ["pushes"]) => pushes_list(&ctx, project, &repo),
            (&Method::GET, ["pushes", _]) => push_get(&ctx, project, &repo, &tail[1]),
            (&Method::GET, ["pushes", _, "commits"]) => push_commits(&ctx, &repo, &tail[1]),
            (&Method::GET, ["diffs", "commits"]) => diffs(&ctx, &repo),
            _ => Err(route_not_found_pub(&method, &l.join("/"))),
        }
    })
    .await;
    match joined {
        Ok(r) => r,
        Err(e) => Err(internal(EmulatorError::from(e))),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Versions

/// A version descriptor (`version`, `versionType`, `versionOptions`).
#[derive(Clone, Debug)]
struct Vd {
    version: Option<String>,
    vtype: String,
    options: Option<String>,
}

impl Vd {
    fn from_query(ctx: &Ctx, version: &[&str], vtype: &[&str], options: &[&str]) -> Vd {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| ctx.query.get(n))
                .map(str::to_string)
        };
        Vd {
            version: first(version),
            vtype: first(vtype)
                .unwrap_or_else(|| "branch".into())
                .to_ascii_lowercase(),
            options: first(options).map(|s| s.to_ascii_lowercase()),
        }
    }
    fn type_label(&self) -> &'static str {
        match self.vtype.as_str() {
            "commit" => "Commit",
            "tag" => "Tag",
            _ => "Branch",
        }
    }
}

fn no_branches(repo: &RepoState) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "VS403403: Cannot find any branches for the {} repository.",
            repo.name
        ),
        "GitItemNotFoundException",
        http::TN_ITEM_NOT_FOUND,
    )
}

/// Resolves a version descriptor to `(commit id, "<Branch: main >" label, version shown in urls)`.
fn resolve(repo: &RepoState, vd: &Vd) -> Result<(String, String, String), Response<Body>> {
    let dir = &repo.path;
    let version = match &vd.version {
        Some(v) => v.clone(),
        None => match repo.default_branch() {
            Some(b) if vd.vtype == "branch" => b.trim_start_matches("refs/heads/").to_string(),
            Some(_) | None if vd.vtype != "branch" => {
                return Err(bad_request(
                    "A version must be specified for this version type.",
                ))
            }
            _ => return Err(no_branches(repo)),
        },
    };
    let label = format!("<{}: {} >", vd.type_label(), version);
    let unresolvable = || {
        tf_error(
            StatusCode::NOT_FOUND,
            &format!(
                "TF401175:The version descriptor {label} could not be resolved to a version in the repository {}",
                repo.name
            ),
            "GitUnresolvableToCommitException",
            http::TN_UNRESOLVABLE,
        )
    };
    let rev = match vd.vtype.as_str() {
        "branch" => format!("refs/heads/{}", version.trim_start_matches("refs/heads/")),
        "tag" => format!("refs/tags/{}", version.trim_start_matches("refs/tags/")),
        "commit" => {
            if !git::is_hex(&version) || version.len() < 4 {
                return Err(unresolvable());
            }
            version.clone()
        }
        other => {
            return Err(bad_request(&format!(
                "The value '{other}' is not valid for versionType."
            )))
        }
    };
    let commit = g(git::rev_parse(dir, &format!("{rev}^{{commit}}")))?.ok_or_else(unresolvable)?;
    let commit = match vd.options.as_deref() {
        Some("previouschange") => {
            let info = g(git::commit(dir, &commit))?.ok_or_else(unresolvable)?;
            info.parents.first().cloned().ok_or_else(unresolvable)?
        }
        _ => commit,
    };
    Ok((commit, label, version))
}

// ---------------------------------------------------------------------------------------------------------------
// Refs

fn identity_json(shared: &Shared, org: &OrgState) -> Value {
    let p = &org.pusher;
    let org_url = shared.org_url(org);
    json!({
        "displayName": p.display_name,
        "url": format!("{org_url}/_apis/Identities/{}", p.id),
        "_links": {"avatar": {"href": format!("{org_url}/_apis/GraphProfile/MemberAvatars/aad.{}", p.id)}},
        "id": p.id,
        "uniqueName": p.unique_name,
        "imageUrl": format!("{org_url}/_api/_common/identityImage?id={}", p.id),
        "descriptor": format!("aad.{}", p.id),
    })
}

/// `GET .../refs` — `filter` (prefix after `refs/`), `filterContains`, `peelTags`, `includeStatuses`, `$top` +
/// `continuationToken` (header `x-ms-continuationtoken`).
fn refs(ctx: &Ctx, repo: &RepoState, path_filter: &[String]) -> R {
    let q = &ctx.query;
    let filter = if path_filter.is_empty() {
        q.get("filter").map(str::to_string)
    } else {
        Some(path_filter.join("/"))
    };
    let contains = q.get("filterContains").map(str::to_lowercase);
    let peel = parse_bool("peelTags", q.get("peelTags"))?.unwrap_or(false);
    let statuses = parse_bool("includeStatuses", q.get("includeStatuses"))?.unwrap_or(false);
    let top = parse_usize("$top", q.get("$top"))?;
    let token = q.get("continuationToken");
    let mut all: Vec<git::GitRef> = g(git::refs(&repo.path))?;
    if let Some(f) = &filter {
        let prefix = format!("refs/{}", f.trim_start_matches("refs/"));
        all.retain(|r| r.name.starts_with(&prefix));
    }
    if let Some(c) = &contains {
        all.retain(|r| r.name.to_lowercase().contains(c));
    }
    let start = match token {
        Some(t) => {
            let name = URL_SAFE_NO_PAD
                .decode(t.trim_end_matches('='))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    bad_request(&format!("The continuation token '{t}' is not valid."))
                })?;
            all.iter().position(|r| r.name >= name).unwrap_or(all.len())
        }
        None => 0,
    };
    let paged = top.is_some() || token.is_some() || ctx.page_size.is_some();
    let page = if paged {
        ctx.page(top.map(|t| t.min(1000)), 100)
    } else {
        all.len().max(1)
    };
    let end = (start + page).min(all.len());
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let value: Vec<Value> = all[start.min(all.len())..end]
        .iter()
        .map(|r| {
            let short = r.name.trim_start_matches("refs/");
            let mut v = json!({
                "name": r.name,
                "objectId": r.object_id,
                "creator": identity_json(&ctx.shared, &ctx.org),
                "url": format!("{repo_url}/refs?filter={}", enc_query(short)),
            });
            if let Some(obj) = v.as_object_mut() {
                if peel {
                    if let Some(p) = &r.peeled {
                        obj.insert("peeledObjectId".into(), json!(p));
                    }
                }
                if statuses {
                    obj.insert("statuses".into(), json!([]));
                }
            }
            v
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

// ---------------------------------------------------------------------------------------------------------------
// Items

/// A tree entry addressed by path.
#[derive(Clone, Debug)]
struct Entry {
    /// `/a/b.py` (`/` for the root).
    path: String,
    kind: String,
    id: String,
    mode: String,
}

impl Entry {
    fn is_folder(&self) -> bool {
        self.kind == "tree"
    }
    fn rel(&self) -> &str {
        self.path.trim_start_matches('/')
    }
    fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

fn normalize_path(p: &str) -> String {
    let parts: Vec<&str> = p.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
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
        .find(|e| e.path == rel)
        .map(|e| Entry {
            path: format!("/{}", e.path),
            kind: e.kind,
            id: e.id,
            mode: e.mode,
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
        .map(|e| Entry {
            path: format!("/{}", e.path),
            kind: e.kind,
            id: e.id,
            mode: e.mode,
        })
        .collect())
}

fn content_type_for(name: &str) -> (&'static str, bool, bool) {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
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

fn content_metadata(e: &Entry) -> Value {
    let name = if e.path == "/" { "" } else { e.name() };
    if e.is_folder() {
        return json!({"fileName": name});
    }
    let (ct, binary, image) = content_type_for(name);
    let mut m = json!({"encoding": 65001, "contentType": ct, "fileName": name});
    if let Some(obj) = m.as_object_mut() {
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
    m
}

fn item_json(
    repo_url: &str,
    commit: &str,
    vtype: &str,
    version: &str,
    e: &Entry,
    meta: bool,
) -> Value {
    let mut v = Map::new();
    v.insert("objectId".into(), json!(e.id));
    v.insert("gitObjectType".into(), json!(e.kind));
    v.insert("commitId".into(), json!(commit));
    v.insert("path".into(), json!(e.path));
    if e.is_folder() {
        v.insert("isFolder".into(), json!(true));
    }
    if e.mode == "120000" {
        v.insert("isSymLink".into(), json!(true));
    }
    if meta {
        v.insert("contentMetadata".into(), content_metadata(e));
    }
    v.insert(
        "url".into(),
        json!(format!(
            "{repo_url}/items?path={}&versionType={vtype}&version={}&versionOptions=None",
            enc_query(&e.path),
            enc_query(version)
        )),
    );
    Value::Object(v)
}

enum Want {
    Json,
    Raw,
    Zip,
}

fn zip_response(repo: &RepoState, commit: &str, e: &Entry) -> R {
    let (treeish, prefix, pathspec, name) = if e.path == "/" {
        (commit.to_string(), None, None, repo.name.clone())
    } else if e.is_folder() {
        (
            format!("{commit}:{}", e.rel()),
            Some(format!("{}/", e.name())),
            None,
            e.name().to_string(),
        )
    } else {
        (
            commit.to_string(),
            None,
            Some(e.rel().to_string()),
            e.name().to_string(),
        )
    };
    let bytes = g(git::archive_zip(
        &repo.path,
        &treeish,
        prefix.as_deref(),
        pathspec.as_deref(),
    ))?;
    let mut r = http::response(StatusCode::OK, "application/zip", bytes);
    http::set_header(
        r.headers_mut(),
        "content-disposition",
        &format!("attachment; filename=\"{}.zip\"", name.replace('"', "")),
    );
    Ok(r)
}

fn raw_response(
    bytes: Vec<u8>,
    name: &str,
    id: &str,
    octet: bool,
    download: bool,
) -> Response<Body> {
    let is_text = !bytes.contains(&0) && std::str::from_utf8(&bytes).is_ok();
    let ct = if is_text && !octet {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let mut r = http::response(StatusCode::OK, ct, bytes);
    http::set_header(r.headers_mut(), "etag", &format!("\"{id}\""));
    if download {
        http::set_header(
            r.headers_mut(),
            "content-disposition",
            &format!(
                "attachment; filename=\"{}\"; filename*=utf-8''{}",
                name.replace('"', ""),
                enc_query(name)
            ),
        );
    }
    r
}

/// `GET .../items` — one item (`path`: raw content by default, JSON with `Accept: application/json` or
/// `$format=json`), a folder listing (`scopePath` + `recursionLevel`), or a zip (`$format=zip` or
/// `Accept: application/zip`).
fn items(ctx: &Ctx, project: &ProjectState, repo: &RepoState, tail_path: Option<String>) -> R {
    let _ = project;
    let q = &ctx.query;
    let path_param = tail_path.or_else(|| q.get("path").map(str::to_string));
    let is_get = path_param.is_some();
    let target = normalize_path(path_param.as_deref().or(q.get("scopePath")).unwrap_or("/"));
    let traversal = target.split('/').any(|s| s == ".." || s == ".");
    let recursion = q
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
    let meta =
        parse_bool("includeContentMetadata", q.get("includeContentMetadata"))?.unwrap_or(false);
    let include_content = parse_bool("includeContent", q.get("includeContent"))?.unwrap_or(false);
    let download = parse_bool("download", q.get("download"))?.unwrap_or(false);
    let vd = Vd::from_query(
        ctx,
        &["versionDescriptor.version", "version"],
        &["versionDescriptor.versionType", "versionType"],
        &["versionDescriptor.versionOptions", "versionOptions"],
    );
    let (commit, label, version) = resolve(repo, &vd)?;
    let found = if traversal {
        None
    } else {
        g(lookup(repo, &commit, &target))?
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
    let format = q.get("$format").map(str::to_ascii_lowercase);
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
            let bytes = g(git::blob(&repo.path, &entry.id))?.unwrap_or_default();
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
            let mut v = item_json(&repo_url, &commit, vd.type_label(), &version, &entry, meta);
            if include_content && !entry.is_folder() {
                let bytes = g(git::blob(&repo.path, &entry.id))?.unwrap_or_default();
                let text = (!bytes.contains(&0))
                    .then(|| std::str::from_utf8(&bytes).ok())
                    .flatten();
                if let Some(obj) = v.as_object_mut() {
                    match text {
                        Some(t) => {
                            obj.insert("content".into(), json!(t));
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
            Ok(ado_json(StatusCode::OK, &v))
        }
        Want::Json => {
            let mut all = vec![entry.clone()];
            if list_children {
                all.extend(g(children(repo, &commit, &entry, full))?);
            }
            let value: Vec<Value> = all
                .iter()
                .map(|e| item_json(&repo_url, &commit, vd.type_label(), &version, e, meta))
                .collect();
            Ok(ado_json(
                StatusCode::OK,
                &json!({"count": value.len(), "value": value}),
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Trees and blobs

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
fn trees(ctx: &Ctx, repo: &RepoState, sha: &str) -> R {
    if g(git::object_type(&repo.path, sha))?.as_deref() != Some("tree") {
        return Err(object_not_found(repo, sha));
    }
    let recursive = parse_bool("recursive", ctx.query.get("recursive"))?.unwrap_or(false);
    let entries = g(git::ls_tree(&repo.path, sha, None, recursive))?;
    let tree_ids: Vec<String> = entries
        .iter()
        .filter(|e| e.kind == "tree")
        .map(|e| e.id.clone())
        .chain(std::iter::once(sha.to_string()))
        .collect();
    let sizes = g(git::object_sizes(&repo.path, &tree_ids))?;
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let value: Vec<Value> = entries
        .iter()
        .map(|e| {
            let (kind_url, size) = match e.kind.as_str() {
                "tree" => ("trees", sizes.get(&e.id).copied()),
                "blob" => ("blobs", e.size),
                _ => ("commits", None),
            };
            let mut v = json!({
                "objectId": e.id,
                "relativePath": e.path,
                "mode": e.mode.trim_start_matches('0'),
                "gitObjectType": e.kind,
                "url": format!("{repo_url}/{kind_url}/{}", e.id),
            });
            if let (Some(obj), Some(s)) = (v.as_object_mut(), size) {
                obj.insert("size".into(), json!(s));
            }
            v
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
fn blobs(ctx: &Ctx, repo: &RepoState, sha: &str) -> R {
    let q = &ctx.query;
    let Some(bytes) = g(git::blob(&repo.path, sha))? else {
        return Err(object_not_found(repo, sha));
    };
    let accept = ctx.accept();
    let download = parse_bool("download", q.get("download"))?.unwrap_or(false);
    let format = q.get("$format").map(str::to_ascii_lowercase);
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
        let name = q.get("fileName").unwrap_or(sha).to_string();
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

// ---------------------------------------------------------------------------------------------------------------
// Changes (shared by commits and diffs)

fn change_type(e: &DiffEntry) -> &'static str {
    match e.status {
        'A' | 'C' => "add",
        'D' => "delete",
        'R' if e.similarity >= 100 => "rename",
        'R' => "edit, rename",
        _ => "edit",
    }
}

fn count_key(change_type: &str) -> String {
    change_type
        .split(", ")
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn change_counts(entries: &[DiffEntry]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in entries {
        *m.entry(count_key(change_type(e))).or_insert(0) += 1;
    }
    m
}

fn change_json(repo_url: &str, commit: &str, e: &DiffEntry, with_commit: bool) -> Value {
    let path = format!("/{}", e.path);
    let deleted = e.status == 'D';
    let mut item = Map::new();
    let object_id = if deleted { &e.old_id } else { &e.new_id };
    item.insert("objectId".into(), json!(object_id));
    if e.status != 'A' && e.old_id != ZERO_ID {
        item.insert("originalObjectId".into(), json!(e.old_id));
    }
    item.insert(
        "gitObjectType".into(),
        json!(if e.is_tree() {
            "tree"
        } else if e.new_mode == "160000" {
            "commit"
        } else {
            "blob"
        }),
    );
    if with_commit {
        item.insert("commitId".into(), json!(commit));
    }
    item.insert("path".into(), json!(path));
    if e.is_tree() {
        item.insert("isFolder".into(), json!(true));
    }
    item.insert(
        "url".into(),
        json!(format!(
            "{repo_url}/items{}?versionType=Commit&version={commit}",
            enc_path(&path)
        )),
    );
    let mut v = Map::new();
    v.insert("item".into(), Value::Object(item));
    v.insert("changeType".into(), json!(change_type(e)));
    if let Some(old) = &e.old_path {
        v.insert("sourceServerItem".into(), json!(format!("/{old}")));
        v.insert("originalPath".into(), json!(format!("/{old}")));
    }
    Value::Object(v)
}

fn enc_path(p: &str) -> String {
    p.split('/').map(enc_segment).collect::<Vec<_>>().join("/")
}

/// Changes of a commit against its first parent (or the empty tree).
fn commit_diff(repo: &RepoState, info: &CommitInfo) -> Result<Vec<DiffEntry>, EmulatorError> {
    git::diff_tree(
        &repo.path,
        info.parents.first().map(String::as_str),
        &info.id,
    )
}

fn cached_counts(
    repo: &RepoState,
    info: &CommitInfo,
) -> Result<BTreeMap<String, u64>, EmulatorError> {
    if let Some(c) = repo.change_count_cache.lock().get(&info.id) {
        return Ok(c.clone());
    }
    let mut counts = change_counts(&commit_diff(repo, info)?);
    for k in ["Add", "Edit", "Delete"] {
        counts.entry(k.to_string()).or_insert(0);
    }
    repo.change_count_cache
        .lock()
        .insert(info.id.clone(), counts.clone());
    Ok(counts)
}

// ---------------------------------------------------------------------------------------------------------------
// Commits

fn person_json(p: &git::Person) -> Value {
    json!({"name": p.name, "email": p.email, "date": git_time(p.time)})
}

/// `GitCommitRef` as listed (comment truncated to its first line / 100 characters).
fn commit_ref_json(
    ctx: &Ctx,
    repo: &RepoState,
    c: &CommitInfo,
    counts: bool,
) -> Result<Value, EmulatorError> {
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let web = repo_web_url(&ctx.shared, &ctx.org, repo);
    let full = c.message.trim_end();
    let first = full.lines().next().unwrap_or("");
    let truncated = first.chars().count() > 100 || full.len() > first.len();
    let comment: String = first.chars().take(100).collect();
    let mut v = Map::new();
    v.insert("commitId".into(), json!(c.id));
    v.insert("author".into(), person_json(&c.author));
    v.insert("committer".into(), person_json(&c.committer));
    v.insert("comment".into(), json!(comment));
    if truncated {
        v.insert("commentTruncated".into(), json!(true));
    }
    if counts {
        v.insert("changeCounts".into(), json!(cached_counts(repo, c)?));
    }
    v.insert("url".into(), json!(format!("{repo_url}/commits/{}", c.id)));
    v.insert("remoteUrl".into(), json!(format!("{web}/commit/{}", c.id)));
    Ok(Value::Object(v))
}

fn push_of(repo: &RepoState, commit: &str) -> Option<PushRecord> {
    repo.pushes
        .lock()
        .iter()
        .find(|p| p.commits.iter().any(|c| c == commit))
        .cloned()
}

/// Dates as ADO accepts them: RFC 3339, `2014-01-15`, `2014-02-01T14:00`, or `6/14/2018 12:00:00 AM`.
fn parse_date(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    if s.contains('/') {
        // M/D/YYYY [h:mm[:ss] [AM|PM]] (UTC)
        let mut parts = s.split_whitespace();
        let date: Vec<i64> = parts
            .next()?
            .split('/')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let (month, day, year) = (*date.first()?, *date.get(1)?, *date.get(2)?);
        let mut hms = [0i64; 3];
        if let Some(t) = parts.next() {
            for (i, v) in t.split(':').enumerate().take(3) {
                hms[i] = v.parse().ok()?;
            }
        }
        match parts.next().map(str::to_ascii_uppercase).as_deref() {
            Some("PM") if hms[0] < 12 => hms[0] += 12,
            Some("AM") if hms[0] == 12 => hms[0] = 0,
            _ => {}
        }
        let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
        let d = time::Date::from_calendar_date(
            i32::try_from(year).ok()?,
            month,
            u8::try_from(day).ok()?,
        )
        .ok()?;
        let h = |i: usize| u8::try_from(hms[i]).ok();
        let t = time::Time::from_hms(h(0)?, h(1)?, h(2)?).ok()?;
        return Some(
            time::PrimitiveDateTime::new(d, t)
                .assume_utc()
                .unix_timestamp(),
        );
    }
    let with_time = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else if s.len() == 16 {
        format!("{s}:00Z")
    } else if s.len() == 19 {
        format!("{s}Z")
    } else {
        s.to_string()
    };
    OffsetDateTime::parse(&with_time, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// `GET .../commits` — `searchCriteria.*` (prefix optional): `itemVersion`, `compareVersion`, `fromCommitId`,
/// `toCommitId`, `ids`, `author`, `fromDate`, `toDate`, `itemPath`, `showOldestCommitsFirst`, `$top` (100),
/// `$skip`; or `pushId` with `top`/`skip`.
fn commits_list(ctx: &Ctx, repo: &RepoState) -> R {
    let q = &ctx.query;
    if let Some(push_id) = q.get("pushId") {
        return push_commits(ctx, repo, push_id);
    }
    let dir = &repo.path;
    let top = parse_usize("$top", q.sc("$top").or(q.get("top")))?;
    let skip = parse_usize("$skip", q.sc("$skip").or(q.get("skip")))?.unwrap_or(0);
    let ids: Vec<String> = q
        .all("searchCriteria.ids")
        .into_iter()
        .chain(q.all("ids"))
        .flat_map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    let mut infos: Vec<CommitInfo> = if !ids.is_empty() {
        g(git::commits(dir, &ids))?
    } else {
        if repo.default_branch().is_none()
            && q.sc("itemVersion.version").is_none()
            && q.sc("toCommitId").is_none()
        {
            return Ok(ado_json(StatusCode::OK, &json!({"count": 0, "value": []})));
        }
        let item = Vd {
            version: q.sc("itemVersion.version").map(str::to_string),
            vtype: q
                .sc("itemVersion.versionType")
                .unwrap_or("branch")
                .to_ascii_lowercase(),
            options: q
                .sc("itemVersion.versionOptions")
                .map(str::to_ascii_lowercase),
        };
        let mut include = Vec::new();
        match q.sc("toCommitId") {
            Some(to) => include.push(
                resolve(
                    repo,
                    &Vd {
                        version: Some(to.to_string()),
                        vtype: "commit".into(),
                        options: None,
                    },
                )?
                .0,
            ),
            None => include.push(resolve(repo, &item)?.0),
        }
        let mut exclude = Vec::new();
        if let Some(cv) = q.sc("compareVersion.version") {
            let compare = Vd {
                version: Some(cv.to_string()),
                vtype: q
                    .sc("compareVersion.versionType")
                    .unwrap_or("branch")
                    .to_ascii_lowercase(),
                options: q
                    .sc("compareVersion.versionOptions")
                    .map(str::to_ascii_lowercase),
            };
            exclude.push(resolve(repo, &compare)?.0);
        }
        if let Some(from) = q.sc("fromCommitId") {
            let (from, _, _) = resolve(
                repo,
                &Vd {
                    version: Some(from.to_string()),
                    vtype: "commit".into(),
                    options: None,
                },
            )?;
            // [INFER] fromCommitId is inclusive: exclude what precedes it.
            if let Some(info) = g(git::commit(dir, &from))? {
                exclude.extend(info.parents);
            }
        }
        let filter = git::LogFilter {
            include,
            exclude,
            author: q.sc("author").map(str::to_string),
            committer: q.sc("user").map(str::to_string),
            since: q.sc("fromDate").and_then(parse_date),
            until: q.sc("toDate").and_then(parse_date),
            path: q
                .sc("itemPath")
                .map(|p| p.trim_start_matches('/').to_string())
                .filter(|p| !p.is_empty()),
        };
        g(git::log(dir, &filter))?
    };
    if parse_bool("showOldestCommitsFirst", q.sc("showOldestCommitsFirst"))?.unwrap_or(false) {
        infos.reverse();
    }
    let page = ctx.page(top, 100);
    let item_path = q
        .sc("itemPath")
        .map(|p| format!("/{}", p.trim_matches('/')))
        .filter(|p| p != "/");
    let value: Vec<Value> = infos
        .iter()
        .skip(skip)
        .take(page)
        .map(|c| {
            let mut v = commit_ref_json(ctx, repo, c, true)?;
            // With itemPath, ADO lists the commit's changes to that path.
            if let (Some(p), Some(obj)) = (&item_path, v.as_object_mut()) {
                let under = format!("{p}/");
                let changes: Vec<Value> = commit_diff(repo, c)?
                    .iter()
                    .filter(|e| {
                        let path = format!("/{}", e.path);
                        path == *p || path.starts_with(&under)
                    })
                    .map(|e| json!({"sourceServerItem": format!("/{}", e.path), "changeType": change_type(e)}))
                    .collect();
                obj.insert("changes".into(), json!(changes));
            }
            Ok(v)
        })
        .collect::<Result<_, EmulatorError>>()
        .map_err(internal)?;
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

fn commit_not_found(repo: &RepoState, id: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "TF401029: The commit {id} does not exist in the repository {}.",
            repo.name
        ),
        "GitCommitDoesNotExistException",
        http::TN_COMMIT_NOT_FOUND,
    )
}

/// `GET .../commits/{commitId}` (`changeCount`).
fn commit_get(ctx: &Ctx, repo: &RepoState, id: &str) -> R {
    let Some(c) = g(git::commit(&repo.path, id))
        .ok()
        .flatten()
        .filter(|_| git::is_hex(id))
    else {
        return Err(commit_not_found(repo, id));
    };
    let change_count = parse_usize("changeCount", ctx.query.get("changeCount"))?.unwrap_or(0);
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let web = repo_web_url(&ctx.shared, &ctx.org, repo);
    let mut v = Map::new();
    v.insert("treeId".into(), json!(c.tree));
    v.insert("parents".into(), json!(c.parents));
    if let Some(p) = push_of(repo, &c.id) {
        v.insert(
            "push".into(),
            json!({"pushedBy": pusher_json(&ctx.shared, &ctx.org, &p), "pushId": p.push_id, "date": ado_time(p.date)}),
        );
    }
    v.insert("commitId".into(), json!(c.id));
    v.insert("author".into(), person_json(&c.author));
    v.insert("committer".into(), person_json(&c.committer));
    v.insert("comment".into(), json!(c.message));
    if change_count > 0 {
        let entries = g(commit_diff(repo, &c))?;
        v.insert("changeCounts".into(), json!(change_counts(&entries)));
        let changes: Vec<Value> = entries
            .iter()
            .take(change_count)
            .map(|e| change_json(&repo_url, &c.id, e, false))
            .collect();
        v.insert("changes".into(), json!(changes));
    }
    v.insert("url".into(), json!(format!("{repo_url}/commits/{}", c.id)));
    v.insert("remoteUrl".into(), json!(format!("{web}/commit/{}", c.id)));
    v.insert(
        "_links".into(),
        json!({
            "self": {"href": format!("{repo_url}/commits/{}", c.id)},
            "repository": {"href": repo_url},
            "changes": {"href": format!("{repo_url}/commits/{}/changes", c.id)},
            "web": {"href": format!("{web}/commit/{}", c.id)},
            "tree": {"href": format!("{repo_url}/trees/{}", c.tree)},
        }),
    );
    Ok(ado_json(StatusCode::OK, &Value::Object(v)))
}

/// `GET .../commits/{commitId}/changes` (`top`, `skip`).
fn commit_changes(ctx: &Ctx, repo: &RepoState, id: &str) -> R {
    let Some(c) = g(git::commit(&repo.path, id))
        .ok()
        .flatten()
        .filter(|_| git::is_hex(id))
    else {
        return Err(commit_not_found(repo, id));
    };
    let top = parse_usize("top", ctx.query.get("top").or(ctx.query.get("$top")))?;
    let skip = parse_usize("skip", ctx.query.get("skip").or(ctx.query.get("$skip")))?.unwrap_or(0);
    let entries = g(commit_diff(repo, &c))?;
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let page = ctx.page(top, 100);
    let changes: Vec<Value> = entries
        .iter()
        .skip(skip)
        .take(page)
        .map(|e| change_json(&repo_url, &c.id, e, false))
        .collect();
    Ok(ado_json(
        StatusCode::OK,
        &json!({"changeCounts": change_counts(&entries), "changes": changes}),
    ))
}

/// `POST .../commitsbatch` — body `GitQueryCommitsCriteria` (`ids`, or `itemVersion` + `compareVersion`).
fn commits_batch(ctx: &Ctx, repo: &RepoState) -> R {
    let body: Value = serde_json::from_slice(&ctx.body)
        .map_err(|e| bad_request(&format!("Invalid request body: {e}")))?;
    let dir = &repo.path;
    let top = parse_usize(
        "$top",
        ctx.query
            .get("$top")
            .or(body.get("$top").and_then(Value::as_str)),
    )?
    .or(body.get("$top").and_then(Value::as_u64).map(|n| n as usize));
    let skip = parse_usize("$skip", ctx.query.get("$skip"))?
        .or(body
            .get("$skip")
            .and_then(Value::as_u64)
            .map(|n| n as usize))
        .unwrap_or(0);
    let vd_of = |v: &Value| Vd {
        version: v.get("version").and_then(Value::as_str).map(str::to_string),
        vtype: v
            .get("versionType")
            .and_then(Value::as_str)
            .unwrap_or("branch")
            .to_ascii_lowercase(),
        options: v
            .get("versionOptions")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
    };
    let infos = if let Some(ids) = body.get("ids").and_then(Value::as_array) {
        let ids: Vec<String> = ids
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        g(git::commits(dir, &ids))?
    } else {
        let item = body.get("itemVersion").map(vd_of).unwrap_or(Vd {
            version: None,
            vtype: "branch".into(),
            options: None,
        });
        let include = vec![resolve(repo, &item)?.0];
        let mut exclude = Vec::new();
        if let Some(cv) = body.get("compareVersion") {
            exclude.push(resolve(repo, &vd_of(cv))?.0);
        }
        g(git::log(
            dir,
            &git::LogFilter {
                include,
                exclude,
                ..Default::default()
            },
        ))?
    };
    let page = ctx.page(top, 100);
    let value: Vec<Value> = infos
        .iter()
        .skip(skip)
        .take(page)
        .map(|c| commit_ref_json(ctx, repo, c, true))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Pushes

fn pusher_json(shared: &Shared, org: &OrgState, p: &PushRecord) -> Value {
    let org_url = shared.org_url(org);
    let who = &p.pushed_by;
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
    p: &PushRecord,
    ref_updates: bool,
    repository: bool,
) -> Value {
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let mut v = Map::new();
    if ref_updates {
        v.insert(
            "refUpdates".into(),
            json!(p
                .ref_updates
                .iter()
                .map(|u| json!({"repositoryId": repo.id, "name": u.name, "oldObjectId": u.old_object_id, "newObjectId": u.new_object_id}))
                .collect::<Vec<_>>()),
        );
    }
    if repository {
        v.insert(
            "repository".into(),
            repo_json(&ctx.shared, &ctx.org, project, repo, false),
        );
    }
    v.insert("pushedBy".into(), pusher_json(&ctx.shared, &ctx.org, p));
    v.insert("pushId".into(), json!(p.push_id));
    v.insert("date".into(), json!(ado_time(p.date)));
    v.insert(
        "url".into(),
        json!(format!("{repo_url}/pushes/{}", p.push_id)),
    );
    Value::Object(v)
}

/// `GET .../pushes` — `$top` (100), `$skip`, `searchCriteria.refName`, `includeRefUpdates`, `fromDate`,
/// `toDate`, `pusherId` (prefix optional). Newest first.
fn pushes_list(ctx: &Ctx, project: &ProjectState, repo: &RepoState) -> R {
    let q = &ctx.query;
    let top = parse_usize("$top", q.get("$top"))?;
    let skip = parse_usize("$skip", q.get("$skip"))?.unwrap_or(0);
    let ref_name = q.sc("refName").map(str::to_string);
    let include_refs = parse_bool("includeRefUpdates", q.sc("includeRefUpdates"))?.unwrap_or(false);
    let from = q.sc("fromDate").and_then(parse_date);
    let to = q.sc("toDate").and_then(parse_date);
    let pusher = q.sc("pusherId").map(str::to_lowercase);
    let mut pushes: Vec<PushRecord> = repo.pushes.lock().clone();
    pushes.reverse();
    pushes.retain(|p| {
        ref_name
            .as_ref()
            .is_none_or(|r| p.ref_updates.iter().any(|u| &u.name == r))
            && from.is_none_or(|f| p.date.unix_timestamp() >= f)
            && to.is_none_or(|t| p.date.unix_timestamp() <= t)
            && pusher
                .as_ref()
                .is_none_or(|id| p.pushed_by.id.to_lowercase() == *id)
    });
    let page = ctx.page(top, 100);
    let value: Vec<Value> = pushes
        .iter()
        .skip(skip)
        .take(page)
        .map(|p| push_json(ctx, project, repo, p, include_refs, true))
        .collect();
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

fn find_push(repo: &RepoState, id: &str) -> Result<PushRecord, Response<Body>> {
    let n: Option<u32> = id.parse().ok();
    n.and_then(|n| repo.pushes.lock().iter().find(|p| p.push_id == n).cloned())
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
fn push_get(ctx: &Ctx, project: &ProjectState, repo: &RepoState, id: &str) -> R {
    let p = find_push(repo, id)?;
    let include_commits =
        parse_usize("includeCommits", ctx.query.get("includeCommits"))?.unwrap_or(0);
    let include_refs =
        parse_bool("includeRefUpdates", ctx.query.get("includeRefUpdates"))?.unwrap_or(true);
    let mut v = push_json(ctx, project, repo, &p, include_refs, true);
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let listed: Vec<String> = p.commits.iter().take(include_commits).cloned().collect();
    let commits: Vec<Value> = g(git::commits(&repo.path, &listed))?
        .iter()
        .map(|c| commit_ref_json(ctx, repo, c, false))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("commits".into(), json!(commits));
        obj.insert(
            "_links".into(),
            json!({
                "self": {"href": format!("{repo_url}/pushes/{}", p.push_id)},
                "repository": {"href": repo_url},
                "commits": {"href": format!("{repo_url}/pushes/{}/commits", p.push_id)},
                "pusher": {"href": format!("{}/_apis/Identities/{}", ctx.org_url(), p.pushed_by.id)},
                "refs": {"href": format!("{repo_url}/refs")},
            }),
        );
    }
    Ok(ado_json(StatusCode::OK, &v))
}

/// `GET .../pushes/{pushId}/commits` and `GET .../commits?pushId=` (`top`, `skip`).
fn push_commits(ctx: &Ctx, repo: &RepoState, id: &str) -> R {
    let p = find_push(repo, id)?;
    let top = parse_usize("top", ctx.query.get("top").or(ctx.query.get("$top")))?;
    let skip = parse_usize("skip", ctx.query.get("skip").or(ctx.query.get("$skip")))?.unwrap_or(0);
    let page = ctx.page(top, 100);
    let listed: Vec<String> = p.commits.iter().skip(skip).take(page).cloned().collect();
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let web = repo_web_url(&ctx.shared, &ctx.org, repo);
    let value: Vec<Value> = g(git::commits(&repo.path, &listed))?
        .iter()
        .map(|c| {
            let mut v = commit_ref_json(ctx, repo, c, false)?;
            if let Some(obj) = v.as_object_mut() {
                obj.insert(
                    "_links".into(),
                    json!({
                        "self": {"href": format!("{repo_url}/commits/{}", c.id)},
                        "repository": {"href": repo_url},
                        "web": {"href": format!("{web}/commit/{}", c.id)},
                        "changes": {"href": format!("{repo_url}/commits/{}/changes", c.id)},
                    }),
                );
            }
            Ok(v)
        })
        .collect::<Result<_, EmulatorError>>()
        .map_err(internal)?;
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

// ---------------------------------------------------------------------------------------------------------------
// Diffs

/// `GET .../diffs/commits` — `baseVersion*` → `targetVersion*` (defaults: the default branch), or merge-base →
/// target with `diffCommonCommit=true`; `$top` (100) / `$skip`; `allChangesIncluded` only when the page reaches
/// the end (ADO omits it otherwise).
fn diffs(ctx: &Ctx, repo: &RepoState) -> R {
    let q = &ctx.query;
    let base_vd = Vd::from_query(
        ctx,
        &["baseVersion"],
        &["baseVersionType"],
        &["baseVersionOptions"],
    );
    let target_vd = Vd::from_query(
        ctx,
        &["targetVersion"],
        &["targetVersionType"],
        &["targetVersionOptions"],
    );
    let common_only = parse_bool("diffCommonCommit", q.get("diffCommonCommit"))?.unwrap_or(false);
    let top = parse_usize("$top", q.get("$top"))?;
    let skip = parse_usize("$skip", q.get("$skip"))?.unwrap_or(0);
    let (base, _, _) = resolve(repo, &base_vd)?;
    let (target, _, _) = resolve(repo, &target_vd)?;
    let dir = &repo.path;
    let common = g(git::merge_base(dir, &base, &target))?;
    let from = if common_only {
        common.clone()
    } else {
        Some(base.clone())
    };
    let entries = g(git::diff_tree(dir, from.as_deref(), &target))?;
    let (ahead, behind) = g(git::ahead_behind(dir, &base, &target))?;
    let repo_url = repo_api_url(&ctx.shared, &ctx.org, repo);
    let page = ctx.page(top.map(|t| t.min(2000)), 100);
    let end = (skip + page).min(entries.len());
    let changes: Vec<Value> = entries
        .get(skip.min(entries.len())..end)
        .unwrap_or(&[])
        .iter()
        .map(|e| change_json(&repo_url, &target, e, true))
        .collect();
    let mut v = Map::new();
    if end >= entries.len() {
        v.insert("allChangesIncluded".into(), json!(true));
    }
    v.insert("changeCounts".into(), json!(change_counts(&entries)));
    v.insert("changes".into(), json!(changes));
    if let Some(c) = &common {
        v.insert("commonCommit".into(), json!(c));
    }
    v.insert("baseCommit".into(), json!(base));
    v.insert("targetCommit".into(), json!(target));
    v.insert("aheadCount".into(), json!(ahead));
    v.insert("behindCount".into(), json!(behind));
    Ok(ado_json(StatusCode::OK, &Value::Object(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_ado_formats() {
        let day = 1_718_323_200; // 2024-06-14T00:00:00Z
        assert_eq!(parse_date("2024-06-14"), Some(day));
        assert_eq!(parse_date("2024-06-14T00:00"), Some(day));
        assert_eq!(parse_date("2024-06-14T00:00:00Z"), Some(day));
        assert_eq!(parse_date("6/14/2024 12:00:00 AM"), Some(day));
        assert_eq!(
            parse_date("6/14/2024 1:30:00 PM"),
            Some(day + 13 * 3600 + 1800)
        );
        assert_eq!(parse_date("13/45/2024"), None);
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn change_types_and_count_keys() {
        let e = |status: char, similarity: u32| DiffEntry {
            status,
            similarity,
            old_mode: "100644".into(),
            new_mode: "100644".into(),
            old_id: "a".into(),
            new_id: "b".into(),
            path: "x".into(),
            old_path: None,
        };
        assert_eq!(change_type(&e('A', 0)), "add");
        assert_eq!(change_type(&e('D', 0)), "delete");
        assert_eq!(change_type(&e('M', 0)), "edit");
        assert_eq!(change_type(&e('R', 100)), "rename");
        assert_eq!(change_type(&e('R', 87)), "edit, rename");
        assert_eq!(count_key("edit, rename"), "Edit, Rename");
        assert_eq!(normalize_path("a//b/"), "/a/b");
        assert_eq!(normalize_path(""), "/");
    }
}
