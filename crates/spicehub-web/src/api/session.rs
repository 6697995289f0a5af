//! Signing in and out, and who is signed in.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the UI knows about the signed-in user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub email: String,
    pub is_admin: bool,
}

#[cfg(feature = "ssr")]
pub(crate) fn request_user() -> Option<spicehub_core::auth::AuthUser> {
    use_context::<http::request::Parts>().and_then(|parts| {
        parts
            .extensions
            .get::<spicehub_core::auth::AuthUser>()
            .cloned()
    })
}

#[cfg(feature = "ssr")]
pub(crate) fn app_state() -> Result<spicehub_core::Hub, ServerFnError> {
    use_context::<spicehub_core::Hub>()
        .ok_or_else(|| ServerFnError::new("The hub is not fully started yet."))
}

/// Sets the HTTP status of the response being rendered on the server (a
/// no-op in the browser, where the status was already sent).
///
/// Not for a form a browser posted before the wasm bundle ran: that is
/// answered with a redirect back to the form, the error in its URL, and a
/// status set here would replace the redirect's and leave the browser on
/// the bare error body. (Without a `Referer` there is no form to go back
/// to, and the status stands.)
pub fn set_status(_status: u16) {
    #[cfg(feature = "ssr")]
    if plain_form_post() {
        return;
    }
    #[cfg(feature = "ssr")]
    if let (Some(response), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(_status),
    ) {
        response.set_status(status);
    }
}

/// A server function called by a browser's own form submission: a POST that
/// accepts HTML and says which page it came from.
#[cfg(feature = "ssr")]
fn plain_form_post() -> bool {
    use_context::<http::request::Parts>().is_some_and(|parts| {
        parts.method == http::Method::POST
            && parts.headers.contains_key(http::header::REFERER)
            && parts
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"))
    })
}

/// Only same-site paths may be redirected to after sign-in; anything else
/// would make the sign-in page an open redirector.
///
/// A path-absolute reference (one `/`, then anything but `/` or `\`) can
/// only resolve to the hub's own origin, but browsers first drop tabs and
/// newlines and read `\` as `/`, so `/<TAB>/evil.example` becomes
/// `//evil.example`. So only the characters a URL path, query and fragment
/// may hold are accepted (RFC 3986: no control characters, spaces or
/// backslashes), which also keeps CR and LF out of the `Location` header.
pub fn safe_next(next: Option<&str>) -> String {
    const MAX_LEN: usize = 2048;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?#%[]".contains(c);
    match next {
        Some(n)
            if n.len() <= MAX_LEN
                && n.starts_with('/')
                && !n.starts_with("//")
                && n.chars().all(allowed)
                && !n.starts_with("/signin") =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[server(prefix = "/api", endpoint = "current_user")]
pub async fn current_user() -> Result<Option<UserInfo>, ServerFnError> {
    Ok(request_user().map(|u| UserInfo {
        is_admin: u.is_admin(),
        email: u.email,
    }))
}

#[server(prefix = "/api", endpoint = "sign_in")]
pub async fn sign_in(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), ServerFnError> {
    use spicehub_core::auth::signin::{SignInError, BUSY_RETRY_SECS};
    use spicehub_core::auth::ClientAddr;

    let state = app_state()?;
    let session: tower_sessions::Session = leptos_axum::extract().await.map_err(|_| {
        ServerFnError::new(
            "Your browser did not keep the session cookie; enable cookies and try again.",
        )
    })?;
    // Put there by the server for every request; without it (a server
    // function called outside the server) nothing can be throttled.
    let Some(ClientAddr(address)) = use_context::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<ClientAddr>().copied())
    else {
        set_status(http::StatusCode::INTERNAL_SERVER_ERROR.as_u16());
        return Err(ServerFnError::new("Sign-in is unavailable right now."));
    };
    let retry_after = |secs: i64| {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            if let Ok(v) = http::HeaderValue::from_str(&secs.to_string()) {
                response.insert_header(http::header::RETRY_AFTER, v);
            }
        }
    };
    match spicehub_core::auth::signin::sign_in(&state.db, &state.signin, &email, &password, address)
        .await
    {
        Ok(user) => {
            // A new id on privilege change: a session id planted before
            // sign-in is worthless after it.
            let stored = async {
                session.cycle_id().await?;
                session
                    .insert(spicehub_core::auth::SESSION_USER_ID, &user.id)
                    .await
            };
            if let Err(e) = stored.await {
                tracing::error!(error = %e, "could not store the session");
                set_status(http::StatusCode::INTERNAL_SERVER_ERROR.as_u16());
                return Err(ServerFnError::new(
                    "Signed in, but the session could not be saved. Try again.",
                ));
            }
            tracing::info!(user = %user.email, "signed in");
            leptos_axum::redirect(&safe_next(next.as_deref()));
            Ok(())
        }
        Err(e @ SignInError::InvalidCredentials) => {
            tracing::info!(address = %address, "sign-in failed: wrong e-mail or password");
            set_status(http::StatusCode::UNAUTHORIZED.as_u16());
            Err(ServerFnError::new(e.to_string()))
        }
        Err(e @ SignInError::Throttled { retry_after_secs }) => {
            tracing::warn!(address = %address, "sign-in throttled");
            set_status(http::StatusCode::TOO_MANY_REQUESTS.as_u16());
            retry_after(retry_after_secs);
            Err(ServerFnError::new(e.to_string()))
        }
        Err(e @ SignInError::Busy) => {
            tracing::warn!("sign-in refused: every password check slot is busy");
            set_status(http::StatusCode::SERVICE_UNAVAILABLE.as_u16());
            retry_after(BUSY_RETRY_SECS);
            Err(ServerFnError::new(e.to_string()))
        }
        Err(e @ SignInError::TooLong) => {
            set_status(http::StatusCode::BAD_REQUEST.as_u16());
            Err(ServerFnError::new(e.to_string()))
        }
        Err(SignInError::Internal(e)) => {
            tracing::error!(error = %e, "sign-in failed: database error");
            set_status(http::StatusCode::SERVICE_UNAVAILABLE.as_u16());
            Err(ServerFnError::new(
                "Sign-in is unavailable right now; the hub cannot reach its database.",
            ))
        }
    }
}

#[server(prefix = "/api", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), ServerFnError> {
    let session: tower_sessions::Session = leptos_axum::extract()
        .await
        .map_err(|_| ServerFnError::new("No session to end."))?;
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "could not delete the session");
        return Err(ServerFnError::new("Could not sign out; try again."));
    }
    leptos_axum::redirect("/signin");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/registries?q=a")), "/registries?q=a");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/signin")), "/");
        assert_eq!(safe_next(None), "/");
        // Browsers drop tabs and newlines and read `\` as `/`.
        for evil in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=y",
            "/ /evil.example",
            "/x\\..\\\\evil.example",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(
            safe_next(Some("/registries/a.b?tab=graph#n-1")),
            "/registries/a.b?tab=graph#n-1"
        );
        assert_eq!(safe_next(Some("/%09/x")), "/%09/x");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(5000)))), "/");
    }
}
