//! Service hooks: subscriptions (created through the REST API, or the configured target acting as a subscription
//! made by hand in every organization) and `git.push` deliveries with Basic Auth, retried like Azure DevOps
//! (transient 408/502/503/504 and network errors: 1, 2, 4, 8, 16, 32, 60, 60 s; any other failure puts the
//! subscription on probation: 20 min … 15 h, 7 tries, then `disabledBySystem`; 410 disables it at once).
//! Every delay is multiplied by `retry_time_scale`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::{derived_id, WebhookTarget};
use crate::git::CommitInfo;
use crate::http::{ado_time, git_time};
use crate::state::{enc_segment, system_time_rfc3339, OrgState, PushRecord, RepoState, Shared};

/// Subscription status (`SubscriptionStatus` of the Service Hooks API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubscriptionStatus {
    Enabled,
    OnProbation,
    DisabledByUser,
    DisabledBySystem,
    DisabledByInactiveIdentity,
}

/// A service-hook subscription.
#[derive(Clone, Debug, Serialize)]
pub struct Subscription {
    pub id: String,
    /// Organization name.
    pub org: String,
    pub status: SubscriptionStatus,
    pub publisher_id: String,
    pub event_type: String,
    pub resource_version: Option<String>,
    pub consumer_id: String,
    pub consumer_action_id: String,
    pub publisher_inputs: BTreeMap<String, String>,
    /// As given (the REST API masks passwords).
    #[serde(skip)]
    pub consumer_inputs: BTreeMap<String, String>,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_date: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub modified_date: OffsetDateTime,
    pub probation_retries: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_probation_retry_date: Option<OffsetDateTime>,
    /// Last `notificationId` used.
    pub notification_counter: u64,
    /// The configured webhook target (not created through the API).
    pub from_config: bool,
}

/// One delivery attempt.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookDelivery {
    pub subscription_id: String,
    pub notification_id: u64,
    /// Event id (the payload's top-level `id`).
    pub event_id: String,
    pub url: String,
    /// 1 = first try.
    pub attempt: u32,
    /// Whether this attempt was a probation retry.
    pub probation: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    #[serde(with = "system_time_rfc3339")]
    pub at: SystemTime,
    /// The payload that was posted.
    #[serde(skip)]
    pub payload: Value,
}

const MASK: &str = "********";

impl Subscription {
    fn target(&self) -> Option<WebhookTarget> {
        if self.consumer_id != "webHooks" {
            return None;
        }
        Some(WebhookTarget {
            url: self.consumer_inputs.get("url")?.clone(),
            username: self
                .consumer_inputs
                .get("basicAuthUsername")
                .cloned()
                .filter(|s| !s.is_empty()),
            password: self
                .consumer_inputs
                .get("basicAuthPassword")
                .cloned()
                .filter(|s| !s.is_empty()),
            http_headers: self
                .consumer_inputs
                .get("httpHeaders")
                .cloned()
                .filter(|s| !s.is_empty()),
        })
    }

    fn matches_push(&self, repo: &RepoState, push: &PushRecord) -> bool {
        if self.event_type != "git.push" || self.publisher_id != "tfs" {
            return false;
        }
        if matches!(
            self.status,
            SubscriptionStatus::DisabledByUser
                | SubscriptionStatus::DisabledBySystem
                | SubscriptionStatus::DisabledByInactiveIdentity
        ) {
            return false;
        }
        let input = |k: &str| {
            self.publisher_inputs
                .get(k)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(p) = input("projectId") {
            if !p.eq_ignore_ascii_case(&repo.project_id) {
                return false;
            }
        }
        if let Some(r) = input("repository") {
            if !r.eq_ignore_ascii_case(&repo.id) {
                return false;
            }
        }
        if let Some(b) = input("branch") {
            let full = if b.starts_with("refs/") {
                b.to_string()
            } else {
                format!("refs/heads/{b}")
            };
            if !push.ref_updates.iter().any(|u| u.name == full) {
                return false;
            }
        }
        true
    }

    /// ADO JSON of the subscription (passwords masked).
    pub(crate) fn to_json(&self, org_url: &str) -> Value {
        let mut consumer = Map::new();
        for (k, v) in &self.consumer_inputs {
            let masked = k.to_lowercase().contains("password") || k == "userToken";
            consumer.insert(
                k.clone(),
                Value::String(if masked { MASK.into() } else { v.clone() }),
            );
        }
        let host = self
            .consumer_inputs
            .get("url")
            .and_then(|u| u.split("://").nth(1))
            .and_then(|r| r.split('/').next())
            .unwrap_or("")
            .to_string();
        let mut v = json!({
            "id": self.id,
            "url": format!("{org_url}/_apis/hooks/subscriptions/{}", self.id),
            "status": self.status,
            "publisherId": self.publisher_id,
            "eventType": self.event_type,
            "resourceVersion": self.resource_version,
            "eventDescription": event_description(self),
            "consumerId": self.consumer_id,
            "consumerActionId": self.consumer_action_id,
            "actionDescription": if host.is_empty() { String::new() } else { format!("To host {host}") },
            "createdBy": {"id": self.created_by},
            "createdDate": ado_time(self.created_date),
            "modifiedBy": {"id": self.created_by},
            "modifiedDate": ado_time(self.modified_date),
            "publisherInputs": self.publisher_inputs,
            "consumerInputs": Value::Object(consumer),
            "_links": {
                "self": {"href": format!("{org_url}/_apis/hooks/subscriptions/{}", self.id)},
                "consumer": {"href": format!("{org_url}/_apis/hooks/consumers/{}", self.consumer_id)},
                "actions": {"href": format!("{org_url}/_apis/hooks/consumers/{}/actions", self.consumer_id)},
                "notifications": {"href": format!("{org_url}/_apis/hooks/subscriptions/{}/notifications", self.id)},
                "publisher": {"href": format!("{org_url}/_apis/hooks/publishers/{}", self.publisher_id)},
            },
        });
        if let Some(obj) = v.as_object_mut() {
            if self.probation_retries > 0 {
                obj.insert("probationRetries".into(), json!(self.probation_retries));
            }
            if let Some(d) = self.last_probation_retry_date {
                obj.insert("lastProbationRetryDate".into(), json!(ado_time(d)));
            }
        }
        v
    }
}

fn event_description(s: &Subscription) -> String {
    if s.event_type != "git.push" {
        return String::new();
    }
    let repo = s
        .publisher_inputs
        .get("repository")
        .filter(|r| !r.is_empty());
    let branch = s.publisher_inputs.get("branch").filter(|r| !r.is_empty());
    match (branch, repo) {
        (None, None) => "Any branch on any repository".into(),
        (Some(b), None) => format!("Branch {b} on any repository"),
        (None, Some(_)) => "Any branch".into(),
        (Some(b), Some(_)) => format!("Branch {b}"),
    }
}

/// Builds the subscription standing for the configured webhook target in `org`.
pub(crate) fn config_subscription(org: &OrgState, target: &WebhookTarget) -> Subscription {
    let now = OffsetDateTime::now_utc();
    let mut consumer = BTreeMap::new();
    consumer.insert("url".to_string(), target.url.clone());
    if let Some(u) = &target.username {
        consumer.insert("basicAuthUsername".to_string(), u.clone());
    }
    if let Some(p) = &target.password {
        consumer.insert("basicAuthPassword".to_string(), p.clone());
    }
    if let Some(h) = &target.http_headers {
        consumer.insert("httpHeaders".to_string(), h.clone());
    }
    let mut publisher = BTreeMap::new();
    publisher.insert("hostId".to_string(), org.id.clone());
    publisher.insert(
        "tfsSubscriptionId".to_string(),
        derived_id("tfs-sub", &org.name),
    );
    Subscription {
        id: derived_id("config-subscription", &org.name),
        org: org.name.clone(),
        status: SubscriptionStatus::Enabled,
        publisher_id: "tfs".into(),
        event_type: "git.push".into(),
        resource_version: Some("1.0".into()),
        consumer_id: "webHooks".into(),
        consumer_action_id: "httpRequest".into(),
        publisher_inputs: publisher,
        consumer_inputs: consumer,
        created_by: org.pusher.id.clone(),
        created_date: now,
        modified_date: now,
        probation_retries: 0,
        last_probation_retry_date: None,
        notification_counter: 0,
        from_config: true,
    }
}

/// Replaces the subscriptions standing for the configured target.
pub(crate) fn set_config_target(shared: &Shared, target: Option<&WebhookTarget>) {
    *shared.webhook_target.write() = target.cloned();
    let mut subs = shared.subscriptions.lock();
    subs.retain(|s| !s.from_config);
    if let Some(t) = target {
        for org in &shared.orgs {
            subs.push(config_subscription(org, t));
        }
    }
}

fn identity_json(shared: &Shared, org: &OrgState) -> Value {
    let p = &org.pusher;
    let org_url = shared.org_url(org);
    json!({
        "displayName": p.display_name,
        "url": format!("{org_url}/_apis/Identities/{}", p.id),
        "_links": {"avatar": {"href": format!("{org_url}/_apis/GraphProfile/MemberAvatars/aad.{}", p.id)}},
        "id": p.id,
        "uniqueName": p.unique_name,
        "imageUrl": format!("{org_url}/_api/_common/identityImage?id={}", p.id),
        "descriptor": format!("aad.{}", p.id),
    })
}

/// The `git.push` event body shared by all subscriptions (without `subscriptionId` / `notificationId`).
pub(crate) fn push_event(
    shared: &Shared,
    org: &OrgState,
    repo: &RepoState,
    push: &PushRecord,
    commits: &[CommitInfo],
) -> Value {
    let org_url = shared.org_url(org);
    let repo_api = format!(
        "{org_url}/{}/_apis/git/repositories/{}",
        repo.project_id, repo.id
    );
    let web = format!(
        "{org_url}/{}/_git/{}",
        enc_segment(&repo.project_name),
        enc_segment(&repo.name)
    );
    let branch = push
        .ref_updates
        .first()
        .map(|u| u.name.trim_start_matches("refs/heads/").to_string())
        .unwrap_or_default();
    let who = &org.pusher.display_name;
    let commit_lines: Vec<String> = commits
        .iter()
        .map(|c| {
            format!(
                " - {} {}",
                c.message.lines().next().unwrap_or(""),
                &c.id[..8.min(c.id.len())]
            )
        })
        .collect();
    let n = commits.len();
    let plural = if n == 1 { "commit" } else { "commits" };
    json!({
        "id": Uuid::new_v4().to_string(),
        "eventType": "git.push",
        "publisherId": "tfs",
        "scope": "all",
        "message": {
            "text": format!("{who} pushed updates to branch {branch} of repository {}.", repo.name),
            "html": format!("{who} pushed updates to branch <a href=\"{web}/#version=GB{branch}\">{branch}</a> of repository <a href=\"{web}/\">{}</a>.", repo.name),
            "markdown": format!("{who} pushed updates to branch `{branch}` of repository `{}`.", repo.name),
        },
        "detailedMessage": {
            "text": format!("{who} pushed {n} {plural} to branch {branch} of repository {}.\n{}", repo.name, commit_lines.join("\n")),
            "html": format!("{who} pushed {n} {plural} to branch <a href=\"{web}/#version=GB{branch}\">{branch}</a> of repository <a href=\"{web}/\">{}</a>.", repo.name),
            "markdown": format!("{who} pushed {n} {plural} to branch [{branch}]({web}/#version=GB{branch}) of repository [{}]({web}/).\n{}", repo.name, commit_lines.join("\n")),
        },
        "resource": {
            "commits": commits.iter().map(|c| json!({
                "commitId": c.id,
                "author": {"name": c.author.name, "email": c.author.email, "date": git_time(c.author.time)},
                "committer": {"name": c.committer.name, "email": c.committer.email, "date": git_time(c.committer.time)},
                "comment": c.message.trim_end(),
                "url": format!("{org_url}/_apis/git/repositories/{}/commits/{}", repo.id, c.id),
            })).collect::<Vec<_>>(),
            "refUpdates": push.ref_updates.iter().map(|u| json!({
                "name": u.name, "oldObjectId": u.old_object_id, "newObjectId": u.new_object_id
            })).collect::<Vec<_>>(),
            "repository": {
                "id": repo.id,
                "name": repo.name,
                "url": repo_api,
                "project": {
                    "id": repo.project_id,
                    "name": repo.project_name,
                    "url": format!("{org_url}/_apis/projects/{}", repo.project_id),
                    "state": "wellFormed",
                    "visibility": "unchanged",
                    "lastUpdateTime": "0001-01-01T00:00:00",
                },
                "defaultBranch": repo.default_branch(),
                "remoteUrl": web,
            },
            "pushedBy": identity_json(shared, org),
            "pushId": push.push_id,
            "date": ado_time(push.date),
            "url": format!("{repo_api}/pushes/{}", push.push_id),
            "_links": {
                "self": {"href": format!("{repo_api}/pushes/{}", push.push_id)},
                "repository": {"href": repo_api},
                "commits": {"href": format!("{repo_api}/pushes/{}/commits", push.push_id)},
                "pusher": {"href": format!("{org_url}/_apis/Identities/{}", org.pusher.id)},
                "refs": {"href": format!("{repo_api}/refs/heads/{branch}")},
            },
        },
        "resourceVersion": "1.0",
        "resourceContainers": {
            "collection": {"id": org.id, "baseUrl": format!("{org_url}/")},
            "account": {"id": org.account_id, "baseUrl": format!("{org_url}/")},
            "project": {"id": repo.project_id, "baseUrl": format!("{org_url}/")},
        },
        "createdDate": ado_time(OffsetDateTime::now_utc()),
    })
}

/// Trims the payload as the consumer inputs ask (`resourceDetailsToSend`, `messagesToSend`,
/// `detailedMessagesToSend`).
fn shape_for(sub: &Subscription, mut event: Value) -> Value {
    let input = |k: &str| {
        sub.consumer_inputs
            .get(k)
            .map(|s| s.to_lowercase())
            .unwrap_or_default()
    };
    if let Some(obj) = event.as_object_mut() {
        for (field, key) in [
            ("message", "messagesToSend"),
            ("detailedMessage", "detailedMessagesToSend"),
        ] {
            match input(key).as_str() {
                "none" => {
                    obj.remove(field);
                }
                k @ ("text" | "html" | "markdown") => {
                    if let Some(m) = obj.get_mut(field).and_then(Value::as_object_mut) {
                        m.retain(|name, _| name == k);
                    }
                }
                _ => {}
            }
        }
        match input("resourceDetailsToSend").as_str() {
            "none" => {
                obj.insert("resource".into(), Value::Null);
            }
            "minimal" => {
                let r = obj.get("resource").cloned().unwrap_or(Value::Null);
                obj.insert(
                    "resource".into(),
                    json!({"pushId": r.get("pushId"), "url": r.get("url")}),
                );
            }
            _ => {}
        }
        obj.insert("subscriptionId".into(), json!(sub.id));
    }
    event
}

/// Posts the push event to every matching subscription of the organization (in the background).
pub(crate) fn dispatch_push(
    shared: &Arc<Shared>,
    org: &Arc<OrgState>,
    repo: &RepoState,
    push: &PushRecord,
    commits: &[CommitInfo],
) {
    let event = push_event(shared, org, repo, push, commits);
    let event_id = event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut jobs = Vec::new();
    {
        let mut subs = shared.subscriptions.lock();
        for s in subs
            .iter_mut()
            .filter(|s| s.org.eq_ignore_ascii_case(&org.name))
        {
            if !s.matches_push(repo, push) {
                continue;
            }
            let Some(target) = s.target() else { continue };
            s.notification_counter += 1;
            let mut payload = shape_for(s, event.clone());
            if let Some(obj) = payload.as_object_mut() {
                obj.insert("notificationId".into(), json!(s.notification_counter));
            }
            jobs.push((s.id.clone(), s.notification_counter, target, payload));
        }
    }
    for (sub_id, notification_id, target, payload) in jobs {
        let job = Job {
            sub_id,
            notification_id,
            event_id: event_id.clone(),
            target,
            payload,
        };
        let handle = shared.runtime.spawn(deliver(shared.clone(), job));
        let mut bg = shared.background.lock();
        bg.retain(|h| !h.is_finished());
        bg.push(handle.abort_handle());
    }
}

const TRANSIENT_DELAYS_SECS: [u64; 8] = [1, 2, 4, 8, 16, 32, 60, 60];
const PROBATION_DELAYS_MIN: [u64; 7] = [20, 40, 80, 160, 320, 640, 900];

enum Outcome {
    Success,
    Gone,
    Transient,
    Enduring,
}

struct Job {
    sub_id: String,
    notification_id: u64,
    event_id: String,
    target: WebhookTarget,
    payload: Value,
}

async fn attempt(shared: &Shared, job: &Job, attempt_no: u32, probation: bool) -> Outcome {
    let Job {
        sub_id,
        notification_id,
        event_id,
        target,
        payload,
    } = job;
    let notification_id = *notification_id;
    let mut req = shared
        .http
        .post(&target.url)
        .timeout(Duration::from_millis(shared.settings.webhook_timeout_ms))
        .header("content-type", "application/json; charset=utf-8")
        .body(payload.to_string());
    if let Some(user) = &target.username {
        req = req.basic_auth(user, target.password.as_deref());
    }
    if let Some(headers) = &target.http_headers {
        for line in headers.lines() {
            if let Some((k, v)) = line.split_once(':') {
                req = req.header(k.trim(), v.trim());
            }
        }
    }
    let (status, error, outcome) = match req.send().await {
        Ok(resp) => {
            let s = resp.status().as_u16();
            let outcome = match s {
                200..=299 => Outcome::Success,
                410 => Outcome::Gone,
                408 | 502 | 503 | 504 => Outcome::Transient,
                _ => Outcome::Enduring,
            };
            (Some(s), None, outcome)
        }
        Err(e) => (None, Some(e.to_string()), Outcome::Transient),
    };
    tracing::info!(subscription = %sub_id, notification_id, status = ?status, attempt = attempt_no, "webhook delivery");
    let mut deliveries = shared.deliveries.lock();
    if deliveries.len() >= crate::faults::MAX_LOGGED {
        deliveries.drain(..crate::faults::MAX_LOGGED / 10);
    }
    deliveries.push(WebhookDelivery {
        subscription_id: sub_id.to_string(),
        notification_id,
        event_id: event_id.to_string(),
        url: target.url.clone(),
        attempt: attempt_no,
        probation,
        status,
        error,
        at: SystemTime::now(),
        payload: payload.clone(),
    });
    outcome
}

fn set_status(shared: &Shared, sub_id: &str, f: impl FnOnce(&mut Subscription)) -> bool {
    let mut subs = shared.subscriptions.lock();
    match subs.iter_mut().find(|s| s.id == sub_id) {
        Some(s) => {
            f(s);
            s.modified_date = OffsetDateTime::now_utc();
            true
        }
        None => false,
    }
}

fn still_active(shared: &Shared, sub_id: &str) -> bool {
    shared.subscriptions.lock().iter().any(|s| {
        s.id == sub_id
            && matches!(
                s.status,
                SubscriptionStatus::Enabled | SubscriptionStatus::OnProbation
            )
    })
}

async fn scaled_sleep(shared: &Shared, secs: u64) {
    let d = secs as f64 * shared.settings.retry_time_scale;
    if d > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(d)).await;
    }
}

async fn deliver(shared: Arc<Shared>, job: Job) {
    let sub_id = job.sub_id.clone();
    let mut attempt_no = 1;
    let mut outcome = attempt(&shared, &job, attempt_no, false).await;
    let mut retries = TRANSIENT_DELAYS_SECS.iter();
    loop {
        match outcome {
            Outcome::Success => {
                set_status(&shared, &sub_id, |s| {
                    s.status = SubscriptionStatus::Enabled;
                    s.probation_retries = 0;
                });
                return;
            }
            Outcome::Gone => {
                set_status(&shared, &sub_id, |s| {
                    s.status = SubscriptionStatus::DisabledBySystem
                });
                return;
            }
            Outcome::Transient => match retries.next() {
                Some(delay) => {
                    scaled_sleep(&shared, *delay).await;
                    if !still_active(&shared, &sub_id) {
                        return;
                    }
                    attempt_no += 1;
                    outcome = attempt(&shared, &job, attempt_no, false).await;
                }
                None => break,
            },
            Outcome::Enduring => break,
        }
    }
    // Enduring failure: probation.
    set_status(&shared, &sub_id, |s| {
        s.status = SubscriptionStatus::OnProbation
    });
    for minutes in PROBATION_DELAYS_MIN {
        scaled_sleep(&shared, minutes * 60).await;
        if !still_active(&shared, &sub_id) {
            return;
        }
        attempt_no += 1;
        let o = attempt(&shared, &job, attempt_no, true).await;
        match o {
            Outcome::Success => {
                set_status(&shared, &sub_id, |s| {
                    s.status = SubscriptionStatus::Enabled;
                    s.probation_retries = 0;
                });
                return;
            }
            Outcome::Gone => {
                set_status(&shared, &sub_id, |s| {
                    s.status = SubscriptionStatus::DisabledBySystem
                });
                return;
            }
            _ => {
                set_status(&shared, &sub_id, |s| {
                    s.probation_retries += 1;
                    s.last_probation_retry_date = Some(OffsetDateTime::now_utc());
                });
            }
        }
    }
    set_status(&shared, &sub_id, |s| {
        s.status = SubscriptionStatus::DisabledBySystem
    });
}
