//! App passwords a principal makes for itself (`/auth/app-passwords`): what people of an
//! OIDC directory, who have no password a mail client could send, use over SASL PLAIN/LOGIN.
//! The internal directory checks them for any recorded account, internal or external.
//!
//! A new app password never reaches beyond its maker: made from a session of the account's
//! own (password, OIDC), its scope applies to the account as it is at each login; made from a
//! scoped credential (an API key, an app password's session), the scope is pinned to what
//! that credential holds now.

use postern_internal::model::{Credential, CredentialScope, CredentialType, ScopeMode};
use postern_internal::store::{Expect, ListQuery, WriteError};
use zeroize::Zeroizing;

use super::{Engine, SessionView};
use crate::authz::{PermSet, Scope};

/// The most app passwords one account may hold.
pub const MAX_PER_ACCOUNT: usize = 100;

pub struct NewAppPassword {
    pub description: String,
    pub expires_at: Option<String>,
    pub permissions: Option<CredentialScope>,
}

pub struct Created {
    pub credential: Credential,
    /// Shown once, never stored (only its SHA-256).
    pub secret: Zeroizing<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppPasswordError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such app password")]
    NotFound,
    #[error("store: {0}")]
    Store(String),
}

impl From<WriteError> for AppPasswordError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(_) | WriteError::Exists(_) | WriteError::Conflict { .. } => {
                AppPasswordError::Invalid(e.to_string())
            }
            WriteError::NotFound(_) => AppPasswordError::NotFound,
            WriteError::Store(s) => AppPasswordError::Store(s.to_string()),
        }
    }
}

impl From<postern_internal::StoreError> for AppPasswordError {
    fn from(e: postern_internal::StoreError) -> Self {
        AppPasswordError::Store(e.to_string())
    }
}

impl Engine {
    /// Creates an app password for the holder of `session`, within what the holder has.
    pub async fn create_app_password(
        &self,
        holder: &SessionView,
        new: NewAppPassword,
    ) -> Result<Created, AppPasswordError> {
        let account = &holder.principal.name;
        if new.description.chars().count() > 256 {
            return Err(AppPasswordError::Invalid(
                "description: at most 256 characters".into(),
            ));
        }
        if let Some(t) = &new.expires_at {
            let at = super::clock::parse_rfc3339(t)
                .map_err(|e| AppPasswordError::Invalid(format!("expiresAt: {e}")))?;
            if at <= self.clock.unix() {
                return Err(AppPasswordError::Invalid("expiresAt: in the past".into()));
            }
        }
        let requested = new.permissions.unwrap_or_default();
        let scope = Scope::compile(&requested).map_err(|names| {
            AppPasswordError::Invalid(format!("unknown permissions: {}", names.join(", ")))
        })?;
        let held = PermSet::from_names(&holder.permissions).unwrap_or_default();
        let own_session = matches!(holder.mechanism.as_str(), "password" | "oidc");
        let permissions = if own_session {
            requested
        } else {
            CredentialScope {
                mode: ScopeMode::Replace,
                permissions: scope
                    .apply(&held)
                    .sorted_names()
                    .into_iter()
                    .map(String::from)
                    .collect(),
            }
        };
        let existing = self.app_passwords(account).await?;
        if existing.len() >= MAX_PER_ACCOUNT {
            return Err(AppPasswordError::Invalid(format!(
                "at most {MAX_PER_ACCOUNT} app passwords per account; revoke one first"
            )));
        }
        let credential = Credential {
            id: postern_internal::new_id(),
            account: account.clone(),
            description: new.description,
            expires_at: new.expires_at,
            allowed_ips: Vec::new(),
            permissions,
        };
        let mut tx = self.store.begin().await?;
        let written = tx
            .put_credential(CredentialType::AppPassword, &credential, Expect::New)
            .await?;
        tx.commit().await?;
        let secret = written
            .secret
            .ok_or_else(|| AppPasswordError::Store("no secret generated".into()))?;
        Ok(Created { credential, secret })
    }

    /// The account's app passwords (never their secrets).
    pub async fn app_passwords(&self, account: &str) -> Result<Vec<Credential>, AppPasswordError> {
        let page = self
            .store
            .credentials(
                CredentialType::AppPassword,
                Some(account),
                &ListQuery {
                    after: None,
                    limit: MAX_PER_ACCOUNT as u32 + 1,
                    prefix: None,
                },
            )
            .await?;
        Ok(page.items.into_iter().map(|v| v.value).collect())
    }

    /// Revokes one of the account's app passwords; another account's is "not found".
    pub async fn revoke_app_password(
        &self,
        account: &str,
        id: &str,
    ) -> Result<(), AppPasswordError> {
        match self
            .store
            .credential(CredentialType::AppPassword, id)
            .await?
        {
            Some(v) if v.value.account == account => {}
            _ => return Err(AppPasswordError::NotFound),
        }
        let mut tx = self.store.begin().await?;
        tx.delete_credential(CredentialType::AppPassword, id, None)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
