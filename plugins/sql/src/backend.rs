//! One typed sqlx pool per dialect. Typed pools rather than `Any`: each driver decodes its own
//! column types (MySQL bytes, PostgreSQL `name`/`varchar`/`text`) and reports its own error
//! codes, which `Any` would flatten.
//!
//! Pools are lazy: nothing connects until the first query, so a database that is down when
//! the daemon starts is a temporary failure at login, and the pool reconnects by itself when it
//! returns (idle connections are pinged before use and dropped if dead).

use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Either, Executor, Statement};

use crate::config::{ConfigProblem, Dialect};
use crate::table::Table;

pub(crate) enum Backend {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// What the database says a prepared query looks like (for `check-config --live`).
pub(crate) struct Shape {
    pub columns: Vec<String>,
    pub parameters: Option<usize>,
}

/// A query and how many times the login name is bound to it.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    pub key: &'static str,
    pub sql: String,
    pub binds: usize,
}

/// Runs `$query` on `$pool` with `$arg` bound to every placeholder, reading at most `$limit`
/// rows. A macro rather than a generic function: the three drivers share no executor trait
/// that sqlx lets us name without pages of higher-ranked bounds.
macro_rules! fetch {
    ($pool:expr, $query:expr, $arg:expr, $limit:expr) => {{
        let mut q = sqlx::query(&$query.sql);
        for _ in 0..$query.binds {
            q = q.bind($arg);
        }
        let mut stream = q.fetch($pool);
        let mut table = Table::default();
        while let Some(row) = stream.try_next().await? {
            if table.rows.len() >= $limit {
                table.truncated = true;
                break;
            }
            table.push(&row);
        }
        table
    }};
}

macro_rules! shape {
    ($pool:expr, $sql:expr) => {{
        let statement = $pool.prepare($sql).await?;
        Shape {
            columns: statement
                .columns()
                .iter()
                .map(|c| sqlx::Column::name(c).to_ascii_lowercase())
                .collect(),
            parameters: statement.parameters().map(|p| match p {
                Either::Left(types) => types.len(),
                Either::Right(n) => n,
            }),
        }
    }};
}

/// Parsed connection options, before any pool exists.
pub(crate) enum Options {
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
    Sqlite(SqliteConnectOptions),
}

/// Parses a database URL (no I/O). `key` is where it came from (`url` or `url-file`).
pub(crate) fn parse_url(url: &str, key: &'static str) -> Result<Options, ConfigProblem> {
    let dialect = Dialect::from_url(url).ok_or_else(|| {
        ConfigProblem::new(key, "must start with postgres://, mysql:// or sqlite://")
    })?;
    // sqlx's own messages about a URL may quote it, password included: say only what kind of
    // problem it is.
    let bad_url = |e: sqlx::Error| {
        let kind = match e {
            sqlx::Error::Configuration(_) => "invalid database URL or URL option",
            _ => "invalid database URL",
        };
        ConfigProblem::new(key, kind)
    };
    Ok(match dialect {
        Dialect::Postgres => Options::Postgres(PgConnectOptions::from_str(url).map_err(bad_url)?),
        Dialect::MySql => {
            // sqlx only knows the mysql:// scheme; mariadb:// is our synonym for it.
            let url = match url.strip_prefix("mariadb:") {
                Some(rest) => format!("mysql:{rest}"),
                None => url.to_string(),
            };
            Options::MySql(MySqlConnectOptions::from_str(&url).map_err(bad_url)?)
        }
        Dialect::Sqlite => Options::Sqlite(SqliteConnectOptions::from_str(url).map_err(bad_url)?),
    })
}

impl Backend {
    /// Builds a lazy pool: no connection is made here. sqlx spawns its pool maintenance task
    /// at once, so this needs a Tokio runtime; without one it is an error, not a panic.
    pub fn connect_lazy(
        options: Options,
        pool_size: u32,
        timeout: Duration,
    ) -> Result<Backend, ConfigProblem> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigProblem::new(
                "url",
                "the SQL directory must be built inside a Tokio runtime",
            ));
        }
        // Idle connections are pinged before use (sqlx's default), so one killed by a database
        // restart is replaced rather than handed to a query.
        let size = pool_size.max(1);
        Ok(match options {
            Options::Postgres(o) => Backend::Postgres(
                PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(o),
            ),
            Options::MySql(o) => Backend::MySql(
                MySqlPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(o),
            ),
            // The operator's database: read it, never create or change it.
            Options::Sqlite(o) => Backend::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(
                        o.create_if_missing(false)
                            .read_only(true)
                            .busy_timeout(timeout),
                    ),
            ),
        })
    }

    pub async fn fetch(&self, query: &Query, arg: &str, limit: usize) -> sqlx::Result<Table> {
        Ok(match self {
            Backend::Postgres(pool) => fetch!(pool, query, arg, limit),
            Backend::MySql(pool) => fetch!(pool, query, arg, limit),
            Backend::Sqlite(pool) => fetch!(pool, query, arg, limit),
        })
    }

    pub async fn shape(&self, sql: &str) -> sqlx::Result<Shape> {
        Ok(match self {
            Backend::Postgres(pool) => shape!(pool, sql),
            Backend::MySql(pool) => shape!(pool, sql),
            Backend::Sqlite(pool) => shape!(pool, sql),
        })
    }

    pub async fn ping(&self) -> sqlx::Result<()> {
        use sqlx::Connection;
        match self {
            Backend::Postgres(pool) => pool.acquire().await?.ping().await,
            Backend::MySql(pool) => pool.acquire().await?.ping().await,
            Backend::Sqlite(pool) => pool.acquire().await?.ping().await,
        }
    }

    /// Connections open, and how many of them are idle.
    pub fn stats(&self) -> (u32, usize) {
        match self {
            Backend::Postgres(pool) => (pool.size(), pool.num_idle()),
            Backend::MySql(pool) => (pool.size(), pool.num_idle()),
            Backend::Sqlite(pool) => (pool.size(), pool.num_idle()),
        }
    }
}
