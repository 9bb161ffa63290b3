//! Sessions in the store. Only SHA-256 hashes of tokens are kept: a copy of the
//! database does not let anyone act as a user. Time is always a parameter (unix seconds), so
//! expiry is testable and every daemon sharing the store agrees on it.

use sqlx::Row;

use crate::{Store, StoreError};

/// A session as stored. `body` is the engine's serialized session view (without the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub account: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub body: String,
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
        .execute(self.db())
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
        if let Some(r) = self.cache.get::<super::cache::Sessions>(token_hash) {
            // Expiry is checked here as the statement would; revocation flushed it.
            return Ok((r.expires_at > now).then_some(r));
        }
        let epoch = self.cache.epoch();
        let found = self
            .read_session(token_hash, now)
            .await
            .map_err(|e| self.failed(e))?;
        if let Some(r) = &found {
            self.cache
                .put::<super::cache::Sessions>(epoch, token_hash, r);
        }
        Ok(found)
    }

    async fn read_session(
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
        .fetch_optional(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        row.as_ref().map(record).transpose()
    }

    /// Revokes a live session; `false` when there was none to revoke.
    pub async fn revoke_session(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1
             WHERE token_hash = $2 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        // Gone from memory here before the answer, and from the other daemons' as soon as
        // PostgreSQL delivers the notification.
        self.cache.forget_session(token_hash);
        if done.rows_affected() > 0 && self.backend == super::Backend::Postgres {
            let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
            Store::notify(self.backend, &mut conn, &format!("s:{token_hash}")).await?;
        }
        Ok(done.rows_affected() > 0)
    }

    /// Live sessions of one account, newest first (at most `limit`).
    pub async fn sessions_of(
        &self,
        account: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, created_at, expires_at, body FROM sessions
             WHERE account = $1 AND revoked_at IS NULL AND expires_at > $2
             ORDER BY created_at DESC LIMIT $3",
        )
        .bind(account)
        .bind(now)
        .bind(i64::from(limit.clamp(1, super::MAX_PAGE)))
        .fetch_all(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.iter().map(record).collect()
    }

    /// Deletes sessions that ended more than `keep` seconds ago.
    pub async fn purge_sessions(&self, now: i64, keep: i64) -> Result<u64, StoreError> {
        sqlx::query(
            "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
        )
        .bind(now - keep)
        .execute(self.db())
        .await
        .map(|r| r.rows_affected())
        .map_err(StoreError::from_sqlx)
    }

    pub async fn count_active_sessions(&self, now: i64) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .fetch_one(self.db())
        .await
        .map_err(StoreError::from_sqlx)
    }
}

/// A row of `SELECT account, created_at, expires_at, body FROM sessions`.
fn record(r: &sqlx::any::AnyRow) -> Result<SessionRecord, StoreError> {
    let get = |e: sqlx::Error| StoreError::from_sqlx(e);
    Ok(SessionRecord {
        account: r.try_get(0).map_err(get)?,
        created_at: r.try_get(1).map_err(get)?,
        expires_at: r.try_get(2).map_err(get)?,
        body: r.try_get(3).map_err(get)?,
    })
}
