//! Bounded work under attack (issue 15): slow HTTP clients are cut off, one address cannot
//! take every connection, nginx's auth_http needs its secret and cannot name the client from
//! anywhere, a cross-site form cannot log in, and the CLI survives a closed pipe.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postern_e2e::*;

const ALICE_PW: &str = "Hardening-alice-pw-1";

fn config(listener_extra: &str, rest: &str) -> String {
    format!(
        "[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\n{listener_extra}\n{rest}\n\
         [log]\nlevel = \"info\"\n"
    )
}

fn provision(d: &Daemon) {
    d.apply(&format!(
        "[[account]]\nname = \"alice\"\npassword = \"{ALICE_PW}\"\nroles = \"user\"\n"
    ));
}

/// Whether the server closed `s` (EOF or reset) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_http_clients_are_cut_off_and_healthz_stays_up() {
    let d = Daemon::start(
        &config(
            "max-connections = 8\nheader-timeout = \"1s\"\nbody-timeout = \"1s\"\nidle-timeout = \"2s\"\nmax-connections-per-address = 100",
            "",
        ),
        &[],
    );
    let addr = d.addr("http");
    // Headers dripped a byte at a time, and a chunked body that never ends: all 8 slots.
    let mut drips: Vec<TcpStream> = (0..7)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let mut body = TcpStream::connect(&addr).unwrap();
    body.write_all(
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
    )
    .unwrap();
    let started = Instant::now();
    for s in drips.iter_mut() {
        let _ = s.write_all(b"X");
    }
    for s in drips.iter_mut() {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "dripped headers kept open"
        );
    }
    assert!(
        closed_within(&mut body, Duration::from_secs(5)),
        "endless body kept open"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // The slots are free again.
    within(Duration::from_secs(5), "healthz answers", || {
        healthz_ok(&addr)
    });
    // An idle kept-alive connection is closed too.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(6)),
        "idle connection kept open"
    );
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(
        metrics.contains(r#"postern_refused_total{frontend="http",reason="header_timeout"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"postern_refused_total{frontend="http",reason="body_timeout"}"#),
        "{metrics}"
    );
}

#[test]
fn one_address_cannot_take_every_connection() {
    let d = Daemon::start(&config("max-connections-per-address = 3", ""), &[]);
    let addr = d.addr("http");
    let held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let mut fourth = TcpStream::connect(&addr).unwrap();
    assert!(
        closed_within(&mut fourth, Duration::from_secs(5)),
        "4th connection from one address accepted"
    );
    drop(held);
    // The daemon frees the slots when it sees the closes; until then it may reset us.
    within(Duration::from_secs(5), "a slot freed", || healthz_ok(&addr));
    let metrics = get(&d.url("/metrics"), None).body;
    // At least the 4th connection; polling /healthz above may have been refused too.
    let refused: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"postern_refused_total{frontend="http",reason="per_address_limit"} "#)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no per_address_limit refusals: {metrics}"));
    assert!(refused >= 1, "{metrics}");
}

/// `GET /healthz` on a connection of its own; false on any network error.
fn healthz_ok(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

fn nginx_request(addr: &str, key: Option<&str>, password: &str, client_ip: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let key = key
        .map(|k| format!("X-Auth-Key: {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /auth/nginx HTTP/1.1\r\nHost: x\r\nAuth-Method: plain\r\nAuth-User: alice\r\nAuth-Pass: {password}\r\n\
         Auth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\nClient-IP: {client_ip}\r\n{key}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.read_to_string(&mut out);
    out.to_ascii_lowercase()
}

#[test]
fn auth_http_needs_the_secret_and_believes_client_ip_from_trusted_proxies_only() {
    // check-config refuses backends on a TCP listener without a secret or the opt-out.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    std::fs::write(
        &path,
        config(
            "",
            "[auth-http]\nbackends = { imap = \"127.0.0.1:1143\" }\n",
        ),
    )
    .unwrap();
    let out = postern(
        &["check-config", "--config", path.to_str().unwrap()],
        dir.path(),
        None,
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("auth-http.shared-secret"), "{err}");

    let rest = "[auth-http]\nshared-secret = \"k3y\"\nbackends = { imap = \"127.0.0.1:1143\" }\n\
                [authentication]\nmax-failures-per-ip = 3\n";
    let d = Daemon::start(&config("", rest), &[]);
    provision(&d);
    let addr = d.addr("http");
    let r = nginx_request(&addr, None, ALICE_PW, "192.0.2.1");
    assert!(r.contains("auth-status: invalid request"), "{r}");
    let r = nginx_request(&addr, Some("k3y"), ALICE_PW, "192.0.2.1");
    assert!(r.contains("auth-status: ok"), "{r}");
    // From an untrusted peer, Client-IP is ignored: the failures count against 127.0.0.1,
    // which then cannot log in over HTTP either, whatever address the header names.
    for i in 0..3 {
        let r = nginx_request(&addr, Some("k3y"), "wrong", &format!("192.0.2.{}", 10 + i));
        assert!(r.contains("invalid login or password"), "{r}");
    }
    assert_eq!(login(&d.url("/auth/login"), "alice", ALICE_PW).status, 429);

    // With 127.0.0.1 trusted, the header names the client.
    let rest = "[server]\ntrusted-proxies = [\"127.0.0.1/32\"]\n".to_string() + rest;
    let d = Daemon::start(&config("", &rest), &[]);
    provision(&d);
    let addr = d.addr("http");
    for _ in 0..3 {
        nginx_request(&addr, Some("k3y"), "wrong", "192.0.2.50");
    }
    assert_eq!(login(&d.url("/auth/login"), "alice", ALICE_PW).status, 200);
}

#[test]
fn a_form_cannot_log_in() {
    let d = Daemon::start(&config("", ""), &[]);
    provision(&d);
    let body = format!(r#"{{"username":"alice","password":"{ALICE_PW}"}}"#);
    let r = post_raw(
        &d.url("/auth/login"),
        "application/x-www-form-urlencoded",
        body.as_bytes(),
    );
    assert_eq!(r.status, 415, "{}", r.body);
    assert_eq!(r.json()["error"], "unsupported_media_type");
    let r = post_raw(&d.url("/auth/login"), "text/plain", body.as_bytes());
    assert_eq!(r.status, 415);
    assert_eq!(login(&d.url("/auth/login"), "alice", ALICE_PW).status, 200);
}

#[test]
fn explain_into_a_closed_pipe_exits_cleanly() {
    let d = Daemon::start(&config("", ""), &[]);
    provision(&d);
    let cmd = format!(
        "'{}' explain --config '{}' alice | head -1",
        postern_bin().display(),
        d.config.display()
    );
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", &cmd])
        .current_dir(d.config.parent().unwrap())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.starts_with("alice"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(out.status.success(), "{:?} {stderr}", out.status);
}

#[test]
fn a_start_that_fails_leaves_nothing_behind() {
    // The dovecot-auth socket's directory does not exist: the start fails (exit 2) before the
    // state directory, the store or the admin account are created.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    let socket = dir.path().join("missing/auth");
    std::fs::write(
        &path,
        format!(
            "[server]\nstate-dir = \"state\"\n\
             [[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\n\
             [[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"unix:{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let out = postern(
        &["serve", "--config", path.to_str().unwrap()],
        dir.path(),
        None,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("cannot bind"), "{stderr}");
    assert!(!stdout.contains("created account"), "{stdout}");
    assert!(
        !dir.path().join("state").exists(),
        "state dir created by a failed start"
    );
}
