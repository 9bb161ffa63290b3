//! Reply headers for nginx's auth_http client.

use std::net::{IpAddr, SocketAddr};

use super::MailProtocol;

/// Budget for the reply header lines this module produces (`Name: value\r\n` each). nginx reads
/// the whole reply into 1024 bytes; this leaves room for the status line and the few headers an
/// HTTP stack adds (Date, Content-Length).
pub const MAX_REPLY_HEADER_BYTES: usize = 768;
/// `Auth-Error-Code` for a failed SMTP login (nginx's own default is `535 5.7.0`).
pub const SMTP_PERMANENT_CODE: &str = "535 5.7.8";
/// `Auth-Error-Code` for a temporary SMTP failure (backend outage).
pub const SMTP_TEMPORARY_CODE: &str = "454 4.7.0";

const MAX_MESSAGE_LEN: usize = 200;
const DEFAULT_FAILURE: &str = "Authentication failed";

/// What to tell nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `Auth-Status: OK`, `Auth-Server`, `Auth-Port`, and optionally the login name and password
    /// nginx should use upstream (the password is required by nginx for IMAP/POP3 when the
    /// client used apop or cram-md5). Override values are sent verbatim.
    Ok {
        server: IpAddr,
        port: u16,
        user: Option<&'a str>,
        password: Option<&'a str>,
    },
    /// `Auth-Status: <message>`. Without `wait` nginx closes the client connection after the
    /// error; with `Auth-Wait: N` it delays the error N seconds and lets the client retry.
    /// `smtp_code` becomes `Auth-Error-Code` (only sent for SMTP).
    Fail {
        message: &'a str,
        wait: Option<u32>,
        smtp_code: Option<&'a str>,
    },
    /// `Auth-Status: WAIT` + `Auth-Wait: N`: nginx repeats the auth_http request after N seconds
    /// (a transient condition, e.g. the directory is briefly unreachable).
    Wait { seconds: u32 },
}

/// A reply that cannot be sent safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("Auth-Port must be 1..=65535")]
    InvalidPort,
    #[error("value for {0} contains control characters or is malformed")]
    InvalidValue(&'static str),
    #[error("reply headers exceed {MAX_REPLY_HEADER_BYTES} bytes")]
    TooLarge,
}

impl<'a> Reply<'a> {
    /// Success towards the configured upstream of the client's protocol.
    pub fn ok(upstream: SocketAddr) -> Self {
        Self::Ok {
            server: upstream.ip(),
            port: upstream.port(),
            user: None,
            password: None,
        }
    }

    /// Wrong credentials: the message goes to the client, with `535 5.7.8` for SMTP. Pass a
    /// `wait` to let the client retry on the same connection.
    pub fn failure(protocol: MailProtocol, message: &'a str, wait: Option<u32>) -> Self {
        Self::Fail {
            message,
            wait,
            smtp_code: (protocol == MailProtocol::Smtp).then_some(SMTP_PERMANENT_CODE),
        }
    }

    /// Backend outage reported to the client (`454 4.7.0` for SMTP) and connection closed.
    pub fn temporary_failure(protocol: MailProtocol, message: &'a str) -> Self {
        Self::Fail {
            message,
            wait: None,
            smtp_code: (protocol == MailProtocol::Smtp).then_some(SMTP_TEMPORARY_CODE),
        }
    }

    /// The header lines to send, in order.
    pub fn headers(&self) -> Result<Vec<(&'static str, String)>, ReplyError> {
        let mut headers = Vec::with_capacity(4);
        match self {
            Self::Ok {
                server,
                port,
                user,
                password,
            } => {
                if *port == 0 {
                    return Err(ReplyError::InvalidPort);
                }
                headers.push(("Auth-Status", "OK".to_owned()));
                headers.push(("Auth-Server", server.to_string()));
                headers.push(("Auth-Port", port.to_string()));
                if let Some(user) = user {
                    headers.push(("Auth-User", verbatim(user, "Auth-User")?));
                }
                if let Some(password) = password {
                    headers.push(("Auth-Pass", verbatim(password, "Auth-Pass")?));
                }
            }
            Self::Fail {
                message,
                wait,
                smtp_code,
            } => {
                headers.push(("Auth-Status", status_message(message)));
                if let Some(wait) = wait {
                    headers.push(("Auth-Wait", wait.to_string()));
                }
                if let Some(code) = smtp_code {
                    let valid = !code.is_empty()
                        && code.len() <= 16
                        && code
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b == b'.' || b == b' ');
                    if !valid {
                        return Err(ReplyError::InvalidValue("Auth-Error-Code"));
                    }
                    headers.push(("Auth-Error-Code", (*code).to_owned()));
                }
            }
            Self::Wait { seconds } => {
                headers.push(("Auth-Status", "WAIT".to_owned()));
                headers.push(("Auth-Wait", seconds.to_string()));
            }
        }
        let size: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        if size > MAX_REPLY_HEADER_BYTES {
            return Err(ReplyError::TooLarge);
        }
        Ok(headers)
    }
}

/// Upstream login/password overrides are used verbatim by nginx, so they must survive as a header
/// value unchanged: no control characters (CR/LF would inject headers), no surrounding spaces.
fn verbatim(value: &str, name: &'static str) -> Result<String, ReplyError> {
    if value.is_empty() || value.chars().any(char::is_control) || value.trim() != value {
        return Err(ReplyError::InvalidValue(name));
    }
    Ok(value.to_owned())
}

/// The failure text as a safe header value: printable ASCII only, at most 200 bytes, and never
/// `OK` or `WAIT`, which nginx would take for a success or a retry.
fn status_message(message: &str) -> String {
    let clean: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .take(MAX_MESSAGE_LEN)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() || clean.eq_ignore_ascii_case("OK") || clean.eq_ignore_ascii_case("WAIT") {
        DEFAULT_FAILURE.to_owned()
    } else {
        clean.to_owned()
    }
}
