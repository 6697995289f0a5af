//! Files whose nesting would make the parser's time and memory unbounded
//! (Ruff's recursive descent grows its stack on the heap, a few KiB per
//! level) are skipped one by one with a diagnostic, and the rest of the
//! repository is still parsed. Each parse runs on threads with 2 MiB
//! stacks, as the hub's rayon workers and tokio blocking threads have, through
//! the entry points the hub uses: `parse_tree` (the `spicehub parse` command,
//! and the sync engine's parse) and `prepare_file` (the sync engine while it
//! unpacks an archive).

use std::collections::HashMap;

use spicehub_parser::{
    parse_tree, parse_tree_prepared, prepare_file, Graph, MemorySource, ParseOptions, Severity,
    MAX_NESTING_DEPTH,
};

const STACK: usize = 2 * 1024 * 1024;

/// A file that registers an entry, parsed beside each hostile one.
const REGISTRY: &str =
    "from spice import Registry\nR = Registry('r')\n\n@R.register\ndef kept():\n    pass\n";

/// Runs `parse` on a thread with a 2 MiB stack, inside a one-worker rayon
/// pool whose worker has 2 MiB too; a stack overflow would abort the test.
fn on_small_stacks(parse: impl FnOnce() -> Graph + Send + 'static) -> Graph {
    let thread = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .stack_size(STACK)
                .build()
                .expect("rayon pool");
            pool.install(parse)
        })
        .expect("spawn");
    thread.join().expect("the parse thread died")
}

fn parse(files: Vec<(&'static str, String)>) -> Graph {
    on_small_stacks(move || {
        let mut source = MemorySource::new().with("regs.py", REGISTRY);
        for (path, content) in files {
            source.insert(path, content);
        }
        parse_tree(&source, &ParseOptions::default())
    })
}

/// The sync engine's way: each file prepared as it is unpacked.
fn prepare_then_parse(files: Vec<(&'static str, String)>) -> Graph {
    on_small_stacks(move || {
        let options = ParseOptions::default();
        let mut source = MemorySource::new().with("regs.py", REGISTRY);
        let mut prepared = HashMap::new();
        for (path, content) in files {
            prepared.insert(
                path.to_owned(),
                prepare_file(path, content.as_bytes(), &options),
            );
            source.insert(path, content);
        }
        parse_tree_prepared(&source, &options, prepared)
    })
}

/// `file` was skipped with one diagnostic saying why, and `regs.py` was
/// still parsed.
fn assert_skipped(graph: &Graph, file: &str, why: &str) {
    let diagnostics: Vec<_> = graph
        .diagnostics
        .iter()
        .filter(|d| d.file == file)
        .collect();
    assert_eq!(diagnostics.len(), 1, "{file}: {diagnostics:#?}");
    let diagnostic = diagnostics[0];
    assert_eq!(diagnostic.severity, Severity::Warning);
    assert!(
        diagnostic.message.contains(why) && diagnostic.message.contains("spicehub skips"),
        "{file}: {}",
        diagnostic.message
    );
    assert!(diagnostic.line >= 1, "{file}: the diagnostic names no line");
    assert_kept(graph);
}

fn assert_kept(graph: &Graph) {
    let kept: Vec<_> = graph
        .entries
        .iter()
        .map(|e| (e.registry.as_str(), e.name.as_str(), e.file.as_str()))
        .collect();
    assert!(kept.contains(&("regs.R", "kept", "regs.py")), "{kept:?}");
}

fn too_deep() -> String {
    format!("nests deeper than {MAX_NESTING_DEPTH} levels")
}

#[test]
fn two_million_open_parentheses_are_skipped() {
    let graph = parse(vec![("parens.py", "(".repeat(2_000_000))]);
    assert_skipped(&graph, "parens.py", &too_deep());
}

#[test]
fn two_million_open_brackets_are_skipped() {
    let graph = parse(vec![("brackets.py", "[".repeat(2_000_000))]);
    assert_skipped(&graph, "brackets.py", &too_deep());
}

#[test]
fn two_million_minus_signs_are_skipped() {
    let graph = parse(vec![(
        "minus.py",
        format!("x = {}1\n", "-".repeat(2_000_000)),
    )]);
    assert_skipped(&graph, "minus.py", &too_deep());
}

#[test]
fn a_hundred_thousand_balanced_parentheses_are_skipped() {
    let depth = 100_000;
    let source = format!("x = {}1{}\n", "(".repeat(depth), ")".repeat(depth));
    let graph = parse(vec![("balanced.py", source)]);
    assert_skipped(&graph, "balanced.py", &too_deep());
}

#[test]
fn every_kind_of_deep_nesting_is_skipped() {
    let n = 1_000;
    let mut blocks = String::new();
    for i in 0..n {
        blocks.push_str(&format!("{}if x:\n", " ".repeat(i)));
    }
    let files = vec![
        (
            "calls.py",
            format!("x = {}0{}\n", "f(".repeat(n), ")".repeat(n)),
        ),
        (
            "subscripts.py",
            format!("x = {}0{}\n", "a[".repeat(n), "]".repeat(n)),
        ),
        (
            "dicts.py",
            format!("x = {}0{}\n", "{0: ".repeat(n), "}".repeat(n)),
        ),
        ("not.py", format!("x = {}y\n", "not ".repeat(n))),
        (
            "await.py",
            format!("async def f():\n    return {}y\n", "await ".repeat(n)),
        ),
        ("lambdas.py", format!("x = {}y\n", "lambda: ".repeat(n))),
        ("defaults.py", format!("x = {}y\n", "lambda a=".repeat(n))),
        (
            "yields.py",
            format!("def f():\n    x = {}y\n", "yield ".repeat(n)),
        ),
        ("power.py", format!("x = 2{}\n", " ** 2".repeat(n))),
        ("power_unary.py", format!("x = 2{}\n", " ** -2".repeat(n))),
        ("ternary.py", format!("x = {}c\n", "a if b else ".repeat(n))),
        ("starred.py", format!("x = [{}y]\n", "* ".repeat(n))),
        (
            "fstrings.py",
            format!("x = {}y{}\n", "f\"{".repeat(n), "}\"".repeat(n)),
        ),
        ("blocks.py", blocks),
        (
            "async.py",
            format!("{}def f():\n    pass\n", "async ".repeat(n)),
        ),
        ("unclosed.py", "x = (\n".repeat(n)),
        ("mixed.py", format!("x = {}0\n", "-(not [{f(".repeat(n / 4))),
    ];
    let paths: Vec<&str> = files.iter().map(|(path, _)| *path).collect();
    let graph = parse(files);
    for path in paths {
        assert_skipped(&graph, path, &too_deep());
    }
}

#[test]
fn nesting_up_to_the_limit_is_parsed() {
    let depth = MAX_NESTING_DEPTH as usize;
    let source = format!(
        "from regs import R\nx = {}1{}\n\n@R.register\ndef after():\n    pass\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let graph = parse(vec![("deep.py", source)]);
    assert!(
        graph.diagnostics.iter().all(|d| d.file != "deep.py"),
        "{:#?}",
        graph.diagnostics
    );
    let names: Vec<_> = graph.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["after", "kept"]);
}

/// Chains of a million terms are as deep as they are long in Ruff's tree,
/// but its parser reads them in a loop, and every walk over the tree is
/// iterative: they are parsed, not skipped.
#[test]
fn million_term_chains_are_parsed() {
    let terms = 1_000_000;
    let register =
        |name: &str| format!("from regs import R\n\n@R.register\ndef {name}():\n    pass\n");
    let files = vec![
        (
            "attrs.py",
            format!("{}x = a{}\n", register("after_attrs"), ".b".repeat(terms)),
        ),
        (
            "sum.py",
            format!("{}x = 1{}\n", register("after_sum"), "+1".repeat(terms)),
        ),
    ];
    let graph = parse(files);
    assert!(graph.diagnostics.is_empty(), "{:#?}", graph.diagnostics);
    let files: Vec<_> = graph
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.file.as_str()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("after_attrs", "attrs.py"),
            ("after_sum", "sum.py"),
            ("kept", "regs.py")
        ]
    );
}

#[test]
fn prepared_files_are_skipped_the_same_way() {
    let files = || {
        vec![
            ("parens.py", "(".repeat(2_000_000)),
            ("minus.py", format!("x = {}1\n", "-".repeat(2_000_000))),
            (
                "fine.py",
                "from regs import R\nR.register(print)\n".to_owned(),
            ),
        ]
    };
    let prepared = prepare_then_parse(files());
    assert_skipped(&prepared, "parens.py", &too_deep());
    assert_skipped(&prepared, "minus.py", &too_deep());
    assert_eq!(prepared, parse(files()));
}

/// An f-string whose replacement field Ruff's parser would re-lex while it
/// recovers, after which its reading of the file and the pre-scan's differ.
#[test]
fn malformed_fstrings_are_skipped() {
    let files = vec![
        // Ruff gives up on the lambda's parameters with the f-string open,
        // and then reads the rest of the line as code.
        (
            "lambda.py",
            format!(
                "x = (lambda f\"{{\"\"\"{}\\\"\"\"\"\"\")\n",
                "(".repeat(100_000)
            ),
        ),
        (
            "field.py",
            format!("x = f\"{{a b \"{}\"}}\"\n", "(".repeat(100_000)),
        ),
        (
            "unterminated.py",
            "x = f'{'\n".to_owned() + &"(".repeat(100_000),
        ),
    ];
    let graph = parse(files);
    for path in ["lambda.py", "field.py", "unterminated.py"] {
        assert_skipped(&graph, path, "malformed or misplaced f-string");
    }
}
