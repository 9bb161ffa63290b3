//! `postern apply`: idempotent, transactional provisioning.
//!
//! A client of the store's per-object API: every object of the file is written through the
//! same calls the management API makes, in one transaction. Each call checks its object at
//! once and its references at commit, so every problem of the file is reported together and a
//! refused file writes nothing. Writes change only what differs, so running a file twice
//! changes nothing.

use std::collections::HashSet;

use postern_directory::secret::Hasher;
use zeroize::Zeroizing;

use crate::input::Provision;
use crate::model::CredentialType;
use crate::store::{Change, Expect, WriteError};
use crate::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The file is refused; nothing was written. One entry per problem.
    #[error("provisioning refused: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WriteError> for ApplyError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(p) => ApplyError::Invalid(p),
            WriteError::Store(e) => ApplyError::Store(e),
            // Provisioning creates or updates whatever it finds.
            other => ApplyError::Invalid(vec![other.to_string()]),
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// `kind id` of each object created or changed.
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    /// Secrets of credentials created by this run: shown once, stored only as hashes.
    pub new_secrets: Vec<(String, Zeroizing<String>)>,
}

impl ApplyReport {
    pub fn changed(&self) -> bool {
        !self.created.is_empty() || !self.updated.is_empty()
    }

    fn track(&mut self, what: String, change: Change) {
        match change {
            Change::Created => self.created.push(what),
            Change::Updated => self.updated.push(what),
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

/// Collects a call's answer: its own problems are kept by the transaction for the commit,
/// so the file goes on to show every problem; anything else ends the run.
fn noted<T>(r: Result<T, WriteError>) -> Result<Option<T>, ApplyError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(WriteError::Invalid(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub async fn apply(
    store: &Store,
    file: &Provision,
    hasher: &Hasher,
) -> Result<ApplyReport, ApplyError> {
    let mut tx = store.begin().await?;
    tx.refuse(duplicates(file));
    let mut report = ApplyReport::default();
    if let Some(d) = &file.authentication {
        if let Some(c) = noted(tx.put_defaults(d, Expect::Either).await)? {
            report.track("authentication defaults".into(), c);
        }
    }
    for t in &file.tenant {
        if let Some(c) = noted(tx.put_tenant(t, Expect::Either).await)? {
            report.track(format!("tenant {}", t.id), c);
        }
    }
    for r in &file.role {
        if let Some(c) = noted(tx.put_role(r, Expect::Either).await)? {
            report.track(format!("role {}", r.id), c);
        }
    }
    for a in &file.account {
        if let Some(c) = noted(tx.put_account(a, hasher, Expect::Either).await)? {
            report.track(format!("account {}", a.name), c);
        }
    }
    for (list, kind) in [
        (&file.api_key, CredentialType::ApiKey),
        (&file.app_password, CredentialType::AppPassword),
    ] {
        for cred in list {
            let what = format!("{} {}", kind.as_str(), cred.id);
            if let Some(w) = noted(tx.put_credential(kind, cred, Expect::Either).await)? {
                report.track(what.clone(), w.change);
                if let Some(secret) = w.secret {
                    report.new_secrets.push((what, secret));
                }
            }
        }
    }
    for c in &file.oauth_client {
        if let Some(change) = noted(tx.put_oauth_client(c, Expect::Either).await)? {
            report.track(format!("oauth-client {}", c.client_id), change);
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// An object defined twice in one file: the second would silently win.
fn duplicates(file: &Provision) -> Vec<String> {
    let mut problems = Vec::new();
    let mut dup = |kind: &str, ids: Vec<&str>| {
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                problems.push(format!("{kind} {id:?}: defined twice"));
            }
        }
    };
    dup("role", file.role.iter().map(|r| r.id.as_str()).collect());
    dup(
        "tenant",
        file.tenant.iter().map(|r| r.id.as_str()).collect(),
    );
    dup(
        "account",
        file.account.iter().map(|r| r.name.as_str()).collect(),
    );
    dup(
        "api-key",
        file.api_key.iter().map(|r| r.id.as_str()).collect(),
    );
    dup(
        "app-password",
        file.app_password.iter().map(|r| r.id.as_str()).collect(),
    );
    dup(
        "oauth-client",
        file.oauth_client
            .iter()
            .map(|r| r.client_id.as_str())
            .collect(),
    );
    problems
}

#[cfg(test)]
mod tests;
