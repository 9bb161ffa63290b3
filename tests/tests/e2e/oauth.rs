//! Postern as an OAuth 2.0 / OpenID Connect provider, driven over HTTP without a browser:
//! discovery, keys and their rotation, client_credentials, the code flow with PKCE, refresh
//! rotation and reuse detection, introspection with roles and permissions as of now,
//! revocation seen by every daemon sharing the store, and the bad input of issue 13.

use std::time::Duration;

use postern_e2e::oauth_clients::*;
use postern_e2e::*;
use serde_json::Value;

/// The JSON of a JWT part (0: header, 1: payload).
pub fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("JWT part");
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in part.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64url") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    serde_json::from_slice(&out).expect("JSON part")
}

fn b64url(data: &[u8]) -> String {
    base64(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn token_of(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

#[test]
fn discovery_names_every_endpoint_and_its_issuer_is_every_tokens_iss() {
    let d = OAuthDaemon::start(None, "");
    let oidc = get(&d.url("/.well-known/openid-configuration"), None).json();
    let rfc8414 = get(&d.url("/.well-known/oauth-authorization-server"), None).json();
    assert_eq!(oidc, rfc8414);
    assert_eq!(oidc["issuer"], d.issuer.as_str());
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        let url = oidc[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(url.starts_with(&d.issuer), "{key}: {url}");
    }
    assert_eq!(
        oidc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    let grants = strings(&oidc["grant_types_supported"]);
    assert!(
        !grants.iter().any(|g| g == "password" || g == "implicit"),
        "{grants:?}"
    );

    let jwks = get(oidc["jwks_uri"].as_str().unwrap(), None).json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["use"], "sig");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none(), "private part published: {jwks}");

    let r = d.client_credentials("svc", "svc-secret", "");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let token = token_of(&r);
    let header = jwt_part(&token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], keys[0]["kid"]);
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["iss"], oidc["issuer"], "byte-identical issuer");
    assert_eq!(claims["sub"], "client:svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["aud"], d.issuer.as_str());
    for c in ["exp", "iat", "jti", "scope"] {
        assert!(claims.get(c).is_some(), "{c} missing: {claims}");
    }
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 600);
    let metrics = get(&d.url("/metrics"), None).body;
    assert!(
        metrics.contains(r#"postern_oauth_tokens_issued_total{grant_type="client_credentials"}"#),
        "{metrics}"
    );
}

#[test]
fn client_tokens_carry_roles_as_of_now_and_revocation_is_seen_by_every_daemon() {
    let shared = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/shared.db", shared.path().display());
    two_daemons(&url);
}

#[test]
fn two_daemons_on_one_postgresql_store_share_keys_grants_and_revocations() {
    let pg = postern_e2e::pg::Postgres::start();
    let url = pg.database("postern");
    two_daemons(&url);
    // The code flow and refresh rotation on PostgreSQL too.
    let a = OAuthDaemon::start(Some(&url), "");
    let cb = "http://127.0.0.1:9/cb";
    let code = a.code_for("web", cb, "openid", "alice", "alice-pw-1");
    let t = a
        .exchange(("web", "web-secret"), &code, cb, VERIFIER)
        .json();
    let r1 = t["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let t2 = a
        .form(
            "/oauth/token",
            Some(("web", "web-secret")),
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .json();
    assert!(t2["access_token"].is_string(), "{t2}");
    let reuse = a.form(
        "/oauth/token",
        Some(("web", "web-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    );
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(
        a.introspect(t2["access_token"].as_str().unwrap()),
        serde_json::json!({"active": false})
    );
}

fn two_daemons(url: &str) {
    let a = OAuthDaemon::start(Some(url), "");
    let b_port = free_port();
    // Daemons sharing a store serve one issuer (behind one name): B's public URL is A's.
    let b_config = config(b_port, Some(url), "").replace(
        &format!("public-url = \"http://127.0.0.1:{b_port}\""),
        &format!("public-url = \"{}\"", a.issuer),
    );
    let _b = Daemon::start(&b_config, &[]);
    let b_url = |p: &str| format!("http://127.0.0.1:{b_port}{p}");

    let token = token_of(&a.client_credentials("svc", "svc-secret", ""));
    // Introspected at the other daemon: the service principal's own roles and permissions.
    let i = form(
        &b_url("/oauth/introspect"),
        Some(("web", "web-secret")),
        &[("token", &token)],
        None,
    )
    .json();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], "client:svc");
    assert_eq!(i["client_id"], "svc");
    assert_eq!(i["token_type"], "Bearer");
    assert_eq!(i["iss"], a.issuer.as_str());
    assert_eq!(strings(&i["roles"]), ["svc"]);
    assert_eq!(strings(&i["permissions"]), ["authenticate", "email-send"]);
    // The bearer works wherever a bearer is accepted.
    let s = get(&b_url("/auth/session"), Some(&token));
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.json()["principal"]["id"], "client:svc");
    // Used again at B: its signature is not checked again but taken from B's token cache,
    // which the revocation through A below must not outlive.
    let hits = || {
        metric_at(
            &b_url("/metrics"),
            r#"postern_token_cache_requests_total{issuer="postern",result="hit"}"#,
        )
    };
    let before = hits();
    assert_eq!(get(&b_url("/auth/session"), Some(&token)).status, 200);
    assert!(hits() > before, "B verified the token's signature again");

    // A role change shows at once (within the policy's reload).
    a.daemon.apply(&PROVISION.replace(
        r#"enabledPermissions = ["authenticate", "email-send"]"#,
        r#"enabledPermissions = ["authenticate"]"#,
    ));
    within(
        Duration::from_secs(5),
        "role change in introspection",
        || {
            let i = a.introspect(&token);
            strings(&i["permissions"]) == ["authenticate"]
        },
    );

    // Revoked through daemon A: inactive at B at once, and refused as a bearer there.
    let r = a.form(
        "/oauth/revoke",
        Some(("svc", "svc-secret")),
        &[("token", &token)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let i = form(
        &b_url("/oauth/introspect"),
        Some(("web", "web-secret")),
        &[("token", &token)],
        None,
    )
    .json();
    assert_eq!(i, serde_json::json!({"active": false}));
    assert_eq!(get(&b_url("/auth/session"), Some(&token)).status, 401);
    // Unknown tokens: 200 all the same.
    let r = a.form(
        "/oauth/revoke",
        Some(("svc", "svc-secret")),
        &[("token", "nonsense")],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn bad_client_and_token_requests_get_the_rfc_errors_and_nothing_is_issued() {
    let d = OAuthDaemon::start(None, "");
    let cc = [("grant_type", "client_credentials")];
    let check = |r: Reply, status: u16, error: &str| {
        assert_eq!(r.status, status, "{error}: {}", r.body);
        assert_eq!(r.json()["error"], error, "{}", r.body);
        assert!(r.json().get("access_token").is_none());
        assert_eq!(r.header("cache-control"), Some("no-store"));
        r
    };
    let r = check(
        d.form("/oauth/token", Some(("nobody", "x")), &cc),
        401,
        "invalid_client",
    );
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    check(
        d.form("/oauth/token", Some(("svc", "wrong")), &cc),
        401,
        "invalid_client",
    );
    check(d.form("/oauth/token", None, &cc), 401, "invalid_client");
    // client_secret_post works, and both methods at once is refused.
    let post = [
        ("grant_type", "client_credentials"),
        ("client_id", "svc"),
        ("client_secret", "svc-secret"),
    ];
    assert_eq!(d.form("/oauth/token", None, &post).status, 200);
    check(
        d.form("/oauth/token", Some(("svc", "svc-secret")), &post),
        400,
        "invalid_request",
    );
    check(
        d.form(
            "/oauth/token",
            Some(("svc", "svc-secret")),
            &[("scope", "")],
        ),
        400,
        "invalid_request",
    );
    check(
        d.form(
            "/oauth/token",
            Some(("svc", "svc-secret")),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-pw-1"),
            ],
        ),
        400,
        "unsupported_grant_type",
    );
    check(
        d.form(
            "/oauth/token",
            Some(("svc", "svc-secret")),
            &[("grant_type", "implicit")],
        ),
        400,
        "unsupported_grant_type",
    );
    check(
        d.form("/oauth/token", Some(("web", "web-secret")), &cc),
        400,
        "unauthorized_client",
    );
    check(
        d.client_credentials("svc", "svc-secret", "admin"),
        400,
        "invalid_scope",
    );
    check(
        d.client_credentials("svc", "svc-secret", "openid"),
        400,
        "invalid_scope",
    );
    let long = "x".repeat(5000);
    check(
        d.form(
            "/oauth/token",
            Some(("svc", "svc-secret")),
            &[("grant_type", "client_credentials"), ("scope", &long)],
        ),
        400,
        "invalid_request",
    );
    check(
        d.form(
            "/oauth/token",
            Some(("svc", "svc-secret")),
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        ),
        400,
        "invalid_request",
    );
    // Introspection needs an authenticated confidential client.
    assert_eq!(
        d.form("/oauth/introspect", None, &[("token", "x")]).status,
        401
    );
    assert_eq!(
        d.form("/oauth/introspect", Some(("native", "")), &[("token", "x")])
            .status,
        401
    );

    // Forged bearers: alg none, and HS256 keyed with the public JWK: refused everywhere.
    let good = token_of(&d.client_credentials("svc", "svc-secret", ""));
    let payload = good.split('.').nth(1).unwrap();
    let none = format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"at+jwt"}"#));
    let kid = jwt_part(&good, 0)["kid"].as_str().unwrap().to_string();
    let hs = format!(
        "{}.{payload}.{}",
        b64url(format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#).as_bytes()),
        b64url(&[7u8; 32])
    );
    let tampered = format!(
        "{}.{}x.{}",
        good.split('.').next().unwrap(),
        payload,
        good.split('.').nth(2).unwrap()
    );
    for forged in [&none, &hs, &tampered] {
        assert_eq!(
            get(&d.url("/auth/session"), Some(forged)).status,
            401,
            "{forged}"
        );
        assert_eq!(d.introspect(forged), serde_json::json!({"active": false}));
        let u = get(&d.url("/oauth/userinfo"), Some(forged));
        assert_eq!(u.status, 401);
    }
    assert_eq!(d.introspect(&good)["active"], true);
}

#[test]
fn code_flow_with_pkce_refresh_rotation_reuse_detection_and_consent() {
    let d = OAuthDaemon::start(None, "");
    let web = ("web", "web-secret");
    let cb = "http://127.0.0.1:9/cb";
    let code = d.code_for("web", cb, "openid profile email", "alice", "alice-pw-1");
    let r = d.exchange(web, &code, cb, VERIFIER);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let tokens = r.json();
    let access = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let id = jwt_part(tokens["id_token"].as_str().expect("id token"), 1);
    assert_eq!(id["iss"], d.issuer.as_str());
    assert_eq!(id["aud"], "web");
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["preferred_username"], "alice");
    let i = d.introspect(&access);
    assert_eq!(i["active"], true);
    assert_eq!(i["username"], "alice");
    assert_eq!(i["sub"], id["sub"]);
    assert_eq!(strings(&i["roles"]), ["user"]);
    assert!(strings(&i["permissions"]).contains(&"authenticate".to_string()));
    let u = get(&d.url("/oauth/userinfo"), Some(&access)).json();
    assert_eq!(u["preferred_username"], "alice");
    assert_eq!(u["email"], "alice@example.org");
    assert_eq!(strings(&u["roles"]), ["user"]);

    // A replayed code: refused, and what it produced is revoked.
    let again = d.exchange(web, &code, cb, VERIFIER);
    assert_eq!(again.json()["error"], "invalid_grant");
    assert_eq!(d.introspect(&access), serde_json::json!({"active": false}));
    assert_eq!(d.introspect(&refresh), serde_json::json!({"active": false}));

    // Refresh: rotated on use; the old one reused revokes the whole grant.
    let code = d.code_for("web", cb, "openid", "alice", "alice-pw-1");
    let t = d.exchange(web, &code, cb, VERIFIER).json();
    let r1 = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(d.introspect(&r1)["token_type"], "refresh_token");
    let t2 = d
        .form(
            "/oauth/token",
            Some(web),
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .json();
    let r2 = t2["refresh_token"].as_str().expect("rotated").to_string();
    let a2 = t2["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(d.introspect(&a2)["active"], true);
    let reuse = d.form(
        "/oauth/token",
        Some(web),
        &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
    );
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(d.introspect(&a2), serde_json::json!({"active": false}));
    let after = d.form(
        "/oauth/token",
        Some(web),
        &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
    );
    assert_eq!(
        after.json()["error"],
        "invalid_grant",
        "the grant ended with the reuse"
    );

    // Revoking a refresh token ends the access tokens of its grant; another client cannot.
    let code = d.code_for("web", cb, "openid", "alice", "alice-pw-1");
    let t = d.exchange(web, &code, cb, VERIFIER).json();
    let (a3, r3) = (
        t["access_token"].as_str().unwrap(),
        t["refresh_token"].as_str().unwrap(),
    );
    let r = d.form(
        "/oauth/revoke",
        Some(("svc", "svc-secret")),
        &[("token", r3)],
    );
    assert_eq!(r.status, 400, "another client's revocation: {}", r.body);
    assert_eq!(d.introspect(a3)["active"], true);
    let r = d.form(
        "/oauth/revoke",
        Some(web),
        &[("token", r3), ("token_type_hint", "access_token")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(d.introspect(a3), serde_json::json!({"active": false}));

    // Native app: a public client, loopback redirect with any port, PKCE only.
    let native_cb = "http://127.0.0.1:53127/native";
    let code = d.code_for("native", native_cb, "openid", "bob", "bob-pw-1");
    let r = d.form(
        "/oauth/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "native"),
            ("code", &code),
            ("redirect_uri", native_cb),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        d.introspect(r.json()["access_token"].as_str().unwrap())["username"],
        "bob"
    );

    // Consent for a third-party client: asked once, remembered.
    let tp = "http://127.0.0.1:9/tp";
    let q = OAuthDaemon::authorize_query("thirdparty", tp, "openid", "s");
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let page = get_raw(
        &format!("{}?{}", d.url("/oauth/authorize"), encode_form(&pairs)),
        None,
    );
    let csrf = hidden_value(&page.body, "csrf").unwrap();
    let mut jar = cookies(&page);
    let mut fields = pairs.clone();
    fields.extend([
        ("csrf", csrf.as_str()),
        ("username", "alice"),
        ("password", "alice-pw-1"),
    ]);
    let r = form(
        &d.url("/oauth/authorize"),
        None,
        &fields,
        Some(&jar.join("; ")),
    );
    assert_eq!(r.status, 200, "the consent page: {}", r.body);
    assert!(r.body.contains("Allow access?"), "{}", r.body);
    jar.extend(cookies(&r));
    let mut fields = pairs.clone();
    fields.extend([("csrf", csrf.as_str()), ("consent", "allow")]);
    let r = form(
        &d.url("/oauth/authorize"),
        None,
        &fields,
        Some(&jar.join("; ")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.header("location").unwrap();
    assert!(
        location.starts_with(tp) && location.contains("state=s"),
        "{location}"
    );
    assert!(
        location.contains(&format!(
            "iss={}",
            d.issuer.replace(':', "%3A").replace('/', "%2F")
        )),
        "{location}"
    );
    // "Deny" for another scope: access_denied at the client, nothing remembered.
    let q2 = OAuthDaemon::authorize_query("thirdparty", tp, "openid email", "s2");
    let pairs2: Vec<(&str, &str)> = q2.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let asked = get_raw(
        &format!("{}?{}", d.url("/oauth/authorize"), encode_form(&pairs2)),
        Some(&jar.join("; ")),
    );
    assert!(
        asked.body.contains("Allow access?"),
        "a wider scope is asked again: {}",
        asked.body
    );
    let mut fields = pairs2.clone();
    fields.extend([("csrf", csrf.as_str()), ("consent", "deny")]);
    let r = form(
        &d.url("/oauth/authorize"),
        None,
        &fields,
        Some(&jar.join("; ")),
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        query_param(r.header("location").unwrap(), "error").as_deref(),
        Some("access_denied")
    );
    // Already logged in (cookie) and consented: straight back with a code.
    let r = get_raw(
        &format!("{}?{}", d.url("/oauth/authorize"), encode_form(&pairs)),
        Some(&jar.join("; ")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(query_param(r.header("location").unwrap(), "code").is_some());
}

#[test]
fn bad_authorization_requests_are_refused_and_nothing_is_issued() {
    let d = OAuthDaemon::start(None, "");
    let cb = "http://127.0.0.1:9/cb";
    let authorize = |pairs: &[(&str, &str)]| {
        get_raw(
            &format!("{}?{}", d.url("/oauth/authorize"), encode_form(pairs)),
            None,
        )
    };
    let q = OAuthDaemon::authorize_query("web", cb, "openid", "st");
    let base: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let with = |k: &str, v: &str| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = base
            .iter()
            .filter(|(n, _)| *n != k)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        if !v.is_empty() {
            out.push((k.to_string(), v.to_string()));
        }
        out
    };
    let call = |v: Vec<(String, String)>| {
        let p: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        authorize(&p)
    };
    // Unknown client or redirect URI (one character off, a trailing slash): a page, no redirect.
    for bad in [
        with("client_id", "nobody"),
        with("redirect_uri", "http://127.0.0.1:9/cB"),
        with("redirect_uri", "http://127.0.0.1:9/cb/"),
        with("redirect_uri", ""),
    ] {
        let r = call(bad);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.header("location").is_none());
        assert!(r
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
    // Once the redirect is known, errors go back to the client with state and iss.
    for (bad, error) in [
        (with("code_challenge_method", "plain"), "invalid_request"),
        (with("code_challenge_method", ""), "invalid_request"),
        (with("code_challenge", ""), "invalid_request"),
        (with("response_type", "token"), "unsupported_response_type"),
        (with("scope", "openid admin"), "invalid_scope"),
    ] {
        let r = call(bad);
        assert_eq!(r.status, 303, "{error}: {}", r.body);
        let loc = r.header("location").unwrap();
        assert!(loc.starts_with(cb), "{loc}");
        assert_eq!(query_param(loc, "error").as_deref(), Some(error), "{loc}");
        assert_eq!(query_param(loc, "state").as_deref(), Some("st"));
        assert!(query_param(loc, "iss").is_some());
        assert!(query_param(loc, "code").is_none());
    }
    // The login form without its CSRF token: refused before any login.
    let mut fields = base.clone();
    fields.extend([("username", "alice"), ("password", "alice-pw-1")]);
    let r = form(&d.url("/oauth/authorize"), None, &fields, None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.header("location").is_none());
    // A wrong password: one message that says nothing about the account.
    let page = authorize(&base);
    let csrf = hidden_value(&page.body, "csrf").unwrap();
    let jar = cookies(&page).join("; ");
    let mut messages = Vec::new();
    for (user, pw) in [("alice", "wrong"), ("nobody", "wrong")] {
        let mut f = base.clone();
        f.extend([
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", pw),
        ]);
        let r = form(&d.url("/oauth/authorize"), None, &f, Some(&jar));
        assert_eq!(r.status, 401);
        assert!(r.header("location").is_none());
        messages.push(
            r.body
                .split("role=\"alert\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(messages[0], messages[1]);
    // Wrong verifier, wrong redirect, another client: invalid_grant; no verifier at all too.
    let web = ("web", "web-secret");
    for (client, redirect, verifier) in [
        (web, cb, "A".repeat(43)),
        (web, "http://127.0.0.1:9/cb/", VERIFIER.to_string()),
        (("thirdparty", "tp-secret"), cb, VERIFIER.to_string()),
        (web, cb, String::new()),
    ] {
        let code = d.code_for("web", cb, "openid", "alice", "alice-pw-1");
        let r = d.exchange(client, &code, redirect, &verifier);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"], "invalid_grant");
    }
}

#[test]
fn keys_rotate_publishes_the_next_key_first_and_a_removed_key_stops_verifying() {
    let d = OAuthDaemon::start(None, "");
    let config = d.daemon.config.to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", &config]);
        let out = postern(&all, d.daemon.dir.path(), None);
        assert!(out.status.success(), "{:?}", text(&out));
        text(&out).0
    };
    let old = token_of(&d.client_credentials("svc", "svc-secret", ""));
    let old_kid = jwt_part(&old, 0)["kid"].as_str().unwrap().to_string();
    cli(&["keys", "rotate", "--activate-in", "1h"]);
    within(Duration::from_secs(10), "next key published", || {
        get(&d.url("/oauth/jwks"), None).json()["keys"]
            .as_array()
            .unwrap()
            .len()
            == 2
    });
    let t = token_of(&d.client_credentials("svc", "svc-secret", ""));
    assert_eq!(
        jwt_part(&t, 0)["kid"],
        old_kid.as_str(),
        "the next key does not sign yet"
    );
    cli(&["keys", "rotate", "--activate-in", "0s"]);
    within(Duration::from_secs(10), "new key signing", || {
        let t = token_of(&d.client_credentials("svc", "svc-secret", ""));
        jwt_part(&t, 0)["kid"] != old_kid.as_str()
    });
    assert_eq!(
        d.introspect(&old)["active"],
        true,
        "old tokens verify until their key goes"
    );
    let listed = cli(&["keys", "list"]);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    cli(&["keys", "remove", &old_kid]);
    within(Duration::from_secs(10), "removed key refused", || {
        d.introspect(&old) == serde_json::json!({"active": false})
    });
    assert_eq!(get(&d.url("/auth/session"), Some(&old)).status, 401);
}

#[test]
fn oauth_client_cli_adds_lists_and_removes_with_the_secret_shown_once() {
    let d = OAuthDaemon::start(None, "");
    let config = d.daemon.config.to_str().unwrap().to_string();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", &config]);
        postern(&all, d.daemon.dir.path(), None)
    };
    let out = cli(&[
        "oauth-client",
        "add",
        "robot",
        "--grant-type",
        "client_credentials",
        "--role",
        "svc",
    ]);
    assert!(out.status.success(), "{:?}", text(&out));
    let stdout = text(&out).0;
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret of oauth-client robot: "))
        .expect("secret printed")
        .to_string();
    within(Duration::from_secs(5), "new client usable", || {
        d.client_credentials("robot", &secret, "").status == 200
    });
    let listed = text(&cli(&["oauth-client", "list"])).0;
    assert!(listed.contains("robot confidential"), "{listed}");
    assert!(!listed.contains(&secret));
    let dup = cli(&["oauth-client", "add", "robot"]);
    assert_eq!(dup.status.code(), Some(1), "{:?}", text(&dup));
    let bad = cli(&[
        "oauth-client",
        "add",
        "x",
        "--public",
        "--grant-type",
        "client_credentials",
    ]);
    assert_eq!(bad.status.code(), Some(1), "{:?}", text(&bad));
    assert!(cli(&["oauth-client", "remove", "robot"]).status.success());
    within(Duration::from_secs(5), "removed client refused", || {
        d.client_credentials("robot", &secret, "").status == 401
    });
    assert_eq!(
        cli(&["oauth-client", "remove", "robot"]).status.code(),
        Some(1)
    );
}

#[test]
fn the_account_page_changes_the_password_and_ends_the_sessions() {
    let d = OAuthDaemon::start(None, "");
    let page = get_raw(&d.url("/account"), None);
    let csrf = hidden_value(&page.body, "csrf").unwrap();
    let mut jar = cookies(&page);
    let r = form(
        &d.url("/account"),
        None,
        &[
            ("csrf", &csrf),
            ("action", "login"),
            ("username", "alice"),
            ("password", "alice-pw-1"),
        ],
        Some(&jar.join("; ")),
    );
    assert_eq!(r.status, 303, "{}", r.body);
    jar.extend(cookies(&r));
    let jar = jar.join("; ");
    let page = get_raw(&d.url("/account"), Some(&jar));
    assert!(page.body.contains("Change password"), "{}", page.body);
    assert!(page.body.contains("<li>user</li>"), "{}", page.body);
    let change = |current: &str, new: &str| {
        form(
            &d.url("/account"),
            None,
            &[
                ("csrf", &csrf),
                ("action", "change-password"),
                ("current", current),
                ("new", new),
            ],
            Some(&jar),
        )
    };
    let r = change("wrong", "a-new-password-1");
    assert!(
        r.body.contains("the current password is wrong"),
        "{}",
        r.body
    );
    let r = change("alice-pw-1", "short");
    assert!(r.body.contains("at least 10"), "{}", r.body);
    assert_eq!(
        login(&d.url("/auth/login"), "alice", "alice-pw-1").status,
        200
    );
    let r = change("alice-pw-1", "a-new-password-1");
    assert_eq!(r.status, 200, "{}", d.daemon.logs());
    assert!(r.body.contains("Your password was changed"), "{}", r.body);
    // The session the change was made from ended with the old password.
    let page = get_raw(&d.url("/account"), Some(&jar));
    assert!(!page.body.contains("Change password"), "{}", page.body);
    assert_eq!(
        login(&d.url("/auth/login"), "alice", "alice-pw-1").status,
        401
    );
    assert_eq!(
        login(&d.url("/auth/login"), "alice", "a-new-password-1").status,
        200
    );
}

#[test]
fn guessing_a_client_secret_is_throttled_like_a_password() {
    let d = OAuthDaemon::start(None, "");
    let mut statuses = Vec::new();
    for i in 0..15 {
        let r = d.client_credentials("svc", &format!("guess-{i}"), "");
        statuses.push(r.status);
        if r.status == 503 {
            assert_eq!(r.json()["error"], "temporarily_unavailable", "{}", r.body);
            break;
        }
        assert_eq!(r.json()["error"], "invalid_client");
    }
    assert_eq!(statuses.last(), Some(&503), "never throttled: {statuses:?}");
    // Locked: even the right secret waits; another client is not affected.
    assert_eq!(d.client_credentials("svc", "svc-secret", "").status, 503);
    let web = d.form(
        "/oauth/introspect",
        Some(("web", "web-secret")),
        &[("token", "x")],
    );
    assert_eq!(web.status, 200, "{}", web.body);
}
