//! TLS on the TCP listeners: HTTP and dovecot-auth over TLS with certificates from a private
//! CA, certificate rotation on SIGHUP, broken certificates at start and at reload, and the
//! configuration checks around `tls`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use postern_e2e::tls::{provision, sighup, DovecotTls, TestCa};
use postern_e2e::*;

const ALICE_PW: &str = "Alice-tls-pw";

const PROVISION: &str = r#"
[[account]]
name = "alice"
password = "Alice-tls-pw"
roles = "user"
"#;

/// http (port 0) and dovecot-auth (a free port) both on TLS with `cert`.
fn tls_config(tls: &str, extra_dovecot: &str) -> String {
    format!(
        r#"
[server]
state-dir = "state"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"
tls = {tls}

[[listener]]
protocol = "dovecot-auth"
bind = "127.0.0.1:{port}"
tls = {tls}
{extra_dovecot}
"#,
        port = free_port(),
    )
}

#[test]
fn http_and_dovecot_auth_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(dir.path(), "server");
    let d = Daemon::start_in(
        dir,
        &tls_config(
            &cert.toml(),
            "failure-delay = \"0s\"\nmax-requests-in-flight = 4",
        ),
        &[],
    );
    provision(&d, PROVISION);

    let (status, body) = ca.https_get(&d.addr("http"), "/healthz");
    assert!(status.contains(" 200 "), "{status} {body}");
    assert_eq!(ca.served_cert(&d.addr("http")), cert.der);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(d.addr("http")).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).contains("HTTP/1.1 200"),
        "plain HTTP answered on a TLS listener"
    );

    let mut c = DovecotTls::connect(&ca, &d.addr("dovecot-auth"));
    assert_eq!(c.cert, cert.der);
    assert!(
        c.handshake.iter().any(|l| l.starts_with("MECH\tPLAIN")),
        "{:?}",
        c.handshake
    );
    assert_eq!(c.auth_plain(1, "alice", ALICE_PW), "OK\t1\tuser=alice");
    // failure-delay = 0s: a wrong password is answered at once (the default waits 2 s).
    let started = Instant::now();
    let fail = c.auth_plain(2, "alice", "wrong");
    assert!(fail.starts_with("FAIL\t2"), "{fail}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "failure-delay not applied: {:?}",
        started.elapsed()
    );
    // TLS between the mail server and Postern does not make the mail client's connection
    // secure: PLAIN from a remote, unsecured client is still refused.
    let resp = sasl_plain("alice", ALICE_PW);
    c.send(&format!(
        "AUTH\t3\tPLAIN\tservice=smtp\trip=192.0.2.7\tlip=192.0.2.1\tresp={resp}\n"
    ));
    let refused = c.line().unwrap();
    assert!(
        refused.starts_with("FAIL\t3") && refused.contains("mech_ssl_required"),
        "{refused}"
    );
}

#[test]
fn certificate_rotation_on_sighup_and_a_broken_one_kept_out() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let live = ca.issue(dir.path(), "live");
    let next = ca.issue(dir.path(), "next");
    let d = Daemon::start_in(dir, &tls_config(&live.toml(), ""), &[]);
    provision(&d, PROVISION);
    let http = d.addr("http");
    let dovecot = d.addr("dovecot-auth");
    assert_eq!(ca.served_cert(&http), live.der);
    assert_eq!(ca.served_cert(&dovecot), live.der);
    // A connection made before the rotation keeps working after it.
    let mut before = DovecotTls::connect(&ca, &dovecot);

    next.install_over(&live);
    let logs = sighup(&d);
    assert!(logs.contains("TLS certificate reloaded"), "{logs}");
    assert_eq!(ca.served_cert(&http), next.der);
    assert_eq!(ca.served_cert(&dovecot), next.der);
    assert_eq!(before.auth_plain(1, "alice", ALICE_PW), "OK\t1\tuser=alice");

    // A half-written certificate: the reload logs the error and keeps serving `next`.
    std::fs::write(&live.cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let logs = sighup(&d);
    assert!(
        logs.contains("configuration reload refused") && logs.contains("live.crt"),
        "{logs}"
    );
    assert_eq!(ca.served_cert(&http), next.der);
    let (status, _) = ca.https_get(&http, "/readyz");
    assert!(status.contains(" 200 "), "{status}");
    let mut after = DovecotTls::connect(&ca, &dovecot);
    assert_eq!(after.auth_plain(1, "alice", ALICE_PW), "OK\t1\tuser=alice");
}

#[test]
fn a_broken_certificate_at_start_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(dir.path(), "server");
    let other = ca.issue(dir.path(), "other");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").unwrap();
    let cases = [
        (
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                garbage.display(),
                cert.key.display()
            ),
            "no PEM certificate",
        ),
        (
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                cert.cert.display(),
                other.key.display()
            ),
            "cannot be used together",
        ),
        (
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                dir.path().join("missing.crt").display(),
                cert.key.display()
            ),
            "missing.crt",
        ),
    ];
    for (tls, reason) in cases {
        let config = dir.path().join("postern.toml");
        std::fs::write(&config, tls_config(&tls, "")).unwrap();
        let config = config.to_str().unwrap();
        for args in [
            vec!["serve", "--config", config],
            vec!["check-config", "--config", config],
        ] {
            let out = postern(&args, dir.path(), None);
            let (_, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains("listener[0].tls") && stderr.contains(reason),
                "{args:?}: {stderr}"
            );
        }
    }
}

#[test]
fn tls_and_listener_keys_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(dir.path(), "server");
    let (c, k) = (cert.cert.display(), cert.key.display());
    let cases = [
        (
            format!(
                "[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\ntls = {{ cert = \"{c}\", key = \"{k}\", ciphers = \"all\" }}\n"
            ),
            "ciphers",
        ),
        (
            format!(
                "[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"unix:/tmp/postern-tls-test.sock\"\ntls = {{ cert = \"{c}\", key = \"{k}\" }}\n"
            ),
            "a unix socket is protected by its file mode",
        ),
        (
            "[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\ntls-handshake-timeout = \"5s\"\n"
                .to_string(),
            "listener[0].tls-handshake-timeout: needs tls",
        ),
        (
            "[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\nmax-requests-in-flight = 8\n"
                .to_string(),
            "listener[0].max-requests-in-flight: applies to dovecot-auth listeners only",
        ),
        (
            "[[listener]]\nprotocol = \"saslauthd\"\nbind = \"unix:/tmp/x.sock\"\nfailure-delay = \"1s\"\n"
                .to_string(),
            "listener[0].failure-delay: applies to dovecot-auth listeners only",
        ),
        (
            "[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"127.0.0.1:0\"\nrequest-timeout = \"0s\"\n"
                .to_string(),
            "listener[0].request-timeout: must be longer than 0s",
        ),
    ];
    for (config, expected) in cases {
        let path = dir.path().join("postern.toml");
        std::fs::write(&path, &config).unwrap();
        let out = postern(
            &["check-config", "--config", path.to_str().unwrap()],
            dir.path(),
            None,
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{config}\n{stderr}");
        assert!(stderr.contains(expected), "{config}\n{stderr}");
    }
    // The same keys where they belong are accepted.
    let good = format!(
        "[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"127.0.0.1:0\"\ntls = {{ cert = \"{c}\", key = \"{k}\" }}\ntls-handshake-timeout = \"5s\"\nmax-requests-in-flight = 8\nrequest-timeout = \"60s\"\nfailure-delay = \"1s\"\n"
    );
    let path = dir.path().join("postern.toml");
    std::fs::write(&path, &good).unwrap();
    let out = postern(
        &["check-config", "--config", path.to_str().unwrap()],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{good}\n{:?}", text(&out));
}
