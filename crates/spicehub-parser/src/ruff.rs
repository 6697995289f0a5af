//! The only module that touches Ruff's API (`ruff_python_parser`,
//! `ruff_python_ast`, `ruff_text_size`). Ruff's crates are
//! internal components with no stability promise, so every use of them is kept
//! here: the rest of the parser only sees [`crate::syntax`] and the
//! small views below ([`Aliases`], [`Params`], [`Targets`]), which read
//! Ruff's tree only when the per-file phase keeps what they name.
//!
//! Two hazards of deep input are handled here:
//! - Ruff's parser grows most of its recursion on the heap (through
//!   `stacker`), at a cost in memory per level, and some of it not at all;
//!   `crate::nesting` refuses a file nesting deeper than
//!   [`crate::MAX_NESTING_DEPTH`] before it gets here.
//! - Dropping Ruff's tree is recursive drop glue, one native frame per level of
//!   nesting, and would overflow on `[[[[...]]]]` or `a+a+a+...` long before the
//!   size limit. [`dismantle`] therefore takes the tree apart iteratively.

use std::cell::{Cell, RefCell};
use std::fmt;

use ruff_python_ast as ast;
use ruff_python_ast::token::TokenKind;
use ruff_python_ast::visitor::transformer::{self, Transformer};
use ruff_python_parser::{Mode, ParseOptions};
use ruff_text_size::{Ranged, TextRange, TextSize};

use crate::syntax::{
    Def, Expr, Ident, ImportName, Keyword, ScopeId, ScopeKind, Scopes, Sink, Stmt, StmtKind,
    MODULE_SCOPE, READ_KEYWORDS, READ_POSITIONAL, REGISTER_METHODS,
};

/// Registry syntax never nests deeply (`R.register(name=["a", "b"])` is depth 3);
/// anything deeper is lowered to [`Expr::Other`] so the lowering stays shallow.
const MAX_EXPR_DEPTH: u32 = 8;
/// Longest attribute chain kept as a dotted name.
const MAX_DOTTED_LEN: usize = 64;
/// Excerpts of unsupported expressions are only used in messages.
const SNIPPET_CHARS: usize = 60;
/// Messages only quote call arguments and the items of a list argument;
/// deeper excerpts would be allocated for nothing.
const SNIPPET_MAX_DEPTH: u32 = 2;
/// A hostile file can produce one syntax error per token; a few are enough to act on.
pub(crate) const MAX_SYNTAX_ERRORS: usize = 20;

/// The names of an `import` or `from ... import` statement.
#[derive(Clone, Copy)]
pub(crate) struct Aliases<'t>(&'t [ast::Alias]);

impl<'t> Aliases<'t> {
    pub(crate) fn iter(self) -> impl Iterator<Item = ImportName<'t>> {
        self.0.iter().map(|a| ImportName {
            name: a.name.as_str(),
            asname: a.asname.as_ref().map(ast::Identifier::as_str),
        })
    }
}

/// The positional and keyword parameters of a function (none for a class).
#[derive(Clone, Copy)]
pub(crate) struct Params<'t>(Option<&'t ast::Parameters>);

impl<'t> Params<'t> {
    pub(crate) fn iter(self) -> impl Iterator<Item = &'t str> + Clone {
        self.0
            .into_iter()
            .flat_map(|p| p.posonlyargs.iter().chain(&p.args).chain(&p.kwonlyargs))
            .map(|p| p.parameter.name.as_str())
    }
}

/// The base classes of a class (none for a function).
#[derive(Clone, Copy)]
pub(crate) struct Bases<'t>(&'t [ast::Expr]);

impl<'t> Bases<'t> {
    /// The bases that are dotted names (`models.Model`), joined with dots.
    pub(crate) fn dotted(self) -> impl Iterator<Item = Ident> + 't {
        self.0.iter().filter_map(dotted)
    }
}

/// The simple-name targets of an assignment.
#[derive(Clone, Copy)]
pub(crate) struct Targets<'t>(&'t [ast::Expr]);

impl<'t> Targets<'t> {
    pub(crate) fn iter(self) -> impl Iterator<Item = &'t str> {
        self.0
            .iter()
            .filter_map(|t| t.as_name_expr().map(|n| n.id.as_str()))
    }
}

impl fmt::Debug for Aliases<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Bases<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.dotted()).finish()
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Debug for Targets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Parses `source` with Ruff's error-recovering parser and hands the
/// statements the registry rules need to `sink`, then returns the file's
/// scopes. Never fails: a file with syntax errors yields the recovered
/// statements, after the errors. `has_cr` says whether `source` holds a
/// `\r` (the caller's scan for NUL bytes found out).
pub(crate) fn lower<S>(source: &str, has_cr: bool, sink: &mut S) -> Scopes
where
    S: for<'t> Sink<'t>,
{
    let parsed = ruff_python_parser::parse_unchecked(source, ParseOptions::from(Mode::Module));
    let mut scopes = Scopes::new();
    let Some(parsed) = parsed.try_into_module() else {
        return scopes;
    };
    let lowerer = Lowerer {
        source,
        lines: Lines::new(source, has_cr),
        tokens: parsed.tokens(),
    };

    let error_count = parsed.errors().len();
    let mut last_line = 1;
    for error in parsed.errors().iter().take(MAX_SYNTAX_ERRORS) {
        last_line = lowerer.line(error.location.start());
        sink.syntax_error(last_line, error.error.to_string());
    }
    if error_count > MAX_SYNTAX_ERRORS {
        sink.syntax_error(
            last_line,
            format!(
                "{} more syntax errors not shown",
                error_count - MAX_SYNTAX_ERRORS
            ),
        );
    }

    lowerer.lower_body(parsed.suite(), &mut scopes, sink);
    dismantle(parsed.into_suite());
    scopes
}

/// Parses and tears the tree down safely, nothing else (the benchmark
/// measures this beside Ruff alone): returns the number of syntax errors.
pub(crate) fn parse_only(source: &str) -> usize {
    let parsed = ruff_python_parser::parse_unchecked(source, ParseOptions::from(Mode::Module));
    let errors = parsed.errors().len();
    if let Some(module) = parsed.try_into_module() {
        dismantle(module.into_suite());
    }
    errors
}

struct Lowerer<'a> {
    source: &'a str,
    lines: Lines<'a>,
    tokens: &'a ast::token::Tokens,
}

/// Line numbers of offsets, counted on demand from the last offset asked
/// for. Only the few kept statements need a line, in source order, so this
/// costs at most one pass over the text up to the last of them; a full line
/// index of every file cost more than all of the lowering.
struct Lines<'a> {
    bytes: &'a [u8],
    /// `(offset, line of offset)` of the last lookup.
    cursor: Cell<(usize, u32)>,
    /// Whether the text has a `\r` at all: nearly no file does, and then
    /// counting `\n` is all there is to it.
    has_cr: bool,
}

impl<'a> Lines<'a> {
    fn new(source: &'a str, has_cr: bool) -> Self {
        Lines {
            bytes: source.as_bytes(),
            cursor: Cell::new((0, 1)),
            has_cr,
        }
    }

    fn line(&self, offset: TextSize) -> u32 {
        let offset = usize::from(offset).min(self.bytes.len());
        let (at, line) = self.cursor.get();
        let line = if offset >= at {
            line.saturating_add(self.breaks(at, offset))
        } else {
            line.saturating_sub(self.breaks(offset, at))
        };
        self.cursor.set((offset, line));
        line
    }

    /// Line breaks in `bytes[from..to]`, as Python counts them: `\n`,
    /// `\r\n` and a lone `\r`.
    fn breaks(&self, from: usize, to: usize) -> u32 {
        let Some(span) = self.bytes.get(from..to) else {
            return 0;
        };
        let mut count = bytecount::count(span, b'\n');
        if self.has_cr {
            // `\r\n` was counted at its `\n`; the next byte is looked up in
            // the whole text, so a span ending between the two is right too.
            count += memchr::memchr_iter(b'\r', span)
                .filter(|&i| self.bytes.get(from + i + 1) != Some(&b'\n'))
                .count();
        }
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}

impl<'a> Lowerer<'a> {
    fn line(&self, offset: TextSize) -> u32 {
        self.lines.line(offset)
    }

    /// Walks nested bodies with an explicit stack: indentation depth is only
    /// bounded by the file size, so recursion here could be driven arbitrarily deep.
    fn lower_body<S: Sink<'a>>(&self, suite: &'a [ast::Stmt], scopes: &mut Scopes, sink: &mut S) {
        let mut stack: Vec<(std::slice::Iter<'a, ast::Stmt>, ScopeId)> =
            vec![(suite.iter(), MODULE_SCOPE)];
        loop {
            let next = match stack.last_mut() {
                None => break,
                Some((iter, scope)) => iter.next().map(|stmt| (stmt, *scope)),
            };
            let Some((stmt, scope)) = next else {
                stack.pop();
                continue;
            };
            // Most statements are skipped: their line is looked up only when kept.
            let line = || self.line(stmt.start());
            let kind = match stmt {
                ast::Stmt::FunctionDef(f) => {
                    let body_scope = scopes.open(scope, ScopeKind::Function, f.name.as_str());
                    stack.push((f.body.iter(), body_scope));
                    StmtKind::Def(Def {
                        name: f.name.as_str(),
                        is_class: false,
                        decorators: self.lower_decorators(&f.decorator_list),
                        params: Params(Some(&f.parameters)),
                        bases: Bases(&[]),
                        doc: docstring(&f.body),
                        body_scope,
                    })
                }
                ast::Stmt::ClassDef(c) => {
                    let body_scope = scopes.open(scope, ScopeKind::Class, c.name.as_str());
                    stack.push((c.body.iter(), body_scope));
                    StmtKind::Def(Def {
                        name: c.name.as_str(),
                        is_class: true,
                        decorators: self.lower_decorators(&c.decorator_list),
                        params: Params(None),
                        bases: Bases(c.arguments.as_deref().map_or(&[][..], |a| &a.args)),
                        doc: docstring(&c.body),
                        body_scope,
                    })
                }
                // Most assignments matter to no rule: nothing of them is
                // lowered unless the value shows that one might.
                ast::Stmt::Assign(a) if assign_matters(scopes, scope, &a.value) => {
                    let targets = Targets(&a.targets);
                    if targets.iter().next().is_none() {
                        continue;
                    }
                    StmtKind::Assign {
                        targets,
                        value: self.lower_expr(&a.value, 0),
                    }
                }
                ast::Stmt::AnnAssign(a) => {
                    let value = a
                        .value
                        .as_deref()
                        .filter(|v| assign_matters(scopes, scope, v));
                    match value {
                        Some(value) if a.target.is_name_expr() => StmtKind::Assign {
                            targets: Targets(std::slice::from_ref(&a.target)),
                            value: self.lower_expr(value, 0),
                        },
                        _ => continue,
                    }
                }
                ast::Stmt::Expr(e) => {
                    // Only `R.register(...)`-shaped calls can register; lowering
                    // every call statement would cost time for nothing.
                    let registers = e.value.as_call_expr().is_some_and(|call| {
                        call.func
                            .as_attribute_expr()
                            .is_some_and(|a| REGISTER_METHODS.contains(&a.attr.as_str()))
                    });
                    if !registers {
                        continue;
                    }
                    StmtKind::Expr(self.lower_expr(&e.value, 0))
                }
                ast::Stmt::Import(i) => StmtKind::Import(Aliases(&i.names)),
                ast::Stmt::ImportFrom(i) => StmtKind::ImportFrom {
                    module: i.module.as_ref().map(ast::Identifier::as_str),
                    level: i.level,
                    names: Aliases(&i.names),
                },
                // Compound statements are transparent. Bodies are pushed last
                // first so that they come off the stack in source order.
                ast::Stmt::If(s) => {
                    for clause in s.elif_else_clauses.iter().rev() {
                        stack.push((clause.body.iter(), scope));
                    }
                    stack.push((s.body.iter(), scope));
                    continue;
                }
                ast::Stmt::For(s) => {
                    stack.push((s.orelse.iter(), scope));
                    stack.push((s.body.iter(), scope));
                    continue;
                }
                ast::Stmt::While(s) => {
                    stack.push((s.orelse.iter(), scope));
                    stack.push((s.body.iter(), scope));
                    continue;
                }
                ast::Stmt::With(s) => {
                    stack.push((s.body.iter(), scope));
                    continue;
                }
                ast::Stmt::Try(s) => {
                    stack.push((s.finalbody.iter(), scope));
                    stack.push((s.orelse.iter(), scope));
                    for handler in s.handlers.iter().rev() {
                        let ast::ExceptHandler::ExceptHandler(h) = handler;
                        stack.push((h.body.iter(), scope));
                    }
                    stack.push((s.body.iter(), scope));
                    continue;
                }
                ast::Stmt::Match(s) => {
                    for case in s.cases.iter().rev() {
                        stack.push((case.body.iter(), scope));
                    }
                    continue;
                }
                _ => continue,
            };
            let line = match (&kind, stmt) {
                (StmtKind::Def(_), ast::Stmt::FunctionDef(f)) => {
                    self.keyword_line(stmt, &f.decorator_list, &f.name, TokenKind::Def)
                }
                (StmtKind::Def(_), ast::Stmt::ClassDef(c)) => {
                    self.keyword_line(stmt, &c.decorator_list, &c.name, TokenKind::Class)
                }
                _ => line(),
            };
            sink.stmt(scopes, Stmt { scope, line, kind });
        }
    }

    fn lower_decorators(&self, decorators: &'a [ast::Decorator]) -> Vec<Expr<'a>> {
        decorators
            .iter()
            .map(|d| self.lower_expr(&d.expression, 0))
            .collect()
    }

    /// The line of the `def`/`class` keyword, which the spec uses instead of
    /// the statement's start (Ruff's range starts at the first decorator).
    fn keyword_line(
        &self,
        stmt: &ast::Stmt,
        decorators: &[ast::Decorator],
        name: &ast::Identifier,
        keyword: TokenKind,
    ) -> u32 {
        let to = name.start();
        // Only blanks and explicit line joins can stand between the keyword
        // and the name (a comment would end the line), so the keyword is
        // nearly always found by looking back from the name.
        if let Some(start) = keyword_before(self.source, usize::from(to), keyword) {
            return self.line(TextSize::new(start));
        }
        let from = decorators.last().map_or(stmt.start(), |d| d.end());
        // Binary searches by hand: `Tokens::in_range` panics on offsets inside tokens.
        let tokens: &[ast::token::Token] = self.tokens;
        let lo = tokens.partition_point(|t| t.start() < from);
        let hi = tokens.partition_point(|t| t.start() < to);
        tokens
            .get(lo..hi)
            .and_then(|window| window.iter().rev().find(|t| t.kind() == keyword))
            .map_or_else(|| self.line(to), |t| self.line(t.start()))
    }

    fn lower_expr(&self, expr: &'a ast::Expr, depth: u32) -> Expr<'a> {
        if depth > MAX_EXPR_DEPTH {
            return Expr::Other(String::new());
        }
        match expr {
            ast::Expr::Name(n) => Expr::Dotted(Ident::from(n.id.as_str())),
            ast::Expr::Attribute(_) => dotted(expr)
                .map(Expr::Dotted)
                .unwrap_or_else(|| self.other(expr, depth)),
            ast::Expr::Call(c) => Expr::Call {
                func: Box::new(self.lower_expr(&c.func, depth + 1)),
                args: c
                    .arguments
                    .args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| match a {
                        _ if i < READ_POSITIONAL => self.lower_expr(a, depth + 1),
                        ast::Expr::StringLiteral(s) => Expr::Str(s.value.to_str()),
                        _ => Expr::Other(String::new()),
                    })
                    .collect(),
                keywords: c
                    .arguments
                    .keywords
                    .iter()
                    .filter_map(|k| {
                        let written = k.arg.as_ref()?.as_str();
                        let name = READ_KEYWORDS.iter().find(|&&n| n == written)?;
                        Some(Keyword {
                            name,
                            value: self.lower_expr(&k.value, depth + 1),
                        })
                    })
                    .collect(),
            },
            ast::Expr::StringLiteral(s) => Expr::Str(s.value.to_str()),
            ast::Expr::List(l) => self.sequence(&l.elts, depth),
            ast::Expr::Tuple(t) => self.sequence(&t.elts, depth),
            ast::Expr::Set(s) => self.sequence(&s.elts, depth),
            _ => self.other(expr, depth),
        }
    }

    fn other(&self, expr: &ast::Expr, depth: u32) -> Expr<'a> {
        if depth > SNIPPET_MAX_DEPTH {
            return Expr::Other(String::new());
        }
        Expr::Other(self.snippet(expr.range()))
    }

    fn sequence(&self, elts: &'a [ast::Expr], depth: u32) -> Expr<'a> {
        Expr::Sequence(elts.iter().map(|e| self.lower_expr(e, depth + 1)).collect())
    }

    fn snippet(&self, range: TextRange) -> String {
        let start = usize::from(range.start());
        let end = usize::from(range.end());
        let text = self.source.get(start..end).unwrap_or("");
        let mut out: String = text
            .chars()
            .take(SNIPPET_CHARS)
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        if text.chars().nth(SNIPPET_CHARS).is_some() {
            out.push('…');
        }
        out
    }
}

/// `a.b.c` joined with dots, followed down to its name iteratively (an
/// attribute chain is a left-deep tree as deep as it is long); `None` for
/// anything else. The parts are gathered on the stack: most chains fit
/// inline in the result, so this usually allocates nothing.
fn dotted(expr: &ast::Expr) -> Option<Ident> {
    let mut parts: [&str; MAX_DOTTED_LEN + 1] = [""; MAX_DOTTED_LEN + 1];
    let mut count = 0;
    let mut len = 0;
    let mut current = expr;
    loop {
        let part = match current {
            ast::Expr::Attribute(a) => a.attr.as_str(),
            ast::Expr::Name(n) => n.id.as_str(),
            _ => return None,
        };
        *parts.get_mut(count)? = part;
        count += 1;
        len += part.len() + 1;
        match current {
            ast::Expr::Attribute(a) => current = &a.value,
            _ => break,
        }
    }
    let mut joined = Ident::with_capacity(len.saturating_sub(1));
    for part in parts.get(..count)?.iter().rev() {
        if !joined.is_empty() {
            joined.push('.');
        }
        joined.push_str(part);
    }
    Some(joined)
}

/// Only dotted names (aliases of a registry or of a constructor) and, where
/// a registry can be declared, calls matter to the registry rules.
fn assign_matters(scopes: &Scopes, scope: ScopeId, value: &ast::Expr) -> bool {
    match value {
        ast::Expr::Name(_) | ast::Expr::Attribute(_) => true,
        ast::Expr::Call(_) => scopes.get(scope).is_some_and(|s| s.can_declare()),
        _ => false,
    }
}

/// Start of the `def`/`class` keyword that ends just before `name_start`,
/// past blanks and backslash-newline joins; `None` if the text there is not
/// plainly that keyword.
fn keyword_before(source: &str, name_start: usize, keyword: TokenKind) -> Option<u32> {
    let word: &[u8] = match keyword {
        TokenKind::Def => b"def",
        TokenKind::Class => b"class",
        _ => return None,
    };
    let bytes = source.as_bytes().get(..name_start)?;
    let mut end = bytes.len();
    loop {
        match bytes.get(..end)? {
            [.., b' ' | b'\t' | b'\x0c'] => end -= 1,
            [.., b'\\', b'\n'] | [.., b'\\', b'\r'] => end -= 2,
            [.., b'\\', b'\r', b'\n'] => end -= 3,
            _ => break,
        }
    }
    let start = end.checked_sub(word.len())?;
    if bytes.get(start..end)? != word {
        return None;
    }
    // `xdef` or `_class` would be another word.
    if start > 0
        && bytes
            .get(start - 1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return None;
    }
    u32::try_from(start).ok()
}

/// The first line of a docstring, as `inspect.cleandoc` would show it.
fn docstring(body: &[ast::Stmt]) -> Option<&str> {
    let ast::Stmt::Expr(first) = body.first()? else {
        return None;
    };
    let ast::Expr::StringLiteral(s) = first.value.as_ref() else {
        return None;
    };
    s.value
        .to_str()
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
}

/// Nodes spanning at most this many bytes are dropped by Rust's own
/// (recursive) drop glue. Every level of nesting in Ruff's tree takes at
/// least a byte of source (give or take a few wrapper nodes sharing a
/// range), so such a drop recurses at most about this deep: a few hundred
/// KiB of stack at worst, well inside a thread's 2 MiB (a unit test drops
/// the deepest such statements on a 512 KiB stack).
const NATIVE_DROP_BYTES: u32 = 1024;

fn small(node: &impl Ranged) -> bool {
    node.range().len().to_u32() <= NATIVE_DROP_BYTES
}

/// Takes a tree apart without deep recursion: a large node's direct
/// children are moved onto explicit work lists (replaced by leaf
/// placeholders) before the node itself is dropped; small nodes, nearly all
/// of a real file, are dropped at once (walking them costs more than the
/// drop).
fn dismantle(suite: ast::Suite) {
    let worker = Dismantler::default();
    worker.stmts.borrow_mut().extend(suite);
    loop {
        let stmt = worker.stmts.borrow_mut().pop();
        if let Some(mut stmt) = stmt {
            if !small(&stmt) {
                transformer::walk_stmt(&worker, &mut stmt);
            }
            continue;
        }
        let expr = worker.exprs.borrow_mut().pop();
        if let Some(mut expr) = expr {
            if !small(&expr) {
                transformer::walk_expr(&worker, &mut expr);
            }
            continue;
        }
        let pattern = worker.patterns.borrow_mut().pop();
        if let Some(mut pattern) = pattern {
            if !small(&pattern) {
                transformer::walk_pattern(&worker, &mut pattern);
            }
            continue;
        }
        let spec = worker.format_specs.borrow_mut().pop();
        if let Some(mut spec) = spec {
            for element in &mut spec.elements {
                worker.visit_interpolated_string_element(element);
            }
            continue;
        }
        break;
    }
}

#[derive(Default)]
struct Dismantler {
    stmts: RefCell<Vec<ast::Stmt>>,
    exprs: RefCell<Vec<ast::Expr>>,
    patterns: RefCell<Vec<ast::Pattern>>,
    format_specs: RefCell<Vec<ast::InterpolatedStringFormatSpec>>,
}

impl Transformer for Dismantler {
    fn visit_stmt(&self, stmt: &mut ast::Stmt) {
        let placeholder = ast::Stmt::Pass(ast::StmtPass {
            node_index: ast::AtomicNodeIndex::default(),
            range: TextRange::default(),
        });
        self.stmts
            .borrow_mut()
            .push(std::mem::replace(stmt, placeholder));
    }

    fn visit_expr(&self, expr: &mut ast::Expr) {
        let placeholder = ast::Expr::NoneLiteral(ast::ExprNoneLiteral::default());
        self.exprs
            .borrow_mut()
            .push(std::mem::replace(expr, placeholder));
    }

    fn visit_pattern(&self, pattern: &mut ast::Pattern) {
        let placeholder = ast::Pattern::MatchAs(ast::PatternMatchAs {
            node_index: ast::AtomicNodeIndex::default(),
            range: TextRange::default(),
            pattern: None,
            name: None,
        });
        self.patterns
            .borrow_mut()
            .push(std::mem::replace(pattern, placeholder));
    }

    fn visit_interpolated_string_element(&self, element: &mut ast::InterpolatedStringElement) {
        if let ast::InterpolatedStringElement::Interpolation(interpolation) = element {
            self.visit_expr(&mut interpolation.expression);
            if let Some(spec) = interpolation.format_spec.take() {
                self.format_specs.borrow_mut().push(*spec);
            }
        }
    }
}
