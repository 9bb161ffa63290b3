//! The mail-server guides in `docs/`: each test reads the guide's snippets, adapts only paths
//! and ports, and runs them with the real server from Debian.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;
use std::time::Duration;

use postern_e2e::docs::adapted;
use postern_e2e::exim::Exim;
use postern_e2e::postfix::Postfix;
use postern_e2e::*;

const ALICE_PW: &str = "Alice-guide-pw";
const BOB_PW: &str = "Bob-guide-pw";

/// alice may send mail; bob has the right password but no `email-send`.
const PROVISION: &str = r#"
[[account]]
name = "alice"
password = "Alice-guide-pw"
emails = ["alice@example.org"]
roles = "user"

[[account]]
name = "bob"
password = "Bob-guide-pw"
roles = "user"
permissions = { mode = "merge", disabled = ["email-send"] }

# dave may send mail but not read it over IMAP.
[[account]]
name = "dave"
password = "Dave-guide-pw"
roles = "user"
permissions = { mode = "merge", disabled = ["imap-authenticate"] }
"#;

/// A daemon with an HTTP listener and `listener` (a guide's snippet), alice and bob provisioned.
pub fn daemon_with(listener: &str) -> Daemon {
    let d = Daemon::start(
        &format!(
            "[server]\nstate-dir = \"state\"\n\n[[listener]]\nprotocol = \"http\"\n\
             bind = \"127.0.0.1:0\"\n\n{listener}"
        ),
        &[],
    );
    d.apply(PROVISION);
    let r = d.login_until(Duration::from_secs(10), "alice", ALICE_PW, |r| {
        r.status == 200
    });
    assert_eq!(r.status, 200, "alice never became valid: {}", r.body);
    d
}

/// A directory every user may traverse, for sockets the mail server's own user opens.
pub fn socket_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// PLAIN and LOGIN, good and bad password, and bob refused, through `swaks`.
fn check_smtp_auth(
    swaks: impl Fn(&str, &str, &str) -> Output,
    ok: &str,
    refused: &str,
    context: impl Fn() -> String,
) {
    for mechanism in ["PLAIN", "LOGIN"] {
        let good = swaks(mechanism, "alice", ALICE_PW);
        let text = output(&good);
        assert!(
            good.status.success() && text.contains(ok),
            "{mechanism} alice refused:\n{text}\n{}",
            context()
        );
        let bad = swaks(mechanism, "alice", "not-her-password");
        let text = output(&bad);
        assert!(
            !bad.status.success() && text.contains(refused) && !text.contains(ok),
            "{mechanism} wrong password:\n{text}\n{}",
            context()
        );
    }
    let bob = swaks("PLAIN", "bob", BOB_PW);
    let text = output(&bob);
    assert!(
        !bob.status.success() && text.contains(refused),
        "bob (no email-send) was let in:\n{text}"
    );
}

#[test]
fn postfix_guide_unix_socket() {
    let sockets = socket_dir();
    let socket = sockets.path().join("auth");
    let socket = socket.to_str().expect("utf-8");
    let d = daemon_with(&adapted(
        "postfix.md",
        "listener-unix",
        &[("/run/postern/auth", socket)],
    ));
    let meta = std::fs::metadata(socket).expect("the socket exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let postfix = Postfix::start_with(&adapted(
        "postfix.md",
        "main-cf-unix",
        &[("/run/postern/auth", socket)],
    ));
    check_smtp_auth(
        |m, u, p| postfix.swaks(m, u, p),
        "235 2.7.0 Authentication successful",
        "535 5.7.8",
        || format!("{}\n{}", postfix.maillog(), d.logs()),
    );
    assert!(
        postfix.maillog_has("sasl_username=alice"),
        "{}",
        postfix.maillog()
    );
}

#[test]
fn postfix_guide_inet() {
    let port = free_port().to_string();
    let d = daemon_with(&adapted("postfix.md", "listener-inet", &[("8481", &port)]));
    let postfix = Postfix::start_with(&adapted("postfix.md", "main-cf-inet", &[("8481", &port)]));
    check_smtp_auth(
        |m, u, p| postfix.swaks(m, u, p),
        "235 2.7.0 Authentication successful",
        "535 5.7.8",
        || format!("{}\n{}", postfix.maillog(), d.logs()),
    );
}

#[test]
fn exim_guide() {
    let sockets = socket_dir();
    let socket = sockets.path().join("exim-auth");
    let socket = socket.to_str().expect("utf-8");
    // Exim first: it creates the Debian-exim group the listener's socket is given.
    let exim = Exim::start(&adapted(
        "exim.md",
        "authenticators",
        &[("/run/postern/exim-auth", socket)],
    ));
    let d = daemon_with(&adapted(
        "exim.md",
        "listener",
        &[("/run/postern/exim-auth", socket)],
    ));
    check_smtp_auth(
        |m, u, p| exim.swaks(m, u, p),
        "235 Authentication succeeded",
        "535 Incorrect authentication data",
        || format!("{}\n{}", exim.logs(), d.logs()),
    );
}

/// A line-oriented upstream (POP3 or SMTP): greets, answers every line with `ok` (and `bye` to
/// QUIT), and records the lines it got.
struct LineBackend {
    addr: std::net::SocketAddr,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl LineBackend {
    fn start(greeting: &'static str, ok: &'static str, bye: &'static str) -> LineBackend {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let Ok(mut out) = stream.try_clone() else {
                        return;
                    };
                    let _ = out.write_all(greeting.as_bytes());
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { return };
                        let quit = line.eq_ignore_ascii_case("QUIT");
                        seen.lock().expect("lock").push(line);
                        let _ = out.write_all(if quit { bye } else { ok }.as_bytes());
                        if quit {
                            return;
                        }
                    }
                });
            }
        });
        LineBackend { addr, lines }
    }
}

/// POP3 `USER`/`PASS` on `addr`: the answer to PASS.
fn pop3_login(addr: &str, user: &str, password: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(addr).expect("connect POP3");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut out = stream.try_clone().expect("clone");
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    lines.read_line(&mut line).expect("greeting");
    assert!(line.starts_with("+OK"), "POP3 greeting {line:?}");
    for command in [format!("USER {user}"), format!("PASS {password}")] {
        out.write_all(format!("{command}\r\n").as_bytes())
            .expect("write");
        line.clear();
        lines.read_line(&mut line).expect("answer");
        if !line.starts_with("+OK") {
            break;
        }
    }
    let _ = out.write_all(b"QUIT\r\n");
    line.trim_end().to_string()
}

fn swaks_at(port: u16, mechanism: &str, user: &str, password: &str) -> Output {
    std::process::Command::new("swaks")
        .args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--from", "sender@example.org", "--to", "rcpt@example.org"])
        .args([
            "--auth",
            mechanism,
            "--auth-user",
            user,
            "--auth-password",
            password,
        ])
        .args(["--quit-after", "AUTH", "--timeout", "30"])
        .output()
        .expect("swaks")
}

#[test]
fn nginx_mail_guide() {
    use postern_e2e::mail::{imap_login, ImapBackend};
    use postern_e2e::webproxy::NginxHttp;

    let imap = ImapBackend::start();
    let pop3 = LineBackend::start("+OK test pop3\r\n", "+OK\r\n", "+OK bye\r\n");
    let smtp = LineBackend::start("220 test smtp\r\n", "250 ok\r\n", "221 bye\r\n");
    let toml = adapted(
        "nginx-mail.md",
        "postern-toml",
        &[
            ("[server]\n", "[server]\nstate-dir = \"state\"\n"),
            ("127.0.0.1:1143", &imap.addr.to_string()),
            ("127.0.0.1:1110", &pop3.addr.to_string()),
            ("127.0.0.1:1025", &smtp.addr.to_string()),
        ],
    );
    let d = Daemon::start(
        &format!("{toml}\n[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\n"),
        &[],
    );
    d.apply(PROVISION);
    let r = d.login_until(Duration::from_secs(10), "alice", ALICE_PW, |r| {
        r.status == 200
    });
    assert_eq!(r.status, 200, "{}", r.body);

    let (pi, pp, ps) = (free_port(), free_port(), free_port());
    let mail = adapted(
        "nginx-mail.md",
        "nginx-mail",
        &[
            ("127.0.0.1:8480", &d.addr("http")),
            ("listen 143;", &format!("listen 127.0.0.1:{pi};")),
            ("listen 110;", &format!("listen 127.0.0.1:{pp};")),
            ("listen 587;", &format!("listen 127.0.0.1:{ps};")),
        ],
    );
    let nginx = NginxHttp::start_mail(&mail, &[pi, pp, ps]);
    let ctx = || format!("{}\n{}", nginx.error_log(), d.logs());

    // IMAP
    let (_, answer) = imap_login(&format!("127.0.0.1:{pi}"), "alice", ALICE_PW);
    assert!(answer.starts_with("a1 OK"), "IMAP: {answer}\n{}", ctx());
    let (_, answer) = imap_login(&format!("127.0.0.1:{pi}"), "alice", "wrong-password");
    assert!(answer.starts_with("a1 NO"), "IMAP wrong password: {answer}");
    assert_eq!(
        imap.logins.lock().unwrap().len(),
        1,
        "a refused login reached IMAP"
    );

    // POP3
    let answer = pop3_login(&format!("127.0.0.1:{pp}"), "alice", ALICE_PW);
    assert!(answer.starts_with("+OK"), "POP3: {answer}\n{}", ctx());
    assert!(
        pop3.lines.lock().unwrap().iter().any(|l| l == "USER alice"),
        "nginx did not log in upstream: {:?}",
        pop3.lines.lock().unwrap()
    );
    let answer = pop3_login(&format!("127.0.0.1:{pp}"), "alice", "wrong-password");
    assert!(answer.starts_with("-ERR"), "POP3 wrong password: {answer}");

    // SMTP: alice may send, bob (no email-send) may not, though his IMAP login works.
    check_smtp_auth(
        |m, u, p| swaks_at(ps, m, u, p),
        "235 2.0.0 OK",
        "535 5.7.8",
        ctx,
    );
    let (_, answer) = imap_login(&format!("127.0.0.1:{pi}"), "bob", BOB_PW);
    assert!(answer.starts_with("a1 OK"), "bob IMAP: {answer}");
}

#[test]
fn saslauthd_guide() {
    use postern_e2e::mail::testsaslauthd;

    let sockets = socket_dir();
    let mux = sockets.path().join("mux");
    let mux = mux.to_str().expect("utf-8");
    let d = daemon_with(&adapted(
        "cyrus-saslauthd.md",
        "listener",
        &[
            ("/run/postern/saslauthd/mux", mux),
            // smtpd is in group postfix; the test leaves group sasl's members alone.
            ("group = \"sasl\"", "group = \"postfix\""),
        ],
    ));
    let path = std::path::Path::new(mux);
    assert!(testsaslauthd(path, "alice", ALICE_PW, "imap").contains("OK"));
    let bad = testsaslauthd(path, "alice", "wrong-password", "imap");
    assert!(bad.contains("NO") && !bad.contains("OK"), "{bad}");
    assert!(testsaslauthd(path, "bob", BOB_PW, "imap").contains("OK"));
    let smtp = testsaslauthd(path, "bob", BOB_PW, "smtp");
    assert!(smtp.contains("NO") && !smtp.contains("OK"), "{smtp}");

    // Postfix with Cyrus SASL; Debian's Postfix reads smtpd.conf from `sasl/` beside main.cf
    // (`/etc/postfix/sasl`), when its first smtpd starts.
    let postfix = Postfix::start_with(&adapted("cyrus-saslauthd.md", "main-cf", &[]));
    std::fs::create_dir(postfix.dir().join("sasl")).expect("mkdir sasl");
    std::fs::write(
        postfix.dir().join("sasl/smtpd.conf"),
        adapted(
            "cyrus-saslauthd.md",
            "smtpd-conf",
            &[("/run/postern/saslauthd/mux", mux)],
        ),
    )
    .expect("smtpd.conf");
    check_smtp_auth(
        |m, u, p| postfix.swaks(m, u, p),
        "235 2.7.0 Authentication successful",
        "535 5.7.8",
        || format!("{}\n{}", postfix.maillog(), d.logs()),
    );
}

#[test]
fn dovecot_guide() {
    use postern_e2e::dovecot::Dovecot;
    use postern_e2e::mail::imap_login;

    let sockets = socket_dir();
    let socket = sockets.path().join("dovecot-auth");
    let socket = socket.to_str().expect("utf-8");
    let d = daemon_with(&adapted(
        "dovecot.md",
        "listener",
        &[("/run/postern/dovecot-auth", socket)],
    ));
    let bin = postern_bin();
    let dovecot = Dovecot::start(&adapted(
        "dovecot.md",
        "passdb",
        &[
            ("/run/postern/dovecot-auth", socket),
            ("/usr/sbin/postern", bin.to_str().expect("utf-8")),
        ],
    ));
    let ctx = || format!("{}\n{}", dovecot.logs(), d.logs());
    let (greeting, answer) = imap_login(&dovecot.imap_addr(), "alice", ALICE_PW);
    assert!(greeting.starts_with("* OK"), "{greeting}");
    assert!(answer.starts_with("a1 OK"), "alice: {answer}\n{}", ctx());
    let (_, answer) = imap_login(&dovecot.imap_addr(), "alice", "not-her-password");
    assert!(
        answer.starts_with("a1 NO"),
        "wrong password: {answer}\n{}",
        ctx()
    );
    let (_, answer) = imap_login(&dovecot.imap_addr(), "dave", "Dave-guide-pw");
    assert!(
        answer.starts_with("a1 NO"),
        "dave without imap-authenticate: {answer}"
    );
    // Logged in under her address, she is the canonical account to Dovecot.
    let (_, answer) = imap_login(&dovecot.imap_addr(), "alice@example.org", ALICE_PW);
    assert!(
        answer.starts_with("a1 OK"),
        "alice@example.org: {answer}\n{}",
        ctx()
    );
    let logs = d.logs();
    assert!(
        logs.lines().any(|l| l.contains("frontend=\"dovecot-auth\"")
            && l.contains("service=imap")
            && l.contains("user=alice")),
        "{logs}"
    );
    assert!(
        postern_e2e::within(Duration::from_secs(5), "Dovecot's user alice", || {
            dovecot.logs().contains("imap(alice)")
        }) < Duration::from_secs(5)
    );
    assert!(
        !dovecot.logs().contains("imap(alice@example.org)"),
        "Dovecot kept the typed name:\n{}",
        dovecot.logs()
    );
}
