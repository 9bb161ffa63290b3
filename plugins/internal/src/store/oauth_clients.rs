//! OAuth clients: get, list, write, delete. The secret hash lives in its own column.

use postern_directory::secret;
use sqlx::Row;

use super::bodies::{self, OAUTH_CLIENTS};
use super::WriteError;
use super::{check_id, page, parse, to_json, Change, Expect, ListQuery, Page, Store, Tx};
use crate::input::OAuthClientInput;
use crate::model::{ClientType, OAuthClient, StoredSecret, GRANT_TYPES, OAUTH_SCOPES};
use crate::StoreError;

/// An OAuth client as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOAuthClient {
    pub client: OAuthClient,
    /// Absent for a public client.
    pub secret: Option<StoredSecret>,
    pub version: i64,
}

async fn secret_of(
    conn: &mut sqlx::AnyConnection,
    client_id: &str,
) -> Result<Option<Option<String>>, StoreError> {
    sqlx::query("SELECT secret FROM oauth_clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::from_sqlx)?
        .map(|r| r.try_get::<Option<String>, _>(0))
        .transpose()
        .map_err(StoreError::from_sqlx)
}

impl Store {
    pub async fn oauth_client(&self, id: &str) -> Result<Option<StoredOAuthClient>, StoreError> {
        let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
        let Some(row) = bodies::read(&mut conn, &OAUTH_CLIENTS, id).await? else {
            return Ok(None);
        };
        let secret = secret_of(&mut conn, id).await?.flatten();
        Ok(Some(StoredOAuthClient {
            client: parse(&row.body, "oauth client")?,
            secret: secret.map(StoredSecret::new),
            version: row.version,
        }))
    }

    /// Without their secrets: a list is for showing.
    pub async fn oauth_clients(
        &self,
        q: &ListQuery,
    ) -> Result<Page<(OAuthClient, i64)>, StoreError> {
        let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
        let rows = bodies::list(&mut conn, &OAUTH_CLIENTS, q).await?;
        let items = rows
            .iter()
            .map(|r| Ok((parse::<OAuthClient>(&r.body, "oauth client")?, r.version)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(items, q, |(c, _)| c.client_id.clone()))
    }
}

impl Tx {
    pub async fn put_oauth_client(
        &mut self,
        input: &OAuthClientInput,
        expect: Expect,
    ) -> Result<Change, WriteError> {
        let what = format!("oauth-client {:?}", input.client_id);
        let mut problems = Vec::new();
        check_id(&what, &input.client_id, &mut problems);
        self.unknown_permissions(&what, &input.permissions.enabled, &mut problems);
        self.unknown_permissions(&what, &input.permissions.disabled, &mut problems);
        if let Some(hash) = &input.secret {
            if let Err(e) = secret::identify(hash) {
                problems.push(format!("{what}: secret: {e}"));
            }
        }
        match (input.client_type, &input.secret) {
            (Some(ClientType::Confidential), None) => problems.push(format!(
                "{what}: type: a confidential client needs a secret"
            )),
            (Some(ClientType::Public), Some(_)) => {
                problems.push(format!("{what}: type: a public client has no secret"))
            }
            _ => {}
        }
        for g in &input.grant_types {
            if !GRANT_TYPES.contains(&g.as_str()) {
                problems.push(format!(
                    "{what}: grantTypes: unknown grant type {g:?} (known: {})",
                    GRANT_TYPES.join(", ")
                ));
            } else if g == "client_credentials" && input.secret.is_none() {
                problems.push(format!(
                    "{what}: grantTypes: client_credentials needs a confidential client"
                ));
            }
        }
        for s in &input.scopes {
            if !OAUTH_SCOPES.contains(&s.as_str()) {
                problems.push(format!(
                    "{what}: scopes: unknown scope {s:?} (known: {})",
                    OAUTH_SCOPES.join(", ")
                ));
            }
        }
        self.invalid(problems)?;
        if let Some(r) = &input.roles {
            self.refs.roles(&what, r.explicit());
        }
        if let Some(t) = &input.member_tenant_id {
            self.refs.tenant(&what, t);
        }
        let old_secret = secret_of(self.conn(), &input.client_id).await?;
        let secret_changed = matches!(&old_secret, Some(old) if *old != input.secret);
        bodies::write(
            self,
            &OAUTH_CLIENTS,
            &input.client_id,
            &to_json(&input.body())?,
            &[("secret", input.secret.clone())],
            secret_changed,
            expect,
        )
        .await
    }

    pub async fn delete_oauth_client(
        &mut self,
        client_id: &str,
        version: Option<i64>,
    ) -> Result<(), WriteError> {
        bodies::delete(self, &OAUTH_CLIENTS, client_id, version).await
    }
}
