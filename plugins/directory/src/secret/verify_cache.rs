//! The verification cache (`[authentication] cache-size`, `cache-ttl`, `cache-negative-ttl`,
//! after Dovecot's `auth_cache`): a password verified recently against a stored hash skips
//! the slow hash.
//!
//! Keyed by HMAC-SHA-256, under a key drawn at start and never stored, of the *stored hash*
//! and the password: never the password, and a copy of the memory does not let anyone test
//! guesses offline without the key. A verification is a pure function of those two, so an
//! entry can never give a wrong answer: a changed password is a new stored hash, which no
//! entry matches (in every daemon, with nothing to tell them), and a disabled account, a
//! changed role or a revoked credential are decided after the verification from the account
//! as it is now. The engine still flushes everything when the store changes, so nothing
//! about a changed account is kept longer than that.
//!
//! Unknown users verify against the directory's decoy hash, which is cached the same way, so
//! a repeated (user, password) pair is fast whether the user exists or not: the cache does
//! not tell which users exist. Negative entries live `cache-negative-ttl` (short by
//! default). Bounded: at most `cache-size` entries (two generations of half each).

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::generations::Generations;

/// What `[authentication]` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyCacheSettings {
    /// Entries in all; 0 turns the cache off.
    pub size: usize,
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

/// Hits (the hash was skipped) and misses since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyCacheStats {
    pub hits: u64,
    pub misses: u64,
}

type Key = [u8; 32];

pub struct VerifyCache {
    settings: VerifyCacheSettings,
    secret: [u8; 32],
    /// Whether the password matched, until when.
    entries: Generations<Key, bool, Instant>,
}

impl VerifyCache {
    /// `None` when `settings.size` is 0 (off).
    pub fn new(settings: VerifyCacheSettings) -> Option<VerifyCache> {
        if settings.size == 0 {
            return None;
        }
        Some(VerifyCache {
            settings,
            secret: rand::random(),
            entries: Generations::new((settings.size / 2).max(1)),
        })
    }

    /// The keyed digest of a (stored hash, password) pair; both length-prefixed, so no two
    /// pairs share one.
    pub(crate) fn key(&self, stored: &str, password: &[u8]) -> Key {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(&(stored.len() as u64).to_be_bytes());
        mac.update(stored.as_bytes());
        mac.update(&(password.len() as u64).to_be_bytes());
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    /// The cached answer for `key`, if one is still fresh.
    pub(crate) fn get(&self, key: &Key) -> Option<bool> {
        self.entries.get(key, Instant::now())
    }

    pub(crate) fn put(&self, key: Key, matched: bool) {
        let ttl = if matched {
            self.settings.ttl
        } else {
            self.settings.negative_ttl
        };
        if ttl.is_zero() {
            return;
        }
        self.entries.insert(key, matched, Instant::now() + ttl);
    }

    /// Forgets everything (the store changed).
    pub fn flush(&self) {
        self.entries.clear();
    }

    pub fn stats(&self) -> VerifyCacheStats {
        let (hits, misses) = self.entries.counts();
        VerifyCacheStats { hits, misses }
    }

    /// Entries held now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(size: usize, negative: Duration) -> VerifyCache {
        VerifyCache::new(VerifyCacheSettings {
            size,
            ttl: Duration::from_secs(3600),
            negative_ttl: negative,
        })
        .unwrap()
    }

    #[test]
    fn keys_depend_on_hash_and_password_and_not_on_their_split() {
        let c = cache(8, Duration::from_secs(1));
        let k = c.key("{PLAIN}ab", b"c");
        assert_ne!(k, c.key("{PLAIN}a", b"bc"));
        assert_ne!(k, c.key("{PLAIN}ab", b"d"));
        assert_eq!(k, c.key("{PLAIN}ab", b"c"));
        let other = cache(8, Duration::from_secs(1));
        assert_ne!(
            k,
            other.key("{PLAIN}ab", b"c"),
            "a key of its own per process"
        );
    }

    #[test]
    fn bounded_and_negative_entries_expire() {
        let c = cache(4, Duration::ZERO);
        for i in 0..100u8 {
            c.put(c.key("h", &[i]), true);
            assert!(c.len() <= 4);
        }
        let k = c.key("h", b"wrong");
        c.put(k, false);
        assert_eq!(
            c.get(&k),
            None,
            "a zero negative ttl keeps no negative entry"
        );
        let k = c.key("h", &[99]);
        assert_eq!(c.get(&k), Some(true));
        assert_eq!(c.stats(), VerifyCacheStats { hits: 1, misses: 1 });
        c.flush();
        assert_eq!(c.get(&k), None);
        assert!(VerifyCache::new(VerifyCacheSettings {
            size: 0,
            ttl: Duration::from_secs(1),
            negative_ttl: Duration::from_secs(1)
        })
        .is_none());
    }
}
