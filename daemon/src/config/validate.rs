//! Pure checks of a parsed configuration (files are read, nothing is connected or bound).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::{Config, ConfigError, DirectoryConfig, Protocol};

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
    if c.store.pool_size == 0 {
        err("store.pool-size".into(), "must be at least 1".into());
    }
    if !(c.server.public_url.starts_with("http://") || c.server.public_url.starts_with("https://"))
    {
        err(
            "server.public-url".into(),
            "must be an http:// or https:// URL".into(),
        );
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
        if let Some(tls) = &l.tls {
            for (k, p) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if let Err(e) = std::fs::metadata(p) {
                    err(key(k), format!("cannot read {}: {e}", p.display()));
                }
            }
            err(
                key("tls"),
                "TLS on listeners is not supported by this build yet".into(),
            );
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
                for u in l.url.as_vec() {
                    if !(u.starts_with("ldap://") || u.starts_with("ldaps://")) {
                        err(
                            key("url"),
                            format!("{u:?} is not an ldap:// or ldaps:// URL"),
                        );
                    }
                }
                if !l.user_filter.contains("{user}") {
                    err(
                        key("user-filter"),
                        "must contain the {user} placeholder".into(),
                    );
                }
                if let Some(f) = &l.group_filter {
                    if !f.contains("{dn}") {
                        err(
                            key("group-filter"),
                            "must contain the {dn} placeholder".into(),
                        );
                    }
                }
                for (k, p) in [
                    ("ca-file", &l.ca_file),
                    ("bind-password-file", &l.bind_password_file),
                ] {
                    if let Some(p) = p {
                        if let Err(e) = std::fs::metadata(p) {
                            err(key(k), format!("cannot read {}: {e}", p.display()));
                        }
                    }
                }
            }
            DirectoryConfig::Sql(s) => {
                if ![
                    "postgres://",
                    "postgresql://",
                    "mysql://",
                    "mariadb://",
                    "sqlite:",
                ]
                .iter()
                .any(|p| s.url.starts_with(p))
                {
                    err(
                        key("url"),
                        "must start with postgres://, mysql:// or sqlite://".into(),
                    );
                }
                let mysql = s.url.starts_with("mysql://") || s.url.starts_with("mariadb://");
                for (k, q) in [
                    ("query-login", Some(&s.query_login)),
                    ("query-member-of", s.query_member_of.as_ref()),
                    ("query-emails", s.query_emails.as_ref()),
                ] {
                    let Some(q) = q else { continue };
                    if mysql && q.contains("$1") {
                        err(key(k), "MySQL/MariaDB placeholders are ?, not $1".into());
                    } else if !mysql && !q.contains("$1") {
                        err(
                            key(k),
                            "must use the bound parameter $1 for the login name".into(),
                        );
                    }
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
