//! The failed-login throttle seen from outside (issue 15): an attacker's failures lock the
//! attacking address, not the owner; `postern status` lists locks and `postern unlock` lifts
//! them on a running daemon.

use std::time::Duration;

use postern_e2e::{get, postern, text, within, Daemon, Reply};

const ADMIN_PW: &str = "admin-secret-1";

/// Client addresses come from X-Forwarded-For, believed from the test's loopback. The HTTP
/// port is fixed in the config, so `postern status` finds the running daemon through it.
fn start() -> Daemon {
    let port = postern_e2e::free_port();
    let config = format!(
        r#"
[server]
state-dir = "state"
trusted-proxies = ["127.0.0.1/32"]

[store]
url = "sqlite://state/postern.db"

[[listener]]
protocol = "http"
bind = "127.0.0.1:{port}"

[authentication]
max-failures-per-account = 3
"#
    );
    Daemon::start(&config, &[("POSTERN_ADMIN_PASSWORD", ADMIN_PW)])
}

fn login_from(d: &Daemon, ip: &str, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let r = ureq::post(&d.url("/auth/login"))
        .timeout(Duration::from_secs(30))
        .set("Content-Type", "application/json")
        .set("X-Forwarded-For", ip)
        .send_string(&body);
    let (status, body) = match r {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
        Err(e) => panic!("HTTP request failed: {e}"),
    };
    Reply {
        status,
        headers: Vec::new(),
        body,
    }
}

fn cli(d: &Daemon, args: &[&str]) -> (String, String) {
    let config = d.config.to_str().expect("utf-8 path");
    let mut all = vec![args[0], "--config", config];
    all.extend(&args[1..]);
    let out = postern(&all, d.dir.path(), None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "postern {args:?}: {stdout}{stderr}");
    (stdout, stderr)
}

#[test]
fn a_third_party_locks_its_own_address_not_the_owner() {
    let d = start();
    // The owner logs in from home: a known-good address for the account from now on.
    assert_eq!(login_from(&d, "192.0.2.10", "admin", ADMIN_PW).status, 200);
    for _ in 0..3 {
        assert_eq!(login_from(&d, "203.0.113.9", "admin", "guess").status, 401);
    }
    // The attacker's address is locked for the account, in any case of the name…
    for user in ["admin", "ADMIN"] {
        let r = login_from(&d, "203.0.113.9", user, ADMIN_PW);
        assert_eq!(r.status, 429, "{}", r.body);
    }
    // …the owner is not, at home or from an address that never failed.
    assert_eq!(login_from(&d, "192.0.2.10", "admin", ADMIN_PW).status, 200);
    assert_eq!(
        login_from(&d, "198.51.100.77", "admin", ADMIN_PW).status,
        200
    );
    // Still locked: the owner's successes do not reset the attacker's count.
    assert_eq!(login_from(&d, "203.0.113.9", "admin", ADMIN_PW).status, 429);
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(
        metrics.contains(r#"postern_throttle_locks_total{kind="account-address"} 1"#),
        "{metrics}"
    );
    let logs = d.logs();
    assert!(
        logs.contains("address block locked for this account") && !logs.contains(ADMIN_PW),
        "{logs}"
    );
}

#[test]
fn status_lists_locks_and_unlock_lifts_them_on_a_running_daemon() {
    let d = start();
    let (out, _) = cli(&d, &["status"]);
    assert!(out.contains("nothing is locked"), "{out}");
    for _ in 0..3 {
        assert_eq!(login_from(&d, "203.0.113.9", "admin", "guess").status, 401);
    }
    assert_eq!(login_from(&d, "203.0.113.9", "admin", ADMIN_PW).status, 429);
    // The daemon reports its counts to the store every half second.
    within(
        Duration::from_secs(3),
        "the lock in `postern status`",
        || {
            let (out, _) = cli(&d, &["status"]);
            out.contains("203.0.113.9") && out.contains("\"admin\"")
        },
    );
    let (out, _) = cli(&d, &["unlock", "203.0.113.9"]);
    assert!(out.contains("unlocked"), "{out}");
    within(
        Duration::from_secs(3),
        "the unlock seen by the daemon",
        || login_from(&d, "203.0.113.9", "admin", ADMIN_PW).status == 200,
    );
    // By account name, in any case; an unknown target changes nothing and says so.
    for _ in 0..3 {
        assert_eq!(login_from(&d, "203.0.113.10", "admin", "guess").status, 401);
    }
    assert_eq!(
        login_from(&d, "203.0.113.10", "admin", ADMIN_PW).status,
        429
    );
    within(Duration::from_secs(3), "the lock in the store", || {
        cli(&d, &["status"]).0.contains("203.0.113.10")
    });
    let (out, _) = cli(&d, &["unlock", "nobody"]);
    assert!(out.contains("nothing to unlock"), "{out}");
    let (out, _) = cli(&d, &["unlock", "ADMIN"]);
    assert!(out.contains("unlocked"), "{out}");
    within(
        Duration::from_secs(3),
        "the unlock seen by the daemon",
        || login_from(&d, "203.0.113.10", "admin", ADMIN_PW).status == 200,
    );
    let (out, _) = cli(&d, &["status"]);
    assert!(out.contains("nothing is locked"), "{out}");
}
