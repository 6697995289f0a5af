//! Service hook subscriptions the hub created in Azure DevOps, so reconcile
//! can re-create one that Azure DevOps disabled.

use sqlx::Row;

use super::{now, Db, DbError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSubscription {
    pub id: String,
    pub repository_id: String,
    pub devops_subscription_id: String,
    pub status: Option<String>,
    pub recreated_count: i64,
    pub last_checked_at: Option<i64>,
    pub created_at: i64,
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<HookSubscription, DbError> {
    Ok(HookSubscription {
        id: r.try_get("id")?,
        repository_id: r.try_get("repository_id")?,
        devops_subscription_id: r.try_get("devops_subscription_id")?,
        status: r.try_get("status")?,
        recreated_count: r.try_get("recreated_count")?,
        last_checked_at: r.try_get("last_checked_at")?,
        created_at: r.try_get("created_at")?,
    })
}

const COLUMNS: &str = "id, repository_id, devops_subscription_id, status, recreated_count, \
     last_checked_at, created_at";

impl Db {
    pub async fn record_hook_subscription(
        &self,
        repository_id: &str,
        devops_subscription_id: &str,
        status: Option<&str>,
    ) -> Result<HookSubscription, DbError> {
        let id = uuid::Uuid::new_v4().to_string();
        let at = now();
        sqlx::query(
            "INSERT INTO hook_subscriptions (id, repository_id, devops_subscription_id, status, \
             recreated_count, last_checked_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $5)",
        )
        .bind(&id)
        .bind(repository_id)
        .bind(devops_subscription_id)
        .bind(status)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(HookSubscription {
            id,
            repository_id: repository_id.to_owned(),
            devops_subscription_id: devops_subscription_id.to_owned(),
            status: status.map(str::to_owned),
            recreated_count: 0,
            last_checked_at: Some(at),
            created_at: at,
        })
    }

    pub async fn hook_subscriptions(&self) -> Result<Vec<HookSubscription>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM hook_subscriptions ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn hook_subscriptions_of(
        &self,
        repository_id: &str,
    ) -> Result<Vec<HookSubscription>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM hook_subscriptions WHERE repository_id = $1 ORDER BY created_at"
        ))
        .bind(repository_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Records what reconcile saw; `replaced_by` when it re-created the subscription.
    pub async fn update_hook_subscription(
        &self,
        id: &str,
        status: Option<&str>,
        replaced_by: Option<&str>,
    ) -> Result<(), DbError> {
        match replaced_by {
            Some(new_id) => {
                sqlx::query(
                    "UPDATE hook_subscriptions SET devops_subscription_id = $2, status = $3, \
                     recreated_count = recreated_count + 1, last_checked_at = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(new_id)
                .bind(status)
                .bind(now())
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE hook_subscriptions SET status = $2, last_checked_at = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(now())
                .execute(self.pool())
                .await?;
            }
        }
        Ok(())
    }

    /// Takes the turn of a periodic task shared by every instance: true for
    /// exactly one caller per `interval_secs`. The first turn comes one
    /// interval after the task is first seen (a new hub has nothing to catch up).
    pub async fn take_schedule_turn(
        &self,
        name: &str,
        interval_secs: i64,
    ) -> Result<bool, DbError> {
        let at = now();
        sqlx::query(
            "INSERT INTO schedules (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(at + interval_secs.max(1))
        .execute(self.pool())
        .await?;
        let done = sqlx::query(
            "UPDATE schedules SET next_run_at = $2 WHERE name = $1 AND next_run_at <= $3",
        )
        .bind(name)
        .bind(at + interval_secs.max(1))
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
