//! Snapshot tests: the JSON (and one DOT) document for each sample
//! repository under `tests/fixtures/`. Snapshots are reviewed by hand against
//! `shared/spec/registries.md`; `cargo insta review` shows a diff when the
//! output changes.

use std::path::{Path, PathBuf};

use spicehub_parser::{parse_dir, to_dot, to_json, Graph};

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
