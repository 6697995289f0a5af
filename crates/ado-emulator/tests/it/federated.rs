// Federated identity credentials (workload identity federation) over real HTTP: a local OpenID Connect
// issuer (discovery document + JWKS of RSA keys made here), credentials added through the admin API, every
// refusal code, the propagation fault, the admin API's validation.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::*;
use ado_emulator::{FederatedCredentialConfig, TokenRequestRecord};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

const FED_CLIENT: &str = "f0f0f0f0-1111-4222-8333-444444444444";
const SUBJECT: &str = "repo:contoso/app:ref:refs/heads/main";
const EXCHANGE: &str = "api://AzureADTokenExchange";

struct TestKey {
    private_pem: String,
    /// The public JWK (`kty`, `kid`, `n`, `e`).
    jwk: Value,
}

impl TestKey {
    fn generate(kid: &str) -> TestKey {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
        let private_pem = private
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .expect("PKCS#1 PEM")
            .to_string();
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        });
        TestKey { private_pem, jwk }
    }
}

/// Two keys per test binary (RSA key generation is slow): the issuer's (`kid` "issuer-key", in the JWKS) and
/// another one (`kid` "stranger-key", never published).
fn keys() -> &'static (TestKey, TestKey) {
    static KEYS: OnceLock<(TestKey, TestKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let other = std::thread::spawn(|| TestKey::generate("stranger-key"));
        let issuer = TestKey::generate("issuer-key");
        (issuer, other.join().expect("key thread"))
    })
}

/// A local OpenID Connect issuer: `{base}/oidc` serves a discovery document and a JWKS with the issuer key
/// (after 3 unrelated keys); `{base}/liar` serves a discovery document naming another issuer. Returns
/// `{base}`.
async fn oidc_issuer() -> String {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (issuer_key, _) = keys();
    let mut published = Vec::new();
    for index in 0..3 {
        let mut unrelated = issuer_key.jwk.clone();
        unrelated["kid"] = json!(format!("rotated-{index}"));
        unrelated["n"] = json!(URL_SAFE_NO_PAD.encode([0x9d_u8; 256]));
        published.push(unrelated);
    }
    published.push(issuer_key.jwk.clone());
    let discovery = json!({
        "issuer": format!("{base}/oidc"),
        "jwks_uri": format!("{base}/oidc/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let liar = json!({
        "issuer": "https://someone-else.example",
        "jwks_uri": format!("{base}/oidc/keys"),
    });
    let jwks = json!({ "keys": published });
    let app = axum::Router::new()
        .route(
            "/oidc/.well-known/openid-configuration",
            get(move || async move { axum::Json(discovery) }),
        )
        .route("/oidc/keys", get(move || async move { axum::Json(jwks) }))
        .route(
            "/liar/.well-known/openid-configuration",
            get(move || async move { axum::Json(liar) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// A port with nothing listening.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr")
}

struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: Value,
    nbf_offset: i64,
    exp_offset: i64,
}

impl<'a> Claims<'a> {
    fn good(iss: &'a str) -> Self {
        Claims {
            iss,
            sub: SUBJECT,
            aud: json!(EXCHANGE),
            nbf_offset: -10,
            exp_offset: 600,
        }
    }
}

fn sign(key: &TestKey, kid: &str, alg: Algorithm, claims: &Claims) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = Header::new(alg);
    header.typ = Some("JWT".into());
    header.kid = Some(kid.into());
    let payload = json!({
        "iss": claims.iss,
        "sub": claims.sub,
        "aud": claims.aud,
        "iat": now + claims.nbf_offset,
        "nbf": now + claims.nbf_offset,
        "exp": now + claims.exp_offset,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let encoding = EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).expect("encoding key");
    jsonwebtoken::encode(&header, &payload, &encoding).expect("sign")
}

fn good_assertion(iss: &str) -> String {
    sign(
        &keys().0,
        "issuer-key",
        Algorithm::RS256,
        &Claims::good(iss),
    )
}

async fn federated_world() -> World {
    world_with(|c| c.with_app(TENANT, FED_CLIENT, "federated app")).await
}

fn fic_url(w: &World, client_id: &str) -> String {
    format!(
        "{}/_emulator/apps/{client_id}/federated-credentials",
        w.emu.base_url()
    )
}

async fn add_fic(w: &World, client_id: &str, body: Value) -> (u16, Value) {
    let r = w
        .http
        .post(fic_url(w, client_id))
        .json(&body)
        .send()
        .await
        .expect("admin request");
    let status = r.status().as_u16();
    (status, r.json().await.expect("admin JSON"))
}

fn fic(name: &str, issuer: &str, subject: &str) -> Value {
    json!({"name": name, "issuer": issuer, "subject": subject, "audiences": [EXCHANGE]})
}

async fn assertion_call(w: &World, client_id: &str, assertion: &str) -> reqwest::Response {
    w.token_response(
        TENANT,
        &[
            ("client_id", client_id),
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

async fn code_of(w: &World, assertion: &str) -> (u16, u32, String) {
    let (status, code, body) = aadsts(assertion_call(w, FED_CLIENT, assertion).await).await;
    let description = body["error_description"]
        .as_str()
        .expect("error_description")
        .to_string();
    assert!(
        description.starts_with(&format!("AADSTS{code}:")),
        "{description}"
    );
    (status, code, description)
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("claims")
}

#[tokio::test]
async fn federated_assertion_gets_a_token() {
    let base = oidc_issuer().await;
    let issuer = format!("{base}/oidc");
    let w = federated_world().await;
    let (status, stored) = add_fic(&w, FED_CLIENT, fic("github-main", &issuer, SUBJECT)).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["name"], "github-main");
    assert_eq!(stored["issuer"], issuer.as_str());
    assert_eq!(stored["subject"], SUBJECT);
    assert_eq!(stored["audiences"], json!([EXCHANGE]));
    assert!(stored["created_at"].is_string(), "{stored}");
    let listed: Value = w
        .http
        .get(fic_url(&w, FED_CLIENT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([stored]));

    let r = assertion_call(&w, FED_CLIENT, &good_assertion(&issuer)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let claims = claims_of(v["access_token"].as_str().unwrap());
    assert_eq!(claims["appid"], FED_CLIENT);
    assert_eq!(claims["appidacr"], "2");
    assert_eq!(claims["tid"], TENANT);
    // An array `aud` holding the audience works too.
    let mut claims = Claims::good(&issuer);
    claims.aud = json!(["something-else", EXCHANGE]);
    let r = assertion_call(
        &w,
        FED_CLIENT,
        &sign(&keys().0, "issuer-key", Algorithm::RS256, &claims),
    )
    .await;
    assert_eq!(r.status(), 200);
    // The assertion never reaches the token request log.
    assert!(w
        .emu
        .token_request_log()
        .iter()
        .all(|record: &TokenRequestRecord| record
            .fields
            .get("client_assertion")
            .is_some_and(|value| value == "<redacted>")));

    // Deleted: the issuer is unknown again.
    let r = w
        .http
        .delete(format!("{}/github-main", fic_url(&w, FED_CLIENT)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, code, description) = code_of(&w, &good_assertion(&issuer)).await;
    assert_eq!(code, 700211, "{description}");
}

#[tokio::test]
async fn federated_assertion_refusals() {
    let base = oidc_issuer().await;
    let issuer = format!("{base}/oidc");
    let w = federated_world().await;
    let (status, _) = add_fic(&w, FED_CLIENT, fic("deploy", &issuer, SUBJECT)).await;
    assert_eq!(status, 201);
    let (issuer_key, stranger_key) = keys();

    // Wrong subject (case matters).
    let mut claims = Claims::good(&issuer);
    claims.sub = "repo:Contoso/app:ref:refs/heads/main";
    let (status, code, description) = code_of(
        &w,
        &sign(issuer_key, "issuer-key", Algorithm::RS256, &claims),
    )
    .await;
    assert_eq!((status, code), (400, 700213), "{description}");
    assert!(description.contains("subject 'repo:Contoso/app:ref:refs/heads/main'"));

    // Wrong audience.
    let mut claims = Claims::good(&issuer);
    claims.aud = json!("api://SomethingElse");
    let (_, code, description) = code_of(
        &w,
        &sign(issuer_key, "issuer-key", Algorithm::RS256, &claims),
    )
    .await;
    assert_eq!(code, 700212, "{description}");
    assert!(description.contains("audience 'api://SomethingElse'"));

    // Wrong issuer (another URL; and the registered one with another case).
    let other_issuer = format!("{base}/OIDC");
    let (_, code, description) = code_of(&w, &good_assertion(&other_issuer)).await;
    assert_eq!(code, 700211, "{description}");
    assert!(description.contains(&format!("issuer '{other_issuer}'")));

    // Expired (beyond the 5 minutes of tolerated skew).
    let mut claims = Claims::good(&issuer);
    claims.nbf_offset = -7200;
    claims.exp_offset = -3600;
    let (_, code, description) = code_of(
        &w,
        &sign(issuer_key, "issuer-key", Algorithm::RS256, &claims),
    )
    .await;
    assert_eq!(code, 700024, "{description}");
    assert!(description.contains("Current time"), "{description}");
    // Not yet valid.
    let mut claims = Claims::good(&issuer);
    claims.nbf_offset = 3600;
    claims.exp_offset = 7200;
    let (_, code, _) = code_of(
        &w,
        &sign(issuer_key, "issuer-key", Algorithm::RS256, &claims),
    )
    .await;
    assert_eq!(code, 700024);

    // Signed by a key the issuer does not publish.
    let (status, code, description) = code_of(
        &w,
        &sign(
            stranger_key,
            "stranger-key",
            Algorithm::RS256,
            &Claims::good(&issuer),
        ),
    )
    .await;
    assert_eq!((status, code), (401, 700027), "{description}");
    assert!(
        description.contains("The key was not found"),
        "{description}"
    );
    // ... or claiming the published key's id.
    let (_, code, description) = code_of(
        &w,
        &sign(
            stranger_key,
            "issuer-key",
            Algorithm::RS256,
            &Claims::good(&issuer),
        ),
    )
    .await;
    assert_eq!(code, 700027, "{description}");
    assert!(!description.contains("The key was not found"));

    // PS256: only RS256 is accepted.
    let (_, code, description) = code_of(
        &w,
        &sign(
            issuer_key,
            "issuer-key",
            Algorithm::PS256,
            &Claims::good(&issuer),
        ),
    )
    .await;
    assert_eq!(code, 50027, "{description}");
    assert!(description.contains("PS256"), "{description}");

    // An Entra-issued token (the emulator's own access token) presented as the external token.
    let entra_token = w.token().await;
    let (_, code, description) = code_of(&w, &entra_token).await;
    assert_eq!(code, 700222, "{description}");

    // A missing claim.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("issuer-key".into());
    let no_sub = jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer, "aud": EXCHANGE, "exp": now + 600}),
        &EncodingKey::from_rsa_pem(issuer_key.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let (_, code, _) = code_of(&w, &no_sub).await;
    assert_eq!(code, 50027);

    // The certificate path is untouched: the good assertion still works afterwards.
    assert_eq!(
        assertion_call(&w, FED_CLIENT, &good_assertion(&issuer))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn federated_issuer_unreachable_or_inconsistent() {
    let base = oidc_issuer().await;
    let w = federated_world().await;
    // Nothing listening.
    let dead = format!("http://{}", closed_port().await);
    assert_eq!(
        add_fic(&w, FED_CLIENT, fic("dead", &dead, SUBJECT)).await.0,
        201
    );
    let (_, code, description) = code_of(&w, &good_assertion(&dead)).await;
    assert_eq!(code, 50166, "{description}");
    assert!(
        description.contains("OpenID configuration"),
        "{description}"
    );
    // A discovery document naming another issuer.
    let liar = format!("{base}/liar");
    assert_eq!(
        add_fic(&w, FED_CLIENT, fic("liar", &liar, SUBJECT)).await.0,
        201
    );
    let (_, code, description) = code_of(&w, &good_assertion(&liar)).await;
    assert_eq!(code, 50166, "{description}");
    assert!(description.contains("someone-else"), "{description}");
    // No discovery document at all (404).
    let nowhere = format!("{base}/nowhere");
    assert_eq!(
        add_fic(&w, FED_CLIENT, fic("nowhere", &nowhere, SUBJECT))
            .await
            .0,
        201
    );
    let (_, code, description) = code_of(&w, &good_assertion(&nowhere)).await;
    assert_eq!(code, 50166, "{description}");
    assert!(description.contains("HTTP 404"), "{description}");
}

#[tokio::test]
async fn federated_credential_propagation_fault() {
    let base = oidc_issuer().await;
    let issuer = format!("{base}/oidc");
    let w = federated_world().await;
    // Through the admin endpoint, as a test in another language would.
    let r = w
        .http
        .post(format!("{}/_emulator/faults", w.emu.base_url()))
        .json(&json!({"scope": "Token", "fault": {"FicPropagation": {"secs": 1}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        add_fic(&w, FED_CLIENT, fic("fresh", &issuer, SUBJECT))
            .await
            .0,
        201
    );
    let (_, code, description) = code_of(&w, &good_assertion(&issuer)).await;
    assert_eq!(code, 70021, "{description}");
    assert!(description.contains(&format!("Assertion Issuer: '{issuer}'")));
    assert!(description.contains(&format!("Assertion Subject: '{SUBJECT}'")));
    assert!(description.contains(&format!("Assertion Audience: '{EXCHANGE}'")));
    // Once the window has passed (the rule is still active), the credential is there.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        assertion_call(&w, FED_CLIENT, &good_assertion(&issuer))
            .await
            .status(),
        200
    );
    assert_eq!(w.emu.faults().len(), 1);
}

#[tokio::test]
async fn federated_credential_from_config_json() {
    let base = oidc_issuer().await;
    let issuer = format!("{base}/oidc");
    let credential: FederatedCredentialConfig = serde_json::from_value(json!({
        "name": "from-config",
        "issuer": issuer,
        "subject": SUBJECT,
        "audiences": [EXCHANGE],
    }))
    .unwrap();
    assert_eq!(credential.created_at, None);
    let w = world_with(|c| {
        c.with_app(TENANT, FED_CLIENT, "federated app")
            .with_federated_credential(FED_CLIENT, credential)
    })
    .await;
    assert_eq!(
        assertion_call(&w, FED_CLIENT, &good_assertion(&issuer))
            .await
            .status(),
        200
    );
    // A configuration with an invalid credential does not start.
    let dir = tempfile::tempdir().unwrap();
    let bad = config(dir.path())
        .with_app(TENANT, FED_CLIENT, "federated app")
        .with_federated_credential(
            FED_CLIENT,
            FederatedCredentialConfig::new("x", &issuer, SUBJECT),
        );
    assert!(ado_emulator::start(bad, "127.0.0.1:0".parse().unwrap())
        .await
        .is_err());
}

#[tokio::test]
async fn federated_credential_admin_validation() {
    let w = federated_world().await;
    let issuer = "https://token.actions.githubusercontent.com";
    let long = "x".repeat(601);
    let refused = [
        fic("ab", issuer, SUBJECT),
        fic("has space", issuer, SUBJECT),
        fic("-leading-dash", issuer, SUBJECT),
        fic(&"n".repeat(121), issuer, SUBJECT),
        fic("empty-issuer", "", SUBJECT),
        fic("padded-issuer", " https://issuer.example", SUBJECT),
        fic("padded-subject", issuer, "sub "),
        fic("long-issuer", &format!("https://{long}"), SUBJECT),
        fic("long-subject", issuer, &long),
        json!({"name": "two-audiences", "issuer": issuer, "subject": SUBJECT,
               "audiences": [EXCHANGE, "api://other"]}),
        json!({"name": "no-audience", "issuer": issuer, "subject": SUBJECT, "audiences": []}),
        json!({"name": "no-subject", "issuer": issuer, "audiences": [EXCHANGE]}),
    ];
    for body in refused {
        let (status, answer) = add_fic(&w, FED_CLIENT, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    // 20 fine, the 21st refused; duplicates refused.
    for index in 0..20 {
        let (status, answer) = add_fic(
            &w,
            FED_CLIENT,
            fic(
                &format!("cred_{index:02}"),
                issuer,
                &format!("repo:contoso/app:environment:env{index}"),
            ),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, answer) = add_fic(
        &w,
        FED_CLIENT,
        fic("cred-21", issuer, "repo:contoso/app:environment:env21"),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("20"), "{answer}");
    let r = w
        .http
        .delete(format!("{}/cred_19", fic_url(&w, FED_CLIENT)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, answer) = add_fic(
        &w,
        FED_CLIENT,
        fic("same-pair", issuer, "repo:contoso/app:environment:env0"),
    )
    .await;
    assert_eq!(status, 400, "duplicate issuer + subject: {answer}");
    let (status, answer) = add_fic(
        &w,
        FED_CLIENT,
        fic("CRED_00", issuer, "repo:contoso/app:environment:other"),
    )
    .await;
    assert_eq!(status, 400, "duplicate name: {answer}");
    // The same pair on another app is fine.
    let (status, _) = add_fic(
        &w,
        CLIENT,
        fic("same-pair", issuer, "repo:contoso/app:environment:env0"),
    )
    .await;
    assert_eq!(status, 201);

    // Unknown app / credential.
    let unknown = "00000000-1111-4222-8333-999999999999";
    let (status, _) = add_fic(&w, unknown, fic("fine-name", issuer, SUBJECT)).await;
    assert_eq!(status, 404);
    let r = w.http.get(fic_url(&w, unknown)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = w
        .http
        .delete(format!("{}/fine-name", fic_url(&w, unknown)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = w
        .http
        .delete(format!("{}/never-added", fic_url(&w, FED_CLIENT)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let listed: Value = w
        .http
        .get(fic_url(&w, FED_CLIENT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(19));
}
