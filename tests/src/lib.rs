//! Harness for end-to-end tests: the real `postern` binary and real servers (PostgreSQL, …),
//! each started privately in a temporary directory on a free loopback port and stopped when
//! the handle is dropped. A server that cannot start fails the test loudly.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod docs;
pub mod dovecot;
pub mod exim;
pub mod mail;
pub mod mariadb;
pub mod nginx;
pub mod oauth_clients;
pub mod oidc_provider;
pub mod pg;
pub mod postfix;
pub mod slapd;
pub mod sqldb;
pub mod tls;
pub mod webproxy;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `postern` binary built by `cargo build` (the test command builds it first).
pub fn postern_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("debug").join("postern");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p postern` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Runs `postern ARGS` to completion.
pub fn postern(args: &[&str], dir: &Path, stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(postern_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("POSTERN_ADMIN_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn postern");
    if let Some(input) = stdin {
        // A command refused on its arguments exits without reading stdin: a broken pipe then
        // is part of the answer under test, not a harness failure.
        if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing stdin: {e}"
            );
        }
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait postern")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A running daemon. Killed (SIGTERM, then SIGKILL) on drop.
pub struct Daemon {
    child: Child,
    pub dir: tempfile::TempDir,
    /// `host:port` of each listener, by protocol, in config order.
    pub listeners: Vec<(String, String)>,
    /// What it printed on stdout before `ready` (the admin password line, …).
    pub banner: Vec<String>,
    pub config: PathBuf,
    stderr_path: PathBuf,
}

/// Writes `provisioning` (TOML) to `dir/provision.toml` and runs `postern apply` on it with
/// `config`; the test fails if it is refused.
pub fn apply_provisioning(config: &Path, dir: &Path, provisioning: &str) {
    let file = dir.join("provision.toml");
    std::fs::write(&file, provisioning).expect("write provision.toml");
    let out = postern(
        &[
            "apply",
            "--config",
            config.to_str().expect("utf-8 path"),
            file.to_str().expect("utf-8 path"),
        ],
        dir,
        None,
    );
    assert!(
        out.status.success(),
        "postern apply failed: {:?}",
        text(&out)
    );
}

/// The strings of a JSON array (empty for anything else).
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Daemon {
    /// [`apply_provisioning`] with this daemon's configuration and directory.
    pub fn apply(&self, provisioning: &str) {
        apply_provisioning(&self.config, self.dir.path(), provisioning);
    }

    /// Logs in over HTTP until `done` holds or `within` passes (the daemon sees `apply`
    /// within a second; a restarted backend takes a moment); returns the last answer.
    pub fn login_until(
        &self,
        within: Duration,
        user: &str,
        password: &str,
        done: impl Fn(&Reply) -> bool,
    ) -> Reply {
        let started = Instant::now();
        loop {
            let r = login(&self.url("/auth/login"), user, password);
            if done(&r) || started.elapsed() > within {
                return r;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `postern serve --config` with `config` written into a fresh directory. Listeners
    /// should bind port 0; the real addresses are read back from the daemon's output.
    pub fn start(config: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, config, env)
    }

    pub fn start_in(dir: tempfile::TempDir, config: &str, env: &[(&str, &str)]) -> Daemon {
        let path = dir.path().join("postern.toml");
        std::fs::write(&path, config).unwrap();
        let args = [
            "serve".to_string(),
            "--config".to_string(),
            path.display().to_string(),
        ];
        Self::spawn(dir, &args, env, path)
    }

    /// `postern serve` with no configuration at all, in an empty directory (SPEC §3).
    pub fn start_embedded(env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let none = dir.path().join("postern.toml");
        Self::spawn(dir, &["serve".to_string()], env, none)
    }

    fn spawn(
        dir: tempfile::TempDir,
        args: &[String],
        env: &[(&str, &str)],
        path: PathBuf,
    ) -> Daemon {
        let stderr_path = dir.path().join("stderr.log");
        let mut cmd = Command::new(postern_bin());
        cmd.args(args).current_dir(dir.path());
        cmd.env_remove("POSTERN_ADMIN_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("spawn postern serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut listeners = Vec::new();
        let mut banner = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line == "ready" => break,
                Ok(line) => {
                    let parts: Vec<&str> = line.splitn(3, ' ').collect();
                    if parts.len() == 3 && parts[0] == "listening" {
                        listeners.push((parts[1].to_string(), parts[2].to_string()));
                    }
                    banner.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("postern did not become ready; stdout: {banner:?}; stderr:\n{err}");
                }
            }
        }
        Daemon {
            child,
            dir,
            listeners,
            banner,
            config: path,
            stderr_path,
        }
    }

    pub fn addr(&self, protocol: &str) -> String {
        self.listeners
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no {protocol} listener in {:?}", self.listeners))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("http"))
    }

    /// Sends a signal (`HUP`, `TERM`, …) to the daemon with kill(1).
    pub fn signal(&self, name: &str) {
        run(Command::new("kill").args([format!("-{name}"), self.child.id().to_string()]));
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().expect("wait")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_millis(100));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP answer: status and JSON (or text) body, whatever the status.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A [`Reply`] from what ureq returned (an error status is a reply too).
pub fn reply_of(r: Result<ureq::Response, ureq::Error>) -> Reply {
    reply(r)
}

fn reply(r: Result<ureq::Response, ureq::Error>) -> Reply {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("HTTP request failed: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let body = resp.into_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str, bearer: Option<&str>) -> Reply {
    let mut req = ureq::get(url).timeout(Duration::from_secs(30));
    if let Some(t) = bearer {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    reply(req.call())
}

/// The value of one series (its name and labels, as `/metrics` prints them) at a daemon's
/// metrics URL; 0 when absent.
pub fn metric_at(metrics_url: &str, series: &str) -> u64 {
    get(metrics_url, None)
        .body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

pub fn delete(url: &str, bearer: &str) -> Reply {
    reply(
        ureq::delete(url)
            .set("Authorization", &format!("Bearer {bearer}"))
            .call(),
    )
}

pub fn post_raw(url: &str, content_type: &str, body: &[u8]) -> Reply {
    reply(
        ureq::post(url)
            .timeout(Duration::from_secs(30))
            .set("Content-Type", content_type)
            .send_bytes(body),
    )
}

pub fn login(url: &str, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    post_raw(url, "application/json", body.as_bytes())
}

/// Runs a command, failing the test with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Standard base64 with padding (the tests crate has no base64 dependency).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// SASL PLAIN's initial response (`\0user\0password`), base64.
pub fn sasl_plain(user: &str, password: &str) -> String {
    base64(format!("\0{user}\0{password}").as_bytes())
}

/// Polls `check` every 50 ms until it holds; returns when the request that first saw it was
/// sent (so the request's own duration does not count), or fails after `limit`.
pub fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let sent = started.elapsed();
        if check() {
            return sent;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not seen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
