//! `postern apply`: idempotent, transactional provisioning.
//!
//! The whole file is checked first (every problem collected, each naming its object), then
//! written in one transaction that compares each object with what is stored and writes only
//! differences. Running the same file twice changes nothing, and a refused file writes nothing.

use std::collections::{BTreeSet, HashMap, HashSet};

use postern_directory::secret::{self, Hasher};
use sqlx::Row;
use zeroize::Zeroizing;

use crate::model::{
    Account, AccountType, Credential, CredentialType, OAuthClient, Provision, Role, RoleSet,
    Tenant, BUILTIN_ROLES,
};
use crate::sessions::generate_secret;
use crate::store::{parse, to_json, upsert_meta};
use crate::{Store, StoreError};

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

struct ExistingAccount {
    id: String,
    origin: String,
    kind: String,
    secret: Option<String>,
    body: String,
}

/// What the store holds now, read inside the transaction.
struct Existing {
    settings: HashMap<String, String>,
    roles: HashMap<String, String>,
    tenants: HashMap<String, String>,
    accounts: HashMap<String, ExistingAccount>,
    emails: HashMap<String, String>,
    credentials: HashMap<(String, String), String>,
    oauth_clients: HashMap<String, String>,
}

impl Existing {
    async fn load(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<Existing, StoreError> {
        async fn pairs(
            tx: &mut sqlx::Transaction<'_, sqlx::Any>,
            sql: &str,
        ) -> Result<HashMap<String, String>, StoreError> {
            let rows = sqlx::query(sql)
                .fetch_all(&mut **tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, sqlx::Error>>()
                .map_err(StoreError::from_sqlx)
        }
        let settings = pairs(tx, "SELECT key, body FROM settings").await?;
        let roles = pairs(tx, "SELECT id, body FROM roles").await?;
        let tenants = pairs(tx, "SELECT id, body FROM tenants").await?;
        let emails = pairs(tx, "SELECT email, account FROM account_emails").await?;
        let oauth_clients = pairs(tx, "SELECT client_id, body FROM oauth_clients").await?;
        let mut accounts = HashMap::new();
        for r in sqlx::query("SELECT name, id, origin, kind, secret, body FROM accounts")
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?
        {
            let get = |i: usize| r.try_get::<String, _>(i).map_err(StoreError::from_sqlx);
            accounts.insert(
                get(0)?,
                ExistingAccount {
                    id: get(1)?,
                    origin: get(2)?,
                    kind: get(3)?,
                    secret: r.try_get(4).map_err(StoreError::from_sqlx)?,
                    body: get(5)?,
                },
            );
        }
        let mut credentials = HashMap::new();
        for r in sqlx::query("SELECT kind, id, body FROM credentials")
            .fetch_all(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?
        {
            let get = |i: usize| r.try_get::<String, _>(i).map_err(StoreError::from_sqlx);
            credentials.insert((get(0)?, get(1)?), get(2)?);
        }
        // Validate stored bodies up front so a corrupt row is reported, not overwritten.
        for (id, body) in &roles {
            parse::<Role>(body, &format!("role {id}"))?;
        }
        for (id, body) in &tenants {
            parse::<Tenant>(body, &format!("tenant {id}"))?;
        }
        for (id, body) in &oauth_clients {
            parse::<OAuthClient>(body, &format!("oauth client {id}"))?;
        }
        Ok(Existing {
            settings,
            roles,
            tenants,
            accounts,
            emails,
            credentials,
            oauth_clients,
        })
    }
}

/// Checks that need no store: names, permission names, secrets, duplicates.
fn check_file(file: &Provision, v: &Validator<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut perms = |what: &str, names: &[String]| {
        for name in names {
            if !(v.is_permission)(name) {
                problems.push(format!("{what}: unknown permission {name:?}"));
            }
        }
    };
    for role in &file.role {
        let what = format!("role {:?}", role.id);
        perms(&what, &role.enabled_permissions);
        perms(&what, &role.disabled_permissions);
    }
    for tenant in &file.tenant {
        let what = format!("tenant {:?}", tenant.id);
        perms(&what, &tenant.permissions.enabled);
        perms(&what, &tenant.permissions.disabled);
    }
    for account in &file.account {
        let what = format!("account {:?}", account.name);
        perms(&what, &account.permissions.enabled);
        perms(&what, &account.permissions.disabled);
    }
    for (kind, list) in [
        ("api-key", &file.api_key),
        ("app-password", &file.app_password),
    ] {
        for c in list {
            perms(&format!("{kind} {:?}", c.id), &c.permissions.permissions);
        }
    }
    for c in &file.oauth_client {
        let what = format!("oauth-client {:?}", c.client_id);
        perms(&what, &c.permissions.enabled);
        perms(&what, &c.permissions.disabled);
    }

    let dup = |kind: &str, ids: Vec<&str>, problems: &mut Vec<String>| {
        let mut seen = HashSet::new();
        for id in ids {
            if id.trim().is_empty() || id.chars().any(char::is_control) || id.len() > 256 {
                problems.push(format!("{kind} {id:?}: invalid id"));
            } else if !seen.insert(id) {
                problems.push(format!("{kind} {id:?}: defined twice"));
            }
        }
    };
    dup(
        "role",
        file.role.iter().map(|r| r.id.as_str()).collect(),
        &mut problems,
    );
    dup(
        "tenant",
        file.tenant.iter().map(|r| r.id.as_str()).collect(),
        &mut problems,
    );
    dup(
        "account",
        file.account.iter().map(|r| r.name.as_str()).collect(),
        &mut problems,
    );
    dup(
        "api-key",
        file.api_key.iter().map(|r| r.id.as_str()).collect(),
        &mut problems,
    );
    dup(
        "app-password",
        file.app_password.iter().map(|r| r.id.as_str()).collect(),
        &mut problems,
    );
    dup(
        "oauth-client",
        file.oauth_client
            .iter()
            .map(|r| r.client_id.as_str())
            .collect(),
        &mut problems,
    );

    for role in &file.role {
        if BUILTIN_ROLES.contains(&role.id.as_str()) {
            problems.push(format!(
                "role {:?}: built-in roles cannot be edited",
                role.id
            ));
        }
    }
    for account in &file.account {
        let what = format!("account {:?}", account.name);
        if let Err(e) = postern_directory::validate_username(&account.name) {
            problems.push(format!("{what}: {e}"));
        }
        if account.secret.is_some() && account.password.is_some() {
            problems.push(format!("{what}: give secret or password, not both"));
        }
        if account.kind == AccountType::Group
            && (account.secret.is_some() || account.password.is_some())
        {
            problems.push(format!("{what}: a group has no password"));
        }
        if let Some(hash) = &account.secret {
            if let Err(e) = secret::identify(hash) {
                problems.push(format!("{what}: secret: {e}"));
            }
        }
        if matches!(&account.password, Some(p) if p.is_empty()) {
            problems.push(format!("{what}: empty password"));
        }
        if account.kind == AccountType::Individual && account.roles == Some(RoleSet::Default) {
            problems.push(format!("{what}: roles \"default\" is for groups"));
        }
    }
    for (kind, list) in [
        ("api-key", &file.api_key),
        ("app-password", &file.app_password),
    ] {
        for c in list {
            if let Err(e) = (v.check_credential)(c) {
                problems.push(format!("{kind} {:?}: {e}", c.id));
            }
        }
    }
    for c in &file.oauth_client {
        if let Some(hash) = &c.secret {
            if let Err(e) = secret::identify(hash) {
                problems.push(format!("oauth-client {:?}: secret: {e}", c.client_id));
            }
        }
    }
    problems
}

/// Every reference must name an object that exists after this file is applied.
fn check_references(file: &Provision, existing: &Existing, problems: &mut Vec<String>) {
    let roles: HashSet<&str> = BUILTIN_ROLES
        .iter()
        .copied()
        .chain(existing.roles.keys().map(String::as_str))
        .chain(file.role.iter().map(|r| r.id.as_str()))
        .collect();
    let tenants: HashSet<&str> = existing
        .tenants
        .keys()
        .map(String::as_str)
        .chain(file.tenant.iter().map(|t| t.id.as_str()))
        .collect();
    let mut kinds: HashMap<&str, AccountType> = existing
        .accounts
        .iter()
        .map(|(n, a)| {
            let kind = if a.kind == "group" {
                AccountType::Group
            } else {
                AccountType::Individual
            };
            (n.as_str(), kind)
        })
        .collect();
    for a in &file.account {
        kinds.insert(a.name.as_str(), a.kind);
    }
    let role_refs = |what: String, ids: &[String], problems: &mut Vec<String>| {
        for id in ids {
            if !roles.contains(id.as_str()) {
                problems.push(format!("{what}: role {id:?} does not exist"));
            }
        }
    };
    for r in &file.role {
        role_refs(format!("role {:?}", r.id), &r.role_ids, problems);
    }
    for t in &file.tenant {
        role_refs(format!("tenant {:?}", t.id), t.roles.explicit(), problems);
    }
    if let Some(d) = &file.authentication {
        for ids in [
            &d.default_user_role_ids,
            &d.default_admin_role_ids,
            &d.default_tenant_role_ids,
            &d.default_group_role_ids,
        ] {
            role_refs("authentication defaults".into(), ids, problems);
        }
    }
    for c in &file.oauth_client {
        let what = format!("oauth-client {:?}", c.client_id);
        if let Some(r) = &c.roles {
            role_refs(what.clone(), r.explicit(), problems);
        }
        if let Some(t) = &c.member_tenant_id {
            if !tenants.contains(t.as_str()) {
                problems.push(format!("{what}: tenant {t:?} does not exist"));
            }
        }
    }
    for r in &file.role {
        if let Some(t) = &r.member_tenant_id {
            if !tenants.contains(t.as_str()) {
                problems.push(format!("role {:?}: tenant {t:?} does not exist", r.id));
            }
        }
    }
    let mut claimed: HashMap<String, &str> = HashMap::new();
    for a in &file.account {
        let what = format!("account {:?}", a.name);
        if let Some(r) = &a.roles {
            role_refs(what.clone(), r.explicit(), problems);
        }
        if let Some(t) = &a.tenant {
            if !tenants.contains(t.as_str()) {
                problems.push(format!("{what}: tenant {t:?} does not exist"));
            }
        }
        for g in &a.member_of {
            match kinds.get(g.as_str()) {
                Some(AccountType::Group) => {}
                Some(AccountType::Individual) => {
                    problems.push(format!("{what}: memberOf {g:?} is not a group"))
                }
                None => problems.push(format!("{what}: group {g:?} does not exist")),
            }
        }
        for e in &a.emails {
            let e = e.to_lowercase();
            if let Some(other) = claimed.insert(e.clone(), &a.name) {
                problems.push(format!(
                    "{what}: email {e:?} also given to account {other:?}"
                ));
            }
            match existing.emails.get(&e) {
                Some(owner)
                    if owner != &a.name && !file.account.iter().any(|x| &x.name == owner) =>
                {
                    problems.push(format!("{what}: email {e:?} belongs to account {owner:?}"))
                }
                _ => {}
            }
        }
    }
    for (kind, list) in [
        ("api-key", &file.api_key),
        ("app-password", &file.app_password),
    ] {
        for c in list {
            match kinds.get(c.account.as_str()) {
                Some(AccountType::Individual) => {}
                Some(AccountType::Group) => problems.push(format!(
                    "{kind} {:?}: account {:?} is a group",
                    c.id, c.account
                )),
                None => problems.push(format!(
                    "{kind} {:?}: account {:?} does not exist",
                    c.id, c.account
                )),
            }
            if let Some(owner) = existing
                .credentials
                .get(&(kind.to_string(), c.id.clone()))
                .and_then(|b| serde_json::from_str::<Credential>(b).ok())
                .map(|old| old.account)
            {
                if owner != c.account {
                    problems.push(format!(
                        "{kind} {:?}: belongs to account {owner:?}; credentials cannot change owner",
                        c.id
                    ));
                }
            }
        }
    }
}
