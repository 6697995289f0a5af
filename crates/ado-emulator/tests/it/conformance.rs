// Conformance with Microsoft's own request/response examples (`shared/vectors/vsts-rest-api-specs`): for every
// example of an endpoint the emulator implements, the emulator's live answer to an equivalent request must have
// every top-level key of Microsoft's example body, and every key of its first `value[]` element.
// Extra keys are allowed (the examples are mostly api-version 1.0, smaller than live 7.1 answers).
// Without the vectors folder the test fails (`ado_emulator::testkit::vectors_dir`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use ado_emulator::{testkit, FileChange, SeedCommit, Signature};
use serde_json::{json, Value};

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn commit(msg: &str, hours: i64, branch: Option<&str>, changes: Vec<FileChange>) -> SeedCommit {
    SeedCommit {
        branch: branch.map(str::to_string),
        from_branch: branch.map(|_| "main".to_string()),
        message: msg.into(),
        author: Some(Signature {
            name: "Norman Paulk".into(),
            email: "norman.paulk@contoso.test".into(),
        }),
        date: Some(time::macros::datetime!(2024-01-10 09:00 UTC) + time::Duration::hours(hours)),
        changes,
        tags: Vec::new(),
    }
}

/// How to ask the emulator the equivalent of one example.
struct Call {
    method: &'static str,
    /// Relative to the organization URL, without `api-version`.
    path: String,
    body: Option<Value>,
    status: u16,
}

fn get(path: impl Into<String>) -> Call {
    Call {
        method: "GET",
        path: path.into(),
        body: None,
        status: 200,
    }
}

/// Example folders of operations the emulator implements, and the verbs it implements there.
const IMPLEMENTED: &[(&str, &[&str])] = &[
    ("git/7.1/httpExamples/commits", &["GET"]),
    ("git/7.1/httpExamples/commitsBatch", &["POST"]),
    ("git/7.1/httpExamples/changes", &["GET"]),
    ("git/7.1/httpExamples/commitDiffs", &["GET"]),
    ("git/7.1/httpExamples/pushes", &["GET"]),
    ("git/7.1/httpExamples/refs", &["GET"]),
    ("git/7.1/httpExamples/items", &["GET"]),
    ("git/7.1/httpExamples/blobs", &["GET"]),
    ("git/7.1/httpExamples/trees", &["GET"]),
    ("git/7.1/httpExamples/repositories", &["GET"]),
    ("core/7.1/httpExamples/projects", &["GET"]),
    (
        "hooks/7.1/httpExamples/subscriptions",
        &["GET", "POST", "PUT", "DELETE"],
    ),
];

/// Examples in implemented folders that are knowingly not compared (documented).
const NOT_COMPARED: &[&str] = &[
    // `{org}/_git/{repo}/vsts/info` is the Git smart-HTTP info endpoint, not a REST route the emulator serves.
    "GET__git_repositories__remoteurl.json",
];

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn live_answers_have_the_keys_of_microsofts_examples() {
    let root = ado_emulator::testkit::vectors_dir();
    let spec = root.join("vsts-rest-api-specs").join("specification");

    // A repository shaped for the examples: folders, a tag, a develop branch, multi-line messages.
    let w = world_with(|mut c| {
        for p in &mut c.organizations[0].projects {
            p.description = Some(format!("{} projects", p.name));
        }
        c.with_project(ORG, "MyProject").with_seeded_repo(
            ORG,
            "MyProject",
            "conf",
            vec![
                commit(
                    "First cut\n\nImported from the old server.",
                    0,
                    None,
                    vec![
                        FileChange::put("README.md", "# conf\n"),
                        FileChange::put("debug.log", "log\n"),
                        FileChange::put("MyWebSite/Views/Home/_Home.cshtml", "<h1>Home</h1>\n"),
                        FileChange::put("MyWebSite/Views/Home/Index.cshtml", "<h1>Index</h1>\n"),
                        FileChange::put("MyWebSite/Views/Shared/_Layout.cshtml", "<html></html>\n"),
                    ],
                ),
                commit(
                    "Merged PR 2: Deleted debug.log\n\nRelated work items: #2",
                    1,
                    None,
                    vec![
                        FileChange::delete("debug.log"),
                        FileChange::put("MyWebSite/Views/Home/_Home.cshtml", "<h1>Home 2</h1>\n"),
                    ],
                ),
                commit(
                    "Develop: new module\n\nWith a longer description.",
                    2,
                    Some("develop"),
                    vec![
                        FileChange::put("README.md", "# conf (develop)\n"),
                        FileChange::put(
                            "CustomerAddressModule/CustomerAddressModule/Form1.cs",
                            "class Form1 {}\n",
                        ),
                        FileChange::put("CustomerAddressModule/App.config", "<config/>\n"),
                    ],
                ),
                commit(
                    "Update the readme on main\n\nSecond line.",
                    3,
                    None,
                    vec![
                        FileChange::put("README.md", "# conf v3\n"),
                        FileChange::put("debug.log", "log again\n"),
                    ],
                ),
            ],
        )
    })
    .await;
    let token = w.token().await;
    let repo = "MyProject/_apis/git/repositories/conf";
    let pushes = w.emu.pushes(ORG, "MyProject", "conf");
    let c1 = pushes[0].commits[0].clone();
    let c2 = pushes[1].commits[0].clone();
    let dev = pushes[2].commits[0].clone();
    let c3 = pushes[3].commits[0].clone();
    w.emu
        .set_branch(ORG, "MyProject", "conf", "feature/replacer", Some(&c2))
        .unwrap();
    let repo_id = w.emu.repository_id(ORG, "MyProject", "conf").unwrap();
    let item = w
        .get_json(
            &token,
            &format!("{repo}/items?path=/MyWebSite/Views/Home/_Home.cshtml&$format=json"),
        )
        .await;
    let blob = item["objectId"].as_str().unwrap().to_string();
    let views = w
        .get_json(
            &token,
            &format!("{repo}/items?path=/MyWebSite/Views&$format=json"),
        )
        .await;
    let tree = views["objectId"].as_str().unwrap().to_string();
    let pusher = pushes[0].pushed_by.id.clone();
    let _ = testkit::REGISTERED_CERT_PEM;

    let mut calls: BTreeMap<&str, Call> = BTreeMap::new();
    // Projects and repositories.
    calls.insert("GET__projects.json", get("_apis/projects"));
    calls.insert("GET__git_repositories.json", get("_apis/git/repositories"));
    calls.insert(
        "GET__git_repositories__repositoryId_.json",
        get(format!("_apis/git/repositories/{repo_id}")),
    );
    // Refs.
    calls.insert(
        "GET__git_repositories__repositoryId__refs.json",
        get(format!("{repo}/refs")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__refs_heads.json",
        get(format!("{repo}/refs?filter=heads/")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__refs_heads_contains_replacer.json",
        get(format!("{repo}/refs?filter=heads/&filterContains=replacer")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__refs_heads_statuses.json",
        get(format!("{repo}/refs?filter=heads/&includeStatuses=True")),
    );
    calls.insert("GET__git_repositories__repositoryId__refs_tags.json", {
        let head = c1.clone();
        w.emu
            .set_branch(ORG, "MyProject", "conf", "tmp-for-tag", Some(&head))
            .unwrap();
        // Lightweight tag through a seed-free path: point refs/tags/v0.1 at c1 with git directly.
        let dir = w.emu.repository_path(ORG, "MyProject", "conf").unwrap();
        let ok = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&dir)
            .args(["update-ref", "refs/tags/v0.1", &head])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        get(format!("{repo}/refs?filter=tags/"))
    });
    // Items.
    calls.insert(
        "GET__git_repositories__repositoryId__items_scopePath-_filePath_.json",
        get(format!(
            "{repo}/items?scopePath=/MyWebSite/Views/Home/_Home.cshtml"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__items_scopePath-_filePath__download-true.json",
        get(format!(
            "{repo}/items?scopePath=/MyWebSite/Views/Home/_Home.cshtml&download=true&$format=json"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__items_scopePath-_folderPath_.json",
        get(format!("{repo}/items?scopePath=/MyWebSite/Views")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__items_scopePath-_folderPath__recursionLevel-Full_includeContentMetadata-true.json",
        get(format!("{repo}/items?scopePath=/MyWebSite/Views&recursionLevel=Full&includeContentMetadata=true")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__items_scopePath-_folderPath__recursionLevel-OneLevel.json",
        get(format!("{repo}/items?scopePath=/MyWebSite/Views&recursionLevel=OneLevel")),
    );
    // Blobs and trees.
    calls.insert(
        "GET__git_repositories__repositoryId__blobs__objectId_.json",
        get(format!("{repo}/blobs/{blob}")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__trees__objectId_.json",
        get(format!("{repo}/trees/{tree}")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__trees__objectId__recursive-true.json",
        get(format!("{repo}/trees/{tree}?recursive=true")),
    );
    // Commits.
    calls.insert(
        "GET__git_repositories__repositoryId__commits.json",
        get(format!("{repo}/commits")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits__commitId_.json",
        get(format!("{repo}/commits/{c1}")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits__commitId__changeCount-10.json",
        get(format!("{repo}/commits/{c1}?changeCount=10")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits__skip-_skip___top-_top_.json",
        get(format!("{repo}/commits?$skip=1&$top=2")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits_author-_author_.json",
        get(format!("{repo}/commits?searchCriteria.author=Norman Paulk")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits_branch.json",
        get(format!(
            "{repo}/commits?searchCriteria.itemVersion.version=main"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits_branch_itemPath-_itemPath_.json",
        get(format!("{repo}/commits?searchCriteria.itemVersion.version=main&searchCriteria.itemPath=%2Fdebug.log")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits_commit.json",
        get(format!(
            "{repo}/commits?searchCriteria.compareVersion.versionType=commit&searchCriteria.compareVersion.version={c1}"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits_commit_itemPath-_itemPath_.json",
        get(format!(
            "{repo}/commits?searchCriteria.itemVersion.versionType=commit&searchCriteria.itemVersion.version={dev}&searchCriteria.compareVersion.version=main&searchCriteria.itemPath=/README.md"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits_committer-_committer_.json",
        get(format!(
            "{repo}/commits?searchCriteria.user=norman.paulk%40contoso.test"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits_fromDate-_fromDate__toDate-_toDate_.json",
        get(format!(
            "{repo}/commits?searchCriteria.fromDate=1%2F9%2F2024 12:00:00 AM&searchCriteria.toDate=1%2F11%2F2024 12:00:00 AM"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__pushes__pushId__commits.json",
        get(format!("{repo}/pushes/1/commits")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__commits__commitId__changes_top-_top__skip-_skip_.json",
        get(format!("{repo}/commits/{c1}/changes?top=2&skip=1")),
    );
    calls.insert(
        "POST__git_repositories__repositoryId__commitsBatch2.json",
        Call {
            method: "POST",
            path: format!("{repo}/commitsbatch"),
            body: Some(json!({"itemVersion": {"versionType": "branch", "version": "develop"}, "compareVersion": {"versionType": "branch", "version": "main"}})),
            status: 200,
        },
    );
    calls.insert(
        "POST__git_repositories__repositoryId__commitsBatch__ids.json",
        Call {
            method: "POST",
            path: format!("{repo}/commitsbatch"),
            body: Some(json!({"ids": [c1, c2]})),
            status: 200,
        },
    );
    // Diffs.
    calls.insert(
        "GET__git_repositories__repositoryId__diffs_commits_baseVersionType-_baseVersionType_.json",
        get(format!(
            "{repo}/diffs/commits?baseVersionType=commit&baseVersion={c1}&targetVersionType=commit&targetVersion={c3}"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__diffs_commits_targetVersion-_targetVersion__baseVersion-_baseVersion_.json",
        get(format!("{repo}/diffs/commits?targetVersion=main&baseVersion=develop")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__diffs_commits_targetVersion-_targetVersion__baseVersion-_baseVersion___top-_top___skip-_skip_.json",
        get(format!("{repo}/diffs/commits?targetVersion=main&baseVersion=develop&$top=2&$skip=2")),
    );
    // Pushes.
    calls.insert(
        "GET__git_repositories__repositoryId__pushes.json",
        get(format!("{repo}/pushes")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__pushes__pushId_.json",
        get(format!("{repo}/pushes/2")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__pushes__skip-_skip___top-_top_.json",
        get(format!("{repo}/pushes?$skip=2&$top=2")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__pushes_fromDate-_fromDate__toDate-_toDate_.json",
        get(format!(
            "{repo}/pushes?fromDate=2024-01-01&toDate=2024-12-31T14:00"
        )),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__pushes_pusherId-_pusherId_.json",
        get(format!("{repo}/pushes?pusherId={pusher}")),
    );
    calls.insert(
        "GET__git_repositories__repositoryId__pushes_refName-_refName__includeRefUpdates-true.json",
        get(format!(
            "{repo}/pushes?refName=refs/heads/develop&includeRefUpdates=true"
        )),
    );

    let mut checked = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut unmapped: Vec<String> = Vec::new();

    // Service hooks: create first, then the other examples on the created subscription.
    let hooks_dir = spec.join("hooks/7.1/httpExamples/subscriptions");
    let project_id = w.emu.project_id(ORG, "MyProject").unwrap();
    // Microsoft's bodies name Fabrikam's project: point them at ours (an unknown project is a 400).
    let with_our_project = |mut body: Value| {
        if let Some(inputs) = body
            .get_mut("publisherInputs")
            .and_then(Value::as_object_mut)
        {
            inputs.insert("projectId".into(), json!(project_id));
        }
        body
    };
    let post_example = read_json(&hooks_dir.join("POST__hooks_subscriptions.json"));
    let post_body = with_our_project(post_example["parameters"]["body"].clone());
    let created = w
        .http
        .post(format!(
            "{}/_apis/hooks/subscriptions?api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .bearer_auth(&token)
        .json(&post_body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    let sub_id = created["id"].as_str().unwrap().to_string();
    let put_example =
        read_json(&hooks_dir.join("PUT__hooks_subscriptions__newSubscriptionId_.json"));
    calls.insert(
        "GET__hooks_subscriptions_.json",
        get("_apis/hooks/subscriptions/"),
    );
    calls.insert(
        "GET__hooks_subscriptions__subscriptionId_.json",
        get(format!("_apis/hooks/subscriptions/{sub_id}")),
    );
    calls.insert(
        "POST__hooks_subscriptions.json",
        Call {
            method: "POST",
            path: "_apis/hooks/subscriptions".into(),
            body: Some(post_body.clone()),
            status: 200,
        },
    );
    calls.insert(
        "PUT__hooks_subscriptions__newSubscriptionId_.json",
        Call {
            method: "PUT",
            path: format!("_apis/hooks/subscriptions/{sub_id}"),
            body: Some(with_our_project(put_example["parameters"]["body"].clone())),
            status: 200,
        },
    );
    calls.insert(
        "DELETE__hooks_subscriptions__newSubscriptionId_.json",
        Call {
            method: "DELETE",
            path: format!("_apis/hooks/subscriptions/{sub_id}"),
            body: None,
            status: 204,
        },
    );

    let mut files: Vec<(PathBuf, Vec<&str>)> = Vec::new();
    for (folder, verbs) in IMPLEMENTED {
        let dir = spec.join(folder);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        // DELETE last (it removes the subscription the other hook examples use).
        entries.sort_by_key(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("DELETE")
        });
        for e in entries {
            files.push((e, verbs.to_vec()));
        }
    }
    for (path, verbs) in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let verb = name
            .split("__")
            .next()
            .unwrap_or("")
            .split('_')
            .next()
            .unwrap_or("")
            .to_string();
        if !verbs.contains(&verb.as_str()) || NOT_COMPARED.contains(&name.as_str()) {
            continue;
        }
        let Some(call) = calls.remove(name.as_str()) else {
            unmapped.push(name);
            continue;
        };
        let example = read_json(&path);
        let (status_key, response) = example["responses"]
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .expect("example has a response");
        let sep = if call.path.contains('?') { '&' } else { '?' };
        let url = format!("{}/{}{sep}api-version=7.1", w.emu.org_url(ORG), call.path);
        let mut req = match call.method {
            "GET" => w.http.get(&url),
            "POST" => w.http.post(&url),
            "PUT" => w.http.put(&url),
            "DELETE" => w.http.delete(&url),
            m => panic!("verb {m}"),
        }
        .bearer_auth(&token)
        .header("Accept", "application/json");
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        checked += 1;
        if status != call.status {
            failures.push(format!(
                "{name}: status {status} (example {status_key}), body {text}"
            ));
            continue;
        }
        let Some(expected) = response.get("body").filter(|b| !b.is_null()) else {
            continue;
        };
        let live: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: not JSON ({e}): {text}"));
                continue;
            }
        };
        for k in keys(expected) {
            if live.get(&k).is_none() {
                failures.push(format!("{name}: missing top-level key {k:?}"));
            }
        }
        if let Some(first) = expected.get("value").and_then(|v| v.get(0)) {
            match live.get("value").and_then(|v| v.get(0)) {
                None => failures.push(format!(
                    "{name}: live value[] is empty, example has elements"
                )),
                Some(live_first) => {
                    for k in keys(first) {
                        if live_first.get(&k).is_none() {
                            failures.push(format!("{name}: value[0] lacks key {k:?}"));
                        }
                    }
                }
            }
        }
    }
    println!("conformance: {checked} examples compared");
    assert!(
        unmapped.is_empty(),
        "examples of implemented folders without an equivalent request: {unmapped:#?}"
    );
    assert!(
        calls.is_empty(),
        "mapped examples not found in the vectors: {:?}",
        calls.keys().collect::<Vec<_>>()
    );
    assert!(
        failures.is_empty(),
        "{} conformance failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 45, "only {checked} examples compared");
}
