//! The `sql` directory (SPEC §5): logins checked against an existing user database —
//! PostgreSQL, MySQL/MariaDB or SQLite — through queries the operator writes, so that Postern
//! can sit on a Postfix Admin (or similar) schema unchanged.
//!
//! * `query-login` gets the login name as its one bound parameter and returns at most one row
//!   with columns `name` (canonical name), `secret` (a stored hash in any scheme of
//!   `postern_directory::secret`), and optionally `description` and `type` (`individual`/`user`
//!   may log in; `group` and the other principal types may not). No row: not our user. Two
//!   rows: the login is ambiguous, which is a data error (`InvalidData`), never a guess.
//! * `query-member-of` and `query-emails` get the canonical name and return one value per row
//!   (column `name` / `email`, or the first column).
//!
//! User input is only ever bound, never spliced into SQL. A database that cannot be reached is
//! `DirectoryError::Unavailable` (a temporary failure for the client), and bad data
//! (`NULL` secret, wrong column type, …) is `DirectoryError::InvalidData`: neither is ever
//! reported as a wrong password, and neither grants anything.

mod backend;
mod config;
mod directory;
mod error;
mod live;
mod placeholders;
mod table;

use std::time::Duration;

use postern_directory::secret::Hasher;

pub use config::{ConfigProblem, Dialect, SqlConfig};
pub use live::LiveProblem;

use backend::{Backend, Query};

/// Rows read from `query-member-of` / `query-emails` at most: a query that returns a whole
/// table by mistake must not fill memory.
const MAX_LIST_ROWS: usize = 1000;

pub struct SqlDirectory {
    name: String,
    backend: Backend,
    login: Query,
    member_of: Option<Query>,
    emails: Option<Query>,
    hasher: Hasher,
    timeout: Duration,
    /// `default-scheme`: how a secret that names no scheme is read.
    default_scheme: Option<String>,
}

impl SqlDirectory {
    /// Checks the configuration and builds a lazy pool. Synchronous and never connects: the
    /// database may be down at start (logins are then temporary failures until it returns).
    /// Call it inside a Tokio runtime (sqlx starts its pool maintenance task here).
    pub fn new(name: &str, config: SqlConfig, hasher: Hasher) -> Result<Self, ConfigProblem> {
        if let Some(e) = config.check_static().into_iter().next() {
            return Err(e);
        }
        let url = config.resolved_url()?;
        let url_key = match config.url_file {
            Some(_) => "url-file",
            None => "url",
        };
        let dialect = Dialect::from_url(&url)
            .ok_or_else(|| ConfigProblem::new("url", "unknown database URL scheme"))?;
        let query = |key: &'static str, sql: &str| -> Result<Query, ConfigProblem> {
            let binds =
                config::check_query(dialect, sql).map_err(|r| ConfigProblem::new(key, r))?;
            Ok(Query {
                key,
                sql: sql.to_string(),
                binds,
            })
        };
        let login = query("query-login", &config.query_login)?;
        let member_of = config
            .query_member_of
            .as_deref()
            .map(|q| query("query-member-of", q))
            .transpose()?;
        let emails = config
            .query_emails
            .as_deref()
            .map(|q| query("query-emails", q))
            .transpose()?;
        Ok(SqlDirectory {
            name: name.to_string(),
            backend: Backend::connect_lazy(
                backend::parse_url(&url, url_key)?,
                config.pool_size,
                config.timeout,
            )?,
            login,
            member_of,
            emails,
            hasher,
            timeout: config.timeout,
            default_scheme: config.default_scheme.clone(),
        })
    }

    /// `(open connections, idle connections)` of the pool, for a gauge.
    pub fn pool_stats(&self) -> (u32, usize) {
        self.backend.stats()
    }
}
