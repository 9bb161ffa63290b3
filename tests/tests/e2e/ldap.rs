//! The LDAP directory end to end: users of a private slapd (tests/src/slapd.rs) log in through
//! `POST /auth/login` in both auth methods and through Postfix SASL, get roles from their LDAP
//! groups (provisioned with `postern apply`), and an outage is a temporary failure (HTTP 503,
//! SMTP 454) that ends by itself when slapd returns.

use std::time::Duration;

use postern_e2e::mail::DovecotClient;
use postern_e2e::postfix::Postfix;
use postern_e2e::slapd::{self, Slapd};
use postern_e2e::*;

/// How long a login is retried (the daemon sees provisioning within a second).
const LOGIN_WITHIN: Duration = Duration::from_secs(10);

fn daemon(s: &Slapd, method: &str) -> Daemon {
    let (dn, pw) = if method == "lookup" {
        (slapd::READER_DN, slapd::READER_PW)
    } else {
        (slapd::SERVICE_DN, slapd::SERVICE_PW)
    };
    let config = format!(
        r#"
[server]
state-dir = "state"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"

[[listener]]
protocol = "dovecot-auth"
bind = "127.0.0.1:{dovecot_port}"

[authentication]
directories = ["internal", "ldap"]

[directory.ldap]
type = "ldap"
url = ["ldap://127.0.0.1:{dead_port}", "{url}"]
starttls = true
ca-file = "{ca}"
base-dn = "{base}"
bind-dn = "{dn}"
bind-password-file = "ldap-password"
auth-method = "{method}"
user-filter = "{filter}"
timeout = "2s"
"#,
        dovecot_port = free_port(),
        dead_port = free_port(),
        url = s.url(),
        ca = s.ca_file().display(),
        base = slapd::BASE_DN,
        filter = slapd::USER_FILTER,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ldap-password"), format!("{pw}\n")).expect("password file");
    let d = Daemon::start_in(dir, &config, &[]);
    let provision = root().join("tests/fixtures/ldap/provision.toml");
    d.apply(&std::fs::read_to_string(provision).expect("ldap provision.toml"));
    d
}

fn is_admin(r: &Reply) -> bool {
    r.status == 200 && strings(&r.json()["roles"]).contains(&"admin".to_string())
}

#[test]
fn http_login_in_both_modes_with_roles_from_ldap_groups() {
    let s = Slapd::start();
    for method in ["bind", "lookup"] {
        let d = daemon(&s, method);
        let r = d.login_until(LOGIN_WITHIN, "alice", "ssha-pw", is_admin);
        assert!(
            is_admin(&r),
            "{method}: {} {}\n{}",
            r.status,
            r.body,
            d.logs()
        );
        let v = r.json();
        assert_eq!(v["directory"], "ldap", "{v}");
        assert_eq!(v["principal"]["name"], "alice", "{v}");
        assert!(strings(&v["groups"]).contains(&"admins".to_string()), "{v}");
        let emails = strings(&v["principal"]["emails"]);
        assert!(emails.contains(&"alice@example.org".to_string()), "{v}");
        // The session works like any other.
        let token = v["token"].as_str().expect("token");
        assert_eq!(get(&d.url("/auth/session"), Some(token)).status, 200);

        // Another scheme, no LDAP group: the default user role only.
        let (other, other_pw) = if method == "bind" {
            ("carl", "crypt6-pw")
        } else {
            ("ari", "argon2-pw")
        };
        let r = login(&d.url("/auth/login"), other, other_pw);
        assert_eq!(r.status, 200, "{method}: {}", r.body);
        let roles = strings(&r.json()["roles"]);
        assert!(!roles.contains(&"admin".to_string()), "{roles:?}");

        for (user, pw) in [
            ("alice", "wrong"),
            ("nobody", "ssha-pw"),
            ("dana", "dana-pw"),
            ("*", "ssha-pw"),
            ("*)(uid=*", "ssha-pw"),
            ("al*", "ssha-pw"),
            ("alice\\", "ssha-pw"),
            ("alice\u{0}", "ssha-pw"),
        ] {
            let r = login(&d.url("/auth/login"), user, pw);
            assert!(
                r.status == 401 || r.status == 400,
                "{method} {user:?}: {} {}",
                r.status,
                r.body
            );
        }
        // Removed from LDAP: no login, although Postern recorded the principal at its first.
        s.delete(&format!("uid={other},ou=people,dc=example,dc=org"));
        let r = login(&d.url("/auth/login"), other, other_pw);
        assert_eq!(r.status, 401, "{method}: deleted {other}: {}", r.body);
        let long = "x".repeat(10_000);
        let r = login(&d.url("/auth/login"), &long, "ssha-pw");
        assert!(
            r.status == 401 || r.status == 400,
            "{} {}",
            r.status,
            r.body
        );
        // An entry without the name attribute: nothing granted, and no wrong-password answer
        // either (it is the directory's fault).
        let r = login(&d.url("/auth/login"), "nameless@example.org", "nameless-pw");
        assert_ne!(r.status, 200, "{}", r.body);
        assert!(!d.logs().contains("ssha-pw"), "a password reached the log");
    }
}

#[test]
fn ldap_outage_is_503_and_logins_resume_when_it_returns() {
    let mut s = Slapd::start();
    let d = daemon(&s, "bind");
    let r = d.login_until(LOGIN_WITHIN, "alice", "ssha-pw", |r| r.status == 200);
    assert_eq!(r.status, 200, "{}", r.body);
    s.stop();
    for (user, pw) in [("alice", "ssha-pw"), ("alice", "wrong"), ("nobody", "x")] {
        let r = login(&d.url("/auth/login"), user, pw);
        assert_eq!(r.status, 503, "{user}/{pw}: {}", r.body);
        assert_eq!(r.json()["error"], "temporarily_unavailable", "{}", r.body);
    }
    let ready = get(&d.url("/readyz"), None);
    assert_ne!(ready.status, 200, "readyz with slapd down: {}", ready.body);
    s.restart();
    let r = d.login_until(LOGIN_WITHIN, "alice", "ssha-pw", |r| r.status == 200);
    assert_eq!(r.status, 200, "after restart: {}\n{}", r.body, d.logs());
    assert_eq!(
        login(&d.url("/auth/login"), "alice", "wrong").status,
        401,
        "a wrong password is a wrong password again"
    );
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("ldap") && !l.starts_with('#')),
        "no per-directory metric for ldap:\n{metrics}"
    );
}

fn smtp(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn postfix_sasl_with_ldap_users_and_a_temporary_failure() {
    let mut s = Slapd::start();
    let d = daemon(&s, "lookup");
    let postfix = Postfix::start(&format!("inet:{}", d.addr("dovecot-auth")));
    // The admins group comes from provisioning; wait until the daemon has it.
    let r = d.login_until(LOGIN_WITHIN, "alice", "ssha-pw", is_admin);
    assert!(is_admin(&r), "{}", r.body);
    for (mechanism, user, pw) in [("PLAIN", "alice", "ssha-pw"), ("LOGIN", "ari", "argon2-pw")] {
        let ok = postfix.swaks(mechanism, user, pw);
        let out = smtp(&ok);
        assert!(
            out.contains("235 2.7.0 Authentication successful"),
            "{mechanism} {user}:\n{out}\n{}\n{}",
            postfix.maillog(),
            d.logs()
        );
    }
    let bad = smtp(&postfix.swaks("PLAIN", "alice", "wrong"));
    assert!(bad.contains("535 5.7.8") && !bad.contains("235 "), "{bad}");
    assert!(
        !bad.contains("Temporary"),
        "a wrong password is not an outage:\n{bad}"
    );
    s.stop();
    // The dovecot-auth answer itself: FAIL with the temp flag.
    let mut c = DovecotClient::connect(&d.addr("dovecot-auth"));
    let resp = sasl_plain("alice", "ssha-pw");
    c.send(&format!(
        "AUTH\t1\tPLAIN\tservice=smtp\trip=127.0.0.1\tresp={resp}\n"
    ));
    let fail = c.line().unwrap_or_default();
    assert!(
        fail.starts_with("FAIL\t1\t") && fail.split('\t').any(|f| f == "temp"),
        "{fail:?}"
    );
    // Postfix 3.7 answers a dovecot `FAIL … temp` with 535 carrying the temporary reason; what
    // matters is that it is neither a success nor the wrong-password answer.
    let down = smtp(&postfix.swaks("PLAIN", "alice", "ssha-pw"));
    assert!(
        down.contains("Temporary authentication failure") && !down.contains("235 "),
        "an outage must be a temporary failure:\n{down}\n{}",
        postfix.maillog()
    );
    s.restart();
    let again = smtp(&postfix.swaks("PLAIN", "alice", "ssha-pw"));
    assert!(again.contains("235 2.7.0"), "after restart:\n{again}");
    assert!(postfix.maillog_has("sasl_username=alice"));
}

#[test]
fn check_config_names_every_ldap_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("postern.toml");
    std::fs::write(
        &config,
        r#"
[[listener]]
protocol = "http"
bind = "127.0.0.1:0"

[authentication]
directories = ["internal", "corp"]

[directory.corp]
type = "ldap"
url = ["ldap://", "http://x"]
base-dn = "dc=x"
bind-dn = "cn=s"
user-filter = "(uid={user}"
group-filter = "(member=x)"
ca-file = "/nonexistent/ca.pem"
group-depth = 99
"#,
    )
    .expect("write");
    let out = postern(
        &["check-config", "--config", config.to_str().expect("utf-8")],
        dir.path(),
        None,
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for key in [
        "directory.corp.url: \"ldap://\" names no host",
        "directory.corp.url: \"http://x\" is not an ldap://",
        "directory.corp.user-filter: is not a valid LDAP filter",
        "directory.corp.group-filter: must contain the {dn} placeholder",
        "directory.corp.bind-password: ",
        "directory.corp.group-depth: ",
        "directory.corp.ca-file: cannot read /nonexistent/ca.pem",
    ] {
        assert!(err.contains(key), "missing {key:?} in:\n{err}");
    }
}
