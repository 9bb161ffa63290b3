//! Arbitrary bytes as an auth_http header block (`Name: value` lines); parsing must not panic and
//! any failure reply built from client-controlled text must stay a safe header value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_protocols::nginx::{self, Reply};

fuzz_target!(|data: &[u8]| {
    let mut headers = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        headers.push((name, value));
    }
    let _ = nginx::percent_decode(data);
    if let Ok(request) = nginx::parse_request(headers) {
        let _ = format!("{request:?}");
        if let Ok(reply) = Reply::failure(request.protocol, &request.user, Some(1)).headers() {
            for (_, value) in reply {
                assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)));
                assert!(value != "OK" && value != "WAIT");
            }
        }
    }
});
