//! Two issuers on one database (two hub instances), through a rotation:
//! every assertion either signs verifies against the JWKS either serves,
//! and a dropped key's assertions no longer do.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use super::*;
use crate::testing::TestDb;

const DAY: i64 = 86_400;

fn issuer(db: &Db, key: &SecretKey) -> Issuer {
    let url = url::Url::parse("https://hub.example.com/").unwrap_or_else(|e| panic!("{e}"));
    Issuer::new(db.clone(), key.clone(), &url, RotationPolicy::default())
}

fn claims(at: i64) -> Value {
    json!({
        "iss": "https://hub.example.com",
        "sub": "spicehub:hub",
        "aud": spicehub_azure::credentials::FEDERATED_AUDIENCE,
        "iat": at, "nbf": at, "exp": at + 300,
    })
}

/// Verifies `jwt` as Entra does: the key named by `kid` in `jwks`, RS256.
fn verifies(jwt: &str, jwks: &Value) -> bool {
    let Ok(header) = jsonwebtoken::decode_header(jwt) else {
        return false;
    };
    let Some(key) = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
    else {
        return false;
    };
    let (Some(n), Some(e)) = (key["n"].as_str(), key["e"].as_str()) else {
        return false;
    };
    let Ok(decoding) = DecodingKey::from_rsa_components(n, e) else {
        return false;
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_audience(&[spicehub_azure::credentials::FEDERATED_AUDIENCE]);
    jsonwebtoken::decode::<Value>(jwt, &decoding, &validation).is_ok()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

fn sign(issuer: &Issuer, at: i64) -> String {
    use secrecy::ExposeSecret;
    issuer
        .sign_at(&claims(at), at)
        .unwrap_or_else(|e| panic!("sign: {e}"))
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn two_instances_share_keys_across_a_rotation() {
    spicehub_azure::credentials::ensure_jwt_crypto_provider();
    for db in TestDb::all().await {
        let d = db.open().await;
        let key = SecretKey::generate();
        let (a, b) = (issuer(&d, &key), issuer(&d, &key));
        let t0 = now();

        // Both start at once: one key is made, and both sign with it.
        let (made_a, made_b) = tokio::join!(a.rotate(t0), b.rotate(t0));
        let made: Vec<String> = [made_a, made_b]
            .into_iter()
            .filter_map(|r| r.unwrap_or_else(|e| panic!("rotate: {e}")))
            .collect();
        assert_eq!(
            made.len(),
            1,
            "{}: exactly one instance made the first key",
            db.label
        );
        let first = made[0].clone();
        assert_eq!(a.signing_kid(t0), Some(first.clone()));
        assert_eq!(b.signing_kid(t0), Some(first.clone()));
        let jwks = a.jwks().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kids(&jwks), vec![first.clone()], "{}", db.label);
        assert!(verifies(&sign(&b, t0), &jwks), "{}", db.label);
        // The private key is sealed: the row holds no PEM or DER in clear.
        let rows = d.issuer_keys().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            rows[0].private_key_sealed.starts_with("v1."),
            "{}",
            db.label
        );
        assert!(!rows[0].private_key_sealed.contains("MII"), "{}", db.label);
        // Another hub's key does not open them.
        let stranger = issuer(&d, &SecretKey::generate());
        assert!(matches!(
            stranger.load().await,
            Err(IssuerError::Sealed { .. })
        ));

        // 28 days and 22 hours later, instance A makes the next key. It is
        // published at once but signs only a day later; B, which has not
        // reloaded, keeps signing with the first, which still verifies.
        let t1 = t0 + 28 * DAY + 22 * 3_600;
        let second = a
            .rotate(t1)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("{}: the next key is due", db.label));
        assert_eq!(a.signing_kid(t1), Some(first.clone()));
        *a.inner.jwks.lock().await = None;
        let jwks = a.jwks_at(t1).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kids(&jwks), [first.clone(), second.clone()], "{}", db.label);
        assert!(verifies(&sign(&b, t1), &jwks));
        // A day later the new key signs, on both once B reloads.
        let t2 = t1 + DAY + 60;
        b.load().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.signing_kid(t2), Some(second.clone()));
        let by_second = sign(&b, t2);
        let old_assertion = sign(&a, t1);
        // Once the first key's publication ends, it is dropped: what it
        // signed no longer verifies, what the second signs does.
        let t3 = t0 + 31 * DAY + 60;
        assert_eq!(b.rotate(t3).await.unwrap_or_else(|e| panic!("{e}")), None);
        *b.inner.jwks.lock().await = None;
        let jwks = b.jwks_at(t3).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(kids(&jwks), vec![second.clone()], "{}", db.label);
        assert!(verifies(&by_second, &jwks));
        assert!(
            !verifies(&old_assertion, &jwks),
            "{}: a dropped key is refused",
            db.label
        );
    }
}

#[test]
fn discovery_names_what_entra_reads() {
    let url = url::Url::parse("https://hub.example.com/").unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let db = TestDb::sqlite();
        let d = db.open().await;
        let issuer = Issuer::new(d, SecretKey::generate(), &url, RotationPolicy::default());
        let doc = issuer.discovery();
        assert_eq!(doc["issuer"], "https://hub.example.com");
        assert_eq!(
            doc["jwks_uri"],
            "https://hub.example.com/.well-known/jwks.json"
        );
        assert!(doc["id_token_signing_alg_values_supported"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "RS256")));
        assert_eq!(issuer.reachability_problem(), None);
    });
}

#[test]
fn issuers_entra_cannot_reach_are_named() {
    let db = TestDb::sqlite();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let d = rt.block_on(db.open());
    for (url, reachable) in [
        ("https://hub.contoso.com", true),
        ("http://hub.contoso.com", false),
        ("https://localhost:3000", false),
        ("https://127.0.0.1", false),
        ("https://10.1.2.3", false),
        ("https://hub.internal", false),
        ("https://spicehub", false),
    ] {
        let url = url::Url::parse(url).unwrap_or_else(|e| panic!("{e}"));
        let issuer = Issuer::new(
            d.clone(),
            SecretKey::generate(),
            &url,
            RotationPolicy::default(),
        );
        assert_eq!(issuer.reachability_problem().is_none(), reachable, "{url}");
    }
}

#[test]
fn provider_subjects_are_recognised_exactly() {
    let id = "2b7c1f7e-3c1d-4b8e-9f60-1a2b3c4d5e6f";
    assert!(is_provider_subject(&provider_subject(id)));
    assert!(!is_provider_subject("spicehub:provider:not-a-uuid"));
    assert!(!is_provider_subject(&format!(" spicehub:provider:{id}")));
    assert!(!is_provider_subject(HUB_SUBJECT));
}
