//! The sign-in policy: password check plus throttling of failures per
//! account and per client address, so neither one account nor one address
//! can be used to guess passwords quickly.
//!
//! Every attempt reserves its failure in the database *before* the password
//! is hashed (one atomic statement per key), so a burst of parallel guesses
//! gets no more tries than a slow series would; a correct password gives the
//! reservation back. Past the free attempts a key is locked for a delay that
//! doubles with each further failure, up to [`MAX_LOCK_SECS`]: the real
//! admin is delayed, never locked out for good. Argon2 (19 MiB a check)
//! runs at most [`SignInGate`]'s number of times at once; beyond that the
//! answer is "busy, retry" rather than a queue that grows without bound.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::db::users::User;
use crate::db::{now, Db, DbError};

use super::password;

/// Failures allowed per account before the increasing delay starts.
pub const ACCOUNT_LIMIT: i64 = 5;
/// Failures allowed per client address before the increasing delay starts.
pub const ADDRESS_LIMIT: i64 = 20;
/// A key's failures are forgotten after this long without a failure or lock.
pub const QUIET_SECS: i64 = 15 * 60;
/// The longest lock: one more failure after it waits this long again.
pub const MAX_LOCK_SECS: i64 = 15 * 60;
/// Longest e-mail address (RFC 5321's path limit); longer ones are refused
/// before anything is looked up.
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest password accepted (Argon2 would hash megabytes happily).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long an attempt waits for a free password check before "busy".
const GATE_WAIT: Duration = Duration::from_secs(2);
/// What a busy answer tells the client to wait.
pub const BUSY_RETRY_SECS: i64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Wrong e-mail or password.")]
    InvalidCredentials,
    #[error("E-mail addresses have at most {MAX_EMAIL_BYTES} characters and passwords at most {MAX_PASSWORD_BYTES}.")]
    TooLong,
    #[error("Too many failed sign-in attempts. Try again in {}.", wait_text(*retry_after_secs))]
    Throttled { retry_after_secs: i64 },
    #[error("Too many sign-ins at once. Try again in a few seconds.")]
    Busy,
    #[error("sign-in is unavailable: {0}")]
    Internal(#[from] DbError),
}

fn wait_text(secs: i64) -> String {
    if secs < 60 {
        format!("{secs} seconds")
    } else {
        format!("{} minutes", (secs + 59) / 60)
    }
}

/// Bounds the password checks running at once in this process.
#[derive(Clone)]
pub struct SignInGate {
    hashing: Arc<Semaphore>,
}

impl SignInGate {
    pub fn new(concurrent_checks: usize) -> SignInGate {
        SignInGate {
            hashing: Arc::new(Semaphore::new(concurrent_checks.max(1))),
        }
    }

    /// Runs the password check when a slot is free within [`GATE_WAIT`].
    async fn verify(&self, stored: String, attempt: String) -> Result<bool, SignInError> {
        let permit = tokio::time::timeout(GATE_WAIT, self.hashing.clone().acquire_owned())
            .await
            .map_err(|_| SignInError::Busy)?
            .map_err(|_| SignInError::Busy)?;
        let ok = tokio::task::spawn_blocking(move || {
            let ok = password::verify(&stored, &attempt);
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        Ok(ok)
    }
}

fn key_hash(kind: &str, value: &str) -> String {
    let digest = Sha256::digest(format!("{kind}:{value}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn account_key(email: &str) -> String {
    key_hash("account", &crate::db::users::normalize_email(email))
}

/// An IPv6 client controls its whole /64, so that is one address here.
fn address_key(address: IpAddr) -> String {
    let shown = match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    };
    key_hash("address", &shown)
}

/// The lock after `failures` counted failures against a limit of `limit`:
/// 2 s for the first failure past it, doubling, at most [`MAX_LOCK_SECS`].
fn lock_secs(failures: i64, limit: i64) -> i64 {
    let over = (failures - limit).clamp(1, 20) as u32;
    2i64.saturating_pow(over).min(MAX_LOCK_SECS)
}

/// Reserves an attempt for one key; `Err(Throttled)` when it is locked or
/// this attempt is one too many.
async fn reserve(db: &Db, key: &str, limit: i64) -> Result<(), SignInError> {
    let r = db.reserve_login_attempt(key, QUIET_SECS).await?;
    let now = now();
    if r.locked_until > now {
        return Err(SignInError::Throttled {
            retry_after_secs: r.locked_until - now,
        });
    }
    if r.failures > limit {
        let retry_after_secs = lock_secs(r.failures, limit);
        db.lock_login_key(key, now + retry_after_secs).await?;
        return Err(SignInError::Throttled { retry_after_secs });
    }
    Ok(())
}

pub async fn sign_in(
    db: &Db,
    gate: &SignInGate,
    email: &str,
    password_attempt: &str,
    address: IpAddr,
) -> Result<User, SignInError> {
    if email.len() > MAX_EMAIL_BYTES || password_attempt.len() > MAX_PASSWORD_BYTES {
        return Err(SignInError::TooLong);
    }
    let account = account_key(email);
    let address = address_key(address);
    // The address first: an address that is guessing across accounts must
    // not also lock each account it names.
    reserve(db, &address, ADDRESS_LIMIT).await?;
    if let Err(e) = reserve(db, &account, ACCOUNT_LIMIT).await {
        db.refund_login_attempt(&address).await?;
        return Err(e);
    }
    let user = db.user_by_email(email).await?;
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_owned());
    let ok = match gate.verify(stored, password_attempt.to_owned()).await {
        Ok(ok) => ok,
        Err(e) => {
            // Not tried: not a failure either.
            db.refund_login_attempt(&account).await?;
            db.refund_login_attempt(&address).await?;
            return Err(e);
        }
    };
    match user {
        Some(user) if ok => {
            db.clear_login_failures(&account).await?;
            db.refund_login_attempt(&address).await?;
            Ok(user)
        }
        _ => Err(SignInError::InvalidCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_and_are_capped() {
        assert_eq!(lock_secs(6, 5), 2);
        assert_eq!(lock_secs(7, 5), 4);
        assert_eq!(lock_secs(14, 5), 512);
        assert_eq!(lock_secs(15, 5), MAX_LOCK_SECS);
        assert_eq!(lock_secs(10_000, 5), MAX_LOCK_SECS);
    }

    #[test]
    fn keys_are_fixed_size_hashes_and_ipv6_counts_per_64() {
        let long = "a".repeat(2_000_000);
        assert_eq!(account_key(&long).len(), 64);
        assert_eq!(
            account_key("Admin@Example.com"),
            account_key("admin@example.com")
        );
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), address_key(v4));
    }
}
