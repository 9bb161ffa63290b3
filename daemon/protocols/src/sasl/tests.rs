use super::*;
use proptest::prelude::*;

fn password(step: Step) -> (String, String) {
    match step {
        Step::Credentials(Credentials::Password { authcid, password }) => {
            (authcid.to_string(), password.as_str().to_owned())
        }
        other => panic!("expected password credentials, got {other:?}"),
    }
}

fn bearer(step: Step) -> (Option<String>, String) {
    match step {
        Step::Credentials(Credentials::Bearer { user, token }) => (user, token.as_str().to_owned()),
        other => panic!("expected bearer credentials, got {other:?}"),
    }
}

fn failure(step: Step) -> SaslError {
    match step {
        Step::Fail(err) => err,
        other => panic!("expected failure, got {other:?}"),
    }
}

fn challenge(step: Step) -> Vec<u8> {
    match step {
        Step::Challenge(data) => data,
        other => panic!("expected challenge, got {other:?}"),
    }
}

#[test]
fn mechanism_names() {
    assert_eq!(Mechanism::from_name("plain"), Some(Mechanism::Plain));
    assert_eq!(Mechanism::from_name("XOAUTH2"), Some(Mechanism::XOAuth2));
    assert_eq!(
        Mechanism::from_name("OAuthBearer"),
        Some(Mechanism::OAuthBearer)
    );
    assert_eq!(Mechanism::from_name("CRAM-MD5"), None);
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
        assert_eq!(m.to_string(), m.name());
        assert!(m.is_plaintext());
    }
    assert!(Mechanism::OAuthBearer.is_bearer() && !Mechanism::Login.is_bearer());
}

#[test]
fn plain_with_initial_response() {
    let mut s = Session::new(Mechanism::Plain);
    let (user, pass) = password(s.step(Some(b"\0alice\0alice-secret")));
    assert_eq!((user.as_str(), pass.as_str()), ("alice", "alice-secret"));
    assert_eq!(s.user(), Some("alice"));
    // Same authzid as authcid is not impersonation.
    let mut s = Session::new(Mechanism::Plain);
    assert_eq!(password(s.step(Some(b"bob\0bob\0pw"))).0, "bob");
    // Anything after the credentials were handed out is a client bug.
    assert_eq!(failure(s.step(Some(b"x"))), SaslError::UnexpectedStep);
    assert!(s.is_finished());
}

#[test]
fn plain_without_initial_response_gets_empty_challenge() {
    let mut s = Session::new(Mechanism::Plain);
    assert_eq!(challenge(s.step(None)), b"");
    let (user, pass) = password(s.step(Some(b"\0carol\0carol-secret")));
    assert_eq!((user.as_str(), pass.as_str()), ("carol", "carol-secret"));
}

#[test]
fn plain_errors() {
    let cases: &[(&[u8], SaslError)] = &[
        (
            b"",
            SaslError::Malformed {
                mechanism: Mechanism::Plain,
                detail: "expected authzid NUL authcid NUL password",
            },
        ),
        (
            b"\0alice",
            SaslError::Malformed {
                mechanism: Mechanism::Plain,
                detail: "expected authzid NUL authcid NUL password",
            },
        ),
        (
            b"\0alice\0pw\0extra",
            SaslError::Malformed {
                mechanism: Mechanism::Plain,
                detail: "expected authzid NUL authcid NUL password",
            },
        ),
        (b"\0\0pw", SaslError::EmptyUser),
        (b"\0alice\0", SaslError::EmptyPassword),
        (b"\0al\xffice\0pw", SaslError::InvalidUtf8(Mechanism::Plain)),
        (b"\0alice\0p\xc3", SaslError::InvalidUtf8(Mechanism::Plain)),
    ];
    for (data, expected) in cases {
        let mut s = Session::new(Mechanism::Plain);
        assert_eq!(&failure(s.step(Some(data))), expected, "{data:?}");
        assert!(s.is_finished());
    }
}

#[test]
fn plain_impersonation_is_refused_but_names_the_user() {
    let mut s = Session::new(Mechanism::Plain);
    let err = failure(s.step(Some(b"admin\0alice\0alice-secret")));
    assert_eq!(
        err,
        SaslError::ImpersonationNotAllowed {
            authzid: "admin".into(),
            authcid: "alice".into()
        }
    );
    assert_eq!(err.reason(), "Impersonation not allowed");
    assert_eq!(s.user(), Some("alice"));
}

#[test]
fn login_exchange() {
    let mut s = Session::new(Mechanism::Login);
    assert_eq!(challenge(s.step(None)), b"Username:");
    assert_eq!(challenge(s.step(Some(b"bob"))), b"Password:");
    assert_eq!(s.user(), Some("bob"));
    let (user, pass) = password(s.step(Some(b"bob-secret")));
    assert_eq!((user.as_str(), pass.as_str()), ("bob", "bob-secret"));
}

#[test]
fn login_initial_response_is_the_user_name() {
    let mut s = Session::new(Mechanism::Login);
    assert_eq!(challenge(s.step(Some(b"bob"))), b"Password:");
    assert_eq!(password(s.step(Some(b"pw"))).0, "bob");
    // An empty initial response is treated like none (Dovecot mech-login).
    let mut s = Session::new(Mechanism::Login);
    assert_eq!(challenge(s.step(Some(b""))), b"Username:");
}

#[test]
fn login_errors() {
    let mut s = Session::new(Mechanism::Login);
    challenge(s.step(None));
    assert_eq!(failure(s.step(Some(b""))), SaslError::EmptyUser);

    let mut s = Session::new(Mechanism::Login);
    challenge(s.step(None));
    assert!(matches!(
        failure(s.step(Some(b"bo\0b"))),
        SaslError::Malformed { .. }
    ));

    let mut s = Session::new(Mechanism::Login);
    challenge(s.step(Some(b"bob")));
    assert_eq!(failure(s.step(None)), SaslError::EmptyPassword);

    let mut s = Session::new(Mechanism::Login);
    challenge(s.step(Some(b"bob")));
    assert_eq!(
        failure(s.step(Some(b"\xff"))),
        SaslError::InvalidUtf8(Mechanism::Login)
    );
    assert_eq!(failure(s.step(Some(b"again"))), SaslError::UnexpectedStep);
}

#[test]
fn xoauth2_success_and_rejection() {
    let msg = b"user=tok\x01auth=Bearer ya29.vF9dft4q-_~+/=\x01\x01";
    let mut s = Session::new(Mechanism::XOAuth2);
    let (user, token) = bearer(s.step(Some(msg)));
    assert_eq!(user.as_deref(), Some("tok"));
    assert_eq!(token, "ya29.vF9dft4q-_~+/=");

    // Token rejected: error challenge, then the client's empty answer, then failure.
    assert_eq!(
        challenge(s.reject_token(None)),
        XOAUTH2_ERROR_JSON.as_bytes()
    );
    assert_eq!(failure(s.step(Some(b""))), SaslError::TokenRejected);
    assert!(s.is_finished());
}

#[test]
fn xoauth2_without_initial_response() {
    let mut s = Session::new(Mechanism::XOAuth2);
    assert_eq!(challenge(s.step(None)), b"");
    let (user, _) = bearer(s.step(Some(b"auth=bearer abc\x01user=u@example.org\x01\x01")));
    assert_eq!(user.as_deref(), Some("u@example.org"));
}

#[test]
fn xoauth2_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"auth=Bearer abc\x01\x01",
        b"user=\x01auth=Bearer abc\x01\x01",
        b"user=u\x01\x01",
        b"user=u\x01auth=Basic abc\x01\x01",
        b"user=u\x01auth=Bearer \x01\x01",
        b"user=u\x01auth=Bearer a b\x01\x01",
        b"user=u\x01auth=Bearer a=b\x01\x01",
        b"user=u\x01user=v\x01auth=Bearer abc\x01\x01",
        b"user=\xff\x01auth=Bearer abc\x01\x01",
    ];
    for data in cases {
        let mut s = Session::new(Mechanism::XOAuth2);
        let err = failure(s.step(Some(data)));
        assert_eq!(err.reason(), "Invalid input", "{data:?}");
    }
}

#[test]
fn oauthbearer_success_as_curl_sends_it() {
    let msg = b"n,a=tok,\x01host=127.0.0.1\x01port=2525\x01auth=Bearer tok-bearer-123\x01\x01";
    let mut s = Session::new(Mechanism::OAuthBearer);
    assert_eq!(challenge(s.step(None)), b"");
    let (user, token) = bearer(s.step(Some(msg)));
    assert_eq!(user.as_deref(), Some("tok"));
    assert_eq!(token, "tok-bearer-123");
    assert_eq!(s.user(), Some("tok"));
}

#[test]
fn oauthbearer_optional_authzid_escapes_and_unknown_keys() {
    let mut s = Session::new(Mechanism::OAuthBearer);
    let (user, _) = bearer(s.step(Some(
        b"y,a=a=2Cb=3Dc,\x01xtra=what ever\x01auth=BEARER t\x01\x01",
    )));
    assert_eq!(user.as_deref(), Some("a,b=c"));
    let mut s = Session::new(Mechanism::OAuthBearer);
    let (user, token) = bearer(s.step(Some(b"n,,\x01auth=Bearer t0k\x01\x01")));
    assert_eq!((user, token.as_str()), (None, "t0k"));
}

#[test]
fn oauthbearer_rejection_dance() {
    let mut s = Session::new(Mechanism::OAuthBearer);
    bearer(s.step(Some(b"n,a=u,\x01auth=Bearer bad\x01\x01")));
    assert_eq!(
        challenge(s.reject_token(None)),
        OAUTHBEARER_ERROR_JSON.as_bytes()
    );
    assert_eq!(failure(s.step(Some(b"\x01"))), SaslError::TokenRejected);
    assert_eq!(failure(s.step(Some(b"\x01"))), SaslError::UnexpectedStep);

    let mut s = Session::new(Mechanism::OAuthBearer);
    bearer(s.step(Some(b"n,a=u,\x01auth=Bearer bad\x01\x01")));
    let json = challenge(s.reject_token(Some(
        "https://auth.example.org/.well-known/openid-configuration",
    )));
    assert_eq!(
        json,
        br#"{"status":"invalid_token","openid-configuration":"https://auth.example.org/.well-known/openid-configuration"}"#
    );
    // A client that answers something else than ^A still just fails.
    assert_eq!(failure(s.step(Some(b"junk"))), SaslError::TokenRejected);
}

#[test]
fn oauthbearer_errors() {
    let mech = Mechanism::OAuthBearer;
    let malformed: &[&[u8]] = &[
        b"\x01",
        b"",
        b"n,a=u,",
        b"n,a=u,\x01\x01",
        b"n,a=u,\x01auth=Bearer t\x01",
        b"n,a=u\x01auth=Bearer t\x01\x01",
        b"x,a=u,\x01auth=Bearer t\x01\x01",
        b"n,b=u,\x01auth=Bearer t\x01\x01",
        b"n,a=u=2,\x01auth=Bearer t\x01\x01",
        b"n,a=u=41,\x01auth=Bearer t\x01\x01",
        b"n,a=u,\x01host=x\x01\x01",
        b"n,a=u,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",
        b"n,a=u,\x01auth=Bearer t\x01\x01host=x\x01\x01",
        b"n,a=u,\x01auth=Bearer t\x01port=99999\x01\x01",
        b"n,a=u,\x01auth=Bearer t\x01port=+1\x01\x01",
        b"n,a=u,\x01au th=Bearer t\x01\x01",
        b"n,a=u,\x01auth\x01\x01",
        b"n,a=u,\x01auth=Bearer t\x01k=\x7f\x01\x01",
        b"n,a=u,\x01auth=Bearer\x01\x01",
    ];
    for data in malformed {
        let mut s = Session::new(mech);
        assert!(
            matches!(failure(s.step(Some(data))), SaslError::Malformed { .. }),
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    let mut s = Session::new(mech);
    assert_eq!(
        failure(s.step(Some(b"p=tls-unique,a=u,\x01auth=Bearer t\x01\x01"))),
        SaslError::ChannelBindingUnsupported
    );
    let mut s = Session::new(mech);
    assert_eq!(
        failure(s.step(Some(b"n,a=,\x01auth=Bearer t\x01\x01"))),
        SaslError::EmptyUser
    );
    let mut s = Session::new(mech);
    assert_eq!(
        failure(s.step(Some(b"n,a=\xff,\x01auth=Bearer t\x01\x01"))),
        SaslError::InvalidUtf8(mech)
    );
    // Empty initial response (minor >= 2 `resp=`) is a message, and a malformed one.
    let mut s = Session::new(mech);
    assert!(matches!(
        failure(s.step(Some(b""))),
        SaslError::Malformed { .. }
    ));
}

#[test]
fn reject_token_out_of_place() {
    let mut s = Session::new(Mechanism::Plain);
    password(s.step(Some(b"\0a\0b")));
    assert_eq!(failure(s.reject_token(None)), SaslError::UnexpectedStep);
    let mut s = Session::new(Mechanism::XOAuth2);
    assert_eq!(failure(s.reject_token(None)), SaslError::UnexpectedStep);
}

#[test]
fn debug_never_prints_secrets() {
    let mut s = Session::new(Mechanism::Plain);
    let step = s.step(Some(b"\0alice\0hunter2-secret"));
    assert!(!format!("{step:?}").contains("hunter2"));
    assert!(!format!("{s:?}").contains("hunter2"));
    let mut s = Session::new(Mechanism::XOAuth2);
    let step = s.step(Some(b"user=u\x01auth=Bearer sekrit-token\x01\x01"));
    assert!(!format!("{step:?}").contains("sekrit"));
    let mut s = Session::new(Mechanism::Login);
    s.step(Some(b"bob"));
    let step = s.step(Some(b"hunter2"));
    assert!(!format!("{step:?} {s:?}").contains("hunter2"));
}

#[test]
fn json_escaping() {
    assert_eq!(json_escape("a\"b\\c\n"), "a\\\"b\\\\c\\u000a");
}

fn any_mechanism() -> impl Strategy<Value = Mechanism> {
    prop::sample::select(Mechanism::ALL.to_vec())
}

proptest! {
    #[test]
    fn sessions_never_panic(
        mech in any_mechanism(),
        initial in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128)),
        later in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4),
        reject in any::<bool>(),
    ) {
        let mut s = Session::new(mech);
        let mut step = s.step(initial.as_deref());
        for data in later {
            if reject && matches!(step, Step::Credentials(_)) {
                step = s.reject_token(None);
                continue;
            }
            step = s.step(Some(&data));
        }
        let _ = format!("{step:?}");
    }

    #[test]
    fn plain_round_trips(user in "[^\x00]{1,32}", pass in "[^\x00]{1,32}") {
        let msg = format!("\0{user}\0{pass}");
        let mut s = Session::new(Mechanism::Plain);
        let (u, p) = password(s.step(Some(msg.as_bytes())));
        prop_assert_eq!(u, user);
        prop_assert_eq!(p, pass);
    }

    #[test]
    fn oauthbearer_structured_never_panics(
        authz in "[a-z=,0-9CD]{0,10}",
        pairs in proptest::collection::vec("[a-z]{0,5}=[ -~]{0,10}", 0..4),
    ) {
        let msg = format!("n,a={authz},\x01{}\x01\x01", pairs.join("\x01"));
        let mut s = Session::new(Mechanism::OAuthBearer);
        let _ = s.step(Some(msg.as_bytes()));
    }
}
