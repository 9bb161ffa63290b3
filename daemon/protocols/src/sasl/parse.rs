//! Message parsers of the individual mechanisms. Each records the user name it found in `user`
//! as early as possible, so a failure reply can still carry `user=` (as Dovecot's does).

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Credentials, Mechanism, SaslError};

const KVSEP: char = '\x01';

fn malformed(mechanism: Mechanism, detail: &'static str) -> SaslError {
    SaslError::Malformed { mechanism, detail }
}

fn utf8(data: &[u8], mechanism: Mechanism) -> Result<&str, SaslError> {
    std::str::from_utf8(data).map_err(|_| SaslError::InvalidUtf8(mechanism))
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL password`, exactly two NULs (as Dovecot checks).
/// An authzid naming someone else is an impersonation (master user) request, which this daemon
/// does not offer.
pub(super) fn plain(data: &[u8], user: &mut Option<Arc<str>>) -> Result<Credentials, SaslError> {
    let mech = Mechanism::Plain;
    let mut parts = data.split(|b| *b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(mech, "expected authzid NUL authcid NUL password"));
    };
    let authzid = utf8(authzid, mech)?;
    let authcid = utf8(authcid, mech)?;
    let password = utf8(password, mech)?;
    if authcid.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    // One copy of the name, shared by the session (for a failure's `user=`) and the credentials.
    let name: Arc<str> = Arc::from(authcid);
    *user = Some(name.clone());
    if !authzid.is_empty() && authzid != authcid {
        return Err(SaslError::ImpersonationNotAllowed {
            authzid: authzid.to_owned(),
            authcid: authcid.to_owned(),
        });
    }
    if password.is_empty() {
        return Err(SaslError::EmptyPassword);
    }
    Ok(Credentials::Password {
        authcid: name,
        password: Zeroizing::new(password.to_owned()),
    })
}

/// LOGIN user name: non-empty, no NUL (Dovecot would silently cut at it), UTF-8.
pub(super) fn login_user(data: &[u8]) -> Result<Arc<str>, SaslError> {
    if data.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    if data.contains(&0) {
        return Err(malformed(Mechanism::Login, "NUL in user name"));
    }
    Ok(Arc::from(utf8(data, Mechanism::Login)?))
}

/// LOGIN password: non-empty, no NUL, UTF-8.
pub(super) fn login_password(data: &[u8]) -> Result<Zeroizing<String>, SaslError> {
    if data.is_empty() {
        return Err(SaslError::EmptyPassword);
    }
    if data.contains(&0) {
        return Err(malformed(Mechanism::Login, "NUL in password"));
    }
    Ok(Zeroizing::new(utf8(data, Mechanism::Login)?.to_owned()))
}

/// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A`. Like Dovecot, fields are split on ^A, unknown and
/// empty ones are ignored; `user=` and a well-formed `auth=Bearer <token>` are required.
pub(super) fn xoauth2(data: &[u8], user: &mut Option<Arc<str>>) -> Result<Credentials, SaslError> {
    let mech = Mechanism::XOAuth2;
    let text = utf8(data, mech)?;
    let mut name = None;
    let mut token = None;
    for field in text.split(KVSEP) {
        if let Some(value) = field.strip_prefix("user=") {
            if name.replace(value).is_some() {
                return Err(malformed(mech, "duplicate user="));
            }
        } else if let Some(value) = field.strip_prefix("auth=") {
            if token.replace(value).is_some() {
                return Err(malformed(mech, "duplicate auth="));
            }
        }
    }
    let name = name.ok_or(malformed(mech, "missing user="))?;
    if name.is_empty() {
        return Err(SaslError::EmptyUser);
    }
    *user = Some(Arc::from(name));
    let token = bearer_token(token.ok_or(malformed(mech, "missing auth="))?, mech)?;
    Ok(Credentials::Bearer {
        user: Some(name.to_owned()),
        token,
    })
}

/// OAUTHBEARER (RFC 7628 §3.1):
/// `gs2-header ^A *(key=value ^A) ^A` with gs2-header `n,` / `y,` (`p=` channel binding is
/// refused) + optional `a=<authzid>` + `,`. `auth` is required, `host` and `port` are checked
/// for syntax only, unknown keys are ignored.
pub(super) fn oauthbearer(
    data: &[u8],
    user: &mut Option<Arc<str>>,
) -> Result<Credentials, SaslError> {
    let mech = Mechanism::OAuthBearer;
    let text = utf8(data, mech)?;
    let (flag, rest) = text
        .split_once(',')
        .ok_or(malformed(mech, "missing gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(SaslError::ChannelBindingUnsupported),
        _ => return Err(malformed(mech, "invalid gs2 channel-binding flag")),
    }
    let (authzid, rest) = rest
        .split_once(',')
        .ok_or(malformed(mech, "unterminated gs2 header"))?;
    let authzid = match authzid {
        "" => None,
        a => {
            let name = a
                .strip_prefix("a=")
                .ok_or(malformed(mech, "invalid gs2 authzid"))?;
            let name = unescape_saslname(name).ok_or(malformed(mech, "invalid gs2 authzid"))?;
            if name.is_empty() {
                return Err(SaslError::EmptyUser);
            }
            Some(name)
        }
    };
    *user = authzid.as_deref().map(Arc::from);
    let pairs = rest
        .strip_prefix(KVSEP)
        .and_then(|r| r.strip_suffix("\x01\x01"))
        .ok_or(malformed(mech, "missing key/value separators"))?;
    let mut auth = None;
    for pair in pairs.split(KVSEP) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(malformed(mech, "key/value pair without '='"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(malformed(mech, "invalid key"));
        }
        if !value
            .bytes()
            .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(malformed(mech, "invalid value"));
        }
        match key {
            "auth" if auth.replace(value).is_some() => {
                return Err(malformed(mech, "duplicate auth"));
            }
            "port"
                if value.parse::<u16>().is_err() || !value.bytes().all(|b| b.is_ascii_digit()) =>
            {
                return Err(malformed(mech, "invalid port"));
            }
            _ => {}
        }
    }
    let token = bearer_token(auth.ok_or(malformed(mech, "missing auth"))?, mech)?;
    Ok(Credentials::Bearer {
        user: authzid,
        token,
    })
}

/// `Bearer <b64token>` (scheme case-insensitive, RFC 6750 §2.1 token syntax).
fn bearer_token(value: &str, mech: Mechanism) -> Result<Zeroizing<String>, SaslError> {
    let token = match (value.get(..7), value.get(7..)) {
        (Some(scheme), Some(token)) if scheme.eq_ignore_ascii_case("bearer ") => token,
        _ => return Err(malformed(mech, "auth is not a Bearer credential")),
    };
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !valid {
        return Err(malformed(mech, "invalid bearer token syntax"));
    }
    Ok(Zeroizing::new(token.to_owned()))
}

/// RFC 5801 saslname: `=2C` → `,`, `=3D` → `=`; any other `=` is invalid.
fn unescape_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(pos) = rest.find('=') {
        out.push_str(&rest[..pos]);
        let escaped = rest.get(pos..pos + 3)?;
        out.push(match escaped {
            "=2C" | "=2c" => ',',
            "=3D" | "=3d" => '=',
            _ => return None,
        });
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Some(out)
}
