//! The authorization code flow with PKCE (S256), seen from the relying party: the login's
//! transaction (state, nonce, verifier, return path, expiry) kept in a signed cookie, and the
//! callback's checks in the order that matters: the transaction and its state first (single
//! use), then RFC 9207 `iss`, then an `error`, then one code exchange and the ID token.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore;
use ring::hmac;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// How long a login may take at the provider.
pub const TRANSACTION_TTL: i64 = 600;
/// The longest callback parameter looked at (codes and states are tens of bytes).
pub const MAX_PARAM: usize = 2048;
/// States remembered as used (each for its transaction's lifetime at most).
const MAX_USED: usize = 100_000;

/// Equality of secrets without an early exit.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// RFC 7636 S256: base64url(SHA-256(verifier)).
pub fn challenge(verifier: &str) -> String {
    B64.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// One login in progress, as the browser carries it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The directory it was started for: a cookie of one provider is no use at another.
    pub dir: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// The local path to land on; `None` answers the session view as JSON.
    pub ret: Option<String>,
    pub exp: i64,
}

impl Transaction {
    pub fn new(dir: &str, ret: Option<String>, now: i64) -> Transaction {
        Transaction {
            dir: dir.to_string(),
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
            ret,
            exp: now + TRANSACTION_TTL,
        }
    }
}

/// Signs transactions into cookie values and checks them back; remembers used states.
pub struct Sealer {
    key: hmac::Key,
    used: Mutex<Used>,
}

#[derive(Default)]
struct Used {
    order: VecDeque<(String, i64)>,
    set: HashMap<String, i64>,
}

impl Sealer {
    /// `secret` is the client secret: every daemon with the same configuration accepts the
    /// others' transactions, and nobody without it can forge one.
    pub fn new(secret: &[u8]) -> Sealer {
        let derived = sha2::Sha256::new()
            .chain_update(b"postern oidc transaction v1\0")
            .chain_update(secret)
            .finalize();
        Sealer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &derived),
            used: Mutex::new(Used::default()),
        }
    }

    pub fn seal(&self, t: &Transaction) -> String {
        let body = B64.encode(serde_json::to_vec(t).unwrap_or_default());
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", B64.encode(tag.as_ref()))
    }

    /// The transaction, when the value is one this daemon sealed and it has not expired.
    pub fn open(&self, value: &str, now: i64) -> Option<Transaction> {
        if value.len() > 4 * MAX_PARAM {
            return None;
        }
        let (body, tag) = value.split_once('.')?;
        let tag = B64.decode(tag).ok()?;
        hmac::verify(&self.key, body.as_bytes(), &tag).ok()?;
        let t: Transaction = serde_json::from_slice(&B64.decode(body).ok()?).ok()?;
        (t.exp > now).then_some(t)
    }

    /// Marks a state used; `false` when it already was (a replayed callback).
    pub fn use_once(&self, state: &str, exp: i64, now: i64) -> bool {
        let Ok(mut used) = self.used.lock() else {
            return false;
        };
        while let Some((s, e)) = used.order.front().cloned() {
            if e > now && used.order.len() < MAX_USED {
                break;
            }
            used.order.pop_front();
            used.set.remove(&s);
        }
        if used.set.contains_key(state) {
            return false;
        }
        used.set.insert(state.to_string(), exp);
        used.order.push_back((state.to_string(), exp));
        true
    }
}

/// A `return` value that is a local path: one leading `/`, no `//` or `/\` (which browsers
/// take as another host), no scheme, no control characters. Anything else is refused, so
/// Postern is never an open redirector.
pub fn local_path(ret: &str) -> bool {
    ret.starts_with('/')
        && !ret.starts_with("//")
        && !ret.starts_with("/\\")
        && ret.len() <= MAX_PARAM
        && !ret.chars().any(|c| c.is_control() || c == '\\')
}

/// The parameters of a callback, each bounded.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl CallbackParams {
    pub fn oversized(&self) -> bool {
        [
            &self.state,
            &self.code,
            &self.iss,
            &self.error,
            &self.error_description,
        ]
        .iter()
        .any(|v| v.as_ref().is_some_and(|v| v.len() > MAX_PARAM))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_transactions_round_trip_and_nothing_else_opens() {
        let s = Sealer::new(b"secret");
        let t = Transaction::new("corp", Some("/app".into()), 1000);
        let v = s.seal(&t);
        assert_eq!(s.open(&v, 1001), Some(t.clone()));
        assert_eq!(s.open(&v, 1000 + TRANSACTION_TTL), None, "expired");
        assert_eq!(Sealer::new(b"other").open(&v, 1001), None);
        let (body, tag) = v.split_once('.').unwrap();
        let forged = format!("{}x.{tag}", &body[..body.len() - 1]);
        assert_eq!(s.open(&forged, 1001), None);
        assert_eq!(s.open("garbage", 1001), None);
        assert!(s.use_once(&t.state, t.exp, 1001));
        assert!(!s.use_once(&t.state, t.exp, 1002), "single use");
    }

    #[test]
    fn pkce_s256_is_rfc_7636_appendix_b() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_local_paths_return() {
        for ok in ["/", "/app?x=1", "/a/b#c", "/%2F%2Fevil"] {
            assert!(local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "evil",
            "/\\evil.example",
            "/a\\b",
            "/a\nb",
            "",
        ] {
            assert!(!local_path(bad), "{bad}");
        }
    }
}
