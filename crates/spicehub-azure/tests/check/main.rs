// `spicehub azure check` end to end against the emulator: success and misconfigurations.
//
// One `#[test]` in its own binary on purpose: the command reads secrets from
// environment variables, and `set_var` is only sound while no other thread runs,
// so the variables are set before the runtime (and any other thread) exists.

// The helpers of the azure suite; this test is a binary of its own because
// it sets process environment variables.
#[path = "../it/common.rs"]
mod common;

use std::collections::BTreeSet;

use ado_emulator::{Emulator, Fault, FaultRule, FaultScope};
use common::*;
use serde_json::Value;
use spicehub_azure::check::{run_check_with, CheckArgs};

const ENV_SECRET: &str = "SPICEHUB_TEST_CHECK_SECRET";
const ENV_SECRET_ID: &str = "SPICEHUB_TEST_CHECK_SECRET_ID";
const ENV_EXPIRED: &str = "SPICEHUB_TEST_CHECK_EXPIRED";
const ENV_OUTSIDER: &str = "SPICEHUB_TEST_CHECK_OUTSIDER";
const ENV_PAT: &str = "SPICEHUB_TEST_CHECK_PAT";
const ENV_UNSET: &str = "SPICEHUB_TEST_CHECK_NOT_SET_0815";

fn args(emu: &Emulator, tenant: &str, client: &str, org: &str, secret_env: &str) -> CheckArgs {
    CheckArgs {
        tenant: tenant.into(),
        client_id: client.into(),
        org: org.into(),
        client_secret_env: Some(secret_env.into()),
        certificate: None,
        private_key: None,
        pat_env: None,
        federated: false,
        subject: None,
        authority_url: emu.authority_url(),
        devops_url: emu.devops_url(),
        json: true,
    }
}

async fn run(emu: &Emulator, a: &CheckArgs) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_check_with(a, token_config(), client_config(emu), &mut out, &mut err).await;
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Checks the exact JSON shape and returns the parsed value.
fn parse_report(out: &str) -> Value {
    let v: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(keys(&v), set(&["token", "diagnosis", "projects"]), "{out}");
    assert_eq!(keys(&v["token"]), set(&["ok", "expires_in"]), "{out}");
    assert!(
        v["token"]["ok"].is_boolean() && v["token"]["expires_in"].is_u64(),
        "{out}"
    );
    match &v["diagnosis"] {
        Value::Null => {}
        d => {
            assert_eq!(keys(d), set(&["code", "title", "hint"]), "{out}");
            assert!(d["hint"].as_str().is_some_and(|h| !h.is_empty()), "{out}");
        }
    }
    for p in v["projects"]
        .as_array()
        .unwrap_or_else(|| panic!("projects array: {out}"))
    {
        assert_eq!(keys(p), set(&["id", "name", "repositories"]), "{out}");
        for r in p["repositories"]
            .as_array()
            .unwrap_or_else(|| panic!("repositories array: {out}"))
        {
            assert_eq!(
                keys(r),
                set(&["id", "name", "default_branch", "size", "is_disabled"]),
                "{out}"
            );
        }
    }
    v
}

#[test]
fn azure_check_success_and_misconfigurations() {
    // Single-threaded at this point (one test in this binary, no runtime yet),
    // so changing the environment cannot race another thread.
    {
        std::env::set_var(ENV_SECRET, SECRET);
        // The secret's ID (a GUID shown next to the value in the portal): the classic mistake.
        std::env::set_var(ENV_SECRET_ID, "7d1e5b2c-9a4f-4c3e-8b6d-2f0a1c3e5d70");
        std::env::set_var(ENV_EXPIRED, EXPIRED_SECRET);
        std::env::set_var(ENV_OUTSIDER, OUTSIDER_SECRET);
        std::env::set_var(ENV_PAT, PAT);
        std::env::remove_var(ENV_UNSET);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    rt.block_on(scenarios());
}

async fn scenarios() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let emu = start(world(&dir.path().join("data"))).await;

    // ---- success
    let (code, out, err) = run(&emu, &args(&emu, TENANT, CLIENT, ORG, ENV_SECRET)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let v = parse_report(&out);
    assert_eq!(v["token"]["ok"], true);
    assert!(
        v["token"]["expires_in"]
            .as_u64()
            .is_some_and(|n| n > 3000 && n <= 3599),
        "{out}"
    );
    assert!(v["diagnosis"].is_null());
    let projects = v["projects"].as_array().cloned().unwrap_or_default();
    let names: BTreeSet<String> = projects
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, set(&["Alpha", "Beta"]));
    let alpha = projects
        .iter()
        .find(|p| p["name"] == "Alpha")
        .cloned()
        .unwrap_or_default();
    let repos: BTreeSet<String> = alpha["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(repos, set(&["app", "empty"]));
    let app = alpha["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "app")
        .cloned()
        .unwrap_or_default();
    assert_eq!(app["default_branch"], "refs/heads/main");
    assert_eq!(app["is_disabled"], false);
    assert_eq!(
        app["id"].as_str(),
        emu.repository_id(ORG, "Alpha", "app").as_deref()
    );
    let empty = alpha["repositories"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "empty")
        .cloned()
        .unwrap_or_default();
    assert!(
        empty["default_branch"].is_null(),
        "empty repository: {empty}"
    );

    // ---- misconfigurations
    let unknown_tenant = "11111111-2222-4333-8444-555555555555";
    let wrong_client = "22222222-3333-4444-8555-666666666666";
    let cases: Vec<(&str, CheckArgs, &str)> = vec![
        (
            "unknown tenant",
            args(&emu, unknown_tenant, CLIENT, ORG, ENV_SECRET),
            "unknown_tenant",
        ),
        (
            "wrong client id",
            args(&emu, TENANT, wrong_client, ORG, ENV_SECRET),
            "unknown_client_id",
        ),
        (
            "secret ID instead of value",
            args(&emu, TENANT, CLIENT, ORG, ENV_SECRET_ID),
            "wrong_client_secret",
        ),
        (
            "expired secret",
            args(&emu, TENANT, CLIENT, ORG, ENV_EXPIRED),
            "expired_client_secret",
        ),
        (
            "SP not in the organization",
            args(&emu, TENANT, OUTSIDER, ORG, ENV_OUTSIDER),
            "service_principal_not_in_organization",
        ),
        (
            "Stakeholder: no repository access",
            args(&emu, TENANT, CLIENT, STAKEHOLDER_ORG, ENV_SECRET),
            "no_repositories_visible",
        ),
        (
            "unknown organization",
            args(&emu, TENANT, CLIENT, "no-such-org", ENV_SECRET),
            "organization_not_found",
        ),
        (
            "organization in another tenant",
            args(&emu, TENANT, CLIENT, FOREIGN_ORG, ENV_SECRET),
            "not_authorized",
        ),
        (
            "malformed tenant",
            args(&emu, "not a tenant", CLIENT, ORG, ENV_SECRET),
            "malformed_tenant",
        ),
    ];
    for (what, a, expected) in &cases {
        let (code, out, err) = run(&emu, a).await;
        assert_eq!(code, 2, "{what}: {out}\n{err}");
        let v = parse_report(&out);
        assert_eq!(v["diagnosis"]["code"], *expected, "{what}: {out}");
    }
    // Token failures report ok=false; DevOps failures report ok=true.
    let (_, out, _) = run(&emu, &cases[2].1).await;
    assert_eq!(parse_report(&out)["token"]["ok"], false);
    assert!(out.contains("secret ID instead of its value"), "{out}");
    let (_, out, _) = run(&emu, &cases[4].1).await;
    assert_eq!(parse_report(&out)["token"]["ok"], true);

    // ---- 203 sign-in page instead of JSON
    emu.add_fault(FaultRule::new(FaultScope::DevOps, Fault::SignInPage203));
    let (code, out, _) = run(&emu, &args(&emu, TENANT, CLIENT, ORG, ENV_SECRET)).await;
    emu.clear_faults();
    assert_eq!(code, 2);
    assert_eq!(
        parse_report(&out)["diagnosis"]["code"],
        "sign_in_page",
        "{out}"
    );

    // ---- text output carries the field and the fix
    let mut text = args(&emu, TENANT, CLIENT, ORG, ENV_EXPIRED);
    text.json = false;
    let (code, out, _) = run(&emu, &text).await;
    assert_eq!(code, 2);
    assert!(
        out.contains("[expired_client_secret]")
            && out.contains("Field: secret")
            && out.contains("Fix: "),
        "{out}"
    );
    assert!(
        !out.contains(EXPIRED_SECRET),
        "the secret must never be printed: {out}"
    );
    let mut text = args(&emu, TENANT, CLIENT, ORG, ENV_SECRET);
    text.json = false;
    let (code, out, _) = run(&emu, &text).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Token: OK") && out.contains("app") && out.contains("All good."),
        "{out}"
    );
    assert!(!out.contains(SECRET));

    // ---- certificate from files
    if let Some((cert, key)) = openssl_cert(dir.path(), "check-cert") {
        // Register it on a fresh emulator whose app knows this certificate.
        let cert_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let emu2 =
            start(world(&cert_dir.path().join("data")).with_certificate(CLIENT, &cert)).await;
        let cert_path = dir.path().join("check-cert.cert.pem");
        let key_path = dir.path().join("check-cert.key.pem");
        assert!(key.contains("PRIVATE KEY"));
        let mut a = args(&emu2, TENANT, CLIENT, ORG, ENV_SECRET);
        a.client_secret_env = None;
        a.certificate = Some(cert_path.clone());
        a.private_key = Some(key_path.clone());
        let (code, out, err) = run(&emu2, &a).await;
        assert_eq!(code, 0, "{out}\n{err}");
        // On the first emulator the certificate is unknown.
        let mut a = args(&emu, TENANT, CLIENT, ORG, ENV_SECRET);
        a.client_secret_env = None;
        a.certificate = Some(cert_path);
        a.private_key = Some(key_path);
        let (code, out, _) = run(&emu, &a).await;
        assert_eq!(code, 2);
        assert_eq!(
            parse_report(&out)["diagnosis"]["code"],
            "certificate_rejected",
            "{out}"
        );
    } else {
        panic!("the openssl CLI is required for this test");
    }

    // ---- legacy PAT: works, flagged as deprecated
    let mut a = args(&emu, TENANT, CLIENT, ORG, ENV_SECRET);
    a.client_secret_env = None;
    a.pat_env = Some(ENV_PAT.into());
    let (code, out, err) = run(&emu, &a).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("deprecated"), "{err}");
    assert!(!out.contains(PAT) && !err.contains(PAT));

    // ---- usage errors
    let (code, out, err) = run(&emu, &args(&emu, TENANT, CLIENT, ORG, ENV_UNSET)).await;
    assert_eq!(code, 1);
    assert!(out.is_empty() && err.contains(ENV_UNSET), "{err}");
    let mut a = args(&emu, TENANT, CLIENT, ORG, ENV_SECRET);
    a.authority_url = "not a url".into();
    assert_eq!(run(&emu, &a).await.0, 1);
}
