//! First replication, incremental pushes, force-push fallback, from a commit
//! hash, coalescing, re-parse, reconcile, and a wrong secret.

use std::time::Duration;

use ado_emulator::{FileChange, SubscriptionStatus};
use spicehub_core::admin::repositories::request_sync;
use spicehub_core::db::repositories::RepoState;
use spicehub_core::sync::{hooks, JobKind, JobStatus};

use crate::common::TestDb;
use crate::sync::harness::*;

const REGISTRY: &str = "from spice import Registry\n\npipelines = Registry(\"pipelines\")\n";

fn project_files() -> Vec<FileChange> {
    vec![
        FileChange::put("pkg/__init__.py", ""),
        FileChange::put("pkg/registry.py", REGISTRY),
        FileChange::put(
            "pkg/steps/clean.py",
            "from pkg.registry import pipelines\n\n@pipelines.register(\"clean\")\ndef clean():\n    \"\"\"Cleans.\"\"\"\n",
        ),
        FileChange::put(
            "pkg/steps/load.py",
            "from pkg.registry import pipelines\n\n@pipelines.register(\"load\")\ndef load(clean):\n    pass\n",
        ),
        // Stored, but the configuration leaves it out of the graph.
        FileChange::put(
            "pkg/legacy/old.py",
            "from pkg.registry import pipelines\n\n@pipelines.register(\"old\")\ndef old():\n    pass\n",
        ),
        FileChange::put("spice.toml", "exclude = [\"pkg/legacy\"]\n"),
        FileChange::put("docs/README.md", "# not Python\n"),
        FileChange::put(".venv/lib/site.py", "X = 1\n"),
        FileChange::put(
            "assets/model.py",
            "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_replication_then_pushes_sync_only_what_changed() {
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(ORG, PROJECT, "app", vec![seed("first", project_files())])
        })
        .await;
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        let head = s.head("app");
        let synced = s.wait_synced(&repo.id, &head).await;
        assert!(synced
            .last_sync_note
            .as_deref()
            .unwrap()
            .contains("first replication"));

        let (commit, files) = s.visible(&repo.id).await.expect("visible");
        assert_eq!(commit, head);
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                ".venv",
                "assets/model.py",
                "pkg/__init__.py",
                "pkg/legacy/old.py",
                "pkg/registry.py",
                "pkg/steps/clean.py",
                "pkg/steps/load.py",
                "spice.toml"
            ],
            "{}",
            s.label
        );
        assert_eq!(text(&files, "pkg/registry.py").as_deref(), Some(REGISTRY));
        assert_eq!(
            files["assets/model.py"], None,
            "LFS pointer noted, not stored"
        );
        // Exactly one archive, pinned to the head commit.
        let zips: Vec<_> = s.requests().into_iter().filter(is_zip).collect();
        assert_eq!(zips.len(), 1);
        let q = zips[0].query.clone().unwrap_or_default();
        assert!(q.contains(&head) && q.contains("versionType=commit"), "{q}");

        let registries = s.db.list_registries(None).await.expect("registries");
        let mine: Vec<_> = registries
            .iter()
            .filter(|r| r.repository_id == repo.id)
            .collect();
        assert_eq!(mine.len(), 1, "{registries:?}");
        assert_eq!(mine[0].entry_count, 2);
        let diags = s.db.snapshot_diagnostics(&repo.id, &head).await.unwrap();
        assert!(
            diags
                .iter()
                .any(|d| d.file == "assets/model.py" && d.message.contains("LFS")),
            "{diags:?}"
        );
        assert!(diags.iter().any(|d| d.file == ".venv"), "{diags:?}");

        // The first replication parses files while it stores them; a
        // re-parse reads them back from the database. Same graph.
        let first = s.db.load_graph(&repo.id, &head).await.unwrap().unwrap();
        s.reparse(&repo.id).await;
        let again = s.db.load_graph(&repo.id, &head).await.unwrap().unwrap();
        assert_eq!(
            spicehub_parser::to_json(&first),
            spicehub_parser::to_json(&again)
        );
        assert!(!first.entries.iter().any(|e| e.name == "old"));

        // A push with an add, an edit, a delete, a rename and a non-Python change.
        s.emu.clear_request_log();
        let pushed = s.commit(
            "app",
            vec![
                FileChange::put(
                    "pkg/steps/save.py",
                    "from pkg.registry import pipelines\n\n@pipelines.register(\"save\")\ndef save(load):\n    pass\n",
                ),
                FileChange::put(
                    "pkg/steps/load.py",
                    "from pkg.registry import pipelines\n\n@pipelines.register(\"load\")\ndef load(clean):\n    \"\"\"Loads.\"\"\"\n",
                ),
                FileChange::delete("pkg/steps/clean.py"),
                FileChange::rename("pkg/__init__.py", "pkg/base.py"),
                FileChange::put("docs/README.md", "# changed\n"),
            ],
            "change things",
        );
        let synced = s.wait_synced(&repo.id, &pushed).await;
        let note = synced.last_sync_note.unwrap_or_default();
        assert!(note.starts_with("incremental"), "{note}");
        let (commit, files) = s.visible(&repo.id).await.unwrap();
        assert_eq!(commit, pushed);
        assert!(files.contains_key("pkg/steps/save.py"));
        assert!(!files.contains_key("pkg/steps/clean.py"));
        assert!(!files.contains_key("pkg/__init__.py"));
        assert_eq!(text(&files, "pkg/base.py").as_deref(), Some(""));
        assert!(text(&files, "pkg/steps/load.py")
            .unwrap()
            .contains("Loads."));

        // Only the two changed Python files were fetched, in one batch; no
        // archive of the tree. The renamed file's content was already
        // stored (same blob id).
        let log = s.requests();
        assert_eq!(log.iter().filter(|r| is_zip(r)).count(), 0, "no archive");
        let fetches: Vec<_> = log
            .iter()
            .filter(|r| is_blob(r) || is_blobs_zip(r))
            .collect();
        assert_eq!(
            fetches.len(),
            1,
            "{:#?}",
            log.iter().map(|r| r.path_and_query()).collect::<Vec<_>>()
        );
        let bytes: usize = log.iter().map(|r| r.body.len()).sum();
        assert!(bytes < 20_000, "{bytes} bytes for a five-file push");

        let graph = s.db.load_graph(&repo.id, &pushed).await.unwrap().unwrap();
        let names: Vec<&str> = graph.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["load", "save"], "{}", s.label);
        // The previous commit's graph is gone with its snapshot.
        assert!(s.db.load_graph(&repo.id, &head).await.unwrap().is_none());

        // ... but kept in the history, whole, beside the new one, each
        // with its message, and the push's changes counted against it.
        let history = s.db.history(&repo.id).await.unwrap();
        let commits: Vec<&str> = history.iter().map(|c| c.commit_id.as_str()).collect();
        assert_eq!(commits, [pushed.as_str(), head.as_str()], "{}", s.label);
        assert_eq!(history[0].message.as_deref(), Some("change things"));
        assert!(history[0].author.is_some(), "{:?}", history[0]);
        assert_eq!(history[1].message.as_deref(), Some("first"));
        assert_eq!(history[0].changes.base.as_deref(), Some(head.as_str()));
        let then =
            s.db.history_graph(&repo.id, history[1].seq, None)
                .await
                .unwrap();
        assert_eq!(
            spicehub_parser::to_json(&then),
            spicehub_parser::to_json(&again)
        );
        let now =
            s.db.history_graph(&repo.id, history[0].seq, None)
                .await
                .unwrap();
        assert_eq!(
            spicehub_parser::to_json(&now),
            spicehub_parser::to_json(&graph)
        );
        let expected = spicehub_parser::diff::diff(&then, &now);
        assert!(!expected.is_empty());
        let counted: Vec<_> = history[0]
            .changes
            .registries
            .iter()
            .map(|r| (r.registry.clone(), r.counts.clone()))
            .collect();
        let diffed: Vec<_> = expected
            .registries
            .iter()
            .map(|r| (r.registry.clone(), r.counts()))
            .collect();
        assert_eq!(counted, diffed);
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn force_push_from_commit_and_reparse() {
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(
                ORG,
                PROJECT,
                "app",
                vec![
                    seed("one", vec![FileChange::put("a.py", "A = 1\n")]),
                    seed("two", vec![FileChange::put("b.py", "B = 2\n")]),
                ],
            )
        })
        .await;
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        let head = s.head("app");
        s.wait_synced(&repo.id, &head).await;

        // History rewritten: a new root commit replaces everything.
        let rewritten = s
            .emu
            .force_push(
                ORG,
                PROJECT,
                "app",
                "main",
                None,
                vec![FileChange::put("c.py", "C = 3\n")],
                "rewrite",
            )
            .expect("force push");
        let r = s.wait_synced(&repo.id, &rewritten).await;
        let note = r.last_sync_note.unwrap_or_default();
        assert!(note.contains("history was rewritten"), "{note}");
        let (_, files) = s.visible(&repo.id).await.unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["c.py"]);

        // From a commit hash: two more commits, then re-apply from the first.
        let c1 = s.commit("app", vec![FileChange::put("d.py", "D = 4\n")], "d");
        s.wait_synced(&repo.id, &c1).await;
        let c2 = s.commit("app", vec![FileChange::put("e.py", "E = 5\n")], "e");
        s.wait_synced(&repo.id, &c2).await;
        request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo.id,
            JobKind::FromCommit,
            Some(&c1),
        )
        .await
        .expect("request");
        let jobs = s.wait_jobs_done(&repo.id).await;
        let from = jobs.iter().find(|j| j.kind == JobKind::FromCommit).unwrap();
        assert_eq!(from.status, JobStatus::Succeeded, "{from:?}");
        let r = s.db.repository(&repo.id).await.unwrap().unwrap();
        assert!(r.last_sync_note.unwrap().starts_with("re-applied"));
        let (_, files) = s.visible(&repo.id).await.unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["c.py", "d.py", "e.py"]);

        // A commit that does not exist fails for good, with the reason; the
        // visible files stay.
        let bogus = "0123456789abcdef0123456789abcdef01234567";
        request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo.id,
            JobKind::FromCommit,
            Some(bogus),
        )
        .await
        .expect("request");
        let jobs = s.wait_jobs_done(&repo.id).await;
        let failed = jobs
            .iter()
            .find(|j| j.target_commit.as_deref() == Some(bogus))
            .unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert!(
            failed
                .last_error
                .as_deref()
                .unwrap()
                .contains("does not exist"),
            "{failed:?}"
        );
        assert_eq!(failed.attempts, 1, "not retried");
        assert_eq!(s.visible(&repo.id).await.unwrap().1.len(), 3);
        // A short hash is resolved among the branch's commits; one that
        // no commit has is refused before anything is queued.
        let before = s.wait_jobs_done(&repo.id).await.len();
        let unknown = request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo.id,
            JobKind::FromCommit,
            Some("0000000"),
        )
        .await
        .expect_err("no commit starts with 0000000");
        assert!(
            unknown.to_string().contains("starts with `0000000`"),
            "{unknown}"
        );
        assert_eq!(
            s.wait_jobs_done(&repo.id).await.len(),
            before,
            "nothing queued"
        );
        request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo.id,
            JobKind::FromCommit,
            Some(&c1[..9]),
        )
        .await
        .expect("short hash");
        let jobs = s.wait_jobs_done(&repo.id).await;
        assert!(
            jobs.iter()
                .filter(|j| j.target_commit.as_deref() == Some(c1.as_str()))
                .count()
                >= 2,
            "the short hash was resolved to the full one: {jobs:?}"
        );
        // Malformed hashes never reach the queue.
        assert!(request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo.id,
            JobKind::FromCommit,
            Some("main")
        )
        .await
        .is_err());

        // Re-parse: no network, same graph.
        s.emu.clear_request_log();
        let jobs = s.reparse(&repo.id).await;
        assert!(jobs
            .iter()
            .filter(|j| j.kind == JobKind::Reparse)
            .all(|j| j.status == JobStatus::Succeeded));
        assert!(
            s.requests().iter().all(|r| !r.path.contains("/git/")),
            "re-parse went to the network"
        );
        let r = s.db.repository(&repo.id).await.unwrap().unwrap();
        assert!(r.last_sync_note.unwrap().starts_with("re-parsed"));
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_quick_pushes_coalesce() {
    use ado_emulator::{Fault, FaultRule, FaultScope};
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(
                ORG,
                PROJECT,
                "app",
                vec![seed("one", vec![FileChange::put("a.py", "A = 0\n")])],
            )
        })
        .await;
        s.start_hub(&test_db);
        let repo = s.add("app").await;
        s.wait_synced(&repo.id, &s.head("app")).await;

        // Slow diffs, so pushes arrive while a sync runs.
        s.emu.add_fault(FaultRule::new(
            FaultScope::PathContains("/diffs/commits".into()),
            Fault::Delay { ms: 1000 },
        ));
        let mut last = String::new();
        for i in 1..=10 {
            last = s.commit(
                "app",
                vec![FileChange::put("a.py", format!("A = {i}\n"))],
                &format!("push {i}"),
            );
        }
        s.wait_synced(&repo.id, &last).await;
        let jobs = s.wait_jobs_done(&repo.id).await;
        let recent: Vec<_> = jobs
            .iter()
            .filter(|j| j.kind == JobKind::RecentChanges)
            .collect();
        assert!(
            (1..=4).contains(&recent.len()),
            "{}: 10 pushes made {} jobs: {recent:#?}",
            s.label,
            recent.len()
        );
        assert!(recent.iter().all(|j| j.status == JobStatus::Succeeded));
        let (_, files) = s.visible(&repo.id).await.unwrap();
        assert_eq!(text(&files, "a.py").as_deref(), Some("A = 10\n"));
        // Every delivery was recorded.
        let deliveries = s.db.recent_deliveries(50).await.unwrap();
        assert!(deliveries.len() >= 10, "{}", deliveries.len());
        s.emu.clear_faults();
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconcile_catches_a_missed_push_and_recreates_a_disabled_hook() {
    for test_db in TestDb::all().await {
        let mut s = Setup::new(&test_db, |c| {
            c.with_seeded_repo(
                ORG,
                PROJECT,
                "app",
                vec![seed("one", vec![FileChange::put("a.py", "A = 0\n")])],
            )
        })
        .await;
        s.env.retain(|(k, _)| *k != "SPICEHUB_RECONCILE_INTERVAL");
        s.env.push(("SPICEHUB_RECONCILE_INTERVAL", "2".into()));
        s.env
            .push(("SPICEHUB_PUBLIC_URL", "http://127.0.0.1:9/".into()));
        s.start_hub(&test_db);
        // No webhook at all: only reconcile can notice the push.
        s.emu.set_webhook(None);
        let repo = s.add("app").await;
        s.wait_synced(&repo.id, &s.head("app")).await;

        let public: url::Url = "http://127.0.0.1:9/".parse().unwrap();
        let key =
            spicehub_core::crypto::SecretKey::load_or_generate(&s.data.join("secret.key")).unwrap();
        let ensure = || hooks::create_webhook(&s.db, &s.clients, &key, &public, &repo.id);
        let (hook, outcome) = ensure().await.expect("create webhook");
        assert_eq!(outcome, hooks::HookOutcome::Created);
        // A second click checks the hub's subscription instead of adding one.
        let (again, outcome) = ensure().await.expect("check webhook");
        assert_eq!(outcome, hooks::HookOutcome::Kept);
        assert_eq!(again.devops_subscription_id, hook.devops_subscription_id);
        assert_eq!(s.emu.subscriptions().len(), 1);
        let sub = s
            .emu
            .subscriptions()
            .into_iter()
            .find(|x| x.id == hook.devops_subscription_id)
            .expect("subscription created in Azure DevOps");
        assert_eq!(
            sub.consumer_inputs.get("url").map(String::as_str),
            Some("http://127.0.0.1:9/gateway/public/sync")
        );
        assert_eq!(
            sub.consumer_inputs
                .get("basicAuthPassword")
                .map(String::as_str),
            Some(HOOK_PASSWORD)
        );
        assert!(s
            .emu
            .set_subscription_status(&sub.id, SubscriptionStatus::DisabledBySystem));

        let missed = s.commit("app", vec![FileChange::put("a.py", "A = 1\n")], "missed");
        s.wait_synced(&repo.id, &missed).await;

        let recreated = wait_for(Duration::from_secs(30), || async {
            let hooks = s.db.hook_subscriptions_of(&repo.id).await.unwrap();
            hooks.len() == 1 && hooks[0].recreated_count >= 1
        })
        .await;
        assert!(recreated, "{}: hook not re-created\n{}", s.label, s.logs());
        let hooks = s.db.hook_subscriptions_of(&repo.id).await.unwrap();
        let subs = s.emu.subscriptions();
        assert!(
            subs.iter().all(|x| x.id != sub.id),
            "the disabled one was deleted"
        );
        let new = subs
            .iter()
            .find(|x| x.id == hooks[0].devops_subscription_id)
            .unwrap();
        assert_eq!(new.status, SubscriptionStatus::Enabled);

        // Disabled by a person in Azure DevOps: the button re-enables it.
        assert!(s
            .emu
            .set_subscription_status(&new.id, SubscriptionStatus::DisabledByUser));
        let (same, outcome) = ensure().await.expect("re-enable webhook");
        assert_eq!(
            outcome,
            hooks::HookOutcome::Reenabled(
                spicehub_azure::models::SubscriptionStatus::DisabledByUser
            )
        );
        assert_eq!(same.devops_subscription_id, new.id);
        assert_eq!(same.status.as_deref(), Some("enabled"));
        // On probation: the same.
        assert!(s
            .emu
            .set_subscription_status(&new.id, SubscriptionStatus::OnProbation));
        let (_, outcome) = ensure().await.expect("re-enable webhook");
        assert_eq!(
            outcome,
            hooks::HookOutcome::Reenabled(spicehub_azure::models::SubscriptionStatus::OnProbation)
        );
        // Disabled by an inactive identity: replaced.
        assert!(s
            .emu
            .set_subscription_status(&new.id, SubscriptionStatus::DisabledByInactiveIdentity));
        let (replaced, outcome) = ensure().await.expect("replace webhook");
        assert_eq!(
            outcome,
            hooks::HookOutcome::Replaced(Some(
                spicehub_azure::models::SubscriptionStatus::DisabledByInactiveIdentity
            ))
        );
        assert_ne!(replaced.devops_subscription_id, new.id);
        let subs = s.emu.subscriptions();
        assert_eq!(subs.len(), 1, "the disabled one was deleted");
        assert_eq!(subs[0].id, replaced.devops_subscription_id);
        assert_eq!(subs[0].status, SubscriptionStatus::Enabled);

        // Deleted by a person in Azure DevOps: the button creates it again.
        assert!(s.emu.remove_subscription(&replaced.devops_subscription_id));
        let (again, outcome) = ensure().await.expect("re-create webhook");
        assert_eq!(outcome, hooks::HookOutcome::Replaced(None));
        let subs = s.emu.subscriptions();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].id, again.devops_subscription_id);
        assert_eq!(s.db.hook_subscriptions_of(&repo.id).await.unwrap().len(), 1);
        s.db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_secret_fails_with_the_diagnosis_and_keeps_nothing_half_done() {
    for test_db in TestDb::all().await {
        let mut s = Setup::with_secret(
            &test_db,
            |c| {
                c.with_seeded_repo(
                    ORG,
                    PROJECT,
                    "app",
                    vec![seed("one", vec![FileChange::put("a.py", "A = 0\n")])],
                )
            },
            "not-the-secret",
        )
        .await;
        s.start_hub(&test_db);
        // The repository row, as an admin would have added it before the secret was rotated.
        let org =
            s.db.ensure_organization(&s.provider_id, ORG, None)
                .await
                .unwrap();
        let repo_id = s.emu.repository_id(ORG, PROJECT, "app").unwrap();
        let project_id = s.emu.project_id(ORG, PROJECT).unwrap();
        s.db.create_repository(&spicehub_core::db::repositories::NewRepository {
            id: &repo_id,
            organization_id: &org.id,
            project_id: &project_id,
            project_name: PROJECT,
            name: "app",
            tracked_branch: "main",
            web_url: None,
        })
        .await
        .unwrap();
        request_sync(
            &s.db,
            &s.clients,
            &s.queue,
            &repo_id,
            JobKind::EntireRepository,
            None,
        )
        .await
        .unwrap();
        let jobs = s.wait_jobs_done(&repo_id).await;
        assert_eq!(jobs[0].status, JobStatus::Failed, "{jobs:?}");
        assert_eq!(jobs[0].attempts, 1, "a wrong secret is not retried");
        let r = s.db.repository(&repo_id).await.unwrap().unwrap();
        assert_eq!(r.state, RepoState::Error);
        let error = r.last_error.unwrap();
        assert!(error.to_lowercase().contains("secret"), "{error}");
        assert!(
            !error.contains("not-the-secret"),
            "the secret is never shown"
        );
        assert!(
            !s.logs().contains("not-the-secret"),
            "the secret is never logged"
        );
        assert!(s.visible(&repo_id).await.is_none());
        s.db.close().await;
    }
}
