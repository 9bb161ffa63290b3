//! Shipped example files load, and a misspelled key in each is refused (hickory-dns's habit).

use postern_e2e::*;

fn misspellings(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with('[') {
            continue;
        }
        let Some((key, _)) = trimmed.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            continue;
        }
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[i] = line.replacen(key, &format!("{key}x"), 1);
        out.push((format!("{key}x"), lines.join("\n")));
    }
    out
}

#[test]
fn example_config_is_valid_and_every_misspelled_key_is_refused() {
    let example = root().join("etc/postern.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = postern(
        &["check-config", "--config", example.to_str().unwrap()],
        dir.path(),
        None,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let text0 = std::fs::read_to_string(&example).unwrap();
    let cases = misspellings(&text0);
    assert!(
        cases.len() > 30,
        "expected every key to be tried, got {}",
        cases.len()
    );
    for (key, body) in cases {
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, body).unwrap();
        let out = postern(
            &["check-config", "--config", path.to_str().unwrap()],
            dir.path(),
            None,
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{key} was accepted");
        assert!(
            stderr.contains("typo.toml"),
            "{key}: error does not name the file: {stderr}"
        );
        assert!(
            stderr.lines().all(|l| l.starts_with("postern: ")),
            "one line per error: {stderr}"
        );
    }
}

#[test]
fn example_provisioning_applies_and_every_misspelled_key_is_refused() {
    let example = root().join("etc/provision.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("postern.toml");
    std::fs::write(&cfg, "[store]\nurl = \"sqlite://state/p.db\"\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let out = postern(
        &["apply", "--config", cfg, example.to_str().unwrap()],
        dir.path(),
        None,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("secret of api-key alice-reporting: pak_"),
        "{stdout}"
    );
    let text0 = std::fs::read_to_string(&example).unwrap();
    for (key, body) in misspellings(&text0) {
        let path = dir.path().join("typo.toml");
        std::fs::write(&path, body).unwrap();
        let out = postern(
            &["apply", "--config", cfg, path.to_str().unwrap()],
            dir.path(),
            None,
        );
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{key} was accepted");
        assert!(stderr.contains("typo.toml"), "{key}: {stderr}");
    }
}

#[test]
fn environment_overrides_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(&cfg, "[store]\npool-size = 4\n").unwrap();
    let run_with = |k: &str, v: &str| {
        std::process::Command::new(postern_bin())
            .args(["check-config", "--config", cfg.to_str().unwrap()])
            .env(k, v)
            .output()
            .unwrap()
    };
    let out = run_with("POSTERN_STORE__POOL_SIZE", "0");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.pool-size"));
    let out = run_with("POSTERN_SERVER__NO_SUCH_KEY", "1");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a configuration variable: ignored.
    let out = run_with("POSTERN_ADMIN_PASSWORD", "x");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_reports_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        r#"
[server]
public-url = "ftp://nope"
hash-queue-per-address = 0

[[listener]]
protocol = "http"
bind = "localhost-ish"

[authentication]
directories = ["internal", "ghost"]
max-failures-per-ip = 0
failure-window = "0s"
"#,
    )
    .unwrap();
    let out = postern(
        &["check-config", "--config", cfg.to_str().unwrap()],
        dir.path(),
        None,
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    for key in [
        "server.public-url",
        "server.hash-queue-per-address",
        "listener[0].bind",
        "authentication.directories[1]",
        "authentication.max-failures-per-ip",
        "authentication.failure-window",
    ] {
        assert!(
            stderr.contains(&format!("p.toml: {key}: ")),
            "{key} missing: {stderr}"
        );
    }
    let out = postern(
        &["check-config", "--config", "/nonexistent/postern.toml"],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("/nonexistent/postern.toml"));
}
