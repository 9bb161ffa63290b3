//! `postern apply`: idempotent, transactional provisioning.
//!
//! The whole file is checked first (every problem collected, each naming its object), then
//! written in one transaction that compares each object with what is stored and writes only
//! differences. Running the same file twice changes nothing, and a refused file writes nothing.

use std::collections::BTreeSet;

use postern_directory::secret::Hasher;
use zeroize::Zeroizing;

use crate::model::{Account, AccountType, Credential, CredentialType, Provision};
use crate::sessions::generate_secret;
use crate::store::{to_json, upsert_meta};
use crate::{Store, StoreError};

mod checks;

use checks::{check_file, check_references, Existing};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The file is refused; nothing was written. One entry per problem.
    #[error("provisioning refused: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// `kind id` of each object created or changed.
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
    /// Secrets of credentials created by this run: shown once, stored only as hashes.
    pub new_secrets: Vec<(String, String)>,
}

impl ApplyReport {
    pub fn changed(&self) -> bool {
        !self.created.is_empty() || !self.updated.is_empty()
    }
}

/// Checks and validations the engine owns (permission names, dates, networks).
pub struct Validator<'a> {
    pub is_permission: &'a (dyn Fn(&str) -> bool + Sync),
    /// Returns an error text for an invalid credential (expiry, networks).
    pub check_credential: &'a (dyn Fn(&Credential) -> Result<(), String> + Sync),
}

pub async fn apply(
    store: &Store,
    file: &Provision,
    validator: &Validator<'_>,
    hasher: &Hasher,
) -> Result<ApplyReport, ApplyError> {
    let mut problems = check_file(file, validator);
    let mut tx = store.pool.begin().await.map_err(StoreError::from_sqlx)?;
    let existing = Existing::load(&mut tx).await?;
    check_references(file, &existing, &mut problems);
    if !problems.is_empty() {
        return Err(ApplyError::Invalid(problems));
    }

    let mut report = ApplyReport::default();
    if let Some(defaults) = &file.authentication {
        let body = to_json(defaults)?;
        let old = existing.settings.get("authentication");
        track(&mut report, "authentication", "defaults", old, &body);
        if old != Some(&body) {
            sqlx::query(
                "INSERT INTO settings (key, body) VALUES ('authentication', $1)
                 ON CONFLICT (key) DO UPDATE SET body = excluded.body",
            )
            .bind(&body)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        }
    }
    for tenant in &file.tenant {
        let body = to_json(tenant)?;
        let old = existing.tenants.get(&tenant.id);
        track(&mut report, "tenant", &tenant.id, old, &body);
        if old != Some(&body) {
            upsert_body(&mut tx, "tenants", &tenant.id, &body).await?;
        }
    }
    for role in &file.role {
        let body = to_json(role)?;
        let old = existing.roles.get(&role.id);
        track(&mut report, "role", &role.id, old, &body);
        if old != Some(&body) {
            upsert_body(&mut tx, "roles", &role.id, &body).await?;
        }
    }
    for account in &file.account {
        write_provisioned_account(&mut tx, &existing, account, hasher, &mut report).await?;
    }
    for (list, kind) in [
        (&file.api_key, CredentialType::ApiKey),
        (&file.app_password, CredentialType::AppPassword),
    ] {
        for cred in list {
            write_credential(&mut tx, &existing, cred, kind, &mut report).await?;
        }
    }
    for client in &file.oauth_client {
        let body = to_json(client)?;
        let old = existing.oauth_clients.get(&client.client_id);
        track(&mut report, "oauth-client", &client.client_id, old, &body);
        if old != Some(&body) {
            sqlx::query(
                "INSERT INTO oauth_clients (client_id, body) VALUES ($1, $2)
                 ON CONFLICT (client_id) DO UPDATE SET body = excluded.body",
            )
            .bind(&client.client_id)
            .bind(&body)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        }
    }
    if report.changed() {
        let generation: i64 =
            sqlx::query_scalar("SELECT value FROM postern_meta WHERE key = 'generation'")
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        upsert_meta(&mut tx, "generation", generation + 1).await?;
    }
    tx.commit().await.map_err(StoreError::from_sqlx)?;
    Ok(report)
}

fn track(report: &mut ApplyReport, kind: &str, id: &str, old: Option<&String>, new: &str) {
    match old {
        None => report.created.push(format!("{kind} {id}")),
        Some(old) if old != new => report.updated.push(format!("{kind} {id}")),
        Some(_) => report.unchanged += 1,
    }
}

async fn upsert_body(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &'static str,
    id: &str,
    body: &str,
) -> Result<(), StoreError> {
    // `table` is one of our own constants, never input.
    let sql = format!(
        "INSERT INTO {table} (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body"
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(body)
        .execute(&mut **tx)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

async fn write_provisioned_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    existing: &Existing,
    input: &Account,
    hasher: &Hasher,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let mut body = input.clone();
    body.password = None;
    body.secret = None;
    let old = existing.accounts.get(&input.name);
    let old_secret = old.and_then(|o| o.secret.clone());
    // Keep a stored hash that already verifies the given password: re-hashing would change the
    // row (new salt) on every run, and `apply` twice must change nothing.
    let secret = match (&input.secret, &input.password) {
        (Some(hash), _) => Some(hash.clone()),
        (None, Some(password)) => {
            let pw = Zeroizing::new(password.as_bytes().to_vec());
            let keep = match &old_secret {
                Some(stored) => hasher
                    .verify(stored.clone(), pw.clone())
                    .await
                    .unwrap_or(false),
                None => false,
            };
            if keep {
                old_secret.clone()
            } else {
                Some(
                    hasher
                        .hash(pw)
                        .await
                        .map_err(|e| StoreError::Query(format!("hashing password: {e}")))?,
                )
            }
        }
        (None, None) => old_secret.clone(),
    };
    let new_body = to_json(&body)?;
    let (id, origin, changed) = match old {
        None => {
            report.created.push(format!("account {}", input.name));
            (crate::new_id(), "internal".to_string(), true)
        }
        Some(o) => {
            let changed = o.body != new_body || o.secret != secret || o.origin != "internal";
            if changed {
                report.updated.push(format!("account {}", input.name));
            } else {
                report.unchanged += 1;
            }
            // Provisioning an account an external directory recorded keeps its stable id.
            (o.id.clone(), o.origin.clone(), changed)
        }
    };
    if changed {
        write_account(tx, &id, &origin, secret.as_deref(), &body).await?;
    }
    Ok(())
}

/// Writes one account row and its email index.
pub(crate) async fn write_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    origin: &str,
    secret: Option<&str>,
    account: &Account,
) -> Result<(), StoreError> {
    let kind = match account.kind {
        AccountType::Individual => "individual",
        AccountType::Group => "group",
    };
    sqlx::query(
        "INSERT INTO accounts (name, id, kind, origin, secret, body) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, secret = excluded.secret,
         body = excluded.body",
    )
    .bind(&account.name)
    .bind(id)
    .bind(kind)
    .bind(origin)
    .bind(secret.map(str::to_string))
    .bind(to_json(account)?)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    sqlx::query("DELETE FROM account_emails WHERE account = $1")
        .bind(&account.name)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    for email in account.emails.iter().collect::<BTreeSet<_>>() {
        sqlx::query(
            "INSERT INTO account_emails (email, account) VALUES ($1, $2)
             ON CONFLICT (email) DO UPDATE SET account = excluded.account",
        )
        .bind(email.to_lowercase())
        .bind(&account.name)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    }
    Ok(())
}

async fn write_credential(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    existing: &Existing,
    cred: &Credential,
    kind: CredentialType,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let body = to_json(cred)?;
    let key = (kind.as_str().to_string(), cred.id.clone());
    match existing.credentials.get(&key) {
        Some(old) if *old == body => report.unchanged += 1,
        Some(_) => {
            report
                .updated
                .push(format!("{} {}", kind.as_str(), cred.id));
            sqlx::query(
                "UPDATE credentials SET body = $1, account = $2 WHERE kind = $3 AND id = $4",
            )
            .bind(&body)
            .bind(&cred.account)
            .bind(kind.as_str())
            .bind(&cred.id)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        }
        None => {
            report
                .created
                .push(format!("{} {}", kind.as_str(), cred.id));
            let secret = generate_secret(kind);
            sqlx::query(
                "INSERT INTO credentials (id, kind, account, secret_hash, body) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&cred.id)
            .bind(kind.as_str())
            .bind(&cred.account)
            .bind(crate::token_hash(&secret))
            .bind(&body)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
            report
                .new_secrets
                .push((format!("{} {}", kind.as_str(), cred.id), secret.to_string()));
        }
    }
    Ok(())
}
