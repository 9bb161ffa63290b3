//! Postern's OAuth server against certified client libraries and a real browser:
//! `openid-client` (npm) for discovery, client_credentials, introspection, revocation and the
//! code flow whose login page `playwright-core` drives in Debian's Chromium (wrong password,
//! CSRF token missing, framing refused); Authlib (PyPI) for the same from Python. The
//! libraries are installed at pinned versions under target/ when missing.

use postern_e2e::oauth_clients::*;
use postern_e2e::*;
use serde_json::json;

#[test]
fn openid_client_runs_client_credentials_introspection_and_revocation() {
    let d = OAuthDaemon::start(None, "");
    let out = node(
        "openid_client.mjs",
        &[("ISSUER", &d.issuer), ("FLOW", "machine")],
    );
    assert_eq!(out["clientCredentials"]["tokenType"], "bearer", "{out}");
    let i = &out["introspection"];
    assert_eq!(i["active"], true, "{out}");
    assert_eq!(i["sub"], "client:svc");
    assert_eq!(strings(&i["roles"]), ["svc"]);
    assert_eq!(strings(&i["permissions"]), ["authenticate", "email-send"]);
    assert_eq!(out["afterRevocation"], json!({"active": false}));
    assert_eq!(out["wrongSecret"]["status"], 401, "{out}");
    assert_eq!(out["wrongSecret"]["error"], "invalid_client", "{out}");
}

#[test]
fn a_person_logs_in_on_the_login_page_in_chromium_and_openid_client_gets_their_tokens() {
    let d = OAuthDaemon::start(None, "");
    let out = node(
        "openid_client.mjs",
        &[("ISSUER", &d.issuer), ("FLOW", "browser")],
    );
    // Framed by another origin: the browser refuses to render it.
    assert_eq!(out["framed"]["passwordInputs"], 0, "{out}");
    let framed = out["framed"]["frameUrl"].as_str().unwrap_or_default();
    assert!(
        framed.starts_with("chrome-error:"),
        "the frame loaded: {out}"
    );
    assert_eq!(out["wrongPassword"], "Wrong username or password.", "{out}");
    assert_eq!(out["missingCsrf"]["status"], 403, "{out}");
    assert_eq!(out["missingCsrf"]["redirected"], false, "{out}");
    assert_eq!(out["callbackIss"], d.issuer.as_str());
    assert_eq!(out["idToken"]["iss"], d.issuer.as_str());
    assert_eq!(out["idToken"]["preferredUsername"], "alice");
    assert_eq!(out["userinfo"]["preferred_username"], "alice");
    assert_eq!(out["userinfo"]["email"], "alice@example.org");
    let i = &out["introspection"];
    assert_eq!(i["active"], true, "{out}");
    assert_eq!(i["username"], "alice");
    assert_eq!(strings(&i["roles"]), ["user"]);
    assert!(
        strings(&i["permissions"]).contains(&"email-send".to_string()),
        "{i}"
    );
    assert_eq!(out["refreshRotated"], true);
    assert_eq!(out["reuse"], "invalid_grant", "{out}");
    assert_eq!(out["afterReuse"], json!({"active": false}));
    assert_eq!(
        out["ssoCode"], true,
        "the session cookie is not asked for a password again"
    );
}

#[test]
fn authlib_runs_every_flow_from_python() {
    let d = OAuthDaemon::start(None, "");
    let out = python(
        "authlib_client.py",
        &[("ISSUER", &d.issuer), ("AUTHLIB_INSECURE_TRANSPORT", "1")],
    );
    assert_eq!(out["clientCredentials"]["tokenType"], "Bearer", "{out}");
    assert_eq!(out["introspection"]["active"], true);
    assert_eq!(strings(&out["introspection"]["roles"]), ["svc"]);
    assert_eq!(out["afterRevocation"], json!({"active": false}));
    assert_eq!(out["idToken"]["iss"], d.issuer.as_str());
    assert_eq!(out["idToken"]["preferredUsername"], "bob");
    assert_eq!(out["introspectionOfCode"]["username"], "bob");
    assert_eq!(out["refreshRotated"], true);
    assert_eq!(out["afterRefreshRevocation"], json!({"active": false}));
}
