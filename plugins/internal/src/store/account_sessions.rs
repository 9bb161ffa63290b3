//! Sessions as the `/account` page shows them to their owner: each named by a short prefix of
//! its token hash (never the token), so that one can be ended from the list.

use sqlx::Row;

use crate::{Store, StoreError};

/// Hex characters of the token hash that name a session on the page.
const ID_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    /// Live sessions of `account`, newest first, at most 50.
    pub async fn session_entries(
        &self,
        account: &str,
        now: i64,
    ) -> Result<Vec<SessionEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, created_at, expires_at FROM sessions
             WHERE account = $1 AND revoked_at IS NULL AND expires_at > $2
             ORDER BY created_at DESC LIMIT 50",
        )
        .bind(account)
        .bind(now)
        .fetch_all(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.iter()
            .map(|r| {
                let hash: String = r.try_get(0)?;
                Ok(SessionEntry {
                    id: hash.chars().take(ID_LEN).collect(),
                    created_at: r.try_get(1)?,
                    expires_at: r.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from_sqlx)
    }

    /// Ends the session of `account` named `id`; `false` when it has none such.
    pub async fn end_session_entry(
        &self,
        account: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        if id.len() != ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1
             WHERE account = $2 AND SUBSTR(token_hash, 1, 16) = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(account)
        .bind(id)
        .execute(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }
}
