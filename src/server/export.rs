//! Downloads from the registry page: `GET /export/<repository>/<registry>/<format>`
//! with the page's view parameters (`view=full|collapsed`, `expand=<module>`
//! repeated, `focus=<node>&k=<hops>`; none: the view picked by size).
//!
//! - `svg`: the view drawn from its cached layout (`graph::svg::render`),
//!   computed only as the page would compute it (the viewer's `dot` slots).
//! - `png`: that SVG rasterised by resvg, at most 4096 px a side and
//!   16 Mpx, two at a time hub-wide; a third waits up to 10 s, then 503.
//! - `json`: the registry's entries, edges and diagnostics in the parser's
//!   shape (registries.md §6); the view parameters are checked, not used.
//!
//! Signed-in users only, viewers included, as for the viewer's server
//! functions: the sign-in gate redirects anonymous GETs, and the handler
//! answers 401 itself should it ever be reached without a user. Unknown
//! repository, registry or focus node: 404; bad parameters: 400; both as
//! plain text.

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use spicehub_core::auth::AuthUser;
use spicehub_core::graph::export::{self, ExportError};
use spicehub_core::graph::LayoutSlots;
use spicehub_web::api::viewer::ssr::{self, ExportFailure};
use spicehub_web::api::viewer::{ViewRequest, MAX_FOCUS_K};

use super::AppState;

/// PNGs drawn at once, hub-wide, and how long a request waits for a turn.
const PNG_AT_ONCE: usize = 2;
const PNG_WAIT: Duration = Duration::from_secs(10);

static PNG_SLOTS: LazyLock<LayoutSlots> = LazyLock::new(|| LayoutSlots::new(PNG_AT_ONCE, PNG_WAIT));

/// The route, under [`spicehub_routes::EXPORT`].
pub fn path() -> String {
    format!(
        "{}/{{repository}}/{{registry}}/{{format}}",
        spicehub_routes::EXPORT
    )
}

pub async fn download(
    State(state): State<AppState>,
    user: Option<Extension<AuthUser>>,
    Path((repository, registry, format)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    if user.is_none() {
        return plain(
            StatusCode::UNAUTHORIZED,
            "You are not signed in (or your session has ended). Sign in again.",
        );
    }
    let request = match view_request(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(message) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("The request was not understood: {message}"),
            )
        }
    };
    let result = match format.as_str() {
        "svg" => svg(&state, &repository, &registry, request).await,
        "png" => png(&state, &repository, &registry, request).await,
        "json" => json(&state, &repository, &registry).await,
        _ => Err(ExportFailure {
            status: 404,
            message: "Downloads are svg, png or json.".into(),
        }),
    };
    result.unwrap_or_else(|failure| {
        let status =
            StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = plain(status, &failure.message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        }
        response
    })
}

/// The view the page would draw, from the layout cache, and its file name.
async fn view_and_name(
    state: &AppState,
    repository: &str,
    registry: &str,
    request: ViewRequest,
    extension: &str,
) -> Result<(ssr::ViewDownload, String), ExportFailure> {
    let view = ssr::export_view(
        &state.db,
        repository,
        registry,
        request,
        state.config.layout_timeout,
    )
    .await?;
    let name = export::file_name(&[&view.registry, &view.view], extension);
    Ok((view, name))
}

async fn svg(
    state: &AppState,
    repository: &str,
    registry: &str,
    request: ViewRequest,
) -> Result<Response, ExportFailure> {
    let (view, name) = view_and_name(state, repository, registry, request, "svg").await?;
    Ok(attachment("image/svg+xml", &name, view.svg.into_bytes()))
}

async fn png(
    state: &AppState,
    repository: &str,
    registry: &str,
    request: ViewRequest,
) -> Result<Response, ExportFailure> {
    let (view, name) = view_and_name(state, repository, registry, request, "png").await?;
    let png = export::png(view.svg, &PNG_SLOTS)
        .await
        .map_err(|e| match e {
            ExportError::Busy => ExportFailure {
                status: 503,
                message: "The hub is busy drawing other pictures right now. Try again in a moment."
                    .into(),
            },
            e => {
                tracing::error!(error = %e, registry = %view.registry, "PNG download failed");
                ExportFailure {
                    status: 500,
                    message: format!("The picture could not be drawn: {e}"),
                }
            }
        })?;
    Ok(attachment("image/png", &name, png))
}

async fn json(
    state: &AppState,
    repository: &str,
    registry: &str,
) -> Result<Response, ExportFailure> {
    let found = ssr::export_registry(&state.db, repository, registry).await?;
    let name = export::file_name(&[&found.registry], "json");
    Ok(attachment(
        "application/json",
        &name,
        found.json.into_bytes(),
    ))
}

/// The view a download asks for, from its query string. Stricter than the
/// page, which ignores what it does not understand: a download names one
/// view exactly. The page's selection and search (`node`, `group`, `find`)
/// are allowed and ignored.
pub fn view_request(query: &str) -> Result<ViewRequest, String> {
    let mut request = ViewRequest::default();
    let mut k: Option<u32> = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.trim().to_owned();
        let once = |slot: bool| {
            if slot {
                Err(format!("`{key}` is given twice"))
            } else {
                Ok(())
            }
        };
        match key.as_ref() {
            "view" => {
                once(request.mode.is_some())?;
                if value != "full" && value != "collapsed" {
                    return Err("`view` is `full` or `collapsed`".into());
                }
                request.mode = Some(value);
            }
            "focus" => {
                once(request.focus.is_some())?;
                if value.is_empty() {
                    return Err("`focus` names no node".into());
                }
                request.focus = Some(value);
            }
            "k" => {
                once(k.is_some())?;
                let hops = value
                    .parse::<u32>()
                    .ok()
                    .filter(|h| (1..=MAX_FOCUS_K).contains(h))
                    .ok_or_else(|| format!("`k` is a number of hops from 1 to {MAX_FOCUS_K}"))?;
                k = Some(hops);
            }
            "expand" => {
                if value.is_empty() {
                    return Err("`expand` names no module".into());
                }
                request.expand.push(value);
            }
            "node" | "group" | "find" => {}
            other => return Err(format!("unknown parameter `{other}`")),
        }
    }
    if k.is_some() && request.focus.is_none() {
        return Err("`k` goes with `focus`".into());
    }
    if request.focus.is_some() && (request.mode.is_some() || !request.expand.is_empty()) {
        return Err("`focus` is a view of its own: drop `view` and `expand`".into());
    }
    if request.mode.as_deref() == Some("full") && !request.expand.is_empty() {
        return Err("`expand` opens modules of the collapsed view, not the full one".into());
    }
    request.k = k;
    Ok(request)
}

fn attachment(content_type: &'static str, file_name: &str, body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // `file_name` holds only ASCII letters, digits, `.`, `_` and `-`.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_parameters_are_checked() {
        assert_eq!(view_request(""), Ok(ViewRequest::default()));
        let r = view_request("focus=a%20b&k=3&node=a%20b").expect("focus");
        assert_eq!((r.focus.as_deref(), r.k), (Some("a b"), Some(3)));
        let r = view_request("view=collapsed&expand=m.one&expand=m.two").expect("expanded");
        assert_eq!(r.expand, ["m.one", "m.two"]);
        assert_eq!(
            view_request("view=full").expect("full").mode.as_deref(),
            Some("full")
        );
        for bad in [
            "view=bogus",
            "view=full&view=full",
            "k=2",
            "focus=a&k=0",
            "focus=a&k=99",
            "focus=a&k=x",
            "focus=",
            "focus=a&expand=m",
            "view=full&expand=m",
            "expand=",
            "size=9",
        ] {
            assert!(view_request(bad).is_err(), "{bad}");
        }
    }
}
