//! A Postfix Admin style mail database (tables `domain`, `mailbox`, `alias`; fixtures in
//! `tests/fixtures/sql/`) on a private PostgreSQL, a private MariaDB or a SQLite file, with the
//! queries an operator would write for it in each dialect. Shared by the SQL directory's own
//! tests (`plugins/sql/tests`) and the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mariadb::MariaDb;
use crate::pg::Postgres;
use crate::{root, run};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    MariaDb,
    Sqlite,
}

pub struct MailDb {
    pub kind: Kind,
    pub url: String,
    pg: Option<Postgres>,
    maria: Option<MariaDb>,
    dir: tempfile::TempDir,
}

/// The operator's queries, in one dialect.
pub struct Queries {
    pub login: String,
    pub member_of: String,
    pub emails: String,
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/sql").join(name)
}

impl MailDb {
    pub fn start(kind: Kind) -> MailDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = fixture("seed.sql");
        match kind {
            Kind::Postgres => {
                let pg = Postgres::start();
                let url = pg.database("mail");
                for file in [fixture("schema-postgres.sql"), seed] {
                    run(Command::new("psql")
                        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-f"])
                        .arg(&file));
                }
                MailDb {
                    kind,
                    url,
                    pg: Some(pg),
                    maria: None,
                    dir,
                }
            }
            Kind::MariaDb => {
                let maria = MariaDb::start();
                let url = maria.database("mail");
                maria.load("mail", &fixture("schema-mysql.sql"));
                maria.load("mail", &seed);
                MailDb {
                    kind,
                    url,
                    pg: None,
                    maria: Some(maria),
                    dir,
                }
            }
            Kind::Sqlite => {
                let file = dir.path().join("mail.db");
                create_sqlite(&file);
                MailDb {
                    kind,
                    url: format!("sqlite://{}", file.display()),
                    pg: None,
                    maria: None,
                    dir,
                }
            }
        }
    }

    /// A private directory that lives as long as the database (for extra files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server, keeping its data (an outage).
    pub fn stop(&mut self) {
        if let Some(pg) = &self.pg {
            pg.stop();
        }
        if let Some(m) = &mut self.maria {
            m.stop();
        }
    }

    pub fn start_again(&mut self) {
        if let Some(pg) = &self.pg {
            pg.start_again();
        }
        if let Some(m) = &mut self.maria {
            m.start_again();
        }
    }

    pub fn queries(&self) -> Queries {
        queries(self.kind)
    }

    /// The body of a `[directory.NAME]` section (after `type = "sql"`).
    pub fn directory_toml(&self) -> String {
        let q = self.queries();
        format!(
            "url = {:?}\nquery-login = {:?}\nquery-member-of = {:?}\nquery-emails = {:?}\n\
             pool-size = 4\ntimeout = \"3s\"\n",
            self.url, q.login, q.member_of, q.emails
        )
    }
}

/// Builds the SQLite database at `file` from the fixtures.
pub fn create_sqlite(file: &Path) {
    for f in [fixture("schema-sqlite.sql"), fixture("seed.sql")] {
        let input = std::fs::File::open(&f).expect("open fixture");
        run(Command::new("sqlite3").arg("-bail").arg(file).stdin(input));
    }
}

/// What an operator of a Postfix Admin database writes: active mailboxes of active domains
/// log in; an active distribution list (an alias with several targets) is a group and may not;
/// a mailbox's groups are the lists naming it; its addresses are the aliases pointing at it,
/// its own first.
pub fn queries(kind: Kind) -> Queries {
    match kind {
        Kind::Postgres | Kind::Sqlite => Queries {
            login: "SELECT m.username AS name, m.password AS secret, m.name AS description, \
                    'individual' AS type FROM mailbox m JOIN domain d ON d.domain = m.domain \
                    WHERE m.username = $1 AND m.active = 1 AND d.active = 1 \
                    UNION ALL SELECT a.address, NULL, NULL, 'group' FROM alias a \
                    WHERE a.address = $1 AND a.active = 1 AND a.goto LIKE '%,%'"
                .into(),
            member_of: "SELECT address AS name FROM alias WHERE active = 1 AND address <> $1 \
                        AND goto LIKE '%,%' AND ',' || goto || ',' LIKE '%,' || $1 || ',%' ORDER BY address"
                .into(),
            emails: "SELECT address AS email FROM alias WHERE active = 1 AND goto = $1 \
                     ORDER BY address <> $1, address"
                .into(),
        },
        Kind::MariaDb => Queries {
            login: "SELECT m.username AS name, m.password AS secret, m.name AS description, \
                    'individual' AS type FROM mailbox m JOIN domain d ON d.domain = m.domain \
                    WHERE m.username = ? AND m.active = 1 AND d.active = 1 \
                    UNION ALL SELECT a.address, NULL, NULL, 'group' FROM alias a \
                    WHERE a.address = ? AND a.active = 1 AND a.goto LIKE '%,%'"
                .into(),
            member_of: "SELECT address AS name FROM alias WHERE active = 1 AND address <> ? \
                        AND goto LIKE '%,%' AND CONCAT(',', goto, ',') LIKE CONCAT('%,', ?, ',%') ORDER BY address"
                .into(),
            emails: "SELECT address AS email FROM alias WHERE active = 1 AND goto = ? \
                     ORDER BY address <> ?, address"
                .into(),
        },
    }
}
