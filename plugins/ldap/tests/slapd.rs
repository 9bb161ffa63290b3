//! The plugin against a real slapd (tests/src/slapd.rs): both auth methods with every hash
//! scheme of the fixture, groups, hostile user names, TLS, failover, outage and recovery.

// Test code: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use postern_directory::secret::Hasher;
use postern_directory::{
    Credential, Directory, DirectoryError, LoginRequest, Outcome, RejectReason,
};
use postern_e2e::slapd::{self, Slapd};
use postern_ldap::{LdapConfig, LdapDirectory};
use serde_json::{json, Value};

/// Users of the fixture and their passwords, one per hash scheme.
const USERS: &[(&str, &str)] = &[
    ("alice", "ssha-pw"),
    ("sam", "ssha512-pw"),
    ("carl", "crypt6-pw"),
    ("yves", "yescrypt-pw"),
    ("ari", "argon2-pw"),
    ("pat", "pbkdf2-pw"),
    ("jürgen", "jurgen-pw"),
];

fn config(s: &Slapd, method: &str, extra: Value) -> LdapConfig {
    let (dn, pw) = if method == "lookup" {
        (slapd::READER_DN, slapd::READER_PW)
    } else {
        (slapd::SERVICE_DN, slapd::SERVICE_PW)
    };
    let mut c = json!({
        "url": s.url(),
        "base-dn": slapd::BASE_DN,
        "bind-dn": dn,
        "bind-password": pw,
        "auth-method": method,
        "user-filter": slapd::USER_FILTER,
        "timeout": "2s",
    });
    if let (Some(base), Value::Object(more)) = (c.as_object_mut(), extra) {
        base.extend(more);
    }
    serde_json::from_value(c).expect("config")
}

fn directory(c: LdapConfig) -> LdapDirectory {
    LdapDirectory::new("ldap", c, Hasher::new(2)).expect("directory")
}

async fn login(d: &LdapDirectory, user: &str, password: &str) -> Result<Outcome, DirectoryError> {
    let secret = Credential::password(password);
    d.authenticate(&LoginRequest {
        username: user,
        credential: &secret,
        remote_ip: None,
        service: "test",
    })
    .await
}

fn name_of(o: &Result<Outcome, DirectoryError>) -> Option<&str> {
    match o {
        Ok(Outcome::Authenticated(i)) => Some(i.name.as_str()),
        _ => None,
    }
}

async fn every_scheme(method: &str) {
    let s = Slapd::start();
    let d = directory(config(&s, method, json!({})));
    for (user, pw) in USERS {
        let ok = login(&d, user, pw).await;
        assert_eq!(name_of(&ok), Some(*user), "{method} {user}: {ok:?}");
        let bad = login(&d, user, &format!("{pw}x")).await;
        assert!(
            matches!(bad, Ok(Outcome::Rejected(RejectReason::WrongSecret))),
            "{method} {user} wrong password: {bad:?}"
        );
    }
    // Cleartext: slapd takes an untagged value as cleartext, Postern only `{PLAIN}`.
    let cleo = login(&d, "cleo", "clear-pw").await;
    let paula = login(&d, "paula", "plain-pw").await;
    if method == "bind" {
        assert_eq!(name_of(&cleo), Some("cleo"), "{cleo:?}");
        assert!(
            matches!(paula, Ok(Outcome::Rejected(RejectReason::WrongSecret))),
            "{paula:?}"
        );
    } else {
        assert_eq!(name_of(&paula), Some("paula"), "{paula:?}");
        assert!(
            matches!(
                cleo,
                Ok(Outcome::Rejected(RejectReason::UnverifiableSecret))
            ),
            "{cleo:?}"
        );
    }
    // The server's matching rule decides equality (case, Unicode width); the canonical name
    // is always the entry's.
    for variant in ["ALICE", "ａｌｉｃｅ"] {
        let r = login(&d, variant, "ssha-pw").await;
        assert_eq!(name_of(&r), Some("alice"), "{variant}: {r:?}");
    }
    let alice = login(&d, "alice", "ssha-pw").await;
    let Ok(Outcome::Authenticated(alice)) = alice else {
        panic!("{alice:?}")
    };
    assert_eq!(alice.emails, ["alice@example.org", "a.admin@example.org"]);
    assert_eq!(alice.description.as_deref(), Some("Alice, administrator"));
    assert_eq!(alice.groups, ["admins", "staff"], "memberOf, nested");
    // Found by mail, canonical name from uid.
    let by_mail = login(&d, "alice@example.org", "ssha-pw").await;
    assert_eq!(name_of(&by_mail), Some("alice"), "{by_mail:?}");
    let unknown = login(&d, "nobody", "whatever").await;
    assert!(matches!(unknown, Ok(Outcome::UnknownUser)), "{unknown:?}");
    // The disabled account is outside the user filter: it does not exist for Postern.
    let dana = login(&d, "dana", "dana-pw").await;
    assert!(matches!(dana, Ok(Outcome::UnknownUser)), "{dana:?}");
    // An entry without the name attribute is a data error, never a login.
    let nameless = login(&d, "nameless@example.org", "nameless-pw").await;
    assert!(
        matches!(nameless, Err(DirectoryError::InvalidData(_))),
        "{nameless:?}"
    );
    // lookup() finds without a secret.
    let found = d.lookup("carol").await.expect("lookup");
    assert_eq!(
        found.map(|i| i.groups),
        Some(vec!["loopa".into(), "loopb".into()])
    );
    assert!(d.lookup("nobody").await.expect("lookup").is_none());
    assert!(d.health().await.is_ok());
    let (service, auth) = d.pool_stats();
    assert_eq!((service.in_use, auth.in_use), (0, 0));
    assert!(service.idle >= 1, "{service:?}");
    assert_eq!(auth.idle >= 1, method == "bind", "{auth:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_mode_with_a_service_account_that_cannot_read_passwords() {
    every_scheme("bind").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_mode_verifies_every_scheme_here() {
    every_scheme("lookup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverifiable_and_unreadable_secrets_are_rejected() {
    let s = Slapd::start();
    let d = directory(config(&s, "lookup", json!({})));
    let ursula = login(&d, "ursula", "ursula-pw").await;
    assert!(
        matches!(
            ursula,
            Ok(Outcome::Rejected(RejectReason::UnverifiableSecret))
        ),
        "{ursula:?}"
    );
    // The scheme tag is never taken for cleartext.
    let literal = login(&d, "ursula", "{FOOBAR}ursula-pw").await;
    assert!(matches!(literal, Ok(Outcome::Rejected(_))), "{literal:?}");
    // Unless the directory says how untagged values are to be read (Dovecot's
    // default_pass_scheme): slapd's cleartext is then `{PLAIN}`. Carol's is cleartext.
    let carol = login(&d, "carol", "carol-pw").await;
    assert!(
        matches!(
            carol,
            Ok(Outcome::Rejected(RejectReason::UnverifiableSecret))
        ),
        "{carol:?}"
    );
    let plain = directory(config(&s, "lookup", json!({"default-scheme": "PLAIN"})));
    let carol = login(&plain, "carol", "carol-pw").await;
    assert!(matches!(carol, Ok(Outcome::Authenticated(_))), "{carol:?}");
    let wrong = login(&plain, "carol", "carol-p").await;
    assert!(
        matches!(wrong, Ok(Outcome::Rejected(RejectReason::WrongSecret))),
        "{wrong:?}"
    );
    // Tagged values keep their own scheme.
    let alice = login(&plain, "alice", "ssha-pw").await;
    assert!(matches!(alice, Ok(Outcome::Authenticated(_))), "{alice:?}");
    // Lookup mode with the account that may not read userPassword: nobody gets in.
    let mut c = config(&s, "lookup", json!({}));
    c.bind_dn = Some(slapd::SERVICE_DN.into());
    c.bind_password = Some(slapd::SERVICE_PW.into());
    let blind = directory(c);
    let alice = login(&blind, "alice", "ssha-pw").await;
    assert!(
        matches!(
            alice,
            Ok(Outcome::Rejected(RejectReason::UnverifiableSecret))
        ),
        "{alice:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_user_names_find_nobody() {
    let s = Slapd::start();
    for method in ["bind", "lookup"] {
        let d = directory(config(&s, method, json!({})));
        let long = "a".repeat(10_000);
        for name in [
            "*",
            "*)(uid=*",
            "al*",
            "*)(|(uid=*",
            "alice)(",
            "(alice)",
            "\\",
            "alice\\",
            "alice\0",
            "a\0b",
            "alïce",
            long.as_str(),
        ] {
            for pw in ["ssha-pw", "*", "x"] {
                let r = login(&d, name, pw).await;
                assert!(
                    matches!(r, Ok(Outcome::UnknownUser)),
                    "{method} {:?}/{pw}: {r:?}",
                    name.get(..40).unwrap_or(name)
                );
            }
        }
        // The password is not a filter either.
        let r = login(&d, "alice", "*").await;
        assert!(matches!(r, Ok(Outcome::Rejected(_))), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_filter_follows_nesting_and_survives_loops() {
    let s = Slapd::start();
    let filter = json!({"group-filter": "(&(objectClass=groupOfNames)(member={dn}))"});
    let d = directory(config(&s, "bind", filter.clone()));
    let carol = d.lookup("carol").await.expect("lookup").expect("carol");
    assert_eq!(carol.groups, ["loopa", "loopb"]);
    let alice = login(&d, "alice", "ssha-pw").await;
    let Ok(Outcome::Authenticated(alice)) = alice else {
        panic!("{alice:?}")
    };
    assert_eq!(alice.groups, ["admins", "staff"]);
    let mut flat = filter;
    flat["group-depth"] = json!(0);
    let d = directory(config(&s, "bind", flat));
    let alice = d.lookup("alice").await.expect("lookup").expect("alice");
    assert_eq!(
        alice.groups,
        ["admins"],
        "group-depth 0: direct groups only"
    );
    // A group name attribute that is not the RDN is read from the group entry.
    let d = directory(config(
        &s,
        "bind",
        json!({"group-name-attribute": "member"}),
    ));
    let alice = d.lookup("alice").await.expect("lookup").expect("alice");
    assert!(
        alice
            .groups
            .contains(&"uid=alice,ou=people,dc=example,dc=org".to_string()),
        "{alice:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_is_temporary_and_the_directory_recovers() {
    let mut s = Slapd::start();
    let bind = directory(config(&s, "bind", json!({})));
    let lookup = directory(config(&s, "lookup", json!({})));
    for d in [&bind, &lookup] {
        let pw = "ssha-pw";
        assert_eq!(name_of(&login(d, "alice", pw).await), Some("alice"));
    }
    s.stop();
    for d in [&bind, &lookup] {
        for (user, pw) in [("alice", "ssha-pw"), ("alice", "wrong"), ("nobody", "x")] {
            let r = login(d, user, pw).await;
            assert!(
                matches!(r, Err(DirectoryError::Unavailable(_))),
                "{user}: {r:?}"
            );
        }
        assert!(d.lookup("alice").await.is_err());
        assert!(matches!(
            d.health().await,
            Err(DirectoryError::Unavailable(_))
        ));
        // An empty password is refused before any bind: no server needed to say no.
        let empty = login(d, "alice", "").await;
        assert!(
            matches!(empty, Ok(Outcome::Rejected(RejectReason::WrongSecret))),
            "{empty:?}"
        );
    }
    s.restart();
    for d in [&bind, &lookup] {
        assert_eq!(name_of(&login(d, "alice", "ssha-pw").await), Some("alice"));
        assert!(d.health().await.is_ok());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    // Accepts TCP connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ldap://{}", silent.local_addr().expect("addr"));
    let c: LdapConfig = serde_json::from_value(json!({
        "url": url, "base-dn": "dc=example,dc=org", "bind-dn": "cn=x", "bind-password": "y",
        "timeout": "300ms"
    }))
    .expect("config");
    let d = directory(c);
    let started = Instant::now();
    let r = login(&d, "alice", "pw").await;
    assert!(matches!(r, Err(DirectoryError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_tls_and_starttls() {
    let s = Slapd::start();
    // Nothing listens on the first URL (lazy constructor: no error until used).
    let dead = format!("ldap://127.0.0.1:{}", postern_e2e::free_port());
    let ca = s.ca_file().display().to_string();
    let cases = [
        ("failover", json!({"url": [dead, s.url()]})),
        ("ldaps", json!({"url": s.ldaps_url(), "ca-file": ca})),
        (
            "starttls",
            json!({"url": s.url(), "starttls": true, "ca-file": ca}),
        ),
    ];
    for (what, extra) in cases {
        for method in ["bind", "lookup"] {
            let d = directory(config(&s, method, extra.clone()));
            let r = login(&d, "alice", "ssha-pw").await;
            assert_eq!(
                name_of(&r),
                Some("alice"),
                "{what} {method}: {r:?}\n{}",
                s.log()
            );
        }
    }
    // Without the test CA, the server's certificate is not trusted: an outage, not a login.
    for extra in [
        json!({"url": s.ldaps_url()}),
        json!({"url": s.url(), "starttls": true}),
    ] {
        let d = directory(config(&s, "bind", extra));
        let r = login(&d, "alice", "ssha-pw").await;
        assert!(matches!(r, Err(DirectoryError::Unavailable(_))), "{r:?}");
    }
}

#[test]
fn bad_configuration_is_refused_at_construction() {
    let base = json!({"url": "ldap://127.0.0.1:1", "base-dn": "dc=x"});
    let build = |extra: Value| {
        let mut c = base.clone();
        if let (Some(o), Value::Object(more)) = (c.as_object_mut(), extra) {
            o.extend(more);
        }
        let c: LdapConfig = serde_json::from_value(c).expect("config");
        LdapDirectory::new("x", c, Hasher::new(1)).map(|_| ())
    };
    assert!(build(json!({})).is_ok(), "no network at construction");
    for (extra, key) in [
        (json!({"user-filter": "(uid=x)"}), "user-filter"),
        (json!({"url": "ldap://"}), "url"),
        (json!({"ca-file": "/nonexistent.pem"}), "ca-file"),
        (
            json!({"bind-dn": "cn=x", "bind-password-file": "/nonexistent"}),
            "bind-password-file",
        ),
    ] {
        let e = build(extra).expect_err(key).to_string();
        assert!(e.starts_with(key), "{e}");
    }
}
