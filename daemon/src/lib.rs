//! Postern's engine: configuration, the directory chain, authorization, sessions, front-ends
//! and metrics. The `postern` binary (`main.rs`) is a thin command-line layer over it.

pub mod admin;
pub mod auth;
pub mod authz;
pub mod cli;
pub mod config;
pub mod frontend;
pub mod http;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod runtime;
#[cfg(test)]
mod test_alloc;
pub mod tls;
