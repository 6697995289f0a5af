use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::session::set_status;

#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Not found"/>
        <main id="main" class="narrow">
            <section class="empty-state">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address. It may have been a repository or registry that was removed."</p>
                <p><a href="/">"Back to spicehub"</a></p>
            </section>
        </main>
    }
}
