//! Encryption of secrets at rest (client secrets, webhook passwords, private
//! keys): XChaCha20-Poly1305 with a random 192-bit nonce per value, so values
//! can be encrypted independently without nonce bookkeeping. Each ciphertext
//! is bound to a context string (what it is and which row it belongs to), so
//! a value copied into another row does not decrypt.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const VERSION_PREFIX: &str = "v1.";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key must be base64 of exactly 32 bytes")]
    Malformed,
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("stored secret is not in a known format")]
    Format,
    #[error("stored secret does not decrypt with this SPICEHUB_SECRET_KEY (was the key changed?)")]
    Decrypt,
}

/// The 32-byte key. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.fingerprint())
    }
}

impl SecretKey {
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| KeyError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(Self(key))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Reads the key file, or creates it (mode 0600) on first start so a local
    /// hub keeps decrypting what it stored across restarts.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(io)?;
                file.write_all(STANDARD.encode(key.0).as_bytes())
                    .map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// 64 bytes derived from the key for one purpose (`context`), so the
    /// same key can sign cookies without that signature key ever opening a
    /// sealed secret.
    pub fn derive(&self, context: &str) -> [u8; 64] {
        use sha2::Sha512;
        let mut hasher = Sha512::new();
        hasher.update(b"spicehub-derive\0");
        hasher.update(context.as_bytes());
        hasher.update([0u8]);
        hasher.update(self.0);
        hasher.finalize().into()
    }

    /// A short, non-reversible name for the key, safe to log.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0);
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Encrypts `plaintext`; `context` names what the value is for.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            // Encryption with a valid key and nonce length cannot fail.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(nonce.len() + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{VERSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, context: &str, stored: &str) -> Result<Vec<u8>, CryptoError> {
        let body = stored
            .strip_prefix(VERSION_PREFIX)
            .ok_or(CryptoError::Format)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CryptoError::Format)?;
        if raw.len() < 24 + 16 {
            return Err(CryptoError::Format);
        }
        let (nonce, sealed) = raw.split_at(24);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// SHA-256 in hex, for values that are looked up but must not be stored in
/// the clear (session ids).
pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let key = SecretKey::generate();
        let sealed = key.seal("provider:1:client_secret", b"s3cret~value");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            key.open("provider:1:client_secret", &sealed).unwrap(),
            b"s3cret~value"
        );
        assert_eq!(
            key.open("provider:2:client_secret", &sealed),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            SecretKey::generate().open("provider:1:client_secret", &sealed),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(key.open("x", "garbage"), Err(CryptoError::Format));
        // Two seals of one value differ (fresh nonce each time).
        assert_ne!(
            sealed,
            key.seal("provider:1:client_secret", b"s3cret~value")
        );
    }

    #[test]
    fn debug_does_not_reveal_the_key() {
        let key = SecretKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains(&STANDARD.encode([7u8; 32])));
        assert!(!shown.contains("7, 7"));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        assert!(SecretKey::from_base64("abc").is_err());
        assert!(SecretKey::from_base64(&STANDARD.encode([1u8; 31])).is_err());
    }
}
