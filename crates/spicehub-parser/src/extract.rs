//! Per-file phase: read one file, parse it, and keep only the facts the
//! repository phase needs (bindings, definitions, registry declarations and
//! possible registrations). Ruff's tree is gone when this returns, so memory
//! stays bounded by the largest file being parsed at a time.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::model::{Diagnostic, Severity};
use crate::nesting::{self, Refusal};
use crate::ruff;
use crate::source::{is_package_file, module_name, SourceTree};
use crate::syntax::{
    Def, Expr, Ident, Keyword, Scope, ScopeId, Scopes, Sink, Stmt, StmtKind, DEPENDENCY_KEYWORDS,
    REGISTER_METHODS,
};

/// Longest docstring line kept: it is shown in a tooltip, not read as a book.
const MAX_DOC_CHARS: usize = 300;

/// The parts of a dotted name.
pub(crate) fn parts(dotted: &str) -> impl Iterator<Item = &str> {
    dotted.split('.').filter(|p| !p.is_empty())
}

/// Everything the repository phase needs from one file. These are kept for
/// every file until the repository phase ends, so they are stored compactly:
/// every string in one buffer ([`Text`]), string lists and dependencies in
/// one vector each, and definitions refer to their scope's qualified name
/// instead of copying it. Per-item allocations (a docstring, a long import
/// path, a list of names) were most of the blocks kept through the parse,
/// and scattered among Ruff's short-lived nodes they slowed the parse of
/// every later file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct FileFacts {
    pub path: String,
    pub module: String,
    pub scopes: Scopes,
    /// The strings of the facts below, read with [`FileFacts::str`].
    pub text: Text,
    pub bindings: Vec<Binding>,
    /// `from module import *`: the scope and the absolute dotted module.
    pub stars: Vec<(ScopeId, Str)>,
    pub defs: Vec<DefFacts>,
    pub registry_decls: Vec<RegistryDecl>,
    pub uses: Vec<Use>,
    /// Items of the string lists ([`Run`]s of [`RegistryDecl::strings`]
    /// and [`NameSpec::Given`]).
    lists: Vec<Str>,
    /// Dependencies of the uses ([`Run`]s of [`Use::deps`]).
    deps: Vec<DepRef>,
    pub diagnostics: Vec<Diagnostic>,
}

/// A string of a file's facts: a range of its [`Text`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Str {
    start: u32,
    end: u32,
}

/// A run of consecutive items of [`FileFacts`]' string lists or dependencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Run {
    start: u32,
    end: u32,
}

impl Run {
    pub(crate) fn is_empty(self) -> bool {
        self.start >= self.end
    }

    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The run from `start` to the end of a vector of `len` items.
    fn since(start: usize, len: usize) -> Run {
        let index = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        Run {
            start: index(start),
            end: index(len),
        }
    }
}

/// One buffer holding every string of a file's facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Text(String);

impl Text {
    pub(crate) fn get(&self, s: Str) -> &str {
        self.0.get(s.start as usize..s.end as usize).unwrap_or("")
    }

    fn span_from(&self, start: usize) -> Str {
        // Offsets fit in u32 for any file under the size limit; past that
        // (a limit raised beyond 4 GiB) a string reads as empty.
        match (u32::try_from(start), u32::try_from(self.0.len())) {
            (Ok(start), Ok(end)) => Str { start, end },
            _ => Str::default(),
        }
    }

    fn keep(&mut self, s: &str) -> Str {
        let start = self.0.len();
        self.0.push_str(s);
        self.span_from(start)
    }

    /// The non-empty `parts` joined with `separator` (`a.b.c`, `x,y`).
    fn keep_joined<S: AsRef<str>>(
        &mut self,
        parts: impl IntoIterator<Item = S>,
        separator: char,
    ) -> Str {
        let start = self.0.len();
        for part in parts {
            let part = part.as_ref();
            if part.is_empty() {
                continue;
            }
            if self.0.len() > start {
                self.0.push(separator);
            }
            self.0.push_str(part);
        }
        self.span_from(start)
    }

    /// `text` cut after `max` characters, with an ellipsis if it was cut.
    fn keep_capped(&mut self, text: &str, max: usize) -> Str {
        let start = self.0.len();
        match text.char_indices().nth(max) {
            Some((end, _)) => {
                self.0.push_str(&text[..end]);
                self.0.push('…');
            }
            None => self.0.push_str(text),
        }
        self.span_from(start)
    }
}

impl FileFacts {
    /// A string of these facts.
    pub(crate) fn str(&self, s: Str) -> &str {
        self.text.get(s)
    }

    /// The strings of a list (names given to a registration, string
    /// arguments of a registry constructor).
    pub(crate) fn strings(&self, run: Run) -> impl ExactSizeIterator<Item = &str> + Clone {
        self.lists
            .get(run.range())
            .unwrap_or_default()
            .iter()
            .map(|s| self.text.get(*s))
    }

    /// The dependencies of a use.
    pub(crate) fn deps(&self, run: Run) -> &[DepRef] {
        self.deps.get(run.range()).unwrap_or_default()
    }

    /// For `R.register`/`R.register_module`: the registry part and the method.
    pub(crate) fn registry_method(&self, used: &Use) -> Option<(&str, &str)> {
        match self.str(used.callee).rsplit_once('.') {
            Some((registry, method)) if !registry.is_empty() && is_register_method(method) => {
                Some((registry, method))
            }
            _ => None,
        }
    }

    /// Keeps a list of strings.
    fn keep_strings<'s>(&mut self, items: impl IntoIterator<Item = &'s str>) -> Run {
        let start = self.lists.len();
        for item in items {
            let kept = self.text.keep(item);
            self.lists.push(kept);
        }
        Run::since(start, self.lists.len())
    }

    /// `__qualname__` of a definition within its module (`Outer.<locals>.inner`).
    pub(crate) fn local_qualname(&self, def: &DefFacts) -> &str {
        self.scopes.qualname(def.body_scope)
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Binding {
    pub scope: ScopeId,
    pub name: Str,
    pub target: BindingTarget,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum BindingTarget {
    /// An absolute dotted path (`a.b.c`), from an import.
    Import(Str),
    /// A `def` or `class` of this file: index into [`FileFacts::defs`].
    Def(usize),
    /// A possible registry of this file: index into [`FileFacts::registry_decls`].
    Decl(usize),
    /// `X = a.b`: the dotted name, resolved in the binding's scope.
    Alias(Str),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DefFacts {
    pub is_class: bool,
    pub line: u32,
    /// First line of the docstring, capped.
    pub doc: Option<Str>,
    /// Names of the positional and keyword parameters, comma-separated
    /// (read with [`DefFacts::param_names`]).
    pub params: Str,
    /// Dotted base classes, resolved in `scope`, separated by commas (read
    /// with [`DefFacts::base_names`]).
    pub bases: Str,
    /// The scope the definition is made in.
    pub scope: ScopeId,
    /// The scope of its body, whose `qualname` is the definition's `__qualname__`.
    pub body_scope: ScopeId,
}

impl DefFacts {
    /// The names in a comma-separated parameter list.
    pub(crate) fn param_names(params: &str) -> impl Iterator<Item = &str> {
        params.split(',').filter(|p| !p.is_empty())
    }

    /// The dotted base classes, from the definition's file.
    pub(crate) fn base_names<'f>(&self, file: &'f FileFacts) -> impl Iterator<Item = &'f str> {
        file.str(self.bases).split(',').filter(|b| !b.is_empty())
    }
}

/// `VAR = callee(...)` at module or class level: a registry if `callee`
/// resolves to a registry constructor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RegistryDecl {
    pub scope: ScopeId,
    pub line: u32,
    /// The variable qualified within its module (`VAR`, `Class.VAR`).
    pub local: Str,
    pub var: Str,
    pub callee: Str,
    /// Positional string arguments, in order ([`FileFacts::strings`]).
    pub strings: Run,
    /// `name="..."`, used when there is no positional string.
    pub name_keyword: Option<Str>,
}

/// What a registration names its entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum NameSpec {
    /// No name given: the function, class or object name is used.
    Default,
    /// The names ([`FileFacts::strings`]).
    Given(Run),
    /// A name that is not a string literal (or list of them): an excerpt,
    /// and whether it was the first positional argument rather than `name=`.
    NotLiteral { text: Str, positional: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum DepRef {
    /// `"entry"` or `"other_registry:entry"`.
    Name(Str),
    /// A name or attribute chain referring to a registered target.
    Ref(Str),
    /// An expression that cannot name a dependency statically.
    Unsupported(Str),
}

/// The object a registration statement registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Registered {
    /// A name or attribute chain, resolved in the use's scope.
    Dotted(Str),
    /// Any other expression, with an excerpt of its source (empty when
    /// nested too deep to quote).
    Other(Str),
    /// A call, string or list: there is no object name to read.
    Unquoted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum UseSite {
    /// A decorator of `defs[def]`.
    Decorator { def: usize, called: bool },
    /// `R.method(...)` as a statement, registering `obj`.
    Statement { obj: Option<Registered> },
}

/// A decorator or call statement that registers something if its callee
/// resolves to a registry (or, for decorators, names a decorator registry).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Use {
    /// The scope the callee is evaluated in.
    pub scope: ScopeId,
    /// The line the entry is reported at.
    pub line: u32,
    /// The decorator or called function, as written (`R.register`, `pytest.fixture`).
    pub callee: Str,
    pub names: NameSpec,
    /// [`FileFacts::deps`].
    pub deps: Run,
    pub site: UseSite,
}

fn is_register_method(name: &str) -> bool {
    REGISTER_METHODS.contains(&name)
}

/// The per-file budget (see [`crate::MAX_NESTING_DEPTH`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileLimits {
    /// Larger files are skipped unread.
    pub max_file_size: u64,
    /// Files nesting deeper are skipped unparsed.
    pub max_nesting: u32,
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
    // One pass looks for both a NUL (a binary file) and a `\r` (then line
    // numbers must count `\r\n` and lone `\r` too; nearly no file has one).
    let (nul, has_cr) = match memchr::memchr2(0, b'\r', bytes) {
        None => (None, false),
        Some(at) if bytes[at] == 0 => (Some(at), false),
        Some(at) => (memchr::memchr(0, &bytes[at..]).map(|nul| at + nul), true),
    };
    if let Some(offset) = nul {
        let line = line_of_offset(bytes, offset);
        return skipped(path, line, "skipped: binary file (NUL byte)".into());
    }
    // The SIMD check first (most files are valid); std's only to say where
    // an invalid file goes wrong.
    let text = match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => match std::str::from_utf8(bytes) {
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
        },
    };
    extract_text(path, text, has_cr, limits)
}

/// Parses and digests one file's text.
#[cfg(test)]
pub(crate) fn extract_source(path: &str, text: &str) -> FileFacts {
    let limits = FileLimits {
        max_file_size: u64::MAX,
        max_nesting: crate::MAX_NESTING_DEPTH,
    };
    extract_text(path, text, text.contains('\r'), limits)
}

/// Parses and digests one file's text; `has_cr` says whether it holds a `\r`.
fn extract_text(path: &str, text: &str, has_cr: bool, limits: FileLimits) -> FileFacts {
    // Python accepts a UTF-8 byte order mark; it is not part of the code.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Before Ruff's parser, whose memory grows with the nesting.
    if let Err(refusal) = nesting::check(text, limits.max_nesting) {
        let (offset, message) = match refusal {
            Refusal::TooDeep { offset } => (
                offset,
                format!(
                    "skipped: the file nests deeper than {} levels (brackets, indented blocks and operators); spicehub skips it",
                    limits.max_nesting
                ),
            ),
            Refusal::MalformedFString { offset } => (
                offset,
                "skipped: malformed or misplaced f-string, whose parse spicehub cannot bound; spicehub skips the file"
                    .to_owned(),
            ),
        };
        return skipped(path, line_of_offset(text.as_bytes(), offset), message);
    }
    let module = module_name(path).unwrap_or_default();
    let mut digest = Digest {
        facts: FileFacts {
            path: path.to_owned(),
            module,
            ..FileFacts::default()
        },
        is_package: is_package_file(path),
    };
    // Ruff is third-party code fed hostile input: a bug there must cost one
    // file, not the whole repository (or the server).
    match catch_unwind(AssertUnwindSafe(|| ruff::lower(text, has_cr, &mut digest))) {
        Ok(scopes) => digest.finish(scopes),
        Err(_) => FileFacts {
            path: path.to_owned(),
            module: std::mem::take(&mut digest.facts.module),
            diagnostics: vec![Diagnostic::new(
                path,
                0,
                Severity::Error,
                "internal error while parsing this file; skipped",
            )],
            ..FileFacts::default()
        },
    }
}

fn line_of_offset(bytes: &[u8], offset: usize) -> u32 {
    let end = offset.min(bytes.len());
    let newlines = bytecount::count(&bytes[..end], b'\n');
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

/// Turns the lowered statements of a file into facts, as they come.
struct Digest {
    facts: FileFacts,
    is_package: bool,
}

impl<'t> Sink<'t> for Digest {
    fn syntax_error(&mut self, line: u32, message: String) {
        let facts = &mut self.facts;
        facts.diagnostics.push(Diagnostic::new(
            &facts.path,
            line,
            Severity::Error,
            format!("syntax error: {message}"),
        ));
    }

    fn stmt(&mut self, scopes: &Scopes, stmt: Stmt<'t>) {
        let Stmt { scope, line, kind } = stmt;
        let facts = &mut self.facts;
        match kind {
            StmtKind::Def(def) => self.def(scope, line, def),
            StmtKind::Assign { targets, value } => {
                assign(facts, scopes, scope, line, targets.iter(), value);
            }
            StmtKind::Expr(expr) => {
                if let Some(used) = statement_use(facts, scope, line, expr) {
                    facts.uses.push(used);
                }
            }
            StmtKind::Import(names) => {
                for name in names.iter() {
                    let (bound, target) = match name.asname {
                        // `import a.b as c` binds c to a.b.
                        Some(asname) => (asname, name.name),
                        // `import a.b` binds a, through which a.b is reached.
                        None => match name.name.split('.').next() {
                            Some(head) if !head.is_empty() => (head, head),
                            _ => continue,
                        },
                    };
                    let name = facts.text.keep(bound);
                    let target = if target == bound {
                        name
                    } else {
                        facts.text.keep(target)
                    };
                    facts.bindings.push(Binding {
                        scope,
                        name,
                        target: BindingTarget::Import(target),
                    });
                }
            }
            StmtKind::ImportFrom {
                module,
                level,
                names,
            } => {
                let base = match import_base(&facts.module, self.is_package, module, level) {
                    Ok(base) => base,
                    // Only Ruff's error recovery makes these, and the
                    // syntax error is already reported.
                    Err(ImportProblem::Malformed) => return,
                    Err(ImportProblem::AboveTopLevel) => {
                        facts.diagnostics.push(Diagnostic::new(
                            &facts.path,
                            line,
                            Severity::Warning,
                            format!(
                            "relative import `from {}{}` goes above the top-level package; ignored",
                            ".".repeat(level as usize),
                            module.unwrap_or("")
                        ),
                        ));
                        return;
                    }
                };
                for name in names.iter() {
                    if name.name == "*" {
                        let module = facts.text.keep_joined([base.package, base.from], '.');
                        facts.stars.push((scope, module));
                        continue;
                    }
                    let bound = facts.text.keep(name.asname.unwrap_or(name.name));
                    let target = facts
                        .text
                        .keep_joined([base.package, base.from, name.name], '.');
                    facts.bindings.push(Binding {
                        scope,
                        name: bound,
                        target: BindingTarget::Import(target),
                    });
                }
            }
        }
    }
}

impl Digest {
    fn def(&mut self, scope: ScopeId, line: u32, def: Def<'_>) {
        let facts = &mut self.facts;
        let index = facts.defs.len();
        let name = facts.text.keep(def.name);
        facts.bindings.push(Binding {
            scope,
            name,
            target: BindingTarget::Def(index),
        });
        for decorator in &def.decorators {
            if let Some(used) = decorator_use(facts, scope, line, index, decorator) {
                facts.uses.push(used);
            }
        }
        let doc = def.doc.map(|d| facts.text.keep_capped(d, MAX_DOC_CHARS));
        // Identifiers cannot contain a comma.
        let params = facts.text.keep_joined(def.params.iter(), ',');
        let bases = facts.text.keep_joined(def.bases.dotted(), ',');
        facts.defs.push(DefFacts {
            is_class: def.is_class,
            line,
            doc,
            params,
            bases,
            scope,
            body_scope: def.body_scope,
        });
    }

    fn finish(mut self, scopes: Scopes) -> FileFacts {
        prune_private_bindings(&mut self.facts, &scopes);
        self.facts.scopes = scopes;
        self.facts
    }
}

/// Drops bindings of function scopes that nothing in the file can look up:
/// `x = self.y` in every method would otherwise be kept for the whole
/// repository phase. A name stays if any registration, dependency, registry
/// declaration, base class or alias of the file starts with it.
fn prune_private_bindings(facts: &mut FileFacts, scopes: &Scopes) {
    fn head(dotted: &str) -> Option<&str> {
        parts(dotted).next()
    }
    let text = &facts.text;
    let mut heads: FxHashSet<&str> = FxHashSet::default();
    for used in &facts.uses {
        heads.extend(head(text.get(used.callee)));
        if let UseSite::Statement {
            obj: Some(Registered::Dotted(dotted)),
        } = &used.site
        {
            heads.extend(head(text.get(*dotted)));
        }
    }
    for dep in &facts.deps {
        if let DepRef::Ref(dotted) = dep {
            heads.extend(head(text.get(*dotted)));
        }
    }
    for decl in &facts.registry_decls {
        heads.extend(head(text.get(decl.callee)));
    }
    for def in &facts.defs {
        for base in text.get(def.bases).split(',') {
            heads.extend(head(base));
        }
    }
    for binding in &facts.bindings {
        if let BindingTarget::Alias(dotted) = &binding.target {
            heads.extend(head(text.get(*dotted)));
        }
    }
    // Decided first, while `heads` borrows the facts; dropped afterwards.
    let keep: Vec<bool> = facts
        .bindings
        .iter()
        .map(|b| {
            matches!(b.target, BindingTarget::Def(_))
                || !scopes.get(b.scope).is_some_and(Scope::is_private)
                || heads.contains(text.get(b.name))
        })
        .collect();
    let mut keep = keep.into_iter();
    facts.bindings.retain(|_| keep.next().unwrap_or(true));
}

/// The absolute module of a `from ... import`: a package prefix of the
/// importing module and the module named after the dots, either possibly
/// empty, never both.
struct ImportBase<'a> {
    package: &'a str,
    from: &'a str,
}

/// Why a `from ... import` has no absolute module.
enum ImportProblem {
    /// Python refuses it: the dots climb past the top-level package.
    AboveTopLevel,
    /// Not a module name (only from Ruff's error recovery).
    Malformed,
}

/// The absolute module a `from ... import` refers to.
fn import_base<'a>(
    module: &'a str,
    is_package: bool,
    from: Option<&'a str>,
    level: u32,
) -> Result<ImportBase<'a>, ImportProblem> {
    let from = from.unwrap_or("");
    if from.starts_with('.') || from.ends_with('.') || from.contains("..") {
        return Err(ImportProblem::Malformed);
    }
    let package = if level == 0 {
        ""
    } else {
        // In a module, `.` is its package; in a package's `__init__`, the package itself.
        let mut package = module;
        let pops = level - 1 + u32::from(!is_package);
        for _ in 0..pops {
            if package.is_empty() {
                return Err(ImportProblem::AboveTopLevel);
            }
            package = package.rfind('.').map_or("", |dot| &package[..dot]);
        }
        // An empty package is above the top level: Python refuses the import.
        if package.is_empty() {
            return Err(ImportProblem::AboveTopLevel);
        }
        package
    };
    // `from import x`: nothing named.
    if package.is_empty() && from.is_empty() {
        return Err(ImportProblem::Malformed);
    }
    Ok(ImportBase { package, from })
}

fn assign<'t>(
    facts: &mut FileFacts,
    scopes: &Scopes,
    scope: ScopeId,
    line: u32,
    mut targets: impl Iterator<Item = &'t str>,
    value: Expr<'t>,
) {
    let scope_info = scopes.get(scope);
    let declares = scope_info.is_some_and(Scope::can_declare);
    match value {
        Expr::Dotted(dotted) => {
            let dotted = facts.text.keep(&dotted);
            for name in targets {
                let name = facts.text.keep(name);
                facts.bindings.push(Binding {
                    scope,
                    name,
                    target: BindingTarget::Alias(dotted),
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
            let Some(first) = targets.next() else {
                return;
            };
            let local = facts.text.keep_joined([scopes.qualname(scope), first], '.');
            let decl = facts.registry_decls.len();
            let mut var = None;
            for name in std::iter::once(first).chain(targets) {
                let name = facts.text.keep(name);
                var.get_or_insert(name);
                facts.bindings.push(Binding {
                    scope,
                    name,
                    target: BindingTarget::Decl(decl),
                });
            }
            let callee = facts.text.keep(&callee);
            let strings = facts.keep_strings(args.iter().filter_map(Expr::as_str));
            let name_keyword = keyword(&keywords, "name")
                .and_then(Expr::as_str)
                .map(|name| facts.text.keep(name));
            facts.registry_decls.push(RegistryDecl {
                scope,
                line,
                local,
                var: var.unwrap_or_default(),
                callee,
                strings,
                name_keyword,
            });
        }
        _ => {}
    }
}

fn keyword<'e, 't>(keywords: &'e [Keyword<'t>], name: &str) -> Option<&'e Expr<'t>> {
    keywords.iter().find(|k| k.name == name).map(|k| &k.value)
}

fn describe(expr: &Expr<'_>) -> String {
    match expr {
        Expr::Dotted(dotted) => dotted.to_string(),
        Expr::Str(s) => format!("{s:?}"),
        Expr::Other(snippet) => snippet.clone(),
        Expr::Call { func, .. } => format!("{}(...)", describe(func)),
        Expr::Sequence(_) => "[...]".to_owned(),
    }
}

/// A string, or a list/tuple of strings, names the entries; anything else
/// is quoted for a message.
fn name_from(facts: &mut FileFacts, expr: &Expr<'_>, positional: bool) -> NameSpec {
    match expr {
        Expr::Str(s) => NameSpec::Given(facts.keep_strings([*s])),
        Expr::Sequence(items) if items.iter().all(|i| i.as_str().is_some()) => {
            NameSpec::Given(facts.keep_strings(items.iter().filter_map(Expr::as_str)))
        }
        _ => NameSpec::NotLiteral {
            text: facts.text.keep(&describe(expr)),
            positional,
        },
    }
}

fn dependencies(facts: &mut FileFacts, keywords: &[Keyword<'_>]) -> Run {
    let start = facts.deps.len();
    for kw in keywords {
        if !DEPENDENCY_KEYWORDS.contains(&kw.name) {
            continue;
        }
        let items: &[Expr<'_>] = match &kw.value {
            Expr::Sequence(items) => items,
            single => std::slice::from_ref(single),
        };
        for item in items {
            let dep = match item {
                Expr::Str(s) => DepRef::Name(facts.text.keep(s)),
                Expr::Dotted(dotted) => DepRef::Ref(facts.text.keep(dotted)),
                other => DepRef::Unsupported(facts.text.keep(&describe(other))),
            };
            facts.deps.push(dep);
        }
    }
    Run::since(start, facts.deps.len())
}

fn registered(facts: &mut FileFacts, expr: &Expr<'_>) -> Registered {
    match expr {
        Expr::Dotted(dotted) => Registered::Dotted(facts.text.keep(dotted)),
        Expr::Other(snippet) => Registered::Other(facts.text.keep(snippet)),
        Expr::Call { .. } | Expr::Str(_) | Expr::Sequence(_) => Registered::Unquoted,
    }
}

fn decorator_use(
    facts: &mut FileFacts,
    scope: ScopeId,
    line: u32,
    def: usize,
    expr: &Expr<'_>,
) -> Option<Use> {
    let (callee, called, args, keywords): (&Ident, bool, &[Expr<'_>], &[Keyword<'_>]) = match expr {
        Expr::Dotted(dotted) => (dotted, false, &[], &[]),
        Expr::Call {
            func,
            args,
            keywords,
        } => (func.as_dotted()?, true, args, keywords),
        _ => return None,
    };
    // `name=` first, then the first positional argument (spec §2 and §4).
    let names = match (keyword(keywords, "name"), args.first()) {
        (Some(name), _) => name_from(facts, name, false),
        (None, Some(first)) => name_from(facts, first, true),
        (None, None) => NameSpec::Default,
    };
    Some(Use {
        scope,
        line,
        callee: facts.text.keep(callee),
        names,
        deps: dependencies(facts, keywords),
        site: UseSite::Decorator { def, called },
    })
}

fn statement_use(facts: &mut FileFacts, scope: ScopeId, line: u32, expr: Expr<'_>) -> Option<Use> {
    let Expr::Call {
        func,
        args,
        keywords,
    } = expr
    else {
        return None;
    };
    let callee = match *func {
        Expr::Dotted(dotted)
            if dotted
                .rsplit_once('.')
                .is_some_and(|(_, method)| is_register_method(method)) =>
        {
            dotted
        }
        _ => return None,
    };
    let name_kw = keyword(&keywords, "name").map(|k| name_from(facts, k, false));
    // catalogue's `register(name, *, func)`, mmengine's `register_module(module=...)`.
    let obj_kw = ["module", "func", "obj"]
        .iter()
        .find_map(|k| keyword(&keywords, k));
    let mut positional = args.iter();
    let (names, obj) = match (positional.next(), positional.next()) {
        // `R.register("x", obj)`, `R.register_module("x", module=obj)`
        (Some(first @ (Expr::Str(_) | Expr::Sequence(_))), second) if name_kw.is_none() => {
            (name_from(facts, first, true), second.or(obj_kw))
        }
        // With the object given after it (`R.register(key, obj)`,
        // `R.register(key, func=obj)`), a first argument that is not a
        // string is still the name, only a dynamic one (spec §2).
        (Some(first), Some(second)) if name_kw.is_none() => {
            (name_from(facts, first, true), Some(second))
        }
        (Some(first), None) if name_kw.is_none() && obj_kw.is_some() => {
            (name_from(facts, first, true), obj_kw)
        }
        // `R.register(obj)`, `R.register_module(obj)`
        (Some(obj), _) => (name_kw.unwrap_or(NameSpec::Default), Some(obj)),
        (None, _) => (name_kw.unwrap_or(NameSpec::Default), obj_kw),
    };
    Some(Use {
        scope,
        line,
        callee: facts.text.keep(&callee),
        names,
        deps: dependencies(facts, &keywords),
        site: UseSite::Statement {
            obj: obj.map(|o| registered(facts, o)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::MODULE_SCOPE;

    fn facts(path: &str, source: &str) -> FileFacts {
        extract_source(path, source)
    }

    /// The names of a `NameSpec::Given`.
    fn given<'f>(f: &'f FileFacts, names: &NameSpec) -> Option<Vec<&'f str>> {
        match names {
            NameSpec::Given(run) => Some(f.strings(*run).collect()),
            _ => None,
        }
    }

    fn binding<'a>(facts: &'a FileFacts, name: &str) -> Option<&'a BindingTarget> {
        facts
            .bindings
            .iter()
            .rev()
            .find(|b| facts.str(b.name) == name && b.scope == MODULE_SCOPE)
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
            Some(BindingTarget::Import(p)) => f.str(*p).to_owned(),
            other => format!("{other:?}"),
        };
        assert_eq!(import("a"), "a");
        assert_eq!(import("ab"), "a.b");
        assert_eq!(import("w"), "x.y.z");
        assert_eq!(import("models"), "shop.orders.models");
        assert_eq!(import("pipelines"), "shop.registries.pipelines");
        let stars: Vec<_> = f.stars.iter().map(|&(s, m)| (s, f.str(m))).collect();
        assert_eq!(stars, vec![(0, "shop.orders.sub")]);
    }

    #[test]
    fn relative_imports_in_a_package_init() {
        let f = facts(
            "shop/__init__.py",
            "from .registries import pipelines\nfrom .. import up\n",
        );
        match binding(&f, "pipelines") {
            Some(BindingTarget::Import(p)) => assert_eq!(f.str(*p), "shop.registries.pipelines"),
            other => panic!("{other:?}"),
        }
        assert!(binding(&f, "up").is_none());
        assert_eq!(f.diagnostics.len(), 1);
        assert_eq!(f.diagnostics[0].line, 2);
    }

    #[test]
    fn a_malformed_from_import_is_reported_once_as_a_syntax_error() {
        let f = facts("pkg/m.py", "from a. import x\nfrom import y\nimport z\n");
        let messages: Vec<_> = f.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.starts_with("syntax error: ")),
            "{messages:?}"
        );
        assert!(
            !messages.iter().any(|m| m.contains("top-level package")),
            "{messages:?}"
        );
        // The statements around it are kept.
        assert!(binding(&f, "z").is_some());
    }

    #[test]
    fn docstrings_keep_the_first_line_only() {
        let f = facts(
            "m.py",
            "def f():\n    \"\"\"\n    Load users.\n\n    More text.\n    \"\"\"\n\nclass C:\n    'One.'\n\ndef g():\n    x = 1\n    'not a docstring'\n",
        );
        let docs: Vec<_> = f.defs.iter().map(|d| d.doc.map(|s| f.str(s))).collect();
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
            .map(|d| f.qualify(f.str(d.local)))
            .collect();
        assert_eq!(ids, vec!["pkg.regs.A", "pkg.regs.Zoo.B", "pkg.regs.E"]);
        let strings: Vec<_> = f.strings(f.registry_decls[2].strings).collect();
        assert_eq!(strings, vec!["pkg", "e"]);
        assert_eq!(f.registry_decls[2].line, 9);
    }

    #[test]
    fn decorator_uses_capture_names_and_deps() {
        let f = facts(
            "m.py",
            "@R.register_module(name=['x', 'y'], depends_on=['a', other.b], requires=c)\nclass K: pass\n@R.register(f'{x}')\ndef g(): pass\n",
        );
        assert_eq!(f.uses.len(), 2);
        assert_eq!(f.str(f.uses[0].callee), "R.register_module");
        assert_eq!(given(&f, &f.uses[0].names), Some(vec!["x", "y"]));
        let deps: Vec<_> = f
            .deps(f.uses[0].deps)
            .iter()
            .map(|d| match d {
                DepRef::Name(s) => format!("name {}", f.str(*s)),
                DepRef::Ref(s) => format!("ref {}", f.str(*s)),
                DepRef::Unsupported(s) => format!("unsupported {}", f.str(*s)),
            })
            .collect();
        assert_eq!(deps, vec!["name a", "ref other.b", "ref c"]);
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
            .map(|u| {
                let obj = match &u.site {
                    UseSite::Statement {
                        obj: Some(Registered::Dotted(s)),
                    } => Some(f.str(*s)),
                    _ => None,
                };
                (given(&f, &u.names), obj)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some(vec!["x"]), Some("load")),
                (None, Some("load")),
                (None, Some("Net")),
                (Some(vec!["n"]), Some("Net")),
            ]
        );
        assert_eq!(f.uses[1].names, NameSpec::Default);
    }

    #[test]
    fn a_non_literal_first_argument_is_the_name_when_an_object_follows() {
        let f = facts(
            "m.py",
            "R.register(key, func=make)\nR.register(key, make)\nR.register(key)\nR.register(name=key, obj=make)\nR.register(module=Net)\n",
        );
        let summary: Vec<_> = f
            .uses
            .iter()
            .map(|u| {
                let name = match &u.names {
                    NameSpec::NotLiteral { text, positional } => {
                        format!("dynamic {} {positional}", f.str(*text))
                    }
                    other => format!("{other:?}"),
                };
                let obj = match &u.site {
                    UseSite::Statement {
                        obj: Some(Registered::Dotted(s)),
                    } => f.str(*s),
                    other => panic!("{other:?}"),
                };
                (name, obj)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("dynamic key true".to_owned(), "make"),
                ("dynamic key true".to_owned(), "make"),
                ("Default".to_owned(), "key"),
                ("dynamic key false".to_owned(), "make"),
                ("Default".to_owned(), "Net"),
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
