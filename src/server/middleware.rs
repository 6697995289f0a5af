//! Cross-cutting request handling: security headers, the signed-in user, the
//! sign-in gate for pages, and request tracing with a request id.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::Session;
use tracing::Level;

use super::AppState;
use spicehub_core::auth::{AuthUser, SESSION_USER_ID};
use spicehub_web::csp::content_security_policy;

pub async fn security_headers(State(https): State<bool>, request: Request, next: Next) -> Response {
    let cacheable = request.uri().path().starts_with("/pkg/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &str| {
        if !headers.contains_key(&name) {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        }
    };
    set(
        header::CONTENT_SECURITY_POLICY,
        &content_security_policy(None),
    );
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    set(
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if https {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    if !cacheable {
        // Signed-in pages must not come back from the cache after sign-out.
        set(header::CACHE_CONTROL, "no-store");
    }
    response
}

/// Puts the signed-in user (if any) into the request's extensions.
pub async fn load_user(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(session) = request.extensions().get::<Session>().cloned() {
        if let Ok(Some(user_id)) = session.get::<String>(SESSION_USER_ID).await {
            match state.db.user_by_id(&user_id).await {
                Ok(Some(user)) => {
                    request.extensions_mut().insert(AuthUser {
                        id: user.id,
                        email: user.email,
                        role: user.role,
                    });
                }
                // The account was removed: its sessions end with it.
                Ok(None) => {
                    let _ = session.flush().await;
                }
                Err(e) => tracing::error!(error = %e, "could not load the signed-in user"),
            }
        }
    }
    next.run(request).await
}

/// Paths reachable without a session.
const PUBLIC_PREFIXES: &[&str] = &[
    spicehub_routes::SIGN_IN,
    "/pkg/",
    spicehub_routes::API_PREFIX,
    spicehub_routes::HEALTH,
    spicehub_routes::METRICS,
    spicehub_routes::PUBLIC_GATEWAY_PREFIX,
    // The tenant's admin who consents is not a hub user.
    spicehub_routes::CONSENT_CALLBACK,
    // Entra ID reads the issuer's discovery document and keys anonymously.
    spicehub_routes::OIDC_DISCOVERY,
    spicehub_routes::OIDC_JWKS,
    "/favicon.ico",
    "/robots.txt",
];

/// Every page except sign-in needs a session; anonymous visitors are sent to
/// sign in and brought back afterwards. Server functions check for
/// themselves (they answer 401, not a redirect).
pub async fn require_sign_in(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p));
    let signed_in = request.extensions().get::<AuthUser>().is_some();
    if public || signed_in || !matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let wanted = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = format!("/signin?next={}", urlencode(wanted));
    Redirect::to(&target).into_response()
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub fn trace_layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    impl Fn(&Request<Body>) -> tracing::Span + Clone,
    tower_http::trace::DefaultOnRequest,
    DefaultOnResponse,
> {
    TraceLayer::new_for_http()
        .make_span_with(|request: &Request<Body>| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: query strings can carry codes and tokens.
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = %request_id,
            )
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO))
}
