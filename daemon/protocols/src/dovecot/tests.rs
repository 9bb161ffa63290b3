use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn auth(line: &str, minor: u32) -> AuthRequest {
    match parse_client_line(line.as_bytes(), minor) {
        Ok(ClientLine::Auth(request)) => request,
        other => panic!("expected AUTH, got {other:?}"),
    }
}

#[test]
fn escape_round_trip_and_exact_bytes() {
    assert_eq!(escape("plain"), "plain");
    assert!(matches!(escape("plain"), Cow::Borrowed(_)));
    assert_eq!(
        escape("a\tb\nc\rd\0e\x01f"),
        "a\x01tb\x01nc\x01rd\x010e\x011f"
    );
    assert_eq!(
        unescape("a\x01tb\x01nc\x01rd\x010e\x011f"),
        "a\tb\nc\rd\0e\x01f"
    );
    // Dovecot leniency: unknown escape yields the char, trailing escape byte is kept.
    assert_eq!(unescape("x\x01zy"), "xzy");
    assert_eq!(unescape("x\x01"), "x\x01");
    assert_eq!(unescape("\x01é"), "é");
}

#[test]
fn line_reader_splits_pipelined_input() {
    let mut reader = LineReader::new();
    reader.push(b"VERSION\t1\t0\nCPID\t42\r\nAUTH\t1\tPL");
    assert_eq!(reader.next_line(), Ok(Some(&b"VERSION\t1\t0"[..])));
    assert_eq!(reader.next_line(), Ok(Some(&b"CPID\t42"[..])));
    assert_eq!(reader.next_line(), Ok(None));
    reader.push(b"AIN\tservice=smtp\n");
    assert_eq!(
        reader.next_line(),
        Ok(Some(&b"AUTH\t1\tPLAIN\tservice=smtp"[..]))
    );
    assert_eq!(reader.next_line(), Ok(None));
    assert_eq!(reader.buffered(), 0);
}

/// What a socket read into [`LineReader::read_into`] does: at most the room it was given.
fn read_some(reader: &mut LineReader, input: &mut &[u8]) {
    let buf = reader.read_into();
    let room = buf.capacity() - buf.len();
    assert!(
        room >= READ_MIN_SPARE,
        "read_into left {room} bytes of room"
    );
    let n = room.min(input.len());
    buf.extend_from_slice(&input[..n]);
    *input = &input[n..];
}

#[test]
fn line_reader_read_into_holds_little_while_idle() {
    let mut reader = LineReader::new();
    assert_eq!(reader.capacity(), 0, "nothing held before the first read");
    let mut input: &[u8] = b"VERSION\t1\t2\nCPID\t7\n";
    read_some(&mut reader, &mut input);
    assert_eq!(reader.next_line(), Ok(Some(&b"VERSION\t1\t2"[..])));
    assert_eq!(reader.next_line(), Ok(Some(&b"CPID\t7"[..])));
    assert_eq!(reader.next_line(), Ok(None));
    reader.read_into();
    assert!(
        reader.capacity() <= READ_CHUNK,
        "idle: {}",
        reader.capacity()
    );

    // A long line (a bearer token) arrives over several reads, the buffer growing for it…
    let mut long = b"AUTH\t1\tXOAUTH2\tservice=imap\tresp=".to_vec();
    long.extend(std::iter::repeat_n(b'x', 12_000));
    long.push(b'\n');
    let mut input = long.as_slice();
    let mut line = None;
    while line.is_none() {
        assert!(!input.is_empty(), "the line never came out");
        read_some(&mut reader, &mut input);
        line = reader
            .next_line()
            .expect("within the limit")
            .map(<[u8]>::len);
    }
    assert_eq!(line, Some(long.len() - 1));
    assert!(reader.capacity() > READ_KEEP_CAPACITY);
    // …and given back once it is consumed.
    reader.read_into();
    assert!(
        reader.capacity() <= READ_CHUNK,
        "after: {}",
        reader.capacity()
    );
}

#[test]
fn line_reader_survives_a_buffer_shortened_behind_its_back() {
    let mut reader = LineReader::new();
    reader.push(b"partial");
    assert_eq!(reader.next_line(), Ok(None));
    reader.read_into().clear();
    reader.read_into().extend_from_slice(b"OK\n");
    assert_eq!(reader.next_line(), Ok(Some(&b"OK"[..])));
}

#[test]
fn line_reader_enforces_the_limit() {
    let mut reader = LineReader::new();
    reader.push(&vec![b'a'; MAX_LINE_LENGTH - 1]);
    assert_eq!(reader.next_line(), Ok(None));
    reader.push(b"\n");
    assert_eq!(
        reader.next_line().map(|l| l.map(|l| l.len())),
        Ok(Some(MAX_LINE_LENGTH - 1))
    );

    let mut reader = LineReader::new();
    reader.push(&vec![b'a'; MAX_LINE_LENGTH]);
    assert_eq!(reader.next_line(), Err(LineTooLong));

    let mut reader = LineReader::new();
    let mut long = vec![b'a'; MAX_LINE_LENGTH];
    long.push(b'\n');
    reader.push(&long);
    assert_eq!(reader.next_line(), Err(LineTooLong));
}

#[test]
fn handshake_matches_dovecot_order() {
    let mechs: Vec<MechAdvert> = crate::sasl::Mechanism::ALL
        .into_iter()
        .map(MechAdvert::from)
        .collect();
    let cookie = [
        0xab, 0x5a, 0x45, 0x8e, 0x8a, 0xdb, 0xf4, 0x38, 0xd8, 0xb3, 0x54, 0x44, 0x87, 0xd6, 0x93,
        0xcf,
    ];
    assert_eq!(
        handshake(&mechs, 23609, 1, &cookie),
        "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\n\
         MECH\tXOAUTH2\tplaintext\nMECH\tOAUTHBEARER\tplaintext\nSPID\t23609\nCUID\t1\n\
         COOKIE\tab5a458e8adbf438d8b3544487d693cf\nDONE\n"
    );
    let flags = MechAdvert {
        name: "X".into(),
        flags: vec![
            MechFlag::Anonymous,
            MechFlag::ForwardSecrecy,
            MechFlag::Private,
        ],
    };
    assert!(handshake(&[flags], 1, 2, &[0; 16])
        .contains("MECH\tX\tanonymous\tforward-secrecy\tprivate\nSPID"));
}

#[test]
fn postfix_auth_line() {
    let r = auth(
        "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tsecured\t\
         resp=AGFsaWNlAGFsaWNlLXNlY3JldA==",
        0,
    );
    assert_eq!(r.id, 1);
    assert_eq!(r.mechanism, "PLAIN");
    assert_eq!(r.service, "smtp");
    assert!(r.nologin && r.secured && !r.no_penalty && !r.valid_client_cert);
    assert_eq!(r.local_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(r.remote_ip, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))));
    assert_eq!(
        r.initial_response.as_deref().map(Vec::as_slice),
        Some(&b"\0alice\0alice-secret"[..])
    );
    assert!(format!("{r:?}").contains("initial_response: Some(\"<19 bytes>\")"));
}

#[test]
fn exim_auth_line_with_empty_resp() {
    let r = auth(
        "AUTH\t1\tLOGIN\tservice=smtp\tsecured\tvalid-client-cert\trip=::1\tlip=[::1]\tnologin\tresp=",
        0,
    );
    assert!(r.secured && r.valid_client_cert);
    assert_eq!(r.remote_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(r.local_ip, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert!(
        r.initial_response.is_none(),
        "empty resp= from minor 0 means absent"
    );
}

#[test]
fn empty_resp_is_empty_response_for_minor_2() {
    for value in ["resp=", "resp=="] {
        let r = auth(&format!("AUTH\t3\tPLAIN\tservice=imap\t{value}"), 2);
        assert_eq!(r.initial_response.as_deref().map(Vec::len), Some(0));
    }
    // `resp==` from an old client is "=", i.e. still an empty response, not absent.
    let r = auth("AUTH\t3\tPLAIN\tservice=imap\tresp==", 0);
    assert_eq!(r.initial_response.as_deref().map(Vec::len), Some(0));
    let r = auth("AUTH\t3\tPLAIN\tservice=imap", 2);
    assert!(r.initial_response.is_none());
}

#[test]
fn secured_rule() {
    let secured = |params: &str| {
        auth(&format!("AUTH\t1\tPLAIN\tservice=smtp{params}"), 0).counts_as_secured()
    };
    assert!(secured("\tsecured"));
    assert!(secured("\trip=127.0.0.2"));
    assert!(secured("\trip=::1"));
    assert!(secured("\trip=::ffff:127.0.0.1"));
    assert!(secured("\tlip=192.0.2.1\trip=192.0.2.1"));
    assert!(!secured("\tlip=192.0.2.1\trip=192.0.2.2"));
    assert!(!secured("\trip=192.0.2.2"));
    assert!(!secured(""));
}

#[test]
fn optional_parameters() {
    let r = auth(
        "AUTH\t4294967295\toauthbearer\tservice=imap\tsecured=tls\tlport=993\trport=0\t\
         session=abc\x01tdef\tlocal_name=mail.example\tno-penalty\tweird\tfoo=bar\tlip=bogus",
        2,
    );
    assert_eq!(r.id, u32::MAX);
    assert_eq!(r.mechanism, "oauthbearer");
    assert!(r.secured && r.no_penalty);
    assert_eq!(r.local_port, Some(993));
    assert_eq!(r.remote_port, None);
    assert_eq!(r.session.as_deref(), Some("abc\tdef"));
    assert_eq!(r.local_name.as_deref(), Some("mail.example"));
    assert_eq!(r.local_ip, None);
    assert!(format!("{r:?}").contains("initial_response: None"));
}

#[test]
fn invalid_base64_fails_the_request_only() {
    let err = parse_client_line(b"AUTH\t13\tPLAIN\tservice=smtp\tresp=!!!notbase64", 0)
        .expect_err("invalid base64");
    assert_eq!(err.disposition(), Disposition::FailRequest { id: 13 });
    assert_eq!(
        err.fail_reply().as_deref(),
        Some("FAIL\t13\tcode=invalid_base64\treason=Invalid base64 data in initial response\n")
    );
    let err = parse_client_line(b"CONT\t7\t@@", 0).expect_err("invalid base64");
    assert_eq!(
        err,
        ParseError::InvalidBase64 {
            id: 7,
            initial: false
        }
    );
    assert_eq!(
        err.fail_reply().as_deref(),
        Some("FAIL\t7\tcode=invalid_base64\treason=Invalid base64 data in continued response\n")
    );
}

#[test]
fn protocol_violations_disconnect() {
    let cases: &[(&[u8], ParseError)] = &[
        (
            b"AUTH\t0\tPLAIN\tservice=smtp",
            ParseError::Malformed("AUTH"),
        ),
        (
            b"AUTH\t+1\tPLAIN\tservice=smtp",
            ParseError::Malformed("AUTH"),
        ),
        (
            b"AUTH\t4294967296\tPLAIN\tservice=smtp",
            ParseError::Malformed("AUTH"),
        ),
        (b"AUTH\t1", ParseError::Malformed("AUTH")),
        (b"AUTH\t1\t\tservice=smtp", ParseError::Malformed("AUTH")),
        (b"AUTH\t1\tPLAIN", ParseError::MissingService),
        (b"AUTH\t1\tPLAIN\tservice=", ParseError::MissingService),
        (
            b"AUTH\t1\tPLAIN\tresp=AA==\tservice=smtp",
            ParseError::ParameterAfterResp,
        ),
        (b"AUTH", ParseError::UnknownCommand),
        (b"auth\t1\tPLAIN\tservice=smtp", ParseError::UnknownCommand),
        (b"", ParseError::UnknownCommand),
        (b"CONT\t1", ParseError::Malformed("CONT")),
        (b"CONT\tx\tAA==", ParseError::Malformed("CONT")),
        (b"CANCEL\t-1", ParseError::Malformed("CANCEL")),
        (b"CPID\t0", ParseError::Malformed("CPID")),
        (b"VERSION\t1", ParseError::Malformed("VERSION")),
        (b"AUTH\t1\tPLAIN\tservice=\xff", ParseError::InvalidUtf8),
    ];
    for (line, expected) in cases {
        let err = parse_client_line(line, 0).expect_err("must fail");
        assert_eq!(&err, expected, "{}", String::from_utf8_lossy(line));
        assert_eq!(err.disposition(), Disposition::Disconnect);
        assert_eq!(err.fail_reply(), None);
    }
    let long = vec![b'A'; MAX_LINE_LENGTH];
    assert_eq!(parse_client_line(&long, 0), Err(ParseError::LineTooLong));
}

#[test]
fn cont_and_cancel() {
    assert_eq!(
        parse_client_line(b"CONT\t7\tYm9i", 0),
        Ok(ClientLine::Cont {
            id: 7,
            data: b"bob".to_vec().into()
        })
    );
    assert_eq!(
        parse_client_line(b"CONT\t9\t", 0),
        Ok(ClientLine::Cont {
            id: 9,
            data: Vec::new().into()
        })
    );
    assert_eq!(
        parse_client_line(b"CANCEL\t5", 0),
        Ok(ClientLine::Cancel { id: 5 })
    );
    let line = parse_client_line(b"CONT\t7\tc2VjcmV0", 0).expect("cont");
    assert!(!format!("{line:?}").contains("secret"));
}

#[test]
fn client_state_enforces_handshake_order() {
    let mut state = ClientState::new();
    assert_eq!(state.client_minor(), None);
    assert_eq!(
        state.accept(b"CPID\t1"),
        Err(ParseError::UnexpectedLine("non-VERSION"))
    );

    let mut state = ClientState::new();
    assert_eq!(
        state.accept(b"VERSION\t2\t0"),
        Err(ParseError::IncompatibleVersion(2))
    );

    let mut state = ClientState::new();
    assert!(state.accept(b"VERSION\t1\t0").is_ok());
    assert_eq!(state.client_minor(), Some(0));
    assert!(!state.handshake_done());
    assert_eq!(
        state.accept(b"AUTH\t1\tPLAIN\tservice=smtp"),
        Err(ParseError::UnexpectedLine("non-CPID"))
    );

    let mut state = ClientState::new();
    assert!(state.accept(b"VERSION\t1\t0").is_ok());
    assert_eq!(state.accept(b"CPID\t4242"), Ok(ClientLine::Cpid(4242)));
    assert!(state.handshake_done());
    // Exim's empty resp= is interpreted with the negotiated minor version.
    match state.accept(b"AUTH\t1\tPLAIN\tservice=smtp\tresp=") {
        Ok(ClientLine::Auth(r)) => assert!(r.initial_response.is_none()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        state.accept(b"VERSION\t1\t2"),
        Err(ParseError::UnexpectedLine("VERSION"))
    );
    assert_eq!(
        state.accept(b"CPID\t1"),
        Err(ParseError::UnexpectedLine("CPID"))
    );

    let mut state = ClientState::new();
    assert!(state.accept(b"VERSION\t1\t2").is_ok());
    assert!(state.accept(b"CPID\t1").is_ok());
    match state.accept(b"AUTH\t1\tPLAIN\tservice=smtp\tresp=") {
        Ok(ClientLine::Auth(r)) => assert_eq!(r.initial_response.as_deref().map(Vec::len), Some(0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reply_lines() {
    assert_eq!(ok(1, "alice", &[]), "OK\t1\tuser=alice\n");
    assert_eq!(
        ok(2, "a\tb", &[("original_user", "x"), ("anonymous", "")]),
        "OK\t2\tuser=a\x01tb\toriginal_user=x\tanonymous\n"
    );
    assert_eq!(cont(7, b"Username:"), "CONT\t7\tVXNlcm5hbWU6\n");
    assert_eq!(cont(12, b""), "CONT\t12\t\n");
    assert_eq!(
        cont(9, crate::sasl::XOAUTH2_ERROR_JSON.as_bytes()),
        "CONT\t9\teyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=\n"
    );
    assert_eq!(
        fail(1, Some("alice"), None, None, false),
        "FAIL\t1\tuser=alice\n"
    );
    assert_eq!(
        fail(3, None, None, Some("Temporary backend outage"), true),
        "FAIL\t3\tcode=temp_fail\ttemp\treason=Temporary backend outage\n"
    );
    assert_eq!(
        fail(
            4,
            Some("x\ny"),
            Some(FailCode::UserDisabled),
            Some("no\tpe"),
            false
        ),
        "FAIL\t4\tuser=x\x01ny\tcode=user_disabled\treason=no\x01tpe\n"
    );
    assert_eq!(
        request_timed_out(5),
        "FAIL\t5\treason=Authentication request timed out\n"
    );
}

#[test]
fn fail_bounds_client_chosen_text() {
    let long_user = "u".repeat(MAX_ECHO_LEN + 1);
    let long_reason = "é".repeat(MAX_ECHO_LEN);
    let line = fail(1, Some(&long_user), None, Some(&long_reason), false);
    assert!(!line.contains("user="));
    assert!(line.len() < MAX_ECHO_LEN + 32);
    assert!(line.ends_with('\n'));
}

#[test]
fn fail_codes_spelled_as_dovecot() {
    let all = [
        (FailCode::TempFail, "temp_fail"),
        (FailCode::AuthzFail, "authz_fail"),
        (FailCode::UserDisabled, "user_disabled"),
        (FailCode::PassExpired, "pass_expired"),
        (FailCode::InvalidBase64, "invalid_base64"),
        (FailCode::MechInvalid, "auth_mech_invalid"),
        (FailCode::MechSslRequired, "auth_mech_ssl_required"),
        (FailCode::AnonymousDenied, "anonymous_denied"),
    ];
    for (code, text) in all {
        assert_eq!(code.as_str(), text);
    }
    assert_eq!(MechFlag::Dictionary.as_str(), "dictionary");
    assert_eq!(MechFlag::Active.as_str(), "active");
    assert_eq!(MechFlag::MutualAuth.as_str(), "mutual-auth");
    assert_eq!(MechFlag::Plaintext.as_str(), "plaintext");
}
