//! The CLI over the management operations: `postern principal`, `passwd`, `role`,
//! `api-key`, `app-password` (with `--json`), `apply -` and `apply --prune`.

use std::time::Duration;

use postern_e2e::*;

use super::api::start;

fn cli(d: &Daemon, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let config = d.config.display().to_string();
    let mut all: Vec<&str> = vec![args[0]];
    // `--config` goes on the subcommand that takes it.
    all.extend(["--config", config.as_str()]);
    all.extend(&args[1..]);
    let out = postern(&all, d.dir.path(), stdin);
    let (o, e) = text(&out);
    (out.status.success(), o, e)
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn the_cli_manages_principals_roles_and_credentials() {
    let d = start();
    let (ok, o, e) = cli(
        &d,
        &[
            "principal",
            "add",
            "bob",
            "--email",
            "bob@example.org",
            "--json",
        ],
        None,
    );
    assert!(ok, "{o}{e}");
    assert_eq!(json(&o)["name"], "bob");
    let (ok, _, e) = cli(&d, &["passwd", "bob"], Some("Bob-pw-12345\n"));
    assert!(ok, "{e}");
    let r = d.login_until(
        Duration::from_secs(5),
        "bob@example.org",
        "Bob-pw-12345",
        |r| r.status == 200,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let (ok, o, e) = cli(
        &d,
        &[
            "principal",
            "set",
            "bob",
            r#"{"description": "Bob"}"#,
            "--json",
        ],
        None,
    );
    assert!(ok, "{e}");
    assert_eq!(json(&o)["description"], "Bob");
    let (ok, o, _) = cli(
        &d,
        &["principal", "list", "--type", "individual", "--json"],
        None,
    );
    assert!(ok);
    let names: Vec<String> = json(&o)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"bob".to_string()) && names.contains(&"dave".to_string()),
        "{names:?}"
    );
    // The same checks as the API: a name that is another account's email.
    let (ok, _, e) = cli(&d, &["principal", "add", "bob@example.org"], None);
    assert!(!ok && e.contains("is an email of account"), "{e}");

    let (ok, o, e) = cli(
        &d,
        &[
            "role",
            "add",
            "helpdesk",
            "--include",
            "user",
            "--enable",
            "individual-get",
            "--json",
        ],
        None,
    );
    assert!(ok, "{e}");
    assert_eq!(json(&o)["id"], "helpdesk");
    let (ok, _, e) = cli(&d, &["role", "add", "bad", "--enable", "fly"], None);
    assert!(!ok && e.contains("unknown permission \"fly\""), "{e}");
    let (ok, o, _) = cli(&d, &["role", "list"], None);
    assert!(ok && o.contains("helpdesk"), "{o}");

    let (ok, o, e) = cli(
        &d,
        &["api-key", "add", "bob", "--description", "ci", "--json"],
        None,
    );
    assert!(ok, "{e}");
    let key = json(&o)["secret"].as_str().unwrap().to_string();
    let id = json(&o)["id"].as_str().unwrap().to_string();
    assert_eq!(get(&d.url("/auth/session"), Some(&key)).status, 200);
    let (ok, o, _) = cli(&d, &["api-key", "list", "bob"], None);
    assert!(ok && o.contains(&id) && !o.contains(&key), "{o}");
    assert!(cli(&d, &["api-key", "revoke", "bob", &id], None).0);
    // The CLI is another process writing the SQLite store: the daemon's record cache learns
    // of it through the store's generation, polled every 500 ms.
    within(
        Duration::from_secs(3),
        "the revoked API key refused",
        || get(&d.url("/auth/session"), Some(&key)).status == 401,
    );

    let (ok, o, e) = cli(&d, &["app-password", "add", "bob"], None);
    assert!(ok, "{e}");
    let secret = o
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap()
        .to_string();
    assert_eq!(login(&d.url("/auth/login"), "bob", &secret).status, 200);

    assert!(cli(&d, &["principal", "remove", "bob"], None).0);
    let (ok, _, e) = cli(&d, &["principal", "show", "bob"], None);
    assert!(!ok && e.contains("does not exist"), "{e}");
}

#[test]
fn apply_reads_stdin_and_prunes_what_the_file_no_longer_names() {
    let d = start();
    let file = "[[role]]\nid = \"a\"\n[[role]]\nid = \"b\"\n";
    let (ok, o, e) = cli(&d, &["apply", "-"], Some(file));
    assert!(ok, "{o}{e}");
    assert!(
        o.contains("created role a") && o.contains("created role b"),
        "{o}"
    );

    // Only `a` now: without --yes (no terminal to ask on) it lists and refuses.
    let fewer = d.dir.path().join("fewer.toml");
    std::fs::write(&fewer, "[[role]]\nid = \"a\"\n").unwrap();
    let fewer = fewer.display().to_string();
    let (ok, o, e) = cli(&d, &["apply", "--prune", &fewer], None);
    assert!(!ok, "{o}");
    assert!(
        o.contains("will delete role b") && e.contains("--yes"),
        "{o}{e}"
    );
    let (ok, o, _) = cli(&d, &["role", "list"], None);
    assert!(ok && o.contains("b (version"), "nothing deleted: {o}");

    let (ok, o, e) = cli(&d, &["apply", "--prune", "--yes", &fewer], None);
    assert!(ok, "{o}{e}");
    assert!(o.contains("deleted role b"), "{o}");
    let (_, o, _) = cli(&d, &["role", "list"], None);
    assert!(o.contains("a (version") && !o.contains("b (version"), "{o}");
    // Kinds the file does not cover are left alone: every account is still there.
    let (_, o, _) = cli(&d, &["principal", "list"], None);
    assert!(o.contains("root") && o.contains("dave"), "{o}");
}
