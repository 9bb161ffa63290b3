//! Arbitrary text as a provisioning file: parsing must never panic, and a parsed file's
//! passwords never show in its debug form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_internal::input::Provision;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = toml::from_str::<Provision>(text) {
        let shown = format!("{file:?}");
        for a in &file.account {
            if let Some(p) = &a.password {
                if p.expose().len() >= 8 {
                    assert!(!shown.contains(p.expose()));
                }
            }
        }
    }
});
