//! A private nginx mail proxy (packages `nginx-core libnginx-mod-mail`): IMAP on a free loopback
//! port, `auth_http` to a daemon's `/auth/nginx` with the shared secret, run in the foreground
//! as a child with its own prefix, config and logs; killed and reaped on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub imap_port: u16,
}

impl Nginx {
    /// `auth_http`: `host:port` of the daemon's HTTP listener; `key`: the `X-Auth-Key` value.
    pub fn start(auth_http: &str, key: &str) -> Nginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let imap_port = free_port();
        let conf = format!(
            "load_module /usr/lib/nginx/modules/ngx_mail_module.so;\n\
             daemon off;\n\
             master_process off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             mail {{\n\
               server_name mail.example.test;\n\
               auth_http {auth_http}/auth/nginx;\n\
               auth_http_header X-Auth-Key {key};\n\
               proxy_pass_error_message on;\n\
               server {{\n\
                 listen 127.0.0.1:{imap_port};\n\
                 protocol imap;\n\
                 imap_auth login plain;\n\
               }}\n\
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
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run nginx (packages nginx-core libnginx-mod-mail): {e}")
            });
        let mut nginx = Nginx {
            child,
            dir,
            imap_port,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", imap_port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited at start ({status}):\n{}", nginx.error_log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx never listened:\n{}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        nginx
    }

    pub fn imap_addr(&self) -> String {
        format!("127.0.0.1:{}", self.imap_port)
    }

    pub fn error_log(&self) -> String {
        read(&self.dir.path().join("error.log"))
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("(no {}: {e})", p.display()))
}

impl Drop for Nginx {
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
