//! What a person changes about themselves on `/account`: their password, when the internal
//! directory holds it. The current password is checked as a login (throttled and counted like
//! any other); the account is written as it is with only its password new, at the version
//! read, so a concurrent change by an administrator is not overwritten. A new password ends
//! every session of the account.

use std::net::IpAddr;

use postern_directory::Credential;
use postern_internal::input::{AccountInput, Password};
use postern_internal::model::Origin;
use postern_internal::store::{Expect, WriteError};
use postern_internal::StoreError;
use zeroize::Zeroizing;

use super::{Engine, Frontend, LoginError, Mechanism, Method, PasswordAttempt};
use crate::authz::Service;

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("{0}")]
    Rejected(String),
    #[error("this account's password is not kept here")]
    NotInternal,
    #[error("try again later")]
    Unavailable,
}

/// New passwords: at least this long (and at most 1024 bytes).
pub const MIN_PASSWORD: usize = 10;

impl Engine {
    pub async fn change_password(
        &self,
        name: &str,
        current: Zeroizing<String>,
        new: Zeroizing<String>,
        ip: Option<IpAddr>,
    ) -> Result<(), PasswordChangeError> {
        use PasswordChangeError as E;
        if new.chars().count() < MIN_PASSWORD || new.len() > 1024 {
            return Err(E::Rejected(format!(
                "the new password needs at least {MIN_PASSWORD} characters"
            )));
        }
        let stored = match self.store.account(name).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(E::NotInternal),
            Err(e) => {
                tracing::warn!(account = %name, error = %e, "password change: store unavailable");
                return Err(E::Unavailable);
            }
        };
        if stored.origin != Origin::Internal || stored.secret.is_none() {
            return Err(E::NotInternal);
        }
        let attempt = PasswordAttempt {
            frontend: Frontend::Http,
            mechanism: Mechanism::Password,
            username: name,
            password: Credential::Password(current),
            service: Service::HTTP,
            remote_ip: ip,
        };
        match self.login(attempt).await {
            Ok(p) if p.method == Method::Password && p.name == name => {}
            Ok(_) | Err(LoginError::InvalidCredentials) => return Err(E::WrongPassword),
            Err(LoginError::RateLimited(_)) => {
                return Err(E::Rejected(
                    "too many failed attempts; wait and retry".into(),
                ))
            }
            Err(e) => {
                tracing::warn!(account = %name, error = %e, "password change: current password not checked");
                return Err(E::Unavailable);
            }
        }
        let a = &stored.account;
        let input = AccountInput {
            name: a.name.clone(),
            kind: a.kind,
            description: a.description.clone(),
            emails: a.emails.clone(),
            secret: None,
            password: Some(Password::new(new.as_str())),
            member_of: a.member_of.clone(),
            tenant: a.tenant.clone(),
            roles: a.roles.clone(),
            permissions: a.permissions.clone(),
        };
        let mut written = Err(WriteError::Store(StoreError::Busy(String::new())));
        // SQLite refuses a transaction whose snapshot another writer overtook (the throttle's
        // counts every 500 ms): such a write is tried again, a few times.
        for _ in 0..5 {
            written = async {
                let mut tx = self.store.begin().await?;
                tx.put_account(&input, &self.hasher, Expect::Existing(Some(stored.version)))
                    .await?;
                tx.commit().await
            }
            .await;
            if !matches!(&written, Err(WriteError::Store(StoreError::Busy(_)))) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        match written {
            Ok(_) => {
                tracing::info!(account = %name, "password changed on /account");
                Ok(())
            }
            Err(WriteError::Conflict { .. }) => Err(E::Rejected(
                "the account changed meanwhile; try again".into(),
            )),
            Err(e) => {
                tracing::warn!(account = %name, error = %e, "password change failed");
                Err(E::Unavailable)
            }
        }
    }
}
