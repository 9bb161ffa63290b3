//! Mail front-end fixtures: a daemon with every mail listener, provisioned users, a raw
//! dovecot-auth client, a tiny IMAP backend for nginx to proxy to, and an IMAP client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Daemon;

/// Passwords of the provisioned users (no spaces, so IMAP LOGIN takes them as atoms).
pub const ALICE_PW: &str = "Alice-s3cret-pw";
pub const BOB_PW: &str = "Bob-s3cret-pw";
/// `[auth-http] shared-secret` of [`MailDaemon`], sent by nginx as `X-Auth-Key`.
pub const NGINX_KEY: &str = "nginx-shared-key";

const PROVISION: &str = r#"
[[account]]
name = "alice"
password = "Alice-s3cret-pw"
roles = "user"

# bob may log in to IMAP but may not send mail (no email-send).
[[account]]
name = "bob"
password = "Bob-s3cret-pw"
roles = "user"
permissions = { mode = "merge", disabled = ["email-send"] }
"#;

/// A daemon with http, dovecot-auth (TCP) and saslauthd (unix socket) listeners, `alice` and
/// `bob` provisioned through `postern apply` and visible to the running daemon.
pub struct MailDaemon {
    pub daemon: Daemon,
    pub saslauthd_socket: PathBuf,
}

impl MailDaemon {
    /// `imap_backend`: the `[auth-http] backends.imap` upstream handed to nginx.
    pub fn start(imap_backend: Option<SocketAddr>) -> MailDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("saslauthd.sock");
        let backends = match imap_backend {
            Some(a) => format!("backends = {{ imap = \"{a}\" }}"),
            None => String::new(),
        };
        let config = format!(
            r#"
[server]
state-dir = "state"
# nginx runs on this machine: its Client-IP (the mail client's address) is believed.
trusted-proxies = ["127.0.0.1/32"]

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"

[[listener]]
protocol = "dovecot-auth"
bind = "127.0.0.1:{dovecot_port}"

[[listener]]
protocol = "saslauthd"
bind = "unix:{socket}"

[auth-http]
shared-secret = "{NGINX_KEY}"
{backends}
"#,
            socket = socket.display(),
            // Config validation refuses port 0 on two listeners, so this one takes a free port.
            dovecot_port = crate::free_port(),
        );
        let daemon = Daemon::start_in(dir, &config, &[]);
        daemon.apply(PROVISION);
        // The running daemon picks the change up within a second.
        let r = daemon.login_until(Duration::from_secs(10), "alice", ALICE_PW, |r| {
            r.status == 200
        });
        assert_eq!(r.status, 200, "alice never became valid: {}", r.body);
        MailDaemon {
            daemon,
            saslauthd_socket: socket,
        }
    }

    pub fn dovecot_addr(&self) -> String {
        self.daemon.addr("dovecot-auth")
    }

    pub fn http_addr(&self) -> String {
        self.daemon.addr("http")
    }
}

/// `testsaslauthd -u USER -p PASS -f SOCKET -s SERVICE` (package sasl2-bin): its output line.
pub fn testsaslauthd(
    socket: &std::path::Path,
    user: &str,
    password: &str,
    service: &str,
) -> String {
    let out = Command::new("testsaslauthd")
        .args(["-u", user, "-p", password, "-s", service, "-f"])
        .arg(socket)
        .output()
        .unwrap_or_else(|e| panic!("cannot run testsaslauthd (package sasl2-bin): {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A minimal IMAP server: greets, accepts any LOGIN (recording `user password`), answers
/// CAPABILITY, NOOP and LOGOUT. Runs on a background thread until the process ends.
pub struct ImapBackend {
    pub addr: SocketAddr,
    pub logins: Arc<Mutex<Vec<String>>>,
}

impl ImapBackend {
    pub fn start() -> ImapBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind IMAP backend");
        let addr = listener.local_addr().expect("local addr");
        let logins = Arc::new(Mutex::new(Vec::new()));
        let seen = logins.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || serve_imap(stream, &seen));
            }
        });
        ImapBackend { addr, logins }
    }
}

fn serve_imap(stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut lines = BufReader::new(stream);
    let _ = out.write_all(b"* OK [CAPABILITY IMAP4rev1] test backend ready\r\n");
    loop {
        let Some(line) = read_command(&mut lines, &mut out) else {
            return;
        };
        let words: Vec<&str> = line.trim_end().splitn(3, ' ').collect();
        let (tag, command) = (
            words.first().copied().unwrap_or("*"),
            words.get(1).copied().unwrap_or(""),
        );
        let reply = match command.to_ascii_uppercase().as_str() {
            "LOGIN" => {
                seen.lock()
                    .expect("lock")
                    .push(words.get(2).copied().unwrap_or("").to_string());
                format!("{tag} OK LOGIN completed\r\n")
            }
            "CAPABILITY" => format!("* CAPABILITY IMAP4rev1\r\n{tag} OK CAPABILITY completed\r\n"),
            "NOOP" => format!("{tag} OK NOOP completed\r\n"),
            "LOGOUT" => {
                let _ = out.write_all(
                    format!("* BYE logging out\r\n{tag} OK LOGOUT completed\r\n").as_bytes(),
                );
                return;
            }
            _ => format!("{tag} BAD unknown command\r\n"),
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// One IMAP command with its literals (`{N}` + continuation) inlined, as nginx sends LOGIN.
fn read_command(lines: &mut BufReader<TcpStream>, out: &mut TcpStream) -> Option<String> {
    let mut command = String::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let literal = line
            .strip_suffix('}')
            .and_then(|l| l.rsplit_once('{'))
            .and_then(|(head, n)| n.parse::<usize>().ok().map(|n| (head, n)));
        let Some((head, n)) = literal else {
            command.push_str(line);
            return Some(command);
        };
        command.push_str(head);
        out.write_all(b"+ go ahead\r\n").ok()?;
        let mut data = vec![0u8; n];
        lines.read_exact(&mut data).ok()?;
        command.push_str(&String::from_utf8_lossy(&data));
    }
}

/// Connects to an IMAP server, reads the greeting, sends `a1 LOGIN user password` and returns
/// the greeting and the tagged answer to LOGIN (waiting up to 20 s for it).
pub fn imap_login(addr: &str, user: &str, password: &str) -> (String, String) {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to IMAP {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut out = stream.try_clone().expect("clone");
    let mut lines = BufReader::new(stream);
    let mut greeting = String::new();
    lines.read_line(&mut greeting).expect("IMAP greeting");
    out.write_all(format!("a1 LOGIN {user} {password}\r\n").as_bytes())
        .expect("write LOGIN");
    let mut answer = String::new();
    loop {
        answer.clear();
        let n = lines.read_line(&mut answer).unwrap_or(0);
        if n == 0 || answer.starts_with("a1 ") {
            break;
        }
    }
    let _ = out.write_all(b"a2 LOGOUT\r\n");
    let mut rest = Vec::new();
    let _ = lines
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(500)));
    let _ = lines.read_to_end(&mut rest);
    (
        greeting.trim_end().to_string(),
        answer.trim_end().to_string(),
    )
}

/// A raw dovecot-auth client over TCP: reads the handshake, sends VERSION and CPID.
pub struct DovecotClient {
    lines: BufReader<TcpStream>,
    out: TcpStream,
    pub handshake: Vec<String>,
}

impl DovecotClient {
    pub fn connect(addr: &str) -> DovecotClient {
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("connect to dovecot-auth {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let out = stream.try_clone().expect("clone");
        let mut c = DovecotClient {
            lines: BufReader::new(stream),
            out,
            handshake: Vec::new(),
        };
        loop {
            let line = c.line().expect("handshake");
            let done = line == "DONE";
            c.handshake.push(line);
            if done {
                break;
            }
        }
        c.send("VERSION\t1\t2\nCPID\t1234\n");
        c
    }

    pub fn send(&mut self, text: &str) {
        self.out.write_all(text.as_bytes()).expect("write");
    }

    /// The next line; `None` when the server closed.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.lines.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_string()),
            Err(e) => panic!("no answer from dovecot-auth: {e}"),
        }
    }
}
