//! The hub as an OpenID Connect issuer, so that an app registration can
//! trust it through a federated identity credential and the hub obtains
//! tokens with no secret at all (workload identity federation).
//!
//! The issuer is the hub's public URL (`SPICEHUB_PUBLIC_URL`, without a
//! trailing slash); Entra ID reads `{issuer}/.well-known/openid-configuration`
//! and the keys it names (`spicehub_routes::OIDC_JWKS`), over HTTPS with a
//! publicly trusted certificate. Keys are RS256 (the only algorithm Entra
//! accepts for federated assertions), 2048-bit, made by the hub, sealed at
//! rest with `SPICEHUB_SECRET_KEY` and shared through the database by every
//! instance; `rotation` says when one is made and dropped. The JWKS is read
//! from the database (cached a few seconds), so every instance publishes a
//! key the moment any of them made it.

pub mod check;
pub mod rotation;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::RwLock;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use spicehub_azure::credentials::{AssertionSigner, SignError};

use crate::crypto::SecretKey;
use crate::db::issuer_keys::IssuerKeyRow;
use crate::db::{now, Db, DbError};
pub use rotation::{KeyTimes, RotationPolicy};

/// The subject of the hub's own multi-tenant app, when it runs on a
/// federated credential trusting this issuer.
pub const HUB_SUBJECT: &str = "spicehub:hub";

/// The subject a provider's federated credential names: stable for the
/// provider, unique across providers.
pub fn provider_subject(uuid: &str) -> String {
    format!("spicehub:provider:{uuid}")
}

/// Whether `subject` is one the hub hands out for a provider.
pub fn is_provider_subject(subject: &str) -> bool {
    subject
        .strip_prefix("spicehub:provider:")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .is_some_and(|id| provider_subject(&id.to_string()) == subject)
}

/// RSA modulus size of the keys.
const KEY_BITS: usize = 2048;

/// How long a JWKS read from the database is served again.
const JWKS_CACHE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot make an RSA key: {0}")]
    KeyGeneration(String),
    #[error("the stored key {kid} cannot be opened with this hub's SPICEHUB_SECRET_KEY (was the key changed?)")]
    Sealed { kid: String },
}

/// A key as the signer holds it.
struct RingKey {
    kid: String,
    times: KeyTimes,
    key: EncodingKey,
}

/// The issuer: its URL, its keys, and signing. Cheap to clone.
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    db: Db,
    secret: SecretKey,
    policy: RotationPolicy,
    ring: RwLock<Vec<RingKey>>,
    jwks: tokio::sync::Mutex<Option<(Instant, Arc<Value>)>>,
}

impl Issuer {
    /// The issuer at `public_url`. No key is read until `load` or `rotate`.
    pub fn new(db: Db, secret: SecretKey, public_url: &url::Url, policy: RotationPolicy) -> Issuer {
        Issuer {
            inner: Arc::new(Inner {
                url: public_url.as_str().trim_end_matches('/').to_string(),
                db,
                secret,
                policy,
                ring: RwLock::new(Vec::new()),
                jwks: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// `iss`: the public URL without its trailing slash.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Where the keys are published.
    pub fn jwks_uri(&self) -> String {
        format!("{}{}", self.inner.url, spicehub_routes::OIDC_JWKS)
    }

    /// Why Entra ID could not reach this issuer, if its URL says so: Entra
    /// fetches the keys from the internet over HTTPS.
    pub fn reachability_problem(&self) -> Option<&'static str> {
        let Ok(url) = url::Url::parse(&self.inner.url) else {
            return Some("the public URL cannot be parsed");
        };
        if url.scheme() != "https" {
            return Some(
                "the public URL is not HTTPS: Entra ID fetches the issuer's keys over HTTPS only",
            );
        }
        crate::config::is_local_host(&url).then_some(
            "the public URL names a host that is not reachable from the internet, where Entra ID fetches the issuer's keys",
        )
    }

    /// The OpenID Connect Discovery document: the fields Entra ID reads
    /// (`issuer`, `jwks_uri`) and those the specification requires.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.inner.url,
            "jwks_uri": self.jwks_uri(),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"],
        })
    }

    /// The published keys (JWKS), from the database, at most `JWKS_CACHE`
    /// old. Concurrent readers wait for one database read.
    pub async fn jwks(&self) -> Result<Arc<Value>, IssuerError> {
        self.jwks_at(now()).await
    }

    /// As [`Issuer::jwks`], as published at `at`.
    pub async fn jwks_at(&self, at: i64) -> Result<Arc<Value>, IssuerError> {
        let mut cache = self.inner.jwks.lock().await;
        if let Some((at, value)) = cache.as_ref() {
            if at.elapsed() < JWKS_CACHE {
                return Ok(value.clone());
            }
        }
        let keys: Vec<Value> = self
            .inner
            .db
            .issuer_keys()
            .await?
            .iter()
            .filter(|row| times(row).published_at(at))
            .map(|row| {
                json!({
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": row.kid,
                    "n": row.public_n,
                    "e": row.public_e,
                })
            })
            .collect();
        let value = Arc::new(json!({ "keys": keys }));
        *cache = Some((Instant::now(), value.clone()));
        Ok(value)
    }

    /// Reads the keys from the database into the signer.
    pub async fn load(&self) -> Result<(), IssuerError> {
        let rows = self.inner.db.issuer_keys().await?;
        let mut ring = Vec::with_capacity(rows.len());
        for row in &rows {
            let der = self
                .inner
                .secret
                .open(&key_context(&row.kid), &row.private_key_sealed)
                .map_err(|_| IssuerError::Sealed {
                    kid: row.kid.clone(),
                })?;
            ring.push(RingKey {
                kid: row.kid.clone(),
                times: times(row),
                key: EncodingKey::from_rsa_der(&der),
            });
        }
        *self.inner.ring.write() = ring;
        Ok(())
    }

    /// Makes the key that is due at `at` (if any), drops the keys no longer
    /// published, and reloads. Safe on several instances at once: one of
    /// them stores the new key, the others read it back. Returns the kid of
    /// the key made here.
    pub async fn rotate(&self, at: i64) -> Result<Option<String>, IssuerError> {
        let db = &self.inner.db;
        let rows = db.issuer_keys().await?;
        let schedule: Vec<KeyTimes> = rows.iter().map(times).collect();
        let mut made = None;
        if let Some(plan) = rotation::next_key(&schedule, at, &self.inner.policy) {
            let generation = rows.iter().map(|r| r.generation).max().unwrap_or(0) + 1;
            let (kid, n, e, der) = tokio::task::spawn_blocking(generate_key)
                .await
                .map_err(|e| IssuerError::KeyGeneration(e.to_string()))??;
            let row = IssuerKeyRow {
                private_key_sealed: self.inner.secret.seal(&key_context(&kid), &der),
                kid: kid.clone(),
                generation,
                public_n: n,
                public_e: e,
                created_at: plan.created_at,
                signs_from: plan.signs_from,
                signs_until: plan.signs_until,
                publish_until: plan.publish_until,
            };
            if db.insert_issuer_key(&row).await? {
                tracing::info!(kid = %kid, signs_from = plan.signs_from, "issuer key made");
                made = Some(kid);
            }
        }
        let dropped = db.delete_unpublished_issuer_keys(at).await?;
        if dropped > 0 {
            tracing::info!(dropped, "issuer keys no longer published dropped");
        }
        *self.inner.jwks.lock().await = None;
        self.load().await?;
        Ok(made)
    }

    /// Rotates every hour, for as long as the hub runs.
    pub fn spawn_rotation(&self) -> tokio::task::JoinHandle<()> {
        let issuer = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3_600));
            // The first tick is at once; the caller rotated at start.
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(error) = issuer.rotate(now()).await {
                    tracing::warn!(%error, "issuer key rotation failed; retrying in an hour");
                }
            }
        })
    }

    /// The kid of the key that signs at `at`, as loaded.
    pub fn signing_kid(&self, at: i64) -> Option<String> {
        let ring = self.inner.ring.read();
        let schedule: Vec<KeyTimes> = ring.iter().map(|k| k.times).collect();
        rotation::signing_index(&schedule, at).map(|i| ring[i].kid.clone())
    }

    /// Signs `claims` with the key that signs at `at`.
    pub fn sign_at(&self, claims: &Value, at: i64) -> Result<SecretString, SignError> {
        spicehub_azure::credentials::ensure_jwt_crypto_provider();
        let ring = self.inner.ring.read();
        let schedule: Vec<KeyTimes> = ring.iter().map(|k| k.times).collect();
        let index = rotation::signing_index(&schedule, at).ok_or_else(|| {
            SignError("no key signs now; the hub rotates its keys at start and hourly".into())
        })?;
        let key = &ring[index];
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.key)
            .map(SecretString::from)
            .map_err(|e| SignError(format!("cannot sign with key {}: {e}", key.kid)))
    }
}

impl AssertionSigner for Issuer {
    fn issuer(&self) -> &str {
        self.url()
    }

    fn sign(&self, claims: &Value) -> Result<SecretString, SignError> {
        self.sign_at(claims, now())
    }
}

fn key_context(kid: &str) -> String {
    format!("issuer:key:{kid}")
}

fn times(row: &IssuerKeyRow) -> KeyTimes {
    KeyTimes {
        created_at: row.created_at,
        signs_from: row.signs_from,
        signs_until: row.signs_until,
        publish_until: row.publish_until,
    }
}

/// A new key: its kid (the RFC 7638 JWK thumbprint), n and e (base64url)
/// and the private key as PKCS#1 DER.
fn generate_key() -> Result<(String, String, String, Vec<u8>), IssuerError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
        .map_err(|e| IssuerError::KeyGeneration(e.to_string()))?;
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    let der = key
        .to_pkcs1_der()
        .map_err(|e| IssuerError::KeyGeneration(e.to_string()))?;
    Ok((thumbprint(&n, &e), n, e, der.as_bytes().to_vec()))
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}
