//! The pre-scan that bounds the parse of one file: a single linear pass over
//! the bytes that refuses a file nesting deeper than a limit before Ruff's
//! parser sees it.
//!
//! Ruff's parser is recursive descent. Most of its recursion moves to fresh
//! heap segments (through `stacker`) when the thread's stack runs low, so
//! nesting costs memory and time instead: about 2 KiB per level in a
//! release build and 4 to 6 KiB in a debug build (measured with Ruff
//! 0.0.15), so that 2 MiB of `(` took 7 GB and 28 s. Some of it does not:
//! `lambda a=lambda a=...` recurses on the thread's own stack and overflowed
//! a 2 MiB stack at a thousand levels, aborting the process. Nothing in
//! Ruff's API bounds either, hence this scan.
//!
//! The scan mirrors Ruff's lexer (string prefixes and quotes, f- and
//! t-strings with their replacement fields and format specs, comments, line
//! joins, and the indentation stack with Ruff's tab rules) and, at every
//! token, counts an upper bound of how deep the parser's recursion is:
//! - open brackets, f-string replacement fields among them, and open f/t-strings;
//! - indentation levels: every distinct indentation still in effect, counting
//!   continuation lines too (Ruff's error recovery can turn them into logical
//!   lines), each weighted by the `async` keywords of the header line that
//!   opened it;
//! - `async` keywords of the current line (Ruff recovers from `async async`
//!   by recursing);
//! - the parser's pending expression frames, kept as a Pratt parser keeps
//!   them: prefix `-` `+` `~` `not` `await`, starred `*`, `lambda`,
//!   `yield`, `:=`, the right-hand sides of binary operators (so `**`
//!   chains and rising precedences count while `1+1+1` does not), and
//!   conditional expressions (each `else` nests). A frame is dropped only
//!   where Ruff's parser surely returns from it; where the scan cannot tell
//!   how Ruff reads a token (after a keyword, which may start a statement or
//!   be read as a name), it keeps every frame and pushes the
//!   lowest-precedence reading.
//!
//! Most logical lines are read by a cheaper loop that decides nothing per
//! token ([`Scanner::bounded_line`]): every level takes at least one byte
//! of code, so the line's length (or, for a long line, its count of
//! brackets, operator characters and words) bounds what it adds. Only a line
//! that holds an f/t-string or could come near the limit is read token by
//! token. On the Django and SQLAlchemy sources (`benches/parser.rs`) the scan
//! reads about 0.8 GB/s, about a seventh of the time of Ruff's parse.
//!
//! One thing a lexer mirror cannot follow: while Ruff's parser recovers from
//! a syntax error inside brackets, it lowers its lexer's bracket count and
//! re-lexes, and if its lexer is then inside an f/t-string, that string's
//! replacement fields and end move (the rest of the line, or through triple
//! quotes of the file, can become code to Ruff and string to the scan).
//! That happens only when the token Ruff recovers at is an f/t-string's
//! start or lies inside one. So the scan refuses a file where an f/t-string
//! starts inside brackets at a place that is not surely an expression (a
//! parameter or import name, a match pattern, or after statement-level
//! garbage inside the brackets), and a file with a syntax error inside a
//! replacement field that the scan can see: an unterminated string,
//! mismatched brackets, a keyword or operand where none can stand, a stray
//! `:`, `=` or `!`. Python rejects these files too, with one exception: a
//! line that calls a function named `case` with an f-string argument
//! (`case(f"...")`) is taken for a match pattern. Across 50,000 Python
//! files of CPython's libraries and others, only Ruff's own tests of broken
//! f-strings were refused.

use memchr::{memchr, memchr2};

/// Why a file is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The file nests deeper than the limit at this byte offset.
    TooDeep { offset: usize },
    /// An f/t-string at this offset is malformed, or placed, in a way that
    /// would make Ruff's parser re-lex the file differently from the scan.
    MalformedFString { offset: usize },
}

/// Scans `source` and returns an upper bound of its deepest nesting, or why
/// the file must not be parsed. `limit` is the deepest nesting allowed.
pub(crate) fn check(source: &str, limit: u32) -> Result<u32, Refusal> {
    let mut scanner = Scanner::new(source.as_bytes(), limit);
    scanner.run()?;
    Ok(scanner.max_depth)
}

/// [`check`] without the shortcut over plain lines, so that the depth it
/// returns is the one the scan counts.
#[cfg(test)]
pub(crate) fn check_exact(source: &str, limit: u32) -> Result<u32, Refusal> {
    let mut scanner = Scanner::new(source.as_bytes(), limit);
    scanner.exact = true;
    scanner.run()?;
    Ok(scanner.max_depth)
}

type Step = Result<(), Refusal>;

/// Ruff's `OperatorPrecedence`, from the lowest binary operator up.
const P_OR: u8 = 1;
const P_AND: u8 = 2;
const P_NOT: u8 = 3;
const P_COMPARE: u8 = 4;
const P_BIT_OR: u8 = 5;
const P_BIT_XOR: u8 = 6;
const P_BIT_AND: u8 = 7;
const P_SHIFT: u8 = 8;
const P_ADD: u8 = 9;
const P_MUL: u8 = 10;
const P_UNARY: u8 = 11;
const P_POWER: u8 = 12;
const P_AWAIT: u8 = 13;

/// A pending frame of Ruff's expression parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// A binary operator's right-hand side, or a prefix operator's operand,
    /// parsed at this precedence: returns at any operator that does not
    /// bind tighter.
    Op(u8),
    /// The test of a conditional expression (`a if test else b`).
    IfTest,
    /// Parsed at the lowest precedence (an `else` branch, a starred value,
    /// a `:=` value, a lambda body): returns at the end of the expression.
    Cond,
    /// Inside `lambda`'s parameters: `,`, `=` and defaults belong to it.
    LambdaParams,
    /// A `yield` value: an expression list, so `,` belongs to it.
    Yield,
}

/// What the previous token leaves the parser expecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// An operand just ended: `-` is binary, `(` is a call.
    Operand,
    /// An operand must follow: `-` is unary.
    Expect,
    /// Cannot tell (after a keyword, which is a statement keyword or is read
    /// as a name, or after a token Ruff's lexer may split differently).
    Uncertain,
    /// After `.`: the next name is an attribute.
    AfterDot,
}

/// What must follow inside a replacement field after `=` or `!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    None,
    /// After the `=` of `f"{x=}"`: `!`, `:` or `}`.
    AfterEqual,
    /// After `!`: the conversion's name.
    AfterBang,
    /// After `!r`: `:` or `}`.
    AfterConversion,
}

/// The statement keyword the next bracket may belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Header {
    #[default]
    None,
    Def,
    DefName,
    Class,
    ClassName,
    Type,
    TypeName,
    Import,
}

/// What Ruff's parser reads inside a bracket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Expressions: parentheses, calls, lists, subscripts, dictionaries,
    /// sets, replacement fields.
    Expr,
    /// Parameters or type parameters: names, with expressions after `=`
    /// and `:`.
    Params,
    /// Names imported.
    Import,
    /// A match pattern.
    Pattern,
}

/// An open bracket.
#[derive(Debug, Clone, Copy)]
struct Level {
    /// Index in `frames` of this level's first frame.
    frames_base: usize,
    open: u8,
    kind: Kind,
    /// The `{` of an f/t-string replacement field.
    field: bool,
    /// `(` of a call or `[` of a subscript (opened right after an operand).
    postfix: bool,
    /// The type parameters of a `def` (its parameters follow).
    def_type_params: bool,
}

/// An open f- or t-string, as Ruff's lexer keeps it.
#[derive(Debug, Clone, Copy)]
struct FString {
    quote: u8,
    triple: bool,
    raw: bool,
    /// `levels.len()` when it started (Ruff's lexer `nesting`).
    nesting: usize,
    /// Format specs open in it (`f"{a:{b:...}}"`).
    spec_depth: usize,
}

/// An indentation as Ruff compares them: a column (tabs to the next even
/// column) and a character count. One is deeper than another only when both
/// are greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Indent {
    column: u32,
    chars: u32,
}

/// What the token before the current one left. (Aligned so that handing it
/// on, at every token, is one move.)
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(8))]
struct Before {
    header: Header,
    /// Where a parameter, target or import name goes (after `(`, `[`, `,`,
    /// `lambda`, a prefix `*` or `**`).
    name_position: bool,
    /// A name (not a keyword).
    name: bool,
    /// The start of a logical line.
    line_start: bool,
    /// The comparison `is` (so `not` makes `is not`).
    is: bool,
    /// `yield` (so `from` makes `yield from`).
    yield_: bool,
    /// A string (strings concatenate).
    string: bool,
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Start of the token being handled (where a refusal points).
    token: usize,
    limit: u32,
    max_depth: u32,
    levels: Vec<Level>,
    frames: Vec<Frame>,
    fstrings: Vec<FString>,
    /// Indentations that Ruff's indentation stack may still hold, with their
    /// weights, sorted by character count.
    indents: Vec<(Indent, u32)>,
    indent_weight: u32,
    /// `async` keywords since the last logical newline.
    asyncs: u32,
    /// `async` keywords of the previous logical line, for the block it opens.
    carry: u32,
    state: State,
    /// Set by the current token for the next one.
    next: Before,
    /// Left by the previous token.
    before: Before,
    tail: Tail,
    /// At the start of a physical line (its indentation not read yet).
    line_start: bool,
    /// In a `case` clause's pattern.
    pattern: bool,
    /// Statement-level garbage appeared inside the open brackets, after which
    /// the scan cannot tell what Ruff's parser reads there.
    tainted: bool,
    /// No shortcut over plain lines (tests).
    exact: bool,
    /// Where "async" occurs, once looked for, and the first not before the
    /// current line.
    async_offsets: Option<Vec<usize>>,
    async_cursor: usize,
}

impl<'a> Scanner<'a> {
    fn new(bytes: &'a [u8], limit: u32) -> Self {
        Scanner {
            bytes,
            pos: 0,
            token: 0,
            limit,
            max_depth: 0,
            levels: Vec::new(),
            frames: Vec::new(),
            fstrings: Vec::new(),
            indents: Vec::new(),
            indent_weight: 0,
            asyncs: 0,
            carry: 0,
            state: State::Uncertain,
            next: Before {
                line_start: true,
                ..Before::default()
            },
            before: Before::default(),
            tail: Tail::None,
            line_start: true,
            pattern: false,
            tainted: false,
            exact: false,
            async_offsets: None,
            async_cursor: 0,
        }
    }

    fn peek(&self, ahead: usize) -> u8 {
        self.bytes.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    // ------------------------------------------------------------ depth

    fn depth(&self) -> u32 {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.indent_weight
            .saturating_add(self.asyncs)
            .saturating_add(count(self.levels.len()))
            .saturating_add(count(self.fstrings.len()))
            .saturating_add(count(self.frames.len()))
    }

    /// Called after anything that adds to the depth.
    fn grew(&mut self) -> Step {
        let depth = self.depth();
        self.max_depth = self.max_depth.max(depth);
        if depth > self.limit {
            return Err(Refusal::TooDeep { offset: self.token });
        }
        Ok(())
    }

    fn malformed(&self) -> Refusal {
        Refusal::MalformedFString { offset: self.token }
    }

    /// Inside a replacement field (the scan is in code mode whenever an
    /// f-string is open and not in its literal text).
    fn in_field(&self) -> bool {
        !self.fstrings.is_empty()
    }

    /// Directly inside a replacement field's braces, not in a bracket within.
    fn at_field_level(&self) -> bool {
        self.in_field() && self.levels.last().is_some_and(|l| l.field)
    }

    /// Something Python never accepts inside brackets: refused inside a
    /// replacement field, and elsewhere remembered until the brackets close.
    fn garbage(&mut self) -> Step {
        if self.in_field() {
            return Err(self.malformed());
        }
        if !self.levels.is_empty() {
            self.tainted = true;
        }
        Ok(())
    }

    // ------------------------------------------------------------ frames

    fn frames_base(&self) -> usize {
        self.levels.last().map_or(0, |l| l.frames_base)
    }

    fn top(&self) -> Option<Frame> {
        if self.frames.len() > self.frames_base() {
            self.frames.last().copied()
        } else {
            None
        }
    }

    fn in_lambda_params(&self) -> bool {
        self.frames[self.frames_base()..].contains(&Frame::LambdaParams)
    }

    /// At a name position of a lambda's parameters (`lambda ^`, `lambda a, ^`,
    /// `lambda *^`).
    fn at_lambda_param_name(&self) -> bool {
        if !self.before.name_position {
            return false;
        }
        let frames = &self.frames[self.frames_base()..];
        match frames.iter().rposition(|&f| f == Frame::LambdaParams) {
            Some(at) => frames.len() - at <= 2,
            None => false,
        }
    }

    fn pop_while(&mut self, pop: impl Fn(Frame) -> bool) {
        let base = self.frames_base();
        while self.frames.len() > base {
            match self.frames.last() {
                Some(&frame) if pop(frame) => {
                    self.frames.pop();
                }
                _ => break,
            }
        }
    }

    fn push(&mut self, frame: Frame) -> Step {
        self.frames.push(frame);
        self.grew()
    }

    fn replace_top(&mut self, frame: Frame) {
        if let Some(last) = self.frames.last_mut() {
            *last = frame;
        }
    }

    /// A binary operator of precedence `prec`.
    fn binary(&mut self, prec: u8, right_assoc: bool) -> Step {
        if self.state == State::Operand {
            self.pop_while(|f| match f {
                Frame::Op(p) => p > prec || (p == prec && !right_assoc),
                _ => false,
            });
        }
        // Without a left operand Ruff still reads a binary operator, but the
        // scan cannot tell what the parser does with it: nothing is popped.
        self.push(Frame::Op(prec))?;
        self.state = State::Expect;
        Ok(())
    }

    /// `+` or `-`.
    fn plus_minus(&mut self) -> Step {
        match self.state {
            State::Operand => self.binary(P_ADD, false),
            State::Expect => {
                self.push(Frame::Op(P_UNARY))?;
                self.state = State::Expect;
                Ok(())
            }
            // Unary or binary: the binary reading has the lower precedence.
            State::Uncertain | State::AfterDot => {
                self.push(Frame::Op(P_ADD))?;
                self.state = State::Expect;
                Ok(())
            }
        }
    }

    /// A prefix operator or keyword that starts an operand (`~`, `not`,
    /// `await`, `lambda`, `yield`): pushes `frame`.
    fn prefix(&mut self, frame: Frame) -> Step {
        self.operand_start()?;
        self.push(frame)?;
        self.state = State::Expect;
        Ok(())
    }

    /// `,`: the frames of the element end; lambda parameters and `yield`
    /// values go on.
    fn comma(&mut self) {
        self.pop_while(|f| matches!(f, Frame::Op(_) | Frame::IfTest | Frame::Cond));
        self.state = State::Expect;
        self.next.name_position = true;
    }

    /// `=`, augmented assignments and `->`: the expression ends, unless a
    /// lambda's parameter default follows.
    fn assignment(&mut self) {
        self.pop_while(|f| matches!(f, Frame::Op(_) | Frame::IfTest | Frame::Cond | Frame::Yield));
        self.state = State::Expect;
    }

    /// A token that starts an operand: right after another operand (other
    /// than string after string) it is a syntax error.
    fn operand_start(&mut self) -> Step {
        if self.state == State::Operand {
            self.garbage()?;
        }
        Ok(())
    }

    fn operand(&mut self) {
        self.state = State::Operand;
    }

    // ------------------------------------------------------------ main loop

    fn run(&mut self) -> Step {
        loop {
            if let Some(fstring) = self.fstrings.last().copied() {
                if !self.in_interpolation(&fstring) {
                    self.fstring_literal(fstring)?;
                    continue;
                }
            }
            if self.line_start {
                self.line_start = false;
                let logical = self.levels.is_empty() && self.fstrings.is_empty();
                self.indentation(logical)?;
                if self.bounded_line()? {
                    continue;
                }
            }
            self.skip_blanks();
            let Some(&c) = self.bytes.get(self.pos) else {
                return Ok(());
            };
            self.token = self.pos;
            match c {
                b'\n' | b'\r' => {
                    self.newline();
                    continue;
                }
                b'#' => {
                    let rest = &self.bytes[self.pos..];
                    self.pos += memchr2(b'\n', b'\r', rest).unwrap_or(rest.len());
                    continue;
                }
                _ => {}
            }
            // A token: what the previous one left is read now.
            self.before = std::mem::take(&mut self.next);
            if self.tail != Tail::None && self.check_tail(c)? {
                continue;
            }
            if self.in_field() && self.at_lambda_param_name() {
                // A lambda's parameters inside a field take names only.
                let fine = c == b'_'
                    || c.is_ascii_alphabetic()
                    || c >= 0x80
                    || matches!(c, b'*' | b'/' | b':');
                if !fine {
                    return Err(self.malformed());
                }
            }
            if self.levels.is_empty() {
                self.tainted = false;
            }
            match c {
                b'0'..=b'9' => self.number()?,
                b'.' if self.peek(1).is_ascii_digit() => self.number()?,
                b'\'' | b'"' => {
                    self.pos += 1;
                    self.string(c, false, false)?;
                }
                c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => self.word()?,
                _ => self.punctuation(c)?,
            }
        }
    }

    /// Spaces, tabs, form feeds and backslash line joins between tokens.
    fn skip_blanks(&mut self) {
        loop {
            match self.peek(0) {
                b' ' | b'\t' | b'\x0c' => self.pos += 1,
                b'\\' => match (self.peek(1), self.peek(2)) {
                    (b'\r', b'\n') => self.pos += 3,
                    (b'\r' | b'\n', _) => self.pos += 2,
                    _ => return,
                },
                _ => return,
            }
        }
    }

    fn newline(&mut self) {
        if self.peek(0) == b'\r' && self.peek(1) == b'\n' {
            self.pos += 2;
        } else {
            self.pos += 1;
        }
        self.line_start = true;
        if self.levels.is_empty() && self.fstrings.is_empty() {
            // A logical newline: every statement frame ends.
            self.frames.clear();
            self.carry = self.asyncs;
            self.asyncs = 0;
            self.state = State::Uncertain;
            self.pattern = false;
            self.next = Before {
                line_start: true,
                ..Before::default()
            };
        }
    }

    /// At the start of a logical line, reads all of it (its strings,
    /// comments and continuation lines too) counting only an upper bound of
    /// how much it adds to the depth, and without deciding anything per
    /// token; this is most of the scan's speed. Returns false, with nothing
    /// read, for a line that holds an f/t-string or may come near the limit:
    /// the exact scan reads that one.
    fn bounded_line(&mut self) -> Result<bool, Refusal> {
        if self.exact || !self.levels.is_empty() || !self.fstrings.is_empty() {
            return Ok(false);
        }
        let start = self.pos;
        // Every level takes at least one byte of code, so the code's length
        // bounds what the line adds; only a long line needs counting: each
        // bracket, operator character and word (which may be a keyword) adds
        // at most one level.
        for counting in [false, true] {
            match self.read_line(start, counting)? {
                Some(adds) => {
                    // Within the limit (`read_line` saw to it).
                    self.max_depth = self.max_depth.max(self.depth().saturating_add(adds));
                    // `async` keywords (or more: the word anywhere in the
                    // line) weigh on the block the line may open.
                    let asyncs = self.asyncs_in(start, self.pos);
                    self.asyncs = u32::try_from(asyncs).unwrap_or(u32::MAX);
                    return Ok(true);
                }
                None => self.pos = start,
            }
        }
        Ok(false)
    }

    /// Reads the logical line starting at `start` for [`Self::bounded_line`]
    /// and returns the bound of what it adds to the depth, or `None` where
    /// the exact scan must read it. `counting` counts what may add a level;
    /// otherwise every byte of code is taken to.
    fn read_line(&mut self, start: usize, counting: bool) -> Result<Option<u32>, Refusal> {
        let b = self.bytes;
        let mut pos = start;
        let mut adds = 0u32;
        // Brackets open, and the fewest: a closer with none open (which
        // Ruff's lexer ignores) is left to the exact scan.
        let mut open = 0i32;
        let mut fewest = 0i32;
        let mut in_name = 0u32;
        loop {
            if counting {
                while let Some(&c) = b.get(pos) {
                    let class = LINE[usize::from(c)];
                    if class & LINE_SPECIAL != 0 {
                        break;
                    }
                    let name = u32::from(class & LINE_NAME);
                    adds += u32::from((class & LINE_ADDS) >> 1) + (name & !in_name);
                    open +=
                        i32::from((class & LINE_OPEN) >> 2) - i32::from((class & LINE_CLOSE) >> 3);
                    fewest = fewest.min(open);
                    in_name = name;
                    pos += 1;
                }
            } else {
                let from = pos;
                while let Some(&c) = b.get(pos) {
                    let class = LINE[usize::from(c)];
                    if class & (LINE_SPECIAL | LINE_OPEN | LINE_CLOSE) != 0 {
                        if class & LINE_OPEN != 0 {
                            open += 1;
                        } else if class & LINE_CLOSE != 0 {
                            open -= 1;
                            fewest = fewest.min(open);
                        } else {
                            break;
                        }
                    }
                    pos += 1;
                }
                adds = adds.saturating_add(u32::try_from(pos - from).unwrap_or(u32::MAX));
            }
            if fewest < 0 || self.depth().saturating_add(adds) > self.limit {
                return Ok(None);
            }
            let Some(&c) = b.get(pos) else {
                break;
            };
            match c {
                b'\n' | b'\r' if open == 0 => break,
                b'\n' | b'\r' => {
                    // A continuation line: its indentation counts.
                    pos += if c == b'\r' && b.get(pos + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    self.pos = pos;
                    self.indentation(false)?;
                    pos = self.pos;
                    in_name = 0;
                }
                b'#' => {
                    pos += memchr2(b'\n', b'\r', &b[pos..]).unwrap_or(b.len() - pos);
                }
                b'\\' => {
                    pos += match (b.get(pos + 1), b.get(pos + 2)) {
                        (Some(b'\r'), Some(b'\n')) => 3,
                        (Some(b'\r' | b'\n'), _) => 2,
                        _ => 1,
                    };
                    adds += 1;
                    in_name = 0;
                }
                _ => {
                    // A quote. Any `f` or `t` among the two bytes before it
                    // may make an f/t-string (`rf"`, and `1f"` too: a number
                    // ends before the `f`).
                    let interpolated = b[pos.saturating_sub(2)..pos]
                        .iter()
                        .any(|c| matches!(c, b'f' | b'F' | b't' | b'T'));
                    if interpolated {
                        return Ok(None);
                    }
                    self.pos = pos + 1;
                    let triple = self.peek(0) == c && self.peek(1) == c;
                    if triple {
                        self.pos += 2;
                        self.triple_quoted_body(c);
                    } else {
                        self.single_quoted_body(c);
                    }
                    pos = self.pos;
                    in_name = 0;
                }
            }
        }
        self.pos = pos;
        Ok(Some(adds))
    }

    /// How many times "async" occurs in `from..to`; `from` never goes back
    /// from one call to the next. (Found once per file: nearly no file has
    /// it.)
    fn asyncs_in(&mut self, from: usize, to: usize) -> usize {
        let bytes = self.bytes;
        let name_byte = |at: Option<&u8>| at.is_some_and(|&c| NAME_BYTE[usize::from(c)]);
        let found = self.async_offsets.get_or_insert_with(|| {
            ASYNC
                .find_iter(bytes)
                .filter(|&at| {
                    let before = at.checked_sub(1).and_then(|before| bytes.get(before));
                    !name_byte(before) && !name_byte(bytes.get(at + 5))
                })
                .collect()
        });
        while found.get(self.async_cursor).is_some_and(|&at| at < from) {
            self.async_cursor += 1;
        }
        found[self.async_cursor..]
            .iter()
            .take_while(|&&at| at < to)
            .count()
    }

    /// The indentation of the line starting at `pos`, as Ruff's lexer
    /// computes it; blank and comment-only lines have none. A `logical`
    /// line (one Ruff's lexer reads indentation of) pops the deeper ones; a
    /// continuation line only adds its own.
    fn indentation(&mut self, logical: bool) -> Step {
        // Nearly every line is indented with spaces only.
        let spaces = leading_spaces(&self.bytes[self.pos..]);
        let spaces32 = u32::try_from(spaces).unwrap_or(u32::MAX);
        let mut indent = Indent {
            column: spaces32,
            chars: spaces32,
        };
        let mut at = self.pos + spaces;
        let unusual = matches!(self.bytes.get(at), Some(b'\t' | b'\x0c' | b'\\'));
        if unusual {
            loop {
                match self.bytes.get(at).copied().unwrap_or(0) {
                    b' ' => {
                        indent.column += 1;
                        indent.chars += 1;
                        at += 1;
                    }
                    b'\t' => {
                        indent.column += 2 - indent.column % 2;
                        indent.chars += 1;
                        at += 1;
                    }
                    b'\x0c' => {
                        indent = Indent {
                            column: 0,
                            chars: 0,
                        };
                        at += 1;
                    }
                    b'\\' => {
                        let next = self.bytes.get(at + 1).copied().unwrap_or(0);
                        if next != b'\n' && next != b'\r' {
                            break;
                        }
                        at += 2;
                        if next == b'\r' && self.bytes.get(at) == Some(&b'\n') {
                            at += 1;
                        }
                        if indent.chars != 0 {
                            while matches!(self.bytes.get(at), Some(b' ' | b'\t' | b'\x0c')) {
                                at += 1;
                            }
                        }
                    }
                    _ => break,
                }
            }
        }
        self.pos = at;
        if matches!(self.bytes.get(at), None | Some(b'\n' | b'\r' | b'#')) {
            return Ok(());
        }
        self.token = at;
        let carry = if logical {
            std::mem::take(&mut self.carry)
        } else {
            0
        };
        // The usual line: as deep as the last indentation, or the first
        // one deeper.
        match self.indents.last_mut() {
            Some((last, weight))
                if *last == indent && (!logical || carry == 0 || *weight > carry) =>
            {
                return Ok(());
            }
            Some((last, _)) if last.chars < indent.chars && last.column < indent.column => {
                self.indents.push((indent, 1 + carry));
                self.indent_weight += 1 + carry;
                return self.grew();
            }
            None if indent.chars > 0 => {
                self.indents.push((indent, 1 + carry));
                self.indent_weight += 1 + carry;
                return self.grew();
            }
            _ => {}
        }
        if logical {
            // Ruff pops every indentation deeper than this line's: with
            // spaces only, the ones with more characters, at the end.
            let keep = self
                .indents
                .partition_point(|(i, _)| i.chars <= indent.chars);
            let deeper = &self.indents[keep..];
            if deeper.iter().all(|(i, _)| i.column > indent.column) {
                self.indent_weight -= deeper.iter().map(|(_, w)| w).sum::<u32>();
                self.indents.truncate(keep);
            } else {
                let mut removed = 0;
                self.indents.retain(|&(i, weight)| {
                    let deeper = i.column > indent.column && i.chars > indent.chars;
                    if deeper {
                        removed += weight;
                    }
                    !deeper
                });
                self.indent_weight -= removed;
            }
        }
        if indent.chars == 0 {
            return Ok(());
        }
        let at = self
            .indents
            .partition_point(|(i, _)| i.chars < indent.chars);
        let weight = 1 + carry;
        let known = self.indents[at..]
            .iter_mut()
            .take_while(|(i, _)| i.chars == indent.chars)
            .find(|(i, _)| *i == indent);
        match known {
            Some((_, known)) if *known >= weight => return Ok(()),
            Some((_, known)) => {
                // A header's `async` keywords weigh on its block.
                self.indent_weight += weight - *known;
                *known = weight;
            }
            None => {
                self.indents.insert(at, (indent, weight));
                self.indent_weight += weight;
            }
        }
        self.grew()
    }

    // ------------------------------------------------------------ tokens

    fn number(&mut self) -> Step {
        self.operand_start()?;
        let b = self.bytes;
        let digits = |mut at: usize, hex: bool| {
            while at < b.len()
                && (b[at] == b'_' || b[at].is_ascii_digit() || (hex && b[at].is_ascii_hexdigit()))
            {
                at += 1;
            }
            at
        };
        let mut at = self.pos;
        if b[at] == b'0' && matches!(b.get(at + 1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B')) {
            at = digits(at + 2, true);
        } else {
            at = digits(at, false);
            if b.get(at) == Some(&b'.') {
                at = digits(at + 1, false);
            }
            if matches!(b.get(at), Some(b'e' | b'E')) {
                let sign = usize::from(matches!(b.get(at + 1), Some(b'+' | b'-')));
                if b.get(at + 1 + sign).is_some_and(u8::is_ascii_digit) {
                    at = digits(at + 1 + sign, false);
                }
            }
            if matches!(b.get(at), Some(b'j' | b'J')) {
                at += 1;
            }
        }
        self.pos = at;
        self.operand();
        Ok(())
    }

    /// A name, a keyword, or a string with a prefix.
    fn word(&mut self) -> Step {
        let b = self.bytes;
        let start = self.pos;
        let mut end = start;
        let mut high = 0;
        while let Some(&c) = b.get(end) {
            if !NAME_BYTE[usize::from(c)] {
                break;
            }
            high |= c;
            end += 1;
        }
        // String prefixes, as Ruff's lexer accepts them.
        if let Some(&quote @ (b'\'' | b'"')) = b.get(end) {
            let prefix = match b[start..end] {
                [first] if is_prefix(first) => Some(prefix_flags(first, 0)),
                [first, second] => double_prefix(first, second),
                _ => None,
            };
            if let Some((interpolated, raw)) = prefix {
                self.pos = end + 1;
                return self.string(quote, interpolated, raw);
            }
        }
        self.pos = end;
        let word = &b[start..end];
        let ascii = high < 0x80;
        if self.state == State::AfterDot {
            // An attribute name, keyword or not.
            self.operand();
            return Ok(());
        }
        if !ascii {
            self.name()?;
            let letters = std::str::from_utf8(word)
                .is_ok_and(|w| w.chars().all(|c| c.is_ascii() || c.is_alphabetic()));
            if !letters {
                // Ruff splits a name around characters it does not accept.
                self.garbage()?;
                self.state = State::Uncertain;
            }
            return Ok(());
        }
        self.keyword(word)
    }

    /// A name (soft keywords included).
    fn name(&mut self) -> Step {
        self.operand_start()?;
        self.operand();
        self.next.name = true;
        self.next.header = match self.before.header {
            Header::Def => Header::DefName,
            Header::Class => Header::ClassName,
            Header::Type => Header::TypeName,
            _ => Header::None,
        };
        Ok(())
    }

    fn keyword(&mut self, word: &[u8]) -> Step {
        // Most names are not keywords: no keyword is longer than eight
        // letters or starts with another letter than these.
        if word.len() > 8 || !KEYWORD_START[usize::from(word[0])] {
            return self.name();
        }
        let state = self.state;
        match word {
            b"not" => {
                if state == State::Operand && self.next_word_is(b"in") {
                    self.binary(P_COMPARE, false)?;
                    self.skip_blanks();
                    self.pos += 2;
                } else if self.before.is {
                    self.state = State::Expect;
                } else {
                    self.prefix(Frame::Op(P_NOT))?;
                }
            }
            b"await" => self.prefix(Frame::Op(P_AWAIT))?,
            b"lambda" => {
                if self.at_field_level() {
                    return Err(self.malformed());
                }
                self.prefix(Frame::LambdaParams)?;
                self.next.name_position = true;
            }
            b"yield" => {
                self.prefix(Frame::Yield)?;
                self.next.yield_ = true;
            }
            b"None" | b"True" | b"False" => {
                self.operand_start()?;
                self.operand();
            }
            b"and" | b"or" | b"in" | b"is" => {
                let prec = match word {
                    b"and" => P_AND,
                    b"or" => P_OR,
                    _ => P_COMPARE,
                };
                match state {
                    State::Operand => self.binary(prec, false)?,
                    State::Expect => self.keyword_as_name()?,
                    _ => {
                        self.garbage()?;
                        self.push(Frame::Op(prec))?;
                        self.state = State::Uncertain;
                    }
                }
                self.next.is = word == b"is";
            }
            b"if" => match state {
                State::Operand => {
                    self.pop_while(|f| matches!(f, Frame::Op(_)));
                    if self.top() == Some(Frame::IfTest) {
                        // `a if b if c`: Ruff parses the missing `else` branch.
                        self.replace_top(Frame::Cond);
                    }
                    self.push(Frame::IfTest)?;
                    self.state = State::Expect;
                    if self.levels.is_empty() {
                        // A `case` guard is an expression.
                        self.pattern = false;
                    }
                }
                State::Expect => self.keyword_as_name()?,
                _ => {
                    if !self.before.line_start {
                        self.garbage()?;
                    }
                    self.push(Frame::IfTest)?;
                    self.state = State::Uncertain;
                }
            },
            b"else" => match state {
                State::Operand => {
                    self.pop_while(|f| matches!(f, Frame::Op(_)));
                    if self.top() == Some(Frame::IfTest) {
                        self.replace_top(Frame::Cond);
                    } else {
                        self.garbage()?;
                    }
                    self.state = State::Expect;
                }
                State::Expect => self.keyword_as_name()?,
                _ => {
                    self.statement_keyword()?;
                }
            },
            b"for" => match state {
                State::Operand => {
                    if self.at_field_level() {
                        return Err(self.malformed());
                    }
                    if self.levels.is_empty() {
                        self.garbage()?;
                    }
                    self.pop_while(|f| {
                        matches!(f, Frame::Op(_) | Frame::IfTest | Frame::Cond | Frame::Yield)
                    });
                    self.state = State::Expect;
                }
                State::Expect => self.keyword_as_name()?,
                _ => {
                    self.statement_keyword()?;
                }
            },
            b"async" => {
                let comprehension = state == State::Operand && self.next_word_is(b"for");
                if !comprehension && (!self.levels.is_empty() || self.in_field()) {
                    self.garbage()?;
                }
                if self.in_field() && self.at_field_level() {
                    return Err(self.malformed());
                }
                self.asyncs += 1;
                self.grew()?;
                self.state = match state {
                    // Read as a name where an operand must follow.
                    State::Expect => State::Operand,
                    // `x async for`: still after an operand.
                    State::Operand => State::Operand,
                    _ => State::Uncertain,
                };
            }
            b"from" if self.before.yield_ => self.state = State::Expect,
            b"as" => match state {
                State::Operand => {
                    if self.in_field() {
                        return Err(self.malformed());
                    }
                    self.pop_while(|f| matches!(f, Frame::Op(_) | Frame::IfTest | Frame::Cond));
                    self.state = State::Expect;
                }
                State::Expect => self.keyword_as_name()?,
                _ => self.statement_keyword()?,
            },
            b"def" | b"class" | b"import" => {
                if state == State::Expect {
                    self.keyword_as_name()?;
                } else {
                    self.statement_keyword()?;
                    self.next.header = match word {
                        b"def" => Header::Def,
                        b"class" => Header::Class,
                        _ => Header::Import,
                    };
                }
            }
            b"assert" | b"break" | b"continue" | b"del" | b"elif" | b"except" | b"finally"
            | b"from" | b"global" | b"nonlocal" | b"pass" | b"raise" | b"return" | b"try"
            | b"while" | b"with" => {
                if state == State::Expect {
                    self.keyword_as_name()?;
                } else {
                    self.statement_keyword()?;
                }
            }
            b"case" if self.before.line_start && self.levels.is_empty() => {
                // A `case` clause, unless the name is used (`case = 1`,
                // `case.x`, `case, x = ...`).
                let mut at = self.pos;
                while matches!(self.bytes.get(at), Some(b' ' | b'\t' | b'\x0c')) {
                    at += 1;
                }
                let used = matches!(
                    self.bytes.get(at),
                    None | Some(
                        b'=' | b'.' | b',' | b';' | b':' | b')' | b']' | b'}' | b'\n' | b'\r'
                    )
                );
                self.pattern = !used;
                self.name()?;
            }
            b"type" if self.before.line_start => {
                self.name()?;
                self.next.header = Header::Type;
            }
            // Names, and the soft keywords (`match`, `case`, `type`, `lazy`),
            // which Ruff reads as names in expressions.
            _ => self.name()?,
        }
        Ok(())
    }

    /// A statement keyword (or a keyword in the wrong place): garbage inside
    /// brackets.
    fn statement_keyword(&mut self) -> Step {
        if !self.levels.is_empty() || self.in_field() {
            self.garbage()?;
        }
        self.state = State::Uncertain;
        Ok(())
    }

    /// Where an operand must follow, Ruff reads a keyword as a (bad) name,
    /// but a list parsed inside brackets may instead give up on it.
    fn keyword_as_name(&mut self) -> Step {
        if !self.levels.is_empty() || self.in_field() {
            self.garbage()?;
        }
        self.operand();
        Ok(())
    }

    fn next_word_is(&self, word: &[u8]) -> bool {
        let mut at = self.pos;
        while matches!(self.bytes.get(at), Some(b' ' | b'\t' | b'\x0c')) {
            at += 1;
        }
        self.bytes.get(at..at + word.len()) == Some(word)
            && !self
                .bytes
                .get(at + word.len())
                .is_some_and(|&c| c == b'_' || c.is_ascii_alphanumeric() || c >= 0x80)
    }

    fn punctuation(&mut self, c: u8) -> Step {
        let next = self.peek(1);
        let state = self.state;
        match c {
            b'(' | b'[' | b'{' => {
                if c == b'{' {
                    self.operand_start()?;
                }
                // `def f((a, b))`, `lambda (a): ...`: Python 2.
                let in_names = self.before.name_position && self.level_kind_here_takes_names();
                self.pos += 1;
                self.open(c, false, state == State::Operand)?;
                if in_names {
                    self.garbage()?;
                }
            }
            b')' | b']' | b'}' => {
                self.pos += 1;
                self.close(c)?;
            }
            b',' => {
                self.pos += 1;
                self.comma();
            }
            b';' => {
                self.pos += 1;
                self.garbage()?;
                let base = self.frames_base();
                self.frames.truncate(base);
                self.state = State::Uncertain;
                self.next.line_start = self.levels.is_empty();
            }
            b':' => {
                self.pos += 1;
                self.colon(next)?;
            }
            b'=' => {
                if next == b'=' {
                    self.pos += 2;
                    self.binary(P_COMPARE, false)?;
                } else {
                    self.pos += 1;
                    self.equal()?;
                }
            }
            b'!' => {
                if next == b'=' {
                    self.pos += 2;
                    self.binary(P_COMPARE, false)?;
                } else {
                    self.pos += 1;
                    if self.at_field_level() && state == State::Operand {
                        // A conversion (`f"{x!r}"`): the expression is done.
                        let base = self.frames_base();
                        self.frames.truncate(base);
                        self.tail = Tail::AfterBang;
                    } else {
                        self.garbage()?;
                        self.state = State::Uncertain;
                    }
                }
            }
            b'.' => {
                if next == b'.' && self.peek(2) == b'.' {
                    self.pos += 3;
                    self.operand_start()?;
                    self.operand();
                } else {
                    self.pos += 1;
                    self.state = match state {
                        State::Operand => State::AfterDot,
                        _ => State::Uncertain,
                    };
                }
            }
            b'-' | b'+' => {
                if next == b'=' || (c == b'-' && next == b'>') {
                    self.pos += 2;
                    self.augmented()?;
                } else {
                    self.pos += 1;
                    self.plus_minus()?;
                }
            }
            b'*' => {
                if next == b'*' {
                    if self.peek(2) == b'=' {
                        self.pos += 3;
                        self.augmented()?;
                    } else {
                        self.pos += 2;
                        if state != State::Operand {
                            self.next.name_position = true;
                        }
                        self.binary(P_POWER, true)?;
                    }
                } else if next == b'=' {
                    self.pos += 2;
                    self.augmented()?;
                } else {
                    self.pos += 1;
                    if state == State::Operand {
                        self.binary(P_MUL, false)?;
                    } else {
                        // A starred expression (or, unsure, a multiplication:
                        // the starred reading has the lower precedence).
                        self.push(Frame::Cond)?;
                        self.state = State::Expect;
                        self.next.name_position = true;
                    }
                }
            }
            b'/' => {
                let double = usize::from(next == b'/');
                if self.peek(1 + double) == b'=' {
                    self.pos += 2 + double;
                    self.augmented()?;
                } else {
                    self.pos += 1 + double;
                    self.binary(P_MUL, false)?;
                }
            }
            b'%' | b'@' => {
                if next == b'=' {
                    self.pos += 2;
                    self.augmented()?;
                } else {
                    self.pos += 1;
                    if c == b'@' && state != State::Operand && !self.levels.is_empty() {
                        // A decorator's `@` inside brackets.
                        self.garbage()?;
                    }
                    self.binary(P_MUL, false)?;
                }
            }
            b'|' | b'^' | b'&' => {
                if next == b'=' {
                    self.pos += 2;
                    self.augmented()?;
                } else {
                    self.pos += 1;
                    let prec = match c {
                        b'|' => P_BIT_OR,
                        b'^' => P_BIT_XOR,
                        _ => P_BIT_AND,
                    };
                    self.binary(prec, false)?;
                }
            }
            b'<' | b'>' => {
                if next == c {
                    if self.peek(2) == b'=' {
                        self.pos += 3;
                        self.augmented()?;
                    } else {
                        self.pos += 2;
                        self.binary(P_SHIFT, false)?;
                    }
                } else {
                    self.pos += 1 + usize::from(next == b'=');
                    self.binary(P_COMPARE, false)?;
                }
            }
            b'~' => {
                self.pos += 1;
                self.prefix(Frame::Op(P_UNARY))?;
            }
            _ => {
                // A character Ruff's lexer rejects (`$`, `?`, a backtick, a
                // backslash that joins nothing).
                self.pos += 1;
                self.garbage()?;
                self.state = State::Uncertain;
            }
        }
        Ok(())
    }

    /// Whether the innermost bracket holds names at a name position.
    fn level_kind_here_takes_names(&self) -> bool {
        self.levels.last().is_some_and(|l| l.kind == Kind::Params) || self.at_lambda_param_name()
    }

    /// Augmented assignments and `->`.
    fn augmented(&mut self) -> Step {
        if !self.levels.is_empty() || self.in_field() {
            self.garbage()?;
        }
        self.assignment();
        Ok(())
    }

    fn equal(&mut self) -> Step {
        if self.at_field_level() {
            // The `=` of `f"{x=}"`: the expression is done.
            let base = self.frames_base();
            self.frames.truncate(base);
            self.tail = Tail::AfterEqual;
            return Ok(());
        }
        if let Some(level) = self.levels.last() {
            // A keyword argument, a default, or a class pattern's keyword;
            // anywhere else Ruff's recovery may take the `=` for something
            // else (inside a field: its debug marker).
            let named = self.before.name;
            let fine = match level.kind {
                Kind::Params | Kind::Pattern => !self.in_field(),
                Kind::Import => false,
                Kind::Expr => {
                    (named && level.open == b'(' && level.postfix)
                        || (named && self.in_lambda_params())
                }
            };
            if !fine {
                self.garbage()?;
            }
        }
        self.assignment();
        Ok(())
    }

    fn colon(&mut self, next: u8) -> Step {
        if let Some(fstring) = self.fstrings.last_mut() {
            let open = self.levels.len() - fstring.nesting;
            if open.saturating_sub(fstring.spec_depth) == 1 {
                // The start of a format spec: the field's expression is done.
                fstring.spec_depth += 1;
                let base = self.frames_base();
                self.frames.truncate(base);
                self.tail = Tail::None;
                return Ok(());
            }
        }
        if next == b'=' {
            self.pos += 1;
            self.pop_while(|f| matches!(f, Frame::Op(_) | Frame::IfTest));
            self.push(Frame::Cond)?;
            self.state = State::Expect;
            return Ok(());
        }
        if let Some(level) = self.levels.last() {
            // Slices, dictionaries, annotations and lambdas take `:`;
            // anywhere else Ruff's recovery may hand it on (inside a field:
            // as the start of a format spec).
            let fine = self.in_lambda_params()
                || match level.kind {
                    Kind::Params | Kind::Pattern => true,
                    Kind::Import => false,
                    Kind::Expr => {
                        (level.open == b'[' && level.postfix)
                            || (level.open == b'{' && !level.field)
                    }
                };
            if !fine {
                self.garbage()?;
            }
        } else {
            // The end of a statement's header, or of a `case` pattern.
            self.pattern = false;
            self.next.line_start = true;
        }
        self.pop_while(|f| matches!(f, Frame::Op(_) | Frame::IfTest | Frame::Cond | Frame::Yield));
        if self.top() == Some(Frame::LambdaParams) {
            self.replace_top(Frame::Cond);
        }
        self.state = State::Uncertain;
        Ok(())
    }

    fn open(&mut self, open: u8, field: bool, postfix: bool) -> Step {
        let header = self.before.header;
        let kind = if field {
            Kind::Expr
        } else if self.pattern {
            Kind::Pattern
        } else {
            match (header, open) {
                (Header::DefName, b'(') => Kind::Params,
                (Header::DefName | Header::ClassName | Header::TypeName, b'[') => Kind::Params,
                (Header::Import, b'(') => Kind::Import,
                _ => Kind::Expr,
            }
        };
        self.levels.push(Level {
            frames_base: self.frames.len(),
            open,
            kind,
            field,
            postfix,
            def_type_params: header == Header::DefName && open == b'[',
        });
        self.state = State::Expect;
        self.next.name_position = true;
        self.grew()
    }

    fn close(&mut self, close: u8) -> Step {
        if let Some(fstring) = self.fstrings.last_mut() {
            if self.levels.len() == fstring.nesting {
                // A lone `}` in an f-string's text: Ruff reports it and goes on.
                self.state = State::Operand;
                return Ok(());
            }
            if close == b'}' && fstring.spec_depth > 0 {
                let open = self.levels.len() - fstring.nesting;
                if open <= fstring.spec_depth {
                    fstring.spec_depth -= 1;
                }
            }
        }
        let Some(level) = self.levels.pop() else {
            // Ruff's lexer never counts below zero.
            self.state = State::Operand;
            return Ok(());
        };
        self.frames.truncate(level.frames_base);
        let matches = matches!(
            (level.open, close),
            (b'(', b')') | (b'[', b']') | (b'{', b'}')
        );
        if !matches {
            self.garbage()?;
        }
        if self.levels.is_empty() {
            self.tainted = false;
        }
        if level.def_type_params {
            // `def f[T](...)`: the parameters follow.
            self.next.header = Header::DefName;
        }
        self.tail = Tail::None;
        self.operand();
        Ok(())
    }

    /// Checks what follows `=` or `!` in a replacement field; returns
    /// whether it consumed the token.
    fn check_tail(&mut self, c: u8) -> Result<bool, Refusal> {
        match self.tail {
            Tail::None => Ok(false),
            Tail::AfterEqual => match c {
                b'!' if self.peek(1) != b'=' => {
                    self.pos += 1;
                    self.tail = Tail::AfterBang;
                    Ok(true)
                }
                b':' | b'}' => {
                    self.tail = Tail::None;
                    Ok(false)
                }
                _ => Err(self.malformed()),
            },
            Tail::AfterBang => {
                if !c.is_ascii_alphabetic() {
                    return Err(self.malformed());
                }
                let mut end = self.pos;
                while self.bytes.get(end).is_some_and(u8::is_ascii_alphanumeric) {
                    end += 1;
                }
                // A prefixed string (`!r"`) is what Ruff re-lexes.
                if matches!(self.bytes.get(end), Some(b'\'' | b'"')) {
                    return Err(self.malformed());
                }
                self.pos = end;
                self.tail = Tail::AfterConversion;
                Ok(true)
            }
            Tail::AfterConversion => match c {
                b':' | b'}' => {
                    self.tail = Tail::None;
                    Ok(false)
                }
                _ => Err(self.malformed()),
            },
        }
    }

    // ------------------------------------------------------------ strings

    /// A string whose opening quote (and prefix) ends at `pos`.
    fn string(&mut self, quote: u8, interpolated: bool, raw: bool) -> Step {
        if !self.before.string {
            self.operand_start()?;
        }
        let triple = self.peek(0) == quote && self.peek(1) == quote;
        if triple {
            self.pos += 2;
        }
        if interpolated {
            if !self.levels.is_empty() && !self.fstring_may_start_here() {
                // Ruff's parser may give up on the list here and re-lex
                // with the f-string open.
                return Err(self.malformed());
            }
            self.fstrings.push(FString {
                quote,
                triple,
                raw,
                nesting: self.levels.len(),
                spec_depth: 0,
            });
            return self.grew();
        }
        let closed = if triple {
            self.triple_quoted_body(quote)
        } else {
            self.single_quoted_body(quote)
        };
        if !closed && self.in_field() {
            // Ruff's parser may turn an unterminated string inside a field
            // into the end of the f-string.
            return Err(self.malformed());
        }
        self.operand();
        self.next.string = true;
        Ok(())
    }

    /// Whether an f-string starting inside brackets is surely an expression
    /// to Ruff's parser.
    fn fstring_may_start_here(&self) -> bool {
        if self.tainted {
            return false;
        }
        match self.levels.last().map(|l| l.kind) {
            Some(Kind::Import | Kind::Pattern) => false,
            Some(Kind::Params) => !self.before.name_position,
            _ => !self.at_lambda_param_name(),
        }
    }

    /// Skips to after the closing triple quote; false at the end of the file.
    fn triple_quoted_body(&mut self, quote: u8) -> bool {
        loop {
            let rest = &self.bytes[self.pos..];
            let Some(at) = memchr(quote, rest) else {
                self.pos = self.bytes.len();
                return false;
            };
            let escaped = rest[..at].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1;
            self.pos += at + 1;
            if !escaped && self.peek(0) == quote && self.peek(1) == quote {
                self.pos += 2;
                return true;
            }
        }
    }

    /// Skips to after the closing quote; false at an unescaped line break
    /// (left for the main loop) or the end of the file.
    fn single_quoted_body(&mut self, quote: u8) -> bool {
        loop {
            let rest = &self.bytes[self.pos..];
            let Some(at) = memchr::memchr3(quote, b'\n', b'\r', rest) else {
                self.pos = self.bytes.len();
                return false;
            };
            let escaped = rest[..at].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1;
            let found = rest[at];
            self.pos += at;
            if escaped {
                self.pos += 1;
                if found == b'\r' && self.peek(0) == b'\n' {
                    self.pos += 1;
                }
                continue;
            }
            if found == quote {
                self.pos += 1;
                return true;
            }
            return false;
        }
    }

    fn in_interpolation(&self, fstring: &FString) -> bool {
        self.levels.len().saturating_sub(fstring.nesting) > fstring.spec_depth
    }

    /// The literal text of an f-string (or of a format spec), up to its
    /// end, a replacement field, or a `}`; as Ruff's lexer reads it.
    fn fstring_literal(&mut self, fstring: FString) -> Step {
        self.token = self.pos;
        let quote = fstring.quote;
        if fstring.triple {
            if self.peek(0) == quote && self.peek(1) == quote && self.peek(2) == quote {
                self.pos += 3;
                return self.fstring_end(true);
            }
        } else if self.peek(0) == quote {
            self.pos += 1;
            return self.fstring_end(true);
        }
        let in_spec = fstring.spec_depth > 0;
        let mut named_unicode = false;
        loop {
            let Some(&c) = self.bytes.get(self.pos) else {
                return self.fstring_end(false);
            };
            match c {
                b'\n' | b'\r' if !fstring.triple => return self.fstring_end(false),
                b'\\' => {
                    self.pos += 1;
                    match self.peek(0) {
                        b'{' | b'}' => continue,
                        b'N' if !fstring.raw && self.peek(1) == b'{' => {
                            self.pos += 2;
                            named_unicode = true;
                            continue;
                        }
                        b'\r' if self.peek(1) == b'\n' => self.pos += 2,
                        0 if self.at_end() => {}
                        _ => self.pos += 1,
                    }
                }
                c if c == quote => {
                    if !fstring.triple || (self.peek(1) == quote && self.peek(2) == quote) {
                        return Ok(());
                    }
                    self.pos += 1;
                }
                b'{' => {
                    if self.peek(1) == b'{' && !in_spec {
                        self.pos += 2;
                    } else {
                        self.token = self.pos;
                        self.pos += 1;
                        self.next = Before::default();
                        self.tail = Tail::None;
                        return self.open(b'{', true, false);
                    }
                }
                b'}' => {
                    if named_unicode {
                        named_unicode = false;
                        self.pos += 1;
                    } else if self.peek(1) == b'}' && !in_spec {
                        self.pos += 2;
                    } else {
                        self.token = self.pos;
                        self.pos += 1;
                        return self.close(b'}');
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// The innermost f-string ends: at its closing quote (`closed`), or
    /// unterminated at a line break or the end of the file.
    fn fstring_end(&mut self, closed: bool) -> Step {
        let Some(fstring) = self.fstrings.pop() else {
            return Ok(());
        };
        if closed {
            if fstring.spec_depth > 0 {
                // A field left open (`f"{x:>3"`).
                return Err(self.malformed());
            }
        } else {
            if !self.fstrings.is_empty() {
                return Err(self.malformed());
            }
            // Ruff's lexer forgets whatever the f-string left open.
            if let Some(level) = self.levels.get(fstring.nesting) {
                self.frames.truncate(level.frames_base);
            }
            self.levels.truncate(fstring.nesting);
        }
        self.operand();
        self.next = Before {
            string: true,
            ..Before::default()
        };
        Ok(())
    }
}

/// Finds `async` (built once: building a finder costs more than a line).
static ASYNC: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"async"));

/// How many spaces `bytes` starts with, eight at a time.
fn leading_spaces(bytes: &[u8]) -> usize {
    let mut count = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let others = u64::from_le_bytes(word) ^ u64::from_le_bytes([b' '; 8]);
        if others != 0 {
            return count + (others.trailing_zeros() / 8) as usize;
        }
        count += 8;
    }
    count + bytes[count..].iter().take_while(|&&c| c == b' ').count()
}

const LINE_NAME: u8 = 1;
const LINE_ADDS: u8 = 2;
const LINE_OPEN: u8 = 4;
const LINE_CLOSE: u8 = 8;
const LINE_SPECIAL: u8 = 16;

/// How [`Scanner::bounded_line`] reads each byte: name bytes (a word may be
/// a keyword), characters that may add a level (brackets and operators),
/// and the ones it stops at (quotes, comments, backslashes, line breaks).
static LINE: [u8; 256] = {
    let mut table = [0; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b == b'_' || b.is_ascii_alphanumeric() || b >= 0x80 {
            table[c] = LINE_NAME;
        }
        c += 1;
    }
    let adds = b"([{-+~*@/%|&^<>=!:$?`";
    let mut i = 0;
    while i < adds.len() {
        table[adds[i] as usize] = LINE_ADDS;
        i += 1;
    }
    table[b'(' as usize] |= LINE_OPEN;
    table[b'[' as usize] |= LINE_OPEN;
    table[b'{' as usize] |= LINE_OPEN;
    table[b')' as usize] = LINE_CLOSE;
    table[b']' as usize] = LINE_CLOSE;
    table[b'}' as usize] = LINE_CLOSE;
    let special = b"'\"#\\\n\r";
    let mut i = 0;
    while i < special.len() {
        table[special[i] as usize] = LINE_SPECIAL;
        i += 1;
    }
    table
};

/// Bytes of a name: ASCII letters, digits and `_`, and any byte of a
/// non-ASCII character.
static NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b == b'_' || b.is_ascii_alphanumeric() || b >= 0x80;
        c += 1;
    }
    table
};

/// First letters of the keywords `keyword` knows.
static KEYWORD_START: [bool; 256] = {
    let mut table = [false; 256];
    let letters = b"abcdefgilmnoprtwyFNT";
    let mut i = 0;
    while i < letters.len() {
        table[letters[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_prefix(c: u8) -> bool {
    matches!(
        c,
        b'f' | b'F' | b't' | b'T' | b'u' | b'U' | b'b' | b'B' | b'r' | b'R'
    )
}

/// `(interpolated, raw)` of a one-letter prefix (`second` is 0) or of a
/// two-letter one.
fn prefix_flags(first: u8, second: u8) -> (bool, bool) {
    let interpolated = |c: u8| matches!(c, b'f' | b'F' | b't' | b'T');
    let raw = |c: u8| matches!(c, b'r' | b'R');
    (
        interpolated(first) || interpolated(second),
        raw(first) || raw(second),
    )
}

/// The two-letter prefixes Ruff's lexer accepts: a raw marker with an f, t
/// or b marker, in either order.
fn double_prefix(first: u8, second: u8) -> Option<(bool, bool)> {
    let raw = |c: u8| matches!(c, b'r' | b'R');
    let other = |c: u8| matches!(c, b'f' | b'F' | b't' | b'T' | b'b' | b'B');
    if (raw(first) && other(second)) || (other(first) && raw(second)) {
        Some(prefix_flags(first, second))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u32 = 256;

    fn depth(source: &str) -> u32 {
        match check_exact(source, u32::MAX) {
            Ok(depth) => depth,
            Err(refusal) => panic!("{source:?}: {refusal:?}"),
        }
    }

    fn malformed(source: &str) -> bool {
        matches!(check(source, LIMIT), Err(Refusal::MalformedFString { .. }))
    }

    #[test]
    fn brackets_count_one_level_each() {
        assert_eq!(depth("x = 1\n"), 0);
        for n in [1, 10, 300] {
            assert_eq!(depth(&"(".repeat(n)), n as u32);
            assert_eq!(depth(&"[".repeat(n)), n as u32);
            assert_eq!(depth(&"{".repeat(n)), n as u32);
            let balanced = format!("x = {}1{}\n", "(".repeat(n), ")".repeat(n));
            assert_eq!(depth(&balanced), n as u32);
        }
        // Closed levels are gone; stray closers do not go below zero.
        assert_eq!(depth("f(a)(b)[c]\n)))]]]\n(((\n"), 3);
    }

    #[test]
    fn strings_and_comments_hide_their_brackets() {
        let source = r#"x = '((((' + "[[[[" + '''{{{{
((((''' + b'((' + rb'\'((' # ((((
y = 1
"#;
        assert_eq!(depth(source), 1, "the operands of `+` only");
        assert_eq!(
            depth("x = '((((\ny = 1\n"),
            0,
            "an unterminated string ends at the line"
        );
        assert_eq!(
            depth("x = '\\\n(((('\n"),
            0,
            "an escaped line break continues it"
        );
    }

    #[test]
    fn prefix_operators_nest_until_their_operand_ends() {
        for op in ["-", "+", "~", "not ", "await ", "* ", "lambda: ", "yield "] {
            let source = format!("x = {}1\n", op.repeat(300));
            assert!(depth(&source) >= 300, "{op:?}");
        }
        // Binary operators of one precedence do not nest; `**` (right to
        // left) does, and so does each rise in precedence.
        assert!(depth(&format!("x = 1{}\n", " + 1".repeat(1000))) <= 2);
        assert!(depth(&format!("x = -1{}\n", " * -1".repeat(1000))) <= 3);
        assert!(depth(&format!("x = a{}\n", ".b".repeat(1000))) <= 1);
        assert!(depth(&format!("x = y{}\n", " ** 2 + y".repeat(1000))) <= 3);
        assert!(depth(&format!("x = 2{}\n", " ** 2".repeat(300))) >= 300);
        assert!(depth(&format!("x = a{}\n", " is not b and not c".repeat(300))) <= 4);
        assert!(depth(&format!("x = [{}]\n", "-1, ".repeat(1000))) <= 3);
        assert!(depth(&format!("f({})\n", "lambda x: -x, ".repeat(1000))) <= 4);
    }

    #[test]
    fn conditional_branches_lambdas_and_yields_nest() {
        assert!(depth(&format!("x = {}c\n", "a if b else ".repeat(300))) >= 300);
        assert!(depth(&format!("x = {}c\n", "lambda a=".repeat(300))) >= 300);
        assert!(depth(&format!("x = {}c\n", "yield a, ".repeat(300))) >= 300);
        assert!(depth(&format!("x = {}c\n", "lambda: a if b else ".repeat(300))) >= 600);
        // A conditional per element does not.
        assert!(depth(&format!("x = [{}]\n", "a if b else c, ".repeat(1000))) <= 3);
    }

    #[test]
    fn blocks_and_async_keywords_nest() {
        let mut source = String::new();
        for i in 0..300 {
            source.push_str(&format!("{}if x:\n", " ".repeat(i)));
        }
        source.push_str(&format!("{}pass\n", " ".repeat(300)));
        assert!(depth(&source) >= 300);
        // Dedenting pops them; tabs count as Ruff counts them.
        assert!(depth("if a:\n    if b:\n        pass\n    pass\npass\nif c:\n\tpass\n") <= 3);
        // `async async ... def` recurses for each keyword, and the block
        // below it carries them.
        let source = format!("{}def f():\n    pass\n", "async ".repeat(300));
        assert!(depth(&source) >= 300);
        let mut source = String::new();
        for i in 0..20 {
            source.push_str(&format!(
                "{}{}def f():\n",
                " ".repeat(i),
                "async ".repeat(20)
            ));
        }
        assert!(depth(&source) >= 400, "{}", depth(&source));
    }

    #[test]
    fn continuation_lines_count_as_possible_blocks() {
        // Inside brackets Ruff's lexer ignores indentation, but its error
        // recovery can turn those lines into statements.
        let mut source = String::from("x = (\n");
        for i in 1..300 {
            source.push_str(&format!("{}if x:\n", " ".repeat(i)));
        }
        assert!(depth(&source) >= 300);
        // Ordinary continuation lines add a level or two at most.
        let source = "def f():\n    return g(a,\n             b,\n             c)\ny = 1\n";
        assert!(depth(source) <= 4);
    }

    #[test]
    fn fstrings_count_their_fields() {
        assert_eq!(depth("x = f'(((('\n"), 1, "the text is not code");
        assert_eq!(depth("x = f'{((a))}'\n"), 4);
        assert_eq!(depth("x = f'{a:{b:>{c}}}'\n"), 4);
        assert_eq!(depth("x = f'{{{{(((('\n"), 1, "escaped braces");
        let nested = format!("x = {}x{}\n", "f\"{".repeat(100), "}\"".repeat(100));
        assert_eq!(depth(&nested), 200, "PEP 701 nesting");
        let triple = "x = f'''{\n  a # comment }'''\n  + (b)\n}'''\ny = 1\n";
        assert!(depth(triple) <= 6, "{}", depth(triple));
    }

    #[test]
    fn valid_fstrings_are_accepted() {
        let sources = [
            "f'{x!r}'",
            "f'{x = }'",
            "f'{x=!s:>10}'",
            "f'{x:>{width}.{precision}f}'",
            "f'{a if b else c}'",
            "f'{a, b}'",
            r#"f'{"a" "b"}'"#,
            r#"f"{d['k']}" f'{d["k"]}'"#,
            r#"f"{d["k"]}""#,
            "f'{(lambda x: x)(1)}'",
            "f'{[a for a in b if a]}'",
            "f'{[a async for a in b]}'",
            "f'{ {k: v for k, v in d.items()} }'",
            "f'{x[1:2, ::3]}'",
            "f'{f(a=1, *b, **c)}'",
            "f'{not a} {-a} {a ** -b} {await a} {a is not b} {a not in b}'",
            "f'{(x := 1)}'",
            "f'{x:=5}'",
            "f'{x.if}'",
            r"rf'\{x}' fr'{x}\N{y}' f'\N{DASH}{x}'",
            "t'{x}' rt'{x!a}'",
            "f'''{\n    x  # comment\n}'''",
            "f'{x}' 'y' f'{z}'",
            "f'{café if x else y}'",
            "f'{1 .real}' f'{0x1f} {1e-5} {1_000j}'",
        ];
        for source in sources {
            let source = format!("x = {source}\n");
            assert!(
                check(&source, LIMIT).is_ok(),
                "{source}: {:?}",
                check(&source, LIMIT)
            );
        }
    }

    #[test]
    fn malformed_fstrings_are_refused() {
        let sources = [
            // Unterminated strings inside a field: Ruff may end the f-string there.
            "f'{'\n((((",
            "f'''{'''\n((((",
            "f'{x!r'\n((((",
            "f'{f'{x'\n",
            // Tokens after which Ruff's recovery re-lexes.
            "f'{a b}'",
            "f'{a 1}'",
            "f'{a if b else c d}'",
            "f'{(a, if)}'",
            "f'{def}'",
            "f'{a for a in b}'",
            "f'{lambda x: x}'",
            "f'{a else b}'",
            "f'{a; b}'",
            "f'{(a}'",
            "f'{[a)}'",
            "f'{a)}'",
            "f'{(a:b)}'",
            "f'{(a=b)}'",
            "f'{x[a=b]}'",
            "f'{x!}'",
            "f'{x!r x}'",
            "f'{x= y}'",
            "f'{x:>3'",
            "f'{a $ b}'",
        ];
        for source in sources {
            assert!(malformed(source), "{source}: {:?}", check(source, LIMIT));
        }
        // The same tokens outside f-strings are ordinary syntax errors.
        assert!(check("a b\ndef\n(a:b)\nx!\n$\n", LIMIT).is_ok());
    }

    #[test]
    fn refusal_points_at_the_first_level_too_many() {
        let ok = format!("x = {}1{}\n", "(".repeat(256), ")".repeat(256));
        assert_eq!(check(&ok, LIMIT), Ok(256));
        let deep = format!("y = 1\nx = {}1{}\n", "(".repeat(257), ")".repeat(257));
        assert_eq!(
            check(&deep, LIMIT),
            Err(Refusal::TooDeep {
                offset: 6 + 4 + 256
            })
        );
    }
}
