//! Private admin endpoints under `/_emulator` (never faulted, never logged). Same JSON as the Rust API and the
//! configuration file.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | `/_emulator/health` | | `{"status":"ok"}` |
//! | GET / POST / DELETE | `/_emulator/faults` | `FaultRule` or `[FaultRule]` | active rules / `{"active":n}` / 204 |
//! | GET / DELETE | `/_emulator/requests` | | logged requests (body as text, ≤64 KiB) / 204 |
//! | GET | `/_emulator/token-requests` | | token endpoint calls (secrets redacted) |
//! | POST | `/_emulator/tokens/expire` | | 204: every issued token is now expired |
//! | GET | `/_emulator/orgs` | | organizations, projects, repositories (ids, default branch, heads) |
//! | POST | `/_emulator/orgs/{org}/{project}/{repo}/commits` | `{"branch","message","changes":[FileChange],"author"?}` | 201 `{"commitId","pushId"}` |
//! | POST | `/_emulator/orgs/{org}/{project}/{repo}/force-push` | `{"branch","base":sha|null,"message","changes"}` | 201 `{"commitId","pushId"}` |
//! | POST | `/_emulator/orgs/{org}/{project}/{repo}/branches` | `{"branch","commit":sha|null}` | 201 `{"pushId"}` |
//! | GET / POST | `/_emulator/webhook` | `WebhookTarget` or `null` | current target / 204 |
//! | GET | `/_emulator/webhook/deliveries` | | delivery attempts (with payloads) |
//! | GET | `/_emulator/subscriptions` | | every service-hook subscription |

// Handlers return `Result<Response, Response>`: the error side is the finished error answer (an ADO/Entra
// envelope), built once and returned as is; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Response, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::{FileChange, Signature, WebhookTarget};
use crate::faults::FaultRule;
use crate::state::Shared;
use crate::{git, http, repos, webhook, EmulatorError};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/requests", get(requests).delete(clear_requests))
        .route("/token-requests", get(token_requests))
        .route("/tokens/expire", post(expire_tokens))
        .route("/orgs", get(orgs))
        .route("/orgs/{org}/{project}/{repo}/commits", post(commit))
        .route("/orgs/{org}/{project}/{repo}/force-push", post(force_push))
        .route("/orgs/{org}/{project}/{repo}/branches", post(set_branch))
        .route("/webhook", get(get_webhook).post(set_webhook))
        .route("/webhook/deliveries", get(deliveries))
        .route("/subscriptions", get(subscriptions))
}

fn error(e: EmulatorError) -> Response<Body> {
    let status = match &e {
        EmulatorError::NotFound(_) => StatusCode::NOT_FOUND,
        EmulatorError::Invalid(_) | EmulatorError::Json(_) => StatusCode::BAD_REQUEST,
        EmulatorError::Conflict(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    http::response(
        status,
        "application/json",
        json!({"error": e.to_string()}).to_string(),
    )
}

fn ok_json(status: StatusCode, v: &Value) -> Response<Body> {
    http::response(status, "application/json", v.to_string())
}

fn no_content() -> Response<Body> {
    http::response(StatusCode::NO_CONTENT, "text/plain", "")
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response<Body>> {
    serde_json::from_slice(body).map_err(|e| error(EmulatorError::Json(e)))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<FaultRule>),
    One(FaultRule),
}

async fn list_faults(State(s): State<Arc<Shared>>) -> Response<Body> {
    ok_json(StatusCode::OK, &json!(*s.faults.lock()))
}

async fn add_faults(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response<Body> {
    let rules = match parse::<OneOrMany>(&body) {
        Ok(OneOrMany::One(r)) => vec![r],
        Ok(OneOrMany::Many(v)) => v,
        Err(r) => return r,
    };
    let mut faults = s.faults.lock();
    faults.extend(rules);
    ok_json(StatusCode::OK, &json!({"active": faults.len()}))
}

async fn clear_faults(State(s): State<Arc<Shared>>) -> Response<Body> {
    s.faults.lock().clear();
    no_content()
}

async fn requests(State(s): State<Arc<Shared>>) -> Response<Body> {
    let log = s.request_log.lock().clone();
    let v: Vec<Value> = log
        .iter()
        .map(|r| {
            let mut v = json!(r);
            let text = String::from_utf8_lossy(&r.body);
            let text: String = text.chars().take(65536).collect();
            if let Some(o) = v.as_object_mut() {
                o.insert("body".into(), json!(text));
                o.insert("body_length".into(), json!(r.body.len()));
            }
            v
        })
        .collect();
    ok_json(StatusCode::OK, &json!(v))
}

async fn clear_requests(State(s): State<Arc<Shared>>) -> Response<Body> {
    s.request_log.lock().clear();
    s.token_requests.lock().clear();
    no_content()
}

async fn token_requests(State(s): State<Arc<Shared>>) -> Response<Body> {
    let v = s.token_requests.lock().clone();
    ok_json(StatusCode::OK, &json!({"count": v.len(), "requests": v}))
}

async fn expire_tokens(State(s): State<Arc<Shared>>) -> Response<Body> {
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for t in s.tokens.lock().values_mut() {
        t.expires_at = past;
    }
    no_content()
}

async fn orgs(State(s): State<Arc<Shared>>) -> Response<Body> {
    let shared = s.clone();
    let result = git::blocking(move || {
        let mut out = Vec::new();
        for o in &shared.orgs {
            let mut projects = Vec::new();
            for p in &o.projects {
                let mut repos = Vec::new();
                for r in &p.repos {
                    let heads: serde_json::Map<String, Value> = git::refs(&r.path)?
                        .into_iter()
                        .map(|g| (g.name, json!(g.object_id)))
                        .collect();
                    repos.push(json!({
                        "id": r.id, "name": r.name, "defaultBranch": r.default_branch(),
                        "isDisabled": r.disabled, "refs": heads, "path": r.path,
                    }));
                }
                projects.push(json!({"id": p.id, "name": p.name, "repositories": repos}));
            }
            out.push(json!({
                "name": o.name, "id": o.id, "accountId": o.account_id, "tenant": o.tenant_id,
                "url": shared.org_url(o), "members": o.members, "projects": projects,
            }));
        }
        Ok(out)
    })
    .await;
    match result {
        Ok(v) => ok_json(StatusCode::OK, &json!(v)),
        Err(e) => error(e),
    }
}

#[derive(Deserialize)]
struct CommitBody {
    branch: String,
    message: String,
    #[serde(default)]
    changes: Vec<FileChange>,
    #[serde(default)]
    author: Option<Signature>,
}

#[derive(Deserialize)]
struct ForcePushBody {
    branch: String,
    #[serde(default)]
    base: Option<String>,
    message: String,
    #[serde(default)]
    changes: Vec<FileChange>,
}

#[derive(Deserialize)]
struct BranchBody {
    branch: String,
    #[serde(default)]
    commit: Option<String>,
}

async fn do_commit(
    s: Arc<Shared>,
    (org, project, repo): (String, String, String),
    branch: String,
    force_base: Option<Option<String>>,
    message: String,
    changes: Vec<FileChange>,
    author: Signature,
) -> Response<Body> {
    let Some((o, r)) = s.find_repo(&org, &project, &repo) else {
        return error(EmulatorError::NotFound(format!(
            "repository {org}/{project}/{repo}"
        )));
    };
    let result = git::blocking(move || {
        let base = match &force_base {
            None => repos::Base::BranchHead,
            Some(b) => repos::Base::Force(b.as_deref()),
        };
        let spec = repos::CommitSpec {
            changes: &changes,
            message: &message,
            author: &author,
        };
        repos::commit(&s, &o, &r, &branch, base, &spec)
    })
    .await;
    match result {
        Ok((id, push)) => ok_json(
            StatusCode::CREATED,
            &json!({"commitId": id, "pushId": push.push_id}),
        ),
        Err(e) => error(e),
    }
}

async fn commit(
    State(s): State<Arc<Shared>>,
    Path(key): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let b: CommitBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    do_commit(
        s,
        key,
        b.branch,
        None,
        b.message,
        b.changes,
        b.author.unwrap_or_default(),
    )
    .await
}

async fn force_push(
    State(s): State<Arc<Shared>>,
    Path(key): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let b: ForcePushBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    do_commit(
        s,
        key,
        b.branch,
        Some(b.base),
        b.message,
        b.changes,
        Signature::default(),
    )
    .await
}

async fn set_branch(
    State(s): State<Arc<Shared>>,
    Path((org, project, repo)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let b: BranchBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some((o, r)) = s.find_repo(&org, &project, &repo) else {
        return error(EmulatorError::NotFound(format!(
            "repository {org}/{project}/{repo}"
        )));
    };
    let result =
        git::blocking(move || repos::set_branch(&s, &o, &r, &b.branch, b.commit.as_deref())).await;
    match result {
        Ok(push) => ok_json(StatusCode::CREATED, &json!({"pushId": push.push_id})),
        Err(e) => error(e),
    }
}

async fn get_webhook(State(s): State<Arc<Shared>>) -> Response<Body> {
    let t = s.webhook_target.read().clone().map(|mut t| {
        if t.password.is_some() {
            t.password = Some("********".into());
        }
        t
    });
    ok_json(StatusCode::OK, &json!(t))
}

async fn set_webhook(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response<Body> {
    let t: Option<WebhookTarget> = match parse(&body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    webhook::set_config_target(&s, t.as_ref());
    no_content()
}

async fn deliveries(State(s): State<Arc<Shared>>) -> Response<Body> {
    let d = s.deliveries.lock().clone();
    let v: Vec<Value> = d
        .iter()
        .map(|d| {
            let mut v = json!(d);
            if let Some(o) = v.as_object_mut() {
                o.insert("payload".into(), d.payload.clone());
            }
            v
        })
        .collect();
    ok_json(StatusCode::OK, &json!(v))
}

async fn subscriptions(State(s): State<Arc<Shared>>) -> Response<Body> {
    let subs = s.subscriptions.lock().clone();
    let v: Vec<Value> = subs
        .iter()
        .map(|sub| {
            let org_url = s.org(&sub.org).map(|o| s.org_url(&o)).unwrap_or_default();
            sub.to_json(&org_url)
        })
        .collect();
    ok_json(StatusCode::OK, &json!(v))
}
