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
    /// facts (description, emails) are refreshed; what was assigned here is kept.
    pub async fn record_external(
        &self,
        directory: &str,
        name: &str,
        description: Option<&str>,
        emails: &[String],
    ) -> Result<StoredAccount, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        let existing = sqlx::query("SELECT id, origin, body FROM accounts WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let is_new = existing.is_none();
        let (id, origin, mut account) = match existing {
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
                },
            ),
        };
        let before = account.clone();
        if let Some(d) = description {
            account.description = d.to_string();
        }
        account.emails = emails.to_vec();
        if is_new || before != account {
            crate::apply::write_account(&mut tx, &id, &origin, None, &account).await?;
        }
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(StoredAccount {
            id,
            origin,
            secret: None,
            account,
        })
    }
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
