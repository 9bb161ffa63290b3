//! Arbitrary bytes as a login request: the first line is an `Authorization` header value, the
//! rest the JSON body. Decoding must never panic, and a refusal is a 400 with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern::http::auth::{basic, login_body};

fuzz_target!(|data: &[u8]| {
    let (line, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(line) {
        headers.insert(http::header::AUTHORIZATION, value);
    }
    if let Some(Err(e)) = basic(&headers) {
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
    }
    if let Err(e) = login_body(body) {
        assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
    }
});
