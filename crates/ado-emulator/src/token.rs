//! Entra ID v2.0 token endpoint (client credentials): shared secret (form or HTTP Basic) or certificate
//! (`private_key_jwt` client assertion, PS256/RS256), tenant by GUID or verified domain, Entra error bodies.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
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

use crate::config::{AppConfig, TenantConfig, AZURE_DEVOPS_RESOURCE};
use crate::faults::Fault;
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
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let correlation_id = headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| Uuid::parse_str(value).is_ok())
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    match issue(&shared, &tenant_raw, &headers, &body) {
        Ok(response) => response,
        Err(TokenError(code, message)) => {
            tracing::info!(code, tenant = %tenant_raw, "token request refused");
            entra_error(&shared, code, Some(message), &correlation_id, None)
        }
    }
}

fn issue(
    shared: &Shared,
    tenant_raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response<Body>, TokenError> {
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
    let appidacr = if assertion.is_some() || assertion_type.is_some() {
        if assertion_type.as_deref() != Some(JWT_BEARER) {
            return Err(TokenError(
                50027,
                format!(
                    "JWT token is invalid or malformed. [Reason - client_assertion_type must be '{JWT_BEARER}'.]"
                ),
            ));
        }
        let assertion = assertion.ok_or_else(|| missing("client_assertion"))?;
        verify_assertion(shared, &app, tenant, tenant_raw, &assertion)?;
        "2"
    } else if let Some(secret) = secret {
        check_secret(&app, &secret)?;
        "1"
    } else {
        return Err(TokenError(7000218, code_info(7000218).2.to_string()));
    };

    // Issue a JWT-looking opaque token (v1 access token shape, as Azure DevOps receives them).
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
    Ok(response)
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
                        let claim_time = |name: &str| {
                            claims
                                .get(name)
                                .and_then(Value::as_i64)
                                .and_then(|seconds| {
                                    OffsetDateTime::from_unix_timestamp(seconds).ok()
                                })
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

fn insecure_claims(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
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
