// Shared fixtures of the emulator's integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ado_emulator::{
    start, testkit, AccessLevel, Emulator, EmulatorConfig, FileChange, SeedCommit, Signature,
};
use parking_lot::Mutex;
use serde_json::Value;
use tempfile::TempDir;

pub const TENANT: &str = "11111111-2222-4333-8444-555555555555";
pub const DOMAIN: &str = "contoso.test";
pub const OTHER_TENANT: &str = "99999999-8888-4777-8666-555555555555";
pub const CLIENT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
pub const SECRET: &str = "good~secret.value";
pub const EXPIRED: &str = "old~secret.value";
pub const CERT_CLIENT: &str = "cccccccc-dddd-4eee-8fff-000000000000";
pub const OTHER_CLIENT: &str = "12121212-3434-4565-8787-909090909090";
pub const OTHER_SECRET: &str = "other~secret";
pub const STAKE_CLIENT: &str = "54545454-6767-4898-8a0a-bcbcbcbcbcbc";
pub const STAKE_SECRET: &str = "stake~secret";
pub const ORG: &str = "acme";
pub const ORG_ID: &str = "0a0a0a0a-1b1b-4c2c-8d3d-4e4e4e4e4e4e";
pub const SCOPE: &str = "499b84ac-1321-427f-aa17-267ca6975798/.default";

pub fn seed(message: &str, changes: Vec<FileChange>) -> SeedCommit {
    SeedCommit {
        branch: None,
        from_branch: None,
        message: message.into(),
        author: Some(Signature {
            name: "Test Author".into(),
            email: "author@contoso.test".into(),
        }),
        date: None,
        changes,
        tags: Vec::new(),
    }
}

/// A small world: tenant + domain, apps (secret, expired secret, certificate, other tenant, stakeholder),
/// organization `acme` with project `Alpha` (repo `app` with history, repo `empty`, repo `old` disabled,
/// repo `secret` visible to nobody) and project `Beta` (repo `lib`), org `other` in another tenant, org `nobody`
/// without members.
pub fn config(dir: &std::path::Path) -> EmulatorConfig {
    let app_history = vec![
        seed(
            "first",
            vec![
                FileChange::put("README.md", "v1\n"),
                FileChange::put("src/a.py", "A = 1\n"),
                FileChange::put("src/b.py", "B = 1\n"),
                FileChange::put("src/gone.py", "GONE = 1\n"),
            ],
        ),
        seed(
            "second",
            vec![
                FileChange::put("README.md", "v2\n"),
                FileChange::put("src/new.py", "NEW = 2\n"),
                FileChange::delete("src/gone.py"),
                FileChange::rename("src/b.py", "lib/b_renamed.py"),
            ],
        ),
    ];
    let mut c = EmulatorConfig::new(dir.to_path_buf())
        .with_tenant(TENANT, &[DOMAIN])
        .with_tenant(OTHER_TENANT, &["other.test"])
        .with_app(TENANT, CLIENT, "sync app")
        .with_secret(CLIENT, SECRET, None)
        .with_expired_secret(CLIENT, EXPIRED)
        .with_certificate_client(TENANT, CERT_CLIENT, testkit::REGISTERED_CERT_PEM)
        .with_certificate(CERT_CLIENT, testkit::EXPIRED_CERT_PEM)
        .with_app(OTHER_TENANT, OTHER_CLIENT, "other app")
        .with_secret(OTHER_CLIENT, OTHER_SECRET, None)
        .with_app(TENANT, STAKE_CLIENT, "stakeholder app")
        .with_secret(STAKE_CLIENT, STAKE_SECRET, None)
        .with_org(ORG, ORG_ID, TENANT)
        .with_member(ORG, CLIENT, AccessLevel::Basic)
        .with_member(ORG, CERT_CLIENT, AccessLevel::Basic)
        .with_member(ORG, STAKE_CLIENT, AccessLevel::Stakeholder)
        .with_project(ORG, "Alpha")
        .with_seeded_repo(ORG, "Alpha", "app", app_history)
        .with_repo(ORG, "Alpha", "empty")
        .with_seeded_repo(
            ORG,
            "Alpha",
            "old",
            vec![seed("old", vec![FileChange::put("x.py", "X = 0\n")])],
        )
        .with_disabled_repo(ORG, "Alpha", "old")
        .with_seeded_repo(
            ORG,
            "Alpha",
            "secret",
            vec![seed("s", vec![FileChange::put("s.py", "S = 0\n")])],
        )
        .with_repo_visible_to(ORG, "Alpha", "secret", &[])
        .with_project(ORG, "Beta")
        .with_seeded_repo(
            ORG,
            "Beta",
            "lib",
            vec![seed("lib", vec![FileChange::put("lib.py", "L = 0\n")])],
        )
        .with_org(
            "other",
            "0b0b0b0b-1c1c-4d2d-8e3e-4f4f4f4f4f4f",
            OTHER_TENANT,
        )
        .with_member("other", OTHER_CLIENT, AccessLevel::Basic)
        .with_project("other", "Gamma")
        .with_org("nobody", "0c0c0c0c-1d1d-4e2e-8f3f-404040404040", TENANT)
        .with_project("nobody", "Delta")
        .with_retry_time_scale(0.001);
    c.organizations[0].personal_access_tokens = vec!["legacy-pat-value".into()];
    c
}

pub struct World {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub _dir: TempDir,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

pub async fn world_with(f: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = f(config(dir.path()));
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let emu = start(cfg, bind).await.expect("emulator starts");
    World {
        emu,
        http: client(),
        _dir: dir,
    }
}

pub async fn world() -> World {
    world_with(|c| c).await
}

impl World {
    pub async fn token_response(&self, tenant: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.emu.token_url(tenant))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    pub async fn token_for(&self, client_id: &str, secret: &str) -> String {
        let r = self
            .token_response(
                TENANT,
                &[
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("scope", SCOPE),
                    ("grant_type", "client_credentials"),
                ],
            )
            .await;
        assert_eq!(r.status(), 200, "token for {client_id}");
        let v: Value = r.json().await.expect("json");
        v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn token(&self) -> String {
        self.token_for(CLIENT, SECRET).await
    }

    /// GET `{org_url}/{path}` with `api-version=7.1` appended.
    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.http
            .get(format!(
                "{}/{}{}api-version=7.1",
                self.emu.org_url(ORG),
                path,
                sep
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path).await;
        let status = r.status();
        let text = r.text().await.expect("body");
        assert_eq!(status, 200, "GET {path}: {text}");
        serde_json::from_str(&text).expect("json body")
    }

    pub fn repo_url(&self, repo: &str) -> String {
        format!("Alpha/_apis/git/repositories/{repo}")
    }
}

/// A webhook receiver: records requests, answers with the scripted statuses (then 200).
#[derive(Clone, Default)]
pub struct Receiver {
    pub hits: Arc<Mutex<Vec<(axum::http::HeaderMap, Value)>>>,
    pub script: Arc<Mutex<Vec<u16>>>,
}

pub async fn receiver(script: Vec<u16>) -> (String, Receiver) {
    use axum::routing::post;
    let rec = Receiver {
        hits: Arc::new(Mutex::new(Vec::new())),
        script: Arc::new(Mutex::new(script)),
    };
    let r2 = rec.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let r = r2.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    r.hits.lock().push((headers, v));
                    let mut s = r.script.lock();
                    let status = if s.is_empty() { 200 } else { s.remove(0) };
                    axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), rec)
}

pub async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// The Entra error code of a token error response.
pub async fn aadsts(r: reqwest::Response) -> (u16, u32, Value) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("json error body");
    let code = v["error_codes"][0].as_u64().expect("error_codes[0]") as u32;
    (status, code, v)
}
