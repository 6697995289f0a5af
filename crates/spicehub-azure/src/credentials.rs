//! Client credentials of an app registration: client secret, certificate
//! (private_key_jwt client assertion), federated credential (a client
//! assertion signed by an OpenID Connect issuer the app registration trusts:
//! workload identity federation, no secret at all) and the deprecated
//! personal access token.
//!
//! Secrets live in `secrecy` types and `Debug` never prints them; a credential is
//! identified in caches by a fingerprint (a SHA-256 over the secret material with a
//! domain prefix), so two providers with the same client ID but different secrets
//! never share a token.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::diagnosis::{AzureError, Diagnosis};

/// Lifetime of a client assertion. Entra's docs ask for a short `exp` (5–10 minutes
/// after `nbf`); a fresh assertion is built for every token request, so 5 minutes
/// only has to cover the request itself plus clock skew.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// The `client_assertion_type` for a JWT client assertion (RFC 7523).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The one audience Entra accepts in a federated credential (public cloud).
/// US Government and China clouds use `api://AzureADTokenExchangeUSGov` and
/// `api://AzureADTokenExchangeChina`.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Entra's limit on a federated credential's issuer and subject.
pub const FEDERATED_VALUE_MAX: usize = 600;

/// Signs the assertions of a federated credential. The hub's own OpenID
/// Connect issuer implements it; the app registration trusts that issuer
/// through a federated identity credential (issuer, subject, audience).
pub trait AssertionSigner: Send + Sync {
    /// `iss`: exactly the Issuer entered in the federated credential.
    fn issuer(&self) -> &str;
    /// Signs `claims` as a compact RS256 JWT (Entra accepts nothing else)
    /// with the issuer's current key, named by `kid`.
    fn sign(&self, claims: &serde_json::Value) -> Result<SecretString, SignError>;
}

/// Why the issuer could not sign.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// Which kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// Client secret (form post, `client_secret_post`).
    ClientSecret,
    /// Certificate: a signed JWT client assertion (`private_key_jwt`).
    Certificate,
    /// Legacy personal access token (HTTP Basic); kept only to migrate customers.
    PersonalAccessToken,
    /// Federated credential: an assertion signed by the hub's own issuer.
    Federated,
}

impl CredentialKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ClientSecret => "client_secret",
            CredentialKind::Certificate => "certificate",
            CredentialKind::PersonalAccessToken => "personal_access_token",
            CredentialKind::Federated => "federated",
        }
    }
}

/// Signature algorithm of the client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256: what Entra's docs ask for.
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256: accepted fallback.
    Rs256,
}

/// A client credential. Cheap to clone; never prints its secret.
#[derive(Clone)]
pub struct Credential {
    inner: Arc<Inner>,
}

enum Inner {
    ClientSecret {
        secret: SecretString,
        fingerprint: String,
    },
    Certificate(CertificateCredential),
    Pat {
        pat: SecretString,
        fingerprint: String,
    },
    Federated {
        signer: Arc<dyn AssertionSigner>,
        subject: String,
        fingerprint: String,
    },
}

struct CertificateCredential {
    key: EncodingKey,
    /// base64url(SHA-256(cert DER)), the `x5t#S256` header.
    thumbprint_s256: String,
    algorithm: AssertionAlgorithm,
    fingerprint: String,
}

impl Credential {
    /// A client secret (the secret's *value*, not its ID).
    pub fn client_secret(secret: SecretString) -> Result<Self, AzureError> {
        if secret.expose_secret().trim().is_empty() {
            return Err(AzureError::diagnosed(Diagnosis::WrongClientSecret));
        }
        let fingerprint = fingerprint("client_secret", secret.expose_secret().as_bytes());
        Ok(Credential {
            inner: Arc::new(Inner::ClientSecret {
                secret,
                fingerprint,
            }),
        })
    }

    /// A certificate credential from the PEM certificate (the public part uploaded to the app
    /// registration) and its RSA private key in PEM (PKCS#8 or PKCS#1, unencrypted).
    pub fn certificate_from_pem(
        cert_pem: &[u8],
        private_key_pem: &SecretString,
    ) -> Result<Self, AzureError> {
        Self::certificate_from_pem_with(cert_pem, private_key_pem, AssertionAlgorithm::Ps256)
    }

    /// As [`Credential::certificate_from_pem`], choosing the signature algorithm.
    pub fn certificate_from_pem_with(
        cert_pem: &[u8],
        private_key_pem: &SecretString,
        algorithm: AssertionAlgorithm,
    ) -> Result<Self, AzureError> {
        let invalid = |detail: &str| {
            AzureError::diagnosed(Diagnosis::InvalidCertificate {
                detail: detail.to_string(),
            })
        };
        let blocks =
            pem::parse_many(cert_pem).map_err(|_| invalid("the certificate is not PEM"))?;
        // A PEM bundle may hold a chain; the first CERTIFICATE block is the leaf, the one
        // uploaded to the app registration.
        let cert = blocks
            .iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| invalid("no CERTIFICATE block in the certificate file"))?;
        let der = cert.contents();
        if der.is_empty() {
            return Err(invalid("empty certificate"));
        }
        let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
            .map_err(|_| invalid("the private key is not an unencrypted RSA key in PEM"))?;
        let thumbprint_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(der));
        let fingerprint = fingerprint("certificate", thumbprint_s256.as_bytes());
        let cred = Credential {
            inner: Arc::new(Inner::Certificate(CertificateCredential {
                key,
                thumbprint_s256,
                algorithm,
                fingerprint,
            })),
        };
        // Sign once now so that a key that cannot sign (wrong type, too small) is reported
        // at configuration time rather than on the first token request.
        cred.client_assertion("probe", "https://probe.invalid/token")?;
        Ok(cred)
    }

    /// A legacy personal access token. Deprecated: reported as such by the UI and `azure check`.
    pub fn personal_access_token(pat: SecretString) -> Result<Self, AzureError> {
        if pat.expose_secret().trim().is_empty() {
            return Err(AzureError::diagnosed(Diagnosis::NotAuthorized));
        }
        let fingerprint = fingerprint("pat", pat.expose_secret().as_bytes());
        Ok(Credential {
            inner: Arc::new(Inner::Pat { pat, fingerprint }),
        })
    }

    /// A federated credential: each token request carries a fresh assertion
    /// signed by `signer` for `subject`. Nothing secret is held here; the
    /// signer's keys stay with it.
    pub fn federated(signer: Arc<dyn AssertionSigner>, subject: &str) -> Result<Self, AzureError> {
        let subject = subject.to_string();
        if subject.trim().is_empty()
            || subject.trim() != subject
            || subject.len() > FEDERATED_VALUE_MAX
        {
            return Err(AzureError::InvalidArgument(format!(
                "a federated credential's subject is 1 to {FEDERATED_VALUE_MAX} characters without spaces around it"
            )));
        }
        let material = format!("{}\0{subject}", signer.issuer());
        let fingerprint = fingerprint("federated", material.as_bytes());
        Ok(Credential {
            inner: Arc::new(Inner::Federated {
                signer,
                subject,
                fingerprint,
            }),
        })
    }

    /// The kind of credential.
    pub fn kind(&self) -> CredentialKind {
        match &*self.inner {
            Inner::ClientSecret { .. } => CredentialKind::ClientSecret,
            Inner::Certificate(_) => CredentialKind::Certificate,
            Inner::Pat { .. } => CredentialKind::PersonalAccessToken,
            Inner::Federated { .. } => CredentialKind::Federated,
        }
    }

    /// Issuer and subject of a federated credential.
    pub fn federated_identity(&self) -> Option<(&str, &str)> {
        match &*self.inner {
            Inner::Federated {
                signer, subject, ..
            } => Some((signer.issuer(), subject.as_str())),
            _ => None,
        }
    }

    /// A fresh assertion for a federated credential: `iss` the signer's
    /// issuer, `sub` the subject, `aud` [`FEDERATED_AUDIENCE`], a new `jti`,
    /// and `exp` [`ASSERTION_LIFETIME`] after `nbf` (Entra wants at most 10
    /// minutes). Entra checks only these against the federated credential;
    /// the `client_id` travels in the form.
    pub fn federated_assertion(&self) -> Result<SecretString, AzureError> {
        let Inner::Federated {
            signer, subject, ..
        } = &*self.inner
        else {
            return Err(AzureError::InvalidArgument(
                "federated_assertion needs a federated credential".into(),
            ));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = serde_json::json!({
            "iss": signer.issuer(),
            "sub": subject,
            "aud": FEDERATED_AUDIENCE,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME.as_secs(),
        });
        signer
            .sign(&claims)
            .map_err(|e| AzureError::diagnosed(Diagnosis::IssuerCannotSign { detail: e.0 }))
    }

    /// True for the legacy PAT kind.
    pub fn is_deprecated(&self) -> bool {
        self.kind() == CredentialKind::PersonalAccessToken
    }

    /// Cache identity of the credential material (hex, 32 chars). Not secret by itself,
    /// but there is no reason to show it either.
    pub fn fingerprint(&self) -> &str {
        match &*self.inner {
            Inner::ClientSecret { fingerprint, .. }
            | Inner::Pat { fingerprint, .. }
            | Inner::Federated { fingerprint, .. } => fingerprint,
            Inner::Certificate(c) => &c.fingerprint,
        }
    }

    /// `x5t#S256` thumbprint for a certificate credential.
    pub fn certificate_thumbprint(&self) -> Option<&str> {
        match &*self.inner {
            Inner::Certificate(c) => Some(&c.thumbprint_s256),
            _ => None,
        }
    }

    pub(crate) fn secret(&self) -> Option<&SecretString> {
        match &*self.inner {
            Inner::ClientSecret { secret, .. } => Some(secret),
            _ => None,
        }
    }

    /// `Authorization: Basic base64(":" + pat)` value for the PAT kind.
    pub(crate) fn pat_basic_value(&self) -> Option<SecretString> {
        match &*self.inner {
            Inner::Pat { pat, .. } => {
                let raw = format!(":{}", pat.expose_secret());
                Some(SecretString::from(format!(
                    "Basic {}",
                    STANDARD.encode(raw)
                )))
            }
            _ => None,
        }
    }

    /// Builds a signed client assertion for `client_id` addressed to `token_endpoint`.
    /// Only for the certificate kind.
    pub fn client_assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
    ) -> Result<SecretString, AzureError> {
        let Inner::Certificate(cert) = &*self.inner else {
            return Err(AzureError::InvalidArgument(
                "client_assertion needs a certificate credential".into(),
            ));
        };
        ensure_jwt_crypto_provider();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = AssertionClaims {
            aud: token_endpoint,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
        };
        let mut header = Header::new(match cert.algorithm {
            AssertionAlgorithm::Ps256 => Algorithm::PS256,
            AssertionAlgorithm::Rs256 => Algorithm::RS256,
        });
        header.typ = Some("JWT".to_string());
        header.x5t_s256 = Some(cert.thumbprint_s256.clone());
        let jwt = jsonwebtoken::encode(&header, &claims, &cert.key).map_err(|e| {
            AzureError::diagnosed(Diagnosis::InvalidCertificate {
                detail: format!("cannot sign with the key: {e}"),
            })
        })?;
        Ok(SecretString::from(jwt))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the kind (and the public thumbprint) — never secret material.
        let mut d = f.debug_struct("Credential");
        d.field("kind", &self.kind());
        if let Some(t) = self.certificate_thumbprint() {
            d.field("x5t#S256", &t);
        }
        if let Some((issuer, subject)) = self.federated_identity() {
            d.field("issuer", &issuer).field("subject", &subject);
        }
        d.finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

fn fingerprint(domain: &str, material: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"spicehub-credential-v1\0");
    h.update(domain.as_bytes());
    h.update([0u8]);
    h.update(material);
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// jsonwebtoken picks its crypto backend from crate features; if another crate in the
/// final binary enables `aws_lc_rs` too, it refuses to guess and panics on first use.
/// Installing the RustCrypto provider explicitly (once, ignoring "already installed")
/// makes signing independent of feature unification.
pub fn ensure_jwt_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_secrets() {
        let secret = "s3cr3t-VALUE~with.symbols";
        let c =
            Credential::client_secret(SecretString::from(secret)).unwrap_or_else(|e| panic!("{e}"));
        let dbg = format!("{c:?} {c:#?}");
        assert!(!dbg.contains(secret), "{dbg}");
        assert!(dbg.contains("ClientSecret"), "{dbg}");
        assert!(!dbg.contains(c.fingerprint()), "{dbg}");

        let pat = "patpatpatpatpatpat0123456789";
        let p = Credential::personal_access_token(SecretString::from(pat))
            .unwrap_or_else(|e| panic!("{e}"));
        let dbg = format!("{p:?}");
        assert!(!dbg.contains(pat), "{dbg}");
        assert!(p.is_deprecated());
        assert_eq!(p.kind(), CredentialKind::PersonalAccessToken);
        let basic = p.pat_basic_value().unwrap_or_else(|| panic!("basic"));
        assert!(!format!("{basic:?}").contains(pat));
        assert_eq!(
            basic.expose_secret(),
            &format!("Basic {}", STANDARD.encode(format!(":{pat}")))
        );
    }

    #[test]
    fn fingerprint_distinguishes_material_and_kind() {
        let a =
            Credential::client_secret(SecretString::from("one")).unwrap_or_else(|e| panic!("{e}"));
        let b =
            Credential::client_secret(SecretString::from("two")).unwrap_or_else(|e| panic!("{e}"));
        let a2 =
            Credential::client_secret(SecretString::from("one")).unwrap_or_else(|e| panic!("{e}"));
        let p = Credential::personal_access_token(SecretString::from("one"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), a2.fingerprint());
        assert_ne!(a.fingerprint(), p.fingerprint());
        assert_eq!(a.fingerprint().len(), 32);
    }

    #[test]
    fn empty_secret_is_rejected() {
        let e = Credential::client_secret(SecretString::from("  "))
            .err()
            .map(|e| e.code());
        assert_eq!(e, Some("wrong_client_secret"));
    }

    #[test]
    fn garbage_certificate_is_diagnosed() {
        let e = Credential::certificate_from_pem(b"not pem", &SecretString::from("nope")).err();
        assert_eq!(e.map(|e| e.code()), Some("invalid_certificate"));
    }
}
