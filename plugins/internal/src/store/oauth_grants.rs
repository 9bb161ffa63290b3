//! What the OAuth server remembers between requests: grants (one per authorization a person
//! gave a client) with their refresh tokens, authorization codes, access tokens revoked before
//! their expiry, and consents. Codes and refresh tokens are kept as SHA-256 hashes only; time
//! is always a parameter (unix seconds), as for sessions. Every daemon sharing the store sees
//! a use or a revocation at once.

use sqlx::Row;

use crate::{Store, StoreError};

/// A grant. `body` is the daemon's own JSON (scope, how the person logged in, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: String,
    pub client_id: String,
    pub account: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub body: String,
}

/// What presenting a refresh token or a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed<T> {
    /// Unused until now (and now marked used).
    Fresh(T),
    /// Already used once: its grant (if any yet) is what a replay must revoke.
    Replayed(Option<String>),
    /// Unknown or expired.
    Unknown,
}

impl Store {
    pub async fn insert_grant(&self, g: &GrantRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_grants (id, client_id, account, created_at, expires_at, revoked_at, body)
             VALUES ($1, $2, $3, $4, $5, NULL, $6)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.account)
        .bind(g.created_at)
        .bind(g.expires_at)
        .bind(&g.body)
        .execute(self.db())
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
    }

    /// A live grant: not revoked, not expired at `now`.
    pub async fn grant(&self, id: &str, now: i64) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, client_id, account, created_at, expires_at, body FROM oauth_grants
             WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        row.map(|r| {
            Ok(GrantRecord {
                id: r.try_get(0)?,
                client_id: r.try_get(1)?,
                account: r.try_get(2)?,
                created_at: r.try_get(3)?,
                expires_at: r.try_get(4)?,
                body: r.try_get(5)?,
            })
        })
        .transpose()
        .map_err(StoreError::from_sqlx)
    }

    /// Revokes a grant: its refresh tokens and the access tokens it produced end with it.
    pub async fn revoke_grant(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_refresh_token(
        &self,
        token_hash: &str,
        grant_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, expires_at, used_at)
             VALUES ($1, $2, $3, NULL)",
        )
        .bind(token_hash)
        .bind(grant_id)
        .bind(expires_at)
        .execute(self.db())
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
    }

    /// Marks a refresh token used, in one statement, so that two daemons racing on the same
    /// token cannot both succeed: the loser sees a replay.
    pub async fn redeem_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Redeemed<String>, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_refresh_tokens SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(token_hash)
        .execute(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        let grant = self.refresh_token(token_hash).await?;
        Ok(match (done.rows_affected() > 0, grant) {
            (true, Some((g, _))) => Redeemed::Fresh(g),
            (false, Some((g, _))) => Redeemed::Replayed(Some(g)),
            _ => Redeemed::Unknown,
        })
    }

    /// The grant of a refresh token, and whether the token is still usable at `now`
    /// (unused and unexpired); `None` when unknown.
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let row =
            sqlx::query("SELECT grant_id, used_at FROM oauth_refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(self.db())
                .await
                .map_err(StoreError::from_sqlx)?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get::<Option<i64>, _>(1)?.is_none())))
            .transpose()
            .map_err(StoreError::from_sqlx)
    }

    /// The expiry of a refresh token still usable at `now`, with its grant.
    pub async fn live_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT grant_id, expires_at FROM oauth_refresh_tokens
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(StoreError::from_sqlx)
    }

    pub async fn insert_code(
        &self,
        code_hash: &str,
        expires_at: i64,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, expires_at, used_at, grant_id, body)
             VALUES ($1, $2, NULL, NULL, $3)",
        )
        .bind(code_hash)
        .bind(expires_at)
        .bind(body)
        .execute(self.db())
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
    }

    /// Takes a code once: the first presentation gets its body, any later one the grant it
    /// produced (to revoke), an expired or unknown one nothing.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
    ) -> Result<Redeemed<String>, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_codes SET used_at = $1
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(code_hash)
        .execute(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        let row = sqlx::query("SELECT body, grant_id FROM oauth_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(self.db())
            .await
            .map_err(StoreError::from_sqlx)?;
        let Some(row) = row else {
            return Ok(Redeemed::Unknown);
        };
        let body: String = row.try_get(0).map_err(StoreError::from_sqlx)?;
        let grant: Option<String> = row.try_get(1).map_err(StoreError::from_sqlx)?;
        Ok(if done.rows_affected() > 0 {
            Redeemed::Fresh(body)
        } else if grant.is_some() {
            Redeemed::Replayed(grant)
        } else {
            Redeemed::Unknown
        })
    }

    /// Records the grant a code produced, so that a replay of the code can revoke it.
    pub async fn set_code_grant(&self, code_hash: &str, grant_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_codes SET grant_id = $1 WHERE code_hash = $2")
            .bind(grant_id)
            .bind(code_hash)
            .execute(self.db())
            .await
            .map(|_| ())
            .map_err(StoreError::from_sqlx)
    }

    /// Puts an access token on the revocation list until it would have expired anyway.
    pub async fn revoke_jti(&self, jti: &str, expires_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_revoked (jti, expires_at) VALUES ($1, $2)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(self.db())
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
    }

    /// Whether an access token was revoked, by its own `jti` or through its grant (one
    /// statement: every bearer use of an access token pays it).
    pub async fn access_token_revoked(
        &self,
        jti: &str,
        grant: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM oauth_revoked WHERE jti = $1)
                  + (SELECT COUNT(*) FROM oauth_grants WHERE id = $2 AND revoked_at IS NOT NULL)",
        )
        .bind(jti)
        .bind(grant.unwrap_or(""))
        .fetch_one(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(n > 0)
    }

    /// The scope a person consented to for a client, if they did.
    pub async fn consent(
        &self,
        account: &str,
        client_id: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT scope FROM oauth_consents WHERE account = $1 AND client_id = $2")
            .bind(account)
            .bind(client_id)
            .fetch_optional(self.db())
            .await
            .map_err(StoreError::from_sqlx)
    }

    pub async fn put_consent(
        &self,
        account: &str,
        client_id: &str,
        scope: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_consents (account, client_id, scope) VALUES ($1, $2, $3)
             ON CONFLICT (account, client_id) DO UPDATE SET scope = excluded.scope",
        )
        .bind(account)
        .bind(client_id)
        .bind(scope)
        .execute(self.db())
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
    }

    /// Removes what can no longer be used: codes, refresh tokens and revocation entries past
    /// their expiry, grants ended more than `grace` seconds ago.
    pub async fn purge_oauth(&self, now: i64, grace: i64) -> Result<(), StoreError> {
        for (sql, t) in [
            ("DELETE FROM oauth_codes WHERE expires_at < $1", now - grace),
            (
                "DELETE FROM oauth_refresh_tokens WHERE expires_at < $1",
                now - grace,
            ),
            (
                "DELETE FROM oauth_revoked WHERE expires_at < $1",
                now - grace,
            ),
            (
                "DELETE FROM oauth_grants WHERE expires_at < $1",
                now - grace,
            ),
        ] {
            sqlx::query(sql)
                .bind(t)
                .execute(self.db())
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        Ok(())
    }
}
