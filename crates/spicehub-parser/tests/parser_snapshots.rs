//! Snapshot tests: the JSON (and one DOT) document for each sample
//! repository under `tests/fixtures/`, and `spicehub diff`'s documents from
//! `diff_old` to `diff_new`. Snapshots are reviewed by hand against
//! `shared/spec/registries.md`; `cargo insta review` shows a diff when the
//! output changes.

use std::path::{Path, PathBuf};

use spicehub_parser::{diff, diff_json, parse_dir, to_dot, to_json, Graph};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

fn parse_fixture(name: &str) -> Graph {
    match parse_dir(&fixture(name)) {
        Ok(graph) => graph,
        Err(err) => panic!("fixture {name}: {err}"),
    }
}

#[test]
fn data_pipeline_json() {
    let graph = parse_fixture("data_pipeline");
    insta::assert_snapshot!("data_pipeline_json", to_json(&graph));
}

#[test]
fn model_zoo_json() {
    let graph = parse_fixture("model_zoo");
    insta::assert_snapshot!("model_zoo_json", to_json(&graph));
}

#[test]
fn model_zoo_dot() {
    let graph = parse_fixture("model_zoo");
    insta::assert_snapshot!("model_zoo_dot", to_dot(&graph));
}

#[test]
fn fixture_project_json() {
    let graph = parse_fixture("fixture_project");
    insta::assert_snapshot!("fixture_project_json", to_json(&graph));
}

/// `diff_new` adds an entry (`fetch_rates`, in a new file), removes one
/// (`old_report`), changes one's docstring (`load`) and adds a dependency
/// (`clean` on `fetch_rates`); the `sources` registry is the same on both
/// sides and so absent.
#[test]
fn diff_old_to_new_json() {
    let changes = diff::diff(&parse_fixture("diff_old"), &parse_fixture("diff_new"));
    let registries: Vec<&str> = changes
        .registries
        .iter()
        .map(|r| r.registry.as_str())
        .collect();
    assert_eq!(registries, ["shop.registry.pipelines"]);
    insta::assert_snapshot!(
        "diff_old_to_new_json",
        diff_json(
            "tests/fixtures/diff_old",
            "tests/fixtures/diff_new",
            &changes
        )
    );
}

#[test]
fn diff_old_to_new_text() {
    let changes = diff::diff(&parse_fixture("diff_old"), &parse_fixture("diff_new"));
    insta::assert_snapshot!("diff_old_to_new_text", changes.to_text());
}
