//! A repository's timeline (`/registries/:repo/-/history`): every synced
//! commit the hub keeps, newest first, with its author, time and message
//! and, per registry, the entries and edges it added, removed and changed,
//! each linked to its diff view and the commit in Azure DevOps.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::viewer::{
    repository_path, repository_timeline, CommitRow, RegistryChangeRow, TimelineData, TimelineRow,
};
use crate::ui::components::EmptyState;
use crate::ui::pages::registries::error_panel;

#[component]
pub fn TimelinePage() -> impl IntoView {
    let params = use_params_map();
    let repo = Memo::new(move |_| params.read().get("repo").unwrap_or_default());
    let timeline = Resource::new_blocking(move || repo.get(), repository_timeline);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading the history…"</p> }>
            {move || Suspend::new(async move {
                match timeline.await {
                    Ok(t) => timeline_view(t).into_any(),
                    Err(e) => view! {
                        <Title text="Not found"/>
                        <h1>"History"</h1>
                        {error_panel(&e)}
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// A commit's name, author and message, as the timeline and the diff view
/// show it.
pub fn commit_heading(c: &CommitRow) -> impl IntoView {
    let id = match &c.link {
        Some(link) => view! {
            <a href=link.clone() rel="noopener noreferrer" title="Open the commit in Azure DevOps">
                <code title=c.commit.clone()>{c.short.clone()}</code>
            </a>
        }
        .into_any(),
        None => view! { <code title=c.commit.clone()>{c.short.clone()}</code> }.into_any(),
    };
    view! {
        <span class="commit-id">{id}</span>
        {c.current.then(|| view! { " " <span class="badge info">"current"</span> })}
        " "
        <span class="commit-title">{c.title.clone().unwrap_or_else(|| "(no message)".to_owned())}</span>
        <span class="muted small commit-meta">
            {c.author.clone().map(|a| format!(" · {a}"))}
            {c.authored.clone().map(|t| format!(" · {t}"))}
            {format!(" · synced {}", c.synced)}
        </span>
    }
}

/// `entries: 1 added, 2 changed`; empty when all three are 0.
fn tally(what: &str, added: u32, removed: u32, changed: u32) -> Option<String> {
    let parts: Vec<String> = [(added, "added"), (removed, "removed"), (changed, "changed")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect();
    (!parts.is_empty()).then(|| format!("{what}: {}", parts.join(", ")))
}

fn counts(r: &RegistryChangeRow) -> String {
    let parts: Vec<String> = [
        tally(
            "entries",
            r.entries_added,
            r.entries_removed,
            r.entries_changed,
        ),
        tally("edges", r.edges_added, r.edges_removed, r.edges_changed),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "declaration changed".to_owned()
    } else {
        parts.join("; ")
    }
}

fn registry_change(r: RegistryChangeRow) -> impl IntoView {
    let status = match r.status.as_str() {
        "added" => Some("new registry"),
        "removed" => Some("registry removed"),
        _ => None,
    };
    let summary = counts(&r);
    let name = match r.open.clone() {
        Some(href) => view! { <a href=href><code>{r.registry.clone()}</code></a> }.into_any(),
        None => view! { <code>{r.registry.clone()}</code> }.into_any(),
    };
    view! {
        <li class="registry-change" data-registry=r.registry.clone()>
            {name}
            {status.map(|s| view! { " " <span class="badge">{s}</span> })}
            " "
            <span class="change-counts">{summary}</span>
            {r.diff.map(|d| view! { " · " <a href=d>"See the diff"</a> })}
        </li>
    }
}

fn commit_item(row: TimelineRow) -> impl IntoView {
    let TimelineRow {
        commit,
        first,
        registries,
    } = row;
    let body = if first {
        view! { <p class="muted">"The first commit the hub synced: its registries are where the history starts."</p> }
            .into_any()
    } else if registries.is_empty() {
        view! { <p class="muted">"No registry changed."</p> }.into_any()
    } else {
        view! { <ul class="registry-changes">{registries.into_iter().map(registry_change).collect_view()}</ul> }
            .into_any()
    };
    view! {
        <li class="timeline-commit" id=format!("commit-{}", commit.commit) data-commit=commit.commit.clone()>
            <div class="timeline-heading">{commit_heading(&commit)}</div>
            {body}
        </li>
    }
}

fn timeline_view(t: TimelineData) -> impl IntoView {
    let TimelineData {
        repository,
        commits,
        retention,
    } = t;
    let name = repository.name.clone();
    view! {
        <Title text=format!("History · {name}")/>
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <ol>
                <li><a href="/registries">"Registries"</a></li>
                <li><a href=repository_path(&repository.id)>{name.clone()}</a></li>
                <li><span aria-current="page">"History"</span></li>
            </ol>
        </nav>
        <h1>"History of " {name}</h1>
        <p class="muted">{retention}</p>
        {if commits.is_empty() {
            view! {
                <EmptyState title="No synced commit kept yet">
                    <p>"The history starts with the next sync of this repository."</p>
                </EmptyState>
            }
            .into_any()
        } else {
            view! { <ol class="timeline">{commits.into_iter().map(commit_item).collect_view()}</ol> }
                .into_any()
        }}
    }
}
