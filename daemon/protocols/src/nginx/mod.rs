//! nginx mail proxy `auth_http` protocol: parse the request headers nginx sends and build the
//! reply headers it understands.
//!
//! The HTTP layer (method, URI, the shared-secret header check) stays in the daemon's web
//! front-end; this module only sees header (name, value) pairs. nginx ignores the status code and
//! body of the reply and reads it into a 1 KiB buffer, so replies are headers only and
//! [`Reply::headers`] keeps them under [`MAX_REPLY_HEADER_BYTES`].

mod reply;

pub use reply::{
    Reply, ReplyError, MAX_REPLY_HEADER_BYTES, SMTP_PERMANENT_CODE, SMTP_TEMPORARY_CODE,
};

use std::fmt;
use std::net::IpAddr;

use zeroize::Zeroizing;

/// `Auth-Method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// IMAP LOGIN, POP3 USER/PASS, SASL PLAIN and SASL LOGIN: a clear password.
    Plain,
    /// POP3 APOP: `Auth-Pass` is an MD5 hex digest of `Auth-Salt` + password.
    Apop,
    /// CRAM-MD5: `Auth-Pass` is an HMAC-MD5 hex digest of `Auth-Salt`.
    CramMd5,
    /// SASL EXTERNAL: `Auth-User` is the authzid, evidence is in the `Auth-SSL-*` headers.
    External,
    /// SMTP with `smtp_auth none`: no credentials at all.
    None,
}

/// `Auth-Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailProtocol {
    Imap,
    Pop3,
    Smtp,
}

impl MailProtocol {
    /// The protocol as nginx names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
            Self::Smtp => "smtp",
        }
    }
}

/// A parsed auth_http request. `Debug` never prints the password.
#[derive(Clone)]
pub struct AuthRequest {
    pub method: AuthMethod,
    /// Percent-decoded `Auth-User`.
    pub user: String,
    /// Percent-decoded `Auth-Pass` (a hex digest for apop / cram-md5, empty for external/none).
    pub password: Zeroizing<String>,
    pub protocol: MailProtocol,
    /// `Auth-Login-Attempt` (1 when absent): grows while replies carry `Auth-Wait`. Stop sending
    /// `Auth-Wait` after 10–20 attempts, as nginx's documentation asks.
    pub login_attempt: u32,
    /// `Client-IP`.
    pub client_ip: IpAddr,
    /// `Client-Host` (`[UNAVAILABLE]` when nginx has no resolver).
    pub client_host: Option<String>,
    /// `Auth-Salt` (apop / cram-md5 challenge).
    pub salt: Option<String>,
    /// `Auth-SSL: on`.
    pub ssl: bool,
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("method", &self.method)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("protocol", &self.protocol)
            .field("login_attempt", &self.login_attempt)
            .field("client_ip", &self.client_ip)
            .field("client_host", &self.client_host)
            .field("salt", &self.salt)
            .field("ssl", &self.ssl)
            .finish()
    }
}

/// Why a request was refused (answer it as an internal error: nginx never sends these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("missing header {0}")]
    Missing(&'static str),
    #[error("duplicated header {0}")]
    Duplicate(&'static str),
    #[error("invalid value in header {0}")]
    Invalid(&'static str),
}

const KNOWN: [&str; 10] = [
    "Auth-Method",
    "Auth-User",
    "Auth-Pass",
    "Auth-Protocol",
    "Auth-Login-Attempt",
    "Client-IP",
    "Client-Host",
    "Auth-Salt",
    "Auth-SSL",
    // Not interpreted, but refused when duplicated like the others.
    "Auth-SSL-Verify",
];

/// Parses the request headers (names case-insensitive, values raw bytes: nginx passes bytes
/// ≥ 0x80 unescaped). Headers other than the known ones are ignored, so the caller checks its
/// shared-secret header itself. Each known header may appear once; `Auth-Method`, `Auth-User`,
/// `Auth-Pass`, `Auth-Protocol` and `Client-IP` are required.
pub fn parse_request<'a, I>(headers: I) -> Result<AuthRequest, RequestError>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut values: [Option<&[u8]>; KNOWN.len()] = [None; KNOWN.len()];
    for (name, value) in headers {
        if let Some(index) = KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) {
            if values[index].replace(value).is_some() {
                return Err(RequestError::Duplicate(KNOWN[index]));
            }
        }
    }
    let [method, user, pass, protocol, attempt, client_ip, client_host, salt, ssl, _] = values;
    let required = |value: Option<&'a [u8]>, name| value.ok_or(RequestError::Missing(name));
    let text =
        |value: &'a [u8], name| std::str::from_utf8(value).map_err(|_| RequestError::Invalid(name));

    let method = match text(required(method, "Auth-Method")?, "Auth-Method")? {
        "plain" => AuthMethod::Plain,
        "apop" => AuthMethod::Apop,
        "cram-md5" => AuthMethod::CramMd5,
        "external" => AuthMethod::External,
        "none" => AuthMethod::None,
        _ => return Err(RequestError::Invalid("Auth-Method")),
    };
    let user = percent_decode(required(user, "Auth-User")?)
        .and_then(|u| String::from_utf8(u).ok())
        .ok_or(RequestError::Invalid("Auth-User"))?;
    let password = percent_decode(required(pass, "Auth-Pass")?)
        .map(Zeroizing::new)
        .and_then(|p| {
            std::str::from_utf8(&p)
                .ok()
                .map(|s| Zeroizing::new(s.to_owned()))
        })
        .ok_or(RequestError::Invalid("Auth-Pass"))?;
    let protocol = match text(required(protocol, "Auth-Protocol")?, "Auth-Protocol")? {
        "imap" => MailProtocol::Imap,
        "pop3" => MailProtocol::Pop3,
        "smtp" => MailProtocol::Smtp,
        _ => return Err(RequestError::Invalid("Auth-Protocol")),
    };
    let login_attempt = match attempt {
        None => 1,
        Some(value) => text(value, "Auth-Login-Attempt")?
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(RequestError::Invalid("Auth-Login-Attempt"))?,
    };
    let client_ip = text(required(client_ip, "Client-IP")?, "Client-IP")?
        .trim()
        .parse()
        .map_err(|_| RequestError::Invalid("Client-IP"))?;
    let client_host = client_host
        .map(|v| text(v, "Client-Host").map(str::to_owned))
        .transpose()?;
    let salt = salt
        .map(|v| text(v, "Auth-Salt").map(str::to_owned))
        .transpose()?;
    let ssl = ssl.is_some_and(|v| v.eq_ignore_ascii_case(b"on"));
    Ok(AuthRequest {
        method,
        user,
        password,
        protocol,
        login_attempt,
        client_ip,
        client_host,
        salt,
        ssl,
    })
}

/// Reverses nginx's escaping of `Auth-User` / `Auth-Pass` (it writes bytes 0x00–0x1F, space and
/// `%` as `%XX`; everything else is raw). Any `%XX` is decoded; a `%` not followed by two hex
/// digits, or a decoded NUL, makes the value invalid (`None`): nginx never produces either.
pub fn percent_decode(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut bytes = value.iter();
    while let Some(&b) = bytes.next() {
        let decoded = if b == b'%' {
            let high = hex_digit(*bytes.next()?)?;
            let low = hex_digit(*bytes.next()?)?;
            high << 4 | low
        } else {
            b
        };
        if decoded == 0 {
            return None;
        }
        out.push(decoded);
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests;
