//! Talking to the running daemon from the command line: where its listeners are (from the
//! same configuration file), a stream to one of them, a Dovecot-auth client conversation
//! and a bare HTTP/1.0 GET. Blocking I/O with timeouts: a CLI asks one question at a time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::config::{Config, ListenerConfig, Protocol, Source};

/// Longer than the daemon's longest failure delay (15 s), so a refusal is seen as one.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A failure to reach the daemon, said in one line (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no {0} listener without TLS in the configuration to ask the daemon through")]
    NoListener(&'static str),
    #[error("the daemon is not answering at {at}: {reason} (is postern running?)")]
    Down { at: String, reason: String },
    #[error("the daemon at {at} broke off the conversation: {reason}")]
    Protocol { at: String, reason: String },
}

/// The package's configuration file.
pub const INSTALLED: &str = "/etc/postern/postern.toml";

/// Which configuration a command that asks the running daemon reads: `--config`, else
/// `./postern.toml`, else the installed one (what the packaged daemon runs with), else the
/// embedded default. `serve` itself keeps SPEC's rule (no /etc fallback).
pub fn daemon_source(explicit: Option<&std::path::Path>) -> Source {
    match crate::config::find_source(explicit) {
        Source::Embedded if std::path::Path::new(INSTALLED).exists() => {
            Source::File(INSTALLED.into())
        }
        other => other,
    }
}

/// Where to reach a listener: `unix:/path` or `host:port`, a wildcard host read as loopback.
pub fn address_of(bind: &str) -> String {
    if bind.starts_with("unix:") {
        return bind.to_string();
    }
    match bind.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => bind.to_string(),
    }
}

/// The first listener of `protocol` without TLS.
pub fn listener(c: &Config, protocol: Protocol) -> Option<&ListenerConfig> {
    c.listener
        .iter()
        .find(|l| l.protocol == protocol && l.tls.is_none())
}

pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub fn connect(at: &str) -> Result<Stream, ClientError> {
        let down = |e: std::io::Error| ClientError::Down {
            at: at.to_string(),
            reason: e.to_string(),
        };
        let stream = match at.strip_prefix("unix:") {
            Some(path) => Stream::Unix(UnixStream::connect(path).map_err(down)?),
            None => {
                let addr = at
                    .to_socket_addrs()
                    .map_err(down)?
                    .next()
                    .ok_or_else(|| down(std::io::ErrorKind::AddrNotAvailable.into()))?;
                Stream::Tcp(TcpStream::connect_timeout(&addr, TIMEOUT).map_err(down)?)
            }
        };
        let timeouts = match &stream {
            Stream::Unix(s) => s
                .set_read_timeout(Some(TIMEOUT))
                .and_then(|()| s.set_write_timeout(Some(TIMEOUT))),
            Stream::Tcp(s) => s
                .set_read_timeout(Some(TIMEOUT))
                .and_then(|()| s.set_write_timeout(Some(TIMEOUT))),
        };
        timeouts.map_err(down)?;
        Ok(stream)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// What the daemon answered to one authentication.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthAnswer {
    /// `OK`: the fields after the id (`user=alice`, …).
    Ok(Vec<String>),
    /// `FAIL`: the fields after the id (`reason=…`, `temp`, `code=…`).
    Fail(Vec<String>),
}

/// One authentication over the Dovecot auth protocol, as Postfix would ask it, with the
/// connection marked `secured` (the password did not cross a network to reach this process).
pub fn dovecot_auth(
    at: &str,
    service: &str,
    mechanism: &str,
    user: &str,
    password: &Zeroizing<String>,
) -> Result<AuthAnswer, ClientError> {
    let broke = |reason: String| ClientError::Protocol {
        at: at.to_string(),
        reason,
    };
    let io = |e: std::io::Error| broke(e.to_string());
    let mut stream = Stream::connect(at)?;
    let mut reader = BufReader::new(Stream::connect_clone(&stream).map_err(io)?);
    write!(stream, "VERSION\t1\t2\nCPID\t{}\n", std::process::id()).map_err(io)?;
    let mut mechanisms = Vec::new();
    loop {
        let line = read_line(&mut reader).map_err(io)?;
        if line == "DONE" {
            break;
        }
        if let Some(rest) = line.strip_prefix("MECH\t") {
            mechanisms.push(rest.split('\t').next().unwrap_or_default().to_string());
        }
    }
    let mech = mechanism.to_ascii_uppercase();
    if !mechanisms.iter().any(|m| m.eq_ignore_ascii_case(&mech)) {
        return Err(broke(format!(
            "mechanism {mech} not offered (offered: {})",
            mechanisms.join(", ")
        )));
    }
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let head = format!("AUTH\t1\t{mech}\tservice={service}\tsecured");
    match mech.as_str() {
        "PLAIN" => {
            let resp = Zeroizing::new(b64(Zeroizing::new(format!(
                "\0{user}\0{}",
                password.as_str()
            ))
            .as_bytes()));
            stream
                .write_all(format!("{head}\tresp={}\n", resp.as_str()).as_bytes())
                .map_err(io)?;
        }
        "LOGIN" => {
            stream
                .write_all(format!("{head}\n").as_bytes())
                .map_err(io)?;
            for answer in [b64(user.as_bytes()), b64(password.as_bytes())] {
                let line = read_line(&mut reader).map_err(io)?;
                if !line.starts_with("CONT\t1\t") {
                    return finish(&line).ok_or_else(|| broke(format!("unexpected {line:?}")));
                }
                let answer = Zeroizing::new(answer);
                stream
                    .write_all(format!("CONT\t1\t{}\n", answer.as_str()).as_bytes())
                    .map_err(io)?;
            }
        }
        other => {
            return Err(broke(format!(
                "auth test sends PLAIN or LOGIN, not {other}"
            )))
        }
    }
    let line = read_line(&mut reader).map_err(io)?;
    finish(&line).ok_or_else(|| broke(format!("unexpected {line:?}")))
}

fn finish(line: &str) -> Option<AuthAnswer> {
    let mut fields = line.split('\t');
    let verb = fields.next()?;
    let _id = fields.next()?;
    let rest = fields.map(String::from).collect();
    match verb {
        "OK" => Some(AuthAnswer::Ok(rest)),
        "FAIL" => Some(AuthAnswer::Fail(rest)),
        _ => None,
    }
}

fn read_line<R: BufRead>(r: &mut R) -> std::io::Result<String> {
    let mut line = String::new();
    // Lines of this protocol are short; a daemon sending more is not one to trust.
    let n = r.take(64 * 1024).read_line(&mut line)?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

impl Stream {
    fn connect_clone(s: &Stream) -> std::io::Result<Stream> {
        Ok(match s {
            Stream::Unix(u) => Stream::Unix(u.try_clone()?),
            Stream::Tcp(t) => Stream::Tcp(t.try_clone()?),
        })
    }
}

/// `GET path` over HTTP/1.0 to a plain HTTP listener: status and body.
pub fn http_get(at: &str, path: &str) -> Result<(u16, String), ClientError> {
    let broke = |reason: String| ClientError::Protocol {
        at: at.to_string(),
        reason,
    };
    let mut stream = Stream::connect(at)?;
    let host = if at.starts_with("unix:") {
        "localhost"
    } else {
        at
    };
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| broke(e.to_string()))?;
    let mut text = String::new();
    stream
        .take(16 * 1024 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| broke(e.to_string()))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| broke("no end of headers".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broke("no status line".into()))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_asked_on_loopback() {
        assert_eq!(address_of("0.0.0.0:8480"), "127.0.0.1:8480");
        assert_eq!(address_of("[::]:8480"), "[::1]:8480");
        assert_eq!(address_of("192.0.2.1:8480"), "192.0.2.1:8480");
        assert_eq!(
            address_of("unix:/run/postern/auth"),
            "unix:/run/postern/auth"
        );
    }

    #[test]
    fn answers_are_read_with_their_fields() {
        assert_eq!(
            finish("OK\t1\tuser=alice"),
            Some(AuthAnswer::Ok(vec!["user=alice".into()]))
        );
        assert_eq!(
            finish("FAIL\t1\tuser=alice\ttemp"),
            Some(AuthAnswer::Fail(vec!["user=alice".into(), "temp".into()]))
        );
        assert_eq!(finish("CONT\t1\tx"), None);
    }

    #[test]
    fn nothing_listening_is_said_to_be_down() {
        let dir = tempfile::tempdir().unwrap();
        let at = format!("unix:{}", dir.path().join("none").display());
        let e = http_get(&at, "/readyz").unwrap_err();
        assert!(matches!(e, ClientError::Down { .. }), "{e}");
        assert!(e.to_string().contains("is postern running?"), "{e}");
    }
}
