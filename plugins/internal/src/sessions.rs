//! Sessions and credentials in the store. Only SHA-256 hashes of tokens are kept: a copy of the
//! database does not let anyone act as a user. Time is always a parameter (unix seconds), so
//! expiry is testable and every daemon sharing the store agrees on it.

use base64::Engine;
use sqlx::Row;

use crate::model::{Credential, CredentialType};
use crate::store::parse;
use crate::{Store, StoreError};

/// A session as stored. `body` is the engine's serialized session view (without the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub account: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub body: String,
}

/// A random bearer token: 256 bits, URL-safe, with a prefix that secret scanners can match.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "pst_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new credential secret. API keys are long bearer strings; app passwords are typed into mail
/// clients, so they use a lowercase alphabet in dash-separated groups (~124 bits).
pub fn generate_secret(kind: CredentialType) -> String {
    match kind {
        CredentialType::ApiKey => {
            let bytes: [u8; 32] = rand::random();
            format!(
                "pak_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            )
        }
        CredentialType::AppPassword => {
            const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
            let mut out = String::with_capacity(29);
            for i in 0..25 {
                if i > 0 && i % 5 == 0 {
                    out.push('-');
                }
                let idx = rand::random::<u8>() as usize % ALPHABET.len();
                out.push(ALPHABET[idx] as char);
            }
            out
        }
    }
}

impl Store {
    pub async fn insert_session(
        &self,
        token_hash: &str,
        record: &SessionRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, account, created_at, expires_at, revoked_at, body)
             VALUES ($1, $2, $3, $4, NULL, $5)",
        )
        .bind(token_hash)
        .bind(&record.account)
        .bind(record.created_at)
        .bind(record.expires_at)
        .bind(&record.body)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
    }

    /// A live session: not revoked and not expired at `now`.
    pub async fn session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT account, created_at, expires_at, body FROM sessions
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        row.map(|r| {
            Ok(SessionRecord {
                account: r.try_get(0)?,
                created_at: r.try_get(1)?,
                expires_at: r.try_get(2)?,
                body: r.try_get(3)?,
            })
        })
        .transpose()
        .map_err(StoreError::from_sqlx)
    }

    /// Revokes a live session; `false` when there was none to revoke.
    pub async fn revoke_session(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1
             WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes sessions that ended more than `keep` seconds ago.
    pub async fn purge_sessions(&self, now: i64, keep: i64) -> Result<u64, StoreError> {
        sqlx::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
        )
        .bind(now - keep)
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(StoreError::from_sqlx)
    }

    pub async fn count_active_sessions(&self, now: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)
    }

    /// The credential whose secret hashes to `secret_hash`.
    pub async fn credential_by_hash(
        &self,
        kind: CredentialType,
        secret_hash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM credentials WHERE kind = $1 AND secret_hash = $2")
                .bind(kind.as_str())
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from_sqlx)?;
        body.map(|b| parse(&b, "credential")).transpose()
    }

    /// An app password of `account` matching `secret_hash`.
    pub async fn app_password(
        &self,
        account: &str,
        secret_hash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        let body: Option<String> = sqlx::query_scalar(
            "SELECT body FROM credentials WHERE kind = 'app-password' AND account = $1 AND secret_hash = $2",
        )
        .bind(account)
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        body.map(|b| parse(&b, "app password")).transpose()
    }

    pub async fn credential(
        &self,
        kind: CredentialType,
        id: &str,
    ) -> Result<Option<Credential>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM credentials WHERE kind = $1 AND id = $2")
                .bind(kind.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::from_sqlx)?;
        body.map(|b| parse(&b, "credential")).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shapes() {
        let t = generate_token();
        assert!(t.starts_with("pst_") && t.len() == 47);
        let k = generate_secret(CredentialType::ApiKey);
        assert!(k.starts_with("pak_"));
        let a = generate_secret(CredentialType::AppPassword);
        assert_eq!(a.len(), 29);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, generate_secret(CredentialType::AppPassword));
    }
}
