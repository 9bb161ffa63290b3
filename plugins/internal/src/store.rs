//! The store: one SQL database (SQLite by default, PostgreSQL to share it between daemons)
//! holding the internal directory, sessions and credentials.
//!
//! Objects are kept as JSON bodies keyed by id, with the few columns that queries need beside
//! them. This keeps one schema for both engines (sqlx's `Any` driver) and lets the model grow
//! without a migration per field.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

use crate::model::{Account, AccountType, AuthDefaults, Role, Tenant};
use crate::StoreError;

/// Schema migrations, applied in order, each once. Written in the SQL both engines share.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS roles (id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS accounts (
        name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        origin TEXT NOT NULL, secret TEXT, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS account_emails (email TEXT PRIMARY KEY, account TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS credentials (
        id TEXT NOT NULL, kind TEXT NOT NULL, account TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE, body TEXT NOT NULL, PRIMARY KEY (kind, id));
     CREATE INDEX IF NOT EXISTS credentials_account ON credentials (account);
     CREATE TABLE IF NOT EXISTS oauth_clients (client_id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS sessions (
        token_hash TEXT PRIMARY KEY, account TEXT NOT NULL, created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL, revoked_at BIGINT, body TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at)",
    // Failed logins reported by every daemon sharing the store (`failures.rs`).
    "CREATE TABLE IF NOT EXISTS login_failures (
        key TEXT PRIMARY KEY, window_start BIGINT NOT NULL, failures BIGINT NOT NULL)",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One account as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// Stable id, assigned at creation and never changed.
    pub id: String,
    /// `internal`, or the directory that first reported this principal.
    pub origin: String,
    /// Password hash (internal accounts only).
    pub secret: Option<String>,
    pub account: Account,
}

/// What the engine keeps in memory: everything but the individuals. Small (roles, tenants and
/// groups number in the hundreds) and reloaded whenever the generation changes.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub generation: i64,
    pub defaults: AuthDefaults,
    pub roles: Vec<Role>,
    pub tenants: Vec<Tenant>,
    pub groups: Vec<Account>,
}

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects and brings the schema up to date. `sqlite://` files are created when missing.
    pub async fn open(url: &str, pool_size: u32, timeout: Duration) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.trim_start_matches("//");
            let path = rest.split('?').next().unwrap_or(rest);
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
            }
            let sep = if rest.contains('?') { '&' } else { '?' };
            let mode = if rest.contains("mode=") {
                ""
            } else {
                "mode=rwc"
            };
            (Backend::Sqlite, format!("sqlite://{rest}{sep}{mode}"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::Config(
                "store url must start with sqlite:// or postgres://".into(),
            ));
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("invalid store url: {e}")))?;
        // One direct connection first: a store that is down at start is then reported with its
        // cause ("connection refused", "password authentication failed") instead of as a pool
        // timeout. Only the daemon's start waits on this; later outages are the pool's.
        match tokio::time::timeout(
            timeout,
            <sqlx::AnyConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        {
            Ok(Ok(conn)) => {
                let _ = sqlx::Connection::close(conn).await;
            }
            Ok(Err(e)) => return Err(StoreError::from_sqlx(e)),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "no connection within {timeout:?}"
                )))
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Several processes (the daemon, `postern apply`) write one file: wait
                        // for the lock instead of failing, and let readers run beside a writer.
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(StoreError::from_sqlx)?;
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS postern_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT value FROM postern_meta WHERE key = 'schema'")
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        let version = version.unwrap_or(0);
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            for statement in migration.split(';').filter(|s| !s.trim().is_empty()) {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_sqlx)?;
            }
            upsert_meta(&mut tx, "schema", (i + 1) as i64).await?;
        }
        sqlx::query(
            "INSERT INTO postern_meta (key, value) VALUES ('generation', 0) ON CONFLICT (key) DO NOTHING",
        )
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        tx.commit().await.map_err(StoreError::from_sqlx)
    }

    /// Readiness probe.
    /// The store's connection pool now (for `postern_directory_pool_connections`).
    pub fn pool_stats(&self) -> postern_directory::PoolStats {
        let size = self.pool.size() as usize;
        let idle = self.pool.num_idle();
        postern_directory::PoolStats {
            pool: "store",
            in_use: size.saturating_sub(idle),
            idle,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from_sqlx)
    }

    /// Number of accounts (individuals and groups); zero on a fresh store.
    pub async fn count_accounts(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }

    /// Bumped by every change to the directory model; daemons poll it to reload.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT value FROM postern_meta WHERE key = 'generation'")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }

    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let generation: i64 =
            sqlx::query_scalar("SELECT value FROM postern_meta WHERE key = 'generation'")
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        let defaults = match sqlx::query_scalar::<_, String>(
            "SELECT body FROM settings WHERE key = 'authentication'",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?
        {
            Some(body) => parse(&body, "authentication defaults")?,
            None => AuthDefaults::default(),
        };
        let roles = bodies(&mut tx, "SELECT body FROM roles ORDER BY id", "role").await?;
        let tenants = bodies(&mut tx, "SELECT body FROM tenants ORDER BY id", "tenant").await?;
        let groups = bodies(
            &mut tx,
            "SELECT body FROM accounts WHERE kind = 'group' ORDER BY name",
            "group",
        )
        .await?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(Snapshot {
            generation,
            defaults,
            roles,
            tenants,
            groups,
        })
    }

    /// Finds an account by name, or by one of its email addresses.
    pub async fn account(&self, name: &str) -> Result<Option<StoredAccount>, StoreError> {
        let row = sqlx::query("SELECT id, origin, secret, body FROM accounts WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        let row = match row {
            Some(row) => Some(row),
            None => sqlx::query(
                "SELECT a.id, a.origin, a.secret, a.body FROM accounts a
                 JOIN account_emails e ON e.account = a.name WHERE e.email = $1",
            )
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?,
        };
        row.map(|row| -> Result<StoredAccount, StoreError> {
            let body: String = row.try_get("body").map_err(StoreError::from_sqlx)?;
            Ok(StoredAccount {
                id: row.try_get("id").map_err(StoreError::from_sqlx)?,
                origin: row.try_get("origin").map_err(StoreError::from_sqlx)?,
                secret: row.try_get("secret").map_err(StoreError::from_sqlx)?,
                account: parse(&body, "account")?,
            })
        })
        .transpose()
    }

    /// Records (or refreshes) a principal an external directory authenticated, so that it has a
    /// stable id and can be given roles, a tenant and credentials here. Only the directory's own
    /// facts (description, emails, groups) are refreshed; what was assigned here is kept.
    ///
    /// Most logins change nothing and only read. When several first logins of one name race,
    /// one writer wins and the others, refused as busy, read its record on a retry.
    pub async fn record_external(
        &self,
        directory: &str,
        name: &str,
        description: Option<&str>,
        emails: &[String],
        groups: &[String],
    ) -> Result<StoredAccount, StoreError> {
        if let Some(stored) = self.account(name).await? {
            let refreshed = refresh_external(stored.clone(), description, emails, groups);
            if refreshed.account == stored.account {
                return Ok(stored);
            }
        }
        let mut attempt = 0u64;
        loop {
            match self
                .write_external(directory, name, description, emails, groups)
                .await
            {
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
        description: Option<&str>,
        emails: &[String],
        groups: &[String],
    ) -> Result<StoredAccount, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let existing = sqlx::query("SELECT id, origin, body FROM accounts WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let is_new = existing.is_none();
        let (id, origin, account) = match existing {
            Some(row) => {
                let body: String = row.try_get("body").map_err(StoreError::from_sqlx)?;
                (
                    row.try_get::<String, _>("id")
                        .map_err(StoreError::from_sqlx)?,
                    row.try_get::<String, _>("origin")
                        .map_err(StoreError::from_sqlx)?,
                    parse::<Account>(&body, "account")?,
                )
            }
            None => (
                crate::new_id(),
                directory.to_string(),
                Account {
                    name: name.to_string(),
                    kind: AccountType::Individual,
                    description: String::new(),
                    emails: Vec::new(),
                    secret: None,
                    password: None,
                    member_of: Vec::new(),
                    tenant: None,
                    roles: None,
                    permissions: Default::default(),
                    directory_groups: Vec::new(),
                },
            ),
        };
        let stored = refresh_external(
            StoredAccount {
                id,
                origin,
                secret: None,
                account: account.clone(),
            },
            description,
            emails,
            groups,
        );
        if is_new || stored.account != account {
            crate::apply::write_account(&mut tx, &stored.id, &stored.origin, None, &stored.account)
                .await?;
        }
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(stored)
    }
}

/// An external principal's record with the directory's current facts. Only accounts the
/// directory owns take its groups: a provisioned account of the same name keeps its file's.
fn refresh_external(
    mut stored: StoredAccount,
    description: Option<&str>,
    emails: &[String],
    groups: &[String],
) -> StoredAccount {
    if let Some(d) = description {
        stored.account.description = d.to_string();
    }
    stored.account.emails = emails.to_vec();
    if stored.origin != "internal" {
        stored.account.directory_groups = groups.to_vec();
    }
    stored
}

pub(crate) async fn upsert_meta(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &str,
    value: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO postern_meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await
    .map(|_| ())
    .map_err(StoreError::from_sqlx)
}

async fn bodies<T: serde::de::DeserializeOwned>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    sql: &str,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    rows.iter().map(|b| parse(b, what)).collect()
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    body: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("stored {what}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_store(name: &str) -> Store {
        temp_store_sized(name, 1).await
    }

    async fn temp_store_sized(name: &str, pool: u32) -> Store {
        let path = std::env::temp_dir().join(format!(
            "postern-store-test-{}-{name}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        Store::open(
            &format!("sqlite://{}", path.display()),
            pool,
            Duration::from_secs(5),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn external_principal_keeps_a_stable_id_and_fresh_groups() {
        let store = temp_store("external").await;
        let groups = vec!["admins".to_string(), "staff".to_string()];
        let first = store
            .record_external("corp", "ann", Some("Ann"), &["ann@x.org".into()], &groups)
            .await
            .unwrap();
        assert_eq!(first.origin, "corp");
        assert_eq!(first.account.directory_groups, groups);

        // Removed from `admins` in the directory: the next login refreshes the stored groups.
        let second = store
            .record_external("corp", "ann", None, &[], &["staff".to_string()])
            .await
            .unwrap();
        assert_eq!(second.id, first.id);
        assert_eq!(second.account.directory_groups, vec!["staff".to_string()]);
        assert_eq!(second.account.description, "Ann");
        let stored = store.account("ann").await.unwrap().unwrap();
        assert_eq!(stored.account.directory_groups, vec!["staff".to_string()]);
        assert!(stored.account.emails.is_empty());
    }

    #[tokio::test]
    async fn provisioning_cannot_set_directory_groups() {
        let store = temp_store("provision").await;
        let file: crate::model::Provision = serde_json::from_value(serde_json::json!({
            "account": [{"name": "bob", "directoryGroups": ["admins"]}]
        }))
        .unwrap();
        let validator = crate::apply::Validator {
            is_permission: &|_| true,
            check_credential: &|_| Ok(()),
        };
        let hasher = postern_directory::secret::Hasher::new(1);
        let err = crate::apply::apply(&store, &file, &validator, &hasher)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("directoryGroups"), "{err}");
        assert!(store.account("bob").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_first_logins_all_get_the_same_record() {
        let store = temp_store_sized("race", 8).await;
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .record_external("corp", "new", None, &[], &["staff".to_string()])
                    .await
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            ids.insert(t.await.unwrap().expect("no temporary failure").id);
        }
        assert_eq!(ids.len(), 1, "one stable id: {ids:?}");
    }
}
