//! SIGHUP: an invalid configuration is refused and the running one stays; a valid one adds and
//! removes listeners while the unchanged ones keep their connections, and puts new HTTP
//! settings in force on the running HTTP listener.

use std::io::{BufRead, BufReader, Write};
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

/// `GET /auth/nginx` for alice over an open HTTP/1.1 connection (kept alive between calls);
/// the `Auth-*` reply headers, lower-cased.
fn nginx_auth(conn: &mut BufReader<TcpStream>) -> Vec<(String, String)> {
    let request = "GET /auth/nginx HTTP/1.1\r\nHost: postern\r\nAuth-Method: plain\r\n\
                   Auth-User: alice\r\nAuth-Pass: Alice-reload-pw\r\nAuth-Protocol: imap\r\n\
                   Auth-Login-Attempt: 1\r\nClient-IP: 192.0.2.10\r\n\r\n";
    conn.get_mut().write_all(request.as_bytes()).unwrap();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        assert!(conn.read_line(&mut line).unwrap() > 0, "connection closed");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "content-length" {
                length = value.parse().unwrap();
            }
            headers.push((name, value));
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(conn, &mut body).unwrap();
    headers
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn sighup_puts_new_auth_http_backends_in_force_on_the_running_listener() {
    let http = free_port();
    let backends = |port: u16| {
        format!("\n[auth-http]\nrequire-shared-secret = false\nbackends = {{ imap = \"127.0.0.1:{port}\" }}\n")
    };
    let d = Daemon::start(&(config(http, &[], "") + &backends(1143)), &[]);
    provision(&d, PROVISION);
    let stream = TcpStream::connect(("127.0.0.1", http)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut conn = BufReader::new(stream);
    let before = nginx_auth(&mut conn);
    assert_eq!(header(&before, "auth-status"), Some("OK"), "{before:?}");
    assert_eq!(header(&before, "auth-port"), Some("1143"), "{before:?}");

    std::fs::write(&d.config, config(http, &[], "") + &backends(2143)).unwrap();
    let logs = sighup(&d);
    assert!(logs.contains("configuration reloaded"), "{logs}");
    // Not bound again: the listener went on, and so did the connection opened before.
    assert!(!logs.contains("listener removed or changed"), "{logs}");
    assert!(!logs.contains("listening"), "{logs}");
    let after = nginx_auth(&mut conn);
    assert_eq!(header(&after, "auth-status"), Some("OK"), "{after:?}");
    assert_eq!(header(&after, "auth-port"), Some("2143"), "{after:?}");
}

/// `POST /auth/login` as alice through a proxy that says the client is 203.0.113.9.
fn forwarded_login(http: u16) {
    let body = r#"{"username":"alice","password":"Alice-reload-pw"}"#;
    let r = ureq::post(&format!("http://127.0.0.1:{http}/auth/login"))
        .set("Content-Type", "application/json")
        .set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
        .send_string(body)
        .expect("login");
    assert_eq!(r.status(), 200);
}

#[test]
fn sighup_puts_new_trusted_proxies_in_force() {
    let http = free_port();
    let d = Daemon::start(&config(http, &[], ""), &[]);
    provision(&d, PROVISION);
    // Nobody trusted (the default): the forwarded address is ignored.
    forwarded_login(http);
    let logs = d.logs();
    assert!(logs.contains("client=127.0.0.1"), "{logs}");
    assert!(!logs.contains("203.0.113.9"), "{logs}");

    std::fs::write(
        &d.config,
        config(http, &[], "trusted-proxies = [\"127.0.0.1/32\"]"),
    )
    .unwrap();
    let logs = sighup(&d);
    assert!(logs.contains("configuration reloaded"), "{logs}");
    assert!(!logs.contains("listener removed or changed"), "{logs}");
    forwarded_login(http);
    // The right-most untrusted hop is the client; what it wrote itself further left is not.
    let logs = d.logs();
    assert!(logs.contains("client=203.0.113.9"), "{logs}");
    assert!(!logs.contains("198.51.100.1"), "{logs}");
}
