//! TLS fixtures: a private CA (rcgen) issuing `localhost` certificates into files, and a
//! blocking rustls client (ring) for HTTP and dovecot-auth over TLS that reports which
//! certificate the server presented.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// A certificate and key written to `<name>.crt` / `<name>.key`, and the certificate's DER
/// (what a client sees; compare it to tell certificates apart).
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: Vec<u8>,
}

impl Issued {
    /// The `tls = { … }` value of a `[[listener]]`.
    pub fn toml(&self) -> String {
        format!(
            "{{ cert = \"{}\", key = \"{}\" }}",
            self.cert.display(),
            self.key.display()
        )
    }

    /// Puts this certificate and key in place of `other`'s files (renamed into place, as
    /// certificate tools do).
    pub fn install_over(&self, other: &Issued) {
        for (from, to) in [(&self.cert, &other.cert), (&self.key, &other.key)] {
            let tmp = to.with_extension("new");
            std::fs::copy(from, &tmp).expect("copy certificate");
            std::fs::rename(&tmp, to).expect("rename certificate");
        }
    }
}

pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Postern test CA");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn issue(&self, dir: &Path, name: &str) -> Issued {
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf certificate");
        let issued = Issued {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            der: cert.der().to_vec(),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write key");
        issued
    }

    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("CA root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// Connects to `addr` and completes a handshake for `localhost`, verified against this CA.
    pub fn connect(&self, addr: &str) -> Result<TlsStream, String> {
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_read_timeout(Some(Duration::from_secs(15)))
            .map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let conn = ClientConnection::new(self.client_config(), name).map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        }
        Ok(stream)
    }

    /// The DER of the leaf certificate that `addr` presents.
    pub fn served_cert(&self, addr: &str) -> Vec<u8> {
        let stream = self.connect(addr).unwrap_or_else(|e| panic!("{e}"));
        peer_cert(&stream)
    }

    /// `GET path` over HTTPS (HTTP/1.1, connection closed after): status line and body.
    pub fn https_get(&self, addr: &str, path: &str) -> (String, String) {
        let mut stream = self.connect(addr).unwrap_or_else(|e| panic!("{e}"));
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("write request");
        let mut raw = Vec::new();
        // A peer that closes without close_notify is an error for rustls; the bytes read
        // before it are all we need.
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.lines().next().unwrap_or("").to_string();
        (status, body.to_string())
    }
}

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

pub fn peer_cert(stream: &TlsStream) -> Vec<u8> {
    stream
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .expect("the server presented no certificate")
}

/// A dovecot-auth client over TLS: reads the handshake, sends VERSION and CPID.
pub struct DovecotTls {
    stream: BufReader<TlsStream>,
    pub handshake: Vec<String>,
    pub cert: Vec<u8>,
}

impl DovecotTls {
    pub fn connect(ca: &TestCa, addr: &str) -> DovecotTls {
        let stream = ca.connect(addr).unwrap_or_else(|e| panic!("{e}"));
        let cert = peer_cert(&stream);
        let mut c = DovecotTls {
            stream: BufReader::new(stream),
            handshake: Vec::new(),
            cert,
        };
        loop {
            let line = c.line().expect("dovecot-auth handshake");
            let done = line == "DONE";
            c.handshake.push(line);
            if done {
                break;
            }
        }
        c.send("VERSION\t1\t2\nCPID\t4321\n");
        c
    }

    pub fn send(&mut self, text: &str) {
        let s = self.stream.get_mut();
        s.write_all(text.as_bytes()).expect("write");
        s.flush().expect("flush");
    }

    /// The next line; `None` when the server closed.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_string()),
            Err(e) => panic!("no answer from dovecot-auth over TLS: {e}"),
        }
    }

    /// `AUTH id PLAIN` for `user`/`password` (marked `secured`); the answer line.
    pub fn auth_plain(&mut self, id: u32, user: &str, password: &str) -> String {
        let resp = crate::sasl_plain(user, password);
        self.send(&format!(
            "AUTH\t{id}\tPLAIN\tservice=smtp\tsecured\tresp={resp}\n"
        ));
        self.line().expect("an answer to AUTH")
    }
}

/// `postern apply` of `provision` (TOML) against the daemon's store, then waits until the
/// daemon sees it (`user` can log in with `password` over the dovecot-auth listener's store).
pub fn provision(daemon: &crate::Daemon, provision: &str) {
    daemon.apply(provision);
    // The daemon polls the store every 500 ms.
    std::thread::sleep(Duration::from_millis(1500));
}

/// Sends SIGHUP and waits until the daemon has logged the outcome of that reload (applied or
/// refused); returns the log lines it wrote meanwhile.
pub fn sighup(daemon: &crate::Daemon) -> String {
    let done = |logs: &str| {
        logs.matches("configuration reloaded").count()
            + logs
                .matches("the running configuration stays in force")
                .count()
    };
    let before = daemon.logs();
    let seen = done(&before);
    daemon.signal("HUP");
    let started = std::time::Instant::now();
    loop {
        let logs = daemon.logs();
        if done(&logs) > seen {
            return logs.get(before.len()..).unwrap_or_default().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no reload outcome logged after SIGHUP:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
