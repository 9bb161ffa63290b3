//! Property tests: arbitrary input never panics; escaping and base64 round-trip.

use super::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn escape_round_trips(s in any::<String>()) {
        let escaped = escape(&s);
        prop_assert!(!escaped.contains(['\t', '\n', '\r', '\0']));
        let back = unescape(&escaped).into_owned();
        prop_assert_eq!(back, s.clone());
    }

    #[test]
    fn unescape_never_panics(s in any::<String>()) {
        let _ = unescape(&s);
    }

    #[test]
    fn parser_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300), minor in 0u32..4) {
        if let Err(err) = parse_client_line(&line, minor) {
            let _ = err.fail_reply();
            let _ = err.disposition();
        }
    }

    #[test]
    fn structured_auth_lines_never_panic(
        id in "[0-9+-]{0,11}",
        params in proptest::collection::vec("[a-z_=\x01-]{0,8}(=[A-Za-z0-9+/=:.\\[\\]\x01]{0,12})?", 0..8),
        minor in 0u32..4,
    ) {
        let line = format!("AUTH\t{id}\tPLAIN\t{}", params.join("\t"));
        let _ = parse_client_line(line.as_bytes(), minor);
    }

    #[test]
    fn state_and_reader_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
        let mut reader = LineReader::new();
        let mut state = ClientState::new();
        for chunk in chunks {
            reader.push(&chunk);
            while let Ok(Some(line)) = reader.next_line() {
                let _ = state.accept(line);
            }
        }
    }

    #[test]
    fn replies_are_single_lines(user in any::<String>(), reason in any::<String>(), id in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
        for line in [
            ok(id, &user, &[("x", &reason)]),
            fail(id, Some(&user), None, Some(&reason), true),
            cont(id, &data),
        ] {
            prop_assert!(line.ends_with('\n'));
            prop_assert_eq!(line.matches('\n').count(), 1);
        }
    }

    #[test]
    fn initial_response_round_trips(data in proptest::collection::vec(any::<u8>(), 1..200)) {
        let line = format!("AUTH\t1\tPLAIN\tservice=smtp\tresp={}", crate::b64::encode(&data));
        let r = match parse_client_line(line.as_bytes(), 0) {
            Ok(ClientLine::Auth(r)) => r,
            other => panic!("{other:?}"),
        };
        prop_assert_eq!(r.initial_response.as_deref().map(Vec::as_slice), Some(&data[..]));
    }
}
