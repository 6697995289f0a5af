//! The issuer's signing keys (`issuer_keys`), shared by every instance on
//! the database. What the rows mean, and when keys are made and dropped,
//! is `crate::issuer`'s business; this is only their SQL.

use sqlx::Row;

use super::{Db, DbError};

/// One stored key. The private part is sealed (never leaves `crate::issuer`
/// opened); n and e are public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerKeyRow {
    pub kid: String,
    pub generation: i64,
    pub private_key_sealed: String,
    pub public_n: String,
    pub public_e: String,
    pub created_at: i64,
    pub signs_from: i64,
    pub signs_until: i64,
    pub publish_until: i64,
}

impl Db {
    /// Every stored key, oldest generation first.
    pub async fn issuer_keys(&self) -> Result<Vec<IssuerKeyRow>, DbError> {
        let rows = sqlx::query(
            "SELECT kid, generation, private_key_sealed, public_n, public_e, created_at, \
             signs_from, signs_until, publish_until FROM issuer_keys ORDER BY generation",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(IssuerKeyRow {
                    kid: row.try_get("kid")?,
                    generation: row.try_get("generation")?,
                    private_key_sealed: row.try_get("private_key_sealed")?,
                    public_n: row.try_get("public_n")?,
                    public_e: row.try_get("public_e")?,
                    created_at: row.try_get("created_at")?,
                    signs_from: row.try_get("signs_from")?,
                    signs_until: row.try_get("signs_until")?,
                    publish_until: row.try_get("publish_until")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(DbError::from)
    }

    /// Stores a new key unless its generation (or kid) is already taken:
    /// when several instances make the next key at once, one row wins and
    /// the others answer `false` and read the winner back.
    pub async fn insert_issuer_key(&self, key: &IssuerKeyRow) -> Result<bool, DbError> {
        let result = sqlx::query(
            "INSERT INTO issuer_keys (kid, generation, private_key_sealed, public_n, public_e, \
             created_at, signs_from, signs_until, publish_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .bind(key.generation)
        .bind(&key.private_key_sealed)
        .bind(&key.public_n)
        .bind(&key.public_e)
        .bind(key.created_at)
        .bind(key.signs_from)
        .bind(key.signs_until)
        .bind(key.publish_until)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Drops the keys no longer published at `now`.
    pub async fn delete_unpublished_issuer_keys(&self, now: i64) -> Result<u64, DbError> {
        let result = sqlx::query("DELETE FROM issuer_keys WHERE publish_until <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected())
    }
}
