//! A private Exim (Debian's `exim4-daemon-heavy`, the build with the `dovecot` authenticator),
//! unpacked into `target/exim/` and never installed: installing any `exim4-daemon-*` package
//! would remove Postfix (both provide `mail-transport-agent`). The package is fetched with
//! `apt-get download` when missing; its libraries (`libidn12`, `libspf2-2`) are in
//! `scripts/apt-packages.txt`, and the system user `Debian-exim` the binary was built for is
//! created when missing. Run as root with `-C CONF -bdf`, so it keeps its privileges; killed
//! and reaped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{free_port, root, run};

/// Tests start Exims in parallel: one fetch at a time.
static FETCH: Mutex<()> = Mutex::new(());

/// The unpacked `exim4` binary, fetched and unpacked once per checkout.
pub fn exim_bin() -> PathBuf {
    let _guard = FETCH.lock().unwrap_or_else(|p| p.into_inner());
    let dir = root().join("target").join("exim");
    let bin = dir.join("root/usr/sbin/exim4");
    if !bin.exists() {
        std::fs::create_dir_all(&dir).expect("mkdir target/exim");
        run(Command::new("apt-get")
            .args(["download", "exim4-daemon-heavy"])
            .current_dir(&dir));
        let deb = std::fs::read_dir(&dir)
            .expect("read target/exim")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .expect("apt-get download left no .deb");
        let staging = dir.join("root.partial");
        let _ = std::fs::remove_dir_all(&staging);
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&staging));
        std::fs::rename(&staging, dir.join("root")).expect("rename unpacked exim");
    }
    let known = Command::new("id")
        .arg("Debian-exim")
        .output()
        .is_ok_and(|o| o.status.success());
    if !known {
        run(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/var/spool/exim4",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            "Debian-exim",
        ]));
    }
    bin
}

pub struct Exim {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Exim {
    /// `authenticators`: what goes after `begin authenticators` (a guide's snippet).
    pub fn start(authenticators: &str) -> Exim {
        let bin = exim_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["spool", "log"] {
            std::fs::create_dir(d.join(sub)).expect("mkdir");
            run(Command::new("chown")
                .arg("Debian-exim:Debian-exim")
                .arg(d.join(sub)));
        }
        run(Command::new("chmod").arg("0755").arg(d));
        let port = free_port();
        let conf = format!(
            "primary_hostname = mx.example.test\n\
             spool_directory = {d}/spool\n\
             log_file_path = {d}/log/%slog\n\
             pid_file_path = {d}/exim.pid\n\
             # No DNS lookups of client addresses (Exim 4.96 does them by default).\n\
             host_lookup_order =\n\
             host_lookup =\n\
             rfc1413_hosts =\n\
             daemon_smtp_ports = {port}\n\
             local_interfaces = 127.0.0.1\n\
             tls_advertise_hosts =\n\
             acl_smtp_rcpt = acl_check_rcpt\n\
             begin acl\n\
             acl_check_rcpt:\n\
             \x20 accept authenticated = *\n\
             \x20 deny message = authentication required\n\
             begin authenticators\n\
             {authenticators}\n",
            d = d.display()
        );
        let conf_path = d.join("exim.conf");
        std::fs::write(&conf_path, conf).expect("exim.conf");
        let check = Command::new(&bin)
            .arg("-C")
            .arg(&conf_path)
            .arg("-bV")
            .output()
            .expect("exim -bV");
        assert!(
            check.status.success(),
            "exim refuses its configuration: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(&bin)
            .arg("-C")
            .arg(&conf_path)
            .args(["-bdf", "-oX", &port.to_string(), "-oP"])
            .arg(d.join("exim.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).expect("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let mut exim = Exim { child, dir, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = exim.child.try_wait() {
                panic!("exim exited at start ({status}):\n{}", exim.logs());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "exim never listened:\n{}",
                exim.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        exim
    }

    pub fn logs(&self) -> String {
        let d = self.dir.path();
        ["stderr.log", "log/mainlog", "log/paniclog", "log/rejectlog"]
            .iter()
            .map(|f| read(&d.join(f)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `swaks --auth MECH` against this Exim, stopping after AUTH.
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

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("(no {}: {e})", p.display()))
}

impl Drop for Exim {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..60 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
