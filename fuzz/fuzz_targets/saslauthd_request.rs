//! Arbitrary bytes as a saslauthd request; every outcome must encode a bounded reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_protocols::saslauthd::{self, Reply, MAX_REPLY_TEXT, MAX_REQUEST_LEN};

fuzz_target!(|data: &[u8]| {
    let reply = match saslauthd::decode_request(data) {
        Ok(None) => return,
        Ok(Some((request, used))) => {
            assert!(used <= data.len() && used <= MAX_REQUEST_LEN);
            let _ = request.qualified_login();
            let _ = format!("{request:?}");
            Reply::No(request.login.clone())
        }
        Err(err) => err.reply(),
    };
    let encoded = reply.encode();
    assert!(encoded.len() >= 4 && encoded.len() <= 2 + MAX_REPLY_TEXT);
    assert!(encoded[2..].starts_with(b"NO "));
});
