//! Pure checks of a parsed configuration (files are read, nothing is connected or bound).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::{Config, ConfigError, DirectoryConfig, ListenerConfig, Protocol};

const MECHANISMS: [&str; 4] = ["plain", "login", "xoauth2", "oauthbearer"];

/// Every problem found, each naming its key.
pub fn validate(c: &Config, file: &str) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut err = |key: String, reason: String| errors.push(ConfigError::new(file, key, reason));

    match c.store_url() {
        Err(e) => err("store.url-file".into(), e),
        Ok(url) => {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                err(
                    "store.url".into(),
                    "must start with sqlite:// or postgres://".into(),
                );
            }
        }
    }
    if c.server.hash_queue_per_address == 0 {
        err(
            "server.hash-queue-per-address".into(),
            "must be at least 1 (the verifications one client address may have in progress)".into(),
        );
    }
    if c.store.pool_size == 0 {
        err("store.pool-size".into(), "must be at least 1".into());
    }
    let a = &c.authentication;
    for (k, n) in [
        ("max-failures-per-account", a.max_failures_per_account),
        ("max-failures-per-ip", a.max_failures_per_ip),
    ] {
        if n == 0 {
            err(
                format!("authentication.{k}"),
                "must be at least 1 (the failures allowed before attempts are refused)".into(),
            );
        }
    }
    if a.failure_window.as_secs() == 0 {
        err(
            "authentication.failure-window".into(),
            "must be at least 1s".into(),
        );
    }
    if !(c.server.public_url.starts_with("http://") || c.server.public_url.starts_with("https://"))
    {
        err(
            "server.public-url".into(),
            "must be an http:// or https:// URL".into(),
        );
    }
    for (i, proxy) in c.server.trusted_proxies.iter().enumerate() {
        if crate::auth::parse_network(proxy.trim()).is_none() {
            err(
                format!("server.trusted-proxies[{i}]"),
                format!("{proxy:?} is not an address or a network (CIDR)"),
            );
        }
    }

    let mut binds = BTreeSet::new();
    for (i, l) in c.listener.iter().enumerate() {
        let key = |k: &str| format!("listener[{i}].{k}");
        if let Some(path) = l.bind.strip_prefix("unix:") {
            if !path.starts_with('/') {
                err(
                    key("bind"),
                    format!("unix socket path must be absolute: {path:?}"),
                );
            }
        } else if l.bind.parse::<SocketAddr>().is_err() {
            err(
                key("bind"),
                format!(
                    "{:?} is neither host:port (an IP address) nor unix:/path",
                    l.bind
                ),
            );
        }
        // Port 0 asks the kernel for a free port: several listeners may ask.
        if !l.bind.ends_with(":0") && !binds.insert(l.bind.clone()) {
            err(key("bind"), format!("{} is bound twice", l.bind));
        }
        if let Some(mode) = &l.mode {
            if u32::from_str_radix(mode, 8)
                .map(|m| m > 0o777)
                .unwrap_or(true)
            {
                err(
                    key("mode"),
                    format!("{mode:?} is not an octal file mode like \"0660\""),
                );
            }
            if !l.bind.starts_with("unix:") {
                err(key("mode"), "only unix sockets have a mode".into());
            }
        }
        for m in &l.mechanisms {
            if !MECHANISMS.contains(&m.to_ascii_lowercase().as_str()) {
                err(
                    key("mechanisms"),
                    format!("unknown mechanism {m:?} (known: {})", MECHANISMS.join(", ")),
                );
            }
        }
        for (k, reason) in listener_keys(l) {
            err(key(k), reason);
        }
        if l.protocol == Protocol::Saslauthd && !l.bind.starts_with("unix:") {
            err(
                key("bind"),
                "saslauthd listens on a unix socket only".into(),
            );
        }
        if l.max_connections == 0 {
            err(key("max-connections"), "must be at least 1".into());
        }
    }

    let mut seen = BTreeSet::new();
    for (i, d) in c.authentication.directories.iter().enumerate() {
        let key = format!("authentication.directories[{i}]");
        if !seen.insert(d) {
            err(key.clone(), format!("{d:?} is listed twice"));
        }
        if d != "internal" && !c.directory.contains_key(d) {
            err(key, format!("no [directory.{d}] section"));
        }
    }
    if c.directory.contains_key("internal") {
        err(
            "directory.internal".into(),
            "\"internal\" is built in and cannot be configured".into(),
        );
    }
    for (name, d) in &c.directory {
        let key = |k: &str| format!("directory.{name}.{k}");
        match d {
            DirectoryConfig::Ldap(l) => {
                for (k, reason) in l.problems().into_iter().chain(l.file_problems()) {
                    err(key(k), reason);
                }
            }
            DirectoryConfig::Sql(s) => {
                // URL (or url-file), pool and timeout, and each query's placeholders for the
                // URL's dialect; `check-config --live` asks the database itself.
                for e in s.check_static() {
                    err(key(e.key), e.reason);
                }
            }
            DirectoryConfig::Oidc(o) => {
                if !(o.issuer.starts_with("https://") || o.issuer.starts_with("http://")) {
                    err(key("issuer"), "must be an https:// URL".into());
                }
            }
        }
        if c.authentication.directories.iter().all(|d| d != name) {
            err(
                format!("directory.{name}"),
                "defined but not listed in authentication.directories".into(),
            );
        }
    }
    for (proto, addr) in &c.auth_http.backends {
        if !["imap", "pop3", "smtp"].contains(&proto.as_str()) {
            err(
                format!("auth-http.backends.{proto}"),
                "protocol must be imap, pop3 or smtp".into(),
            );
        }
        if addr.parse::<SocketAddr>().is_err() {
            err(
                format!("auth-http.backends.{proto}"),
                format!("{addr:?} must be IP:port (nginx takes no host names)"),
            );
        }
    }
    if c.log
        .level
        .parse::<tracing_subscriber::EnvFilter>()
        .is_err()
    {
        err(
            "log.level".into(),
            format!("{:?} is not a valid filter", c.log.level),
        );
    }
    errors
}

/// TLS and the per-protocol keys of one listener: each key only where it means something.
fn listener_keys(l: &ListenerConfig) -> Vec<(&'static str, String)> {
    let mut errors = Vec::new();
    let unix = l.bind.starts_with("unix:");
    match &l.tls {
        Some(_) if unix => errors.push((
            "tls",
            "TLS applies to TCP listeners; a unix socket is protected by its file mode".into(),
        )),
        Some(tls) => {
            if let Err(e) = crate::tls::load(tls, &[]) {
                errors.push(("tls", e.to_string()));
            }
        }
        None if l.tls_handshake_timeout.is_some() => {
            errors.push(("tls-handshake-timeout", "needs tls on this listener".into()))
        }
        None => {}
    }
    let dovecot = l.protocol == Protocol::DovecotAuth;
    let only_dovecot = [
        ("max-requests-in-flight", l.max_requests_in_flight.is_some()),
        ("request-timeout", l.request_timeout.is_some()),
        ("failure-delay", l.failure_delay.is_some()),
    ];
    for (k, set) in only_dovecot {
        if set && !dovecot {
            errors.push((k, "applies to dovecot-auth listeners only".into()));
        }
    }
    if l.max_requests_in_flight == Some(0) {
        errors.push(("max-requests-in-flight", "must be at least 1".into()));
    }
    for (k, d) in [
        ("request-timeout", l.request_timeout),
        ("tls-handshake-timeout", l.tls_handshake_timeout),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            errors.push((k, "must be longer than 0s".into()));
        }
    }
    if l.idle_timeout.is_zero() {
        errors.push(("idle-timeout", "must be longer than 0s".into()));
    }
    errors
}
