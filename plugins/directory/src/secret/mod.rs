//! Password hash schemes: one [`verify`] that dispatches on the stored form (SPEC §5).
//!
//! A stored secret is either a `{SCHEME}` form (LDAP `userPassword`, Dovecot passdb; the tag is
//! case-insensitive, as both servers treat it) or a bare modular-crypt / PHC string
//! (`$argon2id$`, `$2y$`, `$6$`, `$y$`, `$pbkdf2-sha256$`, Django's `pbkdf2_sha256$`, …; these
//! ids are case-sensitive, as crypt(3) defines them). Anything else is an error: a value with no
//! recognised prefix, or with an unknown `{SCHEME}`, is *never* compared as cleartext. Doing so
//! would let the literal string of a hash (or a typo'd scheme name) work as the password, and
//! would silently turn a migration mistake into an open account.
//!
//! Every scheme is verified in pure Rust; digests are compared in constant time, and the cost
//! parameters a stored hash asks for are checked against [`Limits`] before any work is done, so
//! a garbled or hostile directory entry cannot make the daemon allocate gigabytes or spin for
//! minutes.

mod admission;
mod codec;
mod crypt;
mod decoy;
mod dovecot;
mod ldap;
mod multibuffer;
mod phc;
mod pool;
mod queue;
mod sha512crypt;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
mod verify_cache;

use base64::Engine as _;
use rand::RngCore as _;

pub use admission::{QueueLimits, Refusal, Refusals};
use codec::DigestAlgo;
pub use pool::{Hasher, Observer, Verdict};
pub use verify_cache::{VerifyCacheSettings, VerifyCacheStats};

/// Why a stored secret could not be checked. None of these means "wrong password": a wrong
/// password is `Ok(false)`. Callers treat every error as an unverifiable secret
/// (`RejectReason::UnverifiableSecret`) and log it as a data problem for an operator; messages
/// never contain the stored value or the password.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// No recognised scheme: an unknown `{TAG}`, or no prefix at all. Carries the tag or a
    /// description, never the stored value (which might be a cleartext password).
    #[error("unknown password scheme {0}")]
    UnknownScheme(String),
    /// The scheme is known but the value does not parse (truncated, bad encoding, bad params).
    #[error("malformed {scheme} hash")]
    Malformed { scheme: &'static str },
    /// A scheme recognised by name that this build deliberately does not verify (DES crypt,
    /// CRAM-MD5, NTLM, …): the operator must rehash those accounts.
    #[error("password scheme {scheme} is recognised but not supported")]
    Unsupported { scheme: &'static str },
    /// The stored hash asks for more memory or work than [`Limits`] allow; refused unverified.
    #[error("{scheme} hash exceeds the verification cost limits")]
    CostTooHigh { scheme: &'static str },
    /// Creating a new hash failed (no randomness, parameter error).
    #[error("hashing failed: {0}")]
    Hashing(String),
    /// The blocking task panicked or the runtime is shutting down: a temporary failure.
    #[error("password verification task failed")]
    TaskFailed,
    /// The queue's bounds refused the work ([`QueueLimits`]): a temporary failure.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// A recognised stored-hash scheme (the algorithm, whatever wrapper it came in: `{CRYPT}$6$…`
/// and `$6$…` are both [`Scheme::Sha512Crypt`]). `label()` is the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    Argon2,
    Bcrypt,
    Scrypt,
    Yescrypt,
    Pbkdf2,
    Sha512Crypt,
    Sha256Crypt,
    Md5Crypt,
    ScramSha1,
    ScramSha256,
    Ssha,
    Sha,
    Ssha256,
    Sha256,
    Ssha384,
    Sha384,
    Ssha512,
    Sha512,
    Smd5,
    Md5,
    Plain,
}

impl Scheme {
    /// Short lowercase label for `postern_password_hash_verifications_total{scheme}`.
    pub fn label(self) -> &'static str {
        match self {
            Scheme::Argon2 => "argon2",
            Scheme::Bcrypt => "bcrypt",
            Scheme::Scrypt => "scrypt",
            Scheme::Yescrypt => "yescrypt",
            Scheme::Pbkdf2 => "pbkdf2",
            Scheme::Sha512Crypt => "sha512-crypt",
            Scheme::Sha256Crypt => "sha256-crypt",
            Scheme::Md5Crypt => "md5-crypt",
            Scheme::ScramSha1 => "scram-sha-1",
            Scheme::ScramSha256 => "scram-sha-256",
            Scheme::Ssha => "ssha",
            Scheme::Sha => "sha",
            Scheme::Ssha256 => "ssha256",
            Scheme::Sha256 => "sha256",
            Scheme::Ssha384 => "ssha384",
            Scheme::Sha384 => "sha384",
            Scheme::Ssha512 => "ssha512",
            Scheme::Sha512 => "sha512",
            Scheme::Smd5 => "smd5",
            Scheme::Md5 => "md5",
            Scheme::Plain => "plain",
        }
    }
}

/// Upper bounds on what one verification may cost. A stored hash asking for more is refused
/// with [`SecretError::CostTooHigh`] before any work: an allocation failure would abort the
/// whole daemon, and [`Hasher`]'s concurrency bound only helps if each job is bounded too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory of one argon2 / scrypt / yescrypt computation, in bytes.
    pub max_memory_bytes: u64,
    /// Iterations of PBKDF2, SCRAM and SHA-crypt rounds.
    pub max_iterations: u32,
    /// bcrypt cost (log2 of the rounds).
    pub max_bcrypt_cost: u32,
    /// argon2 passes (`t`) and lanes (`p`); scrypt/yescrypt parallelism (`p`).
    pub max_passes: u32,
}

impl Limits {
    /// 1 GiB (libsodium's "sensitive" argon2 level), ten million iterations, bcrypt 20: above
    /// anything a real deployment stores, below what would stall the daemon.
    pub const DEFAULT: Limits = Limits {
        max_memory_bytes: 1 << 30,
        max_iterations: 10_000_000,
        max_bcrypt_cost: 20,
        max_passes: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// How to check the body of a stored value; found from its prefix alone, without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Modular crypt / PHC string (bare or inside `{CRYPT}`, `{ARGON2}`, `{BLF-CRYPT}`, …).
    Crypt(crypt::Kind),
    /// `{SSHA}`-style digest, optionally salted (salt appended after the digest).
    Digest {
        algo: DigestAlgo,
        salted: bool,
        encoding: codec::Encoding,
    },
    /// slapd-contrib pw-pbkdf2: `<iter>$<ab64 salt>$<ab64 hash>`.
    SlapdPbkdf2(DigestAlgo),
    /// Dovecot `{PBKDF2}$1$<salt>$<rounds>$<hex>`.
    DovecotPbkdf2,
    /// Dovecot `{SCRAM-SHA-*}<iter>,<salt>,<stored key>,<server key>`.
    Scram(DigestAlgo),
    /// `{PLAIN}` / `{CLEAR}`, possibly with a `.b64` / `.hex` encoding suffix.
    Plain(codec::Encoding),
}

/// The outcome of reading a stored value's prefix.
#[derive(Debug, Clone, Copy)]
struct Resolved<'a> {
    scheme: Scheme,
    method: Method,
    /// What follows the `{TAG}` (the whole value for bare forms).
    body: &'a str,
}

fn resolve(stored: &str) -> Result<Resolved<'_>, SecretError> {
    match stored.strip_prefix('{') {
        Some(rest) => {
            let (tag, body) = rest.split_once('}').ok_or_else(|| {
                SecretError::UnknownScheme("(unterminated {SCHEME} prefix)".into())
            })?;
            let (scheme, method) = ldap::resolve_tag(tag, body)?;
            Ok(Resolved {
                scheme,
                method,
                body,
            })
        }
        None => {
            let (scheme, kind) = crypt::resolve(stored, false)?;
            Ok(Resolved {
                scheme,
                method: Method::Crypt(kind),
                body: stored,
            })
        }
    }
}

/// Which scheme a stored value uses, from its prefix alone (cheap; no decoding or hashing).
pub fn identify(stored: &str) -> Result<Scheme, SecretError> {
    resolve(stored).map(|resolved| resolved.scheme)
}

/// A stored value read with a directory's `default-scheme` (Dovecot's `default_pass_scheme`):
/// a value that names no scheme (`{TAG}`) and has no self-describing form (`$6$…`) is taken as
/// `{default}value`. Without a default, or for any value that does name its scheme, the value
/// is unchanged, so an untagged value stays refused.
pub fn with_default_scheme<'a>(
    stored: &'a str,
    default: Option<&str>,
) -> std::borrow::Cow<'a, str> {
    match default {
        Some(tag) if !stored.starts_with('{') && identify(stored).is_err() => {
            std::borrow::Cow::Owned(format!("{{{tag}}}{stored}"))
        }
        _ => std::borrow::Cow::Borrowed(stored),
    }
}

/// Whether `tag` names a scheme this build knows (`PLAIN`, `CRYPT`, `SSHA`, …): what a
/// `default-scheme` setting must be.
pub fn is_known_tag(tag: &str) -> bool {
    // A wrapper tag (`CRYPT`) names no scheme until its body does: known if any body makes it
    // something other than an unknown scheme.
    !tag.is_empty()
        && !tag.contains(['{', '}'])
        && ["", "$6$salt$hash"].iter().any(|body| {
            !matches!(
                identify(&format!("{{{tag}}}{body}")),
                Err(SecretError::UnknownScheme(_))
            )
        })
}

/// Checks `password` against `stored` with the default [`Limits`]. `Ok(false)` is a wrong
/// password; every `Err` is a stored value that could not be checked.
///
/// Synchronous and deliberately slow (up to ~100 ms for argon2): use [`Hasher::verify`] from
/// async code.
pub fn verify(stored: &str, password: &[u8]) -> Result<bool, SecretError> {
    verify_with_limits(stored, password, &Limits::DEFAULT)
}

/// [`verify`] with explicit cost limits.
pub fn verify_with_limits(
    stored: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    let resolved = resolve(stored)?;
    let body = resolved.body;
    match resolved.method {
        Method::Crypt(kind) => crypt::verify(kind, body, password, limits),
        Method::Digest {
            algo,
            salted,
            encoding,
        } => ldap::verify_digest(resolved.scheme, algo, salted, encoding, body, password),
        Method::SlapdPbkdf2(algo) => ldap::verify_pbkdf2(algo, body, password, limits),
        Method::DovecotPbkdf2 => dovecot::verify_pbkdf2(body, password, limits),
        Method::Scram(algo) => dovecot::verify_scram(algo, body, password, limits),
        Method::Plain(encoding) => dovecot::verify_plain(encoding, body, password),
    }
}

/// [`verify`] for several stored values and passwords at once, results in order. SHA-512-crypt
/// hashes among them are computed together where the CPU allows (five at a time, on AVX2);
/// every other value is verified alone, exactly as by [`verify`].
pub fn verify_batch(items: &[(&str, &[u8])]) -> Vec<Result<bool, SecretError>> {
    let mut results: Vec<Option<Result<bool, SecretError>>> = vec![None; items.len()];
    let mut together = Vec::new();
    let mut positions = Vec::new();
    for (i, (stored, password)) in items.iter().enumerate() {
        match sha512_crypt(stored, &Limits::DEFAULT) {
            Some(Ok(parsed)) => {
                together.push((parsed, *password));
                positions.push(i);
            }
            Some(Err(e)) => results[i] = Some(Err(e)),
            None => results[i] = Some(verify(stored, password)),
        }
    }
    for (i, ok) in positions
        .into_iter()
        .zip(sha512crypt::verify_many(&together))
    {
        results[i] = Some(Ok(ok));
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(SecretError::TaskFailed)))
        .collect()
}

/// The parsed `$6$` string of a SHA-512-crypt value in any wrapper, checked against `limits`;
/// `None` for every other scheme (and for values that do not resolve at all).
fn sha512_crypt<'a>(
    stored: &'a str,
    limits: &Limits,
) -> Option<Result<sha512crypt::Parsed<'a>, SecretError>> {
    let resolved = resolve(stored).ok()?;
    match (resolved.scheme, resolved.method) {
        (Scheme::Sha512Crypt, Method::Crypt(crypt::Kind::ShaCrypt)) => {
            Some(crypt::parse_sha512_crypt(resolved.body, limits))
        }
        _ => None,
    }
}

/// New hashes are argon2id with the argon2 crate's default (OWASP) parameters (m=19456 KiB,
/// t=2, p=1), a 16-byte random salt and a 32-byte tag, computed by `postern_argon2`.
pub fn hash_password(password: &[u8]) -> Result<String, SecretError> {
    use argon2::Params;
    let mut salt = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| SecretError::Hashing(e.to_string()))?;
    let (m, t, p) = (
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST,
    );
    let inputs = postern_argon2::Inputs {
        variant: postern_argon2::Variant::Id,
        version: 0x13,
        m_cost: m,
        t_cost: t,
        lanes: p,
        password,
        salt: &salt,
        secret: &[],
        associated: &[],
    };
    let mut tag = zeroize::Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    postern_argon2::hash(&inputs, tag.as_mut_slice())
        .map_err(|e| SecretError::Hashing(e.to_string()))?;
    // PHC strings use standard Base64 without padding.
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!(
        "$argon2id$v=19$m={m},t={t},p={p}${}${}",
        b64.encode(salt),
        b64.encode(tag.as_slice())
    ))
}

/// A fixed argon2id hash of a random password nobody knows, with exactly the parameters
/// [`hash_password`] uses (a test checks this). Verified for unknown users, so that a login
/// for a name that does not exist costs the same time and memory as a wrong password for one
/// that does, and response times do not reveal which accounts exist.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$fnd0xJ/9Y9mITae/ogVrNQ$qepNvjnd87jUmDo1KWSnSNx4iF2FZaVdFXhO9jdW5ak"
}
