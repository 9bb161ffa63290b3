//! End-to-end tests: one binary (every file in tests/ is another slow link), one module per area.
//! Each test starts its own daemon and servers; nothing is shared between tests.

mod activation;
mod api;
mod api_cli;
mod api_schemathesis;
mod api_tenant;
mod cache;
mod cli;
mod config;
mod foundation;
mod guides_alerts;
mod guides_cli;
mod guides_mail;
mod guides_web;
mod hardening;
mod ldap;
mod mail;
mod oauth;
mod oauth_clients;
mod oauth_mail;
mod oidc;
mod ops;
mod package;
mod reload;
mod sql;
mod throttle;
mod tls;
