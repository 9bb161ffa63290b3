//! `etc/prometheus/postern.rules.yml`: valid for promtool, its unit tests pass, and every
//! Postern series it names is one the daemon exposes.

use postern_e2e::*;

fn promtool(args: &[&str]) -> String {
    let dir = root().join("etc/prometheus");
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool (Debian package prometheus): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn alert_rules_check_test_and_name_only_exposed_series() {
    let checked = promtool(&["check", "rules", "postern.rules.yml"]);
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "postern.rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    let d = Daemon::start(
        "[server]\nstate-dir = \"state\"\n\n[[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\n",
        &[],
    );
    // Series with labels exist once something was counted: one login that fails.
    assert_eq!(login(&d.url("/auth/login"), "nobody", "wrong").status, 401);
    let exposed = get(&d.url("/metrics"), None).body;
    let rules = std::fs::read_to_string(root().join("etc/prometheus/postern.rules.yml"))
        .expect("read rules");
    let mut named = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("postern_") {
            named += 1;
            assert!(
                exposed.contains(&format!("# TYPE {word} ")),
                "{word} is not exposed by the daemon"
            );
        }
    }
    assert!(named >= 5, "the rules name {named} Postern series");
}
