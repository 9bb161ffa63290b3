//! The bounded, expiring map under the token cache (`token_cache.rs`), the verification
//! cache (`secret/verify_cache.rs`) and the daemon's session views: two generations, a full current one becoming the
//! previous one (the older dropped) and an entry used from the previous one moving back, so
//! at most twice `per_generation` entries and what is used stays. An entry is served while
//! its expiry is after `now` (the caller's clock: unix seconds, an `Instant`) and dropped when
//! met expired. Hits and misses are counted.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

struct Maps<K, V, T> {
    current: HashMap<K, (V, T)>,
    previous: HashMap<K, (V, T)>,
}

pub struct Generations<K, V, T> {
    maps: Mutex<Maps<K, V, T>>,
    per_generation: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Eq + Hash, V: Clone, T: PartialOrd + Copy> Generations<K, V, T> {
    /// `per_generation` 0 keeps nothing.
    pub fn new(per_generation: usize) -> Self {
        Generations {
            maps: Mutex::new(Maps {
                current: HashMap::new(),
                previous: HashMap::new(),
            }),
            per_generation,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Maps<K, V, T>> {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value under `key` if it has not expired at `now`; counted as a hit or a miss.
    pub fn get<Q>(&self, key: &Q, now: T) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_if(key, now, |_| true)
    }

    /// [`Generations::get`] for a value `fresh` also accepts (one that is not is dropped, as
    /// an expired one is).
    pub fn get_if<Q>(&self, key: &Q, now: T, fresh: impl Fn(&V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let usable = |(value, until): &(V, T)| *until > now && fresh(value);
        let mut maps = self.lock();
        let found = match maps.current.get(key) {
            Some(entry) if usable(entry) => Some(entry.0.clone()),
            Some(_) => {
                maps.current.remove(key);
                None
            }
            None => match maps.previous.remove_entry(key) {
                Some((key, entry)) if usable(&entry) => {
                    let found = entry.0.clone();
                    self.put(&mut maps, key, entry);
                    Some(found)
                }
                _ => None,
            },
        };
        drop(maps);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `value` under `key` until `until`.
    pub fn insert(&self, key: K, value: V, until: T) {
        if self.per_generation == 0 {
            return;
        }
        self.put(&mut self.lock(), key, (value, until));
    }

    fn put(&self, maps: &mut Maps<K, V, T>, key: K, entry: (V, T)) {
        if maps.current.len() >= self.per_generation && !maps.current.contains_key(&key) {
            maps.previous = std::mem::take(&mut maps.current);
        }
        maps.current.insert(key, entry);
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut maps = self.lock();
        maps.current.remove(key);
        maps.previous.remove(key);
    }

    /// Drops every entry whose value `drop` picks (a scan).
    pub fn remove_where(&self, drop: impl Fn(&V) -> bool) {
        let mut maps = self.lock();
        maps.current.retain(|_, (value, _)| !drop(value));
        maps.previous.retain(|_, (value, _)| !drop(value));
    }

    pub fn clear(&self) {
        let mut maps = self.lock();
        maps.current = HashMap::new();
        maps.previous = HashMap::new();
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        let maps = self.lock();
        maps.current.len() + maps.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits and misses since start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
