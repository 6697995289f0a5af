//! The part of a Python module that the registry rules look at, as the
//! lowering in `ruff.rs` hands it to the per-file phase: one statement at a
//! time, borrowing names from Ruff's tree (which lives until the file is
//! done). Nothing else depends on Ruff's types, and nothing is allocated for
//! what the per-file phase does not keep.
//!
//! Statements come in source order, each tagged with the scope it belongs to:
//! compound statements (`if`, `try`, `with`, loops, `match`) are transparent
//! for the registry rules, and nested bodies are walked without recursion.
//! Expressions are depth-limited by the lowering, for the same reason.

use crate::ruff::{Aliases, Bases, Params, Targets};
use serde::{Deserialize, Serialize};

/// A dotted name while a file is lowered, or a part of one while names are
/// resolved. Up to 24 bytes (nearly all of them) are stored inline, so most
/// cost no allocation at all.
pub(crate) type Ident = compact_str::CompactString;

/// Index into the scopes of a file.
pub(crate) type ScopeId = usize;

/// The scopes of a file, with their qualified names in one string: most
/// qualified names (`Outer.method.<locals>.inner`) are too long to be
/// stored inline, and one allocation each was a large part of the facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Scopes {
    list: Vec<Scope>,
    qualnames: String,
}

impl Scopes {
    /// A file's scopes, starting with the module's.
    pub(crate) fn new() -> Self {
        Scopes {
            list: vec![Scope {
                parent: None,
                kind: ScopeKind::Module,
                qualname: 0..0,
                static_path: true,
            }],
            qualnames: String::new(),
        }
    }

    pub(crate) fn get(&self, id: ScopeId) -> Option<&Scope> {
        self.list.get(id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Python's `__qualname__` of the class or function that owns the
    /// scope; empty for the module.
    pub(crate) fn qualname(&self, id: ScopeId) -> &str {
        self.list
            .get(id)
            .and_then(|s| self.qualnames.get(s.qualname.clone()))
            .unwrap_or("")
    }

    /// Opens the scope of a class or function named `name` defined in `parent`.
    pub(crate) fn open(&mut self, parent: ScopeId, kind: ScopeKind, name: &str) -> ScopeId {
        let (parent_qual, parent_kind, parent_static) = self
            .list
            .get(parent)
            .map_or((0..0, ScopeKind::Module, true), |p| {
                (p.qualname.clone(), p.kind, p.static_path)
            });
        // Python's `__qualname__` rules: names defined in a function get `<locals>`.
        let separator = match parent_kind {
            ScopeKind::Module => "",
            ScopeKind::Class => ".",
            ScopeKind::Function => ".<locals>.",
        };
        let start = self.qualnames.len();
        if !separator.is_empty() {
            self.qualnames.extend_from_within(parent_qual);
            self.qualnames.push_str(separator);
        }
        self.qualnames.push_str(name);
        self.list.push(Scope {
            parent: Some(parent),
            kind,
            qualname: start..self.qualnames.len(),
            static_path: parent_static && parent_kind != ScopeKind::Function,
        });
        self.list.len() - 1
    }
}

/// The scope of the module itself is always the first one.
pub(crate) const MODULE_SCOPE: ScopeId = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ScopeKind {
    Module,
    Class,
    Function,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Scope {
    pub parent: Option<ScopeId>,
    pub kind: ScopeKind,
    /// Where [`Scopes::qualname`] finds the scope's qualified name.
    qualname: std::ops::Range<usize>,
    /// True when every enclosing scope is a class or the module, so that the
    /// scope's names are reachable as `module.Class.NAME` from other modules.
    pub static_path: bool,
}

/// Methods through which something is registered (spec §2).
pub(crate) const REGISTER_METHODS: [&str; 2] = ["register", "register_module"];

/// Keyword arguments of a registration that name its dependencies (spec §3.1).
pub(crate) const DEPENDENCY_KEYWORDS: [&str; 4] = ["depends_on", "requires", "inputs", "deps"];

/// Every keyword argument the registry rules read: entry names, registered
/// objects, dependencies. The lowering drops the others (`group_name=`,
/// `nullable=`...), which are most of the keywords of real code.
pub(crate) const READ_KEYWORDS: [&str; 8] = [
    "name",
    "module",
    "func",
    "obj",
    "depends_on",
    "requires",
    "inputs",
    "deps",
];

/// Positional arguments read in full: a name and a registered object. Later
/// ones only matter when they are strings (`catalogue.create("a", "b", "c")`).
pub(crate) const READ_POSITIONAL: usize = 2;

impl Scope {
    /// Names bound here can only be looked up from inside the file: a
    /// function's locals, or anything in a class defined in a function.
    pub(crate) fn is_private(&self) -> bool {
        self.kind == ScopeKind::Function || !self.static_path
    }

    /// Registries are module-level or class-level variables reachable by a
    /// static path (spec §1); a class inside a function has none.
    pub(crate) fn can_declare(&self) -> bool {
        self.static_path && matches!(self.kind, ScopeKind::Module | ScopeKind::Class)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr<'t> {
    /// `a`, `a.b.c`: a name followed by attribute accesses, joined with dots.
    Dotted(Ident),
    Call {
        func: Box<Expr<'t>>,
        args: Vec<Expr<'t>>,
        keywords: Vec<Keyword<'t>>,
    },
    /// A plain string literal (implicit concatenation joined), not bytes nor an f-string.
    Str(&'t str),
    /// A list, tuple or set display.
    Sequence(Vec<Expr<'t>>),
    /// Anything else, with a short excerpt of its source for messages.
    Other(String),
}

/// A keyword argument the rules read (one of [`READ_KEYWORDS`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Keyword<'t> {
    pub name: &'static str,
    pub value: Expr<'t>,
}

/// One name of an import statement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImportName<'t> {
    /// Dotted name as written (`a.b` in `import a.b`, `b` in `from a import b`, `*`).
    pub name: &'t str,
    pub asname: Option<&'t str>,
}

#[derive(Debug)]
pub(crate) struct Def<'t> {
    pub name: &'t str,
    pub is_class: bool,
    pub decorators: Vec<Expr<'t>>,
    /// Names of the positional and keyword parameters, without `*args`/`**kwargs`.
    pub params: Params<'t>,
    /// The base classes of a class.
    pub bases: Bases<'t>,
    /// First line of the docstring, trimmed.
    pub doc: Option<&'t str>,
    /// The scope created by this definition's body.
    pub body_scope: ScopeId,
}

#[derive(Debug)]
pub(crate) enum StmtKind<'t> {
    Def(Def<'t>),
    /// `a = b = value` or `a: T = value`; only simple-name targets are kept.
    Assign {
        targets: Targets<'t>,
        value: Expr<'t>,
    },
    Expr(Expr<'t>),
    Import(Aliases<'t>),
    ImportFrom {
        module: Option<&'t str>,
        level: u32,
        names: Aliases<'t>,
    },
}

#[derive(Debug)]
pub(crate) struct Stmt<'t> {
    /// The scope the statement is executed in.
    pub scope: ScopeId,
    /// 1-based; for a definition the line of its `def`/`class` keyword.
    pub line: u32,
    pub kind: StmtKind<'t>,
}

/// What the lowering hands its statements to (the per-file digest). `'t`
/// is the lifetime of Ruff's tree, which ends when the file is done.
pub(crate) trait Sink<'t> {
    /// Called first, once per syntax error shown.
    fn syntax_error(&mut self, line: u32, message: String);
    /// Called in source order; `scopes` holds every scope opened so far.
    fn stmt(&mut self, scopes: &Scopes, stmt: Stmt<'t>);
}

impl<'t> Expr<'t> {
    pub(crate) fn as_dotted(&self) -> Option<&Ident> {
        match self {
            Expr::Dotted(parts) => Some(parts),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&'t str> {
        match self {
            Expr::Str(s) => Some(s),
            _ => None,
        }
    }
}
