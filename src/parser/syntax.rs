//! A deliberately small, owned syntax tree: the part of a Python module that the
//! registry rules look at. `ruff.rs` lowers Ruff's AST into it so that nothing
//! else depends on Ruff's types, and so that the per-file phase can drop Ruff's
//! (much larger) tree as soon as a file has been lowered.
//!
//! Statements are flat, in source order, each tagged with the scope it belongs
//! to: compound statements (`if`, `try`, `with`, loops, `match`) are transparent
//! for the registry rules, and a flat list can be neither deep nor costly to drop.
//! Expressions are depth-limited by the lowering, for the same reason.

/// Index into [`Module::scopes`].
pub(crate) type ScopeId = usize;

/// The scope of the module itself is always the first one.
pub(crate) const MODULE_SCOPE: ScopeId = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeKind {
    Module,
    Class,
    Function,
}

#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub parent: Option<ScopeId>,
    pub kind: ScopeKind,
    /// Python's `__qualname__` of the class or function that owns the scope
    /// (`Outer.method.<locals>.Inner`); empty for the module.
    pub qualname: String,
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
}

impl Scope {
    /// Registries are module-level or class-level variables reachable by a
    /// static path (spec §1); a class inside a function has none.
    pub(crate) fn can_declare(&self) -> bool {
        self.static_path && matches!(self.kind, ScopeKind::Module | ScopeKind::Class)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `a`, `a.b.c`: a name followed by attribute accesses.
    Dotted(Vec<String>),
    Call {
        func: Box<Expr>,
        args: Vec<Expr>,
        keywords: Vec<Keyword>,
    },
    /// A plain string literal (implicit concatenation joined), not bytes nor an f-string.
    Str(String),
    /// A list, tuple or set display.
    Sequence(Vec<Expr>),
    /// Anything else, with a short excerpt of its source for messages.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Keyword {
    /// `None` for `**kwargs`.
    pub name: Option<String>,
    pub value: Expr,
}

#[derive(Debug, Clone)]
pub(crate) struct ImportName {
    /// Dotted name as written (`a.b` in `import a.b`, `b` in `from a import b`, `*`).
    pub name: String,
    pub asname: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Decorator {
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub name: String,
    pub is_class: bool,
    pub decorators: Vec<Decorator>,
    /// Names of the positional and keyword parameters, without `*args`/`**kwargs`.
    pub params: Box<[Box<str>]>,
    /// Base classes of a class, as written.
    pub bases: Vec<Expr>,
    /// First line of the docstring.
    pub doc: Option<String>,
    /// The scope created by this definition's body.
    pub body_scope: ScopeId,
}

#[derive(Debug, Clone)]
pub(crate) enum StmtKind {
    Def(Def),
    /// `a = b = value` or `a: T = value`; only simple-name targets are kept.
    Assign {
        targets: Vec<String>,
        value: Expr,
    },
    Expr(Expr),
    Import(Vec<ImportName>),
    ImportFrom {
        module: Option<String>,
        level: u32,
        names: Vec<ImportName>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    /// The scope the statement is executed in.
    pub scope: ScopeId,
    /// 1-based; for a definition the line of its `def`/`class` keyword.
    pub line: u32,
    pub kind: StmtKind,
}

#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub line: u32,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Module {
    pub scopes: Vec<Scope>,
    pub stmts: Vec<Stmt>,
    pub errors: Vec<SyntaxError>,
}

impl Expr {
    pub(crate) fn as_dotted(&self) -> Option<&[String]> {
        match self {
            Expr::Dotted(parts) => Some(parts),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Expr::Str(s) => Some(s),
            _ => None,
        }
    }
}
