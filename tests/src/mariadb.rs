//! A private MariaDB server (package `mariadb-server`): `mariadb-install-db` into a temporary
//! directory, `mariadbd` as a child on a free loopback port, stopped on drop. `--no-defaults`
//! keeps the system's /etc/mysql configuration (and its /run/mysqld paths) out of it; root
//! connects over TCP with an empty password.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, run};

pub struct MariaDb {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl MariaDb {
    pub fn start() -> MariaDb {
        let dir = tempfile::Builder::new()
            .prefix("postern-mariadb")
            .tempdir()
            .expect("tempdir");
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run mariadb-install-db (package mariadb-server): {e}")
            });
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut db = MariaDb {
            child: None,
            dir,
            port: free_port(),
        };
        db.start_again();
        db
    }

    /// Starts the server (again) on the same port and data directory; waits until it answers.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "MariaDB is already running");
        let d = self.dir.path();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--user=root",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
                "--innodb-flush-log-at-trx-commit=0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run mariadbd (package mariadb-server): {e}"));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let probe = self.client(None).arg("-e").arg("SELECT 1").output();
            if probe.is_ok_and(|o| o.status.success()) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("mariadbd exited at start ({status}):\n{}", self.error_log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mariadbd never answered:\n{}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGTERM, waiting for a clean shutdown) keeping its data.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..600 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The `mariadb` command-line client as root over TCP.
    fn client(&self, database: Option<&str>) -> Command {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "-h", "127.0.0.1", "-u", "root"])
            .arg(format!("--port={}", self.port));
        if let Some(db) = database {
            c.arg(db);
        }
        c
    }

    /// Creates a database and returns its URL.
    pub fn database(&self, name: &str) -> String {
        run(self
            .client(None)
            .arg("-e")
            .arg(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")));
        self.url(name)
    }

    pub fn url(&self, name: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs the statements of a SQL file in `database`.
    pub fn load(&self, database: &str, file: &Path) {
        let input = std::fs::File::open(file)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", file.display()));
        run(self.client(Some(database)).stdin(input));
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}
