//! The records every request reads (accounts, live sessions, API keys) served from memory.
//!
//! A request used to cost a statement per record; a cached one costs a hash-map lookup. What
//! keeps the copies right:
//!
//! * every write through this [`Store`](super::Store) flushes at once (a session revoked: that
//!   session; anything else committed: everything, since one write can change what many keys
//!   answer — a renamed email, a deleted group);
//! * on PostgreSQL every such write also sends `NOTIFY postern_cache` in its transaction, and
//!   each daemon listens ([`super::Store::follow_changes`]): another daemon's logout is dropped
//!   here as soon as PostgreSQL delivers it;
//! * the cache is used only while that is known to work: on PostgreSQL only while the listening
//!   connection is up (a lost one flushes and turns the cache off until it is back, since
//!   notifications sent meanwhile are lost), and any store error flushes it, so an outage is
//!   answered from the store (a temporary failure), never from memory;
//! * the engine's 500 ms generation poll flushes it too: the fallback for writers that cannot
//!   notify (another process on the same SQLite file);
//! * a read that raced a flush is not kept (the epoch check in [`Cache::put`]), and no entry
//!   lives longer than [`MAX_AGE`] whatever happens.
//!
//! Bounded: each kind keeps at most `2 × capacity` entries (two generations; a full current one
//! becomes the previous one, whose entries are moved back when used, so what is in use stays).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::Credential;
use crate::store::{SessionRecord, StoredAccount};

/// The longest an entry is believed without a fresh read, whatever the invalidation did: a
/// safety net only (every change reaches the cache by a flush, a notification or the poll),
/// so long enough that a user logging in every few minutes is still served from memory. At
/// 30 s, logins spread over 100,000 accounts re-read nearly every account on each login, and
/// the cache sized to them did little (README, "Performance"). Dovecot's `auth_cache_ttl`,
/// with no invalidation at all, defaults to an hour.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// Entries per generation of each kind (so at most twice this many in memory).
pub const DEFAULT_CAPACITY: usize = 16_384;

/// Which record a hit or miss was for (the `record` label of the cache's metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Account,
    Session,
    ApiKey,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Account, Kind::Session, Kind::ApiKey];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Session => "session",
            Kind::ApiKey => "api-key",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Hits and misses since start, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: [u64; 3],
    pub misses: [u64; 3],
}

struct Entry<V> {
    value: V,
    born: Instant,
}

/// Two generations of one kind: bounded, and what is used stays.
pub(crate) struct Halves<V> {
    current: HashMap<String, Entry<V>>,
    previous: HashMap<String, Entry<V>>,
    capacity: usize,
    /// The generation just pushed out, for the caller to drop after unlocking: dropping a
    /// generation of 16,384 accounts under the lock stalled every login for milliseconds
    /// (the p99 of logins spread over 100,000 accounts).
    evicted: Option<HashMap<String, Entry<V>>>,
}

impl<V: Clone> Halves<V> {
    fn new(capacity: usize) -> Self {
        Halves {
            current: HashMap::new(),
            previous: HashMap::new(),
            capacity: capacity.max(1),
            evicted: None,
        }
    }

    fn get(&mut self, key: &str, now: Instant) -> Option<V> {
        if let Some(e) = self.current.get(key) {
            if now.duration_since(e.born) < MAX_AGE {
                return Some(e.value.clone());
            }
            self.current.remove(key);
            return None;
        }
        let e = self.previous.remove(key)?;
        if now.duration_since(e.born) >= MAX_AGE {
            return None;
        }
        let value = e.value.clone();
        self.insert(key.to_string(), e);
        Some(value)
    }

    fn insert(&mut self, key: String, e: Entry<V>) {
        if self.current.len() >= self.capacity && !self.current.contains_key(&key) {
            let old = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
            self.evicted = Some(old);
        }
        self.current.insert(key, e);
    }

    fn remove(&mut self, key: &str) {
        self.current.remove(key);
        self.previous.remove(key);
    }

    /// Empties both generations, handing them back to be dropped outside the lock.
    fn take_all(&mut self) -> [HashMap<String, Entry<V>>; 3] {
        [
            std::mem::take(&mut self.current),
            std::mem::take(&mut self.previous),
            self.evicted.take().unwrap_or_default(),
        ]
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// One map per kind; see the module docs.
pub(crate) struct Cache {
    /// Off while invalidations could be missed.
    live: AtomicBool,
    /// Bumped by every flush: a read begun before one is not kept.
    epoch: AtomicU64,
    /// Shared, not cloned out: a hit is a reference count under the lock, where a copy of the
    /// account (three allocations, cold memory over 100,000 accounts) held every other login.
    accounts: Mutex<Halves<Arc<StoredAccount>>>,
    sessions: Mutex<Halves<SessionRecord>>,
    api_keys: Mutex<Halves<Credential>>,
    hits: [AtomicU64; 3],
    misses: [AtomicU64; 3],
    /// Woken when another writer's change arrived (PostgreSQL): what is derived from more
    /// than these records (the engine's policy, its verification cache) is reloaded at once
    /// instead of at the next generation poll.
    changed: tokio::sync::Notify,
    /// Changes pushed so far (each wakes [`Cache::changed`]).
    changes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A generic view of the three maps, so that get/put are written once.
pub(crate) trait Slot {
    type V: Clone;
    fn map(cache: &Cache) -> &Mutex<Halves<Self::V>>;
    const KIND: Kind;
}

pub(crate) struct Accounts;
pub(crate) struct Sessions;
pub(crate) struct ApiKeys;

impl Slot for Accounts {
    type V = Arc<StoredAccount>;
    const KIND: Kind = Kind::Account;
    fn map(c: &Cache) -> &Mutex<Halves<Arc<StoredAccount>>> {
        &c.accounts
    }
}
impl Slot for Sessions {
    type V = SessionRecord;
    const KIND: Kind = Kind::Session;
    fn map(c: &Cache) -> &Mutex<Halves<SessionRecord>> {
        &c.sessions
    }
}
impl Slot for ApiKeys {
    type V = Credential;
    const KIND: Kind = Kind::ApiKey;
    fn map(c: &Cache) -> &Mutex<Halves<Credential>> {
        &c.api_keys
    }
}

impl Cache {
    pub(crate) fn new(capacity: usize, live: bool) -> Cache {
        Cache {
            live: AtomicBool::new(live && capacity > 0),
            epoch: AtomicU64::new(0),
            accounts: Mutex::new(Halves::new(capacity)),
            sessions: Mutex::new(Halves::new(capacity)),
            api_keys: Mutex::new(Halves::new(capacity)),
            hits: Default::default(),
            misses: Default::default(),
            changed: tokio::sync::Notify::new(),
            changes: AtomicU64::new(0),
        }
    }

    /// Until a change arrives from the store (see [`Cache::changed`]'s field). A change that
    /// arrived while nobody waited is not lost: the next wait returns at once.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Changes pushed since start.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// A change arrived: counted (before the wake-up, so that whoever wakes sees it), then
    /// the follower woken.
    fn pushed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// The epoch, when the cache is in use.
    pub(crate) fn live_epoch(&self) -> Option<u64> {
        let epoch = self.epoch();
        self.live.load(Ordering::Acquire).then_some(epoch)
    }

    /// The epoch to hand back to [`Cache::put`] after reading the store.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub(crate) fn get<S: Slot>(&self, key: &str) -> Option<S::V> {
        if !self.live.load(Ordering::Acquire) {
            return None;
        }
        let (found, evicted) = {
            let mut map = lock(S::map(self));
            (map.get(key, Instant::now()), map.evicted.take())
        };
        drop(evicted);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter[S::KIND.index()].fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a record read from the store, unless a flush came after `epoch` (the read may
    /// predate the write that flushed) or the cache is off.
    pub(crate) fn put<S: Slot>(&self, epoch: u64, key: &str, value: &S::V) {
        if !self.live.load(Ordering::Acquire) {
            return;
        }
        let mut map = lock(S::map(self));
        // Checked under the lock a flush takes after bumping the epoch.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        map.insert(
            key.to_string(),
            Entry {
                value: value.clone(),
                born: Instant::now(),
            },
        );
        let evicted = map.evicted.take();
        drop(map);
        drop(evicted);
    }

    /// One session gone (revoked here or on another daemon).
    pub(crate) fn forget_session(&self, token_hash: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        lock(&self.sessions).remove(token_hash);
    }

    /// Everything gone: a write, a store error, a lost notification channel.
    pub(crate) fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Dropped after each lock is released (see `Halves::evicted`).
        let _accounts = lock(&self.accounts).take_all();
        let _sessions = lock(&self.sessions).take_all();
        let _api_keys = lock(&self.api_keys).take_all();
    }

    /// Turns the cache on (invalidations are known to arrive) or off (flushed).
    pub(crate) fn set_live(&self, live: bool) {
        if live {
            self.flush();
            self.live.store(true, Ordering::Release);
        } else {
            self.live.store(false, Ordering::Release);
            self.flush();
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let read = |a: &[AtomicU64; 3]| std::array::from_fn(|i| a[i].load(Ordering::Relaxed));
        CacheStats {
            hits: read(&self.hits),
            misses: read(&self.misses),
        }
    }

    /// Entries held now (all kinds).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.accounts).len() + lock(&self.sessions).len() + lock(&self.api_keys).len()
    }
}

/// How long to wait before listening again after the connection was lost.
const RELISTEN: Duration = Duration::from_millis(250);

/// PostgreSQL: the other daemons' writes, as `NOTIFY postern_cache` payloads (`*`, `s:HASH`).
/// The cache is on only while this connection listens: a notification sent while it is down
/// is lost, so a lost connection flushes and turns it off, and it comes back on (flushed
/// again) once listening resumes.
pub(crate) async fn listen(url: std::sync::Arc<str>, cache: std::sync::Arc<Cache>) {
    use sqlx::postgres::PgListener;
    loop {
        let listener = async {
            let mut l = PgListener::connect(&url).await?;
            l.listen("postern_cache").await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "cannot listen for store changes; record cache off");
                tokio::time::sleep(RELISTEN).await;
                continue;
            }
        };
        cache.set_live(true);
        // Changes sent while not listening are lost: whatever depends on them is reloaded.
        cache.pushed();
        tracing::debug!("listening for store changes; record cache on");
        // Until the connection is lost (`Ok(None)`) or fails.
        while let Ok(Some(n)) = listener.try_recv().await {
            match n.payload().strip_prefix("s:") {
                Some(hash) => cache.forget_session(hash),
                None => {
                    cache.flush();
                    cache.pushed();
                }
            }
        }
        cache.set_live(false);
        tracing::debug!("lost the store's change notifications; record cache off");
        tokio::time::sleep(RELISTEN).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(account: &str) -> SessionRecord {
        SessionRecord {
            account: account.into(),
            created_at: 0,
            expires_at: 10,
            body: "{}".into(),
        }
    }

    #[test]
    fn bounded_to_two_generations_and_keeps_what_is_used() {
        let c = Cache::new(4, true);
        let e = c.epoch();
        c.put::<Sessions>(e, "keep", &record("keep"));
        for i in 0..100 {
            c.put::<Sessions>(e, &format!("k{i}"), &record("x"));
            // Used all along: moved back into the current generation whenever it ages out.
            assert_eq!(
                c.get::<Sessions>("keep").map(|r| r.account),
                Some("keep".into())
            );
            assert!(c.len() <= 8, "{} entries", c.len());
        }
        assert!(
            c.get::<Sessions>("k0").is_none(),
            "the oldest unused are gone"
        );
    }

    #[test]
    fn a_read_that_raced_a_flush_is_not_kept() {
        let c = Cache::new(16, true);
        let before = c.epoch();
        c.flush();
        c.put::<Sessions>(before, "s", &record("a"));
        assert!(c.get::<Sessions>("s").is_none());
        let now = c.epoch();
        c.put::<Sessions>(now, "s", &record("a"));
        assert!(c.get::<Sessions>("s").is_some());
        c.forget_session("s");
        assert!(c.get::<Sessions>("s").is_none());
    }

    #[test]
    fn off_means_nothing_is_served_or_kept() {
        let c = Cache::new(16, true);
        c.put::<Sessions>(c.epoch(), "s", &record("a"));
        c.set_live(false);
        assert!(c.get::<Sessions>("s").is_none());
        c.put::<Sessions>(c.epoch(), "s", &record("a"));
        c.set_live(true);
        assert!(
            c.get::<Sessions>("s").is_none(),
            "flushed when turned back on"
        );
        assert_eq!(
            Cache::new(0, true).get::<Sessions>("s"),
            None,
            "capacity 0 is off"
        );
        let stats = c.stats();
        assert_eq!(stats.misses[Kind::Session.index()], 1);
    }
}
