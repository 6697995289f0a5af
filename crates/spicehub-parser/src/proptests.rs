//! Property tests of the per-file phase on hostile input: arbitrary bytes
//! and Python-ish token soups. The number of cases is proptest's default
//! (256), or `PROPTEST_CASES`.

use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::extract::{self, FileFacts, FileLimits};
use crate::model::Severity;
use crate::{nesting, ruff, DEFAULT_MAX_FILE_SIZE, MAX_NESTING_DEPTH};

const LIMITS: FileLimits = FileLimits {
    max_file_size: DEFAULT_MAX_FILE_SIZE,
    max_nesting: MAX_NESTING_DEPTH,
};

fn config() -> Config {
    Config {
        // A failure prints its input; no files are written into the tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces of Python, valid and broken: brackets, operators, keywords,
/// decorators and registrations, strings and f-strings (open, closed,
/// nested), comments, line breaks and indentation.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "-",
    "+",
    "~",
    "* ",
    "**",
    "@",
    "/",
    "%",
    "|",
    "<",
    "==",
    "not ",
    "await ",
    "lambda ",
    "lambda: ",
    "yield ",
    "yield from ",
    " if ",
    " else ",
    " for ",
    " in ",
    " is ",
    " and ",
    " or ",
    "async ",
    "def f(): ",
    "class A: ",
    "with a as b: ",
    "try:",
    "except E as e:",
    "return ",
    "import a",
    "from . import b",
    "match x:",
    "case _:",
    ",",
    ":",
    ";",
    "=",
    ":=",
    "->",
    ".",
    "...",
    "a",
    "b.c",
    "1",
    "0x1f",
    "1e-5",
    "'s'",
    "\"s\"",
    "'''t'''",
    "'",
    "\"",
    "'''",
    "\"\"\"",
    "f'",
    "f\"",
    "f'''",
    "f\"{",
    "f'{",
    "rf'{",
    "t'{",
    "{x!r}",
    "{x=}",
    "{x:>{w}}",
    "!r",
    "!",
    "#c\n",
    "\n",
    "\n    ",
    "\n\t",
    "\\\n",
    "\r\n",
    "@x.register(",
    "@R.register\n",
    "@R.register(name='a', deps=['b'])\ndef f(a, b): pass\n",
    "R = Registry('r')\n",
    "from spice import Registry\n",
    "ñ",
    "$",
    "`",
];

/// Pieces aimed at where a scan of the text and Ruff's parser could read
/// an f-string differently: quotes, braces, conversions, and the places
/// where Ruff's parser recovers from errors (parameters, imports, patterns),
/// next to long runs that would nest deeply.
const FSTRING_FRAGMENTS: &[&str] = &[
    "f'",
    "f\"",
    "f'''",
    "f\"\"\"",
    "rf'",
    "t'",
    "'",
    "\"",
    "'''",
    "\"\"\"",
    "{",
    "}",
    "{{",
    "}}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "=",
    "!",
    "!r",
    "#",
    "\n",
    " ",
    "a",
    "1",
    "1e-5",
    ",",
    "-",
    "lambda ",
    " if ",
    " else ",
    "\\",
    "\\\n",
    "x.",
    "def f(",
    "def f[",
    "class A[",
    "from x import (",
    "import ",
    "case ",
    "match x:\n case ",
    "lambda a, ",
    "lambda *",
    "return ",
    " as ",
    "@",
    "* ",
    "**",
    ";",
    "not ",
    " in ",
    " for ",
    "async ",
    "yield ",
    "await ",
    "x=",
    "\n    ",
    "((((((((((((((((((((((((((((((((",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "----------------",
];

/// A soup: fragments, each repeated once to a few thousand times (so that
/// nesting builds up), with the repeats biased towards small counts.
fn soup(max_parts: usize, max_repeat: usize) -> impl Strategy<Value = String> {
    soup_of(FRAGMENTS, max_parts, max_repeat)
}

fn soup_of(
    fragments: &'static [&'static str],
    max_parts: usize,
    max_repeat: usize,
) -> impl Strategy<Value = String> {
    let repeat = prop_oneof![3 => 1..4usize, 1 => 1..max_repeat];
    prop::collection::vec((prop::sample::select(fragments), repeat), 0..max_parts).prop_map(
        |parts| {
            parts
                .into_iter()
                .map(|(fragment, n)| fragment.repeat(n))
                .collect()
        },
    )
}

/// Bytes biased towards Python's punctuation, with any byte now and then.
fn python_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"()[]{}-+~*@:=,.;!'\"#\\ \t\n\rfrt{}xab01".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..1024)
}

/// The per-file phase returned facts, or a diagnostic saying why not, and
/// Ruff did not panic (the phase turns a panic into an error diagnostic).
fn facts_or_diagnostic(path: &str, facts: &FileFacts) -> Result<(), TestCaseError> {
    prop_assert_eq!(facts.path.as_str(), path);
    for diagnostic in &facts.diagnostics {
        prop_assert_eq!(diagnostic.file.as_str(), path);
        prop_assert!(
            !(diagnostic.severity == Severity::Error
                && diagnostic.message.contains("internal error")),
            "the parse panicked: {:?}",
            diagnostic
        );
    }
    let skipped = facts
        .diagnostics
        .iter()
        .any(|d| d.message.starts_with("skipped"));
    if skipped {
        prop_assert_eq!(facts.diagnostics.len(), 1);
        prop_assert!(facts.defs.is_empty() && facts.bindings.is_empty() && facts.uses.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_give_facts_or_a_diagnostic(bytes in python_bytes()) {
        let facts = extract::extract_bytes("pkg/mod.py", &bytes, LIMITS);
        facts_or_diagnostic("pkg/mod.py", &facts)?;
    }

    #[test]
    fn token_soups_give_facts_or_a_diagnostic(source in soup(40, 600)) {
        let facts = extract::extract_bytes("pkg/mod.py", source.as_bytes(), LIMITS);
        facts_or_diagnostic("pkg/mod.py", &facts)?;
    }

    /// Facts stored and read back are the facts made: read back and
    /// stored again, they give the same bytes, and the graph of a file
    /// parsed from them is the graph of the file parsed from source.
    #[test]
    fn kept_facts_read_back_as_made(source in soup(40, 600)) {
        let options = crate::ParseOptions::default();
        let made = crate::prepare_file("pkg/mod.py", source.as_bytes(), &options);
        let bytes = made.to_bytes();
        let back = crate::PreparedFile::from_bytes(&bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.to_bytes(), bytes);
        let tree = crate::MemorySource::new()
            .with("pkg/__init__.py", "")
            .with("pkg/mod.py", source.as_bytes().to_vec());
        let given = std::collections::HashMap::from([("pkg/mod.py".to_owned(), back)]);
        prop_assert_eq!(
            crate::parse_tree_prepared(&tree, &options, given),
            crate::parse_tree(&tree, &options)
        );
    }

    /// The pre-scan's shortcut over ordinary lines refuses whatever its
    /// exact scan refuses, and bounds the depth that one counts.
    #[test]
    fn the_shortcut_is_at_least_as_strict_as_the_exact_scan(
        source in prop_oneof![soup(40, 600), soup_of(FSTRING_FRAGMENTS, 30, 200)],
        limit in 4..300u32,
    ) {
        match (nesting::check(&source, limit), nesting::check_exact(&source, limit)) {
            (Ok(bound), Ok(depth)) => prop_assert!(bound >= depth, "{} < {}", bound, depth),
            // Its bound may be larger than the depth.
            (Err(nesting::Refusal::TooDeep { .. }), Ok(_)) => {}
            (Err(_), Err(_)) => {}
            (fast, exact) => prop_assert_eq!(fast, exact),
        }
    }

    /// The pre-scan's soundness: whatever it lets through, Ruff's parse
    /// stays within a stack proportional to the depth it counts.
    #[test]
    #[cfg(target_os = "linux")]
    fn accepted_soups_keep_ruffs_stack_bounded(
        source in prop_oneof![soup(24, 3000), soup_of(FSTRING_FRAGMENTS, 30, 200)],
    ) {
        if nesting::check(&source, MAX_NESTING_DEPTH).is_ok() {
            let depth = nesting::check_exact(&source, u32::MAX).unwrap_or(u32::MAX);
            if let Some(used) = stack_used_by(move || {
                ruff::parse_only(&source);
            }) {
                // At most about 6 KiB per level in a debug build.
                let bound = 128 * 1024 + 8 * 1024 * (depth as usize + 1);
                prop_assert!(used <= bound, "{} bytes of stack for depth {}", used, depth);
            }
        }
    }
}

/// Bytes of stack that `run` touches, on a fresh thread whose stack is so
/// large that Ruff never moves to a heap segment; `None` where that cannot
/// be measured (no `/proc`, or huge pages backing the stack).
#[cfg(target_os = "linux")]
fn stack_used_by(run: impl FnOnce() + Send + 'static) -> Option<usize> {
    let thread = std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(move || {
            run();
            let local = std::hint::black_box([0u8; 16]);
            let here = std::hint::black_box(&local) as *const _ as usize;
            let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
            let mut inside = false;
            let mut rss = None;
            for line in smaps.lines() {
                if let Some((range, _)) = line.split_once(' ') {
                    if let Some((from, to)) = range.split_once('-') {
                        if let (Ok(from), Ok(to)) = (
                            usize::from_str_radix(from, 16),
                            usize::from_str_radix(to, 16),
                        ) {
                            inside = from <= here && here < to;
                            continue;
                        }
                    }
                }
                if !inside {
                    continue;
                }
                let kib = |field: &str| {
                    line.strip_prefix(field)
                        .and_then(|v| v.split_whitespace().next())
                        .and_then(|v| v.parse::<usize>().ok())
                };
                if let Some(kib) = kib("Rss:") {
                    rss = Some(kib * 1024);
                }
                if kib("AnonHugePages:").is_some_and(|huge| huge > 0) {
                    return None;
                }
            }
            rss
        })
        .ok()?;
    thread.join().ok().flatten()
}
