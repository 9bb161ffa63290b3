//! Arbitrary bytes as a bearer token: Postern's own test of JWT shape, and the OIDC
//! directory's checks of an unverified token (payload, claim rules, identity, userinfo merge).
//! None may panic, whatever the token.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = postern::oauth::jwt::looks_like_jwt(token);
    let _ = postern_oidc::check_unverified(token, 1_790_000_000);
});
