//! The mail front-ends with the real clients: Postfix (dovecot-auth) driven by swaks,
//! testsaslauthd (saslauthd), nginx's mail proxy (auth_http) in front of a test IMAP backend.

use postern_e2e::mail::{
    imap_login, testsaslauthd, DovecotClient, ImapBackend, MailDaemon, ALICE_PW, BOB_PW, NGINX_KEY,
};
use postern_e2e::nginx::Nginx;
use postern_e2e::postfix::Postfix;
use postern_e2e::*;

fn output(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn postfix_smtp_auth_plain_and_login_through_dovecot_auth() {
    let d = MailDaemon::start(None);
    let postfix = Postfix::start(&format!("inet:{}", d.dovecot_addr()));
    for mechanism in ["PLAIN", "LOGIN"] {
        let ok = postfix.swaks(mechanism, "alice", ALICE_PW);
        let text = output(&ok);
        assert!(
            ok.status.success() && text.contains("235 2.7.0 Authentication successful"),
            "{mechanism} alice refused:\n{text}\n{}\n{}",
            postfix.maillog(),
            d.daemon.logs()
        );
        let bad = postfix.swaks(mechanism, "alice", "not-her-password");
        let text = output(&bad);
        assert!(
            !bad.status.success() && text.contains("535 5.7.8"),
            "{mechanism} wrong password:\n{text}"
        );
        assert!(!text.contains("235 "), "{text}");
    }
    // bob lacks email-send: the right password is not enough for SMTP.
    let bob = postfix.swaks("PLAIN", "bob", BOB_PW);
    let text = output(&bob);
    assert!(
        !bob.status.success() && text.contains("535 5.7.8"),
        "bob was let in:\n{text}"
    );
    // Postfix saw the authenticated name Postern returned.
    assert!(
        postfix.maillog_has("sasl_username=alice"),
        "{}",
        postfix.maillog()
    );
    let metrics = get(&d.daemon.url("/metrics"), None).body;
    let ours = |outcome: &str| {
        metrics.lines().any(|l| {
            l.starts_with("postern_auth_requests_total")
                && l.contains(r#"frontend="dovecot-auth""#)
                && l.contains(&format!(r#"outcome="{outcome}""#))
        })
    };
    assert!(ours("success") && ours("failure"), "{metrics}");
}

#[test]
fn testsaslauthd_against_the_saslauthd_socket() {
    let d = MailDaemon::start(None);
    let s = &d.saslauthd_socket;
    let ok = testsaslauthd(s, "alice", ALICE_PW, "imap");
    assert!(ok.contains("OK"), "{ok}\n{}", d.daemon.logs());
    let bad = testsaslauthd(s, "alice", "wrong-password", "imap");
    assert!(bad.contains("NO") && !bad.contains("OK"), "{bad}");
    let unknown = testsaslauthd(s, "nobody", ALICE_PW, "imap");
    assert!(unknown.contains("NO"), "{unknown}");
    // bob: IMAP yes, SMTP no (no email-send).
    assert!(testsaslauthd(s, "bob", BOB_PW, "imap").contains("OK"));
    let smtp = testsaslauthd(s, "bob", BOB_PW, "smtp");
    assert!(smtp.contains("NO") && !smtp.contains("OK"), "{smtp}");
    let metrics = get(&d.daemon.url("/metrics"), None).body;
    assert!(metrics.contains(r#"frontend="saslauthd""#), "{metrics}");
}

#[test]
fn nginx_imap_proxy_authenticates_through_auth_http() {
    let backend = ImapBackend::start();
    let d = MailDaemon::start(Some(backend.addr));
    let nginx = Nginx::start(&d.http_addr(), NGINX_KEY);
    let (greeting, answer) = imap_login(&nginx.imap_addr(), "alice", ALICE_PW);
    assert!(greeting.starts_with("* OK"), "{greeting}");
    assert!(
        answer.starts_with("a1 OK"),
        "login through nginx failed: {answer:?}\n{}\n{}",
        nginx.error_log(),
        d.daemon.logs()
    );
    let logins = backend.logins.lock().unwrap().clone();
    assert_eq!(
        logins,
        vec![format!("alice {ALICE_PW}")],
        "what nginx passed upstream"
    );

    let (_, answer) = imap_login(&nginx.imap_addr(), "alice", "wrong-password");
    assert!(
        answer.starts_with("a1 NO"),
        "wrong password through nginx: {answer:?}\n{}",
        nginx.error_log()
    );
    assert!(answer.contains("Invalid login or password"), "{answer}");
    assert_eq!(
        backend.logins.lock().unwrap().len(),
        1,
        "a refused login reached the backend"
    );
    let metrics = get(&d.daemon.url("/metrics"), None).body;
    assert!(metrics.contains(r#"frontend="nginx""#), "{metrics}");
}

#[test]
fn dovecot_auth_over_tcp_answers_pipelined_requests_and_keeps_bad_clients_apart() {
    let mut d = MailDaemon::start(None);
    let mut c = DovecotClient::connect(&d.dovecot_addr());
    assert_eq!(
        c.handshake.first().map(String::as_str),
        Some("VERSION\t1\t2")
    );
    assert!(
        c.handshake.iter().any(|l| l == "MECH\tPLAIN\tplaintext"),
        "{:?}",
        c.handshake
    );
    assert!(c.handshake.iter().any(|l| l.starts_with("SPID\t")));
    // A wrong password (answered after the failure delay) overtaken by a right one.
    c.send(&format!(
        "AUTH\t1\tPLAIN\tservice=smtp\trip=127.0.0.1\tresp={}\nAUTH\t2\tPLAIN\tservice=smtp\trip=127.0.0.1\tresp={}\n",
        sasl_plain("alice", "wrong"),
        sasl_plain("alice", ALICE_PW)
    ));
    assert_eq!(c.line().as_deref(), Some("OK\t2\tuser=alice"));
    assert_eq!(
        c.line().as_deref(),
        Some("FAIL\t1\tuser=alice\treason=Authentication failed")
    );
    // Not secured and not loopback: plaintext refused.
    c.send(&format!(
        "AUTH\t3\tPLAIN\tservice=smtp\trip=192.0.2.1\tresp={}\n",
        sasl_plain("alice", ALICE_PW)
    ));
    let line = c.line().unwrap_or_default();
    assert!(
        line.starts_with("FAIL\t3\tcode=auth_mech_ssl_required"),
        "{line}"
    );
    // A protocol violation closes that connection only.
    let mut rogue = DovecotClient::connect(&d.dovecot_addr());
    rogue.send("BOGUS\n");
    assert_eq!(rogue.line(), None);
    c.send(&format!(
        "AUTH\t4\tPLAIN\tservice=imap\trip=127.0.0.1\tresp={}\n",
        sasl_plain("bob", BOB_PW)
    ));
    assert_eq!(c.line().as_deref(), Some("OK\t4\tuser=bob"));
    // SIGTERM: the daemon drains and exits cleanly.
    drop(c);
    let status = d.daemon.stop();
    assert!(status.success(), "{status}");
}

#[test]
fn benchmark_tool_drives_the_dovecot_auth_listener() {
    let d = MailDaemon::start(None);
    let bench = postern_bin().with_file_name("postern-bench");
    let out = std::process::Command::new(&bench)
        .args([
            "--connect",
            &d.dovecot_addr(),
            "--user",
            "alice",
            "--password",
            ALICE_PW,
        ])
        .args(["-c", "2", "-n", "4", "-d", "2"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bench.display()));
    let text = output(&out);
    assert!(out.status.success(), "{text}");
    let field = |name: &str| -> f64 {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name}= in {text}"))
    };
    assert_eq!(field("fail"), 0.0, "{text}");
    assert!(field("ok") >= 8.0 && field("req_per_s") > 0.0, "{text}");
    assert!(field("p99_ms") >= field("p50_ms"), "{text}");
    // A wrong password is reported as failures and a non-zero exit.
    let out = std::process::Command::new(&bench)
        .args([
            "--connect",
            &d.dovecot_addr(),
            "--user",
            "alice",
            "--password",
            "wrong",
        ])
        .args(["-c", "1", "-n", "2", "-d", "0.5"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", output(&out));
}

/// The soak test's flags (benches/soak.sh): `--user-file` sends the requests to each user in
/// turn, `--rip` is passed as the client's address, `--allow-temp` adds `temp=` to the result
/// line; a wrong password in the file still fails the run.
#[test]
fn benchmark_tool_takes_a_user_file_and_a_client_address() {
    let d = MailDaemon::start(None);
    let bench = postern_bin().with_file_name("postern-bench");
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users");
    let run = |file: &str| {
        std::fs::write(&users, file).expect("write the user file");
        std::process::Command::new(&bench)
            .args(["--connect", &d.dovecot_addr(), "--user-file"])
            .arg(&users)
            .args(["--service", "imap", "--rip", "192.0.2.7", "--allow-temp"])
            .args(["-c", "1", "-n", "2", "-d", "0.5"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bench.display()))
    };
    let out = run(&format!("alice\t{ALICE_PW}\nbob\t{BOB_PW}\n"));
    let text = output(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(" fail=0 ") && text.trim_end().ends_with(" temp=0"),
        "{text}"
    );
    // bob's wrong password is sent too: the run fails, alice's logins still count as OK.
    let out = run(&format!("alice\t{ALICE_PW}\nbob\twrong\n"));
    let text = output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        !text.contains(" ok=0 ") && !text.contains(" fail=0 "),
        "{text}"
    );
}

/// Postfix's smtpd (running as user `postfix`) reaches the dovecot-auth listener on a unix
/// socket: the directory is searchable by everyone, the socket is `mode = "0660"` with
/// `group = "postfix"`, as in the packaged unit's /run/postern.
#[test]
fn postfix_smtp_auth_over_a_unix_socket() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().expect("tempdir");
    // tempdir() makes the directory 0700; smtpd must be able to traverse it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).expect("mkdir run");
    std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = run_dir.join("auth");
    let config = format!(
        r#"
[server]
state-dir = "state"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"

[[listener]]
protocol = "dovecot-auth"
bind = "unix:{}"
mode = "0660"
group = "postfix"
"#,
        socket.display()
    );
    let config_path = dir.path().join("postern.toml");
    std::fs::write(&config_path, &config).expect("write config");
    apply_provisioning(
        &config_path,
        dir.path(),
        &format!("[[account]]\nname = \"alice\"\npassword = \"{ALICE_PW}\"\nroles = \"user\"\n"),
    );
    let daemon = Daemon::start_in(dir, &config, &[]);

    let meta = std::fs::metadata(&socket).expect("socket exists");
    assert_eq!(meta.mode() & 0o777, 0o660, "socket mode");
    let postfix_gid = std::fs::read_to_string("/etc/group")
        .expect("/etc/group")
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"postfix")).then(|| f.get(2).and_then(|g| g.parse::<u32>().ok()))
        })
        .flatten()
        .expect("group postfix (package postfix)");
    assert_eq!(meta.gid(), postfix_gid, "socket group");

    // An absolute smtpd_sasl_path is a unix socket (the harness runs smtpd unchrooted).
    let postfix = Postfix::start(socket.to_str().expect("utf-8"));
    let ok = postfix.swaks("PLAIN", "alice", ALICE_PW);
    let text = output(&ok);
    assert!(
        ok.status.success() && text.contains("235 2.7.0 Authentication successful"),
        "alice refused over the unix socket:\n{text}\n{}\n{}",
        postfix.maillog(),
        daemon.logs()
    );
    let bad = postfix.swaks("PLAIN", "alice", "not-her-password");
    let text = output(&bad);
    assert!(
        !bad.status.success() && text.contains("535 5.7.8") && !text.contains("235 "),
        "wrong password over the unix socket:\n{text}"
    );
    assert!(
        postfix.maillog_has("sasl_username=alice"),
        "{}",
        postfix.maillog()
    );
}
