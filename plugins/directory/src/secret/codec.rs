//! Encodings, digests and the one constant-time comparison every scheme goes through.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::SecretError;

/// Standard Base64 that accepts padded and unpadded input: slapd pads, passlib and some SQL
/// schemas strip the padding, and both must verify.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard Base64, padding optional.
pub(super) fn b64(text: &str, scheme: &'static str) -> Result<Vec<u8>, SecretError> {
    LENIENT
        .decode(text.trim_end())
        .map_err(|_| SecretError::Malformed { scheme })
}

/// passlib's and slapd-contrib's "adapted base64": standard alphabet with `.` for `+`, unpadded.
pub(super) fn ab64(text: &str, scheme: &'static str) -> Result<Vec<u8>, SecretError> {
    if text.contains('+') {
        return Err(SecretError::Malformed { scheme });
    }
    b64(&text.replace('.', "+"), scheme)
}

/// Hexadecimal, either case.
pub(super) fn hex(text: &str, scheme: &'static str) -> Result<Vec<u8>, SecretError> {
    hex::decode(text.trim_end()).map_err(|_| SecretError::Malformed { scheme })
}

/// Constant-time equality. Unequal lengths return early, which only reveals the length of a
/// digest (public: it follows from the scheme), never its content.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Decimal field (iterations, rounds) with no sign, no spaces and no leading `+`.
pub(super) fn decimal(text: &str, scheme: &'static str) -> Result<u32, SecretError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SecretError::Malformed { scheme });
    }
    text.parse().map_err(|_| SecretError::Malformed { scheme })
}

/// The digests the LDAP, Dovecot and PBKDF2 forms are built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DigestAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgo {
    pub(super) fn output_len(self) -> usize {
        match self {
            DigestAlgo::Md5 => 16,
            DigestAlgo::Sha1 => 20,
            DigestAlgo::Sha256 => 32,
            DigestAlgo::Sha384 => 48,
            DigestAlgo::Sha512 => 64,
        }
    }

    /// Digest of the concatenation of `parts`.
    pub(super) fn digest(self, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
            let mut hasher = D::new();
            for part in parts {
                hasher.update(part);
            }
            Zeroizing::new(hasher.finalize().to_vec())
        }
        match self {
            DigestAlgo::Md5 => run::<Md5>(parts),
            DigestAlgo::Sha1 => run::<Sha1>(parts),
            DigestAlgo::Sha256 => run::<Sha256>(parts),
            DigestAlgo::Sha384 => run::<Sha384>(parts),
            DigestAlgo::Sha512 => run::<Sha512>(parts),
        }
    }

    /// HMAC keyed with `key` over `message`.
    pub(super) fn hmac(
        self,
        key: &[u8],
        message: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        fn run<M: Mac + hmac::digest::KeyInit>(
            key: &[u8],
            message: &[u8],
        ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .map_err(|_| SecretError::Hashing("HMAC key rejected".into()))?;
            mac.update(message);
            Ok(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
        }
        match self {
            DigestAlgo::Md5 => run::<Hmac<Md5>>(key, message),
            DigestAlgo::Sha1 => run::<Hmac<Sha1>>(key, message),
            DigestAlgo::Sha256 => run::<Hmac<Sha256>>(key, message),
            DigestAlgo::Sha384 => run::<Hmac<Sha384>>(key, message),
            DigestAlgo::Sha512 => run::<Hmac<Sha512>>(key, message),
        }
    }

    /// PBKDF2-HMAC with this digest, `out_len` bytes. Callers have checked `rounds` against
    /// [`super::MAX_ITERATIONS`] and that it is at least 1.
    pub(super) fn pbkdf2(
        self,
        password: &[u8],
        salt: &[u8],
        rounds: u32,
        out_len: usize,
    ) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![0u8; out_len]);
        match self {
            DigestAlgo::Md5 => pbkdf2::pbkdf2_hmac::<Md5>(password, salt, rounds, &mut out),
            DigestAlgo::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, rounds, &mut out),
            DigestAlgo::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out),
            DigestAlgo::Sha384 => pbkdf2::pbkdf2_hmac::<Sha384>(password, salt, rounds, &mut out),
            DigestAlgo::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out),
        }
        out
    }
}

/// How a digest or cleartext is written after its `{TAG}`. Dovecot lets a tag carry the
/// encoding as a suffix (`{SHA256.HEX}`, `{PLAIN.B64}`); without one, [`Encoding::Auto`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// The scheme's usual encoding; for unsalted digests hex is also recognised by its length.
    Auto,
    Base64,
    Hex,
}

impl Encoding {
    /// Splits `SHA256.HEX` into `SHA256` and [`Encoding::Hex`]. `tag` is already upper case.
    pub(super) fn split_tag(tag: &str) -> Option<(&str, Encoding)> {
        match tag.rsplit_once('.') {
            None => Some((tag, Encoding::Auto)),
            Some((name, "HEX")) => Some((name, Encoding::Hex)),
            Some((name, "B64" | "BASE64")) => Some((name, Encoding::Base64)),
            Some(_) => None,
        }
    }
}

/// Shortest digest accepted from formats whose output length varies (PHC argon2, scrypt,
/// PBKDF2). PBKDF2 and scrypt output is prefix-consistent, so a truncated stored digest would
/// otherwise match on its first bytes: 16 bytes keeps even a truncated entry at 2^128 work.
pub(super) const MIN_DIGEST_LEN: usize = 16;

/// PBKDF2 check shared by every PBKDF2 form (PHC, passlib, Django, slapd, Dovecot, SCRAM):
/// refuses a zero or excessive iteration count and an empty or absurd digest before working.
pub(super) fn pbkdf2_matches(
    algo: DigestAlgo,
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    expected: &[u8],
    limits: &super::Limits,
) -> Result<bool, SecretError> {
    const SCHEME: &str = "pbkdf2";
    if rounds == 0 || expected.len() < MIN_DIGEST_LEN || expected.len() > 1024 {
        return Err(SecretError::Malformed { scheme: SCHEME });
    }
    if rounds > limits.max_iterations {
        return Err(SecretError::CostTooHigh { scheme: SCHEME });
    }
    let derived = algo.pbkdf2(password, salt, rounds, expected.len());
    Ok(ct_eq(&derived, expected))
}
