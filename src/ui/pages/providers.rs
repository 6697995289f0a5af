use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::{AdminOnly, EmptyState};

/// The Git Providers tab.
#[component]
pub fn ProvidersPage() -> impl IntoView {
    view! {
        <Title text="Git Providers"/>
        <AdminOnly>
            <h1>"Git Providers"</h1>
            <EmptyState title="No Git provider yet">
                <p>
                    "spicehub reads your repositories as an application: a Microsoft Entra ID app registration "
                    "(tenant ID, client ID and a client secret or certificate) added as a user to your Azure DevOps organization. "
                    "No personal access token tied to one person is needed."
                </p>
                <p>
                    "Next step: register the app in Entra ID and add its service principal to the organization with the Basic access level. "
                    "The in-hub setup form for Azure DevOps is not available in this version yet."
                </p>
            </EmptyState>
        </AdminOnly>
    }
}
