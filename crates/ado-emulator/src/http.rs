//! Response helpers shared by the Entra and Azure DevOps sides: ADO's JSON error envelope, the sign-in page
//! quirks (203 / 302), 401 challenges, throttling headers and timestamp formats. The fixed throttling headers
//! here serve the injected faults; the rate-limit model computes its own ([`crate::rate_limit`]).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::{enc_query, OrgState, Shared};

pub(crate) const JSON_CT: &str = "application/json; charset=utf-8; api-version=7.1";
pub(crate) const HTML_CT: &str = "text/html; charset=utf-8";

/// Builds a response; header values that are not valid header text are skipped.
pub(crate) fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Body>,
) -> Response<Body> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    if let Ok(content_type_value) = HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type_value);
    }
    response
}

pub(crate) fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(header_value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), header_value);
    }
}

pub(crate) fn append_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(header_value) = HeaderValue::from_str(value) {
        headers.append(HeaderName::from_static(name), header_value);
    }
}

/// JSON answer of the DevOps side.
pub(crate) fn ado_json(status: StatusCode, value: &Value) -> Response<Body> {
    response(status, JSON_CT, value.to_string())
}

/// ADO's error envelope (`$id`, `innerException`, `message`, `typeName`, `typeKey`, `errorCode`, `eventId`).
pub(crate) fn tf_error(
    status: StatusCode,
    message: &str,
    type_key: &str,
    type_name: &str,
) -> Response<Body> {
    let body = json!({
        "$id": "1",
        "innerException": null,
        "message": message,
        "typeName": type_name,
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000
    });
    let mut response = ado_json(status, &body);
    if message.starts_with("TF") || message.starts_with("VS") {
        set_header(
            response.headers_mut(),
            "x-tfs-serviceerror",
            &enc_query(message),
        );
    }
    response
}

pub(crate) const TN_UNAUTHORIZED: &str =
    "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, Microsoft.TeamFoundation.Framework.Server";
pub(crate) const TN_REPO_NOT_FOUND: &str =
    "Microsoft.TeamFoundation.Git.Server.GitRepositoryNotFoundException, Microsoft.TeamFoundation.Git.Server";
pub(crate) const TN_UNRESOLVABLE: &str =
    "Microsoft.TeamFoundation.Git.Server.GitUnresolvableToCommitException, Microsoft.TeamFoundation.Git.Server";
pub(crate) const TN_ITEM_NOT_FOUND: &str =
    "Microsoft.TeamFoundation.Git.Server.GitItemNotFoundException, Microsoft.TeamFoundation.Git.Server";
pub(crate) const TN_COMMIT_NOT_FOUND: &str =
    "Microsoft.TeamFoundation.Git.Server.GitCommitDoesNotExistException, Microsoft.TeamFoundation.Git.Server";
pub(crate) const TN_PROJECT_NOT_FOUND: &str =
    "Microsoft.TeamFoundation.Core.WebApi.ProjectDoesNotExistWithNameException, Microsoft.TeamFoundation.Core.WebApi";
pub(crate) const TN_ARGUMENT: &str =
    "Microsoft.TeamFoundation.SourceControl.WebServer.InvalidArgumentValueException, Microsoft.TeamFoundation.SourceControl.WebServer";
pub(crate) const TN_VERSION_NOT_SPECIFIED: &str =
    "Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException, Microsoft.VisualStudio.Services.WebApi";
pub(crate) const TN_VERSION_OUT_OF_RANGE: &str =
    "Microsoft.VisualStudio.Services.WebApi.VssVersionOutOfRangeException, Microsoft.VisualStudio.Services.WebApi";
pub(crate) const TN_INVALID_PREVIEW: &str =
    "Microsoft.VisualStudio.Services.WebApi.VssInvalidPreviewVersionException, Microsoft.VisualStudio.Services.WebApi";
pub(crate) const TN_RESOURCE_NOT_FOUND: &str =
    "Microsoft.VisualStudio.Services.WebApi.VssResourceNotFoundException, Microsoft.VisualStudio.Services.WebApi";
pub(crate) const TN_REQUEST_BLOCKED: &str =
    "Microsoft.TeamFoundation.Framework.Server.RequestBlockedException, Microsoft.TeamFoundation.Framework.Server";
pub(crate) const TN_SERVICE_HOOK: &str =
    "Microsoft.VisualStudio.Services.ServiceHooks.WebApi.ServiceHookException, Microsoft.VisualStudio.Services.ServiceHooks.WebApi";
pub(crate) const TN_SUBSCRIPTION_NOT_FOUND: &str =
    "Microsoft.VisualStudio.Services.ServiceHooks.WebApi.SubscriptionNotFoundException, Microsoft.VisualStudio.Services.ServiceHooks.WebApi";
pub(crate) const TN_ACCESS_DENIED: &str =
    "Microsoft.TeamFoundation.Framework.Server.AccessCheckException, Microsoft.TeamFoundation.Framework.Server";
pub(crate) const TN_INTERNAL: &str = "System.Exception, mscorlib";

/// 401 with the challenges Azure DevOps sends (`WWW-Authenticate: Bearer authorization_uri=…`, `Basic realm=…`,
/// `TFS-Federated`) and `X-VSS-ResourceTenant` (what clients read to discover an organization's tenant).
pub(crate) fn unauthorized(
    shared: &Shared,
    org: Option<&OrgState>,
    message: &str,
) -> Response<Body> {
    let mut response = tf_error(
        StatusCode::UNAUTHORIZED,
        message,
        "UnauthorizedRequestException",
        TN_UNAUTHORIZED,
    );
    let tenant = org
        .map(|org| org.tenant_id.clone())
        .unwrap_or_else(|| Uuid::nil().to_string());
    let headers = response.headers_mut();
    append_header(
        headers,
        "www-authenticate",
        &format!(
            "Bearer authorization_uri={}/{}",
            shared.authority_url(),
            tenant
        ),
    );
    append_header(
        headers,
        "www-authenticate",
        &format!("Basic realm=\"{}/\"", shared.devops_url()),
    );
    append_header(headers, "www-authenticate", "TFS-Federated");
    set_header(
        headers,
        "x-tfs-fedauthrealm",
        &format!("{}/", shared.devops_url()),
    );
    if let Some(org) = org {
        set_header(
            headers,
            "x-tfs-fedauthissuer",
            &format!("{}/", shared.org_url(org)),
        );
    }
    set_header(headers, "x-vss-resourcetenant", &tenant);
    set_header(
        headers,
        "x-tfs-fedauthredirect",
        &format!(
            "{}/vssps/_signin?realm={}",
            shared.base_url,
            enc_query(&shared.devops_url())
        ),
    );
    response
}

/// The HTML sign-in page Azure DevOps serves instead of JSON when a bearer token is expired or garbage.
pub(crate) fn sign_in_html(shared: &Shared) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Azure DevOps Services | Sign In</title>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n</head>\n<body>\n\
         <div class=\"signin\">\n<h1>Azure DevOps</h1>\n<p>Sign in to continue to Azure DevOps.</p>\n\
         <a id=\"signin\" href=\"{}/vssps/_signin?realm={}&amp;redirect=1\">Sign in</a>\n</div>\n\
         <script type=\"text/javascript\">/* emulated sign-in page */</script>\n</body>\n</html>\n",
        shared.base_url,
        enc_query(&shared.devops_url())
    )
}

/// `203 Non-Authoritative Information` + HTML sign-in page (documented quirk for GET/POST with a bad token).
pub(crate) fn sign_in_203(shared: &Shared) -> Response<Body> {
    let mut page = response(
        StatusCode::NON_AUTHORITATIVE_INFORMATION,
        HTML_CT,
        sign_in_html(shared),
    );
    set_header(page.headers_mut(), "x-frame-options", "SAMEORIGIN");
    page
}

/// `302` to the sign-in page.
pub(crate) fn redirect_to_sign_in(shared: &Shared, original: &str) -> Response<Body> {
    let location = format!(
        "{}/vssps/_signin?realm={}&reply_to={}&redirect=1&hid={}",
        shared.base_url,
        enc_query(&shared.devops_url()),
        enc_query(original),
        Uuid::new_v4()
    );
    let mut redirect = response(
        StatusCode::FOUND,
        HTML_CT,
        format!("<html><head><title>Object moved</title></head><body><h2>Object moved to <a href=\"{location}\">here</a>.</h2></body></html>"),
    );
    set_header(redirect.headers_mut(), "location", &location);
    redirect
}

/// 429 with `Retry-After`, `X-RateLimit-*` and the TF400733 body (the `Throttle429` fault).
pub(crate) fn throttled(retry_after_secs: u64) -> Response<Body> {
    let mut response = request_blocked("Core");
    add_rate_limit_headers(response.headers_mut(), retry_after_secs, true);
    response
}

/// 429 + TF400733 naming `resource`, without headers (the caller adds the ones it computed).
pub(crate) fn request_blocked(resource: &str) -> Response<Body> {
    let msg = format!("TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource '{resource}' in namespace 'User'.");
    tf_error(
        StatusCode::TOO_MANY_REQUESTS,
        &msg,
        "RequestBlockedException",
        TN_REQUEST_BLOCKED,
    )
}

/// `Retry-After` + `X-RateLimit-*` headers (`delayed` adds `X-RateLimit-Delay`).
pub(crate) fn add_rate_limit_headers(
    headers: &mut HeaderMap,
    retry_after_secs: u64,
    delayed: bool,
) {
    let reset = OffsetDateTime::now_utc().unix_timestamp() + retry_after_secs as i64;
    set_header(headers, "retry-after", &retry_after_secs.to_string());
    set_header(headers, "x-ratelimit-resource", "Core");
    set_header(headers, "x-ratelimit-limit", "200");
    set_header(headers, "x-ratelimit-remaining", "0");
    set_header(headers, "x-ratelimit-reset", &reset.to_string());
    if delayed {
        set_header(
            headers,
            "x-ratelimit-delay",
            &format!("{retry_after_secs}.000"),
        );
    }
}

/// A 5xx as Azure DevOps' front end answers it.
pub(crate) fn server_error(status: u16) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status.as_u16() {
        502..=504 => response(
            status,
            HTML_CT,
            format!(
                "<!DOCTYPE html><html><head><title>Azure DevOps Services | {0}</title></head><body><h1>{0}</h1>\
                 <p>The service is temporarily unavailable. Please try again later.</p></body></html>",
                status.canonical_reason().unwrap_or("Service Unavailable")
            ),
        ),
        _ => tf_error(
            status,
            "VS402371: An unexpected error occurred. Please try again later.",
            "Exception",
            TN_INTERNAL,
        ),
    }
}

/// Headers every Azure DevOps answer carries.
pub(crate) fn add_ado_headers(shared: &Shared, headers: &mut HeaderMap) {
    let activity = Uuid::new_v4().to_string();
    set_header(headers, "activityid", &activity);
    set_header(headers, "x-tfs-session", &activity);
    set_header(headers, "x-vss-e2eid", &activity);
    set_header(headers, "x-tfs-processid", &shared.process_id);
    set_header(headers, "x-content-type-options", "nosniff");
    set_header(headers, "x-frame-options", "SAMEORIGIN");
    if !headers.contains_key("cache-control") {
        set_header(headers, "cache-control", "no-cache");
    }
}

/// ADO server timestamp: `2014-06-30T18:11:18.0929091Z` (UTC, 7 fractional digits).
pub(crate) fn ado_time(timestamp: OffsetDateTime) -> String {
    let timestamp = timestamp.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        timestamp.year(),
        u8::from(timestamp.month()),
        timestamp.day(),
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second(),
        timestamp.nanosecond() / 100
    )
}

/// Git dates as ADO returns them: `2018-06-15T17:06:53Z` (UTC, whole seconds).
pub(crate) fn git_time(timestamp: OffsetDateTime) -> String {
    let timestamp = timestamp
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(timestamp);
    timestamp.format(&Rfc3339).unwrap_or_default()
}

/// Entra timestamp: `2016-01-09 02:02:12Z`.
pub(crate) fn entra_time(timestamp: OffsetDateTime) -> String {
    let timestamp = timestamp.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        timestamp.year(),
        u8::from(timestamp.month()),
        timestamp.day(),
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second()
    )
}
