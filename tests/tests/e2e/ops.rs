//! Operations: the systemd unit, JSON logs, the Grafana dashboard against the real metric names,
//! several daemons sharing one PostgreSQL store, and PostgreSQL outages.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postern_e2e::mail::DovecotClient;
use postern_e2e::pg::Postgres;
use postern_e2e::*;

const ALICE_PW: &str = "Ops-alice-pw-7c1e";
const WRONG_PW: &str = "Ops-wrong-pw-93ab";

/// alice is a member of `staff`, whose role `mailer` lacks `pop3-authenticate`.
fn provision(disabled: &str) -> String {
    format!(
        r#"
[[role]]
id = "mailer"
roleIds = ["user"]
disabledPermissions = ["{disabled}"]

[[account]]
name = "staff"
type = "group"
roles = ["mailer"]

[[account]]
name = "alice"
password = "{ALICE_PW}"
roles = []
memberOf = ["staff"]
"#
    )
}

fn pg_config(url: &str) -> String {
    format!(
        r#"
[server]
state-dir = "state"

[store]
url = "{url}"
timeout = "1s"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"
"#
    )
}

fn permissions(r: &Reply) -> Vec<String> {
    r.json()["permissions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_daemons_share_one_postgres_store() {
    let pg = Postgres::start();
    let url = pg.database("postern");
    let config = pg_config(&url);
    let a = Daemon::start(&config, &[]);
    let b = Daemon::start(&config, &[]);
    apply_provisioning(&a.config, a.dir.path(), &provision("pop3-authenticate"));
    for d in [&a, &b] {
        within(Duration::from_secs(5), "alice provisioned", || {
            login(&d.url("/auth/login"), "alice", ALICE_PW).status == 200
        });
    }

    // A session issued by A is valid on B.
    let session = login(&a.url("/auth/login"), "alice", ALICE_PW);
    assert_eq!(session.status, 200, "{}", session.body);
    let token = session.json()["token"]
        .as_str()
        .expect("token in session view")
        .to_string();
    let on_b = get(&b.url("/auth/session"), Some(&token));
    assert_eq!(on_b.status, 200, "A's session refused by B: {}", on_b.body);
    assert_eq!(on_b.json()["principal"]["name"], "alice", "{}", on_b.body);

    // Logout on B is seen by A within a second.
    let out = delete(&b.url("/auth/session"), &token);
    assert_eq!(out.status, 204, "{}", out.body);
    let seen = within(Duration::from_secs(1), "logout on B seen by A", || {
        get(&a.url("/auth/session"), Some(&token)).status == 401
    });
    eprintln!("logout seen by the other daemon after {seen:?}");
    assert_eq!(get(&b.url("/auth/session"), Some(&token)).status, 401);

    // An `apply` (the CLI, not either daemon) is seen by both within a second: the role now
    // disables imap-authenticate instead of pop3-authenticate.
    let before = permissions(&login(&b.url("/auth/login"), "alice", ALICE_PW));
    assert!(
        before.iter().any(|p| p == "imap-authenticate")
            && !before.iter().any(|p| p == "pop3-authenticate"),
        "{before:?}"
    );
    let cli_dir = tempfile::tempdir().expect("tempdir");
    let cli_config = cli_dir.path().join("postern.toml");
    std::fs::write(&cli_config, &config).expect("write config");
    apply_provisioning(&cli_config, cli_dir.path(), &provision("imap-authenticate"));
    let mut pending = vec![("A", &a), ("B", &b)];
    let seen = within(Duration::from_secs(1), "apply seen by both daemons", || {
        pending.retain(|(_, d)| {
            // Still pending until pop3 is allowed and imap refused.
            let p = permissions(&login(&d.url("/auth/login"), "alice", ALICE_PW));
            let updated = p.iter().any(|p| p == "pop3-authenticate")
                && !p.iter().any(|p| p == "imap-authenticate");
            !updated
        });
        pending.is_empty()
    });
    eprintln!("apply seen by both daemons after {seen:?}");

    // Failed logins add up across the daemons: 5 on each is under the limit of 10 on either,
    // but 10 in all locks alice on both once they have synced (every 500 ms). Nothing logs in
    // meanwhile: a success would clear the count.
    for d in [&a, &b] {
        for _ in 0..5 {
            assert_eq!(login(&d.url("/auth/login"), "alice", WRONG_PW).status, 401);
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    for d in [&a, &b] {
        let r = login(&d.url("/auth/login"), "alice", ALICE_PW);
        assert_eq!(r.status, 429, "{}", r.body);
        let metrics = get(&d.url("/metrics"), None).body;
        assert!(
            metrics.contains("postern_throttle_locked{kind=\"account\"} 1"),
            "{metrics}"
        );
    }
}

#[test]
fn store_unreachable_at_start_is_a_clear_error() {
    // Nothing listens on this port: the store cannot be reached.
    let url = format!("postgres://postgres@127.0.0.1:{}/postern", free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("postern.toml");
    std::fs::write(&config, pg_config(&url)).expect("write config");
    let mut child = Command::new(postern_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("POSTERN_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn postern serve");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("postern kept running without its store: {:?}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    let (stdout, stderr) = text(&out);
    assert!(!status.success(), "{status}");
    assert_eq!(
        status.code(),
        Some(2),
        "runtime failure is exit 2: {stderr}"
    );
    assert!(!stdout.contains("ready"), "{stdout}");
    // One line naming what failed and why.
    assert!(
        stderr.lines().any(|l| l.starts_with("postern: ")
            && l.contains("store")
            && l.contains("unavailable")
            && l.to_lowercase().contains("connection refused")),
        "the error should say the store is unavailable and why: {stderr}"
    );
}

#[test]
fn postgres_outage_is_temporary_and_the_daemon_recovers() {
    let pg = Postgres::start();
    let url = pg.database("postern");
    let d = Daemon::start(&pg_config(&url), &[]);
    apply_provisioning(&d.config, d.dir.path(), &provision("pop3-authenticate"));
    within(Duration::from_secs(5), "alice provisioned", || {
        login(&d.url("/auth/login"), "alice", ALICE_PW).status == 200
    });
    assert_eq!(get(&d.url("/readyz"), None).status, 200);

    pg.stop();
    let ready = get(&d.url("/readyz"), None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_ne!(ready.json()["store"], "ok", "{}", ready.body);
    for password in [ALICE_PW, WRONG_PW] {
        let r = login(&d.url("/auth/login"), "alice", password);
        assert_eq!(
            r.status, 503,
            "an outage must be a temporary failure, not a verdict: {}",
            r.body
        );
        assert_eq!(r.json()["error"], "temporarily_unavailable", "{}", r.body);
    }
    assert_eq!(get(&d.url("/healthz"), None).status, 200, "liveness");

    pg.start_again();
    within(Duration::from_secs(15), "recovery after restart", || {
        get(&d.url("/readyz"), None).status == 200
            && login(&d.url("/auth/login"), "alice", ALICE_PW).status == 200
    });
    assert_eq!(login(&d.url("/auth/login"), "alice", WRONG_PW).status, 401);
}

/// The unit with `/usr/sbin/postern` replaced by the built binary (verify checks that
/// ExecStart= names an executable).
fn unit_copy(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(root().join("systemd/postern.service")).expect("unit");
    let unit = unit.replace("/usr/sbin/postern", postern_bin().to_str().expect("utf-8"));
    let path = dir.join("postern.service");
    std::fs::write(&path, unit).expect("write unit");
    path
}

fn systemd_analyze(args: &[&str], unit: &Path) -> (bool, String, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-analyze (package systemd): {e}"));
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

#[test]
fn systemd_socket_unit_verifies_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    unit_copy(dir.path());
    let socket = dir.path().join("postern.socket");
    std::fs::copy(root().join("systemd/postern.socket"), &socket).expect("copy socket unit");
    let (ok, stdout, stderr) = systemd_analyze(&["verify"], &socket);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("postern")).collect();
    assert!(
        ok && ours.is_empty(),
        "systemd-analyze verify:\n{stdout}\n{stderr}"
    );
    // It activates the service beside it, and that service keeps /run/postern when it stops.
    let unit = std::fs::read_to_string(dir.path().join("postern.service")).expect("unit");
    assert!(unit.contains("\nRuntimeDirectoryPreserve=yes\n"), "{unit}");
}

#[test]
fn systemd_unit_verifies_clean_and_is_hardened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_copy(dir.path());
    // `User=postern` need not exist here: verify does not resolve users (it would only at
    // start), so the unit is checked exactly as shipped.
    let (ok, stdout, stderr) = systemd_analyze(&["verify"], &unit);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("postern")).collect();
    assert!(
        ok && ours.is_empty(),
        "systemd-analyze verify:\n{stdout}\n{stderr}"
    );

    // The check can fail: an unknown key is reported.
    let bad = dir.path().join("bad.service");
    let text = std::fs::read_to_string(&unit).expect("read unit");
    std::fs::write(
        &bad,
        text.replace("[Service]\n", "[Service]\nNoSuchKey=1\n"),
    )
    .expect("write");
    let (_, _, stderr) = systemd_analyze(&["verify"], &bad);
    assert!(
        stderr.contains("NoSuchKey"),
        "verify missed a bad key: {stderr}"
    );

    // Exposure score: README quotes it; a change that weakens the hardening fails here.
    let (ok, stdout, stderr) = systemd_analyze(&["security", "--offline=true"], &unit);
    let score: f64 = stdout
        .lines()
        .find_map(|l| l.split("postern.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}\n{stderr}"));
    assert!(ok, "{stdout}\n{stderr}");
    assert!(score <= 1.5, "exposure {score} got worse:\n{stdout}");

    for line in [
        "Type=notify",
        "User=postern",
        "RuntimeDirectory=postern",
        "StateDirectory=postern",
        "LoadCredential=",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ] {
        assert!(text.contains(line), "unit lacks {line}");
    }
}

#[test]
fn sysusers_creates_the_user_in_the_postfix_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("etc")).expect("mkdir");
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", dir.path().display()))
        .arg(root().join("systemd/postern.sysusers"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-sysusers (package systemd): {e}"));
    assert!(out.status.success(), "{:?}", text(&out));
    let passwd = std::fs::read_to_string(dir.path().join("etc/passwd")).expect("passwd");
    let group = std::fs::read_to_string(dir.path().join("etc/group")).expect("group");
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("postern:") && l.contains(":/var/lib/postern:")),
        "{passwd}"
    );
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("postfix:") && l.ends_with(":postern")),
        "{group}"
    );
}

/// A daemon with JSON logs, http and dovecot-auth on loopback, alice provisioned before start
/// (so no login is made except the test's own).
fn json_daemon() -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        r#"
[server]
state-dir = "state"

[log]
format = "json"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"

[[listener]]
protocol = "dovecot-auth"
bind = "127.0.0.1:{}"
"#,
        free_port()
    );
    let path = dir.path().join("postern.toml");
    std::fs::write(&path, &config).expect("write config");
    apply_provisioning(&path, dir.path(), &provision("pop3-authenticate"));
    Daemon::start_in(dir, &config, &[])
}

/// One success and one failure on http and on dovecot-auth.
fn four_logins(d: &Daemon) {
    assert_eq!(login(&d.url("/auth/login"), "alice", ALICE_PW).status, 200);
    assert_eq!(login(&d.url("/auth/login"), "alice", WRONG_PW).status, 401);
    let mut c = DovecotClient::connect(&d.addr("dovecot-auth"));
    c.send(&format!(
        "AUTH\t1\tPLAIN\tservice=imap\trip=127.0.0.1\tresp={}\n",
        sasl_plain("alice", ALICE_PW)
    ));
    assert_eq!(c.line().as_deref(), Some("OK\t1\tuser=alice"));
    c.send(&format!(
        "AUTH\t2\tPLAIN\tservice=imap\trip=127.0.0.1\tresp={}\n",
        sasl_plain("alice", WRONG_PW)
    ));
    let line = c.line().unwrap_or_default();
    assert!(line.starts_with("FAIL\t2"), "{line}");
}

#[test]
fn json_logs_one_line_per_authentication_without_secrets() {
    let mut d = json_daemon();
    four_logins(&d);
    let status = d.stop();
    assert!(status.success(), "{status}");
    let logs = d.logs();
    let mut auth = Vec::new();
    for line in logs.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        let fields = v.get("fields").cloned().unwrap_or_else(|| v.clone());
        if fields["message"] == "authentication" {
            auth.push(fields);
        }
    }
    assert_eq!(auth.len(), 4, "one line per authentication:\n{logs}");
    let mut seen = Vec::new();
    for f in &auth {
        for key in [
            "frontend",
            "mechanism",
            "directory",
            "outcome",
            "client",
            "ms",
        ] {
            assert!(
                f.get(key).is_some_and(|v| !v.is_null()),
                "authentication line lacks {key}: {f}"
            );
        }
        assert!(f["ms"].is_u64(), "duration is a number: {f}");
        assert_eq!(f["client"], "127.0.0.1", "the bare client address: {f}");
        assert_eq!(f["directory"], "internal", "{f}");
        seen.push(format!(
            "{} {}",
            f["frontend"].as_str().unwrap_or("?"),
            f["outcome"].as_str().unwrap_or("?")
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "dovecot-auth failure",
            "dovecot-auth success",
            "http failure",
            "http success"
        ],
        "{logs}"
    );
    let everything = format!("{}\n{}", d.banner.join("\n"), logs);
    for secret in [
        ALICE_PW,
        WRONG_PW,
        &sasl_plain("alice", ALICE_PW),
        &sasl_plain("alice", WRONG_PW),
    ] {
        assert!(
            !everything.contains(secret),
            "a secret was logged:\n{everything}"
        );
    }
}

/// Every `expr` of the dashboard, recursively.
fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// `postern_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("postern_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn grafana_dashboard_queries_only_metrics_the_daemon_exposes() {
    let path = root().join("etc/grafana/postern.json");
    let raw = std::fs::read_to_string(&path).expect("etc/grafana/postern.json");
    let dash: serde_json::Value = serde_json::from_str(&raw).expect("dashboard is JSON");
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );
    assert!(
        dash["__inputs"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["name"] == "DS_PROMETHEUS")),
        "a DS_PROMETHEUS datasource input"
    );
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    assert!(all.len() >= 10, "panels with queries: {all:?}");

    // Every expression is valid PromQL: promtool parses them as recording rules, with
    // Grafana's variables given plausible values.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in all.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$instance", ".*");
        let quoted = serde_json::to_string(&e).expect("quote");
        rules.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: {quoted}\n"
        ));
    }
    let rules_dir = tempfile::tempdir().expect("tempdir");
    let rules_file = rules_dir.path().join("rules.yml");
    std::fs::write(&rules_file, &rules).expect("write rules");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules_file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool (package prometheus): {e}"));
    assert!(out.status.success(), "{:?}\n{rules}", text(&out));

    // Make every labelled series exist, and keep a connection open for connections_active.
    let d = json_daemon();
    four_logins(&d);
    let _open = DovecotClient::connect(&d.addr("dovecot-auth"));
    let exposition = get(&d.url("/metrics"), None).body;
    let exposed: std::collections::BTreeSet<String> = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    let mut used = std::collections::BTreeSet::new();
    for e in &all {
        let names = metric_names(e);
        assert!(!names.is_empty(), "expr names no postern metric: {e}");
        for n in names {
            assert!(
                exposed.contains(&n),
                "{n} (in `{e}`) is not exposed:\n{exposition}"
            );
            used.insert(n);
        }
    }
    // Every SPEC §7 series and the extra gauges have a panel.
    for family in [
        "postern_auth_requests_total",
        "postern_auth_duration_seconds_bucket",
        "postern_directory_requests_total",
        "postern_directory_duration_seconds_bucket",
        "postern_sessions_issued_total",
        "postern_sessions_active",
        "postern_password_hash_verifications_total",
        "postern_connections_active",
        "postern_build_info",
        "postern_hash_queue_depth",
        "postern_password_hash_batched_total",
        "postern_throttle_locked",
        "postern_store_generation",
    ] {
        assert!(used.contains(family), "no panel uses {family}");
    }
}
