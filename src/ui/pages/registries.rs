use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::EmptyState;

/// The Registries tab: open to every signed-in user.
#[component]
pub fn RegistriesPage() -> impl IntoView {
    view! {
        <Title text="Registries"/>
        <h1>"Registries"</h1>
        <EmptyState title="No registry found yet">
            <p>
                "Registries are found by reading the Python code of replicated repositories "
                "(for example " <code>"pipelines = Registry(\"pipelines\")"</code> " and "
                <code>"@pipelines.register"</code> "). They appear here after a repository has synced."
            </p>
            <p>"If you expected some, ask a hub admin to add your repository."</p>
        </EmptyState>
    }
}
