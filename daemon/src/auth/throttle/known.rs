//! Addresses an account logged in from successfully: while the account is under attack from
//! many addresses, these still get their own budget of attempts (NIST SP 800-63B §5.2.2's
//! "allow known-good addresses") where everybody else is refused.
//!
//! In memory, per daemon, lost at restart: a user whose daemon restarted during an attack is
//! treated like a new address until their next success. Bounded in count and in age.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::key::Block;

/// How long a successful login vouches for its address: a month, as a mail client logs in
/// every few minutes and a laptop comes back within weeks.
pub const KNOWN_GOOD_TTL: Duration = Duration::from_secs(30 * 86_400);

/// (account, block) pairs remembered: ~100 bytes each, so a few MB at most however many
/// users log in; the least recently seen are forgotten first.
pub const MAX_KNOWN_GOOD: usize = 65_536;

#[derive(Default)]
pub struct KnownGood {
    seen: HashMap<(Arc<str>, Block), SystemTime>,
}

impl KnownGood {
    pub fn insert(&mut self, account: Arc<str>, block: Block, now: SystemTime) {
        if self.seen.len() >= MAX_KNOWN_GOOD && !self.seen.contains_key(&(account.clone(), block)) {
            self.seen
                .retain(|_, t| now.duration_since(*t).unwrap_or_default() < KNOWN_GOOD_TTL);
            evict_oldest(&mut self.seen, MAX_KNOWN_GOOD, |t| *t);
        }
        self.seen.insert((account, block), now);
    }

    pub fn contains(&self, account: &Arc<str>, block: Block, now: SystemTime) -> bool {
        self.seen
            .get(&(account.clone(), block))
            .is_some_and(|t| now.duration_since(*t).unwrap_or_default() < KNOWN_GOOD_TTL)
    }
}

/// When `map` holds `cap` entries or more, drops the eighth least recent (by `when`) in one
/// pass, so that a spray costs one linear pass per `cap / 8` insertions rather than per one.
pub fn evict_oldest<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    when: impl Fn(&V) -> SystemTime,
) {
    if map.len() < cap {
        return;
    }
    let mut ages: Vec<SystemTime> = map.values().map(&when).collect();
    let n = (cap / 8).max(1).min(ages.len() - 1);
    let (_, cutoff, _) = ages.select_nth_unstable(n);
    let cutoff = *cutoff;
    let mut dropped = 0;
    // Strictly older than the cutoff, then ties up to the count, so equal times (one burst)
    // still free room.
    map.retain(|_, v| {
        let t = when(v);
        if t < cutoff || (t == cutoff && dropped < n) {
            dropped += 1;
            false
        } else {
            true
        }
    });
}
