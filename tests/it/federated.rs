//! Federated credentials across the HTTP boundary: the hub publishes its
//! issuer, the emulator (playing Entra ID) fetches the discovery document
//! and keys from the running hub and verifies the assertion the command
//! line signs with the hub's keys, and each way it can fail is diagnosed
//! by name.

use crate::common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const CLIENT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const AUDIENCE: &str = "api://AzureADTokenExchange";

/// The organization `acme` where the app `CLIENT` (no secret at all) is a
/// member with the Basic access level.
async fn emulator() -> (tempfile::TempDir, ado_emulator::Emulator) {
    use ado_emulator::{start, AccessLevel, EmulatorConfig};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EmulatorConfig::new(dir.path().to_path_buf())
        .with_tenant(TENANT, &["contoso.test"])
        .with_app(TENANT, CLIENT, "spicehub sync")
        .with_org("acme", "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e", TENANT)
        .with_member("acme", CLIENT, AccessLevel::Basic)
        .with_project("acme", "Alpha")
        .with_repo("acme", "Alpha", "app");
    let emu = start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator");
    (dir, emu)
}

/// Runs the command line with the hub's configuration in its environment.
async fn cli(args: Vec<String>, env: Vec<(String, String)>) -> (Option<i32>, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(BIN);
        cmd.args(&args)
            .env_remove("DATABASE_URL")
            .env_remove("SPICEHUB_PUBLIC_URL")
            .env_remove("SPICEHUB_SECRET_KEY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run spicehub");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("cli thread")
}

/// Plays the Azure admin in the portal: App registrations › the app ›
/// Federated credentials › Add credential.
async fn add_federated_credential(
    emu: &ado_emulator::Emulator,
    client_id: &str,
    name: &str,
    issuer: &str,
    subject: &str,
    audience: &str,
) {
    let response = client()
        .post(format!(
            "{}/_emulator/apps/{client_id}/federated-credentials",
            emu.base_url()
        ))
        .json(&json!({"name": name, "issuer": issuer, "subject": subject, "audiences": [audience]}))
        .send()
        .await
        .expect("emulator admin");
    assert_eq!(
        response.status().as_u16(),
        201,
        "{:?}",
        response.text().await
    );
}

async fn remove_federated_credential(emu: &ado_emulator::Emulator, name: &str) {
    let response = client()
        .delete(format!(
            "{}/_emulator/apps/{CLIENT}/federated-credentials/{name}",
            emu.base_url()
        ))
        .send()
        .await
        .expect("emulator admin");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_is_an_issuer_entra_accepts_and_every_mismatch_is_named() {
    let (_emu_dir, emu) = emulator().await;
    for db in TestDb::all().await {
        let (_d, dir) = data_dir();
        let dir = dir.to_str().expect("utf-8 dir").to_owned();
        let hub = Hub::start_with(HubOptions {
            db: &db,
            data_dir: std::path::Path::new(&dir),
            env: vec![("SPICEHUB_SECRET_KEY", KEY.to_owned())],
        });
        let issuer = hub.url.trim_end_matches('/').to_owned();
        let http = client();

        // Discovery as OpenID Connect Discovery and Entra ID read it.
        let discovery: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        assert_eq!(discovery["issuer"], issuer.as_str(), "{}", db.label);
        let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri").to_owned();
        assert!(discovery["id_token_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "RS256")));
        let jwks: Value = http
            .get(&jwks_uri)
            .send()
            .await
            .expect("jwks")
            .json()
            .await
            .expect("jwks JSON");
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 1, "{}: one key after the first start", db.label);
        assert_eq!(keys[0]["alg"], "RS256");
        assert_eq!(keys[0]["kty"], "RSA");
        // No private member leaks into the JWKS.
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(keys[0].get(private).is_none(), "{private} published");
        }

        let env = vec![
            ("DATABASE_URL".to_owned(), db.url.clone()),
            ("SPICEHUB_DATA_DIR".to_owned(), dir.clone()),
            ("SPICEHUB_SECRET_KEY".to_owned(), KEY.to_owned()),
            ("SPICEHUB_PUBLIC_URL".to_owned(), issuer.clone()),
        ];

        // `issuer check` reads it all through the public URL: everything
        // Entra needs is there, except that an http loopback URL is not
        // reachable from the internet (exit 2, said first).
        let (code, stdout, stderr) = cli(
            vec!["issuer".into(), "check".into(), "--json".into()],
            env.clone(),
        )
        .await;
        assert_eq!(code, Some(2), "{stdout}{stderr}");
        let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
        for finding in report["findings"].as_array().expect("findings") {
            let reachable = finding["check"] == "reachable_from_internet";
            assert_eq!(finding["ok"].as_bool(), Some(!reachable), "{finding}");
        }
        assert_eq!(report["kids"][0], keys[0]["kid"]);

        let check = |subject: &str| {
            let mut args: Vec<String> = [
                "azure",
                "check",
                "--tenant",
                TENANT,
                "--client-id",
                CLIENT,
                "--org",
                "acme",
                "--federated",
                "--subject",
                subject,
                "--authority-url",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.push(emu.authority_url());
            args.push("--devops-url".into());
            args.push(emu.devops_url());
            args.push("--json".into());
            cli(args, env.clone())
        };
        let diagnosis = |out: &str| -> String {
            let report: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
            report["diagnosis"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        };

        // No federated credential yet: Entra knows no record for the issuer.
        let (code, stdout, stderr) = check("spicehub:hub").await;
        assert_eq!(code, Some(2), "{stdout}{stderr}");
        assert_eq!(diagnosis(&stdout), "federated_issuer_mismatch", "{stdout}");

        // The admin enters the three values: a token, and the organization.
        add_federated_credential(&emu, CLIENT, "spicehub", &issuer, "spicehub:hub", AUDIENCE).await;
        let (code, stdout, stderr) = check("spicehub:hub").await;
        assert_eq!(code, Some(0), "{}: {stdout}{stderr}", db.label);
        let report: Value = serde_json::from_str(stdout.trim()).expect("JSON");
        assert_eq!(report["token"]["ok"], true);
        assert!(stderr.contains("subject spicehub:hub"), "{stderr}");

        // Another subject.
        let (code, stdout, _) =
            check("spicehub:provider:0d9b5a44-4b59-4c1d-9f3e-7a1b2c3d4e5f").await;
        assert_eq!(code, Some(2));
        assert_eq!(diagnosis(&stdout), "federated_subject_mismatch", "{stdout}");

        // A credential added a moment ago that Entra has not propagated.
        emu.add_fault(ado_emulator::FaultRule::new(
            ado_emulator::FaultScope::Token,
            ado_emulator::Fault::FicPropagation { secs: 3_600 },
        ));
        let (code, stdout, _) = check("spicehub:hub").await;
        emu.clear_faults();
        assert_eq!(code, Some(2));
        assert_eq!(diagnosis(&stdout), "federated_no_match", "{stdout}");

        // The wrong audience.
        remove_federated_credential(&emu, "spicehub").await;
        add_federated_credential(
            &emu,
            CLIENT,
            "china",
            &issuer,
            "spicehub:hub",
            "api://AzureADTokenExchangeChina",
        )
        .await;
        let (code, stdout, _) = check("spicehub:hub").await;
        assert_eq!(code, Some(2));
        assert_eq!(
            diagnosis(&stdout),
            "federated_audience_mismatch",
            "{stdout}"
        );
        remove_federated_credential(&emu, "china").await;

        // An issuer Entra cannot reach (nothing listens on port 9).
        let dead = "http://127.0.0.1:9";
        add_federated_credential(&emu, CLIENT, "dead", dead, "spicehub:hub", AUDIENCE).await;
        let mut dead_env = env.clone();
        dead_env.retain(|(k, _)| k != "SPICEHUB_PUBLIC_URL");
        dead_env.push(("SPICEHUB_PUBLIC_URL".into(), dead.into()));
        let mut args: Vec<String> = [
            "azure",
            "check",
            "--tenant",
            TENANT,
            "--client-id",
            CLIENT,
            "--org",
            "acme",
            "--federated",
            "--authority-url",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([
            emu.authority_url(),
            "--devops-url".into(),
            emu.devops_url(),
            "--json".into(),
        ]);
        let (code, stdout, _) = cli(args, dead_env).await;
        assert_eq!(code, Some(2));
        assert_eq!(diagnosis(&stdout), "issuer_unreachable", "{stdout}");
        remove_federated_credential(&emu, "dead").await;

        // The key material never reaches the logs.
        let logs = hub.logs();
        assert!(
            !logs.contains("BEGIN RSA PRIVATE KEY") && !logs.contains(KEY),
            "secret in logs"
        );
        hub.stop();
    }
}

/// A provider saved with a federated credential that Entra has not
/// propagated yet (AADSTS70021 for a while, as Microsoft documents): the
/// form's test says so, names the subject, and the hub tries again by
/// itself until the provider's health turns green, with nobody clicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_not_yet_propagated_turns_green_by_itself() {
    use ado_emulator::{demo, Fault, FaultRule, FaultScope};
    for db in TestDb::all().await {
        let (_emu_dir, emu) = demo_emulator().await;
        let (hub, admin, _data_guard) = admin_hub(&db, &emu, vec![]).await;
        let call = |path: &'static str, form: Vec<(&'static str, String)>| {
            let (admin, url) = (admin.clone(), hub.url.clone());
            async move {
                let r = admin
                    .post(format!("{url}{path}"))
                    .header("Origin", &url)
                    .form(&form)
                    .send()
                    .await
                    .expect("server function");
                let text = r.text().await.expect("body");
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text))
            }
        };

        // The admin added the federated credential a moment ago.
        let subject = format!("spicehub:provider:{}", uuid_like(db.label));
        let issuer = hub.url.trim_end_matches('/').to_owned();
        add_federated_credential(
            &emu,
            demo::CLIENT_ID,
            "spicehub",
            &issuer,
            &subject,
            AUDIENCE,
        )
        .await;
        emu.add_fault(FaultRule::new(
            FaultScope::Token,
            Fault::FicPropagation { secs: 8 },
        ));

        let mut form = vec![
            ("display_name", "Contoso".to_owned()),
            ("onboarding", "app_registration".to_owned()),
            ("tenant_id", demo::TENANT_ID.to_owned()),
            ("client_id", demo::CLIENT_ID.to_owned()),
            ("credential_kind", "federated".to_owned()),
            ("federated_subject", subject.clone()),
            ("organization", demo::ORG.to_owned()),
            ("webhook_username", "spicehub-contoso".to_owned()),
            (
                "webhook_password",
                "Hk7-federated-test-webhook-password-0123".to_owned(),
            ),
            ("intent", "save".to_owned()),
        ];
        let saved = call("/api/admin/save_provider", form.clone()).await;
        let id = saved["saved"]
            .as_str()
            .unwrap_or_else(|| panic!("saved: {saved}"))
            .to_owned();

        // Test connection on the saved form: not yet, and said so.
        form.retain(|(k, _)| *k != "intent" && *k != "webhook_password");
        form.push(("id", id.clone()));
        form.push(("intent", "test".to_owned()));
        let tested = call("/api/admin/save_provider", form).await;
        assert_eq!(
            tested["check"]["diagnosis"]["code"], "federated_no_match",
            "{tested}"
        );
        let hint = tested["check"]["diagnosis"]["hint"]
            .as_str()
            .unwrap_or_default();
        assert!(hint.contains("within a few minutes"), "{hint}");

        // Nobody clicks again: the hub's own retry (every 30 s) turns the
        // provider green once the credential is older than the delay.
        let started = std::time::Instant::now();
        let mut health = Value::Null;
        while started.elapsed() < std::time::Duration::from_secs(75) {
            let p = call("/api/admin/provider", vec![("id", id.clone())]).await;
            health = p["last_check"].clone();
            if health["ok"] == true {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        assert_eq!(health["ok"], true, "{}: {health}", db.label);
        assert_eq!(health["token_ok"], true);
        hub.stop();
    }
}

/// A fixed, valid UUID per database, so each run's subject is its own.
fn uuid_like(label: &str) -> &'static str {
    if label.contains("postgres") || label.contains("Postgres") {
        "5e1a7c2d-2b3f-4d6e-8a9b-0c1d2e3f4a5b"
    } else {
        "7b2c4d6e-8f90-4a1b-9c2d-3e4f5a6b7c8d"
    }
}

/// The demo organization (its app, and the hub's multi-tenant app
/// consented in its tenant).
async fn demo_emulator() -> (tempfile::TempDir, ado_emulator::Emulator) {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu = ado_emulator::start(
        ado_emulator::EmulatorConfig::demo(dir.path().to_path_buf()),
        "127.0.0.1:0".parse().expect("addr"),
    )
    .await
    .expect("emulator");
    (dir, emu)
}

const ADMIN: &str = "admin@example.com";
const ADMIN_PW: &str = "admin-password-123";

/// A hub on `emu` with a signed-in admin, and `extra` in its environment.
async fn admin_hub(
    db: &TestDb,
    emu: &ado_emulator::Emulator,
    extra: Vec<(&'static str, String)>,
) -> (Hub, reqwest::Client, tempfile::TempDir) {
    let mut env = vec![
        ("SPICEHUB_AUTHORITY_URL", emu.authority_url()),
        ("SPICEHUB_DEVOPS_URL", emu.devops_url()),
        ("SPICEHUB_RECONCILE_INTERVAL", "0".into()),
    ];
    env.extend(extra);
    let (data_guard, data) = data_dir();
    let out = create_user(db, &data, ADMIN, "admin", ADMIN_PW);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hub = Hub::start_with(HubOptions {
        db,
        data_dir: &data,
        env,
    });
    let admin = client();
    let r = sign_in(&admin, &hub, ADMIN, ADMIN_PW).await;
    assert!(r.status().is_redirection(), "sign-in: {}", r.status());
    (hub, admin, data_guard)
}

/// The hub's own multi-tenant app on a federated credential trusting the
/// hub's issuer (`SPICEHUB_HUB_CREDENTIAL=federated`): a customer who
/// consented is connected, and no secret exists anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_own_app_needs_no_secret() {
    use ado_emulator::demo;
    for db in TestDb::all().await {
        let (_emu_dir, emu) = demo_emulator().await;
        let (hub, admin, _data) = admin_hub(
            &db,
            &emu,
            vec![
                ("SPICEHUB_HUB_CLIENT_ID", demo::HUB_CLIENT_ID.into()),
                ("SPICEHUB_HUB_CREDENTIAL", "federated".into()),
            ],
        )
        .await;
        let test = || async {
            let r = admin
                .post(format!("{}/api/admin/save_provider", hub.url))
                .header("Origin", &hub.url)
                .form(&[
                    ("display_name", "Contoso (hub app)"),
                    ("onboarding", "hub_app"),
                    ("tenant_id", demo::TENANT_ID),
                    ("organization", demo::ORG),
                    ("webhook_username", "spicehub-hubapp"),
                    (
                        "webhook_password",
                        "Hk7-federated-test-webhook-password-0123",
                    ),
                    ("intent", "test"),
                ])
                .send()
                .await
                .expect("server function");
            r.json::<Value>().await.expect("JSON")
        };
        // Until the hub's app trusts the hub's issuer, Entra says so.
        let v = test().await;
        assert_eq!(
            v["check"]["diagnosis"]["code"], "federated_issuer_mismatch",
            "{}: {v}",
            db.label
        );
        let issuer = hub.url.trim_end_matches('/').to_owned();
        add_federated_credential(
            &emu,
            demo::HUB_CLIENT_ID,
            "spicehub-hub",
            &issuer,
            "spicehub:hub",
            AUDIENCE,
        )
        .await;
        let v = test().await;
        assert_eq!(v["check"]["ok"], true, "{}: {v}", db.label);
        assert_eq!(v["check"]["token_ok"], true);
        // Every token the hub obtained came with an assertion, none with a secret.
        let tokens = emu.token_request_log();
        assert!(!tokens.is_empty());
        for t in &tokens {
            assert!(
                !t.basic_auth && !t.fields.contains_key("client_secret"),
                "{:?}",
                t.fields
            );
            assert_eq!(
                t.fields.get("client_assertion_type").map(String::as_str),
                Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            );
        }
        hub.stop();
    }
}
