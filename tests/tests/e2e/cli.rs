//! The command line: exit codes, hash-password, the embedded default.

use postern_e2e::*;

#[test]
fn hash_password_makes_argon2id() {
    let dir = tempfile::tempdir().unwrap();
    let a = postern(&["hash-password"], dir.path(), Some("correct horse\n"));
    let b = postern(
        &["hash-password", "--scheme", "argon2id"],
        dir.path(),
        Some("correct horse\n"),
    );
    let (ha, _) = text(&a);
    let (hb, _) = text(&b);
    assert!(ha.starts_with("$argon2id$v=19$"), "{ha}");
    assert_ne!(ha, hb, "a fresh salt each time");
    let empty = postern(&["hash-password"], dir.path(), Some("\n"));
    assert_eq!(empty.status.code(), Some(1));
    let bad = postern(
        &["hash-password", "--scheme", "md5"],
        dir.path(),
        Some("x\n"),
    );
    assert_eq!(bad.status.code(), Some(1));
    // The hash works as a provisioned secret.
    let cfg = dir.path().join("p.toml");
    std::fs::write(&cfg, "[store]\nurl = \"sqlite://s/p.db\"\n").unwrap();
    let prov = dir.path().join("prov.toml");
    std::fs::write(
        &prov,
        format!("[[account]]\nname = \"h\"\nsecret = \"{}\"\n", ha.trim()),
    )
    .unwrap();
    let out = postern(
        &[
            "apply",
            "--config",
            cfg.to_str().unwrap(),
            prov.to_str().unwrap(),
        ],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn bad_command_lines_are_user_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        postern(&["frobnicate"], dir.path(), None).status.code(),
        Some(1)
    );
    assert_eq!(
        postern(&["--version"], dir.path(), None).status.code(),
        Some(0)
    );
    let out = postern(
        &["apply", "--config", "/nope.toml", "/nope-prov.toml"],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn embedded_default_runs_and_prints_the_admin_password_once() {
    let mut d = Daemon::start_embedded(&[]);
    assert_eq!(d.addr("http"), "127.0.0.1:8480");
    assert_eq!(d.addr("dovecot-auth"), "127.0.0.1:8481");
    let line = d
        .banner
        .iter()
        .find(|l| l.starts_with("created account \"admin\" with password: "))
        .expect("password line");
    let password = line.rsplit(' ').next().unwrap().to_string();
    assert!(password.len() >= 16);
    let r = login("http://127.0.0.1:8480/auth/login", "admin", &password);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["permissions"].as_array().unwrap().len(), 265);
    assert!(d.dir.path().join("data/postern.db").exists());
    assert!(
        !d.logs().contains(&password),
        "the password is printed, never logged"
    );
    let dir = d.dir.path().to_path_buf();
    assert!(d.stop().success());
    // A second start on the same store creates nothing and prints no password.
    let out = std::process::Command::new(postern_bin())
        .arg("serve")
        .current_dir(&dir)
        .env("POSTERN_LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &out.id().to_string()])
        .status();
    let output = out.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ready"), "{stdout}");
    assert!(!stdout.contains("password"), "{stdout}");
}
