//! Per-file phase: read one file, parse it, and keep only the facts the
//! repository phase needs (bindings, definitions, registry declarations and
//! possible registrations). Ruff's tree is gone when this returns, so memory
//! stays bounded by the largest file being parsed at a time.

use rustc_hash::FxHashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::parser::model::{Diagnostic, Severity};
use crate::parser::ruff;
use crate::parser::source::{is_package_file, module_name, SourceTree};
use crate::parser::syntax::{
    self, Expr, Keyword, Scope, ScopeId, StmtKind, DEPENDENCY_KEYWORDS, REGISTER_METHODS,
};

/// Longest docstring line kept: it is shown in a tooltip, not read as a book.
const MAX_DOC_CHARS: usize = 300;

/// Everything the repository phase needs from one file. These are kept for
/// every file until the repository phase ends, so they are stored compactly:
/// definitions refer to their scope's qualified name instead of copying it.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileFacts {
    pub path: String,
    pub module: String,
    pub scopes: Vec<Scope>,
    pub bindings: Vec<Binding>,
    /// `from module import *`: the scope and the absolute dotted module.
    pub stars: Vec<(ScopeId, String)>,
    pub defs: Vec<DefFacts>,
    pub registry_decls: Vec<RegistryDecl>,
    pub uses: Vec<Use>,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileFacts {
    /// `__qualname__` of a definition within its module (`Outer.<locals>.inner`).
    pub(crate) fn local_qualname(&self, def: &DefFacts) -> &str {
        self.scopes
            .get(def.body_scope)
            .map_or("", |s| s.qualname.as_str())
    }

    /// The definition's own name (`inner`).
    pub(crate) fn def_name<'a>(&'a self, def: &DefFacts) -> &'a str {
        let qualname = self.local_qualname(def);
        qualname.rsplit('.').next().unwrap_or(qualname)
    }

    /// Module-qualified name (`pkg.mod.Outer.<locals>.inner`).
    pub(crate) fn qualify(&self, local: &str) -> String {
        qualify(&self.module, local)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub scope: ScopeId,
    pub name: String,
    pub target: BindingTarget,
}

#[derive(Debug, Clone)]
pub(crate) enum BindingTarget {
    /// An absolute dotted path (`a.b.c`), from an import.
    Import(String),
    /// A `def` or `class` of this file: index into [`FileFacts::defs`].
    Def(usize),
    /// A possible registry of this file: index into [`FileFacts::registry_decls`].
    Decl(usize),
    /// `X = a.b`: the dotted name, resolved in the binding's scope.
    Alias(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct DefFacts {
    pub is_class: bool,
    pub line: u32,
    pub doc: Option<Box<str>>,
    pub params: Box<[Box<str>]>,
    /// Dotted base classes, resolved in `scope`.
    pub bases: Box<[Vec<String>]>,
    /// The scope the definition is made in.
    pub scope: ScopeId,
    /// The scope of its body, whose `qualname` is the definition's `__qualname__`.
    pub body_scope: ScopeId,
}

/// `VAR = callee(...)` at module or class level: a registry if `callee`
/// resolves to a registry constructor.
#[derive(Debug, Clone)]
pub(crate) struct RegistryDecl {
    pub scope: ScopeId,
    pub line: u32,
    /// The variable qualified within its module (`VAR`, `Class.VAR`).
    pub local: String,
    pub var: String,
    pub callee: Vec<String>,
    /// Positional string arguments, in order.
    pub strings: Vec<String>,
    /// `name="..."`, used when there is no positional string.
    pub name_keyword: Option<String>,
}

/// What a registration names its entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NameSpec {
    /// No name given: the function, class or object name is used.
    Default,
    Given(Vec<String>),
    /// A name that is not a string literal (or list of them): an excerpt,
    /// and whether it was the first positional argument rather than `name=`.
    NotLiteral {
        text: String,
        positional: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DepRef {
    /// `"entry"` or `"other_registry:entry"`.
    Name(String),
    /// A name or attribute chain referring to a registered target.
    Ref(Vec<String>),
    /// An expression that cannot name a dependency statically.
    Unsupported(String),
}

#[derive(Debug, Clone)]
pub(crate) enum UseSite {
    /// A decorator of `defs[def]`.
    Decorator { def: usize, called: bool },
    /// `R.method(...)` as a statement, registering `obj`.
    Statement { obj: Option<Expr> },
}

/// A decorator or call statement that registers something if its callee
/// resolves to a registry (or, for decorators, names a decorator registry).
#[derive(Debug, Clone)]
pub(crate) struct Use {
    /// The scope the callee is evaluated in.
    pub scope: ScopeId,
    /// The line the entry is reported at.
    pub line: u32,
    /// The decorator or called function, as written (`R.register`, `pytest.fixture`).
    pub callee: Vec<String>,
    pub names: NameSpec,
    pub deps: Vec<DepRef>,
    pub site: UseSite,
}

impl Use {
    /// For `R.register`/`R.register_module`: the registry part and the method.
    pub(crate) fn registry_method(&self) -> Option<(&[String], &str)> {
        match self.callee.split_last() {
            Some((method, registry)) if !registry.is_empty() && is_register_method(method) => {
                Some((registry, method.as_str()))
            }
            _ => None,
        }
    }
}

fn is_register_method(name: &str) -> bool {
    REGISTER_METHODS.contains(&name)
}

/// Options the per-file phase needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileLimits {
    pub max_file_size: u64,
}

/// Reads and parses one file. Problems with the file itself (too big,
/// binary, not UTF-8, unreadable) give a [`FileFacts`] with only a diagnostic.
pub(crate) fn extract_file(
    tree: &dyn SourceTree,
    path: &str,
    listed_size: u64,
    limits: FileLimits,
) -> FileFacts {
    // Checked before reading, so a huge file is never loaded.
    if listed_size > limits.max_file_size {
        return skipped(path, 0, too_big(listed_size, limits));
    }
    match tree.read(path) {
        Ok(bytes) => extract_bytes(path, &bytes, limits),
        Err(err) => skipped(path, 0, format!("skipped: cannot read: {err}")),
    }
}

/// Facts of a file that was left out, with the warning saying why.
fn skipped(path: &str, line: u32, message: String) -> FileFacts {
    FileFacts {
        path: path.to_owned(),
        diagnostics: vec![Diagnostic::new(path, line, Severity::Warning, message)],
        ..FileFacts::default()
    }
}

fn too_big(size: u64, limits: FileLimits) -> String {
    format!(
        "skipped: {size} bytes is over the {} byte limit per file",
        limits.max_file_size
    )
}

/// Parses one file's content, read by the caller. Problems with the content
/// (too big, binary, not UTF-8) give a [`FileFacts`] with only a diagnostic.
pub(crate) fn extract_bytes(path: &str, bytes: &[u8], limits: FileLimits) -> FileFacts {
    if bytes.len() as u64 > limits.max_file_size {
        return skipped(path, 0, too_big(bytes.len() as u64, limits));
    }
    if let Some(offset) = memchr_nul(bytes) {
        let line = line_of_offset(bytes, offset);
        return skipped(path, line, "skipped: binary file (NUL byte)".into());
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let offset = err.valid_up_to();
            let line = line_of_offset(bytes, offset);
            return skipped(
                path,
                line,
                format!("skipped: not valid UTF-8 (byte {offset})"),
            );
        }
    };
    extract_source(path, text)
}

/// Parses and digests one file's text.
pub(crate) fn extract_source(path: &str, text: &str) -> FileFacts {
    // Python accepts a UTF-8 byte order mark; it is not part of the code.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let module = module_name(path).unwrap_or_default();
    // Ruff is third-party code fed hostile input: a bug there must cost one
    // file, not the whole repository (or the server).
    let lowered = match catch_unwind(AssertUnwindSafe(|| ruff::lower(text))) {
        Ok(lowered) => lowered,
        Err(_) => {
            return FileFacts {
                path: path.to_owned(),
                module,
                diagnostics: vec![Diagnostic::new(
                    path,
                    0,
                    Severity::Error,
                    "internal error while parsing this file; skipped",
                )],
                ..FileFacts::default()
            };
        }
    };
    digest(path, module, is_package_file(path), lowered)
}

fn memchr_nul(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(0, bytes)
}

fn line_of_offset(bytes: &[u8], offset: usize) -> u32 {
    let end = offset.min(bytes.len());
    let newlines = bytes[..end].iter().filter(|&&b| b == b'\n').count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

fn qualify(module: &str, qualname: &str) -> String {
    if module.is_empty() {
        qualname.to_owned()
    } else if qualname.is_empty() {
        module.to_owned()
    } else {
        join_dotted(module, qualname)
    }
}

/// `a.b`: one exact allocation (`format!` is slow for a hot path).
fn join_dotted(left: &str, right: &str) -> String {
    let mut joined = String::with_capacity(left.len() + 1 + right.len());
    joined.push_str(left);
    joined.push('.');
    joined.push_str(right);
    joined
}

fn cap_chars(text: String, max: usize) -> Box<str> {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]).into_boxed_str(),
        None => text.into_boxed_str(),
    }
}

fn split_dotted(name: &str) -> Vec<String> {
    name.split('.')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Turns the lowered syntax of a file into facts.
pub(crate) fn digest(
    path: &str,
    module: String,
    is_package: bool,
    lowered: syntax::Module,
) -> FileFacts {
    let syntax::Module {
        scopes,
        stmts,
        errors,
    } = lowered;
    let mut facts = FileFacts {
        path: path.to_owned(),
        module,
        ..FileFacts::default()
    };
    for error in errors {
        facts.diagnostics.push(Diagnostic::new(
            path,
            error.line,
            Severity::Error,
            format!("syntax error: {}", error.message),
        ));
    }

    for stmt in stmts {
        let scope = stmt.scope;
        let line = stmt.line;
        match stmt.kind {
            StmtKind::Def(def) => {
                let index = facts.defs.len();
                facts.bindings.push(Binding {
                    scope,
                    name: def.name,
                    target: BindingTarget::Def(index),
                });
                for decorator in &def.decorators {
                    if let Some(used) = decorator_use(scope, line, index, &decorator.expr) {
                        facts.uses.push(used);
                    }
                }
                facts.defs.push(DefFacts {
                    is_class: def.is_class,
                    line,
                    doc: def.doc.map(|d| cap_chars(d, MAX_DOC_CHARS)),
                    params: def.params,
                    bases: def
                        .bases
                        .iter()
                        .filter_map(|b| b.as_dotted().map(<[String]>::to_vec))
                        .collect(),
                    scope,
                    body_scope: def.body_scope,
                });
            }
            StmtKind::Assign { targets, value } => {
                assign(&mut facts, &scopes, scope, line, targets, value);
            }
            StmtKind::Expr(expr) => {
                if let Some(used) = statement_use(scope, line, expr) {
                    facts.uses.push(used);
                }
            }
            StmtKind::Import(names) => {
                for name in names {
                    let (bound, target) = match name.asname {
                        // `import a.b as c` binds c to a.b.
                        Some(asname) => (asname, name.name),
                        // `import a.b` binds a, through which a.b is reached.
                        None => match name.name.split('.').next() {
                            Some(head) if !head.is_empty() => (head.to_owned(), head.to_owned()),
                            _ => continue,
                        },
                    };
                    facts.bindings.push(Binding {
                        scope,
                        name: bound,
                        target: BindingTarget::Import(target),
                    });
                }
            }
            StmtKind::ImportFrom {
                module,
                level,
                names,
            } => {
                let Some(base) = import_base(&facts.module, is_package, module.as_deref(), level)
                else {
                    facts.diagnostics.push(Diagnostic::new(
                        path,
                        line,
                        Severity::Warning,
                        format!(
                            "relative import `from {}{}` goes above the top-level package; ignored",
                            ".".repeat(level as usize),
                            module.as_deref().unwrap_or("")
                        ),
                    ));
                    continue;
                };
                let base = base.join(".");
                for name in names {
                    if name.name == "*" {
                        facts.stars.push((scope, base.clone()));
                        continue;
                    }
                    let target = join_dotted(&base, &name.name);
                    facts.bindings.push(Binding {
                        scope,
                        name: name.asname.unwrap_or(name.name),
                        target: BindingTarget::Import(target),
                    });
                }
            }
        }
    }
    prune_private_bindings(&mut facts, &scopes);
    facts.scopes = scopes;
    facts
}

/// Drops bindings of function scopes that nothing in the file can look up:
/// `x = self.y` in every method would otherwise be kept for the whole
/// repository phase. A name stays if any registration, dependency, registry
/// declaration, base class or alias of the file starts with it.
fn prune_private_bindings(facts: &mut FileFacts, scopes: &[Scope]) {
    fn head(parts: &[String]) -> Option<&str> {
        parts.first().map(String::as_str)
    }
    let mut heads: FxHashSet<&str> = FxHashSet::default();
    for used in &facts.uses {
        heads.extend(head(&used.callee));
        if let UseSite::Statement {
            obj: Some(Expr::Dotted(parts)),
        } = &used.site
        {
            heads.extend(head(parts));
        }
        for dep in &used.deps {
            if let DepRef::Ref(parts) = dep {
                heads.extend(head(parts));
            }
        }
    }
    for decl in &facts.registry_decls {
        heads.extend(head(&decl.callee));
    }
    for def in &facts.defs {
        for base in def.bases.iter() {
            heads.extend(head(base));
        }
    }
    for binding in &facts.bindings {
        if let BindingTarget::Alias(parts) = &binding.target {
            heads.extend(head(parts));
        }
    }
    // Decided first, while `heads` borrows the facts; dropped afterwards.
    let keep: Vec<bool> = facts
        .bindings
        .iter()
        .map(|b| {
            matches!(b.target, BindingTarget::Def(_))
                || !scopes.get(b.scope).is_some_and(Scope::is_private)
                || heads.contains(b.name.as_str())
        })
        .collect();
    let mut keep = keep.into_iter();
    facts.bindings.retain(|_| keep.next().unwrap_or(true));
}

/// The absolute module a `from ... import` refers to.
fn import_base(
    module: &str,
    is_package: bool,
    from: Option<&str>,
    level: u32,
) -> Option<Vec<String>> {
    let mut base = if level == 0 {
        Vec::new()
    } else {
        let mut package = split_dotted(module);
        // In a module, `.` is its package; in a package's `__init__`, the package itself.
        if !is_package {
            package.pop()?;
        }
        for _ in 1..level {
            package.pop()?;
        }
        // An empty package is above the top level: Python refuses the import.
        if package.is_empty() {
            return None;
        }
        package
    };
    if let Some(from) = from {
        base.extend(split_dotted(from));
    }
    if base.is_empty() {
        return None;
    }
    Some(base)
}

fn assign(
    facts: &mut FileFacts,
    scopes: &[Scope],
    scope: ScopeId,
    line: u32,
    targets: Vec<String>,
    value: Expr,
) {
    let scope_info = scopes.get(scope);
    let declares = scope_info.is_some_and(Scope::can_declare);
    match value {
        Expr::Dotted(dotted) => {
            for name in targets {
                facts.bindings.push(Binding {
                    scope,
                    name,
                    target: BindingTarget::Alias(dotted.clone()),
                });
            }
        }
        Expr::Call {
            func,
            args,
            keywords,
        } if declares => {
            let Expr::Dotted(callee) = *func else {
                return;
            };
            let Some(first) = targets.first() else {
                return;
            };
            let scope_qual = scope_info.map_or("", |s| s.qualname.as_str());
            let local = qualify(scope_qual, first);
            let decl = facts.registry_decls.len();
            for name in &targets {
                facts.bindings.push(Binding {
                    scope,
                    name: name.clone(),
                    target: BindingTarget::Decl(decl),
                });
            }
            facts.registry_decls.push(RegistryDecl {
                scope,
                line,
                local,
                var: first.clone(),
                callee,
                strings: args
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                name_keyword: keyword(&keywords, "name")
                    .and_then(|v| v.as_str().map(str::to_owned)),
            });
        }
        _ => {}
    }
}

fn keyword<'a>(keywords: &'a [Keyword], name: &str) -> Option<&'a Expr> {
    keywords
        .iter()
        .find(|k| k.name.as_deref() == Some(name))
        .map(|k| &k.value)
}

/// A string, or a list/tuple of strings.
fn literal_names(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Str(s) => Some(vec![s.clone()]),
        Expr::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

fn describe(expr: &Expr) -> String {
    match expr {
        Expr::Dotted(parts) => parts.join("."),
        Expr::Str(s) => format!("{s:?}"),
        Expr::Other(snippet) => snippet.clone(),
        Expr::Call { func, .. } => format!("{}(...)", describe(func)),
        Expr::Sequence(_) => "[...]".to_owned(),
    }
}

fn name_from(expr: &Expr, positional: bool) -> NameSpec {
    match literal_names(expr) {
        Some(names) => NameSpec::Given(names),
        None => NameSpec::NotLiteral {
            text: describe(expr),
            positional,
        },
    }
}

fn dependencies(keywords: &[Keyword]) -> Vec<DepRef> {
    let mut deps = Vec::new();
    for kw in keywords {
        if !kw
            .name
            .as_deref()
            .is_some_and(|n| DEPENDENCY_KEYWORDS.contains(&n))
        {
            continue;
        }
        let items: &[Expr] = match &kw.value {
            Expr::Sequence(items) => items,
            single => std::slice::from_ref(single),
        };
        for item in items {
            deps.push(match item {
                Expr::Str(s) => DepRef::Name(s.clone()),
                Expr::Dotted(parts) => DepRef::Ref(parts.clone()),
                other => DepRef::Unsupported(describe(other)),
            });
        }
    }
    deps
}

fn decorator_use(scope: ScopeId, line: u32, def: usize, expr: &Expr) -> Option<Use> {
    let (callee, called, args, keywords): (&[String], bool, &[Expr], &[Keyword]) = match expr {
        Expr::Dotted(parts) => (parts, false, &[], &[]),
        Expr::Call {
            func,
            args,
            keywords,
        } => (func.as_dotted()?, true, args, keywords),
        _ => return None,
    };
    // `name=` first, then the first positional argument (spec §2 and §4).
    let names = match (keyword(keywords, "name"), args.first()) {
        (Some(name), _) => name_from(name, false),
        (None, Some(first)) => name_from(first, true),
        (None, None) => NameSpec::Default,
    };
    Some(Use {
        scope,
        line,
        callee: callee.to_vec(),
        names,
        deps: dependencies(keywords),
        site: UseSite::Decorator { def, called },
    })
}

fn statement_use(scope: ScopeId, line: u32, expr: Expr) -> Option<Use> {
    let Expr::Call {
        func,
        args,
        keywords,
    } = expr
    else {
        return None;
    };
    let callee = match *func {
        Expr::Dotted(parts)
            if parts.len() >= 2 && parts.last().is_some_and(|m| is_register_method(m)) =>
        {
            parts
        }
        _ => return None,
    };
    let name_kw = keyword(&keywords, "name").map(|k| name_from(k, false));
    let mut positional = args.iter();
    let (names, obj) = match positional.next() {
        // `R.register("x", obj)`, `R.register_module("x", module=obj)`
        Some(first @ (Expr::Str(_) | Expr::Sequence(_))) if name_kw.is_none() => {
            (name_from(first, true), positional.next().cloned())
        }
        // `R.register(obj)`, `R.register_module(obj)`
        Some(obj) => (name_kw.unwrap_or(NameSpec::Default), Some(obj.clone())),
        None => (name_kw.unwrap_or(NameSpec::Default), None),
    };
    // catalogue's `register(name, func=...)`, mmengine's `register_module(module=...)`.
    let obj = obj.or_else(|| {
        ["module", "func", "obj"]
            .iter()
            .find_map(|k| keyword(&keywords, k).cloned())
    });
    Some(Use {
        scope,
        line,
        callee,
        names,
        deps: dependencies(&keywords),
        site: UseSite::Statement { obj },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::syntax::MODULE_SCOPE;

    fn facts(path: &str, source: &str) -> FileFacts {
        extract_source(path, source)
    }

    fn binding<'a>(facts: &'a FileFacts, name: &str) -> Option<&'a BindingTarget> {
        facts
            .bindings
            .iter()
            .rev()
            .find(|b| b.name == name && b.scope == MODULE_SCOPE)
            .map(|b| &b.target)
    }

    #[test]
    fn imports_become_absolute_bindings() {
        let f = facts(
            "src/shop/orders/views.py",
            "import a.b.c\nimport a.b as ab\nfrom x.y import z as w\nfrom . import models\nfrom ..registries import pipelines\nfrom .sub import *\n",
        );
        assert_eq!(f.module, "shop.orders.views");
        let import = |n| match binding(&f, n) {
            Some(BindingTarget::Import(p)) => p.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(import("a"), "a");
        assert_eq!(import("ab"), "a.b");
        assert_eq!(import("w"), "x.y.z");
        assert_eq!(import("models"), "shop.orders.models");
        assert_eq!(import("pipelines"), "shop.registries.pipelines");
        assert_eq!(f.stars, vec![(0, "shop.orders.sub".to_owned())]);
    }

    #[test]
    fn relative_imports_in_a_package_init() {
        let f = facts(
            "shop/__init__.py",
            "from .registries import pipelines\nfrom .. import up\n",
        );
        match binding(&f, "pipelines") {
            Some(BindingTarget::Import(p)) => assert_eq!(p, "shop.registries.pipelines"),
            other => panic!("{other:?}"),
        }
        assert!(binding(&f, "up").is_none());
        assert_eq!(f.diagnostics.len(), 1);
        assert_eq!(f.diagnostics[0].line, 2);
    }

    #[test]
    fn docstrings_keep_the_first_line_only() {
        let f = facts(
            "m.py",
            "def f():\n    \"\"\"\n    Load users.\n\n    More text.\n    \"\"\"\n\nclass C:\n    'One.'\n\ndef g():\n    x = 1\n    'not a docstring'\n",
        );
        let docs: Vec<_> = f.defs.iter().map(|d| d.doc.as_deref()).collect();
        assert_eq!(docs, vec![Some("Load users."), Some("One."), None]);
    }

    #[test]
    fn def_line_is_the_keyword_line_not_the_decorator() {
        let f = facts(
            "m.py",
            "@a\n@b(\n  1,\n)\nasync def f():\n    pass\n\n@c\nclass K: pass\n",
        );
        let lines: Vec<_> = f.defs.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![5, 9]);
    }

    #[test]
    fn qualnames_follow_python() {
        let f = facts(
            "pkg/m.py",
            "class A:\n    class B:\n        def m(self):\n            def inner(): pass\n",
        );
        let names: Vec<_> = f
            .defs
            .iter()
            .map(|d| f.qualify(f.local_qualname(d)))
            .collect();
        assert_eq!(
            names,
            vec![
                "pkg.m.A",
                "pkg.m.A.B",
                "pkg.m.A.B.m",
                "pkg.m.A.B.m.<locals>.inner"
            ]
        );
    }

    #[test]
    fn registry_declarations_at_module_and_class_level_only() {
        let f = facts(
            "pkg/regs.py",
            "A = Registry('a')\nclass Zoo:\n    B: Registry = Registry('b', parent=A)\ndef f():\n    C = Registry('c')\n    class Local:\n        D = Registry('d')\nif True:\n    E = catalogue.create('pkg', 'e', entry_points=True)\n",
        );
        let ids: Vec<_> = f
            .registry_decls
            .iter()
            .map(|d| f.qualify(&d.local))
            .collect();
        assert_eq!(ids, vec!["pkg.regs.A", "pkg.regs.Zoo.B", "pkg.regs.E"]);
        assert_eq!(f.registry_decls[2].strings, vec!["pkg", "e"]);
        assert_eq!(f.registry_decls[2].line, 9);
    }

    #[test]
    fn decorator_uses_capture_names_and_deps() {
        let f = facts(
            "m.py",
            "@R.register_module(name=['x', 'y'], depends_on=['a', other.b], requires=c)\nclass K: pass\n@R.register(f'{x}')\ndef g(): pass\n",
        );
        assert_eq!(f.uses.len(), 2);
        assert_eq!(f.uses[0].callee, vec!["R", "register_module"]);
        assert_eq!(
            f.uses[0].names,
            NameSpec::Given(vec!["x".into(), "y".into()])
        );
        assert_eq!(
            f.uses[0].deps,
            vec![
                DepRef::Name("a".into()),
                DepRef::Ref(vec!["other".into(), "b".into()]),
                DepRef::Ref(vec!["c".into()]),
            ]
        );
        assert!(matches!(
            f.uses[1].names,
            NameSpec::NotLiteral {
                positional: true,
                ..
            }
        ));
        assert_eq!(f.uses[1].line, 4);
    }

    #[test]
    fn statement_uses_capture_the_object() {
        let f = facts(
            "m.py",
            "R.register('x', load)\nR.register(load)\nR.register_module(module=Net)\nR.register_module(name='n', module=Net)\nprint('x')\n",
        );
        let summary: Vec<_> = f
            .uses
            .iter()
            .map(|u| match &u.site {
                UseSite::Statement { obj } => (u.names.clone(), obj.clone()),
                UseSite::Decorator { .. } => (u.names.clone(), None),
            })
            .collect();
        let dotted = |s: &str| Some(Expr::Dotted(vec![s.into()]));
        assert_eq!(
            summary,
            vec![
                (NameSpec::Given(vec!["x".into()]), dotted("load")),
                (NameSpec::Default, dotted("load")),
                (NameSpec::Default, dotted("Net")),
                (NameSpec::Given(vec!["n".into()]), dotted("Net")),
            ]
        );
    }

    #[test]
    fn syntax_errors_are_diagnosed_and_the_rest_recovered() {
        let f = facts(
            "broken.py",
            "import os\n\ndef ok():\n    pass\n\ndef broken(:\n    pass\n\nclass After:\n    pass\n",
        );
        assert!(f.diagnostics.iter().any(|d| d.severity == Severity::Error
            && d.line == 6
            && d.message.starts_with("syntax error: ")));
        let names: Vec<_> = f.defs.iter().map(|d| f.def_name(d)).collect();
        assert!(
            names.contains(&"ok") && names.contains(&"After"),
            "{names:?}"
        );
    }

    #[test]
    fn registrations_are_found_in_nested_blocks() {
        let f = facts(
            "m.py",
            "try:\n    import x\nexcept ImportError:\n    pass\nelse:\n    if y:\n        with z:\n            for i in j:\n                while k:\n                    match v:\n                        case 1:\n                            R.register(a)\n",
        );
        assert_eq!(f.uses.len(), 1);
        assert_eq!(f.uses[0].line, 12);
    }
}
