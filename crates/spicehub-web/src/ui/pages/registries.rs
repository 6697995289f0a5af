//! The Registries tab: every registry of every repository (at the commit
//! each repository shows), filterable. The filter is a plain GET form
//! (`?q=`), so it works before the page hydrates; afterwards it filters as
//! you type, keeping the address in step.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::session::set_status;
use crate::api::viewer::{
    encode_component, list_registries, registry_path, repository_path, RegistryRow, ViewerError,
};
use crate::ui::components::EmptyState;

/// The Registries tab: open to every signed-in user.
#[component]
pub fn RegistriesPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let rows = Resource::new_blocking(move || q.get(), list_registries);
    let navigate = use_navigate();
    let on_input = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        let trimmed = value.trim();
        let target = if trimmed.is_empty() {
            "/registries".to_owned()
        } else {
            format!("/registries?q={}", encode_component(trimmed))
        };
        navigate(
            &target,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    };

    view! {
        <Title text="Registries"/>
        <h1>"Registries"</h1>
        <form
            class="filter-bar"
            method="get"
            action="/registries"
            role="search"
            on:submit=|ev| ev.prevent_default()
        >
            <label for="registry-filter">"Filter registries"</label>
            <input
                id="registry-filter"
                type="search"
                name="q"
                value=move || q.get_untracked()
                placeholder="Registry, label or repository"
                autocomplete="off"
                on:input=on_input
            />
            <button type="submit">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading registries…"</p> }>
            {move || Suspend::new(async move {
                match rows.await {
                    Ok(rows) => registry_table(rows, q.get_untracked()).into_any(),
                    Err(e) => error_panel(&e).into_any(),
                }
            })}
        </Transition>
    }
}

fn registry_table(rows: Vec<RegistryRow>, q: String) -> impl IntoView {
    let q = q.trim().to_owned();
    if rows.is_empty() {
        return if q.is_empty() {
            view! {
                <EmptyState title="No registry found yet">
                    <p>
                        "Registries are found by reading the Python code of replicated repositories "
                        "(for example " <code>"pipelines = Registry(\"pipelines\")"</code> " and "
                        <code>"@pipelines.register"</code> "). They appear here after a repository has synced."
                    </p>
                    <p>"If you expected some, ask a hub admin to add your repository."</p>
                </EmptyState>
            }
            .into_any()
        } else {
            view! {
                <p class="results-count" role="status">
                    "No registry matches “" {q} "”. " <a href="/registries">"Show all registries"</a>
                </p>
            }
            .into_any()
        };
    }
    let count = rows.len();
    let summary = if q.is_empty() {
        format!(
            "{count} {}",
            if count == 1 { "registry" } else { "registries" }
        )
    } else {
        format!(
            "{count} {} matching “{q}”",
            if count == 1 { "registry" } else { "registries" }
        )
    };
    view! {
        <p class="results-count" role="status">{summary}</p>
        <table class="data-table">
            <thead>
                <tr>
                    <th scope="col">"Registry"</th>
                    <th scope="col">"Repository"</th>
                    <th scope="col" class="num">"Entries"</th>
                    <th scope="col" class="num">"Diagnostics"</th>
                </tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|r| {
                        let registry_href = registry_path(&r.repository_id, &r.registry_id);
                        let repo_href = repository_path(&r.repository_id);
                        let diagnostics_href = format!("{repo_href}#diagnostics");
                        let has_diagnostics = r.diagnostics_count > 0;
                        view! {
                            <tr>
                                <td>
                                    <a class="strong" href=registry_href>{r.label.clone()}</a>
                                    <div class="muted small"><code>{r.registry_id.clone()}</code></div>
                                </td>
                                <td><a href=repo_href>{r.repository_name.clone()}</a></td>
                                <td class="num">{r.entry_count}</td>
                                <td class="num">
                                    {if has_diagnostics {
                                        view! {
                                            <a class="badge warn" href=diagnostics_href>
                                                {r.diagnostics_count}
                                            </a>
                                        }
                                            .into_any()
                                    } else {
                                        view! { <span class="badge">"0"</span> }.into_any()
                                    }}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

/// A failed server call, said plainly; sets the page's status on the server.
pub fn error_panel(error: &ViewerError) -> impl IntoView {
    set_status(error.status());
    let heading = match error {
        ViewerError::RepositoryNotFound(_) | ViewerError::RegistryNotFound { .. } => "Not found",
        ViewerError::NotSignedIn => "Signed out",
        _ => "Something went wrong",
    };
    view! {
        <section class="error-panel" role="alert">
            <h2>{heading}</h2>
            <p>{error.to_string()}</p>
            <p><a href="/registries">"Back to Registries"</a></p>
        </section>
    }
}
