//! The server half of a repository's timeline and of a registry's diff
//! view, compiled with `ssr` only. Both read `db::history`: the timeline
//! the counts each synced commit recorded, the diff two kept graphs, which
//! `spicehub_parser::diff` compares and which are drawn together, what was
//! removed as ghosts, so a change is seen where it happened.

use std::collections::{BTreeSet, HashMap};

use super::commits::commit_row;
use super::ssr::{bounded, draw_uncached, fail, repository_ref, unavailable};
use super::*;
use spicehub_core::db::graphs::RegistryGraph;
use spicehub_core::db::history::HistoryCommit;
use spicehub_core::db::Db;
use spicehub_core::graph::{View, DEFAULT_COLLAPSE_THRESHOLD};
use spicehub_parser::diff::{diff, EntryField, RegistryDiff, RegistryStatus};
use spicehub_parser::{Edge, EdgeKind, Entry};

fn status(status: RegistryStatus) -> &'static str {
    match status {
        RegistryStatus::Added => "added",
        RegistryStatus::Removed => "removed",
        RegistryStatus::Changed => "changed",
    }
}

fn retention_words(db: &Db) -> String {
    let r = db.history_retention();
    let days = r.max_age.as_secs() / (24 * 60 * 60);
    format!(
        "The hub keeps the graphs of the last {} synced commits and of every commit synced in \
         the last {days} days.",
        r.commits
    )
}

pub async fn repository_timeline(db: &Db, repository: &str) -> Result<TimelineData, ViewerError> {
    let repository = bounded(repository, "repository")?;
    let (repo, visible) = repository_ref(db, repository).await?;
    let kept = db.history(&repo.id).await.map_err(unavailable)?;
    let kept_ids: BTreeSet<&str> = kept.iter().map(|c| c.commit_id.as_str()).collect();
    let commits = kept
        .iter()
        .map(|c| {
            let current = visible.as_deref() == Some(c.commit_id.as_str());
            let base_kept = c
                .changes
                .base
                .as_deref()
                .is_some_and(|b| kept_ids.contains(b));
            let first = c.changes.base.is_none();
            TimelineRow {
                commit: commit_row(&repo, c, current),
                // The oldest kept commit's base may be gone: its counts are
                // still right, its diff link is not offered.
                first,
                registries: if first {
                    vec![]
                } else {
                    c.changes
                        .registries
                        .iter()
                        .map(|r| RegistryChangeRow {
                            status: status(r.status).to_owned(),
                            entries_added: r.counts.entries_added,
                            entries_removed: r.counts.entries_removed,
                            entries_changed: r.counts.entries_changed,
                            edges_added: r.counts.edges_added,
                            edges_removed: r.counts.edges_removed,
                            edges_changed: r.counts.edges_changed,
                            diff: base_kept.then(|| {
                                diff_path(
                                    &repo.id,
                                    &r.registry,
                                    c.changes.base.as_deref(),
                                    Some(&c.commit_id),
                                )
                            }),
                            open: (r.status != RegistryStatus::Removed).then(|| {
                                let path = registry_path(&repo.id, &r.registry);
                                if current {
                                    path
                                } else {
                                    with_commit(&path, Some(&c.commit_id))
                                }
                            }),
                            registry: r.registry.clone(),
                        })
                        .collect()
                },
            }
        })
        .collect();
    Ok(TimelineData {
        retention: retention_words(db),
        commits,
        repository: repo,
    })
}

/// A commit the diff view names, or its default.
async fn kept(db: &Db, repo: &RepositoryRef, commit: &str) -> Result<HistoryCommit, ViewerError> {
    let commit = bounded(commit, "commit")?.to_ascii_lowercase();
    db.history_commit(&repo.id, &commit)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            fail(ViewerError::CommitNotKept {
                repository: repo.name.clone(),
                commit,
            })
        })
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// What changed in an entry, in words.
fn entry_detail(old: &Entry, new: &Entry, fields: &[EntryField]) -> String {
    fields
        .iter()
        .map(|f| match f {
            EntryField::Line if old.file == new.file => format!("line {} → {}", old.line, new.line),
            EntryField::File => format!(
                "moved {}:{} → {}:{}",
                old.file, old.line, new.file, new.line
            ),
            EntryField::Line => String::new(),
            EntryField::Kind => format!("kind {:?} → {:?}", old.kind, new.kind).to_lowercase(),
            EntryField::Target => format!("target {} → {}", old.target, new.target),
            EntryField::Doc => "docstring".to_owned(),
            EntryField::Dependencies => "dependencies".to_owned(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn edge_name(e: &Edge) -> String {
    format!("{} → {}", e.from, e.to)
}

fn edge_kind(e: &Edge) -> &'static str {
    match e.kind {
        EdgeKind::Explicit => "explicit",
        EdgeKind::Parameter => "by parameter name",
    }
}

/// The change list, entries first, in the registry's order.
fn change_rows(d: &RegistryDiff, repo: &RepositoryRef, from: &str, to: &str) -> Vec<ChangeRow> {
    let web = repo.web_url.as_deref();
    let place = |e: &Entry| format!("{}:{}", e.file, e.line);
    let mut rows = Vec::new();
    for e in &d.entries_added {
        rows.push(ChangeRow {
            mark: ChangeMark::Added,
            what: "entry".into(),
            name: e.name.clone(),
            detail: place(e),
            link: source_link(web, Some(to), &e.file, e.line),
        });
    }
    for c in &d.entries_changed {
        rows.push(ChangeRow {
            mark: ChangeMark::Changed,
            what: "entry".into(),
            name: c.new.name.clone(),
            detail: entry_detail(&c.old, &c.new, &c.fields),
            link: source_link(web, Some(to), &c.new.file, c.new.line),
        });
    }
    for e in &d.entries_removed {
        rows.push(ChangeRow {
            mark: ChangeMark::Removed,
            what: "entry".into(),
            name: e.name.clone(),
            detail: format!("was at {}", place(e)),
            link: source_link(web, Some(from), &e.file, e.line),
        });
    }
    for e in &d.edges_added {
        rows.push(ChangeRow {
            mark: ChangeMark::Added,
            what: "edge".into(),
            name: edge_name(e),
            detail: edge_kind(e).into(),
            link: None,
        });
    }
    for c in &d.edges_changed {
        rows.push(ChangeRow {
            mark: ChangeMark::Changed,
            what: "edge".into(),
            name: edge_name(&c.new),
            detail: if c.new.dangling {
                "now names nothing (dangling)".into()
            } else {
                "resolves now (was dangling)".into()
            },
            link: None,
        });
    }
    for e in &d.edges_removed {
        rows.push(ChangeRow {
            mark: ChangeMark::Removed,
            what: "edge".into(),
            name: edge_name(e),
            detail: edge_kind(e).into(),
            link: None,
        });
    }
    rows
}

/// Both commits' entries and edges in one graph: the new commit's, plus
/// what it removed (drawn as ghosts). With `changed_only`, only the
/// changed entries and their direct neighbours.
fn union(
    old: &RegistryGraph,
    new: &RegistryGraph,
    d: &RegistryDiff,
    changed_only: bool,
) -> RegistryGraph {
    let mut g = new.clone();
    g.entries.extend(d.entries_removed.iter().cloned());
    g.edges.extend(d.edges_removed.iter().cloned());
    if old.registry.id != new.registry.id {
        g.registry = old.registry.clone();
    }
    if changed_only {
        let mut keep: BTreeSet<String> = d
            .entries_added
            .iter()
            .chain(&d.entries_removed)
            .map(|e| e.name.clone())
            .chain(d.entries_changed.iter().map(|c| c.new.name.clone()))
            .collect();
        for e in d
            .edges_added
            .iter()
            .chain(&d.edges_removed)
            .chain(d.edges_changed.iter().map(|c| &c.new))
        {
            keep.insert(e.from.clone());
            keep.insert(e.to.clone());
        }
        let changed = keep.clone();
        for e in &g.edges {
            if changed.contains(&e.from) || changed.contains(&e.to) {
                keep.insert(e.from.clone());
                keep.insert(e.to.clone());
            }
        }
        g.entries.retain(|e| keep.contains(&e.name));
        g.edges
            .retain(|e| keep.contains(&e.to) && (keep.contains(&e.from) || e.dangling));
    }
    g
}

/// Puts the diff's marks on its drawing.
fn mark(drawing: &mut Drawing, d: &RegistryDiff) {
    let Drawing::Ready(layout) = drawing else {
        return;
    };
    let mut nodes: HashMap<&str, ChangeMark> = HashMap::new();
    for e in &d.entries_removed {
        nodes.insert(&e.name, ChangeMark::Removed);
    }
    for e in &d.entries_added {
        nodes.insert(&e.name, ChangeMark::Added);
    }
    for c in &d.entries_changed {
        nodes.insert(&c.new.name, ChangeMark::Changed);
    }
    let mut edges: HashMap<(&str, &str), ChangeMark> = HashMap::new();
    for e in &d.edges_removed {
        edges.insert((&e.from, &e.to), ChangeMark::Removed);
    }
    for e in &d.edges_added {
        edges.insert((&e.from, &e.to), ChangeMark::Added);
    }
    for c in &d.edges_changed {
        edges.insert((&c.new.from, &c.new.to), ChangeMark::Changed);
    }
    for n in &mut layout.nodes {
        n.change = nodes.get(n.id.as_str()).copied();
    }
    for e in &mut layout.edges {
        e.change = edges.get(&(e.from.as_str(), e.to.as_str())).copied();
    }
}

fn registry_at(
    registry: &str,
    g: spicehub_parser::Graph,
    fallback: &spicehub_parser::Registry,
) -> RegistryGraph {
    RegistryGraph {
        registry: g
            .registries
            .into_iter()
            .find(|r| r.id == registry)
            .unwrap_or_else(|| fallback.clone()),
        entries: g.entries,
        edges: g.edges,
    }
}

pub async fn registry_diff(
    db: &Db,
    repository: &str,
    registry: &str,
    request: DiffRequest,
) -> Result<RegistryDiffData, ViewerError> {
    let repository = bounded(repository, "repository")?;
    let registry = bounded(registry, "registry")?;
    let (repo, visible) = repository_ref(db, repository).await?;
    let to = match non_empty(&request.to).or(visible.as_deref()) {
        Some(c) => kept(db, &repo, c).await?,
        None => {
            return Err(fail(ViewerError::RegistryNotFound {
                repository: repo.name.clone(),
                registry: registry.to_owned(),
            }))
        }
    };
    let from = match non_empty(&request.from) {
        Some(c) => kept(db, &repo, c).await?,
        None => db
            .history_previous(&repo.id, to.seq)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                fail(ViewerError::BadRequest(format!(
                    "commit {} is the oldest synced commit the hub keeps of “{}”, so there is \
                     nothing before it to compare with",
                    &to.commit_id[..to.commit_id.len().min(8)],
                    repo.name
                )))
            })?,
    };
    let old = db
        .history_graph(&repo.id, from.seq, Some(registry))
        .await
        .map_err(unavailable)?;
    let new = db
        .history_graph(&repo.id, to.seq, Some(registry))
        .await
        .map_err(unavailable)?;
    let Some(declared) = new
        .registries
        .first()
        .or_else(|| old.registries.first())
        .cloned()
    else {
        return Err(fail(ViewerError::RegistryNotFound {
            repository: repo.name.clone(),
            registry: registry.to_owned(),
        }));
    };
    let d = diff(&old, &new)
        .registries
        .into_iter()
        .find(|r| r.registry == registry);
    let current = |c: &HistoryCommit| visible.as_deref() == Some(c.commit_id.as_str());
    let (from_row, to_row) = (
        commit_row(&repo, &from, current(&from)),
        commit_row(&repo, &to, current(&to)),
    );
    let Some(d) = d else {
        return Ok(RegistryDiffData {
            registry: registry.to_owned(),
            from: from_row,
            to: to_row,
            changes: vec![],
            changed_only: false,
            drawn_entries: 0,
            drawing: None,
            repository: repo,
        });
    };
    let changes = change_rows(&d, &repo, &from.commit_id, &to.commit_id);
    let old = registry_at(registry, old, &declared);
    let new = registry_at(registry, new, &declared);
    let whole = new.entries.len() + d.entries_removed.len();
    let changed_only = match request.show.as_deref() {
        Some("changed") => true,
        Some("all") => false,
        _ => whole > DEFAULT_COLLAPSE_THRESHOLD,
    };
    let drawn = union(&old, &new, &d, changed_only);
    let drawn_entries = u32::try_from(drawn.entries.len()).unwrap_or(u32::MAX);
    let mut drawing = draw_uncached(drawn, &View::Full, &ViewSpec::Full).await?;
    mark(&mut drawing, &d);
    Ok(RegistryDiffData {
        registry: registry.to_owned(),
        from: from_row,
        to: to_row,
        changes,
        changed_only,
        drawn_entries,
        drawing: Some(drawing),
        repository: repo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spicehub_parser::{EntryKind, Registry};

    fn entry(name: &str) -> Entry {
        Entry {
            registry: "r".into(),
            name: name.into(),
            kind: EntryKind::Function,
            target: format!("m.{name}"),
            file: "m.py".into(),
            line: 1,
            doc: None,
        }
    }

    fn edge(from: &str, to: &str) -> Edge {
        Edge {
            registry: "r".into(),
            from: from.into(),
            to: to.into(),
            kind: EdgeKind::Explicit,
            dangling: false,
        }
    }

    fn graph(entries: &[&str], edges: &[(&str, &str)]) -> RegistryGraph {
        RegistryGraph {
            registry: Registry {
                id: "r".into(),
                label: "r".into(),
                file: "r.py".into(),
                line: 1,
            },
            entries: entries.iter().map(|n| entry(n)).collect(),
            edges: edges.iter().map(|(a, b)| edge(a, b)).collect(),
        }
    }

    fn as_graph(g: &RegistryGraph) -> spicehub_parser::Graph {
        spicehub_parser::Graph {
            registries: vec![g.registry.clone()],
            entries: g.entries.clone(),
            edges: g.edges.clone(),
            diagnostics: vec![],
        }
    }

    #[test]
    fn the_union_draws_ghosts_and_changed_only_keeps_the_neighbourhood() {
        let old = graph(
            &["a", "b", "c", "gone", "far"],
            &[("a", "b"), ("gone", "c")],
        );
        let new = graph(&["a", "b", "c", "far", "new"], &[("a", "b"), ("new", "c")]);
        let d = diff(&as_graph(&old), &as_graph(&new)).registries.remove(0);
        let all = union(&old, &new, &d, false);
        let names: BTreeSet<_> = all.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "far", "gone", "new"].into());
        assert_eq!(all.edges.len(), 3);
        let near = union(&old, &new, &d, true);
        let names: BTreeSet<_> = near.entries.iter().map(|e| e.name.as_str()).collect();
        // c changed (its dependencies); a, b and far did not and are not
        // next to a change.
        assert_eq!(names, ["c", "gone", "new"].into());
        let rows = change_rows(
            &d,
            &RepositoryRef {
                id: "r".into(),
                name: "p/r".into(),
                web_url: None,
                commit: None,
            },
            "c1",
            "c2",
        );
        let signs: Vec<_> = rows
            .iter()
            .map(|r| format!("{}{} {}", r.mark.sign(), r.what, r.name))
            .collect();
        assert_eq!(
            signs,
            [
                "+entry new",
                "~entry c",
                "−entry gone",
                "+edge new → c",
                "−edge gone → c"
            ]
        );
    }
}
