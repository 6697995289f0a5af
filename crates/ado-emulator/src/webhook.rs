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
                .filter(|value| !value.is_empty()),
            password: self
                .consumer_inputs
                .get("basicAuthPassword")
                .cloned()
                .filter(|value| !value.is_empty()),
            http_headers: self
                .consumer_inputs
                .get("httpHeaders")
                .cloned()
                .filter(|value| !value.is_empty()),
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
        let input = |key: &str| {
            self.publisher_inputs
                .get(key)
                .map(String::as_str)
                .filter(|value| !value.is_empty())
        };
        if let Some(project_id) = input("projectId") {
            if !project_id.eq_ignore_ascii_case(&repo.project_id) {
                return false;
            }
        }
        if let Some(repository) = input("repository") {
            if !repository.eq_ignore_ascii_case(&repo.id) {
                return false;
            }
        }
        if let Some(branch) = input("branch") {
            let full = if branch.starts_with("refs/") {
                branch.to_string()
            } else {
                format!("refs/heads/{branch}")
            };
            if !push.ref_updates.iter().any(|update| update.name == full) {
                return false;
            }
        }
        true
    }

    /// ADO JSON of the subscription (passwords masked).
    pub(crate) fn to_json(&self, org_url: &str) -> Value {
        let mut consumer = Map::new();
        for (key, value) in &self.consumer_inputs {
            let masked = key.to_lowercase().contains("password") || key == "userToken";
            consumer.insert(
                key.clone(),
                Value::String(if masked { MASK.into() } else { value.clone() }),
            );
        }
        let host = self
            .consumer_inputs
            .get("url")
            .and_then(|url| url.split("://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("")
            .to_string();
        let mut subscription = json!({
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
        if let Some(obj) = subscription.as_object_mut() {
            if self.probation_retries > 0 {
                obj.insert("probationRetries".into(), json!(self.probation_retries));
            }
            if let Some(date) = self.last_probation_retry_date {
                obj.insert("lastProbationRetryDate".into(), json!(ado_time(date)));
            }
        }
        subscription
    }
}

fn event_description(subscription: &Subscription) -> String {
    if subscription.event_type != "git.push" {
        return String::new();
    }
    let repo = subscription
        .publisher_inputs
        .get("repository")
        .filter(|value| !value.is_empty());
    let branch = subscription
        .publisher_inputs
        .get("branch")
        .filter(|value| !value.is_empty());
    match (branch, repo) {
        (None, None) => "Any branch on any repository".into(),
        (Some(branch), None) => format!("Branch {branch} on any repository"),
        (None, Some(_)) => "Any branch".into(),
        (Some(branch), Some(_)) => format!("Branch {branch}"),
    }
}

/// Builds the subscription standing for the configured webhook target in `org`.
pub(crate) fn config_subscription(org: &OrgState, target: &WebhookTarget) -> Subscription {
    let now = OffsetDateTime::now_utc();
    let mut consumer = BTreeMap::new();
    consumer.insert("url".to_string(), target.url.clone());
    if let Some(username) = &target.username {
        consumer.insert("basicAuthUsername".to_string(), username.clone());
    }
    if let Some(password) = &target.password {
        consumer.insert("basicAuthPassword".to_string(), password.clone());
    }
    if let Some(headers) = &target.http_headers {
        consumer.insert("httpHeaders".to_string(), headers.clone());
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
    subs.retain(|subscription| !subscription.from_config);
    if let Some(target) = target {
        for org in &shared.orgs {
            subs.push(config_subscription(org, target));
        }
    }
}

fn identity_json(shared: &Shared, org: &OrgState) -> Value {
    let pusher = &org.pusher;
    let org_url = shared.org_url(org);
    json!({
        "displayName": pusher.display_name,
        "url": format!("{org_url}/_apis/Identities/{}", pusher.id),
        "_links": {"avatar": {"href": format!("{org_url}/_apis/GraphProfile/MemberAvatars/aad.{}", pusher.id)}},
        "id": pusher.id,
        "uniqueName": pusher.unique_name,
        "imageUrl": format!("{org_url}/_api/_common/identityImage?id={}", pusher.id),
        "descriptor": format!("aad.{}", pusher.id),
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
        .map(|update| update.name.trim_start_matches("refs/heads/").to_string())
        .unwrap_or_default();
    let who = &org.pusher.display_name;
    let commit_lines: Vec<String> = commits
        .iter()
        .map(|commit| {
            format!(
                " - {} {}",
                commit.message.lines().next().unwrap_or(""),
                &commit.id[..8.min(commit.id.len())]
            )
        })
        .collect();
    let count = commits.len();
    let plural = if count == 1 { "commit" } else { "commits" };
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
            "text": format!("{who} pushed {count} {plural} to branch {branch} of repository {}.\n{}", repo.name, commit_lines.join("\n")),
            "html": format!("{who} pushed {count} {plural} to branch <a href=\"{web}/#version=GB{branch}\">{branch}</a> of repository <a href=\"{web}/\">{}</a>.", repo.name),
            "markdown": format!("{who} pushed {count} {plural} to branch [{branch}]({web}/#version=GB{branch}) of repository [{}]({web}/).\n{}", repo.name, commit_lines.join("\n")),
        },
        "resource": {
            "commits": commits.iter().map(|commit| json!({
                "commitId": commit.id,
                "author": {"name": commit.author.name, "email": commit.author.email, "date": git_time(commit.author.time)},
                "committer": {"name": commit.committer.name, "email": commit.committer.email, "date": git_time(commit.committer.time)},
                "comment": commit.message.trim_end(),
                "url": format!("{org_url}/_apis/git/repositories/{}/commits/{}", repo.id, commit.id),
            })).collect::<Vec<_>>(),
            "refUpdates": push.ref_updates.iter().map(|update| json!({
                "name": update.name, "oldObjectId": update.old_object_id, "newObjectId": update.new_object_id
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
    let input = |key: &str| {
        sub.consumer_inputs
            .get(key)
            .map(|value| value.to_lowercase())
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
                wanted @ ("text" | "html" | "markdown") => {
                    if let Some(messages) = obj.get_mut(field).and_then(Value::as_object_mut) {
                        messages.retain(|name, _| name == wanted);
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
                let resource = obj.get("resource").cloned().unwrap_or(Value::Null);
                obj.insert(
                    "resource".into(),
                    json!({"pushId": resource.get("pushId"), "url": resource.get("url")}),
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
        for subscription in subs
            .iter_mut()
            .filter(|subscription| subscription.org.eq_ignore_ascii_case(&org.name))
        {
            if !subscription.matches_push(repo, push) {
                continue;
            }
            let Some(target) = subscription.target() else {
                continue;
            };
            subscription.notification_counter += 1;
            let mut payload = shape_for(subscription, event.clone());
            if let Some(obj) = payload.as_object_mut() {
                obj.insert(
                    "notificationId".into(),
                    json!(subscription.notification_counter),
                );
            }
            jobs.push((
                subscription.id.clone(),
                subscription.notification_counter,
                target,
                payload,
            ));
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
        bg.retain(|task| !task.is_finished());
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
            if let Some((name, value)) = line.split_once(':') {
                req = req.header(name.trim(), value.trim());
            }
        }
    }
    let (status, error, outcome) = match req.send().await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let outcome = match code {
                200..=299 => Outcome::Success,
                410 => Outcome::Gone,
                408 | 502 | 503 | 504 => Outcome::Transient,
                _ => Outcome::Enduring,
            };
            (Some(code), None, outcome)
        }
        Err(error) => (None, Some(error.to_string()), Outcome::Transient),
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

fn set_status(shared: &Shared, sub_id: &str, update: impl FnOnce(&mut Subscription)) -> bool {
    let mut subs = shared.subscriptions.lock();
    match subs
        .iter_mut()
        .find(|subscription| subscription.id == sub_id)
    {
        Some(subscription) => {
            update(subscription);
            subscription.modified_date = OffsetDateTime::now_utc();
            true
        }
        None => false,
    }
}

fn still_active(shared: &Shared, sub_id: &str) -> bool {
    shared.subscriptions.lock().iter().any(|subscription| {
        subscription.id == sub_id
            && matches!(
                subscription.status,
                SubscriptionStatus::Enabled | SubscriptionStatus::OnProbation
            )
    })
}

async fn scaled_sleep(shared: &Shared, secs: u64) {
    let scaled = secs as f64 * shared.settings.retry_time_scale;
    if scaled > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(scaled)).await;
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
                set_status(&shared, &sub_id, |subscription| {
                    subscription.status = SubscriptionStatus::Enabled;
                    subscription.probation_retries = 0;
                });
                return;
            }
            Outcome::Gone => {
                set_status(&shared, &sub_id, |subscription| {
                    subscription.status = SubscriptionStatus::DisabledBySystem
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
    set_status(&shared, &sub_id, |subscription| {
        subscription.status = SubscriptionStatus::OnProbation
    });
    for minutes in PROBATION_DELAYS_MIN {
        scaled_sleep(&shared, minutes * 60).await;
        if !still_active(&shared, &sub_id) {
            return;
        }
        attempt_no += 1;
        let probation_outcome = attempt(&shared, &job, attempt_no, true).await;
        match probation_outcome {
            Outcome::Success => {
                set_status(&shared, &sub_id, |subscription| {
                    subscription.status = SubscriptionStatus::Enabled;
                    subscription.probation_retries = 0;
                });
                return;
            }
            Outcome::Gone => {
                set_status(&shared, &sub_id, |subscription| {
                    subscription.status = SubscriptionStatus::DisabledBySystem
                });
                return;
            }
            _ => {
                set_status(&shared, &sub_id, |subscription| {
                    subscription.probation_retries += 1;
                    subscription.last_probation_retry_date = Some(OffsetDateTime::now_utc());
                });
            }
        }
    }
    set_status(&shared, &sub_id, |subscription| {
        subscription.status = SubscriptionStatus::DisabledBySystem
    });
}
