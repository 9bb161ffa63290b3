//! API keys and app passwords of a principal: listed, minted (the id chosen here, the secret
//! returned once), revoked. API keys need `api-key-*`; another principal's app passwords are
//! part of the account, so they need `individual-get` / `individual-update`.

use postern_internal::model::{AccountType, Credential, CredentialScope, CredentialType};
use postern_internal::store::{Expect, Versioned};
use serde::{Deserialize, Serialize};

use super::guard::{confers, named};
use super::{audit, encode_cursor, retry_busy, Actor, Admin, AdminError, Listed, Window};
use crate::authz::Scope;

/// What a client sends to mint a credential; the id and the secret are the server's.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialRequest {
    #[serde(default)]
    pub description: String,
    /// RFC 3339.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// IP addresses or CIDR networks; empty means anywhere.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub permissions: CredentialScope,
}

/// A credential as shown: never its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialView {
    pub id: String,
    pub account: String,
    pub description: String,
    pub expires_at: Option<String>,
    pub allowed_ips: Vec<String>,
    pub permissions: CredentialScope,
    pub version: i64,
}

impl From<&Versioned<Credential>> for CredentialView {
    fn from(v: &Versioned<Credential>) -> Self {
        let c = &v.value;
        CredentialView {
            id: c.id.clone(),
            account: c.account.clone(),
            description: c.description.clone(),
            expires_at: c.expires_at.clone(),
            allowed_ips: c.allowed_ips.clone(),
            permissions: c.permissions.clone(),
            version: v.version,
        }
    }
}

/// The answer to minting: the credential, and its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialCreated {
    #[serde(flatten)]
    pub credential: CredentialView,
    pub secret: String,
}

fn permission(kind: CredentialType, write: bool, list: bool) -> &'static str {
    match (kind, write, list) {
        (CredentialType::ApiKey, false, true) => "api-key-list",
        (CredentialType::ApiKey, false, false) => "api-key-get",
        (CredentialType::ApiKey, true, true) => "api-key-create",
        (CredentialType::ApiKey, true, false) => "api-key-delete",
        (CredentialType::AppPassword, false, _) => "individual-get",
        (CredentialType::AppPassword, true, _) => "individual-update",
    }
}

impl Admin {
    pub async fn list_credentials(
        &self,
        actor: &Actor,
        kind: CredentialType,
        account: &str,
        window: &Window,
    ) -> Result<Listed<CredentialView>, AdminError> {
        actor.require(permission(kind, false, true))?;
        self.owner(actor, account).await?;
        let page = self
            .store
            .credentials(kind, Some(account), &window.query()?)
            .await?;
        Ok(Listed {
            items: page.items.iter().map(CredentialView::from).collect(),
            next: page.next.as_deref().map(encode_cursor),
        })
    }

    /// An individual the actor may see (a group holds no credentials).
    async fn owner(
        &self,
        actor: &Actor,
        account: &str,
    ) -> Result<postern_internal::StoredAccount, AdminError> {
        let absent = || AdminError::NotFound(format!("principal {account:?}"));
        let stored = self.store.account(account).await?.ok_or_else(absent)?;
        if stored.account.name != account || !actor.sees(stored.account.tenant.as_deref()) {
            return Err(absent());
        }
        if stored.account.kind == AccountType::Group {
            return Err(AdminError::Invalid(vec![format!(
                "account: {account:?} is a group; only individuals hold credentials"
            )]));
        }
        Ok(stored)
    }

    /// Mints a credential for `account`. Its reach (the account's permissions under the
    /// scope) must be within what the actor holds.
    pub async fn create_credential(
        &self,
        actor: &Actor,
        kind: CredentialType,
        account: &str,
        request: CredentialRequest,
    ) -> Result<CredentialCreated, AdminError> {
        actor.require(permission(kind, true, true))?;
        let owner = self.owner(actor, account).await?;
        let cred = Credential {
            id: postern_internal::new_id(),
            account: account.to_string(),
            description: request.description,
            expires_at: request.expires_at,
            allowed_ips: request.allowed_ips,
            permissions: request.permissions,
        };
        let policy = self.policy().await?;
        let holds = confers(&policy, &owner.account)?;
        let scope = Scope::compile(&cred.permissions).map_err(|names| {
            AdminError::Invalid(
                names
                    .iter()
                    .map(|n| {
                        format!(
                            "permissions.permissions: unknown permission {n:?}{}",
                            crate::authz::permission_hint(n)
                        )
                    })
                    .collect(),
            )
        })?;
        let what = format!("{} for {account:?}", kind.as_str());
        actor.may_grant(&scope.apply(&holds), &what)?;
        // Naming a permission in a `replace` scope is granting it, even if the account
        // lacks it today.
        if cred.permissions.mode == postern_internal::model::ScopeMode::Replace {
            actor.may_grant(&named(&cred.permissions.permissions), &what)?;
        }
        let secret = retry_busy!(
            async {
                let mut tx = self.store.begin().await?;
                let w = tx
                    .put_credential(kind, &cred, Expect::New)
                    .await
                    .map_err(|e| AdminError::from_write(e, false))?;
                tx.commit()
                    .await
                    .map_err(|e| AdminError::from_write(e, false))?;
                Ok::<_, AdminError>(w.secret)
            }
            .await
        )?
        .ok_or_else(|| AdminError::Internal("a new credential came without a secret".into()))?;
        audit::log(actor, "create", kind.as_str(), &cred.id);
        let stored = self
            .store
            .credential(kind, &cred.id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("{} {:?}", kind.as_str(), cred.id)))?;
        Ok(CredentialCreated {
            credential: CredentialView::from(&stored),
            secret: secret.to_string(),
        })
    }

    pub async fn delete_credential(
        &self,
        actor: &Actor,
        kind: CredentialType,
        account: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), AdminError> {
        actor.require(permission(kind, true, false))?;
        self.owner(actor, account).await?;
        let absent = || AdminError::NotFound(format!("{} {id:?}", kind.as_str()));
        let stored = self.store.credential(kind, id).await?.ok_or_else(absent)?;
        if stored.value.account != account {
            return Err(absent());
        }
        if let Some(v) = if_match {
            if v != stored.version {
                return Err(AdminError::Stale(format!(
                    "{} {id:?} is at version {}, not {v}: read it again",
                    kind.as_str(),
                    stored.version
                )));
            }
        }
        retry_busy!(
            async {
                let mut tx = self.store.begin().await?;
                tx.delete_credential(kind, id, Some(stored.version))
                    .await
                    .map_err(|e| AdminError::from_write(e, true))?;
                tx.commit()
                    .await
                    .map_err(|e| AdminError::from_write(e, true))?;
                Ok::<(), AdminError>(())
            }
            .await
        )?;
        audit::log(actor, "delete", kind.as_str(), id);
        Ok(())
    }
}
