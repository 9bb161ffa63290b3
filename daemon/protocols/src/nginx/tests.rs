use super::*;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

fn observed() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("Host", b"127.0.0.1"),
        ("Auth-Method", b"plain"),
        ("Auth-User", b"dave@example.test"),
        ("Auth-Pass", b"dave%20pass%251"),
        ("Auth-Protocol", b"smtp"),
        ("Auth-Login-Attempt", b"1"),
        ("Client-IP", b"127.0.0.1"),
        ("Client-Host", b"[UNAVAILABLE]"),
        ("X-Shared-Key", b"s3cret"),
    ]
}

fn with(name: &'static str, value: &'static [u8]) -> Vec<(&'static str, &'static [u8])> {
    let mut headers: Vec<_> = observed()
        .into_iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        .collect();
    headers.push((name, value));
    headers
}

fn without(name: &str) -> Vec<(&'static str, &'static [u8])> {
    observed().into_iter().filter(|(n, _)| *n != name).collect()
}

#[test]
fn parses_the_observed_request() {
    let r = parse_request(observed()).expect("valid");
    assert_eq!(r.method, AuthMethod::Plain);
    assert_eq!(r.user, "dave@example.test");
    assert_eq!(r.password.as_str(), "dave pass%1");
    assert_eq!(r.password.len(), 11);
    assert_eq!(r.protocol, MailProtocol::Smtp);
    assert_eq!(r.login_attempt, 1);
    assert_eq!(r.client_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(r.client_host.as_deref(), Some("[UNAVAILABLE]"));
    assert_eq!(r.salt, None);
    assert!(!r.ssl);
    assert!(!format!("{r:?}").contains("dave pass"));
}

#[test]
fn names_are_case_insensitive_and_optional_headers_parse() {
    let headers: Vec<(&str, &[u8])> = vec![
        ("auth-method", b"cram-md5"),
        ("AUTH-USER", b"\xc3\xa9lodie"),
        ("auth-pass", b"0123abcd"),
        ("auth-protocol", b"imap"),
        ("auth-login-attempt", b"3"),
        ("client-ip", b"2001:db8::1"),
        (
            "auth-salt",
            b"<1184822503.1795374239@mailproxy.localdomain>",
        ),
        ("auth-ssl", b"on"),
    ];
    let r = parse_request(headers).expect("valid");
    assert_eq!(r.method, AuthMethod::CramMd5);
    assert_eq!(r.user, "élodie");
    assert_eq!(r.protocol, MailProtocol::Imap);
    assert_eq!(r.login_attempt, 3);
    assert_eq!(
        r.client_ip,
        IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().expect("ip"))
    );
    assert!(r.salt.is_some_and(|s| s.starts_with('<')));
    assert!(r.ssl);
    assert_eq!(r.client_host, None);
}

#[test]
fn methods_and_protocols() {
    for (value, method) in [
        (&b"plain"[..], AuthMethod::Plain),
        (b"apop", AuthMethod::Apop),
        (b"cram-md5", AuthMethod::CramMd5),
        (b"external", AuthMethod::External),
        (b"none", AuthMethod::None),
    ] {
        assert_eq!(
            parse_request(with("Auth-Method", value)).map(|r| r.method),
            Ok(method)
        );
    }
    for (value, protocol) in [
        (&b"imap"[..], MailProtocol::Imap),
        (b"pop3", MailProtocol::Pop3),
        (b"smtp", MailProtocol::Smtp),
    ] {
        let r = parse_request(with("Auth-Protocol", value)).expect("valid");
        assert_eq!(r.protocol, protocol);
        assert_eq!(r.protocol.as_str().as_bytes(), value);
    }
    // An empty password (external) is fine.
    assert!(parse_request(with("Auth-Pass", b"")).is_ok());
    assert_eq!(
        parse_request(without("Auth-Login-Attempt")).map(|r| r.login_attempt),
        Ok(1)
    );
}

#[test]
fn missing_duplicate_and_invalid_headers() {
    for name in [
        "Auth-Method",
        "Auth-User",
        "Auth-Pass",
        "Auth-Protocol",
        "Client-IP",
    ] {
        assert_eq!(
            parse_request(without(name)).map(|_| ()),
            Err(RequestError::Missing(
                KNOWN[KNOWN.iter().position(|k| *k == name).expect("known")]
            ))
        );
    }
    let mut dup = observed();
    dup.push(("auth-user", b"mallory"));
    assert_eq!(
        parse_request(dup).map(|_| ()),
        Err(RequestError::Duplicate("Auth-User"))
    );

    let invalid: &[(&'static str, &'static [u8])] = &[
        ("Auth-Method", b"xoauth2"),
        ("Auth-Method", b"PLAIN"),
        ("Auth-Protocol", b"http"),
        ("Auth-Login-Attempt", b"0"),
        ("Auth-Login-Attempt", b"x"),
        ("Client-IP", b"localhost"),
        ("Auth-User", b"a%00b"),
        ("Auth-User", b"a%2"),
        ("Auth-User", b"a%zz"),
        ("Auth-User", b"\xff"),
        ("Auth-Pass", b"%"),
        ("Auth-Pass", b"p%00"),
        ("Auth-Pass", b"%c3"),
        ("Client-Host", b"\xff"),
    ];
    for (name, value) in invalid {
        assert_eq!(
            parse_request(with(name, value)).map(|_| ()),
            Err(RequestError::Invalid(name)),
            "{name}: {value:?}"
        );
    }
}

#[test]
fn percent_decoding() {
    assert_eq!(
        percent_decode(b"dave%20pass%251").as_deref(),
        Some(&b"dave pass%1"[..])
    );
    assert_eq!(
        percent_decode(b"%09%1f%7E").as_deref(),
        Some(&b"\t\x1f~"[..])
    );
    assert_eq!(
        percent_decode(b"\xc3\xa9").as_deref(),
        Some(&b"\xc3\xa9"[..])
    );
    assert_eq!(percent_decode(b"%00"), None);
    assert_eq!(percent_decode(b"\x00"), None);
    assert_eq!(percent_decode(b"%4"), None);
    assert_eq!(percent_decode(b"%+1"), None);
}

#[test]
fn ok_reply() {
    let upstream: SocketAddr = "127.0.0.1:1143".parse().expect("addr");
    assert_eq!(
        Reply::ok(upstream).headers(),
        Ok(vec![
            ("Auth-Status", "OK".to_owned()),
            ("Auth-Server", "127.0.0.1".to_owned()),
            ("Auth-Port", "1143".to_owned()),
        ])
    );
    let v6 = Reply::Ok {
        server: IpAddr::V6(Ipv6Addr::LOCALHOST),
        port: 143,
        user: Some("alice@example.org"),
        password: Some("upstream-pass"),
    };
    let headers = v6.headers().expect("valid");
    assert_eq!(headers[1], ("Auth-Server", "::1".to_owned()));
    assert_eq!(headers[3], ("Auth-User", "alice@example.org".to_owned()));
    assert_eq!(headers[4], ("Auth-Pass", "upstream-pass".to_owned()));
}

#[test]
fn ok_reply_rejects_unsafe_values() {
    let base = |user, password, port| Reply::Ok {
        server: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        user,
        password,
    };
    assert_eq!(base(None, None, 0).headers(), Err(ReplyError::InvalidPort));
    assert_eq!(
        base(Some("a\r\nAuth-Status: OK"), None, 1).headers(),
        Err(ReplyError::InvalidValue("Auth-User"))
    );
    assert_eq!(
        base(None, Some(" pw"), 1).headers(),
        Err(ReplyError::InvalidValue("Auth-Pass"))
    );
    let huge = "x".repeat(800);
    assert_eq!(
        base(Some(&huge), None, 1).headers(),
        Err(ReplyError::TooLarge)
    );
}

#[test]
fn failure_replies() {
    assert_eq!(
        Reply::failure(MailProtocol::Smtp, "Invalid login or password", Some(1)).headers(),
        Ok(vec![
            ("Auth-Status", "Invalid login or password".to_owned()),
            ("Auth-Wait", "1".to_owned()),
            ("Auth-Error-Code", "535 5.7.8".to_owned()),
        ])
    );
    assert_eq!(
        Reply::failure(MailProtocol::Imap, "Invalid login or password", None).headers(),
        Ok(vec![(
            "Auth-Status",
            "Invalid login or password".to_owned()
        )])
    );
    assert_eq!(
        Reply::temporary_failure(MailProtocol::Smtp, "Temporary failure").headers(),
        Ok(vec![
            ("Auth-Status", "Temporary failure".to_owned()),
            ("Auth-Error-Code", "454 4.7.0".to_owned()),
        ])
    );
    assert_eq!(
        Reply::Wait { seconds: 3 }.headers(),
        Ok(vec![
            ("Auth-Status", "WAIT".to_owned()),
            ("Auth-Wait", "3".to_owned()),
        ])
    );
}

#[test]
fn failure_message_can_never_mean_success() {
    for message in ["OK", " ok ", "WAIT", "", "\r\n"] {
        let headers = Reply::failure(MailProtocol::Pop3, message, None)
            .headers()
            .expect("valid");
        assert_eq!(headers[0].1, "Authentication failed", "{message:?}");
    }
    let headers = Reply::failure(MailProtocol::Imap, "bad\r\nAuth-Status: OK", None)
        .headers()
        .expect("valid");
    assert_eq!(headers[0].1, "bad  Auth-Status: OK");
    let bad_code = Reply::Fail {
        message: "x",
        wait: None,
        smtp_code: Some("535\r\nX: y"),
    };
    assert_eq!(
        bad_code.headers(),
        Err(ReplyError::InvalidValue("Auth-Error-Code"))
    );
}

proptest! {
    #[test]
    fn parser_never_panics(
        headers in proptest::collection::vec(
            (prop::sample::select(KNOWN.iter().copied().chain(["Host", "X"]).collect::<Vec<_>>()),
             proptest::collection::vec(any::<u8>(), 0..40)),
            0..12),
    ) {
        let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let _ = parse_request(pairs);
    }

    #[test]
    fn percent_round_trip(raw in proptest::collection::vec(1u8..=255, 0..64)) {
        // Escape as nginx does (0x00-0x1f, space, %), then decode.
        let mut escaped = Vec::new();
        for b in &raw {
            if *b <= 0x20 || *b == b'%' {
                escaped.extend_from_slice(format!("%{b:02X}").as_bytes());
            } else {
                escaped.push(*b);
            }
        }
        prop_assert_eq!(percent_decode(&escaped), Some(raw));
    }

    #[test]
    fn failure_headers_are_safe(message in any::<String>(), wait in proptest::option::of(any::<u32>())) {
        let headers = Reply::failure(MailProtocol::Smtp, &message, wait).headers().expect("bounded");
        for (_, value) in &headers {
            prop_assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
        prop_assert!(headers[0].1 != "OK" && headers[0].1 != "WAIT");
    }
}
