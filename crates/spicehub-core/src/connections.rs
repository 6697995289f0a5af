//! Azure DevOps clients for the providers the hub stores: the sealed
//! credential is opened once per provider and kept in memory as a
//! `Credential` (a `secrecy` type, never printed), behind one token manager
//! for the whole hub so tokens are cached and refreshed single-flight.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use secrecy::SecretString;

use crate::config::AzureArgs;
use crate::crypto::SecretKey;
use crate::db::providers::{CredentialKind, ProviderError};
use crate::db::{Db, DbError};
use spicehub_azure::client::{AzureClient, ClientConfig};
use spicehub_azure::credentials::Credential;
use spicehub_azure::token::{ServicePrincipal, TokenManager, TokenManagerConfig};
use spicehub_azure::AzureError;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("the Git provider of this repository no longer exists")]
    ProviderMissing,
    #[error("the provider's stored credential cannot be opened with this hub's SPICEHUB_SECRET_KEY (was the key changed?)")]
    Sealed,
    #[error("this provider uses the hub's multi-tenant app, but SPICEHUB_HUB_CLIENT_ID and SPICEHUB_HUB_CLIENT_SECRET are not set on this hub")]
    HubAppNotConfigured,
    #[error("this provider uses a federated credential, but this hub runs without its issuer")]
    IssuerNotConfigured,
    #[error(transparent)]
    Azure(#[from] AzureError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<ProviderError> for ConnectionError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::NotFound => ConnectionError::ProviderMissing,
            ProviderError::Db(e) => ConnectionError::Db(e),
            _ => ConnectionError::Sealed,
        }
    }
}

/// Builds the credential a provider's sealed bytes hold: a client secret's
/// value, or a PEM bundle with the certificate and its private key.
pub fn credential_from_sealed(
    kind: CredentialKind,
    bytes: Vec<u8>,
) -> Result<Credential, AzureError> {
    let invalid = |detail: &str| {
        AzureError::diagnosed(spicehub_azure::Diagnosis::InvalidCertificate {
            detail: detail.to_owned(),
        })
    };
    match kind {
        CredentialKind::ClientSecret => {
            let secret = String::from_utf8(bytes)
                .map_err(|_| AzureError::diagnosed(spicehub_azure::Diagnosis::WrongClientSecret))?;
            Credential::client_secret(SecretString::from(secret))
        }
        CredentialKind::Pat => {
            let pat = String::from_utf8(bytes)
                .map_err(|_| AzureError::diagnosed(spicehub_azure::Diagnosis::NotAuthorized))?;
            Credential::personal_access_token(SecretString::from(pat))
        }
        // Nothing secret is stored for these: `ProviderConnections` uses the
        // hub's own app, or signs with the hub's issuer.
        CredentialKind::HubApp | CredentialKind::Federated => Err(AzureError::diagnosed(
            spicehub_azure::Diagnosis::CredentialMissing,
        )),
        CredentialKind::Certificate => {
            let blocks = pem::parse_many(&bytes)
                .map_err(|_| invalid("the stored certificate is not PEM"))?;
            let key: String = blocks
                .iter()
                .filter(|b| b.tag().ends_with("PRIVATE KEY"))
                .map(pem::encode)
                .collect();
            if key.is_empty() {
                return Err(invalid("no private key is stored with the certificate"));
            }
            Credential::certificate_from_pem(&bytes, &SecretString::from(key))
        }
    }
}

struct Cached {
    /// `updated_at` of the provider row: a change of credential invalidates.
    version: i64,
    client: AzureClient,
}

/// One client (and one principal) per provider, rebuilt when the provider
/// changes. Cheap to clone.
#[derive(Clone)]
pub struct ProviderConnections {
    db: Db,
    key: SecretKey,
    azure: AzureArgs,
    client_config: ClientConfig,
    tokens: TokenManager,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
    hub_app: Option<crate::config::HubApp>,
    issuer: Option<crate::issuer::Issuer>,
}

impl ProviderConnections {
    pub fn new(
        db: Db,
        key: SecretKey,
        azure: AzureArgs,
        client_config: ClientConfig,
    ) -> Result<Self, AzureError> {
        let tokens = TokenManager::new(TokenManagerConfig::default())?;
        Ok(Self {
            db,
            key,
            client_config: ClientConfig {
                devops_url: azure.devops_url.clone(),
                ..client_config
            },
            azure,
            tokens,
            cache: Arc::new(Mutex::new(HashMap::new())),
            hub_app: None,
            issuer: None,
        })
    }

    /// The hub's own app and its credential.
    pub fn hub_app_credential(&self) -> Result<(String, Credential), ConnectionError> {
        use crate::config::HubCredential;
        let hub = self
            .hub_app
            .as_ref()
            .ok_or(ConnectionError::HubAppNotConfigured)?;
        let credential = match &hub.credential {
            HubCredential::ClientSecret(secret) => Credential::client_secret(secret.clone())?,
            HubCredential::Certificate(pem) => {
                use secrecy::ExposeSecret;
                credential_from_sealed(
                    CredentialKind::Certificate,
                    pem.expose_secret().as_bytes().to_vec(),
                )?
            }
            HubCredential::Federated => self.federated_credential(crate::issuer::HUB_SUBJECT)?,
        };
        Ok((hub.client_id.clone(), credential))
    }

    /// Federated providers sign their assertions with this issuer.
    pub fn with_issuer(mut self, issuer: crate::issuer::Issuer) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// A federated credential for `subject`, signed by the hub's issuer.
    pub fn federated_credential(&self, subject: &str) -> Result<Credential, ConnectionError> {
        let issuer = self
            .issuer
            .clone()
            .ok_or(ConnectionError::IssuerNotConfigured)?;
        Ok(Credential::federated(std::sync::Arc::new(issuer), subject)?)
    }

    /// Providers of the hub-app kind authenticate with this app.
    pub fn with_hub_app(mut self, hub_app: Option<crate::config::HubApp>) -> Self {
        self.hub_app = hub_app;
        self
    }

    pub fn hub_app(&self) -> Option<&crate::config::HubApp> {
        self.hub_app.as_ref()
    }

    /// Drops the cached client of a provider (its credential changed).
    pub fn forget(&self, provider_id: &str) {
        if let Some(c) = self.cache.lock().remove(provider_id) {
            self.tokens.forget(c.client.principal());
        }
    }

    /// The token cache's view of a provider (last token obtained, last
    /// error), if a client was built for it since the hub started.
    pub fn token_status(&self, provider_id: &str) -> Option<spicehub_azure::token::TokenStatus> {
        let principal = self
            .cache
            .lock()
            .get(provider_id)
            .map(|c| c.client.principal().clone())?;
        Some(self.tokens.status(&principal))
    }

    /// What this hub has seen of a provider's Azure DevOps rate limit, per
    /// organization (empty until a client was built for it since the hub
    /// started). Other instances keep their own, of the same budget.
    pub fn rate_limits(&self, provider_id: &str) -> Vec<(String, spicehub_azure::GateReport)> {
        self.cache
            .lock()
            .get(provider_id)
            .map(|c| c.client.gates())
            .unwrap_or_default()
    }

    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// A client for values that are not stored (a form being tested): its
    /// token is cached under the credential's own fingerprint, so a wrong
    /// secret tried here never replaces a stored provider's token. Call
    /// `forget_client` when done, so tried credentials are not kept.
    pub fn unsaved(
        &self,
        tenant_id: &str,
        client_id: &str,
        credential: Credential,
        organization: &str,
    ) -> Result<AzureClient, ConnectionError> {
        let principal = ServicePrincipal::with_authority(
            &self.azure.authority_url,
            tenant_id,
            client_id,
            credential,
        )?;
        Ok(AzureClient::new(
            self.client_config.clone(),
            self.tokens.clone(),
            principal,
            organization,
        )?)
    }

    /// Drops the token of a client made by `unsaved`.
    pub fn forget_client(&self, client: &AzureClient) {
        self.tokens.forget(client.principal());
    }

    /// The stored credential of a provider, opened (the hub's own for the
    /// hub-app kind), with the client ID it belongs to.
    pub async fn stored_credential(
        &self,
        provider: &crate::db::providers::Provider,
    ) -> Result<(String, Credential), ConnectionError> {
        match provider.credential_kind {
            CredentialKind::HubApp => self.hub_app_credential(),
            CredentialKind::Federated => {
                let bytes = self.db.provider_credential(&self.key, &provider.id).await?;
                let subject = String::from_utf8(bytes).map_err(|_| ConnectionError::Sealed)?;
                Ok((
                    provider.client_id.clone(),
                    self.federated_credential(&subject)?,
                ))
            }
            kind => {
                let bytes = self.db.provider_credential(&self.key, &provider.id).await?;
                Ok((
                    provider.client_id.clone(),
                    credential_from_sealed(kind, bytes)?,
                ))
            }
        }
    }

    /// A client for `organization` authenticating as `provider_id`'s app.
    pub async fn for_org(
        &self,
        provider_id: &str,
        organization: &str,
    ) -> Result<AzureClient, ConnectionError> {
        let provider = self
            .db
            .provider(provider_id)
            .await?
            .ok_or(ConnectionError::ProviderMissing)?;
        if let Some(c) = self.cache.lock().get(provider_id) {
            if c.version == provider.updated_at {
                return Ok(c.client.for_organization(organization)?);
            }
        }
        let (client_id, credential) = self.stored_credential(&provider).await?;
        let principal = ServicePrincipal::with_authority(
            &self.azure.authority_url,
            &provider.tenant_id,
            &client_id,
            credential,
        )?;
        let client = AzureClient::new(
            self.client_config.clone(),
            self.tokens.clone(),
            principal,
            organization,
        )?;
        self.cache.lock().insert(
            provider_id.to_owned(),
            Cached {
                version: provider.updated_at,
                client: client.clone(),
            },
        );
        Ok(client)
    }
}
