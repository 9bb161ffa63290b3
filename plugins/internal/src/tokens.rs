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
    hex::encode(Sha256::digest(token.as_bytes()))
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
}
