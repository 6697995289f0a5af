//! Add repositories: the organization's projects as the provider's service
//! principal sees them, each filled in with its repositories as Azure DevOps
//! answers, a few projects at a time. An organization of a hundred projects
//! is one request per project; waiting for the last before showing the first
//! left the admin looking at a spinner for as long as the slowest project.

use std::cell::Cell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::admin::{
    browse_project, browse_projects, get_provider, AddRepositories, AdminError, ProjectHead,
    ProjectList, ProjectRepos, RemoteRepo,
};
use crate::ui::components::{loading, AdminErrorView, AdminOnly, DiagnosisBox};

/// Projects whose repositories the browser asks for at once. Each request
/// also waits for the client's per-organization gate on the server, so this
/// only keeps the browser's own connections free for the rest of the page.
const PROJECTS_AT_ONCE: usize = 4;

/// What the browser knows of one project's repositories.
type Slot = RwSignal<Option<Result<ProjectRepos, AdminError>>>;

/// Add repositories: pick some, their first replication is queued.
#[component]
pub fn AddRepositoriesPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let org = move || query.read().get("org");
    let provider = Resource::new(id, get_provider);
    let listing = Resource::new(
        move || (id(), org()),
        |(id, org)| async move {
            match org.filter(|o| !o.trim().is_empty()) {
                Some(o) => browse_projects(id, o).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let add = ServerAction::<AddRepositories>::new();
    view! {
        <Title text="Add repositories"/>
        <AdminOnly>
            <h1>"Add repositories"</h1>
            <Suspense fallback=loading>
                {move || Suspend::new(async move {
                    let provider = match provider.await {
                        Ok(p) => p,
                        Err(e) => return view! { <AdminErrorView error=e/> }.into_any(),
                    };
                    let current = org().unwrap_or_else(|| provider.organization.clone());
                    let action = format!("/providers/{}/repositories", provider.id);
                    let listing = listing.await;
                    view! {
                        <p class="muted">"As " <a href=format!("/providers/{}", provider.id)>{provider.display_name.clone()}</a> " sees it."</p>
                        <Form method="GET" action=action attr:class="form inline-form">
                            <label for="org">"Organization"</label>
                            <div class="prefixed">
                                <span class="prefix" aria-hidden="true">"dev.azure.com/"</span>
                                <input id="org" name="org" type="text" value=current autocomplete="off" spellcheck="false"/>
                            </div>
                            <button type="submit" class="primary">"Look up"</button>
                        </Form>
                        {match listing {
                            Ok(None) => view! { <p class="muted">"Type the organization's name and look it up."</p> }.into_any(),
                            Err(e) => view! { <AdminErrorView error=e/> }.into_any(),
                            Ok(Some(l)) => view! { <Picker listing=l provider_id=provider.id.clone() add/> }.into_any(),
                        }}
                    }
                    .into_any()
                })}
            </Suspense>
        </AdminOnly>
    }
}

#[component]
fn Picker(
    listing: ProjectList,
    provider_id: String,
    add: ServerAction<AddRepositories>,
) -> impl IntoView {
    let pending = add.pending();
    let organization = listing.organization.clone();
    let total = listing.projects.len();
    // Rendered empty on the server and at hydration alike, then filled in
    // by the browser: the page never waits for the slowest project.
    let slots: Vec<Slot> = (0..total).map(|_| RwSignal::new(None)).collect();
    let filter = RwSignal::new(String::new());
    {
        let slots = slots.clone();
        let ids: Vec<String> = listing.projects.iter().map(|p| p.id.clone()).collect();
        let (provider_id, organization) = (provider_id.clone(), organization.clone());
        Effect::new(move |started: Option<()>| {
            if started.is_some() {
                return;
            }
            // Workers take the projects in the page's order, so the
            // projects at the top fill in first.
            let next = Rc::new(Cell::new(0usize));
            for _ in 0..PROJECTS_AT_ONCE.min(total) {
                let (next, slots, ids) = (next.clone(), slots.clone(), ids.clone());
                let (provider_id, organization) = (provider_id.clone(), organization.clone());
                leptos::task::spawn_local(async move {
                    loop {
                        let i = next.get();
                        let Some(project_id) = ids.get(i).cloned() else {
                            break;
                        };
                        next.set(i + 1);
                        let listed =
                            browse_project(provider_id.clone(), organization.clone(), project_id)
                                .await;
                        // The page is gone (the admin navigated away): stop.
                        if slots[i].try_set(Some(listed)).is_some() {
                            break;
                        }
                    }
                });
            }
        });
    }
    let counted = slots.clone();
    let loaded = Memo::new(move |_| counted.iter().filter(|s| s.with(Option::is_some)).count());
    let counted = slots.clone();
    let repositories = Memo::new(move |_| {
        counted
            .iter()
            .map(|s| {
                s.with(|r| {
                    r.as_ref()
                        .and_then(|r| r.as_ref().ok())
                        .map_or(0, |r| r.repositories.len())
                })
            })
            .sum::<usize>()
    });
    let counted = slots.clone();
    let none_visible = Memo::new(move |_| {
        loaded.get() == total
            && counted.iter().all(|s| {
                s.with(|r| {
                    matches!(r, Some(Ok(p)) if p.repositories.is_empty() && p.diagnosis.is_none())
                })
            })
    });
    let none_diagnosis = listing.none_visible.clone();
    view! {
        <ActionForm action=add attr:class="form picker">
            <input type="hidden" name="provider_id" value=provider_id/>
            <input type="hidden" name="organization" value=organization.clone()/>
            <h2>"Projects and repositories in " {organization}</h2>
            <div class="picker-tools">
                <label for="picker-filter">"Filter"</label>
                <input id="picker-filter" type="search" placeholder="Project or repository name" autocomplete="off"
                    prop:value=move || filter.get()
                    on:input=move |ev| filter.set(event_target_value(&ev).trim().to_lowercase())/>
                <span class="muted" role="status" aria-live="polite" data-testid="picker-progress">
                    {move || {
                        let (done, repos) = (loaded.get(), repositories.get());
                        if done < total {
                            format!("Listing repositories: {done} of {total} projects, {repos} repositories so far…")
                        } else {
                            format!("{repos} repositories in {total} projects.")
                        }
                    }}
                </span>
            </div>
            <noscript><p class="muted">"Without JavaScript, choose whole projects: every repository that can be added is added."</p></noscript>
            {move || none_visible.get().then(|| view! { <DiagnosisBox diagnosis=none_diagnosis.clone()/> })}
            {listing
                .projects
                .into_iter()
                .zip(slots)
                .map(|(project, repos)| view! { <ProjectPicker project repos filter/> })
                .collect_view()}
            {move || add.value().get().and_then(|r| r.err()).map(|e| view! { <AdminErrorView error=e/> })}
            <div class="actions">
                <button type="submit" class="primary" disabled=pending>
                    {move || if pending.get() { "Adding…" } else { "Continue" }}
                </button>
                <span class="hint">"The first replication of each repository is queued; you land on the Repositories tab."</span>
            </div>
        </ActionForm>
    }
}

fn can_add(r: &RemoteRepo) -> bool {
    r.unavailable.is_none() && !r.added
}

#[component]
fn ProjectPicker(project: ProjectHead, repos: Slot, filter: RwSignal<String>) -> impl IntoView {
    // "Select all" works before the project's repositories are listed: the
    // server lists them again when the form is sent.
    let all = RwSignal::new(false);
    // The repositories' checkboxes, once listed, for "Select all" to set.
    let checks: StoredValue<Vec<RwSignal<bool>>> = StoredValue::new(Vec::new());
    let all_id = format!("all-{}", project.id);
    let project_name = project.name.to_lowercase();
    let name_for_fieldset = project_name.clone();
    let hidden = move || {
        let f = filter.get();
        if f.is_empty() || name_for_fieldset.contains(&f) {
            return false;
        }
        repos.with(|s| match s {
            Some(Ok(p)) => !p
                .repositories
                .iter()
                .any(|r| r.name.to_lowercase().contains(&f)),
            _ => false,
        })
    };
    let selectable = move || {
        repos.with(|s| match s {
            Some(Ok(p)) => p.repositories.iter().any(can_add),
            Some(Err(_)) => false,
            None => true,
        })
    };
    let name = project.name.clone();
    let project_id = project.id.clone();
    view! {
        <fieldset class="project" data-project=project.name.clone() hidden=hidden aria-busy=move || repos.with(Option::is_none).to_string()>
            <legend>{project.name.clone()}</legend>
            <label class="choice select-all" for=all_id.clone() hidden=move || !selectable()>
                <input type="checkbox" id=all_id.clone() name=format!("project[id-{}]", project.id) value="all"
                    prop:checked=move || all.get()
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        all.set(on);
                        checks.with_value(|list| list.iter().for_each(|c| c.set(on)));
                    }/>
                " Select all in " {name}
            </label>
            {move || match repos.get() {
                None => view! { <p class="muted listing">"Listing repositories…"</p> }.into_any(),
                Some(Err(e)) => view! { <AdminErrorView error=e/> }.into_any(),
                Some(Ok(listed)) => view! {
                    <RepoList listed project_id=project_id.clone() project_name=project_name.clone() all checks filter/>
                }
                .into_any(),
            }}
        </fieldset>
    }
}

#[component]
fn RepoList(
    listed: ProjectRepos,
    project_id: String,
    project_name: String,
    all: RwSignal<bool>,
    checks: StoredValue<Vec<RwSignal<bool>>>,
    filter: RwSignal<String>,
) -> impl IntoView {
    view! {
        {listed.diagnosis.map(|d| view! { <DiagnosisBox diagnosis=d/> })}
        {listed.repositories.is_empty().then(|| view! { <p class="muted">"No repository in this project."</p> })}
        <ul class="repo-list">
            {listed
                .repositories
                .into_iter()
                .map(|r| {
                    let disabled = !can_add(&r);
                    // Starts as the project's "Select all" was when the list arrived.
                    let checked = RwSignal::new(!disabled && all.get_untracked());
                    if !disabled {
                        checks.update_value(|list| list.push(checked));
                    }
                    let input_id = format!("repo-{}", r.id);
                    let label_for = input_id.clone();
                    let reason = if r.added { Some("Already added".to_owned()) } else { r.unavailable.clone() };
                    let details = [r.default_branch.clone(), r.size.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · ");
                    let lowered = r.name.to_lowercase();
                    let project_name = project_name.clone();
                    let hidden = move || {
                        let f = filter.get();
                        !(f.is_empty() || lowered.contains(&f) || project_name.contains(&f))
                    };
                    view! {
                        <li class=if disabled { "repo unavailable" } else { "repo" } hidden=hidden>
                            <label class="choice" for=label_for>
                                <input type="checkbox" id=input_id name=format!("repo[id-{}]", r.id) value=project_id.clone()
                                    disabled=disabled
                                    prop:checked=move || checked.get()
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        checked.set(on);
                                        if !on {
                                            all.set(false);
                                        }
                                    }/>
                                " " <span class="repo-name">{r.name.clone()}</span>
                                {(!details.is_empty()).then(|| view! { <span class="muted">" " {details}</span> })}
                                {reason.map(|why| view! { " " <span class="badge">{why}</span> })}
                            </label>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
