//! The Registries tab: every registry of every repository (at the commit
//! each repository shows), and a search that also finds entries by name
//! across all of them, with their registry, file and line. The search is a
//! plain GET form (`?q=`), so it works before the page hydrates; afterwards
//! it searches as you type, keeping the address in step.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::session::set_status;
use crate::api::viewer::{
    encode_component, list_registries, registry_path, repository_path, search_entries, view_query,
    EntryHits, RegistryRow, Selection, ViewSpec, ViewerError,
};
use crate::ui::components::EmptyState;

/// The Registries tab: open to every signed-in user.
#[component]
pub fn RegistriesPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let rows = Resource::new_blocking(move || q.get(), list_registries);
    let entries = Resource::new_blocking(
        move || q.get(),
        |q| async move {
            if q.trim().is_empty() {
                Ok(EntryHits::default())
            } else {
                search_entries(q).await
            }
        },
    );
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
            <label for="registry-filter">"Search registries and entries"</label>
            <input
                id="registry-filter"
                type="search"
                name="q"
                value=move || q.get_untracked()
                placeholder="Registry, repository or entry name"
                autocomplete="off"
                on:input=on_input
            />
            <button type="submit">"Search"</button>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading registries…"</p> }>
            {move || Suspend::new(async move {
                let (rows, entries) = (rows.await, entries.await);
                match (rows, entries) {
                    (Ok(rows), Ok(entries)) => {
                        let q = q.get_untracked();
                        view! {
                            {registry_table(rows, q.clone(), entries.hits.is_empty())}
                            {entry_table(entries, q)}
                        }
                        .into_any()
                    }
                    (Err(e), _) | (_, Err(e)) => error_panel(&e).into_any(),
                }
            })}
        </Transition>
    }
}

fn registry_table(rows: Vec<RegistryRow>, q: String, no_entries: bool) -> impl IntoView {
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
                    {if no_entries { "No registry or entry matches “" } else { "No registry matches “" }}
                    {q} "”. " <a href="/registries">"Show all registries"</a>
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

/// The entries found by name; nothing when no search was typed.
fn entry_table(found: EntryHits, q: String) -> impl IntoView {
    if found.hits.is_empty() {
        return ().into_any();
    }
    let count = found.hits.len();
    let summary = if found.more {
        format!("The first {count} entries matching “{}”", q.trim())
    } else {
        format!(
            "{count} {} matching “{}”",
            if count == 1 { "entry" } else { "entries" },
            q.trim()
        )
    };
    view! {
        <section class="entry-hits" aria-labelledby="entry-hits-title">
            <h2 id="entry-hits-title">"Entries"</h2>
            <p class="results-count">{summary}</p>
            <table class="data-table">
                <thead>
                    <tr>
                        <th scope="col">"Entry"</th>
                        <th scope="col">"Registry"</th>
                        <th scope="col">"Repository"</th>
                        <th scope="col">"Defined in"</th>
                    </tr>
                </thead>
                <tbody>
                    {found
                        .hits
                        .into_iter()
                        .map(|h| {
                            // Opens the registry with the entry selected.
                            let entry_href = format!(
                                "{}{}",
                                registry_path(&h.repository_id, &h.registry_id),
                                view_query(&ViewSpec::Full, true, Some(&Selection::Node(h.name.clone())), None)
                            );
                            let place = format!("{}:{}", h.file, h.line);
                            view! {
                                <tr data-entry=h.name.clone()>
                                    <td>
                                        <a class="strong" href=entry_href>{h.name.clone()}</a>
                                        <div class="muted small">{h.kind.clone()}</div>
                                    </td>
                                    <td><a href=registry_path(&h.repository_id, &h.registry_id)><code>{h.registry_id.clone()}</code></a></td>
                                    <td><a href=repository_path(&h.repository_id)>{h.repository_name.clone()}</a></td>
                                    <td>
                                        {match h.source {
                                            Some(href) => view! { <a href=href target="_blank" rel="noreferrer"><code>{place}</code></a> }.into_any(),
                                            None => view! { <code>{place}</code> }.into_any(),
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
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
