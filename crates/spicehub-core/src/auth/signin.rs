//! The sign-in policy: password check plus throttling of failures per
//! account and per client address, so neither one account nor one address
//! can be used to guess passwords quickly.

use crate::db::users::User;
use crate::db::{now, Db, DbError};

use super::password;

/// Failures allowed per account within `WINDOW_SECS` before it is locked.
pub const ACCOUNT_LIMIT: i64 = 5;
/// Failures allowed per client address within `WINDOW_SECS`.
pub const ADDRESS_LIMIT: i64 = 20;
pub const WINDOW_SECS: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Wrong e-mail or password.")]
    InvalidCredentials,
    #[error("Too many failed sign-in attempts. Try again in {} minutes.", (retry_after_secs + 59) / 60)]
    Throttled { retry_after_secs: i64 },
    #[error("sign-in is unavailable: {0}")]
    Internal(#[from] DbError),
}

fn account_key(email: &str) -> String {
    format!("account:{}", crate::db::users::normalize_email(email))
}

fn address_key(address: &str) -> String {
    format!("address:{address}")
}

async fn locked_for(db: &Db, key: &str, limit: i64) -> Result<Option<i64>, DbError> {
    let since = now() - WINDOW_SECS;
    let (failures, window_start) = db.login_failures(key, since).await?;
    Ok((failures >= limit).then(|| (window_start + WINDOW_SECS - now()).max(1)))
}

pub async fn sign_in(
    db: &Db,
    email: &str,
    password_attempt: &str,
    address: &str,
) -> Result<User, SignInError> {
    let account = account_key(email);
    let address = address_key(address);
    for (key, limit) in [(&account, ACCOUNT_LIMIT), (&address, ADDRESS_LIMIT)] {
        if let Some(retry_after_secs) = locked_for(db, key, limit).await? {
            return Err(SignInError::Throttled { retry_after_secs });
        }
    }
    let user = db.user_by_email(email).await?;
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::dummy_hash().to_owned());
    let attempt = password_attempt.to_owned();
    let ok = tokio::task::spawn_blocking(move || password::verify(&stored, &attempt))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if ok => {
            db.clear_login_failures(&account).await?;
            Ok(user)
        }
        _ => {
            let since = now() - WINDOW_SECS;
            db.record_login_failure(&account, since).await?;
            db.record_login_failure(&address, since).await?;
            Err(SignInError::InvalidCredentials)
        }
    }
}
