//! A repository as the viewer sees it (`/registries/:repo`): its registries
//! and the parser's diagnostics at the commit it shows. Open to viewers; the
//! admin tab `/repositories` is a different page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::viewer::{
    history_path, registry_path, repository_overview, DiagnosticRow, RepositoryContents,
};
use crate::ui::components::EmptyState;
use crate::ui::pages::registries::error_panel;

#[component]
pub fn RepositoryPage() -> impl IntoView {
    let params = use_params_map();
    let repo = Memo::new(move |_| params.read().get("repo").unwrap_or_default());
    let overview = Resource::new_blocking(move || repo.get(), repository_overview);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading the repository…"</p> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(o) => repository_view(o).into_any(),
                    Err(e) => view! {
                        <Title text="Not found"/>
                        <h1>"Repository"</h1>
                        {error_panel(&e)}
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// The first characters of a commit id, as Git shows them.
pub fn short_commit(commit: &str) -> String {
    commit.chars().take(10).collect()
}

fn repository_view(o: RepositoryContents) -> impl IntoView {
    let RepositoryContents {
        repository,
        registries,
        diagnostics,
    } = o;
    let name = repository.name.clone();
    let commit = repository.commit.clone();
    let web_url = repository
        .web_url
        .clone()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    let repo_id = repository.id.clone();
    view! {
        <Title text=name.clone()/>
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <ol>
                <li><a href="/registries">"Registries"</a></li>
                <li><span aria-current="page">{name.clone()}</span></li>
            </ol>
        </nav>
        <h1>{name}</h1>
        <p class="meta muted">
            {match commit {
                Some(c) => view! { "Showing commit " <code title=c.clone()>{short_commit(&c)}</code> }.into_any(),
                None => view! { "Not synced yet: no commit to show." }.into_any(),
            }}
            {web_url.map(|u| view! { " · " <a href=u rel="noopener noreferrer">"Open in Azure DevOps"</a> })}
            " · "
            <a href=history_path(&repo_id)>"History: what each push changed"</a>
        </p>

        <section aria-labelledby="registries-title">
            <h2 id="registries-title">"Registries"</h2>
            {if registries.is_empty() {
                view! {
                    <EmptyState title="No registry in this repository">
                        <p>"The parser found no registry declaration or decorator registry at this commit. Diagnostics below may say why."</p>
                    </EmptyState>
                }
                    .into_any()
            } else {
                view! {
                    <table class="data-table">
                        <thead>
                            <tr>
                                <th scope="col">"Registry"</th>
                                <th scope="col">"Declared in"</th>
                                <th scope="col" class="num">"Entries"</th>
                                <th scope="col" class="num">"Diagnostics"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {registries
                                .into_iter()
                                .map(|r| {
                                    view! {
                                        <tr>
                                            <td>
                                                <a class="strong" href=registry_path(&repo_id, &r.registry_id)>
                                                    {r.label.clone()}
                                                </a>
                                                <div class="muted small"><code>{r.registry_id.clone()}</code></div>
                                            </td>
                                            <td><code>{format!("{}:{}", r.file, r.line)}</code></td>
                                            <td class="num">{r.entry_count}</td>
                                            <td class="num">{r.diagnostics_count}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }}
        </section>

        <section id="diagnostics" aria-labelledby="diagnostics-title">
            <h2 id="diagnostics-title">"Diagnostics"</h2>
            {diagnostics_table(diagnostics)}
        </section>
    }
}

fn diagnostics_table(diagnostics: Vec<DiagnosticRow>) -> impl IntoView {
    if diagnostics.is_empty() {
        return view! { <p class="muted">"The parser reported nothing at this commit."</p> }
            .into_any();
    }
    view! {
        <p class="muted">
            "What the parser could not read or resolve. Fix these in the code; the next push updates the list."
        </p>
        <table class="data-table diagnostics">
            <thead>
                <tr>
                    <th scope="col">"File"</th>
                    <th scope="col" class="num">"Line"</th>
                    <th scope="col">"Severity"</th>
                    <th scope="col">"Message"</th>
                </tr>
            </thead>
            <tbody>
                {diagnostics
                    .into_iter()
                    .map(|d| {
                        let severity_class = format!("badge {}", d.severity);
                        view! {
                            <tr>
                                <td>
                                    {match d.link {
                                        Some(link) => view! {
                                            <a href=link rel="noopener noreferrer"><code>{d.file.clone()}</code></a>
                                        }
                                            .into_any(),
                                        None => view! { <code>{d.file.clone()}</code> }.into_any(),
                                    }}
                                </td>
                                <td class="num">{d.line}</td>
                                <td><span class=severity_class>{d.severity.clone()}</span></td>
                                <td>{d.message.clone()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
