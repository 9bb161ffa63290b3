//! XOAUTH2 and OAUTHBEARER state machines, including the token-rejection dance. The first byte
//! picks the mechanism, whether there is an initial response and whether the engine rejects
//! the token; the rest is split into messages at 0xFF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_protocols::sasl::{Mechanism, Session, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if selector & 1 == 0 {
        Mechanism::XOAuth2
    } else {
        Mechanism::OAuthBearer
    };
    let reject = selector & 4 != 0;
    let mut session = Session::new(mechanism);
    let mut messages = rest.split(|b| *b == 0xff);
    let first = if selector & 2 == 0 {
        None
    } else {
        messages.next()
    };
    let mut step = session.step(first);
    for message in messages {
        if reject && matches!(step, Step::Credentials(_)) {
            let url = (selector & 8 != 0).then_some("https://auth.example/\"x\\");
            step = session.reject_token(url);
            continue;
        }
        step = session.step(Some(message));
    }
    let _ = format!("{step:?} {session:?}");
});
