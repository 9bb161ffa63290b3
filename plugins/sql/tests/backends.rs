//! The SQL directory against real databases: the same cases on a private PostgreSQL, a private
//! MariaDB and a SQLite file, all holding the Postfix Admin style fixture of
//! `tests/fixtures/sql/` (hashes made by `doveadm pw`). A server that cannot start fails.

// Test helpers outside #[test] functions: clippy's allow-*-in-tests does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use postern_directory::secret::Hasher;
use postern_directory::{
    Credential, Directory, DirectoryError, LoginRequest, Outcome, RejectReason,
};
use postern_e2e::sqldb::{self, Kind, MailDb};
use postern_sql::{SqlConfig, SqlDirectory};

/// Every scheme in the fixture; the password of `S@example.org` is `pw-S`.
const SCHEMES: [&str; 16] = [
    "sha512-crypt",
    "sha256-crypt",
    "blf-crypt",
    "argon2id",
    "argon2i",
    "ssha512",
    "ssha256",
    "ssha",
    "sha",
    "plain-md5",
    "ldap-md5",
    "md5-crypt",
    "pbkdf2",
    "plain",
    "bare-md5",
    "bare-bcrypt",
];

fn password_of(user: &str) -> String {
    match user {
        "bare-md5" => "pw-md5-crypt".into(),
        "bare-bcrypt" => "pw-blf-crypt".into(),
        s => format!("pw-{s}"),
    }
}

fn config(db: &MailDb, login: Option<&str>) -> SqlConfig {
    let mut c: SqlConfig = toml::from_str(&db.directory_toml()).expect("config");
    if let Some(q) = login {
        c.query_login = q.to_string();
    }
    c
}

fn directory(db: &MailDb, login: Option<&str>) -> SqlDirectory {
    SqlDirectory::new("mail", config(db, login), Hasher::new(4)).expect("directory")
}

async fn auth(d: &SqlDirectory, user: &str, pw: &str) -> Result<Outcome, DirectoryError> {
    let secret = Credential::password(pw);
    d.authenticate(&LoginRequest {
        username: user,
        credential: &secret,
        remote_ip: None,
        service: "imap",
    })
    .await
}

fn rejected(o: &Result<Outcome, DirectoryError>) -> Option<RejectReason> {
    match o {
        Ok(Outcome::Rejected(r)) => Some(*r),
        _ => None,
    }
}

async fn every_case(db: &mut MailDb) {
    let d = directory(db, None);
    d.health().await.expect("healthy");

    for s in SCHEMES {
        let user = format!("{s}@example.org");
        let ok = auth(&d, &user, &password_of(s)).await;
        assert!(
            matches!(&ok, Ok(Outcome::Authenticated(i)) if i.name == user),
            "{:?} {user}: {ok:?}",
            db.kind
        );
        let bad = auth(&d, &user, "pw-wrong").await;
        assert_eq!(rejected(&bad), Some(RejectReason::WrongSecret), "{user}");
    }

    let Ok(Outcome::Authenticated(alice)) = auth(&d, "alice@example.org", "Alice-pw-1").await
    else {
        panic!("alice refused")
    };
    assert_eq!(alice.description.as_deref(), Some("Alice Liddell"));
    assert_eq!(
        alice.groups,
        ["staff@example.org"],
        "inactive lists left out"
    );
    assert_eq!(alice.emails, ["alice@example.org", "a.liddell@example.org"]);
    let Ok(Outcome::Authenticated(bob)) = auth(&d, "bob@example.org", "Bob-pw-1").await else {
        panic!("bob refused")
    };
    assert!(bob.groups.is_empty());
    assert_eq!(bob.emails, ["bob@example.org"]);
    assert_eq!(
        rejected(&auth(&d, "alice@example.org", "").await),
        Some(RejectReason::WrongSecret),
        "empty password"
    );

    // Not ours: unknown, inactive, disabled domain. The chain may ask the next directory.
    for user in [
        "nobody@example.org",
        "inactive@example.org",
        "carol@closed.example",
    ] {
        let o = auth(&d, user, "Alice-pw-1").await;
        assert!(matches!(o, Ok(Outcome::UnknownUser)), "{user}: {o:?}");
    }
    // A distribution list is a group: known, but may not log in.
    assert_eq!(
        rejected(&auth(&d, "staff@example.org", "x").await),
        Some(RejectReason::NotLoginable)
    );
    // Hashes that cannot be verified are a refusal, never a comparison as cleartext.
    for user in ["cram@example.org", "unknown-scheme@example.org"] {
        let o = auth(&d, user, "pw-unknown").await;
        assert_eq!(
            rejected(&o),
            Some(RejectReason::UnverifiableSecret),
            "{user}"
        );
        assert_eq!(
            rejected(&auth(&d, user, "{FOO}pw-unknown").await),
            Some(RejectReason::UnverifiableSecret)
        );
    }
    // A NULL secret is bad data: a temporary failure, nothing granted.
    let o = auth(&d, "nullsecret@example.org", "").await;
    assert!(
        matches!(&o, Err(DirectoryError::InvalidData(m)) if m.contains("NULL")),
        "{o:?}"
    );

    // User input is only bound: quotes, comments and backslashes find nobody.
    for user in [
        "' OR '1'='1",
        "alice@example.org' -- ",
        "alice@example.org' OR 'x'='x",
        "\\' OR 1=1 -- ",
        "alice@example.org\"; DROP TABLE mailbox; --",
    ] {
        let o = auth(&d, user, "Alice-pw-1").await;
        assert!(matches!(o, Ok(Outcome::UnknownUser)), "{user:?}: {o:?}");
    }
    // Names no front-end passes never reach the database, and are nobody.
    for user in ["alice@example.org\0", &"a".repeat(10_000), ""] {
        let o = auth(&d, user, "Alice-pw-1").await;
        assert!(matches!(o, Ok(Outcome::UnknownUser)), "{o:?}");
        assert!(d.lookup(user).await.expect("lookup").is_none());
    }
    let found = d.lookup("alice@example.org").await.expect("lookup");
    assert_eq!(
        found.map(|i| i.groups),
        Some(vec!["staff@example.org".into()])
    );
    assert!(d
        .lookup("nobody@example.org")
        .await
        .expect("lookup")
        .is_none());
    assert!(
        d.check_live().await.is_empty(),
        "{:?}",
        d.check_live().await
    );
    let (open, idle) = d.pool_stats();
    assert!(open >= 1 && idle <= open as usize, "{open} {idle}");

    bad_queries(db).await;
    outage(db, &d).await;
}

/// Broken queries: errors with clear messages, never a login.
async fn bad_queries(db: &MailDb) {
    let p = if db.kind == Kind::MariaDb { "?" } else { "$1" };
    let cases = [
        (
            format!("SELECT username AS name, password AS secret FROM mailbox WHERE domain = 'example.org' OR username = {p}"),
            "more than one row",
        ),
        (
            format!("SELECT username AS name, quota AS secret FROM mailbox WHERE username = {p}"),
            "sql type",
        ),
        (
            format!("SELECT password AS secret FROM mailbox WHERE username = {p}"),
            "no column `name`",
        ),
        (
            format!("SELECT quota AS name, password AS secret FROM mailbox WHERE username = {p}"),
            "sql type",
        ),
        (
            format!("SELEC username AS name FROM mailbox WHERE username = {p}"),
            "syntax",
        ),
        (
            format!("SELECT username AS name, password AS secret FROM no_such_table WHERE username = {p}"),
            "no_such_table",
        ),
    ];
    for (i, (sql, words)) in cases.iter().enumerate() {
        let d = directory(db, Some(sql));
        let o = auth(&d, "alice@example.org", "Alice-pw-1").await;
        match &o {
            Err(DirectoryError::InvalidData(m)) => {
                assert!(
                    m.to_lowercase().contains(words),
                    "{:?} case {i}: {m}",
                    db.kind
                )
            }
            other => panic!("{:?} case {i} {sql}: {other:?}", db.kind),
        }
    }
    // check-config --live names the key and the reason.
    for (sql, words) in [
        (
            format!("SELEC username AS name FROM mailbox WHERE username = {p}"),
            "syntax",
        ),
        (
            format!("SELECT username AS name, password AS secret FROM no_such_table WHERE username = {p}"),
            "no_such_table",
        ),
        (
            format!("SELECT username AS name FROM mailbox WHERE username = {p}"),
            "no column `secret`",
        ),
    ] {
        let problems = directory(db, Some(&sql)).check_live().await;
        assert!(
            problems
                .iter()
                .any(|p| p.key == "query-login" && p.reason.to_lowercase().contains(words)),
            "{:?} {sql}: {problems:?}",
            db.kind
        );
    }
}

/// The database goes away mid-run: temporary failures (never a rejection), then recovery
/// without rebuilding the directory.
async fn outage(db: &mut MailDb, d: &SqlDirectory) {
    if db.kind == Kind::Sqlite {
        return;
    }
    db.stop();
    let started = Instant::now();
    let o = auth(d, "alice@example.org", "Alice-pw-1").await;
    assert!(matches!(o, Err(DirectoryError::Unavailable(_))), "{o:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        d.health().await,
        Err(DirectoryError::Unavailable(_))
    ));
    assert!(!d.check_live().await.is_empty());
    db.start_again();
    let mut last = None;
    for _ in 0..50 {
        match auth(d, "alice@example.org", "Alice-pw-1").await {
            Ok(Outcome::Authenticated(i)) => {
                assert_eq!(i.groups, ["staff@example.org"]);
                d.health().await.expect("healthy again");
                return;
            }
            other => last = Some(other),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{:?} never recovered: {last:?}", db.kind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let mut db = MailDb::start(Kind::Postgres);
    every_case(&mut db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb() {
    let mut db = MailDb::start(Kind::MariaDb);
    every_case(&mut db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let mut db = MailDb::start(Kind::Sqlite);
    every_case(&mut db).await;
}

/// A SQLite file that does not exist yet: the directory builds (lazily), logins fail
/// temporarily, and work as soon as the file appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_missing_at_start_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("later.db");
    let q = sqldb::queries(Kind::Sqlite);
    let c: SqlConfig = toml::from_str(&format!(
        "url = \"sqlite://{}\"\nquery-login = {:?}\ntimeout = \"2s\"\n",
        file.display(),
        q.login
    ))
    .expect("config");
    let d = SqlDirectory::new("mail", c, Hasher::new(2)).expect("lazy: no connection at build");
    let o = auth(&d, "alice@example.org", "Alice-pw-1").await;
    assert!(matches!(o, Err(DirectoryError::Unavailable(_))), "{o:?}");
    sqldb::create_sqlite(&file);
    let o = auth(&d, "alice@example.org", "Alice-pw-1").await;
    assert!(matches!(o, Ok(Outcome::Authenticated(_))), "{o:?}");
}
