//! The `oidc` directory against a real provider (npm `oidc-provider`, started privately): the
//! login flow through Postern with a browser's cookie jar, group → role, the session cookie,
//! the provider's access tokens on dovecot-auth (XOAUTH2, OAUTHBEARER) and HTTP, every token
//! an honest provider would not issue refused, an outage as a temporary failure, and a key
//! rotation.

use std::time::Duration;

use postern_e2e::mail::DovecotClient;
use postern_e2e::oidc_provider::{query_param, Browser, OidcProvider, CLIENT_SECRET, RESOURCE};
use postern_e2e::{free_port, get, strings, within, Daemon, Reply};

const PROVISION: &str = r#"
[[account]]
name = "admins"
type = "group"
roles = ["admin"]
"#;

struct Setup {
    provider: OidcProvider,
    daemon: Daemon,
}

fn setup() -> Setup {
    let http = free_port();
    let public = format!("http://127.0.0.1:{http}");
    let callback = format!("{public}/auth/oidc/corp/callback");
    let provider = OidcProvider::start(&[&callback]);
    let config = format!(
        r#"
[server]
state-dir = "state"
public-url = "{public}"

[[listener]]
protocol = "http"
bind = "127.0.0.1:{http}"

[[listener]]
protocol = "dovecot-auth"
bind = "127.0.0.1:{dovecot}"

[authentication]
directories = ["internal", "corp"]

[directory.corp]
type = "oidc"
issuer = "{issuer}"
client-id = "postern"
client-secret = "{CLIENT_SECRET}"
scopes = ["openid", "profile", "email", "groups"]
audience = "{RESOURCE}"
cache-ttl = "2s"
jwks-refetch-interval = "1s"
timeout = "3s"
"#,
        dovecot = free_port(),
        issuer = provider.issuer(),
    );
    let daemon = Daemon::start(&config, &[]);
    daemon.apply(PROVISION);
    Setup { provider, daemon }
}

fn cookie_attrs(r: &Reply, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers))
}

/// The whole flow through Postern; returns the callback's answer.
fn login_through_postern(s: &Setup, b: &mut Browser, user: &str, ret: Option<&str>) -> Reply {
    let start = match ret {
        Some(r) => s.daemon.url(&format!("/auth/oidc/corp/login?return={r}")),
        None => s.daemon.url("/auth/oidc/corp/login"),
    };
    let r = b.get(&start);
    assert_eq!(r.status, 302, "{}", r.body);
    let to = r.header("location").expect("Location").to_string();
    assert!(
        to.starts_with(&format!("{}/auth?", s.provider.issuer())),
        "{to}"
    );
    assert_eq!(
        query_param(&to, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query_param(&to, "response_type").as_deref(), Some("code"));
    assert!(query_param(&to, "nonce").is_some_and(|n| n.len() >= 32));
    let tx = cookie_attrs(&r, "postern_oidc_tx");
    assert!(
        tx.contains("HttpOnly") && tx.contains("SameSite=Lax"),
        "{tx}"
    );
    let back = b.provider_login(&to, &s.provider.issuer(), user);
    assert!(
        back.starts_with(&s.daemon.url("/auth/oidc/corp/callback")),
        "{back}"
    );
    assert!(query_param(&back, "iss").is_some(), "RFC 9207 iss: {back}");
    b.get(&back)
}

#[test]
fn oidc_login_lands_on_the_return_path_with_a_cookie_session_and_roles_from_groups() {
    let s = setup();
    let mut b = Browser::default();
    // The admins group is provisioned; the daemon sees it within a second.
    let r = {
        let mut last = None;
        within(Duration::from_secs(10), "group -> role", || {
            let mut fresh = Browser::default();
            let r = login_through_postern(&s, &mut fresh, "alice", Some("/app?x=1"));
            assert_eq!(
                r.status,
                303,
                "{} {}\n{}",
                r.status,
                r.body,
                s.daemon.logs()
            );
            let session = fresh.get(&s.daemon.url("/auth/session"));
            let ok = strings(&session.json()["roles"]).contains(&"admin".to_string());
            b = fresh;
            last = Some((r, session));
            ok
        });
        last.expect("a login")
    };
    let (callback, session) = r;
    assert_eq!(callback.header("location"), Some("/app?x=1"));
    let sc = cookie_attrs(&callback, "postern_session");
    assert!(
        sc.contains("HttpOnly") && sc.contains("SameSite=Lax"),
        "{sc}"
    );
    assert!(!sc.contains("Secure"), "http public-url: no Secure: {sc}");
    let v = session.json();
    assert_eq!(v["directory"], "corp", "{v}");
    assert_eq!(v["mechanism"], "oidc", "{v}");
    assert_eq!(v["principal"]["name"], "alice", "{v}");
    assert!(strings(&v["groups"]).contains(&"admins".to_string()), "{v}");
    // Groups and addresses came from userinfo: the ID token carries only `sub`.
    assert_eq!(
        strings(&v["principal"]["emails"]),
        ["alice@example.org"],
        "{v}"
    );

    // Non-ASCII name and group; no return path: the session view as JSON.
    let mut j = Browser::default();
    let r = login_through_postern(&s, &mut j, "jürgen", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["principal"]["name"], "jürgen", "{v}");
    assert_eq!(strings(&v["groups"]), ["ünits"], "{v}");
    assert!(strings(&v["roles"]).iter().all(|r| r != "admin"), "{v}");

    // DELETE /auth/session with the cookie ends it and clears the cookie.
    let cookie = format!("postern_session={}", j.cookies["postern_session"]);
    let r = ureq::delete(&s.daemon.url("/auth/session"))
        .set("Cookie", &cookie)
        .call()
        .expect("logout");
    assert_eq!(r.status(), 204);
    assert!(r.all("set-cookie").iter().any(|c| c.contains("Max-Age=0")));
    assert_eq!(j.get(&s.daemon.url("/auth/session")).status, 401);

    // A provider user named like Postern's internal administrator is not that account.
    let mut m = Browser::default();
    let r = login_through_postern(&s, &mut m, "admin", Some("/"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!m.cookies.contains_key("postern_session"));

    // Nor is another person of the provider given alice's name (another `sub`): alice's
    // record is bound to her subject.
    let mut other = Browser::default();
    let r = login_through_postern(&s, &mut other, "alice-2", Some("/"));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!other.cookies.contains_key("postern_session"));
    assert!(s.daemon.logs().contains("recorded for another subject"));
}

#[test]
fn oidc_callback_refuses_replays_forged_state_wrong_iss_and_foreign_return_paths() {
    let s = setup();
    // An open redirect is refused before anything else happens.
    for bad in ["//evil.example", "https://evil.example/", "/\\evil.example"] {
        let r = get(
            &s.daemon
                .url(&format!("/auth/oidc/corp/login?return={}", urlenc(bad))),
            None,
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    // Each attempt that gets past the state check uses the transaction up, whatever its
    // outcome: every case starts its own.
    let fresh = || {
        let mut b = Browser::default();
        let r = b.get(&s.daemon.url("/auth/oidc/corp/login?return=/ok"));
        assert_eq!(r.status, 302);
        let tx = b.cookies["postern_oidc_tx"].clone();
        let to = r.header("location").unwrap().to_string();
        let back = b.provider_login(&to, &s.provider.issuer(), "alice");
        (
            tx,
            query_param(&back, "state").unwrap(),
            query_param(&back, "code").unwrap(),
            query_param(&back, "iss").unwrap(),
        )
    };
    let cb = |tx: &str, query: String| {
        ureq::AgentBuilder::new()
            .redirects(0)
            .build()
            .get(&format!(
                "{}?{query}",
                s.daemon.url("/auth/oidc/corp/callback")
            ))
            .set("Cookie", &format!("postern_oidc_tx={tx}"))
            .call()
            .map_or_else(
                |e| match e {
                    ureq::Error::Status(c, r) => (c, r.into_string().unwrap_or_default()),
                    e => panic!("{e}"),
                },
                |r| (r.status(), r.into_string().unwrap_or_default()),
            )
    };
    let q = |code: &str, state: &str, iss: Option<&str>| {
        let mut q = format!("code={}&state={}", urlenc(code), urlenc(state));
        if let Some(i) = iss {
            q.push_str(&format!("&iss={}", urlenc(i)));
        }
        q
    };
    // Wrong state: refused (and the transaction stays for its own callback).
    let (tx, state, code, iss) = fresh();
    assert_eq!(cb(&tx, q(&code, "forged", Some(&iss))).0, 400);
    // Missing iss while the provider advertises RFC 9207: refused, transaction used up.
    assert_eq!(cb(&tx, q(&code, &state, None)).0, 400);
    let (status, body) = cb(&tx, q(&code, &state, Some(&iss)));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("already"), "{body}");
    // Another issuer's iss (a trailing slash is another string): refused.
    let (tx, state, code, iss) = fresh();
    assert_eq!(cb(&tx, q(&code, &state, Some(&format!("{iss}/")))).0, 400);
    // The right answer once...
    let (tx, state, code, iss) = fresh();
    let (status, body) = cb(&tx, q(&code, &state, Some(&iss)));
    assert_eq!(status, 303, "{body}\n{}", s.daemon.logs());
    // ...and never again: the state was used.
    let (status, body) = cb(&tx, q(&code, &state, Some(&iss)));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("already"), "{body}");
    // Without the transaction cookie: refused.
    let r = get(
        &format!(
            "{}?{}",
            s.daemon.url("/auth/oidc/corp/callback"),
            q(&code, &state, Some(&iss))
        ),
        None,
    );
    assert_eq!(r.status, 400);
    // A replayed code in a fresh transaction: the provider refuses it (invalid_grant).
    let mut b2 = Browser::default();
    let r = b2.get(&s.daemon.url("/auth/oidc/corp/login"));
    let to = r.header("location").unwrap().to_string();
    let back2 = b2.provider_login(&to, &s.provider.issuer(), "alice");
    let state2 = query_param(&back2, "state").unwrap();
    let replay = format!(
        "{}?code={}&state={}&iss={}",
        s.daemon.url("/auth/oidc/corp/callback"),
        urlenc(&code),
        urlenc(&state2),
        urlenc(&iss)
    );
    let r = b2.get(&replay);
    assert_eq!(r.status, 401, "{}", r.body);
    // The user cancelled: a clear page, not a 500; still state-checked.
    let mut b3 = Browser::default();
    let r = b3.get(&s.daemon.url("/auth/oidc/corp/login"));
    let state3 = query_param(r.header("location").unwrap(), "state").unwrap();
    let r = b3.get(&format!(
        "{}?error=access_denied&error_description=%3Cscript%3E&state={}&iss={}",
        s.daemon.url("/auth/oidc/corp/callback"),
        urlenc(&state3),
        urlenc(&iss)
    ));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.contains("<script>"));
    // Oversized parameters: a clear refusal.
    let r = b3.get(&format!(
        "{}?state={}",
        s.daemon.url("/auth/oidc/corp/callback"),
        "a".repeat(5000)
    ));
    assert_eq!(r.status, 400);
    assert_eq!(get(&s.daemon.url("/healthz"), None).status, 200);
}

fn urlenc(s: &str) -> String {
    postern_e2e::oidc_provider::form(&[("x", s)])[2..].to_string()
}

fn xoauth2(user: &str, token: &str) -> String {
    b64(&format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn oauthbearer(user: &str, token: &str) -> String {
    b64(&format!("n,a={user},\x01auth=Bearer {token}\x01\x01"))
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// One dovecot-auth request; the final line (after answering an error challenge).
fn dovecot(c: &mut DovecotClient, id: u32, mech: &str, resp: &str) -> String {
    c.send(&format!(
        "AUTH\t{id}\t{mech}\tservice=imap\tsecured\trip=127.0.0.1\tresp={resp}\n"
    ));
    let line = c.line().unwrap_or_default();
    if line.starts_with(&format!("CONT\t{id}\t")) {
        // RFC 7628: the JSON error challenge, answered with a dummy response.
        c.send(&format!("CONT\t{id}\tAQ==\n"));
        return format!("{line}\n{}", c.line().unwrap_or_default());
    }
    line
}

#[test]
fn provider_tokens_on_dovecot_auth_and_http_and_every_forgery_refused() {
    let s = setup();
    let t = s
        .provider
        .tokens("postern", CLIENT_SECRET, "alice", Some(RESOURCE));
    let at = t["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    assert_eq!(at.split('.').count(), 3, "a JWT access token: {t}");
    let mut c = DovecotClient::connect(&s.daemon.addr("dovecot-auth"));
    let ok = dovecot(&mut c, 1, "XOAUTH2", &xoauth2("alice", &at));
    assert_eq!(ok, "OK\t1\tuser=alice", "{}", s.daemon.logs());
    let ok = dovecot(&mut c, 2, "OAUTHBEARER", &oauthbearer("alice", &at));
    assert_eq!(ok, "OK\t2\tuser=alice");
    // The SASL user must be the token's.
    let no = dovecot(&mut c, 3, "XOAUTH2", &xoauth2("bob", &at));
    assert!(no.contains(&"FAIL\t3".to_string()), "{no}");
    // HTTP: the token logs in (a Postern session with its cookie) and is a session itself.
    let r = ureq::post(&s.daemon.url("/auth/login"))
        .set("Authorization", &format!("Bearer {at}"))
        .call()
        .expect("bearer login");
    assert_eq!(r.status(), 200);
    assert!(r
        .all("set-cookie")
        .iter()
        .any(|c| c.starts_with("postern_session=")));
    let v: serde_json::Value = r.into_json().unwrap();
    assert_eq!(v["mechanism"], "oidc");
    assert_eq!(v["directory"], "corp");
    let r = get(&s.daemon.url("/auth/session"), Some(&at));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["principal"]["name"], "alice");
    // Used five times, its signature checked once: the other uses were cache hits.
    let metrics = get(&s.daemon.url("/metrics"), None).body;
    let series = |result: &str| {
        let prefix =
            format!(r#"postern_token_cache_requests_total{{issuer="provider",result="{result}"}}"#);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!((series("hit"), series("miss")), (4, 1), "{metrics}");

    // What must be refused, each on both mechanisms, with RFC 7628's JSON challenge.
    let other = s
        .provider
        .tokens("other-rp", "other-secret", "alice", Some("urn:other"));
    let mut tampered = at.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let refused = [
        ("expired", s.provider.forge("expired", None)),
        ("foreign key, real kid", s.provider.forge("foreign", None)),
        ("alg none", s.provider.forge("none", None)),
        (
            "HS256 with the client secret",
            s.provider.forge("hs256", None),
        ),
        (
            "wrong audience",
            s.provider.forge("wrong-aud", Some("urn:other")),
        ),
        (
            "issued to another client",
            other["access_token"].as_str().unwrap().to_string(),
        ),
        ("bad signature", tampered),
        ("an ID token", t["id_token"].as_str().unwrap().to_string()),
        ("opaque and unknown", "not-a-jwt-token".to_string()),
    ];
    // The forging endpoint's valid token passes: the refusals below are for their flaw.
    let valid = s.provider.forge("valid", None);
    assert_eq!(
        dovecot(&mut c, 9, "XOAUTH2", &xoauth2("alice", &valid)),
        "OK\t9\tuser=alice"
    );
    for (id, (what, token)) in (10..).zip(refused.iter()) {
        let line = dovecot(&mut c, id, "OAUTHBEARER", &oauthbearer("alice", token));
        assert!(line.contains(&format!("FAIL\t{id}")), "{what}: {line}");
        let challenge = line.lines().next().unwrap_or_default();
        if challenge.starts_with("CONT") {
            use base64::Engine as _;
            let json = base64::engine::general_purpose::STANDARD
                .decode(challenge.rsplit('\t').next().unwrap())
                .unwrap();
            assert!(
                String::from_utf8_lossy(&json).contains("invalid_token"),
                "{what}"
            );
        } else {
            panic!("{what}: no RFC 7628 error challenge: {line}");
        }
        assert_eq!(
            get(&s.daemon.url("/auth/session"), Some(token)).status,
            401,
            "{what}"
        );
    }
    // A token of a megabyte: refused (the connection may be closed on it), the daemon
    // stays up and answers the next client.
    {
        use std::io::{Read, Write};
        let mut raw = std::net::TcpStream::connect(s.daemon.addr("dovecot-auth")).unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let _ = raw.write_all(
            format!(
                "VERSION\t1\t2\nCPID\t1\nAUTH\t1\tXOAUTH2\tservice=imap\tsecured\tresp={}\n",
                xoauth2("alice", &"a".repeat(1 << 20))
            )
            .as_bytes(),
        );
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        assert!(!String::from_utf8_lossy(&answer).contains("OK\t1"));
    }
    let mut c3 = DovecotClient::connect(&s.daemon.addr("dovecot-auth"));
    assert_eq!(
        dovecot(&mut c3, 1, "XOAUTH2", &xoauth2("alice", &at)),
        "OK\t1\tuser=alice"
    );
    assert_eq!(get(&s.daemon.url("/healthz"), None).status, 200);
    let metrics = get(&s.daemon.url("/metrics"), None).body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("postern_directory_requests_total")
                && l.contains(r#"directory="corp""#)
                && l.contains(r#""rejected""#)),
        "{metrics}"
    );
}

#[test]
fn provider_outage_is_a_temporary_failure_and_key_rotation_is_picked_up() {
    let mut s = setup();
    let t = s
        .provider
        .tokens("postern", CLIENT_SECRET, "alice", Some(RESOURCE));
    let old = t["access_token"].as_str().unwrap().to_string();
    let mut c = DovecotClient::connect(&s.daemon.addr("dovecot-auth"));
    assert_eq!(
        dovecot(&mut c, 1, "XOAUTH2", &xoauth2("alice", &old)),
        "OK\t1\tuser=alice"
    );

    // A login half done when the provider goes away: the code cannot be exchanged, which is
    // a temporary failure (503), not a refusal.
    let mut b = Browser::default();
    let r = b.get(&s.daemon.url("/auth/oidc/corp/login"));
    let back = b.provider_login(
        r.header("location").expect("Location"),
        &s.provider.issuer(),
        "alice",
    );

    // Stopped: once the cached keys are stale, a temporary failure, never a rejection.
    s.provider.stop();
    let r = b.get(&back);
    assert_eq!(r.status, 503, "{}", r.body);
    std::thread::sleep(Duration::from_millis(2500));
    let line = dovecot(&mut c, 2, "XOAUTH2", &xoauth2("alice", &old));
    assert!(
        line.starts_with("FAIL\t2") && line.contains("temp"),
        "{line}"
    );
    let r = get(&s.daemon.url("/auth/session"), Some(&old));
    assert_eq!(r.status, 503, "{}", r.body);
    // Starting a login needs only the cached discovery document.
    let r = Browser::default().get(&s.daemon.url("/auth/oidc/corp/login"));
    assert_eq!(r.status, 302, "{}", r.body);
    let metrics = get(&s.daemon.url("/metrics"), None).body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("postern_directory_requests_total")
                && l.contains(r#"directory="corp""#)
                && l.contains(r#"outcome="error""#)),
        "{metrics}"
    );

    // Back, with a new signing key first and the old one still published.
    s.provider.restart(&[("ROTATE", "1")]);
    let mut id = 3;
    within(Duration::from_secs(10), "recovery", || {
        id += 1;
        dovecot(&mut c, id, "XOAUTH2", &xoauth2("alice", &old)) == format!("OK\t{id}\tuser=alice")
    });
    let t = s
        .provider
        .tokens("postern", CLIENT_SECRET, "alice", Some(RESOURCE));
    let new = t["access_token"].as_str().unwrap().to_string();
    assert_ne!(kid(&new), kid(&old), "the provider signs with the new key");
    id += 1;
    assert_eq!(
        dovecot(&mut c, id, "XOAUTH2", &xoauth2("alice", &new)),
        format!("OK\t{id}\tuser=alice"),
        "unknown kid: one refetch picks the new key up"
    );

    // The old key dropped: old tokens refused (once the cache expires), new ones still fine.
    s.provider.restart(&[("DROP_OLD", "1")]);
    within(Duration::from_secs(10), "old key dropped", || {
        id += 1;
        dovecot(&mut c, id, "XOAUTH2", &xoauth2("alice", &old)).contains(&format!("FAIL\t{id}"))
    });
    id += 1;
    assert_eq!(
        dovecot(&mut c, id, "XOAUTH2", &xoauth2("alice", &new)),
        format!("OK\t{id}\tuser=alice")
    );
}

fn kid(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap_or_default().to_string()
}

fn swaks_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn an_oidc_person_makes_an_app_password_and_logs_in_through_postfix_with_it() {
    let s = setup();
    let mut b = Browser::default();
    let r = login_through_postern(&s, &mut b, "alice", Some("/"));
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = format!("postern_session={}", b.cookies["postern_session"]);
    let made = ureq::post(&s.daemon.url("/auth/app-passwords"))
        .set("Cookie", &cookie)
        .set("Content-Type", "application/json")
        .send_string(r#"{"description": "phone mail"}"#)
        .expect("create app password");
    assert_eq!(made.status(), 201);
    let made: serde_json::Value = made.into_json().unwrap();
    let secret = made["secret"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["description"], "phone mail");
    // Listed without its secret.
    let list = ureq::get(&s.daemon.url("/auth/app-passwords"))
        .set("Cookie", &cookie)
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(list.contains(&id) && !list.contains(&secret), "{list}");
    // A scope beyond nothing: unknown permissions are refused, nothing created.
    let bad = ureq::post(&s.daemon.url("/auth/app-passwords"))
        .set("Cookie", &cookie)
        .set("Content-Type", "application/json")
        .send_string(r#"{"description": "x", "permissions": {"mode": "replace", "permissions": ["no-such-thing"]}}"#);
    assert!(matches!(bad, Err(ureq::Error::Status(400, _))));

    let postfix =
        postern_e2e::postfix::Postfix::start(&format!("inet:{}", s.daemon.addr("dovecot-auth")));
    let ok = postfix.swaks("PLAIN", "alice", &secret);
    let text = swaks_text(&ok);
    assert!(
        ok.status.success() && text.contains("235 2.7.0 Authentication successful"),
        "{text}\n{}\n{}",
        postfix.maillog(),
        s.daemon.logs()
    );
    // Revoked: refused.
    let r = ureq::delete(&s.daemon.url(&format!("/auth/app-passwords/{id}")))
        .set("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(r.status(), 204);
    let no = postfix.swaks("PLAIN", "alice", &secret);
    let text = swaks_text(&no);
    assert!(!no.status.success() && text.contains("535 5.7.8"), "{text}");
}

#[test]
fn check_config_live_runs_discovery_and_opaque_tokens_go_through_introspection_or_userinfo() {
    let s = setup();
    let path = s.daemon.config.to_str().expect("path").to_string();
    let live = postern_e2e::postern(
        &["check-config", "--live", "--config", &path],
        s.daemon.dir.path(),
        None,
    );
    assert!(live.status.success(), "{:?}", postern_e2e::text(&live));
    // An issuer discovery does not confirm (a trailing slash is another issuer): plain
    // check-config cannot know, --live says so.
    let wrong = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&s.provider.issuer(), &format!("{}/", s.provider.issuer()));
    let file = s.daemon.dir.path().join("wrong.toml");
    std::fs::write(&file, wrong).unwrap();
    let f = file.to_str().unwrap();
    let st = postern_e2e::postern(&["check-config", "--config", f], s.daemon.dir.path(), None);
    assert!(st.status.success(), "{:?}", postern_e2e::text(&st));
    let live = postern_e2e::postern(
        &["check-config", "--live", "--config", f],
        s.daemon.dir.path(),
        None,
    );
    let (_, stderr) = postern_e2e::text(&live);
    assert_eq!(live.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("directory.corp.issuer"), "{stderr}");

    // Opaque access tokens (no resource): introspection and userinfo, each in its own daemon.
    let t = s.provider.tokens("postern", CLIENT_SECRET, "alice", None);
    let opaque = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(opaque.split('.').count(), 1, "opaque: {opaque}");
    let base = std::fs::read_to_string(&path).unwrap();
    for mode in ["introspection", "userinfo"] {
        let config = base.replace(
            "timeout = \"3s\"",
            &format!("timeout = \"3s\"\ntoken-validation = \"{mode}\""),
        );
        let config = config.replace(
            &format!("bind = \"{}\"", s.daemon.addr("dovecot-auth")),
            &format!("bind = \"127.0.0.1:{}\"", free_port()),
        );
        let config = config.replace(
            &format!("bind = \"{}\"", s.daemon.addr("http")),
            "bind = \"127.0.0.1:0\"",
        );
        let d = Daemon::start(&config, &[]);
        let mut c = DovecotClient::connect(&d.addr("dovecot-auth"));
        assert_eq!(
            dovecot(&mut c, 1, "XOAUTH2", &xoauth2("alice", &opaque)),
            "OK\t1\tuser=alice",
            "{mode}: {}",
            d.logs()
        );
        let no = dovecot(
            &mut c,
            2,
            "OAUTHBEARER",
            &oauthbearer("alice", "unknown-opaque-token"),
        );
        assert!(no.contains("FAIL\t2"), "{mode}: {no}");
        let r = get(&d.url("/auth/session"), Some(&opaque));
        assert_eq!(r.status, 200, "{mode}: {}", r.body);
    }
}
