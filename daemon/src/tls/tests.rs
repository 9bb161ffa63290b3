//! Certificates from a private CA made with rcgen; a real TLS listener on loopback and a
//! tokio-rustls client.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::net::{Listener, TlsOptions, UnixOptions};

struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A leaf for `localhost` written as `NAME.crt` / `NAME.key`; returns its DER.
    fn issue(&self, dir: &Path, name: &str) -> (TlsConfig, Vec<u8>) {
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let files = TlsConfig {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        (files, cert.der().to_vec())
    }

    fn client(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// The leaf certificate the server at `addr` presents.
async fn served_cert(ca: &Ca, addr: &str) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(10), ca.client().connect(name, tcp))
        .await
        .unwrap()
        .unwrap();
    let certs: &[CertificateDer] = tls.get_ref().1.peer_certificates().unwrap();
    certs[0].to_vec()
}

#[test]
fn loads_good_files_and_names_the_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (good, _) = ca.issue(dir.path(), "a");
    let (other, _) = ca.issue(dir.path(), "b");
    assert!(load(&good, &[]).is_ok());

    let missing = TlsConfig {
        cert: dir.path().join("none.crt"),
        key: good.key.clone(),
    };
    let e = load(&missing, &[]).unwrap_err().to_string();
    assert!(e.contains("none.crt") && e.contains("cannot read"), "{e}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let e = load(
        &TlsConfig {
            cert: garbage.clone(),
            key: good.key.clone(),
        },
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = load(
        &TlsConfig {
            cert: good.cert.clone(),
            key: garbage,
        },
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("private key"), "{e}");

    // A key that belongs to another certificate.
    let e = load(
        &TlsConfig {
            cert: good.cert.clone(),
            key: other.key.clone(),
        },
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cannot be used together"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_reloads_and_keeps_the_old_cert_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (files, first) = ca.issue(dir.path(), "live");
    let certs = Certs::new(&files, &[]).unwrap();
    let gauge = prometheus::IntGauge::new("t", "t").unwrap();
    let tls = TlsOptions {
        certs: certs.clone(),
        handshake_timeout: Duration::from_millis(500),
    };
    let listener = Listener::bind(
        "127.0.0.1:0",
        &UnixOptions::default(),
        Some(tls),
        8,
        None,
        gauge.clone(),
    )
    .await
    .unwrap();
    let addr = listener.local_addr();
    let server = tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await;
            assert!(conn.is_tls());
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });

    // A client that connects and never starts its handshake holds a slot, not the accept
    // loop: a real client is served meanwhile, and the silent one is dropped at the timeout.
    let silent = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(served_cert(&ca, &addr).await, first);
    let mut silent = silent;
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "silent client not dropped"
    );

    // Data flows through the TLS stream.
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = ca.client().connect(name, tcp).await.unwrap();
    tls.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tls.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
    assert!(gauge.get() >= 1);
    drop(tls);

    // A new certificate in place: reload serves it.
    let (next, second) = ca.issue(dir.path(), "next");
    std::fs::copy(&next.cert, &files.cert).unwrap();
    std::fs::copy(&next.key, &files.key).unwrap();
    certs.reload().unwrap();
    assert_eq!(served_cert(&ca, &addr).await, second);

    // A broken file: the reload fails and the certificate in force stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    assert!(certs.reload().is_err());
    assert_eq!(served_cert(&ca, &addr).await, second);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_is_picked_up_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (files, _) = ca.issue(dir.path(), "live");
    let certs = Certs::new(&files, &[]).unwrap();
    let (next, _) = ca.issue(dir.path(), "next");
    let before = certs.acceptor().config().clone();
    // Replace both files by renames, as certificate tools do; the size or mtime moves.
    let staged = |p: &PathBuf, to: &PathBuf| {
        let tmp = to.with_extension("tmp");
        std::fs::copy(p, &tmp).unwrap();
        std::fs::rename(&tmp, to).unwrap();
    };
    staged(&next.cert, &files.cert);
    staged(&next.key, &files.key);
    tokio::time::sleep(CHECK_EVERY + Duration::from_millis(100)).await;
    let after = certs.acceptor().config().clone();
    assert!(
        !Arc::ptr_eq(&before, &after),
        "files changed but not reloaded"
    );
    // Unchanged files: the same configuration, no re-read.
    tokio::time::sleep(CHECK_EVERY + Duration::from_millis(100)).await;
    assert!(Arc::ptr_eq(&after, &certs.acceptor().config().clone()));
}
