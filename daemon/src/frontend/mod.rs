//! The mail front-ends: dovecot-auth and saslauthd servers over the shared engine.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Engine;
use crate::config::{ListenerConfig, Protocol};
use crate::net::Listener;

/// Per-listener settings of a mail front-end.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mechanisms: Vec<String>,
    pub allow_plaintext: bool,
    pub idle_timeout: Duration,
}

impl Settings {
    pub fn from_config(l: &ListenerConfig) -> Self {
        Settings {
            mechanisms: l.mechanisms.iter().map(|m| m.to_ascii_uppercase()).collect(),
            allow_plaintext: l.allow_plaintext,
            idle_timeout: l.idle_timeout,
        }
    }
}

pub async fn serve(
    protocol: Protocol,
    listener: Listener,
    engine: Arc<Engine>,
    settings: Settings,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let _ = (engine, settings, stop);
    tracing::error!(?protocol, address = %listener.local_addr(), "this front-end is not available in this build yet; listener closed");
}
