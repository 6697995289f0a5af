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
//! | GET | `/_emulator/apps/{client_id}/federated-credentials` | | `[FederatedCredentialConfig]` / 404 |
//! | POST | `/_emulator/apps/{client_id}/federated-credentials` | `{"name","issuer","subject","audiences":[..]}` | 201 the stored credential (with `created_at`) / 400 / 404 |
//! | DELETE | `/_emulator/apps/{client_id}/federated-credentials/{name}` | | 204 / 404 |
//! | GET | `/_emulator/rate-limit` | | `{"model":RateLimitModel|null,"identities":[IdentityUsage]}` |
//! | PUT / DELETE | `/_emulator/rate-limit` | `RateLimitModel` (`{}` = all defaults) | 200 the stored model / 400; 204 (off, usage forgotten) |
//!
//! Federated identity credentials are checked as Entra checks them: `name` 3–120 characters (letters, digits,
//! `-`, `_`, first a letter or digit; unique per app), `issuer` and `subject` non-empty, at most 600
//! characters, no leading / trailing whitespace, exactly one audience, the issuer + subject pair unique per
//! app, at most 20 per app; a refusal is `400 {"error":"invalid request: ..."}`, an unknown app
//! `404 {"error":"not found: ..."}`. The client id is matched case-insensitively. A credential added here
//! records `created_at` = now (see the `FicPropagation` fault).
//!
//! Rate limiting (see [`crate::rate_limit`]): `PUT` turns the TSTU model on or replaces it and keeps the usage
//! counted so far (thresholds can change mid-run); `DELETE` turns it off and forgets usage and counters.
//! `GET` reports, per identity (service principal object id, or the user of a personal access token), the
//! TSTUs in the window, what is left, and the requests charged, delayed and blocked (`429`) since it was on.

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

use crate::config::{
    check_federated_credential_addition, FederatedCredentialConfig, FileChange, Signature,
    WebhookTarget,
};
use crate::faults::FaultRule;
use crate::rate_limit::RateLimitModel;
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
        .route("/subscriptions/{id}/status", post(set_subscription_status))
        .route(
            "/rate-limit",
            get(get_rate_limit)
                .put(put_rate_limit)
                .delete(delete_rate_limit),
        )
        .route(
            "/apps/{client_id}/federated-credentials",
            get(list_federated_credentials).post(add_federated_credential),
        )
        .route(
            "/apps/{client_id}/federated-credentials/{name}",
            axum::routing::delete(delete_federated_credential),
        )
}

/// Body of `POST /_emulator/apps/{client_id}/federated-credentials`.
#[derive(Deserialize)]
struct FederatedCredentialBody {
    name: String,
    issuer: String,
    subject: String,
    audiences: Vec<String>,
}

fn unknown_app(client_id: &str) -> Response<Body> {
    error(EmulatorError::NotFound(format!("application {client_id}")))
}

async fn list_federated_credentials(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
) -> Response<Body> {
    let listed = shared
        .apps
        .read()
        .iter()
        .find(|app| app.client_id.eq_ignore_ascii_case(&client_id))
        .map(|app| app.federated_credentials.clone());
    match listed {
        Some(credentials) => ok_json(StatusCode::OK, &json!(credentials)),
        None => unknown_app(&client_id),
    }
}

async fn add_federated_credential(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let request: FederatedCredentialBody = match parse(&body) {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let credential = FederatedCredentialConfig {
        name: request.name,
        issuer: request.issuer,
        subject: request.subject,
        audiences: request.audiences,
        created_at: Some(time::OffsetDateTime::now_utc()),
    };
    let mut apps = shared.apps.write();
    let Some(app) = apps
        .iter_mut()
        .find(|app| app.client_id.eq_ignore_ascii_case(&client_id))
    else {
        return unknown_app(&client_id);
    };
    if let Err(why) = check_federated_credential_addition(&app.federated_credentials, &credential) {
        return error(EmulatorError::Invalid(why));
    }
    app.federated_credentials.push(credential.clone());
    ok_json(StatusCode::CREATED, &json!(credential))
}

async fn delete_federated_credential(
    State(shared): State<Arc<Shared>>,
    Path((client_id, name)): Path<(String, String)>,
) -> Response<Body> {
    let mut apps = shared.apps.write();
    let Some(app) = apps
        .iter_mut()
        .find(|app| app.client_id.eq_ignore_ascii_case(&client_id))
    else {
        return unknown_app(&client_id);
    };
    let before = app.federated_credentials.len();
    app.federated_credentials
        .retain(|credential| !credential.name.eq_ignore_ascii_case(&name));
    if app.federated_credentials.len() == before {
        return error(EmulatorError::NotFound(format!(
            "federated identity credential {name} of application {client_id}"
        )));
    }
    no_content()
}

#[derive(Deserialize)]
struct StatusBody {
    status: webhook::SubscriptionStatus,
}

/// What Azure DevOps does on its own (probation after failed deliveries,
/// disabled by the system, by a person): for browser tests.
async fn set_subscription_status(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let request: StatusBody = match parse(&body) {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let mut subs = shared.subscriptions.lock();
    match subs.iter_mut().find(|subscription| subscription.id == id) {
        Some(subscription) => {
            subscription.status = request.status;
            ok_json(StatusCode::OK, &json!({"id": id}))
        }
        None => error(EmulatorError::NotFound(format!("subscription {id}"))),
    }
}

fn error(failure: EmulatorError) -> Response<Body> {
    let status = match &failure {
        EmulatorError::NotFound(_) => StatusCode::NOT_FOUND,
        EmulatorError::Invalid(_) | EmulatorError::Json(_) => StatusCode::BAD_REQUEST,
        EmulatorError::Conflict(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    http::response(
        status,
        "application/json",
        json!({"error": failure.to_string()}).to_string(),
    )
}

fn ok_json(status: StatusCode, value: &Value) -> Response<Body> {
    http::response(status, "application/json", value.to_string())
}

fn no_content() -> Response<Body> {
    http::response(StatusCode::NO_CONTENT, "text/plain", "")
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Response<Body>> {
    serde_json::from_slice(body).map_err(|json_error| error(EmulatorError::Json(json_error)))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<FaultRule>),
    One(FaultRule),
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response<Body> {
    ok_json(StatusCode::OK, &json!(*shared.faults.lock()))
}

async fn add_faults(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response<Body> {
    let rules = match parse::<OneOrMany>(&body) {
        Ok(OneOrMany::One(rule)) => vec![rule],
        Ok(OneOrMany::Many(rules)) => rules,
        Err(refusal) => return refusal,
    };
    let mut faults = shared.faults.lock();
    faults.extend(rules);
    ok_json(StatusCode::OK, &json!({"active": faults.len()}))
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response<Body> {
    shared.faults.lock().clear();
    no_content()
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let log = shared.request_log.lock().clone();
    let value: Vec<Value> = log
        .iter()
        .map(|logged| {
            let mut entry = json!(logged);
            let text = String::from_utf8_lossy(&logged.body);
            let text: String = text.chars().take(65536).collect();
            if let Some(obj) = entry.as_object_mut() {
                obj.insert("body".into(), json!(text));
                obj.insert("body_length".into(), json!(logged.body.len()));
            }
            entry
        })
        .collect();
    ok_json(StatusCode::OK, &json!(value))
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> Response<Body> {
    shared.request_log.lock().clear();
    shared.token_requests.lock().clear();
    no_content()
}

async fn token_requests(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let records = shared.token_requests.lock().clone();
    ok_json(
        StatusCode::OK,
        &json!({"count": records.len(), "requests": records}),
    )
}

async fn expire_tokens(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for token in shared.tokens.lock().values_mut() {
        token.expires_at = past;
    }
    no_content()
}

async fn orgs(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let shared = shared.clone();
    let result = git::blocking(move || {
        let mut out = Vec::new();
        for org in &shared.orgs {
            let mut projects = Vec::new();
            for project in &org.projects {
                let mut repos = Vec::new();
                for repo in &project.repos {
                    let heads: serde_json::Map<String, Value> = git::refs(&repo.path)?
                        .into_iter()
                        .map(|git_ref| (git_ref.name, json!(git_ref.object_id)))
                        .collect();
                    repos.push(json!({
                        "id": repo.id, "name": repo.name, "defaultBranch": repo.default_branch(),
                        "isDisabled": repo.disabled, "refs": heads, "path": repo.path,
                    }));
                }
                projects.push(json!({"id": project.id, "name": project.name, "repositories": repos}));
            }
            out.push(json!({
                "name": org.name, "id": org.id, "accountId": org.account_id, "tenant": org.tenant_id,
                "url": shared.org_url(org), "members": org.members, "projects": projects,
            }));
        }
        Ok(out)
    })
    .await;
    match result {
        Ok(listing) => ok_json(StatusCode::OK, &json!(listing)),
        Err(failure) => error(failure),
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
    /// Then make it the repository's default branch.
    #[serde(default, rename = "makeDefault")]
    make_default: bool,
}

async fn do_commit(
    shared: Arc<Shared>,
    (org, project, repo): (String, String, String),
    branch: String,
    force_base: Option<Option<String>>,
    message: String,
    changes: Vec<FileChange>,
    author: Signature,
) -> Response<Body> {
    let Some((org_state, repo_state)) = shared.find_repo(&org, &project, &repo) else {
        return error(EmulatorError::NotFound(format!(
            "repository {org}/{project}/{repo}"
        )));
    };
    let result = git::blocking(move || {
        let base = match &force_base {
            None => repos::Base::BranchHead,
            Some(base) => repos::Base::Force(base.as_deref()),
        };
        let spec = repos::CommitSpec {
            changes: &changes,
            message: &message,
            author: &author,
        };
        repos::commit(&shared, &org_state, &repo_state, &branch, base, &spec)
    })
    .await;
    match result {
        Ok((id, push)) => ok_json(
            StatusCode::CREATED,
            &json!({"commitId": id, "pushId": push.push_id}),
        ),
        Err(failure) => error(failure),
    }
}

async fn commit(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let request: CommitBody = match parse(&body) {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    do_commit(
        shared,
        key,
        request.branch,
        None,
        request.message,
        request.changes,
        request.author.unwrap_or_default(),
    )
    .await
}

async fn force_push(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let request: ForcePushBody = match parse(&body) {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    do_commit(
        shared,
        key,
        request.branch,
        Some(request.base),
        request.message,
        request.changes,
        Signature::default(),
    )
    .await
}

async fn set_branch(
    State(shared): State<Arc<Shared>>,
    Path((org, project, repo)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let request: BranchBody = match parse(&body) {
        Ok(request) => request,
        Err(refusal) => return refusal,
    };
    let Some((org_state, repo_state)) = shared.find_repo(&org, &project, &repo) else {
        return error(EmulatorError::NotFound(format!(
            "repository {org}/{project}/{repo}"
        )));
    };
    let result = git::blocking(move || {
        let push = repos::set_branch(
            &shared,
            &org_state,
            &repo_state,
            &request.branch,
            request.commit.as_deref(),
        )?;
        if request.make_default {
            repos::set_default_branch(&repo_state, &request.branch)?;
        }
        Ok(push)
    })
    .await;
    match result {
        Ok(push) => ok_json(StatusCode::CREATED, &json!({"pushId": push.push_id})),
        Err(failure) => error(failure),
    }
}

async fn get_webhook(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let target = shared.webhook_target.read().clone().map(|mut target| {
        if target.password.is_some() {
            target.password = Some("********".into());
        }
        target
    });
    ok_json(StatusCode::OK, &json!(target))
}

async fn set_webhook(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response<Body> {
    let target: Option<WebhookTarget> = match parse(&body) {
        Ok(target) => target,
        Err(refusal) => return refusal,
    };
    webhook::set_config_target(&shared, target.as_ref());
    no_content()
}

async fn deliveries(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let recorded = shared.deliveries.lock().clone();
    let value: Vec<Value> = recorded
        .iter()
        .map(|delivery| {
            let mut entry = json!(delivery);
            if let Some(obj) = entry.as_object_mut() {
                obj.insert("payload".into(), delivery.payload.clone());
            }
            entry
        })
        .collect();
    ok_json(StatusCode::OK, &json!(value))
}

async fn subscriptions(State(shared): State<Arc<Shared>>) -> Response<Body> {
    let subs = shared.subscriptions.lock().clone();
    let value: Vec<Value> = subs
        .iter()
        .map(|sub| {
            let org_url = shared
                .org(&sub.org)
                .map(|org| shared.org_url(&org))
                .unwrap_or_default();
            sub.to_json(&org_url)
        })
        .collect();
    ok_json(StatusCode::OK, &json!(value))
}

async fn get_rate_limit(State(shared): State<Arc<Shared>>) -> Response<Body> {
    ok_json(
        StatusCode::OK,
        &json!({
            "model": shared.rate_limit.model(),
            "identities": shared.rate_limit.report(),
        }),
    )
}

async fn put_rate_limit(
    State(shared): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response<Body> {
    let model: RateLimitModel = match parse(&body) {
        Ok(model) => model,
        Err(refusal) => return refusal,
    };
    match shared.rate_limit.set(Some(model.clone())) {
        Ok(()) => ok_json(StatusCode::OK, &json!(model)),
        Err(why) => error(EmulatorError::Invalid(why.to_string())),
    }
}

async fn delete_rate_limit(State(shared): State<Arc<Shared>>) -> Response<Body> {
    // Turning the model off cannot fail: only a model is validated.
    let _ = shared.rate_limit.set(None);
    no_content()
}
