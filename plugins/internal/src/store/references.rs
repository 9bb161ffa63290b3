//! References between objects, checked when a transaction commits: by then every object the
//! transaction writes is in place, so objects written together may name each other in any
//! order (roles that include each other, an account and the group it joins).

use std::collections::HashSet;

use sqlx::Row;

use super::parse;
use crate::model::{Account, AccountType, AuthDefaults, OAuthClient, Role, Tenant, BUILTIN_ROLES};
use crate::StoreError;

/// An object removed by the transaction: nothing may still name it.
#[derive(Debug, Clone)]
pub(crate) enum Deleted {
    Role(String),
    Tenant(String),
    Group(String),
}

/// `(what, name)`: the object that refers (as problems name it) and what it names.
#[derive(Debug, Default)]
pub(crate) struct References {
    roles: Vec<(String, String)>,
    tenants: Vec<(String, String)>,
    groups: Vec<(String, String)>,
    owners: Vec<(String, String)>,
    /// `(what, email, account it was taken from)`.
    emails: Vec<(String, String, String)>,
    /// `(what, account name, its emails)`: a login name must find one account, so no name
    /// may be another account's email and no email another account's name.
    identities: Vec<(String, String, Vec<String>)>,
    deleted: Vec<Deleted>,
}

impl References {
    pub(crate) fn roles(&mut self, what: &str, ids: &[String]) {
        self.roles
            .extend(ids.iter().map(|id| (what.to_string(), id.clone())));
    }

    pub(crate) fn tenant(&mut self, what: &str, id: &str) {
        self.tenants.push((what.to_string(), id.to_string()));
    }

    pub(crate) fn groups(&mut self, what: &str, names: &[String]) {
        self.groups
            .extend(names.iter().map(|g| (what.to_string(), g.clone())));
    }

    /// A credential's account, which must be an individual.
    pub(crate) fn owner(&mut self, what: &str, account: &str) {
        self.owners.push((what.to_string(), account.to_string()));
    }

    /// An address the object took from another account, which must no longer list it.
    pub(crate) fn email(&mut self, what: &str, email: &str, from: &str) {
        self.emails
            .push((what.to_string(), email.to_string(), from.to_string()));
    }

    pub(crate) fn identity(&mut self, what: &str, name: &str, emails: &[String]) {
        self.identities
            .push((what.to_string(), name.to_string(), emails.to_vec()));
    }

    pub(crate) fn deleted(&mut self, d: Deleted) {
        self.deleted.push(d);
    }

    /// Every dangling reference, one problem each.
    pub(crate) async fn check(
        self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        if !self.roles.is_empty() {
            let known = keys(conn, "SELECT id FROM roles").await?;
            for (what, id) in &self.roles {
                if !BUILTIN_ROLES.contains(&id.as_str()) && !known.contains(id) {
                    problems.push(format!("{what}: role {id:?} does not exist"));
                }
            }
        }
        if !self.tenants.is_empty() {
            let known = keys(conn, "SELECT id FROM tenants").await?;
            for (what, id) in &self.tenants {
                if !known.contains(id) {
                    problems.push(format!("{what}: tenant {id:?} does not exist"));
                }
            }
        }
        // Groups number in the hundreds: one read of their names answers almost every check.
        let groups = if self.groups.is_empty() {
            HashSet::new()
        } else {
            keys(conn, "SELECT name FROM accounts WHERE kind = 'group'").await?
        };
        for (what, group) in &self.groups {
            if groups.contains(group) {
                continue;
            }
            match kind_of(conn, group).await? {
                Some(AccountType::Group) => {}
                Some(AccountType::Individual) => {
                    problems.push(format!("{what}: memberOf {group:?} is not a group"))
                }
                None => problems.push(format!("{what}: group {group:?} does not exist")),
            }
        }
        for (what, account) in &self.owners {
            match kind_of(conn, account).await? {
                Some(AccountType::Individual) => {}
                Some(AccountType::Group) => {
                    problems.push(format!("{what}: account {account:?} is a group"))
                }
                None => problems.push(format!("{what}: account {account:?} does not exist")),
            }
        }
        for (what, email, from) in &self.emails {
            let body: Option<String> =
                sqlx::query_scalar("SELECT body FROM accounts WHERE name = $1")
                    .bind(from)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::from_sqlx)?;
            if let Some(body) = body {
                let other: Account = parse(&body, "account")?;
                if other.emails.iter().any(|e| e.to_lowercase() == *email) {
                    problems.push(format!(
                        "{what}: email {email:?} belongs to account {from:?}"
                    ));
                }
            }
        }
        for (what, name, emails) in &self.identities {
            problems.extend(identity_clashes(conn, what, name, emails).await?);
        }
        for d in &self.deleted {
            problems.extend(referrers(conn, d).await?);
        }
        Ok(problems)
    }
}

/// An account named like another's email, or listing another's name as an email: logging in
/// with that text would find the one by name and never the other by email.
async fn identity_clashes(
    conn: &mut sqlx::AnyConnection,
    what: &str,
    name: &str,
    emails: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let owner: Option<String> =
        sqlx::query_scalar("SELECT account FROM account_emails WHERE email = $1 AND account <> $2")
            .bind(name.to_lowercase())
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?;
    if let Some(owner) = owner {
        problems.push(format!(
            "{what}: name: {name:?} is an email of account {owner:?}"
        ));
    }
    for email in emails {
        let lower = email.to_lowercase();
        if lower == name.to_lowercase() {
            continue;
        }
        let other: Option<String> =
            sqlx::query_scalar("SELECT name FROM accounts WHERE LOWER(name) = $1 AND name <> $2")
                .bind(&lower)
                .bind(name)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::from_sqlx)?;
        if let Some(other) = other {
            problems.push(format!(
                "{what}: emails: {email:?} is the name of account {other:?}"
            ));
        }
    }
    Ok(problems)
}

async fn keys(conn: &mut sqlx::AnyConnection, sql: &str) -> Result<HashSet<String>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(rows.into_iter().collect())
}

async fn kind_of(
    conn: &mut sqlx::AnyConnection,
    name: &str,
) -> Result<Option<AccountType>, StoreError> {
    let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM accounts WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(kind.map(|k| {
        if k == "group" {
            AccountType::Group
        } else {
            AccountType::Individual
        }
    }))
}

/// Who still names a deleted object. Deletions are rare and the model's bodies are JSON, so
/// this reads the tables that can refer to it rather than keeping an index of references.
async fn referrers(conn: &mut sqlx::AnyConnection, d: &Deleted) -> Result<Vec<String>, StoreError> {
    let (what, id) = match d {
        Deleted::Role(id) => ("role", id),
        Deleted::Tenant(id) => ("tenant", id),
        Deleted::Group(id) => ("group", id),
    };
    let mut by = Vec::new();
    let roles: Vec<Role> = bodies(conn, "SELECT body FROM roles").await?;
    let tenants: Vec<Tenant> = bodies(conn, "SELECT body FROM tenants").await?;
    let clients: Vec<OAuthClient> = bodies(conn, "SELECT body FROM oauth_clients").await?;
    let defaults: Vec<AuthDefaults> = bodies(
        conn,
        "SELECT body FROM settings WHERE key = 'authentication'",
    )
    .await?;
    let accounts = sqlx::query("SELECT body FROM accounts")
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    let has = |ids: &[String]| ids.iter().any(|x| x == id);
    for r in &roles {
        match d {
            Deleted::Role(_) if has(&r.role_ids) => by.push(format!("role {:?}", r.id)),
            Deleted::Tenant(_) if r.member_tenant_id.as_ref() == Some(id) => {
                by.push(format!("role {:?}", r.id))
            }
            _ => {}
        }
    }
    for t in &tenants {
        if matches!(d, Deleted::Role(_)) && has(t.roles.explicit()) {
            by.push(format!("tenant {:?}", t.id));
        }
    }
    for c in &clients {
        let named = match d {
            Deleted::Role(_) => c.roles.as_ref().is_some_and(|r| has(r.explicit())),
            Deleted::Tenant(_) => c.member_tenant_id.as_ref() == Some(id),
            Deleted::Group(_) => false,
        };
        if named {
            by.push(format!("oauth-client {:?}", c.client_id));
        }
    }
    for defaults in &defaults {
        if matches!(d, Deleted::Role(_))
            && [
                &defaults.default_user_role_ids,
                &defaults.default_admin_role_ids,
                &defaults.default_tenant_role_ids,
                &defaults.default_group_role_ids,
            ]
            .iter()
            .any(|ids| has(ids))
        {
            by.push("authentication defaults".to_string());
        }
    }
    for row in &accounts {
        let a: Account = parse(
            &row.try_get::<String, _>(0).map_err(StoreError::from_sqlx)?,
            "account",
        )?;
        let named = match d {
            Deleted::Role(_) => a.roles.as_ref().is_some_and(|r| has(r.explicit())),
            Deleted::Tenant(_) => a.tenant.as_ref() == Some(id),
            Deleted::Group(_) => has(&a.member_of),
        };
        if named {
            by.push(format!("account {:?}", a.name));
        }
    }
    Ok(by
        .into_iter()
        .map(|who| format!("{what} {id:?}: still named by {who}"))
        .collect())
}

async fn bodies<T: serde::de::DeserializeOwned>(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
) -> Result<Vec<T>, StoreError> {
    super::all_bodies(conn, sql, "object").await
}
