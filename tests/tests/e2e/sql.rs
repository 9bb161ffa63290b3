//! The SQL directory end to end: the real `postern` on a Postfix Admin style database
//! (PostgreSQL, MariaDB, SQLite) with the users' existing Dovecot hashes; logins through
//! `POST /auth/login` and through Postfix SASL; a directory group given the `admin` role by one
//! provisioning entry; a database outage answered 503 and recovered from without a restart;
//! `check-config --live` against the database.

use std::time::Duration;

use postern_e2e::postfix::Postfix;
use postern_e2e::sqldb::{Kind, MailDb};
use postern_e2e::*;

/// `staff@example.org` is a distribution list in the database and a group in the store.
const PROVISION: &str = r#"
[[account]]
name = "staff@example.org"
type = "group"
roles = ["admin"]
"#;

/// How long a login is retried (a restarted database takes a moment to accept connections).
const LOGIN_WITHIN: Duration = Duration::from_secs(15);

fn config(db: &MailDb, extra: &str) -> String {
    format!(
        r#"
[server]
state-dir = "state"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"
{extra}
[authentication]
directories = ["internal", "mail"]
max-failures-per-ip = 1000

[directory.mail]
type = "sql"
{}"#,
        db.directory_toml()
    )
}

fn start(db: &MailDb, extra: &str) -> Daemon {
    let d = Daemon::start(&config(db, extra), &[]);
    d.apply(PROVISION);
    d
}

fn logins(db: &mut MailDb) {
    let d = start(db, "");
    let url = d.url("/auth/login");
    let is_admin =
        |r: &Reply| r.status == 200 && strings(&r.json()["roles"]).contains(&"admin".into());
    let r = d.login_until(LOGIN_WITHIN, "alice@example.org", "Alice-pw-1", is_admin);
    assert_eq!(r.status, 200, "{:?}: {}\n{}", db.kind, r.body, d.logs());
    let v = r.json();
    assert_eq!(v["directory"], "mail");
    assert_eq!(v["principal"]["name"], "alice@example.org");
    let mut emails = strings(&v["principal"]["emails"]);
    emails.sort();
    assert_eq!(emails, ["a.liddell@example.org", "alice@example.org"]);
    assert!(strings(&v["groups"]).contains(&"staff@example.org".to_string()));
    assert!(
        strings(&v["roles"]).contains(&"admin".to_string()),
        "group → admin role: {v}"
    );
    assert!(strings(&v["permissions"]).contains(&"principal-create".to_string()));

    // An operator can graph the directory's pool and its answers.
    let m = get(&d.url("/metrics"), None).body;
    assert!(
        m.contains(
            r#"postern_directory_pool_connections{directory="mail",pool="main",state="idle"}"#
        ),
        "{m}"
    );
    assert!(
        m.contains(r#"postern_directory_requests_total{directory="mail",outcome="found"}"#),
        "{m}"
    );

    // bob is not on the list: an ordinary user.
    let r = login(&url, "bob@example.org", "Bob-pw-1");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(!strings(&v["roles"]).contains(&"admin".to_string()), "{v}");
    assert!(!strings(&v["permissions"]).contains(&"principal-create".to_string()));

    // Every refusal looks the same; bad data is a temporary failure, never a wrong password.
    for (user, pw) in [
        ("alice@example.org", "wrong"),
        ("nobody@example.org", "Alice-pw-1"),
        ("staff@example.org", "x"),
        ("inactive@example.org", "Alice-pw-1"),
        ("' OR '1'='1", "x"),
        ("alice@example.org' -- ", "Alice-pw-1"),
        (&"a".repeat(10_000), "Alice-pw-1"),
        ("alice@example.org\0", "Alice-pw-1"),
    ] {
        let r = login(&url, user, pw);
        assert!(
            r.status == 401 || r.status == 400,
            "{:?} {user:.40?}: {} {}",
            db.kind,
            r.status,
            r.body
        );
        assert_ne!(r.status, 200);
    }
    let r = login(&url, "nullsecret@example.org", "anything");
    assert_eq!(r.status, 503, "NULL secret: {}", r.body);
    assert!(d.logs().contains("NULL"), "the log says why");

    // Outage: 503 while the database is down, logins again once it is back, same daemon.
    if db.kind != Kind::Sqlite {
        db.stop();
        let r = login(&url, "alice@example.org", "Alice-pw-1");
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.json()["error"], "temporarily_unavailable");
        db.start_again();
        let r = d.login_until(LOGIN_WITHIN, "alice@example.org", "Alice-pw-1", |r| {
            r.status == 200
        });
        assert_eq!(r.status, 200, "no recovery: {}\n{}", r.body, d.logs());
    }

    // check-config --live: fine as configured; a broken query is named with its key.
    let ok = postern(
        &[
            "check-config",
            "--live",
            "--config",
            d.config.to_str().expect("path"),
        ],
        d.dir.path(),
        None,
    );
    assert!(ok.status.success(), "{:?}", text(&ok));
    let p = if db.kind == Kind::MariaDb { "?" } else { "$1" };
    let broken = config(db, "").replace(
        &format!("query-login = {:?}", db.queries().login),
        &format!("query-login = \"SELEC name FROM mailbox WHERE username = {p}\""),
    );
    let file = d.dir.path().join("broken.toml");
    std::fs::write(&file, broken).expect("write");
    let path = file.to_str().expect("path");
    let st = postern(&["check-config", "--config", path], d.dir.path(), None);
    assert!(st.status.success(), "statically fine: {:?}", text(&st));
    let live = postern(
        &["check-config", "--live", "--config", path],
        d.dir.path(),
        None,
    );
    let (_, stderr) = text(&live);
    assert_eq!(live.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("directory.mail.query-login"), "{stderr}");
}

#[test]
fn sql_directory_on_postgres() {
    logins(&mut MailDb::start(Kind::Postgres));
}

#[test]
fn sql_directory_on_mariadb() {
    logins(&mut MailDb::start(Kind::MariaDb));
}

#[test]
fn sql_directory_on_sqlite() {
    logins(&mut MailDb::start(Kind::Sqlite));
}

/// Postfix SMTP AUTH through the dovecot-auth listener, users and hashes from MariaDB.
#[test]
fn sql_users_through_postfix_sasl() {
    let mut db = MailDb::start(Kind::MariaDb);
    let port = free_port();
    let d = start(
        &db,
        &format!("\n[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"127.0.0.1:{port}\"\n"),
    );
    let postfix = Postfix::start(&format!("inet:127.0.0.1:{port}"));
    let ok = postfix.swaks("PLAIN", "alice@example.org", "Alice-pw-1");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        out.contains("235 2.7.0 Authentication successful"),
        "{out}\n{}\n{}",
        postfix.maillog(),
        d.logs()
    );
    let bad = postfix.swaks("LOGIN", "bob@example.org", "not-bobs");
    let out = String::from_utf8_lossy(&bad.stdout).to_string();
    assert!(out.contains("535 5.7.8") && !out.contains("235 "), "{out}");
    // Postfix logs the refusal with the name Postern was asked about.
    assert!(
        postfix.maillog_has("sasl_username=bob@example.org"),
        "{}",
        postfix.maillog()
    );
    // Database down: Postern answers `FAIL … temp`; Postfix 3.7 passes that on as 535 with
    // the temporary reason (what Postern sends is the `temp` flag, never a wrong password).
    db.stop();
    let down = postfix.swaks("PLAIN", "alice@example.org", "Alice-pw-1");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&down.stdout),
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        out.contains("Temporary authentication failure") && !out.contains("235 "),
        "{out}"
    );
}

/// The static check catches the placeholder style of the wrong dialect.
#[test]
fn check_config_refuses_the_wrong_placeholder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("postern.toml");
    std::fs::write(
        &file,
        r#"
[authentication]
directories = ["internal", "mail"]
[directory.mail]
type = "sql"
url = "mysql://root@127.0.0.1:1/mail"
query-login = "SELECT username AS name, password AS secret FROM mailbox WHERE username = $1"
"#,
    )
    .expect("write");
    let out = postern(
        &["check-config", "--config", file.to_str().expect("path")],
        dir.path(),
        None,
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("directory.mail.query-login") && stderr.contains("not $1"),
        "{stderr}"
    );
}

/// The commented `[directory.panel]` example of etc/postern.toml, uncommented, passes
/// `check-config` (so its keys and queries stay valid).
#[test]
fn example_sql_section_is_valid() {
    let example = std::fs::read_to_string(root().join("etc/postern.toml")).expect("example");
    let section: Vec<&str> = example
        .lines()
        .skip_while(|l| *l != "# [directory.panel]")
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# "))
        // Comments inside the example, and url-file (the alternative to url).
        .filter(|l| !l.starts_with('#') && !l.starts_with("url-file"))
        .collect();
    assert!(section.len() >= 8, "example not found: {section:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("postern.toml");
    std::fs::write(
        &file,
        format!(
            "[authentication]\ndirectories = [\"internal\", \"panel\"]\n{}\n",
            section.join("\n")
        ),
    )
    .expect("write");
    let out = postern(
        &["check-config", "--config", file.to_str().expect("path")],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{:?}", text(&out));
}
