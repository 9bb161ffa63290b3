//! A private nginx HTTP server (package `nginx-core`) from a given `http { }` body, in the
//! foreground as a child with its own prefix and logs; stopped and reaped on drop. And `curl`
//! (package `curl`), the client the web-proxy guides are tested with.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NginxHttp {
    child: Child,
    dir: tempfile::TempDir,
}

impl NginxHttp {
    /// `http_body`: what goes inside `http { }`; `ports`: the ports it listens on (waited for).
    pub fn start(http_body: &str, ports: &[u16]) -> NginxHttp {
        Self::start_main("", http_body, ports)
    }

    /// `mail`: a `mail { }` block (the mail module is loaded), beside an empty `http { }`.
    pub fn start_mail(mail: &str, ports: &[u16]) -> NginxHttp {
        Self::start_main(
            &format!("load_module /usr/lib/nginx/modules/ngx_mail_module.so;\n{mail}"),
            "",
            ports,
        )
    }

    /// `main`: directives of the main context (before `events`); `http_body`: inside `http`.
    fn start_main(main: &str, http_body: &str, ports: &[u16]) -> NginxHttp {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir(d.join(sub)).expect("mkdir");
        }
        let conf = format!(
            "{main}\n\
             daemon off;\n\
             master_process off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               access_log {d}/access.log;\n\
               client_body_temp_path {d}/client_body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               {http_body}\n\
             }}\n",
            d = d.display()
        );
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nginx (package nginx-core): {e}"));
        let mut nginx = NginxHttp { child, dir };
        let started = Instant::now();
        for port in ports {
            while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                if let Ok(Some(status)) = nginx.child.try_wait() {
                    panic!("nginx exited at start ({status}):\n{}", nginx.error_log());
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "nginx never listened on {port}:\n{}",
                    nginx.error_log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        nginx
    }

    pub fn error_log(&self) -> String {
        read(&self.dir.path().join("error.log"))
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("(no {}: {e})", p.display()))
}

impl Drop for NginxHttp {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
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

/// One curl answer (redirects not followed).
#[derive(Debug)]
pub struct CurlReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl CurlReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `curl -s -i ARGS… URL`.
pub fn curl(args: &[&str], url: &str) -> CurlReply {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "30"])
        .args(args)
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert!(out.status.success(), "curl {args:?} {url} failed: {out:?}");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    CurlReply {
        status,
        headers,
        body: body.to_string(),
    }
}
