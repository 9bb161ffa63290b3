//! scrypt and PBKDF2 in their string forms: PHC (`$scrypt$ln=…`, `$pbkdf2-sha256$i=…`),
//! passlib (`$pbkdf2-sha256$<rounds>$<ab64>$<ab64>`), libxcrypt (`$7$`) and Django
//! (`pbkdf2_sha256$…`). The KDFs come from the `scrypt` and `pbkdf2` crates; the parsing is
//! here so that every cost parameter is checked against [`Limits`] before any work.

use argon2::password_hash::PasswordHash;
use scrypt::password_hash::PasswordVerifier as _;

use super::codec::{self, DigestAlgo};
use super::{Limits, SecretError};

const SCRYPT: &str = "scrypt";
const PBKDF2: &str = "pbkdf2";

/// Memory of one scrypt computation: 128 · r · 2^ln bytes.
fn scrypt_cost_ok(log_n: u32, r: u32, p: u32, limits: &Limits) -> bool {
    let n = 1u64.checked_shl(log_n).unwrap_or(u64::MAX);
    let memory = 128u64.saturating_mul(u64::from(r)).saturating_mul(n);
    log_n < 64 && memory <= limits.max_memory_bytes && p <= limits.max_passes
}

/// libxcrypt's `$7$<N><r:5><p:5><salt>$<hash>` (what `mkpasswd -m scrypt` writes).
pub(super) fn verify_scrypt_mcf(
    s: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let malformed = SecretError::Malformed { scheme: SCRYPT };
    let setting = s.get(3..).ok_or(malformed.clone())?.as_bytes();
    let digit = |i: usize| -> Result<u32, SecretError> {
        let c = setting.get(i).ok_or(malformed.clone())?;
        let value = ITOA64
            .iter()
            .position(|a| a == c)
            .ok_or(malformed.clone())?;
        u32::try_from(value).map_err(|_| malformed.clone())
    };
    // Fixed-width little-endian 30-bit numbers, five characters each.
    let number = |start: usize| -> Result<u32, SecretError> {
        (0..5).try_fold(0u32, |acc, i| Ok(acc | (digit(start + i)? << (6 * i))))
    };
    // The crate compares as many bytes as the stored digest has; insist on all 32 (43
    // characters) so that a truncated entry cannot verify on a short prefix.
    if s.rsplit('$').next().map(str::len) != Some(43) {
        return Err(malformed);
    }
    let (log_n, r, p) = (digit(0)?, number(1)?, number(6)?);
    if !scrypt_cost_ok(log_n, r, p, limits) {
        return Err(SecretError::CostTooHigh { scheme: SCRYPT });
    }
    let hash = scrypt::mcf::PasswordHashRef::new(s).map_err(|_| malformed.clone())?;
    match scrypt::Scrypt::default().verify_password(password, hash) {
        Ok(()) => Ok(true),
        Err(scrypt::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(malformed),
    }
}

/// `$scrypt$ln=16,r=8,p=1$<B64 salt>$<B64 hash>` (RustCrypto, passlib).
pub(super) fn verify_scrypt_phc(
    s: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    let malformed = || SecretError::Malformed { scheme: SCRYPT };
    let hash = PasswordHash::new(s).map_err(|_| malformed())?;
    let param = |name: &str| hash.params.get_decimal(name).ok_or_else(malformed);
    let (log_n, r, p) = (param("ln")?, param("r")?, param("p")?);
    if !scrypt_cost_ok(log_n, r, p, limits) {
        return Err(SecretError::CostTooHigh { scheme: SCRYPT });
    }
    let mut salt_buf = [0u8; 64];
    let salt = hash
        .salt
        .ok_or_else(malformed)?
        .decode_b64(&mut salt_buf)
        .map_err(|_| malformed())?;
    let expected = hash
        .hash
        .filter(|h| h.len() >= codec::MIN_DIGEST_LEN)
        .ok_or_else(malformed)?;
    let log_n = u8::try_from(log_n).map_err(|_| malformed())?;
    let params = scrypt::Params::new(log_n, r, p).map_err(|_| malformed())?;
    let mut computed = zeroize::Zeroizing::new(vec![0u8; expected.len()]);
    scrypt::scrypt(password, salt, &params, &mut computed).map_err(|_| malformed())?;
    Ok(codec::ct_eq(&computed, expected.as_bytes()))
}

/// `$pbkdf2-sha256$i=600000,l=32$<B64>$<B64>` (PHC, RustCrypto) or
/// `$pbkdf2-sha256$29000$<ab64>$<ab64>` (passlib; `$pbkdf2$` is its SHA-1 form).
pub(super) fn verify_pbkdf2(
    s: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    let malformed = || SecretError::Malformed { scheme: PBKDF2 };
    let mut fields = s.split('$');
    let (Some(""), Some(id), Some(params), Some(salt), Some(hash), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(malformed());
    };
    let algo = match id {
        "pbkdf2" | "pbkdf2-sha1" => DigestAlgo::Sha1,
        "pbkdf2-sha256" => DigestAlgo::Sha256,
        "pbkdf2-sha512" => DigestAlgo::Sha512,
        _ => return Err(malformed()),
    };
    let (rounds, salt, expected) = if params.contains('=') {
        let mut rounds = None;
        let mut length = None;
        for pair in params.split(',') {
            match pair.split_once('=') {
                Some(("i", value)) => rounds = Some(codec::decimal(value, PBKDF2)?),
                Some(("l", value)) => length = Some(codec::decimal(value, PBKDF2)?),
                _ => return Err(malformed()),
            }
        }
        let expected = codec::b64(hash, PBKDF2)?;
        // PBKDF2 output is prefix-consistent: without the declared length (`l`, else the
        // digest size) a truncated entry would still match on its first bytes.
        let declared = match length {
            Some(l) => usize::try_from(l).map_err(|_| malformed())?,
            None => algo.output_len(),
        };
        if expected.len() != declared {
            return Err(malformed());
        }
        (
            rounds.ok_or_else(malformed)?,
            codec::b64(salt, PBKDF2)?,
            expected,
        )
    } else {
        // passlib always stores the digest's full size.
        let expected = codec::ab64(hash, PBKDF2)?;
        if expected.len() != algo.output_len() {
            return Err(malformed());
        }
        let rounds = codec::decimal(params, PBKDF2)?;
        (rounds, codec::ab64(salt, PBKDF2)?, expected)
    };
    if salt.is_empty() {
        return Err(malformed());
    }
    codec::pbkdf2_matches(algo, password, &salt, rounds, &expected, limits)
}

/// Django's `pbkdf2_sha256$<iterations>$<salt text>$<Base64 digest>`.
pub(super) fn verify_django(
    s: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    let malformed = || SecretError::Malformed { scheme: PBKDF2 };
    let mut fields = s.split('$');
    let (Some(id), Some(rounds), Some(salt), Some(hash), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(malformed());
    };
    let algo = match id {
        "pbkdf2_sha256" => DigestAlgo::Sha256,
        "pbkdf2_sha1" => DigestAlgo::Sha1,
        _ => return Err(malformed()),
    };
    let rounds = codec::decimal(rounds, PBKDF2)?;
    let expected = codec::b64(hash, PBKDF2)?;
    if salt.is_empty() || expected.len() != algo.output_len() {
        return Err(malformed());
    }
    codec::pbkdf2_matches(algo, password, salt.as_bytes(), rounds, &expected, limits)
}
