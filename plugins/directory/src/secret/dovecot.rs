//! Dovecot-only forms: `{PBKDF2}$1$…`, `{SCRAM-SHA-1}` / `{SCRAM-SHA-256}`, and cleartext
//! `{PLAIN}` / `{CLEAR}` / `{CLEARTEXT}` with Dovecot's optional `.B64` / `.HEX` suffix.

use zeroize::Zeroizing;

use super::codec::{self, DigestAlgo, Encoding};
use super::{Limits, SecretError};

/// `{PBKDF2}$1$<salt>$<rounds>$<hex>`: PBKDF2-HMAC-SHA1 over the salt *text*, 20 bytes, hex.
pub(super) fn verify_pbkdf2(
    body: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    const SCHEME: &str = "pbkdf2";
    let mut fields = body.split('$');
    let (Some(""), Some("1"), Some(salt), Some(rounds), Some(hash), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(SecretError::Malformed { scheme: SCHEME });
    };
    let rounds = codec::decimal(rounds, SCHEME)?;
    let expected = codec::hex(hash, SCHEME)?;
    if salt.is_empty() || expected.len() != DigestAlgo::Sha1.output_len() {
        return Err(SecretError::Malformed { scheme: SCHEME });
    }
    codec::pbkdf2_matches(
        DigestAlgo::Sha1,
        password,
        salt.as_bytes(),
        rounds,
        &expected,
        limits,
    )
}

/// `{SCRAM-SHA-256}<iterations>,<b64 salt>,<b64 StoredKey>,<b64 ServerKey>` (RFC 5802 §3):
/// StoredKey = H(HMAC(PBKDF2(password, salt, i), "Client Key")),
/// ServerKey = HMAC(PBKDF2(password, salt, i), "Server Key").
pub(super) fn verify_scram(
    algo: DigestAlgo,
    body: &str,
    password: &[u8],
    limits: &Limits,
) -> Result<bool, SecretError> {
    let scheme = match algo {
        DigestAlgo::Sha1 => "scram-sha-1",
        _ => "scram-sha-256",
    };
    let mut fields = body.split(',');
    let (Some(rounds), Some(salt), Some(stored_key), Some(server_key), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(SecretError::Malformed { scheme });
    };
    let rounds = codec::decimal(rounds, scheme)?;
    let salt = codec::b64(salt, scheme)?;
    let stored_key = codec::b64(stored_key, scheme)?;
    let server_key = codec::b64(server_key, scheme)?;
    let len = algo.output_len();
    if rounds == 0 || salt.is_empty() || stored_key.len() != len || server_key.len() != len {
        return Err(SecretError::Malformed { scheme });
    }
    if rounds > limits.max_iterations {
        return Err(SecretError::CostTooHigh { scheme });
    }
    let salted = algo.pbkdf2(password, &salt, rounds, len);
    let client_key = algo.hmac(&salted, b"Client Key")?;
    let computed = algo.digest(&[&client_key]);
    if !codec::ct_eq(&computed, &stored_key) {
        return Ok(false);
    }
    // Right password: the ServerKey must agree too, or the entry is damaged and would fail
    // every SCRAM exchange that uses it.
    let computed_server_key = algo.hmac(&salted, b"Server Key")?;
    if codec::ct_eq(&computed_server_key, &server_key) {
        Ok(true)
    } else {
        Err(SecretError::Malformed { scheme })
    }
}

/// Cleartext, compared through SHA-512 of both sides so that neither the length nor a
/// common prefix of the stored password shows in the timing.
pub(super) fn verify_plain(
    encoding: Encoding,
    body: &str,
    password: &[u8],
) -> Result<bool, SecretError> {
    const SCHEME: &str = "plain";
    let stored: Zeroizing<Vec<u8>> = Zeroizing::new(match encoding {
        Encoding::Auto => body.as_bytes().to_vec(),
        Encoding::Base64 => codec::b64(body, SCHEME)?,
        Encoding::Hex => codec::hex(body, SCHEME)?,
    });
    let stored = DigestAlgo::Sha512.digest(&[&stored]);
    let offered = DigestAlgo::Sha512.digest(&[password]);
    Ok(codec::ct_eq(&stored, &offered))
}
