// Every Microsoft example response for the endpoints we use must deserialize with
// our models. The test walks the example folders and dispatches by folder and file
// name, so a new example file is picked up without code changes.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;
use spicehub_azure::models::{
    GitBlobRef, GitCommit, GitCommitChanges, GitCommitDiffs, GitCommitRef, GitItem, GitPush,
    GitRef, GitRefUpdate, GitRepository, GitTreeRef, ListResponse, PushEvent, Subscription,
    TeamProjectReference,
};

use ado_emulator::testkit::vectors_dir;

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    // Microsoft's files may start with a UTF-8 BOM.
    let bytes = bytes
        .strip_prefix(&[0xEF, 0xBB, 0xBF][..])
        .unwrap_or(&bytes);
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn parse<T: DeserializeOwned>(body: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value::<T>(body.clone()).map_err(|e| format!("{what}: {e}"))
}

/// A list wrapper: also checks `count` against the number of items when both are there.
fn parse_list<T: DeserializeOwned>(body: &Value, what: &str) -> Result<usize, String> {
    let l: ListResponse<T> = parse(body, what)?;
    if let Some(c) = l.count.filter(|c| *c as usize != l.value.len()) {
        return Err(format!("{what}: count {c} but {} items", l.value.len()));
    }
    Ok(l.value.len())
}

fn one_or_list<T: DeserializeOwned>(body: &Value, what: &str) -> Result<usize, String> {
    if body.get("value").is_some_and(Value::is_array) {
        parse_list::<T>(body, what)
    } else {
        parse::<T>(body, what).map(|_| 1)
    }
}

/// Folders (lower-case; the spec's `$ref`s use other casing) whose endpoints we call.
const USED: &[&str] = &[
    "projects",
    "repositories",
    "refs",
    "items",
    "trees",
    "blobs",
    "commits",
    "changes",
    "commitdiffs",
    "pushes",
    "subscriptions",
];

/// Dispatch one response body. `Ok(None)`: deliberately not checked (endpoint unused).
fn check(folder: &str, file: &str, body: &Value) -> Result<Option<usize>, String> {
    let method = file.split("__").next().unwrap_or("").to_ascii_uppercase();
    let what = format!("{folder}/{file}");
    let n = match folder {
        // POST /projects answers an operation reference; we never create projects.
        "projects" if method == "POST" => return Ok(None),
        "projects" => parse_list::<TeamProjectReference>(body, &what)?,
        // `GET repositories/remoteurl` wraps the repository with the server URL.
        "repositories" if body.get("repository").is_some() && body.get("id").is_none() => {
            parse::<GitRepository>(&body["repository"], &what).map(|_| 1)?
        }
        "repositories" => one_or_list::<GitRepository>(body, &what)?,
        "refs" if method == "POST" => parse_list::<GitRefUpdate>(body, &what)?,
        "refs" => one_or_list::<GitRef>(body, &what)?,
        "items" => one_or_list::<GitItem>(body, &what)?,
        "trees" => parse::<GitTreeRef>(body, &what).map(|t| t.tree_entries.len())?,
        "blobs" => parse::<GitBlobRef>(body, &what).map(|_| 1)?,
        "commits" if body.get("value").is_some() => parse_list::<GitCommitRef>(body, &what)?,
        "commits" => parse::<GitCommit>(body, &what).map(|c| c.changes.map_or(1, |c| c.len()))?,
        "changes" => parse::<GitCommitChanges>(body, &what).map(|c| c.changes.len())?,
        "commitdiffs" => {
            let d: GitCommitDiffs = parse(body, &what)?;
            // Every change must carry a parsed change type (no silent "none").
            if let Some(bad) = d
                .changes
                .iter()
                .find(|c| c.change_type.flags.is_empty() && c.change_type.unknown.is_empty())
            {
                return Err(format!(
                    "{what}: change without a changeType: {:?}",
                    bad.path()
                ));
            }
            if let Some(bad) = d.changes.iter().find(|c| c.path().is_none()) {
                return Err(format!("{what}: change without a path: {bad:?}"));
            }
            d.changes.len()
        }
        "pushes" => one_or_list::<GitPush>(body, &what)?,
        "subscriptions" => one_or_list::<Subscription>(body, &what)?,
        _ => return Ok(None),
    };
    Ok(Some(n))
}

#[test]
fn every_example_response_deserializes() {
    let root = vectors_dir();
    let spec = root.join("vsts-rest-api-specs/specification");
    let mut checked = 0usize;
    let mut skipped: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut per_folder: std::collections::BTreeMap<String, usize> = Default::default();
    for area in ["core", "git", "hooks"] {
        let examples = spec.join(area).join("7.1/httpExamples");
        let Ok(folders) = std::fs::read_dir(&examples) else {
            failures.push(format!("missing {}", examples.display()));
            continue;
        };
        for folder in folders.flatten() {
            let folder_name = folder.file_name().to_string_lossy().to_ascii_lowercase();
            let Ok(files) = std::fs::read_dir(folder.path()) else {
                continue;
            };
            for f in files.flatten() {
                let file = f.file_name().to_string_lossy().into_owned();
                if !file.ends_with(".json") {
                    continue;
                }
                let doc = read_json(&f.path());
                let Some(responses) = doc.get("responses").and_then(Value::as_object) else {
                    failures.push(format!("{folder_name}/{file}: no responses"));
                    continue;
                };
                for (status, resp) in responses {
                    let Some(body) = resp.get("body") else {
                        continue;
                    };
                    if !status.starts_with('2') || body.is_null() {
                        continue;
                    }
                    match check(&folder_name, &file, body) {
                        Ok(Some(_)) => {
                            checked += 1;
                            *per_folder.entry(folder_name.clone()).or_default() += 1;
                        }
                        Ok(None) => skipped.push(format!("{folder_name}/{file}")),
                        Err(e) => failures.push(e),
                    }
                }
            }
        }
    }
    println!("checked {checked} example responses; per folder: {per_folder:?}");
    println!("not checked (endpoints we do not call): {}", skipped.len());
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for used in USED {
        assert!(
            per_folder.get(*used).copied().unwrap_or(0) > 0,
            "no example checked for used folder {used}"
        );
    }
}

#[test]
fn git_push_samples_deserialize_into_push_event() {
    let root = vectors_dir();
    let dir = root.join("azure-devops-docs/docs/service-hooks");
    let mut seen = 0;
    for f in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let name = f.file_name().to_string_lossy().into_owned();
        if !(name.contains("git.push") && name.ends_with(".json")) {
            continue;
        }
        let v = read_json(&f.path());
        let ev: PushEvent = serde_json::from_value(v).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ev.event_type, "git.push", "{name}");
        assert!(!ev.id.is_empty(), "{name}");
        let repo = ev
            .resource
            .repository
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no repository"));
        assert!(!repo.id.is_empty(), "{name}");
        let update = ev
            .default_branch_update()
            .unwrap_or_else(|| panic!("{name}: no default-branch ref update"));
        assert_eq!(Some(update.name.as_str()), repo.default_branch.as_deref());
        assert!(
            update
                .new_object_id
                .as_deref()
                .is_some_and(|s| !s.is_empty()),
            "{name}"
        );
        assert!(ev.organization_id().is_some(), "{name}");
        assert!(!ev.resource.commits.is_empty(), "{name}");
        seen += 1;
    }
    assert!(seen >= 1, "no git.push sample found in {}", dir.display());
}

#[test]
fn minimal_push_event_is_accepted() {
    // resourceDetailsToSend = minimal: the resource has only id, url and name.
    let v = serde_json::json!({
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "notificationId": 3,
        "id": "03c164c2-8912-4d5e-8009-3707d5f83734",
        "eventType": "git.push",
        "publisherId": "tfs",
        "resource": {"id": 12, "url": "https://dev.azure.com/o/_apis/git/repositories/r/pushes/12", "name": "push"},
        "resourceVersion": "1.0",
        "resourceContainers": {"collection": {"id": "c"}, "account": {"id": "a"}},
        "createdDate": "2024-09-19T13:03:27.0379153Z"
    });
    let ev: PushEvent = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev.notification_id, Some(3));
    assert!(ev.default_branch_update().is_none());
    assert_eq!(ev.organization_id(), Some("a"));
}
