//! `POST /gateway/public/sync`: Azure DevOps `git.push` service-hook
//! deliveries (see `shared/spec/azure-devops.md` §5).
//!
//! Order matters: Basic Auth is checked first, in constant time against
//! every provider's credentials, before a byte of the body is read or
//! parsed; then the size limit (413), then JSON (400). Everything that is
//! authenticated and well-formed gets 200 and is recorded, also when it is
//! ignored, because Azure DevOps puts a subscription on probation after
//! non-2xx answers (and disables it on 410, which we never send). The work
//! itself is a job in the queue: the answer does not wait for a sync.
//!
//! The Authorization header and the body are never logged.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;

use super::ingest::{PendingAction, PendingDelivery};
use super::AppState;
use spicehub_core::auth::ClientAddr;
use spicehub_core::db::deliveries::Recorded;
use spicehub_core::sync::queue::JobKind;

pub const PATH: &str = spicehub_routes::WEBHOOK;

/// Event ids and repository ids of Microsoft's documented git.push samples,
/// which the "Test" button of a subscription sends (`useRealData=false`).
const SAMPLE_EVENT_IDS: &[&str] = &[
    "03c164c2-8912-4d5e-8009-3707d5f83734",
    "a0a0a0a0-bbbb-cccc-dddd-e1e1e1e1e1e1",
];
const SAMPLE_REPOSITORY_IDS: &[&str] = &[
    "278d5cd2-584d-4b63-824a-2ba458937249",
    "f5f5f5f5-aaaa-bbbb-cccc-d6d6d6d6d6d6",
];
const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

#[derive(Serialize)]
struct Answer {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<String>,
}

fn answer(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Response {
    (
        status,
        Json(Answer {
            status: kind,
            reason: Some(reason.into()),
            delivery: None,
            job: None,
        }),
    )
        .into_response()
}

fn unauthorized() -> Response {
    let mut response = answer(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong Basic Auth credentials",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"spicehub\""),
    );
    response
}

fn unavailable() -> Response {
    // Only for our own failures (database down): 503 is a transient failure
    // to Azure DevOps, which retries it without probation.
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "error",
        "the hub cannot store deliveries right now; retry later",
    )
}

/// `(user, password)` of a `Basic` Authorization header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Reads at most `limit` bytes; `Err(true)` when the body is larger,
/// `Err(false)` when it could not be read.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, bool> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| false)?;
        if out.len() + chunk.len() > limit {
            return Err(true);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The body as text and as a JSON object, or why it is refused (400).
/// Untrusted input: never panics (property-tested below); serde_json
/// refuses nesting deeper than 128 levels, so depth costs no stack.
fn parse_event(bytes: &[u8]) -> Result<(&str, Value), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the body is not UTF-8".to_owned())?;
    match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => Ok((text, v)),
        Ok(_) => Err("the body is not a JSON object".to_owned()),
        Err(e) => Err(format!("malformed JSON: {e}")),
    }
}

/// The update of `branch` among a push's `refUpdates`, if any.
fn tracked_update<'a>(event: &'a Value, branch: &str) -> Option<&'a Value> {
    event
        .pointer("/resource/refUpdates")
        .and_then(Value::as_array)?
        .iter()
        .find(|u| str_at(u, "/name") == Some(branch))
}

pub async fn receive(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Counted (in aggregate, never the password or body) so the Webhooks
    // page can tell "wrong password" from "never reached".
    let refused = |provider: Option<String>| {
        let ip = client.as_ref().map_or(
            std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            |Extension(ClientAddr(ip))| *ip,
        );
        state.refusals.record(provider, ip);
        unauthorized()
    };
    let Some((user, password)) = basic_credentials(&headers) else {
        return refused(None);
    };
    let provider_id = match state.webhook_cache.authenticate(&user, &password).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "webhook: cannot read provider credentials");
            return unavailable();
        }
    };
    drop(password);
    let Some(provider_id) = provider_id else {
        tracing::warn!("webhook: delivery with wrong or unknown credentials refused");
        // Only a user name a provider uses gets its own count; any other
        // is "unknown", so made-up names cannot add rows.
        return refused(state.webhook_cache.provider_of_user(&user));
    };

    let limit = state.config.webhook_body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "rejected",
            format!("the body is larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let bytes = match read_limited(body, limit).await {
        Ok(b) => b,
        Err(true) => return too_large(),
        Err(false) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "rejected",
                "the body could not be read",
            )
        }
    };
    let (text, event) = match parse_event(&bytes) {
        Ok(parsed) => parsed,
        Err(reason) => return answer(StatusCode::BAD_REQUEST, "rejected", reason),
    };
    let Some(event_id) = str_at(&event, "/id").filter(|id| !id.is_empty()) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "rejected",
            "the event has no `id` (not a service-hook delivery)",
        );
    };

    let outcome = match decide(&state, &provider_id, event_id, &event).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "webhook: cannot look up the repository");
            return unavailable();
        }
    };
    let action = match (outcome.action, outcome.repository_id.is_some()) {
        (Some(Ok(kind)), true) => PendingAction::Enqueue(kind),
        (Some(Err(reason)), _) => PendingAction::Ignore(reason),
        // decide() always sets an action, and a repository with Ok.
        _ => PendingAction::Ignore("nothing to do".into()),
    };
    let delivery = PendingDelivery {
        provider_id: provider_id.clone(),
        event_id: outcome.dedupe.then(|| event_id.to_owned()),
        event_type: str_at(&event, "/eventType").map(str::to_owned),
        repository_id: outcome.repository_id,
        ref_name: outcome.ref_name,
        new_commit: outcome.new_commit,
        body: text.to_owned(),
        action,
    };
    let repository_id = delivery.repository_id.clone();
    match state.ingest.record(delivery).await {
        Ok(Recorded::Queued {
            delivery_id,
            job_id,
        }) => {
            tracing::info!(
                provider = %provider_id,
                event = %event_id,
                repository = repository_id.as_deref().unwrap_or("-"),
                job = %job_id,
                "webhook: push queued"
            );
            Json(Answer {
                status: "queued",
                reason: None,
                delivery: Some(delivery_id),
                job: Some(job_id),
            })
            .into_response()
        }
        Ok(Recorded::Ignored {
            delivery_id,
            reason,
        }) => {
            tracing::info!(provider = %provider_id, event = %event_id, reason = %reason, "webhook: delivery ignored");
            Json(Answer {
                status: "ignored",
                reason: Some(reason),
                delivery: Some(delivery_id),
                job: None,
            })
            .into_response()
        }
        Ok(Recorded::Duplicate) => {
            tracing::info!(provider = %provider_id, event = %event_id, "webhook: redelivery ignored");
            answer(
                StatusCode::OK,
                "ignored",
                format!("event {event_id} was already received (redelivery)"),
            )
        }
        // The writer logged the cause.
        Err(_) => unavailable(),
    }
}

/// What a delivery is about and what to do with it (owned, so the record
/// can borrow from it).
#[derive(Default)]
struct Outcome {
    /// False for the Test sample, which is recorded without dedupe.
    dedupe: bool,
    repository_id: Option<String>,
    ref_name: Option<String>,
    new_commit: Option<String>,
    /// `Ok(kind)`: enqueue; `Err(reason)`: ignore.
    action: Option<Result<JobKind, String>>,
}

fn ignored(reason: String) -> Outcome {
    Outcome {
        dedupe: true,
        action: Some(Err(reason)),
        ..Outcome::default()
    }
}

/// Decides what to do with an authenticated delivery. `Err` only for our
/// own database failures.
async fn decide(
    state: &AppState,
    provider_id: &str,
    event_id: &str,
    event: &Value,
) -> Result<Outcome, spicehub_core::db::DbError> {
    let event_type = str_at(event, "/eventType");
    let repo_guid = str_at(event, "/resource/repository/id").map(str::to_ascii_lowercase);
    let is_sample = SAMPLE_EVENT_IDS.contains(&event_id)
        || repo_guid
            .as_deref()
            .is_some_and(|r| SAMPLE_REPOSITORY_IDS.contains(&r))
        || str_at(event, "/subscriptionId") == Some(ZERO_GUID);
    if is_sample {
        // The Test button sends the same id every time: record each one.
        return Ok(Outcome {
            dedupe: false,
            ..ignored(
                "Azure DevOps test notification (sample payload): the hook reaches the hub".into(),
            )
        });
    }
    if event_type != Some("git.push") {
        let shown = event_type.unwrap_or("(none)");
        return Ok(ignored(format!(
            "event type `{shown}` is not handled (only git.push)"
        )));
    }
    let Some(repo_guid) = repo_guid else {
        return Ok(ignored(
            "the push names no repository (set \"Resource details to send\" to All)".into(),
        ));
    };
    let Some(repository) = state
        .webhook_cache
        .repository(provider_id, &repo_guid)
        .await?
    else {
        return Ok(ignored(format!(
            "repository {repo_guid} is not replicated by this hub"
        )));
    };
    let mut outcome = Outcome {
        repository_id: Some(repository.id.clone()),
        ..ignored(String::new())
    };
    let updates = event
        .pointer("/resource/refUpdates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(update) = tracked_update(event, &repository.tracked_branch) else {
        let pushed: Vec<&str> = updates.iter().filter_map(|u| str_at(u, "/name")).collect();
        let pushed = if pushed.is_empty() {
            "no ref".to_owned()
        } else {
            pushed.join(", ")
        };
        outcome.action = Some(Err(format!(
            "the push updated {pushed}, not the tracked branch {}",
            repository.tracked_branch
        )));
        return Ok(outcome);
    };
    outcome.ref_name = str_at(update, "/name").map(str::to_owned);
    outcome.new_commit = str_at(update, "/newObjectId").map(str::to_owned);
    if outcome.new_commit.as_deref() == Some(ZERO_SHA) {
        outcome.action = Some(Err(format!(
            "the tracked branch {} was deleted",
            repository.tracked_branch
        )));
        return Ok(outcome);
    }
    // The payload only triggers: the runner diffs from the last synced
    // commit to the branch head it reads itself (spec §0.8).
    outcome.action = Some(Ok(if repository.synced {
        JobKind::RecentChanges
    } else {
        JobKind::FirstReplication
    }));
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded_leniently_and_safely() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_credentials(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("u:p:with:colons")))
                .unwrap(),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("u".into(), "p:with:colons".into()))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(basic_credentials(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&h), None);
    }

    use proptest::prelude::*;

    /// JSON values up to a few levels deep, with the keys a push has.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            let key = prop_oneof![
                Just("id".to_owned()),
                Just("eventType".to_owned()),
                Just("resource".to_owned()),
                Just("refUpdates".to_owned()),
                Just("repository".to_owned()),
                Just("name".to_owned()),
                Just("newObjectId".to_owned()),
                Just("subscriptionId".to_owned()),
                "[a-zA-Z]{1,8}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
        ))]

        #[test]
        fn any_bytes_are_either_an_object_or_a_clear_refusal(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            match parse_event(&bytes) {
                Ok((_, v)) => prop_assert!(v.is_object()),
                Err(reason) => prop_assert!(!reason.is_empty()),
            }
        }

        #[test]
        fn any_json_is_classified_without_panicking(v in json_value(), branch in "refs/heads/[a-z]{1,5}") {
            let text = v.to_string();
            let parsed = parse_event(text.as_bytes());
            prop_assert_eq!(parsed.is_ok(), v.is_object());
            let _ = tracked_update(&v, &branch);
            let _ = str_at(&v, "/resource/repository/id");
        }

        #[test]
        fn any_authorization_header_is_decoded_or_refused(raw in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut h = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&raw) {
                h.insert(header::AUTHORIZATION, value);
            }
            let _ = basic_credentials(&h);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        assert!(parse_event(deep.as_bytes()).is_err());
        let deep = format!(
            "{{\"a\":{}1{}}}",
            "{\"b\":".repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(parse_event(deep.as_bytes()).is_err());
    }
}
