//! Local user accounts.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{now, Db, DbError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("a user with this e-mail already exists")]
    Exists,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// E-mails are compared case-insensitively, as people type them.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<User, DbError> {
    let role: String = row.try_get("role").map_err(DbError::from)?;
    Ok(User {
        id: row.try_get("id").map_err(DbError::from)?,
        email: row.try_get("email").map_err(DbError::from)?,
        // The CHECK constraint makes any other value impossible.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        password_hash: row.try_get("password_hash").map_err(DbError::from)?,
    })
}

impl Db {
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User, UserError> {
        let id = uuid::Uuid::new_v4().to_string();
        let email = normalize_email(email);
        let result = sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&id)
        .bind(&email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now())
        .execute(self.pool())
        .await
        .map_err(DbError::from)?;
        if result.rows_affected() == 0 {
            return Err(UserError::Exists);
        }
        Ok(User {
            id,
            email,
            role,
            password_hash: password_hash.to_owned(),
        })
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
        let row = sqlx::query("SELECT id, email, password_hash, role FROM users WHERE email = $1")
            .bind(normalize_email(email))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, DbError> {
        let row = sqlx::query("SELECT id, email, password_hash, role FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn count_users(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}
