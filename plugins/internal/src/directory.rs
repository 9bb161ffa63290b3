//! The `internal` directory: accounts provisioned into the store, checked with their stored hash
//! or one of their app passwords.
//!
//! The engine calls [`InternalDirectory::check`], which hands back the records it read (the
//! account, the app password) so that a login reads the account once. The [`Directory`] impl
//! is the same check seen through the contract every directory shares.

use std::sync::Arc;

use async_trait::async_trait;
use postern_directory::secret::{Hasher, Verdict};
use postern_directory::{
    Directory, DirectoryError, Identity, LoginRequest, Matched, Outcome, PoolStats, PrincipalType,
    RejectReason,
};

use crate::model::{AccountType, Credential, Origin};
use crate::{Store, StoreError, StoredAccount};

pub struct InternalDirectory {
    store: Store,
    hasher: Hasher,
}

/// A successful check, with what was read on the way.
#[derive(Debug, Clone)]
pub enum InternalMatch {
    /// The account as the store's cache holds it (shared, not copied per login).
    Password(Arc<StoredAccount>),
    /// The account and the app password that matched (its scope narrows the session).
    AppPassword(Arc<StoredAccount>, Box<Credential>),
}

impl InternalMatch {
    pub fn account(&self) -> &StoredAccount {
        match self {
            InternalMatch::Password(a) | InternalMatch::AppPassword(a, _) => a,
        }
    }
}

/// [`Outcome`] with the records instead of an [`Identity`].
#[derive(Debug)]
pub enum Checked {
    // The account shared and the app password boxed: small whatever matched.
    Matched(InternalMatch),
    UnknownUser,
    /// With the account's canonical name, which the engine counts the failure against.
    Rejected(RejectReason, String),
}

impl InternalDirectory {
    pub fn new(store: Store, hasher: Hasher) -> Self {
        InternalDirectory { store, hasher }
    }

    /// Checks a password against the account's hash, then its app passwords. An unknown user
    /// costs one verification of the kind this directory last checked (see `Hasher::burn`).
    pub async fn check(&self, request: &LoginRequest<'_>) -> Result<Checked, DirectoryError> {
        let Some(password) = request.credential.as_password() else {
            return Ok(Checked::UnknownUser);
        };
        let client = request.remote_ip;
        let Some(stored) = self
            .store
            .account_shared(request.username)
            .await
            .map_err(unavailable)?
        else {
            self.hasher.burn(client, password).await?;
            return Ok(Checked::UnknownUser);
        };
        if stored.account.kind == AccountType::Group {
            self.hasher.burn(client, password).await?;
            return Ok(Checked::Rejected(
                RejectReason::NotLoginable,
                stored.account.name.clone(),
            ));
        }
        let external = stored.origin != Origin::Internal;
        let mut unverifiable = false;
        match &stored.secret {
            Some(hash) => match self.hasher.check(client, hash.expose(), password).await? {
                Verdict::Match => return Ok(Checked::Matched(InternalMatch::Password(stored))),
                Verdict::Mismatch => {}
                Verdict::Unverifiable(e) => {
                    tracing::error!(account = %stored.account.name, error = %e, "stored secret cannot be verified");
                    unverifiable = true;
                }
            },
            // Accounts recorded from an external directory have no password here; only their
            // app passwords are ours to check.
            None if external => {}
            None => self.hasher.burn(client, password).await?,
        }
        let hash = crate::token_hash(password);
        // Boxed, as the rare paths below a login are (the store read above).
        if let Some(cred) = Box::pin(self.store.app_password(&stored.account.name, &hash))
            .await
            .map_err(unavailable)?
        {
            return Ok(Checked::Matched(InternalMatch::AppPassword(
                stored,
                Box::new(cred),
            )));
        }
        if external && stored.secret.is_none() {
            return Ok(Checked::UnknownUser);
        }
        let reason = if unverifiable {
            RejectReason::UnverifiableSecret
        } else {
            RejectReason::WrongSecret
        };
        Ok(Checked::Rejected(reason, stored.account.name.clone()))
    }
}

fn unavailable(e: StoreError) -> DirectoryError {
    match e {
        StoreError::Corrupt(m) => DirectoryError::InvalidData(m),
        other => DirectoryError::Unavailable(other.to_string()),
    }
}

/// The contract's view of a stored account.
pub fn identity(stored: &StoredAccount, matched: Matched) -> Identity {
    let a = &stored.account;
    Identity {
        name: a.name.clone(),
        kind: match a.kind {
            AccountType::Individual => PrincipalType::Individual,
            AccountType::Group => PrincipalType::Group,
        },
        description: (!a.description.is_empty()).then(|| a.description.clone()),
        emails: a.emails.clone(),
        groups: a.member_of.clone(),
        matched,
        subject: None,
    }
}

#[async_trait]
impl Directory for InternalDirectory {
    fn name(&self) -> &str {
        "internal"
    }

    async fn authenticate(&self, request: &LoginRequest<'_>) -> Result<Outcome, DirectoryError> {
        Ok(match self.check(request).await? {
            Checked::Matched(m) => match m {
                InternalMatch::Password(a) => {
                    Outcome::Authenticated(identity(&a, Matched::Password))
                }
                InternalMatch::AppPassword(a, c) => {
                    Outcome::Authenticated(identity(&a, Matched::AppPassword(c.id)))
                }
            },
            Checked::UnknownUser => Outcome::UnknownUser,
            Checked::Rejected(r, _) => Outcome::Rejected(r),
        })
    }

    async fn lookup(&self, name: &str) -> Result<Option<Identity>, DirectoryError> {
        Ok(self
            .store
            .account(name)
            .await
            .map_err(unavailable)?
            .map(|s| identity(&s, Matched::Password)))
    }

    async fn health(&self) -> Result<(), DirectoryError> {
        self.store.ping().await.map_err(unavailable)
    }

    fn pools(&self) -> Vec<PoolStats> {
        vec![self.store.pool_stats()]
    }
}
