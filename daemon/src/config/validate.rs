//! Pure checks of a parsed configuration (files are read, nothing is connected or bound). Each
//! section has its own function; all of them report every problem they find rather than the
//! first, so that one `check-config` run lists everything to fix.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use postern_directory::config::did_you_mean;
use postern_directory::{read_secret_file, ConfigProblem};

use super::parse::Parsed;
use super::{Config, ConfigError, ListenerConfig, Protocol};

const MECHANISMS: [&str; 4] = ["plain", "login", "xoauth2", "oauthbearer"];

/// nginx's mail proxy speaks these; `[auth-http] backends` names an upstream for each.
const MAIL_PROTOCOLS: [&str; 3] = ["imap", "pop3", "smtp"];

/// Every problem of a configuration built in code, each naming its key and `file`.
pub fn validate(c: &Config, file: &str) -> Vec<ConfigError> {
    let index: Vec<usize> = (0..c.listener.len()).collect();
    check(c, &index, &BTreeSet::new())
        .into_iter()
        .map(|p| ConfigError::new(file, p.key, p.reason))
        .collect()
}

/// Every problem of what [`super::parse`] could build.
pub(super) fn problems(parsed: &Parsed) -> Vec<ConfigProblem> {
    check(
        &parsed.config,
        &parsed.listener_index,
        &parsed.unparsed_directories,
    )
}

/// `listener_index[i]` is the file's index of `c.listener[i]`; `unparsed` the directory tables
/// that exist but did not parse (already reported).
fn check(c: &Config, listener_index: &[usize], unparsed: &BTreeSet<String>) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    server(c, &mut out);
    store(c, &mut out);
    authentication(c, unparsed, &mut out);
    listeners(c, listener_index, &mut out);
    directories(c, &mut out);
    auth_http(c, &mut out);
    log(c, &mut out);
    out
}

fn problem(out: &mut Vec<ConfigProblem>, key: impl Into<String>, reason: impl Into<String>) {
    out.push(ConfigProblem::new(key, reason));
}

fn server(c: &Config, out: &mut Vec<ConfigProblem>) {
    let url = &c.server.public_url;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        problem(
            out,
            "server.public-url",
            "must be an http:// or https:// URL",
        );
    }
    for (i, proxy) in c.server.trusted_proxies.iter().enumerate() {
        if crate::auth::parse_network(proxy.trim()).is_none() {
            problem(
                out,
                format!("server.trusted-proxies[{i}]"),
                format!("{proxy:?} is not an address or a network (CIDR)"),
            );
        }
    }
    if c.server.hash_queue_per_address == 0 {
        problem(
            out,
            "server.hash-queue-per-address",
            "must be at least 1 (the verifications one client address may have in progress)",
        );
    }
}

fn store(c: &Config, out: &mut Vec<ConfigProblem>) {
    match c.store_url() {
        Err(e) => out.push(e),
        Ok(url) => {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                let key = match c.store.url_file {
                    Some(_) => "store.url-file",
                    None => "store.url",
                };
                problem(out, key, "must start with sqlite:// or postgres://");
            }
        }
    }
    if c.store.pool_size == 0 {
        problem(out, "store.pool-size", "must be at least 1");
    }
}

fn authentication(c: &Config, unparsed: &BTreeSet<String>, out: &mut Vec<ConfigProblem>) {
    let a = &c.authentication;
    for (k, n) in [
        ("max-failures-per-account", a.max_failures_per_account),
        ("max-failures-per-ip", a.max_failures_per_ip),
    ] {
        if n == 0 {
            problem(
                out,
                format!("authentication.{k}"),
                "must be at least 1 (the failures allowed before attempts are refused)",
            );
        }
    }
    if a.max_failures_per_account_total == Some(0) {
        problem(
            out,
            "authentication.max-failures-per-account-total",
            "must be at least 1 (the failures allowed before attempts are refused)",
        );
    }
    for (i, net) in a.trusted_networks.iter().enumerate() {
        if crate::auth::parse_network(net.trim()).is_none() {
            problem(
                out,
                format!("authentication.trusted-networks[{i}]"),
                format!("{net:?} is not an address or a network (CIDR)"),
            );
        }
    }
    if a.failure_window.as_secs() == 0 {
        problem(out, "authentication.failure-window", "must be at least 1s");
    }
    let mut seen = BTreeSet::new();
    for (i, d) in a.directories.iter().enumerate() {
        let key = format!("authentication.directories[{i}]");
        if !seen.insert(d) {
            problem(out, &key, format!("{d:?} is listed twice"));
        }
        // A table that exists but did not parse has been reported already; it is not missing.
        if d != "internal" && !c.directory.contains_key(d) && !unparsed.contains(d) {
            let defined = c.directory.keys().map(String::as_str).chain(["internal"]);
            problem(
                out,
                key,
                format!("no [directory.{d}] section{}", did_you_mean(d, defined)),
            );
        }
    }
}

fn listeners(c: &Config, index: &[usize], out: &mut Vec<ConfigProblem>) {
    let mut binds = BTreeSet::new();
    for (i, l) in index.iter().zip(&c.listener) {
        let key = |k: &str| format!("listener[{i}].{k}");
        // Port 0 asks the kernel for a free port: several listeners may ask.
        if !l.bind.ends_with(":0") && !binds.insert(l.bind.clone()) {
            problem(out, key("bind"), format!("{} is bound twice", l.bind));
        }
        for p in listener(l) {
            out.push(p.prefixed(&format!("listener[{i}]")));
        }
    }
}

/// One listener's own problems, keys relative to its table.
fn listener(l: &ListenerConfig) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let unix = l.bind.starts_with("unix:");
    if let Some(path) = l.bind.strip_prefix("unix:") {
        if !path.starts_with('/') {
            problem(
                &mut out,
                "bind",
                format!("unix socket path must be absolute: {path:?}"),
            );
        }
    } else if l.bind.parse::<SocketAddr>().is_err() {
        problem(
            &mut out,
            "bind",
            format!(
                "{:?} is neither host:port (an IP address) nor unix:/path",
                l.bind
            ),
        );
    }
    if let Some(mode) = &l.mode {
        if u32::from_str_radix(mode, 8)
            .map(|m| m > 0o777)
            .unwrap_or(true)
        {
            problem(
                &mut out,
                "mode",
                format!("{mode:?} is not an octal file mode like \"0660\""),
            );
        }
        if !unix {
            problem(&mut out, "mode", "only unix sockets have a mode");
        }
    }
    for m in &l.mechanisms {
        let lower = m.to_ascii_lowercase();
        if !MECHANISMS.contains(&lower.as_str()) {
            problem(
                &mut out,
                "mechanisms",
                format!(
                    "unknown mechanism {m:?}{}",
                    hint_or_list(&lower, &MECHANISMS)
                ),
            );
        }
    }
    listener_keys(l, &mut out);
    if l.protocol == Protocol::Saslauthd && !unix {
        problem(&mut out, "bind", "saslauthd listens on a unix socket only");
    }
    if l.max_connections == 0 {
        problem(&mut out, "max-connections", "must be at least 1");
    }
    out
}

/// TLS and the per-protocol keys of one listener: each key only where it means something.
fn listener_keys(l: &ListenerConfig, out: &mut Vec<ConfigProblem>) {
    let unix = l.bind.starts_with("unix:");
    match &l.tls {
        Some(_) if unix => problem(
            out,
            "tls",
            "TLS applies to TCP listeners; a unix socket is protected by its file mode",
        ),
        Some(tls) => {
            if let Err(e) = crate::tls::load(tls, &[]) {
                problem(out, "tls", e.to_string());
            }
        }
        None if l.tls_handshake_timeout.is_some() => {
            problem(out, "tls-handshake-timeout", "needs tls on this listener")
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
            problem(out, k, "applies to dovecot-auth listeners only");
        }
    }
    let http = l.protocol == Protocol::Http;
    for (k, set) in [
        ("header-timeout", l.header_timeout.is_some()),
        ("body-timeout", l.body_timeout.is_some()),
    ] {
        if set && !http {
            problem(out, k, "applies to http listeners only");
        }
    }
    if l.max_connections_per_address.is_some() && unix {
        problem(
            out,
            "max-connections-per-address",
            "unix-socket clients have no address",
        );
    }
    if l.max_requests_in_flight == Some(0) {
        problem(out, "max-requests-in-flight", "must be at least 1");
    }
    for (k, d) in [
        ("request-timeout", l.request_timeout),
        ("tls-handshake-timeout", l.tls_handshake_timeout),
        ("header-timeout", l.header_timeout),
        ("body-timeout", l.body_timeout),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            problem(out, k, "must be longer than 0s");
        }
    }
    if l.idle_timeout.is_zero() {
        problem(out, "idle-timeout", "must be longer than 0s");
    }
}

fn directories(c: &Config, out: &mut Vec<ConfigProblem>) {
    if c.directory.contains_key("internal") {
        problem(
            out,
            "directory.internal",
            "\"internal\" is built in and cannot be configured",
        );
    }
    for (name, d) in &c.directory {
        // Plugins name keys relative to their table; the table's place is the daemon's to say.
        let table = format!("directory.{name}");
        out.extend(d.problems().into_iter().map(|p| p.prefixed(&table)));
        if c.authentication.directories.iter().all(|d| d != name) {
            problem(
                out,
                table,
                "defined but not listed in authentication.directories",
            );
        }
    }
}

/// What nginx's `auth_http` handler would otherwise find out only at the first request.
fn auth_http(c: &Config, out: &mut Vec<ConfigProblem>) {
    for (proto, addr) in &c.auth_http.backends {
        let key = format!("auth-http.backends.{proto}");
        if !MAIL_PROTOCOLS.contains(&proto.as_str()) {
            problem(
                out,
                &key,
                format!(
                    "protocol must be imap, pop3 or smtp{}",
                    did_you_mean(proto, MAIL_PROTOCOLS)
                ),
            );
        }
        if addr.parse::<SocketAddr>().is_err() {
            problem(
                out,
                key,
                format!("{addr:?} must be IP:port (nginx takes no host names)"),
            );
        }
    }
    if let Some(path) = &c.auth_http.shared_secret_file {
        if let Err(e) = read_secret_file("shared-secret-file", path) {
            out.push(e.prefixed("auth-http"));
        }
    }
    let ah = &c.auth_http;
    let tcp_http = c
        .listener
        .iter()
        .any(|l| l.protocol == Protocol::Http && !l.bind.starts_with("unix:"));
    if !ah.backends.is_empty()
        && ah.require_shared_secret
        && ah.shared_secret.is_none()
        && ah.shared_secret_file.is_none()
        && tcp_http
    {
        // Only with backends: without them nginx is not meant to use /auth/nginx at all, and
        // the embedded default (no [auth-http]) stays valid.
        problem(
            out,
            "auth-http.shared-secret",
            "nginx's auth_http is served on a TCP listener: set shared-secret (or \
             shared-secret-file) and send it with `auth_http_header X-Auth-Key`, or set \
             require-shared-secret = false",
        );
    }
    if ah.shared_secret.as_deref() == Some("") {
        problem(out, "auth-http.shared-secret", "must not be empty");
    }
}

fn log(c: &Config, out: &mut Vec<ConfigProblem>) {
    if c.log
        .level
        .parse::<tracing_subscriber::EnvFilter>()
        .is_err()
    {
        problem(
            out,
            "log.level",
            format!("{:?} is not a valid filter", c.log.level),
        );
    }
}

/// ", did you mean `x`?" when one is close, else " (known: a, b, c)".
fn hint_or_list(word: &str, known: &[&str]) -> String {
    let hint = did_you_mean(word, known.iter().copied());
    if hint.is_empty() {
        format!(" (known: {})", known.join(", "))
    } else {
        hint
    }
}
