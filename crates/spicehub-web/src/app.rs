//! The HTML shell and the router: which page answers which path.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::api::session::{current_user, SignIn};
use crate::ui::layout::Layout;
use crate::ui::pages::{
    diff::DiffPage,
    not_found::NotFound,
    picker::AddRepositoriesPage,
    provider_delete::DeleteProviderPage,
    providers::{NewProviderPage, ProviderFormPage, ProvidersPage},
    registries::RegistriesPage,
    registry::RegistryPage,
    repositories::{ChangeBranchPage, RemoveRepositoryPage, RepositoriesPage},
    repository::RepositoryPage,
    signin::SignInPage,
    timeline::TimelinePage,
    webhooks::WebhooksPage,
};
use crate::ui::session::SessionContext;

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        // The page's CSP names this response's nonce, so the hydration
        // script runs and no injected inline script does.
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            let nonce = leptos::nonce::use_nonce();
            let policy = crate::csp::content_security_policy(nonce.as_deref());
            if let Ok(value) = http::HeaderValue::from_str(&policy) {
                response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
            }
        }
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let sign_in = ServerAction::<SignIn>::new();
    let user = Resource::new_blocking(move || sign_in.version().get(), |_| current_user());
    provide_context(SessionContext { user, sign_in });

    view! {
        <Stylesheet id="leptos" href="/pkg/spicehub.css"/>
        <Link rel="icon" href="/favicon.ico"/>
        <Title formatter=|page: String| if page.is_empty() { "spicehub".to_owned() } else { format!("{page} · spicehub") }/>
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/signin") view=SignInPage/>
                <ParentRoute path=path!("") view=Layout>
                    <Route path=path!("/") view=|| view! { <Redirect path="/registries"/> }/>
                    // The admin pages wait for their data before sending
                    // HTML, so they work before (and without) the wasm bundle.
                    <Route path=path!("/providers") view=ProvidersPage ssr=SsrMode::Async/>
                    <Route path=path!("/providers/new") view=NewProviderPage ssr=SsrMode::Async/>
                    <Route path=path!("/providers/new/azure-devops") view=ProviderFormPage ssr=SsrMode::Async/>
                    <Route path=path!("/providers/:id") view=ProviderFormPage ssr=SsrMode::Async/>
                    <Route path=path!("/providers/:id/repositories") view=AddRepositoriesPage ssr=SsrMode::Async/>
                    <Route path=path!("/providers/:id/delete") view=DeleteProviderPage ssr=SsrMode::Async/>
                    <Route path=path!("/repositories") view=RepositoriesPage ssr=SsrMode::Async/>
                    <Route path=path!("/repositories/:id/remove") view=RemoveRepositoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/repositories/:id/branch") view=ChangeBranchPage ssr=SsrMode::Async/>
                    <Route path=path!("/webhooks") view=WebhooksPage ssr=SsrMode::Async/>
                    // The viewer's pages wait for their data too: streamed
                    // out of order, a page whose data comes late (a big
                    // registry) resolved it with inline scripts, which the
                    // policy refuses, so it never hydrated.
                    <Route path=path!("/registries") view=RegistriesPage ssr=SsrMode::Async/>
                    // The viewer's pages for one repository and one registry
                    // (`/repositories` is the admin tab, a different page).
                    <Route path=path!("/registries/:repo") view=RepositoryPage ssr=SsrMode::Async/>
                    <Route path=path!("/registries/:repo/:registry") view=RegistryPage ssr=SsrMode::Async/>
                    // History: `-` is no registry's name, so a registry
                    // named `history` keeps its own page.
                    <Route path=path!("/registries/:repo/-/history") view=TimelinePage ssr=SsrMode::Async/>
                    <Route path=path!("/registries/:repo/:registry/diff") view=DiffPage ssr=SsrMode::Async/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
