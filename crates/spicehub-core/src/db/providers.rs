//! Azure DevOps connections ("providers") and their organizations.
//!
//! The client credential is sealed with `SPICEHUB_SECRET_KEY` (it must be
//! read back to obtain tokens). The webhook password is only ever compared,
//! so it is kept as a verifier: `sha256:` + SHA-256 of `"<provider id>:<password>"`.
//! A fast hash is enough because webhook passwords are long random values
//! (`generate_webhook_password`, at least `MIN_WEBHOOK_PASSWORD` characters
//! enforced here), which no dictionary or brute force reaches; and a slow
//! hash (argon2) would have to run for every provider on every unauthenticated
//! request, handing anyone who can reach the public route a CPU amplifier.
//! The provider id salts the hash so equal passwords give unequal verifiers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::{now, Db, DbError};
use crate::crypto::{sha256_hex, CryptoError, SecretKey};

/// How long an admin-consent link stays valid.
pub const CONSENT_TTL_SECS: i64 = 3600;

/// Shorter webhook passwords are refused: the fast verifier relies on entropy.
pub const MIN_WEBHOOK_PASSWORD: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    ClientSecret,
    Certificate,
    /// A personal access token: kept only to migrate old setups (deprecated).
    Pat,
    /// The hub's own multi-tenant app, after the tenant's admin consented:
    /// nothing is stored, the hub's configured credential is used.
    HubApp,
    /// A federated credential trusting the hub's own issuer: no secret. The
    /// sealed credential holds only the provider's Subject
    /// (`crate::issuer::provider_subject`), which is not secret but is
    /// stored where every kind keeps what identifies its credential.
    Federated,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecret => "client_secret",
            Self::Certificate => "certificate",
            Self::Pat => "pat",
            Self::HubApp => "hub_app",
            Self::Federated => "federated",
        }
    }

    /// The stored triple: `credential_kind` (`client_secret` or
    /// `certificate`, which its CHECK allows), `credential_variant` (the
    /// kinds added by the migration `admin_ui`) and `credential_scheme`
    /// (those added by `issuer_keys`): CHECKs cannot change in place on SQLite.
    fn columns(self) -> (&'static str, Option<&'static str>, Option<&'static str>) {
        match self {
            Self::ClientSecret | Self::Certificate => (self.as_str(), None, None),
            Self::Pat | Self::HubApp => ("client_secret", Some(self.as_str()), None),
            Self::Federated => ("client_secret", None, Some(self.as_str())),
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "client_secret" => Some(Self::ClientSecret),
            "certificate" => Some(Self::Certificate),
            "pat" => Some(Self::Pat),
            "hub_app" => Some(Self::HubApp),
            "federated" => Some(Self::Federated),
            _ => None,
        }
    }
}

/// What an admin enters to connect an Azure DevOps tenant.
pub struct NewProvider<'a> {
    pub display_name: &'a str,
    pub tenant_id: &'a str,
    pub client_id: &'a str,
    pub credential_kind: CredentialKind,
    /// Client secret, or the PEM of certificate + private key.
    pub credential: &'a [u8],
    pub webhook_username: &'a str,
    pub webhook_password: &'a str,
    pub secret_expires_at: Option<i64>,
}

/// A provider row without its secrets (the sealed credential is opened on
/// demand with `Db::provider_credential`).
#[derive(Clone, Debug)]
pub struct Provider {
    pub id: String,
    pub display_name: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential_kind: CredentialKind,
    pub webhook_username: String,
    pub secret_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the current credential was saved ("set on DATE").
    pub credential_set_at: Option<i64>,
    /// The last connection test: when, whether it passed, and its JSON
    /// report (`admin::providers::CheckRecord`).
    pub last_check_at: Option<i64>,
    pub last_check_ok: Option<bool>,
    pub last_check: Option<String>,
    /// The last time a token was obtained for this provider.
    pub last_token_at: Option<i64>,
    /// `HubApp`: when the tenant's admin consented.
    pub consented_at: Option<i64>,
    /// After a change of webhook password: until when the previous one is
    /// still accepted (`None` once the overlap ended).
    pub previous_password_until: Option<i64>,
}

/// A change to a provider; `None` keeps the stored value of a secret.
pub struct ProviderUpdate<'a> {
    pub display_name: &'a str,
    pub tenant_id: &'a str,
    pub client_id: &'a str,
    pub credential_kind: CredentialKind,
    /// A new credential, or `None` to keep the stored one (the form never
    /// shows it back, so an empty field means "unchanged").
    pub credential: Option<&'a [u8]>,
    pub webhook_username: &'a str,
    pub webhook_password: Option<&'a str>,
    /// With a new webhook password: how long the previous one is still
    /// accepted, in seconds (0: it stops at once).
    pub webhook_password_overlap: i64,
    pub secret_expires_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Organization {
    pub id: String,
    pub provider_id: String,
    pub name: String,
    pub devops_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the webhook user name is already used by another provider")]
    WebhookUsernameTaken,
    #[error("the webhook password must be at least {MIN_WEBHOOK_PASSWORD} characters without whitespace")]
    WeakWebhookPassword,
    #[error("the webhook user name must be 1-256 characters without whitespace or ':'")]
    BadWebhookUsername,
    #[error("an organization with this name already exists for this provider")]
    OrganizationExists,
    #[error("no such provider")]
    NotFound,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ProviderError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// The context a provider's credential is sealed under: a ciphertext copied
/// to another row does not open.
pub fn credential_context(provider_id: &str) -> String {
    format!("provider:{provider_id}:credential")
}

/// The context a provider's webhook password is sealed under.
pub fn webhook_context(provider_id: &str) -> String {
    format!("provider:{provider_id}:webhook")
}

/// The stored form of a webhook password.
pub fn webhook_verifier(provider_id: &str, password: &str) -> String {
    format!(
        "sha256:{}",
        sha256_hex(&format!("{provider_id}:{password}"))
    )
}

/// A fresh webhook password: 32 random bytes, URL-safe base64 (43 characters,
/// no whitespace, as Azure DevOps' `basicAuthPassword` requires).
pub fn generate_webhook_password() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The credentials a webhook delivery is checked against.
#[derive(Clone)]
pub struct WebhookCredential {
    pub provider_id: String,
    pub username: String,
    pub verifier: String,
    /// The previous password's verifier, and until when it is accepted.
    pub previous: Option<(String, i64)>,
}

/// A provider after `Db::update_provider`.
#[derive(Clone, Debug)]
pub struct ProviderUpdated {
    pub provider: Provider,
    /// A new webhook password replaced the stored one.
    pub webhook_password_changed: bool,
}

/// Which of a provider's webhook passwords a delivery used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordMatch {
    No,
    Current,
    /// The previous one, within its overlap window.
    Previous,
}

impl WebhookCredential {
    /// Compares in constant time, username and both passwords alike, so the
    /// answer time says nothing about which part (or how much of it) matched.
    pub fn check(&self, username: &str, password: &str, now: i64) -> PasswordMatch {
        use subtle::Choice;
        let user_ok = sha256_hex(username)
            .as_bytes()
            .ct_eq(sha256_hex(&self.username).as_bytes());
        let given = webhook_verifier(&self.provider_id, password);
        let current = given.as_bytes().ct_eq(self.verifier.as_bytes());
        let previous = match &self.previous {
            Some((verifier, until)) => {
                given.as_bytes().ct_eq(verifier.as_bytes()) & Choice::from(u8::from(*until > now))
            }
            None => Choice::from(0),
        };
        if !bool::from(user_ok) {
            PasswordMatch::No
        } else if bool::from(current) {
            PasswordMatch::Current
        } else if bool::from(previous) {
            PasswordMatch::Previous
        } else {
            PasswordMatch::No
        }
    }

    pub fn matches(&self, username: &str, password: &str) -> bool {
        self.check(username, password, now()) != PasswordMatch::No
    }

    /// A previous password is still accepted.
    pub fn overlap_pending(&self, now: i64) -> bool {
        self.previous
            .as_ref()
            .is_some_and(|(_, until)| *until > now)
    }
}

fn provider_from_row(row: &sqlx::any::AnyRow) -> Result<Provider, DbError> {
    let kind: String = row.try_get("credential_kind")?;
    let variant: Option<String> = row.try_get("credential_variant")?;
    let scheme: Option<String> = row.try_get("credential_scheme")?;
    let kind = scheme.or(variant).unwrap_or(kind);
    Ok(Provider {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        tenant_id: row.try_get("tenant_id")?,
        client_id: row.try_get("client_id")?,
        // The CHECK constraint makes any other value impossible.
        credential_kind: CredentialKind::parse(&kind).unwrap_or(CredentialKind::ClientSecret),
        webhook_username: row.try_get("webhook_username")?,
        secret_expires_at: row.try_get("secret_expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        credential_set_at: row.try_get("credential_set_at")?,
        last_check_at: row.try_get("last_check_at")?,
        last_check_ok: row
            .try_get::<Option<i64>, _>("last_check_ok")?
            .map(|v| v != 0),
        last_check: row.try_get("last_check")?,
        last_token_at: row.try_get("last_token_at")?,
        consented_at: row.try_get("consented_at")?,
        previous_password_until: row
            .try_get::<Option<i64>, _>("previous_webhook_password_until")?
            .filter(|until| *until > now()),
    })
}

const PROVIDER_COLUMNS: &str =
    "id, display_name, tenant_id, client_id, credential_kind, credential_variant, credential_scheme, \
     webhook_username, secret_expires_at, created_at, updated_at, credential_set_at, \
     last_check_at, last_check_ok, last_check, last_token_at, consented_at, \
     previous_webhook_password_until";

pub fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.contains(':')
        && !name.chars().any(char::is_whitespace)
}

pub fn valid_password(password: &str) -> bool {
    password.chars().count() >= MIN_WEBHOOK_PASSWORD
        && password.len() <= 256
        && !password.chars().any(char::is_whitespace)
}

impl Db {
    pub async fn create_provider(
        &self,
        key: &SecretKey,
        new: &NewProvider<'_>,
    ) -> Result<Provider, ProviderError> {
        if !valid_username(new.webhook_username) {
            return Err(ProviderError::BadWebhookUsername);
        }
        if !valid_password(new.webhook_password) {
            return Err(ProviderError::WeakWebhookPassword);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let at = now();
        let sealed = key.seal(&credential_context(&id), new.credential);
        let result = sqlx::query(
            "INSERT INTO providers (id, display_name, kind, tenant_id, client_id, credential_kind, \
             credential_sealed, webhook_username, webhook_password_verifier, secret_expires_at, \
             created_at, updated_at, webhook_password_sealed, credential_set_at, credential_variant, \
             credential_scheme) \
             VALUES ($1, $2, 'azure_devops', $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $10, $12, $13) \
             ON CONFLICT (webhook_username) DO NOTHING",
        )
        .bind(&id)
        .bind(new.display_name)
        .bind(new.tenant_id)
        .bind(new.client_id)
        .bind(new.credential_kind.columns().0)
        .bind(&sealed)
        .bind(new.webhook_username)
        .bind(webhook_verifier(&id, new.webhook_password))
        .bind(new.secret_expires_at)
        .bind(at)
        .bind(key.seal(&webhook_context(&id), new.webhook_password.as_bytes()))
        .bind(new.credential_kind.columns().1)
        .bind(new.credential_kind.columns().2)
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(ProviderError::WebhookUsernameTaken);
        }
        self.directory_changed();
        Ok(Provider {
            id,
            display_name: new.display_name.to_owned(),
            tenant_id: new.tenant_id.to_owned(),
            client_id: new.client_id.to_owned(),
            credential_kind: new.credential_kind,
            webhook_username: new.webhook_username.to_owned(),
            secret_expires_at: new.secret_expires_at,
            created_at: at,
            updated_at: at,
            credential_set_at: Some(at),
            last_check_at: None,
            last_check_ok: None,
            last_check: None,
            last_token_at: None,
            consented_at: None,
            previous_password_until: None,
        })
    }

    /// Changes a provider. Secrets left `None` keep their stored value;
    /// a new credential resets the last connection test.
    pub async fn update_provider(
        &self,
        key: &SecretKey,
        id: &str,
        change: &ProviderUpdate<'_>,
    ) -> Result<ProviderUpdated, ProviderError> {
        if !valid_username(change.webhook_username) {
            return Err(ProviderError::BadWebhookUsername);
        }
        if change.webhook_password.is_some_and(|p| !valid_password(p)) {
            return Err(ProviderError::WeakWebhookPassword);
        }
        let existing = self.provider(id).await?.ok_or(ProviderError::NotFound)?;
        let taken =
            sqlx::query("SELECT id FROM providers WHERE webhook_username = $1 AND id <> $2")
                .bind(change.webhook_username)
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        if taken.is_some() {
            return Err(ProviderError::WebhookUsernameTaken);
        }
        // Never a smaller updated_at: caches key on it.
        let at = now().max(existing.updated_at + 1);
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE providers SET display_name = $2, tenant_id = $3, client_id = $4, \
             credential_kind = $5, webhook_username = $6, secret_expires_at = $7, updated_at = $8, \
             credential_variant = $9, credential_scheme = $10 WHERE id = $1",
        )
        .bind(id)
        .bind(change.display_name)
        .bind(change.tenant_id)
        .bind(change.client_id)
        .bind(change.credential_kind.columns().0)
        .bind(change.webhook_username)
        .bind(change.secret_expires_at)
        .bind(at)
        .bind(change.credential_kind.columns().1)
        .bind(change.credential_kind.columns().2)
        .execute(&mut *tx)
        .await?;
        if let Some(credential) = change.credential {
            sqlx::query(
                "UPDATE providers SET credential_sealed = $2, credential_set_at = $3, \
                 last_check_at = NULL, last_check_ok = NULL, last_check = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(key.seal(&credential_context(id), credential))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        let mut webhook_password_changed = false;
        if let Some(password) = change.webhook_password {
            // The previous password stays accepted for the overlap, so no
            // delivery of a hook still holding it is refused meanwhile.
            let done = sqlx::query(
                "UPDATE providers SET \
                 previous_webhook_password_verifier = CASE WHEN $4 > 0 THEN webhook_password_verifier ELSE NULL END, \
                 previous_webhook_password_until = CASE WHEN $4 > 0 THEN $5 ELSE NULL END, \
                 webhook_password_verifier = $2, webhook_password_sealed = $3 \
                 WHERE id = $1 AND webhook_password_verifier <> $2",
            )
            .bind(id)
            .bind(webhook_verifier(id, password))
            .bind(key.seal(&webhook_context(id), password.as_bytes()))
            .bind(change.webhook_password_overlap)
            .bind(at + change.webhook_password_overlap)
            .execute(&mut *tx)
            .await?;
            // The same password saved again changes nothing.
            webhook_password_changed = done.rows_affected() > 0;
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(ProviderUpdated {
            provider: self.provider(id).await?.ok_or(ProviderError::NotFound)?,
            webhook_password_changed,
        })
    }

    /// Records a connection test (and, when a token was obtained, its time).
    pub async fn record_provider_check(
        &self,
        id: &str,
        ok: bool,
        report_json: &str,
        token_obtained: bool,
    ) -> Result<(), DbError> {
        let at = now();
        sqlx::query(
            "UPDATE providers SET last_check_at = $2, last_check_ok = $3, last_check = $4, \
             last_token_at = CASE WHEN $5 = 1 THEN $2 ELSE last_token_at END WHERE id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(i64::from(ok))
        .bind(report_json)
        .bind(i64::from(token_obtained))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a provider with its organizations, repositories and deliveries.
    pub async fn delete_provider(&self, id: &str) -> Result<bool, DbError> {
        let repos = sqlx::query(
            "SELECT r.id FROM repositories r JOIN organizations o ON o.id = r.organization_id \
             WHERE o.provider_id = $1",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        for row in &repos {
            let repo: String = row.try_get("id")?;
            self.delete_repository(&repo).await?;
        }
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM webhook_deliveries WHERE provider_id = $1",
            "DELETE FROM consent_requests WHERE provider_id = $1",
            "DELETE FROM organizations WHERE provider_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM providers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.directory_changed();
        Ok(done.rows_affected() > 0)
    }

    /// A new admin-consent request for a hub-app provider, for the tenant
    /// the link names: returns the `state` to put in the link (only its
    /// hash is stored).
    pub async fn create_consent_request(
        &self,
        provider_id: &str,
        expected_tenant: &str,
    ) -> Result<String, DbError> {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let state = URL_SAFE_NO_PAD.encode(bytes);
        let at = now();
        // Old requests are worthless after an hour.
        sqlx::query("DELETE FROM consent_requests WHERE created_at < $1")
            .bind(at - CONSENT_TTL_SECS)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO consent_requests (state_hash, provider_id, created_at, expected_tenant) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(&state))
        .bind(provider_id)
        .bind(at)
        .bind(expected_tenant)
        .execute(self.pool())
        .await?;
        Ok(state)
    }

    /// Consumes a consent request: the provider and the tenant it was made
    /// for, if the state is known and younger than an hour. A state works
    /// once.
    pub async fn take_consent_request(
        &self,
        state: &str,
    ) -> Result<Option<(String, Option<String>)>, DbError> {
        let hash = sha256_hex(state);
        let row = sqlx::query(
            "SELECT provider_id, created_at, expected_tenant FROM consent_requests WHERE state_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let done = sqlx::query("DELETE FROM consent_requests WHERE state_hash = $1")
            .bind(&hash)
            .execute(self.pool())
            .await?;
        let created: i64 = row.try_get("created_at")?;
        if done.rows_affected() == 0 || created < now() - CONSENT_TTL_SECS {
            return Ok(None);
        }
        Ok(Some((
            row.try_get("provider_id")?,
            row.try_get("expected_tenant")?,
        )))
    }

    /// Records the tenant that consented to the hub's app.
    pub async fn record_consent(&self, provider_id: &str, tenant_id: &str) -> Result<(), DbError> {
        let at = now();
        sqlx::query(
            "UPDATE providers SET tenant_id = $2, consented_at = $3, \
             updated_at = CASE WHEN updated_at >= $3 THEN updated_at + 1 ELSE $3 END, \
             last_check_at = NULL, last_check_ok = NULL, last_check = NULL WHERE id = $1",
        )
        .bind(provider_id)
        .bind(tenant_id)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn provider(&self, id: &str) -> Result<Option<Provider>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(provider_from_row).transpose()
    }

    pub async fn providers(&self) -> Result<Vec<Provider>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {PROVIDER_COLUMNS} FROM providers ORDER BY display_name, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(provider_from_row).collect()
    }

    /// Opens the sealed client secret or certificate of a provider.
    pub async fn provider_credential(
        &self,
        key: &SecretKey,
        id: &str,
    ) -> Result<Vec<u8>, ProviderError> {
        let row = sqlx::query("SELECT credential_sealed FROM providers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(ProviderError::NotFound)?;
        let sealed: String = row.try_get("credential_sealed")?;
        Ok(key.open(&credential_context(id), &sealed)?)
    }

    /// Replaces the webhook password (the old one stops working at once).
    pub async fn set_webhook_password(
        &self,
        key: &SecretKey,
        id: &str,
        password: &str,
    ) -> Result<(), ProviderError> {
        if !valid_password(password) {
            return Err(ProviderError::WeakWebhookPassword);
        }
        let done = sqlx::query(
            "UPDATE providers SET webhook_password_verifier = $2, updated_at = $3, \
             webhook_password_sealed = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(webhook_verifier(id, password))
        .bind(now())
        .bind(key.seal(&webhook_context(id), password.as_bytes()))
        .execute(self.pool())
        .await?;
        self.directory_changed();
        if done.rows_affected() == 0 {
            return Err(ProviderError::NotFound);
        }
        Ok(())
    }

    /// The webhook password in the clear, to create a service hook with it.
    /// `None` for a provider saved before the hub kept it (set a new one).
    pub async fn webhook_password(
        &self,
        key: &SecretKey,
        id: &str,
    ) -> Result<Option<String>, ProviderError> {
        let row = sqlx::query("SELECT webhook_password_sealed FROM providers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or(ProviderError::NotFound)?;
        let sealed: Option<String> = row.try_get("webhook_password_sealed")?;
        match sealed {
            None => Ok(None),
            Some(sealed) => {
                let bytes = key.open(&webhook_context(id), &sealed)?;
                Ok(String::from_utf8(bytes).ok())
            }
        }
    }

    /// Every provider's webhook credentials, for the webhook route.
    pub async fn webhook_credentials(&self) -> Result<Vec<WebhookCredential>, DbError> {
        let rows = sqlx::query(
            "SELECT id, webhook_username, webhook_password_verifier, \
             previous_webhook_password_verifier, previous_webhook_password_until \
             FROM providers ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let previous: Option<String> = row.try_get("previous_webhook_password_verifier")?;
                let until: Option<i64> = row.try_get("previous_webhook_password_until")?;
                Ok(WebhookCredential {
                    provider_id: row.try_get("id")?,
                    username: row.try_get("webhook_username")?,
                    verifier: row.try_get("webhook_password_verifier")?,
                    previous: previous.zip(until),
                })
            })
            .collect()
    }

    /// A delivery came with the new webhook password: the hooks hold it,
    /// so the previous one stops now rather than at the end of the overlap.
    pub async fn end_webhook_password_overlap(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE providers SET previous_webhook_password_verifier = NULL, \
             previous_webhook_password_until = NULL \
             WHERE id = $1 AND previous_webhook_password_verifier IS NOT NULL",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() > 0 {
            self.directory_changed();
        }
        Ok(done.rows_affected() > 0)
    }

    pub async fn create_organization(
        &self,
        provider_id: &str,
        name: &str,
        devops_id: Option<&str>,
    ) -> Result<Organization, ProviderError> {
        let id = uuid::Uuid::new_v4().to_string();
        let devops_id = devops_id.map(str::to_ascii_lowercase);
        let result = sqlx::query(
            "INSERT INTO organizations (id, provider_id, name, devops_id, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider_id, name) DO NOTHING",
        )
        .bind(&id)
        .bind(provider_id)
        .bind(name)
        .bind(&devops_id)
        .bind(now())
        .execute(self.pool())
        .await?;
        if result.rows_affected() == 0 {
            return Err(ProviderError::OrganizationExists);
        }
        Ok(Organization {
            id,
            provider_id: provider_id.to_owned(),
            name: name.to_owned(),
            devops_id,
        })
    }

    pub async fn organization(&self, id: &str) -> Result<Option<Organization>, DbError> {
        let row =
            sqlx::query("SELECT id, provider_id, name, devops_id FROM organizations WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.map(|row| {
            Ok(Organization {
                id: row.try_get("id")?,
                provider_id: row.try_get("provider_id")?,
                name: row.try_get("name")?,
                devops_id: row.try_get("devops_id")?,
            })
        })
        .transpose()
    }

    /// The organization of this provider with this name, created if missing.
    pub async fn ensure_organization(
        &self,
        provider_id: &str,
        name: &str,
        devops_id: Option<&str>,
    ) -> Result<Organization, ProviderError> {
        match self.create_organization(provider_id, name, devops_id).await {
            Ok(o) => Ok(o),
            Err(ProviderError::OrganizationExists) => self
                .organizations(provider_id)
                .await?
                .into_iter()
                .find(|o| o.name == name)
                .ok_or(ProviderError::NotFound),
            Err(e) => Err(e),
        }
    }

    pub async fn organizations(&self, provider_id: &str) -> Result<Vec<Organization>, DbError> {
        let rows = sqlx::query(
            "SELECT id, provider_id, name, devops_id FROM organizations \
             WHERE provider_id = $1 ORDER BY name",
        )
        .bind(provider_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Organization {
                    id: row.try_get("id")?,
                    provider_id: row.try_get("provider_id")?,
                    name: row.try_get("name")?,
                    devops_id: row.try_get("devops_id")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_only_the_right_pair() {
        let c = WebhookCredential {
            provider_id: "p1".into(),
            username: "hook".into(),
            verifier: webhook_verifier("p1", "a-long-random-password-123"),
            previous: None,
        };
        assert!(c.matches("hook", "a-long-random-password-123"));
        assert!(!c.matches("hook", "a-long-random-password-12"));
        assert!(!c.matches("hook2", "a-long-random-password-123"));
        // Salted by provider: the same password gives another verifier.
        assert_ne!(
            c.verifier,
            webhook_verifier("p2", "a-long-random-password-123")
        );
        assert!(!c.verifier.contains("a-long-random"));
    }

    #[test]
    fn generated_passwords_are_accepted_and_distinct() {
        let a = generate_webhook_password();
        assert!(valid_password(&a));
        assert_ne!(a, generate_webhook_password());
        assert!(!valid_password("short"));
        assert!(!valid_password("has a space in it 0123456789"));
    }

    #[test]
    fn the_previous_password_works_only_within_its_window() {
        let c = WebhookCredential {
            provider_id: "p1".into(),
            username: "hook".into(),
            verifier: webhook_verifier("p1", "the-new-password-0123456789"),
            previous: Some((webhook_verifier("p1", "the-old-password-0123456789"), 1_000)),
        };
        assert_eq!(
            c.check("hook", "the-new-password-0123456789", 999),
            PasswordMatch::Current
        );
        assert_eq!(
            c.check("hook", "the-old-password-0123456789", 999),
            PasswordMatch::Previous
        );
        assert_eq!(
            c.check("hook", "the-old-password-0123456789", 1_000),
            PasswordMatch::No
        );
        assert_eq!(
            c.check("other", "the-old-password-0123456789", 999),
            PasswordMatch::No
        );
        assert!(c.overlap_pending(999) && !c.overlap_pending(1_000));
    }
}
