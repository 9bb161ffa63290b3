//! `postern apply --prune`: provisioning declarative both ways. Within each kind the file
//! covers (has at least one entry of), what the store holds and the file no longer names is
//! deleted, in one transaction after the file is applied; accounts an external directory
//! recorded are never pruned (the directory, not the file, owns them).

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, IsTerminal};

use postern_internal::input::Provision;
use postern_internal::model::{CredentialType, Origin};
use postern_internal::store::{AccountFilter, ListQuery, MAX_PAGE};
use postern_internal::{Store, StoreError};

use super::output::out;
use super::Failure;

/// One object to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    Tenant(String),
    Role(String),
    Account(String),
    Credential(CredentialType, String, String),
    OAuthClient(String),
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stale::Tenant(id) => write!(f, "tenant {id}"),
            Stale::Role(id) => write!(f, "role {id}"),
            Stale::Account(name) => write!(f, "account {name}"),
            Stale::Credential(kind, _, id) => write!(f, "{} {id}", kind.as_str()),
            Stale::OAuthClient(id) => write!(f, "oauth-client {id}"),
        }
    }
}

fn all() -> ListQuery {
    ListQuery {
        limit: MAX_PAGE,
        ..ListQuery::default()
    }
}

/// Every key of a paged list.
macro_rules! keys {
    ($fetch:expr, $key:expr) => {{
        let mut q = all();
        let mut out = Vec::new();
        loop {
            let page = $fetch(&q).await?;
            out.extend(page.items.iter().map($key));
            match page.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
        }
        out
    }};
}

/// What the store holds beyond the file, within the kinds the file covers.
pub async fn stale(store: &Store, file: &Provision) -> Result<Vec<Stale>, StoreError> {
    let mut out = Vec::new();
    if !file.tenant.is_empty() {
        let named: HashSet<&str> = file.tenant.iter().map(|t| t.id.as_str()).collect();
        let ids: Vec<String> = keys!(
            |q| store.tenants(q),
            |t: &postern_internal::store::Versioned<_>| {
                let t: &postern_internal::model::Tenant = &t.value;
                t.id.clone()
            }
        );
        out.extend(
            ids.into_iter()
                .filter(|id| !named.contains(id.as_str()))
                .map(Stale::Tenant),
        );
    }
    if !file.role.is_empty() {
        let named: HashSet<&str> = file.role.iter().map(|r| r.id.as_str()).collect();
        let ids: Vec<String> = keys!(
            |q| store.roles(q),
            |r: &postern_internal::store::Versioned<_>| {
                let r: &postern_internal::model::Role = &r.value;
                r.id.clone()
            }
        );
        out.extend(
            ids.into_iter()
                .filter(|id| !named.contains(id.as_str()))
                .map(Stale::Role),
        );
    }
    let mut gone_accounts = HashSet::new();
    if !file.account.is_empty() {
        let named: HashSet<&str> = file.account.iter().map(|a| a.name.as_str()).collect();
        let filter = AccountFilter::default();
        let accounts: Vec<(String, bool)> = keys!(
            |q| store.accounts(&filter, q),
            |a: &postern_internal::StoredAccount| {
                (a.account.name.clone(), a.origin == Origin::Internal)
            }
        );
        for (name, internal) in accounts {
            if internal && !named.contains(name.as_str()) {
                gone_accounts.insert(name.clone());
                out.push(Stale::Account(name));
            }
        }
    }
    for (list, kind) in [
        (&file.api_key, CredentialType::ApiKey),
        (&file.app_password, CredentialType::AppPassword),
    ] {
        if list.is_empty() {
            continue;
        }
        let named: HashSet<&str> = list.iter().map(|c| c.id.as_str()).collect();
        let creds: Vec<(String, String)> = keys!(
            |q| store.credentials(kind, None, q),
            |c: &postern_internal::store::Versioned<postern_internal::model::Credential>| {
                (c.value.account.clone(), c.value.id.clone())
            }
        );
        for (account, id) in creds {
            // Deleting an account takes its credentials with it.
            if !named.contains(id.as_str()) && !gone_accounts.contains(&account) {
                out.push(Stale::Credential(kind, account, id));
            }
        }
    }
    if !file.oauth_client.is_empty() {
        let named: HashSet<&str> = file
            .oauth_client
            .iter()
            .map(|c| c.client_id.as_str())
            .collect();
        let ids: Vec<String> = keys!(|q| store.oauth_clients(q), |c: &(
            postern_internal::model::OAuthClient,
            i64
        )| c.0.client_id.clone());
        out.extend(
            ids.into_iter()
                .filter(|id| !named.contains(id.as_str()))
                .map(Stale::OAuthClient),
        );
    }
    Ok(out)
}

/// Lists what will be deleted and asks, unless `--yes`. Without a terminal to ask on (or with
/// the file on stdin) nothing is deleted without `--yes`.
pub fn confirm(stale: &[Stale], yes: bool, file_on_stdin: bool) -> Result<(), Failure> {
    if stale.is_empty() {
        return Ok(());
    }
    for s in stale {
        out!("will delete {s}")?;
    }
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if file_on_stdin || !stdin.is_terminal() {
        return Err(Failure::user(vec![format!(
            "--prune would delete {} objects: run again with --yes; nothing changed",
            stale.len()
        )]));
    }
    eprintln_prompt(&format!("Delete these {} objects? [y/N] ", stale.len()));
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Failure::user(vec!["not confirmed; nothing changed".into()]))
    }
}

fn eprintln_prompt(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Deletes them all in one transaction: refused whole if anything left still names one.
pub async fn delete(store: &Store, stale: &[Stale]) -> Result<(), Vec<String>> {
    let fail = |e: &dyn std::fmt::Display| vec![e.to_string()];
    let mut tx = store.begin().await.map_err(|e| fail(&e))?;
    for s in stale {
        let r = match s {
            Stale::Tenant(id) => tx.delete_tenant(id, None).await,
            Stale::Role(id) => tx.delete_role(id, None).await,
            Stale::Account(name) => tx.delete_account(name, None).await,
            Stale::Credential(kind, _, id) => tx.delete_credential(*kind, id, None).await,
            Stale::OAuthClient(id) => tx.delete_oauth_client(id, None).await,
        };
        match r {
            Ok(()) | Err(postern_internal::store::WriteError::Invalid(_)) => {}
            Err(e) => return Err(fail(&e)),
        }
    }
    match tx.commit().await {
        Ok(_) => Ok(()),
        Err(postern_internal::store::WriteError::Invalid(p)) => Err(p),
        Err(e) => Err(fail(&e)),
    }
}
