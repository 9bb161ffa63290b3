//! Signed tokens verified once: a JWT whose signature and claims were checked (Postern's own
//! access tokens, an OIDC provider's access tokens) is kept by a keyed digest of its text
//! until it expires or is revoked, so a client that presents the same token on every login (a
//! busy IMAP client with XOAUTH2) costs a hash-map lookup instead of a signature check.
//! Here, in the directory contract's crate, so that the engine and the `oidc` plugin share it.
//!
//! For the token verifiers to call: [`TokenCache::digest`] of the token, [`TokenCache::get`]
//! before verifying, [`TokenCache::insert`]
//! after a token verified (with its `exp`), [`TokenCache::invalidate`] when one token is
//! revoked, [`TokenCache::invalidate_where`] when everything of an account or a client is
//! (a password change, a disabled account, a revoked grant), and [`TokenCache::clear`] when the
//! keys change (a provider's JWKS rotated, a reload). Only verified tokens belong here: a
//! refused one is refused again at full cost, so the cache cannot be filled by garbage.
//!
//! The token itself is never kept, only its HMAC-SHA-256 under a key drawn at start and never
//! stored (a copy of the memory does not let anyone match tokens seen elsewhere against it),
//! and what the verifier stores with it.
//! Time is the engine's clock, passed in as unix seconds. Bounded: at most twice `capacity`
//! entries (two generations; a full current one becomes the previous one, whose entries move
//! back when used).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::generations::Generations;

/// The keyed digest of a token's text: how the cache knows it ([`TokenCache::digest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

/// Hits and misses since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCacheStats {
    pub hits: u64,
    pub misses: u64,
}

pub struct TokenCache<V> {
    /// The HMAC key of the digests: drawn at start, never stored or logged.
    key: Zeroizing<[u8; 32]>,
    /// Expiring at the token's `exp` (or sooner, if the verifier wants it rechecked), in unix
    /// seconds.
    entries: Generations<TokenDigest, V, i64>,
}

impl<V: Clone> TokenCache<V> {
    /// At most twice `capacity` tokens; 0 keeps none (every token verified every time).
    pub fn new(capacity: usize) -> TokenCache<V> {
        TokenCache {
            key: Zeroizing::new(rand::random()),
            entries: Generations::new(capacity),
        }
    }

    /// How this cache knows `token`.
    pub fn digest(&self, token: &str) -> TokenDigest {
        // Any key length is valid for HMAC: the error branch cannot happen, and a digest that
        // matches no entry would only cost a verification.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()) else {
            return TokenDigest([0; 32]);
        };
        mac.update(token.as_bytes());
        TokenDigest(mac.finalize().into_bytes().into())
    }

    /// What was stored with a verified token that has not expired at `now` (unix seconds).
    pub fn get(&self, digest: &TokenDigest, now: i64) -> Option<V> {
        self.entries.get(digest, now)
    }

    /// Keeps a token that just verified, until `expires_at` (unix seconds, its `exp`).
    pub fn insert(&self, digest: TokenDigest, value: V, expires_at: i64) {
        self.entries.insert(digest, value, expires_at);
    }

    /// One token revoked.
    pub fn invalidate(&self, digest: &TokenDigest) {
        self.entries.remove(digest);
    }

    /// Every token whose stored value matches (all of an account's, of a client's): a scan,
    /// for revocations, which are rare.
    pub fn invalidate_where(&self, revoked: impl Fn(&V) -> bool) {
        self.entries.remove_where(revoked);
    }

    /// Everything (signing keys changed, configuration reloaded).
    pub fn clear(&self) {
        self.entries.clear();
    }

    pub fn stats(&self) -> TokenCacheStats {
        let (hits, misses) = self.entries.counts();
        TokenCacheStats { hits, misses }
    }

    /// Tokens held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_token_is_served_until_it_expires() {
        let c = TokenCache::new(8);
        let d = c.digest("eyJ.a.b");
        assert_eq!(c.get(&d, 100), None);
        c.insert(d, "alice".to_string(), 160);
        assert_eq!(c.get(&d, 159).as_deref(), Some("alice"));
        assert_eq!(c.get(&d, 160), None, "expired at exp");
        assert_eq!(c.stats(), TokenCacheStats { hits: 1, misses: 2 });
        assert!(c.is_empty(), "an expired entry is dropped when met");
    }

    #[test]
    fn revocations_by_token_by_owner_and_all() {
        let c = TokenCache::new(8);
        let (a1, a2, b) = (c.digest("a1"), c.digest("a2"), c.digest("b"));
        c.insert(a1, "alice", 1000);
        c.insert(a2, "alice", 1000);
        c.insert(b, "bob", 1000);
        c.invalidate(&a1);
        assert_eq!(c.get(&a1, 0), None);
        assert_eq!(c.get(&a2, 0), Some("alice"));
        c.invalidate_where(|owner| *owner == "alice");
        assert_eq!(c.get(&a2, 0), None);
        assert_eq!(c.get(&b, 0), Some("bob"));
        c.clear();
        assert_eq!(c.get(&b, 0), None);
    }

    #[test]
    fn bounded_and_what_is_used_stays() {
        let c = TokenCache::new(4);
        let keep = c.digest("keep");
        c.insert(keep, 0u32, 1000);
        for i in 0..100u32 {
            c.insert(c.digest(&i.to_string()), i, 1000);
            assert_eq!(c.get(&keep, 0), Some(0));
            assert!(c.len() <= 8);
        }
        assert_eq!(c.get(&c.digest("0"), 0), None);
        let none = TokenCache::new(0);
        none.insert(keep, 1, 1000);
        assert_eq!(none.get(&keep, 0), None, "capacity 0 keeps nothing");
        assert_ne!(c.digest("x"), c.digest("y"));
    }

    #[test]
    fn digests_are_keyed_per_cache() {
        let (a, b) = (TokenCache::<u8>::new(1), TokenCache::<u8>::new(1));
        assert_eq!(a.digest("eyJ.a.b"), a.digest("eyJ.a.b"));
        assert_ne!(
            a.digest("eyJ.a.b"),
            b.digest("eyJ.a.b"),
            "another key, another digest"
        );
    }
}
