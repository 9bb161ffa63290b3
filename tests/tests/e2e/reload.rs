//! SIGHUP: an invalid configuration is refused and the running one stays; a valid one adds and
//! removes listeners while the unchanged ones keep their connections.

use std::net::TcpStream;

use postern_e2e::mail::{self, DovecotClient};
use postern_e2e::tls::{provision, sighup};
use postern_e2e::*;

const PROVISION: &str = r#"
[[account]]
name = "alice"
password = "Alice-reload-pw"
roles = "user"
"#;

fn auth(c: &mut DovecotClient, id: u32) -> String {
    let resp = sasl_plain("alice", "Alice-reload-pw");
    c.send(&format!(
        "AUTH\t{id}\tPLAIN\tservice=imap\trip=127.0.0.1\tresp={resp}\n"
    ));
    c.line().expect("an answer to AUTH")
}

fn config(http: u16, dovecot: &[u16], extra: &str) -> String {
    let mut c = format!(
        "[server]\nstate-dir = \"state\"\n{extra}\n[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:{http}\"\n"
    );
    for port in dovecot {
        c.push_str(&format!(
            "\n[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"127.0.0.1:{port}\"\n"
        ));
    }
    c
}

#[test]
fn sighup_with_a_broken_configuration_keeps_the_running_one() {
    let (http, dovecot) = (free_port(), free_port());
    let d = Daemon::start(&config(http, &[dovecot], ""), &[]);
    provision(&d, PROVISION);
    let mut established = DovecotClient::connect(&format!("127.0.0.1:{dovecot}"));
    assert_eq!(auth(&mut established, 1), "OK\t1\tuser=alice");

    // An unknown key and a listener on a bad address: both named, nothing applied.
    std::fs::write(
        &d.config,
        config(http, &[dovecot], "colour = \"blue\"")
            + "\n[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"nowhere\"\n",
    )
    .unwrap();
    let logs = sighup(&d);
    assert!(
        logs.contains("configuration reload refused") && logs.contains("colour"),
        "{logs}"
    );
    assert!(
        logs.contains("the running configuration stays in force"),
        "{logs}"
    );
    assert!(!logs.contains("configuration reloaded"), "{logs}");
    let r = get(&format!("http://127.0.0.1:{http}/readyz"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(auth(&mut established, 2), "OK\t2\tuser=alice");

    // Valid again, with a setting only a restart applies: reloaded, and the key named.
    std::fs::write(
        &d.config,
        config(http, &[dovecot], "") + "\n[session]\nttl = \"1h\"\n",
    )
    .unwrap();
    let logs = sighup(&d);
    assert!(logs.contains("configuration reloaded"), "{logs}");
    assert!(
        logs.contains("only after a restart") && logs.contains("session"),
        "{logs}"
    );
    assert_eq!(auth(&mut established, 3), "OK\t3\tuser=alice");
}

/// http, saslauthd and dovecot-auth listeners; `idle` and `mode` change in place on reload.
fn listeners(http: u16, idle: &str, sock: &std::path::Path, mode: &str, dovecot: &[u16]) -> String {
    let mut c = format!(
        r#"
[server]
state-dir = "state"

[[listener]]
protocol = "http"
bind = "127.0.0.1:{http}"
idle-timeout = "{idle}"

[[listener]]
protocol = "saslauthd"
bind = "unix:{sock}"
mode = "{mode}"
"#,
        sock = sock.display()
    );
    for port in dovecot {
        c.push_str(&format!(
            "\n[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"127.0.0.1:{port}\"\n"
        ));
    }
    c
}

#[test]
fn sighup_adds_and_removes_listeners_and_keeps_the_unchanged_ones() {
    let (http, kept, removed, added) = (free_port(), free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("saslauthd.sock");
    let d = Daemon::start_in(
        dir,
        &listeners(http, "300s", &sock, "0600", &[kept, removed]),
        &[],
    );
    provision(&d, PROVISION);
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    assert_eq!(mode(&sock), 0o600);
    let mut established = DovecotClient::connect(&format!("127.0.0.1:{kept}"));
    assert_eq!(auth(&mut established, 1), "OK\t1\tuser=alice");
    let _on_removed = DovecotClient::connect(&format!("127.0.0.1:{removed}"));
    assert!(TcpStream::connect(("127.0.0.1", added)).is_err());

    // dovecot-auth: one kept, one removed, one added; http and saslauthd changed in place
    // (bound again at the same address).
    std::fs::write(
        &d.config,
        listeners(http, "60s", &sock, "0666", &[kept, added]),
    )
    .unwrap();
    let logs = sighup(&d);
    assert!(logs.contains("configuration reloaded"), "{logs}");

    // The new port answers, the removed one refuses.
    let mut fresh = DovecotClient::connect(&format!("127.0.0.1:{added}"));
    assert_eq!(auth(&mut fresh, 1), "OK\t1\tuser=alice");
    let refused = TcpStream::connect(("127.0.0.1", removed));
    assert!(refused.is_err(), "removed listener still accepts");
    // The connection on the unchanged listener survived the reload.
    assert_eq!(auth(&mut established, 2), "OK\t2\tuser=alice");
    let mut again = DovecotClient::connect(&format!("127.0.0.1:{kept}"));
    assert_eq!(auth(&mut again, 1), "OK\t1\tuser=alice");
    // The changed listeners answer at their old addresses; the saslauthd socket file is the
    // new one (not removed when its old listener closed).
    let r = get(&format!("http://127.0.0.1:{http}/readyz"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(mode(&sock), 0o666);
    let ok = mail::testsaslauthd(&sock, "alice", "Alice-reload-pw", "imap");
    assert!(ok.contains("OK"), "{ok}\n{}", d.logs());
}
