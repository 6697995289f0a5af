//! What the hub has observed of a provider's setup, for the live checklist
//! on its page: each step is ticked from facts the hub already stores, not
//! from what the admin says they did.

use sqlx::Row;

use super::{Db, DbError};

/// The setup facts of one provider, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetupFacts {
    /// When the first of its repositories finished a replication.
    pub first_replication_at: Option<i64>,
    /// When the oldest delivery still kept (pushes or Test) was received.
    pub first_delivery_at: Option<i64>,
    /// Service hooks the hub created for its repositories, and how many of
    /// them Azure DevOps last reported as enabled.
    pub hooks: i64,
    pub hooks_enabled: i64,
    /// Organization and project of its first repository (where the
    /// Service hooks settings page is).
    pub first_project: Option<(String, String)>,
}

impl Db {
    pub async fn setup_facts(&self, provider_id: &str) -> Result<SetupFacts, DbError> {
        let first_replication_at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(r.last_synced_at) FROM repositories r \
             JOIN organizations o ON o.id = r.organization_id \
             WHERE o.provider_id = $1 AND r.last_synced_commit IS NOT NULL",
        )
        .bind(provider_id)
        .fetch_one(self.pool())
        .await?;
        let first_delivery_at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(received_at) FROM webhook_deliveries WHERE provider_id = $1",
        )
        .bind(provider_id)
        .fetch_one(self.pool())
        .await?;
        let hooks_of = |only_enabled: bool| {
            format!(
                "SELECT COUNT(*) FROM hook_subscriptions h \
                 JOIN repositories r ON r.id = h.repository_id \
                 JOIN organizations o ON o.id = r.organization_id \
                 WHERE o.provider_id = $1{}",
                if only_enabled {
                    " AND h.status = 'enabled'"
                } else {
                    ""
                }
            )
        };
        let hooks: i64 = sqlx::query_scalar(&hooks_of(false))
            .bind(provider_id)
            .fetch_one(self.pool())
            .await?;
        let hooks_enabled: i64 = sqlx::query_scalar(&hooks_of(true))
            .bind(provider_id)
            .fetch_one(self.pool())
            .await?;
        let first_project = sqlx::query(
            "SELECT o.name AS organization, r.project_name AS project FROM repositories r \
             JOIN organizations o ON o.id = r.organization_id \
             WHERE o.provider_id = $1 ORDER BY r.created_at, r.id LIMIT 1",
        )
        .bind(provider_id)
        .fetch_optional(self.pool())
        .await?
        .map(|row| Ok::<_, sqlx::Error>((row.try_get("organization")?, row.try_get("project")?)))
        .transpose()?;
        Ok(SetupFacts {
            first_replication_at,
            first_delivery_at,
            hooks,
            hooks_enabled,
            first_project,
        })
    }
}
