//! A private Postfix instance (package `postfix`) whose smtpd delegates SASL to a dovecot-auth
//! server, and `swaks` (package `swaks`) to drive it.
//!
//! Own config directory, queue and data directories and `maillog_file` in a temp dir, smtpd on
//! a free loopback port, `postfix -c DIR start-fg` as a child (so nothing is left behind as a
//! zombie), stopped with `postfix -c DIR stop` on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct Postfix {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postfix {
    /// `sasl_path`: Postfix's `smtpd_sasl_path`, e.g. `inet:127.0.0.1:PORT`.
    pub fn start(sasl_path: &str) -> Postfix {
        Self::start_with(&sasl_main_cf(sasl_path))
    }

    /// `sasl`: the `main.cf` lines that set up SASL (a guide's snippet).
    pub fn start_with(sasl: &str) -> Postfix {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // smtpd runs as user postfix: every directory above its queue must be searchable.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["queue", "data"] {
            std::fs::create_dir(d.join(sub)).expect("mkdir");
        }
        let port = free_port();
        std::fs::write(d.join("main.cf"), main_cf(d, sasl)).expect("main.cf");
        std::fs::write(
            d.join("master.cf"),
            format!(
                "127.0.0.1:{port} inet n - n - - smtpd\n\
                 postlog unix-dgram n - n - 1 postlogd\n\
                 anvil unix - - n - 1 anvil\n\
                 proxymap unix - - n - - proxymap\n"
            ),
        )
        .expect("master.cf");
        let out = Command::new("chown")
            .arg("postfix")
            .arg(d.join("data"))
            .output()
            .expect("chown");
        assert!(out.status.success(), "chown postfix failed: {out:?}");
        // Creates the queue's subdirectories with Postfix's owners and modes.
        let out = postfix_cmd(d, "check")
            .output()
            .unwrap_or_else(|e| panic!("cannot run postfix (package postfix): {e}"));
        assert!(
            out.status.success(),
            "postfix check failed: {out:?}\n{}",
            maillog(d)
        );
        let child = postfix_cmd(d, "start-fg")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn postfix start-fg");
        let mut postfix = Postfix { child, dir, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = postfix.child.try_wait() {
                panic!("postfix exited at start ({status}):\n{}", postfix.maillog());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "postfix never listened:\n{}",
                postfix.maillog()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        postfix
    }

    pub fn maillog(&self) -> String {
        maillog(self.dir.path())
    }

    /// Whether the mail log comes to contain `needle` within 5 s: Postfix writes it through
    /// postlogd, a moment after the SMTP answer the test saw.
    pub fn maillog_has(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if self.maillog().contains(needle) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `swaks --auth MECH` against this Postfix, stopping after AUTH.
    pub fn swaks(&self, mechanism: &str, user: &str, password: &str) -> Output {
        Command::new("swaks")
            .args(["--server", &format!("127.0.0.1:{}", self.port)])
            .args(["--from", "sender@example.org", "--to", "rcpt@example.org"])
            .args([
                "--auth",
                mechanism,
                "--auth-user",
                user,
                "--auth-password",
                password,
            ])
            .args(["--quit-after", "AUTH", "--timeout", "30"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run swaks (package swaks): {e}"))
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = postfix_cmd(self.dir.path(), "stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = postfix_cmd(self.dir.path(), "abort")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn postfix_cmd(dir: &Path, action: &str) -> Command {
    let mut cmd = Command::new("postfix");
    cmd.arg("-c").arg(dir).arg(action);
    cmd
}

fn maillog(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("maillog")).unwrap_or_else(|e| format!("(no maillog: {e})"))
}

fn sasl_main_cf(sasl_path: &str) -> String {
    format!(
        "smtpd_sasl_auth_enable = yes\n\
         smtpd_sasl_type = dovecot\n\
         smtpd_sasl_path = {sasl_path}\n\
         smtpd_sasl_security_options = noanonymous\n\
         smtpd_relay_restrictions = permit_sasl_authenticated, reject\n"
    )
}

fn main_cf(d: &Path, sasl: &str) -> String {
    let p = |s: &str| -> PathBuf { d.join(s) };
    format!(
        "compatibility_level = 3.6\n\
         queue_directory = {queue}\n\
         data_directory = {data}\n\
         maillog_file_prefixes = {dir}\n\
         maillog_file = {log}\n\
         inet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\n\
         myhostname = mx.example.test\n\
         mydestination =\n\
         alias_maps =\n\
         alias_database =\n\
         local_recipient_maps =\n\
         smtpd_tls_security_level = none\n\
         {sasl}",
        queue = p("queue").display(),
        data = p("data").display(),
        dir = d.display(),
        log = p("maillog").display(),
    )
}
