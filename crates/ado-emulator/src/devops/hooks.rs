//! Service Hooks area: subscriptions list / create / get / replace / delete, and notifications (delivery history).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{json, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::AccessLevel;
use crate::devops::{Ctx, HandlerResult};
use crate::http::{self, ado_json, ado_time, tf_error};
use crate::webhook::{Subscription, SubscriptionStatus};

fn hook_error(message: &str) -> Response<Body> {
    tf_error(
        StatusCode::BAD_REQUEST,
        message,
        "ServiceHookException",
        http::TN_SERVICE_HOOK,
    )
}

fn not_found(id: &str) -> Response<Body> {
    tf_error(
        StatusCode::NOT_FOUND,
        &format!("VS400000: The subscription with id '{id}' does not exist."),
        "SubscriptionNotFoundException",
        http::TN_SUBSCRIPTION_NOT_FOUND,
    )
}

fn may_manage(ctx: &Ctx) -> Result<(), Response<Body>> {
    let principal = &ctx.principal;
    let allowed = principal.level == AccessLevel::Basic
        && ctx.org.hook_managers.as_ref().is_none_or(|list| {
            list.iter()
                .any(|manager| manager.eq_ignore_ascii_case(&principal.client_id))
        });
    if allowed {
        Ok(())
    } else {
        Err(tf_error(
            StatusCode::FORBIDDEN,
            &format!(
                "Access Denied: {} needs the following permission(s) on the resource {} to perform this action: Edit subscriptions",
                if principal.display_name.is_empty() { &principal.client_id } else { &principal.display_name },
                ctx.org.name
            ),
            "UnauthorizedAccessException",
            http::TN_ACCESS_DENIED,
        ))
    }
}

/// `GET {org}/_apis/hooks/subscriptions` (`publisherId`, `eventType`, `consumerId`, `consumerActionId`).
pub(crate) fn list(ctx: &Ctx) -> HandlerResult {
    let query = &ctx.query;
    let org_url = ctx.org_url();
    let eq = |want: Option<&str>, have: &str| {
        want.is_none_or(|wanted| wanted.eq_ignore_ascii_case(have))
    };
    let value: Vec<Value> = ctx
        .shared
        .subscriptions
        .lock()
        .iter()
        .filter(|subscription| subscription.org.eq_ignore_ascii_case(&ctx.org.name))
        .filter(|subscription| {
            eq(query.get("publisherId"), &subscription.publisher_id)
                && eq(query.get("eventType"), &subscription.event_type)
                && eq(query.get("consumerId"), &subscription.consumer_id)
                && eq(
                    query.get("consumerActionId"),
                    &subscription.consumer_action_id,
                )
        })
        .map(|subscription| subscription.to_json(&org_url))
        .collect();
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}

fn inputs(raw: Option<&Value>) -> BTreeMap<String, String> {
    raw.and_then(Value::as_object)
        .map(|object| {
            object
                .iter()
                .filter_map(|(key, value)| {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        Value::Null => return None,
                        other => other.to_string(),
                    };
                    Some((key.clone(), text))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Validates a subscription body; returns the parts of a new subscription.
fn parse_body(ctx: &Ctx) -> Result<Subscription, Response<Body>> {
    let body: Value = serde_json::from_slice(&ctx.body)
        .map_err(|error| hook_error(&format!("The request body is not valid JSON: {error}")))?;
    let field = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (publisher_id, event_type, consumer_id, action_id) = (
        field("publisherId"),
        field("eventType"),
        field("consumerId"),
        field("consumerActionId"),
    );
    for (name, value) in [
        ("publisherId", &publisher_id),
        ("eventType", &event_type),
        ("consumerId", &consumer_id),
        ("consumerActionId", &action_id),
    ] {
        if value.is_empty() {
            return Err(hook_error(&format!("The value for '{name}' is required.")));
        }
    }
    if publisher_id != "tfs" {
        return Err(hook_error(&format!(
            "Publisher '{publisher_id}' was not found."
        )));
    }
    if consumer_id != "webHooks" || action_id != "httpRequest" {
        return Err(hook_error(&format!(
            "Consumer action '{consumer_id}/{action_id}' is not supported by the spicehub emulator (only webHooks/httpRequest)."
        )));
    }
    let mut publisher = inputs(body.get("publisherInputs"));
    let consumer = inputs(body.get("consumerInputs"));
    let url = consumer.get("url").cloned().unwrap_or_default();
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.contains(char::is_whitespace)
    {
        return Err(hook_error(&format!(
            "The input 'url' value '{url}' is not a valid absolute URI."
        )));
    }
    for key in ["basicAuthUsername", "basicAuthPassword"] {
        if let Some(value) = consumer.get(key) {
            if value.len() > 256 || value.chars().any(char::is_whitespace) {
                return Err(hook_error(&format!(
                    "The input '{key}' value is not valid: it must not contain whitespace."
                )));
            }
        }
    }
    if let Some(project_id) = publisher
        .get("projectId")
        .filter(|project_id| !project_id.is_empty())
    {
        if ctx.org.project(project_id).is_none() {
            return Err(hook_error(&format!(
                "The input 'projectId' value '{project_id}' is not valid."
            )));
        }
    }
    if let Some(repository) = publisher
        .get("repository")
        .filter(|repository| !repository.is_empty())
    {
        if ctx.org.repo_by_id(repository).is_none() {
            return Err(hook_error(&format!(
                "The input 'repository' value '{repository}' is not valid."
            )));
        }
    }
    publisher.insert("hostId".into(), ctx.org.id.clone());
    publisher
        .entry("tfsSubscriptionId".into())
        .or_insert_with(|| Uuid::new_v4().to_string());
    let status = match body.get("status").and_then(Value::as_str) {
        Some("disabledByUser") => SubscriptionStatus::DisabledByUser,
        _ => SubscriptionStatus::Enabled,
    };
    let now = OffsetDateTime::now_utc();
    Ok(Subscription {
        id: Uuid::new_v4().to_string(),
        org: ctx.org.name.clone(),
        status,
        publisher_id,
        event_type,
        resource_version: body
            .get("resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        consumer_id,
        consumer_action_id: action_id,
        publisher_inputs: publisher,
        consumer_inputs: consumer,
        created_by: ctx.principal.object_id.clone(),
        created_date: now,
        modified_date: now,
        probation_retries: 0,
        last_probation_retry_date: None,
        notification_counter: 0,
        from_config: false,
    })
}

/// `POST {org}/_apis/hooks/subscriptions`
pub(crate) fn create(ctx: &Ctx) -> HandlerResult {
    may_manage(ctx)?;
    let sub = parse_body(ctx)?;
    let created = sub.to_json(&ctx.org_url());
    ctx.shared.subscriptions.lock().push(sub);
    Ok(ado_json(StatusCode::OK, &created))
}

/// `GET {org}/_apis/hooks/subscriptions/{id}`
pub(crate) fn get(ctx: &Ctx, id: &str) -> HandlerResult {
    ctx.shared
        .subscriptions
        .lock()
        .iter()
        .find(|subscription| {
            subscription.id.eq_ignore_ascii_case(id)
                && subscription.org.eq_ignore_ascii_case(&ctx.org.name)
        })
        .map(|subscription| ado_json(StatusCode::OK, &subscription.to_json(&ctx.org_url())))
        .ok_or_else(|| not_found(id))
}

/// `PUT {org}/_apis/hooks/subscriptions/{id}` — refused for a subscription disabled by the system ("Update
/// subscription does not work for disabled subscriptions"; delete and re-create it).
pub(crate) fn replace(ctx: &Ctx, id: &str) -> HandlerResult {
    may_manage(ctx)?;
    let new = parse_body(ctx)?;
    let mut subs = ctx.shared.subscriptions.lock();
    let Some(subscription) = subs.iter_mut().find(|subscription| {
        subscription.id.eq_ignore_ascii_case(id)
            && subscription.org.eq_ignore_ascii_case(&ctx.org.name)
    }) else {
        return Err(not_found(id));
    };
    if subscription.status == SubscriptionStatus::DisabledBySystem {
        return Err(hook_error(&format!(
            "The subscription '{id}' is disabled by the system and cannot be updated. Delete it and create a new one."
        )));
    }
    subscription.event_type = new.event_type;
    subscription.publisher_inputs = new.publisher_inputs;
    subscription.consumer_inputs = new.consumer_inputs;
    subscription.resource_version = new.resource_version;
    subscription.status = new.status;
    subscription.modified_date = OffsetDateTime::now_utc();
    Ok(ado_json(
        StatusCode::OK,
        &subscription.to_json(&ctx.org_url()),
    ))
}

/// `DELETE {org}/_apis/hooks/subscriptions/{id}` → 204
pub(crate) fn delete(ctx: &Ctx, id: &str) -> HandlerResult {
    may_manage(ctx)?;
    let mut subs = ctx.shared.subscriptions.lock();
    let before = subs.len();
    subs.retain(|subscription| {
        !(subscription.id.eq_ignore_ascii_case(id)
            && subscription.org.eq_ignore_ascii_case(&ctx.org.name))
    });
    if subs.len() == before {
        return Err(not_found(id));
    }
    Ok(http::response(StatusCode::NO_CONTENT, "text/plain", ""))
}

/// `GET {org}/_apis/hooks/subscriptions/{id}/notifications` — delivery history (one entry per notification).
pub(crate) fn notifications(ctx: &Ctx, id: &str) -> HandlerResult {
    if !ctx.shared.subscriptions.lock().iter().any(|subscription| {
        subscription.id.eq_ignore_ascii_case(id)
            && subscription.org.eq_ignore_ascii_case(&ctx.org.name)
    }) {
        return Err(not_found(id));
    }
    let deliveries = ctx.shared.deliveries.lock().clone();
    let mut by_notification: BTreeMap<u64, Vec<_>> = BTreeMap::new();
    for delivery in deliveries
        .into_iter()
        .filter(|delivery| delivery.subscription_id.eq_ignore_ascii_case(id))
    {
        by_notification
            .entry(delivery.notification_id)
            .or_default()
            .push(delivery);
    }
    let value: Vec<Value> = by_notification
        .iter()
        .rev()
        .map(|(notification_id, attempts)| {
            let last = attempts.last();
            let ok = last
                .and_then(|delivery| delivery.status)
                .is_some_and(|status| (200..300).contains(&status));
            json!({
                "id": notification_id,
                "subscriptionId": id,
                "eventId": last.map(|delivery| delivery.event_id.clone()),
                "eventType": "git.push",
                "result": if ok { "succeeded" } else { "failed" },
                "status": "completed",
                "createdDate": attempts.first().map(|delivery| ado_time(delivery.at.into())),
                "modifiedDate": last.map(|delivery| ado_time(delivery.at.into())),
                "details": {
                    "requestAttempts": attempts.len(),
                    "errorMessage": last.and_then(|delivery| delivery.error.clone()),
                    "response": last.and_then(|delivery| delivery.status).map(|status| format!("Status Code: {status}")),
                },
            })
        })
        .collect();
    Ok(ado_json(
        StatusCode::OK,
        &json!({"count": value.len(), "value": value}),
    ))
}
