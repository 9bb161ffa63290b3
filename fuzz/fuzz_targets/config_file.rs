//! Arbitrary text as `postern.toml`: parsing must never panic, and every problem names a key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = postern::config::parse_text(text) {
        assert!(!problems.is_empty());
        for p in problems {
            assert!(!p.key.is_empty());
        }
    }
});
