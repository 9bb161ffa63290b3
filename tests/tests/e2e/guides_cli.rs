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

#[test]
fn hash_password_lists_its_schemes_and_takes_dovecot_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let help = postern(&["hash-password", "--help"], dir.path(), None);
    let (help, _) = text(&help);
    for scheme in [
        "argon2id",
        "{ARGON2ID}",
        "{SHA512-CRYPT}",
        "{BLF-CRYPT}",
        "{SSHA512}",
        "{PLAIN}",
    ] {
        assert!(help.contains(scheme), "{scheme} not in:\n{help}");
    }
    for name in ["ARGON2ID", "argon2id"] {
        let out = postern(
            &["hash-password", "--scheme", name],
            dir.path(),
            Some("pw\n"),
        );
        assert!(
            text(&out).0.starts_with("$argon2id$"),
            "{name}: {:?}",
            text(&out)
        );
    }
    let out = postern(
        &["hash-password", "--scheme", "{ARGON2ID}"],
        dir.path(),
        Some("pw\n"),
    );
    assert!(
        text(&out).0.starts_with("{ARGON2ID}$argon2id$"),
        "{:?}",
        text(&out)
    );
    // A scheme Postern verifies but does not write: said so, exit 1.
    let out = postern(
        &["hash-password", "--scheme", "SHA512-CRYPT"],
        dir.path(),
        Some("pw\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("accepted as stored"),
        "{:?}",
        text(&out)
    );
}

#[test]
fn admin_password_given_to_a_store_with_accounts_is_reported() {
    let state = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[server]\nstate-dir = \"{}\"\n\n[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\n",
        state.path().display()
    );
    let env = [("POSTERN_ADMIN_PASSWORD", "first-admin-pw")];
    let mut first = Daemon::start(&config, &env);
    assert!(first
        .banner
        .iter()
        .any(|l| l.contains("POSTERN_ADMIN_PASSWORD")));
    assert!(!first.logs().contains("POSTERN_ADMIN_PASSWORD ignored"));
    assert!(first.stop().success());
    let second = Daemon::start(&config, &[("POSTERN_ADMIN_PASSWORD", "another-pw")]);
    let logs = second.logs();
    assert!(logs.contains("POSTERN_ADMIN_PASSWORD ignored"), "{logs}");
    assert!(!logs.contains("another-pw"), "the password was logged");
    // And the first password still holds.
    assert_eq!(
        login(&second.url("/auth/login"), "admin", "first-admin-pw").status,
        200
    );
}

/// `postern --help` and every subcommand's help (recursively) show examples, and every flag's
/// help gives one ("e.g."), so a new subcommand cannot land undocumented.
#[test]
fn every_subcommand_help_has_examples_for_every_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queue = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let (help, _) = text(&postern(&args, dir.path(), None));
        seen += 1;
        let mut section = "";
        let mut flag: Option<String> = None;
        let mut flag_text = String::new();
        let check_flag = |flag: &Option<String>, text: &str| {
            if let Some(f) = flag {
                assert!(
                    text.contains("e.g."),
                    "postern {} --help: {f} has no example:\n{help}",
                    path.join(" ")
                );
            }
        };
        for line in help.lines() {
            if !line.starts_with(' ') {
                section = line.trim_end_matches(':');
                continue;
            }
            match section {
                "Commands" => {
                    let name = line.split_whitespace().next().unwrap_or_default();
                    if name != "help" {
                        let mut sub = path.clone();
                        sub.push(name.to_string());
                        queue.push(sub);
                    }
                }
                "Options" => {
                    let trimmed = line.trim_start();
                    if trimmed.starts_with('-') {
                        check_flag(&flag, &flag_text);
                        let name = trimmed.split_whitespace().next().unwrap_or_default();
                        let builtin = ["-h,", "--help", "-V,", "--version"].contains(&name);
                        flag = (!builtin).then(|| name.to_string());
                        flag_text = trimmed.to_string();
                    } else {
                        flag_text.push_str(trimmed);
                    }
                }
                _ => {}
            }
        }
        check_flag(&flag, &flag_text);
        let leaf_or_root = path.is_empty() || !help.contains("\nCommands:");
        assert!(
            !leaf_or_root || help.contains("Examples:"),
            "postern {} --help has no examples:\n{help}",
            path.join(" ")
        );
    }
    assert!(seen >= 9, "only {seen} help pages");
}
