//! The OAuth server's signing keys. Kept in the store so that every daemon sharing it signs
//! and verifies with the same keys. A key is published (JWKS) from its creation and signs
//! from `signs_from`, so clients can fetch it before they meet a token it signed.

use sqlx::Row;
use zeroize::Zeroizing;

use crate::{Store, StoreError};

/// A signing key as stored. `private_key` is the PKCS#8 document, base64: never shown.
pub struct OAuthKeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_key: Zeroizing<String>,
    /// The public JWK (JSON), as published.
    pub public_jwk: String,
    pub created_at: i64,
    pub signs_from: i64,
}

impl std::fmt::Debug for OAuthKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("signs_from", &self.signs_from)
            .finish_non_exhaustive()
    }
}

/// At most this many keys are read: rotation removes old ones.
const MAX_KEYS: i64 = 32;

impl Store {
    /// Every key, oldest first.
    pub async fn oauth_keys(&self) -> Result<Vec<OAuthKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_key, public_jwk, created_at, signs_from FROM oauth_keys
             ORDER BY signs_from, kid LIMIT $1",
        )
        .bind(MAX_KEYS)
        .fetch_all(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        rows.iter()
            .map(|r| {
                Ok(OAuthKeyRecord {
                    kid: r.try_get(0)?,
                    alg: r.try_get(1)?,
                    private_key: Zeroizing::new(r.try_get(2)?),
                    public_jwk: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    signs_from: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from_sqlx)
    }

    pub async fn insert_oauth_key(&self, k: &OAuthKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_keys (kid, alg, private_key, public_jwk, created_at, signs_from)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(k.private_key.as_str())
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .bind(k.signs_from)
        .execute(self.db())
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
    }

    /// Removes one key; `false` when there was none. Tokens it signed stop verifying at once.
    pub async fn delete_oauth_key(&self, kid: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM oauth_keys WHERE kid = $1")
            .bind(kid)
            .execute(self.db())
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }
}
