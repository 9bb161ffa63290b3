//! Opening connections: URL checks, TLS settings (ring provider, `ca-file` or the system
//! roots), StartTLS, timeouts, and failover across the `url` list.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use postern_directory::DirectoryError;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use zeroize::Zeroizing;

/// Checks one `url` entry: `ldap://` or `ldaps://` with a host. ldap3 panics on a URL without
/// a host, so this runs before any connection is attempted.
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
        return Err(format!("{url:?} is not an ldap:// or ldaps:// URL"));
    }
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, rest)) => (h, rest.strip_prefix(':').unwrap_or(rest)),
            None => return Err(format!("{url:?} has a bad IPv6 address")),
        },
        None => authority.rsplit_once(':').unwrap_or((authority, "")),
    };
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return Err(format!("{url:?} has a bad port"));
    }
    if host.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    if authority.contains('@') {
        return Err(format!("{url:?}: credentials do not belong in the URL"));
    }
    Ok(())
}

/// Builds the TLS client configuration once: the roots of `ca_file` (PEM, one or more
/// certificates) or else the system's, always with the ring provider (never aws-lc-rs).
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        None => {
            // A missing or partly unreadable system store only matters if TLS is used; the
            // handshake will then fail as an outage with a clear error.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Everything needed to open a connection to one of the servers.
pub struct Connector {
    pub urls: Vec<String>,
    pub starttls: bool,
    pub tls: Arc<ClientConfig>,
    pub timeout: Duration,
}

/// A bind identity for the service pool.
pub struct Credentials {
    pub dn: String,
    pub password: Zeroizing<String>,
}

pub fn unavailable(what: &str, e: impl std::fmt::Display) -> DirectoryError {
    DirectoryError::Unavailable(format!("{what}: {e}"))
}

impl Connector {
    /// Opens a connection to the first server of `url` that answers, binding as `bind` when
    /// given. Each attempt, handshake and bind included, is bounded by `timeout`.
    pub async fn open(&self, bind: Option<&Credentials>) -> Result<Ldap, DirectoryError> {
        let mut last = DirectoryError::Unavailable("no LDAP server configured".into());
        for url in &self.urls {
            match tokio::time::timeout(self.timeout, self.open_one(url, bind)).await {
                Ok(Ok(ldap)) => return Ok(ldap),
                Ok(Err(e)) => {
                    tracing::warn!(url = %url, error = %e, "LDAP server unavailable");
                    last = e;
                }
                Err(_) => {
                    tracing::warn!(url = %url, "LDAP connect timed out");
                    last = unavailable(url, "connect timed out");
                }
            }
        }
        Err(last)
    }

    async fn open_one(
        &self,
        url: &str,
        bind: Option<&Credentials>,
    ) -> Result<Ldap, DirectoryError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_config(Arc::clone(&self.tls))
            .set_starttls(self.starttls && url.starts_with("ldap://"));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url)
            .await
            .map_err(|e| unavailable(url, e))?;
        // The connection's I/O runs in its own task; it ends when every `Ldap` handle is
        // dropped or the server goes away, which `Ldap::is_closed` then reports.
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        if let Some(c) = bind {
            let res = ldap
                .with_timeout(self.timeout)
                .simple_bind(&c.dn, &c.password)
                .await
                .map_err(|e| unavailable(url, e))?;
            if res.rc != 0 {
                // A refused service account is a configuration problem, not a user's wrong
                // password: every login would fail, so it is an outage for the client.
                tracing::error!(url = %url, dn = %c.dn, rc = res.rc, text = %res.text, "LDAP service bind refused");
                return Err(unavailable(
                    url,
                    format!("service bind refused (rc {}: {})", res.rc, res.text),
                ));
            }
        }
        Ok(ldap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("ldap://127.0.0.1:389").is_ok());
        assert!(check_url("ldaps://ldap.example.org").is_ok());
        assert!(check_url("ldap://[::1]:389/").is_ok());
        assert!(check_url("ldap://[::1]").is_ok());
        assert!(check_url("ldapi:///").is_err());
        assert!(check_url("http://x").is_err());
        assert!(check_url("ldap://").is_err());
        assert!(check_url("ldap://:389").is_err());
        assert!(check_url("ldap://host:notaport").is_err());
        assert!(check_url("ldap://user:pw@host").is_err());
    }

    #[test]
    fn ca_file_errors_are_clear() {
        let missing = tls_config(Some(Path::new("/nonexistent/ca.pem")));
        assert!(matches!(missing, Err(e) if e.contains("cannot read")));
        let dir = std::env::temp_dir().join(format!("postern-ldap-ca-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let empty = dir.join("empty.pem");
        let _ = std::fs::write(&empty, "not a certificate\n");
        let r = tls_config(Some(&empty));
        assert!(matches!(r, Err(e) if e.contains("no PEM certificate")));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(tls_config(None).is_ok());
    }
}
