//! The command line's own checks: bad configuration is refused with a
//! message, and accounts are created without passwords on the command line.

use crate::common;

use std::process::Command;

use common::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("SPICEHUB_PUBLIC_URL")
        .env_remove("SPICEHUB_SECRET_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run spicehub")
}

const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const CLIENT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const SECRET: &str = "good~secret.Value-0123456789";

/// The organization `acme`, where the app `CLIENT` (secret `SECRET`) is a
/// member, with these projects; the first has a repository `app`.
async fn acme_emulator(projects: &[&str]) -> (tempfile::TempDir, ado_emulator::Emulator) {
    use ado_emulator::{start, AccessLevel, EmulatorConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EmulatorConfig::new(dir.path().to_path_buf())
        .with_tenant(TENANT, &["contoso.test"])
        .with_app(TENANT, CLIENT, "spicehub sync")
        .with_secret(CLIENT, SECRET, None)
        .with_org("acme", "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e", TENANT)
        .with_member("acme", CLIENT, AccessLevel::Basic);
    for p in projects {
        config = config.with_project("acme", p);
    }
    let config = config.with_repo("acme", projects[0], "app");
    let emu = start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("emulator");
    (dir, emu)
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    let (_d, dir) = data_dir();
    let dir = dir.to_str().unwrap();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("SPICEHUB_PUBLIC_URL", "https://hub.example.com")],
            "SPICEHUB_SECRET_KEY is required",
        ),
        (&[("SPICEHUB_SECRET_KEY", "c2hvcnQ=")], "32 bytes"),
        (&[("DATABASE_URL", "mysql://x")], "unsupported database URL"),
        (&[("SPICEHUB_BIND", "nonsense")], "is not an address"),
    ];
    for (env, expected) in cases {
        let mut env = env.to_vec();
        env.push(("SPICEHUB_DATA_DIR", dir));
        let out = run(&["serve"], &env);
        assert_eq!(out.status.code(), Some(1), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{env:?}: {err}");
        // A refused secret is not echoed back.
        assert!(!err.contains("c2hvcnQ="));
    }
}

#[tokio::test]
async fn admin_create_reads_the_password_from_stdin() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let out = create_user(
            &db,
            &dir,
            "Ops@Example.com",
            "admin",
            "a-long-enough-password",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("created ops@example.com (admin)"));

        let again = create_user(
            &db,
            &dir,
            "ops@example.com",
            "viewer",
            "a-long-enough-password",
        );
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

        let short = create_user(&db, &dir, "x@example.com", "viewer", "short");
        assert!(!short.status.success());
        assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));

        let migrate = run(&["migrate"], &[("DATABASE_URL", &db.url)]);
        assert!(
            migrate.status.success(),
            "{}",
            String::from_utf8_lossy(&migrate.stderr)
        );
    }
}

#[test]
fn parse_prints_the_registries_or_says_why_it_cannot() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/spicehub-parser/tests/fixtures/data_pipeline"
    );
    let first = run(&["parse", fixture], &[]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&first.stdout).expect("JSON on stdout");
    assert!(!doc["registries"].as_array().expect("registries").is_empty());
    // Deterministic: the same tree gives the same bytes.
    assert_eq!(run(&["parse", fixture], &[]).stdout, first.stdout);

    let dot = run(&["parse", fixture, "--format", "dot"], &[]);
    assert_eq!(dot.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&dot.stdout).contains("subgraph \"cluster_"));

    let missing = run(&["parse", "/no/such/checkout"], &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /no/such/checkout"));
}

/// `spicehub diff` exits as diff(1) does, so a pipeline can act on it: 0
/// when no registry changed, 1 when some did, 2 when it cannot compare
/// (with the reason on stderr and nothing on stdout).
#[test]
fn diff_compares_two_versions_and_exits_as_diff_does() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/spicehub-parser/tests/fixtures"
    );
    let old = format!("{fixtures}/diff_old");
    let new = format!("{fixtures}/diff_new");
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    let json = run(&["diff", &old, &new, "--format", "json"], &[]);
    assert_eq!(json.status.code(), Some(1), "{}", stderr(&json));
    let doc: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["old"], old.as_str());
    assert_eq!(doc["new"], new.as_str());
    assert_eq!(doc["changed"], true);
    let registries = doc["registries"].as_array().expect("registries");
    assert_eq!(registries.len(), 1, "{doc}");
    let pipelines = &registries[0];
    assert_eq!(pipelines["registry"], "shop.registry.pipelines");
    assert_eq!(pipelines["entries_added"][0]["name"], "fetch_rates");
    assert_eq!(pipelines["entries_removed"][0]["name"], "old_report");
    assert_eq!(pipelines["counts"]["entries_changed"], 2);
    // Deterministic: the same trees give the same bytes.
    assert_eq!(
        run(&["diff", &old, &new, "--format", "json"], &[]).stdout,
        json.stdout
    );

    let text = run(&["diff", &old, &new], &[]);
    assert_eq!(text.status.code(), Some(1), "{}", stderr(&text));
    let printed = String::from_utf8_lossy(&text.stdout);
    assert!(
        printed.starts_with("registry shop.registry.pipelines (changed): ")
            && printed.contains("\n  + entry fetch_rates (function, shop/rates.py:")
            && printed.contains("\n  ~ entry load: doc\n"),
        "{printed}"
    );

    let same = run(&["diff", &old, &old], &[]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert_eq!(
        String::from_utf8_lossy(&same.stdout),
        "no registry changed\n"
    );

    // One side from `spicehub parse`: the same version as its tree.
    let dir = tempfile::tempdir().expect("tempdir");
    let parsed = dir.path().join("old.json");
    let parsed = parsed.to_str().expect("UTF-8 temporary path");
    let parse = run(&["parse", &old, "--output", parsed], &[]);
    assert_eq!(parse.status.code(), Some(0), "{}", stderr(&parse));
    let from_json = run(&["diff", parsed, &old], &[]);
    assert_eq!(from_json.status.code(), Some(0), "{}", stderr(&from_json));
    assert_eq!(
        String::from_utf8_lossy(&from_json.stdout),
        "no registry changed\n"
    );
    let against_new = run(&["diff", parsed, &new, "--format", "json"], &[]);
    assert_eq!(
        against_new.status.code(),
        Some(1),
        "{}",
        stderr(&against_new)
    );
    let doc_from_json: serde_json::Value =
        serde_json::from_slice(&against_new.stdout).expect("JSON");
    assert_eq!(doc_from_json["registries"], doc["registries"]);

    // --output: the document in the file, nothing on stdout, same exit code.
    let written = dir.path().join("diff.txt");
    let written = written.to_str().expect("UTF-8 temporary path");
    let to_file = run(&["diff", &old, &new, "--output", written], &[]);
    assert_eq!(to_file.status.code(), Some(1), "{}", stderr(&to_file));
    assert!(to_file.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(written).expect("diff written"),
        printed
    );

    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a graph\n").expect("write notes");
    let notes = notes.to_str().expect("UTF-8 temporary path");
    for (args, named) in [
        (
            ["diff", "/no/such/checkout", old.as_str()],
            "/no/such/checkout",
        ),
        (
            ["diff", old.as_str(), "/no/such/checkout"],
            "/no/such/checkout",
        ),
        (["diff", notes, old.as_str()], notes),
    ] {
        let failed = run(&args, &[]);
        let err = stderr(&failed);
        assert_eq!(failed.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(failed.stdout.is_empty(), "{args:?}: stdout not empty");
    }
}

/// `provider add` then `provider check` against the emulator: all well
/// (exit 0), then a provider whose secret is wrong (exit 2 with the
/// diagnosis, the secret not echoed), then a name that matches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_check_tests_the_saved_connection_and_says_what_is_wrong() {
    const WRONG: &str = "wrong~secret.Value-9876543210";
    let (_emu_dir, emu) = acme_emulator(&["Alpha"]).await;
    let (authority, devops) = (emu.authority_url(), emu.devops_url());
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let dir = dir.to_str().unwrap().to_owned();
        let env = [
            ("DATABASE_URL", db.url.as_str()),
            ("SPICEHUB_DATA_DIR", dir.as_str()),
            ("SPICEHUB_AUTHORITY_URL", authority.as_str()),
            ("SPICEHUB_DEVOPS_URL", devops.as_str()),
        ];
        let add = |name: &str, secret: &str| {
            let mut cmd = Command::new(BIN);
            cmd.args(["provider", "add", "--name", name, "--tenant", TENANT])
                .args(["--client-id", CLIENT, "--organization", "acme"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut child = cmd.spawn().expect("spawn provider add");
            let mut stdin = child.stdin.take().expect("stdin");
            std::io::Write::write_all(&mut stdin, format!("{secret}\n").as_bytes())
                .expect("write secret");
            drop(stdin);
            let out = child.wait_with_output().expect("provider add");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        add("Contoso", SECRET);
        add("Broken", WRONG);

        let ok = run(
            &["provider", "check", "Contoso", "--organization", "acme"],
            &env,
        );
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert_eq!(
            ok.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(stdout.contains("token: obtained"), "{stdout}");
        assert!(
            stdout.contains("OK: 1 projects, 1 repositories visible"),
            "{stdout}"
        );

        let bad = run(
            &["provider", "check", "Broken", "--organization", "acme"],
            &env,
        );
        let stdout = String::from_utf8_lossy(&bad.stdout);
        assert_eq!(
            bad.status.code(),
            Some(2),
            "{stdout}{}",
            String::from_utf8_lossy(&bad.stderr)
        );
        assert!(
            stdout.contains("FAILED: ") && stdout.contains("what to do: "),
            "{stdout}"
        );
        assert!(stdout.contains("token: not obtained"), "{stdout}");
        let everything = format!("{stdout}{}", String::from_utf8_lossy(&bad.stderr));
        assert!(!everything.contains(WRONG), "the secret was echoed");

        // The outcome is the provider's health, as on the Providers page.
        let handle = open_db(&db).await;
        let mut health: Vec<_> = handle
            .providers()
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.display_name, p.last_check_ok))
            .collect();
        health.sort();
        assert_eq!(
            health,
            [
                ("Broken".to_owned(), Some(false)),
                ("Contoso".to_owned(), Some(true))
            ]
        );
        handle.close().await;
        let unknown = run(&["provider", "check", "Nobody"], &env);
        assert_eq!(unknown.status.code(), Some(1));
        assert!(!String::from_utf8_lossy(&unknown.stderr).is_empty());
    }
}

/// Scripts parse what the commands print: standard output carries only the
/// document, and every log line (here at `debug`, with a retried 503) goes
/// to standard error. It also guards against the check holding the stderr
/// lock while its worker tasks log (that deadlocked `azure check`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_readable_output_stays_parseable_while_logging_at_debug() {
    use ado_emulator::{Fault, FaultRule, FaultScope};
    let (_emu_dir, emu) = acme_emulator(&["Alpha", "Beta"]).await;
    // One failure the client retries, so there is a retry to log; and two
    // projects, whose repositories are listed (and logged) on other threads.
    emu.add_fault(FaultRule::once(
        FaultScope::DevOps,
        Fault::ServerError { status: 503 },
    ));
    let debug = [("RUST_LOG", "debug"), ("SPICEHUB_TEST_CLI_SECRET", SECRET)];
    let (authority, devops) = (emu.authority_url(), emu.devops_url());
    let check = tokio::task::spawn_blocking(move || {
        run(
            &[
                "azure",
                "check",
                "--tenant",
                TENANT,
                "--client-id",
                CLIENT,
                "--org",
                "acme",
                "--client-secret-env",
                "SPICEHUB_TEST_CLI_SECRET",
                "--authority-url",
                &authority,
                "--devops-url",
                &devops,
                "--json",
            ],
            &debug,
        )
    })
    .await
    .expect("azure check");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&check.stdout)
        )
    });
    assert_eq!(report["token"]["ok"], true, "{report}");
    assert!(
        stderr.contains("DEBUG") && stderr.contains("retrying"),
        "the logs (and the retried 503) belong on stderr: {stderr}"
    );
    assert!(!stderr.contains(SECRET), "the secret was logged");

    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/spicehub-parser/tests/fixtures/data_pipeline"
    );
    let parsed = run(&["parse", fixture], &debug);
    assert_eq!(parsed.status.code(), Some(0));
    let doc: serde_json::Value =
        serde_json::from_slice(&parsed.stdout).expect("parse prints one JSON document");
    assert!(doc["registries"].is_array());
    let dot = run(&["parse", fixture, "--format", "dot"], &debug);
    let text = String::from_utf8_lossy(&dot.stdout);
    assert!(
        text.trim_start().starts_with("digraph") && text.trim_end().ends_with('}'),
        "DOT only on stdout: {text}"
    );
}

/// `provider add` validates exactly as the admin page's form: each refused
/// field is named by its flag, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_add_is_validated_as_the_admin_form_is() {
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let dir = dir.to_str().unwrap().to_owned();
        let env = [
            ("DATABASE_URL", db.url.as_str()),
            ("SPICEHUB_DATA_DIR", dir.as_str()),
        ];
        let mut cmd = Command::new(BIN);
        cmd.args(["provider", "add", "--name", "Contoso", "--tenant", "common"])
            .args(["--client-id", "not-a-guid", "--organization", "two words"])
            .env_remove("DATABASE_URL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn provider add");
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, b"some~secret.Value-0123456789\n").expect("secret");
        drop(stdin);
        let out = child.wait_with_output().expect("provider add");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        for flag in ["--tenant:", "--client-id:", "--organization:"] {
            assert!(stderr.contains(flag), "{flag} not named: {stderr}");
        }
        assert!(!stderr.contains("some~secret"), "the secret was echoed");
        let list = run(&["provider", "list"], &env);
        assert!(list.status.success());
        assert!(list.stdout.is_empty(), "a refused provider was stored");
    }
}
