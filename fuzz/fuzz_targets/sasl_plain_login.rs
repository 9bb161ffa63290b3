//! PLAIN and LOGIN state machines fed arbitrary client messages. The first byte picks the
//! mechanism and whether there is an initial response; the rest is split into messages at 0xFF
//! (a byte that never occurs in UTF-8, so valid messages stay reachable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_protocols::sasl::{Mechanism, Session, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if selector & 1 == 0 {
        Mechanism::Plain
    } else {
        Mechanism::Login
    };
    let mut session = Session::new(mechanism);
    let mut messages = rest.split(|b| *b == 0xff);
    let first = if selector & 2 == 0 {
        None
    } else {
        messages.next()
    };
    let mut step = session.step(first);
    for message in messages {
        if matches!(step, Step::Fail(_)) {
            assert!(session.is_finished());
        }
        step = session.step(Some(message));
    }
    if let Step::Fail(err) = &step {
        let _ = err.reason();
    }
    let _ = format!("{step:?} {session:?}");
});
