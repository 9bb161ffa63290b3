//! A private OpenLDAP server (packages `slapd`, `slapd-contrib`): its own `slapd.conf` in a
//! temporary directory (back_mdb; dynlist computing nested `memberOf`; the pw-sha2, pw-pbkdf2
//! and argon2 password modules), `tests/fixtures/ldap/directory.ldif` loaded with `slapadd`,
//! `ldap://` and `ldaps://` on free loopback ports, and a test CA made with rcgen whose server
//! certificate names 127.0.0.1 and localhost. Runs in the foreground (`-d 0`) as a child, so it
//! is stopped by PID and never left behind; [`Slapd::stop`] and [`Slapd::restart`] simulate an
//! outage on the same ports.
//!
//! Access: `cn=reader,dc=example,dc=org` (password `reader-pw`) may read `userPassword`;
//! `cn=service,dc=example,dc=org` (`service-pw`) may not, so only bind mode works with it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, root, run};

pub const BASE_DN: &str = "dc=example,dc=org";
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
pub const READER_PW: &str = "reader-pw";
pub const SERVICE_DN: &str = "cn=service,dc=example,dc=org";
pub const SERVICE_PW: &str = "service-pw";
/// The `user-filter` the tests use: dana (`employeeType: disabled`) is excluded by it.
pub const USER_FILTER: &str =
    "(&(objectClass=inetOrgPerson)(|(uid={user})(mail={user}))(!(employeeType=disabled)))";

pub struct Slapd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
}

const MODULES: &str = "/usr/lib/ldap";

fn conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/dyngroup.schema
modulepath {MODULES}
moduleload back_mdb
moduleload memberof
moduleload dynlist
moduleload pw-sha2
moduleload pw-pbkdf2
moduleload argon2
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
TLSCertificateFile {d}/server.pem
TLSCertificateKeyFile {d}/server.key

database mdb
suffix "{BASE_DN}"
rootdn "cn=admin,{BASE_DN}"
rootpw admin-pw
directory {d}/db
maxsize 16777216
overlay dynlist
dynlist-attrset groupOfURLs memberURL member+memberOf@groupOfNames*
access to attrs=userPassword
  by dn.exact="{READER_DN}" read
  by anonymous auth
  by * none
access to * by * read
"#
    )
}

/// A CA and a server certificate for 127.0.0.1/localhost, written as `ca.pem`,
/// `server.pem` and `server.key` in `dir`.
fn certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Postern LDAP test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("ca.pem");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("server.pem");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("server.key");
}

impl Slapd {
    pub fn start() -> Slapd {
        assert!(
            Path::new("/usr/sbin/slapd").exists() && Path::new(MODULES).join("pw-sha2.so").exists(),
            "slapd or slapd-contrib is not installed: scripts/test.sh installs them"
        );
        let dir = tempfile::Builder::new()
            .prefix("postern-slapd")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("db")).expect("mkdir db");
        certificates(dir.path());
        let config = dir.path().join("slapd.conf");
        std::fs::write(&config, conf(dir.path())).expect("slapd.conf");
        let ldif = root().join("tests/fixtures/ldap/directory.ldif");
        run(Command::new("slapadd")
            .arg("-f")
            .arg(&config)
            .arg("-l")
            .arg(&ldif));
        let mut s = Slapd {
            child: None,
            dir,
            port: free_port(),
            tls_port: free_port(),
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    /// PEM of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    /// Starts (again) on the same ports and waits until both accept connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "slapd is already running");
        let log = std::fs::File::create(self.dir.path().join("slapd.log")).expect("slapd.log");
        let child = Command::new("slapd")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!("{}/ {}/", self.url(), self.ldaps_url()))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run slapd (package slapd): {e}"));
        self.child = Some(child);
        let started = Instant::now();
        for port in [self.port, self.tls_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                    panic!("slapd exited with {status}:\n{}", self.log());
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "slapd did not listen on port {port} within 20 s:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Deletes an entry while the server runs (as the rootdn, with `ldapdelete`).
    pub fn delete(&self, dn: &str) {
        run(Command::new("ldapdelete")
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                &format!("cn=admin,{BASE_DN}"),
            ])
            .args(["-w", "admin-pw", dn]));
    }

    /// Stops the server (SIGTERM, then SIGKILL) and waits for it: an outage.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
