//! Small pieces shared by pages.

use leptos::prelude::*;

use crate::app::SessionContext;

/// Sets the HTTP status of the page being rendered on the server (a no-op
/// in the browser, where the status was already sent).
pub fn set_status(_status: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(response), Ok(status)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(_status),
    ) {
        response.set_status(status);
    }
}

/// Renders its children for admins only; anyone else gets a 403 page that
/// says why, instead of a page that fails in pieces.
#[component]
pub fn AdminOnly(children: ChildrenFn) -> impl IntoView {
    let session = expect_context::<SessionContext>();
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                session
                    .user
                    .get()
                    .map(|user| match user {
                        Ok(Some(u)) if u.is_admin => children.read_value()().into_any(),
                        _ => {
                            set_status(403);
                            view! {
                                <section class="empty-state" role="alert">
                                    <h1>"Admins only"</h1>
                                    <p>
                                        "This page is for hub admins. Ask an admin for the admin role, or go to "
                                        <a href="/registries">"Registries"</a> "."
                                    </p>
                                </section>
                            }
                                .into_any()
                        }
                    })
            }}
        </Suspense>
    }
}

/// An empty list, saying what it will hold and what to do next.
#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class="empty-state">
            <h2>{title}</h2>
            {children()}
        </section>
    }
}
