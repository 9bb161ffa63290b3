//! Postern's own access tokens on the mail front-ends: dovecot-auth XOAUTH2 and OAUTHBEARER
//! (as Postfix sends them, and through a real Postfix's SMTP AUTH), and Dovecot IMAP with its
//! own `passdb oauth2` pointing its introspection_url at Postern.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use postern_e2e::mail::DovecotClient;
use postern_e2e::oauth_clients::*;
use postern_e2e::postfix::Postfix;
use postern_e2e::*;

fn mail_daemon() -> OAuthDaemon {
    OAuthDaemon::start(
        None,
        &format!(
            "[[listener]]\nprotocol = \"dovecot-auth\"\nbind = \"127.0.0.1:{}\"\n",
            free_port()
        ),
    )
}

/// alice's access token from the code flow (the first-party web client).
fn alice_token(d: &OAuthDaemon) -> String {
    let cb = "http://127.0.0.1:9/cb";
    let code = d.code_for("web", cb, "openid", "alice", "alice-pw-1");
    let r = d.exchange(("web", "web-secret"), &code, cb, VERIFIER);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_string()
}

fn xoauth2(user: &str, token: &str) -> String {
    base64(format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes())
}

#[test]
fn access_tokens_log_in_on_dovecot_auth_as_postfix_sends_them() {
    let d = mail_daemon();
    let token = alice_token(&d);
    let mut c = DovecotClient::connect(&d.daemon.addr("dovecot-auth"));
    c.send(&format!(
        "AUTH\t1\tXOAUTH2\tservice=smtp\trip=127.0.0.1\tlip=127.0.0.1\tresp={}\n",
        xoauth2("alice", &token)
    ));
    assert_eq!(c.line().as_deref(), Some("OK\t1\tuser=alice"));
    let bearer = base64(format!("n,a=alice,\x01auth=Bearer {token}\x01\x01").as_bytes());
    c.send(&format!(
        "AUTH\t2\tOAUTHBEARER\tservice=imap\trip=127.0.0.1\tlip=127.0.0.1\tresp={bearer}\n"
    ));
    assert_eq!(c.line().as_deref(), Some("OK\t2\tuser=alice"));
    // The second use was answered without a signature check.
    let cache_hits = || {
        metric_at(
            &d.daemon.url("/metrics"),
            r#"postern_token_cache_requests_total{issuer="postern",result="hit"}"#,
        )
    };
    assert!(cache_hits() >= 1, "the reused token was verified again");
    // Someone else's name with alice's token: refused.
    c.send(&format!(
        "AUTH\t3\tXOAUTH2\tservice=smtp\trip=127.0.0.1\tlip=127.0.0.1\tresp={}\n",
        xoauth2("bob", &token)
    ));
    let line = c.line().unwrap_or_default();
    assert!(
        line.starts_with("CONT\t3\t") || line.starts_with("FAIL\t3"),
        "{line}"
    );
    // Revoked: refused at once.
    let r = d.form(
        "/oauth/revoke",
        Some(("web", "web-secret")),
        &[("token", &token)],
    );
    assert_eq!(r.status, 200);
    let hits = cache_hits();
    let mut c = DovecotClient::connect(&d.daemon.addr("dovecot-auth"));
    c.send(&format!(
        "AUTH\t4\tXOAUTH2\tservice=smtp\trip=127.0.0.1\tlip=127.0.0.1\tresp={}\n",
        xoauth2("alice", &token)
    ));
    let line = c.line().unwrap_or_default();
    assert!(!line.starts_with("OK"), "{line}");
    assert!(
        cache_hits() > hits,
        "the revoked token's verification was still cached, and it was refused all the same"
    );
}

/// One SMTP reply (the last line of a multi-line one).
fn smtp_reply(r: &mut BufReader<TcpStream>) -> String {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("SMTP reply");
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            return line.trim_end().to_string();
        }
    }
}

fn smtp_xoauth2(port: u16, user: &str, token: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to postfix");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    smtp_reply(&mut r);
    w.write_all(b"EHLO client.example\r\n").unwrap();
    let ehlo = smtp_reply(&mut r);
    assert!(ehlo.starts_with("250"), "{ehlo}");
    w.write_all(format!("AUTH XOAUTH2 {}\r\n", xoauth2(user, token)).as_bytes())
        .unwrap();
    let mut answer = smtp_reply(&mut r);
    if answer.starts_with("334") {
        // XOAUTH2's error dance: the client acknowledges the JSON error with an empty line.
        w.write_all(b"\r\n").unwrap();
        answer = smtp_reply(&mut r);
    }
    let _ = w.write_all(b"QUIT\r\n");
    answer
}

#[test]
fn thunderbird_style_xoauth2_through_postfix_smtp_auth() {
    let d = mail_daemon();
    let postfix = Postfix::start(&format!("inet:{}", d.daemon.addr("dovecot-auth")));
    let token = alice_token(&d);
    let ok = smtp_xoauth2(postfix.port, "alice", &token);
    assert!(
        ok.starts_with("235"),
        "{ok}\n{}\n{}",
        postfix.maillog(),
        d.daemon.logs()
    );
    let bad = smtp_xoauth2(postfix.port, "alice", "eyJhbGciOiJub25lIn0.e30.");
    assert!(bad.starts_with("535"), "{bad}");
    assert!(
        postfix.maillog_has("ehlo=1 auth=1 quit=1"),
        "{}",
        postfix.maillog()
    );
}

struct Dovecot {
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm")
            .args([
                "-c",
                &self.dir.path().join("dovecot.conf").display().to_string(),
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Debian's Dovecot (dovecot-imapd) with `passdb oauth2` introspecting at Postern as the
/// `svc` client (the README's snippet).
fn dovecot_imap(introspection_url: &str) -> Dovecot {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let port = free_port();
    std::fs::write(
        d.join("dovecot-oauth2.conf.ext"),
        format!(
            "introspection_mode = post\n\
             introspection_url = {introspection_url}\n\
             username_attribute = username\n\
             active_attribute = active\n\
             active_value = true\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("dovecot.conf"),
        format!(
            "base_dir = {dir}/run\n\
             state_dir = {dir}/state\n\
             log_path = {dir}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = xoauth2 oauthbearer\n\
             mail_location = maildir:{dir}/mail/%u\n\
             passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {dir}/dovecot-oauth2.conf.ext\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={dir}/home/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n",
            dir = d.display()
        ),
    )
    .unwrap();
    for sub in ["run", "state", "mail", "home"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let out = Command::new("chown")
        .args(["nobody:nogroup"])
        .arg(d.join("mail"))
        .arg(d.join("home"))
        .output()
        .unwrap();
    assert!(out.status.success());
    // Dovecot daemonizes: its output goes to a file, never a pipe (TESTING.md).
    let log = std::fs::File::create(d.join("start.log")).unwrap();
    let status = Command::new("dovecot")
        .args(["-c", &d.join("dovecot.conf").display().to_string()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .status()
        .unwrap_or_else(|e| panic!("cannot run dovecot (package dovecot-imapd): {e}"));
    let dovecot = Dovecot { dir, port };
    assert!(
        status.success(),
        "dovecot did not start: {}",
        std::fs::read_to_string(dovecot.dir.path().join("start.log")).unwrap_or_default()
    );
    within(Duration::from_secs(20), "dovecot imap listening", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    dovecot
}

fn imap_xoauth2(port: u16, user: &str, token: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to dovecot");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    w.write_all(format!("a AUTHENTICATE XOAUTH2 {}\r\n", xoauth2(user, token)).as_bytes())
        .unwrap();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return "closed".into();
        }
        if line.starts_with("+ ") {
            w.write_all(b"\r\n").unwrap();
            continue;
        }
        if line.starts_with("a ") {
            let _ = w.write_all(b"b LOGOUT\r\n");
            return line.trim_end().to_string();
        }
    }
}

#[test]
fn dovecot_imap_passdb_oauth2_introspects_at_postern() {
    let d = OAuthDaemon::start(None, "");
    let introspection = format!(
        "http://svc:svc-secret@{}/oauth/introspect",
        d.issuer.trim_start_matches("http://")
    );
    let dovecot = dovecot_imap(&introspection);
    let token = alice_token(&d);
    let ok = imap_xoauth2(dovecot.port, "alice", &token);
    let log =
        || std::fs::read_to_string(dovecot.dir.path().join("dovecot.log")).unwrap_or_default();
    assert!(ok.starts_with("a OK"), "{ok}\n{}", log());
    let r = d.form(
        "/oauth/revoke",
        Some(("web", "web-secret")),
        &[("token", &token)],
    );
    assert_eq!(r.status, 200);
    let refused = imap_xoauth2(dovecot.port, "alice", &token);
    assert!(
        refused.starts_with("a NO"),
        "revoked token accepted: {refused}\n{}",
        log()
    );
}

#[test]
fn the_account_page_creates_an_app_password_in_chromium_that_logs_in_through_postfix() {
    let d = mail_daemon();
    let postfix = Postfix::start(&format!("inet:{}", d.daemon.addr("dovecot-auth")));
    let env = |step: &'static str| {
        vec![
            ("ISSUER", d.issuer.clone()),
            ("USERNAME", "alice".to_string()),
            ("PASSWORD", "alice-pw-1".to_string()),
            ("STEP", step.to_string()),
        ]
    };
    let as_refs = |v: &Vec<(&'static str, String)>| -> Vec<(&str, String)> { v.clone() };
    let created = {
        let e = as_refs(&env("create"));
        let pairs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        node("account.mjs", &pairs)
    };
    assert_eq!(strings(&created["roles"]), ["user"], "{created}");
    assert!(strings(&created["permissions"]).contains(&"email-send".to_string()));
    assert!(created["sessions"].as_i64().unwrap() >= 1);
    assert_eq!(strings(&created["listed"]), ["Thunderbird on the laptop"]);
    assert_eq!(created["secretAfterReload"], 0, "the secret is shown once");
    let secret = created["secret"].as_str().expect("secret").to_string();
    let ok = postfix.swaks("PLAIN", "alice", &secret);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        ok.status.success() && text.contains("235 2.7.0 Authentication successful"),
        "{text}\n{}",
        d.daemon.logs()
    );
    // A scoped credential signs in nowhere interactive: neither /account nor the login page.
    let page = get_raw(&d.url("/account"), None);
    let csrf = hidden_value(&page.body, "csrf").unwrap();
    let jar = cookies(&page).join("; ");
    let r = form(
        &d.url("/account"),
        None,
        &[
            ("csrf", &csrf),
            ("action", "login"),
            ("username", "alice"),
            ("password", &secret),
        ],
        Some(&jar),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(cookies(&r)
        .iter()
        .all(|c| !c.starts_with("postern_session=")));
    let revoked = {
        let e = as_refs(&env("revoke"));
        let pairs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        node("account.mjs", &pairs)
    };
    assert_eq!(revoked["listed"], serde_json::json!([]), "{revoked}");
    let refused = postfix.swaks("PLAIN", "alice", &secret);
    let text = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert!(
        text.contains("535 5.7.8") && !text.contains("235 "),
        "{text}"
    );
}

#[test]
fn the_account_page_refuses_a_post_without_its_csrf_token_and_cannot_be_framed() {
    let d = OAuthDaemon::start(None, "");
    let page = get_raw(&d.url("/account"), None);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let r = form(
        &d.url("/account"),
        None,
        &[
            ("action", "login"),
            ("username", "alice"),
            ("password", "alice-pw-1"),
        ],
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(cookies(&r)
        .iter()
        .all(|c| !c.starts_with("postern_session=")));
}

/// `GET /auth/nginx` as nginx's mail proxy sends it for a PLAIN login.
fn nginx_auth(d: &OAuthDaemon, user: &str, pass: &str) -> (String, String) {
    let stream = TcpStream::connect(d.issuer.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let request = format!(
        "GET /auth/nginx HTTP/1.0\r\nHost: localhost\r\nX-Auth-Key: nginx-key\r\nAuth-Method: plain\r\n\
         Auth-User: {user}\r\nAuth-Pass: {pass}\r\nAuth-Protocol: imap\r\nAuth-Login-Attempt: 1\r\n\
         Client-IP: 127.0.0.1\r\n\r\n"
    );
    w.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut BufReader::new(stream), &mut text).unwrap();
    let status = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("auth-status: ")
                .or_else(|| l.strip_prefix("Auth-Status: "))
        })
        .unwrap_or_default()
        .to_string();
    (status, text)
}

#[test]
fn nginx_auth_http_accepts_an_access_token_sent_as_the_password() {
    let d = OAuthDaemon::start(
        None,
        "[auth-http]\nshared-secret = \"nginx-key\"\nbackends = { imap = \"127.0.0.1:1143\" }\n",
    );
    let token = alice_token(&d);
    let (status, text) = nginx_auth(&d, "alice", &token);
    assert_eq!(status, "OK", "{text}");
    let (status, text) = nginx_auth(&d, "bob", &token);
    assert_ne!(status, "OK", "another user's token: {text}");
    let r = d.form(
        "/oauth/revoke",
        Some(("web", "web-secret")),
        &[("token", &token)],
    );
    assert_eq!(r.status, 200);
    let (status, text) = nginx_auth(&d, "alice", &token);
    assert_ne!(status, "OK", "revoked: {text}");
}
