//! The Repositories tab: every replicated repository with its live state
//! (polled every two seconds after hydration), a filter, and the manual
//! actions. Each action is a small plain form inside a `<details>` menu,
//! so the page works without JavaScript too.

use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::admin::{
    list_repositories, repository_branches, RemoveRepository, RepoRow, RepositoryAction,
    SetTrackedBranch,
};
use crate::ui::components::{
    loading, AdminErrorView, AdminOnly, CopyButton, DiagnosisBox, EmptyState,
};
use crate::ui::pages::provider_delete::RemovalDone;

fn matches(row: &RepoRow, filter: &str) -> bool {
    let f = filter.trim().to_lowercase();
    f.is_empty()
        || [
            &row.organization,
            &row.project,
            &row.name,
            &row.branch,
            &row.state_label,
        ]
        .iter()
        .any(|v| v.to_lowercase().contains(&f))
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Repositories tab.
#[component]
pub fn RepositoriesPage() -> impl IntoView {
    let query = use_query_map();
    let filter = RwSignal::new(query.read_untracked().get("q").unwrap_or_default());
    let tick = RwSignal::new(0u64);
    let act = ServerAction::<RepositoryAction>::new();
    let rows = Resource::new(
        move || (tick.get(), act.version().get()),
        |_| list_repositories(),
    );
    // Live status: poll while the page is open (the browser only).
    Effect::new(move |_| {
        let handle =
            set_interval_with_handle(move || tick.update(|t| *t += 1), Duration::from_secs(2)).ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    });
    let all = move || rows.get().and_then(|r| r.ok()).unwrap_or_default();
    let shown = move || {
        let f = filter.get();
        all()
            .into_iter()
            .filter(|r| matches(r, &f))
            .collect::<Vec<_>>()
    };
    let error = move || rows.get().and_then(|r| r.err());
    view! {
        <Title text="Repositories"/>
        <AdminOnly>
            <div class="page-head">
                <h1>"Repositories"</h1>
                <a class="button secondary" href="/providers">"Add repositories"</a>
            </div>
            <form method="get" action="/repositories" class="filter" role="search">
                <label for="filter">"Filter"</label>
                <input id="filter" name="q" type="search" placeholder="organization, project, repository, state"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev))/>
                <noscript><button type="submit" class="secondary">"Filter"</button></noscript>
            </form>
            <div class="live" role="status" aria-live="polite">
                {move || act.value().get().map(|r| match r {
                    Ok(message) => view! { <p class="status-ok">{message}</p> }.into_any(),
                    Err(e) => view! { <AdminErrorView error=e/> }.into_any(),
                })}
            </div>
            <Transition fallback=loading>
                {move || error().map(|e| view! { <AdminErrorView error=e/> })}
                <Show when=move || rows.get().is_some_and(|r| r.as_ref().is_ok_and(|v| v.is_empty()))>
                    <EmptyState title="No repository is replicated yet">
                        <p>
                            "Repositories appear here once a Git provider is set up and you pick them from your Azure DevOps organization. "
                            "Start in " <a href="/providers">"Git Providers"</a> "."
                        </p>
                    </EmptyState>
                </Show>
                <Show when=move || !all().is_empty()>
                    <table class="repos">
                        <caption class="sr-only">"Replicated repositories and their sync state"</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Repository"</th>
                                <th scope="col">"Branch"</th>
                                <th scope="col">"Last synced commit"</th>
                                <th scope="col">"Last sync"</th>
                                <th scope="col">"State"</th>
                                <th scope="col">"Last webhook"</th>
                                <th scope="col"><span class="sr-only">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>
                            // Keyed by id: a poll updates a row's cells in
                            // place, so an open action menu (and what is
                            // typed in it) survives the refresh.
                            <For each=shown key=|r| r.id.clone() let:row>
                                <Row row rows=Signal::derive(all) act/>
                            </For>
                        </tbody>
                    </table>
                </Show>
            </Transition>
        </AdminOnly>
    }
}

#[component]
fn Row(
    row: RepoRow,
    rows: Signal<Vec<RepoRow>>,
    act: ServerAction<RepositoryAction>,
) -> impl IntoView {
    // What stays: the names and links of the menu. The rest follows the
    // latest poll.
    let id = row.id.clone();
    let current = Memo::new(move |_| {
        rows.get()
            .into_iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| row.clone())
    });
    let r = current.get_untracked();
    let label = format!("{}/{}/{}", r.organization, r.project, r.name);
    let registries = format!("/registries?q={}", encode_query(&r.name));
    let remove = format!("/repositories/{}/remove", r.id);
    let change_branch = format!("/repositories/{}/branch", r.id);
    let commit_input = format!("commit-{}", r.id);
    let id = r.id.clone();
    let form = move |action: &'static str, text: &'static str| {
        let id = id.clone();
        view! {
            <ActionForm action=act attr:class="menu-form">
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="action" value=action/>
                <button type="submit" class="menu-item">{text}</button>
            </ActionForm>
        }
    };
    let branch_link = change_branch.clone();
    view! {
        <tr data-state=move || current.get().state data-repo=r.name.clone()>
            <th scope="row">
                {move || {
                    let r = current.get();
                    view! {
                        <span class="muted">{r.organization.clone()} " / " {r.project.clone()} " / "</span>
                        {match r.web_url.clone() {
                            Some(u) => view! { <a href=u rel="noreferrer" target="_blank">{r.name.clone()}</a> }.into_any(),
                            None => view! { <span>{r.name.clone()}</span> }.into_any(),
                        }}
                    }
                }}
            </th>
            <td class="branch">
                {move || {
                    let r = current.get();
                    view! {
                        {r.branch.clone()}
                        {r.follows_default.then(|| view! { <span class="muted">" (default)"</span> })}
                    }
                }}
            </td>
            <td>
                {move || {
                    let r = current.get();
                    view! {
                        {match (r.commit_short.clone(), r.commit_url.clone()) {
                            (Some(s), Some(u)) => view! { <a class="commit" href=u rel="noreferrer" target="_blank" title=r.commit.clone()><code>{s}</code></a> }.into_any(),
                            (Some(s), None) => view! { <code class="commit">{s}</code> }.into_any(),
                            _ => view! { <span class="muted">"none yet"</span> }.into_any(),
                        }}
                        {r.commit.clone().map(|full| view! {
                            " " <CopyButton text=full label=format!("commit hash of {}", r.name)/>
                        })}
                    }
                }}
            </td>
            <td>{move || current.get().last_synced.unwrap_or_else(|| "never".into())}</td>
            <td class="state">
                {move || {
                    let r = current.get();
                    let change_branch = branch_link.clone();
                    view! {
                        <span class=format!("badge state-{}", r.state)>{r.state_label.clone()}</span>
                        {progress(&r)}
                        {sync_note(&r)}
                        {match r.diagnosis.clone() {
                            Some(d) if r.state != "in_sync" => view! { <DiagnosisBox diagnosis=d/> }.into_any(),
                            _ => r.error.clone().filter(|_| r.state != "in_sync").map(|e| view! { <p class="error-text">{e}</p> }).into_any(),
                        }}
                        {r.branch_missing.then(|| view! {
                            <a class="button secondary" href=change_branch>"Change tracked branch…"</a>
                        })}
                    }
                }}
            </td>
            <td>{move || current.get().last_webhook.unwrap_or_else(|| "none".into())}</td>
            <td>
                <details class="row-menu">
                    <summary>"Actions" <span class="sr-only">" for " {label.clone()}</span></summary>
                    <div class="menu">
                        {form("entire", "Synchronize entire repository")}
                        {form("recent", "Synchronize recent changes")}
                        <ActionForm action=act attr:class="menu-form from-commit">
                            <input type="hidden" name="id" value=r.id.clone()/>
                            <input type="hidden" name="action" value="from_commit"/>
                            <label for=commit_input.clone()>"Synchronize from commit hash"</label>
                            <input id=commit_input name="commit" type="text" required pattern="[0-9a-fA-F]{7,40}"
                                minlength="7" maxlength="40" spellcheck="false" autocomplete="off"
                                placeholder="full or short hash (7+ characters)"/>
                            <button type="submit" class="menu-item">"Synchronize from this commit"</button>
                        </ActionForm>
                        {form("reparse", "Re-parse")}
                        <a class="menu-item" href=change_branch.clone()>"Change tracked branch…"</a>
                        <a class="menu-item" href=registries>"Open its registries"</a>
                        <a class="menu-item danger" href=remove>"Remove…"</a>
                    </div>
                </details>
            </td>
        </tr>
    }
}

/// A running job's progress: bytes while downloading, files after.
fn progress(r: &RepoRow) -> Option<impl IntoView> {
    (r.state == "syncing").then(|| {
        let phase = r.phase.clone().unwrap_or_else(|| "starting".into());
        let amount = |n: i64| {
            if phase == "downloading" {
                crate::api::admin::human_size(u64::try_from(n).unwrap_or(0))
            } else {
                n.to_string()
            }
        };
        let text = match (r.progress_done, r.progress_total) {
            (Some(d), Some(t)) if t > 0 => format!("{phase} {} of {}", amount(d), amount(t)),
            (Some(d), _) if d > 0 => format!("{phase} {}", amount(d)),
            _ => phase.clone(),
        };
        let max = r.progress_total.filter(|t| *t > 0);
        let done = r.progress_done.unwrap_or(0);
        view! {
            <span class="progress-text">{text.clone()}</span>
            {max.map(|t| view! {
                <progress max=t.to_string() value=done.to_string() aria-label=text/>
            })}
        }
    })
}

/// Remove: asks for confirmation.
#[component]
pub fn RemoveRepositoryPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let rows = Resource::new(|| (), |_| list_repositories());
    let remove = ServerAction::<RemoveRepository>::new();
    let confirm = move || {
        Suspend::new(async move {
            let rows = match rows.await {
                Ok(r) => r,
                Err(e) => return view! { <AdminErrorView error=e/> }.into_any(),
            };
            match rows.into_iter().find(|r| r.id == id()) {
                        None => view! {
                            <p>"This repository is not replicated (any more). " <a href="/repositories">"Back to Repositories"</a></p>
                        }
                        .into_any(),
                        Some(r) => view! {
                            <section class="card confirm">
                                <p>
                                    "Remove " <strong>{format!("{}/{}/{}", r.organization, r.project, r.name)}</strong>
                                    " from the hub? Its replicated files, graphs and pending syncs are deleted, "
                                    "and so is the service hook the hub created for it in Azure DevOps. "
                                    "The repository itself does not change; you can add it again later."
                                </p>
                                <ActionForm action=remove attr:class="form">
                                    <input type="hidden" name="id" value=r.id.clone()/>
                                    {move || remove.value().get().and_then(|v| v.err()).map(|e| view! { <AdminErrorView error=e/> })}
                                    <div class="actions">
                                        <button type="submit" class="danger">"Remove repository"</button>
                                        <a class="button secondary" href="/repositories">"Cancel"</a>
                                    </div>
                                </ActionForm>
                            </section>
                        }
                        .into_any(),
                    }
        })
    };
    view! {
        <Title text="Remove repository"/>
        <AdminOnly>
            <h1>"Remove repository"</h1>
            // A result stays on this page only when a service hook was left
            // behind; otherwise the server function sends the browser back
            // to the list.
            {move || match remove.value().get() {
                Some(Ok(done)) => view! {
                    <RemovalDone done message="The repository was removed from the hub." back="/repositories" back_label="Back to Repositories"/>
                }
                .into_any(),
                _ => view! { <Suspense fallback=loading>{confirm}</Suspense> }.into_any(),
            }}
        </AdminOnly>
    }
}

/// "Change tracked branch…": the repository's branches as Azure DevOps
/// lists them now, "Follow the default branch" first. Saving queues a full
/// sync of the chosen branch and goes back to the list.
#[component]
pub fn ChangeBranchPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let choices = Resource::new(id, repository_branches);
    let save = ServerAction::<SetTrackedBranch>::new();
    let form = move || {
        Suspend::new(async move {
            let c = match choices.await {
                Ok(c) => c,
                Err(e) => {
                    return view! {
                        <AdminErrorView error=e/>
                        <p><a href="/repositories">"Back to Repositories"</a></p>
                    }
                    .into_any()
                }
            };
            let follow = match &c.default_branch {
                Some(b) => format!("Follow the default branch (currently {b})"),
                None => "Follow the default branch".to_owned(),
            };
            let now = if c.follows_default {
                format!("{} (it follows the default branch)", c.branch)
            } else {
                c.branch.clone()
            };
            let pinned = (!c.follows_default).then(|| c.branch.clone());
            let options = c
                .branches
                .into_iter()
                .map(|b| {
                    let selected = pinned.as_deref() == Some(b.as_str());
                    let value = b.clone();
                    view! { <option value=value selected=selected>{b}</option> }
                })
                .collect_view();
            view! {
                <section class="card">
                    <p>
                        "The hub replicates " <strong>{c.repository}</strong> " from " <code>{now}</code> ". "
                        "A repository that follows the default branch moves with it when it changes in Azure DevOps; "
                        "a branch you pick stays tracked whatever the default."
                    </p>
                    <ActionForm action=save attr:class="form">
                        <input type="hidden" name="id" value=c.id/>
                        <label for="branch">"Branch to track"</label>
                        <select id="branch" name="branch">
                            <option value="" selected=c.follows_default>{follow}</option>
                            {options}
                        </select>
                        <p class="hint">
                            "Saving synchronizes the entire repository from the chosen branch, "
                            "and moves the branch filter of the service hook the hub created for it."
                        </p>
                        {move || save.value().get().and_then(|v| v.err()).map(|e| view! { <AdminErrorView error=e/> })}
                        <div class="actions">
                            <button type="submit">"Save"</button>
                            <a class="button secondary" href="/repositories">"Cancel"</a>
                        </div>
                    </ActionForm>
                </section>
            }
            .into_any()
        })
    };
    view! {
        <Title text="Change tracked branch"/>
        <AdminOnly>
            <h1>"Change tracked branch"</h1>
            // A result stays on this page only when a service hook could
            // not be updated; otherwise the server function sends the
            // browser back to the list.
            {move || match save.value().get() {
                Some(Ok(message)) => view! {
                    <div role="status"><p class="status-ok">{message}</p></div>
                    <p><a href="/repositories">"Back to Repositories"</a></p>
                }
                .into_any(),
                _ => view! { <Suspense fallback=loading>{form}</Suspense> }.into_any(),
            }}
        </AdminOnly>
    }
}

/// What the last sync did, and a link to what its commit changed. One
/// erased view: the state cell is already deep, and a debug build renders
/// it on a 2 MiB worker stack.
fn sync_note(r: &RepoRow) -> AnyView {
    if r.state != "in_sync" {
        return ().into_any();
    }
    view! {
        {r.note.clone().map(|n| view! { <span class="muted note">{n}</span> })}
        {r.changes.clone().map(|href| view! { " " <a class="changes-link" href=href>"What changed"</a> })}
    }
    .into_any()
}
