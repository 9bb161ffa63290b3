//! The store: one SQL database (SQLite by default, PostgreSQL to share it between daemons)
//! holding the internal directory, sessions and credentials.
//!
//! Objects are kept as JSON bodies keyed by id, with the few columns that queries need beside
//! them. This keeps one schema for both engines (sqlx's `Any` driver) and lets the model grow
//! without a migration per field.
//!
//! Reads that a login needs are methods of [`Store`]. Every write goes through a [`Tx`]: one
//! module per object kind adds its get, list, create, update and delete there, each running the
//! object's own checks at once and its references (roles, tenants, groups, owners, emails) when
//! the transaction commits, so objects written together may name each other in any order.
//! `apply` and the management API are both clients of this one path.

mod accounts;
pub use accounts::AccountFilter;
pub mod account_sessions;
mod bodies;
pub mod cache;
mod credentials;
mod defaults;
mod failures;
mod migrate;
mod oauth_clients;
pub mod oauth_grants;
pub mod oauth_keys;
mod references;
mod roles;
pub mod sessions;
mod tenants;

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

use crate::model::{Account, AuthDefaults, Credential, Origin, Role, StoredSecret, Tenant};
use crate::StoreError;

pub use credentials::CredentialWrite;
pub use failures::{FailureRow, Locked};
pub use oauth_clients::StoredOAuthClient;
pub use sessions::SessionRecord;

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
    pub origin: Origin,
    /// Password hash (internal accounts only).
    pub secret: Option<StoredSecret>,
    /// Bumped by every change; an update may name the version it read.
    pub version: i64,
    pub account: Account,
}

/// An object with the version an update must name to be sure nobody changed it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub version: i64,
    pub value: T,
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

/// The checks the store cannot make alone: the permission table and credential syntax belong
/// to the engine, which installs them with [`Store::with_rules`]. Without them every
/// permission name is unknown (fail closed).
#[derive(Clone)]
pub struct Rules {
    pub is_permission: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// Appended to "unknown permission" problems: `, did you mean `…`?` or nothing.
    pub permission_hint: Arc<dyn Fn(&str) -> String + Send + Sync>,
    pub check_credential: Arc<CredentialCheck>,
}

/// An error text for an invalid credential (expiry, networks).
pub type CredentialCheck = dyn Fn(&Credential) -> Result<(), String> + Send + Sync;

impl Default for Rules {
    fn default() -> Self {
        Rules {
            is_permission: Arc::new(|_| false),
            permission_hint: Arc::new(|_| String::new()),
            check_credential: Arc::new(|_| Ok(())),
        }
    }
}

/// Why a write was refused. Only `Store` is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Every problem found, each naming its object; nothing was written.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} already exists")]
    Exists(String),
    /// Optimistic concurrency: the object changed since the version the caller read.
    #[error("{what} is at version {current}, not {expected}: read it again")]
    Conflict {
        what: String,
        current: i64,
        expected: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

/// What a write expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Create: the object must not exist.
    New,
    /// Update: it must exist, at this version when one is given.
    Existing(Option<i64>),
    /// Create or update (provisioning).
    Either,
}

impl Expect {
    /// Checks what was found against what was expected.
    pub(crate) fn check(self, what: &str, found: Option<i64>) -> Result<(), WriteError> {
        match (self, found) {
            (Expect::New, Some(_)) => Err(WriteError::Exists(what.to_string())),
            (Expect::Existing(_), None) => Err(WriteError::NotFound(what.to_string())),
            (Expect::Existing(Some(expected)), Some(current)) if expected != current => {
                Err(WriteError::Conflict {
                    what: what.to_string(),
                    current,
                    expected,
                })
            }
            _ => Ok(()),
        }
    }
}

/// A page of a list: stable order by key; `next` is the cursor for the page after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Longest page a list returns.
pub const MAX_PAGE: u32 = 1000;

/// Which part of a list to read: keys after `after` (the previous page's `next`), at most
/// `limit` of them (capped at [`MAX_PAGE`]), optionally only keys starting with `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub after: Option<String>,
    pub limit: u32,
    pub prefix: Option<String>,
}

impl ListQuery {
    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, MAX_PAGE))
    }
}

/// Cuts the extra row a list reads to know whether there is a next page.
pub(crate) fn page<T>(mut items: Vec<T>, q: &ListQuery, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(q.limit()).unwrap_or(usize::MAX);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    rules: Arc<Rules>,
    /// A changed password hash deletes the account's sessions.
    revoke_on_password_change: bool,
    /// Statements run through [`Store`]'s own methods (not transactions): what a login costs
    /// the database, for tests and benchmarks.
    queries: Arc<AtomicU64>,
    /// Accounts, sessions and API keys in memory (`cache.rs`).
    cache: Arc<cache::Cache>,
    /// PostgreSQL's URL, for the connection that listens for other daemons' writes.
    listen_url: Option<Arc<str>>,
}

impl Store {
    /// Connects and brings the schema up to date. `sqlite://` files are created when missing.
    pub async fn open(url: &str, pool_size: u32, timeout: Duration) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
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
        migrate::migrate(&pool).await?;
        Ok(Store {
            pool,
            backend,
            rules: Arc::new(Rules::default()),
            revoke_on_password_change: true,
            queries: Arc::new(AtomicU64::new(0)),
            // SQLite: every writer that matters is this process (others are caught by the
            // generation poll). PostgreSQL: off until `follow_changes` listens.
            cache: Arc::new(cache::Cache::new(
                cache::DEFAULT_CAPACITY,
                backend == Backend::Sqlite,
            )),
            listen_url: (backend == Backend::Postgres).then(|| Arc::from(url.as_str())),
        })
    }

    /// The same store with a record cache of `capacity` entries per kind and generation
    /// (0: none, every request reads the store).
    pub fn with_record_cache(mut self, capacity: usize) -> Store {
        self.cache = Arc::new(cache::Cache::new(capacity, self.backend == Backend::Sqlite));
        self
    }

    /// Forgets every record held in memory (the generation moved: something was written by a
    /// process that could not tell this one).
    pub fn flush_cache(&self) {
        self.cache.flush();
    }

    /// The record cache's epoch while it is in use (`None` when it is off): what is derived
    /// from cached records stays right while the epoch is the same (every flush moves it).
    pub fn cache_epoch(&self) -> Option<u64> {
        self.cache.live_epoch()
    }

    /// Hits and misses of the record cache since start.
    pub fn cache_stats(&self) -> cache::CacheStats {
        self.cache.stats()
    }

    /// A store error: what is in memory may be stale by the time the store is back, and an
    /// outage must be answered as one, not from memory.
    pub(crate) fn failed(&self, e: StoreError) -> StoreError {
        self.cache.flush();
        e
    }

    /// Tells the other daemons sharing a PostgreSQL store to drop what they hold (`what`:
    /// `*` for everything, `s:HASH` for one session). Part of the writer's transaction when
    /// `conn` is one, so it is delivered at commit. Nothing to do on SQLite.
    pub(crate) async fn notify(
        backend: Backend,
        conn: &mut sqlx::AnyConnection,
        what: &str,
    ) -> Result<(), StoreError> {
        if backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify('postern_cache', $1)")
            .bind(what)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(StoreError::from_sqlx)
    }

    /// Keeps the record cache right across daemons: on PostgreSQL, listens for the writes of
    /// every daemon and CLI sharing the store and drops what they changed, with the cache on
    /// only while the listening connection is up. Runs until the process ends; nothing to do
    /// on SQLite. `serve` calls it once.
    pub fn follow_changes(&self) {
        let Some(url) = self.listen_url.clone() else {
            return;
        };
        let cache = self.cache.clone();
        tokio::spawn(cache::listen(url, cache));
    }

    /// Returns when a write of another daemon or CLI sharing the store arrived through
    /// [`Store::follow_changes`] (PostgreSQL; on SQLite, never: the generation poll covers
    /// other processes there). Roles, tenants and defaults are not in the record cache: the
    /// engine waits here to reload them at once rather than at its next poll.
    pub async fn changed(&self) {
        if self.listen_url.is_none() {
            return std::future::pending().await;
        }
        self.cache.changed().await;
    }

    /// How many changes of other writers were pushed to this store so far (PostgreSQL; 0
    /// on SQLite): the engine compares it with the count its policy was reloaded for.
    pub fn changes(&self) -> u64 {
        self.cache.changes()
    }

    /// The same store with the engine's checks (permission names, credential syntax).
    pub fn with_rules(mut self, rules: Rules) -> Store {
        self.rules = Arc::new(rules);
        self
    }

    /// Whether a changed password ends the account's sessions (on unless configured off).
    pub fn revoking_sessions_on_password_change(mut self, on: bool) -> Store {
        self.revoke_on_password_change = on;
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, counting one statement.
    pub(crate) fn db(&self) -> &AnyPool {
        self.queries.fetch_add(1, Ordering::Relaxed);
        &self.pool
    }

    /// A transaction that reads and then may write, outside [`Tx`]'s checks. On SQLite it
    /// takes the write lock first (`BEGIN IMMEDIATE`): a deferred one that read before another
    /// connection committed fails its write at once with "database is locked", the busy
    /// timeout not applying, so concurrent first logins of different directory users failed
    /// each other. Waiting for the lock is what the busy timeout is for.
    pub(crate) async fn begin_read_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let pool = self.db();
        match self.backend {
            Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => pool.begin().await,
        }
        .map_err(StoreError::from_sqlx)
    }

    /// Statements run outside transactions since the store was opened.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Starts a write. Nothing is visible to others, and no reference is checked, until
    /// [`Tx::commit`].
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx {
            tx: self.pool.begin().await.map_err(StoreError::from_sqlx)?,
            backend: self.backend,
            cache: self.cache.clone(),
            rules: self.rules.clone(),
            revoke_on_password_change: self.revoke_on_password_change,
            problems: Vec::new(),
            refs: references::References::default(),
            changed: false,
        })
    }

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

    /// Readiness probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(self.db())
            .await
            .map(|_| ())
            .map_err(|e| self.failed(StoreError::from_sqlx(e)))
    }

    /// Number of accounts (individuals and groups); zero on a fresh store.
    pub async fn count_accounts(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(self.db())
            .await
            .map_err(StoreError::from_sqlx)
    }

    /// Bumped by every change to the directory model; daemons poll it to reload.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT value FROM postern_meta WHERE key = 'generation'")
            .fetch_one(self.db())
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
        let defaults = defaults::read(&mut tx)
            .await?
            .map(|d| d.value)
            .unwrap_or_default();
        let roles = all_bodies(&mut tx, "SELECT body FROM roles ORDER BY id", "role").await?;
        let tenants = all_bodies(&mut tx, "SELECT body FROM tenants ORDER BY id", "tenant").await?;
        let groups = all_bodies(
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
}

/// One write transaction: see the module docs.
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    /// Flushed when the transaction commits a change.
    cache: Arc<cache::Cache>,
    rules: Arc<Rules>,
    revoke_on_password_change: bool,
    /// Every problem met so far; a transaction with any is rolled back at commit.
    problems: Vec<String>,
    refs: references::References,
    changed: bool,
}

impl Tx {
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Refuses the transaction for problems found outside the store (a provisioning file that
    /// defines an object twice); reported with the others at commit.
    pub fn refuse(&mut self, problems: impl IntoIterator<Item = String>) {
        self.problems.extend(problems);
    }

    /// The object's own problems: remembered for the commit, and returned now.
    pub(crate) fn invalid(&mut self, problems: Vec<String>) -> Result<(), WriteError> {
        if problems.is_empty() {
            return Ok(());
        }
        self.problems.extend(problems.iter().cloned());
        Err(WriteError::Invalid(problems))
    }

    /// Unknown permission names in `names`, one problem each.
    pub(crate) fn unknown_permissions(&self, what: &str, names: &[String], out: &mut Vec<String>) {
        for name in names {
            if !(self.rules.is_permission)(name) {
                let hint = (self.rules.permission_hint)(name);
                out.push(format!("{what}: unknown permission {name:?}{hint}"));
            }
        }
    }

    pub(crate) fn note(&mut self, change: Change) -> Change {
        if change != Change::Unchanged {
            self.changed = true;
        }
        change
    }

    /// Checks every reference written or removed, then commits and bumps the generation (when
    /// anything changed) so that every daemon reloads. Any problem: nothing is written, and
    /// every problem of the transaction is returned. `Ok(true)` when something changed.
    pub async fn commit(mut self) -> Result<bool, WriteError> {
        let refs = std::mem::take(&mut self.refs);
        let found = refs.check(&mut self.tx).await?;
        self.problems.extend(found);
        if !self.problems.is_empty() {
            // Dropping the transaction rolls it back.
            return Err(WriteError::Invalid(self.problems));
        }
        if self.changed {
            sqlx::query("UPDATE postern_meta SET value = value + 1 WHERE key = 'generation'")
                .execute(&mut *self.tx)
                .await
                .map_err(StoreError::from_sqlx)?;
            Store::notify(self.backend, &mut self.tx, "*").await?;
        }
        let committed = self.tx.commit().await.map_err(StoreError::from_sqlx);
        // Flushed even when the commit failed: its outcome may be unknown.
        if self.changed {
            self.cache.flush();
        }
        committed?;
        Ok(self.changed)
    }
}

fn normalize_url(url: &str) -> Result<(Backend, String), StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
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
        Ok((Backend::Sqlite, format!("sqlite://{rest}{sep}{mode}")))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else {
        Err(StoreError::Config(
            "store url must start with sqlite:// or postgres://".into(),
        ))
    }
}

async fn all_bodies<T: serde::de::DeserializeOwned>(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let rows: Vec<String> = sqlx::query_scalar(sql)
        .fetch_all(conn)
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

/// Ids and names: printable, not blank, at most 256 bytes.
pub(crate) fn check_id(what: &str, id: &str, out: &mut Vec<String>) {
    if id.trim().is_empty() || id.chars().any(char::is_control) || id.len() > 256 {
        out.push(format!("{what}: invalid id"));
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A fresh SQLite store in the temp dir with permissive rules (every name a permission
    /// except `fly-to-the-moon`).
    pub async fn store(name: &str, pool: u32) -> Store {
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
        .with_rules(Rules {
            is_permission: Arc::new(|n| n != "fly-to-the-moon"),
            ..Rules::default()
        })
    }
}
