//! Parsing of client → server lines (VERSION, CPID, AUTH, CONT, CANCEL).

use std::fmt;
use std::net::IpAddr;

use zeroize::Zeroizing;

use super::{fail, unescape, FailCode, MAJOR_VERSION, MAX_LINE_LENGTH};

/// One parsed client line.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientLine {
    /// `VERSION\t<major>\t<minor>`: first line of the client handshake.
    Version { major: u32, minor: u32 },
    /// `CPID\t<pid>`: second line of the client handshake (pid is non-zero).
    Cpid(u32),
    /// `AUTH\t<id>\t<mech>\t…`: start of an authentication request.
    Auth(AuthRequest),
    /// `CONT\t<id>\t<base64>`: the client's answer to a challenge, already base64-decoded.
    /// The id is not checked against zero here: an unknown id gets [`super::request_timed_out`].
    Cont { id: u32, data: Zeroizing<Vec<u8>> },
    /// `CANCEL\t<id>`: the client abandons a request; no reply is sent.
    Cancel { id: u32 },
}

impl fmt::Debug for ClientLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version { major, minor } => f
                .debug_struct("Version")
                .field("major", major)
                .field("minor", minor)
                .finish(),
            Self::Cpid(pid) => f.debug_tuple("Cpid").field(pid).finish(),
            Self::Auth(request) => f.debug_tuple("Auth").field(request).finish(),
            Self::Cont { id, data } => f
                .debug_struct("Cont")
                .field("id", id)
                .field("data", &format_args!("<{} bytes>", data.len()))
                .finish(),
            Self::Cancel { id } => f.debug_struct("Cancel").field("id", id).finish(),
        }
    }
}

/// An `AUTH` request. Parameters Dovecot 2.3 understands but this daemon has no use for
/// (`real_*`, `client_id`, `forward_fields`, `debug`, `transport`, …) are ignored, as are unknown
/// ones, exactly as the protocol requires.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// Request id: non-zero, chosen by the client; the server must refuse duplicates among its
    /// open requests (Dovecot disconnects).
    pub id: u32,
    /// Mechanism name as sent. The server checks it against what it offered (Dovecot treats an
    /// unoffered mechanism as a client bug and disconnects): see `sasl::Mechanism::from_name`.
    pub mechanism: String,
    /// `service=` (mandatory, non-empty), e.g. `smtp`, `imap`.
    pub service: String,
    /// `secured` or `secured=<anything>`: the client says its own client connection is TLS or
    /// local. Plaintext mechanisms are only allowed on such requests (or with allow-plaintext).
    pub secured: bool,
    /// `valid-client-cert`: the client verified a TLS client certificate.
    pub valid_client_cert: bool,
    /// `nologin`: authentication only (Postfix and Exim always send it). Informational.
    pub nologin: bool,
    /// `no-penalty`: do not apply the per-IP failure penalty to this request.
    pub no_penalty: bool,
    /// `lip=`: the mail server's local address; `None` when absent or unparseable.
    pub local_ip: Option<IpAddr>,
    /// `rip=`: the remote client's address (the key for penalties); `None` when absent or
    /// unparseable.
    pub remote_ip: Option<IpAddr>,
    /// `lport=`, non-zero.
    pub local_port: Option<u16>,
    /// `rport=`, non-zero.
    pub remote_port: Option<u16>,
    /// `session=`: the client's session id, for logs.
    pub session: Option<String>,
    /// `local_name=`: TLS SNI the client saw.
    pub local_name: Option<String>,
    /// Decoded `resp=`: `None` = no initial response (also an empty `resp=` from a minor < 2
    /// client), `Some(empty)` = an empty initial response.
    pub initial_response: Option<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("id", &self.id)
            .field("mechanism", &self.mechanism)
            .field("service", &self.service)
            .field("secured", &self.secured)
            .field("valid_client_cert", &self.valid_client_cert)
            .field("nologin", &self.nologin)
            .field("no_penalty", &self.no_penalty)
            .field("local_ip", &self.local_ip)
            .field("remote_ip", &self.remote_ip)
            .field("local_port", &self.local_port)
            .field("remote_port", &self.remote_port)
            .field("session", &self.session)
            .field("local_name", &self.local_name)
            .field(
                "initial_response",
                &self
                    .initial_response
                    .as_ref()
                    .map(|r| format!("<{} bytes>", r.len())),
            )
            .finish()
    }
}

impl AuthRequest {
    /// The spec's "secured" rule, as Dovecot applies it: the client said `secured`, or the remote
    /// address equals the local one, or the remote address is loopback. Plaintext mechanisms are
    /// refused on requests for which this is false (unless the listener allows plaintext).
    pub fn counts_as_secured(&self) -> bool {
        self.secured
            || self.remote_ip.is_some_and(|rip| {
                rip.is_loopback() || self.local_ip == Some(rip) || is_mapped_loopback(rip)
            })
    }
}

fn is_mapped_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    }
}

/// What the server loop must do about a [`ParseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Answer [`ParseError::fail_reply`] (a `FAIL` for this id), forget the request, keep the
    /// connection.
    FailRequest { id: u32 },
    /// Protocol violation: close the connection (Dovecot logs "BUG" and disconnects).
    Disconnect,
}

/// A client line that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("client line longer than {MAX_LINE_LENGTH} bytes")]
    LineTooLong,
    #[error("client line is not valid UTF-8")]
    InvalidUtf8,
    #[error("unknown command")]
    UnknownCommand,
    #[error("malformed {0} line")]
    Malformed(&'static str),
    #[error("incompatible protocol major version {0}")]
    IncompatibleVersion(u32),
    #[error("unexpected {0} line in this connection state")]
    UnexpectedLine(&'static str),
    #[error("AUTH without service=")]
    MissingService,
    #[error("AUTH parameters after resp=")]
    ParameterAfterResp,
    #[error("invalid base64 data in {} response", if *.initial { "initial" } else { "continued" })]
    InvalidBase64 { id: u32, initial: bool },
}

impl ParseError {
    /// Whether to fail one request or drop the connection.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::InvalidBase64 { id, .. } => Disposition::FailRequest { id: *id },
            _ => Disposition::Disconnect,
        }
    }

    /// The exact `FAIL` line (with LF) for errors whose disposition is
    /// [`Disposition::FailRequest`]; Dovecot answers those immediately, without failure delay.
    pub fn fail_reply(&self) -> Option<String> {
        match self {
            Self::InvalidBase64 { id, initial } => {
                let reason = if *initial {
                    "Invalid base64 data in initial response"
                } else {
                    "Invalid base64 data in continued response"
                };
                Some(fail(
                    *id,
                    None,
                    Some(FailCode::InvalidBase64),
                    Some(reason),
                    false,
                ))
            }
            _ => None,
        }
    }
}

/// Parses one client line (without its LF) as sent by a client that negotiated protocol minor
/// version `client_minor` (use 0 before its VERSION line). Handshake ordering is not checked
/// here: [`ClientState`] does that.
pub fn parse_client_line(line: &[u8], client_minor: u32) -> Result<ClientLine, ParseError> {
    if line.len() >= MAX_LINE_LENGTH {
        return Err(ParseError::LineTooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| ParseError::InvalidUtf8)?;
    let (command, args) = line.split_once('\t').unwrap_or((line, ""));
    match command {
        "VERSION" => {
            let mut fields = args.split('\t');
            let major = fields.next().and_then(parse_uint);
            let minor = fields.next().and_then(parse_uint);
            match (major, minor) {
                (Some(major), Some(minor)) => Ok(ClientLine::Version { major, minor }),
                _ => Err(ParseError::Malformed("VERSION")),
            }
        }
        "CPID" => match parse_uint(args.split('\t').next().unwrap_or("")) {
            Some(pid) if pid != 0 => Ok(ClientLine::Cpid(pid)),
            _ => Err(ParseError::Malformed("CPID")),
        },
        "AUTH" if !args.is_empty() => parse_auth(args, client_minor).map(ClientLine::Auth),
        "CONT" if !args.is_empty() => {
            let (id, data) = args.split_once('\t').ok_or(ParseError::Malformed("CONT"))?;
            let id = parse_uint(id).ok_or(ParseError::Malformed("CONT"))?;
            let data =
                decode_response(data).ok_or(ParseError::InvalidBase64 { id, initial: false })?;
            Ok(ClientLine::Cont { id, data })
        }
        "CANCEL" if !args.is_empty() => match parse_uint(args) {
            Some(id) => Ok(ClientLine::Cancel { id }),
            None => Err(ParseError::Malformed("CANCEL")),
        },
        _ => Err(ParseError::UnknownCommand),
    }
}

fn parse_auth(args: &str, client_minor: u32) -> Result<AuthRequest, ParseError> {
    let mut fields = args.split('\t');
    let id = fields
        .next()
        .and_then(parse_uint)
        .filter(|id| *id != 0)
        .ok_or(ParseError::Malformed("AUTH"))?;
    let mechanism = match fields.next().map(unescape) {
        Some(mech) if !mech.is_empty() => mech.into_owned(),
        _ => return Err(ParseError::Malformed("AUTH")),
    };
    let mut request = AuthRequest {
        id,
        mechanism,
        service: String::new(),
        secured: false,
        valid_client_cert: false,
        nologin: false,
        no_penalty: false,
        local_ip: None,
        remote_ip: None,
        local_port: None,
        remote_port: None,
        session: None,
        local_name: None,
        initial_response: None,
    };
    let mut resp: Option<String> = None;
    for field in fields {
        if resp.is_some() {
            // Dovecot: "resp" must be the last parameter; anything after it is a client bug.
            return Err(ParseError::ParameterAfterResp);
        }
        let field = unescape(field);
        let (name, value) = field.split_once('=').unwrap_or((&field, ""));
        match name {
            "service" => request.service = value.to_owned(),
            "secured" => request.secured = true,
            "valid-client-cert" => request.valid_client_cert = true,
            "nologin" => request.nologin = true,
            "no-penalty" => request.no_penalty = true,
            "lip" => request.local_ip = parse_ip(value),
            "rip" => request.remote_ip = parse_ip(value),
            "lport" => request.local_port = parse_port(value),
            "rport" => request.remote_port = parse_port(value),
            "session" => request.session = Some(value.to_owned()),
            "local_name" => request.local_name = Some(value.to_owned()),
            "resp" => resp = Some(value.to_owned()),
            _ => {}
        }
    }
    if request.service.is_empty() {
        return Err(ParseError::MissingService);
    }
    request.initial_response = match resp {
        None => None,
        // Exim (minor 0) sends an empty resp= when the SMTP client gave no initial response.
        Some(value) if value.is_empty() && client_minor < 2 => None,
        Some(value) => {
            Some(decode_response(&value).ok_or(ParseError::InvalidBase64 { id, initial: true })?)
        }
    };
    Ok(request)
}

/// Base64 payload of `resp=` / CONT. `""` and a lone `"="` both mean an empty response (SASL
/// protocols use `=` for "empty initial response"; Dovecot accepts it the same way).
fn decode_response(value: &str) -> Option<Zeroizing<Vec<u8>>> {
    if value.is_empty() || value == "=" {
        return Some(Zeroizing::new(Vec::new()));
    }
    crate::b64::decode(value).map(Zeroizing::new)
}

/// Dovecot's `str_to_uint`: ASCII digits only (no sign, no spaces), fitting in u32.
fn parse_uint(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|port| *port != 0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitVersion,
    AwaitCpid { minor: u32 },
    Ready { minor: u32 },
}

/// Client-side handshake bookkeeping of one connection: the first line must be `VERSION` with
/// major 1, the second `CPID`, and only then may requests follow (they may be pipelined right
/// behind CPID, as Exim does). This mirrors Dovecot, which disconnects on any other order.
#[derive(Debug, Clone)]
pub struct ClientState {
    phase: Phase,
}

impl Default for ClientState {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientState {
    /// State of a freshly accepted connection.
    pub fn new() -> Self {
        Self {
            phase: Phase::AwaitVersion,
        }
    }

    /// The client's protocol minor version once its VERSION line was accepted.
    pub fn client_minor(&self) -> Option<u32> {
        match self.phase {
            Phase::AwaitVersion => None,
            Phase::AwaitCpid { minor } | Phase::Ready { minor } => Some(minor),
        }
    }

    /// Whether VERSION and CPID were both received.
    pub fn handshake_done(&self) -> bool {
        matches!(self.phase, Phase::Ready { .. })
    }

    /// Parses `line` in the current state and advances the handshake. VERSION and CPID lines
    /// are returned too (for logging) but need no answer.
    pub fn accept(&mut self, line: &[u8]) -> Result<ClientLine, ParseError> {
        let minor = self.client_minor().unwrap_or(0);
        let parsed = parse_client_line(line, minor);
        match (self.phase, parsed) {
            (Phase::AwaitVersion, Ok(ClientLine::Version { major, minor })) => {
                if major != MAJOR_VERSION {
                    return Err(ParseError::IncompatibleVersion(major));
                }
                self.phase = Phase::AwaitCpid { minor };
                Ok(ClientLine::Version { major, minor })
            }
            (Phase::AwaitVersion, Err(ParseError::LineTooLong)) => Err(ParseError::LineTooLong),
            (Phase::AwaitVersion, _) => Err(ParseError::UnexpectedLine("non-VERSION")),
            (Phase::AwaitCpid { minor }, Ok(ClientLine::Cpid(pid))) => {
                self.phase = Phase::Ready { minor };
                Ok(ClientLine::Cpid(pid))
            }
            (Phase::AwaitCpid { .. }, Err(err @ ParseError::LineTooLong))
            | (Phase::AwaitCpid { .. }, Err(err @ ParseError::Malformed("CPID"))) => Err(err),
            (Phase::AwaitCpid { .. }, _) => Err(ParseError::UnexpectedLine("non-CPID")),
            (Phase::Ready { .. }, Ok(ClientLine::Version { .. })) => {
                Err(ParseError::UnexpectedLine("VERSION"))
            }
            (Phase::Ready { .. }, Ok(ClientLine::Cpid(_))) => {
                Err(ParseError::UnexpectedLine("CPID"))
            }
            (Phase::Ready { .. }, other) => other,
        }
    }
}
