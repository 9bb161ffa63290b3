//! `[directory.NAME]` with `type = "sql"` (SPEC §5), and the checks that need no database.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::placeholders::{self, Placeholder};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SqlConfig {
    /// `postgres://…`, `mysql://…` (`mariadb://` is accepted as a synonym) or `sqlite://PATH`.
    /// Leave empty and set `url-file` to keep a password out of the configuration file.
    #[serde(default)]
    pub url: String,
    /// A file holding the whole URL (systemd `LoadCredential`, a 0600 file, …).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// One bound parameter, the login name (`$1` on PostgreSQL and SQLite, `?` on MySQL);
    /// columns `name`, `secret`, optional `description` and `type`.
    pub query_login: String,
    /// Bound parameter: the canonical name; one group name per row (column `name`, or the
    /// first column).
    #[serde(default)]
    pub query_member_of: Option<String>,
    /// Bound parameter: the canonical name; one address per row (column `email`, or the first
    /// column). Without it, a name containing `@` is its own address.
    #[serde(default)]
    pub query_emails: Option<String>,
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    /// Bounds getting a connection and running each query.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The scheme of a stored secret that names none (`PLAIN` for slapd's cleartext
    /// `userPassword`, `CRYPT`, …), as Dovecot's `default_pass_scheme`. Unset: such values
    /// are refused as unverifiable.
    #[serde(default)]
    pub default_scheme: Option<String>,
}

fn default_pool() -> u32 {
    8
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The SQL dialect, from the URL's scheme. It decides the placeholder syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    pub fn from_url(url: &str) -> Option<Dialect> {
        let scheme = url.split_once(':').map(|(s, _)| s)?;
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "mysql" | "mariadb" => Some(Dialect::MySql),
            "sqlite" => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    pub fn placeholder(self) -> &'static str {
        match self {
            Dialect::MySql => "?",
            Dialect::Postgres | Dialect::Sqlite => "$1",
        }
    }
}

/// A configuration problem, in the shape every plugin shares: the key (relative to the
/// directory's section) and why.
pub use postern_directory::ConfigProblem;

impl SqlConfig {
    /// The URL in force: `url`, or the trimmed content of `url-file`. Zeroized on drop, since
    /// it may carry the database password.
    pub fn resolved_url(&self) -> Result<Zeroizing<String>, ConfigProblem> {
        match (&self.url_file, self.url.is_empty()) {
            (Some(_), false) => Err(ConfigProblem::new(
                "url-file",
                "set either url or url-file, not both",
            )),
            (Some(path), true) => postern_directory::read_secret_file("url-file", path),
            (None, true) => Err(ConfigProblem::new("url", "url or url-file is required")),
            (None, false) => Ok(Zeroizing::new(self.url.clone())),
        }
    }

    /// The queries, by key, in the order they run.
    pub fn queries(&self) -> Vec<(&'static str, &str)> {
        let mut q = vec![("query-login", self.query_login.as_str())];
        if let Some(s) = &self.query_member_of {
            q.push(("query-member-of", s));
        }
        if let Some(s) = &self.query_emails {
            q.push(("query-emails", s));
        }
        q
    }

    /// Every problem that can be found without connecting: URL scheme, pool size, and each
    /// query's placeholders for the URL's dialect (the wrong placeholder style is the usual
    /// mistake when moving a Postfix Admin query between MySQL and PostgreSQL).
    pub fn check_static(&self) -> Vec<ConfigProblem> {
        let mut errors = Vec::new();
        if self.pool_size == 0 {
            errors.push(ConfigProblem::new("pool-size", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            errors.push(ConfigProblem::new("timeout", "must be more than 0"));
        }
        if let Some(tag) = &self.default_scheme {
            if !postern_directory::secret::is_known_tag(tag) {
                errors.push(ConfigProblem::new(
                    "default-scheme",
                    format!("{tag:?} is not a known password scheme"),
                ));
            }
        }
        let url = match self.resolved_url() {
            Ok(url) => url,
            Err(e) => {
                errors.push(e);
                return errors;
            }
        };
        let key = if self.url_file.is_some() {
            "url-file"
        } else {
            "url"
        };
        if let Err(e) = crate::backend::parse_url(&url, key) {
            errors.push(e);
            return errors;
        }
        let Some(dialect) = Dialect::from_url(&url) else {
            return errors;
        };
        for (k, q) in self.queries() {
            if let Err(reason) = check_query(dialect, q) {
                errors.push(ConfigProblem::new(k, reason));
            }
        }
        errors
    }
}

/// How many times the login name is bound to `query`: PostgreSQL and SQLite number their
/// parameters, so `$1` may appear several times and is bound once; MySQL's `?` is positional,
/// so every `?` receives the login name.
pub(crate) fn check_query(dialect: Dialect, query: &str) -> Result<usize, String> {
    if query.trim().is_empty() {
        return Err("is empty".into());
    }
    let found = placeholders::scan(query, dialect == Dialect::MySql);
    let dollars: Vec<u32> = found
        .iter()
        .filter_map(|p| match p {
            Placeholder::Numbered(n) => Some(*n),
            Placeholder::Positional => None,
        })
        .collect();
    let positional = found.len() - dollars.len();
    match dialect {
        Dialect::MySql => {
            if !dollars.is_empty() {
                return Err("MySQL/MariaDB placeholders are ?, not $1".into());
            }
            if positional == 0 {
                return Err("must use the bound parameter ? for the login name".into());
            }
            Ok(positional)
        }
        Dialect::Postgres | Dialect::Sqlite => {
            if dollars.iter().any(|n| *n != 1) {
                return Err(
                    "only one parameter is bound (the login name): use $1, not $2 or higher".into(),
                );
            }
            if dollars.is_empty() {
                return Err(if positional > 0 {
                    "placeholders are $1 here, not ? (? is MySQL's)".into()
                } else {
                    "must use the bound parameter $1 for the login name".into()
                });
            }
            if dialect == Dialect::Sqlite && positional > 0 {
                return Err("mixes ? and $1: use $1 only".into());
            }
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, login: &str) -> SqlConfig {
        toml::from_str(&format!("url = {url:?}\nquery-login = {login:?}\n")).unwrap()
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c = config("sqlite:///x.db", "SELECT 1 WHERE $1 = ''");
        assert_eq!(c.pool_size, 8);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.check_static().is_empty(), "{:?}", c.check_static());
        let typo = toml::from_str::<SqlConfig>("url = \"sqlite://x\"\nquery-logn = \"x\"\n");
        assert!(typo.is_err());
        let t: SqlConfig =
            toml::from_str("url = \"sqlite://x\"\nquery-login = \"$1\"\ntimeout = \"250ms\"\n")
                .unwrap();
        assert_eq!(t.timeout, Duration::from_millis(250));
    }

    #[test]
    fn placeholders_per_dialect() {
        let keys = |c: &SqlConfig| {
            c.check_static()
                .into_iter()
                .map(|e| e.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&config("mysql://h/db", "SELECT * FROM m WHERE u = $1")),
            ["query-login"]
        );
        assert!(keys(&config(
            "mysql://h/db",
            "SELECT * FROM m WHERE u = ? OR a = ?"
        ))
        .is_empty());
        assert_eq!(
            keys(&config("postgres://h/db", "SELECT * FROM m WHERE u = ?")),
            ["query-login"]
        );
        assert_eq!(
            keys(&config(
                "postgres://h/db",
                "SELECT * FROM m WHERE u = $1 AND d = $2"
            )),
            ["query-login"]
        );
        // A `$1` inside a string literal is not a placeholder.
        assert_eq!(
            keys(&config("sqlite://x", "SELECT * FROM m WHERE u = '$1'")),
            ["query-login"]
        );
        assert_eq!(
            keys(&config("oracle://h/db", "SELECT $1")),
            ["url"],
            "unknown scheme"
        );
        assert_eq!(check_query(Dialect::MySql, "SELECT ? , '?', ?"), Ok(2));
        assert_eq!(
            keys(&config("postgres://h:notaport/db", "SELECT $1")),
            ["url"],
            "unparsable URL"
        );
        let e = config("postgres://u:hunter2@h:99999/db", "SELECT $1").check_static();
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    }

    #[test]
    fn url_or_url_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "mysql://u:pw@127.0.0.1/mail\n").unwrap();
        let mut c = config("", "SELECT ?");
        assert_eq!(c.check_static()[0].key, "url");
        c.url_file = Some(file.clone());
        assert!(c.check_static().is_empty(), "{:?}", c.check_static());
        assert_eq!(
            c.resolved_url().unwrap().as_str(),
            "mysql://u:pw@127.0.0.1/mail"
        );
        c.url = "mysql://x".into();
        assert_eq!(c.check_static()[0].key, "url-file");
        c.url.clear();
        c.url_file = Some(dir.path().join("missing"));
        assert_eq!(c.check_static()[0].key, "url-file");
    }
}
