//! Checks of a provisioning file before anything is written: each object on its own
//! ([`check_file`]), then its references against the file and the store ([`check_references`]).

use std::collections::{HashMap, HashSet};

use postern_directory::secret;

use sqlx::Row;

use super::Validator;
use crate::model::{
    AccountType, Credential, OAuthClient, Provision, Role, RoleSet, Tenant, BUILTIN_ROLES,
};
use crate::store::parse;
use crate::StoreError;

pub(super) struct ExistingAccount {
    pub(super) id: String,
    pub(super) origin: String,
    pub(super) kind: String,
    pub(super) secret: Option<String>,
    pub(super) body: String,
}

/// What the store holds now, read inside the transaction.
pub(super) struct Existing {
    pub(super) settings: HashMap<String, String>,
    pub(super) roles: HashMap<String, String>,
    pub(super) tenants: HashMap<String, String>,
    pub(super) accounts: HashMap<String, ExistingAccount>,
    pub(super) emails: HashMap<String, String>,
    pub(super) credentials: HashMap<(String, String), String>,
    pub(super) oauth_clients: HashMap<String, String>,
}

impl Existing {
    pub(super) async fn load(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<Existing, StoreError> {
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
pub(super) fn check_file(file: &Provision, v: &Validator<'_>) -> Vec<String> {
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

    for account in file
        .account
        .iter()
        .filter(|a| !a.directory_groups.is_empty())
    {
        problems.push(format!(
            "account {:?}: directoryGroups is written by Postern at each directory login and cannot be provisioned",
            account.name
        ));
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
pub(super) fn check_references(file: &Provision, existing: &Existing, problems: &mut Vec<String>) {
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
