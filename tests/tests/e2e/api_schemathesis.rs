//! Schemathesis against `/api/v1/openapi.json` on a daemon with data: no 5xx, no answer that
//! breaks the document, no undocumented status code, no wrong content type. Schemathesis
//! (PyPI, pinned) is installed into a venv under target/ when missing.

use std::path::PathBuf;
use std::process::Command;

use postern_e2e::*;

use super::api::{start, token};

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// The `st` command of a venv under target/, made (and the pinned version installed) when
/// missing or at another version.
fn schemathesis() -> PathBuf {
    let venv = root().join("target").join("schemathesis-venv");
    let st = venv.join("bin").join("st");
    let version = SCHEMATHESIS.trim_start_matches("schemathesis==");
    let current = Command::new(&st).arg("--version").output().ok();
    if current.is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(version)) {
        return st;
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin").join("pip")).args(["install", "-q", SCHEMATHESIS]));
    st
}

#[test]
fn schemathesis_finds_nothing() {
    let st = schemathesis();
    let d = start();
    // `root` holds the admin role by id, so a fuzzed change of the defaults cannot take the
    // test's own permissions away mid-run.
    d.apply("[[account]]\nname = \"root\"\nroles = [\"admin\"]\n");
    let root = token(&d, "root", "Api-root-pw-5d21");
    let base = d.url("");
    let out = Command::new(&st)
        .arg("run")
        .arg(d.url("/api/v1/openapi.json"))
        .args(["--url", &base])
        .args(["-H", &format!("Authorization: Bearer {root}")])
        .args([
            "-c",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
        ])
        .args(["-n", "25", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.logs()
    );
    assert!(report.contains("Tested: 29"), "{report}");
    assert!(!d.logs().contains("panicked"));
}
