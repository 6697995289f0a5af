// Projects paging, refs, items, zip pinned to a commit, diffs, commits, pushes — real Git behind real HTTP.

use std::collections::BTreeMap;
use std::io::Read;

use crate::common::*;
use ado_emulator::{Fault, FaultRule, FaultScope, FileChange};
use serde_json::Value;

fn zip_files(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("valid zip");
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        if f.is_dir() {
            continue;
        }
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        out.insert(f.name().to_string(), s);
    }
    out
}

#[tokio::test]
async fn projects_paging_with_continuation_tokens() {
    let w = world_with(|c| c.with_bulk_projects(ORG, "bulk", 250, 2)).await;
    let token = w.token().await;
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &next {
            Some(t) => format!("_apis/projects?continuationToken={t}"),
            None => "_apis/projects".into(),
        };
        let r = w.get(&token, &path).await;
        assert_eq!(r.status(), 200);
        next = r
            .headers()
            .get("x-ms-continuationtoken")
            .map(|v| v.to_str().unwrap().to_string());
        let v: Value = r.json().await.unwrap();
        let value = v["value"].as_array().unwrap();
        assert_eq!(v["count"].as_u64().unwrap() as usize, value.len());
        names.extend(
            value
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string()),
        );
        pages += 1;
        if next.is_none() {
            break;
        }
        assert_eq!(value.len(), 100, "default page size is 100");
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 252);
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), 252);

    // $top and a PageSize fault shrink pages.
    let r = w.get(&token, "_apis/projects?$top=7").await;
    assert_eq!(r.headers()["x-ms-continuationtoken"], "7");
    w.emu
        .add_fault(FaultRule::new(FaultScope::DevOps, Fault::PageSize { n: 3 }));
    let r = w.get(&token, "_apis/projects?continuationToken=3").await;
    assert_eq!(r.headers()["x-ms-continuationtoken"], "6");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["count"], 3);
    // Bulk repositories are empty and cheap.
    w.emu.clear_faults();
    let v = w.get_json(&token, "bulk-042/_apis/git/repositories").await;
    assert_eq!(v["count"], 2);
    assert!(v["value"][0].get("defaultBranch").is_none());
}

#[tokio::test]
async fn refs_filter_and_paging() {
    let w = world().await;
    let token = w.token().await;
    for b in ["feature/a", "feature/b", "feature/c", "release/1"] {
        let head = w
            .emu
            .branch_head(ORG, "Alpha", "app", "main")
            .unwrap()
            .unwrap();
        w.emu
            .set_branch(ORG, "Alpha", "app", b, Some(&head))
            .unwrap();
    }
    let repo = w.repo_url("app");
    let v = w
        .get_json(&token, &format!("{repo}/refs?filter=heads/feature/"))
        .await;
    assert_eq!(v["count"], 3);
    assert_eq!(v["value"][0]["name"], "refs/heads/feature/a");
    let v = w
        .get_json(&token, &format!("{repo}/refs?filter=heads/main"))
        .await;
    assert_eq!(v["count"], 1);
    assert_eq!(v["value"][0]["objectId"].as_str().unwrap().len(), 40);
    let v = w
        .get_json(&token, &format!("{repo}/refs?filterContains=ELEASE"))
        .await;
    assert_eq!(v["value"][0]["name"], "refs/heads/release/1");
    // Paging with $top + continuationToken.
    let mut seen = Vec::new();
    let mut token_q = String::new();
    loop {
        let r = w
            .get(
                &token,
                &format!("{repo}/refs?filter=heads/&$top=2{token_q}"),
            )
            .await;
        let next = r
            .headers()
            .get("x-ms-continuationtoken")
            .map(|v| v.to_str().unwrap().to_string());
        let v: Value = r.json().await.unwrap();
        seen.extend(
            v["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string()),
        );
        match next {
            Some(t) => token_q = format!("&continuationToken={t}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
}

#[tokio::test]
async fn items_file_folder_and_zip_pinned_to_an_old_commit() {
    let w = world().await;
    let token = w.token().await;
    let repo = w.repo_url("app");
    let pushes = w.emu.pushes(ORG, "Alpha", "app");
    let first = pushes[0].commits[0].clone();
    let second = pushes[1].commits[0].clone();

    // Raw file (default), JSON metadata, content.
    let r = w
        .get(&token, &format!("{repo}/items?path=/README.md"))
        .await;
    assert_eq!(r.text().await.unwrap(), "v2\n");
    let r = w
        .http
        .get(format!(
            "{}/{repo}/items?path=/README.md&api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .bearer_auth(&token)
        .header("Accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.text().await.unwrap(), "v2\n");
    let v = w
        .get_json(&token, &format!("{repo}/items?path=/README.md&$format=json&includeContent=true&versionDescriptor.version={first}&versionDescriptor.versionType=commit"))
        .await;
    assert_eq!(v["content"], "v1\n");
    assert_eq!(v["commitId"], first.as_str());
    assert_eq!(v["gitObjectType"], "blob");
    assert_eq!(v["path"], "/README.md");
    let r = w
        .get(
            &token,
            &format!("{repo}/items?path=/README.md&download=true"),
        )
        .await;
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));

    // Folder listing.
    let v = w
        .get_json(
            &token,
            &format!("{repo}/items?scopePath=/&recursionLevel=Full"),
        )
        .await;
    let paths: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "/",
            "/README.md",
            "/lib",
            "/lib/b_renamed.py",
            "/src",
            "/src/a.py",
            "/src/new.py"
        ]
    );
    assert_eq!(v["value"][2]["isFolder"], true);
    let v = w
        .get_json(
            &token,
            &format!(
                "{repo}/items?scopePath=/src&recursionLevel=OneLevel&includeContentMetadata=true"
            ),
        )
        .await;
    assert_eq!(v["count"], 3);
    assert_eq!(v["value"][1]["contentMetadata"]["fileName"], "a.py");

    // Missing item.
    let r = w.get(&token, &format!("{repo}/items?path=/nope.py")).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("TF401174"));

    // Zip pinned to the first commit has the first commit's content ($format=zip).
    let r = w
        .get(&token, &format!("{repo}/items?scopePath=/&recursionLevel=full&$format=zip&versionDescriptor.version={first}&versionDescriptor.versionType=commit"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len(), len);
    let files = zip_files(&bytes);
    assert_eq!(files.get("README.md").map(String::as_str), Some("v1\n"));
    assert!(files.contains_key("src/gone.py") && files.contains_key("src/b.py"));
    assert!(!files.contains_key("src/new.py"));

    // ... and with download=true + Accept: application/zip at the second commit.
    let r = w
        .http
        .get(format!(
            "{}/{repo}/items?scopePath=/&recursionLevel=full&download=true&versionDescriptor.version={second}&versionDescriptor.versionType=commit&api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .bearer_auth(&token)
        .header("Accept", "application/zip")
        .send()
        .await
        .unwrap();
    let files = zip_files(&r.bytes().await.unwrap());
    assert_eq!(files.get("README.md").map(String::as_str), Some("v2\n"));
    assert!(files.contains_key("lib/b_renamed.py") && !files.contains_key("src/gone.py"));

    // Sub-folder zip gets the folder name as top-level directory.
    let r = w
        .get(&token, &format!("{repo}/items?scopePath=/src&$format=zip"))
        .await;
    let files = zip_files(&r.bytes().await.unwrap());
    assert!(files.contains_key("src/a.py"), "{files:?}");

    // Unresolvable version.
    let r = w
        .get(
            &token,
            &format!("{repo}/items?path=/README.md&versionDescriptor.version=nope"),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("TF401175:The version descriptor <Branch: nope >"));
}

fn changes(v: &Value) -> Vec<(String, String, Option<String>)> {
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["item"]["isFolder"] != true)
        .map(|c| {
            (
                c["changeType"].as_str().unwrap().to_string(),
                c["item"]["path"].as_str().unwrap().to_string(),
                c["originalPath"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[tokio::test]
async fn diffs_add_edit_delete_rename_and_paging() {
    let w = world().await;
    let token = w.token().await;
    let repo = w.repo_url("app");
    let pushes = w.emu.pushes(ORG, "Alpha", "app");
    let (first, second) = (pushes[0].commits[0].clone(), pushes[1].commits[0].clone());
    let q = format!("{repo}/diffs/commits?baseVersion={first}&baseVersionType=commit&targetVersion={second}&targetVersionType=commit");
    let v = w.get_json(&token, &q).await;
    let mut got = changes(&v);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("add".to_string(), "/src/new.py".to_string(), None),
            ("delete".to_string(), "/src/gone.py".to_string(), None),
            ("edit".to_string(), "/README.md".to_string(), None),
            (
                "rename".to_string(),
                "/lib/b_renamed.py".to_string(),
                Some("/src/b.py".to_string())
            ),
        ]
    );
    assert_eq!(v["allChangesIncluded"], true);
    assert_eq!(v["baseCommit"], first.as_str());
    assert_eq!(v["targetCommit"], second.as_str());
    assert_eq!(v["commonCommit"], first.as_str());
    assert_eq!(v["aheadCount"], 1);
    assert_eq!(v["behindCount"], 0);
    assert!(v["changeCounts"].as_object().unwrap().keys().all(|k| k
        .chars()
        .next()
        .unwrap()
        .is_uppercase()));
    let rename = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["changeType"] == "rename")
        .unwrap();
    assert_eq!(rename["sourceServerItem"], "/src/b.py");

    // Paging: $top/$skip until allChangesIncluded.
    let total = v["changes"].as_array().unwrap().len();
    let mut collected = 0;
    let mut skip = 0;
    loop {
        let page = w
            .get_json(&token, &format!("{q}&$top=2&$skip={skip}"))
            .await;
        collected += page["changes"].as_array().unwrap().len();
        skip += 2;
        if page["allChangesIncluded"] == true {
            break;
        }
        assert!(page.get("allChangesIncluded").is_none(), "ADO omits false");
    }
    assert_eq!(collected, total);

    // "edit, rename": rename with a change.
    let big: String = (0..30).map(|i| format!("LINE_{i} = {i}\n")).collect();
    let c_big = w
        .emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![FileChange::put("src/big.py", big.clone())],
            "big",
        )
        .unwrap();
    let c3 = w
        .emu
        .commit(
            ORG,
            "Alpha",
            "app",
            "main",
            vec![
                FileChange::delete("src/big.py"),
                FileChange::put(
                    "src/big_moved.py",
                    big.replace("LINE_7 = 7", "LINE_7 = 700"),
                ),
            ],
            "move with edit",
        )
        .unwrap();
    let v = w
        .get_json(&token, &format!("{repo}/diffs/commits?baseVersion={c_big}&baseVersionType=commit&targetVersion={c3}&targetVersionType=commit"))
        .await;
    assert_eq!(
        changes(&v),
        vec![(
            "edit, rename".to_string(),
            "/src/big_moved.py".to_string(),
            Some("/src/big.py".to_string())
        )]
    );
    assert_eq!(v["changeCounts"]["Edit, Rename"], 1);

    // Base that does not exist → 404 TF401175.
    let r = w
        .get(
            &token,
            &format!(
                "{repo}/diffs/commits?baseVersion={}&baseVersionType=commit&targetVersion=main",
                "ab".repeat(20)
            ),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("TF401175"));

    // Force-push: the old head is no longer an ancestor; the diff still works, common commit differs.
    let rewritten = w
        .emu
        .force_push(
            ORG,
            "Alpha",
            "app",
            "main",
            Some(&first),
            vec![FileChange::put("README.md", "rewritten\n")],
            "rewrite",
        )
        .unwrap();
    let v = w
        .get_json(&token, &format!("{repo}/diffs/commits?baseVersion={c3}&baseVersionType=commit&targetVersion=main&targetVersionType=branch"))
        .await;
    assert_eq!(v["targetCommit"], rewritten.as_str());
    assert_eq!(v["commonCommit"], first.as_str());
    assert_eq!(v["behindCount"], 3);
    let v = w
        .get_json(&token, &format!("{repo}/diffs/commits?baseVersion={c3}&baseVersionType=commit&targetVersion=main&diffCommonCommit=true"))
        .await;
    assert_eq!(
        changes(&v),
        vec![("edit".to_string(), "/README.md".to_string(), None)]
    );
}

#[tokio::test]
async fn commits_pushes_blobs_trees() {
    let w = world().await;
    let token = w.token().await;
    let repo = w.repo_url("app");
    let v = w.get_json(&token, &format!("{repo}/commits")).await;
    assert_eq!(v["count"], 2);
    assert_eq!(v["value"][0]["comment"], "second", "newest first");
    assert_eq!(v["value"][0]["changeCounts"]["Delete"], 1);
    let second = v["value"][0]["commitId"].as_str().unwrap().to_string();
    let v = w
        .get_json(
            &token,
            &format!("{repo}/commits?searchCriteria.$top=1&searchCriteria.$skip=1"),
        )
        .await;
    assert_eq!(v["value"][0]["comment"], "first");
    let v = w
        .get_json(&token, &format!("{repo}/commits/{second}?changeCount=10"))
        .await;
    assert_eq!(v["parents"].as_array().unwrap().len(), 1);
    assert_eq!(v["push"]["pushId"], 2);
    assert!(v["changes"].as_array().unwrap().len() >= 4);
    assert_eq!(
        w.get(&token, &format!("{repo}/commits/{}", "cd".repeat(20)))
            .await
            .status(),
        404
    );
    let v = w
        .get_json(
            &token,
            &format!("{repo}/commits/{second}/changes?top=2&skip=1"),
        )
        .await;
    assert_eq!(v["changes"].as_array().unwrap().len(), 2);

    // Pushes: newest first, refUpdates on request, get by id.
    let v = w
        .get_json(
            &token,
            &format!("{repo}/pushes?searchCriteria.includeRefUpdates=true"),
        )
        .await;
    assert_eq!(v["count"], 2);
    assert_eq!(v["value"][0]["pushId"], 2);
    assert_eq!(
        v["value"][1]["refUpdates"][0]["oldObjectId"],
        "0000000000000000000000000000000000000000"
    );
    let v = w
        .get_json(&token, &format!("{repo}/pushes/2?includeCommits=5"))
        .await;
    assert_eq!(v["commits"][0]["commitId"], second.as_str());
    assert_eq!(v["refUpdates"][0]["name"], "refs/heads/main");
    let v = w
        .get_json(&token, &format!("{repo}/commits?pushId=1"))
        .await;
    assert_eq!(v["count"], 1);

    // Blob by id (JSON and bytes) and tree.
    let item = w
        .get_json(&token, &format!("{repo}/items?path=/src/a.py&$format=json"))
        .await;
    let blob = item["objectId"].as_str().unwrap();
    let v = w.get_json(&token, &format!("{repo}/blobs/{blob}")).await;
    assert_eq!(v["size"], 6);
    let r = w
        .http
        .get(format!(
            "{}/{repo}/blobs/{blob}?api-version=7.1",
            w.emu.org_url(ORG)
        ))
        .bearer_auth(&token)
        .header("Accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "A = 1\n");
    let commit = w
        .get_json(&token, &format!("{repo}/commits/{second}"))
        .await;
    let tree = commit["treeId"].as_str().unwrap();
    let v = w
        .get_json(&token, &format!("{repo}/trees/{tree}?recursive=true"))
        .await;
    let rel: Vec<&str> = v["treeEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["relativePath"].as_str().unwrap())
        .collect();
    assert!(rel.contains(&"src/a.py") && rel.contains(&"lib"));
    let lib = v["treeEntries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["relativePath"] == "lib")
        .unwrap();
    assert_eq!(lib["mode"], "40000");
}

#[tokio::test]
async fn repository_shape_and_default_branch_of_first_push() {
    let w = world().await;
    let token = w.token().await;
    let v = w.get_json(&token, "Alpha/_apis/git/repositories/app").await;
    assert_eq!(v["defaultBranch"], "refs/heads/main");
    assert!(v["url"].as_str().unwrap().starts_with(&w.emu.devops_url()));
    assert!(v["_links"]["items"]["href"]
        .as_str()
        .unwrap()
        .ends_with("/items"));
    assert!(v["size"].as_u64().unwrap() > 0);
    // First push to the empty repository sets its default branch.
    w.emu
        .commit(
            ORG,
            "Alpha",
            "empty",
            "trunk",
            vec![FileChange::put("x.py", "X = 1\n")],
            "first",
        )
        .unwrap();
    let v = w
        .get_json(&token, "Alpha/_apis/git/repositories/empty")
        .await;
    assert_eq!(v["defaultBranch"], "refs/heads/trunk");
    // Org-wide listing covers every project.
    let v = w.get_json(&token, "_apis/git/repositories").await;
    let names: Vec<&str> = v["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"lib") && names.contains(&"app"));
}

#[tokio::test]
async fn blobs_zip_serves_the_blobs_asked_for_and_refuses_too_many() {
    let w = world_with(|c| c.with_max_blobs_per_zip(3)).await;
    let token = w.token().await;
    let repo = w.repo_url("app");
    let mut ids = Vec::new();
    for path in ["/src/a.py", "/README.md", "/src/new.py"] {
        let item = w
            .get_json(&token, &format!("{repo}/items?path={path}&$format=json"))
            .await;
        ids.push(item["objectId"].as_str().unwrap().to_string());
    }
    let post = |body: Value| {
        w.http
            .post(format!(
                "{}/{repo}/blobs?api-version=7.1",
                w.emu.org_url(ORG)
            ))
            .bearer_auth(&token)
            .header("Accept", "application/zip")
            .json(&body)
            .send()
    };

    // Two ids, one of them twice: one entry each, named by its id.
    let r = post(serde_json::json!([ids[0], ids[1], ids[0].to_uppercase()]))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let files = zip_files(&r.bytes().await.unwrap());
    let expected: BTreeMap<String, String> = [
        (ids[0].clone(), "A = 1\n".to_string()),
        (ids[1].clone(), "v2\n".to_string()),
    ]
    .into();
    assert_eq!(files, expected);

    // More ids than the configured limit: Azure DevOps' 400 envelope.
    let r = post(serde_json::json!([ids[0], ids[1], ids[2], ids[0]]))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["typeKey"], "InvalidArgumentValueException");
    assert!(v["message"].as_str().unwrap().contains("at most 3"), "{v}");

    // An id the repository does not hold: TF401174, as for one blob.
    let r = post(serde_json::json!([ids[0], "ab".repeat(20)]))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().starts_with("TF401174"),
        "{v}"
    );

    // Not an array of ids.
    for body in [
        serde_json::json!({"ids": [ids[0]]}),
        serde_json::json!(["README.md"]),
    ] {
        assert_eq!(post(body).await.unwrap().status(), 400);
    }
}
