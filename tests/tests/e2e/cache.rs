//! What daemons keep in memory (the record cache, the verification cache) stays right across
//! daemons sharing one PostgreSQL store: a logout under load, a new password, a disabled
//! account and a new role are in force on every daemon at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postern_e2e::pg::Postgres;
use postern_e2e::*;

const PW: &str = "Cache-alice-pw-4e2a";
const NEW_PW: &str = "Cache-alice-new-pw-81c0";

fn config(url: &str, extra: &str) -> String {
    format!(
        r#"
[server]
state-dir = "state"

[store]
url = "{url}"
timeout = "1s"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"

{extra}
"#
    )
}

fn alice(password: &str, roles: &str, permissions: &str) -> String {
    format!(
        r#"
[[account]]
name = "alice"
password = "{password}"
roles = "{roles}"
permissions = {permissions}
"#
    )
}

const INHERIT: &str = r#"{ mode = "inherit" }"#;

/// The value of one series in `/metrics` (0 when absent).
fn metric(d: &Daemon, series: &str) -> u64 {
    metric_at(&d.url("/metrics"), series)
}

#[test]
fn a_logout_under_load_is_refused_by_every_daemon_at_once() {
    let pg = Postgres::start();
    let url = pg.database("postern");
    let a = Daemon::start(&config(&url, ""), &[]);
    let b = Daemon::start(&config(&url, ""), &[]);
    a.apply(&alice(PW, "user", INHERIT));
    let session = b.login_until(Duration::from_secs(5), "alice", PW, |r| r.status == 200);
    assert_eq!(session.status, 200, "{}", session.body);
    let token = session.json()["token"].as_str().expect("token").to_string();

    // Four clients read the session as fast as they can, two on each daemon; each records
    // when it saw what.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(usize, Instant, u16)>>> = Arc::default();
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let url = if i % 2 == 0 { &a } else { &b }.url("/auth/session");
            let (stop, seen, token) = (stop.clone(), seen.clone(), token.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let status = get(&url, Some(&token)).status;
                    seen.lock().unwrap().push((i, Instant::now(), status));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let hits_before = metric(
        &b,
        r#"postern_store_cache_requests_total{record="session-view",result="hit"}"#,
    );
    assert!(hits_before > 0, "B answered the load from memory");

    let out = delete(&a.url("/auth/session"), &token);
    let revoked = Instant::now();
    assert_eq!(out.status, 204, "{}", out.body);
    // The daemon that revoked it refuses it on the very next request.
    assert_eq!(get(&a.url("/auth/session"), Some(&token)).status, 401);
    let on_b = within(Duration::from_secs(1), "logout on A seen by B", || {
        get(&b.url("/auth/session"), Some(&token)).status == 401
    });
    eprintln!("logout on A seen by B under load after {on_b:?}");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    for i in 0..4 {
        let mine: Vec<_> = seen.iter().filter(|(c, ..)| *c == i).collect();
        assert!(
            mine.iter().any(|(.., s)| *s == 200),
            "client {i} never saw the session"
        );
        // Once refused, never accepted again; and refused within a second of the logout.
        let first_refusal = mine
            .iter()
            .position(|(.., s)| *s == 401)
            .unwrap_or_else(|| panic!("client {i} never saw the logout"));
        assert!(
            mine[first_refusal..].iter().all(|(.., s)| *s == 401),
            "client {i} saw the session again after it was refused"
        );
        assert!(
            mine.iter()
                .filter(|(_, t, s)| *s == 200 && *t > revoked + Duration::from_secs(1))
                .count()
                == 0,
            "client {i} was answered from a stale copy a second after the logout"
        );
        for (_, _, s) in &mine {
            assert!(*s == 200 || *s == 401, "client {i}: status {s}");
        }
    }
}

#[test]
fn the_verification_cache_never_outlives_a_change_on_any_daemon() {
    let pg = Postgres::start();
    let url = pg.database("postern");
    let cached = "[authentication]\ncache-size = 1000\n";
    let a = Daemon::start(&config(&url, cached), &[]);
    let b = Daemon::start(&config(&url, cached), &[]);
    a.apply(&alice(PW, "user", INHERIT));
    for d in [&a, &b] {
        let r = d.login_until(Duration::from_secs(5), "alice", PW, |r| r.status == 200);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(login(&d.url("/auth/login"), "alice", PW).status, 200);
        assert!(
            metric(
                d,
                r#"postern_verification_cache_requests_total{result="hit"}"#
            ) > 0,
            "the second login skipped the hash"
        );
    }

    // A new password (applied by the CLI, through neither daemon): the old one is refused
    // and the new one accepted on both.
    let cli = tempfile::tempdir().expect("tempdir");
    let cli_config = cli.path().join("postern.toml");
    std::fs::write(&cli_config, config(&url, "")).expect("config");
    apply_provisioning(&cli_config, cli.path(), &alice(NEW_PW, "user", INHERIT));
    for d in [&a, &b] {
        within(Duration::from_secs(1), "new password in force", || {
            login(&d.url("/auth/login"), "alice", PW).status == 401
        });
        assert_eq!(login(&d.url("/auth/login"), "alice", NEW_PW).status, 200);
    }

    // A new role: both daemons' next logins carry its permissions.
    apply_provisioning(&cli_config, cli.path(), &alice(NEW_PW, "admin", INHERIT));
    for d in [&a, &b] {
        within(Duration::from_secs(1), "new role in force", || {
            let r = login(&d.url("/auth/login"), "alice", NEW_PW);
            r.status == 200
                && strings(&r.json()["permissions"])
                    .iter()
                    .any(|p| p == "principal-list")
        });
    }

    // Disabled (authenticate taken away): refused on both, although the password is right
    // and its verification was cached.
    apply_provisioning(
        &cli_config,
        cli.path(),
        &alice(
            NEW_PW,
            "admin",
            r#"{ mode = "merge", disabled = ["authenticate"] }"#,
        ),
    );
    for d in [&a, &b] {
        within(Duration::from_secs(1), "disabled account refused", || {
            login(&d.url("/auth/login"), "alice", NEW_PW).status == 401
        });
    }
}

/// A role changed through daemon A's management API: daemon B, which only hears of it from
/// PostgreSQL, refuses (and then accepts again) within 150 ms of A's answer, six times in a
/// row. The generation poll (every 500 ms) would make each wait up to 500 ms, and six in a row
/// within 150 ms by chance alone about once in a thousand runs: the pushed change does it
/// every time. (Not the very first try: B's listener may not have read the notification
/// when a request sent a millisecond after A's answer arrives, on a loaded machine.)
#[test]
fn a_role_change_on_one_daemon_is_in_force_on_the_others_at_once() {
    let pg = Postgres::start();
    let url = pg.database("postern");
    let cached = "[authentication]\ncache-size = 1000\n";
    let a = Daemon::start(&config(&url, cached), &[]);
    let b = Daemon::start(&config(&url, cached), &[]);
    a.apply(&format!(
        "[[role]]\nid = \"mailer\"\nroleIds = [\"user\"]\n\n[[account]]\nname = \"root\"\npassword = \"{NEW_PW}\"\nroles = \"admin\"\n\n[[account]]\nname = \"alice\"\npassword = \"{PW}\"\nroles = [\"mailer\"]\n"
    ));
    let r = b.login_until(Duration::from_secs(5), "alice", PW, |r| r.status == 200);
    assert_eq!(r.status, 200, "{}", r.body);
    let root = a.login_until(Duration::from_secs(5), "root", NEW_PW, |r| r.status == 200);
    let token = root.json()["token"].as_str().expect("token").to_string();
    let set_role = |disabled: &[&str]| {
        let r = ureq::request("PATCH", &a.url("/api/v1/roles/mailer"))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(&serde_json::json!({ "disabledPermissions": disabled }).to_string())
            .expect("PATCH role");
        assert_eq!(r.status(), 200);
    };
    for round in 0..3 {
        assert_eq!(login(&b.url("/auth/login"), "alice", PW).status, 200);
        set_role(&["authenticate"]);
        let took = within(
            Duration::from_millis(150),
            "authenticate taken away on B",
            || login(&b.url("/auth/login"), "alice", PW).status == 401,
        );
        set_role(&[]);
        let gave = within(
            Duration::from_millis(150),
            "authenticate given back on B",
            || login(&b.url("/auth/login"), "alice", PW).status == 200,
        );
        eprintln!("round {round}: role change on A in force on B after {took:?}, {gave:?}");
    }
}
