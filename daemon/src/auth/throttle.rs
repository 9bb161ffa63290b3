//! Failed-login throttling per account and per client address. Only failures count: a mail
//! client that logs in a hundred times an hour must never be locked out by its own successes.
//!
//! Counting is in memory, so a check costs nothing. Several daemons sharing a store also add
//! up their failures there ([`Throttle::sync`], every half second): a key over its limit in
//! total is locked on every daemon, so N daemons behind a balancer allow the configured number
//! of failures, not N times it (give or take what arrives within one sync).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use postern_internal::{Store, StoreError};

use super::clock::Clock;

/// Entries kept before expired ones are swept; bounds memory under a spraying attack.
const SWEEP_AT: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Ip(IpAddr),
}

impl Key {
    /// The key as the store holds it (`account:<name>`, `ip:<address>`).
    fn stored(&self) -> String {
        match self {
            Key::Account(a) => format!("account:{a}"),
            Key::Ip(ip) => format!("ip:{ip}"),
        }
    }

    fn from_stored(s: &str) -> Option<Key> {
        if let Some(a) = s.strip_prefix("account:") {
            return Some(Key::Account(a.to_string()));
        }
        s.strip_prefix("ip:")?.parse().ok().map(Key::Ip)
    }
}

struct Entry {
    start: SystemTime,
    failures: u32,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Failures counted here since the last report to the store.
    unreported: HashMap<Key, u32>,
    /// Accounts whose failures a success cleared, to clear in the store too.
    cleared: Vec<Key>,
    /// Keys over their limit across all daemons, until their window ends (last sync).
    shared: HashMap<Key, SystemTime>,
    /// Attempts admitted by [`Throttle::reserve`] and not yet answered: counted against the
    /// limits as if they had failed, so that a burst sent at once cannot all pass before the
    /// first fails. Local only; what they become is reported when they end.
    in_flight: HashMap<Key, u32>,
}

pub struct Throttle {
    per_account: u32,
    per_ip: u32,
    window: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl Throttle {
    pub fn new(per_account: u32, per_ip: u32, window: Duration, clock: Arc<dyn Clock>) -> Self {
        Throttle {
            per_account,
            per_ip,
            window,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// The state, even if a thread panicked holding the lock: every update leaves it usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// `Err(retry_after)` while the account or the address is over its limit, here or across
    /// the daemons sharing the store.
    pub fn check(&self, account: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.wait(&self.state(), account, ip)
    }

    /// [`Throttle::check`], then the attempt counted in flight until the [`Reservation`] is
    /// settled, all under one lock. Dropped unsettled (its caller gone), it counts as a
    /// failure: an attempt abandoned mid-verification is not a free guess.
    pub fn reserve(&self, account: &str, ip: Option<IpAddr>) -> Result<Reservation<'_>, Duration> {
        let mut state = self.state();
        self.wait(&state, account, ip)?;
        for key in Self::keys(account, ip) {
            let n = state.in_flight.entry(key).or_insert(0);
            *n = n.saturating_add(1);
        }
        Ok(Reservation {
            throttle: self,
            account: account.to_string(),
            ip,
            settled: false,
        })
    }

    fn wait(&self, state: &State, account: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        let now = self.clock.now();
        let mut wait = None;
        let mut locked_for = |left: Duration| {
            wait = Some(wait.map_or(left, |w: Duration| w.max(left)));
        };
        for key in Self::keys(account, ip) {
            let mut failures = 0;
            if let Some(e) = state.entries.get(&key) {
                let age = now.duration_since(e.start).unwrap_or_default();
                if age < self.window {
                    failures = e.failures;
                }
                if age < self.window && e.failures >= self.limit(&key) {
                    locked_for(self.window - age);
                }
            }
            // Over the limit only with the attempts still in flight: those end soon, and may
            // not fail, so a second is all a client is told to wait.
            let in_flight = state.in_flight.get(&key).copied().unwrap_or(0);
            if failures.saturating_add(in_flight) >= self.limit(&key) {
                locked_for(Duration::from_secs(1));
            }
            if let Some(until) = state.shared.get(&key) {
                if let Ok(left) = until.duration_since(now) {
                    locked_for(left);
                }
            }
        }
        wait.map_or(Ok(()), |w| Err(w.max(Duration::from_secs(1))))
    }

    pub fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let now = self.clock.now();
        let mut state = self.state();
        if state.entries.len() >= SWEEP_AT {
            let window = self.window;
            state
                .entries
                .retain(|_, e| now.duration_since(e.start).unwrap_or_default() < window);
        }
        for key in Self::keys(account, ip) {
            let e = state.entries.entry(key.clone()).or_insert(Entry {
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
            // Bounded like `entries`: under a spray, reports are dropped rather than grow.
            if state.unreported.len() < SWEEP_AT || state.unreported.contains_key(&key) {
                let n = state.unreported.entry(key).or_insert(0);
                *n = n.saturating_add(1);
            }
        }
    }

    /// Ends a reservation's in-flight count.
    fn land(&self, account: &str, ip: Option<IpAddr>) {
        let mut state = self.state();
        for key in Self::keys(account, ip) {
            if let Some(n) = state.in_flight.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.in_flight.remove(&key);
                }
            }
        }
    }

    /// A success clears the account's count (not the address's: one good login from an address
    /// must not reset a password spray from it), here and, if it had failures, in the store.
    pub fn succeeded(&self, account: &str) {
        let key = Key::Account(account.to_lowercase());
        let mut state = self.state();
        let had_local = state.entries.remove(&key).is_some();
        let had_shared = state.shared.remove(&key).is_some();
        state.unreported.remove(&key);
        if had_local || had_shared {
            state.cleared.push(key);
        }
    }

    /// Reports the failures counted since the last call to the store and reads back the keys
    /// over their limit across every daemon. Called every half second by the engine.
    pub async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let (report, cleared) = {
            let mut state = self.state();
            (
                std::mem::take(&mut state.unreported),
                std::mem::take(&mut state.cleared),
            )
        };
        let now = self.clock.unix();
        let window = self.window_secs();
        if !report.is_empty() {
            let counts: Vec<(String, i64)> = report
                .iter()
                .map(|(k, n)| (k.stored(), i64::from(*n)))
                .collect();
            if let Err(e) = store.add_login_failures(&counts, now, window).await {
                // Counted again at the next sync: the store may be back by then.
                let mut state = self.state();
                for (k, n) in report {
                    let m = state.unreported.entry(k).or_insert(0);
                    *m = m.saturating_add(n);
                }
                return Err(e);
            }
        }
        for (i, key) in cleared.iter().enumerate() {
            if let Err(e) = store.clear_login_failures(&key.stored()).await {
                self.state().cleared.extend(cleared.into_iter().skip(i));
                return Err(e);
            }
        }
        let locked = store
            .locked_keys(
                now,
                window,
                i64::from(self.per_account),
                i64::from(self.per_ip),
            )
            .await?;
        let shared = locked
            .into_iter()
            .filter_map(|l| {
                let until = SystemTime::UNIX_EPOCH
                    + Duration::from_secs(u64::try_from(l.until).unwrap_or(0));
                Key::from_stored(&l.key).map(|k| (k, until))
            })
            .collect();
        self.state().shared = shared;
        Ok(())
    }

    /// The window in whole seconds, as the store counts it.
    fn window_secs(&self) -> i64 {
        i64::try_from(self.window.as_secs().max(1)).unwrap_or(i64::MAX)
    }

    /// Accounts and addresses locked across the daemons at the last sync (a gauge).
    pub fn locked(&self) -> (usize, usize) {
        let now = self.clock.now();
        let state = self.state();
        let live = state.shared.iter().filter(|(_, until)| **until > now);
        live.fold((0, 0), |(a, i), (k, _)| match k {
            Key::Account(_) => (a + 1, i),
            Key::Ip(_) => (a, i + 1),
        })
    }

    /// Deletes the store's failures whose window has ended (any daemon may do it).
    pub async fn purge(&self, store: &Store) -> Result<u64, StoreError> {
        store
            .purge_login_failures(self.clock.unix(), self.window_secs())
            .await
    }
}

/// One attempt counted in flight by [`Throttle::reserve`]; settle it with what it became.
#[must_use = "an unsettled reservation counts as a failure when dropped"]
pub struct Reservation<'a> {
    throttle: &'a Throttle,
    account: String,
    ip: Option<IpAddr>,
    settled: bool,
}

impl Reservation<'_> {
    pub fn succeeded(mut self) {
        self.settle();
        self.throttle.succeeded(&self.account);
    }

    pub fn failed(mut self) {
        self.settle();
        self.throttle.failed(&self.account, self.ip);
    }

    /// Neither (a temporary failure, a broken account): nothing counted.
    pub fn release(mut self) {
        self.settle();
    }

    fn settle(&mut self) {
        self.settled = true;
        self.throttle.land(&self.account, self.ip);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.settle();
            self.throttle.failed(&self.account, self.ip);
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
    fn attempts_in_flight_count_from_the_start() {
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH));
        let t = Throttle::new(3, 100, Duration::from_secs(60), clock);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // A burst sent at once: three in flight and none answered is the account's limit.
        let burst: Vec<_> = (0..3)
            .map(|_| t.reserve("alice", Some(ip)).unwrap())
            .collect();
        assert_eq!(t.reserve("Alice", None).err(), Some(Duration::from_secs(1)));
        assert_eq!(t.check("alice", None), Err(Duration::from_secs(1)));
        let mut burst = burst.into_iter();
        // A temporary failure counts nothing; a success clears the account.
        burst.next().unwrap().release();
        burst.next().unwrap().succeeded();
        assert!(t.check("alice", None).is_ok());
        // One dropped unanswered (its client gone) is a failure, locally and for the store.
        drop(burst);
        let more: Vec<_> = (0..2).map(|_| t.reserve("alice", None).unwrap()).collect();
        assert!(t.reserve("alice", None).is_err(), "1 failure + 2 in flight");
        for r in more {
            r.failed();
        }
        assert_eq!(t.check("alice", None), Err(Duration::from_secs(60)));
        assert_eq!(t.state().unreported.get(&Key::Ip(ip)), Some(&1));
        assert!(t.state().in_flight.is_empty());
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

    #[tokio::test]
    async fn failures_add_up_across_daemons_sharing_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/store.db", dir.path().display());
        let store = Store::open(&url, 2, Duration::from_secs(5)).await.unwrap();
        let clock = Arc::new(ManualClock::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        ));
        let a = Throttle::new(3, 100, Duration::from_secs(60), clock.clone());
        let b = Throttle::new(3, 100, Duration::from_secs(60), clock.clone());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        // Two failures on each daemon: neither is over 3 on its own.
        for t in [&a, &b] {
            t.failed("alice", Some(ip));
            t.failed("Alice", Some(ip));
        }
        assert!(a.check("alice", None).is_ok() && b.check("alice", None).is_ok());
        for t in [&a, &b, &a] {
            t.sync(&store).await.unwrap();
        }
        // Four in total: locked on both, until the window that began with the first ends.
        assert_eq!(a.check("alice", None), Err(Duration::from_secs(60)));
        assert_eq!(b.check("ALICE", None), Err(Duration::from_secs(60)));
        // alice is locked; the address (4 failures of 100) is not.
        assert_eq!(a.locked(), (1, 0));
        assert!(a.check("bob", Some(ip)).is_ok());
        // A success on one daemon clears the account everywhere, after the next syncs.
        a.succeeded("alice");
        assert!(a.check("alice", None).is_ok());
        a.sync(&store).await.unwrap();
        b.sync(&store).await.unwrap();
        assert!(b.check("alice", None).is_ok());
        // Windows end in the store as they do in memory.
        b.failed("carol", None);
        b.failed("carol", None);
        a.failed("carol", None);
        a.sync(&store).await.unwrap();
        b.sync(&store).await.unwrap();
        assert!(b.check("carol", None).is_err());
        clock.advance(Duration::from_secs(61));
        b.sync(&store).await.unwrap();
        assert!(b.check("carol", None).is_ok());
        assert_eq!(b.purge(&store).await.unwrap(), 2, "carol and the address");
    }
}
