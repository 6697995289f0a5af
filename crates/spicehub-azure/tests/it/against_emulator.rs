// Integration tests against the Entra ID + Azure DevOps emulator over real HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use ado_emulator::{Fault, FaultRule, FaultScope, FileChange};
use secrecy::SecretString;
use sha2::Digest;
use spicehub_azure::models::{ChangeFlags, SubscriptionCreate};
use spicehub_azure::retry::ThrottleCause;
use spicehub_azure::{
    AssertionAlgorithm, AzureClient, CommitQuery, Credential, GitVersion, PushQuery,
    RecursionLevel, TokenManager,
};

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

async fn repo_ids(f: &Fixture, project: &str, repo: &str) -> (String, String) {
    let p = f
        .emu
        .project_id(ORG, project)
        .unwrap_or_else(|| panic!("project {project}"));
    let r = f
        .emu
        .repository_id(ORG, project, repo)
        .unwrap_or_else(|| panic!("repo {repo}"));
    (p, r)
}

// ---------------------------------------------------------------------------- listing and paging

#[tokio::test]
async fn projects_are_paged_across_many_pages() {
    let f = fixture_with(
        |c| c.with_bulk_projects(ORG, "bulk", 9, 0),
        |c| c.projects_page_size = 3,
    )
    .await;
    let projects = ok(f.client.list_projects().await);
    // Alpha + Beta + 9 bulk projects, each exactly once.
    let names: BTreeSet<String> = projects.iter().map(|p| p.name.clone()).collect();
    assert_eq!(projects.len(), 11, "{names:?}");
    assert_eq!(names.len(), 11);
    assert!(names.contains("Alpha") && names.contains("bulk-008"));
    let project_calls: Vec<_> = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.path.ends_with("/_apis/projects"))
        .collect();
    assert!(
        project_calls.len() >= 4,
        "expected >= 4 pages, got {}",
        project_calls.len()
    );
    let continued = project_calls
        .iter()
        .filter(|r| {
            r.query
                .as_deref()
                .is_some_and(|q| q.contains("continuationToken="))
        })
        .count();
    assert!(
        continued >= 3,
        "pages after the first must use the continuation token ({continued})"
    );
}

#[tokio::test]
async fn server_side_page_cap_is_followed_by_continuation() {
    // The client asks for 100 per page; the server only gives 2 and a continuation token.
    let f = fixture_with(|c| c.with_bulk_projects(ORG, "cap", 5, 0), |_| {}).await;
    f.emu.add_fault(FaultRule::new(
        FaultScope::PathContains("/_apis/projects".into()),
        Fault::PageSize { n: 2 },
    ));
    let projects = ok(f.client.list_projects().await);
    assert_eq!(projects.len(), 7);
    let calls = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.path.ends_with("/_apis/projects"))
        .count();
    assert_eq!(calls, 4, "7 projects at 2 per page");
}

#[tokio::test]
async fn repositories_per_project_org_wide_and_by_id() {
    let f = fixture().await;
    let (alpha, app_id) = repo_ids(&f, "Alpha", "app").await;
    let repos = ok(f.client.list_repositories(&alpha).await);
    let names: BTreeSet<_> = repos.iter().map(|r| r.name.as_str()).collect();
    // `private` is not readable by CLIENT: hidden from the listing.
    assert_eq!(names, BTreeSet::from(["app", "empty"]));
    let empty = repos
        .iter()
        .find(|r| r.name == "empty")
        .unwrap_or_else(|| panic!("empty"));
    assert!(
        empty.is_empty(),
        "an empty repository has no default branch"
    );
    let all = ok(f.client.list_all_repositories().await);
    assert_eq!(all.len(), 3, "{all:?}");
    let repo = ok(f.client.get_repository(&alpha, &app_id).await);
    assert_eq!(repo.name, "app");
    assert_eq!(repo.default_branch_name(), Some("main"));
    // Requests carry api-version 7.1 and the right Accept.
    let log = f.emu.request_log();
    assert!(log
        .iter()
        .filter(|r| r.service == ado_emulator::Service::DevOps)
        .all(|r| r
            .query
            .as_deref()
            .is_some_and(|q| q.contains("api-version=7.1"))));
}

#[tokio::test]
async fn invisible_repository_is_diagnosed() {
    let f = fixture().await;
    let (alpha, private_id) = repo_ids(&f, "Alpha", "private").await;
    let err = f
        .client
        .get_repository(&alpha, &private_id)
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.code(), "repository_not_found", "{err}");
    assert!(err
        .diagnosis()
        .is_some_and(|d| d.hint().contains("Stakeholder")));
    assert_eq!(err.context().and_then(|c| c.status), Some(404));
}

#[tokio::test]
async fn refs_items_blobs_commits_pushes() {
    let f = fixture().await;
    let (alpha, app) = repo_ids(&f, "Alpha", "app").await;
    let head =
        ok(f.client.branch_head(&alpha, &app, "main").await).unwrap_or_else(|| panic!("no head"));
    assert_eq!(
        Some(head.clone()),
        ok(f.emu.branch_head(ORG, "Alpha", "app", "main"))
    );
    assert_eq!(ok(f.client.branch_head(&alpha, &app, "nope").await), None);

    let refs = ok(f.client.list_refs(&alpha, &app, Some("heads/")).await);
    assert!(refs
        .iter()
        .any(|r| r.name == "refs/heads/main" && r.object_id == head));

    let v = GitVersion::Commit(head.clone());
    for (path, content) in app_files() {
        let bytes = ok(f
            .client
            .get_file(&alpha, &app, &format!("/{path}"), &v)
            .await);
        assert_eq!(bytes, content.as_bytes(), "{path}");
    }
    let items = ok(f
        .client
        .list_items(&alpha, &app, "/", RecursionLevel::Full, &v)
        .await);
    let files: BTreeSet<String> = items
        .iter()
        .filter(|i| !i.folder())
        .map(|i| i.path.clone())
        .collect();
    let expected: BTreeSet<String> = app_files().iter().map(|(p, _)| format!("/{p}")).collect();
    assert_eq!(files, expected);

    let readme = items
        .iter()
        .find(|i| i.path == "/README.md")
        .unwrap_or_else(|| panic!("readme"));
    let oid = readme
        .object_id
        .clone()
        .unwrap_or_else(|| panic!("object id"));
    assert_eq!(ok(f.client.get_blob(&alpha, &app, &oid).await), b"# app\n");
    assert_eq!(
        ok(f.client.get_blob_metadata(&alpha, &app, &oid).await).size,
        Some(6)
    );

    let second = ok(f.emu.commit(
        ORG,
        "Alpha",
        "app",
        "main",
        vec![FileChange::put("NEW.md", b"new\n".to_vec())],
        "second",
    ));
    let commits = ok(f
        .client
        .list_commits(
            &alpha,
            &app,
            &CommitQuery {
                item_version: Some(GitVersion::Branch("main".into())),
                top: Some(10),
                ..Default::default()
            },
        )
        .await);
    assert_eq!(
        commits.first().map(|c| c.commit_id.as_str()),
        Some(second.as_str()),
        "newest first"
    );
    assert!(commits.iter().any(|c| c.commit_id == head));
    let c = ok(f.client.get_commit(&alpha, &app, &second, Some(10)).await);
    assert_eq!(c.parents.as_deref(), Some(&[head.clone()][..]));
    let changes = c.changes.unwrap_or_default();
    assert!(changes
        .iter()
        .any(|ch| ch.path() == Some("/NEW.md") && ch.change_type.contains(ChangeFlags::ADD)));

    let pushes = ok(f
        .client
        .list_pushes(
            &alpha,
            &app,
            &PushQuery {
                include_ref_updates: true,
                ..Default::default()
            },
        )
        .await);
    let latest = pushes
        .iter()
        .max_by_key(|p| p.push_id)
        .unwrap_or_else(|| panic!("no push"));
    let push = ok(f
        .client
        .get_push(&alpha, &app, latest.push_id, Some(5))
        .await);
    let updates = push.ref_updates.unwrap_or_default();
    assert!(updates.iter().any(
        |u| u.name == "refs/heads/main" && u.new_object_id.as_deref() == Some(second.as_str())
    ));
}

// ---------------------------------------------------------------------------- zip and diffs

#[tokio::test]
async fn zip_is_streamed_to_disk_pinned_to_a_commit_and_unpacks() {
    let f = fixture().await;
    let (alpha, app) = repo_ids(&f, "Alpha", "app").await;
    let pinned =
        ok(f.client.branch_head(&alpha, &app, "main").await).unwrap_or_else(|| panic!("head"));
    // A later commit must not leak into the archive pinned to the earlier one.
    ok(f.emu.commit(
        ORG,
        "Alpha",
        "app",
        "main",
        vec![FileChange::put("LATER.md", b"later\n".to_vec())],
        "later",
    ));
    // The first attempt's body is cut mid-way: the download is retried and the result intact.
    f.emu.add_fault(FaultRule::once(
        FaultScope::PathContains("zip".into()),
        Fault::CutBody { after_bytes: 40 },
    ));

    let dest = f.dir.path().join("out/app.zip");
    ok(std::fs::create_dir_all(f.dir.path().join("out")));
    let dl = ok(f.client.download_zip(&alpha, &app, &pinned, &dest).await);
    assert_eq!(dl.path, dest);
    assert_eq!(dl.commit, pinned);
    let on_disk = ok(std::fs::read(&dest));
    assert_eq!(dl.bytes, on_disk.len() as u64);
    let sha: String = sha2::Sha256::digest(&on_disk)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(dl.sha256, sha);
    let leftovers: Vec<_> = ok(std::fs::read_dir(f.dir.path().join("out")))
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file left behind: {leftovers:?}"
    );

    // With progress: the receiver ends on every byte, of the declared total.
    let (tx, rx) = tokio::sync::watch::channel((0u64, None));
    let again = f.dir.path().join("out/again.zip");
    let dl2 = ok(f
        .client
        .download_zip_with_progress(&alpha, &app, &pinned, &again, Some(tx))
        .await);
    let (bytes, total) = *rx.borrow();
    assert_eq!(bytes, dl2.bytes, "the last progress is the whole archive");
    assert!(total.is_none() || total == Some(dl2.bytes), "{total:?}");
    assert!(
        rx.has_changed().is_err(),
        "the sender is dropped when the download ends"
    );
    ok(std::fs::remove_file(&again));

    let zip_calls: Vec<_> = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.query.as_deref().is_some_and(|q| q.contains("zip")))
        .collect();
    assert_eq!(
        zip_calls.len(),
        3,
        "cut body must be retried once (then one more download, with progress)"
    );
    assert!(zip_calls
        .iter()
        .all(|r| r.query.as_deref().is_some_and(|q| q.contains(&pinned))));

    let mut archive = ok(zip::ZipArchive::new(ok(std::fs::File::open(&dest))));
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = ok(archive.by_index(i));
        if entry.is_dir() {
            continue;
        }
        let mut s = String::new();
        ok(entry.read_to_string(&mut s));
        found.insert(entry.name().trim_start_matches('/').to_string(), s);
    }
    let expected: BTreeMap<String, String> = app_files()
        .into_iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn diff_is_paged_until_all_changes_included() {
    let f = fixture_with(|c| c, |c| c.diff_page_size = 3).await;
    let (alpha, app) = repo_ids(&f, "Alpha", "app").await;
    let base =
        ok(f.client.branch_head(&alpha, &app, "main").await).unwrap_or_else(|| panic!("head"));
    let mut changes: Vec<FileChange> = (0..6)
        .map(|i| FileChange::put(format!("new/f{i}.py"), format!("x = {i}\n").into_bytes()))
        .collect();
    changes.push(FileChange::put("README.md", b"# app v2\n".to_vec()));
    changes.push(FileChange::delete("docs/space name.txt"));
    changes.push(FileChange::rename("src/registry.py", "src/registries.py"));
    let target = ok(f
        .emu
        .commit(ORG, "Alpha", "app", "main", changes, "many changes"));

    let diff = ok(f.client.diff_commits(&alpha, &app, &base, &target).await);
    assert_eq!(diff.all_changes_included, Some(true));
    let blobs: BTreeMap<String, _> = diff
        .changes
        .iter()
        .filter(|c| !c.item.as_ref().is_some_and(|i| i.folder()))
        .filter_map(|c| Some((c.path()?.to_string(), c.change_type.clone())))
        .collect();
    for i in 0..6 {
        assert!(
            blobs
                .get(&format!("/new/f{i}.py"))
                .is_some_and(|t| t.contains(ChangeFlags::ADD)),
            "{blobs:?}"
        );
    }
    assert!(blobs
        .get("/README.md")
        .is_some_and(|t| t.contains(ChangeFlags::EDIT)));
    assert!(blobs
        .get("/docs/space name.txt")
        .is_some_and(|t| t.is_delete()));
    let renamed = diff
        .changes
        .iter()
        .find(|c| c.path() == Some("/src/registries.py"))
        .unwrap_or_else(|| panic!("rename: {blobs:?}"));
    assert!(renamed.change_type.is_rename(), "{renamed:?}");
    assert_eq!(renamed.old_path(), Some("/src/registry.py"));
    assert!(
        !blobs.contains_key("/src/registry.py"),
        "the old path is not a separate change: {blobs:?}"
    );
    let diff_calls: Vec<String> = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.path.ends_with("/diffs/commits"))
        .filter_map(|r| r.query)
        .collect();
    assert!(diff_calls.len() >= 3, "{diff_calls:?}");
    assert!(
        diff_calls.iter().any(|q| q.contains("$skip=3")),
        "{diff_calls:?}"
    );
    assert!(
        diff_calls.iter().any(|q| q.contains("$skip=6")),
        "{diff_calls:?}"
    );
}

// ---------------------------------------------------------------------------- faults and diagnoses

#[tokio::test]
async fn each_fault_maps_to_its_diagnosis() {
    struct Case {
        rule: FaultRule,
        code: &'static str,
    }
    let devops = FaultScope::DevOps;
    let cases = vec![
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::TokenError { aadsts: 7000215 }),
            code: "wrong_client_secret",
        },
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::TokenError { aadsts: 7000222 }),
            code: "expired_client_secret",
        },
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::TokenError { aadsts: 90002 }),
            code: "unknown_tenant",
        },
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::TokenError { aadsts: 700016 }),
            code: "unknown_client_id",
        },
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::TokenError { aadsts: 700024 }),
            code: "assertion_time_invalid",
        },
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::TokenError { aadsts: 500011 }),
            code: "azure_devops_not_in_tenant",
        },
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::TokenError { aadsts: 70011 }),
            code: "invalid_scope",
        },
        Case {
            rule: FaultRule::new(FaultScope::Token, Fault::ServerError { status: 503 }),
            code: "server_error",
        },
        Case {
            rule: FaultRule::new(devops.clone(), Fault::SignInPage203),
            code: "sign_in_page",
        },
        Case {
            rule: FaultRule::new(devops.clone(), Fault::RedirectToSignIn302),
            code: "sign_in_page",
        },
        Case {
            rule: FaultRule::new(devops.clone(), Fault::Unauthorized401),
            code: "not_authorized",
        },
        Case {
            rule: FaultRule::new(
                devops.clone(),
                Fault::Throttle429 {
                    retry_after_secs: 0,
                },
            ),
            code: "throttled",
        },
        Case {
            rule: FaultRule::new(devops.clone(), Fault::ServerError { status: 500 }),
            code: "server_error",
        },
        Case {
            rule: FaultRule::new(devops.clone(), Fault::ServerError { status: 502 }),
            code: "server_error",
        },
        Case {
            rule: FaultRule::new(devops.clone(), Fault::CutBody { after_bytes: 5 }),
            code: "network_failure",
        },
    ];
    let f = fixture().await;
    for case in cases {
        f.emu.clear_faults();
        // A fresh token manager per case, so token faults are really exercised.
        let tokens = ok(TokenManager::new(token_config()));
        let client = ok(AzureClient::new(
            client_config(&f.emu),
            tokens,
            f.sp.clone(),
            ORG,
        ));
        f.emu.add_fault(case.rule.clone());
        let err = client
            .list_projects()
            .await
            .err()
            .unwrap_or_else(|| panic!("{:?} must fail", case.rule.fault));
        assert_eq!(err.code(), case.code, "{:?}: {err}", case.rule.fault);
    }
    f.emu.clear_faults();

    // Entra's support identifiers survive.
    let tokens = ok(TokenManager::new(token_config()));
    f.emu.add_fault(FaultRule::new(
        FaultScope::Token,
        Fault::TokenError { aadsts: 7000215 },
    ));
    let err = tokens
        .get(&f.sp)
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    let ctx = err.context().cloned().unwrap_or_default();
    assert!(
        ctx.trace_id.is_some() && ctx.correlation_id.is_some(),
        "{ctx:?}"
    );
    assert!(
        ctx.message
            .as_deref()
            .is_some_and(|m| m.starts_with("AADSTS7000215")),
        "{ctx:?}"
    );
    f.emu.clear_faults();
}

#[tokio::test]
async fn timeouts_are_diagnosed() {
    let f = fixture_with(
        |c| c,
        |c| {
            c.request_timeout = Duration::from_millis(300);
            c.retry.max_retries = 1;
        },
    )
    .await;
    f.emu.add_fault(FaultRule::new(
        FaultScope::DevOps,
        Fault::Delay { ms: 2_000 },
    ));
    let err = f
        .client
        .list_projects()
        .await
        .err()
        .unwrap_or_else(|| panic!("must time out"));
    assert_eq!(err.code(), "timeout", "{err}");
}

#[tokio::test]
async fn transient_failures_are_retried_to_success() {
    let f = fixture().await;
    f.emu.add_fault(FaultRule::times(
        FaultScope::DevOps,
        Fault::ServerError { status: 503 },
        2,
    ));
    f.emu.add_fault(FaultRule::times(
        FaultScope::Token,
        Fault::ServerError { status: 500 },
        1,
    ));
    let projects = ok(f.client.list_projects().await);
    assert_eq!(projects.len(), 2);
    let statuses: Vec<u16> = f.emu.request_log().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s >= 500).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn natural_misconfigurations_are_diagnosed() {
    let f = fixture().await;
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        // (tenant, client, secret, org) -> expected code below
        ("11111111-2222-4333-8444-555555555555", CLIENT, SECRET, ORG),
        (TENANT, "22222222-3333-4444-8555-666666666666", SECRET, ORG),
        (TENANT, CLIENT, "7d1e5b2c-9a4f-4c3e-8b6d-2f0a1c3e5d70", ORG),
        (TENANT, CLIENT, EXPIRED_SECRET, ORG),
        (TENANT, OUTSIDER, OUTSIDER_SECRET, ORG),
        (TENANT, CLIENT, SECRET, "no-such-org"),
        (TENANT, CLIENT, SECRET, FOREIGN_ORG),
    ];
    let expected = [
        "unknown_tenant",
        "unknown_client_id",
        "wrong_client_secret",
        "expired_client_secret",
        "service_principal_not_in_organization",
        "organization_not_found",
        "not_authorized",
    ];
    for ((tenant, client_id, sec, org), code) in cases.into_iter().zip(expected) {
        let tokens = ok(TokenManager::new(token_config()));
        let sp = principal(&f.emu, tenant, client_id, secret(sec));
        let client = ok(AzureClient::new(client_config(&f.emu), tokens, sp, org));
        let err = client
            .list_projects()
            .await
            .err()
            .unwrap_or_else(|| panic!("{code}: must fail"));
        assert_eq!(err.code(), code, "{err}");
    }
    // The tenant may also be given as a verified domain.
    let tokens = ok(TokenManager::new(token_config()));
    let sp = principal(&f.emu, TENANT_DOMAIN, CLIENT, secret(SECRET));
    let client = ok(AzureClient::new(client_config(&f.emu), tokens, sp, ORG));
    assert_eq!(ok(client.list_projects().await).len(), 2);
}

// ---------------------------------------------------------------------------- throttling

#[tokio::test]
async fn retry_after_on_429_is_waited_exactly() {
    let f = fixture().await;
    f.emu.add_fault(FaultRule::once(
        FaultScope::PathContains("/_apis/projects".into()),
        Fault::Throttle429 {
            retry_after_secs: 2,
        },
    ));
    let projects = ok(f.client.list_projects().await);
    assert_eq!(projects.len(), 2);

    let events = f.client.throttle_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].requested, Duration::from_secs(2));
    assert_eq!(events[0].status, 429);
    assert_eq!(events[0].cause, ThrottleCause::RetryAfter);
    assert!(events[0].waited <= Duration::from_secs(2));

    let log: Vec<_> = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.path.ends_with("/_apis/projects"))
        .collect();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].status, 429);
    let gap = log[1]
        .received_instant
        .duration_since(log[0].received_instant);
    assert!(
        gap >= Duration::from_secs(2),
        "next request came {gap:?} after the 429 (Retry-After: 2)"
    );
}

#[tokio::test]
async fn retry_after_on_200_delays_the_next_request() {
    let f = fixture().await;
    f.emu.add_fault(FaultRule::once(
        FaultScope::PathContains("/_apis/projects".into()),
        Fault::RetryAfterOn200 { secs: 1 },
    ));
    ok(f.client.list_projects().await);
    let (alpha, _) = repo_ids(&f, "Alpha", "app").await;
    ok(f.client.list_repositories(&alpha).await);

    let events = f.client.throttle_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].status, events[0].requested),
        (200, Duration::from_secs(1))
    );
    assert_eq!(events[0].cause, ThrottleCause::RetryAfter);
    let log: Vec<_> = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.service == ado_emulator::Service::DevOps)
        .collect();
    let first = log
        .iter()
        .position(|r| r.path.ends_with("/_apis/projects"))
        .unwrap_or_else(|| panic!("projects call"));
    let next = &log[first + 1];
    let gap = next
        .received_instant
        .duration_since(log[first].received_instant);
    assert!(
        gap >= Duration::from_secs(1),
        "the request after Retry-After: 1 came after {gap:?}"
    );
}

#[tokio::test]
async fn concurrency_per_organization_is_bounded() {
    let f = fixture_with(
        |c| c.with_bulk_projects(ORG, "conc", 12, 1),
        |c| c.max_concurrency_per_org = 2,
    )
    .await;
    f.emu.add_fault(FaultRule::new(
        FaultScope::PathContains("/git/repositories".into()),
        Fault::Delay { ms: 150 },
    ));
    let projects = ok(f.client.list_projects().await);
    let mut set = tokio::task::JoinSet::new();
    for p in projects {
        let c = f.client.clone();
        set.spawn(async move { c.list_repositories(&p.id).await.map(|r| r.len()) });
    }
    while let Some(r) = set.join_next().await {
        ok(ok(r));
    }
    // Reconstruct the overlap from the emulator's arrival times and durations.
    let calls: Vec<_> = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.path.ends_with("/git/repositories"))
        .collect();
    assert_eq!(calls.len(), 14);
    let mut max_overlap = 0;
    for a in &calls {
        let overlap = calls
            .iter()
            .filter(|b| {
                let b_end = b.received_instant + Duration::from_millis(b.elapsed_ms);
                b.received_instant <= a.received_instant && a.received_instant < b_end
            })
            .count();
        max_overlap = max_overlap.max(overlap);
    }
    assert!(
        max_overlap <= 2,
        "at most 2 concurrent requests per organization, saw {max_overlap}"
    );
    assert_eq!(f.client.gate().available_permits(), 2);
}

// ---------------------------------------------------------------------------- tokens

#[tokio::test]
async fn single_flight_100_concurrent_callers_make_one_token_request() {
    let f = fixture().await;
    // Slow token endpoint so that all callers really overlap.
    f.emu
        .add_fault(FaultRule::new(FaultScope::Token, Fault::Delay { ms: 300 }));
    let tokens = ok(TokenManager::new(token_config()));
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let tokens = tokens.clone();
        let sp = f.sp.clone();
        let barrier = barrier.clone();
        set.spawn(async move {
            barrier.wait().await;
            tokens.get(&sp).await.map(|t| t.generation())
        });
    }
    let mut generations = BTreeSet::new();
    while let Some(r) = set.join_next().await {
        generations.insert(ok(ok(r)));
    }
    assert_eq!(f.emu.token_requests(), 1);
    assert_eq!(tokens.token_requests(), 1);
    assert_eq!(generations.len(), 1, "everybody got the same token");
    let log = f.emu.token_request_log();
    assert_eq!(
        log[0].fields.get("scope").map(String::as_str),
        Some("499b84ac-1321-427f-aa17-267ca6975798/.default")
    );
    assert_eq!(
        log[0].fields.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(
        log[0].fields.get("client_id").map(String::as_str),
        Some(CLIENT)
    );
}

#[tokio::test]
async fn single_flight_shares_a_failure() {
    let f = fixture().await;
    f.emu
        .add_fault(FaultRule::new(FaultScope::Token, Fault::Delay { ms: 200 }));
    f.emu.add_fault(FaultRule::new(
        FaultScope::Token,
        Fault::TokenError { aadsts: 7000215 },
    ));
    let tokens = ok(TokenManager::new(token_config()));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let tokens = tokens.clone();
        let sp = f.sp.clone();
        set.spawn(async move { tokens.get(&sp).await.err().map(|e| e.code()) });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(ok(r), Some("wrong_client_secret"));
    }
    assert_eq!(f.emu.token_requests(), 1);
    assert_eq!(
        tokens.status(&f.sp).last_error.map(|e| e.code()),
        Some("wrong_client_secret")
    );
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    // 20 s tokens: margin = 20/10 = 2 s, so renewal starts at 18 s; the test
    // asks at 19 s, a second from either edge so a busy machine cannot miss it.
    let f = fixture_with(|c| c.with_token_lifetime(20), |_| {}).await;
    let t1 = ok(f.tokens.get(&f.sp).await);
    assert_eq!(t1.lifetime(), Some(Duration::from_secs(20)));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let t_mid = ok(f.tokens.get(&f.sp).await);
    assert_eq!(
        t_mid.generation(),
        t1.generation(),
        "well before the margin: cached"
    );
    assert_eq!(f.emu.token_requests(), 1);
    // Sleep until inside the margin but before expiry.
    let until_margin = t1
        .expires_in()
        .unwrap_or_default()
        .saturating_sub(Duration::from_millis(1_000));
    tokio::time::sleep(until_margin).await;
    assert!(
        !t1.is_expired(std::time::Instant::now()),
        "still valid: renewal happens before expiry"
    );
    let t2 = ok(f.tokens.get(&f.sp).await);
    assert_ne!(t2.generation(), t1.generation());
    assert_eq!(f.emu.token_requests(), 2);
    // The new token works.
    ok(f.client.list_projects().await);
    assert_eq!(f.emu.token_requests(), 2);
}

#[tokio::test]
async fn rejected_token_is_dropped_and_retried_once() {
    let f = fixture().await;
    ok(f.client.list_projects().await);
    assert_eq!(f.emu.token_requests(), 1);
    // Azure DevOps stops accepting the cached token (revoked / expired early).
    f.emu.expire_tokens();
    ok(f.client.list_projects().await);
    assert_eq!(
        f.emu.token_requests(),
        2,
        "a new token was fetched after the rejection"
    );
    let statuses: Vec<u16> = f
        .emu
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/_apis/projects"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![200, 401, 200]);

    // A persistent sign-in page: one retry, then the diagnosis.
    f.emu
        .add_fault(FaultRule::new(FaultScope::DevOps, Fault::SignInPage203));
    let before = f.emu.token_requests();
    let err = f
        .client
        .list_projects()
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.code(), "sign_in_page");
    assert_eq!(
        f.emu.token_requests(),
        before + 1,
        "exactly one fresh token, not a loop"
    );
}

#[tokio::test]
async fn certificate_credential_end_to_end() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let Some((cert_pem, key_pem)) = openssl_cert(dir.path(), "spicehub-test") else {
        panic!("the openssl CLI is required for this test");
    };
    let Some((other_cert, other_key)) = openssl_cert(dir.path(), "not-registered") else {
        panic!("openssl");
    };
    const CERT_CLIENT: &str = "4d5e6f70-8192-4a3b-9c4d-5e6f708192a3";
    let cert_for_config = cert_pem.clone();
    let f = fixture_with(
        move |c| {
            c.with_certificate_client(TENANT, CERT_CLIENT, &cert_for_config)
                .with_member(ORG, CERT_CLIENT, ado_emulator::AccessLevel::Basic)
        },
        |_| {},
    )
    .await;
    for alg in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
        let cred = ok(Credential::certificate_from_pem_with(
            cert_pem.as_bytes(),
            &SecretString::from(key_pem.clone()),
            alg,
        ));
        assert!(
            !format!("{cred:?}").contains("PRIVATE"),
            "Debug must not show the key"
        );
        let tokens = ok(TokenManager::new(token_config()));
        let sp = principal(&f.emu, TENANT, CERT_CLIENT, cred);
        let client = ok(AzureClient::new(client_config(&f.emu), tokens, sp, ORG));
        assert_eq!(ok(client.list_projects().await).len(), 2, "{alg:?}");
    }
    let log = f.emu.token_request_log();
    let last = log.last().unwrap_or_else(|| panic!("token request"));
    assert_eq!(
        last.fields.get("client_assertion_type").map(String::as_str),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
    assert!(last.fields.contains_key("client_assertion"));
    assert!(!last.fields.contains_key("client_secret"));
    assert_eq!(last.status, 200);

    // A certificate the app registration does not know is rejected and diagnosed.
    let cred = ok(Credential::certificate_from_pem(
        other_cert.as_bytes(),
        &SecretString::from(other_key),
    ));
    let tokens = ok(TokenManager::new(token_config()));
    let err = tokens
        .get(&principal(&f.emu, TENANT, CERT_CLIENT, cred))
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.code(), "certificate_rejected", "{err}");
    // The registered certificate with the wrong private key as well.
    let (_, wrong_key) = openssl_cert(dir.path(), "wrong-key").unwrap_or_else(|| panic!("openssl"));
    let cred = ok(Credential::certificate_from_pem(
        cert_pem.as_bytes(),
        &SecretString::from(wrong_key),
    ));
    let err = tokens
        .get(&principal(&f.emu, TENANT, CERT_CLIENT, cred))
        .await
        .err()
        .unwrap_or_else(|| panic!("must fail"));
    assert_eq!(err.code(), "certificate_rejected", "{err}");
}

#[tokio::test]
async fn legacy_pat_works_without_token_requests() {
    let f = fixture().await;
    let tokens = ok(TokenManager::new(token_config()));
    let pat = ok(Credential::personal_access_token(SecretString::from(PAT)));
    assert!(pat.is_deprecated());
    let client = ok(AzureClient::new(
        client_config(&f.emu),
        tokens.clone(),
        principal(&f.emu, TENANT, CLIENT, pat),
        ORG,
    ));
    assert_eq!(ok(client.list_projects().await).len(), 2);
    assert_eq!(f.emu.token_requests(), 0);
    assert_eq!(tokens.token_requests(), 0);
    let bad = ok(Credential::personal_access_token(SecretString::from(
        "not-a-valid-pat",
    )));
    let client = ok(AzureClient::new(
        client_config(&f.emu),
        tokens,
        principal(&f.emu, TENANT, CLIENT, bad),
        ORG,
    ));
    assert_eq!(
        client.list_projects().await.err().map(|e| e.code()),
        Some("not_authorized")
    );
}

// ---------------------------------------------------------------------------- service hooks

#[tokio::test]
async fn service_hook_subscriptions_create_list_delete() {
    let f = fixture().await;
    let (alpha, app) = repo_ids(&f, "Alpha", "app").await;
    let body = SubscriptionCreate::git_push_webhook(
        &alpha,
        Some(&app),
        Some("refs/heads/main"),
        "https://hub.example.com/gateway/public/sync",
        "hook",
        "pw-no-spaces",
    );
    let created = ok(f.client.create_subscription(&body).await);
    assert!(!created.id.is_empty());
    assert_eq!(created.event_type.as_deref(), Some("git.push"));
    assert_ne!(
        created
            .consumer_inputs
            .get("basicAuthPassword")
            .map(String::as_str),
        Some("pw-no-spaces"),
        "secrets come back masked"
    );
    let listed = ok(f
        .client
        .list_subscriptions(Some("tfs"), Some("git.push"))
        .await);
    assert!(listed.iter().any(|s| s.id == created.id));
    let got = ok(f.client.get_subscription(&created.id).await);
    assert_eq!(
        got.publisher_inputs.get("repository").map(String::as_str),
        Some(app.as_str())
    );
    ok(f.client.delete_subscription(&created.id).await);
    let listed = ok(f.client.list_subscriptions(None, None).await);
    assert!(!listed.iter().any(|s| s.id == created.id));
}

#[tokio::test]
async fn blobs_come_in_one_verified_zip_and_too_many_are_refused() {
    let f = fixture_with(|c| c.with_max_blobs_per_zip(3), |_| {}).await;
    let (alpha, app) = repo_ids(&f, "Alpha", "app").await;
    let head =
        ok(f.client.branch_head(&alpha, &app, "main").await).unwrap_or_else(|| panic!("head"));
    let items = ok(f
        .client
        .list_items(
            &alpha,
            &app,
            "/",
            RecursionLevel::Full,
            &GitVersion::Commit(head),
        )
        .await);
    let mut files: Vec<(String, String)> = items
        .iter()
        .filter(|i| !i.folder())
        .map(|i| {
            let id = i.object_id.clone().unwrap_or_else(|| panic!("object id"));
            (id, i.path.trim_start_matches('/').to_owned())
        })
        .collect();
    files.sort();
    let ids: Vec<String> = files.iter().map(|(id, _)| id.clone()).collect();
    assert!(ids.len() > 3, "the test needs more blobs than the limit");

    // A body cut short is retried like the tree's zip.
    f.emu.add_fault(FaultRule::once(
        FaultScope::PathContains("/blobs".into()),
        Fault::CutBody { after_bytes: 40 },
    ));
    let dest = f.dir.path().join("blobs.zip");
    let dl = ok(f.client.get_blobs_zip(&alpha, &app, &ids[..3], &dest).await);
    assert_eq!(dl.bytes, ok(std::fs::metadata(&dest)).len());
    let blobs = ok(spicehub_azure::client::read_blobs_zip(
        &dest,
        &ids[..3],
        f.client.blob_zip_limits(1024),
    ));
    let contents: BTreeMap<&str, &str> = app_files().into_iter().collect();
    for ((id, path), blob) in files.iter().zip(&blobs) {
        assert_eq!(&blob.id, id);
        assert_eq!(
            blob.content.as_deref(),
            Some(contents[path.as_str()].as_bytes()),
            "{path}"
        );
    }
    let posts = f
        .emu
        .request_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/blobs"))
        .count();
    assert_eq!(posts, 2, "the cut answer was asked for again");

    // Over the server's limit: Azure DevOps' 400, not retried.
    let err = f
        .client
        .get_blobs_zip(&alpha, &app, &ids, &f.dir.path().join("all.zip"))
        .await
        .expect_err("refused");
    assert_eq!(err.context().and_then(|c| c.status), Some(400), "{err}");
    assert!(!err.is_transient());
    assert!(!f.dir.path().join("all.zip").exists());
}
