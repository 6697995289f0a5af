//! What the webhook route looks up for every delivery: the providers'
//! webhook credentials and the replicated repository a push names. Reading
//! both from the database for each of thousands of deliveries a second cost
//! more than recording them, so they are kept in memory.
//!
//! Freshness: anything this process writes to providers or repositories
//! empties the cache at once (`Db::directory_version`). A change made by
//! another instance sharing the database is seen within [`TTL`]; until then
//! a delivery is judged as it would have been just before the change,
//! which only decides whether a sync is queued (the sync itself reads the
//! database and Azure DevOps). Credentials that match nothing are judged
//! against the cached list while it is fresh, so a flood of wrong passwords
//! costs no database reads; when it is stale, one request re-reads it and
//! the others wait for that read (at most one read per [`TTL`]). Unknown
//! repositories and repositories never synced yet are not cached: those are
//! always read again, so a repository just added elsewhere works at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use spicehub_core::db::providers::WebhookCredential;
use spicehub_core::db::{Db, DbError};

/// How long another instance's change can go unseen.
pub const TTL: Duration = Duration::from_secs(2);

/// The repository a push is for, as the webhook needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookTarget {
    pub id: String,
    pub tracked_branch: String,
    /// Whether a commit was ever synced (a push then syncs recent changes).
    pub synced: bool,
}

pub struct WebhookCache {
    db: Db,
    inner: Mutex<Inner>,
    /// Held while the credentials are read, so concurrent misses share one read.
    refresh: tokio::sync::Mutex<()>,
    /// Counts credential reads (`spicehub_webhook_credential_reads_total`).
    reads: prometheus_client::metrics::counter::Counter,
}

struct Inner {
    /// The `Db::directory_version` the contents were read at.
    version: u64,
    credentials: Option<(Instant, Arc<Vec<WebhookCredential>>)>,
    /// `(provider id, repository GUID)`.
    repositories: HashMap<(String, String), (Instant, HookTarget)>,
}

/// Bounds the repositories kept, against a flood of made-up GUIDs (which
/// are not cached anyway) or a very large hub.
const MAX_REPOSITORIES: usize = 100_000;

impl WebhookCache {
    pub fn new(db: Db, reads: prometheus_client::metrics::counter::Counter) -> WebhookCache {
        WebhookCache {
            refresh: tokio::sync::Mutex::new(()),
            reads,
            inner: Mutex::new(Inner {
                version: db.directory_version(),
                credentials: None,
                repositories: HashMap::new(),
            }),
            db,
        }
    }

    /// Locks the cache, emptied first if this process changed the directory.
    fn current(&self) -> parking_lot::MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock();
        let version = self.db.directory_version();
        if inner.version != version {
            inner.version = version;
            inner.credentials = None;
            inner.repositories.clear();
        }
        inner
    }

    /// The provider whose webhook credentials these are.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, DbError> {
        let matched = self.matched(user, password).await?;
        Ok(matched.map(|m| {
            if m.ends_overlap {
                // The first delivery with the new password: the hooks hold
                // it, so the previous one stops being accepted now.
                let db = self.db.clone();
                let provider = m.provider_id.clone();
                tokio::spawn(async move {
                    match db.end_webhook_password_overlap(&provider).await {
                        Ok(true) => tracing::info!(%provider, "first delivery with the new webhook password: the previous one is no longer accepted"),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(%provider, error = %e, "cannot end the webhook password overlap"),
                    }
                });
            }
            m.provider_id
        }))
    }

    async fn matched(&self, user: &str, password: &str) -> Result<Option<Matched>, DbError> {
        if let Some(credentials) = self.fresh_credentials() {
            return Ok(matching(&credentials, user, password));
        }
        let _reading = self.refresh.lock().await;
        // Another request may have read them while this one waited.
        if let Some(credentials) = self.fresh_credentials() {
            return Ok(matching(&credentials, user, password));
        }
        let version = self.db.directory_version();
        self.reads.inc();
        let credentials = Arc::new(self.db.webhook_credentials().await?);
        let provider = matching(&credentials, user, password);
        let mut inner = self.current();
        // A write during the read may not be in it: keep it only if none came.
        if inner.version == version {
            inner.credentials = Some((Instant::now(), credentials));
        }
        Ok(provider)
    }

    /// The provider whose webhook user name this is, from the credentials
    /// held (a refused delivery has just had them read if they were stale),
    /// never from the database: refusals must cost no reads. `None` when no
    /// provider uses it, or when a write of this process just emptied the
    /// cache (the refusal then counts as unknown, which only blurs a count).
    pub fn provider_of_user(&self, user: &str) -> Option<String> {
        let credentials = self.current().credentials.as_ref()?.1.clone();
        owner_of(&credentials, user)
    }

    fn fresh_credentials(&self) -> Option<Arc<Vec<WebhookCredential>>> {
        self.current()
            .credentials
            .as_ref()
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, c)| c.clone())
    }

    /// The repository with this GUID, if it is replicated for this provider.
    pub async fn repository(
        &self,
        provider_id: &str,
        guid: &str,
    ) -> Result<Option<HookTarget>, DbError> {
        let key = (provider_id.to_owned(), guid.to_ascii_lowercase());
        {
            let inner = self.current();
            if let Some((at, target)) = inner.repositories.get(&key) {
                if at.elapsed() < TTL {
                    return Ok(Some(target.clone()));
                }
            }
        }
        let version = self.db.directory_version();
        let Some(repository) = self.db.repository_of_provider(provider_id, guid).await? else {
            return Ok(None);
        };
        let target = HookTarget {
            id: repository.id,
            tracked_branch: repository.tracked_branch,
            synced: repository.last_synced_commit.is_some(),
        };
        // Not synced yet can change any second without a directory write.
        if target.synced {
            let mut inner = self.current();
            if inner.version == version {
                if inner.repositories.len() >= MAX_REPOSITORIES {
                    inner.repositories.retain(|_, (at, _)| at.elapsed() < TTL);
                }
                if inner.repositories.len() < MAX_REPOSITORIES {
                    inner
                        .repositories
                        .insert(key, (Instant::now(), target.clone()));
                }
            }
        }
        Ok(Some(target))
    }
}

/// Every credential is compared, with no early exit, so timing does not
/// tell how many providers there are before the matching one.
fn matching(credentials: &[WebhookCredential], user: &str, password: &str) -> Option<Matched> {
    use spicehub_core::db::providers::PasswordMatch;
    let now = spicehub_core::db::now();
    let mut provider = None;
    for c in credentials {
        match c.check(user, password, now) {
            PasswordMatch::No => {}
            PasswordMatch::Current => {
                provider = Some(Matched {
                    provider_id: c.provider_id.clone(),
                    ends_overlap: c.overlap_pending(now),
                })
            }
            PasswordMatch::Previous => {
                provider = Some(Matched {
                    provider_id: c.provider_id.clone(),
                    ends_overlap: false,
                })
            }
        }
    }
    provider
}

/// A delivery's credentials matched a provider's.
struct Matched {
    provider_id: String,
    /// It used the new password while the previous one was still accepted.
    ends_overlap: bool,
}

/// Like [`matching`], every user name is compared, so timing does not tell
/// which user names exist.
fn owner_of(credentials: &[WebhookCredential], user: &str) -> Option<String> {
    use subtle::ConstantTimeEq as _;
    let wanted = spicehub_core::crypto::sha256_hex(user);
    let mut provider = None;
    for c in credentials {
        let hash = spicehub_core::crypto::sha256_hex(&c.username);
        if bool::from(hash.as_bytes().ct_eq(wanted.as_bytes())) {
            provider = Some(c.provider_id.clone());
        }
    }
    provider
}

#[cfg(test)]
mod tests {
    use super::*;
    use spicehub_core::crypto::SecretKey;
    use spicehub_core::db::providers::{CredentialKind, NewProvider};
    use spicehub_core::db::repositories::NewRepository;
    use spicehub_core::testing::TestDb;

    const REPO: &str = "5f3c8a10-1111-4222-8333-000000000001";

    async fn provider(db: &Db, key: &SecretKey, user: &str, password: &str) -> String {
        db.create_provider(
            key,
            &NewProvider {
                display_name: user,
                tenant_id: "11111111-2222-4333-8444-555555555555",
                client_id: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                credential_kind: CredentialKind::ClientSecret,
                credential: b"client~secret",
                webhook_username: user,
                webhook_password: password,
                secret_expires_at: None,
            },
        )
        .await
        .expect("provider")
        .id
    }

    async fn repository(db: &Db, provider: &str) {
        let org = db
            .create_organization(provider, "acme", None)
            .await
            .expect("organization");
        db.create_repository(&NewRepository {
            id: REPO,
            organization_id: &org.id,
            project_id: "6ce954b1-ce1f-45d1-b94d-e6bf2464ba2c",
            project_name: "Alpha",
            name: "app",
            tracked_branch: "main",
            web_url: None,
        })
        .await
        .expect("repository");
    }

    #[tokio::test]
    async fn writes_of_this_process_are_seen_at_once_and_wrong_passwords_cost_no_reads() {
        for test_db in TestDb::all().await {
            let db = test_db.open().await;
            // A second instance on the same database.
            let other = test_db.open().await;
            let dir = tempfile::tempdir().expect("dir");
            let key = SecretKey::load_or_generate(&dir.path().join("k")).expect("key");
            let reads = prometheus_client::metrics::counter::Counter::default();
            let cache = WebhookCache::new(db.clone(), reads.clone());
            let first = provider(&db, &key, "hook-a", "password-a-0123456789").await;

            let auth = |u: &'static str, p: &'static str| cache.authenticate(u, p);
            assert_eq!(
                auth("hook-a", "password-a-0123456789").await.unwrap(),
                Some(first.clone())
            );
            let reads_before = reads.get();
            // A flood of wrong passwords, many at once: answered from memory.
            let wrong = (0..500).map(|_| auth("hook-a", "wrong-password-0123456"));
            for answer in futures_util::future::join_all(wrong).await {
                assert_eq!(answer.unwrap(), None);
            }
            assert!(
                reads.get() - reads_before <= 1,
                "{} credential reads for 500 wrong passwords ({})",
                reads.get() - reads_before,
                test_db.label
            );
            // Added by the other instance: seen once the cache is stale.
            let second = provider(&other, &key, "hook-b", "password-b-0123456789").await;
            tokio::time::sleep(TTL).await;
            assert_eq!(
                auth("hook-b", "password-b-0123456789").await.unwrap(),
                Some(second)
            );
            // Changed here: the old password stops working at once.
            db.set_webhook_password(&key, &first, "password-c-0123456789")
                .await
                .unwrap();
            assert_eq!(auth("hook-a", "password-a-0123456789").await.unwrap(), None);
            assert_eq!(
                auth("hook-a", "password-c-0123456789").await.unwrap(),
                Some(first.clone())
            );

            // Unknown, then added elsewhere: found at once (misses are not cached).
            assert_eq!(cache.repository(&first, REPO).await.unwrap(), None);
            repository(&other, &first).await;
            let found = cache.repository(&first, REPO).await.unwrap().unwrap();
            assert!(!found.synced);
            assert_eq!(found.tracked_branch, "refs/heads/main");
            // Another provider's credentials never reach it.
            let not_mine = cache.repository("someone-else", REPO).await.unwrap();
            assert_eq!(not_mine, None);
            // Synced elsewhere: not-yet-synced answers are never cached.
            sqlx::query("UPDATE repositories SET last_synced_commit = 'c0ffee' WHERE id = $1")
                .bind(REPO)
                .execute(other.pool())
                .await
                .unwrap();
            let upper = REPO.to_ascii_uppercase();
            assert!(
                cache
                    .repository(&first, &upper)
                    .await
                    .unwrap()
                    .unwrap()
                    .synced
            );
            // Removed here: gone at once although the synced entry was cached.
            assert!(db.delete_repository(REPO).await.unwrap());
            assert_eq!(cache.repository(&first, REPO).await.unwrap(), None);
            db.close().await;
            other.close().await;
        }
    }
}
