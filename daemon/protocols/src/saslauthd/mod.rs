//! Cyrus saslauthd wire protocol (the `mux` unix socket of libsasl2, Cyrus IMAP and
//! `testsaslauthd`).
//!
//! One request per connection: four counted strings (`u16` big-endian length + bytes) — login,
//! password, service, realm — answered by one counted string starting with `OK` or `NO`. A
//! server loop reads into a buffer until [`decode_request`] returns something other than
//! `Ok(None)` (or the peer closes), writes [`Reply::encode`], shuts down its write side and
//! closes. Errors carry the exact reply saslauthd 2.1.28 gives ([`RequestError::reply`]), so
//! clients see identical behaviour.

use std::borrow::Cow;
use std::fmt;

use zeroize::Zeroizing;

/// Longest field saslauthd accepts (`MAX_REQ_LEN`); a longer one is answered `NO ` at once.
pub const MAX_FIELD_LEN: usize = 256;
/// Largest possible valid request, in bytes: a server can stop buffering beyond this.
pub const MAX_REQUEST_LEN: usize = 4 * (2 + MAX_FIELD_LEN);
/// Longest reply text libsasl2 reads (1023 bytes); [`Reply::encode`] never exceeds it.
pub const MAX_REPLY_TEXT: usize = 1023;

/// The four request fields, in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Login,
    Password,
    Service,
    Realm,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Login => "login",
            Self::Password => "password",
            Self::Service => "service",
            Self::Realm => "realm",
        })
    }
}

/// A complete saslauthd request. `Debug` never prints the password.
#[derive(Clone)]
pub struct Request {
    /// The user name (libsasl2 has already split `user@realm` at the last `@`).
    pub login: String,
    pub password: Zeroizing<String>,
    /// What the application passed: `smtp`, `imap`, … (may be empty).
    pub service: String,
    /// May be empty.
    pub realm: String,
}

impl Request {
    /// `login@realm` when a realm was sent, else the login: what saslauthd's `-r` option
    /// produces for backends without a realm notion.
    pub fn qualified_login(&self) -> Cow<'_, str> {
        if self.realm.is_empty() {
            Cow::Borrowed(&self.login)
        } else {
            Cow::Owned(format!("{}@{}", self.login, self.realm))
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .field("service", &self.service)
            .field("realm", &self.realm)
            .finish()
    }
}

/// A request that must be refused; answer [`RequestError::reply`] and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Reported as soon as the length prefix is read, like saslauthd (which then stops reading).
    #[error("{0} longer than {MAX_FIELD_LEN} bytes")]
    FieldTooLong(Field),
    /// saslauthd would silently cut the field at the NUL; refusing is safer.
    #[error("NUL byte inside {0}")]
    NulInField(Field),
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(Field),
    #[error("empty login")]
    EmptyLogin,
    #[error("empty password")]
    EmptyPassword,
}

impl RequestError {
    /// The reply saslauthd sends for this error.
    pub fn reply(&self) -> Reply {
        match self {
            Self::EmptyLogin => Reply::No("NULL login received".into()),
            Self::EmptyPassword => Reply::No("NULL password received".into()),
            _ => Reply::No(String::new()),
        }
    }
}

/// Decodes one request from the start of `buf`.
///
/// * `Ok(None)`: incomplete, read more (a peer that closes now sent a truncated request: just
///   close);
/// * `Ok(Some((request, consumed)))`: complete; `consumed` bytes were used (anything after is
///   garbage, saslauthd ignores it);
/// * `Err(_)`: invalid, possibly before the whole request arrived (an oversized length is
///   refused as soon as it is seen).
pub fn decode_request(buf: &[u8]) -> Result<Option<(Request, usize)>, RequestError> {
    let mut pos = 0;
    let mut fields: [&str; 4] = [""; 4];
    for (slot, field) in
        fields
            .iter_mut()
            .zip([Field::Login, Field::Password, Field::Service, Field::Realm])
    {
        let Some(&[high, low]) = buf.get(pos..pos + 2) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([high, low]));
        if len > MAX_FIELD_LEN {
            return Err(RequestError::FieldTooLong(field));
        }
        let Some(bytes) = buf.get(pos + 2..pos + 2 + len) else {
            return Ok(None);
        };
        if bytes.contains(&0) {
            return Err(RequestError::NulInField(field));
        }
        *slot = std::str::from_utf8(bytes).map_err(|_| RequestError::InvalidUtf8(field))?;
        pos += 2 + len;
    }
    let [login, password, service, realm] = fields;
    if login.is_empty() {
        return Err(RequestError::EmptyLogin);
    }
    if password.is_empty() {
        return Err(RequestError::EmptyPassword);
    }
    let request = Request {
        login: login.to_owned(),
        password: Zeroizing::new(password.to_owned()),
        service: service.to_owned(),
        realm: realm.to_owned(),
    };
    Ok(Some((request, pos)))
}

/// Encodes a request (the client side: tests and tools such as a `testsaslauthd` stand-in).
/// Returns `None` when a field exceeds the u16 length prefix.
pub fn encode_request(login: &str, password: &str, service: &str, realm: &str) -> Option<Vec<u8>> {
    let mut out =
        Vec::with_capacity(8 + login.len() + password.len() + service.len() + realm.len());
    for field in [login, password, service, realm] {
        let len = u16::try_from(field.len()).ok()?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    Some(out)
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK` (exactly what saslauthd sends on success).
    Ok,
    /// `NO <reason>` (saslauthd always puts the space, even with an empty reason). Clients only
    /// look at the first two bytes; the reason reaches logs at most, so never put a secret in it.
    No(String),
}

impl Reply {
    /// The counted string to write: `u16` big-endian length + text, text capped at
    /// [`MAX_REPLY_TEXT`] bytes (on a char boundary) and stripped of control characters.
    pub fn encode(&self) -> Vec<u8> {
        let text: Cow<'_, str> = match self {
            Self::Ok => Cow::Borrowed("OK"),
            Self::No(reason) => {
                let clean: String = reason
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                Cow::Owned(format!("NO {clean}"))
            }
        };
        let mut end = text.len().min(MAX_REPLY_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let bytes = text.as_bytes().get(..end).unwrap_or_default();
        // end <= MAX_REPLY_TEXT < u16::MAX, so the length always fits.
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        let mut out = Vec::with_capacity(2 + bytes.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        out
    }
}

#[cfg(test)]
mod tests;
