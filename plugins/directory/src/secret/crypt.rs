//! Modular crypt format and PHC strings: the bare `$id$…` values SQL columns, `/etc/shadow`
//! style exports and password libraries store, and the bodies of `{CRYPT}`, `{ARGON2}`,
//! `{BLF-CRYPT}`, `{SHA512-CRYPT}`, ….

use argon2::password_hash::PasswordHash;
use md5::{Digest, Md5};
use sha_crypt::PasswordVerifier as _;
use zeroize::Zeroizing;

use super::{codec, phc, Limits, Scheme, SecretError};
use postern_argon2::{Inputs, Variant};

/// Which verifier a modular-crypt string goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Argon2,
    Bcrypt,
    ShaCrypt,
    /// `$1$` (crypt(3), Dovecot, slapd) or Apache's `$apr1$` (same algorithm, other magic).
    Md5Crypt,
    Yescrypt,
    /// libxcrypt's `$7$`.
    ScryptMcf,
    /// `$scrypt$ln=…,r=…,p=…$salt$hash` (PHC, passlib).
    ScryptPhc,
    /// `$pbkdf2-sha256$…` and friends, PHC (`i=…`) or passlib (bare rounds).
    Pbkdf2,
    /// Django's `pbkdf2_sha256$<iter>$<salt>$<b64>`.
    Django,
}

/// Prefixes of crypt formats this build recognises but will not verify.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("$2x$", "bcrypt-2x"),
    ("$2$", "bcrypt-2"),
    ("$gy$", "gost-yescrypt"),
    ("$md5", "sun-md5-crypt"),
    ("$sha1$", "sha1-crypt"),
    ("$3$", "nt-hash"),
    ("$bcrypt-sha256$", "bcrypt-sha256"),
];

const PREFIXES: &[(&str, Scheme, Kind)] = &[
    ("$argon2id$", Scheme::Argon2, Kind::Argon2),
    ("$argon2i$", Scheme::Argon2, Kind::Argon2),
    ("$argon2d$", Scheme::Argon2, Kind::Argon2),
    ("$2a$", Scheme::Bcrypt, Kind::Bcrypt),
    ("$2b$", Scheme::Bcrypt, Kind::Bcrypt),
    ("$2y$", Scheme::Bcrypt, Kind::Bcrypt),
    ("$6$", Scheme::Sha512Crypt, Kind::ShaCrypt),
    ("$5$", Scheme::Sha256Crypt, Kind::ShaCrypt),
    ("$1$", Scheme::Md5Crypt, Kind::Md5Crypt),
    ("$apr1$", Scheme::Md5Crypt, Kind::Md5Crypt),
    ("$y$", Scheme::Yescrypt, Kind::Yescrypt),
    ("$7$", Scheme::Scrypt, Kind::ScryptMcf),
    ("$scrypt$", Scheme::Scrypt, Kind::ScryptPhc),
    ("$pbkdf2$", Scheme::Pbkdf2, Kind::Pbkdf2),
    ("$pbkdf2-sha1$", Scheme::Pbkdf2, Kind::Pbkdf2),
    ("$pbkdf2-sha256$", Scheme::Pbkdf2, Kind::Pbkdf2),
    ("$pbkdf2-sha512$", Scheme::Pbkdf2, Kind::Pbkdf2),
    ("pbkdf2_sha256$", Scheme::Pbkdf2, Kind::Django),
    ("pbkdf2_sha1$", Scheme::Pbkdf2, Kind::Django),
];

/// Alphabet of crypt(3) salts and DES hashes.
fn is_crypt64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// Finds the format of a crypt string from its prefix. `wrapped` is true inside `{CRYPT}`
/// and friends, where a 13-character DES hash or a BSDI `_…` hash can be recognised (and
/// refused); bare, such a string is indistinguishable from a cleartext password.
pub(super) fn resolve(s: &str, wrapped: bool) -> Result<(Scheme, Kind), SecretError> {
    if let Some((_, scheme, kind)) = PREFIXES.iter().find(|(p, _, _)| s.starts_with(p)) {
        return Ok((*scheme, *kind));
    }
    if let Some((_, scheme)) = UNSUPPORTED.iter().find(|(p, _)| s.starts_with(p)) {
        return Err(SecretError::Unsupported { scheme });
    }
    if wrapped && s.len() == 13 && s.bytes().all(is_crypt64) {
        return Err(SecretError::Unsupported {
            scheme: "des-crypt",
        });
    }
    if wrapped && s.len() == 20 && s.starts_with('_') {
        return Err(SecretError::Unsupported {
            scheme: "bsdi-crypt",
        });
    }
    // Never echo the value: without a known prefix it may well be a cleartext password.
    Err(SecretError::UnknownScheme(
        if s.starts_with('$') {
            "(unrecognised $id$ crypt format)"
        } else {
            "(no scheme prefix)"
        }
        .into(),
    ))
}

pub(super) fn verify(
    kind: Kind,
    s: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    match kind {
        Kind::Argon2 => verify_argon2(s, password, limits),
        Kind::Bcrypt => verify_bcrypt(s, password, limits),
        Kind::ShaCrypt => verify_sha_crypt(s, password, limits),
        Kind::Md5Crypt => verify_md5_crypt(s, password),
        Kind::Yescrypt => verify_yescrypt(s, password, limits),
        Kind::ScryptMcf => phc::verify_scrypt_mcf(s, password, limits),
        Kind::ScryptPhc => phc::verify_scrypt_phc(s, password, limits),
        Kind::Pbkdf2 => phc::verify_pbkdf2(s, password, limits),
        Kind::Django => phc::verify_django(s, password, limits),
    }
}

/// PHC argon2 (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), as argon2 crates, libsodium
/// (Dovecot `{ARGON2ID}`) and slapd's argon2 module (`{ARGON2}`) write it.
fn verify_argon2(s: &str, password: &[u8], limits: &Limits) -> Result<bool, SecretError> {
    const SCHEME: &str = "argon2";
    let malformed = |_| SecretError::Malformed { scheme: SCHEME };
    let hash = PasswordHash::new(s).map_err(malformed)?;
    if hash.hash.is_none_or(|h| h.len() < codec::MIN_DIGEST_LEN) {
        return Err(SecretError::Malformed { scheme: SCHEME });
    }
    let params = argon2::Params::try_from(&hash).map_err(malformed)?;
    if u64::from(params.m_cost()) * 1024 > limits.max_memory_bytes
        || params.t_cost() > limits.max_passes
        || params.p_cost() > limits.max_passes
    {
        return Err(SecretError::CostTooHigh { scheme: SCHEME });
    }
    let variant = match hash.algorithm.as_str() {
        "argon2id" => Variant::Id,
        "argon2i" => Variant::I,
        "argon2d" => Variant::D,
        _ => return Err(SecretError::Malformed { scheme: SCHEME }),
    };
    let version = hash.version.unwrap_or(0x13);
    let expected = hash.hash.ok_or(SecretError::Malformed { scheme: SCHEME })?;
    let mut salt = [0u8; 64];
    let salt = hash
        .salt
        .ok_or(SecretError::Malformed { scheme: SCHEME })?
        .decode_b64(&mut salt)
        .map_err(malformed)?;
    let inputs = Inputs {
        variant,
        version,
        m_cost: params.m_cost(),
        t_cost: params.t_cost(),
        lanes: params.p_cost(),
        password,
        salt,
        secret: &[],
        associated: params.data(),
    };
    let mut computed = Zeroizing::new([0u8; 64]);
    let computed = computed
        .get_mut(..expected.len())
        .ok_or(SecretError::Malformed { scheme: SCHEME })?;
    postern_argon2::hash(&inputs, computed)
        .map_err(|_| SecretError::Malformed { scheme: SCHEME })?;
    Ok(codec::ct_eq(computed, expected.as_bytes()))
}

/// `$2a$` / `$2b$` / `$2y$` (identical for every password without the 2011 sign-extension
/// bug's trigger; `$2x$`, the buggy variant, is refused in [`resolve`]).
fn verify_bcrypt(s: &str, password: &[u8], limits: &Limits) -> Result<bool, SecretError> {
    const SCHEME: &str = "bcrypt";
    let cost = s
        .get(4..6)
        .filter(|_| s.get(6..7) == Some("$"))
        .ok_or(SecretError::Malformed { scheme: SCHEME })
        .and_then(|c| codec::decimal(c, SCHEME))?;
    if cost > limits.max_bcrypt_cost {
        return Err(SecretError::CostTooHigh { scheme: SCHEME });
    }
    // Passwords over 72 bytes are truncated, as every other bcrypt implementation does.
    bcrypt::verify(password, s).map_err(|_| SecretError::Malformed { scheme: SCHEME })
}

/// SHA-512-crypt `$6$` and SHA-256-crypt `$5$`, with optional `rounds=N$`.
fn verify_sha_crypt(s: &str, password: &[u8], limits: &Limits) -> Result<bool, SecretError> {
    if s.starts_with("$6$") {
        let parsed = parse_sha512_crypt(s, limits)?;
        return Ok(super::sha512crypt::verify(&parsed, password));
    }
    check_sha_crypt(s, "sha256-crypt", 43, limits)?;
    let scheme = "sha256-crypt";
    let hash = sha_crypt::PasswordHashRef::new(s).map_err(|_| SecretError::Malformed { scheme })?;
    match sha_crypt::ShaCrypt::default().verify_password(password, hash) {
        Ok(()) => Ok(true),
        Err(sha_crypt::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(SecretError::Malformed { scheme }),
    }
}

/// A `$6$` string checked as [`verify_sha_crypt`] checks it, ready for the rounds.
pub(super) fn parse_sha512_crypt<'a>(
    s: &'a str,
    limits: &Limits,
) -> Result<super::sha512crypt::Parsed<'a>, SecretError> {
    let scheme = "sha512-crypt";
    check_sha_crypt(s, scheme, 86, limits)?;
    super::sha512crypt::parse(s).ok_or(SecretError::Malformed { scheme })
}

/// The checks both SHA-crypt variants make before any work.
fn check_sha_crypt(
    s: &str,
    scheme: &'static str,
    digest_len: usize,
    limits: &Limits,
) -> Result<(), SecretError> {
    // The full digest (86 / 43 characters) is required: a truncated one is a broken entry.
    if s.rsplit('$').next().map(str::len) != Some(digest_len) {
        return Err(SecretError::Malformed { scheme });
    }
    let rest = s.get(3..).unwrap_or_default();
    if let Some(rounds) = rest.strip_prefix("rounds=") {
        let rounds = rounds.split('$').next().unwrap_or_default();
        if codec::decimal(rounds, scheme)? > limits.max_iterations {
            return Err(SecretError::CostTooHigh { scheme });
        }
    }
    Ok(())
}

/// yescrypt `$y$<params>$<salt>$<hash>` as libxcrypt (Debian, Fedora, Arch `/etc/shadow`)
/// writes it.
fn verify_yescrypt(s: &str, password: &[u8], limits: &Limits) -> Result<bool, SecretError> {
    const SCHEME: &str = "yescrypt";
    let malformed = SecretError::Malformed { scheme: SCHEME };
    // The crate compares as many bytes as the stored digest has; insist on all 32 (43
    // characters) so that a truncated entry cannot verify on a short prefix.
    if s.rsplit('$').next().map(str::len) != Some(43) {
        return Err(malformed);
    }
    let params: yescrypt::Params = s
        .split('$')
        .nth(2)
        .ok_or(malformed.clone())?
        .parse()
        .map_err(|_| malformed.clone())?;
    let memory = 128u64
        .saturating_mul(params.n())
        .saturating_mul(u64::from(params.r()));
    if memory > limits.max_memory_bytes || params.p() > limits.max_passes {
        return Err(SecretError::CostTooHigh { scheme: SCHEME });
    }
    match yescrypt::Yescrypt::default().verify_password(password, s) {
        Ok(()) => Ok(true),
        Err(yescrypt::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(malformed),
    }
}

/// MD5-crypt (`$1$`, Poul-Henning Kamp's algorithm) and Apache's `$apr1$` variant. No
/// maintained pure-Rust crate without an older digest stack covers it, and it is small.
fn verify_md5_crypt(s: &str, password: &[u8]) -> Result<bool, SecretError> {
    const SCHEME: &str = "md5-crypt";
    let malformed = SecretError::Malformed { scheme: SCHEME };
    let (magic, rest) = if let Some(rest) = s.strip_prefix("$apr1$") {
        ("$apr1$", rest)
    } else if let Some(rest) = s.strip_prefix("$1$") {
        ("$1$", rest)
    } else {
        return Err(malformed);
    };
    let (salt, hash) = rest.split_once('$').ok_or(malformed.clone())?;
    // crypt(3) uses at most 8 salt characters.
    let salt = salt.as_bytes().get(..8).unwrap_or(salt.as_bytes());
    if hash.len() != 22 || !hash.bytes().all(is_crypt64) {
        return Err(malformed);
    }
    let computed = md5_crypt(password, salt, magic.as_bytes());
    Ok(codec::ct_eq(computed.as_bytes(), hash.as_bytes()))
}

fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> Zeroizing<String> {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(magic)
        .chain_update(salt);
    let mut remaining = password.len();
    while remaining > 0 {
        let n = remaining.min(16);
        ctx.update(&alternate[..n]);
        remaining -= n;
    }
    let first = password.get(..1).unwrap_or_default();
    let mut bits = password.len();
    while bits > 0 {
        ctx.update(if bits & 1 == 1 { &[0u8][..] } else { first });
        bits >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut ctx = Md5::new();
        if round % 2 == 1 {
            ctx.update(password);
        } else {
            ctx.update(digest);
        }
        if round % 3 != 0 {
            ctx.update(salt);
        }
        if round % 7 != 0 {
            ctx.update(password);
        }
        if round % 2 == 1 {
            ctx.update(digest);
        } else {
            ctx.update(password);
        }
        digest = ctx.finalize();
    }
    const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = Zeroizing::new(String::with_capacity(22));
    let mut push = |mut value: u32, chars: usize| {
        for _ in 0..chars {
            out.push(char::from(ITOA64[(value & 0x3f) as usize]));
            value >>= 6;
        }
    };
    let d = |i: usize| u32::from(digest[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push((d(a) << 16) | (d(b) << 8) | d(c), 4);
    }
    push(d(11), 2);
    out
}
