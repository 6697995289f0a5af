//! What changed in the registries between two graphs: the engine of the
//! hub's timeline and diff view and of `spicehub diff`.
//!
//! Identity is by name, not position, so reordering files changes nothing:
//! - a registry is its id;
//! - an entry is (registry, name, occurrence): an entry registered twice
//!   under one name is two entries, matched in the spec's order;
//! - an edge is (registry, from, to, kind); only `dangling` can change.
//!
//! An entry is *changed* when its kind, target, file, line or docstring
//! differs, or when its dependencies (the edges into it) do: "what does
//! this step depend on now" is the question a reviewer asks of a push.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Edge, EdgeKind, Entry, Graph, Registry};

/// One field of an entry that differs between the two graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryField {
    Kind,
    Target,
    File,
    Line,
    Doc,
    Dependencies,
}

impl EntryField {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryField::Kind => "kind",
            EntryField::Target => "target",
            EntryField::File => "file",
            EntryField::Line => "line",
            EntryField::Doc => "doc",
            EntryField::Dependencies => "dependencies",
        }
    }
}

/// An entry present on both sides that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryChange {
    pub old: Entry,
    pub new: Entry,
    /// In [`EntryField`] order, never empty.
    pub fields: Vec<EntryField>,
}

/// An edge present on both sides whose `dangling` flag changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeChange {
    pub old: Edge,
    pub new: Edge,
}

/// How a registry fares between the two graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryStatus {
    Added,
    Removed,
    /// Present on both sides with something changed (its declaration, an
    /// entry or an edge).
    Changed,
}

/// The changes of one registry. Lists are in the spec's order (§6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryDiff {
    pub registry: String,
    pub status: RegistryStatus,
    /// The declaration on each side (`None` on the side it is missing).
    pub old: Option<Registry>,
    pub new: Option<Registry>,
    pub entries_added: Vec<Entry>,
    pub entries_removed: Vec<Entry>,
    pub entries_changed: Vec<EntryChange>,
    pub edges_added: Vec<Edge>,
    pub edges_removed: Vec<Edge>,
    pub edges_changed: Vec<EdgeChange>,
}

/// Counts of one registry's changes: what a timeline row shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub entries_added: u32,
    pub entries_removed: u32,
    pub entries_changed: u32,
    pub edges_added: u32,
    pub edges_removed: u32,
    pub edges_changed: u32,
}

impl ChangeCounts {
    pub fn total(&self) -> u64 {
        [
            self.entries_added,
            self.entries_removed,
            self.entries_changed,
            self.edges_added,
            self.edges_removed,
            self.edges_changed,
        ]
        .iter()
        .map(|&n| u64::from(n))
        .sum()
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl RegistryDiff {
    pub fn counts(&self) -> ChangeCounts {
        ChangeCounts {
            entries_added: count(self.entries_added.len()),
            entries_removed: count(self.entries_removed.len()),
            entries_changed: count(self.entries_changed.len()),
            edges_added: count(self.edges_added.len()),
            edges_removed: count(self.edges_removed.len()),
            edges_changed: count(self.edges_changed.len()),
        }
    }
}

/// Every registry that changed, ordered by registry id. Registries that did
/// not change are absent, so an empty diff means "no registry changed".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphDiff {
    pub registries: Vec<RegistryDiff>,
}

impl GraphDiff {
    pub fn is_empty(&self) -> bool {
        self.registries.is_empty()
    }

    /// The changes of one registry, if it changed.
    pub fn registry(&self, id: &str) -> Option<&RegistryDiff> {
        self.registries.iter().find(|r| r.registry == id)
    }
}

type EdgeKey<'a> = (&'a str, &'a str, EdgeKind);

/// What an entry depends on: the (from, kind) of the edges into it.
type Dependencies<'a> = BTreeSet<(&'a str, EdgeKind)>;

/// One side of the diff, indexed by registry.
#[derive(Default)]
struct Side<'a> {
    registry: Option<&'a Registry>,
    /// (name, occurrence) → entry.
    entries: BTreeMap<(&'a str, usize), &'a Entry>,
    edges: BTreeMap<EdgeKey<'a>, &'a Edge>,
    /// Entry name → its dependencies.
    dependencies: BTreeMap<&'a str, Dependencies<'a>>,
}

fn index(graph: &Graph) -> BTreeMap<&str, Side<'_>> {
    let mut sides: BTreeMap<&str, Side<'_>> = BTreeMap::new();
    for registry in &graph.registries {
        sides
            .entry(&registry.id)
            .or_default()
            .registry
            .get_or_insert(registry);
    }
    // The spec's order, whatever order the graph was given in, so that the
    // occurrences of a repeated name match the same way on both sides.
    let mut entries: Vec<&Entry> = graph.entries.iter().collect();
    entries.sort_by(|a, b| {
        (&a.registry, &a.name, &a.file, a.line).cmp(&(&b.registry, &b.name, &b.file, b.line))
    });
    for entry in entries {
        let side = sides.entry(&entry.registry).or_default();
        let occurrence = side
            .entries
            .range((entry.name.as_str(), 0)..=(entry.name.as_str(), usize::MAX))
            .count();
        side.entries.insert((&entry.name, occurrence), entry);
    }
    for edge in &graph.edges {
        let side = sides.entry(&edge.registry).or_default();
        side.edges.insert((&edge.from, &edge.to, edge.kind), edge);
        side.dependencies
            .entry(&edge.to)
            .or_default()
            .insert((&edge.from, edge.kind));
    }
    sides
}

fn changed_fields(old: &Entry, new: &Entry, deps_changed: bool) -> Vec<EntryField> {
    let mut fields = Vec::new();
    if old.kind != new.kind {
        fields.push(EntryField::Kind);
    }
    if old.target != new.target {
        fields.push(EntryField::Target);
    }
    if old.file != new.file {
        fields.push(EntryField::File);
    }
    if old.line != new.line {
        fields.push(EntryField::Line);
    }
    if old.doc != new.doc {
        fields.push(EntryField::Doc);
    }
    if deps_changed {
        fields.push(EntryField::Dependencies);
    }
    fields
}

/// The changes from `old` to `new`.
pub fn diff(old: &Graph, new: &Graph) -> GraphDiff {
    let empty = Side::default();
    let old_sides = index(old);
    let new_sides = index(new);
    let ids: BTreeSet<&str> = old_sides.keys().chain(new_sides.keys()).copied().collect();
    let mut registries = Vec::new();
    for id in ids {
        let o = old_sides.get(id).unwrap_or(&empty);
        let n = new_sides.get(id).unwrap_or(&empty);
        let mut d = RegistryDiff {
            registry: id.to_owned(),
            status: RegistryStatus::Changed,
            old: o.registry.cloned(),
            new: n.registry.cloned(),
            entries_added: Vec::new(),
            entries_removed: Vec::new(),
            entries_changed: Vec::new(),
            edges_added: Vec::new(),
            edges_removed: Vec::new(),
            edges_changed: Vec::new(),
        };
        for (key, entry) in &o.entries {
            match n.entries.get(key) {
                None => d.entries_removed.push((*entry).clone()),
                Some(new_entry) => {
                    let deps_changed = o.dependencies.get(key.0) != n.dependencies.get(key.0);
                    let fields = changed_fields(entry, new_entry, deps_changed);
                    if !fields.is_empty() {
                        d.entries_changed.push(EntryChange {
                            old: (*entry).clone(),
                            new: (*new_entry).clone(),
                            fields,
                        });
                    }
                }
            }
        }
        for (key, entry) in &n.entries {
            if !o.entries.contains_key(key) {
                d.entries_added.push((*entry).clone());
            }
        }
        for (key, edge) in &o.edges {
            match n.edges.get(key) {
                None => d.edges_removed.push((*edge).clone()),
                Some(new_edge) if new_edge.dangling != edge.dangling => {
                    d.edges_changed.push(EdgeChange {
                        old: (*edge).clone(),
                        new: (*new_edge).clone(),
                    })
                }
                Some(_) => {}
            }
        }
        for (key, edge) in &n.edges {
            if !o.edges.contains_key(key) {
                d.edges_added.push((*edge).clone());
            }
        }
        d.status = match (o.registry, n.registry) {
            (None, Some(_)) => RegistryStatus::Added,
            (Some(_), None) => RegistryStatus::Removed,
            _ => RegistryStatus::Changed,
        };
        let declaration_changed = o.registry != n.registry;
        if declaration_changed || d.counts().total() > 0 {
            registries.push(d);
        }
    }
    GraphDiff { registries }
}

impl RegistryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryStatus::Added => "added",
            RegistryStatus::Removed => "removed",
            RegistryStatus::Changed => "changed",
        }
    }
}

/// What `spicehub diff --format text` prints when nothing changed.
pub const NO_CHANGE_TEXT: &str = "no registry changed\n";

impl GraphDiff {
    /// A human-readable rendering, one block per changed registry (blocks
    /// separated by a blank line), or [`NO_CHANGE_TEXT`]:
    ///
    /// ```text
    /// registry shop.pipelines (changed): +1 -1 ~1 entries, +1 edges
    ///   + entry save (function, steps.py:12)
    ///   - entry old (steps.py:9)
    ///   ~ entry load: doc, line 1 → 3
    ///   + edge clean → save (explicit)
    /// ```
    ///
    /// Names and paths come from the repository: control and bidirectional
    /// formatting characters in them are escaped, so a name cannot rewrite
    /// the reader's terminal. Docstrings are not printed, only said changed.
    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return NO_CHANGE_TEXT.to_owned();
        }
        let mut out = String::new();
        for (i, registry) in self.registries.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            registry.write_text(&mut out);
        }
        out
    }
}

impl RegistryDiff {
    /// The counts in a few words: `+1 -1 ~1 entries, +1 edges`, leaving
    /// out what is zero (empty when only the declaration changed).
    pub fn summary(&self) -> String {
        let c = self.counts();
        let parts: Vec<String> = [
            tally(
                c.entries_added,
                c.entries_removed,
                c.entries_changed,
                "entries",
            ),
            tally(c.edges_added, c.edges_removed, c.edges_changed, "edges"),
        ]
        .into_iter()
        .flatten()
        .collect();
        parts.join(", ")
    }

    fn write_text(&self, out: &mut String) {
        use std::fmt::Write as _;
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "registry {} ({})",
            clean(&self.registry),
            self.status.as_str()
        );
        let summary = self.summary();
        if !summary.is_empty() {
            let _ = write!(out, ": {summary}");
        }
        out.push('\n');
        match (&self.old, &self.new) {
            (None, Some(new)) => {
                let _ = writeln!(out, "  + declaration {}", declaration(new));
            }
            (Some(old), None) => {
                let _ = writeln!(out, "  - declaration {}", declaration(old));
            }
            (Some(old), Some(new)) if old != new => {
                let mut changes = Vec::new();
                if old.label != new.label {
                    changes.push(format!(
                        "label {} → {}",
                        clean(&old.label),
                        clean(&new.label)
                    ));
                }
                if old.file != new.file {
                    changes.push(format!("file {} → {}", clean(&old.file), clean(&new.file)));
                }
                if old.line != new.line {
                    changes.push(format!("line {} → {}", old.line, new.line));
                }
                let _ = writeln!(out, "  ~ declaration: {}", changes.join(", "));
            }
            _ => {}
        }
        for e in &self.entries_added {
            let _ = writeln!(
                out,
                "  + entry {} ({}, {}:{})",
                clean(&e.name),
                entry_kind(e.kind),
                clean(&e.file),
                e.line
            );
        }
        for e in &self.entries_removed {
            let _ = writeln!(
                out,
                "  - entry {} ({}:{})",
                clean(&e.name),
                clean(&e.file),
                e.line
            );
        }
        for c in &self.entries_changed {
            let fields: Vec<String> = c.fields.iter().map(|&f| field_change(f, c)).collect();
            let _ = writeln!(
                out,
                "  ~ entry {}: {}",
                clean(&c.new.name),
                fields.join(", ")
            );
        }
        for e in &self.edges_added {
            let _ = writeln!(out, "  + edge {}", edge(e));
        }
        for e in &self.edges_removed {
            let _ = writeln!(out, "  - edge {}", edge(e));
        }
        for c in &self.edges_changed {
            let now = if c.new.dangling {
                "now dangling"
            } else {
                "no longer dangling"
            };
            let _ = writeln!(
                out,
                "  ~ edge {} → {}: {now}",
                clean(&c.new.from),
                clean(&c.new.to)
            );
        }
    }
}

/// `+1 -2 ~3 entries`, leaving out the zeros; `None` when all are zero.
fn tally(added: u32, removed: u32, changed: u32, noun: &str) -> Option<String> {
    let parts: Vec<String> = [('+', added), ('-', removed), ('~', changed)]
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .map(|(sign, n)| format!("{sign}{n}"))
        .collect();
    (!parts.is_empty()).then(|| format!("{} {noun}", parts.join(" ")))
}

fn declaration(r: &Registry) -> String {
    format!("{} ({}:{})", clean(&r.label), clean(&r.file), r.line)
}

fn entry_kind(kind: crate::model::EntryKind) -> &'static str {
    match kind {
        crate::model::EntryKind::Function => "function",
        crate::model::EntryKind::Class => "class",
        crate::model::EntryKind::Object => "object",
    }
}

fn edge_kind(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Explicit => "explicit",
        EdgeKind::Parameter => "parameter",
    }
}

/// `from → to (explicit)`, or `(explicit, dangling)`.
fn edge(e: &Edge) -> String {
    let dangling = if e.dangling { ", dangling" } else { "" };
    format!(
        "{} → {} ({}{dangling})",
        clean(&e.from),
        clean(&e.to),
        edge_kind(e.kind)
    )
}

/// One changed field: short values are shown as `old → new`; a docstring
/// is only named, and dependencies show as the edge lines that follow.
fn field_change(field: EntryField, c: &EntryChange) -> String {
    let name = field.as_str();
    match field {
        EntryField::Kind => format!(
            "{name} {} → {}",
            entry_kind(c.old.kind),
            entry_kind(c.new.kind)
        ),
        EntryField::Target => format!("{name} {} → {}", clean(&c.old.target), clean(&c.new.target)),
        EntryField::File => format!("{name} {} → {}", clean(&c.old.file), clean(&c.new.file)),
        EntryField::Line => format!("{name} {} → {}", c.old.line, c.new.line),
        EntryField::Doc | EntryField::Dependencies => name.to_owned(),
    }
}

/// Text from the repository, safe to print on a terminal: control
/// characters and bidirectional formatting characters escaped.
fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EntryKind;

    fn registry(id: &str) -> Registry {
        Registry {
            id: id.to_owned(),
            label: id.to_owned(),
            file: "reg.py".to_owned(),
            line: 1,
        }
    }

    fn entry(registry: &str, name: &str, line: u32) -> Entry {
        Entry {
            registry: registry.to_owned(),
            name: name.to_owned(),
            kind: EntryKind::Function,
            target: format!("steps.{name}"),
            file: "steps.py".to_owned(),
            line,
            doc: None,
        }
    }

    fn edge(registry: &str, from: &str, to: &str) -> Edge {
        Edge {
            registry: registry.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            kind: EdgeKind::Explicit,
            dangling: false,
        }
    }

    fn base() -> Graph {
        Graph {
            registries: vec![registry("r")],
            entries: vec![
                entry("r", "load", 1),
                entry("r", "clean", 5),
                entry("r", "old", 9),
            ],
            edges: vec![edge("r", "load", "clean")],
            diagnostics: vec![],
        }
    }

    #[test]
    fn identical_graphs_in_another_order_have_no_diff() {
        let a = base();
        let mut b = base();
        b.entries.reverse();
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn added_removed_and_changed_entries_and_edges_are_told_apart() {
        let old = base();
        let mut new = base();
        new.entries.retain(|e| e.name != "old");
        new.entries.push(entry("r", "save", 12));
        new.entries[0].doc = Some("Loads.".to_owned());
        new.edges.push(edge("r", "clean", "save"));
        let d = diff(&old, &new);
        let r = d.registry("r").expect("registry r changed");
        assert_eq!(r.status, RegistryStatus::Changed);
        assert_eq!(r.entries_added.len(), 1);
        assert_eq!(r.entries_added[0].name, "save");
        assert_eq!(r.entries_removed[0].name, "old");
        let changed: Vec<_> = r
            .entries_changed
            .iter()
            .map(|c| (c.new.name.as_str(), c.fields.clone()))
            .collect();
        assert_eq!(changed, vec![("load", vec![EntryField::Doc])]);
        assert_eq!(r.edges_added.len(), 1);
        assert!(r.edges_removed.is_empty());
    }

    #[test]
    fn a_new_dependency_changes_the_dependent_entry() {
        let old = base();
        let mut new = base();
        new.edges.push(edge("r", "old", "clean"));
        let r = diff(&old, &new).registries.remove(0);
        assert_eq!(r.entries_changed.len(), 1);
        assert_eq!(r.entries_changed[0].new.name, "clean");
        assert_eq!(r.entries_changed[0].fields, vec![EntryField::Dependencies]);
        assert_eq!(r.counts().edges_added, 1);
    }

    #[test]
    fn a_dangling_flag_is_an_edge_change_and_registries_come_and_go() {
        let old = base();
        let mut new = base();
        new.edges[0].dangling = true;
        new.registries.push(registry("s"));
        new.entries.push(entry("s", "x", 3));
        let d = diff(&old, &new);
        assert_eq!(d.registries.len(), 2);
        assert_eq!(d.registries[0].edges_changed.len(), 1);
        assert_eq!(d.registries[1].status, RegistryStatus::Added);
        assert_eq!(d.registries[1].counts().entries_added, 1);
        let back = diff(&new, &old);
        assert_eq!(back.registries[1].status, RegistryStatus::Removed);
        assert_eq!(back.registries[1].entries_removed.len(), 1);
    }

    #[test]
    fn a_name_registered_twice_is_two_entries() {
        let mut old = base();
        old.entries.push(entry("r", "load", 20));
        let mut new = base();
        new.entries.push(entry("r", "load", 21));
        let r = diff(&old, &new).registries.remove(0);
        assert!(r.entries_added.is_empty() && r.entries_removed.is_empty());
        assert_eq!(r.entries_changed.len(), 1);
        assert_eq!(r.entries_changed[0].fields, vec![EntryField::Line]);
    }

    #[test]
    fn no_change_is_said_in_words() {
        assert_eq!(diff(&base(), &base()).to_text(), "no registry changed\n");
    }

    #[test]
    fn text_lists_added_removed_and_changed_entries_and_edges() {
        let old = base();
        let mut new = base();
        new.entries.retain(|e| e.name != "old");
        new.entries.push(entry("r", "save", 12));
        new.entries[0].doc = Some("Loads.".to_owned());
        new.entries[0].line = 3;
        new.edges.push(edge("r", "clean", "save"));
        let mut dangling = edge("r", "x", "clean");
        dangling.kind = EdgeKind::Parameter;
        dangling.dangling = true;
        new.edges.push(dangling);
        assert_eq!(
            diff(&old, &new).to_text(),
            "registry r (changed): +1 -1 ~2 entries, +2 edges\n\
             \x20 + entry save (function, steps.py:12)\n\
             \x20 - entry old (steps.py:9)\n\
             \x20 ~ entry clean: dependencies\n\
             \x20 ~ entry load: line 1 → 3, doc\n\
             \x20 + edge clean → save (explicit)\n\
             \x20 + edge x → clean (parameter, dangling)\n"
        );
    }

    #[test]
    fn text_shows_removed_edges_dangling_flags_and_field_values() {
        let mut old = base();
        old.edges.push(edge("r", "old", "load"));
        let mut new = base();
        new.edges[0].dangling = true;
        new.entries[1].kind = EntryKind::Class;
        new.entries[1].target = "steps.Clean".to_owned();
        new.entries[1].file = "clean.py".to_owned();
        assert_eq!(
            diff(&old, &new).to_text(),
            "registry r (changed): ~2 entries, -1 ~1 edges\n\
             \x20 ~ entry clean: kind function → class, target steps.clean → steps.Clean, file steps.py → clean.py\n\
             \x20 ~ entry load: dependencies\n\
             \x20 - edge old → load (explicit)\n\
             \x20 ~ edge load → clean: now dangling\n"
        );
        assert!(diff(&new, &old)
            .to_text()
            .contains("load → clean: no longer dangling"));
    }

    #[test]
    fn text_has_one_block_per_registry_with_its_declaration() {
        let old = base();
        let mut new = base();
        new.registries[0].line = 2;
        new.registries.push(Registry {
            label: "Shapes".to_owned(),
            ..registry("s")
        });
        new.entries.push(entry("s", "x", 3));
        assert_eq!(
            diff(&old, &new).to_text(),
            "registry r (changed)\n\
             \x20 ~ declaration: line 1 → 2\n\
             \n\
             registry s (added): +1 entries\n\
             \x20 + declaration Shapes (reg.py:1)\n\
             \x20 + entry x (function, steps.py:3)\n"
        );
        let back = diff(&new, &old).to_text();
        assert!(
            back.contains("registry s (removed): -1 entries\n  - declaration Shapes (reg.py:1)\n  - entry x (steps.py:3)\n"),
            "{back}"
        );
    }

    #[test]
    fn text_escapes_control_and_bidi_characters_from_the_repository() {
        let old = base();
        let mut new = base();
        new.entries
            .push(entry("r", "evil\n\u{1b}[2J\u{202e}name", 30));
        let text = diff(&old, &new).to_text();
        assert!(
            text.contains("  + entry evil\\n\\u{1b}[2J\\u{202e}name (function"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    }
}
