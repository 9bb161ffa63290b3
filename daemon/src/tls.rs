//! TLS on TCP listeners: loading a PEM certificate chain and key into a rustls server
//! configuration (ring provider), and keeping it current without a restart.
//!
//! [`Certs`] holds the configuration in force. It is re-read on SIGHUP ([`Certs::reload`]) and
//! when the files' modification time or size changes (checked at most once a second, at a
//! handshake), so a certificate renewed by certbot or an ACME client is served without any
//! signal. A reload that fails (half-written file, key that does not match the certificate)
//! keeps the configuration in force and logs why; a broken file at start is a configuration
//! error.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// How long a client may take to complete its handshake, unless the listener says otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// File changes are looked for at most this often (two `stat` calls).
const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: String },
    #[error("{path}: not a PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}")]
    Key { path: String, reason: String },
    #[error("{path}: invalid PEM: {reason}")]
    Pem { path: String, reason: String },
    #[error("certificate {cert} and key {key} cannot be used together: {reason}")]
    Config {
        cert: String,
        key: String,
        reason: String,
    },
}

/// Reads and checks `cert` and `key` (the key must match the certificate) into a server
/// configuration offering `alpn`.
pub fn load(tls: &TlsConfig, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    let cert_text = read(&tls.cert)?;
    let key_text = zeroize::Zeroizing::new(read(&tls.key)?);
    let chain = CertificateDer::pem_slice_iter(&cert_text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: tls.cert.display().to_string(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: tls.cert.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_text).map_err(|e| TlsError::Key {
        path: tls.key.display().to_string(),
        reason: e.to_string(),
    })?;
    let config_err = |reason: String| TlsError::Config {
        cert: tls.cert.display().to_string(),
        key: tls.key.display().to_string(),
        reason,
    };
    // The provider is named rather than taken from the process default, so no other crate's
    // feature choice can switch this to another implementation.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err(e.to_string()))?
        .with_no_client_auth()
        // Also checks that the key belongs to the leaf certificate.
        .with_single_cert(chain, key)
        .map_err(|e| config_err(e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Modification time and size of both files: what "the files changed" means.
type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(tls: &TlsConfig) -> Stamp {
    [&tls.cert, &tls.key].map(|p| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
}

struct Current {
    acceptor: TlsAcceptor,
    /// The files as they were when last read, successfully or not (a broken file is reported
    /// once, not at every handshake).
    seen: Stamp,
}

/// The certificate of one listener, reloadable.
pub struct Certs {
    files: TlsConfig,
    alpn: Vec<Vec<u8>>,
    current: RwLock<Current>,
    last_check: Mutex<Instant>,
}

impl Certs {
    /// Loads the files; an error here is a configuration error (the daemon does not start).
    pub fn new(files: &TlsConfig, alpn: &[&[u8]]) -> Result<Arc<Certs>, TlsError> {
        let seen = stamp(files);
        let config = load(files, alpn)?;
        Ok(Arc::new(Certs {
            files: files.clone(),
            alpn: alpn.iter().map(|p| p.to_vec()).collect(),
            current: RwLock::new(Current {
                acceptor: TlsAcceptor::from(Arc::new(config)),
                seen,
            }),
            last_check: Mutex::new(Instant::now()),
        }))
    }

    pub fn files(&self) -> &TlsConfig {
        &self.files
    }

    /// The acceptor for the next handshake, after a cheap look at the files.
    pub fn acceptor(&self) -> TlsAcceptor {
        if self.due_for_check() && self.snapshot().1 != stamp(&self.files) {
            match self.reload() {
                Ok(()) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate files changed; reloaded")
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate files changed but cannot be used; keeping the certificate in force")
                }
            }
        }
        self.snapshot().0
    }

    /// Re-reads the files. On error the configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let seen = stamp(&self.files);
        let alpn: Vec<&[u8]> = self.alpn.iter().map(Vec::as_slice).collect();
        let result = load(&self.files, &alpn);
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        current.seen = seen;
        let config = result?;
        current.acceptor = TlsAcceptor::from(Arc::new(config));
        Ok(())
    }

    fn snapshot(&self) -> (TlsAcceptor, Stamp) {
        let current = match self.current.read() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        (current.acceptor.clone(), current.seen)
    }

    fn due_for_check(&self) -> bool {
        let Ok(mut last) = self.last_check.try_lock() else {
            // Another handshake is checking right now.
            return false;
        };
        if last.elapsed() < CHECK_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }
}

#[cfg(test)]
mod tests;
