//! Fixed test credentials (RSA keys and self-signed certificates made once with `openssl`, valid for a century)
//! and a client-assertion builder, for this crate's tests, the client's tests and the demo.
//! These keys protect nothing: never use them outside the emulator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::EmulatorError;

/// Certificate (CN=spicehub-emulator-test, 2024-01-01 → 2124-01-01) to register on an app.
pub const REGISTERED_CERT_PEM: &str = include_str!("testkit/registered_cert.pem");
/// Private key (PKCS#8) of [`REGISTERED_CERT_PEM`].
pub const REGISTERED_KEY_PEM: &str = include_str!("testkit/registered_key.pem");
/// Another private key: assertions signed with it fail signature validation against the registered certificate.
pub const OTHER_KEY_PEM: &str = include_str!("testkit/other_key.pem");
/// Certificate of [`OTHER_KEY_PEM`] that expired on 2021-01-01 (AADSTS700027 "The key used is expired").
pub const EXPIRED_CERT_PEM: &str = include_str!("testkit/expired_cert.pem");

/// DER of a PEM certificate.
pub fn cert_der(cert_pem: &str) -> Result<Vec<u8>, EmulatorError> {
    use x509_cert::der::{DecodePem, Encode};
    let cert = x509_cert::Certificate::from_pem(cert_pem.as_bytes())
        .map_err(|error| EmulatorError::Invalid(format!("certificate: {error}")))?;
    cert.to_der()
        .map_err(|error| EmulatorError::Invalid(format!("certificate: {error}")))
}

/// `x5t#S256`: base64url(SHA-256(certificate DER)).
pub fn thumbprint_s256(cert_pem: &str) -> Result<String, EmulatorError> {
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der(cert_pem)?)))
}

/// Builds a client assertion (`private_key_jwt`) as Entra documents it.
#[derive(Clone, Debug)]
pub struct AssertionBuilder {
    pub client_id: String,
    /// The token endpoint URL.
    pub audience: String,
    /// `iss`; the client id when `None`.
    pub issuer: Option<String>,
    /// `sub`; the client id when `None`.
    pub subject: Option<String>,
    pub not_before: OffsetDateTime,
    pub expires: OffsetDateTime,
    pub alg: Algorithm,
    /// Put `x5t#S256` in the header.
    pub include_thumbprint: bool,
    /// `x5t#S256` to send instead of the certificate's real thumbprint.
    pub thumbprint_override: Option<String>,
}

impl AssertionBuilder {
    /// Valid from now for 10 minutes, PS256, with `x5t#S256`.
    pub fn new(client_id: &str, audience: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        AssertionBuilder {
            client_id: client_id.to_string(),
            audience: audience.to_string(),
            issuer: None,
            subject: None,
            not_before: now,
            expires: now + time::Duration::minutes(10),
            alg: Algorithm::PS256,
            include_thumbprint: true,
            thumbprint_override: None,
        }
    }

    /// Signs with `key_pem`; the header's thumbprint is `cert_pem`'s.
    pub fn sign(&self, key_pem: &str, cert_pem: &str) -> Result<String, EmulatorError> {
        let mut header = Header::new(self.alg);
        header.typ = Some("JWT".into());
        if self.include_thumbprint {
            header.x5t_s256 = Some(match &self.thumbprint_override {
                Some(thumbprint) => thumbprint.clone(),
                None => thumbprint_s256(cert_pem)?,
            });
        }
        let claims = json!({
            "aud": self.audience,
            "iss": self.issuer.clone().unwrap_or_else(|| self.client_id.clone()),
            "sub": self.subject.clone().unwrap_or_else(|| self.client_id.clone()),
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": self.not_before.unix_timestamp(),
            "iat": self.not_before.unix_timestamp(),
            "exp": self.expires.unix_timestamp(),
        });
        let key = EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|error| EmulatorError::Invalid(format!("private key: {error}")))?;
        jsonwebtoken::encode(&header, &claims, &key)
            .map_err(|error| EmulatorError::Invalid(format!("signing: {error}")))
    }
}

/// Microsoft's example payloads, read in place from the steering
/// repository's `shared/vectors`, which sits beside the workspace root
/// (`<root>/../shared/vectors`); `SPICEHUB_VECTORS` overrides the place.
/// They are never copied into the repository. A missing folder is a
/// failure, not a skip: CI always has it.
pub fn vectors_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    let dir = match std::env::var_os("SPICEHUB_VECTORS") {
        Some(path) => PathBuf::from(path),
        None => {
            // The workspace root is the folder with Cargo.lock above the
            // directory the tests run in (cargo runs them in their
            // package's folder). Found at run time: a path baked in at
            // compile time would name whichever checkout built this crate.
            let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let root = here
                .ancestors()
                .find(|dir| dir.join("Cargo.lock").is_file())
                .unwrap_or(&here)
                .to_path_buf();
            root.join("..").join("shared").join("vectors")
        }
    };
    assert!(
        dir.join("vsts-rest-api-specs").is_dir() && dir.join("azure-devops-docs").is_dir(),
        "Microsoft's example payloads are not at {} (expected shared/vectors beside the repository root; set SPICEHUB_VECTORS to their folder)",
        dir.display()
    );
    dir
}
