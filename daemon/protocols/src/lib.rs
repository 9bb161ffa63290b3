//! Wire codecs for the authentication-delegation protocols (pure: no I/O, no engine types).
//!
//! Every module here is a synchronous, allocation-light translation between bytes on the wire and
//! typed values. Nothing reads a socket, sleeps or looks at a clock, so each codec can be unit
//! tested, property tested and fuzzed in isolation; the daemon's server loops own the sockets,
//! the timers (failure delays, request reaping) and the credential checks.
//!
//! * [`dovecot`] — server side of the Dovecot authentication protocol 1.2 (Postfix, Exim).
//! * [`sasl`] — transport-independent server state machines for PLAIN, LOGIN, XOAUTH2 and
//!   OAUTHBEARER, driven by the dovecot front-end (and any future SASL carrier).
//! * [`saslauthd`] — the Cyrus saslauthd counted-string request/reply codec.
//! * [`nginx`] — the nginx mail proxy `auth_http` request headers and reply headers.
//!
//! Secrets (passwords, bearer tokens) are held in [`zeroize::Zeroizing`] and no `Debug`
//! implementation in this crate prints them.

#![forbid(unsafe_code)]

pub mod dovecot;
pub mod nginx;
pub mod sasl;
pub mod saslauthd;

mod b64;
