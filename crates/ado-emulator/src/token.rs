//! Entra ID v2.0 token endpoint (client credentials): shared secret (form or HTTP Basic), certificate
//! (`private_key_jwt` client assertion, PS256/RS256) or federated identity credential (workload identity
//! federation: an external issuer's RS256 token as the client assertion), tenant by GUID or verified domain,
//! Entra error bodies.
//!
//! # Federated identity credentials
//!
//! A `client_assertion` is taken as an external token when its (unverified) `aud` holds
//! `api://AzureADTokenExchange` (or the USGov / China variant), or when its `iss` is neither the client id
//! nor another GUID; otherwise it is a certificate assertion (`iss` = `sub` = client id) and checked as before.
//! [INFER] Entra does not document how it tells them apart; a GUID `iss` other than the client id stays a
//! certificate assertion (AADSTS700021).
//!
//! The external token is checked in this order, each refusal an Entra error body:
//! 1. header `alg` other than RS256 → AADSTS50027 (reason wording [INFER]);
//! 2. `iss`, `sub` or `aud` missing or not text → AADSTS50027;
//! 3. `iss` is an Entra issuer (`https://sts.windows.net/…`, `https://login.microsoftonline.com/…`, the other
//!    clouds' hosts, or this emulator's authority) → AADSTS700222 [INFER message and status];
//! 4. no credential of the app has `issuer` == `iss` (exact, case-sensitive) → AADSTS700211;
//! 5. none with that issuer has `subject` == `sub` → AADSTS700213;
//! 6. `aud` (text or array) does not hold the credential's audience → AADSTS700212;
//! 7. `FicPropagation { secs }` fault active and the credential was added less than `secs` ago →
//!    AADSTS70021 (Entra's propagation delay after a credential is added; Microsoft advises retrying);
//! 8. `GET {iss without one trailing '/'}/.well-known/openid-configuration`, then its `jwks_uri` (5 s timeout
//!    each, redirects not followed, bodies at most 64 KiB / 256 KiB, HTTP 200 + JSON, the document's `issuer`
//!    exactly `iss`, a non-empty `jwks_uri`, a `keys` array of which the first 100 are kept) → on any failure
//!    AADSTS50166 "Request to External OIDC endpoint failed." with the failed step [INFER: code].
//!    Assumed, not verified: Entra demands HTTPS with a publicly trusted certificate; the emulator also
//!    fetches `http://` so tests can serve the issuer locally. Entra caches the issuer's keys for a while; the
//!    emulator fetches both documents on every request (no cache), so a test can change them at any time.
//! 9. no RSA key (`kty` RSA, `use` absent or `sig`) with the header's `kid` (any RSA key when the header has no
//!    `kid` [INFER]) → AADSTS700027 "… The key was not found. …" [INFER reason];
//! 10. signature (RS256 only), `exp` and `nbf` (leeway `assertion_clock_skew_secs`) and the required claims
//!     `exp`/`iss`/`sub`/`aud`: bad signature → AADSTS700027, expired or not yet valid → AADSTS700024,
//!     anything else → AADSTS50027.
//!
//! Success issues the same token as the secret and certificate paths, with `appidacr` "2". Refusals are logged
//! (`tracing::info!`, code and tenant); the assertion never is.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::Extensions;
use axum::http::{header, HeaderMap, Response, StatusCode};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::{AppConfig, TenantConfig, AZURE_DEVOPS_RESOURCE, TOKEN_EXCHANGE_AUDIENCES};
use crate::faults::{Fault, RequestFaults};
use crate::http::{self, entra_time};
use crate::state::{enc_query, IssuedToken, Shared};

/// The only scope accepted: Azure DevOps' resource id + `/.default`.
pub fn devops_scope() -> String {
    format!("{AZURE_DEVOPS_RESOURCE}/.default")
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `(error, status, default message)` of an AADSTS code.
fn code_info(code: u32) -> (&'static str, StatusCode, &'static str) {
    match code {
        7000215 => (
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client}'.",
        ),
        7000222 => (
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "The provided client secret keys for app '{client}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
        ),
        7000218 => (
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ),
        700016 => (
            "unauthorized_client",
            StatusCode::BAD_REQUEST,
            "Application with identifier '{client}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
        ),
        90002 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
        ),
        900023 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
        ),
        900144 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "The request body must contain the following parameter: '{param}'.",
        ),
        70003 => (
            "unsupported_grant_type",
            StatusCode::BAD_REQUEST,
            "The app requested an unsupported grant type '{param}'.",
        ),
        70011 => (
            "invalid_scope",
            StatusCode::BAD_REQUEST,
            "The provided value for the input parameter 'scope' is not valid. The scope {param} is not valid.",
        ),
        500011 => (
            "invalid_resource",
            StatusCode::BAD_REQUEST,
            "The resource principal named {param} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
        ),
        700024 => (
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "Client assertion is not within its valid time range. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ),
        700027 => (
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "Client assertion failed signature validation. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ),
        700021 => (
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ),
        700023 => (
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
        ),
        50027 => ("invalid_request", StatusCode::BAD_REQUEST, "JWT token is invalid or malformed."),
        // Federated identity credentials. Messages of 700211 / 700212 / 700213 / 70021 as Entra words them up
        // to the first sentence; the rest of each and every `error` / status pair here: [INFER].
        700211 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "No matching federated identity record found for presented assertion issuer '{param}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        ),
        700212 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "No matching federated identity record found for presented assertion audience '{param}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        ),
        700213 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "No matching federated identity record found for presented assertion subject '{param}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        ),
        70021 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{param}'. Assertion Subject: '{param}'. Assertion Audience: '{param}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
        ),
        // [INFER] message: an Entra-issued token presented as the external token.
        700222 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "AAD-issued tokens may not be used for federated identity flows.",
        ),
        // [INFER] code for a failed discovery / JWKS fetch of the external issuer.
        50166 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "Request to External OIDC endpoint failed.",
        ),
        50059 => (
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        ),
        90055 => (
            "temporarily_unavailable",
            StatusCode::TOO_MANY_REQUESTS,
            "TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants.",
        ),
        90006 => (
            "temporarily_unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            "ExternalServerRetryableError - The service is temporarily unavailable. Try again later.",
        ),
        _ => ("invalid_request", StatusCode::BAD_REQUEST, "Emulated error."),
    }
}

/// Entra's error body: `error`, `error_description` ("AADSTSnnnn: ...\r\nTrace ID: ...\r\nCorrelation ID: ...\r\n
/// Timestamp: ..."), `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
pub(crate) fn entra_error(
    shared: &Shared,
    code: u32,
    message: Option<String>,
    correlation_id: &str,
    status: Option<StatusCode>,
) -> Response<Body> {
    let (error, default_status, default_message) = code_info(code);
    let message = message.unwrap_or_else(|| {
        default_message
            .replace("{client}", "00000000-0000-0000-0000-000000000000")
            .replace("{tenant}", "(unknown)")
            .replace("{param}", "(emulated)")
    });
    let now = OffsetDateTime::now_utc();
    let trace_id = Uuid::new_v4().to_string();
    let ts = entra_time(now);
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {ts}"
        ),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("{}/error?code={code}", shared.authority_url()),
    });
    let mut response = http::response(
        status.unwrap_or(default_status),
        "application/json; charset=utf-8",
        body.to_string(),
    );
    entra_headers(response.headers_mut(), &trace_id, correlation_id);
    response
}

fn entra_headers(headers: &mut HeaderMap, trace_id: &str, correlation_id: &str) {
    http::set_header(headers, "cache-control", "no-store, no-cache");
    http::set_header(headers, "pragma", "no-cache");
    http::set_header(headers, "x-ms-request-id", trace_id);
    http::set_header(headers, "client-request-id", correlation_id);
    http::set_header(headers, "x-ms-ests-server", "spicehub-emulator");
}

/// Answer of the token endpoint under an injected fault.
pub(crate) fn fault_response(shared: &Shared, fault: &Fault) -> Response<Body> {
    let corr = Uuid::new_v4().to_string();
    match fault {
        Fault::TokenError { aadsts } => entra_error(shared, *aadsts, None, &corr, None),
        Fault::SignInPage203 => http::sign_in_203(shared),
        Fault::RedirectToSignIn302 => http::redirect_to_sign_in(shared, &shared.authority_url()),
        Fault::Unauthorized401 => entra_error(shared, 7000215, None, &corr, None),
        Fault::Throttle429 { retry_after_secs } => {
            let mut response = entra_error(
                shared,
                90055,
                None,
                &corr,
                Some(StatusCode::TOO_MANY_REQUESTS),
            );
            http::set_header(
                response.headers_mut(),
                "retry-after",
                &retry_after_secs.to_string(),
            );
            response
        }
        Fault::ServerError { status } => entra_error(
            shared,
            90006,
            None,
            &corr,
            Some(StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)),
        ),
        _ => entra_error(
            shared,
            90006,
            None,
            &corr,
            Some(StatusCode::SERVICE_UNAVAILABLE),
        ),
    }
}

fn is_domain_like(candidate: &str) -> bool {
    candidate.contains('.')
        && candidate.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Resolves the `{tenant}` segment, or the Entra error code + message.
fn resolve_tenant<'a>(shared: &'a Shared, raw: &str) -> Result<&'a TenantConfig, (u32, String)> {
    let lowered = raw.to_lowercase();
    if matches!(lowered.as_str(), "common" | "organizations" | "consumers") {
        // [INFER] client credentials against a multi-tenant alias.
        return Err((50059, code_info(50059).2.to_string()));
    }
    if Uuid::parse_str(&lowered).is_ok() || is_domain_like(&lowered) {
        return shared
            .tenant(&lowered)
            .ok_or_else(|| (90002, code_info(90002).2.replace("{tenant}", raw)));
    }
    Err((900023, code_info(900023).2.replace("{tenant}", raw)))
}

fn tenant_display(tenant: &TenantConfig) -> String {
    if tenant.display_name.is_empty() {
        tenant.id.clone()
    } else {
        tenant.display_name.clone()
    }
}

fn app_usable_in(app: &AppConfig, tenant: &TenantConfig) -> bool {
    app.tenant.eq_ignore_ascii_case(&tenant.id)
        || (app.multi_tenant
            && app
                .consented_tenants
                .iter()
                .any(|consented| consented.eq_ignore_ascii_case(&tenant.id)))
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded.
    let dec = |part: &str| -> String {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Some((dec(user), dec(pass)))
}

struct TokenError(u32, String);

/// `POST {authority}/{tenant}/oauth2/v2.0/token`
pub(crate) async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(tenant_raw): Path<String>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let correlation_id = headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| Uuid::parse_str(value).is_ok())
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    // Set by the fault middleware (`Fault::FicPropagation`).
    let propagation_secs = extensions
        .get::<RequestFaults>()
        .and_then(|faults| faults.fic_propagation_secs);
    match issue(&shared, &tenant_raw, &headers, &body, propagation_secs).await {
        Ok(response) => response,
        Err(TokenError(code, message)) => {
            tracing::info!(code, tenant = %tenant_raw, "token request refused");
            entra_error(&shared, code, Some(message), &correlation_id, None)
        }
    }
}

/// How the client authenticated, as far as the synchronous checks go.
enum Presented {
    /// Secret ("1") or certificate ("2") checked: the `appidacr`.
    Checked(&'static str),
    /// An external token for a federated identity credential, still to verify (network).
    Federated(String),
}

/// A request whose tenant, client, scope and (but for a federated assertion) credential were checked.
struct Authenticated<'a> {
    tenant: &'a TenantConfig,
    app: AppConfig,
    presented: Presented,
}

async fn issue(
    shared: &Shared,
    tenant_raw: &str,
    headers: &HeaderMap,
    body: &[u8],
    propagation_secs: Option<u64>,
) -> Result<Response<Body>, TokenError> {
    // Synchronous checks first (they read the apps under a lock); the federated path fetches the issuer's
    // documents afterwards, with no lock held.
    let request = authenticate(shared, tenant_raw, headers, body)?;
    let appidacr = match request.presented {
        Presented::Checked(appidacr) => appidacr,
        Presented::Federated(assertion) => {
            verify_federated(shared, &request.app, &assertion, propagation_secs).await?;
            "2"
        }
    };
    Ok(issue_token(shared, request.tenant, &request.app, appidacr))
}

fn authenticate<'a>(
    shared: &'a Shared,
    tenant_raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Authenticated<'a>, TokenError> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let field = |name: &str| -> Option<String> {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
    };
    let tenant =
        resolve_tenant(shared, tenant_raw).map_err(|(code, message)| TokenError(code, message))?;
    let missing = |param: &str| TokenError(900144, code_info(900144).2.replace("{param}", param));

    let grant_type = field("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(TokenError(
            70003,
            code_info(70003).2.replace("{param}", &grant_type),
        ));
    }
    let basic = basic_credentials(headers);
    let client_id = field("client_id")
        .or_else(|| basic.as_ref().map(|(user, _)| user.clone()))
        .ok_or_else(|| missing("client_id"))?;
    let app = {
        let apps = shared.apps.read();
        apps.iter()
            .find(|candidate| {
                candidate.client_id.eq_ignore_ascii_case(&client_id)
                    && app_usable_in(candidate, tenant)
            })
            .cloned()
    };
    let Some(app) = app else {
        return Err(TokenError(
            700016,
            code_info(700016)
                .2
                .replace("{client}", &client_id)
                .replace("{tenant}", &tenant_display(tenant)),
        ));
    };
    let scope = field("scope").unwrap_or_default();
    if scope.split_whitespace().collect::<Vec<_>>() != [devops_scope().as_str()] {
        let shown = if scope.is_empty() {
            "''".to_string()
        } else {
            scope.clone()
        };
        return Err(TokenError(
            70011,
            code_info(70011).2.replace("{param}", &shown),
        ));
    }

    let secret =
        field("client_secret").or_else(|| basic.as_ref().map(|(_, password)| password.clone()));
    let assertion = field("client_assertion");
    let assertion_type = field("client_assertion_type");
    let presented = if assertion.is_some() || assertion_type.is_some() {
        if assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(TokenError(
                50027,
                format!(
                    "JWT token is invalid or malformed. [Reason - client_assertion_type must be '{JWT_BEARER}'.]"
                ),
            ));
        }
        let assertion = assertion.ok_or_else(|| missing("client_assertion"))?;
        if is_federated(&assertion, &app.client_id) {
            Presented::Federated(assertion)
        } else {
            verify_assertion(shared, &app, tenant, tenant_raw, &assertion)?;
            Presented::Checked("2")
        }
    } else if let Some(secret) = secret {
        check_secret(&app, &secret)?;
        Presented::Checked("1")
    } else {
        return Err(TokenError(7000218, code_info(7000218).2.to_string()));
    };
    Ok(Authenticated {
        tenant,
        app,
        presented,
    })
}

/// The token of an authenticated client (a JWT-looking opaque v1 access token, as Azure DevOps receives them).
fn issue_token(
    shared: &Shared,
    tenant: &TenantConfig,
    app: &AppConfig,
    appidacr: &str,
) -> Response<Body> {
    let now = OffsetDateTime::now_utc();
    let lifetime = shared.settings.token_lifetime_secs;
    let exp = now + time::Duration::seconds(lifetime as i64);
    let sp = app.service_principal_id(&tenant.id);
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": "spicehub-emulator", "kid": "spicehub-emulator"});
    let claims = json!({
        "aud": AZURE_DEVOPS_RESOURCE,
        "iss": format!("https://sts.windows.net/{}/", tenant.id),
        "iat": now.unix_timestamp(),
        "nbf": now.unix_timestamp(),
        "exp": exp.unix_timestamp(),
        "aio": Uuid::new_v4().to_string(),
        "appid": app.client_id,
        "appidacr": appidacr,
        "idp": format!("https://sts.windows.net/{}/", tenant.id),
        "oid": sp,
        "rh": "0.emulated.",
        "sub": sp,
        "tid": tenant.id,
        "uti": Uuid::new_v4().simple().to_string(),
        "ver": "1.0",
    });
    let mut sig = [0u8; 256];
    rand::thread_rng().fill_bytes(&mut sig);
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(sig)
    );
    {
        let mut tokens = shared.tokens.lock();
        tokens.retain(|_, issued| issued.expires_at + time::Duration::hours(2) > now);
        tokens.insert(
            token.clone(),
            IssuedToken {
                tenant_id: tenant.id.clone(),
                client_id: app.client_id.clone(),
                sp_object_id: sp,
                expires_at: exp,
            },
        );
    }
    tracing::info!(client_id = %app.client_id, tenant = %tenant.id, lifetime, "token issued");
    let body = json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    });
    let mut response = http::response(
        StatusCode::OK,
        "application/json; charset=utf-8",
        body.to_string(),
    );
    entra_headers(
        response.headers_mut(),
        &Uuid::new_v4().to_string(),
        &Uuid::new_v4().to_string(),
    );
    response
}

fn check_secret(app: &AppConfig, presented: &str) -> Result<(), TokenError> {
    let now = OffsetDateTime::now_utc();
    let mut expired_match = false;
    for secret in &app.secrets {
        if bool::from(secret.value.as_bytes().ct_eq(presented.as_bytes())) {
            match secret.expires_at {
                Some(expires) if expires <= now => expired_match = true,
                _ => return Ok(()),
            }
        }
    }
    if expired_match {
        return Err(TokenError(
            7000222,
            code_info(7000222).2.replace("{client}", &app.client_id),
        ));
    }
    Err(TokenError(
        7000215,
        code_info(7000215).2.replace("{client}", &app.client_id),
    ))
}

/// A parsed certificate credential.
struct CertKey {
    sha1_b64: String,
    sha256_b64: String,
    sha1_hex: String,
    public_key_pkcs1: Vec<u8>,
    not_after: OffsetDateTime,
}

fn parse_cert(pem: &str) -> Option<CertKey> {
    use x509_cert::der::{DecodePem, Encode};
    let cert = x509_cert::Certificate::from_pem(pem.as_bytes()).ok()?;
    let der = cert.to_der().ok()?;
    let pk = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let not_after_secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let sha1 = Sha1::digest(&der);
    let sha256 = Sha256::digest(&der);
    Some(CertKey {
        sha1_b64: URL_SAFE_NO_PAD.encode(sha1),
        sha256_b64: URL_SAFE_NO_PAD.encode(sha256),
        sha1_hex: sha1.iter().map(|byte| format!("{byte:02X}")).collect(),
        public_key_pkcs1: pk,
        not_after: OffsetDateTime::from_unix_timestamp(not_after_secs as i64)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    })
}

fn thumb_matches(header_value: &str, b64: &str, hex: &str) -> bool {
    let thumbprint = header_value.trim_end_matches('=');
    thumbprint == b64 || thumbprint.eq_ignore_ascii_case(hex)
}

fn verify_assertion(
    shared: &Shared,
    app: &AppConfig,
    tenant: &TenantConfig,
    tenant_raw: &str,
    assertion: &str,
) -> Result<(), TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    let malformed = |why: &str| {
        TokenError(
            50027,
            format!("JWT token is invalid or malformed. [Reason - {why}]"),
        )
    };
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed("not a JWT"))?;
    if !matches!(
        header.alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    ) {
        return Err(malformed(
            "unsupported signing algorithm; use PS256 or RS256",
        ));
    }
    let claims = insecure_claims(assertion).ok_or_else(|| malformed("payload is not JSON"))?;

    let now = OffsetDateTime::now_utc();
    let certs: Vec<(CertKey, Option<OffsetDateTime>)> = app
        .certificates
        .iter()
        .filter_map(|credential| {
            parse_cert(&credential.pem).map(|key| (key, credential.expires_at))
        })
        .collect();
    let presented = header.x5t_s256.clone().or_else(|| header.x5t.clone());
    let candidates: Vec<&(CertKey, Option<OffsetDateTime>)> = match (&header.x5t_s256, &header.x5t)
    {
        (Some(s256), _) => certs
            .iter()
            .filter(|(key, _)| thumb_matches(s256, &key.sha256_b64, ""))
            .collect(),
        (None, Some(s1)) => certs
            .iter()
            .filter(|(key, _)| thumb_matches(s1, &key.sha1_b64, &key.sha1_hex))
            .collect(),
        (None, None) => certs.iter().collect(),
    };
    let key_not_found = || {
        TokenError(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'. Review the documentation at https://learn.microsoft.com/graph/api/application-get?view=graph-rest-1.0&tabs=http to learn how to get configured keys.]",
                presented.clone().unwrap_or_default(),
                app.client_id
            ),
        )
    };
    if candidates.is_empty() {
        return Err(key_not_found());
    }

    let client_id = app.client_id.as_str();
    let mut audiences = vec![
        format!("{}/{}/oauth2/v2.0/token", shared.authority_url(), tenant.id),
        format!(
            "{}/{}/oauth2/v2.0/token",
            shared.authority_url(),
            tenant_raw
        ),
        format!("{}/{}/oauth2/token", shared.authority_url(), tenant.id),
        format!("{}/{}/oauth2/token", shared.authority_url(), tenant_raw),
    ];
    for domain in &tenant.domains {
        audiences.push(format!(
            "{}/{}/oauth2/v2.0/token",
            shared.authority_url(),
            domain
        ));
    }

    let mut last_err = key_not_found();
    for (key, expires_at) in candidates {
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = shared.settings.assertion_clock_skew_secs;
        validation.validate_nbf = true;
        validation.set_audience(&audiences);
        validation.set_issuer(&[client_id]);
        validation.sub = Some(client_id.to_string());
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let dk = DecodingKey::from_rsa_der(&key.public_key_pkcs1);
        match jsonwebtoken::decode::<Value>(assertion, &dk, &validation) {
            Ok(_) => {
                let key_end = expires_at.unwrap_or(key.not_after);
                if key_end <= now {
                    return Err(TokenError(
                        700027,
                        format!(
                            "Client assertion failed signature validation. [Reason - The key used is expired., Thumbprint of key used by client: '{}', Found key 'Start=..., End={}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                            key.sha1_hex,
                            entra_time(key_end),
                            app.client_id
                        ),
                    ));
                }
                return Ok(());
            }
            Err(error) => {
                last_err = match error.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidKeyFormat => {
                        TokenError(700027, code_info(700027).2.to_string())
                    }
                    ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
                        time_range_error(now, &claims)
                    }
                    ErrorKind::InvalidAudience => {
                        TokenError(700023, code_info(700023).2.to_string())
                    }
                    ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                        TokenError(700021, code_info(700021).2.to_string())
                    }
                    ErrorKind::MissingRequiredClaim(claim) => {
                        malformed(&format!("missing claim '{claim}'"))
                    }
                    _ => malformed("could not validate the assertion"),
                };
                if !matches!(last_err.0, 700027) {
                    // The signature was good (claims are checked after it): no other key will do better.
                    return Err(last_err);
                }
            }
        }
    }
    Err(last_err)
}

/// AADSTS700024 with the current time and the assertion's `nbf` / `exp`.
fn time_range_error(now: OffsetDateTime, claims: &Value) -> TokenError {
    let claim_time = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_i64)
            .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
            .map(entra_time)
            .unwrap_or_else(|| "(none)".into())
    };
    TokenError(
        700024,
        format!(
            "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
            entra_time(now),
            claim_time("nbf"),
            claim_time("exp")
        ),
    )
}

/// The JSON of a JWT's part `index` (0 header, 1 payload), unverified.
fn insecure_part(jwt: &str, index: usize) -> Option<Value> {
    let part = jwt.split('.').nth(index)?;
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn insecure_claims(jwt: &str) -> Option<Value> {
    insecure_part(jwt, 1)
}

/// `aud` as a list (a JWT may carry one text or an array).
fn audiences_of(claims: &Value) -> Option<Vec<String>> {
    match claims.get("aud")? {
        Value::String(audience) => Some(vec![audience.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// Whether a client assertion is an external token for a federated identity credential rather than a
/// certificate assertion: its unverified `aud` holds a token exchange audience, or its `iss` is neither the
/// client id nor another GUID (see the module documentation). Unreadable assertions stay on the certificate
/// path, which refuses them (AADSTS50027).
fn is_federated(assertion: &str, client_id: &str) -> bool {
    let Some(claims) = insecure_claims(assertion) else {
        return false;
    };
    let exchange_audience = audiences_of(&claims).is_some_and(|audiences| {
        audiences
            .iter()
            .any(|audience| TOKEN_EXCHANGE_AUDIENCES.contains(&audience.as_str()))
    });
    let foreign_issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .is_some_and(|iss| !iss.eq_ignore_ascii_case(client_id) && Uuid::parse_str(iss).is_err());
    exchange_audience || foreign_issuer
}

/// Whether `iss` names an Entra ID token issuer (any cloud) or this emulator's authority.
fn is_entra_issuer(shared: &Shared, iss: &str) -> bool {
    const ENTRA_ISSUERS: [&str; 7] = [
        "https://sts.windows.net/",
        "https://login.microsoftonline.com/",
        "https://login.windows.net/",
        "https://login.microsoftonline.us/",
        "https://sts.chinacloudapi.cn/",
        "https://login.chinacloudapi.cn/",
        "https://login.partner.microsoftonline.cn/",
    ];
    let lowered = iss.to_ascii_lowercase();
    let own = format!("{}/", shared.authority_url().to_ascii_lowercase());
    ENTRA_ISSUERS
        .iter()
        .any(|prefix| lowered.starts_with(prefix))
        || lowered.starts_with(&own)
}

/// Largest OpenID configuration document read from an external issuer.
const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
/// Largest JWKS document read from an external issuer.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Keys of a JWKS Entra considers (the first ones).
const MAX_JWKS_KEYS: usize = 100;
/// Timeout of each fetch from an external issuer.
const ISSUER_FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An error and its sources, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// GET `url`, expecting HTTP 200 and a JSON body of at most `limit` bytes (no redirects, 5 s).
async fn fetch_json(shared: &Shared, url: &str, limit: usize) -> Result<Value, String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("not a valid URL ({error})"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err("only https (and, in the emulator, http) URLs are fetched".into());
    }
    let mut response = shared
        .http
        .get(parsed)
        .header(header::ACCEPT, "application/json")
        .timeout(ISSUER_FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|error| {
            if error.is_timeout() {
                "no answer within 5 seconds".to_string()
            } else {
                format!("the request failed ({})", error_chain(&error))
            }
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        let redirect = if (300..400).contains(&status) {
            " (redirects are not followed)"
        } else {
            ""
        };
        return Err(format!("answered HTTP {status}{redirect}"));
    }
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(format!("the body is larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        if error.is_timeout() {
            "no complete answer within 5 seconds".to_string()
        } else {
            format!("reading the body failed ({})", error_chain(&error))
        }
    })? {
        if body.len() + chunk.len() > limit {
            return Err(format!("the body is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|_| "the body is not JSON".to_string())
}

/// The issuer's `jwks_uri` and its first [`MAX_JWKS_KEYS`] keys, or which step failed.
async fn fetch_issuer_keys(shared: &Shared, issuer: &str) -> Result<(String, Vec<Value>), String> {
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    let discovery_url = format!("{base}/.well-known/openid-configuration");
    let discovery = fetch_json(shared, &discovery_url, MAX_DISCOVERY_BYTES)
        .await
        .map_err(|why| format!("OpenID configuration '{discovery_url}': {why}"))?;
    match discovery.get("issuer").and_then(Value::as_str) {
        Some(published) if published == issuer => {}
        Some(published) => {
            return Err(format!(
                "OpenID configuration '{discovery_url}': its issuer '{published}' is not the assertion's issuer '{issuer}'"
            ))
        }
        None => {
            return Err(format!(
                "OpenID configuration '{discovery_url}' has no issuer"
            ))
        }
    }
    let jwks_uri = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .filter(|uri| !uri.is_empty())
        .ok_or_else(|| format!("OpenID configuration '{discovery_url}' has no jwks_uri"))?
        .to_string();
    let jwks = fetch_json(shared, &jwks_uri, MAX_JWKS_BYTES)
        .await
        .map_err(|why| format!("JWKS '{jwks_uri}': {why}"))?;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("JWKS '{jwks_uri}' has no keys array"))?;
    let kept = keys.iter().take(MAX_JWKS_KEYS).cloned().collect();
    Ok((jwks_uri, kept))
}

/// Verifies an external token against the app's federated identity credentials and the issuer's published
/// keys (checks and codes in the module documentation). Runs with no lock held.
async fn verify_federated(
    shared: &Shared,
    app: &AppConfig,
    assertion: &str,
    propagation_secs: Option<u64>,
) -> Result<(), TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    let malformed = |why: &str| {
        TokenError(
            50027,
            format!("JWT token is invalid or malformed. [Reason - {why}]"),
        )
    };
    let header = insecure_part(assertion, 0).ok_or_else(|| malformed("the header is not JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "RS256" {
        // [INFER] the reason's wording; Microsoft documents that only RS256 is accepted.
        return Err(malformed(&format!(
            "the signing algorithm '{alg}' is not supported for federated identity credential assertions; only RS256 is accepted."
        )));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string);
    let claims = insecure_claims(assertion).ok_or_else(|| malformed("payload is not JSON"))?;
    let text_claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| malformed(&format!("missing claim '{name}'")))
    };
    let iss = text_claim("iss")?;
    let sub = text_claim("sub")?;
    let audiences = audiences_of(&claims).ok_or_else(|| malformed("missing claim 'aud'"))?;

    if is_entra_issuer(shared, &iss) {
        return Err(TokenError(700222, code_info(700222).2.to_string()));
    }
    let shown_audience = audiences.join(", ");
    let with_issuer: Vec<_> = app
        .federated_credentials
        .iter()
        .filter(|credential| credential.issuer == iss)
        .collect();
    if with_issuer.is_empty() {
        return Err(TokenError(
            700211,
            code_info(700211).2.replace("{param}", &iss),
        ));
    }
    let Some(credential) = with_issuer
        .into_iter()
        .find(|credential| credential.subject == sub)
    else {
        return Err(TokenError(
            700213,
            code_info(700213).2.replace("{param}", &sub),
        ));
    };
    let audience = credential.audiences.first().cloned().unwrap_or_default();
    if !audiences.contains(&audience) {
        return Err(TokenError(
            700212,
            code_info(700212).2.replace("{param}", &shown_audience),
        ));
    }
    let now = OffsetDateTime::now_utc();
    if let (Some(secs), Some(created_at)) = (propagation_secs, credential.created_at) {
        if now - created_at < time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)) {
            return Err(TokenError(
                70021,
                format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{shown_audience}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
                ),
            ));
        }
    }

    let (jwks_uri, keys) = fetch_issuer_keys(shared, &iss).await.map_err(|why| {
        TokenError(
            50166,
            format!("Request to External OIDC endpoint failed. [Reason - {why}]"),
        )
    })?;
    let candidates: Vec<&Value> = keys
        .iter()
        .filter(|key| {
            let text = |name: &str| key.get(name).and_then(Value::as_str);
            text("kty") == Some("RSA")
                && !matches!(text("use"), Some(usage) if usage != "sig")
                && match &kid {
                    Some(kid) => text("kid") == Some(kid.as_str()),
                    None => true,
                }
        })
        .collect();
    // [INFER] the reason's wording.
    let key_not_found = || {
        TokenError(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., Key id of the key used by the client: '{}', the issuer's keys at '{jwks_uri}' (the first {MAX_JWKS_KEYS}) hold no RSA signing key with this id. Review the documentation at https://learn.microsoft.com/entra/workload-id/workload-identity-federation .]",
                kid.clone().unwrap_or_default()
            ),
        )
    };
    let mut last_err = key_not_found();
    for key in candidates {
        let text = |name: &str| key.get(name).and_then(Value::as_str);
        let (Some(modulus), Some(exponent)) = (text("n"), text("e")) else {
            continue;
        };
        let Ok(decoding_key) = DecodingKey::from_rsa_components(modulus, exponent) else {
            continue;
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = shared.settings.assertion_clock_skew_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[audience.as_str()]);
        validation.set_issuer(&[iss.as_str()]);
        validation.sub = Some(sub.clone());
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        match jsonwebtoken::decode::<Value>(assertion, &decoding_key, &validation) {
            Ok(_) => return Ok(()),
            Err(error) => {
                last_err = match error.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidKeyFormat => TokenError(
                        700027,
                        format!(
                            "Client assertion failed signature validation. [Reason - The signature does not match the issuer's key '{}'.]",
                            kid.clone().unwrap_or_default()
                        ),
                    ),
                    ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
                        time_range_error(now, &claims)
                    }
                    ErrorKind::MissingRequiredClaim(claim) => {
                        malformed(&format!("missing claim '{claim}'"))
                    }
                    _ => malformed("could not validate the assertion"),
                };
                if last_err.0 != 700027 {
                    // The signature was good (claims are checked after it): no other key will do better.
                    return Err(last_err);
                }
            }
        }
    }
    Err(last_err)
}

/// `GET {authority}/{tenant}/v2.0/.well-known/openid-configuration`
pub(crate) async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant_raw): Path<String>,
) -> Response<Body> {
    let corr = Uuid::new_v4().to_string();
    let tenant = match resolve_tenant(&shared, &tenant_raw) {
        Ok(tenant) => tenant,
        Err((code, msg)) => return entra_error(&shared, code, Some(msg), &corr, None),
    };
    let authority = shared.authority_url();
    let tenant_id = &tenant.id;
    let body = json!({
        "token_endpoint": format!("{authority}/{tenant_id}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{authority}/{tenant_id}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{authority}/{tenant_id}/v2.0"),
        "authorization_endpoint": format!("{authority}/{tenant_id}/oauth2/v2.0/authorize"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    });
    http::response(
        StatusCode::OK,
        "application/json; charset=utf-8",
        body.to_string(),
    )
}

/// `GET {authority}/{tenant}/adminconsent?client_id=&redirect_uri=&state=` — the tenant's admin "approves" at
/// once: the app becomes usable in the tenant and the browser is sent back to `redirect_uri`.
pub(crate) async fn admin_consent(
    State(shared): State<Arc<Shared>>,
    Path(tenant_raw): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response<Body> {
    let corr = Uuid::new_v4().to_string();
    let Some(redirect) = query.get("redirect_uri").filter(|uri| !uri.is_empty()) else {
        return entra_error(
            &shared,
            900144,
            Some("The request body must contain the following parameter: 'redirect_uri'.".into()),
            &corr,
            None,
        );
    };
    let state = query.get("state").cloned().unwrap_or_default();
    let sep = if redirect.contains('?') { '&' } else { '?' };
    let tenant = match resolve_tenant(&shared, &tenant_raw) {
        Ok(tenant) => tenant.clone(),
        Err((code, msg)) => return entra_error(&shared, code, Some(msg), &corr, None),
    };
    let client_id = query.get("client_id").cloned().unwrap_or_default();
    let location = {
        let mut apps = shared.apps.write();
        match apps.iter_mut().find(|candidate| candidate.client_id.eq_ignore_ascii_case(&client_id)) {
            Some(app) if app.multi_tenant || app.tenant.eq_ignore_ascii_case(&tenant.id) => {
                if !app.consented_tenants.iter().any(|consented| consented.eq_ignore_ascii_case(&tenant.id)) {
                    app.consented_tenants.push(tenant.id.clone());
                }
                format!(
                    "{redirect}{sep}admin_consent=True&tenant={}&state={}",
                    tenant.id,
                    enc_query(&state)
                )
            }
            _ => format!(
                "{redirect}{sep}error=unauthorized_client&error_description={}&state={}",
                enc_query(&format!(
                    "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{}'.",
                    tenant_display(&tenant)
                )),
                enc_query(&state)
            ),
        }
    };
    let mut response = http::response(StatusCode::FOUND, "text/html; charset=utf-8", "");
    http::set_header(response.headers_mut(), "location", &location);
    response
}
