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

/// One run reports every problem of a file: an unknown variant in one listener hides neither a
/// misspelt key in another nor anything of the other tables, and semantic errors of what did
/// parse come with them. Keys are written as the user wrote them, with "did you mean" hints.
#[test]
fn check_config_collects_parse_and_semantic_errors_from_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        r#"
[sever]
public-url = "https://x"

[server]
public-url = "ftp://nope"

[[listener]]
protocol = "htpp"
bind = "127.0.0.1:0"

[[listener]]
protocol = "dovecot-auth"
bnd = "127.0.0.1:1"
bind = "localhost-ish"
mechanisms = ["plian"]

[authentication]
directories = ["internal", "corp", "ghost", "broken"]

[auth-http]
backends = { imap = "mail.example.org:143", pop3 = "127.0.0.1:110" }
shared-secret-file = "/nonexistent/nginx-key"

[directory.broken]
type = "ldpa"

[directory.corp]
type = "ldap"
url = "ldap://127.0.0.1"
base-dn = "dc=example,dc=org"
bind-pasword = "x"
pool-size = 0
bind-password-file = "/nonexistent/ldap-password"
attributes = { nmae = "cn" }
"#,
    )
    .unwrap();
    let out = postern(
        &["check-config", "--config", cfg.to_str().unwrap()],
        dir.path(),
        None,
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for line in [
        "p.toml: sever: unknown field `sever`, did you mean `server`?",
        "p.toml: server.public-url: must be an http:// or https:// URL",
        "p.toml: listener[0].protocol: unknown variant `htpp`, did you mean `http`?",
        "p.toml: listener[1].bnd: unknown field `bnd`, did you mean `bind`?",
        "p.toml: listener[1].mechanisms: unknown mechanism \"plian\", did you mean `plain`?",
        "p.toml: authentication.directories[2]: no [directory.ghost] section",
        "p.toml: directory.broken.type: unknown variant `ldpa`, did you mean `ldap`?",
        "p.toml: directory.corp.bind-pasword: unknown field `bind-pasword`, did you mean `bind-password`?",
        "p.toml: directory.corp.attributes.nmae: unknown field `nmae`, did you mean `name`?",
        "p.toml: directory.corp.pool-size: must be at least 1",
        "p.toml: directory.corp.bind-password-file: cannot read /nonexistent/ldap-password: ",
        "p.toml: auth-http.backends.imap: \"mail.example.org:143\" must be IP:port",
        "p.toml: auth-http.shared-secret-file: cannot read /nonexistent/nginx-key: ",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with("postern: ") && l.contains(line)),
            "{line:?} missing:\n{stderr}"
        );
    }
    // A listener's semantic error is reported under its own index even when an earlier one
    // did not parse.
    assert!(
        stderr.contains("p.toml: listener[1].bind: \"localhost-ish\" is neither"),
        "{stderr}"
    );
    // One key-path style: indexes in brackets, never `listener.0.protocol`.
    assert!(!stderr.contains("listener."), "{stderr}");
    // A table that did not parse is not also "missing", and nothing is reported twice.
    assert!(!stderr.contains("[directory.broken]"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let unique: std::collections::BTreeSet<&&str> = lines.iter().collect();
    assert_eq!(lines.len(), unique.len(), "{stderr}");
    assert!(!stderr.contains("auth-http.backends.pop3"), "{stderr}");
}

/// A value set by an environment variable is reported against the variable, not the file.
#[test]
fn errors_from_the_environment_name_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(&cfg, "[store]\npool-size = 4\n\n[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\nmax-connections = \"lots\"\n").unwrap();
    let out = std::process::Command::new(postern_bin())
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .env("POSTERN_STORE__POOL_SIZE", "many")
        .env("POSTERN_SERVER__PUBLC_URL", "https://x")
        .env("POSTERN_LOG__LEVEL", "info")
        .env("POSTERN_AUTHENTICATION__MAX_FAILURES_PER_IP", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for line in [
        "postern: POSTERN_STORE__POOL_SIZE: store.pool-size: invalid type",
        "postern: POSTERN_SERVER__PUBLC_URL: server.publc-url: unknown field `publc-url`, did you mean `public-url`?",
        "postern: POSTERN_AUTHENTICATION__MAX_FAILURES_PER_IP: authentication.max-failures-per-ip: must be at least 1",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(line)),
            "{line:?} missing:\n{stderr}"
        );
    }
    // The file's own problems still name the file.
    let file_line = format!(
        "postern: {}: listener[0].max-connections: invalid type",
        cfg.display()
    );
    assert!(
        stderr.contains(&file_line),
        "{file_line:?} missing:\n{stderr}"
    );
    assert!(!stderr.contains("LOG__LEVEL"), "{stderr}");
    assert_eq!(stderr.lines().count(), 4, "{stderr}");
}

/// `[auth-http]` is checked by check-config, not first when nginx asks.
#[test]
fn auth_http_settings_are_checked_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("nginx-key");
    std::fs::write(&key, "k\n").unwrap();
    let cfg = dir.path().join("p.toml");
    let write = |auth_http: &str| {
        std::fs::write(
            &cfg,
            format!("[store]\nurl = \"sqlite://state/p.db\"\n\n[auth-http]\n{auth_http}\n"),
        )
        .unwrap();
        let out = postern(
            &["check-config", "--config", cfg.to_str().unwrap()],
            dir.path(),
            None,
        );
        (out.status.code(), text(&out).1)
    };
    let good = format!(
        "backends = {{ imap = \"127.0.0.1:143\", smtp = \"[::1]:25\" }}\nshared-secret-file = {:?}",
        key.display().to_string()
    );
    let (code, stderr) = write(&good);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = write(
        "backends = { imap = \"imap.example.org\", imapp = \"127.0.0.1:1\" }\nshared-secret-file = \"missing-key\"",
    );
    assert_eq!(code, Some(1), "{stderr}");
    for line in [
        "p.toml: auth-http.backends.imap: \"imap.example.org\" must be IP:port",
        "p.toml: auth-http.backends.imapp: protocol must be imap, pop3 or smtp, did you mean `imap`?",
        "p.toml: auth-http.shared-secret-file: cannot read missing-key: ",
    ] {
        assert!(stderr.contains(line), "{line:?} missing:\n{stderr}");
    }
}

/// A misspelt permission name in a provisioning file gets the closest real one as a hint.
#[test]
fn unknown_permission_names_suggest_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("postern.toml");
    std::fs::write(&cfg, "[store]\nurl = \"sqlite://state/p.db\"\n").unwrap();
    let provision = dir.path().join("provision.toml");
    std::fs::write(
        &provision,
        "[[role]]\nid = \"helpdesk\"\ndescription = \"x\"\nenabledPermissions = [\"individual-lst\", \"fly-to-the-moon\"]\n",
    )
    .unwrap();
    let out = postern(
        &[
            "apply",
            "--config",
            cfg.to_str().unwrap(),
            provision.to_str().unwrap(),
        ],
        dir.path(),
        None,
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "role \"helpdesk\": unknown permission \"individual-lst\", did you mean `individual-list`?",
        "role \"helpdesk\": unknown permission \"fly-to-the-moon\"",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in {stderr}");
    }
    assert!(
        !stderr.contains("\"fly-to-the-moon\", did you mean"),
        "{stderr}"
    );
}
