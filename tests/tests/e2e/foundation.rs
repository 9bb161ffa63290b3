//! The Foundation issue end to end: provisioning through `postern apply` into a running daemon,
//! logins through `POST /auth/login` with the exact permissions of SPEC §4, sessions, API keys,
//! app passwords, revocation, on SQLite and on a private PostgreSQL.

use std::path::Path;
use std::time::Duration;

use postern_e2e::pg::Postgres;
use postern_e2e::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    root()
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

pub fn config(store_url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
state-dir = "state"

[store]
url = "{store_url}"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"
{extra}
"#
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn apply(d: &Daemon, file: &str) -> std::process::Output {
    postern(
        &["apply", "--config", d.config.to_str().unwrap(), file],
        d.dir.path(),
        None,
    )
}

fn expect(
    d: &Daemon,
    user: &str,
    pw: &str,
    perms: &[&str],
    roles: &[&str],
    groups: &[&str],
) -> Value {
    let r = login(&d.url("/auth/login"), user, pw);
    assert_eq!(r.status, 200, "{user}: {}", r.body);
    let v = r.json();
    let mut want: Vec<String> = perms.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(strings(&v["permissions"]), want, "{user}: permissions");
    assert_eq!(strings(&v["roles"]), roles, "{user}: roles");
    assert_eq!(strings(&v["groups"]), groups, "{user}: groups");
    assert_eq!(v["tokenType"], "Bearer");
    assert_eq!(v["directory"], "internal");
    v
}

fn scenario(store_url: &str) {
    let mut d = Daemon::start(
        &config(store_url, ""),
        &[("POSTERN_ADMIN_PASSWORD", "admin-secret-1")],
    );
    assert!(
        d.banner
            .iter()
            .any(|l| l.contains("POSTERN_ADMIN_PASSWORD")),
        "{:?}",
        d.banner
    );

    let out = apply(&d, &fixture("scenario.toml"));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "apply failed: {stdout} {stderr}");
    assert!(stdout.contains("created role mailer"), "{stdout}");
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret of api-key alice-ci: "))
        .expect("api key secret printed once")
        .to_string();
    let app = stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret of app-password bob-phone: "))
        .expect("app password printed once")
        .to_string();

    // The running daemon sees the change within one second.
    let first = d.login_until(Duration::from_secs(1), "alice", "alice-secret-1", |r| {
        r.status == 200
    });
    assert_eq!(
        first.status, 200,
        "alice not visible within 1 s: {}",
        first.body
    );

    let alice = expect(
        &d,
        "alice",
        "alice-secret-1",
        &[
            "authenticate",
            "email-receive",
            "email-send",
            "imap-authenticate",
            "individual-get",
            "individual-list",
            "sieve-authenticate",
        ],
        &["helpdesk", "mailer", "sender"],
        &["everyone", "staff"],
    );
    assert_eq!(alice["principal"]["name"], "alice");
    assert_eq!(alice["principal"]["type"], "individual");
    assert_eq!(
        strings(&alice["principal"]["emails"]),
        ["alice@example.org"]
    );
    assert_eq!(alice["mechanism"], "password");
    expect(
        &d,
        "bob",
        "bob-secret-1",
        &["authenticate", "email-receive", "sieve-authenticate"],
        &["mailer", "sender"],
        &["quarantine"],
    );
    expect(
        &d,
        "carol",
        "carol-secret-1",
        &["authenticate", "email-send"],
        &[],
        &["everyone", "staff"],
    );
    let dave = expect(
        &d,
        "dave",
        "dave-secret-1",
        &["authenticate", "email-receive", "email-send"],
        &["user"],
        &[],
    );
    assert_eq!(dave["principal"]["tenant"], "acme");
    // Login by email address finds the same account.
    let by_mail = expect(
        &d,
        "dave@acme.example",
        "dave-secret-1",
        &["authenticate", "email-receive", "email-send"],
        &["user"],
        &[],
    );
    assert_eq!(by_mail["principal"]["name"], "dave");
    assert_eq!(by_mail["principal"]["id"], dave["principal"]["id"]);
    expect(
        &d,
        "erin",
        "erin-secret-1",
        &[
            "authenticate",
            "email-receive",
            "email-send",
            "individual-list",
        ],
        &["tenant-admin"],
        &[],
    );
    let grace = login(&d.url("/auth/login"), "grace", "grace-secret-1");
    assert_eq!(grace.status, 200, "{}", grace.body);
    assert_eq!(grace.json()["permissions"].as_array().unwrap().len(), 179);

    // No `authenticate`: refused like a wrong password.
    let frank = login(&d.url("/auth/login"), "frank", "frank-secret-1");
    assert_eq!(frank.status, 401, "{}", frank.body);
    assert_eq!(frank.json()["error"], "invalid_credentials");

    // Unknown user and wrong password are the same answer.
    let unknown = login(&d.url("/auth/login"), "nobody", "whatever-1");
    let wrong = login(&d.url("/auth/login"), "alice", "wrong-password");
    assert_eq!(
        (unknown.status, unknown.body.clone()),
        (wrong.status, wrong.body.clone())
    );
    assert_eq!(unknown.status, 401);

    // The session: readable with its token, then revoked.
    let token = alice["token"].as_str().unwrap().to_string();
    let s = get(&d.url("/auth/session"), Some(&token));
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.json()["permissions"], alice["permissions"]);
    assert_eq!(delete(&d.url("/auth/session"), &token).status, 204);
    assert_eq!(get(&d.url("/auth/session"), Some(&token)).status, 401);
    assert_eq!(delete(&d.url("/auth/session"), &token).status, 401);
    assert_eq!(get(&d.url("/auth/session"), Some("pst_forged")).status, 401);
    assert_eq!(get(&d.url("/auth/session"), None).status, 401);

    // API key: alice's permissions minus email-send, never more.
    let k = get(&d.url("/auth/session"), Some(&key));
    assert_eq!(k.status, 200, "{}", k.body);
    let kv = k.json();
    assert_eq!(kv["mechanism"], "api-key");
    assert!(kv.get("token").is_none(), "an API key is never echoed");
    assert_eq!(
        strings(&kv["permissions"]),
        [
            "authenticate",
            "email-receive",
            "imap-authenticate",
            "individual-get",
            "individual-list",
            "sieve-authenticate"
        ]
    );

    // App password: bob's effective set ∩ {authenticate, imap-authenticate}.
    let b = login(&d.url("/auth/login"), "bob", &app);
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(b.json()["mechanism"], "app-password");
    assert_eq!(strings(&b.json()["permissions"]), ["authenticate"]);

    // Applying the same file again changes nothing.
    let again = apply(&d, &fixture("scenario.toml"));
    let (stdout, stderr) = text(&again);
    assert!(again.status.success(), "{stderr}");
    assert!(stdout.contains("0 created, 0 updated"), "{stdout}");
    assert!(
        !stdout.contains("secret of"),
        "secrets are shown only at creation: {stdout}"
    );

    // explain shows why.
    let cfg = d.config.to_str().unwrap().to_string();
    let out = postern(
        &["explain", "--config", &cfg, "bob", "imap-authenticate"],
        d.dir.path(),
        None,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("account's own list disables imap-authenticate"),
        "{stdout}"
    );
    assert!(
        stdout.contains("group quarantine (mode replace)"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("imap-authenticate is DENIED"),
        "{stdout}"
    );
    let out = postern(
        &["explain", "--config", &cfg, "alice", "email-send"],
        d.dir.path(),
        None,
    );
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("role sender ← mailer (from group everyone) enables email-send"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("email-send is GRANTED"),
        "{stdout}"
    );
    let out = postern(
        &["explain", "--config", &cfg, "alice", "fly-to-the-moon"],
        d.dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1));

    let status = d.stop();
    assert!(status.success(), "SIGTERM must exit 0, got {status:?}");
}

#[test]
fn scenario_on_sqlite() {
    scenario("sqlite://state/postern.db");
}

#[test]
fn scenario_on_postgres() {
    let pg = Postgres::start();
    let url = pg.database("postern");
    scenario(&url);
}

#[test]
fn refused_provisioning_writes_nothing() {
    let d = Daemon::start(&config("sqlite://state/postern.db", ""), &[]);
    let dir = d.dir.path();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[[role]]
id = "ok-role"
enabledPermissions = ["authenticate"]

[[role]]
id = "broken"
enabledPermissions = ["authenticate", "fly-to-the-moon"]

[[account]]
name = "zed"
password = "zed-secret-1"
roles = ["ghost-role"]
memberOf = ["no-such-group"]
tenant = "nowhere"
"#,
    )
    .unwrap();
    let out = apply(&d, bad.to_str().unwrap());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "role \"broken\": unknown permission \"fly-to-the-moon\"",
        "account \"zed\": role \"ghost-role\" does not exist",
        "account \"zed\": group \"no-such-group\" does not exist",
        "account \"zed\": tenant \"nowhere\" does not exist",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
    // Nothing was written: not even the valid role.
    std::thread::sleep(Duration::from_millis(1200));
    let out = postern(
        &["explain", "--config", d.config.to_str().unwrap(), "zed"],
        dir,
        None,
    );
    assert_eq!(out.status.code(), Some(1));

    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "[[account]]\nname = \"x\"\npasword = \"y\"\n").unwrap();
    let out = apply(&d, typo.to_str().unwrap());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("pasword") && stderr.contains("typo.toml"),
        "{stderr}"
    );
}

#[test]
fn bad_input_is_answered_and_changes_nothing() {
    let d = Daemon::start(
        &config("sqlite://state/postern.db", ""),
        &[("POSTERN_ADMIN_PASSWORD", "admin-secret-1")],
    );
    let url = d.url("/auth/login");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "malformed JSON",
            b"{\"username\": \"admin\", ".to_vec(),
            400,
        ),
        ("not an object", b"[1,2,3]".to_vec(), 400),
        (
            "unknown field",
            br#"{"username":"admin","password":"x","admin":true}"#.to_vec(),
            400,
        ),
        (
            "NUL in user name",
            br#"{"username":"ad\u0000min","password":"admin-secret-1"}"#.to_vec(),
            400,
        ),
        (
            "empty password",
            br#"{"username":"admin","password":""}"#.to_vec(),
            400,
        ),
        (
            "invalid UTF-8",
            b"{\"username\":\"adm\xff\xfein\",\"password\":\"x\"}".to_vec(),
            400,
        ),
        (
            "over 64 KiB",
            format!(
                "{{\"username\":\"{}\",\"password\":\"x\"}}",
                "a".repeat(70_000)
            )
            .into_bytes(),
            413,
        ),
    ];
    for (what, body, status) in cases {
        let r = post_raw(&url, "application/json", &body);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        let v = r.json();
        assert!(
            v["error"].is_string() && v["message"].is_string(),
            "{what}: {}",
            r.body
        );
    }
    let long = serde_json::json!({"username": "u".repeat(10_000), "password": "x"}).to_string();
    let r = post_raw(&url, "application/json", long.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_request");
    // Still up, and the admin can still log in.
    assert_eq!(get(&d.url("/healthz"), None).status, 200);
    assert_eq!(login(&url, "admin", "admin-secret-1").status, 200);
    assert_eq!(get(&d.url("/no/such/thing"), None).status, 404);
}

#[test]
fn failed_logins_are_throttled_with_retry_after() {
    let extra = "\n[authentication]\nmax-failures-per-account = 3\n";
    let d = Daemon::start(
        &config("sqlite://state/postern.db", extra),
        &[("POSTERN_ADMIN_PASSWORD", "admin-secret-1")],
    );
    let url = d.url("/auth/login");
    for _ in 0..3 {
        assert_eq!(login(&url, "admin", "wrong-1").status, 401);
    }
    let r = login(&url, "admin", "admin-secret-1");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"], "too_many_attempts");
    let wait: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "{wait}");
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(metrics.contains(r#"outcome="rate_limited""#), "{metrics}");
}

/// An unknown user costs a verification of the directory's own kind of hash (here the
/// SHA-512-crypt its accounts hold), not the argon2id dummy, so it cannot be told by timing.
#[test]
fn an_unknown_user_costs_what_the_directorys_hashes_cost() {
    let d = Daemon::start(
        &config("sqlite://state/postern.db", ""),
        &[("POSTERN_ADMIN_PASSWORD", "admin-secret-1")],
    );
    // `doveadm pw -s SHA512-CRYPT -p secret`.
    d.apply(
        r#"
[[account]]
name = "carol"
secret = "{SHA512-CRYPT}$6$Gvdhm3.yB5B.XPjt$8hADQ2aqJ46k7/AoTqpN4L6V9qITCGhaGHa1y6u/4ZnPslTc3YcLpTTAcCs.GY4p1JfbFQEqGeIijefG0iXLO1"
roles = "user"
"#,
    );
    let url = d.url("/auth/login");
    let r = login(&url, "carol", "secret");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(login(&url, "nobody-here", "secret").status, 401);
    assert_eq!(login(&url, "carol", "wrong").status, 401);
    assert_eq!(login(&url, "nobody-else", "secret").status, 401);
    let metrics = get(&d.url("/metrics"), None).body;
    let count = |scheme: &str| -> u64 {
        let prefix = format!("postern_password_hash_verifications_total{{scheme=\"{scheme}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0, |v| v.parse().unwrap())
    };
    // carol's two logins and both unknown users: all SHA-512-crypt.
    assert_eq!(count("sha512-crypt"), 4, "{metrics}");
    assert_eq!(count("argon2"), 0, "{metrics}");
}

#[test]
fn sessions_expire() {
    let extra = "\n[session]\nttl = \"1s\"\n";
    let d = Daemon::start(
        &config("sqlite://state/postern.db", extra),
        &[("POSTERN_ADMIN_PASSWORD", "admin-secret-1")],
    );
    let r = login(&d.url("/auth/login"), "admin", "admin-secret-1");
    assert_eq!(r.status, 200);
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(get(&d.url("/auth/session"), Some(&token)).status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(get(&d.url("/auth/session"), Some(&token)).status, 401);
}

#[test]
fn metrics_pass_promtool() {
    let d = Daemon::start(
        &config("sqlite://state/postern.db", ""),
        &[("POSTERN_ADMIN_PASSWORD", "admin-secret-1")],
    );
    assert_eq!(
        login(&d.url("/auth/login"), "admin", "admin-secret-1").status,
        200
    );
    assert_eq!(login(&d.url("/auth/login"), "admin", "nope").status, 401);
    let ready = get(&d.url("/readyz"), None);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["directories"]["internal"], "ok");
    let text = get(&d.url("/metrics"), None).body;
    for series in [
        r#"postern_auth_requests_total{directory="internal",frontend="http",mechanism="password",outcome="success"} 1"#,
        r#"postern_auth_requests_total{directory="internal",frontend="http",mechanism="password",outcome="failure"} 1"#,
        r#"postern_sessions_issued_total{kind="password"} 1"#,
        r#"postern_password_hash_verifications_total{scheme="argon2"}"#,
        r#"postern_directory_requests_total{directory="internal",outcome="found"} 1"#,
        r#"postern_connections_active{listener="http"}"#,
        "postern_build_info{version=",
        "postern_sessions_active",
        "postern_auth_duration_seconds_bucket",
        "postern_directory_duration_seconds_bucket",
    ] {
        assert!(text.contains(series), "missing {series}\n{text}");
    }
    assert!(!text.contains("admin-secret-1") && !text.contains("\"admin\""));
    let file = d.dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("promtool missing: scripts/test.sh installs Debian's prometheus package");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{promtool} check metrics < {}", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The logs of the whole run never contain a password.
    let logs = d.logs();
    assert!(logs.contains("authentication"), "{logs}");
    assert!(
        !logs.contains("admin-secret-1") && !logs.contains("nope"),
        "{logs}"
    );
}
