//! One registry as a graph (`/registries/:repo/:registry`). The server lays
//! it out with Graphviz and renders the SVG, so the page is complete before
//! the wasm bundle loads; every control is a link or a GET form first.
//!
//! The URL holds the state: `view=full|collapsed` (default by size),
//! `expand=<module>` (repeatable: modules opened in the collapsed view),
//! `focus=<node>&k=<hops>` (the neighbourhood of one node), `node=<name>` or
//! `group=<module>` (the selection shown in the side panel), `find=<text>`
//! (search) and `zoom=<x>,<y>,<w>` (the part of the drawing shown; absent
//! is Fit). After hydration, selecting and searching no longer reload the
//! page, and the drawing pans and zooms, recording its zoom in the URL.

use std::sync::Arc;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::viewer::{
    diff_path, export_path, history_path, node_details, registry_path, registry_view,
    repository_path, search_nodes, view_query, with_commit, Drawing, GraphNodeKind, NodeInfo,
    RegistryPageData, SearchHit, Selection, ViewRequest, ViewSpec, Zoom, DEFAULT_FOCUS_K,
    MAX_FOCUS_K,
};
use crate::ui::graph::GraphCanvas;
use crate::ui::pages::registries::error_panel;
use crate::ui::pages::repository::short_commit;
use crate::ui::pages::timeline::commit_heading;

/// What the page needs to build its links: where it is and what it shows.
#[derive(Clone)]
struct Here {
    repo: String,
    registry: String,
    view: ViewSpec,
    automatic: bool,
    /// The zoom the page was loaded at: links that keep the drawing (a new
    /// selection) keep it, so the page without JS stays where it was.
    zoom: Option<Zoom>,
    /// The past commit shown (`commit=`), which every link of the page keeps.
    commit: Option<String>,
}

impl Here {
    fn base(&self) -> String {
        registry_path(&self.repo, &self.registry)
    }

    /// This view with another selection.
    fn select(&self, selection: Option<&Selection>) -> String {
        self.select_at(selection, self.zoom)
    }

    /// This view with another selection, at `zoom`.
    fn select_at(&self, selection: Option<&Selection>, zoom: Option<Zoom>) -> String {
        self.at(format!(
            "{}{}",
            self.base(),
            view_query(&self.view, self.automatic, selection, zoom)
        ))
    }

    /// `url` at the commit shown.
    fn at(&self, url: String) -> String {
        with_commit(&url, self.commit.as_deref())
    }

    /// Another view, keeping a selection. Another view is another drawing,
    /// so it opens at Fit.
    fn with_view(&self, view: &ViewSpec, automatic: bool, selection: Option<&Selection>) -> String {
        self.at(format!(
            "{}{}",
            self.base(),
            view_query(view, automatic, selection, None)
        ))
    }

    fn focus(&self, node: &str, k: u32) -> String {
        self.with_view(
            &ViewSpec::Focus {
                node: node.to_owned(),
                k,
            },
            false,
            Some(&Selection::Node(node.to_owned())),
        )
    }

    fn expanded(&self) -> Vec<String> {
        match &self.view {
            ViewSpec::Expanded(groups) => groups.clone(),
            _ => vec![],
        }
    }

    /// The collapsed view with `group` opened too.
    fn expand(&self, group: &str) -> String {
        let mut groups = self.expanded();
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_owned());
            groups.sort();
        }
        self.with_view(
            &ViewSpec::Expanded(groups),
            false,
            Some(&Selection::Group(group.to_owned())),
        )
    }

    /// The collapsed view with `group` closed again.
    fn collapse(&self, group: &str) -> String {
        let groups: Vec<String> = self.expanded().into_iter().filter(|g| g != group).collect();
        let view = if groups.is_empty() {
            ViewSpec::Collapsed
        } else {
            ViewSpec::Expanded(groups)
        };
        self.with_view(&view, false, Some(&Selection::Group(group.to_owned())))
    }

    fn current_k(&self) -> u32 {
        match &self.view {
            ViewSpec::Focus { k, .. } => *k,
            _ => DEFAULT_FOCUS_K,
        }
    }
}

/// A query parameter, unless it is absent or blank.
pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[component]
pub fn RegistryPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let repo = Memo::new(move |_| params.read().get("repo").unwrap_or_default());
    let registry = Memo::new(move |_| params.read().get("registry").unwrap_or_default());
    let request = Memo::new(move |_| {
        let q = query.read();
        ViewRequest {
            mode: non_empty(q.get("view")),
            focus: non_empty(q.get("focus")),
            k: q.get("k").and_then(|k| k.trim().parse().ok()),
            expand: q.get_all("expand").unwrap_or_default(),
            commit: non_empty(q.get("commit")),
        }
    });
    let commit = Memo::new(move |_| non_empty(query.read().get("commit")));
    let selection = Memo::new(move |_| {
        let q = query.read();
        non_empty(q.get("node"))
            .map(Selection::Node)
            .or_else(|| non_empty(q.get("group")).map(Selection::Group))
            .or_else(|| non_empty(q.get("focus")).map(Selection::Node))
    });
    let find = Memo::new(move |_| query.read().get("find").unwrap_or_default());
    let zoom = Memo::new(move |_| query.read().get("zoom").and_then(|z| Zoom::parse(&z)));

    let page = Resource::new_blocking(
        move || (repo.get(), registry.get(), request.get()),
        |(repo, registry, request)| registry_view(repo, registry, request),
    );
    let details = Resource::new_blocking(
        move || (repo.get(), registry.get(), selection.get(), commit.get()),
        |(repo, registry, selection, commit)| async move {
            match selection {
                Some(s) => node_details(repo, registry, s, commit).await.map(Some),
                None => Ok(None),
            }
        },
    );
    // What the search box holds: the URL's `find` first, then what is typed.
    let search_text = RwSignal::new(find.get_untracked());
    Effect::new(move |_| search_text.set(find.get()));
    let hits = Resource::new(
        move || (repo.get(), registry.get(), search_text.get(), commit.get()),
        |(repo, registry, text, commit)| async move {
            if text.trim().is_empty() {
                Ok(vec![])
            } else {
                search_nodes(repo, registry, text, commit).await
            }
        },
    );

    view! {
        <Suspense fallback=|| view! { <p class="muted">"Laying out the graph…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(v) => {
                        registry_page(v, selection, zoom.get_untracked(), details, search_text, hits)
                            .into_any()
                    }
                    Err(e) => view! {
                        <Title text="Not found"/>
                        <h1>"Registry"</h1>
                        {error_panel(&e)}
                    }
                    .into_any(),
                }
            })}
        </Suspense>
    }
}

type DetailsResource = Resource<Result<Option<NodeInfo>, crate::api::viewer::ViewerError>>;
type HitsResource = Resource<Result<Vec<SearchHit>, crate::api::viewer::ViewerError>>;

fn registry_page(
    v: RegistryPageData,
    selection: Memo<Option<Selection>>,
    zoom: Option<Zoom>,
    details: DetailsResource,
    search_text: RwSignal<String>,
    hits: HitsResource,
) -> impl IntoView {
    let here = Here {
        repo: v.repository.id.clone(),
        registry: v.registry.id.clone(),
        view: v.view.clone(),
        automatic: v.automatic,
        zoom,
        commit: v.past.as_ref().map(|p| p.commit.clone()),
    };
    let title = format!("{} · {}", v.registry.label, v.repository.name);
    let drawn: Arc<Vec<String>> = Arc::new(match &v.drawing {
        Drawing::Ready(layout) => layout
            .nodes
            .iter()
            .filter(|n| !n.group_box)
            .map(|n| n.id.clone())
            .collect(),
        _ => vec![],
    });

    view! {
        <Title text=title/>
        <nav class="breadcrumbs" aria-label="Breadcrumb">
            <ol>
                <li><a href="/registries">"Registries"</a></li>
                <li><a href=repository_path(&v.repository.id)>{v.repository.name.clone()}</a></li>
                <li><span aria-current="page">{v.registry.label.clone()}</span></li>
            </ol>
        </nav>
        <header class="page-head">
            <h1>{v.registry.label.clone()}</h1>
            <p class="meta muted">
                <code>{v.registry.id.clone()}</code>
                " · declared in "
                {source_ref(&v.registry.file, v.registry.line, v.registry.link.clone())}
                {format!(
                    " · {} {} · {} {}",
                    v.entry_count,
                    if v.entry_count == 1 { "entry" } else { "entries" },
                    v.edge_count,
                    if v.edge_count == 1 { "dependency" } else { "dependencies" },
                )}
                {(v.dangling_count > 0).then(|| format!(" ({} dangling)", v.dangling_count))}
                {v.repository.commit.clone().map(|c| view! { " · commit " <code title=c.clone()>{short_commit(&c)}</code> })}
            </p>
        </header>

        {past_note(&v)}
        {toolbar(&here, &v, search_text, hits)}
        {v.past.is_none().then(|| downloads(&here))}
        {view_note(&here, &v)}

        <div class="viewer">
            <section class="graph-panel" aria-labelledby="graph-title">
                <h2 id="graph-title" class="panel-title">{view_title(&v.view)}</h2>
                {drawing(&here, &v, selection)}
            </section>
            <aside class="details-panel" aria-labelledby="details-title" aria-live="polite">
                <Transition fallback=|| view! { <p class="muted">"Loading details…"</p> }>
                    {
                        let here = here.clone();
                        let drawn = drawn.clone();
                        move || {
                            let here = here.clone();
                            let drawn = drawn.clone();
                            Suspend::new(async move {
                                match details.await {
                                    Ok(d) => details_view(&here, d, &drawn).into_any(),
                                    Err(e) => view! {
                                        <h2 id="details-title">"Details"</h2>
                                        <p class="form-error" role="alert">{e.to_string()}</p>
                                    }
                                    .into_any(),
                                }
                            })
                        }
                    }
                </Transition>
            </aside>
        </div>
        {legend()}
    }
}

/// Says that the page shows a past commit, and how to get back.
fn past_note(v: &RegistryPageData) -> Option<impl IntoView> {
    let past = v.past.as_ref()?;
    let current = registry_path(&v.repository.id, &v.registry.id);
    let history = history_path(&v.repository.id);
    let diff = diff_path(&v.repository.id, &v.registry.id, Some(&past.commit), None);
    Some(view! {
        <div class="notice past-commit" role="status">
            <p>
                "You are looking at an earlier commit, "
                {commit_heading(past)}
                ", not the current one."
            </p>
            <p>
                <a href=current>"Show the current commit"</a>
                " · "
                <a href=diff>"What changed since"</a>
                " · "
                <a href=history>"History"</a>
            </p>
        </div>
    })
}

fn view_title(view: &ViewSpec) -> String {
    match view {
        ViewSpec::Full => "Whole registry".to_owned(),
        ViewSpec::Collapsed => "By module".to_owned(),
        ViewSpec::Expanded(groups) => format!(
            "By module, {} expanded",
            if groups.len() == 1 {
                groups[0].clone()
            } else {
                format!("{} modules", groups.len())
            }
        ),
        ViewSpec::Focus { node, k } => format!(
            "Around {node}: {k} {}",
            if *k == 1 { "hop" } else { "hops" }
        ),
    }
}

/// `file:line`, linked to Azure DevOps when the repository's address is known.
fn source_ref(file: &str, line: u32, link: Option<String>) -> impl IntoView {
    let text = format!("{file}:{line}");
    match link {
        Some(href) => view! {
            <a href=href rel="noopener noreferrer" title="Open this line in Azure DevOps"><code>{text}</code></a>
        }
        .into_any(),
        None => view! { <code>{text}</code> }.into_any(),
    }
}

/// The hidden fields that keep the current view (and the commit shown)
/// when a GET form is sent.
fn view_fields(view: &ViewSpec, automatic: bool, commit: Option<&str>) -> impl IntoView {
    let mut fields: Vec<(&'static str, String)> = match view {
        _ if automatic => vec![],
        ViewSpec::Full => vec![("view", "full".into())],
        ViewSpec::Collapsed => vec![("view", "collapsed".into())],
        ViewSpec::Expanded(groups) => groups.iter().map(|g| ("expand", g.clone())).collect(),
        ViewSpec::Focus { node, k } => vec![("focus", node.clone()), ("k", k.to_string())],
    };
    if let Some(commit) = commit {
        fields.push(("commit", commit.to_owned()));
    }
    fields
        .into_iter()
        .map(|(name, value)| view! { <input type="hidden" name=name value=value/> })
        .collect_view()
}

fn toolbar(
    here: &Here,
    v: &RegistryPageData,
    search_text: RwSignal<String>,
    hits: HitsResource,
) -> impl IntoView {
    let view_link = |label: &'static str, target: ViewSpec, current: bool| {
        let href = here.with_view(&target, false, None);
        view! {
            <li>
                <a href=href aria-current=current.then_some("page") class:current=current>{label}</a>
            </li>
        }
    };
    let is_full = v.view == ViewSpec::Full;
    let is_collapsed = matches!(v.view, ViewSpec::Collapsed | ViewSpec::Expanded(_));
    let focus_value = match &v.view {
        ViewSpec::Focus { node, .. } => node.clone(),
        _ => String::new(),
    };
    let k = here.current_k();
    let navigate = use_navigate();
    let here_submit = here.clone();
    let on_search_submit = move |ev: leptos::ev::SubmitEvent| {
        // Hydrated: select the best hit without a reload and put the
        // keyboard on its node.
        ev.prevent_default();
        let text = search_text.get_untracked();
        let best = hits.get_untracked().and_then(|r| r.ok()).and_then(|hits| {
            let exact = hits
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(text.trim()))
                .cloned();
            exact.or_else(|| hits.first().cloned())
        });
        let Some(hit) = best else {
            return;
        };
        navigate(
            &here_submit.select(Some(&Selection::Node(hit.name.clone()))),
            NavigateOptions {
                scroll: false,
                ..Default::default()
            },
        );
        focus_node(&hit.name);
    };
    let here_hits = here.clone();
    let view_fields_search = view_fields(&v.view, v.automatic, here.commit.as_deref());
    let commit_field = here
        .commit
        .clone()
        .map(|c| view! { <input type="hidden" name="commit" value=c/> });
    view! {
        <div class="viewer-bar">
            <nav aria-label="Views" class="view-switch">
                <ul>
                    {view_link("Whole registry", ViewSpec::Full, is_full)}
                    {view_link("By module", ViewSpec::Collapsed, is_collapsed)}
                </ul>
            </nav>
            <form class="inline-form search" method="get" action=here.base() role="search" on:submit=on_search_submit>
                {view_fields_search}
                <label for="node-search">"Find a node"</label>
                <input
                    id="node-search"
                    type="search"
                    name="find"
                    autocomplete="off"
                    placeholder="Entry name"
                    aria-describedby="search-results"
                    value=search_text.get_untracked()
                    on:input=move |ev| search_text.set(event_target_value(&ev))
                />
                <button type="submit">"Find"</button>
                <div id="search-results" class="search-results">
                    <Transition fallback=|| ()>
                        {
                            let here = here_hits.clone();
                            move || {
                                let here = here.clone();
                                Suspend::new(async move {
                                    let text = search_text.get_untracked();
                                    match hits.await {
                                        Ok(found) if found.is_empty() && !text.trim().is_empty() => view! {
                                            <p class="muted" role="status">"No node matches “" {text} "”."</p>
                                        }
                                        .into_any(),
                                        Ok(found) if found.is_empty() => ().into_any(),
                                        Ok(found) => hit_list(&here, found).into_any(),
                                        Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                                    }
                                })
                            }
                        }
                    </Transition>
                </div>
            </form>
            <form class="inline-form focus" method="get" action=here.base()>
                {commit_field}
                <label for="focus-node">"Focus on"</label>
                <input id="focus-node" type="text" name="focus" required placeholder="Node name" value=focus_value autocomplete="off"/>
                <label for="focus-k">"Hops"</label>
                <input id="focus-k" type="number" name="k" min="1" max=MAX_FOCUS_K.to_string() value=k.to_string() class="narrow-input"/>
                <button type="submit">"Focus"</button>
            </form>
        </div>
    }
}

/// Links that download this view (SVG, PNG) and the registry (JSON). They
/// carry the view's parameters, so they follow it as it changes.
fn downloads(here: &Here) -> impl IntoView {
    let query = view_query(&here.view, here.automatic, None, None);
    let link = |format: &'static str, label: &'static str, what: &'static str| {
        let href = format!("{}{query}", export_path(&here.repo, &here.registry, format));
        view! {
            <li>
                <a
                    href=href
                    download=""
                    rel="nofollow"
                    aria-label=what
                    data-testid=format!("export-{format}")
                >
                    {label}
                </a>
            </li>
        }
    };
    view! {
        <div class="downloads" role="group" aria-labelledby="downloads-title">
            <span id="downloads-title" class="downloads-title">"Download"</span>
            <ul>
                {link("svg", "SVG", "Download this view as SVG")}
                {link("png", "PNG", "Download this view as PNG")}
                {link("json", "JSON", "Download the registry as JSON")}
            </ul>
        </div>
    }
}

fn hit_list(here: &Here, hits: Vec<SearchHit>) -> impl IntoView {
    let count = hits.len();
    view! {
        <p class="visually-hidden" role="status">{format!("{count} matching {}", if count == 1 { "node" } else { "nodes" })}</p>
        <ul class="hits" aria-label="Matching nodes">
            {hits
                .into_iter()
                .map(|h| {
                    let href = here.select(Some(&Selection::Node(h.name.clone())));
                    view! {
                        <li>
                            <a href=href>{h.name.clone()}</a>
                            " "
                            <span class="muted small">{format!("{} · {}", h.kind.describe(), h.group)}</span>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}

/// Puts keyboard focus on a node of the drawing, if it is drawn.
fn focus_node(name: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let doc = document();
        let Ok(Some(el)) = doc.query_selector(&format!(
            "[data-node=\"{}\"]",
            name.replace('\\', "\\\\").replace('"', "\\\"")
        )) else {
            return;
        };
        if let Ok(el) = el.dyn_into::<leptos::web_sys::SvgElement>() {
            let _ = el.focus();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = name;
}

fn view_note(here: &Here, v: &RegistryPageData) -> impl IntoView {
    match &v.view {
        ViewSpec::Collapsed if v.automatic => Some(
            view! {
                <p class="notice">
                    {format!(
                        "This registry has {} nodes, more than {}, so it is shown by module: each box counts its entries. ",
                        v.node_count, v.collapse_threshold
                    )}
                    "Select a module to list its entries and expand it, or focus on one node and its neighbours. "
                    <a href=here.with_view(&ViewSpec::Full, false, None)>"Draw every node anyway"</a>
                    " (slow for big registries)."
                </p>
            }
            .into_any(),
        ),
        ViewSpec::Expanded(groups) => {
            let collapse_all = here.with_view(&ViewSpec::Collapsed, false, None);
            Some(
                view! {
                    <p class="notice">
                        "Expanded: "
                        {groups
                            .iter()
                            .map(|g| {
                                let href = here.collapse(g);
                                let label = format!("Collapse {g}");
                                view! {
                                    <code>{g.clone()}</code>
                                    " ("<a href=href aria-label=label>"collapse"</a>") "
                                }
                            })
                            .collect_view()}
                        <a href=collapse_all>"Collapse all"</a>
                    </p>
                }
                .into_any(),
            )
        }
        ViewSpec::Focus { node, k } => {
            let fewer = (*k > 1).then(|| here.focus(node, k - 1));
            let more = (*k < MAX_FOCUS_K).then(|| here.focus(node, k + 1));
            let back = here.with_view(&ViewSpec::Full, true, Some(&Selection::Node(node.clone())));
            Some(
                view! {
                    <p class="notice">
                        {format!(
                            "Showing what {node} depends on and what depends on it, up to {k} {} away. ",
                            if *k == 1 { "step" } else { "steps" }
                        )}
                        {fewer.map(|h| view! { <a href=h>"Fewer hops"</a> " · " })}
                        {more.map(|h| view! { <a href=h>"More hops"</a> " · " })}
                        <a href=back>"Back to the whole registry"</a>
                    </p>
                }
                .into_any(),
            )
        }
        _ => None,
    }
}

fn drawing(here: &Here, v: &RegistryPageData, selection: Memo<Option<Selection>>) -> impl IntoView {
    let seconds = |ms: u64| {
        if ms >= 1000 {
            format!("{} s", ms / 1000)
        } else {
            format!("{ms} ms")
        }
    };
    // The smaller picture offered when this one cannot be read or drawn.
    let by_module = (!matches!(v.view, ViewSpec::Collapsed))
        .then(|| here.with_view(&ViewSpec::Collapsed, false, None));
    match &v.drawing {
        Drawing::Ready(layout) if layout.nodes.is_empty() => view! {
            <p class="muted">"This registry has no entries yet."</p>
        }
        .into_any(),
        Drawing::Ready(layout) => {
            let zoom = here.zoom;
            let here = here.clone();
            let href = Callback::new(move |(s, z): (Option<Selection>, Option<Zoom>)| {
                here.select_at(s.as_ref(), z)
            });
            view! {
                <GraphCanvas
                    layout=Arc::new(layout.clone())
                    selection=selection
                    zoom=zoom
                    href=href
                    label=format!("Graph of registry {}", v.registry.label)
                    overview=by_module
                />
            }
            .into_any()
        }
        Drawing::TimedOut { timeout_ms } => {
            view! {
                <div class="notice warn" role="status">
                    <h3>"This view took too long to lay out"</h3>
                    <p>
                        {format!(
                            "Graphviz did not finish within {} for this view ({} nodes in the registry). ",
                            seconds(*timeout_ms),
                            v.node_count
                        )}
                        "Show a smaller part instead: focus on one node and its neighbours with "
                        <a href="#focus-node">"Focus on"</a>
                        " above"
                        {by_module.map(|h| view! { ", or " <a href=h>"show it by module"</a> })}
                        "."
                    </p>
                    {focus_suggestions(here, &v.focus_suggestions)}
                </div>
            }
            .into_any()
        }
        Drawing::UnknownNode(name) => view! {
            <div class="notice warn" role="status">
                <p>
                    "There is no node “" {name.clone()} "” in this registry at the commit shown. "
                    "Search for it with " <a href="#node-search">"Find a node"</a> "."
                </p>
                {focus_suggestions(here, &v.focus_suggestions)}
            </div>
        }
        .into_any(),
        Drawing::Failed(message) => view! {
            <div class="error-panel" role="alert">
                <p>{message.clone()}</p>
                {focus_suggestions(here, &v.focus_suggestions)}
            </div>
        }
        .into_any(),
    }
}

fn focus_suggestions(here: &Here, names: &[String]) -> impl IntoView {
    (!names.is_empty()).then(|| {
        view! {
            <p>"Focus on one of the best-connected entries:"</p>
            <ul class="chips">
                {names
                    .iter()
                    .map(|n| {
                        let href = here.focus(n, DEFAULT_FOCUS_K);
                        view! { <li><a href=href>{n.clone()}</a></li> }
                    })
                    .collect_view()}
            </ul>
        }
    })
}

fn node_links(here: &Here, names: &[String], group: bool) -> impl IntoView {
    if names.is_empty() {
        return view! { <p class="muted small">"None"</p> }.into_any();
    }
    view! {
        <ul class="node-links">
            {names
                .iter()
                .map(|n| {
                    let selection = if group {
                        Selection::Group(n.clone())
                    } else {
                        Selection::Node(n.clone())
                    };
                    let href = here.select(Some(&selection));
                    view! { <li><a href=href>{n.clone()}</a></li> }
                })
                .collect_view()}
        </ul>
    }
    .into_any()
}

fn details_view(here: &Here, details: Option<NodeInfo>, drawn: &[String]) -> impl IntoView {
    let Some(d) = details else {
        return view! {
            <h2 id="details-title">"Details"</h2>
            <p class="muted">
                "Select a node to see its details and to highlight what it depends on (upstream) "
                "and what depends on it (downstream). Click it, or move to it with Tab and press Enter."
            </p>
        }
        .into_any();
    };
    let clear = here.select(None);
    let (name, is_group) = match &d.selection {
        Selection::Node(n) => (n.clone(), false),
        Selection::Group(g) => (g.clone(), true),
    };
    let Some(kind) = d.kind else {
        return view! {
            <h2 id="details-title">{name.clone()}</h2>
            <p>"“" {name} "” is not in this registry at the commit shown."</p>
            <p><a href=clear>"Clear the selection"</a></p>
        }
        .into_any();
    };

    let in_collapsed_view = matches!(here.view, ViewSpec::Collapsed | ViewSpec::Expanded(_));
    let hidden_in_box = !is_group && in_collapsed_view && !drawn.iter().any(|n| n == &name);
    let not_in_focus = !is_group
        && matches!(here.view, ViewSpec::Focus { .. })
        && !drawn.iter().any(|n| n == &name);

    let kind_label = kind.describe();
    let actions = if is_group {
        let expanded = here.expanded().iter().any(|g| g == &name);
        view! {
            <p class="actions">
                {if kind == GraphNodeKind::Module && in_collapsed_view {
                    if expanded {
                        Some(view! { <a class="button" href=here.collapse(&name)>"Collapse this module"</a> }.into_any())
                    } else {
                        Some(view! { <a class="button" href=here.expand(&name)>"Expand this module"</a> }.into_any())
                    }
                } else {
                    None
                }}
                <a href=clear.clone()>"Clear the selection"</a>
            </p>
        }
        .into_any()
    } else {
        let k = here.current_k();
        view! {
            <p class="actions">
                <a class="button" href=here.focus(&name, k)>"Focus on this node"</a>
                {(hidden_in_box && kind == GraphNodeKind::Entry)
                    .then(|| view! { <a class="button" href=here.expand(&d.group)>"Expand its module"</a> })}
                <a href=clear.clone()>"Clear the selection"</a>
            </p>
        }
        .into_any()
    };

    let note = if hidden_in_box {
        Some(format!(
            "Drawn inside the module box {}: expand it or focus on this node to see it.",
            d.group
        ))
    } else if not_in_focus {
        Some("Not part of the focus view drawn: focus on it to see its neighbours.".to_owned())
    } else {
        None
    };

    let outside = match kind {
        GraphNodeKind::External if !is_group => {
            // `other.registry:entry`: open it in its own registry.
            name.split_once(':').map(|(registry, entry)| {
                let href = here.at(format!(
                    "{}{}",
                    registry_path(&here.repo, registry),
                    view_query(
                        &ViewSpec::Full,
                        true,
                        Some(&Selection::Node(entry.to_owned())),
                        None,
                    )
                ));
                view! {
                    <p>
                        "An entry of the registry " <code>{registry.to_owned()}</code> ". "
                        <a href=href>"Open it in its registry"</a>
                    </p>
                }
                .into_any()
            })
        }
        GraphNodeKind::Missing => Some(
            view! {
                <p class="warn-text">
                    "No entry has this name: the dependencies on it are dangling (dashed in the graph). "
                    "Register it, or fix the name where it is used."
                </p>
            }
            .into_any(),
        ),
        _ => None,
    };

    let entries = d
        .entries
        .iter()
        .map(|e| {
            view! {
                <div class="entry-card">
                    {is_group.then(|| {
                        let href = here.select(Some(&Selection::Node(e.name.clone())));
                        view! { <h3><a href=href>{e.name.clone()}</a></h3> }
                    })}
                    <dl class="facts">
                        <dt>"Kind"</dt>
                        <dd>{e.kind.clone()}</dd>
                        <dt>"Target"</dt>
                        <dd><code>{e.target.clone()}</code></dd>
                        <dt>"Defined in"</dt>
                        <dd>
                            {source_ref(&e.file, e.line, e.link.clone())}
                            {e.link.clone().map(|href| view! {
                                " " <a class="small" href=href rel="noopener noreferrer">"Open in Azure DevOps"</a>
                            })}
                        </dd>
                        {(!is_group).then(|| view! {
                            <dt>"Docstring"</dt>
                            <dd>
                                {match e.doc.clone() {
                                    Some(doc) => view! { <p class="doc">{doc}</p> }.into_any(),
                                    None => view! { <span class="muted">"None"</span> }.into_any(),
                                }}
                            </dd>
                        })}
                    </dl>
                </div>
            }
        })
        .collect_view();

    let more = (is_group && d.total_entries as usize > d.entries.len()).then(|| {
        format!(
            "Showing {} of {} entries.",
            d.entries.len(),
            d.total_entries
        )
    });

    view! {
        <h2 id="details-title" class="details-name">{name.clone()}</h2>
        <p class="muted">
            {if is_group {
                format!(
                    "{kind_label} · {} {}",
                    d.total_entries,
                    if d.total_entries == 1 { "node" } else { "nodes" }
                )
            } else {
                format!("{kind_label} · {}", d.group)
            }}
        </p>
        {note.map(|n| view! { <p class="notice small">{n}</p> })}
        {outside}
        {entries}
        {more.map(|m| view! { <p class="muted small">{m}</p> })}
        <h3>{if is_group { "Depends on modules" } else { "Depends on (upstream)" }}</h3>
        {node_links(here, &d.upstream, is_group)}
        <h3>{if is_group { "Used by modules" } else { "Used by (downstream)" }}</h3>
        {node_links(here, &d.downstream, is_group)}
        {actions}
    }
    .into_any()
}

fn legend() -> impl IntoView {
    let line = |class: &'static str, dash: Option<&'static str>| {
        view! {
            <svg class="legend-sample" width="40" height="12" viewBox="0 0 40 12" aria-hidden="true">
                <path class=format!("edge {class}") d="M2,6L38,6" stroke-dasharray=dash></path>
            </svg>
        }
    };
    let node = |class: &'static str| {
        view! {
            <svg class="legend-sample" width="28" height="16" viewBox="0 0 28 16" aria-hidden="true">
                <g class=format!("node {class}")>
                    <rect x="1" y="1" width="26" height="14" rx="3"></rect>
                </g>
            </svg>
        }
    };
    view! {
        <section class="legend" aria-labelledby="legend-title">
            <h2 id="legend-title">"Legend"</h2>
            <div class="legend-columns">
                <ul aria-label="Edge kinds">
                    <li>{line("explicit", None)} "Explicit dependency (" <code>"depends_on="</code> ", " <code>"requires="</code> ", …)"</li>
                    <li>{line("parameter", None)} "Dependency by parameter name"</li>
                    <li>{line("dangling", Some("5 4"))} "Dangling: the dependency names no entry"</li>
                </ul>
                <ul aria-label="Node kinds">
                    <li>{node("entry")} "Entry of this registry"</li>
                    <li>{node("module group")} "Module (collapsed; the number counts its entries)"</li>
                    <li>{node("external")} "Entry of another registry"</li>
                    <li>{node("missing")} "Missing dependency"</li>
                </ul>
                <ul aria-label="Highlight">
                    <li>{node("selected")} "Selected node"</li>
                    <li>{node("upstream")} "Upstream: what it depends on"</li>
                    <li>{node("downstream")} "Downstream: what depends on it"</li>
                </ul>
            </div>
        </section>
    }
}
