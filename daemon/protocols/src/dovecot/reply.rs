//! Server → client lines: the handshake and the OK / CONT / FAIL replies.
//!
//! Every function returns the complete line including its LF, ready to be written. Values are
//! tab-escaped; base64 payloads never need it.

use std::fmt::Write as _;

use super::{escape, MAJOR_VERSION, MINOR_VERSION};

/// Longest `user=` echoed in FAIL and longest `reason=`, in bytes. Exim reads server lines into
/// an 8 KiB buffer and treats a longer one as a protocol error, so a client-chosen name must never
/// be able to push a FAIL line past it; `user=` is optional in FAIL and is omitted beyond this.
pub const MAX_ECHO_LEN: usize = 512;

/// Security flags of a `MECH` line. Postfix filters mechanisms by them
/// (`smtpd_sasl_security_options = noplaintext` hides `plaintext` ones, `private` ones are never
/// advertised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MechFlag {
    Anonymous,
    Plaintext,
    Dictionary,
    Active,
    ForwardSecrecy,
    MutualAuth,
    Private,
}

impl MechFlag {
    /// The flag as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Plaintext => "plaintext",
            Self::Dictionary => "dictionary",
            Self::Active => "active",
            Self::ForwardSecrecy => "forward-secrecy",
            Self::MutualAuth => "mutual-auth",
            Self::Private => "private",
        }
    }
}

/// One `MECH` line of the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MechAdvert {
    /// Mechanism name, advertised verbatim by Postfix in `250-AUTH`.
    pub name: String,
    pub flags: Vec<MechFlag>,
}

impl From<crate::sasl::Mechanism> for MechAdvert {
    /// The flags Dovecot 2.3 gives these mechanisms: all four send the secret in the clear.
    fn from(mechanism: crate::sasl::Mechanism) -> Self {
        Self {
            name: mechanism.name().to_owned(),
            flags: vec![MechFlag::Plaintext],
        }
    }
}

/// Codes for `FAIL … code=` (Dovecot ≥ 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailCode {
    TempFail,
    AuthzFail,
    UserDisabled,
    PassExpired,
    InvalidBase64,
    MechInvalid,
    MechSslRequired,
    AnonymousDenied,
}

impl FailCode {
    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TempFail => "temp_fail",
            Self::AuthzFail => "authz_fail",
            Self::UserDisabled => "user_disabled",
            Self::PassExpired => "pass_expired",
            Self::InvalidBase64 => "invalid_base64",
            Self::MechInvalid => "auth_mech_invalid",
            Self::MechSslRequired => "auth_mech_ssl_required",
            Self::AnonymousDenied => "anonymous_denied",
        }
    }
}

/// The server handshake, sent unprompted right after accept: `VERSION 1 2`, one `MECH` line per
/// mechanism, then `SPID`, `CUID`, `COOKIE` (32 lowercase hex digits) and `DONE`, in exactly
/// Dovecot's order. SPID/CUID/COOKIE only matter to Dovecot's own login→master flow but SMTP
/// clients expect them to be present.
pub fn handshake(mechanisms: &[MechAdvert], spid: u32, cuid: u32, cookie: &[u8; 16]) -> String {
    let mut out = format!("VERSION\t{MAJOR_VERSION}\t{MINOR_VERSION}\n");
    for mech in mechanisms {
        out.push_str("MECH\t");
        out.push_str(&escape(&mech.name));
        for flag in &mech.flags {
            out.push('\t');
            out.push_str(flag.as_str());
        }
        out.push('\n');
    }
    let _ = write!(out, "SPID\t{spid}\nCUID\t{cuid}\nCOOKIE\t");
    for byte in cookie {
        let _ = write!(out, "{byte:02x}");
    }
    out.push_str("\nDONE\n");
    out
}

/// `OK\t<id>\tuser=<user>[\t<name>=<value>…]`. `user=` is always present: Postfix fails and
/// Exim defers an OK without it. A field with an empty value is written as a bare flag
/// (`anonymous`).
pub fn ok(id: u32, user: &str, extra: &[(&str, &str)]) -> String {
    let mut out = String::new();
    write_ok(&mut out, id, user, extra);
    out
}

/// [`ok`], appended to `out` (a connection's output buffer: no allocation of its own).
pub fn write_ok(out: &mut String, id: u32, user: &str, extra: &[(&str, &str)]) {
    let _ = write!(out, "OK\t{id}\tuser={}", escape(user));
    for (name, value) in extra {
        push_field(out, name, value);
    }
    out.push('\n');
}

/// `CONT\t<id>\t<base64 challenge>` (an empty challenge gives `CONT\t<id>\t`, which Postfix turns
/// into a bare `334 `).
pub fn cont(id: u32, challenge: &[u8]) -> String {
    format!("CONT\t{id}\t{}\n", crate::b64::encode(challenge))
}

/// `FAIL\t<id>[\tuser=…][\tcode=…][\ttemp][\treason=…]`.
///
/// * `user`: the name the client tried, when known (Dovecot includes it); omitted when longer
///   than [`MAX_ECHO_LEN`].
/// * `reason`: shown to the end user by Postfix (`535 5.7.8 Error: authentication failed:
///   <reason>`): never say whether the user exists. Truncated to [`MAX_ECHO_LEN`].
/// * `temp`: a backend outage. Adds `code=temp_fail` (unless `code` is given) and the legacy bare
///   `temp` flag. Note that Postfix still answers a permanent 535 to any FAIL; only closing the
///   connection makes it answer 454.
pub fn fail(
    id: u32,
    user: Option<&str>,
    code: Option<FailCode>,
    reason: Option<&str>,
    temp: bool,
) -> String {
    let mut out = String::new();
    write_fail(&mut out, id, user, code, reason, temp);
    out
}

/// [`fail`], appended to `out`.
pub fn write_fail(
    out: &mut String,
    id: u32,
    user: Option<&str>,
    code: Option<FailCode>,
    reason: Option<&str>,
    temp: bool,
) {
    let _ = write!(out, "FAIL\t{id}");
    if let Some(user) = user.filter(|u| u.len() <= MAX_ECHO_LEN) {
        push_field(out, "user", user);
    }
    let code = code.or(temp.then_some(FailCode::TempFail));
    if let Some(code) = code {
        push_field(out, "code", code.as_str());
    }
    if temp {
        out.push_str("\ttemp");
    }
    if let Some(reason) = reason {
        push_field(out, "reason", truncate(reason, MAX_ECHO_LEN));
    }
    out.push('\n');
}

/// Dovecot's answer to a CONT for an id that is not (or no longer) open, e.g. reaped after its
/// 150 s limit: `FAIL\t<id>\treason=Authentication request timed out`.
pub fn request_timed_out(id: u32) -> String {
    fail(
        id,
        None,
        None,
        Some("Authentication request timed out"),
        false,
    )
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push('\t');
    out.push_str(&escape(name));
    if !value.is_empty() {
        out.push('=');
        out.push_str(&escape(value));
    }
}

/// Longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
