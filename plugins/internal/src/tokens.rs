//! Generated secrets and ids, and how the store keeps them.

use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::model::CredentialType;

/// A new random stable id (128 bits, hex).
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// How tokens and generated credentials are stored: SHA-256, hex. They carry 128+ bits of
/// randomness, so a fast hash is enough and lets the store look them up by hash.
pub fn token_hash(token: &str) -> String {
    // Into a buffer: `hex::encode` builds the string a char at a time, which was a third of
    // this function's cost on the `GET /auth/session` path (callgrind).
    let digest = Sha256::digest(token.as_bytes());
    let mut out = [0u8; 64];
    // 32 bytes always fill 64 digits, so the fallbacks are never taken.
    match hex::encode_to_slice(digest, &mut out) {
        Ok(()) => std::str::from_utf8(&out).map_or_else(|_| hex::encode(digest), str::to_owned),
        Err(_) => hex::encode(digest),
    }
}

/// A random bearer token: 256 bits, URL-safe, with a prefix that secret scanners can match.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "pst_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A new credential secret. API keys are long bearer strings; app passwords are typed into mail
/// clients, so they use a lowercase alphabet in dash-separated groups (~124 bits).
pub fn generate_secret(kind: CredentialType) -> Zeroizing<String> {
    match kind {
        CredentialType::ApiKey => {
            let bytes: [u8; 32] = rand::random();
            Zeroizing::new(format!(
                "pak_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            ))
        }
        CredentialType::AppPassword => {
            const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
            let mut out = Zeroizing::new(String::with_capacity(29));
            for i in 0..25 {
                if i > 0 && i % 5 == 0 {
                    out.push('-');
                }
                let idx = rand::random::<u8>() as usize % ALPHABET.len();
                out.push(ALPHABET[idx] as char);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shapes() {
        let t = generate_token();
        assert!(t.starts_with("pst_") && t.len() == 47);
        let k = generate_secret(CredentialType::ApiKey);
        assert!(k.starts_with("pak_"));
        let a = generate_secret(CredentialType::AppPassword);
        assert_eq!(a.len(), 29);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, generate_secret(CredentialType::AppPassword));
    }

    #[test]
    fn token_hashes_are_lowercase_hex_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1: stored hashes must not change shape.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = generate_token();
        assert_eq!(token_hash(&t), hex::encode(Sha256::digest(t.as_bytes())));
    }
}
