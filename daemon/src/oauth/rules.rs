//! The request rules of RFC 9700 that need no state: PKCE S256, redirect-URI matching
//! (exact, except the port of a loopback redirect for native apps, RFC 8252 §7.3), scopes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Scopes this server knows. `openid` asks for an ID token; the rest shape userinfo.
pub use postern_internal::model::OAUTH_SCOPES as SCOPES;

/// RFC 7636 §4.1: 43 to 128 unreserved characters (also the shape of an S256 challenge's
/// input; a challenge itself is 43 base64url characters).
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// S256: BASE64URL(SHA256(verifier)) == challenge, compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// Whether `given` is one of the client's registered redirect URIs: byte for byte, except
/// that a registered `http://127.0.0.1/…` or `http://[::1]/…` matches any port.
pub fn redirect_allowed(registered: &[String], given: &str) -> bool {
    registered
        .iter()
        .any(|r| r == given || loopback_any_port(r, given))
}

fn loopback_any_port(registered: &str, given: &str) -> bool {
    for host in ["http://127.0.0.1", "http://[::1]"] {
        let (Some(r), Some(g)) = (registered.strip_prefix(host), given.strip_prefix(host)) else {
            continue;
        };
        let strip_port = |s: &str| -> Option<String> {
            match s.strip_prefix(':') {
                Some(rest) => {
                    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                    let port = &rest[..end];
                    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| rest[end..].to_string())
                }
                None => Some(s.to_string()),
            }
        };
        if let (Some(r), Some(g)) = (strip_port(r), strip_port(g)) {
            return r == g && (r.is_empty() || r.starts_with('/'));
        }
    }
    false
}

/// Parses a space-separated scope; `Err` names the first unknown one.
pub fn parse_scope(scope: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !SCOPES.contains(&s) {
            return Err(s.to_string());
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_the_rfc_example() {
        // RFC 7636 appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(valid_verifier(v));
        assert!(pkce_matches(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
        assert!(!valid_verifier("short"));
    }

    #[test]
    fn redirects_match_exactly_except_loopback_ports() {
        let reg = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/native".to_string(),
        ];
        assert!(redirect_allowed(&reg, "https://app.example/cb"));
        assert!(!redirect_allowed(&reg, "https://app.example/cb/"));
        assert!(!redirect_allowed(&reg, "https://app.example/c"));
        assert!(!redirect_allowed(&reg, "https://app.example/cb?x=1"));
        assert!(redirect_allowed(&reg, "http://127.0.0.1:49152/native"));
        assert!(redirect_allowed(&reg, "http://127.0.0.1/native"));
        assert!(!redirect_allowed(&reg, "http://127.0.0.1:49152/other"));
        assert!(!redirect_allowed(&reg, "http://127.0.0.1.evil:80/native"));
        assert!(!redirect_allowed(&reg, "http://127.0.0.1:80@evil/native"));
    }

    #[test]
    fn unknown_scopes_are_named() {
        assert_eq!(
            parse_scope("openid  email").unwrap(),
            vec!["openid", "email"]
        );
        assert_eq!(parse_scope("openid admin").unwrap_err(), "admin");
    }
}
