//! Kept facts give the graph a full parse gives, through a series of pushes
//! on the sample repositories and on a generated repository of 10,000
//! files: edits, adds, deletes, renames, contents swapped between paths and
//! configuration changes. After each push only the Python files whose
//! content at their path changed are extracted; the other facts come from
//! the previous parse, encoded and read back as the sync engine keeps them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use spicehub_parser::{
    parse_tree, parse_tree_keeping, MemorySource, ParseOptions, PreparedFile, SourceTree,
};

type Tree = BTreeMap<String, Vec<u8>>;

fn source(tree: &Tree) -> MemorySource {
    tree.iter().map(|(p, c)| (p.clone(), c.clone())).collect()
}

fn load(dir: &Path) -> Tree {
    let source = spicehub_parser::DirSource::new(dir).expect("fixture");
    source
        .paths()
        .into_iter()
        .map(|(path, _)| {
            let content = source.read(&path).expect("read").into_owned();
            (path, content)
        })
        .collect()
}

/// Parses `tree` reusing the facts in `kept` (by path, for unchanged
/// content) and checks the result against a full parse. Gives the facts
/// to keep and how many files were extracted.
fn step(
    label: &str,
    before: &Tree,
    kept: &[(PreparedFile, bool)],
    after: &Tree,
) -> (Vec<(PreparedFile, bool)>, usize) {
    let options = ParseOptions::default();
    let given: HashMap<String, PreparedFile> = kept
        .iter()
        .filter(|(facts, _)| {
            let path = facts.path();
            before.get(path).is_some() && before.get(path) == after.get(path)
        })
        .map(|(facts, _)| {
            let back = PreparedFile::from_bytes(&facts.to_bytes()).expect("facts read back");
            (facts.path().to_owned(), back)
        })
        .collect();
    let parsed = parse_tree_keeping(&source(after), &options, given);
    let full = parse_tree(&source(after), &options);
    assert_eq!(parsed.graph, full, "{label}: kept facts changed the graph");
    let extracted = parsed.facts.iter().filter(|(_, made)| *made).count();
    (parsed.facts, extracted)
}

fn python_paths(tree: &Tree) -> Vec<String> {
    tree.keys()
        .filter(|p| p.ends_with(".py"))
        .cloned()
        .collect()
}

/// A push: the next tree, and the number of Python files whose content at
/// their path changes (what must be extracted again).
type Push = fn(&Tree) -> (Tree, usize);

fn edit(tree: &Tree) -> (Tree, usize) {
    let py = python_paths(tree);
    let mut next = tree.clone();
    next.get_mut(&py[0])
        .expect("file")
        .extend_from_slice(b"\n# edited\n");
    (next, 1)
}

fn rename(tree: &Tree) -> (Tree, usize) {
    let py = python_paths(tree);
    let mut next = tree.clone();
    let content = next.remove(&py[1]).expect("file");
    next.insert(
        format!("{}_renamed.py", py[1].trim_end_matches(".py")),
        content,
    );
    (next, 1)
}

fn delete(tree: &Tree) -> (Tree, usize) {
    let py = python_paths(tree);
    let mut next = tree.clone();
    next.remove(&py[2]);
    (next, 0)
}

fn swap(tree: &Tree) -> (Tree, usize) {
    let py = python_paths(tree);
    let mut next = tree.clone();
    let (a, b) = (py[0].clone(), py[py.len() - 1].clone());
    let (ca, cb) = (next[&a].clone(), next[&b].clone());
    let changed = usize::from(ca != cb) * 2;
    next.insert(a, cb);
    next.insert(b, ca);
    (next, changed)
}

fn exclude(tree: &Tree) -> (Tree, usize) {
    let py = python_paths(tree);
    let mut next = tree.clone();
    let excluded = py[py.len() / 2].clone();
    next.insert(
        "spice.toml".to_owned(),
        format!("exclude = [\"{excluded}\"]\n").into_bytes(),
    );
    (next, 0)
}

const PUSHES: [(&str, Push); 6] = [
    ("edit", edit),
    ("rename", rename),
    ("delete", delete),
    ("swap two files' contents", swap),
    ("exclude a file in spice.toml", exclude),
    ("edit again", edit),
];

fn run_series(label: &str, start: Tree) {
    assert!(
        python_paths(&start).len() >= 4,
        "{label}: a few Python files"
    );
    let options = ParseOptions::default();
    let first = parse_tree_keeping(&source(&start), &options, HashMap::new());
    // The pushes follow one another: each starts from the previous tree and
    // the facts its parse kept.
    let mut tree = start;
    let mut kept = first.facts;
    for (what, push) in PUSHES {
        let (next, expected) = push(&tree);
        let (facts, extracted) = step(&format!("{label}: {what}"), &tree, &kept, &next);
        assert_eq!(extracted, expected, "{label}: {what}: files extracted");
        tree = next;
        kept = facts;
    }
}

fn fixture(name: &str) -> Tree {
    load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("fixtures")
            .join(name),
    )
}

#[test]
fn sample_repositories_through_a_series_of_pushes() {
    for name in ["data_pipeline", "fixture_project", "model_zoo"] {
        run_series(name, fixture(name));
    }
}

/// 10,000 files as a real repository has them: a few registries, entries
/// spread over packages (some through aliases and star imports, some
/// depending on entries of other files), and most modules registering
/// nothing.
fn generated(files: usize) -> Tree {
    let mut tree = Tree::new();
    tree.insert("app/__init__.py".into(), Vec::new());
    tree.insert(
        "app/registries.py".into(),
        b"from spice import Registry\n\nMODELS = Registry('models')\nSTEPS = Registry('steps')\nBACKBONES = MODELS\n"
            .to_vec(),
    );
    tree.insert(
        "app/all_registries.py".into(),
        b"from app.registries import *\n".to_vec(),
    );
    for i in 0..files.saturating_sub(3) {
        let package = i % 50;
        let path = format!("app/p{package:02}/m{i:05}.py");
        let content = match i % 100 {
            0 => format!(
                "from app.registries import BACKBONES\n\n@BACKBONES.register_module()\nclass Net{i}:\n    \"\"\"Net {i}.\"\"\"\n"
            ),
            1 => format!(
                "from app.all_registries import STEPS\n\n@STEPS.register('step_{i}', depends_on=['step_{}'])\ndef step_{i}(data):\n    return data\n",
                i.saturating_sub(100)
            ),
            2 => format!(
                "from app import registries as r\nfrom app.p{package:02}.m{:05} import helper_{}\n\nr.STEPS.register('call_{i}', func=helper_{})\n",
                i - 2 + 3,
                i - 2 + 3,
                i - 2 + 3
            ),
            _ => format!(
                "import os\n\n\ndef helper_{i}(x):\n    return os.path.join(str(x), '{i}')\n\n\nclass Thing{i}:\n    pass\n"
            ),
        };
        tree.insert(path, content.into_bytes());
    }
    tree
}

#[test]
fn a_generated_10000_file_repository_through_a_series_of_pushes() {
    let tree = generated(10_000);
    assert_eq!(tree.len(), 10_000);
    // The shapes the series must keep: entries of every form, and edges.
    let graph = parse_tree(&source(&tree), &ParseOptions::default());
    let count = |registry: &str| {
        graph
            .entries
            .iter()
            .filter(|e| e.registry == registry)
            .count()
    };
    assert_eq!(count("app.registries.MODELS"), 100);
    assert_eq!(count("app.registries.STEPS"), 200);
    assert!(graph.edges.len() >= 99, "{} edges", graph.edges.len());
    run_series("generated", tree);
}
