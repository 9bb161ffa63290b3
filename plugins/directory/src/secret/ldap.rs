//! The `{SCHEME}` table shared by LDAP `userPassword` values and Dovecot passdb entries, and
//! the LDAP-specific forms: `{SSHA}`-style digests and slapd-contrib's `{PBKDF2-*}`.

use super::codec::{self, DigestAlgo, Encoding};
use super::{crypt, Method, Scheme, SecretError};

/// Tags recognised by name but not verified: they are weak, need the user name or realm
/// (DIGEST-MD5), or delegate to another system (SASL, KERBEROS). Naming them gives the
/// operator a precise "rehash these accounts" instead of "unknown scheme".
const UNSUPPORTED: &[(&str, &str)] = &[
    ("DES-CRYPT", "des-crypt"),
    ("CRAM-MD5", "cram-md5"),
    ("HMAC-MD5", "cram-md5"),
    ("DIGEST-MD5", "digest-md5"),
    ("PLAIN-MD4", "md4"),
    ("NTLM", "ntlm"),
    ("LANMAN", "lanman"),
    ("OTP", "otp"),
    ("SKEY", "skey"),
    ("RPA", "rpa"),
    ("PLAIN-TRUNC", "plain-trunc"),
    ("SASL", "sasl"),
    ("KERBEROS", "kerberos"),
    ("UNIX", "unix"),
];

/// A tag as it may appear in an error: tags are scheme names, not secrets, but the value is
/// still cut short and reduced to safe characters so nothing odd reaches a log line.
fn describe(tag: &str) -> String {
    let clean: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(32)
        .collect();
    format!("{{{clean}}}")
}

/// Maps `{TAG}` (any case, with an optional Dovecot `.HEX`/`.B64` suffix) and its body to the
/// scheme and the check to run. The body is only peeked at where one tag names two formats:
/// Dovecot's `{MD5}` is MD5-crypt (`$1$…`) while LDAP's is a Base64 digest, and Dovecot's
/// `{PBKDF2}` (`$1$…`) differs from slapd-contrib's.
pub(super) fn resolve_tag(tag: &str, body: &str) -> Result<(Scheme, Method), SecretError> {
    let upper = tag.to_ascii_uppercase();
    let unknown = || SecretError::UnknownScheme(describe(tag));
    let (name, encoding) = Encoding::split_tag(&upper).ok_or_else(unknown)?;
    let digest = |scheme: Scheme, algo: DigestAlgo, salted: bool| {
        Ok((
            scheme,
            Method::Digest {
                algo,
                salted,
                encoding,
            },
        ))
    };
    // Encoding suffixes only make sense for digests and cleartext.
    let plain_only = |method: Method, scheme: Scheme| {
        if encoding == Encoding::Auto {
            Ok((scheme, method))
        } else {
            Err(unknown())
        }
    };
    let wrapped_crypt = || {
        let (scheme, kind) = crypt::resolve(body, true).map_err(|err| match err {
            SecretError::UnknownScheme(_) => {
                SecretError::UnknownScheme(format!("{} (unrecognised crypt format)", describe(tag)))
            }
            other => other,
        })?;
        plain_only(Method::Crypt(kind), scheme)
    };
    match name {
        "CRYPT" | "SHA512-CRYPT" | "SHA256-CRYPT" | "MD5-CRYPT" | "BLF-CRYPT" | "ARGON2"
        | "ARGON2I" | "ARGON2ID" => wrapped_crypt(),
        "MD5" if body.starts_with("$1$") => wrapped_crypt(),
        "MD5" | "PLAIN-MD5" | "LDAP-MD5" => digest(Scheme::Md5, DigestAlgo::Md5, false),
        "SMD5" => digest(Scheme::Smd5, DigestAlgo::Md5, true),
        "SHA" | "SHA1" => digest(Scheme::Sha, DigestAlgo::Sha1, false),
        "SSHA" | "SSHA1" => digest(Scheme::Ssha, DigestAlgo::Sha1, true),
        "SHA256" => digest(Scheme::Sha256, DigestAlgo::Sha256, false),
        "SSHA256" => digest(Scheme::Ssha256, DigestAlgo::Sha256, true),
        "SHA384" => digest(Scheme::Sha384, DigestAlgo::Sha384, false),
        "SSHA384" => digest(Scheme::Ssha384, DigestAlgo::Sha384, true),
        "SHA512" => digest(Scheme::Sha512, DigestAlgo::Sha512, false),
        "SSHA512" => digest(Scheme::Ssha512, DigestAlgo::Sha512, true),
        "PBKDF2" if body.starts_with("$1$") => plain_only(Method::DovecotPbkdf2, Scheme::Pbkdf2),
        "PBKDF2" | "PBKDF2-SHA1" => {
            plain_only(Method::SlapdPbkdf2(DigestAlgo::Sha1), Scheme::Pbkdf2)
        }
        "PBKDF2-SHA256" => plain_only(Method::SlapdPbkdf2(DigestAlgo::Sha256), Scheme::Pbkdf2),
        "PBKDF2-SHA512" => plain_only(Method::SlapdPbkdf2(DigestAlgo::Sha512), Scheme::Pbkdf2),
        "SCRAM-SHA-1" => plain_only(Method::Scram(DigestAlgo::Sha1), Scheme::ScramSha1),
        "SCRAM-SHA-256" => plain_only(Method::Scram(DigestAlgo::Sha256), Scheme::ScramSha256),
        "PLAIN" | "CLEAR" | "CLEARTEXT" => Ok((Scheme::Plain, Method::Plain(encoding))),
        other => match UNSUPPORTED.iter().find(|(tag, _)| *tag == other) {
            Some((_, scheme)) => Err(SecretError::Unsupported { scheme }),
            None => Err(unknown()),
        },
    }
}

/// `{SHA}`, `{SSHA}`, `{SHA256}`, …, `{MD5}`, `{SMD5}`, `{PLAIN-MD5}`, `{LDAP-MD5}`: the
/// encoded digest, followed (salted forms) by the salt, as slapd and Dovecot both write them.
pub(super) fn verify_digest(
    scheme: Scheme,
    algo: DigestAlgo,
    salted: bool,
    encoding: Encoding,
    body: &str,
    password: &[u8],
) -> Result<bool, SecretError> {
    let label = scheme.label();
    let len = algo.output_len();
    let raw = match encoding {
        Encoding::Hex => codec::hex(body, label)?,
        Encoding::Base64 => codec::b64(body, label)?,
        // Base64 of an n-byte digest is shorter than 2n, so a 2n-digit hex string is never
        // Base64 of the right length: `{PLAIN-MD5}` and friends may come either way.
        Encoding::Auto
            if !salted && body.len() == 2 * len && body.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            codec::hex(body, label)?
        }
        Encoding::Auto => codec::b64(body, label)?,
    };
    let (expected, salt) = match (salted, raw.len()) {
        (true, n) if n > len => raw.split_at(len),
        (false, n) if n == len => (raw.as_slice(), &[][..]),
        _ => return Err(SecretError::Malformed { scheme: label }),
    };
    Ok(codec::ct_eq(&algo.digest(&[password, salt]), expected))
}

/// slapd-contrib pw-pbkdf2 (and passlib's `ldap_pbkdf2_*`):
/// `{PBKDF2-SHA512}<iterations>$<ab64 salt>$<ab64 digest>`.
pub(super) fn verify_pbkdf2(
    algo: DigestAlgo,
    body: &str,
    password: &[u8],
    limits: &super::Limits,
) -> Result<bool, SecretError> {
    const SCHEME: &str = "pbkdf2";
    let mut fields = body.split('$');
    let (Some(rounds), Some(salt), Some(hash), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SecretError::Malformed { scheme: SCHEME });
    };
    let rounds = codec::decimal(rounds, SCHEME)?;
    let salt = codec::ab64(salt, SCHEME)?;
    let expected = codec::ab64(hash, SCHEME)?;
    if salt.is_empty() || expected.len() != algo.output_len() {
        return Err(SecretError::Malformed { scheme: SCHEME });
    }
    codec::pbkdf2_matches(algo, password, &salt, rounds, &expected, limits)
}
