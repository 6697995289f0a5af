//! CSRF protection by origin: a state-changing request must say, through
//! `Origin` (or, failing that, `Referer`), that it comes from a page of this
//! hub. Browsers set these headers themselves and pages of other sites cannot
//! forge them; together with SameSite=Lax cookies this closes cross-site
//! form posts and fetches. The webhook route is exempt: it authenticates
//! with Basic Auth, not with the session cookie.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Paths that never rely on the session cookie.
const EXEMPT_PREFIXES: &[&str] = &[spicehub_routes::PUBLIC_GATEWAY_PREFIX];

#[derive(Clone, Debug)]
pub struct CsrfPolicy {
    /// The public URL's origin; the request's own `Host` is accepted too, so
    /// a hub reached by another name on a private network keeps working.
    pub public_origin: String,
}

fn origin_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

impl CsrfPolicy {
    /// Whether a request with these headers may change state.
    pub fn allows(
        &self,
        origin: Option<&str>,
        referer: Option<&str>,
        host: Option<&str>,
        https: bool,
    ) -> bool {
        let claimed = match (origin, referer) {
            (Some(o), _) if o != "null" => Some(o.to_owned()),
            (_, Some(r)) => origin_of(r),
            _ => None,
        };
        let Some(claimed) = claimed else { return false };
        if claimed == self.public_origin {
            return true;
        }
        let scheme = if https { "https" } else { "http" };
        host.is_some_and(|h| claimed == format!("{scheme}://{h}"))
    }
}

pub async fn enforce(State(policy): State<CsrfPolicy>, request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    if safe || EXEMPT_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let https = policy.public_origin.starts_with("https://");
    if policy.allows(
        get(header::ORIGIN),
        get(header::REFERER),
        get(header::HOST),
        https,
    ) {
        next.run(request).await
    } else {
        tracing::warn!(
            path,
            "request refused: cross-site or without Origin/Referer"
        );
        (
            StatusCode::FORBIDDEN,
            "Refused: this request did not come from a spicehub page (CSRF check).",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        let p = CsrfPolicy {
            public_origin: "https://hub.example.com".into(),
        };
        assert!(p.allows(Some("https://hub.example.com"), None, None, true));
        assert!(p.allows(None, Some("https://hub.example.com/signin?x=1"), None, true));
        assert!(p.allows(
            Some("https://10.0.0.5:3000"),
            None,
            Some("10.0.0.5:3000"),
            true
        ));
        assert!(!p.allows(
            Some("https://evil.example"),
            None,
            Some("hub.example.com"),
            true
        ));
        assert!(!p.allows(Some("null"), None, Some("hub.example.com"), true));
        assert!(!p.allows(None, None, Some("hub.example.com"), true));
        assert!(!p.allows(
            None,
            Some("https://evil.example/x"),
            Some("hub.example.com"),
            true
        ));
        // A plain-http page may not post to the https hub.
        assert!(!p.allows(
            Some("http://hub.example.com"),
            None,
            Some("hub.example.com"),
            true
        ));
    }
}
