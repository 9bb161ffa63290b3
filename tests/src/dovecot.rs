//! A private Dovecot IMAP server (packages `dovecot-core`, `dovecot-imapd`) whose passdb is a
//! guide's snippet: its own base and state directories, log file and mail under a temp dir,
//! IMAP on a free loopback port, `dovecot -F` as a child; stopped and reaped on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
    pub imap_port: u16,
}

impl Dovecot {
    /// `auth`: the passdb (and any other auth settings) of the guide.
    pub fn start(auth: &str) -> Dovecot {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["run", "state", "home"] {
            std::fs::create_dir(d.join(sub)).expect("mkdir");
        }
        // Mail processes run as nobody and create their home directory here.
        std::fs::set_permissions(d.join("home"), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod home");
        let imap_port = free_port();
        let conf = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = no\n\
             # The test's client logs in over loopback without TLS.\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             auth_verbose = yes\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n\
               inet_listener imap {{\n\
                 address = 127.0.0.1\n\
                 port = {imap_port}\n\
               }}\n\
               inet_listener imaps {{\n\
                 port = 0\n\
               }}\n\
             }}\n\
             {auth}\n\
             userdb {{\n\
               driver = static\n\
               args = uid=nobody gid=nogroup home={d}/home/%u\n\
             }}\n",
            d = d.display()
        );
        let conf_path = d.join("dovecot.conf");
        std::fs::write(&conf_path, conf).expect("dovecot.conf");
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).expect("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run dovecot (package dovecot-core): {e}"));
        let mut dovecot = Dovecot {
            child,
            dir,
            imap_port,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", imap_port)).is_err() {
            if let Ok(Some(status)) = dovecot.child.try_wait() {
                panic!("dovecot exited at start ({status}):\n{}", dovecot.logs());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "dovecot never listened:\n{}",
                dovecot.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        dovecot
    }

    pub fn imap_addr(&self) -> String {
        format!("127.0.0.1:{}", self.imap_port)
    }

    pub fn logs(&self) -> String {
        let d = self.dir.path();
        format!(
            "{}\n{}",
            read(&d.join("stderr.log")),
            read(&d.join("dovecot.log"))
        )
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("(no {}: {e})", p.display()))
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
