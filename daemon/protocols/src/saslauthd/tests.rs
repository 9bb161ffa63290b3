use super::*;
use proptest::prelude::*;

const OBSERVED: &[u8] = b"\x00\x08sasluser\x00\x0bsasl-secret\x00\x04smtp\x00\x0cexample.test";

#[test]
fn decodes_the_observed_request() {
    let (request, used) = decode_request(OBSERVED).expect("valid").expect("complete");
    assert_eq!(used, OBSERVED.len());
    assert_eq!(request.login, "sasluser");
    assert_eq!(request.password.as_str(), "sasl-secret");
    assert_eq!(request.service, "smtp");
    assert_eq!(request.realm, "example.test");
    assert_eq!(request.qualified_login(), "sasluser@example.test");
    assert!(!format!("{request:?}").contains("sasl-secret"));
}

#[test]
fn every_prefix_needs_more_bytes() {
    for end in 0..OBSERVED.len() {
        assert!(
            matches!(decode_request(&OBSERVED[..end]), Ok(None)),
            "prefix of {end} bytes"
        );
    }
    // Trailing bytes are not consumed.
    let mut longer = OBSERVED.to_vec();
    longer.extend_from_slice(b"junk");
    assert!(matches!(decode_request(&longer), Ok(Some((_, n))) if n == OBSERVED.len()));
}

#[test]
fn empty_realm_and_service() {
    let buf = encode_request("u", "p", "", "").expect("encodable");
    let (request, _) = decode_request(&buf).expect("valid").expect("complete");
    assert_eq!(request.qualified_login(), "u");
    assert_eq!(request.service, "");
}

#[test]
fn oversized_field_is_refused_at_once() {
    // saslauthd answers `NO ` to a 300-byte login before reading anything else.
    let mut buf = 300u16.to_be_bytes().to_vec();
    buf.extend_from_slice(b"aaaa");
    let err = decode_request(&buf).expect_err("too long");
    assert_eq!(err, RequestError::FieldTooLong(Field::Login));
    assert_eq!(err.reply().encode(), b"\x00\x03NO ");

    let mut buf = encode_request("u", "p", "smtp", "").expect("encodable");
    buf.truncate(buf.len() - 2);
    buf.extend_from_slice(&257u16.to_be_bytes());
    assert_eq!(
        decode_request(&buf).expect_err("too long"),
        RequestError::FieldTooLong(Field::Realm)
    );
    let max = "x".repeat(MAX_FIELD_LEN);
    let buf = encode_request(&max, &max, &max, &max).expect("encodable");
    assert_eq!(buf.len(), MAX_REQUEST_LEN);
    assert!(matches!(decode_request(&buf), Ok(Some(_))));
}

#[test]
fn invalid_fields() {
    let buf = encode_request("a\0b", "p", "s", "").expect("encodable");
    assert_eq!(
        decode_request(&buf).expect_err("nul"),
        RequestError::NulInField(Field::Login)
    );
    let buf = encode_request("a", "p", "s", "r\0").expect("encodable");
    assert_eq!(
        decode_request(&buf).expect_err("nul"),
        RequestError::NulInField(Field::Realm)
    );
    let buf = b"\x00\x01a\x00\x01\xff\x00\x00\x00\x00";
    assert_eq!(
        decode_request(buf).expect_err("utf8"),
        RequestError::InvalidUtf8(Field::Password)
    );
}

#[test]
fn empty_login_or_password_as_saslauthd_answers() {
    let buf = encode_request("", "p", "smtp", "").expect("encodable");
    let err = decode_request(&buf).expect_err("empty login");
    assert_eq!(err, RequestError::EmptyLogin);
    assert_eq!(err.reply().encode(), b"\x00\x16NO NULL login received");
    let buf = encode_request("u", "", "smtp", "").expect("encodable");
    let err = decode_request(&buf).expect_err("empty password");
    assert_eq!(err.reply().encode(), b"\x00\x19NO NULL password received");
    // Both empty: the login is checked first.
    let buf = encode_request("", "", "", "").expect("encodable");
    assert_eq!(
        decode_request(&buf).expect_err("empty"),
        RequestError::EmptyLogin
    );
}

#[test]
fn replies() {
    assert_eq!(Reply::Ok.encode(), b"\x00\x02OK");
    assert_eq!(
        Reply::No("authentication failed".into()).encode(),
        b"\x00\x18NO authentication failed"
    );
    assert_eq!(Reply::No("a\nb".into()).encode(), b"\x00\x06NO a b");
    let long = Reply::No("é".repeat(1000)).encode();
    let len = usize::from(u16::from_be_bytes([long[0], long[1]]));
    assert_eq!(len, long.len() - 2);
    assert!(len <= MAX_REPLY_TEXT);
    assert!(std::str::from_utf8(&long[2..]).is_ok());
}

#[test]
fn encode_request_refuses_unencodable_fields() {
    assert!(encode_request(&"x".repeat(70_000), "p", "s", "r").is_none());
}

proptest! {
    #[test]
    fn decoder_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(Some((_, used))) = decode_request(&buf) {
            prop_assert!(used <= buf.len() && used <= MAX_REQUEST_LEN);
        }
        if let Err(err) = decode_request(&buf) {
            let reply = err.reply().encode();
            prop_assert!(reply.starts_with(b"\x00") && reply[2..].starts_with(b"NO "));
        }
    }

    #[test]
    fn round_trip(
        login in "[^\x00]{1,40}",
        password in "[^\x00]{1,40}",
        service in "[a-z]{0,8}",
        realm in "[a-z.]{0,20}",
    ) {
        let buf = encode_request(&login, &password, &service, &realm).expect("encodable");
        let (request, used) = decode_request(&buf).expect("valid").expect("complete");
        prop_assert_eq!(used, buf.len());
        prop_assert_eq!(request.login, login);
        prop_assert_eq!(request.password.as_str(), password.as_str());
        prop_assert_eq!(request.service, service);
        prop_assert_eq!(request.realm, realm);
    }

    #[test]
    fn reply_is_bounded(reason in any::<String>()) {
        let out = Reply::No(reason).encode();
        let len = usize::from(u16::from_be_bytes([out[0], out[1]]));
        prop_assert_eq!(len + 2, out.len());
        prop_assert!(len <= MAX_REPLY_TEXT);
        prop_assert!(out[2..].starts_with(b"NO "));
    }
}
