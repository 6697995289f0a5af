// Shared fixtures for the integration tests: an emulator with a known world and
// clients configured for fast retries.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use ado_emulator::{
    self as emulator, AccessLevel, Emulator, EmulatorConfig, FileChange, SeedCommit,
};
use secrecy::SecretString;
use spicehub_azure::{
    AzureClient, ClientConfig, Credential, RetryPolicy, ServicePrincipal, TokenManager,
    TokenManagerConfig,
};

pub const TENANT: &str = "3f4e1a52-6c1d-4b8e-9a27-5d0c7e1b2a90";
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
pub const CLIENT: &str = "0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30";
pub const SECRET: &str = "Xq48Q~test.Spicehub_Secret.Value0";
pub const EXPIRED_SECRET: &str = "Zt73Q~expired.Spicehub_Old.Value1";
/// An app in the tenant whose service principal was never added to the organization.
pub const OUTSIDER: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const OUTSIDER_SECRET: &str = "Ou99Q~outsider.Secret.Value2";
/// Another tenant with its own organization.
pub const OTHER_TENANT: &str = "9d2c7b1e-3a4f-4e6d-8c5b-7a1f0e2d3c41";
pub const ORG: &str = "contoso";
pub const ORG_ID: &str = "b8a1f2c4-7e3d-4c59-8f6a-1d2e3c4b5a60";
/// Organization where CLIENT is only a Stakeholder (cannot read code).
pub const STAKEHOLDER_ORG: &str = "northwind";
/// Organization connected to OTHER_TENANT.
pub const FOREIGN_ORG: &str = "fabrikam";
pub const PAT: &str = "pat0123456789abcdefghijklmnopqrstuvwxyz0123456789ab";

/// Files of the seeded `app` repository.
pub fn app_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("README.md", "# app\n"),
        (
            "src/registry.py",
            "REGISTRY = {}\n\ndef register(name):\n    return name\n",
        ),
        (
            "src/pipelines/orders.py",
            "from registry import register\nregister('orders')\n",
        ),
        ("docs/space name.txt", "a file with a space in its path\n"),
    ]
}

pub fn world(dir: &Path) -> EmulatorConfig {
    let seed = SeedCommit {
        branch: None,
        from_branch: None,
        message: "initial".into(),
        author: None,
        date: None,
        changes: app_files()
            .into_iter()
            .map(|(p, c)| FileChange::put(p, c.as_bytes().to_vec()))
            .collect(),
        tags: Vec::new(),
    };
    let mut c = EmulatorConfig::new(dir.to_path_buf())
        .with_tenant(TENANT, &[TENANT_DOMAIN])
        .with_tenant(OTHER_TENANT, &["fabrikam.onmicrosoft.com"])
        .with_app(TENANT, CLIENT, "spicehub-sync")
        .with_secret(CLIENT, SECRET, None)
        .with_expired_secret(CLIENT, EXPIRED_SECRET)
        .with_app(TENANT, OUTSIDER, "not-added")
        .with_secret(OUTSIDER, OUTSIDER_SECRET, None)
        .with_org(ORG, ORG_ID, TENANT)
        .with_member(ORG, CLIENT, AccessLevel::Basic)
        .with_project(ORG, "Alpha")
        .with_seeded_repo(ORG, "Alpha", "app", vec![seed.clone()])
        .with_repo(ORG, "Alpha", "empty")
        .with_seeded_repo(ORG, "Alpha", "private", vec![seed.clone()])
        .with_repo_visible_to(ORG, "Alpha", "private", &[OUTSIDER])
        .with_project(ORG, "Beta")
        .with_seeded_repo(ORG, "Beta", "tools", vec![seed.clone()])
        .with_org(
            STAKEHOLDER_ORG,
            "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e85",
            TENANT,
        )
        .with_member(STAKEHOLDER_ORG, CLIENT, AccessLevel::Stakeholder)
        .with_project(STAKEHOLDER_ORG, "Gamma")
        .with_seeded_repo(STAKEHOLDER_ORG, "Gamma", "code", vec![seed])
        .with_org(
            FOREIGN_ORG,
            "e5f6a7b8-c9da-4ebf-8012-3c4d5e6f7aa7",
            OTHER_TENANT,
        );
    if let Some(o) = c.organizations.iter_mut().find(|o| o.name == ORG) {
        o.personal_access_tokens.push(PAT.to_string());
    }
    c
}

pub async fn start(config: EmulatorConfig) -> Emulator {
    let addr = "127.0.0.1:0"
        .parse()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    emulator::start(config, addr)
        .await
        .unwrap_or_else(|e| panic!("emulator start: {e}"))
}

pub fn token_config() -> TokenManagerConfig {
    TokenManagerConfig {
        retry: RetryPolicy::fast(),
        ..TokenManagerConfig::default()
    }
}

pub fn client_config(emu: &Emulator) -> ClientConfig {
    ClientConfig {
        devops_url: emu.devops_url(),
        retry: RetryPolicy::fast(),
        request_timeout: Duration::from_secs(20),
        ..ClientConfig::default()
    }
}

pub fn secret(s: &str) -> Credential {
    Credential::client_secret(SecretString::from(s.to_string())).unwrap_or_else(|e| panic!("{e}"))
}

pub fn principal(emu: &Emulator, tenant: &str, client: &str, cred: Credential) -> ServicePrincipal {
    ServicePrincipal::with_authority(&emu.authority_url(), tenant, client, cred)
        .unwrap_or_else(|e| panic!("{e}"))
}

pub struct Fixture {
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
    pub tokens: TokenManager,
    pub sp: ServicePrincipal,
    pub client: AzureClient,
}

pub async fn fixture_with(
    config: impl FnOnce(EmulatorConfig) -> EmulatorConfig,
    client_cfg: impl FnOnce(&mut ClientConfig),
) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let emu = start(config(world(&dir.path().join("data")))).await;
    let tokens = TokenManager::new(token_config()).unwrap_or_else(|e| panic!("{e}"));
    let sp = principal(&emu, TENANT, CLIENT, secret(SECRET));
    let mut cfg = client_config(&emu);
    client_cfg(&mut cfg);
    let client =
        AzureClient::new(cfg, tokens.clone(), sp.clone(), ORG).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        emu,
        dir,
        tokens,
        sp,
        client,
    }
}

pub async fn fixture() -> Fixture {
    fixture_with(|c| c, |_| {}).await
}

/// Creates an RSA key and a self-signed certificate with the `openssl` CLI.
/// Returns `(cert_pem, key_pem)`, or None when `openssl` is not installed.
pub fn openssl_cert(dir: &Path, cn: &str) -> Option<(String, String)> {
    let key = dir.join(format!("{cn}.key.pem"));
    let cert = dir.join(format!("{cn}.cert.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    Some((
        std::fs::read_to_string(&cert).ok()?,
        std::fs::read_to_string(&key).ok()?,
    ))
}
