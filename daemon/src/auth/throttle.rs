//! Failed-login throttling per account and per client address. Only failures count: a mail
//! client that logs in a hundred times an hour must never be locked out by its own successes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::clock::Clock;

/// Entries kept before expired ones are swept; bounds memory under a spraying attack.
const SWEEP_AT: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

struct Entry {
    start: SystemTime,
    failures: u32,
}

pub struct Throttle {
    per_account: u32,
    per_ip: u32,
    window: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    pub fn new(per_account: u32, per_ip: u32, window: Duration, clock: Arc<dyn Clock>) -> Self {
        Throttle {
            per_account,
            per_ip,
            window,
            clock,
            state: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, ip: Option<IpAddr>) -> impl Iterator<Item = Key> {
        // Case-insensitive: `Alice` and `alice` are one target for an attacker.
        std::iter::once(Key::Account(account.to_lowercase())).chain(ip.map(Key::Ip))
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Account(_) => self.per_account,
            Key::Ip(_) => self.per_ip,
        }
    }

    /// `Err(retry_after)` while the account or the address is over its limit.
    pub fn check(&self, account: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = self.clock.now();
        let Ok(state) = self.state.lock() else {
            return Ok(());
        };
        let mut wait = None;
        for key in Self::keys(account, ip) {
            if let Some(e) = state.get(&key) {
                let age = now.duration_since(e.start).unwrap_or_default();
                if age < self.window && e.failures >= self.limit(&key) {
                    let left = self.window - age;
                    wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
                }
            }
        }
        wait.map_or(Ok(()), |w| Err(w.max(Duration::from_secs(1))))
    }

    pub fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let now = self.clock.now();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.len() >= SWEEP_AT {
            let window = self.window;
            state.retain(|_, e| now.duration_since(e.start).unwrap_or_default() < window);
        }
        for key in Self::keys(account, ip) {
            let e = state.entry(key).or_insert(Entry {
                start: now,
                failures: 0,
            });
            if now.duration_since(e.start).unwrap_or_default() >= self.window {
                *e = Entry {
                    start: now,
                    failures: 0,
                };
            }
            e.failures = e.failures.saturating_add(1);
        }
    }

    /// A success clears the account's count (not the address's: one good login from an address
    /// must not reset a password spray from it).
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.remove(&Key::Account(account.to_lowercase()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::ManualClock;
    use super::*;

    #[test]
    fn locks_after_limit_and_unlocks_after_window() {
        let clock = Arc::new(ManualClock::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1000),
        ));
        let t = Throttle::new(3, 5, Duration::from_secs(60), clock.clone());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(t.check("Alice", Some(ip)).is_ok());
            t.failed("Alice", Some(ip));
        }
        assert_eq!(t.check("alice", None), Err(Duration::from_secs(60)));
        // Another account from the same address still has attempts left…
        assert!(t.check("bob", Some(ip)).is_ok());
        t.failed("bob", Some(ip));
        t.failed("carol", Some(ip));
        // …until the address itself is over its limit.
        assert!(t.check("dave", Some(ip)).is_err());
        clock.advance(Duration::from_secs(61));
        assert!(t.check("alice", Some(ip)).is_ok());
    }

    #[test]
    fn success_clears_the_account() {
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH));
        let t = Throttle::new(2, 100, Duration::from_secs(60), clock);
        t.failed("alice", None);
        t.succeeded("alice");
        t.failed("alice", None);
        assert!(t.check("alice", None).is_ok());
    }
}
