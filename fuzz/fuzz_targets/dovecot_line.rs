//! Arbitrary bytes as a dovecot-auth client stream: framing, handshake state, line parsing,
//! error replies, and the replies the server would format from what was parsed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_protocols::dovecot::{self, ClientLine, ClientState, LineReader};

fuzz_target!(|data: &[u8]| {
    // Every line on its own, for each minor version (changes the meaning of an empty resp=).
    for minor in 0..3 {
        if let Err(err) = dovecot::parse_client_line(data, minor) {
            let _ = err.disposition();
            let _ = err.fail_reply();
        }
    }

    // The whole input as a stream, fed in two chunks.
    let mut reader = LineReader::new();
    let mut state = ClientState::new();
    let (first, second) = data.split_at(data.len() / 2);
    for chunk in [first, second] {
        reader.push(chunk);
        loop {
            let line = match reader.next_line() {
                Ok(Some(line)) => line,
                Ok(None) | Err(_) => break,
            };
            match state.accept(line) {
                Ok(ClientLine::Auth(request)) => {
                    let _ = dovecot::ok(
                        request.id,
                        &request.mechanism,
                        &[("service", &request.service)],
                    );
                    let _ = dovecot::fail(
                        request.id,
                        Some(&request.service),
                        None,
                        request.session.as_deref(),
                        true,
                    );
                    let _ = format!("{request:?}");
                }
                Ok(ClientLine::Cont { id, data }) => {
                    let _ = dovecot::cont(id, &data);
                }
                Ok(_) => {}
                Err(err) => {
                    let _ = err.fail_reply();
                }
            }
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        let escaped = dovecot::escape(text);
        assert_eq!(dovecot::unescape(&escaped), text);
    }
});
