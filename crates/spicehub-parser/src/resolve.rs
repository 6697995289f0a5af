//! Per-repository phase: resolve names across files (imports, aliases,
//! relative imports, `__init__.py` re-exports, star imports, class attributes
//! and bases), then turn declarations and registrations into the graph.
//!
//! Every resolution runs on a step budget: import cycles (`a` imports `x` from
//! `b` which imports it from `a`) and alias loops are common enough in real
//! code, and must end in "unresolved" rather than in a hang.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::config::Config;
use crate::extract::{
    BindingTarget, DefFacts, DepRef, FileFacts, NameSpec, Registered, Use, UseSite,
};
use crate::model::{Diagnostic, Edge, EdgeKind, Entry, EntryKind, Graph, Registry, Severity};
use crate::syntax::{Ident, ScopeId, ScopeKind, MODULE_SCOPE};

/// Steps one name resolution may take before it is given up as unresolved.
const RESOLUTION_BUDGET: u32 = 256;
/// Longer dotted paths are not resolved: only hostile input has them, and
/// the longest-prefix search is quadratic in their length.
const MAX_PATH_SEGMENTS: usize = 128;
/// Bounds on what one registration may produce, so that a hostile
/// `name=[...]` list or a function with thousands of parameters cannot blow
/// up the graph quadratically.
const MAX_NAMES_PER_REGISTRATION: usize = 1_000;
const MAX_EDGES_PER_REGISTRATION: usize = 10_000;

/// The default constructor names of spec §1.
const REGISTRY_CLASS: &str = "Registry";
const CATALOGUE_CREATE: &str = "catalogue.create";

/// What a name or dotted path refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Registry(usize),
    Def(usize, usize),
    Module(usize),
    /// Not defined in the repository (or not resolvable): the most canonical
    /// dotted path reached, e.g. `django.contrib.admin.register`.
    External(Vec<Ident>),
}

struct Budget(u32);

impl Budget {
    fn new() -> Self {
        Budget(RESOLUTION_BUDGET)
    }

    fn exhausted(&self) -> bool {
        self.0 == 0
    }

    fn spend(&mut self) -> bool {
        if self.0 == 0 {
            return false;
        }
        self.0 -= 1;
        true
    }
}

struct Index<'a> {
    files: &'a [&'a FileFacts],
    modules: HashMap<&'a str, usize>,
    /// `[file]`: definitions by their qualified name within the module
    /// (`Zoo.BACKBONES`), borrowed from the facts. Built on first use: most
    /// files of a repository never have a name looked up in them.
    defs_by_name: Vec<OnceCell<HashMap<&'a str, usize>>>,
    /// Registries by `(file, qualified name within the module)`; they shadow
    /// a definition of the same name.
    registry_locals: HashMap<(usize, &'a str), usize>,
    /// `[file]`: `(scope, name)` → indices into the file's bindings, in
    /// source order. Built on first use, like `defs_by_name`.
    scopes: Vec<OnceCell<ScopeMaps<'a>>>,
    registries: Vec<Registry>,
}

/// One table per file (not one per scope) and no vector for the common
/// name bound once: building these was most of the resolver's time.
type ScopeMaps<'a> = HashMap<(ScopeId, &'a str), Bindings>;

/// Indices of the bindings of one name in one scope, in source order.
enum Bindings {
    One(usize),
    Many(Vec<usize>),
}

impl Bindings {
    fn push(&mut self, index: usize) {
        match self {
            Bindings::One(first) => *self = Bindings::Many(vec![*first, index]),
            Bindings::Many(all) => all.push(index),
        }
    }

    fn as_slice(&self) -> &[usize] {
        match self {
            Bindings::One(index) => std::slice::from_ref(index),
            Bindings::Many(all) => all,
        }
    }
}

impl<'a> Index<'a> {
    fn new(files: &'a [&'a FileFacts], diagnostics: &mut Vec<Diagnostic>) -> Self {
        let mut modules: HashMap<&str, usize> = HashMap::default();
        for (fi, file) in files.iter().enumerate() {
            if !file.scopes.is_empty() {
                match modules.get(file.module.as_str()) {
                    Some(&other) => diagnostics.push(Diagnostic::new(
                        &file.path,
                        0,
                        Severity::Warning,
                        format!(
                            "module `{}` is also provided by {}; names are resolved in that file",
                            file.module, files[other].path
                        ),
                    )),
                    None => {
                        modules.insert(file.module.as_str(), fi);
                    }
                }
            }
        }
        Index {
            files,
            modules,
            defs_by_name: files.iter().map(|_| OnceCell::new()).collect(),
            registry_locals: HashMap::default(),
            scopes: files.iter().map(|_| OnceCell::new()).collect(),
            registries: Vec::new(),
        }
    }

    fn defs_by_name(&self, file: usize) -> Option<&HashMap<&'a str, usize>> {
        let facts: &'a FileFacts = self.files.get(file)?;
        Some(self.defs_by_name.get(file)?.get_or_init(|| {
            let mut symbols: HashMap<&str, usize> = HashMap::default();
            for (di, def) in facts.defs.iter().enumerate() {
                symbols.entry(facts.local_qualname(def)).or_insert(di);
            }
            symbols
        }))
    }

    fn scope_maps(&self, file: usize) -> Option<&ScopeMaps<'a>> {
        let facts: &'a FileFacts = self.files.get(file)?;
        Some(self.scopes.get(file)?.get_or_init(|| {
            let mut maps: ScopeMaps<'a> =
                HashMap::with_capacity_and_hasher(facts.bindings.len(), Default::default());
            for (bi, binding) in facts.bindings.iter().enumerate() {
                maps.entry((binding.scope, facts.str(binding.name)))
                    .and_modify(|b| b.push(bi))
                    .or_insert(Bindings::One(bi));
            }
            maps
        }))
    }

    fn def(&self, file: usize, def: usize) -> Option<&'a DefFacts> {
        self.files.get(file).and_then(|f| f.defs.get(def))
    }

    /// Module-qualified `__qualname__` of a definition.
    fn qualname(&self, file: usize, def: usize) -> Option<String> {
        let facts = self.files.get(file)?;
        Some(facts.qualify(facts.local_qualname(facts.defs.get(def)?)))
    }

    fn local_symbol(&self, file: usize, local: &str) -> Option<Resolved> {
        if let Some(&r) = self.registry_locals.get(&(file, local)) {
            return Some(Resolved::Registry(r));
        }
        let &d = self.defs_by_name(file)?.get(local)?;
        Some(Resolved::Def(file, d))
    }

    /// The dotted path of a resolution, for further attribute lookups and for targets.
    fn path_of(&self, resolved: &Resolved) -> Vec<Ident> {
        match resolved {
            Resolved::Registry(r) => split(&self.registries[*r].id),
            Resolved::Def(f, d) => self.qualname(*f, *d).map_or_else(Vec::new, |q| split(&q)),
            Resolved::Module(f) => split(&self.files[*f].module),
            Resolved::External(path) => path.clone(),
        }
    }

    /// Resolves `a.b.c` as written in `scope` of `file`.
    fn resolve_dotted(
        &self,
        file: usize,
        scope: ScopeId,
        dotted: &str,
        budget: &mut Budget,
    ) -> Resolved {
        let (head, rest) = dotted.split_once('.').unwrap_or((dotted, ""));
        if head.is_empty() {
            return Resolved::External(split(dotted));
        }
        if !budget.spend() {
            return Resolved::External(split(dotted));
        }
        match self.lookup_name(file, scope, head, budget) {
            None => Resolved::External(split(dotted)),
            Some(found) => self.attribute(found, &split(rest), budget),
        }
    }

    /// Python's scoping for a name used in `scope`: that scope, then the
    /// enclosing functions (class bodies are not enclosing scopes), then the
    /// module, then the module's star imports.
    fn lookup_name(
        &self,
        file: usize,
        scope: ScopeId,
        name: &str,
        budget: &mut Budget,
    ) -> Option<Resolved> {
        let scopes = &self.files.get(file)?.scopes;
        let mut current = Some(scope);
        let mut innermost = true;
        while let Some(s) = current {
            let info = scopes.get(s)?;
            if innermost || info.kind != ScopeKind::Class {
                if let Some(found) = self.lookup_in_scope(file, s, name, budget) {
                    return Some(found);
                }
            }
            innermost = false;
            current = info.parent;
        }
        self.lookup_star(file, name, budget)
    }

    /// The bindings of `name` in one scope, latest first; the first that
    /// resolves inside the repository wins (so `try: from a import X` /
    /// `except ImportError: from .b import X` finds the local one).
    fn lookup_in_scope(
        &self,
        file: usize,
        scope: ScopeId,
        name: &str,
        budget: &mut Budget,
    ) -> Option<Resolved> {
        let indices = self.scope_maps(file)?.get(&(scope, name))?;
        let mut fallback = None;
        for &bi in indices.as_slice().iter().rev() {
            // Each binding examined costs a step: a name imported 100,000
            // times must not make every lookup of it that slow.
            if !budget.spend() {
                break;
            }
            let facts = &self.files[file];
            let binding = &facts.bindings[bi];
            let found = match &binding.target {
                BindingTarget::Import(path) => self.resolve_abs(&split(facts.str(*path)), budget),
                BindingTarget::Def(d) => Resolved::Def(file, *d),
                // A registry only if its constructor resolved to one.
                BindingTarget::Decl(d) => match facts.registry_decls.get(*d) {
                    Some(decl) => {
                        let local = facts.str(decl.local);
                        self.local_symbol(file, local)
                            .unwrap_or_else(|| Resolved::External(split(&facts.qualify(local))))
                    }
                    None => Resolved::External(Vec::new()),
                },
                BindingTarget::Alias(dotted) => {
                    self.resolve_dotted(file, binding.scope, facts.str(*dotted), budget)
                }
            };
            match found {
                Resolved::External(_) => {
                    fallback.get_or_insert(found);
                }
                found => return Some(found),
            }
        }
        fallback
    }

    fn lookup_star(&self, file: usize, name: &str, budget: &mut Budget) -> Option<Resolved> {
        let facts = self.files.get(file)?;
        for &(scope, module) in &facts.stars {
            if budget.exhausted() {
                break;
            }
            if scope != MODULE_SCOPE {
                continue;
            }
            let mut path = split(facts.str(module));
            path.push(Ident::from(name));
            match self.resolve_abs(&path, budget) {
                Resolved::External(_) => {}
                found => return Some(found),
            }
        }
        None
    }

    fn attribute(&self, base: Resolved, rest: &[Ident], budget: &mut Budget) -> Resolved {
        if rest.is_empty() {
            return base;
        }
        let mut path = self.path_of(&base);
        path.extend_from_slice(rest);
        match base {
            Resolved::External(_) => Resolved::External(path),
            _ => self.resolve_abs(&path, budget),
        }
    }

    /// Resolves an absolute dotted path: the longest prefix that is a module
    /// of the repository, then the longest that is a definition or registry
    /// in it, then the rest as attributes.
    fn resolve_abs(&self, path: &[Ident], budget: &mut Budget) -> Resolved {
        if path.len() > MAX_PATH_SEGMENTS || !budget.spend() {
            return Resolved::External(path.to_vec());
        }
        let joined = path.join(".");
        let mut prefixes = prefixes_longest_first(&joined, path);
        for i in (1..=path.len()).rev() {
            let prefix = prefixes.next().unwrap_or_default();
            if let Some(&module) = self.modules.get(prefix) {
                return self.in_module(module, &path[i..], path, budget);
            }
        }
        // A root `__init__.py` is the module with the empty name.
        if let Some(&root) = self.modules.get("") {
            let found = self.in_module(root, path, path, budget);
            if !matches!(found, Resolved::External(_)) {
                return found;
            }
        }
        Resolved::External(path.to_vec())
    }

    fn in_module(
        &self,
        module: usize,
        rest: &[Ident],
        full: &[Ident],
        budget: &mut Budget,
    ) -> Resolved {
        let joined = rest.join(".");
        let mut prefixes = prefixes_longest_first(&joined, rest);
        for j in (1..=rest.len()).rev() {
            let prefix = prefixes.next().unwrap_or_default();
            if let Some(symbol) = self.local_symbol(module, prefix) {
                return self.member(symbol, &rest[j..], full, budget);
            }
        }
        self.member(Resolved::Module(module), rest, full, budget)
    }

    fn member(
        &self,
        base: Resolved,
        rest: &[Ident],
        full: &[Ident],
        budget: &mut Budget,
    ) -> Resolved {
        let Some((name, tail)) = rest.split_first() else {
            return base;
        };
        if !budget.spend() {
            return Resolved::External(full.to_vec());
        }
        match base {
            // Names a module binds by import or alias (re-exports).
            Resolved::Module(m) => {
                if let Some(found) = self.lookup_in_scope(m, MODULE_SCOPE, name, budget) {
                    return self.attribute(found, tail, budget);
                }
                if let Some(found) = self.lookup_star(m, name, budget) {
                    return self.attribute(found, tail, budget);
                }
                Resolved::External(full.to_vec())
            }
            // Class attributes bound in the class body, then inherited ones.
            Resolved::Def(f, d) => {
                let Some(def) = self.def(f, d).filter(|d| d.is_class) else {
                    return Resolved::External(full.to_vec());
                };
                if let Some(found) = self.lookup_in_scope(f, def.body_scope, name, budget) {
                    return self.attribute(found, tail, budget);
                }
                for base_class in def.base_names(self.files[f]) {
                    if budget.exhausted() {
                        break;
                    }
                    let resolved = self.resolve_dotted(f, def.scope, base_class, budget);
                    if matches!(resolved, Resolved::Def(..)) {
                        let found = self.attribute(resolved, rest, budget);
                        if !matches!(found, Resolved::External(_)) {
                            return found;
                        }
                    }
                }
                Resolved::External(full.to_vec())
            }
            Resolved::Registry(_) | Resolved::External(_) => Resolved::External(full.to_vec()),
        }
    }
}

/// `a.b.c`, `a.b`, `a` for `parts` `[a, b, c]` and `joined` their join
/// with dots: slices of one string, not a new one per prefix.
fn prefixes_longest_first<'s>(
    joined: &'s str,
    parts: &'s [Ident],
) -> impl Iterator<Item = &'s str> + 's {
    let mut end = joined.len();
    parts.iter().rev().map(move |part| {
        let prefix = joined.get(..end).unwrap_or_default();
        end = end.saturating_sub(part.len() + 1);
        prefix
    })
}

fn split(dotted: &str) -> Vec<Ident> {
    dotted
        .split('.')
        .filter(|p| !p.is_empty())
        .map(Ident::from)
        .collect()
}

/// Whether a resolved callee is a registry constructor, and whether it is
/// `catalogue.create` (whose label joins its string arguments).
fn constructor_kind(path: &[Ident], config: &Config) -> Option<bool> {
    let joined = path.join(".");
    if joined == CATALOGUE_CREATE {
        return Some(true);
    }
    let last = path.last().map(Ident::as_str).unwrap_or_default();
    if last == REGISTRY_CLASS {
        return Some(false);
    }
    let configured = config.registry_constructors.iter().any(|c| {
        if c.contains('.') {
            *c == joined
        } else {
            c == last
        }
    });
    configured.then_some(false)
}

/// One entry as produced by a registration, with what edges need.
struct Produced<'a> {
    registry: usize,
    name: String,
    target: String,
    /// Parameters of the registered function, for §3.2.
    /// Comma-separated, as [`DefFacts::params`].
    params: &'a str,
    file: usize,
    use_index: usize,
}

/// Builds the graph from every file's facts. Diagnostics of the files are
/// carried over; the caller sorts the result.
pub(crate) fn resolve(files: &[&FileFacts], config: &Config) -> Graph {
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut index = Index::new(files, &mut diagnostics);

    declare_registries(&mut index, config, &mut diagnostics);
    let decorator_registries = declare_decorator_registries(&mut index, config, &mut diagnostics);

    let mut produced: Vec<Produced<'_>> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    // Every form of registration registers into a registry: in a repository
    // that declares none (most of them), resolving each decorator's name
    // would be work for nothing.
    let any_registry = !index.registries.is_empty();
    for (fi, file) in files.iter().enumerate().filter(|_| any_registry) {
        for (ui, used) in file.uses.iter().enumerate() {
            register(
                &index,
                &decorator_registries,
                fi,
                ui,
                used,
                &mut produced,
                &mut entries,
                &mut diagnostics,
            );
        }
    }

    let edges = build_edges(&index, &produced, &mut diagnostics);
    duplicate_entries(&index, &produced, &mut diagnostics);

    for file in files {
        diagnostics.extend(file.diagnostics.iter().cloned());
    }
    Graph {
        registries: index.registries,
        entries,
        edges,
        diagnostics,
    }
}

fn declare_registries(index: &mut Index<'_>, config: &Config, diagnostics: &mut Vec<Diagnostic>) {
    let files = index.files;
    let mut first_seen: HashMap<String, (&str, u32)> = HashMap::default();
    for (fi, file) in files.iter().enumerate() {
        for decl in &file.registry_decls {
            let mut budget = Budget::new();
            let callee = index.resolve_dotted(fi, decl.scope, file.str(decl.callee), &mut budget);
            let Some(is_catalogue) = constructor_kind(&index.path_of(&callee), config) else {
                continue;
            };
            let local = file.str(decl.local);
            let id = file.qualify(local);
            if let Some((path, line)) = first_seen.get(&id) {
                diagnostics.push(Diagnostic::new(
                    &file.path,
                    decl.line,
                    Severity::Warning,
                    format!(
                        "registry `{id}` is declared again; the declaration at {path}:{line} is used"
                    ),
                ));
                continue;
            }
            let mut strings = file.strings(decl.strings);
            let label = if is_catalogue && !decl.strings.is_empty() {
                strings.collect::<Vec<_>>().join(".")
            } else {
                strings
                    .next()
                    .or(decl.name_keyword.map(|name| file.str(name)))
                    .unwrap_or_else(|| file.str(decl.var))
                    .to_owned()
            };
            let registry_index = index.registries.len();
            index.registries.push(Registry {
                id: id.clone(),
                label,
                file: file.path.clone(),
                line: decl.line,
            });
            first_seen.insert(id, (&file.path, decl.line));
            index.registry_locals.insert((fi, local), registry_index);
        }
    }
}

/// Registries named by `decorator_registries`, keyed by decorator name.
fn declare_decorator_registries(
    index: &mut Index<'_>,
    config: &Config,
    diagnostics: &mut Vec<Diagnostic>,
) -> BTreeMap<String, usize> {
    let mut by_decorator = BTreeMap::new();
    // Several decorators may feed one registry: it is placed at the first line naming it.
    let mut configured: Vec<_> = config.decorator_registries.iter().collect();
    configured.sort_by_key(|d| (d.line, d.decorator.clone()));
    for entry in configured {
        let existing = index.registries.iter().position(|r| r.id == entry.registry);
        let registry_index = match existing {
            Some(i) => {
                // A second decorator feeding the same configured registry is
                // fine; sharing the id of a declared registry is worth saying.
                if index.registries[i].file != entry.file {
                    diagnostics.push(Diagnostic::new(
                        &entry.file,
                        entry.line,
                        Severity::Warning,
                        format!(
                            "decorator registry `{}` has the id of a declared registry; their entries are merged",
                            entry.registry
                        ),
                    ));
                }
                i
            }
            None => {
                index.registries.push(Registry {
                    id: entry.registry.clone(),
                    label: entry.registry.clone(),
                    file: entry.file.clone(),
                    line: entry.line,
                });
                index.registries.len() - 1
            }
        };
        by_decorator.insert(entry.decorator.clone(), registry_index);
    }
    by_decorator
}

/// How a use registers, once its callee is resolved.
enum Form {
    /// `@R.register...`, `R.register(...)`: names per spec §2.
    Method,
    /// `@R("x")`.
    CalledRegistry,
    /// `@asset`, `@x.fixture(...)` from `decorator_registries`.
    Decorator,
}

#[allow(clippy::too_many_arguments)]
fn register<'a>(
    index: &Index<'a>,
    decorator_registries: &BTreeMap<String, usize>,
    fi: usize,
    ui: usize,
    used: &'a Use,
    produced: &mut Vec<Produced<'a>>,
    entries: &mut Vec<Entry>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let file: &'a FileFacts = index.files[fi];
    let mut budget = Budget::new();
    let mut found = None;
    if let Some((registry_part, _)) = file.registry_method(used) {
        if let Resolved::Registry(r) =
            index.resolve_dotted(fi, used.scope, registry_part, &mut budget)
        {
            found = Some((r, Form::Method));
        }
    }
    if found.is_none() {
        // `@R("x")` is a call, and any other decorator registers only into a
        // configured decorator registry: `@property` and its like, most
        // decorators of real code, need no resolution at all otherwise.
        let decorator = match used.site {
            UseSite::Decorator { called, .. } if called || !decorator_registries.is_empty() => {
                Some(called)
            }
            _ => None,
        };
        if let Some(called) = decorator {
            let mut budget = Budget::new();
            let callee = index.resolve_dotted(fi, used.scope, file.str(used.callee), &mut budget);
            if let (Resolved::Registry(r), true) = (&callee, called) {
                found = Some((*r, Form::CalledRegistry));
            } else {
                // Matched on the last name of the decorator however it was
                // imported (spec §4): the resolved name, not the local alias.
                let path = index.path_of(&callee);
                if let Some(&r) = path
                    .last()
                    .and_then(|last| decorator_registries.get(last.as_str()))
                {
                    found = Some((r, Form::Decorator));
                }
            }
        }
    }
    let Some((registry, form)) = found else {
        return;
    };
    let registry_id = &index.registries[registry].id;

    let mut line = used.line;
    let (kind, target, doc, params, default_name) = match &used.site {
        UseSite::Decorator { def, .. } => {
            let Some(def) = file.defs.get(*def) else {
                return;
            };
            line = def.line;
            let kind = if def.is_class {
                EntryKind::Class
            } else {
                EntryKind::Function
            };
            let params: &str = if def.is_class {
                ""
            } else {
                file.str(def.params)
            };
            (
                kind,
                file.qualify(file.local_qualname(def)),
                def.doc.map(|doc| file.str(doc).to_owned()),
                params,
                Some(file.def_name(def).to_owned()),
            )
        }
        UseSite::Statement { obj } => {
            let Some(obj) = obj else {
                // `R.register("x")` alone returns a decorator and registers nothing.
                return;
            };
            match obj {
                Registered::Dotted(dotted) => {
                    let mut budget = Budget::new();
                    let resolved =
                        index.resolve_dotted(fi, used.scope, file.str(*dotted), &mut budget);
                    let path = index.path_of(&resolved);
                    let (doc, params): (Option<String>, &str) = match resolved {
                        Resolved::Def(f, d) => match (index.files.get(f), index.def(f, d)) {
                            (Some(other), Some(def)) => (
                                def.doc.map(|doc| other.str(doc).to_owned()),
                                if def.is_class {
                                    ""
                                } else {
                                    other.str(def.params)
                                },
                            ),
                            _ => (None, ""),
                        },
                        _ => (None, ""),
                    };
                    let name = path.last().map(Ident::to_string);
                    (EntryKind::Object, path.join("."), doc, params, name)
                }
                other => {
                    let text = match other {
                        Registered::Other(snippet) => file.str(*snippet).to_owned(),
                        _ => "<expression>".to_owned(),
                    };
                    (EntryKind::Object, text, None, "", None)
                }
            }
        }
    };

    let mut names: Vec<String> = match &used.names {
        NameSpec::Given(names) => {
            if names.is_empty() {
                diagnostics.push(Diagnostic::new(
                    &file.path,
                    used.line,
                    Severity::Warning,
                    format!("registration into `{registry_id}` gives an empty list of names; nothing registered"),
                ));
            }
            file.strings(*names).map(str::to_owned).collect()
        }
        NameSpec::Default => match default_name {
            Some(name) => vec![name],
            None => {
                diagnostics.push(Diagnostic::new(
                    &file.path,
                    used.line,
                    Severity::Warning,
                    format!("registration into `{registry_id}` of `{target}` has no name that can be read statically; skipped"),
                ));
                return;
            }
        },
        // §4: a decorator registry takes the first positional argument only
        // when it is a string; anything else there is not a name.
        NameSpec::NotLiteral {
            positional: true, ..
        } if matches!(form, Form::Decorator) && default_name.is_some() => {
            default_name.into_iter().collect()
        }
        NameSpec::NotLiteral { text, .. } => match (default_name, file.str(*text)) {
            (Some(name), expr) => {
                diagnostics.push(Diagnostic::new(
                    &file.path,
                    used.line,
                    Severity::Warning,
                    format!(
                        "entry name `{expr}` is dynamic (not a string literal); `{name}` is used instead"
                    ),
                ));
                vec![name]
            }
            (None, expr) => {
                diagnostics.push(Diagnostic::new(
                    &file.path,
                    used.line,
                    Severity::Warning,
                    format!("entry name `{expr}` is dynamic (not a string literal); registration skipped"),
                ));
                return;
            }
        },
    };

    if names.len() > MAX_NAMES_PER_REGISTRATION {
        diagnostics.push(Diagnostic::new(
            &file.path,
            used.line,
            Severity::Warning,
            format!(
                "registration into `{registry_id}` gives {} names; only the first {MAX_NAMES_PER_REGISTRATION} are kept",
                names.len()
            ),
        ));
        names.truncate(MAX_NAMES_PER_REGISTRATION);
    }
    for name in names {
        entries.push(Entry {
            registry: registry_id.clone(),
            name: name.clone(),
            kind,
            target: target.clone(),
            file: file.path.clone(),
            line,
            doc: doc.clone(),
        });
        produced.push(Produced {
            registry,
            name,
            target: target.clone(),
            params,
            file: fi,
            use_index: ui,
        });
    }
}

fn build_edges(
    index: &Index<'_>,
    produced: &[Produced<'_>],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Edge> {
    let registries = &index.registries;
    let mut names: HashMap<usize, HashSet<&str>> = HashMap::default();
    let mut by_target: HashMap<&str, BTreeSet<(usize, &str)>> = HashMap::default();
    for p in produced {
        names.entry(p.registry).or_default().insert(&p.name);
        by_target
            .entry(&p.target)
            .or_default()
            .insert((p.registry, &p.name));
    }
    let has = |registry: usize, name: &str| names.get(&registry).is_some_and(|n| n.contains(name));
    let mut by_id: HashMap<&str, usize> = HashMap::default();
    let mut by_label: HashMap<&str, Vec<usize>> = HashMap::default();
    for (i, r) in registries.iter().enumerate() {
        by_id.entry(&r.id).or_insert(i);
        by_label.entry(&r.label).or_default().push(i);
    }
    // The edge's `from` for an entry of `other` seen from `registry`.
    let reference = |registry: usize, other: usize, name: &str| {
        if other == registry {
            name.to_owned()
        } else {
            format!("{}:{name}", registries[other].id)
        }
    };

    // Entries produced by one registration are consecutive in `produced`.
    let mut edges = Vec::new();
    for group in produced.chunk_by(|a, b| (a.file, a.use_index) == (b.file, b.use_index)) {
        let Some(first) = group.first() else {
            continue;
        };
        let file = &index.files[first.file];
        let used = &file.uses[first.use_index];
        let registry = first.registry;
        let registry_id = &registries[registry].id;
        let dependents = group
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join("`, `");

        // Dependencies name the same things for every entry of the registration.
        let mut sources: Vec<(String, EdgeKind, bool)> = Vec::new();
        for dep in file.deps(used.deps) {
            let (from, dangling) = match *dep {
                DepRef::Name(text) => match file.str(text).split_once(':') {
                    Some((registry_ref, entry)) => {
                        // By id first; a label only when it names one registry.
                        let other = by_id.get(registry_ref).copied().or_else(|| {
                            match by_label.get(registry_ref).map(Vec::as_slice) {
                                Some([only]) => Some(*only),
                                _ => None,
                            }
                        });
                        match other {
                            Some(other) if has(other, entry) => {
                                (reference(registry, other, entry), false)
                            }
                            _ => (file.str(text).to_owned(), true),
                        }
                    }
                    None => (file.str(text).to_owned(), !has(registry, file.str(text))),
                },
                DepRef::Ref(parts) => {
                    let parts = file.str(parts);
                    let mut budget = Budget::new();
                    let resolved = index.resolve_dotted(first.file, used.scope, parts, &mut budget);
                    let target = index.path_of(&resolved).join(".");
                    let candidates = by_target.get(target.as_str());
                    // A target registered under several names: the name it
                    // is referred to by, else the first name, in this registry
                    // before any other.
                    let written = parts.rsplit('.').next().unwrap_or_default();
                    let same = candidates.and_then(|c| {
                        c.iter()
                            .find(|(r, n)| *r == registry && *n == written)
                            .or_else(|| c.iter().find(|(r, _)| *r == registry))
                    });
                    match same.or_else(|| candidates.and_then(|c| c.iter().next())) {
                        Some(&(other, name)) => (reference(registry, other, name), false),
                        None => (parts.to_string(), true),
                    }
                }
                DepRef::Unsupported(text) => {
                    let text = file.str(text);
                    diagnostics.push(Diagnostic::new(
                        &file.path,
                        used.line,
                        Severity::Warning,
                        format!(
                            "dependency `{text}` of `{dependents}` in `{registry_id}` is not a string or a name; ignored"
                        ),
                    ));
                    continue;
                }
            };
            if dangling {
                diagnostics.push(Diagnostic::new(
                    &file.path,
                    used.line,
                    Severity::Warning,
                    format!(
                        "dangling edge in `{registry_id}`: `{dependents}` depends on `{from}`, which is not a registered entry"
                    ),
                ));
            }
            sources.push((from, EdgeKind::Explicit, dangling));
        }

        let mut count = 0usize;
        let mut truncated = false;
        for p in group {
            let params = DefFacts::param_names(p.params)
                .filter(|param| *param != p.name && has(registry, param))
                .map(|param| (param.to_owned(), EdgeKind::Parameter, false));
            for (from, kind, dangling) in sources.iter().cloned().chain(params) {
                if count == MAX_EDGES_PER_REGISTRATION {
                    truncated = true;
                    break;
                }
                count += 1;
                edges.push(Edge {
                    registry: registry_id.clone(),
                    from,
                    to: p.name.clone(),
                    kind,
                    dangling,
                });
            }
        }
        if truncated {
            diagnostics.push(Diagnostic::new(
                &file.path,
                used.line,
                Severity::Warning,
                format!(
                    "registration into `{registry_id}` has more than {MAX_EDGES_PER_REGISTRATION} edges; the rest are dropped"
                ),
            ));
        }
    }
    edges
}

/// The same name registered twice in one registry is legal Python (the last
/// one wins at run time, or `force=True`), but usually worth a look.
fn duplicate_entries(
    index: &Index<'_>,
    produced: &[Produced<'_>],
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut sites: BTreeMap<(usize, &str), BTreeSet<(&str, u32)>> = BTreeMap::new();
    for p in produced {
        let file = &index.files[p.file];
        let line = file.uses[p.use_index].line;
        sites
            .entry((p.registry, &p.name))
            .or_default()
            .insert((&file.path, line));
    }
    for ((registry, name), places) in sites {
        let mut places = places.into_iter();
        let Some((first_file, first_line)) = places.next() else {
            continue;
        };
        for (file, line) in places {
            diagnostics.push(Diagnostic::new(
                file,
                line,
                Severity::Info,
                format!(
                    "`{name}` is registered in `{}` more than once (first at {first_file}:{first_line})",
                    index.registries[registry].id
                ),
            ));
        }
    }
}
