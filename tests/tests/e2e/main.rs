//! End-to-end tests: one binary (every file in tests/ is another slow link), one module per area.
//! Each test starts its own daemon and servers; nothing is shared between tests.

mod activation;
mod api;
mod api_cli;
mod api_schemathesis;
mod cli;
mod config;
mod foundation;
mod hardening;
mod ldap;
mod mail;
mod ops;
mod reload;
mod sql;
mod throttle;
mod tls;
