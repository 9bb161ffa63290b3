//! Accounts (individuals and groups): the one read a login makes, lists, writes, deletes, and
//! the records of principals that external directories authenticate.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use postern_directory::secret::{self, Hasher};
use sqlx::Row;
use zeroize::Zeroizing;

use super::references::Deleted;
use super::WriteError;
use super::{page, parse, to_json, Change, Expect, ListQuery, Page, Store, StoredAccount, Tx};
use crate::input::AccountInput;
use crate::model::{Account, AccountType, Origin, RoleSet, StoredSecret};
use crate::StoreError;

/// Which accounts a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    pub kind: Option<AccountType>,
    pub tenant: Option<String>,
}

fn kind_column(kind: AccountType) -> &'static str {
    match kind {
        AccountType::Individual => "individual",
        AccountType::Group => "group",
    }
}

const COLUMNS: &str = "a.id, a.origin, a.secret, a.version, a.body";

fn stored(row: &sqlx::any::AnyRow) -> Result<StoredAccount, StoreError> {
    let get = |i: usize| row.try_get::<String, _>(i).map_err(StoreError::from_sqlx);
    Ok(StoredAccount {
        id: get(0)?,
        origin: Origin::from_column(get(1)?),
        secret: row
            .try_get::<Option<String>, _>(2)
            .map_err(StoreError::from_sqlx)?
            .map(StoredSecret::new),
        version: row.try_get(3).map_err(StoreError::from_sqlx)?,
        account: parse(&get(4)?, "account")?,
    })
}

async fn read(
    conn: &mut sqlx::AnyConnection,
    name: &str,
) -> Result<Option<StoredAccount>, StoreError> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM accounts a WHERE a.name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await
    .map_err(StoreError::from_sqlx)?
    .as_ref()
    .map(stored)
    .transpose()
}

impl Store {
    /// Finds an account by name, or by one of its email addresses: one statement, the read a
    /// login makes.
    /// Served from memory when it was read recently and nothing was written since.
    pub async fn account(&self, name: &str) -> Result<Option<StoredAccount>, StoreError> {
        Ok(self.account_shared(name).await?.map(Arc::unwrap_or_clone))
    }

    /// [`Store::account`] as the cache holds it, for the reads of every request (a login, a
    /// session check): no copy of the account.
    pub async fn account_shared(
        &self,
        name: &str,
    ) -> Result<Option<Arc<StoredAccount>>, StoreError> {
        if let Some(found) = self.cache.get::<super::cache::Accounts>(name) {
            return Ok(Some(found));
        }
        let epoch = self.cache.epoch();
        // Boxed: a store read's future inline would make every login's future, read or not,
        // too big for the allocator's per-thread cache (README, "Benchmarks of this work").
        let found = Box::pin(self.read_account(name))
            .await
            .map_err(|e| self.failed(e))?;
        let found = found.map(Arc::new);
        if let Some(a) = &found {
            self.cache.put::<super::cache::Accounts>(epoch, name, a);
        }
        Ok(found)
    }

    async fn read_account(&self, name: &str) -> Result<Option<StoredAccount>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLUMNS}, 0 AS rank FROM accounts a WHERE a.name = $1
             UNION ALL
             SELECT {COLUMNS}, 1 AS rank FROM accounts a
               JOIN account_emails e ON e.account = a.name WHERE e.email = $2
             ORDER BY rank LIMIT 1"
        ))
        .bind(name)
        .bind(name.to_lowercase())
        .fetch_optional(self.db())
        .await
        .map_err(StoreError::from_sqlx)?
        .as_ref()
        .map(stored)
        .transpose()
    }

    /// Accounts by name, in name order.
    pub async fn accounts(
        &self,
        filter: &AccountFilter,
        q: &ListQuery,
    ) -> Result<Page<StoredAccount>, StoreError> {
        let prefix = q.prefix.clone().unwrap_or_default();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts a
             WHERE ($1 = '' OR a.kind = $1) AND ($2 = '' OR a.tenant = $2)
               AND a.name > $3 AND SUBSTR(a.name, 1, CAST($4 AS INTEGER)) = $5
             ORDER BY a.name LIMIT $6"
        ))
        .bind(filter.kind.map(kind_column).unwrap_or_default())
        .bind(filter.tenant.clone().unwrap_or_default())
        .bind(q.after.clone().unwrap_or_default())
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(q.limit() + 1)
        .fetch_all(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        let items = rows
            .iter()
            .map(stored)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(items, q, |a| a.account.name.clone()))
    }

    /// Records (or refreshes) a principal an external directory authenticated, so that it has a
    /// stable id and can be given roles, a tenant and credentials here. Only the directory's own
    /// facts (description, emails, groups) are refreshed; what was assigned here is kept.
    ///
    /// Most logins change nothing and only read. Writers take the write lock before reading
    /// (SQLite: `BEGIN IMMEDIATE`), so racing first logins wait for each other and the later
    /// ones find the record written; one still refused as busy reads it on a retry.
    pub async fn record_external(
        &self,
        directory: &str,
        name: &str,
        description: Option<&str>,
        emails: &[String],
        groups: &[String],
        subject: Option<&str>,
    ) -> Result<StoredAccount, StoreError> {
        let facts = Facts {
            description,
            emails,
            groups,
            subject,
        };
        let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
        if let Some(old) = read(&mut conn, name).await? {
            let refreshed = facts.refresh(old.clone());
            if refreshed.account == old.account {
                return Ok(old);
            }
        }
        drop(conn);
        let mut attempt = 0u64;
        loop {
            match self.write_external(directory, name, &facts).await {
                Err(StoreError::Busy(_)) if attempt < 4 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn write_external(
        &self,
        directory: &str,
        name: &str,
        facts: &Facts<'_>,
    ) -> Result<StoredAccount, StoreError> {
        let mut tx = self.begin_read_write().await?;
        let old = read(&mut tx, name).await?;
        let fresh = old.clone().unwrap_or_else(|| StoredAccount {
            id: crate::new_id(),
            origin: Origin::Directory(directory.to_string()),
            secret: None,
            version: 1,
            account: Account {
                name: name.to_string(),
                kind: AccountType::Individual,
                description: String::new(),
                emails: Vec::new(),
                member_of: Vec::new(),
                tenant: None,
                roles: None,
                permissions: Default::default(),
                directory_groups: Vec::new(),
                subject: None,
            },
        });
        let mut stored = facts.refresh(fresh);
        if old.as_ref().map(|o| &o.account) != Some(&stored.account) {
            write_row(&mut tx, &stored).await?;
            // An external directory's addresses are its own to give: no claim is checked.
            write_emails(&mut tx, &stored.account).await?;
            if old.is_some() {
                stored.version += 1;
            }
            Store::notify(self.backend, &mut tx, "*").await?;
        }
        let committed = tx.commit().await.map_err(StoreError::from_sqlx);
        self.cache.flush();
        committed?;
        Ok(stored)
    }
}

/// What an external directory says about a principal at each login.
struct Facts<'a> {
    description: Option<&'a str>,
    emails: &'a [String],
    groups: &'a [String],
    subject: Option<&'a str>,
}

impl Facts<'_> {
    /// Only accounts the directory owns take its groups: a provisioned account of the same
    /// name keeps its file's.
    fn refresh(&self, mut stored: StoredAccount) -> StoredAccount {
        if let Some(d) = self.description {
            stored.account.description = d.to_string();
        }
        stored.account.emails = self.emails.to_vec();
        if stored.origin != Origin::Internal {
            stored.account.directory_groups = self.groups.to_vec();
            // Bound once, never moved: the caller compares it with the login's.
            if stored.account.subject.is_none() {
                stored.account.subject = self.subject.map(String::from);
            }
        }
        stored
    }
}

/// Inserts or replaces one account row (not its emails); an update bumps the version.
async fn write_row(conn: &mut sqlx::AnyConnection, s: &StoredAccount) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO accounts (name, id, kind, origin, secret, body, tenant)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, secret = excluded.secret,
           body = excluded.body, tenant = excluded.tenant, version = accounts.version + 1",
    )
    .bind(&s.account.name)
    .bind(&s.id)
    .bind(kind_column(s.account.kind))
    .bind(s.origin.as_str().to_string())
    .bind(s.secret.as_ref().map(|h| h.expose().to_string()))
    .bind(to_json(&s.account)?)
    .bind(s.account.tenant.clone())
    .execute(conn)
    .await
    .map(|_| ())
    .map_err(StoreError::from_sqlx)
}

/// Replaces the account's email index; returns each address taken from another account, with
/// that account's name.
async fn write_emails(
    conn: &mut sqlx::AnyConnection,
    account: &Account,
) -> Result<Vec<(String, String)>, StoreError> {
    sqlx::query("DELETE FROM account_emails WHERE account = $1")
        .bind(&account.name)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    let mut taken = Vec::new();
    let emails: BTreeSet<String> = account.emails.iter().map(|e| e.to_lowercase()).collect();
    for email in emails {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT account FROM account_emails WHERE email = $1")
                .bind(&email)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::from_sqlx)?;
        sqlx::query(
            "INSERT INTO account_emails (email, account) VALUES ($1, $2)
             ON CONFLICT (email) DO UPDATE SET account = excluded.account",
        )
        .bind(&email)
        .bind(&account.name)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?;
        if let Some(owner) = owner {
            taken.push((email, owner));
        }
    }
    Ok(taken)
}

/// An account's own problems, before the store is asked anything.
fn check_input(tx: &Tx, input: &AccountInput, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = postern_directory::validate_username(&input.name) {
        problems.push(format!("{what}: {e}"));
    }
    tx.unknown_permissions(what, &input.permissions.enabled, &mut problems);
    tx.unknown_permissions(what, &input.permissions.disabled, &mut problems);
    if input.secret.is_some() && input.password.is_some() {
        problems.push(format!("{what}: give secret or password, not both"));
    }
    if input.kind == AccountType::Group && (input.secret.is_some() || input.password.is_some()) {
        problems.push(format!("{what}: a group has no password"));
    }
    if let Some(hash) = &input.secret {
        if let Err(e) = secret::identify(hash) {
            problems.push(format!("{what}: secret: {e}"));
        }
    }
    if matches!(&input.password, Some(p) if p.expose().is_empty()) {
        problems.push(format!("{what}: empty password"));
    }
    if input.kind == AccountType::Individual && input.roles == Some(RoleSet::Default) {
        problems.push(format!("{what}: roles \"default\" is for groups"));
    }
    problems
}

/// The hash to store: the given one, a new argon2id of the given password, or the old one.
/// A stored hash that already verifies the given password is kept: re-hashing would change the
/// row (new salt) on every run, and `apply` twice must change nothing.
async fn new_secret(
    input: &AccountInput,
    old: Option<&StoredSecret>,
    hasher: &Hasher,
) -> Result<Option<StoredSecret>, StoreError> {
    match (&input.secret, &input.password) {
        (Some(hash), _) => Ok(Some(StoredSecret::new(hash.clone()))),
        (None, Some(password)) => {
            let pw = Zeroizing::new(password.expose().as_bytes().to_vec());
            if let Some(stored) = old {
                if hasher.verify(stored.expose(), &pw).await.unwrap_or(false) {
                    return Ok(old.cloned());
                }
            }
            let hash = hasher
                .hash(pw)
                .await
                .map_err(|e| StoreError::Query(format!("hashing password: {e}")))?;
            Ok(Some(StoredSecret::new(hash)))
        }
        (None, None) => Ok(old.cloned()),
    }
}

impl Tx {
    /// Creates or updates an individual or a group. An account an external directory recorded
    /// keeps its stable id, origin and directory groups.
    pub async fn put_account(
        &mut self,
        input: &AccountInput,
        hasher: &Hasher,
        expect: Expect,
    ) -> Result<Change, WriteError> {
        let what = format!("account {:?}", input.name);
        let problems = check_input(self, input, &what);
        self.invalid(problems)?;
        let old = read(self.conn(), &input.name).await?;
        expect.check(&what, old.as_ref().map(|o| o.version))?;
        let secret =
            new_secret(input, old.as_ref().and_then(|o| o.secret.as_ref()), hasher).await?;
        let account = Account {
            name: input.name.clone(),
            kind: input.kind,
            description: input.description.clone(),
            emails: input.emails.clone(),
            member_of: input.member_of.clone(),
            tenant: input.tenant.clone(),
            roles: input.roles.clone(),
            permissions: input.permissions.clone(),
            directory_groups: old
                .as_ref()
                .map(|o| o.account.directory_groups.clone())
                .unwrap_or_default(),
            subject: old.as_ref().and_then(|o| o.account.subject.clone()),
        };
        if let Some(r) = &input.roles {
            self.refs.roles(&what, r.explicit());
        }
        if let Some(t) = &input.tenant {
            self.refs.tenant(&what, t);
        }
        self.refs.groups(&what, &input.member_of);
        self.refs.identity(&what, &input.name, &input.emails);
        if old
            .as_ref()
            .is_some_and(|o| o.account.kind == AccountType::Group)
            && input.kind == AccountType::Individual
        {
            // A group turned individual must have no members left.
            self.refs.deleted(Deleted::Group(input.name.clone()));
        }
        let change = match &old {
            None => Change::Created,
            Some(o) if o.account != account || o.secret != secret => Change::Updated,
            Some(_) => Change::Unchanged,
        };
        if change == Change::Unchanged {
            return Ok(change);
        }
        let row = StoredAccount {
            id: old.as_ref().map_or_else(crate::new_id, |o| o.id.clone()),
            origin: old.as_ref().map_or(Origin::Internal, |o| o.origin.clone()),
            secret,
            version: 0,
            account,
        };
        let password_changed = old
            .as_ref()
            .is_some_and(|o| o.secret.is_some() && o.secret != row.secret);
        write_row(self.conn(), &row).await?;
        if password_changed && self.revoke_on_password_change {
            // Deleted, not marked revoked: this needs no clock, and a revoked session is
            // refused no differently from one that never existed.
            sqlx::query("DELETE FROM sessions WHERE account = $1")
                .bind(&row.account.name)
                .execute(self.conn())
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        for (email, owner) in write_emails(self.conn(), &row.account).await? {
            if owner != row.account.name {
                self.refs.email(&what, &email, &owner);
            }
        }
        Ok(self.note(change))
    }

    /// Deletes an account with its credentials and sessions. A group is refused at commit
    /// while an account is still a member.
    pub async fn delete_account(
        &mut self,
        name: &str,
        version: Option<i64>,
    ) -> Result<(), WriteError> {
        let what = format!("account {name:?}");
        let old = read(self.conn(), name).await?;
        Expect::Existing(version).check(&what, old.as_ref().map(|o| o.version))?;
        for sql in [
            "DELETE FROM accounts WHERE name = $1",
            "DELETE FROM account_emails WHERE account = $1",
            "DELETE FROM credentials WHERE account = $1",
            "DELETE FROM sessions WHERE account = $1",
        ] {
            sqlx::query(sql)
                .bind(name)
                .execute(self.conn())
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        if old.is_some_and(|o| o.account.kind == AccountType::Group) {
            self.refs.deleted(Deleted::Group(name.to_string()));
        }
        self.note(Change::Updated);
        Ok(())
    }
}
