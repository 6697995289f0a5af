//! Webhook deliveries: every authenticated delivery is recorded, with what
//! was done about it. The event id is the dedupe key (per provider), so a
//! redelivery is recognised by the database, even when two instances receive
//! it at once.

use sqlx::{AnyConnection, Row};

use super::{now, Db, DbError};
use crate::db::queue::{enqueue_on, NewJob};

pub struct NewDelivery<'a> {
    pub provider_id: &'a str,
    /// `None` records without deduplication (the Test button's sample, which
    /// always carries the same id).
    pub event_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    /// Only a repository this hub replicates (it is stamped `last_webhook_at`).
    pub repository_id: Option<&'a str>,
    pub ref_name: Option<&'a str>,
    pub new_commit: Option<&'a str>,
    pub body: &'a str,
}

/// What to do with a delivery.
pub enum Decision<'a> {
    Ignore(String),
    Enqueue(NewJob<'a>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    Queued {
        delivery_id: String,
        job_id: String,
    },
    Ignored {
        delivery_id: String,
        reason: String,
    },
    /// This event was recorded before; nothing was done this time.
    Duplicate,
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub provider_id: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub repository_id: Option<String>,
    pub ref_name: Option<String>,
    pub new_commit: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub job_id: Option<String>,
    pub received_at: i64,
}

impl Db {
    /// Stores the delivery and, if it asks for one, enqueues its job, in one
    /// transaction: a delivery is never recorded as queued without its job,
    /// nor a job created for a delivery that was not recorded.
    pub async fn record_delivery(
        &self,
        new: &NewDelivery<'_>,
        decision: Decision<'_>,
        max_attempts: i64,
    ) -> Result<Recorded, DbError> {
        let mut tx = self.pool().begin().await?;
        let recorded = record_on(&mut tx, new, decision, max_attempts).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// The body of the newest recorded push delivery of a repository that
    /// named `commit` as the branch's new head (what the push said about
    /// it: author, message).
    pub async fn delivery_body_for_commit(
        &self,
        repository_id: &str,
        commit: &str,
    ) -> Result<Option<String>, DbError> {
        let row = sqlx::query(
            "SELECT body FROM webhook_deliveries WHERE repository_id = $1 AND new_commit = $2 \
             ORDER BY received_at DESC LIMIT 1",
        )
        .bind(repository_id)
        .bind(commit.to_ascii_lowercase())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| r.try_get("body"))
            .transpose()
            .map_err(Into::into)
    }

    /// Records several deliveries in one transaction (group commit: one
    /// durable write for the lot), each with the guarantees of
    /// [`Db::record_delivery`]. Either all are recorded or none is.
    pub async fn record_deliveries(
        &self,
        batch: Vec<(NewDelivery<'_>, Decision<'_>)>,
        max_attempts: i64,
    ) -> Result<Vec<Recorded>, DbError> {
        let mut tx = self.pool().begin().await?;
        let mut recorded = Vec::with_capacity(batch.len());
        for (new, decision) in batch {
            recorded.push(record_on(&mut tx, &new, decision, max_attempts).await?);
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// The newest deliveries first.
    pub async fn recent_deliveries(&self, limit: i64) -> Result<Vec<Delivery>, DbError> {
        let rows = sqlx::query(
            "SELECT id, provider_id, event_id, event_type, repository_id, ref_name, new_commit, \
             status, reason, job_id, received_at FROM webhook_deliveries \
             ORDER BY received_at DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Delivery {
                    id: row.try_get("id")?,
                    provider_id: row.try_get("provider_id")?,
                    event_id: row.try_get("event_id")?,
                    event_type: row.try_get("event_type")?,
                    repository_id: row.try_get("repository_id")?,
                    ref_name: row.try_get("ref_name")?,
                    new_commit: row.try_get("new_commit")?,
                    status: row.try_get("status")?,
                    reason: row.try_get("reason")?,
                    job_id: row.try_get("job_id")?,
                    received_at: row.try_get("received_at")?,
                })
            })
            .collect()
    }
}

/// One delivery's statements, inside the caller's transaction.
async fn record_on(
    conn: &mut AnyConnection,
    new: &NewDelivery<'_>,
    decision: Decision<'_>,
    max_attempts: i64,
) -> Result<Recorded, DbError> {
    let id = uuid::Uuid::new_v4().to_string();
    let at = now();
    let (status, reason) = match &decision {
        Decision::Ignore(reason) => ("ignored", Some(reason.as_str())),
        Decision::Enqueue(_) => ("queued", None),
    };
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries (id, provider_id, event_id, event_type, repository_id, \
         ref_name, new_commit, status, reason, body, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (provider_id, event_id) DO NOTHING",
    )
    .bind(&id)
    .bind(new.provider_id)
    .bind(new.event_id)
    .bind(new.event_type)
    .bind(new.repository_id)
    .bind(new.ref_name)
    .bind(new.new_commit)
    .bind(status)
    .bind(reason)
    .bind(new.body)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        // Nothing was written for it: the rest of a batch goes on.
        return Ok(Recorded::Duplicate);
    }
    if let Some(repository_id) = new.repository_id {
        sqlx::query("UPDATE repositories SET last_webhook_at = $2 WHERE id = $1")
            .bind(repository_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
    }
    let recorded = match decision {
        Decision::Ignore(reason) => Recorded::Ignored {
            delivery_id: id,
            reason,
        },
        Decision::Enqueue(job) => {
            let job = NewJob {
                delivery_id: Some(&id),
                ..job
            };
            let job_id = enqueue_on(conn, &job, max_attempts).await?;
            sqlx::query("UPDATE webhook_deliveries SET job_id = $2 WHERE id = $1")
                .bind(&id)
                .bind(&job_id)
                .execute(&mut *conn)
                .await?;
            Recorded::Queued {
                delivery_id: id,
                job_id,
            }
        }
    };
    Ok(recorded)
}
