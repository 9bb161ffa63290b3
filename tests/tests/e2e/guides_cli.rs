//! `postern auth test` (the counterpart of `doveadm auth test`) and `postern status`, both
//! asking the running daemon, and both saying so in one line with exit 2 when it is down.

use postern_e2e::*;

const PROVISION: &str = r#"
[[account]]
name = "alice"
password = "Alice-cli-pw"
roles = "user"

[[account]]
name = "bob"
password = "Bob-cli-pw"
roles = "user"
permissions = { mode = "merge", disabled = ["email-send"] }
"#;

fn cli(d: &Daemon, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let config = d.config.to_str().expect("utf-8").to_string();
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["--config", &config]);
    let out = postern(&full, d.dir.path(), stdin);
    let (o, e) = text(&out);
    (out.status.code().unwrap_or(-1), o, e)
}

#[test]
fn auth_test_and_status_ask_the_running_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("auth.sock");
    let mut d = Daemon::start_in(
        dir,
        &format!(
            "[server]\nstate-dir = \"state\"\n\n[[listener]]\nprotocol = \"http\"\n\
             bind = \"127.0.0.1:{}\"\n\n[[listener]]\nprotocol = \"dovecot-auth\"\n\
             bind = \"unix:{}\"\n",
            free_port(),
            socket.display()
        ),
        &[],
    );
    d.apply(PROVISION);
    let r = d.login_until(
        std::time::Duration::from_secs(10),
        "alice",
        "Alice-cli-pw",
        |r| r.status == 200,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let (code, out, err) = cli(&d, &["auth", "test", "alice"], Some("Alice-cli-pw\n"));
    assert_eq!(code, 0, "{out}{err}");
    for line in [
        "passdb: alice auth succeeded",
        "  user=alice",
        "directory: internal",
        "roles: user",
        "service smtp requires authenticate: granted",
        "service smtp requires email-send: granted",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "{line:?} missing:\n{out}"
        );
    }
    assert!(!out.contains("Alice-cli-pw") && !err.contains("Alice-cli-pw"));

    let (code, out, _) = cli(&d, &["auth", "test", "alice"], Some("wrong\n"));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("passdb: alice auth failed"), "{out}");

    // bob: the right password, but SMTP needs email-send.
    let (code, out, _) = cli(&d, &["auth", "test", "bob"], Some("Bob-cli-pw\n"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("service smtp requires email-send: MISSING"),
        "{out}"
    );
    let (code, out, _) = cli(
        &d,
        &[
            "auth",
            "test",
            "bob",
            "--service",
            "imap",
            "--mechanism",
            "login",
        ],
        Some("Bob-cli-pw\n"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("service imap requires imap-authenticate: granted"),
        "{out}"
    );

    let (code, out, err) = cli(&d, &["status"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "postern {} (daemon at ",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(
        out.lines().next().unwrap_or_default().ends_with("ready"),
        "{out}"
    );
    for line in [
        "listeners:",
        "  http ",
        "  dovecot-auth ",
        "store: ok",
        "sessions active: ",
        "hash queue depth: ",
        "store generation: ",
        "throttle locks:",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "{line:?} missing:\n{out}"
        );
    }
    assert_eq!(out.matches("accepting").count(), 2, "{out}");

    // The daemon down: one line, exit 2.
    assert!(d.stop().success());
    let (code, out, err) = cli(&d, &["auth", "test", "alice"], Some("Alice-cli-pw\n"));
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is postern running?"), "{err}");
    let (code, out, err) = cli(&d, &["status"], None);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is postern running?"), "{err}");
}
