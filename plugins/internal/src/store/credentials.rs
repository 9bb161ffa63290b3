//! API keys and app passwords: one shape, two kinds. Only the SHA-256 of a generated secret is
//! stored; the secret itself is returned once, by the write that created it.

use sqlx::Row;
use zeroize::Zeroizing;

use super::{check_id, page, parse, to_json, Change, Expect, ListQuery, Page, Store, Tx};
use super::{Versioned, WriteError};
use crate::model::{Credential, CredentialType};
use crate::tokens::generate_secret;
use crate::StoreError;

/// What writing a credential did; `secret` only when it was created.
#[derive(Debug)]
pub struct CredentialWrite {
    pub change: Change,
    pub secret: Option<Zeroizing<String>>,
}

impl Store {
    pub async fn credential(
        &self,
        kind: CredentialType,
        id: &str,
    ) -> Result<Option<Versioned<Credential>>, StoreError> {
        let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
        read(&mut conn, kind, id).await
    }

    /// The credential whose secret hashes to `secret_hash`.
    pub async fn credential_by_hash(
        &self,
        kind: CredentialType,
        secret_hash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        // API keys are asked for on every request that carries one; app passwords only by a
        // login, which is not cached.
        let cached = kind == CredentialType::ApiKey;
        if cached {
            if let Some(c) = self.cache.get::<super::cache::ApiKeys>(secret_hash) {
                return Ok(Some(c));
            }
        }
        let epoch = self.cache.epoch();
        let found = self
            .read_credential_by_hash(kind, secret_hash)
            .await
            .map_err(|e| self.failed(e))?;
        if let (true, Some(c)) = (cached, &found) {
            self.cache
                .put::<super::cache::ApiKeys>(epoch, secret_hash, c);
        }
        Ok(found)
    }

    async fn read_credential_by_hash(
        &self,
        kind: CredentialType,
        secret_hash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM credentials WHERE kind = $1 AND secret_hash = $2")
                .bind(kind.as_str())
                .bind(secret_hash)
                .fetch_optional(self.db())
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
        .fetch_optional(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        body.map(|b| parse(&b, "app password")).transpose()
    }

    /// Credentials of one kind, of one account when `account` is given, by id.
    pub async fn credentials(
        &self,
        kind: CredentialType,
        account: Option<&str>,
        q: &ListQuery,
    ) -> Result<Page<Versioned<Credential>>, StoreError> {
        let prefix = q.prefix.clone().unwrap_or_default();
        let rows = sqlx::query(
            "SELECT body, version FROM credentials
             WHERE kind = $1 AND ($2 = '' OR account = $2) AND id > $3 AND SUBSTR(id, 1, CAST($4 AS INTEGER)) = $5
             ORDER BY id LIMIT $6",
        )
        .bind(kind.as_str())
        .bind(account.unwrap_or_default().to_string())
        .bind(q.after.clone().unwrap_or_default())
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(q.limit() + 1)
        .fetch_all(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(Versioned {
                    value: parse::<Credential>(
                        &r.try_get::<String, _>(0).map_err(StoreError::from_sqlx)?,
                        "credential",
                    )?,
                    version: r.try_get(1).map_err(StoreError::from_sqlx)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(items, q, |c| c.value.id.clone()))
    }
}

async fn read(
    conn: &mut sqlx::AnyConnection,
    kind: CredentialType,
    id: &str,
) -> Result<Option<Versioned<Credential>>, StoreError> {
    let row = sqlx::query("SELECT body, version FROM credentials WHERE kind = $1 AND id = $2")
        .bind(kind.as_str())
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.map(|r| {
        Ok(Versioned {
            value: parse(
                &r.try_get::<String, _>(0).map_err(StoreError::from_sqlx)?,
                "credential",
            )?,
            version: r.try_get(1).map_err(StoreError::from_sqlx)?,
        })
    })
    .transpose()
}

impl Tx {
    /// Creates a credential with a new secret, or updates its description, expiry, networks
    /// and scope. A credential never changes owner.
    pub async fn put_credential(
        &mut self,
        kind: CredentialType,
        cred: &Credential,
        expect: Expect,
    ) -> Result<CredentialWrite, WriteError> {
        let what = format!("{} {:?}", kind.as_str(), cred.id);
        let mut problems = Vec::new();
        check_id(&what, &cred.id, &mut problems);
        self.unknown_permissions(&what, &cred.permissions.permissions, &mut problems);
        if let Err(e) = (self.rules.check_credential)(cred) {
            problems.push(format!("{what}: {e}"));
        }
        let old = read(self.conn(), kind, &cred.id).await?;
        if let Some(old) = &old {
            if old.value.account != cred.account {
                problems.push(format!(
                    "{what}: belongs to account {:?}; credentials cannot change owner",
                    old.value.account
                ));
            }
        }
        self.invalid(problems)?;
        self.refs.owner(&what, &cred.account);
        expect.check(&what, old.as_ref().map(|o| o.version))?;
        let body = to_json(cred)?;
        let change = match &old {
            None => {
                let secret = generate_secret(kind);
                sqlx::query(
                    "INSERT INTO credentials (id, kind, account, secret_hash, body)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&cred.id)
                .bind(kind.as_str())
                .bind(&cred.account)
                .bind(crate::token_hash(&secret))
                .bind(&body)
                .execute(self.conn())
                .await
                .map_err(StoreError::from_sqlx)?;
                return Ok(CredentialWrite {
                    change: self.note(Change::Created),
                    secret: Some(secret),
                });
            }
            Some(o) if to_json(&o.value)? == body => Change::Unchanged,
            Some(_) => {
                sqlx::query(
                    "UPDATE credentials SET body = $1, version = version + 1
                     WHERE kind = $2 AND id = $3",
                )
                .bind(&body)
                .bind(kind.as_str())
                .bind(&cred.id)
                .execute(self.conn())
                .await
                .map_err(StoreError::from_sqlx)?;
                Change::Updated
            }
        };
        Ok(CredentialWrite {
            change: self.note(change),
            secret: None,
        })
    }

    pub async fn delete_credential(
        &mut self,
        kind: CredentialType,
        id: &str,
        version: Option<i64>,
    ) -> Result<(), WriteError> {
        let what = format!("{} {id:?}", kind.as_str());
        let old = read(self.conn(), kind, id).await?;
        Expect::Existing(version).check(&what, old.as_ref().map(|o| o.version))?;
        sqlx::query("DELETE FROM credentials WHERE kind = $1 AND id = $2")
            .bind(kind.as_str())
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(StoreError::from_sqlx)?;
        self.note(Change::Updated);
        Ok(())
    }
}
