//! `/providers/:id/delete`: deleting a Git provider, after a confirmation
//! that lists what goes with it (its repositories and their graphs, the
//! service hooks the hub created in Azure DevOps). Also the notice shown
//! when a removal could not delete a service hook, shared with the
//! repository's removal page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::admin::{provider_removal_plan, DeleteProvider, HookLeftView, RemovalView};
use crate::ui::components::{loading, AdminErrorView, AdminOnly};

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Service hooks a removal left in Azure DevOps, each with its project's
/// Service hooks page: Azure DevOps keeps posting pushes to the hub until
/// they are deleted there.
#[component]
pub fn HooksLeftNotice(left: Vec<HookLeftView>) -> impl IntoView {
    view! {
        <section class="notice warn" role="alert">
            <h3>"Some service hooks are still in Azure DevOps"</h3>
            <p>
                "The hub could not delete these service hooks it had created. "
                "Azure DevOps keeps sending pushes to the hub until you delete them on the project's Service hooks page."
            </p>
            <ul>
                {left.into_iter().map(|h| view! {
                    <li>
                        <strong>{h.repository.clone()}</strong> " (subscription " <code>{h.subscription_id.clone()}</code> "): "
                        {h.reason.clone()} " "
                        <a href=h.service_hooks_url.clone() rel="noreferrer" target="_blank">
                            "Open the Service hooks page of this project"
                        </a>
                    </li>
                }).collect_view()}
            </ul>
        </section>
    }
}

/// What a removal did, once done: the hooks left behind, if any.
#[component]
pub fn RemovalDone(
    done: RemovalView,
    #[prop(into)] message: String,
    #[prop(into)] back: String,
    #[prop(into)] back_label: String,
) -> impl IntoView {
    view! {
        <p class="status-ok" role="status">{message}</p>
        {(!done.hooks_left.is_empty()).then(|| view! { <HooksLeftNotice left=done.hooks_left.clone()/> })}
        <p><a href=back>{back_label}</a></p>
    }
}

/// Delete: asks for confirmation.
#[component]
pub fn DeleteProviderPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let plan = Resource::new(id, provider_removal_plan);
    let delete = ServerAction::<DeleteProvider>::new();
    let confirm = move || {
        Suspend::new(async move {
            let plan = match plan.await {
                Ok(p) => p,
                Err(e) => {
                    return view! {
                        <AdminErrorView error=e/>
                        <p><a href="/providers">"Back to Git Providers"</a></p>
                    }
                    .into_any()
                }
            };
            let repositories = plural(plan.repositories.len(), "repository", "repositories");
            let hooks = plural(plan.hooks, "service hook", "service hooks");
            view! {
                        <section class="card confirm">
                            <p>
                                "Delete " <strong>{plan.display_name.clone()}</strong>
                                " from the hub? This removes:"
                            </p>
                            <ul class="removal-list">
                                <li>{format!("{repositories}, with their replicated files and graphs")}</li>
                                <li>{format!("{hooks} the hub created in Azure DevOps (deleted there first)")}</li>
                                <li>"its client credential and webhook password: Azure DevOps webhooks that use them are refused from now on"</li>
                            </ul>
                            {(!plan.repositories.is_empty()).then(|| view! {
                                <details>
                                    <summary>"Repositories removed"</summary>
                                    <ul>
                                        {plan.repositories.iter().map(|r| view! { <li>{r.clone()}</li> }).collect_view()}
                                    </ul>
                                </details>
                            })}
                            <p>"The app registration and the repositories in Azure DevOps are not changed."</p>
                            <ActionForm action=delete attr:class="form">
                                <input type="hidden" name="id" value=plan.id.clone()/>
                                {move || delete.value().get().and_then(|v| v.err()).map(|e| view! { <AdminErrorView error=e/> })}
                                <div class="actions">
                                    <button type="submit" class="danger">"Delete provider"</button>
                                    <a class="button secondary" href=format!("/providers/{}", plan.id)>"Cancel"</a>
                                </div>
                            </ActionForm>
                        </section>
                    }
            .into_any()
        })
    };
    view! {
        <Title text="Delete Git provider"/>
        <AdminOnly>
            <h1>"Delete Git provider"</h1>
            {move || match delete.value().get() {
                Some(Ok(done)) => view! {
                    <RemovalDone done message="The Git provider was deleted." back="/providers" back_label="Back to Git Providers"/>
                }
                .into_any(),
                _ => view! { <Suspense fallback=loading>{confirm}</Suspense> }.into_any(),
            }}
        </AdminOnly>
    }
}
