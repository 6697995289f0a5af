//! The frame of every signed-in page: header with the tabs the user may
//! open, who is signed in, sign-out, and an error boundary around the page.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};

use crate::api::session::UserInfo;
use crate::ui::session::SessionContext;

#[component]
pub fn Layout() -> impl IntoView {
    let session = expect_context::<SessionContext>();
    let user = move || session.user.get().and_then(|r| r.ok()).flatten();
    view! {
        <header class="topbar">
            <a class="brand" href="/">"spicehub"</a>
            <Suspense fallback=|| ()>
                {move || user().map(|u| view! { <Nav user=u/> })}
            </Suspense>
        </header>
        <main id="main">
            <ErrorBoundary fallback=|errors| {
                view! {
                    <section class="error-panel" role="alert">
                        <h1>"Something went wrong"</h1>
                        <p>"The page could not be shown. Reload it; if it keeps failing, tell your hub operator the time of this error."</p>
                        <ul>
                            {move || {
                                errors
                                    .get()
                                    .into_iter()
                                    .map(|(_, e)| {
                                        leptos::logging::error!("page error: {e}");
                                        view! { <li>{e.to_string()}</li> }
                                    })
                                    .collect_view()
                            }}
                        </ul>
                    </section>
                }
            }>
                <Outlet/>
            </ErrorBoundary>
        </main>
    }
}

#[component]
fn Nav(user: UserInfo) -> impl IntoView {
    let is_admin = user.is_admin;
    view! {
        <nav aria-label="Main">
            <ul class="tabs">
                <Show when=move || is_admin>
                    <li><A href="/providers">"Git Providers"</A></li>
                    <li><A href="/repositories">"Repositories"</A></li>
                    <li><A href="/webhooks">"Webhooks"</A></li>
                </Show>
                <li><A href="/registries">"Registries"</A></li>
            </ul>
        </nav>
        <div class="account">
            <span class="who" title="Signed in">{user.email.clone()}</span>
            <span class="role">{if is_admin { "admin" } else { "viewer" }}</span>
            // A plain form post, not an ActionForm: the server answers with a
            // redirect and the full page load drops every piece of client
            // state that belonged to the signed-in user.
            <form method="post" action="/api/sign_out">
                <button type="submit" class="link-button">"Sign out"</button>
            </form>
        </div>
    }
}
