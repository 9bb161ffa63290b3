//! The `internal` directory: accounts provisioned into the store, checked with their stored hash
//! or one of their app passwords.

use async_trait::async_trait;
use postern_directory::secret::{Hasher, Verdict};
use postern_directory::{
    CredentialKind, Directory, DirectoryError, Identity, LoginRequest, Outcome, PoolStats,
    PrincipalType, RejectReason,
};

use crate::model::AccountType;
use crate::{Store, StoreError, StoredAccount};

pub struct InternalDirectory {
    store: Store,
    hasher: Hasher,
}

impl InternalDirectory {
    pub fn new(store: Store, hasher: Hasher) -> Self {
        InternalDirectory { store, hasher }
    }
}

fn unavailable(e: StoreError) -> DirectoryError {
    match e {
        StoreError::Corrupt(m) => DirectoryError::InvalidData(m),
        other => DirectoryError::Unavailable(other.to_string()),
    }
}

pub fn identity(stored: &StoredAccount, credential: CredentialKind) -> Identity {
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
        credential,
    }
}

#[async_trait]
impl Directory for InternalDirectory {
    fn name(&self) -> &str {
        "internal"
    }

    async fn authenticate(&self, request: &LoginRequest<'_>) -> Result<Outcome, DirectoryError> {
        let password = request.secret.expose();
        let Some(stored) = self
            .store
            .account(request.username)
            .await
            .map_err(unavailable)?
        else {
            self.hasher.burn(password).await;
            return Ok(Outcome::UnknownUser);
        };
        if stored.account.kind == AccountType::Group {
            self.hasher.burn(password).await;
            return Ok(Outcome::Rejected(RejectReason::NotLoginable));
        }
        let mut unverifiable = false;
        match &stored.secret {
            Some(hash) => match self.hasher.check(hash.clone(), password).await? {
                Verdict::Match => {
                    return Ok(Outcome::Authenticated(identity(
                        &stored,
                        CredentialKind::Password,
                    )))
                }
                Verdict::Mismatch => {}
                Verdict::Unverifiable(e) => {
                    tracing::error!(account = %stored.account.name, error = %e, "stored secret cannot be verified");
                    unverifiable = true;
                }
            },
            // Accounts recorded from an external directory have no password here; only their
            // app passwords are ours to check.
            None if stored.origin != "internal" => {}
            None => self.hasher.burn(password).await,
        }
        let hash = crate::token_hash(password);
        if let Some(cred) = self
            .store
            .app_password(&stored.account.name, &hash)
            .await
            .map_err(unavailable)?
        {
            return Ok(Outcome::Authenticated(identity(
                &stored,
                CredentialKind::AppPassword(cred.id),
            )));
        }
        if stored.origin != "internal" && stored.secret.is_none() {
            return Ok(Outcome::UnknownUser);
        }
        Ok(Outcome::Rejected(if unverifiable {
            RejectReason::UnverifiableSecret
        } else {
            RejectReason::WrongSecret
        }))
    }

    async fn lookup(&self, name: &str) -> Result<Option<Identity>, DirectoryError> {
        Ok(self
            .store
            .account(name)
            .await
            .map_err(unavailable)?
            .map(|s| identity(&s, CredentialKind::Password)))
    }

    async fn health(&self) -> Result<(), DirectoryError> {
        self.store.ping().await.map_err(unavailable)
    }

    fn pools(&self) -> Vec<PoolStats> {
        vec![self.store.pool_stats()]
    }
}
