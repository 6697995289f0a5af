// Entra ID token endpoint over real HTTP: success, every natural error code, client assertions.

use crate::common::*;
use ado_emulator::testkit::{self, AssertionBuilder};
use base64::Engine;
use serde_json::Value;

fn form<'a>(client: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client),
        ("client_secret", secret),
        ("scope", SCOPE),
        ("grant_type", "client_credentials"),
    ]
}

#[tokio::test]
async fn secret_success_shape_and_expiry() {
    let w = world_with(|c| c.with_token_lifetime(1)).await;
    let r = w.token_response(TENANT, &form(CLIENT, SECRET)).await;
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 1);
    assert_eq!(v["ext_expires_in"], 1);
    let token = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "JWT-looking token");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "499b84ac-1321-427f-aa17-267ca6975798");
    assert_eq!(claims["appid"], CLIENT);
    assert_eq!(claims["tid"], TENANT);
    // Works, then expires (1 s lifetime) → 203 sign-in page.
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let r = w.get(&token, "_apis/projects").await;
    assert_eq!(r.status(), 203);
    assert!(r.text().await.unwrap().contains("Sign In"));
    assert_eq!(w.emu.token_requests(), 1);
}

#[tokio::test]
async fn tenant_by_domain_and_basic_client_auth() {
    let w = world().await;
    let r = w.token_response(DOMAIN, &form(CLIENT, SECRET)).await;
    assert_eq!(r.status(), 200);
    let r = w
        .http
        .post(w.emu.token_url(TENANT))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("scope", SCOPE), ("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "client_secret_basic");
    let log = w.emu.token_request_log();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[0].fields.get("client_secret").map(String::as_str),
        Some("<redacted>")
    );
    assert_eq!(log[0].fields.get("scope").map(String::as_str), Some(SCOPE));
    assert!(log[1].basic_auth);
}

#[tokio::test]
async fn natural_error_codes() {
    let w = world().await;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, u32, &'a str);
    let cases: Vec<Case> = vec![
        (
            TENANT,
            form(CLIENT, "wrong"),
            401,
            7000215,
            "invalid_client",
        ),
        (
            TENANT,
            form(CLIENT, EXPIRED),
            401,
            7000222,
            "invalid_client",
        ),
        (
            "22222222-2222-4222-8222-222222222222",
            form(CLIENT, SECRET),
            400,
            90002,
            "invalid_request",
        ),
        (
            "unknown.example",
            form(CLIENT, SECRET),
            400,
            90002,
            "invalid_request",
        ),
        (
            "not a tenant!",
            form(CLIENT, SECRET),
            400,
            900023,
            "invalid_request",
        ),
        (
            TENANT,
            form("33333333-3333-4333-8333-333333333333", SECRET),
            400,
            700016,
            "unauthorized_client",
        ),
        // An app of another tenant is "not found in the directory".
        (
            TENANT,
            form(OTHER_CLIENT, OTHER_SECRET),
            400,
            700016,
            "unauthorized_client",
        ),
        (
            TENANT,
            vec![
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ],
            400,
            70011,
            "invalid_scope",
        ),
        (
            TENANT,
            vec![
                ("client_id", CLIENT),
                ("scope", SCOPE),
                ("grant_type", "client_credentials"),
            ],
            401,
            7000218,
            "invalid_client",
        ),
        (
            TENANT,
            vec![
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", SCOPE),
            ],
            400,
            900144,
            "invalid_request",
        ),
    ];
    for (tenant, f, status, code, error) in cases {
        let r = w.token_response(tenant, &f).await;
        let (s, c, v) = aadsts(r).await;
        assert_eq!((s, c), (status, code), "tenant {tenant} form {f:?}: {v}");
        assert_eq!(v["error"], error);
        let desc = v["error_description"].as_str().unwrap();
        assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
        assert!(
            desc.contains("\r\nTrace ID: ")
                && desc.contains("\r\nCorrelation ID: ")
                && desc.contains("\r\nTimestamp: ")
        );
        for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
            assert!(
                v.get(k).is_some_and(|x| x.is_string()),
                "{k} missing in {v}"
            );
        }
        assert!(v["error_uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("code={code}")));
    }
    // The secret's ID instead of its value is "invalid client secret" too.
    let r = w
        .token_response(
            TENANT,
            &form(CLIENT, "aaaaaaaa-0000-4000-8000-000000000000"),
        )
        .await;
    assert_eq!(aadsts(r).await.1, 7000215);
    // Correlation id is echoed from client-request-id.
    let corr = "0f0f0f0f-0000-4000-8000-000000000000";
    let r = w
        .http
        .post(w.emu.token_url(TENANT))
        .header("client-request-id", corr)
        .form(&form(CLIENT, "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(aadsts(r).await.2["correlation_id"], corr);
}

async fn assertion_call(w: &World, client: &str, assertion: &str) -> reqwest::Response {
    w.token_response(
        TENANT,
        &[
            ("client_id", client),
            ("scope", SCOPE),
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn certificate_assertions() {
    let w = world().await;
    let aud = w.emu.token_url(TENANT);
    let key = testkit::REGISTERED_KEY_PEM;
    let cert = testkit::REGISTERED_CERT_PEM;

    // PS256 and RS256 both work, and the token works on DevOps.
    let ok = AssertionBuilder::new(CERT_CLIENT, &aud)
        .sign(key, cert)
        .unwrap();
    let r = assertion_call(&w, CERT_CLIENT, &ok).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let mut rs = AssertionBuilder::new(CERT_CLIENT, &aud);
    rs.alg = jsonwebtoken::Algorithm::RS256;
    let r = assertion_call(&w, CERT_CLIENT, &rs.sign(key, cert).unwrap()).await;
    let v: Value = r.json().await.unwrap();
    let token = v["access_token"]
        .as_str()
        .expect("RS256 accepted")
        .to_string();
    assert_eq!(w.get(&token, "_apis/projects").await.status(), 200);

    // Expired assertion.
    let mut old = AssertionBuilder::new(CERT_CLIENT, &aud);
    old.not_before = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
    old.expires = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let (s, c, v) =
        aadsts(assertion_call(&w, CERT_CLIENT, &old.sign(key, cert).unwrap()).await).await;
    assert_eq!((s, c), (401, 700024), "{v}");
    assert_eq!(v["error"], "invalid_client");

    // Not yet valid.
    let mut future = AssertionBuilder::new(CERT_CLIENT, &aud);
    future.not_before = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    future.expires = future.not_before + time::Duration::minutes(10);
    assert_eq!(
        aadsts(assertion_call(&w, CERT_CLIENT, &future.sign(key, cert).unwrap()).await)
            .await
            .1,
        700024
    );

    // Bad signature: signed with another key but claiming the registered certificate's thumbprint.
    let forged = AssertionBuilder::new(CERT_CLIENT, &aud)
        .sign(testkit::OTHER_KEY_PEM, cert)
        .unwrap();
    let (s, c, _) = aadsts(assertion_call(&w, CERT_CLIENT, &forged).await).await;
    assert_eq!((s, c), (401, 700027));

    // Tampered payload.
    let mut parts: Vec<String> = ok.split('.').map(str::to_string).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::json!({"aud": aud, "iss": CERT_CLIENT, "sub": CERT_CLIENT, "exp": 4_000_000_000u64, "nbf": 0}).to_string(),
    );
    assert_eq!(
        aadsts(assertion_call(&w, CERT_CLIENT, &parts.join(".")).await)
            .await
            .1,
        700027
    );

    // Unknown certificate thumbprint.
    let mut unknown = AssertionBuilder::new(CERT_CLIENT, &aud);
    unknown.thumbprint_override = Some("bm90LWEtcmVnaXN0ZXJlZC1jZXJ0aWZpY2F0ZQ".into());
    let (_, c, v) =
        aadsts(assertion_call(&w, CERT_CLIENT, &unknown.sign(key, cert).unwrap()).await).await;
    assert_eq!(c, 700027);
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("The key was not found"));

    // Expired certificate credential (registered, valid signature, key expired in 2021).
    let with_expired = AssertionBuilder::new(CERT_CLIENT, &aud)
        .sign(testkit::OTHER_KEY_PEM, testkit::EXPIRED_CERT_PEM)
        .unwrap();
    let (_, c, v) = aadsts(assertion_call(&w, CERT_CLIENT, &with_expired).await).await;
    assert_eq!(c, 700027);
    assert!(v["error_description"].as_str().unwrap().contains("expired"));

    // Wrong audience / issuer.
    let wrong_aud = AssertionBuilder::new(
        CERT_CLIENT,
        "https://login.microsoftonline.com/x/oauth2/v2.0/token",
    )
    .sign(key, cert)
    .unwrap();
    assert_eq!(
        aadsts(assertion_call(&w, CERT_CLIENT, &wrong_aud).await)
            .await
            .1,
        700023
    );
    let mut wrong_iss = AssertionBuilder::new(CERT_CLIENT, &aud);
    wrong_iss.issuer = Some(CLIENT.into());
    assert_eq!(
        aadsts(assertion_call(&w, CERT_CLIENT, &wrong_iss.sign(key, cert).unwrap()).await)
            .await
            .1,
        700021
    );

    // Garbage assertion.
    assert_eq!(
        aadsts(assertion_call(&w, CERT_CLIENT, "not-a-jwt").await)
            .await
            .1,
        50027
    );

    // The assertion's value never reaches the log.
    assert!(w.emu.token_request_log().iter().all(|r| r
        .fields
        .get("client_assertion")
        .is_none_or(|v| v == "<redacted>")));
}

#[tokio::test]
async fn multi_tenant_app_admin_consent() {
    let w = world().await;
    // OTHER_CLIENT lives in OTHER_TENANT; make it multi-tenant through a config edit of a new world.
    let w2 = world_with(|mut c| {
        if let Some(a) = c.apps.iter_mut().find(|a| a.client_id == OTHER_CLIENT) {
            a.multi_tenant = true;
        }
        c
    })
    .await;
    drop(w);
    assert_eq!(
        aadsts(
            w2.token_response(TENANT, &form(OTHER_CLIENT, OTHER_SECRET))
                .await
        )
        .await
        .1,
        700016
    );
    let r = w2
        .http
        .get(format!(
            "{}/{TENANT}/adminconsent?client_id={OTHER_CLIENT}&redirect_uri=http://hub.test/consent&state=xyz",
            w2.emu.authority_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.starts_with("http://hub.test/consent?admin_consent=True&tenant=")
            && loc.ends_with("state=xyz"),
        "{loc}"
    );
    assert_eq!(
        w2.token_response(TENANT, &form(OTHER_CLIENT, OTHER_SECRET))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn discovery_document() {
    let w = world().await;
    let v: Value = w
        .http
        .get(format!(
            "{}/{DOMAIN}/v2.0/.well-known/openid-configuration",
            w.emu.authority_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["token_endpoint"], w.emu.token_url(TENANT));
    assert!(v["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "private_key_jwt"));
}
