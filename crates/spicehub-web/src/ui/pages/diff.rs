//! What changed in one registry between two synced commits
//! (`/registries/:repo/:registry/diff?from=&to=&show=`). By default `from`
//! is the synced commit before `to`, and `to` the current one. Both
//! commits' entries are drawn together: what was added and changed is
//! marked, what was removed is drawn as a ghost where it was, and the list
//! beside the drawing names every change. `show=changed` draws only the
//! changes and their neighbours (the default for a registry too big to
//! read whole); `show=all` everything.

use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::viewer::{
    diff_path, encode_component, history_path, registry_diff, registry_path, repository_path,
    repository_timeline, with_commit, ChangeMark, ChangeRow, DiffRequest, Drawing,
    RegistryDiffData, Selection, Zoom,
};
use crate::ui::graph::GraphCanvas;
use crate::ui::pages::registries::error_panel;
use crate::ui::pages::registry::non_empty;
use crate::ui::pages::timeline::commit_heading;

#[component]
pub fn DiffPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let repo = Memo::new(move |_| params.read().get("repo").unwrap_or_default());
    let registry = Memo::new(move |_| params.read().get("registry").unwrap_or_default());
    let request = Memo::new(move |_| {
        let q = query.read();
        DiffRequest {
            from: non_empty(q.get("from")),
            to: non_empty(q.get("to")),
            show: non_empty(q.get("show")),
        }
    });
    let selection = Memo::new(move |_| non_empty(query.read().get("node")).map(Selection::Node));
    let zoom = Memo::new(move |_| query.read().get("zoom").and_then(|z| Zoom::parse(&z)));
    let page = Resource::new_blocking(
        move || (repo.get(), registry.get(), request.get()),
        |(repo, registry, request)| registry_diff(repo, registry, request),
    );
    // The commits to pick from.
    let timeline = Resource::new_blocking(move || repo.get(), repository_timeline);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Comparing the commits…"</p> }>
            {move || Suspend::new(async move {
                let commits: Vec<(String, String)> = match timeline.await {
                    Ok(t) => t
                        .commits
                        .into_iter()
                        .map(|c| {
                            let label = format!(
                                "{} {}",
                                c.commit.short,
                                c.commit.title.clone().unwrap_or_default()
                            );
                            (c.commit.commit, label)
                        })
                        .collect(),
                    Err(_) => vec![],
                };
                match page.await {
                    Ok(d) => diff_view(d, commits, selection, zoom.get_untracked()).into_any(),
                    Err(e) => view! {
                        <Title text="Diff"/>
                        <h1>"What changed"</h1>
                        {error_panel(&e)}
                        <p><a href=history_path(&repo.get_untracked())>"Open the repository's history"</a></p>
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

/// A select of the kept commits, `chosen` selected.
fn commit_select(
    name: &'static str,
    label: &'static str,
    commits: &[(String, String)],
    chosen: &str,
) -> impl IntoView {
    let id = format!("diff-{name}");
    view! {
        <label for=id.clone()>{label}</label>
        <select id=id name=name>
            {commits
                .iter()
                .map(|(commit, text)| {
                    view! { <option value=commit.clone() selected=commit == chosen>{text.clone()}</option> }
                })
                .collect_view()}
        </select>
    }
}

fn change_item(c: ChangeRow) -> impl IntoView {
    let class = format!("change {} {}", c.mark.css(), c.what);
    let name = match c.link {
        Some(link) => {
            view! { <a href=link rel="noopener noreferrer"><code>{c.name.clone()}</code></a> }
                .into_any()
        }
        None => view! { <code>{c.name.clone()}</code> }.into_any(),
    };
    view! {
        <li class=class>
            <span class="change-sign" aria-hidden="true">{c.mark.sign()}</span>
            <span class="visually-hidden">{format!("{} {}: ", c.what, c.mark.describe())}</span>
            <span class="change-what muted small">{c.what.clone()}</span>
            " "
            {name}
            <span class="change-detail muted small">{format!(" {}", c.detail)}</span>
        </li>
    }
}

/// `Entries: 1 added, 1 removed, 1 changed. Edges: 2 added.`
fn summary(changes: &[ChangeRow]) -> String {
    let part = |what: &str, title: &str| {
        let counts: Vec<String> = [ChangeMark::Added, ChangeMark::Removed, ChangeMark::Changed]
            .into_iter()
            .filter_map(|mark| {
                let n = changes
                    .iter()
                    .filter(|c| c.what == what && c.mark == mark)
                    .count();
                (n > 0).then(|| format!("{n} {}", mark.describe()))
            })
            .collect();
        (!counts.is_empty()).then(|| format!("{title}: {}.", counts.join(", ")))
    };
    [part("entry", "Entries"), part("edge", "Edges")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

fn diff_view(
    d: RegistryDiffData,
    commits: Vec<(String, String)>,
    selection: Memo<Option<Selection>>,
    zoom: Option<Zoom>,
) -> impl IntoView {
    let RegistryDiffData {
        repository,
        registry,
        from,
        to,
        changes,
        changed_only,
        drawn_entries,
        drawing,
    } = d;
    let base = diff_path(
        &repository.id,
        &registry,
        Some(&from.commit),
        Some(&to.commit),
    );
    let show = |what: &str| format!("{base}&show={what}");
    let summary = if changes.is_empty() {
        "No entry or edge of this registry changed between these commits.".to_owned()
    } else {
        summary(&changes)
    };
    let here = {
        let base = if changed_only {
            show("changed")
        } else {
            show("all")
        };
        move |s: Option<Selection>, z: Option<Zoom>| {
            let mut url = base.clone();
            if let Some(Selection::Node(n) | Selection::Group(n)) = s {
                url.push_str(&format!("&node={}", encode_component(&n)));
            }
            if let Some(z) = z {
                url.push_str(&format!("&zoom={z}"));
            }
            url
        }
    };
    let graph = match drawing {
        None => None,
        Some(Drawing::Ready(layout)) => {
            let href = Callback::new(move |(s, z): (Option<Selection>, Option<Zoom>)| here(s, z));
            Some(
                view! {
                    <GraphCanvas
                        layout=Arc::new(layout)
                        selection=selection
                        zoom=zoom
                        href=href
                        label=format!("What changed in registry {registry}")
                        overview=None
                    />
                }
                .into_any(),
            )
        }
        Some(Drawing::TimedOut { .. }) => Some(
            view! { <p class="notice warn">"The drawing took too long to lay out. The list of changes is complete."</p> }
                .into_any(),
        ),
        Some(Drawing::UnknownNode(_)) => None,
        Some(Drawing::Failed(message)) => {
            Some(view! { <p class="notice warn">{message}</p> }.into_any())
        }
    };
    let open_to = with_commit(
        &registry_path(&repository.id, &registry),
        (!to.current).then_some(to.commit.as_str()),
    );
    let open_from = with_commit(
        &registry_path(&repository.id, &registry),
        Some(&from.commit),
    );
    let action = format!("{}/diff", registry_path(&repository.id, &registry));
    view! {
        <Title text=format!("Diff · {registry} · {}", repository.name)/>
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <ol>
                <li><a href="/registries">"Registries"</a></li>
                <li><a href=repository_path(&repository.id)>{repository.name.clone()}</a></li>
                <li><a href=registry_path(&repository.id, &registry)>{registry.clone()}</a></li>
                <li><span aria-current="page">"What changed"</span></li>
            </ol>
        </nav>
        <h1>"What changed in " <code>{registry.clone()}</code></h1>
        <dl class="diff-commits">
            <dt>"From"</dt>
            <dd>{commit_heading(&from)} " · " <a href=open_from>"Open"</a></dd>
            <dt>"To"</dt>
            <dd>{commit_heading(&to)} " · " <a href=open_to>"Open"</a></dd>
        </dl>
        {(commits.len() > 1).then(|| view! {
            <form class="inline-form diff-pick" method="get" action=action>
                {commit_select("from", "Compare", &commits, &from.commit)}
                {commit_select("to", "with", &commits, &to.commit)}
                <button type="submit">"Compare"</button>
            </form>
        })}
        <p class="diff-summary" role="status">{summary}</p>
        {(!changes.is_empty()).then(|| view! {
            <nav aria-label="What to draw" class="view-switch">
                <ul>
                    <li><a href=show("changed") aria-current=changed_only.then_some("page") class:current=changed_only>"Changed only and their neighbours"</a></li>
                    <li><a href=show("all") aria-current=(!changed_only).then_some("page") class:current=!changed_only>"Whole registry"</a></li>
                </ul>
            </nav>
        })}
        <div class="viewer diff-viewer">
            {graph.map(|g| view! {
                <section class="graph-panel" aria-labelledby="diff-graph-title">
                    <h2 id="diff-graph-title" class="panel-title">
                        {format!("{drawn_entries} {} drawn", if drawn_entries == 1 { "entry" } else { "entries" })}
                    </h2>
                    {g}
                </section>
            })}
            <aside class="details-panel change-list" aria-labelledby="changes-title">
                <h2 id="changes-title">"Changes"</h2>
                {if changes.is_empty() {
                    view! { <p class="muted">"Nothing changed."</p> }.into_any()
                } else {
                    view! { <ul class="changes">{changes.into_iter().map(change_item).collect_view()}</ul> }.into_any()
                }}
            </aside>
        </div>
        <section class="legend" aria-labelledby="diff-legend-title">
            <h2 id="diff-legend-title">"Legend"</h2>
            <ul class="legend-columns">
                <li><span class="swatch added" aria-hidden="true"></span>"Added"</li>
                <li><span class="swatch changed" aria-hidden="true"></span>"Changed (file, line, kind, docstring or dependencies)"</li>
                <li><span class="swatch removed" aria-hidden="true"></span>"Removed: drawn as a ghost where it was"</li>
            </ul>
        </section>
    }
}
