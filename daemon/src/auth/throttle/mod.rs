//! Failed-login throttling, after Dovecot's auth penalty and NIST SP 800-63B §5.2.2: lock the
//! *attacking address*, not the account. Only failures count: a mail client that logs in a
//! hundred times an hour is never locked out by its own successes.
//!
//! Three counts, each over `failure-window` (see [`key::Key`]):
//! * one account from one address block (`max-failures-per-account`): over it, that block may
//!   not try that account any more — ten wrong passwords from one place lock that place only;
//! * one address block on any account (`max-failures-per-ip`): over it, the block is refused;
//! * one account from everywhere (`max-failures-per-account-total`): over it the account is
//!   under attack from many addresses, and only the addresses it recently logged in from
//!   ([`known::KnownGood`]) may still try. A caller with no address (a unix socket) cannot be
//!   told apart from the attacker and is refused from `max-failures-per-account` on.
//!
//! Addresses in `trusted-networks` are neither counted nor refused.
//!
//! An attempt is reserved before its password is hashed ([`Throttle::reserve`]) and counts as a
//! failure until it is known not to be one, so a hundred concurrent guesses cannot all pass a
//! check made before any of them failed. An attempt that only attempts in flight keep out (not
//! failures) waits for one of them to end instead of being refused: forty SMTP workers of one
//! application logging in as one account at once are served, ten at a time, and if those ten
//! fail the others are refused as they would have been.
//!
//! Counting is in memory, bounded ([`MAX_KEYS`]). Several daemons sharing a store also add up
//! their failures there ([`Throttle::sync`], every half second), so N daemons behind a balancer
//! allow the configured number of failures, not N times it (give or take one sync).

pub mod key;
mod known;
mod report;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use postern_internal::{FailureRow, Store, StoreError};
use prometheus::IntCounterVec;
use tokio::sync::Notify;

use super::clock::Clock;
use key::{fold, Block, Key, Keys};
use known::{evict_oldest, KnownGood};

/// Keys tracked in memory. ~150 bytes each, so about 10 MB however wide a spray is; when full,
/// the keys that failed least recently are forgotten first, so the counts of an attack in
/// progress are the ones kept (and what the store holds still locks).
pub const MAX_KEYS: usize = 65_536;

/// The longest an attempt waits for attempts in flight on its keys to end (see the module's
/// comment) before it is refused as [`Refusal::Busy`].
pub const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Failures are over a limit: refused for this long.
    Locked(Duration),
    /// Attempts in flight filled a budget for longer than [`BUSY_WAIT`]: not the client's
    /// failures, a temporary refusal.
    Busy,
}

/// The limits in force (`[authentication]`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// One account from one address block; also one account when the caller has no address.
    pub per_account: u32,
    pub per_ip: u32,
    /// One account from everywhere: beyond it only known-good addresses may try.
    pub per_account_total: u32,
    pub window: Duration,
    pub trusted: Vec<IpNet>,
}

impl Limits {
    /// The count from which a key refuses someone (the lowest of its thresholds).
    fn threshold(&self, key: &Key) -> u32 {
        match key {
            Key::Address(_) => self.per_ip,
            Key::Account(_) | Key::Pair(..) => self.per_account,
        }
    }
}

struct Entry {
    start: SystemTime,
    /// Failures decided in this window.
    failures: u32,
    /// Attempts reserved and not decided yet: counted as failures until they are.
    pending: u32,
    /// Failures not reported to the store yet.
    unreported: u32,
    last: SystemTime,
}

impl Entry {
    fn total(&self) -> u32 {
        self.failures.saturating_add(self.pending)
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    /// Keys a success cleared, to clear in the store too.
    cleared: Vec<Key>,
    /// Keys over a threshold across all daemons: their count and window end (last sync).
    shared: HashMap<Key, (u32, SystemTime)>,
    known: KnownGood,
}

pub struct Throttle {
    limits: Limits,
    clock: Arc<dyn Clock>,
    /// `postern_throttle_locks_total{kind}`.
    locks: IntCounterVec,
    state: Mutex<State>,
    /// Typed names (folded) a directory answered for with another canonical name.
    aliases: key::Aliases,
    /// Woken when attempts in flight end, for those waiting on them ([`Throttle::reserve`]);
    /// `waiting` counts them, so that no one is woken when nobody waits.
    ended: Notify,
    waiting: AtomicUsize,
}

/// An attempt admitted by [`Throttle::reserve`]: a failure until told otherwise. Released
/// ([`Reservation::release`]) when the answer was not the client's doing (an outage); dropped
/// undecided, because the caller went away while its password was being checked, it stays a
/// failure: sending credentials and hanging up must not be a free guess.
pub struct Reservation<'a> {
    throttle: &'a Throttle,
    account: Arc<str>,
    block: Option<Block>,
    keys: Keys,
}

impl Reservation<'_> {
    fn take_keys(&mut self) -> Keys {
        std::mem::replace(&mut self.keys, Keys::none())
    }

    pub fn failed(mut self) {
        let keys = self.take_keys();
        self.throttle.decide(&keys, true);
    }

    /// A success from this address: the account's count and this block's count on it are
    /// cleared (not the block's own: one good login must not reset a spray from it), and the
    /// block is remembered as known-good for the account and for `canonical`, the name the
    /// directory answered with.
    pub fn succeeded(mut self, canonical: &str) {
        let keys = self.take_keys();
        if keys.is_empty() {
            return; // a trusted network: nothing counted, nothing to clear or remember
        }
        let canonical = fold(canonical);
        self.throttle.aliases.learn(&self.account, &canonical);
        self.throttle.decide(&keys, false);
        self.throttle.clear(&self.account, self.block);
        if *canonical != *self.account {
            self.throttle.clear(&Arc::from(&*canonical), self.block);
        }
    }
}

impl Reservation<'_> {
    /// A wrong password for an account a directory named: later attempts under the typed name
    /// count against `canonical` (this one is decided as a failure).
    pub fn failed_as(self, canonical: &str) {
        let canonical = fold(canonical);
        if !self.keys.is_empty() && *canonical != *self.account {
            self.throttle.aliases.learn(&self.account, &canonical);
            // This failure counts against the canonical account too (its address block's own
            // count is already in this reservation).
            let keys = Keys::of(&Arc::from(&*canonical), self.block, false);
            self.throttle.count_failure(&keys);
        }
        self.failed();
    }

    /// Not the client's doing (an outage, a broken account): the attempt is given back.
    pub fn release(mut self) {
        let keys = self.take_keys();
        self.throttle.decide(&keys, false);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let keys = self.take_keys();
        self.throttle.decide(&keys, true);
    }
}

impl Throttle {
    pub fn new(limits: Limits, clock: Arc<dyn Clock>, locks: IntCounterVec) -> Self {
        Throttle {
            limits,
            clock,
            locks,
            state: Mutex::new(State::default()),
            aliases: key::Aliases::default(),
            ended: Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The state, even if a thread panicked holding the lock: every update leaves it usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.limits.trusted.iter().any(|n| n.contains(&ip))
    }

    /// The keys an attempt counts against; none for a trusted address.
    fn keys(&self, account: &str, ip: Option<IpAddr>) -> Option<(Arc<str>, Option<Block>, Keys)> {
        if ip.is_some_and(|ip| self.trusted(ip)) {
            return None;
        }
        // Counted under the canonical name when a directory has told it: guesses at
        // `alice@example.org`, `ALICE` and `alice` share one budget.
        let account = self.aliases.canonical(&fold(account));
        let block = ip.map(Block::of);
        let keys = Keys::of(&account, block, true);
        Some((account, block, keys))
    }

    /// Whether a key refuses this caller: `Locked(for how long)` when its failures here, or
    /// across the daemons at the last sync, reach the threshold that applies; `Busy` when
    /// only the attempts in flight here make it reach it.
    fn refusal(
        &self,
        s: &State,
        key: &Key,
        block: Option<Block>,
        now: SystemTime,
    ) -> Option<Refusal> {
        let limit = match (key, block) {
            // Under attack from many addresses: known-good addresses keep their own budget
            // (the pair key), everyone else is refused.
            (Key::Account(a), Some(b)) => {
                if s.known.contains(a, b, now) {
                    return None;
                }
                self.limits.per_account_total
            }
            _ => self.limits.threshold(key),
        };
        let mut wait: Option<Duration> = None;
        let mut busy = false;
        if let Some(e) = s.entries.get(key) {
            let age = now.duration_since(e.start).unwrap_or_default();
            if age < self.limits.window {
                if e.failures >= limit {
                    wait = Some(self.limits.window - age);
                } else {
                    busy = e.total() >= limit;
                }
            }
        }
        if let Some((count, until)) = s.shared.get(key) {
            if *count >= limit {
                if let Ok(left) = until.duration_since(now) {
                    wait = Some(wait.map_or(left, |w| w.max(left)));
                }
            }
        }
        match wait {
            Some(w) => Some(Refusal::Locked(w)),
            None => busy.then_some(Refusal::Busy),
        }
    }

    /// Failures over a limit lock (the longest lock of the keys); failures and attempts in
    /// flight together over it only make the attempt wait (`Busy`).
    fn wait(
        &self,
        s: &State,
        keys: &Keys,
        block: Option<Block>,
        now: SystemTime,
    ) -> Result<(), Refusal> {
        let mut busy = false;
        let mut locked: Option<Duration> = None;
        for key in keys.iter() {
            match self.refusal(s, key, block, now) {
                Some(Refusal::Locked(w)) => locked = Some(locked.map_or(w, |l| l.max(w))),
                Some(Refusal::Busy) => busy = true,
                None => {}
            }
        }
        match (locked, busy) {
            (Some(w), _) => Err(Refusal::Locked(w.max(Duration::from_secs(1)))),
            (None, true) => Err(Refusal::Busy),
            (None, false) => Ok(()),
        }
    }

    /// Failures from `ip`'s address block in the current window (none for a trusted network):
    /// what a mail front-end's growing failure delay is computed from.
    pub fn failures_from(&self, ip: IpAddr) -> u32 {
        if self.trusted(ip) {
            return 0;
        }
        let now = self.clock.now();
        let window = self.limits.window;
        self.state()
            .entries
            .get(&Key::Address(Block::of(ip)))
            .filter(|e| now.duration_since(e.start).unwrap_or_default() < window)
            .map_or(0, |e| e.failures)
    }

    /// `Err(retry_after)` while this caller may not try this account, without reserving.
    #[cfg(test)]
    pub fn check(&self, account: &str, ip: Option<IpAddr>) -> Result<(), Duration> {
        let Some((_, block, keys)) = self.keys(account, ip) else {
            return Ok(());
        };
        let now = self.clock.now();
        match self.wait(&self.state(), &keys, block, now) {
            Ok(()) | Err(Refusal::Busy) => Ok(()),
            Err(Refusal::Locked(w)) => Err(w),
        }
    }

    /// Checks and, in the same critical section, reserves the attempt; while only attempts in
    /// flight keep it out, waits for them (up to [`BUSY_WAIT`]). A caller that goes away while
    /// waiting has reserved nothing.
    pub async fn reserve(
        &self,
        account: &str,
        ip: Option<IpAddr>,
    ) -> Result<Reservation<'_>, Refusal> {
        match self.try_reserve(account, ip) {
            // Boxed: only an attempt that waits carries the timer and the wake-up, not every
            // login's future.
            Err(Refusal::Busy) => Box::pin(self.wait_for_room(account, ip)).await,
            other => other,
        }
    }

    /// Tries again each time an attempt in flight ends, until admitted, locked out, or
    /// [`BUSY_WAIT`] has passed.
    async fn wait_for_room(
        &self,
        account: &str,
        ip: Option<IpAddr>,
    ) -> Result<Reservation<'_>, Refusal> {
        let waited = tokio::time::timeout(BUSY_WAIT, async {
            loop {
                // Registered and counted before the check: an attempt that ends after it
                // (its `decide` takes the lock after the check let it go) sees the count and
                // wakes this one.
                let ended = self.ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                let _counted = Waiting::new(&self.waiting);
                match self.try_reserve(account, ip) {
                    Err(Refusal::Busy) => ended.await,
                    other => return other,
                }
            }
        })
        .await;
        waited.unwrap_or(Err(Refusal::Busy))
    }

    /// Checks and, in the same critical section, reserves the attempt, without waiting:
    /// `Busy` at once when only attempts in flight keep it out.
    pub fn try_reserve(
        &self,
        account: &str,
        ip: Option<IpAddr>,
    ) -> Result<Reservation<'_>, Refusal> {
        let Some((account, block, keys)) = self.keys(account, ip) else {
            // A trusted network: nothing counted.
            return Ok(Reservation {
                throttle: self,
                account: Arc::from(""),
                block: None,
                keys: Keys::none(),
            });
        };
        let now = self.clock.now();
        let mut s = self.state();
        self.wait(&s, &keys, block, now)?;
        for key in keys.iter() {
            let e = self.entry(&mut s, key, now);
            e.pending = e.pending.saturating_add(1);
        }
        drop(s);
        Ok(Reservation {
            throttle: self,
            account,
            block,
            keys,
        })
    }

    /// A key's entry in its current window, made room for under [`MAX_KEYS`].
    fn entry<'s>(&self, s: &'s mut State, key: &Key, now: SystemTime) -> &'s mut Entry {
        if !s.entries.contains_key(key) && s.entries.len() >= MAX_KEYS {
            let window = self.limits.window;
            s.entries.retain(|_, e| {
                e.pending > 0 || now.duration_since(e.start).unwrap_or_default() < window
            });
            evict_oldest(&mut s.entries, MAX_KEYS, |e| e.last);
        }
        let window = self.limits.window;
        let e = s.entries.entry(key.clone()).or_insert(Entry {
            start: now,
            failures: 0,
            pending: 0,
            unreported: 0,
            last: now,
        });
        if now.duration_since(e.start).unwrap_or_default() >= window {
            e.start = now;
            e.failures = 0;
            e.unreported = 0;
        }
        e
    }

    /// Ends reservations: as failures, or released.
    fn decide(&self, keys: &Keys, failed: bool) {
        if keys.is_empty() {
            return;
        }
        self.decide_locked(keys, failed);
        // After the lock is let go; a waiter counted itself under it before it slept.
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.ended.notify_waiters();
        }
    }

    fn decide_locked(&self, keys: &Keys, failed: bool) {
        let now = self.clock.now();
        let mut s = self.state();
        for key in keys.iter() {
            let Some(e) = s.entries.get_mut(key) else {
                continue; // evicted meanwhile
            };
            e.pending = e.pending.saturating_sub(1);
            if !failed {
                // An entry that counts nothing is dropped, so that the table holds failures
                // and attempts in flight, not every name that logged in: with more accounts
                // than MAX_KEYS, full-table eviction passes under this lock stalled logins.
                if e.pending == 0 && e.failures == 0 && e.unreported == 0 {
                    s.entries.remove(key);
                }
                continue;
            }
            e.failures = e.failures.saturating_add(1);
            e.unreported = e.unreported.saturating_add(1);
            e.last = now;
            let limit = match key {
                Key::Account(_) => self.limits.per_account_total,
                _ => self.limits.threshold(key),
            };
            if e.failures == limit {
                self.lock_event(key, limit, "limit reached on this daemon");
            }
        }
    }

    /// Logs and counts a lock (the name and address in the log, never in a label).
    fn lock_event(&self, key: &Key, limit: u32, reason: &str) {
        let kind = key.kind();
        self.locks.with_label_values(&[kind.as_str()]).inc();
        let what = match key {
            Key::Address(_) => "address block locked for every account",
            Key::Pair(..) => "address block locked for this account",
            Key::Account(_) => "account under attack: only its known-good addresses may try",
        };
        tracing::warn!(
            target: "postern::throttle",
            kind = kind.as_str(),
            account = key.account().map(|a| a.escape_debug().to_string()),
            block = key.block().map(tracing::field::display),
            failures = limit,
            window_s = self.limits.window.as_secs(),
            reason,
            "{what}"
        );
    }

    /// An immediate failure, without a reservation (tests).
    #[cfg(test)]
    pub fn failed(&self, account: &str, ip: Option<IpAddr>) {
        if let Some((_, _, keys)) = self.keys(account, ip) {
            self.count_failure(&keys);
        }
    }

    /// One failure on each key, without a reservation.
    fn count_failure(&self, keys: &Keys) {
        let now = self.clock.now();
        {
            let mut s = self.state();
            for key in keys.iter() {
                let e = self.entry(&mut s, key, now);
                e.pending = e.pending.saturating_add(1);
            }
        }
        self.decide(keys, true);
    }

    /// A success without a reservation (tests; see [`Reservation::succeeded`]).
    #[cfg(test)]
    pub fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        if ip.is_some_and(|ip| self.trusted(ip)) {
            return;
        }
        self.clear(&Arc::from(&*fold(account)), ip.map(Block::of));
    }

    /// A success: the account's counts (and with an address, the pair's) are reset, the
    /// address remembered as known-good.
    fn clear(&self, account: &Arc<str>, block: Option<Block>) {
        let now = self.clock.now();
        let mut s = self.state();
        {
            if let Some(b) = block {
                s.known.insert(account.clone(), b, now);
            }
            let keys = Keys::of(account, block, false);
            for key in keys.iter() {
                let had_local = match s.entries.get_mut(key) {
                    // Reservations in flight stay counted until they are decided.
                    Some(e) => {
                        let had = e.failures > 0;
                        e.failures = 0;
                        e.unreported = 0;
                        had
                    }
                    None => false,
                };
                let had_shared = s.shared.remove(key).is_some();
                if had_local || had_shared {
                    s.cleared.push(key.clone());
                }
            }
        }
    }

    /// Accounts with a lock in force (for some address or all) and address blocks locked,
    /// here or across the daemons at the last sync (a gauge).
    pub fn locked(&self) -> (usize, usize) {
        let now = self.clock.now();
        let s = self.state();
        let mut accounts = std::collections::HashSet::new();
        let mut addresses = std::collections::HashSet::new();
        let local = s.entries.iter().filter_map(|(k, e)| {
            let age = now.duration_since(e.start).unwrap_or_default();
            (age < self.limits.window).then_some((k, e.failures))
        });
        let shared = s
            .shared
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(k, (n, _))| (k, *n));
        for (k, n) in local.chain(shared) {
            if n < self.limits.threshold(k) {
                continue;
            }
            match k {
                Key::Address(b) => {
                    addresses.insert(*b);
                }
                Key::Account(a) | Key::Pair(_, a) => {
                    accounts.insert(a.clone());
                }
            }
        }
        (accounts.len(), addresses.len())
    }

    /// The window in whole seconds, as the store counts it.
    fn window_secs(&self) -> i64 {
        i64::try_from(self.limits.window.as_secs().max(1)).unwrap_or(i64::MAX)
    }

    /// Deletes the store's failures whose window has ended (any daemon may do it).
    pub async fn purge(&self, store: &Store) -> Result<u64, StoreError> {
        store
            .purge_login_failures(self.clock.unix(), self.window_secs())
            .await
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state().entries.len()
    }
}

/// One attempt waiting in [`Throttle::reserve`], counted until it stops waiting, however it
/// stops (woken, timed out, or its caller gone).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The rows of the store over a threshold, as keys with their count and window end.
fn shared_from(rows: Vec<FailureRow>) -> HashMap<Key, (u32, SystemTime)> {
    rows.into_iter()
        .filter_map(|r| {
            let until =
                SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(r.until).unwrap_or(0));
            let n = u32::try_from(r.failures).unwrap_or(u32::MAX);
            Key::from_stored(&r.key).map(|k| (k, (n, until)))
        })
        .collect()
}
