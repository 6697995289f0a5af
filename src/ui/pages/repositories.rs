use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::{AdminOnly, EmptyState};

/// The Repositories tab.
#[component]
pub fn RepositoriesPage() -> impl IntoView {
    view! {
        <Title text="Repositories"/>
        <AdminOnly>
            <h1>"Repositories"</h1>
            <EmptyState title="No repository is replicated yet">
                <p>
                    "Repositories appear here once a Git provider is set up and you pick them from your Azure DevOps organization. "
                    "Start in " <a href="/providers">"Git Providers"</a> "."
                </p>
            </EmptyState>
        </AdminOnly>
    }
}
