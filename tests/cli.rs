//! The command line's own checks: bad configuration is refused with a
//! message, and accounts are created without passwords on the command line.
#![cfg(feature = "ssr")]

mod common;

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
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/data_pipeline");
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
