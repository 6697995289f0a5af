//! Azure DevOps REST subset (`{base}/devops/{org}/[{project}/]_apis/...`): routing, authentication and
//! authorization (token checks, organization membership, access levels), `api-version`, query parsing, and
//! the rate-limit charge of each authenticated call ([`crate::rate_limit`]; a no-op while the model is off).

// Handlers return `Result<Response, Response>`: the error side is the finished error answer (an ADO/Entra
// envelope), built once and returned as is; boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod core;
pub mod git_api;
pub mod hooks;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, Response, StatusCode};
use base64::Engine;

use crate::config::AccessLevel;
use crate::faults::{percent_decode, RequestFaults};
use crate::http::{self, tf_error};
use crate::rate_limit::{RequestKind, Verdict};
use crate::state::{OrgState, ProjectState, RepoState, Shared};

/// Handler result: the error side is a finished (error) response.
pub(crate) type HandlerResult = Result<Response<Body>, Response<Body>>;

/// Case-insensitive query parameters.
#[derive(Clone, Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> QueryParams {
        QueryParams(
            raw.map(|raw| {
                form_urlencoded::parse(raw.as_bytes())
                    .map(|(key, value)| (key.into_owned(), value.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }
    /// First non-empty value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }
    /// `searchCriteria.{name}` or `{name}` (the prefix is optional in ADO).
    pub fn sc(&self, name: &str) -> Option<&str> {
        self.get(&format!("searchCriteria.{name}"))
            .or_else(|| self.get(name))
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

pub(crate) fn bad_request(message: &str) -> Response<Body> {
    tf_error(
        StatusCode::BAD_REQUEST,
        message,
        "InvalidArgumentValueException",
        http::TN_ARGUMENT,
    )
}

pub(crate) fn parse_bool(name: &str, value: Option<&str>) -> Result<Option<bool>, Response<Body>> {
    match value {
        None => Ok(None),
        Some(text) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(bad_request(&format!(
                "The value '{text}' is not valid for {name}."
            ))),
        },
    }
}

pub(crate) fn parse_usize(
    name: &str,
    value: Option<&str>,
) -> Result<Option<usize>, Response<Body>> {
    match value {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| bad_request(&format!("The value '{text}' is not valid for {name}."))),
    }
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub client_id: String,
    pub object_id: String,
    pub display_name: String,
    pub level: AccessLevel,
}

/// Everything a handler needs.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub org: Arc<OrgState>,
    pub principal: Principal,
    pub query: QueryParams,
    pub headers: HeaderMap,
    pub page_size: Option<usize>,
    pub body: Bytes,
}

impl Ctx {
    pub fn org_url(&self) -> String {
        self.shared.org_url(&self.org)
    }
    /// Effective page size: `requested` (or `default`), capped by a `PageSize` fault.
    pub fn page(&self, requested: Option<usize>, default: usize) -> usize {
        let size = requested.unwrap_or(default);
        match self.page_size {
            Some(cap) => size.min(cap).max(1),
            None => size,
        }
    }
    pub fn accept(&self) -> String {
        self.headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    }
}

/// `GET {base}/vssps/_signin` — the sign-in page redirects point to.
pub(crate) async fn signin_page(State(shared): State<Arc<Shared>>) -> Response<Body> {
    http::response(StatusCode::OK, http::HTML_CT, http::sign_in_html(&shared))
}

/// Entry point of every `{base}/devops/...` request.
pub(crate) async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let page_size = parts
        .extensions
        .get::<RequestFaults>()
        .and_then(|faults| faults.page_size);
    let body = axum::body::to_bytes(body, 32 << 20)
        .await
        .unwrap_or_default();
    let mut resp = route(
        &shared,
        parts.method,
        &parts.uri,
        parts.headers,
        page_size,
        body,
    )
    .await;
    http::add_ado_headers(&shared, resp.headers_mut());
    resp
}

/// 404 for an organization that does not exist. [INFER] Azure DevOps answers a 404 for an unknown organization
/// (Azure/azure-cli#32897: "the underlying API gives a 404 Not Found"); the body is not an ADO JSON envelope
/// and no `X-VSS-ResourceTenant` is sent, so clients can tell it from TF401019 / TF200016.
fn unknown_org() -> Response<Body> {
    http::response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "The resource cannot be found.",
    )
}

pub(crate) fn route_not_found_pub(method: &Method, path: &str) -> Response<Body> {
    route_not_found(method, path)
}

fn route_not_found(method: &Method, path: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!("VS403404: The API resource for {method} {path} could not be found on this server (spicehub emulator)."),
        "VssResourceNotFoundException",
        http::TN_RESOURCE_NOT_FOUND,
    )
}

async fn route(
    shared: &Arc<Shared>,
    method: Method,
    uri: &axum::http::Uri,
    headers: HeaderMap,
    page_size: Option<usize>,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path();
    let rest = path.strip_prefix("/devops/").unwrap_or("");
    let raw: Vec<&str> = rest.split('/').collect();
    let segs: Vec<String> = raw.iter().map(|segment| percent_decode(segment)).collect();
    let Some(org) = segs.first().and_then(|name| shared.org(name)) else {
        return unknown_org();
    };
    let apis = segs
        .iter()
        .position(|segment| segment.eq_ignore_ascii_case("_apis"));
    let Some(apis) = apis.filter(|index| *index == 1 || *index == 2) else {
        // `{org}` or `{org}/{project}` web pages: only useful for tenant discovery and sign-in redirects.
        return match authenticate(shared, &org, &method, &headers) {
            Ok(_) => http::response(
                StatusCode::OK,
                http::HTML_CT,
                format!("<html><body><h1>{}</h1></body></html>", org.name),
            ),
            Err(_) => {
                let mut redirect =
                    http::redirect_to_sign_in(shared, &format!("{}{}", shared.base_url, path));
                http::set_header(
                    redirect.headers_mut(),
                    "x-vss-resourcetenant",
                    &org.tenant_id,
                );
                redirect
            }
        };
    };
    let principal = match authenticate(shared, &org, &method, &headers) {
        Ok(principal) => principal,
        Err(refusal) => return refusal,
    };
    let query = QueryParams::parse(uri.query());
    if let Err(refusal) = check_api_version(shared, &method, &query, &headers) {
        return refusal;
    }
    let project_seg = if apis == 2 {
        Some(segs[1].clone())
    } else {
        None
    };
    let mut route_segs: Vec<String> = segs[apis + 1..].to_vec();
    let mut raw_route: Vec<&str> = raw[apis + 1..].to_vec();
    while route_segs.last().is_some_and(|segment| segment.is_empty()) && route_segs.len() > 1 {
        route_segs.pop();
        raw_route.pop();
    }
    let ctx = Ctx {
        shared: shared.clone(),
        org: org.clone(),
        principal,
        query,
        headers,
        page_size,
        body,
    };
    let project: Option<&ProjectState> = match &project_seg {
        Some(key) => match org.project(key) {
            Some(found) => Some(found),
            None => return core::project_not_found(key),
        },
        None => None,
    };
    let lower_owned: Vec<String> = route_segs
        .iter()
        .map(|segment| segment.to_ascii_lowercase())
        .collect();
    let lower: Vec<&str> = lower_owned.iter().map(String::as_str).collect();
    // Charged here, not in the fault middleware: usage is per identity, known only once authenticated.
    let kind = request_kind(&method, &lower, &ctx.query, &ctx.accept());
    let principal = &ctx.principal;
    let rate_headers =
        match shared
            .rate_limit
            .charge(&principal.object_id, &principal.display_name, kind)
        {
            Verdict::Block(headers) => {
                let mut blocked = http::request_blocked(&headers.resource);
                headers.apply(blocked.headers_mut());
                return blocked;
            }
            Verdict::Serve { delay, headers } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                headers
            }
        };
    let result: HandlerResult = match (&method, lower.as_slice()) {
        (&Method::GET, ["connectiondata"]) => core::connection_data(&ctx),
        (&Method::GET, ["projects"]) if project.is_none() => core::list_projects(&ctx),
        (&Method::GET, ["projects", _]) if project.is_none() => {
            core::get_project(&ctx, &route_segs[1])
        }
        (&Method::GET, ["git", "repositories"]) => git_api::list_repositories(&ctx, project),
        (_, ["git", "repositories", _, ..]) => {
            let (repo_project, repo) = match find_repo(&ctx, project, &route_segs[2]) {
                Ok(found) => found,
                Err(refusal) => return refusal,
            };
            let tail: Vec<&str> = lower[3..].to_vec();
            git_api::repo_route(
                &ctx,
                repo_project,
                &repo,
                &method,
                &tail,
                &route_segs[3..],
                &raw_route[3..],
            )
            .await
        }
        (&Method::GET, ["hooks", "subscriptions"]) => hooks::list(&ctx),
        (&Method::POST, ["hooks", "subscriptions"]) => hooks::create(&ctx),
        (&Method::GET, ["hooks", "subscriptions", _]) => hooks::get(&ctx, &route_segs[2]),
        (&Method::PUT, ["hooks", "subscriptions", _]) => hooks::replace(&ctx, &route_segs[2]),
        (&Method::DELETE, ["hooks", "subscriptions", _]) => hooks::delete(&ctx, &route_segs[2]),
        (&Method::GET, ["hooks", "subscriptions", _, "notifications"]) => {
            hooks::notifications(&ctx, &route_segs[2])
        }
        _ => Err(route_not_found(&method, path)),
    };
    let mut answer = result.unwrap_or_else(|error_response| error_response);
    if let Some(headers) = rate_headers {
        headers.apply(answer.headers_mut());
    }
    answer
}

/// What a call costs in the rate-limit model, from its (lower-cased) route below `_apis`.
fn request_kind(method: &Method, route: &[&str], query: &QueryParams, accept: &str) -> RequestKind {
    match route {
        ["projects", ..] => RequestKind::List,
        ["git", "repositories"] | ["git", "repositories", _] => RequestKind::List,
        ["git", "repositories", _, "refs", ..] => RequestKind::List,
        ["git", "repositories", _, "items", ..] => {
            let format = query.get("$format").map(str::to_ascii_lowercase);
            let zip = match format.as_deref() {
                Some(format) => format == "zip",
                None => {
                    accept.contains("application/zip")
                        || (query
                            .get("download")
                            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
                            && query
                                .get("recursionLevel")
                                .is_some_and(|level| level.eq_ignore_ascii_case("full")))
                }
            };
            if zip {
                RequestKind::Archive
            } else {
                RequestKind::Read
            }
        }
        ["git", "repositories", _, "blobs"] if *method == Method::POST => RequestKind::Archive,
        ["git", "repositories", _, "diffs", ..] => RequestKind::Diff,
        ["git", "repositories", _, "trees" | "blobs" | "commits" | "commitsbatch" | "pushes", ..] => {
            RequestKind::Read
        }
        _ => RequestKind::Other,
    }
}

/// Finds the repository named in the route, and checks the caller may read it.
fn find_repo<'a>(
    ctx: &'a Ctx,
    project: Option<&'a ProjectState>,
    key: &str,
) -> Result<(&'a ProjectState, Arc<RepoState>), Response<Body>> {
    let found = match project {
        Some(project) => project
            .repos
            .iter()
            .find(|repo| repo.id.eq_ignore_ascii_case(key) || repo.name.eq_ignore_ascii_case(key))
            .map(|repo| (project, repo.clone())),
        // Without a project only the GUID works.
        None => ctx
            .org
            .repo_by_id(key)
            .map(|(project, repo)| (project, repo.clone())),
    };
    match found {
        Some((project, repo)) if can_read(&ctx.principal, &repo) => Ok((project, repo)),
        _ => Err(repo_not_found(key)),
    }
}

pub(crate) fn can_read(principal: &Principal, repo: &RepoState) -> bool {
    principal.level == AccessLevel::Basic && repo.is_visible_to(&principal.client_id)
}

pub(crate) fn repo_not_found(key: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!(
            "TF401019: The Git repository with name or identifier {key} does not exist or you do not have permissions for the operation you are attempting."
        ),
        "GitRepositoryNotFoundException",
        http::TN_REPO_NOT_FOUND,
    )
}

/// Bearer (Entra token) or Basic (personal access token) authentication and organization membership.
fn authenticate(
    shared: &Shared,
    org: &OrgState,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Principal, Response<Body>> {
    const ANONYMOUS: &str =
        "TF400813: Resource not available for anonymous access. Client authentication required.";
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|raw| raw.to_str().ok())
    else {
        return Err(http::unauthorized(shared, Some(org), ANONYMOUS));
    };
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let suppress_redirect = headers
        .get("x-tfs-fedauthredirect")
        .and_then(|raw| raw.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("suppress"));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credential.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default();
        let pat = decoded
            .split_once(':')
            .map(|(_, password)| password)
            .unwrap_or("");
        if !pat.is_empty() && org.pats.iter().any(|known| known == pat) {
            return Ok(Principal {
                client_id: "personal-access-token".into(),
                object_id: org.pusher.id.clone(),
                display_name: org.pusher.display_name.clone(),
                level: AccessLevel::Basic,
            });
        }
        return Err(http::unauthorized(shared, Some(org), ANONYMOUS));
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(http::unauthorized(shared, Some(org), ANONYMOUS));
    }
    let token = shared.tokens.lock().get(credential.trim()).cloned();
    let now = time::OffsetDateTime::now_utc();
    let Some(token) = token.filter(|token| token.expires_at > now) else {
        // Documented quirk: expired / garbage bearer → 203 + HTML sign-in page on GET and POST (401 on other
        // verbs, and — [INFER] — when `X-TFS-FedAuthRedirect: Suppress` is sent).
        let soft = matches!(*method, Method::GET | Method::HEAD | Method::POST);
        return Err(if soft && !suppress_redirect {
            http::sign_in_203(shared)
        } else {
            http::unauthorized(shared, Some(org), ANONYMOUS)
        });
    };
    if !token.tenant_id.eq_ignore_ascii_case(&org.tenant_id) {
        return Err(tf_error(
            StatusCode::UNAUTHORIZED,
            &format!(
                "TF400813: The user '{}' is not authorized to access this resource.",
                token.sp_object_id
            ),
            "UnauthorizedRequestException",
            http::TN_UNAUTHORIZED,
        ));
    }
    let display = shared
        .apps
        .read()
        .iter()
        .find(|app| app.client_id.eq_ignore_ascii_case(&token.client_id))
        .map(|app| app.display_name.clone())
        .unwrap_or_default();
    match org.members.get(&token.client_id.to_lowercase()) {
        Some(level) => Ok(Principal {
            client_id: token.client_id.clone(),
            object_id: token.sp_object_id.clone(),
            display_name: display,
            level: *level,
        }),
        None => Err(http::unauthorized(
            shared,
            Some(org),
            &format!(
                "TF401444: Please sign-in at least once as {tenant}\\{tenant}\\{oid} in a web browser to enable access to the service.",
                tenant = token.tenant_id,
                oid = token.sp_object_id
            ),
        )),
    }
}

/// `api-version` from the query or the `Accept` header (`application/json;api-version=7.1`).
fn api_version(query: &QueryParams, headers: &HeaderMap) -> Option<String> {
    if let Some(version) = query.get("api-version") {
        return Some(version.to_string());
    }
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    accept.split([';', ',']).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("api-version")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

fn check_api_version(
    shared: &Shared,
    method: &Method,
    query: &QueryParams,
    headers: &HeaderMap,
) -> Result<(), Response<Body>> {
    use crate::config::ApiVersionPolicy;
    let Some(version) = api_version(query, headers) else {
        let lenient_read = shared.settings.api_version_policy == ApiVersionPolicy::Lenient
            && matches!(*method, Method::GET | Method::HEAD);
        if lenient_read {
            return Ok(());
        }
        return Err(tf_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "No api-version was supplied for the \"{method}\" request. The version must be supplied either as part of the Accept header (e.g. \"application/json; api-version=1.0\") or as a query parameter (e.g. \"?api-version=1.0\")."
            ),
            "VssVersionNotSpecifiedException",
            http::TN_VERSION_NOT_SPECIFIED,
        ));
    };
    let (num, preview) = match version.split_once('-') {
        Some((number, preview)) => (number, Some(preview)),
        None => (version.as_str(), None),
    };
    let parsed: Option<(u32, u32)> = num
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
        .or_else(|| num.parse().ok().map(|major| (major, 0)));
    let valid_preview = preview.is_none_or(|label| {
        let label = label.to_ascii_lowercase();
        label == "preview"
            || label
                .strip_prefix("preview.")
                .is_some_and(|resource_version| resource_version.parse::<u32>().is_ok())
    });
    let Some((major, minor)) = parsed.filter(|_| valid_preview) else {
        return Err(tf_error(
            StatusCode::BAD_REQUEST,
            &format!("The api-version '{version}' is not valid. The version must be of the form 'major.minor[-preview[.resourceVersion]]'."),
            "VssInvalidApiResourceVersionException",
            "Microsoft.VisualStudio.Services.WebApi.VssInvalidApiResourceVersionException, Microsoft.VisualStudio.Services.WebApi",
        ));
    };
    if (major, minor) > (7, 2) {
        return Err(tf_error(
            StatusCode::BAD_REQUEST,
            &format!("The requested REST API version of {major}.{minor} is out of range for this server. The latest REST API version for this server is 7.2."),
            "VssVersionOutOfRangeException",
            http::TN_VERSION_OUT_OF_RANGE,
        ));
    }
    if (major, minor) == (7, 2) && preview.is_none() {
        return Err(tf_error(
            StatusCode::BAD_REQUEST,
            "The requested version \"7.2\" of the resource is under preview. The -preview flag must be supplied in the api-version for such requests. For example: \"7.2-preview\"",
            "VssInvalidPreviewVersionException",
            http::TN_INVALID_PREVIEW,
        ));
    }
    Ok(())
}
